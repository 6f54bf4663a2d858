//! A PostgreSQL connection pool that follows the claim's Secret.
//!
//! [`HotPool`] keeps one deadpool-postgres pool per version of the
//! credentials (a *generation*). When the watcher publishes new credentials,
//! a new pool is built, one connection is opened and `SELECT 1` run through
//! it, and only then is it swapped in. The previous pool is closed: its idle
//! connections close at once, connections an app still holds finish their
//! work and close when returned, and waiting or new `get()` calls move to the
//! new pool. If the new credentials do not work, the current pool stays and
//! the switch is retried with back-off (each retry uses the newest files).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Status,
};
use secrecy::ExposeSecret;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_postgres::error::DbError;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{NoTls, Socket};

use crate::credentials::{Credentials, DEFAULT_DSN_KEY, SecretDir, SslMode};
use crate::watch::{CredentialsWatcher, WatchError, WatchOptions, backoff, sleep_until};

/// A pooled connection; derefs to [`tokio_postgres::Client`].
pub type Client = deadpool_postgres::Client;

/// Why the pool could not be opened or could not hand out a connection.
#[derive(Debug, thiserror::Error)]
pub enum HotPoolError {
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error(
        "sslmode={sslmode} requires TLS, but the pool has no TLS connector (HotPoolOptions::tls)"
    )]
    TlsRequired { sslmode: SslMode },
    #[error("building the pool for user {username:?}: {reason}")]
    Build { username: String, reason: String },
    #[error("connecting as {username:?} to {host}:{port}/{database}: {}", describe(.source))]
    Connect {
        username: String,
        host: String,
        port: u16,
        database: String,
        source: PoolError,
    },
    #[error("getting a connection (user {username:?}): {}", describe(.source))]
    Get { username: String, source: PoolError },
    #[error("the pool is closed")]
    Closed,
}

impl HotPoolError {
    /// The server's error, if the server refused (e.g. SQLSTATE 28P01 for a bad password).
    pub fn db_error(&self) -> Option<&DbError> {
        match self {
            HotPoolError::Connect { source, .. } | HotPoolError::Get { source, .. } => match source
            {
                PoolError::Backend(err) => err.as_db_error(),
                _ => None,
            },
            _ => None,
        }
    }
}

/// tokio-postgres' own `Display` says only "db error"; the server's message
/// is what an operator needs (it never contains the password).
fn describe(err: &PoolError) -> String {
    match err {
        PoolError::Backend(err) => match (err.as_db_error(), std::error::Error::source(err)) {
            (Some(db), _) => format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            (None, Some(cause)) => format!("{err}: {cause}"),
            (None, None) => err.to_string(),
        },
        other => other.to_string(),
    }
}

type MakeManager = dyn Fn(tokio_postgres::Config, ManagerConfig) -> Manager + Send + Sync;

/// How connections are made: without TLS, or through an app-chosen connector.
#[derive(Clone)]
struct Connector {
    make_manager: Arc<MakeManager>,
    supports_tls: bool,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("supports_tls", &self.supports_tls)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`HotPool`]; `HotPoolOptions::default()` then the builder methods.
#[derive(Debug, Clone)]
pub struct HotPoolOptions {
    max_size: usize,
    connect_timeout: Duration,
    wait_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    application_name: Option<String>,
    min_retry: Duration,
    max_retry: Duration,
    dsn_key: String,
    watch: WatchOptions,
    connector: Connector,
}

impl Default for HotPoolOptions {
    fn default() -> Self {
        HotPoolOptions {
            max_size: 16,
            connect_timeout: Duration::from_secs(10),
            wait_timeout: Some(Duration::from_secs(30)),
            max_lifetime: None,
            application_name: None,
            min_retry: Duration::from_millis(500),
            max_retry: Duration::from_secs(30),
            dsn_key: DEFAULT_DSN_KEY.to_owned(),
            watch: WatchOptions::default(),
            connector: Connector {
                make_manager: Arc::new(|config, manager_config| {
                    Manager::from_config(config, NoTls, manager_config)
                }),
                supports_tls: false,
            },
        }
    }
}

