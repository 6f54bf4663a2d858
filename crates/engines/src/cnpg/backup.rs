//! Backups through CloudNativePG: the cluster's object store
//! (`Cluster.spec.backup.barmanObjectStore`), one `ScheduledBackup` per
//! running schedule, and on-demand `Backup`s with their status read back.
//!
//! CloudNativePG (barman-cloud) archives a cluster to ONE object store: base
//! backups and the WAL archive share `destinationPath`. WAL archiving starts
//! as soon as a store is declared, so PITR works whenever one is, and
//! nothing in the Cluster can turn the archive off while the store stays.

use dbaas_api::backup::BackupPhase;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType};
use dbaas_engine_crds::cnpg_backup::{
    Backup, BackupCluster, BackupMethod, BackupSpec as EngineBackupSpec,
};
use dbaas_engine_crds::cnpg_cluster::{
    ClusterBackup, ClusterBackupBarmanObjectStore, ClusterBackupBarmanObjectStoreAzureCredentials,
    ClusterBackupBarmanObjectStoreAzureCredentialsStorageAccount,
    ClusterBackupBarmanObjectStoreAzureCredentialsStorageKey,
    ClusterBackupBarmanObjectStoreGoogleCredentials,
    ClusterBackupBarmanObjectStoreGoogleCredentialsApplicationCredentials,
    ClusterBackupBarmanObjectStoreS3Credentials,
    ClusterBackupBarmanObjectStoreS3CredentialsAccessKeyId,
    ClusterBackupBarmanObjectStoreS3CredentialsSecretAccessKey,
};
use dbaas_engine_crds::cnpg_scheduled_backup::{
    ScheduledBackup, ScheduledBackupBackupOwnerReference, ScheduledBackupCluster,
    ScheduledBackupMethod, ScheduledBackupSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::core::DynamicObject;

use crate::backup::{
    AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_ACCOUNT_NAME, BackupObservation, DEFAULT_SCHEDULE,
    GCS_CREDENTIALS, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, StorageInput, check_cron,
    cluster_path, cron_with_seconds, parse_time, referenced_storages, schedules,
};
use crate::provider::{BuildError, BuildInput, Unapplied, to_dynamic};
use crate::shared::{backup_metadata, engine_metadata};

/// CloudNativePG's `Backup.status.phase` values (`api/v1/backup_types.go`).
pub mod backup_phase {
    pub const PENDING: &str = "pending";
    pub const STARTED: &str = "started";
    pub const RUNNING: &str = "running";
    /// Volume snapshots only: taken, waiting to be ready to use.
    pub const FINALIZING: &str = "finalizing";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    /// The instance found WAL archiving broken and did not take the backup.
    pub const WAL_ARCHIVING_FAILING: &str = "walArchivingFailing";
}

/// What the cluster's backup spec becomes in CloudNativePG terms.
#[derive(Debug, Default)]
pub(super) struct RenderedBackup {
    /// `Cluster.spec.backup`; `None` when no storage is named.
    pub cluster_backup: Option<ClusterBackup>,
    /// One per running schedule.
    pub scheduled: Vec<ScheduledBackup>,
    pub unapplied: Vec<Unapplied>,
}

/// The ScheduledBackup of one of a cluster's schedules.
pub fn scheduled_backup_name(cluster_name: &str, schedule_name: &str) -> String {
    format!("{cluster_name}-{schedule_name}")
}

/// Renders `cluster.spec.backup` with the storages the operator found.
pub(super) fn render(
    cluster: &DatabaseCluster,
    input: &BuildInput<'_>,
) -> Result<RenderedBackup, BuildError> {
    let Some(backup) = cluster.spec.backup.as_ref() else {
        return Ok(RenderedBackup::default());
    };
    let mut unapplied = Vec::new();

    let running = schedules(&cluster.spec);
    for (index, schedule) in running.iter().enumerate() {
        check_cron(&schedule.cron)?;
        // Each schedule is a ScheduledBackup named after it: a named
        // schedule called like the short form's would replace it.
        if running[..index].iter().any(|s| s.name == schedule.name) {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "two backup schedules are called {:?} (the short-form backup.schedule runs as {DEFAULT_SCHEDULE:?}); rename one",
                    schedule.name
                ),
            });
        }
    }
    if backup.enabled
        && let Some(cron) = backup.schedule.as_deref()
        && backup.storage_name.is_none()
    {
        // The seed's own sample has this shape: keep building the cluster.
        check_cron(cron)?;
        unapplied.push(Unapplied {
            field: "backup.schedule",
            why: "the short-form schedule runs only with backup.storageName; it was not scheduled",
        });
    }
    if running.iter().any(|s| s.retention_copies.is_some()) {
        // The cluster still backs up; only old backups are not pruned.
        unapplied.push(Unapplied {
            field: "backup.retentionCopies",
            why: "CloudNativePG keeps backups by age (retentionPolicy such as 30d), not by count; no backups are removed",
        });
    }

    let storage_name = match referenced_storages(&cluster.spec).as_slice() {
        [] => {
            if backup.pitr.as_ref().is_some_and(|p| p.enabled) {
                unapplied.push(Unapplied {
                    field: "backup.pitr",
                    why: "PITR needs a BackupStorage to archive WAL to (pitr.storageName or backup.storageName); nothing is archived",
                });
            }
            return Ok(RenderedBackup {
                unapplied,
                ..Default::default()
            });
        }
        [only] => only.clone(),
        several => {
            // Half the schedules silently writing elsewhere would be worse
            // than no backups: refuse.
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "CloudNativePG archives a cluster to one object store, and the backup spec names {}; use the same BackupStorage for every schedule, backup.storageName and pitr.storageName",
                    several
                        .iter()
                        .map(|s| format!("{s:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    };
    let storage = input.storage(&storage_name)?;
    let (object_store, storage_unapplied) = object_store(storage, cluster)?;
    unapplied.extend(storage_unapplied);

    // With a store declared CloudNativePG archives WAL whatever PITR says;
    // PITR's storage is this one (every storage named is).
    if backup.pitr.as_ref().is_some_and(|p| !p.enabled) {
        unapplied.push(Unapplied {
            field: "backup.pitr",
            why: "CloudNativePG archives WAL continuously whenever a BackupStorage is configured; pitr.enabled false cannot turn that off",
        });
    }

    let scheduled = running
        .iter()
        .map(|schedule| scheduled_backup(cluster, &schedule.name, &schedule.cron))
        .collect();
    Ok(RenderedBackup {
        cluster_backup: Some(ClusterBackup {
            barman_object_store: Some(object_store),
            ..Default::default()
        }),
        scheduled,
        unapplied,
    })
}

/// Where in `storage` CloudNativePG puts `cluster`'s base backups and WAL
/// (barman adds `<cluster name>/` below it, its default server name).
pub fn destination_path(
    storage: &StorageInput,
    cluster: &DatabaseCluster,
) -> Result<String, BuildError> {
    store_url(storage, &cluster_path(&storage.spec, cluster))
}

/// The barman-cloud URL of `path` inside `storage`'s bucket (the bucket
/// itself for an empty path).
pub fn store_url(storage: &StorageInput, path: &str) -> Result<String, BuildError> {
    let spec = &storage.spec;
    let bucket = || {
        spec.bucket
            .as_deref()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| BuildError::InvalidBackup {
                why: format!("BackupStorage {:?} has no bucket", storage.name),
            })
    };
    match spec.type_ {
        BackupStorageType::S3 => Ok(format!("s3://{}/{path}", bucket()?)),
        BackupStorageType::Gcs => Ok(format!("gs://{}/{path}", bucket()?)),
        BackupStorageType::Azure => {
            // barman-cloud reads the storage account from the URL:
            // https://<account>.blob.core.windows.net/<container>/<path>.
            let endpoint = spec
                .endpoint_url
                .as_deref()
                .map(|e| e.trim_end_matches('/'))
                .filter(|e| !e.is_empty())
                .ok_or_else(|| BuildError::InvalidBackup {
                    why: format!(
                        "BackupStorage {:?} is azure without endpointURL; CloudNativePG needs the blob endpoint (https://<account>.blob.core.windows.net) to build the destination",
                        storage.name
                    ),
                })?;
            Ok(format!("{endpoint}/{}/{path}", bucket()?))
        }
        BackupStorageType::Filesystem => Err(filesystem_refusal(storage)),
    }
}

pub(super) fn filesystem_refusal(storage: &StorageInput) -> BuildError {
    BuildError::InvalidBackup {
        why: format!(
            "BackupStorage {:?} is a filesystem volume; CloudNativePG backs up to and restores from object stores only (s3, gcs, azure)",
            storage.name
        ),
    }
}

/// `barmanObjectStore` for `storage`, and its settings CloudNativePG has no
/// field for (reported, not refused: backups still work without them, or
/// fail visibly in the Backup's status).
fn object_store(
    storage: &StorageInput,
    cluster: &DatabaseCluster,
) -> Result<(ClusterBackupBarmanObjectStore, Vec<Unapplied>), BuildError> {
    object_store_at(storage, destination_path(storage, cluster)?)
}

/// `barmanObjectStore` for `destination_path` in `storage` (see
/// [`object_store`]).
pub(super) fn object_store_at(
    storage: &StorageInput,
    destination_path: String,
) -> Result<(ClusterBackupBarmanObjectStore, Vec<Unapplied>), BuildError> {
    let spec = &storage.spec;
    let secret = storage.required_credentials()?;
    let mut unapplied = Vec::new();
    let mut store = ClusterBackupBarmanObjectStore {
        destination_path,
        ..Default::default()
    };
    match spec.type_ {
        BackupStorageType::S3 => {
            store.endpoint_url = spec.endpoint_url.clone();
            store.s3_credentials = Some(ClusterBackupBarmanObjectStoreS3Credentials {
                access_key_id: Some(ClusterBackupBarmanObjectStoreS3CredentialsAccessKeyId {
                    name: secret.clone(),
                    key: S3_ACCESS_KEY_ID.to_owned(),
                }),
                secret_access_key: Some(
                    ClusterBackupBarmanObjectStoreS3CredentialsSecretAccessKey {
                        name: secret,
                        key: S3_SECRET_ACCESS_KEY.to_owned(),
                    },
                ),
                ..Default::default()
            });
            if spec.region.is_some() {
                unapplied.push(Unapplied {
                    field: "BackupStorage.region",
                    why: "CloudNativePG takes the S3 region only from a Secret key (s3Credentials.region), not as a value; barman-cloud finds the bucket's region itself",
                });
            }
            if spec.force_path_style.is_some() {
                unapplied.push(Unapplied {
                    field: "BackupStorage.forcePathStyle",
                    why: "CloudNativePG has no addressing-style setting; barman-cloud (botocore) chooses it",
                });
            }
        }
        BackupStorageType::Gcs => {
            store.google_credentials = Some(ClusterBackupBarmanObjectStoreGoogleCredentials {
                application_credentials: Some(
                    ClusterBackupBarmanObjectStoreGoogleCredentialsApplicationCredentials {
                        name: secret,
                        key: GCS_CREDENTIALS.to_owned(),
                    },
                ),
                ..Default::default()
            });
            if spec.endpoint_url.is_some() {
                unapplied.push(Unapplied {
                    field: "BackupStorage.endpointURL",
                    why: "CloudNativePG passes an endpoint URL to S3 only; GCS backups go to Google's endpoint",
                });
            }
        }
        BackupStorageType::Azure => {
            // The endpoint is part of destinationPath for Azure.
            store.azure_credentials = Some(ClusterBackupBarmanObjectStoreAzureCredentials {
                storage_account: Some(
                    ClusterBackupBarmanObjectStoreAzureCredentialsStorageAccount {
                        name: secret.clone(),
                        key: AZURE_STORAGE_ACCOUNT_NAME.to_owned(),
                    },
                ),
                storage_key: Some(ClusterBackupBarmanObjectStoreAzureCredentialsStorageKey {
                    name: secret,
                    key: AZURE_STORAGE_ACCOUNT_KEY.to_owned(),
                }),
                ..Default::default()
            });
        }
        BackupStorageType::Filesystem => return Err(filesystem_refusal(storage)),
    }
    if !spec.verify_tls {
        unapplied.push(Unapplied {
            field: "BackupStorage.verifyTLS",
            why: "CloudNativePG cannot skip TLS verification (it only takes a CA bundle, endpointCA); the endpoint's certificate is still verified",
        });
    }
    Ok((store, unapplied))
}

/// The ScheduledBackup running one schedule: owned and labelled like the
/// cluster, suspended while the cluster is paused (a hibernated cluster has
/// no instance to back up from).
pub fn scheduled_backup(
    cluster: &DatabaseCluster,
    schedule_name: &str,
    cron: &str,
) -> ScheduledBackup {
    let cluster_name = cluster.name_any();
    ScheduledBackup {
        metadata: ObjectMeta {
            name: Some(scheduled_backup_name(&cluster_name, schedule_name)),
            ..engine_metadata(cluster, EngineType::Postgresql)
        },
        spec: ScheduledBackupSpec {
            cluster: ScheduledBackupCluster { name: cluster_name },
            schedule: cron_with_seconds(cron),
            method: Some(ScheduledBackupMethod::BarmanObjectStore),
            // The Backup records a schedule makes go with it when the
            // schedule is taken out of the spec; the data in the store
            // stays (CloudNativePG never deletes it with a Backup).
            backup_owner_reference: Some(ScheduledBackupBackupOwnerReference::r#_Self),
            suspend: Some(cluster.spec.paused),
            ..Default::default()
        },
        status: None,
    }
}

/// The CloudNativePG Backup taking `backup` of `cluster`. CloudNativePG
/// writes it to the store the cluster archives to, so `storage` must be
/// that one.
pub fn build_backup(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<Backup, BuildError> {
    if storage.spec.type_ == BackupStorageType::Filesystem {
        return Err(filesystem_refusal(storage));
    }
    match referenced_storages(&cluster.spec).as_slice() {
        [only] if *only == storage.name => {}
        [] => {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "CloudNativePG backs up to the object store the cluster archives to, and cluster {:?} has none: set its backup.storageName to {:?}",
                    cluster.name_any(),
                    storage.name
                ),
            });
        }
        [only] => {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "CloudNativePG backs up only to the object store the cluster archives to (BackupStorage {only:?}), not to {:?}",
                    storage.name
                ),
            });
        }
        _ => {
            return Err(BuildError::InvalidBackup {
                why: format!(
                    "cluster {:?} names several BackupStorages, and CloudNativePG archives a cluster to one object store",
                    cluster.name_any()
                ),
            });
        }
    }
    Ok(Backup {
        metadata: backup_metadata(backup, cluster, EngineType::Postgresql),
        spec: EngineBackupSpec {
            cluster: BackupCluster {
                name: cluster.name_any(),
            },
            method: Some(BackupMethod::BarmanObjectStore),
            ..Default::default()
        },
        status: None,
    })
}

