//! `DatabaseBackup`: one backup of a DatabaseCluster, whichever engine took
//! it. Created on demand (by a user or an OpsRequest of type Backup), or by
//! the operator as the mirror of a backup an engine's own schedule took;
//! listed with its state, time, storage and location.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Label on an engine's backup resource: the DatabaseBackup it takes.
pub const LABEL_BACKUP: &str = "dbaas.io/backup";
/// Label on a DatabaseBackup that mirrors a scheduled backup: the schedule
/// (of the cluster's backup spec) that took it. The cluster is under
/// [`crate::common::LABEL_CLUSTER`].
pub const LABEL_SCHEDULE: &str = "dbaas.io/schedule";

/// One backup of a DatabaseCluster into a BackupStorage. The spec is
/// immutable: a backup is taken once.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseBackup",
    namespaced,
    status = "DatabaseBackupStatus",
    shortname = "dbbak",
    category = "dbaas",
    doc = "One backup of a DatabaseCluster into a BackupStorage.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterName"),
    printcolumn(name = "Storage", type_ = "string", json_path = ".status.storageName"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Completed", type_ = "date", json_path = ".status.completedAt"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self == oldSelf").message("a DatabaseBackup's spec is immutable: create a new DatabaseBackup").reason(Reason::FieldValueForbidden)
)]
pub struct DatabaseBackupSpec {
    /// The DatabaseCluster (same namespace) to back up.
    #[schemars(length(min = 1, max = 253))]
    pub cluster_name: String,
    /// The BackupStorage (same namespace) to write to. When unset: the
    /// cluster's `backup.storageName`, else the storage of its only schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_name: Option<String>,
    /// Set by the operator on the mirror of a backup that the cluster's
    /// schedule of this name took (the engine's backup resource of the same
    /// name): such a DatabaseBackup is only read, never taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub schedule_name: Option<String>,
}

/// Observed state of a DatabaseBackup.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseBackupStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<BackupPhase>,
    /// The BackupStorage written to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
    /// The namespace of that BackupStorage (the cluster's
    /// `spec.backup.storageNamespace`); this namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_namespace: Option<String>,
    /// Where the engine wrote the backup (URL or path in the storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The engine operator's backup resource (its kind and name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Why the backup failed or waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Where a backup is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum BackupPhase {
    /// Not started by the engine yet (or waiting for the cluster/storage).
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl BackupPhase {
    /// Whether the backup will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}