impl HotPoolOptions {
    /// Most connections open at once (default 16).
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.max_size = max_size.max(1);
        self
    }

    /// Bound on opening one connection, login included (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long `get()` waits for a free connection (default 30 s; `None` waits forever).
    pub fn wait_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Close connections older than this instead of reusing them (default: never).
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// `application_name` of the sessions (shows in `pg_stat_activity`).
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Back-off between attempts to switch to credentials that did not work
    /// (default 0.5 s doubling up to 30 s).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_retry = min;
        self.max_retry = max.max(min);
        self
    }

    /// The Secret key holding the DSN (the claim's `dsnName`; default `dsn`).
    pub fn dsn_key(mut self, key: impl Into<String>) -> Self {
        self.dsn_key = key.into();
        self
    }

    /// Debounce, resync and read-retry timing of the file watcher.
    pub fn watch(mut self, watch: WatchOptions) -> Self {
        self.watch = watch;
        self
    }

    /// A TLS connector (e.g. `tokio-postgres-rustls` or `postgres-native-tls`).
    /// Without one, `sslmode` `require`, `verify-ca` and `verify-full` are
    /// refused and `prefer`/`allow` connect without TLS. Certificate checks
    /// are the connector's: configure it for what `verify-*` promises.
    pub fn tls<T>(mut self, tls: T) -> Self
    where
        T: MakeTlsConnect<Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        self.connector = Connector {
            make_manager: Arc::new(move |config, manager_config| {
                Manager::from_config(config, tls.clone(), manager_config)
            }),
            supports_tls: true,
        };
        self
    }
}

/// Counters of a [`HotPool`].
#[derive(Debug, Clone, Copy)]
pub struct HotPoolStats {
    /// 0 for the pool `open` made, +1 per switch.
    pub generation: u64,
    /// Switches to new credentials.
    pub reloads: u64,
    /// Attempts to switch that failed (the current pool stayed).
    pub reload_failures: u64,
    /// Re-reads of the Secret directory that failed (missing key, ...).
    pub credential_read_failures: u64,
    /// The current pool's size and availability.
    pub pool: Status,
}

/// One pool and the credentials it logs in with.
struct Generation {
    id: u64,
    pool: Pool,
    credentials: Arc<Credentials>,
    gate: Mutex<Gate>,
    drained: Notify,
}

/// `get()` calls in progress: each may be logging in with this generation's
/// credentials, so a switch is reported only when those are done.
#[derive(Default)]
struct Gate {
    retired: bool,
    gets_in_flight: usize,
}

struct GetInFlight<'a>(&'a Generation);

impl Drop for GetInFlight<'_> {
    fn drop(&mut self) {
        let mut gate = self.0.lock_gate();
        gate.gets_in_flight -= 1;
        if gate.retired && gate.gets_in_flight == 0 {
            self.0.drained.notify_waiters();
        }
    }
}

impl Generation {
    fn new(id: u64, pool: Pool, credentials: Arc<Credentials>) -> Generation {
        Generation {
            id,
            pool,
            credentials,
            gate: Mutex::new(Gate::default()),
            drained: Notify::new(),
        }
    }

    fn lock_gate(&self) -> MutexGuard<'_, Gate> {
        self.gate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `None` once retired: the caller moves to the newer generation.
    fn enter(&self) -> Option<GetInFlight<'_>> {
        let mut gate = self.lock_gate();
        if gate.retired {
            return None;
        }
        gate.gets_in_flight += 1;
        Some(GetInFlight(self))
    }

    /// Closes the pool and waits (at most `patience`) until no `get()` is
    /// still inside it, so no login with these credentials can follow.
    /// Returns whether that point was reached.
    async fn retire(&self, patience: Duration) -> bool {
        self.lock_gate().retired = true;
        // Fails waiting `get()`s at once, drops idle connections; connections
        // in use are dropped when returned.
        self.pool.close();
        let give_up = Instant::now() + patience;
        loop {
            let drained = self.drained.notified();
            if self.lock_gate().gets_in_flight == 0 {
                return true;
            }
            if tokio::time::timeout_at(give_up, drained).await.is_err() {
                return false;
            }
        }
    }
}

struct Shared {
    current: ArcSwap<Generation>,
    generation: watch::Sender<u64>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    watcher: CredentialsWatcher,
}

struct Inner {
    shared: Arc<Shared>,
    reload_task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.reload_task.abort();
    }
}

