//! Backups through Percona Backup for MongoDB (PBM), as the Percona Operator
//! for MongoDB drives it: `spec.backup` of the PerconaServerMongoDB (the
//! pbm-agent sidecar, the storages, the schedules, PITR) and the
//! `PerconaServerMongoDBBackup` resource of one on-demand backup.
//!
//! Our fields and where they go:
//!
//! | ours | Percona |
//! |---|---|
//! | any storage named | `backup.enabled: true` (it runs the pbm-agent sidecar every backup needs), `backup.image` |
//! | BackupStorage s3 | `storages.<name>: {type: s3, s3: {bucket, prefix, region, endpointUrl, forcePathStyle, insecureSkipTLSVerify: !verifyTLS, credentialsSecret}}` |
//! | BackupStorage azure | `storages.<name>: {type: azure, azure: {container, prefix, endpointUrl, credentialsSecret}}` |
//! | BackupStorage filesystem | the PVC as a sidecar volume of every replica set member (and config server), mounted into the pbm-agent (`backup.volumeMounts`, `subPath` = the cluster's path); `storages.<name>: {type: filesystem, filesystem: {path}}` |
//! | BackupStorage gcs | refused: Percona reads a GCS client e-mail and private key as two Secret keys, our Secret holds the service-account JSON |
//! | prefix | `prefix` = `[prefix/]namespace/cluster` ([`cluster_path`]) |
//! | schedules (short form `default` and named) | `tasks[]: {name, enabled, schedule, storageName, type: logical, retention: {type: count, count, deleteFromStorage: true}}` |
//! | pitr.enabled / pitr.storageName | `pitr.enabled`; the PITR storage is marked `main: true` (PBM keeps oplog chunks on the main storage only) |
//! | DatabaseBackup | `PerconaServerMongoDBBackup {clusterName, storageName, type: logical}` |

use dbaas_api::backup::BackupPhase;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType};
use dbaas_engine_crds::psmdb_backup::{
    PerconaServerMongoDbBackup as PerconaBackup,
    PerconaServerMongoDbBackupSpec as PerconaBackupSpec, PerconaServerMongoDbBackupType,
};
use dbaas_engine_crds::psmdb_cluster::{
    PerconaServerMongoDbBackup, PerconaServerMongoDbBackupPitr, PerconaServerMongoDbBackupStorages,
    PerconaServerMongoDbBackupStoragesAzure, PerconaServerMongoDbBackupStoragesFilesystem,
    PerconaServerMongoDbBackupStoragesS3, PerconaServerMongoDbBackupTasks,
    PerconaServerMongoDbBackupTasksRetention, PerconaServerMongoDbBackupTasksRetentionType,
    PerconaServerMongoDbBackupTasksType, PerconaServerMongoDbBackupVolumeMounts,
};
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Volume};
use kube::ResourceExt;
use kube::core::DynamicObject;
use std::collections::BTreeMap;

use crate::backup::{
    BackupObservation, StorageInput, check_cron, cluster_path, parse_time, pitr_storage,
    referenced_storages, schedules,
};
use crate::provider::{BuildError, BuildInput, Unapplied, to_dynamic};
use crate::shared::backup_metadata;

/// The PBM image the pbm-agent sidecar runs: the one certified with Percona
/// Operator for MongoDB 1.23.0, the operator version we write as
/// `crVersion` (its release notes, "Percona certified images").
pub const PBM_IMAGE: &str = "percona/percona-backup-mongodb:2.15.0";
/// Where a filesystem storage's volume is mounted in the pbm-agent
/// container: `<root>/<storage name>`.
pub const FILESYSTEM_MOUNT_ROOT: &str = "/backup-storage";
/// Prefix of the sidecar volume names of filesystem storages.
pub const FILESYSTEM_VOLUME_PREFIX: &str = "backup-fs-";

/// Percona's `PerconaServerMongoDBBackup` `status.state` values
/// (`pkg/apis/psmdb/v1/perconaservermongodbbackup_types.go`, `BackupState`).
pub mod state {
    /// Not picked up yet (the empty string).
    pub const NEW: &str = "";
    /// Waiting for the cluster to be ready or for another backup/restore.
    pub const WAITING: &str = "waiting";
    /// Sent to PBM, which is starting it.
    pub const REQUESTED: &str = "requested";
    pub const RUNNING: &str = "running";
    pub const READY: &str = "ready";
    pub const ERROR: &str = "error";
    /// Written by older operator versions (no longer in the list).
    pub const REJECTED: &str = "rejected";
}

