//! Restores of a Percona XtraDB Cluster: one `pxc.percona.com/v1`
//! `PerconaXtraDBClusterRestore` that puts a backup (and, for PITR, the
//! binlogs after it) back into a running cluster.
//!
//! The restore always names the backup by `backupSource` (where it is and
//! how to read it), never by `backupName`: that works for a backup of
//! another cluster and after the PerconaXtraDBClusterBackup is gone.

use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::PitrType;
use dbaas_api::{BackupStorageSpec, DatabaseCluster, EngineType};
use dbaas_engine_crds::pxc_restore::{
    PerconaXtraDbClusterRestore, PerconaXtraDbClusterRestoreBackupSource,
    PerconaXtraDbClusterRestoreBackupSourceAzure, PerconaXtraDbClusterRestoreBackupSourceS3,
    PerconaXtraDbClusterRestorePitr, PerconaXtraDbClusterRestorePitrBackupSource,
    PerconaXtraDbClusterRestorePitrBackupSourceAzure,
    PerconaXtraDbClusterRestorePitrBackupSourceS3, PerconaXtraDbClusterRestoreSpec,
};
use kube::core::DynamicObject;
use serde_json::Value;

use super::backup::BINLOG_FOLDER;
use crate::backup::{StorageInput, parse_time, referenced_storages};
use crate::provider::BuildError;
use crate::restore::{RestoreBackup, RestoreInput, RestoreObservation, RestorePhase, percona_date};
use crate::shared::restore_metadata;

/// Scheme of an S3 backup's destination, as Percona writes it
/// (`AwsBlobStoragePrefix` in `pkg/apis/pxc/v1/pxc_types.go`).
pub const S3_SCHEME: &str = "s3://";
/// Scheme of an Azure backup's destination (`AzureBlobStoragePrefix`).
pub const AZURE_SCHEME: &str = "azure://";

/// Percona's restore states (`RestoreState`, formerly `BcpRestoreStates`,
/// in `pkg/apis/pxc/v1/pxc_prestore_types.go`); a new restore has none.
pub mod restore_state {
    pub const STARTING: &str = "Starting";
    pub const STOPPING_CLUSTER: &str = "Stopping Cluster";
    pub const RESTORING: &str = "Restoring";
    pub const STARTING_CLUSTER: &str = "Starting Cluster";
    pub const PITR: &str = "Point-in-time recovering";
    /// Since operator 1.18: the restored data is prepared before start.
    pub const PREPARING_CLUSTER: &str = "Preparing Cluster";
    pub const FAILED: &str = "Failed";
    pub const SUCCEEDED: &str = "Succeeded";
}

/// The PerconaXtraDBClusterRestore called `name` that restores `source`
/// into `cluster`. The operator sets its owner.
pub fn build_restore(
    name: &str,
    cluster: &DatabaseCluster,
    source: &RestoreInput,
) -> Result<PerconaXtraDbClusterRestore, BuildError> {
    check_backup_section(cluster)?;
    let storage = source.required_storage()?;
    super::backup::check_type(storage)?;
    let bucket = bucket_of(storage)?;
    let credentials_secret = storage.required_credentials()?;
    let destination = destination(&source.backup, storage, bucket)?;
    // Percona reads the backup's folder from `s3.bucket` / `azure.container`
    // (bucket, then the path up to the backup's own name) and the backup's
    // name from the last segment of the destination.
    let folder = folder_of(&destination);

    let mut backup_source = PerconaXtraDbClusterRestoreBackupSource {
        destination: Some(destination),
        verify_tls: Some(storage.spec.verify_tls),
        ..Default::default()
    };
    match storage.spec.type_ {
        BackupStorageType::S3 => {
            backup_source.storage_type = Some("s3".to_owned());
            backup_source.s3 = Some(PerconaXtraDbClusterRestoreBackupSourceS3 {
                bucket: Some(folder),
                credentials_secret: Some(credentials_secret.clone()),
                endpoint_url: storage.spec.endpoint_url.clone(),
                region: storage.spec.region.clone(),
                force_path_style: storage.spec.force_path_style,
                ..Default::default()
            });
        }
        BackupStorageType::Azure => {
            backup_source.storage_type = Some("azure".to_owned());
            backup_source.azure = Some(PerconaXtraDbClusterRestoreBackupSourceAzure {
                container: Some(folder),
                credentials_secret: Some(credentials_secret.clone()),
                endpoint_url: storage.spec.endpoint_url.clone(),
                ..Default::default()
            });
        }
        // Refused by check_type above.
        BackupStorageType::Gcs | BackupStorageType::Filesystem => {}
    }

    let pitr = match &source.pitr {
        None => None,
        Some(target) => {
            let binlogs = binlog_location(&source.backup, storage, bucket)?;
            let (pitr_type, date) = match target.type_ {
                PitrType::Latest => ("latest", None),
                PitrType::Date => {
                    let date = source
                        .pitr_date()
                        .ok_or_else(|| BuildError::InvalidBackup {
                            why: "a point-in-time restore of type date needs pitr.date".to_owned(),
                        })?;
                    ("date", Some(percona_date(date)))
                }
            };
            Some(PerconaXtraDbClusterRestorePitr {
                r#type: Some(pitr_type.to_owned()),
                date,
                backup_source: Some(pitr_source(storage, binlogs, credentials_secret)),
                ..Default::default()
            })
        }
    };

    Ok(PerconaXtraDbClusterRestore {
        metadata: restore_metadata(name, cluster, EngineType::Mysql),
        spec: PerconaXtraDbClusterRestoreSpec {
            pxc_cluster: cluster.metadata.name.clone(),
            backup_source: Some(backup_source),
            pitr,
            ..Default::default()
        },
        status: None,
    })
}

