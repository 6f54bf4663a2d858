//! The dereference step of a restore, shared by an OpsRequest `Restore`
//! and a new cluster's `spec.dataSource`: the DatabaseBackup (or storage
//! path) it names, checked, and the storage it is in, turned into the
//! engines' [`RestoreInput`].

use dbaas_api::backup::BackupPhase;
use dbaas_api::cluster::PitrTarget;
use dbaas_api::{DatabaseBackup, EngineType};
use dbaas_engines::restore::{RestoreBackup, RestoreInput};
use kube::{Api, Client, ResourceExt};

use super::storage;

/// Why a restore cannot start. Nothing has been changed when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

/// What a restore names.
#[derive(Clone, Copy, Debug)]
pub enum Wanted<'a> {
    /// A DatabaseBackup in the restore's namespace.
    Backup(&'a str),
    /// A path in a BackupStorage of `storage_namespace` (the restore's
    /// namespace when `None`).
    Path {
        storage: &'a str,
        storage_namespace: Option<&'a str>,
        path: &'a str,
    },
}

/// What a DatabaseBackup says about where it is, once checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedBackup {
    pub source_cluster: String,
    pub storage_name: String,
    /// `None`: the backup's own namespace.
    pub storage_namespace: Option<String>,
    pub destination: Option<String>,
}

/// What a restore found: the engines' input, where its storage is, and the
/// credentials copy the restoring cluster needs when that is another
/// namespace.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub input: RestoreInput,
    pub storage_namespace: String,
    pub copy: Option<storage::CredentialsCopy>,
}

/// Checks that `backup` can be restored into an `engine` cluster: it
/// succeeded, and its engine (read from the kind of the engine backup that
/// took it) is the cluster's. Pure.
pub fn check_backup(backup: &DatabaseBackup, engine: EngineType) -> Result<CheckedBackup, Refusal> {
    let name = backup.name_any();
    let status = backup.status.clone().unwrap_or_default();
    let phase = status.phase.unwrap_or(BackupPhase::Pending);
    if phase != BackupPhase::Succeeded {
        return Err(Refusal {
            reason: "BackupNotSucceeded",
            message: format!(
                "DatabaseBackup {name} is {phase:?}: only a Succeeded backup can be restored"
            ),
        });
    }
    // The engine that took it, as the record names it (an old record
    // without a group is read as the engine that wrote such records).
    let taken_here = status
        .engine_backup
        .as_deref()
        .and_then(super::provider_of_recorded)
        .is_some_and(|p| p.engine() == engine);
    if !taken_here {
        return Err(Refusal {
            reason: "BackupEngineMismatch",
            message: format!(
                "DatabaseBackup {name} was taken by {} and cannot be restored into a {engine} cluster",
                status
                    .engine_backup
                    .as_deref()
                    .unwrap_or("an unknown engine")
            ),
        });
    }
    let Some(storage_name) = status.storage_name else {
        return Err(Refusal {
            reason: "BackupNotSucceeded",
            message: format!("DatabaseBackup {name} records no storage"),
        });
    };
    Ok(CheckedBackup {
        source_cluster: backup.spec.cluster_name.clone(),
        storage_name,
        storage_namespace: status.storage_namespace,
        destination: status.destination,
    })
}

/// Looks up what `wanted` names in `namespace` and checks it can be
/// restored into an `engine` cluster of that namespace.
pub async fn resolve(
    client: &Client,
    namespace: &str,
    engine: EngineType,
    wanted: Wanted<'_>,
    pitr: Option<&PitrTarget>,
) -> Result<Result<Resolved, Refusal>, kube::Error> {
    let (backup, storage_name, storage_namespace) = match wanted {
        Wanted::Backup(name) => {
            let backups: Api<DatabaseBackup> = Api::namespaced(client.clone(), namespace);
            let Some(found) = backups.get_opt(name).await? else {
                return Ok(Err(Refusal {
                    reason: "BackupNotFound",
                    message: format!(
                        "DatabaseBackup {name} does not exist in namespace {namespace}"
                    ),
                }));
            };
            let checked = match check_backup(&found, engine) {
                Ok(checked) => checked,
                Err(refusal) => return Ok(Err(refusal)),
            };
            (
                RestoreBackup::Taken {
                    backup_name: name.to_owned(),
                    source_cluster: checked.source_cluster,
                    source_namespace: namespace.to_owned(),
                    destination: checked.destination,
                },
                checked.storage_name,
                checked.storage_namespace,
            )
        }
        Wanted::Path {
            storage,
            storage_namespace,
            path,
        } => (
            RestoreBackup::Path(path.to_owned()),
            storage.to_owned(),
            storage_namespace.map(str::to_owned),
        ),
    };
    let storage_namespace = storage_namespace.unwrap_or_else(|| namespace.to_owned());
    resolved_in(
        client,
        namespace,
        backup,
        &storage_namespace,
        &storage_name,
        pitr,
    )
    .await
}