/// [`build_backup`] as a DynamicObject, for the generic apply.
pub(super) fn build_backup_object(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    storage: &StorageInput,
) -> Result<DynamicObject, BuildError> {
    to_dynamic(&build_backup(backup, cluster, storage)?)
}

/// Reads a CloudNativePG Backup as a DynamicObject.
pub(super) fn observe_backup_object(engine_backup: &DynamicObject) -> BackupObservation {
    match engine_backup.clone().try_parse::<Backup>() {
        Ok(backup) => observe_backup(&backup),
        Err(err) => BackupObservation {
            message: Some(format!("the CloudNativePG Backup cannot be read: {err}")),
            ..BackupObservation::pending()
        },
    }
}

/// Reads a CloudNativePG Backup's status in our vocabulary.
pub fn observe_backup(engine_backup: &Backup) -> BackupObservation {
    let Some(status) = engine_backup.status.as_ref() else {
        return BackupObservation::pending();
    };
    let text = status.phase.as_deref().unwrap_or_default();
    let error = status
        .error
        .as_deref()
        .or(status.command_error.as_deref())
        .filter(|e| !e.is_empty());
    let (phase, message) = match text {
        "" | backup_phase::PENDING => (BackupPhase::Pending, None),
        backup_phase::STARTED | backup_phase::RUNNING | backup_phase::FINALIZING => {
            (BackupPhase::Running, None)
        }
        backup_phase::COMPLETED => (BackupPhase::Succeeded, None),
        backup_phase::FAILED => (
            BackupPhase::Failed,
            Some(
                error
                    .unwrap_or("CloudNativePG reports the backup failed")
                    .to_owned(),
            ),
        ),
        // CloudNativePG leaves such a backup alone (it is neither retried
        // nor failed while its instance runs): it will not complete.
        backup_phase::WAL_ARCHIVING_FAILING => (
            BackupPhase::Failed,
            Some(format!(
                "WAL archiving to the object store is failing, so CloudNativePG did not take the backup; check the storage and its credentials{}",
                error.map(|e| format!(": {e}")).unwrap_or_default()
            )),
        ),
        other => (
            BackupPhase::Pending,
            Some(format!(
                "CloudNativePG reports an unrecognised backup phase: {other}"
            )),
        ),
    };
    BackupObservation {
        phase,
        started_at: parse_time(status.started_at.as_deref()),
        completed_at: parse_time(status.stopped_at.as_deref()).filter(|_| phase.is_terminal()),
        destination: destination(engine_backup),
        message,
    }
}

