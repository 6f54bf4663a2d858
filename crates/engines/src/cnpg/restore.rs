//! Restoring into a new cluster (`spec.dataSource`) through CloudNativePG,
//! which restores only by bootstrapping: the Cluster is built with
//! `bootstrap.recovery` instead of the default `initdb`, reading the base
//! backup and the WAL from the source's object store, declared as an
//! `externalClusters` entry.
//!
//! A source folder in a store is `<destinationPath>/<serverName>/`, holding
//! `base/<backupId>/` (base backups) and `wals/`. Our clusters archive to
//! `destination_path(storage, cluster)` with the cluster's name as server
//! name (see [`super::backup`]).
//!
//! The admin credentials need nothing here: `superuserSecret` and
//! `enableSuperuserAccess` stay in the Cluster spec, and CloudNativePG sets
//! the restored `postgres` password from that Secret once the instance runs.
//! `recovery.database`/`owner`/`secret` stay unset like `initdb`'s are
//! (CloudNativePG's defaults: `app`, owned by `app`, `<cluster>-app`).

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::PitrType;
use dbaas_engine_crds::cnpg_cluster::{
    ClusterBackup, ClusterBootstrap, ClusterBootstrapRecovery, ClusterBootstrapRecoveryBackup,
    ClusterBootstrapRecoveryRecoveryTarget, ClusterExternalClusters,
};
use kube::ResourceExt;

use super::backup::{object_store_at, store_url};
use crate::backup::{StorageInput, cluster_path_of};
use crate::convert::retype;
use crate::provider::{BuildError, BuildInput, Unapplied};
use crate::restore::{RestoreBackup, RestoreInput};

/// The `externalClusters` entry the recovery reads from.
pub const RECOVERY_SOURCE: &str = "origin";

/// What `spec.dataSource` becomes in CloudNativePG terms.
#[derive(Debug)]
pub(super) struct RenderedRecovery {
    pub bootstrap: ClusterBootstrap,
    /// The source's store; `None` when CloudNativePG reads it from a Backup.
    pub external_clusters: Option<Vec<ClusterExternalClusters>>,
    pub unapplied: Vec<Unapplied>,
}

/// Where a restore reads from in an object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFolder {
    /// barman-cloud's `destinationPath`: the URL above the server folder.
    pub destination_path: String,
    /// barman-cloud's `serverName`: the server folder.
    pub server_name: String,
    /// A base backup in it (`base/<backupId>`), when one was named.
    pub backup_id: Option<String>,
}

/// Renders `cluster.spec.dataSource` as the operator looked it up; `None`
/// when the spec has none. `own_backup` is the Cluster's own store (from
/// [`super::backup::render`]), which must not be the folder restored from.
pub(super) fn render(
    cluster: &DatabaseCluster,
    input: &BuildInput<'_>,
    own_backup: Option<&ClusterBackup>,
) -> Result<Option<RenderedRecovery>, BuildError> {
    if cluster.spec.data_source.is_none() {
        return Ok(None);
    }
    // Bootstrapping without it would create an empty cluster and lose the
    // user's data silently.
    let source = input
        .data_source
        .ok_or_else(|| BuildError::InvalidBackup {
            why: "dataSource was not looked up; the cluster is not created until it is, rather than bootstrapped empty".to_owned(),
        })?;
    let target_time = target_time(source)?;

    if let (
        RestoreBackup::Taken {
            backup_name,
            source_namespace,
            ..
        },
        None,
    ) = (&source.backup, &source.storage)
    {
        return from_backup_object(cluster, backup_name, source_namespace, target_time).map(Some);
    }
    let storage = source.required_storage()?;
    let folder = source_folder(storage, &source.backup)?;
    refuse_own_archive(cluster, &folder, own_backup)?;

    // With PITR no base backup is named: CloudNativePG takes the latest one
    // before the target time, or the latest one for `latest`. Without a
    // target it replays every WAL archived after the base backup.
    let recovery_target = if source.pitr.is_some() {
        target_time.map(at_time)
    } else {
        folder
            .backup_id
            .clone()
            .map(|backup_id| ClusterBootstrapRecoveryRecoveryTarget {
                backup_id: Some(backup_id),
                ..Default::default()
            })
    };

    let (mut store, unapplied) = object_store_at(storage, folder.destination_path)?;
    store.server_name = Some(folder.server_name);
    Ok(Some(RenderedRecovery {
        bootstrap: ClusterBootstrap {
            recovery: Some(ClusterBootstrapRecovery {
                source: Some(RECOVERY_SOURCE.to_owned()),
                recovery_target,
                ..Default::default()
            }),
            ..Default::default()
        },
        external_clusters: Some(vec![ClusterExternalClusters {
            name: RECOVERY_SOURCE.to_owned(),
            barman_object_store: Some(retype("dataSource", &store)?),
            ..Default::default()
        }]),
        unapplied,
    }))
}