/// Percona's restore Jobs run the XtraBackup image of the cluster's
/// `spec.backup` (and its operator cannot even build them without that
/// section), which [`super::backup::render`] declares only for a cluster
/// whose backup spec names a storage.
fn check_backup_section(cluster: &DatabaseCluster) -> Result<(), BuildError> {
    if referenced_storages(&cluster.spec).is_empty() {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "Percona restores DatabaseCluster {:?} with the XtraBackup image of its backup section, which the cluster only has once its backup spec names a BackupStorage; set backup.storageName (backups may stay disabled)",
                cluster.metadata.name.as_deref().unwrap_or_default()
            ),
        });
    }
    Ok(())
}

/// The storage's bucket (S3) or container (Azure), without slashes.
fn bucket_of(storage: &StorageInput) -> Result<&str, BuildError> {
    storage
        .spec
        .bucket
        .as_deref()
        .map(|b| b.trim_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| BuildError::InvalidBackup {
            why: format!("BackupStorage {:?} has no bucket", storage.name),
        })
}

/// The scheme Percona writes destinations in a storage of this type with.
fn scheme_of(storage_type: BackupStorageType) -> &'static str {
    match storage_type {
        BackupStorageType::Azure => AZURE_SCHEME,
        _ => S3_SCHEME,
    }
}

/// Where the backup is, as Percona writes a destination:
/// `s3://<bucket>/<path>` or `azure://<container>/<path>`.
fn destination(
    backup: &RestoreBackup,
    storage: &StorageInput,
    bucket: &str,
) -> Result<String, BuildError> {
    let scheme = scheme_of(storage.spec.type_);
    match backup {
        RestoreBackup::Taken {
            backup_name,
            destination,
            ..
        } => {
            let destination = destination
                .as_deref()
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .ok_or_else(|| BuildError::InvalidBackup {
                    why: format!(
                        "DatabaseBackup {backup_name:?} has no recorded destination, so where Percona wrote it is unknown"
                    ),
                })?;
            let written_to = destination
                .strip_prefix(scheme)
                .and_then(|rest| rest.split_once('/'))
                .map(|(written_bucket, path)| (written_bucket, path.trim_matches('/')));
            match written_to {
                Some((written_bucket, path)) if written_bucket == bucket && !path.is_empty() => {
                    Ok(destination.trim_end_matches('/').to_owned())
                }
                _ => Err(BuildError::InvalidBackup {
                    why: format!(
                        "DatabaseBackup {backup_name:?} was written to {destination:?}, which is not a backup in {scheme}{bucket}/ of BackupStorage {:?}",
                        storage.name
                    ),
                }),
            }
        }
        RestoreBackup::Path(path) => {
            let path = path.trim().trim_matches('/');
            if path.is_empty() {
                return Err(BuildError::InvalidBackup {
                    why: "the backup's path in the storage is empty".to_owned(),
                });
            }
            Ok(format!("{scheme}{bucket}/{path}"))
        }
    }
}

/// The destination without its scheme and its last segment (the backup's
/// own name): `<bucket>[/<folders>]`, which Percona takes as the bucket
/// with a prefix.
fn folder_of(destination: &str) -> String {
    let location = destination
        .strip_prefix(S3_SCHEME)
        .or_else(|| destination.strip_prefix(AZURE_SCHEME))
        .unwrap_or(destination);
    location
        .rsplit_once('/')
        .map_or(location, |(folder, _)| folder)
        .to_owned()
}

