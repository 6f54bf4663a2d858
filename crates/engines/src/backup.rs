//! Backups in terms every provider shares: the storages a cluster's backup
//! spec names (as the operator found them), which schedules run, our cron
//! grammar, where in a storage a cluster's backups go, and what an engine's
//! backup resource says in our vocabulary. Each provider renders these into
//! its engine operator's own fields and resources.

use dbaas_api::backup::BackupPhase;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{BackupSpec, DatabaseClusterSpec};
use dbaas_api::{BackupStorageSpec, DatabaseBackup, DatabaseCluster};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use crate::provider::BuildError;

/// Keys of the credentials Secret of an S3-compatible storage (the names
/// the Percona operators read; CloudNativePG is told them).
pub const S3_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const S3_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Keys of the credentials Secret of an Azure Blob storage.
pub const AZURE_STORAGE_ACCOUNT_NAME: &str = "AZURE_STORAGE_ACCOUNT_NAME";
pub const AZURE_STORAGE_ACCOUNT_KEY: &str = "AZURE_STORAGE_ACCOUNT_KEY";
/// Key of the credentials Secret of a GCS storage (a service account JSON).
pub const GCS_CREDENTIALS: &str = "GCS_CREDENTIALS";

/// The credential keys a storage type needs in its Secret.
pub fn credential_keys(storage_type: BackupStorageType) -> &'static [&'static str] {
    match storage_type {
        BackupStorageType::S3 => &[S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY],
        BackupStorageType::Azure => &[AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY],
        BackupStorageType::Gcs => &[GCS_CREDENTIALS],
        BackupStorageType::Filesystem => &[],
    }
}

/// A BackupStorage a cluster's backups use, as the operator found it.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageInput {
    pub name: String,
    pub spec: BackupStorageSpec,
    /// The Secret in the cluster's namespace holding the credentials under
    /// the keys of [`credential_keys`]; `None` for filesystem storages.
    pub credentials_secret: Option<String>,
}

impl StorageInput {
    /// The credentials Secret, which object storages cannot do without.
    pub fn required_credentials(&self) -> Result<String, BuildError> {
        self.credentials_secret
            .clone()
            .ok_or_else(|| BuildError::InvalidBackup {
                why: format!(
                    "BackupStorage {:?} has no credentials Secret in the cluster's namespace",
                    self.name
                ),
            })
    }
}

/// One backup schedule to run, from the short form or a named schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The schedule's name (`default` for the short form).
    pub name: String,
    /// Five-field cron, as our API takes it.
    pub cron: String,
    pub retention_copies: Option<i32>,
    pub storage_name: String,
}

/// The name the short-form schedule (`backup.schedule`) runs under.
pub const DEFAULT_SCHEDULE: &str = "default";

/// The schedules that run: none unless `backup.enabled`; the short form
/// (when it names a storage) and every enabled named schedule.
pub fn schedules(spec: &DatabaseClusterSpec) -> Vec<Schedule> {
    let Some(backup) = spec.backup.as_ref().filter(|b| b.enabled) else {
        return Vec::new();
    };
    let short = backup
        .schedule
        .as_ref()
        .zip(backup.storage_name.as_ref())
        .map(|(cron, storage)| Schedule {
            name: DEFAULT_SCHEDULE.to_owned(),
            cron: cron.clone(),
            retention_copies: backup.retention_copies,
            storage_name: storage.clone(),
        });
    short
        .into_iter()
        .chain(
            backup
                .schedules
                .iter()
                .filter(|s| s.enabled)
                .map(|s| Schedule {
                    name: s.name.clone(),
                    cron: s.schedule.clone(),
                    retention_copies: s.retention_copies,
                    storage_name: s.storage_name.clone(),
                }),
        )
        .collect()
}

/// The storage PITR archives to, when PITR is on: its own, else the
/// short-form schedule's, else the first schedule's.
pub fn pitr_storage(backup: &BackupSpec) -> Option<&str> {
    let pitr = backup.pitr.as_ref().filter(|p| p.enabled)?;
    pitr.storage_name
        .as_deref()
        .or(backup.storage_name.as_deref())
        .or(backup.schedules.first().map(|s| s.storage_name.as_str()))
}

