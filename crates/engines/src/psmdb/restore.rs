//! Restores through Percona Backup for MongoDB (PBM), as the Percona
//! Operator for MongoDB drives it: one `PerconaServerMongoDBRestore` per
//! restore into a running cluster.
//!
//! The restore names its backup by `backupSource` (where it is in the
//! storage, and the storage itself), never by `backupName`: that way it
//! works for another cluster's backup and after the engine's backup object
//! is gone. The operator takes the PBM backup name from the last segment of
//! `destination` and reads the backup from the storage block, whose prefix
//! is the directory holding it.
//!
//! | ours | Percona |
//! |---|---|
//! | the restore | `PerconaServerMongoDBRestore {clusterName, backupSource: {type: logical, destination, <storage>}}` |
//! | backup taken by us | `destination` = the engine backup's recorded `status.destination` |
//! | backup at a path | `destination` = `s3://<bucket>/<path>` / `azure://<container>/<path>` |
//! | BackupStorage s3 | `backupSource.s3: {bucket, prefix, region, endpointUrl, forcePathStyle, insecureSkipTLSVerify: !verifyTLS, credentialsSecret}` |
//! | BackupStorage azure | `backupSource.azure: {container, prefix, endpointUrl, credentialsSecret}` |
//! | BackupStorage filesystem | `storageName` + `backupSource.filesystem: {path}`: the cluster's own mount, so only its own backups |
//! | BackupStorage gcs | refused, as for backups |
//! | pitr | `pitr: {type: latest}` or `pitr: {type: date, date: "YYYY-MM-DD hh:mm:ss"}` |

use dbaas_api::DatabaseCluster;
use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::PitrType;
use dbaas_engine_crds::psmdb_restore::{
    PerconaServerMongoDbRestore, PerconaServerMongoDbRestoreBackupSource,
    PerconaServerMongoDbRestoreBackupSourceAzure,
    PerconaServerMongoDbRestoreBackupSourceFilesystem, PerconaServerMongoDbRestoreBackupSourceS3,
    PerconaServerMongoDbRestorePitr, PerconaServerMongoDbRestoreSpec,
};
use kube::ResourceExt;
use kube::core::DynamicObject;

use super::backup::FILESYSTEM_MOUNT_ROOT;
use crate::backup::{StorageInput, cluster_path, parse_time, referenced_storages};
use crate::provider::{BuildError, to_dynamic};
use crate::restore::{RestoreBackup, RestoreInput, RestoreObservation, RestorePhase, percona_date};
use crate::shared::restore_metadata;

/// Percona's `PerconaServerMongoDBRestore` `status.state` values
/// (`pkg/apis/psmdb/v1/perconaservermongodbrestore_types.go`, `RestoreState`).
pub mod state {
    /// Not picked up yet (the empty string).
    pub const NEW: &str = "";
    /// Waiting for the cluster, the pbm-agents, or another backup or restore.
    pub const WAITING: &str = "waiting";
    /// Sent to PBM, which is starting it.
    pub const REQUESTED: &str = "requested";
    pub const REJECTED: &str = "rejected";
    pub const RUNNING: &str = "running";
    pub const ERROR: &str = "error";
    pub const READY: &str = "ready";
}

/// The backup type our backups are (`build_backup` takes logical ones).
const LOGICAL: &str = "logical";

/// Where a backup is inside a storage: the directory PBM treats as the
/// storage root (`prefix`) and the backup's name there.
#[derive(Debug, PartialEq)]
struct Location {
    prefix: Option<String>,
    name: String,
}

