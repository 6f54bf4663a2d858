//! Database credentials that rotate under a running app.
//!
//! The dbaas operator writes a DatabaseClaim's connection info into a Secret
//! (`username`, `password`, `host`, `port`, `database`, `sslmode`, `uri` and
//! a DSN key, `dsn` by default) and rotates the password with two logins
//! (`<user>_a` / `<user>_b`): the new password goes to the login the app is
//! not using, the Secret switches to it, and the previous login keeps working
//! for a grace period. An app that mounts the Secret as a volume and uses
//! this crate picks up the new files and moves its pool over within that
//! period, so no query fails.
//!
//! - [`SecretDir`] reads one consistent version of the mounted files into
//!   [`Credentials`] (the password is a [`secrecy::SecretString`]; `Debug`
//!   redacts it), naming the key that is missing or invalid.
//! - [`CredentialsWatcher`] watches the directory (kubelet's `..data`
//!   symlink swap, editors replacing files), debounces, re-reads and
//!   publishes on a tokio `watch` channel only when something really changed.
//! - [`HotPool`] is a deadpool-postgres pool that follows the watcher: it
//!   builds a pool with the new credentials, checks a connection works,
//!   swaps it in atomically and drains the previous pool; credentials that do
//!   not work leave the current pool in place and are retried with back-off.
//!
//! ```no_run
//! use dbaas_hotload::{HotPool, HotPoolOptions};
//!
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = HotPool::open("/etc/db", HotPoolOptions::default()).await?;
//! let client = pool.get().await?;
//! let row = client.query_one("SELECT current_database()", &[]).await?;
//! let database: String = row.get(0);
//! # let _ = database;
//! # Ok(())
//! # }
//! ```
//!
//! Mount the Secret as a volume, not with `subPath` (kubelet does not update
//! `subPath` mounts), and not as environment variables (they never change).
//! Never logs a password: logs and errors carry the user name, host and
//! database only.

mod credentials;
mod pool;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
mod watch;

pub use credentials::{
    Credentials, DEFAULT_DSN_KEY, KUBELET_DATA_LINK, ReadError, SecretDir, SslMode,
};
pub use pool::{Client, HotPool, HotPoolError, HotPoolOptions, HotPoolStats};
pub use watch::{CredentialsWatcher, WatchError, WatchOptions};

/// The versions this crate is built with, so apps use the same types.
pub use {deadpool_postgres, secrecy, tokio_postgres};