/// The time to stop the recovery at (`pitr.type: date`), in RFC 3339 (UTC),
/// which CloudNativePG's `targetTime` takes as is.
fn target_time(source: &RestoreInput) -> Result<Option<String>, BuildError> {
    match source.pitr.as_ref().map(|p| p.type_) {
        None | Some(PitrType::Latest) => Ok(None),
        Some(PitrType::Date) => source
            .pitr_date()
            .map(|date| Some(date.0.to_string()))
            .ok_or_else(|| BuildError::InvalidBackup {
                why: "dataSource.pitr.type date needs pitr.date".to_owned(),
            }),
    }
}

fn at_time(target_time: String) -> ClusterBootstrapRecoveryRecoveryTarget {
    ClusterBootstrapRecoveryRecoveryTarget {
        target_time: Some(target_time),
        ..Default::default()
    }
}

/// A DatabaseBackup whose storage was not looked up: CloudNativePG reads
/// the store from its Backup of the same name, which must be in the new
/// cluster's namespace.
fn from_backup_object(
    cluster: &DatabaseCluster,
    backup_name: &str,
    source_namespace: &str,
    target_time: Option<String>,
) -> Result<RenderedRecovery, BuildError> {
    if cluster.namespace().as_deref() != Some(source_namespace) {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "the restore's BackupStorage was not looked up, and CloudNativePG reads a Backup only in the new cluster's namespace, not in {source_namespace:?}"
            ),
        });
    }
    Ok(RenderedRecovery {
        bootstrap: ClusterBootstrap {
            recovery: Some(ClusterBootstrapRecovery {
                backup: Some(ClusterBootstrapRecoveryBackup {
                    name: backup_name.to_owned(),
                    ..Default::default()
                }),
                recovery_target: target_time.map(at_time),
                ..Default::default()
            }),
            ..Default::default()
        },
        external_clusters: None,
        unapplied: Vec::new(),
    })
}

/// The folder of `backup` in `storage`.
pub fn source_folder(
    storage: &StorageInput,
    backup: &RestoreBackup,
) -> Result<SourceFolder, BuildError> {
    match backup {
        RestoreBackup::Taken {
            source_cluster,
            source_namespace,
            destination,
            ..
        } => {
            // Where CloudNativePG reported writing it, when it did; else
            // where the source cluster archives (our layout).
            if let Some(written) = destination.as_deref().and_then(split_destination) {
                return Ok(written);
            }
            Ok(SourceFolder {
                destination_path: store_url(
                    storage,
                    &cluster_path_of(&storage.spec, source_namespace, source_cluster),
                )?,
                server_name: source_cluster.clone(),
                backup_id: None,
            })
        }
        RestoreBackup::Path(path) => {
            let (prefix, server_name, backup_id) = split_path(path)?;
            Ok(SourceFolder {
                destination_path: store_url(storage, &prefix)?,
                server_name,
                backup_id,
            })
        }
    }
}