/// What the cluster's backup spec adds to the PerconaServerMongoDB.
#[derive(Debug, Default)]
pub(super) struct Rendered {
    /// `spec.backup`; `None` when no storage is named.
    pub backup: Option<PerconaServerMongoDbBackup>,
    /// Volumes every mongod pod (replica set and config servers) carries
    /// for the pbm-agent: the PVCs of filesystem storages.
    pub sidecar_volumes: Vec<Volume>,
    pub unapplied: Vec<Unapplied>,
}

/// Renders the cluster's backup spec into Percona's `spec.backup`.
pub(super) fn render(
    cluster: &DatabaseCluster,
    input: &BuildInput<'_>,
) -> Result<Rendered, BuildError> {
    let spec = &cluster.spec;
    let Some(backup) = spec.backup.as_ref() else {
        return Ok(Rendered::default());
    };
    let mut rendered = Rendered::default();

    // A bad cron is refused even on a schedule that is off: it can never run.
    for cron in backup
        .schedule
        .iter()
        .chain(backup.schedules.iter().map(|s| &s.schedule))
    {
        check_cron(cron)?;
    }
    if backup.enabled && backup.schedule.is_some() && backup.storage_name.is_none() {
        // The rest (named schedules, PITR, on-demand) still works.
        rendered.unapplied.push(Unapplied {
            field: "backup.schedule",
            why: "the short-form schedule names no backup.storageName, so it does not run",
        });
    }

    let storage_names = referenced_storages(spec);
    let pitr = backup.pitr.as_ref().is_some_and(|p| p.enabled);
    let Some(main) = main_storage(cluster, &storage_names) else {
        if pitr {
            return Err(BuildError::InvalidBackup {
                why: "PITR needs a storage: set backup.pitr.storageName or backup.storageName"
                    .to_owned(),
            });
        }
        return Ok(rendered);
    };

    let mut storages = BTreeMap::new();
    let mut volume_mounts = Vec::new();
    for name in &storage_names {
        let storage = input.storage(name)?;
        let mut percona = match storage.spec.type_ {
            BackupStorageType::S3 => s3(cluster, storage)?,
            BackupStorageType::Azure => {
                if !storage.spec.verify_tls {
                    rendered.unapplied.push(Unapplied {
                        field: "backup",
                        why: "an Azure storage's verifyTLS: false cannot be set on the Percona Operator for MongoDB; TLS is verified",
                    });
                }
                azure(cluster, storage)?
            }
            BackupStorageType::Filesystem => {
                let volume_name = format!("{FILESYSTEM_VOLUME_PREFIX}{}", volume_mounts.len());
                let (percona, volume, mount) = filesystem(cluster, storage, volume_name)?;
                rendered.sidecar_volumes.push(volume);
                volume_mounts.push(mount);
                percona
            }
            BackupStorageType::Gcs => {
                return Err(BuildError::InvalidBackup {
                    why: format!(
                        "BackupStorage {name:?} is a gcs storage: the Percona Operator for MongoDB reads a GCS client e-mail and private key as separate Secret keys, not the service-account JSON of GCS_CREDENTIALS; use an s3 or azure storage for MongoDB clusters"
                    ),
                });
            }
        };
        // PBM keeps PITR oplog chunks on the main storage; the others are
        // profiles that hold backups only.
        if *name == main {
            percona.main = Some(true);
        }
        storages.insert(name.clone(), percona);
    }

    let mut tasks = Vec::new();
    for schedule in schedules(spec) {
        if tasks
            .iter()
            .any(|t: &PerconaServerMongoDbBackupTasks| t.name == schedule.name)
        {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "two backup schedules are named {:?} (the short form runs as \"default\")",
                    schedule.name
                ),
            });
        }
        tasks.push(PerconaServerMongoDbBackupTasks {
            name: schedule.name,
            enabled: true,
            schedule: Some(schedule.cron),
            storage_name: Some(schedule.storage_name),
            r#type: Some(PerconaServerMongoDbBackupTasksType::Logical),
            retention: schedule.retention_copies.map(|copies| {
                PerconaServerMongoDbBackupTasksRetention {
                    count: Some(i64::from(copies)),
                    delete_from_storage: true,
                    r#type: PerconaServerMongoDbBackupTasksRetentionType::Count,
                }
            }),
            ..Default::default()
        });
    }

    rendered.backup = Some(PerconaServerMongoDbBackup {
        // Also when scheduled backups are off: without it there is no
        // pbm-agent, and on-demand backups need one.
        enabled: true,
        image: PBM_IMAGE.to_owned(),
        storages: Some(storages),
        tasks: (!tasks.is_empty()).then_some(tasks),
        pitr: Some(PerconaServerMongoDbBackupPitr {
            enabled: Some(pitr),
            ..Default::default()
        }),
        volume_mounts: (!volume_mounts.is_empty()).then_some(volume_mounts),
        ..Default::default()
    });
    Ok(rendered)
}

