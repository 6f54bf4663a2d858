//! Backups of a MariaDB: one `k8s.mariadb.com/v1alpha1` `Backup` (a logical
//! dump, run as a Job by mariadb-operator) per DatabaseBackup, into S3
//! under `<cluster path>/<backup name>` (each backup its own prefix, so a
//! restore finds exactly that dump), or onto the PersistentVolumeClaim of a
//! filesystem storage (one directory for all: a restore from it replays the
//! newest dump there).

use dbaas_api::backup::BackupPhase;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::DatabaseClusterSpec;
use dbaas_api::{BackupStorageSpec, DatabaseBackup, DatabaseCluster, EngineType};
use dbaas_engine_crds::mariadb_backup::{
    Backup, BackupMariaDbRef, BackupSpec, BackupStorage, BackupStorageS3,
    BackupStorageS3AccessKeyIdSecretKeyRef, BackupStorageS3SecretAccessKeySecretKeyRef,
    BackupStorageS3Tls, BackupStorageVolume, BackupStorageVolumePersistentVolumeClaim,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::core::DynamicObject;

use crate::backup::{
    BackupObservation, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, StorageInput, cluster_path,
};
use crate::provider::{BuildError, Unapplied};
use crate::shared::backup_metadata;

/// The condition mariadb-operator keeps on its Backup and Restore Jobs.
pub const CONDITION_COMPLETE: &str = "Complete";
/// Its reasons (`api/v1alpha1/condition_types.go`).
pub mod job_reason {
    pub const COMPLETE: &str = "JobComplete";
    pub const FAILED: &str = "JobFailed";
    pub const RUNNING: &str = "JobRunning";
    pub const SUSPENDED: &str = "JobSuspended";
    pub const NOT_COMPLETE: &str = "JobNotComplete";
}

/// What of a cluster's backup spec mariadb-operator cannot carry: the
/// schedules and PITR. On-demand backups and restores work.
pub(crate) fn check_cluster_backup(
    spec: &DatabaseClusterSpec,
    unapplied: &mut Vec<Unapplied>,
) -> Result<(), BuildError> {
    let Some(backup) = spec.backup.as_ref().filter(|b| b.enabled) else {
        return Ok(());
    };
    if backup.schedule.is_some() || backup.schedules.iter().any(|s| s.enabled) {
        unapplied.push(Unapplied {
            field: "backup.schedules",
            why: "scheduled backups of mariadb clusters are not applied yet (mariadb-operator's scheduled Backup runs Jobs that leave no per-backup record to list); take on-demand DatabaseBackups",
        });
    }
    if backup.pitr.as_ref().is_some_and(|p| p.enabled) {
        unapplied.push(Unapplied {
            field: "backup.pitr",
            why: "point-in-time recovery of mariadb clusters is not applied yet",
        });
    }
    Ok(())
}

/// The S3 host (`endpoint` takes no scheme) and whether to speak TLS.
pub(crate) fn s3_endpoint(storage: &BackupStorageSpec) -> (String, bool) {
    match storage.endpoint_url.as_deref() {
        Some(url) => {
            let (tls, rest) = match url.split_once("://") {
                Some((scheme, rest)) => (scheme.eq_ignore_ascii_case("https"), rest),
                None => (true, url),
            };
            (rest.trim_end_matches('/').to_owned(), tls)
        }
        None => match storage.region.as_deref() {
            Some(region) => (format!("s3.{region}.amazonaws.com"), true),
            None => ("s3.amazonaws.com".to_owned(), true),
        },
    }
}

/// The S3 location `prefix` of `storage` in mariadb-operator's terms (a
/// Restore reads the same block).
pub(crate) fn s3_of(storage: &StorageInput, prefix: String) -> Result<BackupStorageS3, BuildError> {
    let credentials = storage.required_credentials()?;
    let bucket = storage
        .spec
        .bucket
        .clone()
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!("BackupStorage {:?} names no bucket", storage.name),
        })?;
    let (endpoint, tls) = s3_endpoint(&storage.spec);
    Ok(BackupStorageS3 {
        bucket,
        endpoint,
        prefix: Some(prefix),
        region: storage.spec.region.clone(),
        access_key_id_secret_key_ref: Some(BackupStorageS3AccessKeyIdSecretKeyRef {
            name: Some(credentials.clone()),
            key: S3_ACCESS_KEY_ID.to_owned(),
        }),
        secret_access_key_secret_key_ref: Some(BackupStorageS3SecretAccessKeySecretKeyRef {
            name: Some(credentials),
            key: S3_SECRET_ACCESS_KEY.to_owned(),
        }),
        tls: Some(BackupStorageS3Tls {
            enabled: Some(tls),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Where a backup goes in mariadb-operator's terms.
pub(crate) fn storage_of(
    storage: &StorageInput,
    prefix: String,
) -> Result<BackupStorage, BuildError> {
    match storage.spec.type_ {
        BackupStorageType::S3 => Ok(BackupStorage {
            s3: Some(s3_of(storage, prefix)?),
            ..Default::default()
        }),
        BackupStorageType::Filesystem => {
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
            Ok(BackupStorage {
                volume: Some(BackupStorageVolume {
                    persistent_volume_claim: Some(BackupStorageVolumePersistentVolumeClaim {
                        claim_name: claim,
                        read_only: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
        BackupStorageType::Gcs | BackupStorageType::Azure => Err(BuildError::InvalidBackup {
            why: format!(
                "mariadb-operator writes backups to S3 or a PersistentVolumeClaim only; BackupStorage {:?} is {}",
                storage.name,
                serde_json::to_value(storage.spec.type_)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        }),
    }
}

/// The Backup for `backup` of `cluster` into `storage`. The operator sets
/// its owner.
pub fn build_backup(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<Backup, BuildError> {
    let prefix = format!(
        "{}/{}",
        cluster_path(&storage.spec, cluster),
        backup.metadata.name.as_deref().unwrap_or_default()
    );
    let storage_spec = storage_of(storage, prefix)?;
    Ok(Backup {
        metadata: backup_metadata(backup, cluster, EngineType::Mariadb),
        spec: BackupSpec {
            maria_db_ref: BackupMariaDbRef {
                name: cluster.metadata.name.clone(),
                ..Default::default()
            },
            storage: storage_spec,
            ..Default::default()
        },
        status: None,
    })
}

/// The Complete condition of a Backup or Restore in our phases. A failed
/// Job is Complete=True too (`pkg/condition/complete.go`): the reason
/// decides, before the status.
pub(crate) fn job_phase(complete: Option<&Condition>) -> BackupPhase {
    match complete {
        None => BackupPhase::Pending,
        Some(c) if c.reason == job_reason::FAILED => BackupPhase::Failed,
        Some(c) if c.reason == job_reason::COMPLETE && c.status == "True" => BackupPhase::Succeeded,
        Some(c) if c.reason == job_reason::RUNNING => BackupPhase::Running,
        // Not started yet, suspended, or a Job that could not be made yet
        // (the message says why).
        Some(_) => BackupPhase::Pending,
    }
}

/// The Complete condition among `conditions`.
pub(crate) fn complete_condition(object: &DynamicObject) -> Option<Condition> {
    let conditions = object.data.pointer("/status/conditions")?.as_array()?;
    conditions
        .iter()
        .filter_map(|c| serde_json::from_value::<Condition>(c.clone()).ok())
        .find(|c| c.type_ == CONDITION_COMPLETE)
}

/// Reads a Backup's status in our vocabulary.
pub fn observe_backup(engine_backup: &DynamicObject) -> BackupObservation {
    let complete = complete_condition(engine_backup);
    let phase = job_phase(complete.as_ref());
    let destination = engine_backup
        .data
        .pointer("/spec/storage")
        .and_then(|storage| {
            if let Some(s3) = storage.get("s3") {
                let bucket = s3.get("bucket")?.as_str()?;
                let prefix = s3.get("prefix").and_then(|p| p.as_str()).unwrap_or("");
                Some(format!("s3://{bucket}/{prefix}"))
            } else {
                let claim = storage.pointer("/volume/persistentVolumeClaim/claimName")?;
                Some(format!("pvc://{}", claim.as_str()?))
            }
        });
    BackupObservation {
        phase,
        started_at: engine_backup.metadata.creation_timestamp.clone(),
        completed_at: complete
            .as_ref()
            .filter(|_| phase.is_terminal())
            .map(|c| c.last_transition_time.clone()),
        destination,
        message: complete.map(|c| c.message).filter(|m| !m.is_empty()),
    }
}
