//! Backups of a Percona XtraDB Cluster: the cluster's storages, schedules
//! and PITR rendered into the PerconaXtraDBCluster's `spec.backup`, and one
//! on-demand backup as a `pxc.percona.com/v1` `PerconaXtraDBClusterBackup`.

use std::collections::BTreeMap;

use dbaas_api::backup::BackupPhase;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType};
use dbaas_engine_crds::pxc_backup::{
    PerconaXtraDbClusterBackup as PxcBackupResource,
    PerconaXtraDbClusterBackupSpec as PxcBackupResourceSpec,
};
use dbaas_engine_crds::pxc_cluster::{
    PerconaXtraDbClusterBackup, PerconaXtraDbClusterBackupPitr, PerconaXtraDbClusterBackupSchedule,
    PerconaXtraDbClusterBackupScheduleRetention, PerconaXtraDbClusterBackupScheduleRetentionType,
    PerconaXtraDbClusterBackupStorages, PerconaXtraDbClusterBackupStoragesAzure,
    PerconaXtraDbClusterBackupStoragesS3,
};
use kube::core::DynamicObject;
use serde_json::Value;

use crate::backup::{
    BackupObservation, StorageInput, check_cron, cluster_path, parse_time, pitr_storage,
    referenced_storages, schedules,
};
use crate::catalog::ResolvedVersion;
use crate::provider::{BuildError, BuildInput, Unapplied};
use crate::shared::backup_metadata;

/// XtraBackup image for PXC 8.4, certified with operator 1.20.0 (its
/// release notes, "Percona certified images"). The backup image must match
/// the server's major version, and with the version service off
/// (`upgradeOptions.apply: disabled`) nobody else fills it in.
pub const BACKUP_IMAGE_84: &str = "percona/percona-xtrabackup:8.4.0-5.1";
/// XtraBackup image for PXC 8.0, certified with operator 1.20.0.
pub const BACKUP_IMAGE_80: &str = "percona/percona-xtrabackup:8.0.35-35.1";
/// XtraBackup image for PXC 5.7 (only reachable through a policy's extra
/// versions), certified with operator 1.20.0.
pub const BACKUP_IMAGE_57: &str = "percona/percona-xtrabackup:2.4.29";
/// Seconds between binlog uploads for PITR: Percona's documented example
/// value (`deploy/cr.yaml`, "Store binary logs for point-in-time recovery").
pub const PITR_UPLOAD_INTERVAL_SECONDS: f64 = 60.0;
/// Folder under the cluster's path in the PITR storage that holds the
/// binlogs: Percona asks for a folder with nothing but this cluster's
/// binlogs in it, so they never sit among the full backups.
pub const BINLOG_FOLDER: &str = "binlogs";

/// Percona's backup states (`PXCBackupState` in
/// `pkg/apis/pxc/v1/pxc_backup_types.go`); a new backup has none (`""`).
pub mod backup_state {
    pub const SUSPENDED: &str = "Suspended";
    pub const STARTING: &str = "Starting";
    pub const RUNNING: &str = "Running";
    pub const FAILED: &str = "Failed";
    pub const SUCCEEDED: &str = "Succeeded";
}

/// The key in `spec.backup.storages` of the binlog storage PITR writes to:
/// the PITR BackupStorage's name with this suffix (a separate entry, so the
/// binlogs get their own folder while full backups keep the storage's).
pub fn binlog_storage_key(storage_name: &str) -> String {
    format!("{storage_name}-{BINLOG_FOLDER}")
}

/// The XtraBackup image for a PXC version: Percona's image for the same
/// major version (XtraBackup cannot back up a newer major than its own).
pub fn backup_image(version: &ResolvedVersion) -> Result<&'static str, BuildError> {
    let tag = version.image.rsplit_once(':').map(|(_, tag)| tag);
    let major_of = |text: &str| match text.get(..4) {
        Some("8.4.") => Some(BACKUP_IMAGE_84),
        Some("8.0.") => Some(BACKUP_IMAGE_80),
        Some("5.7.") => Some(BACKUP_IMAGE_57),
        _ => None,
    };
    major_of(&version.version)
        .or_else(|| tag.and_then(major_of))
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!(
                "no Percona XtraBackup image is known for PXC version {:?} (8.4, 8.0 and 5.7 have one); backups need the XtraBackup of the server's major version",
                version.version
            ),
        })
}

