//! Test support (feature `test-util`): a directory updated the way kubelet
//! updates a mounted Secret, so apps can test their reload path too.
//!
//! Kubelet's atomic writer: write the new files into a fresh
//! `..<timestamp>.<suffix>` directory, point a temporary symlink at it,
//! rename that symlink over `..data` (the one atomic step), make sure every
//! visible file is a symlink `key -> ..data/key`, remove visible symlinks of
//! keys that went away, and delete the previous version directory.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::credentials::KUBELET_DATA_LINK;

const DATA_TMP_LINK: &str = "..data_tmp";

/// A directory written like a kubelet Secret volume.
#[derive(Debug)]
pub struct KubeletDir {
    dir: PathBuf,
    visible_keys: BTreeSet<String>,
    versions_written: u64,
}

impl KubeletDir {
    /// Uses (and creates if needed) `dir`; nothing is published yet.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<KubeletDir> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(KubeletDir {
            dir,
            visible_keys: BTreeSet::new(),
            versions_written: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Replaces the whole content with `files` in one atomic `..data` swap.
    pub fn publish<K: AsRef<str>, V: AsRef<str>>(&mut self, files: &[(K, V)]) -> io::Result<()> {
        for (key, _) in files {
            let key = key.as_ref();
            if key.is_empty() || key.contains('/') || key.starts_with("..") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{key:?} is not a valid Secret key"),
                ));
            }
        }
        let previous_version = std::fs::read_link(self.dir.join(KUBELET_DATA_LINK)).ok();

        let version = self.create_version_dir()?;
        for (key, value) in files {
            std::fs::write(self.dir.join(&version).join(key.as_ref()), value.as_ref())?;
        }

        let tmp_link = self.dir.join(DATA_TMP_LINK);
        match std::fs::remove_file(&tmp_link) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        symlink(&version, &tmp_link)?;
        std::fs::rename(&tmp_link, self.dir.join(KUBELET_DATA_LINK))?;

        let new_keys: BTreeSet<String> = files.iter().map(|(k, _)| k.as_ref().to_owned()).collect();
        for key in &new_keys {
            let visible = self.dir.join(key);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new(KUBELET_DATA_LINK).join(key), &visible)?;
            }
        }
        for gone in self.visible_keys.difference(&new_keys) {
            std::fs::remove_file(self.dir.join(gone))?;
        }
        self.visible_keys = new_keys;

        if let Some(previous) = previous_version {
            std::fs::remove_dir_all(self.dir.join(previous))?;
        }
        Ok(())
    }

    /// `..2026_01_31_10_00_00.<nanos><n>`, like kubelet's `MkdirTemp` pattern.
    fn create_version_dir(&mut self) -> io::Result<PathBuf> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = utc_timestamp(now.as_secs());
        loop {
            self.versions_written += 1;
            let name = format!(
                "..{stamp}.{:09}{}",
                now.subsec_nanos(),
                self.versions_written
            );
            match std::fs::create_dir(self.dir.join(&name)) {
                Ok(()) => return Ok(PathBuf::from(name)),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

/// `YYYY_MM_DD_HH_MM_SS` in UTC (civil-from-days, proleptic Gregorian).
fn utc_timestamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let seconds_of_day = unix_seconds % 86_400;
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}",
        seconds_of_day / 3_600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60
    )
}

/// The keys the operator writes for a PostgreSQL claim (DSN under `dsn`).
pub fn secret_files(
    username: &str,
    password: &str,
    host: &str,
    port: u16,
    database: &str,
) -> Vec<(String, String)> {
    let dsn = format!(
        "host={} port={port} dbname={} user={} password={} sslmode=disable",
        libpq_value(host),
        libpq_value(database),
        libpq_value(username),
        libpq_value(password)
    );
    let uri = format!(
        "postgresql://{}:{}@{host}:{port}/{}?sslmode=disable",
        percent_encode(username),
        percent_encode(password),
        percent_encode(database)
    );
    [
        ("username", username.to_owned()),
        ("password", password.to_owned()),
        ("host", host.to_owned()),
        ("port", port.to_string()),
        ("database", database.to_owned()),
        ("sslmode", "disable".to_owned()),
        ("uri", uri),
        ("dsn", dsn),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect()
}

/// [`secret_files`] for an unreachable example server.
pub fn sample_files(username: &str, password: &str) -> Vec<(String, String)> {
    secret_files(username, password, "db.invalid", 5432, "db")
}

fn libpq_value(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970_01_01_00_00_00");
        assert_eq!(utc_timestamp(951_782_400), "2000_02_29_00_00_00");
        assert_eq!(utc_timestamp(1_769_853_845), "2026_01_31_10_04_05");
    }

    #[test]
    fn publish_swaps_versions_and_removes_keys_that_went_away() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = KubeletDir::new(tmp.path()).unwrap();
        dir.publish(&[("a", "1"), ("b", "2")]).unwrap();
        let first = std::fs::read_link(tmp.path().join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with("..20"), "{first:?}");
        assert_eq!(std::fs::read_to_string(tmp.path().join("a")).unwrap(), "1");

        dir.publish(&[("a", "3")]).unwrap();
        let second = std::fs::read_link(tmp.path().join("..data")).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(tmp.path().join("a")).unwrap(), "3");
        assert!(std::fs::symlink_metadata(tmp.path().join("b")).is_err());
        assert!(!tmp.path().join(&first).exists());
        assert!(!tmp.path().join("..data_tmp").exists());
        assert!(dir.publish(&[("../x", "1")]).is_err());
    }

    #[test]
    fn dsn_and_uri_are_escaped() {
        let files = secret_files("u", "p'a\\ss w@rd", "h", 5432, "d");
        let get = |key: &str| files.iter().find(|(k, _)| k == key).unwrap().1.clone();
        assert_eq!(
            get("dsn"),
            r"host='h' port=5432 dbname='d' user='u' password='p\'a\\ss w@rd' sslmode=disable"
        );
        assert_eq!(
            get("uri"),
            "postgresql://u:p%27a%5Css%20w%40rd@h:5432/d?sslmode=disable"
        );
    }
}