/// Where barman put the backup: `<destinationPath>/<serverName>/base/<backupId>`,
/// or the destination path while it has no ID yet.
fn destination(engine_backup: &Backup) -> Option<String> {
    let status = engine_backup.status.as_ref()?;
    let path = status
        .destination_path
        .as_deref()
        .filter(|p| !p.is_empty())?
        .trim_end_matches('/');
    let server = status
        .server_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| engine_backup.spec.cluster.name.clone());
    Some(
        match status.backup_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => format!("{path}/{server}/base/{id}"),
            None => path.to_owned(),
        },
    )
}

/// CloudNativePG's label on every Backup a ScheduledBackup creates, naming
/// that ScheduledBackup (`pkg/utils/labels_annotations.go`,
/// `ParentScheduledBackupLabelName`; set by `createBackup` in
/// `internal/controller/scheduledbackup_controller.go`).
pub const SCHEDULED_BACKUP_LABEL: &str = "cnpg.io/scheduled-backup";

/// The cluster and schedule of a Backup one of our ScheduledBackups
/// created: labelled with its ScheduledBackup `<cluster>-<schedule>`
/// ([`scheduled_backup_name`]) and, with `backupOwnerReference: self`,
/// controlled by it. The storage is the cluster's one object store.
pub fn scheduled_backup_of(
    engine_backup: &DynamicObject,
) -> Option<crate::backup::ScheduledBackupRef> {
    let parent = crate::backup::label(engine_backup, SCHEDULED_BACKUP_LABEL)?;
    let owned_by_parent = engine_backup.owner_references().iter().any(|owner| {
        owner.kind == "ScheduledBackup" && owner.name == parent && owner.controller == Some(true)
    });
    if !owned_by_parent {
        return None;
    }
    let cluster = engine_backup
        .data
        .get("spec")?
        .get("cluster")?
        .get("name")?
        .as_str()?;
    let schedule = parent
        .strip_prefix(cluster)?
        .strip_prefix('-')
        .filter(|s| !s.is_empty())?;
    Some(crate::backup::ScheduledBackupRef {
        cluster: cluster.to_owned(),
        schedule: schedule.to_owned(),
        storage: None,
    })
}