/// `spec.backup` for `cluster`: every storage its backup spec names (also
/// with `enabled: false`, since on-demand backups need them), the schedules
/// that run, and PITR. `None` when it names no storage. What cannot be
/// applied while the rest still works is pushed to `unapplied`.
pub(super) fn render(
    cluster: &DatabaseCluster,
    version: &ResolvedVersion,
    input: &BuildInput<'_>,
    unapplied: &mut Vec<Unapplied>,
) -> Result<Option<PerconaXtraDbClusterBackup>, BuildError> {
    let Some(backup) = cluster.spec.backup.as_ref() else {
        return Ok(None);
    };
    // Not applied rather than refused: the cluster itself is fine, only
    // this part of the backup spec has nowhere to write.
    if backup.enabled && backup.schedule.is_some() && backup.storage_name.is_none() {
        unapplied.push(Unapplied {
            field: "backup.schedule",
            why: "the short-form schedule names no backup.storageName, so it does not run",
        });
    }
    let pitr_enabled = backup.pitr.as_ref().is_some_and(|p| p.enabled);
    let pitr_storage_name = pitr_storage(backup);
    if pitr_enabled && pitr_storage_name.is_none() {
        unapplied.push(Unapplied {
            field: "backup.pitr",
            why: "PITR names no storage (pitr.storageName, backup.storageName or a schedule's), so binlogs are not uploaded",
        });
    }

    let names = referenced_storages(&cluster.spec);
    if names.is_empty() {
        return Ok(None);
    }
    let mut storages = BTreeMap::new();
    for name in &names {
        let storage = input.storage(name)?;
        storages.insert(name.clone(), render_storage(storage, cluster, None)?);
    }

    let mut schedule = Vec::new();
    for run in schedules(&cluster.spec) {
        check_cron(&run.cron)?;
        if schedule
            .iter()
            .any(|s: &PerconaXtraDbClusterBackupSchedule| s.name == run.name)
        {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "two backup schedules are named {:?} (the short form runs as {:?}); Percona needs unique schedule names",
                    run.name,
                    crate::backup::DEFAULT_SCHEDULE
                ),
            });
        }
        schedule.push(PerconaXtraDbClusterBackupSchedule {
            name: run.name,
            // Percona takes the same five-field cron as our API.
            schedule: run.cron,
            storage_name: run.storage_name,
            // `keep` is deprecated since operator 1.18.0 (removed after
            // 1.21); `retention` is its replacement. No count keeps all.
            keep: None,
            retention: run.retention_copies.map(|copies| {
                PerconaXtraDbClusterBackupScheduleRetention {
                    r#type: PerconaXtraDbClusterBackupScheduleRetentionType::Count,
                    count: Some(i64::from(copies)),
                    delete_from_storage: true,
                }
            }),
        });
    }

    let pitr = match pitr_storage_name {
        Some(name) => {
            let storage = input.storage(name)?;
            let key = binlog_storage_key(name);
            if storages.contains_key(&key) {
                return Err(BuildError::InvalidBackup {
                    why: format!(
                        "PITR keeps the binlogs of storage {name:?} under the storage entry {key:?}, which is also the name of a BackupStorage this cluster uses; rename one of them"
                    ),
                });
            }
            storages.insert(key.clone(), render_binlog_storage(storage, cluster)?);
            Some(PerconaXtraDbClusterBackupPitr {
                enabled: Some(true),
                storage_name: Some(key),
                time_between_uploads: Some(PITR_UPLOAD_INTERVAL_SECONDS),
                ..Default::default()
            })
        }
        None => None,
    };

    Ok(Some(PerconaXtraDbClusterBackup {
        image: Some(backup_image(version)?.to_owned()),
        storages: Some(storages),
        schedule: (!schedule.is_empty()).then_some(schedule),
        pitr,
        ..Default::default()
    }))
}

