//! Reading a DatabaseClaim's Secret from its mounted directory.
//!
//! Kubelet mounts a Secret as a directory whose visible files are symlinks
//! into a timestamped directory (`username -> ..data/username`,
//! `..data -> ..2026_01_31_10_00_00.123456789`) and updates it by writing a
//! new timestamped directory and renaming a symlink over `..data`. Reading
//! the files one by one through the visible symlinks could mix two versions,
//! so [`SecretDir::read`] resolves `..data` once, reads every key from that
//! one snapshot, and retries if `..data` moved meanwhile. A plain directory
//! (no `..data`, e.g. local development) is read as it is.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretString};

/// Key of the kubelet symlink pointing at the current version of the files.
pub const KUBELET_DATA_LINK: &str = "..data";

/// The Secret key of the DSN when the claim does not set `dsnName`.
pub const DEFAULT_DSN_KEY: &str = "dsn";

/// A Secret value is a few hundred bytes; anything bigger is not ours.
const MAX_VALUE_BYTES: u64 = 64 * 1024;

/// How often a read is retried when `..data` moves while it is being read.
const SNAPSHOT_ATTEMPTS: usize = 5;

/// Why the credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("the secret directory {dir} has no key {key:?}")]
    MissingKey { dir: PathBuf, key: String },
    #[error("key {key:?} in {dir}: {reason}")]
    InvalidValue {
        dir: PathBuf,
        key: String,
        reason: String,
    },
    #[error("the secret directory {dir} changed {attempts} times while being read")]
    Unstable { dir: PathBuf, attempts: usize },
}

/// TLS mode, as libpq spells it in `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// libpq's default when `sslmode` is not given.
    pub const LIBPQ_DEFAULT: SslMode = SslMode::Prefer;

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a session without TLS is refused.
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

impl std::str::FromStr for SslMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "{other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The connection info of a claim, as its Secret holds it.
///
/// `password`, `uri` and `dsn` contain the password, so they are
/// [`SecretString`]s and `Debug` prints them redacted.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
    pub host: String,
    pub port: u16,
    pub database: String,
    /// [`SslMode::LIBPQ_DEFAULT`] when the Secret has no `sslmode`.
    pub sslmode: SslMode,
    /// The `uri` key, if present.
    pub uri: Option<SecretString>,
    /// The DSN key (`dsn` unless configured otherwise), if present.
    pub dsn: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "<redacted>" } else { "<absent>" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &redacted(true))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("sslmode", &self.sslmode)
            .field("uri", &redacted(self.uri.is_some()))
            .field("dsn", &redacted(self.dsn.is_some()))
            .finish()
    }
}

fn same_secret(a: &SecretString, b: &SecretString) -> bool {
    a.expose_secret() == b.expose_secret()
}

