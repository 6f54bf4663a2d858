//! Password rotation against a REAL PostgreSQL (hack/databases/postgres.sh),
//! done the way the operator does it: a NOLOGIN owner role, two login users
//! acting as it, the inactive one gets a new password, the Secret (a
//! kubelet-style directory here) switches to it, and the other login's
//! password changes only after the app has moved over.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use dbaas_hotload::test_util::{KubeletDir, secret_files};
use dbaas_hotload::tokio_postgres::{self, NoTls};
use dbaas_hotload::{HotPool, HotPoolOptions, WatchOptions};
use dbaas_testkit::db::DbServer;

const ROTATIONS: u64 = 50;
const QUERY_TASKS: usize = 8;
/// Queries that must succeed on each new pool before the next rotation.
const QUERIES_PER_ROTATION: u64 = 20;

// ---- logs: captured for the whole binary, checked for passwords ----

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());
/// Every password this binary generated; none may ever be logged.
static PASSWORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // tokio-postgres logs the statements of the test's own admin
        // connection (ALTER ROLE ... PASSWORD) at debug level: not ours to check.
        let filter = tracing_subscriber::EnvFilter::new("trace,tokio_postgres=info");
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .init();
    });
}

fn captured_logs() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

fn assert_no_password_logged() {
    let logs = captured_logs();
    for password in PASSWORDS.lock().unwrap().iter() {
        assert!(!logs.contains(password.as_str()), "a password was logged");
    }
}