/// A PostgreSQL pool that switches to new credentials when the mounted
/// Secret changes. Cheap to clone; the last clone dropped stops watching.
#[derive(Clone)]
pub struct HotPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HotPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotPool")
            .field("credentials", &self.credentials())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl HotPool {
    /// Reads the credentials in `dir`, opens a pool and checks one connection
    /// works, then watches `dir`. Must be called inside a tokio runtime.
    pub async fn open(
        dir: impl Into<PathBuf>,
        options: HotPoolOptions,
    ) -> Result<HotPool, HotPoolError> {
        let dir = SecretDir::new(dir).with_dsn_key(options.dsn_key.clone());
        let watcher = CredentialsWatcher::start(dir, options.watch)?;
        let credentials = watcher.current();
        let pool = connect_checked(&credentials, &options).await?;
        tracing::info!(
            username = %credentials.username,
            host = %credentials.host,
            port = credentials.port,
            database = %credentials.database,
            "database pool open"
        );
        let changes = watcher.subscribe();
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(Generation::new(0, pool, credentials)),
            generation: watch::Sender::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            watcher,
        });
        let reload_task = tokio::spawn(follow_credentials(shared.clone(), changes, options));
        Ok(HotPool {
            inner: Arc::new(Inner {
                shared,
                reload_task,
            }),
        })
    }

    /// A connection from the current pool. A call that races with a switch
    /// moves on to the new pool instead of failing.
    pub async fn get(&self) -> Result<Client, HotPoolError> {
        let mut generation = self.inner.shared.current.load_full();
        loop {
            let attempt = match generation.enter() {
                Some(_in_flight) => Some(generation.pool.get().await),
                None => None,
            };
            match attempt {
                Some(Ok(client)) => return Ok(client),
                Some(Err(PoolError::Closed)) | None => {
                    let latest = self.inner.shared.current.load_full();
                    if Arc::ptr_eq(&latest, &generation) {
                        return Err(HotPoolError::Closed);
                    }
                    generation = latest;
                }
                Some(Err(source)) => {
                    return Err(HotPoolError::Get {
                        username: generation.credentials.username.clone(),
                        source,
                    });
                }
            }
        }
    }

    /// The credentials the current pool logs in with.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.inner.shared.current.load().credentials.clone()
    }

    /// The current generation (0 until the first switch).
    pub fn generation(&self) -> u64 {
        self.inner.shared.current.load().id
    }

    /// Sees each switch: the new generation number. By the time it is
    /// published, no new login with the previous credentials will happen
    /// (logins that were already under way have finished, bounded by the
    /// connect timeout), so the previous password may be changed.
    pub fn subscribe_generation(&self) -> watch::Receiver<u64> {
        self.inner.shared.generation.subscribe()
    }

    /// Switches to new credentials so far.
    pub fn reloads(&self) -> u64 {
        self.inner.shared.reloads.load(Ordering::Relaxed)
    }

    /// Attempts to switch that failed (the current pool stayed in use).
    pub fn reload_failures(&self) -> u64 {
        self.inner.shared.reload_failures.load(Ordering::Relaxed)
    }

    /// Re-reads of the Secret directory that failed.
    pub fn credential_read_failures(&self) -> u64 {
        self.inner.shared.watcher.read_failures()
    }

    pub fn stats(&self) -> HotPoolStats {
        let current = self.inner.shared.current.load();
        HotPoolStats {
            generation: current.id,
            reloads: self.reloads(),
            reload_failures: self.reload_failures(),
            credential_read_failures: self.credential_read_failures(),
            pool: current.pool.status(),
        }
    }

    /// Stops following the Secret and closes the pool: `get()` fails from now
    /// on; connections in use close when returned.
    pub fn close(&self) {
        self.inner.reload_task.abort();
        let current = self.inner.shared.current.load();
        current.lock_gate().retired = true;
        current.pool.close();
    }
}

/// Builds a pool for `credentials` and proves it can log in and run a query.
async fn connect_checked(
    credentials: &Credentials,
    options: &HotPoolOptions,
) -> Result<Pool, HotPoolError> {
    let pool = build_pool(credentials, options)?;
    let connect_error = |source| HotPoolError::Connect {
        username: credentials.username.clone(),
        host: credentials.host.clone(),
        port: credentials.port,
        database: credentials.database.clone(),
        source,
    };
    let client = pool.get().await.map_err(connect_error)?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|err| connect_error(PoolError::Backend(err)))?;
    Ok(pool)
}