/// A CloudNativePG backup's destination, `<destinationPath>/<serverName>/base/<backupId>`.
fn split_destination(destination: &str) -> Option<SourceFolder> {
    let (rest, backup_id) = destination.trim_end_matches('/').rsplit_once('/')?;
    let (rest, base) = rest.rsplit_once('/')?;
    let (destination_path, server_name) = rest.rsplit_once('/')?;
    (base == "base"
        && !backup_id.is_empty()
        && !server_name.is_empty()
        && destination_path.contains("://"))
    .then(|| SourceFolder {
        destination_path: destination_path.to_owned(),
        server_name: server_name.to_owned(),
        backup_id: Some(backup_id.to_owned()),
    })
}

/// Splits a user's path inside the bucket into the `destinationPath` part,
/// the server name and a backup ID. The path names a cluster folder, whose
/// last component is the server name (for our backups of cluster `c` in
/// namespace `ns`: `[<prefix>/]ns/c/c`), optionally followed by
/// `base/<backupId>` to restore that base backup.
fn split_path(path: &str) -> Result<(String, String, Option<String>), BuildError> {
    let refuse = |what: &str| BuildError::InvalidBackup {
        why: format!(
            "dataSource.backupSource.path {path:?} {what}; give the cluster folder inside the bucket, whose last component is the server name (for a cluster c of namespace ns: [<prefix>/]ns/c/c), optionally followed by base/<backupId>"
        ),
    };
    if path.contains("://") {
        return Err(refuse(
            "is a URL, not a path inside the BackupStorage's bucket",
        ));
    }
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Err(refuse("names no folder"));
    }
    let components: Vec<&str> = trimmed.split('/').collect();
    if components
        .iter()
        .any(|c| c.is_empty() || *c == "." || *c == "..")
    {
        return Err(refuse("has an empty, . or .. component"));
    }
    let (folder, backup_id) = match components.as_slice() {
        [folder @ .., server, "base", id] if is_backup_id(id) => {
            let mut folder = folder.to_vec();
            folder.push(server);
            (folder, Some((*id).to_owned()))
        }
        ["base", id] if is_backup_id(id) => return Err(refuse("names no server folder")),
        [.., "base"] => return Err(refuse("ends in base without a backup ID")),
        _ => (components, None),
    };
    let Some((server, prefix)) = folder.split_last() else {
        return Err(refuse("names no server folder"));
    };
    Ok((prefix.join("/"), (*server).to_owned(), backup_id))
}

/// barman's backup IDs: `YYYYMMDDThhmmss`.
fn is_backup_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 15
        && bytes[8] == b'T'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 8 || b.is_ascii_digit())
}

/// CloudNativePG checks at bootstrap that the new cluster's own archive
/// folder holds no WAL, and refuses to archive (so, to finish the recovery)
/// otherwise. Restoring from that very folder (a cluster recreated under
/// its old name, same storage) would always hit it: refuse up front. A
/// folder left by an earlier cluster of the same name cannot be seen from
/// here and shows as CloudNativePG's own "Expected empty archive" error.
fn refuse_own_archive(
    cluster: &DatabaseCluster,
    source: &SourceFolder,
    own_backup: Option<&ClusterBackup>,
) -> Result<(), BuildError> {
    let Some(own) = own_backup.and_then(|b| b.barman_object_store.as_ref()) else {
        return Ok(());
    };
    let own_server = own
        .server_name
        .clone()
        .unwrap_or_else(|| cluster.name_any());
    let same = |a: &str, b: &str| a.trim_end_matches('/') == b.trim_end_matches('/');
    if same(&own.destination_path, &source.destination_path) && own_server == source.server_name {
        return Err(BuildError::InvalidBackup {
            why: format!(
                "the cluster would archive its WAL into the folder it restores from ({}/{own_server}), and CloudNativePG archives only into an empty folder; give the new cluster another name, or back it up to another BackupStorage or prefix",
                own.destination_path.trim_end_matches('/'),
            ),
        });
    }
    Ok(())
}
