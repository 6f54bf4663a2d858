//! Restores in terms every provider shares: which backup goes back, from
//! which storage, to which point in time, and what an engine's restore
//! resource says in our vocabulary.
//!
//! Two ways in, one input:
//! - into a running cluster (OpsRequest `Restore`): the provider builds its
//!   engine operator's restore resource ([`crate::EngineProvider::build_restore`]);
//! - into a new cluster (`spec.dataSource`): CloudNativePG restores only by
//!   bootstrapping, so its provider renders the input into the Cluster
//!   itself ([`crate::BuildInput::data_source`]); the Percona operators
//!   restore into a running cluster, so the operator builds their restore
//!   resource once the new cluster is up.

pub use dbaas_api::cluster::RestorePhase;
use dbaas_api::cluster::{PitrTarget, PitrType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::backup::StorageInput;
use crate::provider::BuildError;

/// Label on an engine restore resource and on the objects a restore makes:
/// the OpsRequest or DatabaseCluster it restores for.
pub const LABEL_RESTORE: &str = "dbaas.io/restore";

/// A backup to restore, as the operator found it.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreInput {
    pub backup: RestoreBackup,
    /// The storage the backup is in. `None` only when the operator did not
    /// need to look it up (a CloudNativePG bootstrap from a Backup object
    /// that names its own store); a provider that needs it refuses without.
    pub storage: Option<StorageInput>,
    /// Restore to a point in time instead of the end of the backup.
    pub pitr: Option<PitrTarget>,
}

/// Which backup.
#[derive(Clone, Debug, PartialEq)]
pub enum RestoreBackup {
    /// One of our DatabaseBackups (Succeeded). The engine's backup resource
    /// has the same name in the same namespace while the DatabaseBackup
    /// exists.
    Taken {
        /// The DatabaseBackup's name (= the engine backup resource's name).
        backup_name: String,
        /// The cluster it was taken of (in the backup's namespace), whose
        /// path in the storage holds the backup and, for PITR, the logs.
        source_cluster: String,
        /// Its namespace.
        source_namespace: String,
        /// Where the engine wrote it (`status.destination`), when known.
        destination: Option<String>,
    },
    /// A backup at a path in the storage (a "provided backup file"): the
    /// path as the user gave it, relative to the storage's bucket.
    Path(String),
}

impl RestoreInput {
    /// The storage, which every restore from an object store needs.
    pub fn required_storage(&self) -> Result<&StorageInput, BuildError> {
        self.storage
            .as_ref()
            .ok_or_else(|| BuildError::InvalidBackup {
                why: "the restore's BackupStorage was not looked up".to_owned(),
            })
    }

    /// The point in time to stop at, for `pitr.type: date`.
    pub fn pitr_date(&self) -> Option<&Time> {
        self.pitr
            .as_ref()
            .filter(|p| p.type_ == PitrType::Date)
            .and_then(|p| p.date.as_ref())
    }
}

/// What an engine's restore resource says about one restore.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreObservation {
    pub phase: RestorePhase,
    pub completed_at: Option<Time>,
    /// The engine's own words (its state, or its error).
    pub message: Option<String>,
}

impl RestoreObservation {
    /// The engine has not reported on the restore yet.
    pub fn pending() -> Self {
        Self {
            phase: RestorePhase::Pending,
            completed_at: None,
            message: None,
        }
    }
}

/// A PITR date in the `YYYY-MM-DD hh:mm:ss` (UTC) form both Percona
/// operators take.
pub fn percona_date(date: &Time) -> String {
    date.0.strftime("%Y-%m-%d %H:%M:%S").to_string()
}