fn build_pool(credentials: &Credentials, options: &HotPoolOptions) -> Result<Pool, HotPoolError> {
    if credentials.sslmode.requires_tls() && !options.connector.supports_tls {
        return Err(HotPoolError::TlsRequired {
            sslmode: credentials.sslmode,
        });
    }
    let mut config = tokio_postgres::Config::new();
    config
        .user(&credentials.username)
        .password(credentials.password.expose_secret())
        .host(&credentials.host)
        .port(credentials.port)
        .dbname(&credentials.database)
        .ssl_mode(match credentials.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            // tokio-postgres has no "allow" (plain first, then TLS); prefer is closest.
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        })
        .connect_timeout(options.connect_timeout);
    if let Some(name) = &options.application_name {
        config.application_name(name);
    }
    let manager = (options.connector.make_manager)(
        config,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let mut builder = Pool::builder(manager)
        .max_size(options.max_size)
        .runtime(Runtime::Tokio1)
        .create_timeout(Some(options.connect_timeout))
        .recycle_timeout(Some(options.connect_timeout))
        .wait_timeout(options.wait_timeout);
    if let Some(max_lifetime) = options.max_lifetime {
        builder = builder.pre_recycle(Hook::sync_fn(move |_, metrics| {
            if metrics.age() >= max_lifetime {
                Err(HookError::message(
                    "connection reached its maximum lifetime",
                ))
            } else {
                Ok(())
            }
        }));
    }
    builder.build().map_err(|err| HotPoolError::Build {
        username: credentials.username.clone(),
        reason: err.to_string(),
    })
}

/// Switches the pool whenever the watcher publishes credentials that differ
/// from the current pool's; retries failed switches with back-off.
async fn follow_credentials(
    shared: Arc<Shared>,
    mut changes: watch::Receiver<Arc<Credentials>>,
    options: HotPoolOptions,
) {
    // Logins under way on the previous pool end within the connect timeout.
    let drain_patience = options.connect_timeout + Duration::from_secs(1);
    let mut failures_in_row: u32 = 0;
    loop {
        let retry_at = (failures_in_row > 0).then(|| {
            Instant::now() + backoff(options.min_retry, options.max_retry, failures_in_row)
        });
        tokio::select! {
            changed = changes.changed() => if changed.is_err() {
                return;
            },
            () = sleep_until(retry_at) => {}
        }
        let wanted = changes.borrow_and_update().clone();
        let current = shared.current.load_full();
        if *current.credentials == *wanted {
            failures_in_row = 0;
            continue;
        }
        match connect_checked(&wanted, &options).await {
            Ok(pool) => {
                failures_in_row = 0;
                let next = Arc::new(Generation::new(current.id + 1, pool, wanted.clone()));
                let next_id = next.id;
                let previous = shared.current.swap(next);
                if !previous.retire(drain_patience).await {
                    tracing::warn!(
                        username = %previous.credentials.username,
                        waited = ?drain_patience,
                        "logins with the previous credentials were still under way"
                    );
                }
                shared.reloads.fetch_add(1, Ordering::Relaxed);
                shared.generation.send_replace(next_id);
                tracing::info!(
                    generation = next_id,
                    previous_username = %previous.credentials.username,
                    username = %wanted.username,
                    "switched the database pool to new credentials; the previous pool drains"
                );
            }
            Err(err) => {
                failures_in_row = failures_in_row.saturating_add(1);
                shared.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    username = %wanted.username,
                    error = %err,
                    retry_in = ?backoff(options.min_retry, options.max_retry, failures_in_row),
                    "the new database credentials do not work (yet); keeping the current pool"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::test_util::{KubeletDir, secret_files};

    #[tokio::test]
    async fn tls_modes_need_a_connector() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        let mut files = secret_files("u", "p", "127.0.0.1", 1, "d");
        for (key, value) in &mut files {
            if key == "sslmode" {
                *value = "verify-full".to_owned();
            }
        }
        kubelet.publish(&files).unwrap();
        let err = HotPool::open(tmp.path(), HotPoolOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                HotPoolError::TlsRequired {
                    sslmode: SslMode::VerifyFull
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn open_fails_with_context_when_nothing_listens() {
        // Port 1 on loopback: connection refused, quickly.
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet
            .publish(&secret_files(
                "app_a",
                "hunter2-secret",
                "127.0.0.1",
                1,
                "orders",
            ))
            .unwrap();
        let options = HotPoolOptions::default().connect_timeout(Duration::from_secs(2));
        let err = HotPool::open(tmp.path(), options).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, HotPoolError::Connect { .. }), "{message}");
        assert!(message.contains("\"app_a\""), "{message}");
        assert!(message.contains("127.0.0.1:1/orders"), "{message}");
        assert!(!message.contains("hunter2-secret"), "{message}");
        assert!(!format!("{err:?}").contains("hunter2-secret"));
    }

    #[test]
    fn options_clamp_nonsense() {
        let options = HotPoolOptions::default()
            .max_size(0)
            .retry_backoff(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(options.max_size, 1);
        assert_eq!(options.max_retry, Duration::from_secs(5));
    }
}
