//! Restores of a MariaDB: one `k8s.mariadb.com/v1alpha1` `Restore` that
//! replays a logical dump into a running MariaDB (an OpsRequest `Restore`,
//! or a new cluster's `spec.dataSource` once it is up).
//!
//! The Restore always names where the dump is (`s3` or `volume`), never the
//! `Backup` object: that works for a backup of a cluster in another
//! namespace and after the Backup is gone.

use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::{DatabaseCluster, EngineType};
use dbaas_engine_crds::mariadb_restore::{
    Restore, RestoreMariaDbRef, RestoreSpec, RestoreVolume, RestoreVolumePersistentVolumeClaim,
};
use kube::core::DynamicObject;

use super::backup::{complete_condition, job_phase, s3_of};
use crate::backup::cluster_path_of;
use crate::convert::retype;
use crate::provider::BuildError;
use crate::restore::{RestoreBackup, RestoreInput, RestoreObservation, RestorePhase};
use crate::shared::restore_metadata;

/// The Restore called `name` that replays `source` into `cluster`.
pub fn build_restore(
    name: &str,
    cluster: &DatabaseCluster,
    source: &RestoreInput,
) -> Result<Restore, BuildError> {
    if source.pitr.is_some() {
        return Err(BuildError::Unsupported {
            engine: "mariadb",
            feature: "point-in-time restore",
            why: "mariadb clusters restore whole logical backups only; drop pitr to restore the backup as taken",
        });
    }
    let storage = source.required_storage()?;
    let mut spec = RestoreSpec {
        maria_db_ref: RestoreMariaDbRef {
            name: cluster.metadata.name.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    match storage.spec.type_ {
        BackupStorageType::S3 => {
            let prefix = match &source.backup {
                // Each backup has its own prefix (see `super::backup`).
                RestoreBackup::Taken {
                    backup_name,
                    source_cluster,
                    source_namespace,
                    ..
                } => format!(
                    "{}/{backup_name}",
                    cluster_path_of(&storage.spec, source_namespace, source_cluster)
                ),
                RestoreBackup::Path(path) => path.trim_matches('/').to_owned(),
            };
            // The same block as the Backup's (kopium makes a type per CRD).
            spec.s3 = Some(retype("restore.s3", &s3_of(storage, prefix)?)?);
        }
        BackupStorageType::Filesystem => {
            if let RestoreBackup::Path(_) = source.backup {
                return Err(BuildError::Unsupported {
                    engine: "mariadb",
                    feature: "a backup path on a filesystem storage",
                    why: "mariadb-operator replays the newest dump on the volume and cannot be pointed at one file; restore a DatabaseBackup instead",
                });
            }
            let claim = storage
                .spec
                .persistent_volume_claim
                .clone()
                .ok_or_else(|| BuildError::InvalidBackup {
                    why: format!(
                        "BackupStorage {:?} names no persistentVolumeClaim",
                        storage.name
                    ),
                })?;
            spec.volume = Some(RestoreVolume {
                persistent_volume_claim: Some(RestoreVolumePersistentVolumeClaim {
                    claim_name: claim,
                    // Writable: the restore Job records which dump it picked
                    // beside the dumps.
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        BackupStorageType::Gcs | BackupStorageType::Azure => {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "mariadb-operator reads backups from S3 or a PersistentVolumeClaim only; BackupStorage {:?} is neither",
                    storage.name
                ),
            });
        }
    }
    Ok(Restore {
        metadata: restore_metadata(name, cluster, EngineType::Mariadb),
        spec,
        status: None,
    })
}

/// Reads a Restore's status in our vocabulary.
pub fn observe_restore(engine_restore: &DynamicObject) -> RestoreObservation {
    let complete = complete_condition(engine_restore);
    let phase = match job_phase(complete.as_ref()) {
        dbaas_api::backup::BackupPhase::Pending => RestorePhase::Pending,
        dbaas_api::backup::BackupPhase::Running => RestorePhase::Running,
        dbaas_api::backup::BackupPhase::Succeeded => RestorePhase::Succeeded,
        dbaas_api::backup::BackupPhase::Failed => RestorePhase::Failed,
    };
    RestoreObservation {
        phase,
        completed_at: complete
            .as_ref()
            .filter(|_| phase.is_terminal())
            .map(|c| c.last_transition_time.clone()),
        message: complete.map(|c| c.message).filter(|m| !m.is_empty()),
    }
}