/// The binlog storage of PITR: the PITR storage with [`BINLOG_FOLDER`]
/// appended to its path. Percona uploads binlogs only to S3 or Azure, and
/// its binlog collector needs an S3 region.
fn render_binlog_storage(
    storage: &StorageInput,
    cluster: &DatabaseCluster,
) -> Result<PerconaXtraDbClusterBackupStorages, BuildError> {
    if storage.spec.type_ == BackupStorageType::S3 && storage.spec.region.is_none() {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "PITR storage {:?} has no region; Percona's binlog collector needs one for S3 (us-east-1 suits most S3-compatible services)",
                storage.name
            ),
        });
    }
    render_storage(storage, cluster, Some(BINLOG_FOLDER))
}

/// One entry of `spec.backup.storages`: the storage's bucket (S3) or
/// container (Azure) with the cluster's path in it, `[prefix/]namespace/
/// cluster`, so clusters sharing a bucket never mix; `folder` is appended.
fn render_storage(
    storage: &StorageInput,
    cluster: &DatabaseCluster,
    folder: Option<&str>,
) -> Result<PerconaXtraDbClusterBackupStorages, BuildError> {
    let spec = &storage.spec;
    check_type(storage)?;
    let bucket = spec
        .bucket
        .as_deref()
        .map(|b| b.trim_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!("BackupStorage {:?} has no bucket", storage.name),
        })?;
    let credentials_secret = storage.required_credentials()?;
    let mut path = format!("{bucket}/{}", cluster_path(spec, cluster));
    if let Some(folder) = folder {
        path = format!("{path}/{folder}");
    }
    let mut entry = PerconaXtraDbClusterBackupStorages {
        verify_tls: Some(spec.verify_tls),
        ..Default::default()
    };
    match spec.type_ {
        BackupStorageType::S3 => {
            entry.r#type = Some("s3".to_owned());
            entry.s3 = Some(PerconaXtraDbClusterBackupStoragesS3 {
                bucket: Some(path),
                credentials_secret: Some(credentials_secret),
                region: spec.region.clone(),
                endpoint_url: spec.endpoint_url.clone(),
                force_path_style: spec.force_path_style,
                ..Default::default()
            });
        }
        // Azure has no region or path style; Percona reads the account
        // name and key from the Secret under our key names.
        BackupStorageType::Azure => {
            entry.r#type = Some("azure".to_owned());
            entry.azure = Some(PerconaXtraDbClusterBackupStoragesAzure {
                container: Some(path),
                credentials_secret: Some(credentials_secret),
                endpoint_url: spec.endpoint_url.clone(),
                ..Default::default()
            });
        }
        // Refused by check_type above.
        BackupStorageType::Gcs | BackupStorageType::Filesystem => {}
    }
    Ok(entry)
}

/// Refuses the storage types Percona XtraDB Cluster cannot write to (or
/// restore from) as we describe them. Refused rather than reported: a
/// backup going anywhere else than the storage named would mislead.
pub(super) fn check_type(storage: &StorageInput) -> Result<(), BuildError> {
    match storage.spec.type_ {
        BackupStorageType::S3 | BackupStorageType::Azure => Ok(()),
        BackupStorageType::Gcs => Err(BuildError::InvalidBackup {
            why: format!(
                "BackupStorage {:?} is of type gcs, which Percona XtraDB Cluster has no storage type for; Percona documents GCS through its S3-compatible API: use a BackupStorage of type s3 with endpointURL https://storage.googleapis.com and a GCS HMAC key pair as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                storage.name
            ),
        }),
        BackupStorageType::Filesystem => Err(BuildError::InvalidBackup {
            why: format!(
                "BackupStorage {:?} is of type filesystem, but Percona XtraDB Cluster's filesystem storage takes a PVC template and creates a new PVC for every backup: it cannot write into the existing PVC {:?}; use an s3 or azure storage",
                storage.name,
                storage
                    .spec
                    .persistent_volume_claim
                    .as_deref()
                    .unwrap_or_default()
            ),
        }),
    }
}