/// Where the binlogs after the backup are: the folder the source cluster's
/// PITR uploads to (`<bucket>/[prefix/]<namespace>/<cluster>/binlogs`,
/// as [`super::backup`] declares it).
fn binlog_location(
    backup: &RestoreBackup,
    storage: &StorageInput,
    bucket: &str,
) -> Result<String, BuildError> {
    match backup {
        RestoreBackup::Taken {
            source_cluster,
            source_namespace,
            ..
        } => Ok(format!(
            "{bucket}/{}/{BINLOG_FOLDER}",
            source_cluster_path(&storage.spec, source_namespace, source_cluster)
        )),
        RestoreBackup::Path(_) => Err(BuildError::InvalidBackup {
            why: "a point-in-time restore needs the binlogs of the cluster the backup was taken of, which a backup given by its path does not tell; restore it without pitr, or restore a DatabaseBackup".to_owned(),
        }),
    }
}

/// The path of a cluster in a storage, `[prefix/]namespace/cluster`: the
/// layout of [`crate::backup::cluster_path`], for a cluster known only by
/// name.
fn source_cluster_path(spec: &BackupStorageSpec, namespace: &str, cluster: &str) -> String {
    match spec.prefix.as_deref().map(|p| p.trim_matches('/')) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}/{namespace}/{cluster}"),
        _ => format!("{namespace}/{cluster}"),
    }
}

/// `pitr.backupSource`: the binlog folder in the storage, with the same
/// credentials as the backup.
fn pitr_source(
    storage: &StorageInput,
    binlogs: String,
    credentials_secret: String,
) -> PerconaXtraDbClusterRestorePitrBackupSource {
    let mut source = PerconaXtraDbClusterRestorePitrBackupSource {
        verify_tls: Some(storage.spec.verify_tls),
        ..Default::default()
    };
    match storage.spec.type_ {
        BackupStorageType::Azure => {
            source.storage_type = Some("azure".to_owned());
            source.azure = Some(PerconaXtraDbClusterRestorePitrBackupSourceAzure {
                container: Some(binlogs),
                credentials_secret: Some(credentials_secret),
                endpoint_url: storage.spec.endpoint_url.clone(),
                ..Default::default()
            });
        }
        _ => {
            source.storage_type = Some("s3".to_owned());
            source.s3 = Some(PerconaXtraDbClusterRestorePitrBackupSourceS3 {
                bucket: Some(binlogs),
                credentials_secret: Some(credentials_secret),
                endpoint_url: storage.spec.endpoint_url.clone(),
                region: storage.spec.region.clone(),
                force_path_style: storage.spec.force_path_style,
                ..Default::default()
            });
        }
    }
    source
}

/// Reads a PerconaXtraDBClusterRestore's status in our vocabulary. Read as
/// JSON, field by field, so an odd field never hides the rest.
pub fn observe_restore(engine_restore: &DynamicObject) -> RestoreObservation {
    let status = engine_restore.data.get("status");
    let text = |field: &str| {
        status
            .and_then(|s| s.get(field))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    };
    let state = text("state").unwrap_or_default();
    let comments = text("comments");
    let is = |known: &str| state.eq_ignore_ascii_case(known);
    let in_words = || match comments {
        Some(comments) => format!("Percona: {state}: {comments}"),
        None => format!("Percona: {state}"),
    };
    let (phase, message) = if state.is_empty() {
        (RestorePhase::Pending, comments.map(str::to_owned))
    } else if is(restore_state::SUCCEEDED) {
        (RestorePhase::Succeeded, Some(in_words()))
    } else if is(restore_state::FAILED) {
        (
            RestorePhase::Failed,
            Some(
                comments
                    .map(str::to_owned)
                    .unwrap_or_else(|| "Percona reports the restore failed".to_owned()),
            ),
        )
    } else if [
        restore_state::STARTING,
        restore_state::STOPPING_CLUSTER,
        restore_state::RESTORING,
        restore_state::STARTING_CLUSTER,
        restore_state::PITR,
        restore_state::PREPARING_CLUSTER,
    ]
    .into_iter()
    .any(is)
    {
        (RestorePhase::Running, Some(in_words()))
    } else {
        // Any state Percona has written means it took the restore up (and
        // may have stopped the cluster): under way, not pending.
        (
            RestorePhase::Running,
            Some(format!(
                "the Percona operator reports an unrecognised restore state: {state}{}",
                comments.map(|c| format!(": {c}")).unwrap_or_default()
            )),
        )
    };
    RestoreObservation {
        phase,
        completed_at: match phase {
            RestorePhase::Succeeded => parse_time(text("completed")),
            _ => None,
        },
        message,
    }
}