/// Looks up the storage a restore into `namespace` reads from, in
/// `storage_namespace`, and makes the engines' input of it.
pub async fn resolved_in(
    client: &Client,
    namespace: &str,
    backup: RestoreBackup,
    storage_namespace: &str,
    storage_name: &str,
    pitr: Option<&PitrTarget>,
) -> Result<Result<Resolved, Refusal>, kube::Error> {
    let lookup = storage::find(client, storage_namespace, storage_name, namespace).await?;
    if let Some((reason, message)) = storage::refusal(&lookup) {
        return Ok(Err(Refusal { reason, message }));
    }
    Ok(Ok(Resolved {
        input: RestoreInput {
            backup,
            storage: storage::input(&lookup),
            pitr: pitr.cloned(),
        },
        storage_namespace: storage_namespace.to_owned(),
        copy: storage::copy_of(&lookup),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(status: serde_json::Value) -> DatabaseBackup {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseBackup",
            "metadata": {"name": "nightly", "namespace": "ns"},
            "spec": {"clusterName": "pg"},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn a_succeeded_backup_of_the_same_engine_is_restorable() {
        let found = check_backup(
            &backup(serde_json::json!({
                "phase": "Succeeded", "storageName": "s3", "engineBackup": "Backup/nightly",
                "destination": "s3://b/ns/pg/pg/base/20261124T010203",
            })),
            EngineType::Postgresql,
        )
        .unwrap();
        assert_eq!(found.source_cluster, "pg");
        assert_eq!(found.storage_name, "s3");
        assert!(found.destination.unwrap().ends_with("20261124T010203"));
    }

    #[test]
    fn unfinished_failed_and_foreign_backups_are_refused() {
        for phase in ["Pending", "Running", "Failed"] {
            let refused = check_backup(
                &backup(serde_json::json!({"phase": phase, "storageName": "s3", "engineBackup": "Backup/nightly"})),
                EngineType::Postgresql,
            )
            .unwrap_err();
            assert_eq!(refused.reason, "BackupNotSucceeded", "{phase}");
            assert!(refused.message.contains(phase), "{}", refused.message);
        }
        let refused = check_backup(
            &backup(serde_json::json!({"phase": "Succeeded", "storageName": "s3", "engineBackup": "Backup/nightly"})),
            EngineType::Mysql,
        )
        .unwrap_err();
        assert_eq!(refused.reason, "BackupEngineMismatch");
        assert!(refused.message.contains("mysql"), "{}", refused.message);
        // A CloudNativePG record from before groups were recorded is not
        // mariadb-operator's, although its kind is `Backup` too.
        let refused = check_backup(
            &backup(serde_json::json!({"phase": "Succeeded", "storageName": "s3", "engineBackup": "Backup/nightly"})),
            EngineType::Mariadb,
        )
        .unwrap_err();
        assert_eq!(refused.reason, "BackupEngineMismatch");
        let found = check_backup(
            &backup(
                serde_json::json!({"phase": "Succeeded", "storageName": "s3",
                "engineBackup": "Backup.k8s.mariadb.com/nightly"}),
            ),
            EngineType::Mariadb,
        );
        assert!(found.is_ok(), "{:?}", found.err().map(|r| r.message));
        let no_status = backup(serde_json::json!({}));
        assert_eq!(
            check_backup(&no_status, EngineType::Mysql)
                .unwrap_err()
                .reason,
            "BackupNotSucceeded"
        );
    }
}