// ---- the claim on the server, as the operator would set it up ----

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_password() -> String {
    let password = format!("Pw-{}", random_hex(16));
    PASSWORDS.lock().unwrap().push(password.clone());
    password
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// standard_conforming_strings is on (the default), so only `'` needs doubling.
fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

async fn connect(
    server: &DbServer,
    user: &str,
    password: &str,
    database: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(server.host())
        .port(server.port())
        .user(user)
        .password(password)
        .dbname(database)
        .connect(NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

struct Claim {
    server: &'static DbServer,
    admin: tokio_postgres::Client,
    owner: String,
    logins: [String; 2],
    database: String,
}

impl Claim {
    /// Owner role, logins `<owner>_a`/`_b` (login `_a` gets `password_a`,
    /// `_b` a password nobody knows), a database owned by the owner, and a
    /// table the owner owns.
    async fn create(prefix: &str, password_a: &str) -> Claim {
        let server = tokio::task::spawn_blocking(DbServer::shared_postgres)
            .await
            .unwrap();
        let admin = connect(
            server,
            server.admin_user(),
            server.admin_password(),
            "postgres",
        )
        .await
        .unwrap();
        let owner = format!("{prefix}_{}", random_hex(4));
        let logins = [format!("{owner}_a"), format!("{owner}_b")];
        let database = format!("{owner}_db");
        admin
            .batch_execute(&format!("CREATE ROLE {} NOLOGIN", quote_ident(&owner)))
            .await
            .unwrap();
        for (login, password) in logins
            .iter()
            .zip([password_a.to_owned(), random_password()])
        {
            admin
                .batch_execute(&format!(
                    "CREATE ROLE {login} LOGIN PASSWORD {password} IN ROLE {owner};
                     ALTER ROLE {login} SET ROLE {owner}",
                    login = quote_ident(login),
                    password = quote_literal(&password),
                    owner = quote_ident(&owner),
                ))
                .await
                .unwrap();
        }
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(&database),
                quote_ident(&owner)
            ))
            .await
            .unwrap();
        // Created through login _a: `SET ROLE` on login makes the owner own it.
        let app = connect(server, &logins[0], password_a, &database)
            .await
            .unwrap();
        app.batch_execute(
            "CREATE TABLE hits (
                 id bigserial PRIMARY KEY,
                 task integer NOT NULL,
                 login name NOT NULL DEFAULT session_user,
                 at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .unwrap();
        let table_owner: String = app
            .query_one(
                "SELECT tableowner::text FROM pg_tables WHERE tablename = 'hits'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(table_owner, owner);
        Claim {
            server,
            admin,
            owner,
            logins,
            database,
        }
    }

    async fn set_password(&self, login: usize, password: &str) {
        self.admin
            .batch_execute(&format!(
                "ALTER ROLE {} PASSWORD {}",
                quote_ident(&self.logins[login]),
                quote_literal(password)
            ))
            .await
            .unwrap();
    }

    fn files(&self, login: usize, password: &str) -> Vec<(String, String)> {
        secret_files(
            &self.logins[login],
            password,
            self.server.host(),
            self.server.port(),
            &self.database,
        )
    }

    /// Rows in `hits` per login that inserted them.
    async fn hits_per_login(&self, password_of_any_login: (usize, &str)) -> Vec<(String, i64)> {
        let (login, password) = password_of_any_login;
        let app = connect(self.server, &self.logins[login], password, &self.database)
            .await
            .unwrap();
        app.query(
            "SELECT login::text, count(*) FROM hits GROUP BY login ORDER BY login",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
    }
}

// ---- the app: tasks querying through the pool without a pause ----

struct Load {
    succeeded: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(pool: &HotPool, tasks: usize) -> Load {
        let succeeded = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|task| {
                let (pool, succeeded, failed, errors, stop) = (
                    pool.clone(),
                    succeeded.clone(),
                    failed.clone(),
                    errors.clone(),
                    stop.clone(),
                );
                tokio::spawn(async move {
                    let task = i32::try_from(task).unwrap();
                    while !stop.load(Ordering::Relaxed) {
                        match insert_hit(&pool, task).await {
                            Ok(()) => succeeded.fetch_add(1, Ordering::Relaxed),
                            Err(err) => {
                                let mut errors = errors.lock().unwrap();
                                if errors.len() < 20 {
                                    errors.push(err);
                                }
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            succeeded,
            failed,
            errors,
            stop,
            tasks,
        }
    }

    fn succeeded(&self) -> u64 {
        self.succeeded.load(Ordering::Relaxed)
    }

    fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Waits until `more` queries succeeded after now.
    async fn wait_for_more(&self, more: u64, within: Duration) {
        let target = self.succeeded() + more;
        wait_until(&format!("{more} more queries"), within, || {
            self.succeeded() >= target
        })
        .await;
    }

    async fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let errors = self.errors.lock().unwrap().clone();
        (
            self.succeeded.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}

async fn insert_hit(pool: &HotPool, task: i32) -> Result<(), String> {
    let client = pool.get().await.map_err(|err| err.to_string())?;
    client
        .execute("INSERT INTO hits (task) VALUES ($1)", &[&task])
        .await
        .map_err(|err| match err.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => err.to_string(),
        })?;
    Ok(())
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn secret_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db-credentials");
    (tmp, dir)
}

/// Short connection lifetimes keep new logins happening all the time, so a
/// login with a stale password cannot hide behind a reused connection.
fn test_options() -> HotPoolOptions {
    HotPoolOptions::default()
        .max_size(4)
        .max_lifetime(Some(Duration::from_millis(200)))
        .connect_timeout(Duration::from_secs(5))
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .application_name("hotload-test")
        .watch(WatchOptions {
            debounce: Duration::from_millis(50),
            ..WatchOptions::default()
        })
}

// ---- the tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_rotations_under_load_fail_no_query() {
    capture_logs();
    let mut passwords = [random_password(), String::new()];
    let claim = Claim::create("hl_rot", &passwords[0]).await;
    let (_tmp, dir) = secret_dir();
    let mut kubelet = KubeletDir::new(&dir).unwrap();
    kubelet.publish(&claim.files(0, &passwords[0])).unwrap();

    let pool = HotPool::open(&dir, test_options()).await.unwrap();
    let mut generations = pool.subscribe_generation();
    let load = Load::start(&pool, QUERY_TASKS);
    load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
        .await;

    let started = Instant::now();
    let mut slowest_reload = Duration::ZERO;
    for rotation in 1..=ROTATIONS {
        // The login the app is NOT using gets the new password first.
        let target = usize::try_from(rotation % 2).unwrap();
        let password = random_password();
        claim.set_password(target, &password).await;
        passwords[target] = password;
        let published = Instant::now();
        kubelet
            .publish(&claim.files(target, &passwords[target]))
            .unwrap();

        let reloaded = tokio::time::timeout(
            Duration::from_secs(30),
            generations.wait_for(|generation| *generation >= rotation),
        )
        .await
        .is_ok_and(|seen| seen.is_ok());
        assert!(
            reloaded,
            "rotation {rotation}: no reload within 30s ({:?})",
            pool.stats()
        );
        slowest_reload = slowest_reload.max(published.elapsed());
        assert_eq!(pool.credentials().username, claim.logins[target]);
        // Stricter than the operator (whose grace period is minutes): the
        // previous password stops working the moment the switch is reported.
        let previous = 1 - target;
        passwords[previous] = random_password();
        claim.set_password(previous, &passwords[previous]).await;
        assert_eq!(
            load.failed(),
            0,
            "rotation {rotation}: failed queries: {:?}",
            load.errors()
        );
        // The app runs on the new login for a while; only then may the next
        // rotation change the previous login's password.
        load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
            .await;
    }
    let rotating_time = started.elapsed();
    let (succeeded, failed, errors) = load.stop().await;
    let stats = pool.stats();
    let hits = claim.hits_per_login((0, &passwords[0])).await;
    eprintln!(
        "rotation: {ROTATIONS} rotations in {:.1}s (slowest publish->reload {:.0} ms), \
         {succeeded} queries succeeded, {failed} failed, {} reloads, {} reload failures; \
         rows per login {hits:?}",
        rotating_time.as_secs_f64(),
        slowest_reload.as_secs_f64() * 1000.0,
        stats.reloads,
        stats.reload_failures,
    );

    assert_eq!(failed, 0, "failed queries: {errors:?}");
    assert_eq!(stats.reloads, ROTATIONS);
    assert_eq!(stats.generation, ROTATIONS);
    assert_eq!(stats.reload_failures, 0);
    assert_eq!(stats.credential_read_failures, 0);
    assert!(
        succeeded >= (ROTATIONS + 1) * QUERIES_PER_ROTATION,
        "only {succeeded} queries ran"
    );
    // Every successful query inserted one row, through both logins.
    let logins: Vec<&str> = hits.iter().map(|(login, _)| login.as_str()).collect();
    assert_eq!(logins, [claim.logins[0].as_str(), claim.logins[1].as_str()]);
    let rows: i64 = hits.iter().map(|(_, count)| count).sum();
    assert_eq!(u64::try_from(rows).unwrap(), succeeded);
    // Sessions act as the owner role, whichever login they came in with.
    let client = pool.get().await.unwrap();
    let row = client
        .query_one("SELECT session_user::text, current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), claim.logins[0]);
    assert_eq!(row.get::<_, String>(1), claim.owner);
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_in_use_without_publishing_breaks_queries() {
    capture_logs();
    let password = random_password();
    let claim = Claim::create("hl_neg", &password).await;
    let (_tmp, dir) = secret_dir();
    let mut kubelet = KubeletDir::new(&dir).unwrap();
    kubelet.publish(&claim.files(0, &password)).unwrap();
    let pool = HotPool::open(&dir, test_options()).await.unwrap();
    let load = Load::start(&pool, 4);
    load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
        .await;
    assert_eq!(load.failed(), 0, "{:?}", load.errors());

    // A broken rotation: the login in use loses its password, nothing is published.
    claim.set_password(0, &random_password()).await;
    wait_until("failed queries", Duration::from_secs(20), || {
        load.failed() > 0
    })
    .await;
    let (_, failed, errors) = load.stop().await;
    assert!(failed > 0);
    assert!(
        errors.iter().any(|err| err.contains("28P01")
            && err.contains("password authentication failed")
            && err.contains(&claim.logins[0])),
        "{errors:?}"
    );
    assert_eq!(pool.reloads(), 0);
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_missing_a_key_keep_the_current_pool() {
    capture_logs();
    let password_a = random_password();
    let claim = Claim::create("hl_bad", &password_a).await;
    let (_tmp, dir) = secret_dir();
    let mut kubelet = KubeletDir::new(&dir).unwrap();
    kubelet.publish(&claim.files(0, &password_a)).unwrap();
    let pool = HotPool::open(&dir, test_options()).await.unwrap();
    let load = Load::start(&pool, 4);

    let password_b = random_password();
    claim.set_password(1, &password_b).await;
    let without_password: Vec<_> = claim
        .files(1, &password_b)
        .into_iter()
        .filter(|(key, _)| key != "password")
        .collect();
    kubelet.publish(&without_password).unwrap();
    wait_until("a failed re-read", Duration::from_secs(10), || {
        pool.credential_read_failures() > 0
    })
    .await;
    // The old pool keeps serving, with new logins (short lifetimes) too.
    load.wait_for_more(QUERIES_PER_ROTATION * 5, Duration::from_secs(30))
        .await;
    assert_eq!(pool.generation(), 0);
    assert_eq!(pool.reloads(), 0);
    assert_eq!(pool.credentials().username, claim.logins[0]);

    kubelet.publish(&claim.files(1, &password_b)).unwrap();
    let mut generations = pool.subscribe_generation();
    let reloaded = tokio::time::timeout(
        Duration::from_secs(10),
        generations.wait_for(|generation| *generation >= 1),
    )
    .await
    .is_ok_and(|seen| seen.is_ok());
    assert!(reloaded, "{:?}", pool.stats());
    assert_eq!(pool.credentials().username, claim.logins[1]);
    load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
        .await;
    let (succeeded, failed, errors) = load.stop().await;
    assert_eq!(failed, 0, "{errors:?}");
    assert!(succeeded >= QUERIES_PER_ROTATION * 6);
    assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_server_does_not_know_yet_are_retried_with_backoff() {
    capture_logs();
    let password_a = random_password();
    let claim = Claim::create("hl_retry", &password_a).await;
    let (_tmp, dir) = secret_dir();
    let mut kubelet = KubeletDir::new(&dir).unwrap();
    kubelet.publish(&claim.files(0, &password_a)).unwrap();
    let pool = HotPool::open(&dir, test_options()).await.unwrap();
    let load = Load::start(&pool, 4);

    // Published before the server has the password: must not be switched to.
    let password_b = random_password();
    kubelet.publish(&claim.files(1, &password_b)).unwrap();
    wait_until("three failed switches", Duration::from_secs(20), || {
        pool.reload_failures() >= 3
    })
    .await;
    load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
        .await;
    assert_eq!(pool.generation(), 0);
    assert_eq!(pool.credentials().username, claim.logins[0]);
    assert_eq!(load.failed(), 0, "{:?}", load.errors());

    // The server catches up: the next retry switches.
    claim.set_password(1, &password_b).await;
    let mut generations = pool.subscribe_generation();
    let reloaded = tokio::time::timeout(
        Duration::from_secs(10),
        generations.wait_for(|generation| *generation >= 1),
    )
    .await
    .is_ok_and(|seen| seen.is_ok());
    assert!(reloaded, "{:?}", pool.stats());
    assert_eq!(pool.credentials().username, claim.logins[1]);
    load.wait_for_more(QUERIES_PER_ROTATION, Duration::from_secs(30))
        .await;
    let (_, failed, errors) = load.stop().await;
    assert_eq!(failed, 0, "{errors:?}");

    let logs = captured_logs();
    let warning = logs
        .lines()
        .find(|line| line.contains("do not work") && line.contains(&claim.logins[1]))
        .unwrap_or_else(|| panic!("no warning about the failed switch in:\n{logs}"));
    assert!(warning.contains("28P01"), "{warning}");
    assert_no_password_logged();
}