/// The storage Percona marks `main`: PITR's (PBM writes oplog chunks to the
/// main storage only, so this is how `pitr.storageName` is honoured), else
/// the short form's, else the first named.
fn main_storage(cluster: &DatabaseCluster, names: &[String]) -> Option<String> {
    let backup = cluster.spec.backup.as_ref()?;
    pitr_storage(backup)
        .or(backup.storage_name.as_deref())
        .map(str::to_owned)
        .or_else(|| names.first().cloned())
}

fn bucket(storage: &StorageInput) -> Result<String, BuildError> {
    storage
        .spec
        .bucket
        .clone()
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!("BackupStorage {:?} names no bucket", storage.name),
        })
}

fn s3(
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<PerconaServerMongoDbBackupStorages, BuildError> {
    let spec = &storage.spec;
    Ok(PerconaServerMongoDbBackupStorages {
        r#type: Some("s3".to_owned()),
        s3: Some(PerconaServerMongoDbBackupStoragesS3 {
            bucket: bucket(storage)?,
            prefix: Some(cluster_path(spec, cluster)),
            region: spec.region.clone(),
            endpoint_url: spec.endpoint_url.clone(),
            force_path_style: spec.force_path_style,
            insecure_skip_tls_verify: Some(!spec.verify_tls),
            credentials_secret: storage.credentials_secret.clone(),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn azure(
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<PerconaServerMongoDbBackupStorages, BuildError> {
    let spec = &storage.spec;
    let credentials_secret = storage.required_credentials()?;
    Ok(PerconaServerMongoDbBackupStorages {
        r#type: Some("azure".to_owned()),
        azure: Some(PerconaServerMongoDbBackupStoragesAzure {
            container: Some(bucket(storage)?),
            prefix: Some(cluster_path(spec, cluster)),
            endpoint_url: spec.endpoint_url.clone(),
            credentials_secret,
        }),
        ..Default::default()
    })
}

/// A filesystem storage: PBM needs the same directory on every member, so
/// the PVC is a sidecar volume of every mongod pod (it must be
/// ReadWriteMany once the members run on several nodes), mounted into the
/// pbm-agent at the cluster's own sub-directory.
fn filesystem(
    cluster: &DatabaseCluster,
    storage: &StorageInput,
    volume_name: String,
) -> Result<
    (
        PerconaServerMongoDbBackupStorages,
        Volume,
        PerconaServerMongoDbBackupVolumeMounts,
    ),
    BuildError,
> {
    let claim = storage
        .spec
        .persistent_volume_claim
        .clone()
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!(
                "BackupStorage {:?} (filesystem) names no persistentVolumeClaim",
                storage.name
            ),
        })?;
    let mount_path = format!("{FILESYSTEM_MOUNT_ROOT}/{}", storage.name);
    let volume = Volume {
        name: volume_name.clone(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim,
            read_only: None,
        }),
        ..Default::default()
    };
    let mount = PerconaServerMongoDbBackupVolumeMounts {
        name: volume_name,
        mount_path: mount_path.clone(),
        sub_path: Some(cluster_path(&storage.spec, cluster)),
        ..Default::default()
    };
    let percona = PerconaServerMongoDbBackupStorages {
        r#type: Some("filesystem".to_owned()),
        filesystem: Some(PerconaServerMongoDbBackupStoragesFilesystem { path: mount_path }),
        ..Default::default()
    };
    Ok((percona, volume, mount))
}

/// The PerconaServerMongoDBBackup that takes `backup` of `cluster` into
/// `storage`. The storage must be one the cluster's spec names: Percona
/// writes only to storages declared in the PerconaServerMongoDB.
pub fn build_backup(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<DynamicObject, BuildError> {
    if storage.spec.type_ == BackupStorageType::Gcs {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "BackupStorage {:?} is a gcs storage, which this operator cannot configure for MongoDB clusters",
                storage.name
            ),
        });
    }
    if !referenced_storages(&cluster.spec).contains(&storage.name) {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "BackupStorage {:?} is not named in the backup spec of cluster {:?}; the Percona Operator for MongoDB writes only to storages the cluster declares",
                storage.name,
                cluster.name_any()
            ),
        });
    }
    let object = PerconaBackup {
        metadata: backup_metadata(backup, cluster, EngineType::Mongodb),
        spec: PerconaBackupSpec {
            cluster_name: Some(cluster.name_any()),
            storage_name: Some(storage.name.clone()),
            r#type: Some(PerconaServerMongoDbBackupType::Logical),
            ..Default::default()
        },
        status: None,
    };
    to_dynamic(&object)
}