fn same_optional_secret(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_secret(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Equal when every field is equal, secrets included: "did anything change".
impl PartialEq for Credentials {
    fn eq(&self, other: &Self) -> bool {
        self.username == other.username
            && same_secret(&self.password, &other.password)
            && self.host == other.host
            && self.port == other.port
            && self.database == other.database
            && self.sslmode == other.sslmode
            && same_optional_secret(&self.uri, &other.uri)
            && same_optional_secret(&self.dsn, &other.dsn)
    }
}

impl Eq for Credentials {}

/// A mounted Secret directory and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDir {
    path: PathBuf,
    dsn_key: String,
}

impl SecretDir {
    pub fn new(path: impl Into<PathBuf>) -> SecretDir {
        SecretDir {
            path: path.into(),
            dsn_key: DEFAULT_DSN_KEY.to_owned(),
        }
    }

    /// The key holding the DSN (the claim's `dsnName`).
    pub fn with_dsn_key(mut self, key: impl Into<String>) -> SecretDir {
        self.dsn_key = key.into();
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn dsn_key(&self) -> &str {
        &self.dsn_key
    }

    /// Reads one consistent version of the credentials.
    ///
    /// `username`, `password`, `host`, `port` and `database` are required;
    /// `sslmode`, `uri` and the DSN key are optional. Values lose one
    /// trailing newline (files written by hand usually end with one); the
    /// non-secret values are also trimmed of surrounding whitespace.
    pub fn read(&self) -> Result<Credentials, ReadError> {
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let version_before = self.current_version()?;
            let files_dir = match &version_before {
                Some(target) => self.path.join(target),
                None => self.path.clone(),
            };
            let result = self.read_from(&files_dir);
            let version_after = self.current_version()?;
            if version_after == version_before {
                return result;
            }
            // `..data` moved while we read: the snapshot may be mixed or gone.
        }
        Err(ReadError::Unstable {
            dir: self.path.clone(),
            attempts: SNAPSHOT_ATTEMPTS,
        })
    }

    /// Where `..data` points, or `None` for a plain directory.
    fn current_version(&self) -> Result<Option<PathBuf>, ReadError> {
        let link = self.path.join(KUBELET_DATA_LINK);
        match std::fs::read_link(&link) {
            Ok(target) => Ok(Some(target)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                // Tell "plain directory" from "directory missing".
                std::fs::metadata(&self.path)
                    .map(|_| None)
                    .map_err(|source| ReadError::Io {
                        path: self.path.clone(),
                        source,
                    })
            }
            // `..data` exists but is not a symlink: treat the directory as plain.
            Err(err) if err.kind() == io::ErrorKind::InvalidInput => Ok(None),
            Err(source) => Err(ReadError::Io { path: link, source }),
        }
    }

    fn read_from(&self, files_dir: &Path) -> Result<Credentials, ReadError> {
        let required = |key: &str| {
            self.read_value(files_dir, key)?
                .ok_or_else(|| ReadError::MissingKey {
                    dir: self.path.clone(),
                    key: key.to_owned(),
                })
        };
        let plain = |key: &str| -> Result<String, ReadError> {
            let value = required(key)?;
            let trimmed = value.expose_secret().trim();
            if trimmed.is_empty() {
                return Err(self.invalid(key, "is empty"));
            }
            Ok(trimmed.to_owned())
        };

        let username = plain("username")?;
        let password = required("password")?;
        if password.expose_secret().is_empty() {
            return Err(self.invalid("password", "is empty"));
        }
        let host = plain("host")?;
        let port_text = plain("port")?;
        let port = match port_text.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(self.invalid(
                    "port",
                    &format!("{port_text:?} is not a TCP port (1..65535)"),
                ));
            }
        };
        let database = plain("database")?;
        let sslmode = match self.read_value(files_dir, "sslmode")? {
            None => SslMode::LIBPQ_DEFAULT,
            Some(text) => text
                .expose_secret()
                .trim()
                .parse()
                .map_err(|reason: String| self.invalid("sslmode", &reason))?,
        };
        let uri = self.read_value(files_dir, "uri")?;
        let dsn = self.read_value(files_dir, &self.dsn_key)?;
        Ok(Credentials {
            username,
            password,
            host,
            port,
            database,
            sslmode,
            uri,
            dsn,
        })
    }

    fn invalid(&self, key: &str, reason: &str) -> ReadError {
        ReadError::InvalidValue {
            dir: self.path.clone(),
            key: key.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// One key's value, `None` if the file does not exist. Every value is
    /// handled as a secret until we know it is not one.
    fn read_value(&self, files_dir: &Path, key: &str) -> Result<Option<SecretString>, ReadError> {
        let path = files_dir.join(key);
        let io_error = |source| ReadError::Io {
            path: path.clone(),
            source,
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_error(err)),
        };
        let mut bytes = Vec::new();
        file.take(MAX_VALUE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() as u64 > MAX_VALUE_BYTES {
            bytes.zeroize();
            return Err(self.invalid(key, &format!("is larger than {MAX_VALUE_BYTES} bytes")));
        }
        let mut text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                err.into_bytes().zeroize();
                return Err(self.invalid(key, "is not UTF-8"));
            }
        };
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(Some(SecretString::from(text)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::test_util::{KubeletDir, sample_files};

    fn write_plain(dir: &Path, files: &[(&str, &str)]) {
        for (key, value) in files {
            std::fs::write(dir.join(key), value).unwrap();
        }
    }

    #[test]
    fn reads_a_plain_directory() {
        let tmp = tempfile::tempdir().unwrap();
        write_plain(
            tmp.path(),
            &[
                ("username", "app_a\n"),
                ("password", " pass word \n"),
                ("host", " db.example \n"),
                ("port", "5432"),
                ("database", "orders"),
                ("sslmode", "verify-full\r\n"),
                ("uri", "postgresql://app_a:x@db.example:5432/orders"),
                ("dsn", "host=db.example user=app_a"),
            ],
        );
        let creds = SecretDir::new(tmp.path()).read().unwrap();
        assert_eq!(creds.username, "app_a");
        // Only the newline goes: spaces may be part of a password.
        assert_eq!(creds.password.expose_secret(), " pass word ");
        assert_eq!(creds.host, "db.example");
        assert_eq!(creds.port, 5432);
        assert_eq!(creds.database, "orders");
        assert_eq!(creds.sslmode, SslMode::VerifyFull);
        assert_eq!(
            creds.uri.as_ref().unwrap().expose_secret(),
            "postgresql://app_a:x@db.example:5432/orders"
        );
        assert_eq!(
            creds.dsn.as_ref().unwrap().expose_secret(),
            "host=db.example user=app_a"
        );
    }

    #[test]
    fn optional_keys_may_be_absent_and_the_dsn_key_is_configurable() {
        let tmp = tempfile::tempdir().unwrap();
        write_plain(
            tmp.path(),
            &[
                ("username", "u"),
                ("password", "p"),
                ("host", "h"),
                ("port", "1"),
                ("database", "d"),
                ("jdbc", "jdbc:postgresql://h:1/d"),
            ],
        );
        let creds = SecretDir::new(tmp.path()).read().unwrap();
        assert_eq!(creds.sslmode, SslMode::Prefer);
        assert!(creds.uri.is_none());
        assert!(creds.dsn.is_none());
        let creds = SecretDir::new(tmp.path())
            .with_dsn_key("jdbc")
            .read()
            .unwrap();
        assert_eq!(
            creds.dsn.unwrap().expose_secret(),
            "jdbc:postgresql://h:1/d"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet
            .publish(&sample_files("app_a", "s3cr3t-Pa55word-xyz"))
            .unwrap();
        let creds = SecretDir::new(tmp.path()).read().unwrap();
        let shown = format!("{creds:?} {creds:#?}");
        assert!(!shown.contains("s3cr3t-Pa55word-xyz"), "{shown}");
        assert!(shown.contains("app_a"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn every_required_key_is_named_when_missing() {
        for missing in ["username", "password", "host", "port", "database"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
            let files: Vec<_> = sample_files("app_a", "pw")
                .into_iter()
                .filter(|(key, _)| key != missing)
                .collect();
            kubelet.publish(&files).unwrap();
            match SecretDir::new(tmp.path()).read() {
                Err(ReadError::MissingKey { key, dir }) => {
                    assert_eq!(key, missing);
                    assert_eq!(dir, tmp.path());
                }
                other => panic!("without {missing}: {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_values_are_rejected_with_their_key() {
        let cases = [
            ("port", "54x32", "port"),
            ("port", "0", "port"),
            ("port", "70000", "port"),
            ("sslmode", "sometimes", "sslmode"),
            ("host", "  \n", "host"),
            ("password", "", "password"),
            ("username", "", "username"),
        ];
        for (key, value, named) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
            let mut files = sample_files("app_a", "pw");
            files.retain(|(k, _)| k != key);
            files.push((key.to_owned(), value.to_owned()));
            kubelet.publish(&files).unwrap();
            match SecretDir::new(tmp.path()).read() {
                Err(ReadError::InvalidValue { key, .. }) => assert_eq!(key, named),
                other => panic!("{key}={value:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn non_utf8_and_oversized_values_are_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        write_plain(
            tmp.path(),
            &[
                ("username", "u"),
                ("host", "h"),
                ("port", "1"),
                ("database", "d"),
            ],
        );
        std::fs::write(tmp.path().join("password"), [0xff, 0xfe]).unwrap();
        assert!(matches!(
            SecretDir::new(tmp.path()).read(),
            Err(ReadError::InvalidValue { key, .. }) if key == "password"
        ));
        std::fs::write(tmp.path().join("password"), vec![b'a'; 70 * 1024]).unwrap();
        assert!(matches!(
            SecretDir::new(tmp.path()).read(),
            Err(ReadError::InvalidValue { key, .. }) if key == "password"
        ));
    }

    #[test]
    fn a_missing_directory_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nope");
        assert!(matches!(
            SecretDir::new(&missing).read(),
            Err(ReadError::Io { path, .. }) if path == missing
        ));
    }

    #[test]
    fn kubelet_layout_is_read_from_the_current_version() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        kubelet.publish(&sample_files("app_a", "first")).unwrap();
        let link = std::fs::read_link(tmp.path().join("username")).unwrap();
        assert_eq!(link, Path::new("..data/username"));
        let first = SecretDir::new(tmp.path()).read().unwrap();
        assert_eq!(first.username, "app_a");

        kubelet.publish(&sample_files("app_b", "second")).unwrap();
        let second = SecretDir::new(tmp.path()).read().unwrap();
        assert_eq!(second.username, "app_b");
        assert_eq!(second.password.expose_secret(), "second");
        assert_ne!(first, second);
        // Only the current version directory is left.
        let versions: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("..2"))
            .collect();
        assert_eq!(versions.len(), 1, "{versions:?}");
    }

    #[test]
    fn reads_racing_with_swaps_are_never_mixed() {
        let tmp = tempfile::tempdir().unwrap();
        let mut kubelet = KubeletDir::new(tmp.path()).unwrap();
        let version = |n: usize| {
            let mut files = sample_files(&format!("user_{n}"), &format!("password_{n}"));
            for (key, value) in &mut files {
                if key == "database" {
                    *value = format!("db_for_user_{n}");
                }
            }
            files
        };
        kubelet.publish(&version(0)).unwrap();
        let dir = SecretDir::new(tmp.path());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match dir.read() {
                        Ok(creds) => {
                            let n = creds.username.trim_start_matches("user_");
                            assert_eq!(creds.password.expose_secret(), format!("password_{n}"));
                            assert_eq!(creds.database, format!("db_for_user_{n}"));
                            reads += 1;
                        }
                        // Five swaps during one read: allowed, never a mixed result.
                        Err(ReadError::Unstable { .. }) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                reads
            })
        };
        for n in 1..300 {
            kubelet.publish(&version(n)).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
    }
}