impl Location {
    /// Splits `dir/.../name` (relative to the bucket, slashes trimmed).
    fn parse(path: &str, whole: &str) -> Result<Self, BuildError> {
        let path = path.trim_matches('/');
        let (prefix, name) = match path.rsplit_once('/') {
            Some((prefix, name)) => (Some(prefix.trim_end_matches('/')), name),
            None => (None, path),
        };
        if name.is_empty() {
            return Err(invalid(format!(
                "{whole:?} names no backup: give the path of the backup inside the storage"
            )));
        }
        Ok(Self {
            prefix: prefix.filter(|p| !p.is_empty()).map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// `prefix/name`, relative to the bucket.
    fn path(&self) -> String {
        match &self.prefix {
            Some(prefix) => format!("{prefix}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

fn invalid(why: String) -> BuildError {
    BuildError::InvalidBackup { why }
}

/// The PerconaServerMongoDBRestore called `name` that restores `source`
/// into the running `cluster`.
pub fn build_restore(
    name: &str,
    cluster: &DatabaseCluster,
    source: &RestoreInput,
) -> Result<DynamicObject, BuildError> {
    let storage = source.required_storage()?;
    let (storage_name, backup_source) = match storage.spec.type_ {
        BackupStorageType::S3 => (None, s3_source(storage, &source.backup)?),
        BackupStorageType::Azure => (None, azure_source(storage, &source.backup)?),
        BackupStorageType::Filesystem => (
            Some(storage.name.clone()),
            filesystem_source(cluster, storage, &source.backup)?,
        ),
        BackupStorageType::Gcs => {
            return Err(invalid(format!(
                "BackupStorage {:?} is a gcs storage, which this operator cannot configure for MongoDB clusters",
                storage.name
            )));
        }
    };
    let object = PerconaServerMongoDbRestore {
        metadata: restore_metadata(name, cluster, EngineType::Mongodb),
        spec: PerconaServerMongoDbRestoreSpec {
            cluster_name: Some(cluster.name_any()),
            storage_name,
            backup_source: Some(backup_source),
            pitr: pitr(source)?,
            ..Default::default()
        },
        status: None,
    };
    to_dynamic(&object)
}

/// PITR replays oplog chunks from the storage the restore reads (the
/// operator makes the `backupSource` storage PBM's main one for a PITR
/// restore), and PBM keeps them under the same root as the backups
/// (`<prefix>/pbmPitr/`). That holds for a backup at a path too: its
/// directory is the root PBM wrote it and, with PITR on, the oplog into.
/// Where no chunk covers the target, PBM refuses the restore and the
/// operator reports PBM's error, so it is allowed rather than guessed at.
fn pitr(source: &RestoreInput) -> Result<Option<PerconaServerMongoDbRestorePitr>, BuildError> {
    let Some(target) = source.pitr.as_ref() else {
        return Ok(None);
    };
    Ok(Some(match target.type_ {
        PitrType::Latest => PerconaServerMongoDbRestorePitr {
            r#type: Some("latest".to_owned()),
            date: None,
        },
        PitrType::Date => {
            let date = source
                .pitr_date()
                .ok_or_else(|| invalid("pitr.type is date but pitr.date is not set".to_owned()))?;
            PerconaServerMongoDbRestorePitr {
                r#type: Some("date".to_owned()),
                date: Some(percona_date(date)),
            }
        }
    }))
}

fn bucket(storage: &StorageInput) -> Result<String, BuildError> {
    storage
        .spec
        .bucket
        .clone()
        .ok_or_else(|| invalid(format!("BackupStorage {:?} names no bucket", storage.name)))
}

/// The destination to send and where the backup is: for a backup we took,
/// its recorded destination, which must lie below `root` (or one of
/// `alternates`, other spellings of the same root); for a path, `root`
/// followed by the path.
fn locate(
    backup: &RestoreBackup,
    storage: &StorageInput,
    root: &str,
    alternates: &[String],
) -> Result<(String, Location), BuildError> {
    match backup {
        RestoreBackup::Taken {
            backup_name,
            destination,
            ..
        } => {
            let destination = destination
                .as_deref()
                .filter(|d| !d.is_empty())
                .ok_or_else(|| {
                    invalid(format!(
                        "backup {backup_name:?} has no recorded destination, so where it is in the storage is unknown"
                    ))
                })?;
            let inside = std::iter::once(root)
                .chain(alternates.iter().map(String::as_str))
                .find_map(|root| destination.strip_prefix(root))
                .ok_or_else(|| {
                    invalid(format!(
                        "backup {backup_name:?} was written to {destination:?}, which is not in BackupStorage {:?} ({root})",
                        storage.name
                    ))
                })?;
            Ok((
                destination.to_owned(),
                Location::parse(inside, destination)?,
            ))
        }
        RestoreBackup::Path(path) => {
            let location = Location::parse(path, path)?;
            Ok((format!("{root}{}", location.path()), location))
        }
    }
}

fn s3_source(
    storage: &StorageInput,
    backup: &RestoreBackup,
) -> Result<PerconaServerMongoDbRestoreBackupSource, BuildError> {
    let spec = &storage.spec;
    let bucket = bucket(storage)?;
    let root = format!("s3://{bucket}/");
    // Percona writes `s3://<bucket>/<prefix>/<PBM name>`.
    let (destination, location) = locate(backup, storage, &root, &[])?;
    Ok(PerconaServerMongoDbRestoreBackupSource {
        r#type: Some(LOGICAL.to_owned()),
        destination: Some(destination),
        s3: Some(PerconaServerMongoDbRestoreBackupSourceS3 {
            bucket,
            prefix: location.prefix,
            region: spec.region.clone(),
            endpoint_url: spec.endpoint_url.clone(),
            force_path_style: spec.force_path_style,
            insecure_skip_tls_verify: Some(!spec.verify_tls),
            credentials_secret: Some(storage.required_credentials()?),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn azure_source(
    storage: &StorageInput,
    backup: &RestoreBackup,
) -> Result<PerconaServerMongoDbRestoreBackupSource, BuildError> {
    let spec = &storage.spec;
    let container = bucket(storage)?;
    let root = format!("azure://{container}/");
    // Percona writes `azure://<container>/<prefix>/<PBM name>`, or with
    // an endpoint URL (some versions) `<endpoint>/<container>/...`.
    let endpoint_root = spec
        .endpoint_url
        .iter()
        .map(|endpoint| format!("{}/{container}/", endpoint.trim_end_matches('/')))
        .collect::<Vec<_>>();
    let (destination, location) = locate(backup, storage, &root, &endpoint_root)?;
    Ok(PerconaServerMongoDbRestoreBackupSource {
        r#type: Some(LOGICAL.to_owned()),
        destination: Some(destination),
        azure: Some(PerconaServerMongoDbRestoreBackupSourceAzure {
            container: Some(container),
            prefix: location.prefix,
            endpoint_url: spec.endpoint_url.clone(),
            credentials_secret: storage.required_credentials()?,
        }),
        ..Default::default()
    })
}

/// A filesystem storage is mounted into each cluster's pbm-agents at the
/// cluster's own directory of the volume (see `backup::filesystem`), so a
/// cluster sees its own backups only, and only while it declares the
/// storage. `storageName` names that mount; the filesystem block says the
/// same for the operator's storage resync.
fn filesystem_source(
    cluster: &DatabaseCluster,
    storage: &StorageInput,
    backup: &RestoreBackup,
) -> Result<PerconaServerMongoDbRestoreBackupSource, BuildError> {
    let cluster_name = cluster.name_any();
    if !referenced_storages(&cluster.spec).contains(&storage.name) {
        return Err(invalid(format!(
            "BackupStorage {:?} (filesystem) is not named in the backup spec of cluster {cluster_name:?}: its volume is mounted only into clusters that declare it",
            storage.name
        )));
    }
    let mount = format!("{FILESYSTEM_MOUNT_ROOT}/{}", storage.name);
    let own = cluster_path(&storage.spec, cluster);
    let other_cluster = |whose: &str| {
        invalid(format!(
            "{whose} is not a backup of cluster {cluster_name:?}: a filesystem storage shows each cluster only its own directory ({own}); use an s3 or azure storage to restore another cluster's backup"
        ))
    };
    let name = match backup {
        RestoreBackup::Taken {
            backup_name,
            source_cluster,
            source_namespace,
            ..
        } => {
            if *source_cluster != cluster_name
                || Some(source_namespace.as_str()) != cluster.metadata.namespace.as_deref()
            {
                return Err(other_cluster(&format!(
                    "backup {backup_name:?} (of {source_namespace}/{source_cluster})"
                )));
            }
            locate(backup, storage, &format!("{mount}/"), &[])?.1
        }
        RestoreBackup::Path(path) => {
            let inside = path
                .trim_matches('/')
                .strip_prefix(&format!("{own}/"))
                .ok_or_else(|| other_cluster(&format!("{path:?}")))?;
            Location::parse(inside, path)?
        }
    };
    // PBM reads the mount root; the backup must lie directly in it.
    if let Some(prefix) = &name.prefix {
        return Err(invalid(format!(
            "backup {:?} is in the sub-directory {prefix:?} of the cluster's directory, where this cluster's PBM does not look",
            name.name
        )));
    }
    Ok(PerconaServerMongoDbRestoreBackupSource {
        r#type: Some(LOGICAL.to_owned()),
        destination: Some(format!("{mount}/{}", name.name)),
        filesystem: Some(PerconaServerMongoDbRestoreBackupSourceFilesystem { path: mount }),
        ..Default::default()
    })
}

/// Reads a PerconaServerMongoDBRestore's status in our vocabulary.
pub fn observe_restore(engine_restore: &DynamicObject) -> RestoreObservation {
    let restore = match engine_restore
        .clone()
        .try_parse::<PerconaServerMongoDbRestore>()
    {
        Ok(restore) => restore,
        Err(err) => {
            return RestoreObservation {
                message: Some(format!(
                    "the PerconaServerMongoDBRestore cannot be read: {err}"
                )),
                ..RestoreObservation::pending()
            };
        }
    };
    let Some(status) = restore.status else {
        return RestoreObservation::pending();
    };
    let text = status.state.as_deref().unwrap_or(state::NEW);
    let error = status.error.as_deref().filter(|e| !e.is_empty());
    let phase = match text {
        state::NEW | state::WAITING => RestorePhase::Pending,
        state::REQUESTED | state::RUNNING => RestorePhase::Running,
        state::READY => RestorePhase::Succeeded,
        state::ERROR | state::REJECTED => RestorePhase::Failed,
        // A state this version does not know: not finished as far as we can tell.
        _ => RestorePhase::Pending,
    };
    let message = match (error, text) {
        (Some(error), _) => Some(error.to_owned()),
        (None, state::NEW) => None,
        (None, state::WAITING) => Some(
            "waiting: the Percona Operator for MongoDB waits for the cluster, its pbm-agents or another backup or restore".to_owned(),
        ),
        (None, state::REQUESTED | state::RUNNING | state::READY) => Some(text.to_owned()),
        (None, state::ERROR | state::REJECTED) => {
            Some(format!("the restore failed ({text}) without an error message"))
        }
        (None, other) => Some(format!(
            "the Percona Operator for MongoDB reports an unrecognised restore state: {other}"
        )),
    };
    RestoreObservation {
        phase,
        completed_at: (phase == RestorePhase::Succeeded)
            .then(|| parse_time(status.completed.as_deref()))
            .flatten(),
        message,
    }
}