/// Reads a PerconaServerMongoDBBackup's status in our vocabulary.
pub fn observe_backup(engine_backup: &DynamicObject) -> BackupObservation {
    let backup = match engine_backup.clone().try_parse::<PerconaBackup>() {
        Ok(backup) => backup,
        Err(err) => {
            return BackupObservation {
                message: Some(format!(
                    "the PerconaServerMongoDBBackup cannot be read: {err}"
                )),
                ..BackupObservation::pending()
            };
        }
    };
    let Some(status) = backup.status else {
        return BackupObservation::pending();
    };
    let text = status.state.as_deref().unwrap_or(state::NEW);
    let error = status.error.as_deref().filter(|e| !e.is_empty());
    let phase = match text {
        state::NEW | state::WAITING => BackupPhase::Pending,
        state::REQUESTED | state::RUNNING => BackupPhase::Running,
        state::READY => BackupPhase::Succeeded,
        state::ERROR | state::REJECTED => BackupPhase::Failed,
        // A state this version does not know: not finished as far as we can tell.
        _ => BackupPhase::Pending,
    };
    let message = match (error, text) {
        (Some(error), _) => Some(error.to_owned()),
        (None, state::NEW) => None,
        (None, state::WAITING) => Some(
            "waiting: the Percona Operator for MongoDB waits for the cluster to be ready or for another backup or restore to finish".to_owned(),
        ),
        (None, state::REQUESTED | state::RUNNING | state::READY) => Some(text.to_owned()),
        (None, state::ERROR | state::REJECTED) => {
            Some(format!("the backup failed ({text}) without an error message"))
        }
        (None, other) => Some(format!(
            "the Percona Operator for MongoDB reports an unrecognised backup state: {other}"
        )),
    };
    BackupObservation {
        phase,
        started_at: parse_time(status.start.as_deref()),
        completed_at: parse_time(status.completed.as_deref()),
        destination: status.destination.filter(|d| !d.is_empty()),
        message,
    }
}

/// Label selector of the backups Percona's schedules create.
pub const SCHEDULED_SELECTOR: &str = crate::shared::percona_cron::SELECTOR;

/// The cluster, schedule and storage of a PerconaServerMongoDBBackup the
/// operator's schedule created (see [`crate::shared::percona_cron`]); the cluster named
/// by the label and by `spec.clusterName` must agree.
pub fn scheduled_backup_of(
    engine_backup: &DynamicObject,
) -> Option<crate::backup::ScheduledBackupRef> {
    let (cluster, schedule) =
        crate::shared::percona_cron::cron_backup(engine_backup, "clusterName")?;
    Some(crate::backup::ScheduledBackupRef {
        cluster: cluster.to_owned(),
        schedule: schedule.to_owned(),
        storage: crate::backup::spec_text(engine_backup, "storageName").map(str::to_owned),
    })
}
