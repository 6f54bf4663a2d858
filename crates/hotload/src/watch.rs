//! Watching a mounted Secret directory for new credentials.
//!
//! The directory itself is watched (not the files): kubelet's `..data`
//! symlink swap, an editor renaming a temporary file over a key, and a plain
//! in-place write all show up as events on the directory. Events only wake
//! the watcher; after a quiet `debounce` it re-reads the whole directory
//! and publishes the result only if it differs from what it published last,
//! so bursts of events, touches and identical rewrites cause no reload.
//! A periodic re-read (`resync_interval`) covers events that never arrive
//! (an overflowing inotify queue, a directory replaced wholesale).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::credentials::{Credentials, ReadError, SecretDir};

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("initial read of the credentials: {0}")]
    InitialRead(#[source] ReadError),
    #[error("watching {dir}: {source}")]
    Notify {
        dir: std::path::PathBuf,
        source: notify::Error,
    },
    #[error("the credentials watcher needs a running tokio runtime")]
    NoRuntime,
}

/// How the watcher reacts to file events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchOptions {
    /// Quiet time after the last event before the directory is re-read.
    pub debounce: Duration,
    /// Re-read this often even without events; `None` disables it.
    pub resync_interval: Option<Duration>,
    /// After a failed read, the first retry waits this long, doubling up to `max_retry`.
    pub min_retry: Duration,
    pub max_retry: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(200),
            resync_interval: Some(Duration::from_secs(60)),
            min_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
        }
    }
}

/// Bursts of events longer than this many debounce periods are read anyway.
const MAX_DEBOUNCE_PERIODS: u32 = 10;

#[derive(Debug, Default)]
struct WatchState {
    changes: AtomicU64,
    read_failures: AtomicU64,
    last_read_error: Mutex<Option<String>>,
}

/// Publishes the credentials of a directory whenever they really change.
///
/// Dropping it stops watching; receivers from [`CredentialsWatcher::subscribe`]
/// then see the channel closed.
#[derive(Debug)]
pub struct CredentialsWatcher {
    receiver: watch::Receiver<Arc<Credentials>>,
    state: Arc<WatchState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CredentialsWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CredentialsWatcher {
    /// Reads the credentials once (they must be valid) and starts watching.
    /// Must be called inside a tokio runtime.
    pub fn start(dir: SecretDir, options: WatchOptions) -> Result<CredentialsWatcher, WatchError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| WatchError::NoRuntime)?;
        let wake = Arc::new(Notify::new());
        let mut fs_watcher = {
            let wake = wake.clone();
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Our own reads show up as access events; anything else
                // (including a watcher error) may mean new content.
                if event.is_ok_and(|event| !may_change_content(&event.kind)) {
                    return;
                }
                wake.notify_one();
            })
        }
        .map_err(|source| WatchError::Notify {
            dir: dir.path().to_owned(),
            source,
        })?;
        // Watch before the first read, so no change can slip in between.
        fs_watcher
            .watch(dir.path(), RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Notify {
                dir: dir.path().to_owned(),
                source,
            })?;
        let initial = dir.read().map_err(WatchError::InitialRead)?;
        let (sender, receiver) = watch::channel(Arc::new(initial));
        let state = Arc::new(WatchState::default());
        let task = runtime.spawn(run(dir, options, sender, wake, state.clone(), fs_watcher));
        Ok(CredentialsWatcher {
            receiver,
            state,
            task,
        })
    }

    /// A receiver that sees every change (`changed().await`).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Credentials>> {
        self.receiver.clone()
    }

    /// The credentials published last.
    pub fn current(&self) -> Arc<Credentials> {
        self.receiver.borrow().clone()
    }

    /// How many times new credentials were published (the initial read not counted).
    pub fn changes(&self) -> u64 {
        self.state.changes.load(Ordering::Relaxed)
    }

    /// How many re-reads failed (missing key, invalid value, ...); the
    /// previous credentials stay published when one does.
    pub fn read_failures(&self) -> u64 {
        self.state.read_failures.load(Ordering::Relaxed)
    }

    /// The error of the last re-read if it failed (never contains a secret).
    pub fn last_read_error(&self) -> Option<String> {
        self.state
            .last_read_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

async fn run(
    dir: SecretDir,
    options: WatchOptions,
    sender: watch::Sender<Arc<Credentials>>,
    wake: Arc<Notify>,
    state: Arc<WatchState>,
    // Kept alive here: dropping it stops the events.
    _fs_watcher: notify::RecommendedWatcher,
) {
    let mut failures_in_row: u32 = 0;
    loop {
        let next_read = if failures_in_row > 0 {
            Some(Instant::now() + retry_delay(&options, failures_in_row))
        } else {
            options.resync_interval.map(|every| Instant::now() + every)
        };
        let woken_by_event = tokio::select! {
            () = wake.notified() => true,
            () = sleep_until(next_read) => false,
        };
        if woken_by_event {
            debounce(&wake, options.debounce).await;
        }

        // A handful of small files on a tmpfs: cheaper than a blocking-pool hop.
        match dir.read() {
            Ok(credentials) => {
                failures_in_row = 0;
                *state
                    .last_read_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                let changed = sender.send_if_modified(|published| {
                    if **published == credentials {
                        return false;
                    }
                    *published = Arc::new(credentials);
                    true
                });
                if changed {
                    state.changes.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        dir = %dir.path().display(),
                        username = %sender.borrow().username,
                        "new database credentials"
                    );
                }
            }
            Err(err) => {
                failures_in_row = failures_in_row.saturating_add(1);
                state.read_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    dir = %dir.path().display(),
                    error = %err,
                    retry_in = ?retry_delay(&options, failures_in_row),
                    "cannot read the database credentials; keeping the previous ones"
                );
                *state
                    .last_read_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(err.to_string());
            }
        }
    }
}