/// The PerconaXtraDBClusterBackup that takes `backup` of `cluster` into
/// `storage`, which the cluster's backup spec must name (the PXC operator
/// only knows the storages declared in the PerconaXtraDBCluster).
pub fn build_backup(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<PxcBackupResource, BuildError> {
    check_type(storage)?;
    if !referenced_storages(&cluster.spec).contains(&storage.name) {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "DatabaseCluster {:?} does not use BackupStorage {:?}; name it in the cluster's backup spec (backup.storageName or a schedule) so the Percona operator knows it",
                cluster.metadata.name.as_deref().unwrap_or_default(),
                storage.name
            ),
        });
    }
    Ok(PxcBackupResource {
        metadata: backup_metadata(backup, cluster, EngineType::Mysql),
        spec: PxcBackupResourceSpec {
            pxc_cluster: cluster.metadata.name.clone(),
            storage_name: Some(storage.name.clone()),
            ..Default::default()
        },
        status: None,
    })
}

/// Reads a PerconaXtraDBClusterBackup's status in our vocabulary. Read as
/// JSON, field by field, so an odd field never hides the rest. Percona
/// records no start time, so `started_at` stays empty.
pub fn observe_backup(engine_backup: &DynamicObject) -> BackupObservation {
    let status = engine_backup.data.get("status");
    let text = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    };
    let state = text("state").unwrap_or_default();
    let error = text("error").map(str::to_owned).or_else(|| {
        // Older operators put the reason into a condition only.
        status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|conditions| conditions.last())
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
    });
    let (phase, message) = match state {
        "" => (BackupPhase::Pending, None),
        // Percona holds a backup while the cluster is not ready and resumes
        // it once it is (failing it after suspendedDeadlineSeconds).
        backup_state::SUSPENDED => (
            BackupPhase::Pending,
            Some("suspended by the Percona operator until the cluster is ready".to_owned()),
        ),
        // Starting: Percona has created the backup Job; from our side the
        // backup is under way.
        backup_state::STARTING | backup_state::RUNNING => {
            (BackupPhase::Running, Some(format!("Percona: {state}")))
        }
        backup_state::SUCCEEDED => (BackupPhase::Succeeded, Some(format!("Percona: {state}"))),
        backup_state::FAILED => (
            BackupPhase::Failed,
            Some(error.unwrap_or_else(|| "Percona reports the backup failed".to_owned())),
        ),
        other => (
            BackupPhase::Pending,
            Some(format!(
                "the Percona operator reports an unrecognised backup state: {other}"
            )),
        ),
    };
    BackupObservation {
        phase,
        started_at: None,
        completed_at: parse_time(text("completed")),
        destination: text("destination").map(str::to_owned),
        message,
    }
}

/// Label selector of the backups Percona's schedules create.
pub const SCHEDULED_SELECTOR: &str = crate::shared::percona_cron::SELECTOR;

/// The cluster, schedule and storage of a PerconaXtraDBClusterBackup the
/// operator's schedule created (see [`crate::shared::percona_cron`]); the cluster named
/// by the label and by `spec.pxcCluster` must agree.
pub fn scheduled_backup_of(
    engine_backup: &DynamicObject,
) -> Option<crate::backup::ScheduledBackupRef> {
    let (cluster, ancestor) =
        crate::shared::percona_cron::cron_backup(engine_backup, "pxcCluster")?;
    // The ancestor is the schedule's name behind the cluster's hash prefix.
    let (hash, schedule) = ancestor.split_once('-')?;
    if hash.len() != 5 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || schedule.is_empty() {
        return None;
    }
    Some(crate::backup::ScheduledBackupRef {
        cluster: cluster.to_owned(),
        schedule: schedule.to_owned(),
        storage: crate::backup::spec_text(engine_backup, "storageName").map(str::to_owned),
    })
}