/// Every storage name the cluster's backup spec refers to (sorted, once
/// each): the ones the operator looks up and the engine resource declares.
pub fn referenced_storages(spec: &DatabaseClusterSpec) -> Vec<String> {
    let Some(backup) = spec.backup.as_ref() else {
        return Vec::new();
    };
    let mut names: Vec<String> = backup
        .storage_name
        .iter()
        .cloned()
        .chain(backup.schedules.iter().map(|s| s.storage_name.clone()))
        .chain(backup.pitr.as_ref().and_then(|p| p.storage_name.clone()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The storage an on-demand backup of `cluster` writes to when the backup
/// names none: the cluster's `backup.storageName`, else its only storage.
pub fn default_storage(cluster: &DatabaseCluster) -> Option<String> {
    let backup = cluster.spec.backup.as_ref()?;
    if let Some(name) = &backup.storage_name {
        return Some(name.clone());
    }
    match referenced_storages(&cluster.spec).as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// The storage `backup` writes to.
pub fn storage_of(backup: &DatabaseBackup, cluster: &DatabaseCluster) -> Option<String> {
    backup
        .spec
        .storage_name
        .clone()
        .or_else(|| default_storage(cluster))
}

/// Checks a five-field cron expression (minute hour day-of-month month
/// day-of-week) as our API takes it for every engine.
pub fn check_cron(cron: &str) -> Result<(), BuildError> {
    let fields = cron.split_whitespace().count();
    if fields != 5 {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "backup schedule {cron:?} has {fields} fields; write five: minute hour day-of-month month day-of-week"
            ),
        });
    }
    <croner::Cron as std::str::FromStr>::from_str(cron)
        .map(|_| ())
        .map_err(|err| BuildError::InvalidBackup {
            why: format!("backup schedule {cron:?} is not a valid cron expression: {err}"),
        })
}

/// Our five-field cron in CloudNativePG's six-field grammar (seconds first).
pub fn cron_with_seconds(cron: &str) -> String {
    format!("0 {}", cron.trim())
}

/// The path inside a storage under which a cluster's backups go:
/// `[prefix/]namespace/cluster`, so clusters sharing a bucket never mix.
pub fn cluster_path(storage: &BackupStorageSpec, cluster: &DatabaseCluster) -> String {
    cluster_path_of(
        storage,
        &cluster.namespace().unwrap_or_default(),
        &cluster.name_any(),
    )
}

/// [`cluster_path`] of the cluster `name` in `namespace`, which may be gone
/// (a restore reads the backups of a deleted cluster).
pub fn cluster_path_of(storage: &BackupStorageSpec, namespace: &str, name: &str) -> String {
    match storage.prefix.as_deref().map(|p| p.trim_matches('/')) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{namespace}/{name}"),
        _ => format!("{namespace}/{name}"),
    }
}

/// What an engine's backup resource says about one backup.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupObservation {
    pub phase: BackupPhase,
    pub started_at: Option<Time>,
    pub completed_at: Option<Time>,
    /// Where the engine wrote it.
    pub destination: Option<String>,
    /// The engine's own words (its state, or its error).
    pub message: Option<String>,
}

impl BackupObservation {
    /// The engine has not reported on the backup yet.
    pub fn pending() -> Self {
        Self {
            phase: BackupPhase::Pending,
            started_at: None,
            completed_at: None,
            destination: None,
            message: None,
        }
    }
}

/// Which cluster and schedule an engine's backup resource was taken for,
/// when the engine operator's own schedule created it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledBackupRef {
    /// The engine cluster's name (ours: the DatabaseCluster's).
    pub cluster: String,
    /// The schedule's name in our spec (`default` for the short form).
    pub schedule: String,
    /// The storage it writes to, when the backup resource names it;
    /// `None` for engines with one store per cluster (CloudNativePG).
    pub storage: Option<String>,
}

/// A label's value on `object`, when set and not empty.
pub(crate) fn label<'a>(object: &'a kube::core::DynamicObject, key: &str) -> Option<&'a str> {
    object
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(key))
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// A string field under `spec` of `object`, when set and not empty.
pub(crate) fn spec_text<'a>(object: &'a kube::core::DynamicObject, field: &str) -> Option<&'a str> {
    object
        .data
        .get("spec")
        .and_then(|spec| spec.get(field))
        .and_then(serde_json::Value::as_str)
        .filter(|value| !value.is_empty())
}

/// Reads an RFC 3339 timestamp an engine wrote; `None` when it is not one.
pub fn parse_time(text: Option<&str>) -> Option<Time> {
    text.and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(Time)
}