/// Waits until no event came for `quiet`, or for at most
/// [`MAX_DEBOUNCE_PERIODS`] periods when events keep coming.
async fn debounce(wake: &Notify, quiet: Duration) {
    let give_up = Instant::now() + quiet * MAX_DEBOUNCE_PERIODS;
    while tokio::time::timeout(quiet, wake.notified()).await.is_ok() {
        if Instant::now() >= give_up {
            return;
        }
    }
}

pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

pub(crate) fn backoff(min: Duration, max: Duration, failures_in_row: u32) -> Duration {
    let doublings = failures_in_row.saturating_sub(1).min(16);
    min.saturating_mul(1 << doublings).min(max)
}

fn retry_delay(options: &WatchOptions, failures_in_row: u32) -> Duration {
    backoff(options.min_retry, options.max_retry, failures_in_row)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::test_util::{KubeletDir, sample_files};

    fn fast() -> WatchOptions {
        WatchOptions {
            debounce: Duration::from_millis(50),
            resync_interval: None,
            min_retry: Duration::from_millis(100),
            max_retry: Duration::from_millis(400),
        }
    }

    /// Waits for the next published value, failing after `within`.
    async fn next_change(
        receiver: &mut watch::Receiver<Arc<Credentials>>,
        within: Duration,
    ) -> Arc<Credentials> {
        tokio::time::timeout(within, receiver.changed())
            .await
            .expect("no change published in time")
            .expect("watcher stopped");
        receiver.borrow_and_update().clone()
    }

    async fn assert_no_change(receiver: &mut watch::Receiver<Arc<Credentials>>, during: Duration) {
        if let Ok(result) = tokio::time::timeout(during, receiver.changed()).await {
            result.expect("watcher stopped");
            panic!(
                "unexpected change to {:?}",
                receiver.borrow_and_update().clone()
            );
        }
    }

    fn write_plain(dir: &Path, files: &[(String, String)]) {
        for (key, value) in files {
            std::fs::write(dir.join(key), value).unwrap();
        }
    }

    #[tokio::test]
    async fn a_kubelet_swap_is_published_once() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()).unwrap();
        let mut receiver = watcher.subscribe();
        assert_eq!(watcher.current().username, "app_a");

        kubelet.publish(&sample_files("app_b", "two")).unwrap();
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.username, "app_b");
        assert_eq!(changed.password.expose_secret(), "two");
        assert_no_change(&mut receiver, Duration::from_millis(400)).await;
        assert_eq!(watcher.changes(), 1);
        assert_eq!(watcher.read_failures(), 0);
    }

    #[tokio::test]
    async fn identical_content_and_touches_publish_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()).unwrap();
        let mut receiver = watcher.subscribe();

        // Same content in a new version directory, plus an unrelated file.
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        std::fs::write(tmp.path().join("unrelated"), "x").unwrap();
        assert_no_change(&mut receiver, Duration::from_millis(500)).await;
        assert_eq!(watcher.changes(), 0);
    }

    #[tokio::test]
    async fn a_burst_of_swaps_is_debounced_to_the_last_version() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "pw0")).unwrap();
        let options = WatchOptions {
            debounce: Duration::from_millis(150),
            ..fast()
        };
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), options).unwrap();
        let mut receiver = watcher.subscribe();

        for n in 1..=10 {
            kubelet
                .publish(&sample_files("app_a", &format!("pw{n}")))
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.password.expose_secret(), "pw10");
        assert_no_change(&mut receiver, Duration::from_millis(500)).await;
        assert_eq!(watcher.changes(), 1);
    }

    #[tokio::test]
    async fn an_editor_replacing_a_file_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        write_plain(tmp.path(), &sample_files("app_a", "one"));
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()).unwrap();
        let mut receiver = watcher.subscribe();

        // Write a temporary file, then rename it over the key (vim, sed -i, ...).
        std::fs::write(tmp.path().join(".password.swp"), "two\n").unwrap();
        std::fs::rename(
            tmp.path().join(".password.swp"),
            tmp.path().join("password"),
        )
        .unwrap();
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.password.expose_secret(), "two");

        // And an in-place write.
        std::fs::write(tmp.path().join("password"), "three").unwrap();
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.password.expose_secret(), "three");
        assert_eq!(watcher.changes(), 2);
    }

    #[tokio::test]
    async fn bad_files_keep_the_previous_credentials_until_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()).unwrap();
        let mut receiver = watcher.subscribe();

        let without_password: Vec<_> = sample_files("app_b", "two")
            .into_iter()
            .filter(|(key, _)| key != "password")
            .collect();
        kubelet.publish(&without_password).unwrap();
        assert_no_change(&mut receiver, Duration::from_millis(600)).await;
        assert!(watcher.read_failures() >= 1);
        let error = watcher.last_read_error().unwrap();
        assert!(error.contains("\"password\""), "{error}");
        assert_eq!(watcher.current().username, "app_a");

        // The retry with back-off picks up the fixed files.
        kubelet.publish(&sample_files("app_b", "two")).unwrap();
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.username, "app_b");
        assert_eq!(watcher.last_read_error(), None);
    }

    #[tokio::test]
    async fn resync_catches_changes_without_events() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        let options = WatchOptions {
            resync_interval: Some(Duration::from_millis(300)),
            ..fast()
        };
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), options).unwrap();
        let mut receiver = watcher.subscribe();
        // Change the version directory behind the watch's back: the file is
        // inside the `..2026...` subdirectory, which is not watched.
        let version = std::fs::read_link(tmp.path().join("..data")).unwrap();
        std::fs::write(tmp.path().join(version).join("password"), "two").unwrap();
        let changed = next_change(&mut receiver, Duration::from_secs(5)).await;
        assert_eq!(changed.password.expose_secret(), "two");
    }

    #[tokio::test]
    async fn dropping_the_watcher_closes_the_channel() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "one")).unwrap();
        let watcher = CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()).unwrap();
        let mut receiver = watcher.subscribe();
        drop(watcher);
        let closed = tokio::time::timeout(Duration::from_secs(5), receiver.changed())
            .await
            .unwrap();
        assert!(closed.is_err());
    }

    #[test]
    fn start_needs_a_runtime_and_valid_files() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()),
            Err(WatchError::NoRuntime)
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            assert!(matches!(
                CredentialsWatcher::start(SecretDir::new(tmp.path()), fast()),
                Err(WatchError::InitialRead(ReadError::MissingKey { .. }))
            ));
        });
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        assert_eq!(backoff(min, max, 1), Duration::from_millis(100));
        assert_eq!(backoff(min, max, 2), Duration::from_millis(200));
        assert_eq!(backoff(min, max, 4), Duration::from_millis(800));
        assert_eq!(backoff(min, max, 5), max);
        assert_eq!(backoff(min, max, u32::MAX), max);
    }
}
