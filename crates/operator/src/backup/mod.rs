//! The DatabaseBackup controller: dereference (the backup's cluster, its
//! storage, the engine's backup resource if it exists) -> validate -> build
//! (the provider's pure `build_backup`) -> apply (the engine's backup
//! resource, created once) -> status (the engine's report in our words).
//!
//! A backup is taken once: after the engine's backup resource exists, the
//! controller only reads it. A backup that cannot start yet (its cluster or
//! storage is missing, the storage's credentials are incomplete) waits
//! Pending and is looked at again; one that can never start (no storage
//! named, a storage the cluster does not declare, an engine without
//! backups) fails at once with the reason.

pub mod restore;
pub mod scheduled;
pub mod storage;
pub mod storage_status;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::backup::{BackupPhase, DatabaseBackupStatus, LABEL_BACKUP};
use dbaas_api::common::{FIELD_MANAGER, condition};
use dbaas_api::{BackupScheduleTemplate, DatabaseBackup, DatabaseCluster, EngineType};
use dbaas_engines::backup::{BackupObservation, referenced_storages, storage_of};
use dbaas_engines::{EngineProvider, provider_for};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::controller::Action;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::cluster::status::set_condition;

/// How often a backup waiting for its cluster or storage is looked at again
/// (their watches are not wired to backups).
const WAIT_RETRY: Duration = Duration::from_secs(15);

/// What the DatabaseBackup controller works with.
pub struct BackupContext {
    pub client: Client,
}

/// Errors of a DatabaseBackup reconcile, by stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading what DatabaseBackup {backup} refers to: {source}")]
    Dereference {
        backup: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating the engine's backup resource for DatabaseBackup {backup}: {source}")]
    Apply {
        backup: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of DatabaseBackup {backup}: {source}")]
    Status {
        backup: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Dereference { .. } => "dereference",
            Self::Apply { .. } => "apply",
            Self::Status { .. } => "status",
        }
    }
}

/// Where the reconcile leaves the backup.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The engine's backup resource exists: its report.
    Observed {
        engine_backup: String,
        storage: Option<String>,
        /// Where `storage` is, when not in the backup's namespace.
        storage_namespace: Option<String>,
        observation: BackupObservation,
    },
    /// Cannot start yet; looked at again.
    Waiting {
        reason: &'static str,
        message: String,
    },
    /// Can never start.
    Refused {
        reason: &'static str,
        message: String,
    },
}

pub async fn reconcile(
    backup: Arc<DatabaseBackup>,
    ctx: Arc<BackupContext>,
) -> Result<Action, Error> {
    let namespace = backup.namespace().unwrap_or_default();
    let name = backup.name_any();
    let id = format!("{namespace}/{name}");
    let current = backup.status.clone().unwrap_or_default();
    if current.phase.is_some_and(BackupPhase::is_terminal)
        && current.observed_generation == backup.metadata.generation
    {
        return Ok(Action::await_change());
    }
    let outcome = take(&backup, &ctx.client, &namespace).await?;
    let next = status(
        &backup,
        &current,
        &outcome,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if next != current {
        apply_status::<DatabaseBackup>(&ctx.client, &namespace, &name, &next)
            .await
            .map_err(|source| Error::Status {
                backup: id.clone(),
                source,
            })?;
    }
    Ok(match outcome {
        Outcome::Waiting { .. } => Action::requeue(WAIT_RETRY),
        // The engine's backup resource is watched: its status writes wake us.
        Outcome::Observed { .. } | Outcome::Refused { .. } => Action::await_change(),
    })
}

/// The engine's backup resources of every provider that takes backups.
pub fn engine_backup_resources() -> Vec<ApiResource> {
    EngineType::ALL
        .into_iter()
        .filter_map(provider_for)
        .filter_map(|p| p.backup_resource())
        .collect()
}

/// How a DatabaseBackup's status names its engine backup resource:
/// `<Kind>.<group>/<name>`. A kind alone is ambiguous: CloudNativePG's and
/// mariadb-operator's are both `Backup`.
pub fn engine_backup_ref(resource: &ApiResource, name: &str) -> String {
    format!("{}.{}/{name}", resource.kind, resource.group)
}

/// Whether the recorded `engine_backup` (or an owner's `Kind.group`) names
/// a resource of `resource`'s kind and group. A record without a group,
/// written before groups were recorded, matches on the kind.
pub fn recorded_as(recorded: &str, resource: &ApiResource) -> bool {
    let kind_ref = recorded.split_once('/').map_or(recorded, |(kind, _)| kind);
    match kind_ref.split_once('.') {
        Some((kind, group)) => kind == resource.kind && group == resource.group,
        None => kind_ref == resource.kind,
    }
}

/// The provider whose backup resource `recorded` names (a record without a
/// group: the first provider with that kind, the one that wrote such
/// records).
pub(crate) fn provider_of_recorded(recorded: &str) -> Option<&'static dyn EngineProvider> {
    EngineType::ALL
        .into_iter()
        .filter_map(provider_for)
        .find(|p| {
            p.backup_resource()
                .is_some_and(|r| recorded_as(recorded, &r))
        })
}

/// Dereference, validate, build and apply; or read what the engine says.
async fn take(backup: &DatabaseBackup, client: &Client, namespace: &str) -> Result<Outcome, Error> {
    // A mirror of an engine's scheduled backup is only read.
    if let Some(schedule) = backup.spec.schedule_name.as_deref() {
        return scheduled::observe(backup, schedule, client, namespace).await;
    }
    let name = backup.name_any();
    let id = format!("{namespace}/{name}");
    let dereference = |source| Error::Dereference {
        backup: id.clone(),
        source,
    };
    let cluster = Api::<DatabaseCluster>::namespaced(client.clone(), namespace)
        .get_opt(&backup.spec.cluster_name)
        .await
        .map_err(dereference)?;
    let recorded = backup.status.as_ref().and_then(|s| s.engine_backup.clone());
    // Once taken, the engine is the one recorded, even if the cluster is gone.
    let provider = match (&recorded, &cluster) {
        (Some(recorded), _) => provider_of_recorded(recorded),
        (None, Some(cluster)) => provider_for(cluster.spec.engine.type_),
        (None, None) => None,
    };
    let resource = provider.and_then(|p| p.backup_resource());
    if let (Some(provider), Some(resource)) = (provider, &resource) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
        let existing = match api.get_opt(&name).await {
            // The engine operator's CRDs are not installed.
            Err(kube::Error::Api(status)) if status.code == 404 => None,
            other => other.map_err(dereference)?,
        };
        if let Some(existing) = existing {
            if !is_ours(&existing, backup) {
                return Ok(Outcome::Refused {
                    reason: "EngineObjectConflict",
                    message: format!(
                        "a {} named {name:?} already exists and is not this backup's; it is left untouched: choose another name",
                        resource.kind
                    ),
                });
            }
            // A status read from a cache may not hold what the reconcile
            // that took the backup recorded yet: the storage is worked out
            // again from the cluster rather than written back as unknown.
            let recorded_storage = backup.status.as_ref().and_then(|s| {
                s.storage_name
                    .clone()
                    .map(|name| (name, s.storage_namespace.clone()))
            });
            let (storage, storage_namespace) = match (recorded_storage, &cluster) {
                (Some((name, ns)), _) => (Some(name), ns),
                (None, Some(cluster)) => (
                    storage_of(backup, cluster),
                    Some(storage::storage_namespace(cluster)).filter(|ns| ns != namespace),
                ),
                (None, None) => (None, None),
            };
            return Ok(Outcome::Observed {
                engine_backup: engine_backup_ref(resource, &name),
                storage,
                storage_namespace,
                observation: provider.observe_backup(&existing),
            });
        }
    }
    if recorded.is_some() {
        return Ok(Outcome::Refused {
            reason: "EngineBackupDeleted",
            message: "the engine's backup resource was deleted before the backup completed"
                .to_owned(),
        });
    }
    let Some(cluster) = cluster else {
        return Ok(Outcome::Waiting {
            reason: "ClusterNotFound",
            message: format!(
                "DatabaseCluster {:?} does not exist in this namespace",
                backup.spec.cluster_name
            ),
        });
    };
    let engine = cluster.spec.engine.type_;
    let (Some(provider), Some(resource)) = (provider, resource) else {
        return Ok(Outcome::Refused {
            reason: "BackupsUnsupported",
            message: format!(
                "this operator takes no backups of {} clusters",
                engine.as_str()
            ),
        });
    };
    // The storages of the cluster's BackupScheduleTemplate are declared in
    // the engine resource like its own.
    let cluster = match crate::cluster::template::selected_schedule_template(&cluster) {
        None => cluster,
        Some(template) => {
            let found = Api::<BackupScheduleTemplate>::namespaced(client.clone(), namespace)
                .get_opt(template)
                .await
                .map_err(dereference)?;
            crate::cluster::template::with_found_schedule_template(&cluster, found.as_ref())
                .unwrap_or(cluster)
        }
    };
    let Some(storage_name) = storage_of(backup, &cluster) else {
        return Ok(Outcome::Refused {
            reason: "NoBackupStorage",
            message: format!(
                "the backup names no storageName and cluster {:?} has no default (backup.storageName, or a single storage in its backup spec)",
                backup.spec.cluster_name
            ),
        });
    };
    // The engine resource declares the storages of the cluster's backup
    // spec; an engine backup can only write to one of those.
    if !referenced_storages(&cluster.spec).contains(&storage_name) {
        return Ok(Outcome::Refused {
            reason: "BackupStorageNotDeclared",
            message: format!(
                "cluster {:?} does not use BackupStorage {storage_name:?}: add it to the cluster's spec.backup (storageName or a schedule) first",
                backup.spec.cluster_name
            ),
        });
    }
    let storage_namespace = storage::storage_namespace(&cluster);
    let lookup = storage::find(client, &storage_namespace, &storage_name, namespace)
        .await
        .map_err(dereference)?;
    if let Some((reason, message)) = storage::refusal(&lookup) {
        return Ok(Outcome::Waiting { reason, message });
    }
    let Some(storage) = storage::input(&lookup) else {
        return Ok(Outcome::Waiting {
            reason: "BackupStorageNotFound",
            message: format!("BackupStorage {storage_name:?} cannot be used"),
        });
    };
    // A storage of another namespace: the engine reads the copy of its
    // credentials, kept by the cluster controller; made here too so the
    // backup does not wait for it.
    if let Some(copy) = storage::copy_of(&lookup) {
        let synced = storage::sync_copy(client, &cluster, &copy)
            .await
            .map_err(dereference)?;
        if let storage::CopyOutcome::Conflict { message } = synced {
            return Ok(Outcome::Waiting {
                reason: "BackupCredentialsConflict",
                message,
            });
        }
    }
    let built = match provider.build_backup(backup, &cluster, &storage) {
        Ok(built) => built,
        Err(err) => {
            return Ok(Outcome::Refused {
                reason: err.reason(),
                message: err.to_string(),
            });
        }
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&built),
        )
        .await;
    let applied = match applied {
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Ok(Outcome::Waiting {
                reason: "EngineNotInstalled",
                message: format!(
                    "the {} operator's {} resource is not served: install the engine operator",
                    engine.as_str(),
                    resource.kind
                ),
            });
        }
        other => other.map_err(|source| Error::Apply {
            backup: id.clone(),
            source,
        })?,
    };
    Ok(Outcome::Observed {
        engine_backup: engine_backup_ref(&resource, &name),
        storage: Some(storage_name),
        storage_namespace: Some(storage_namespace).filter(|ns| ns != namespace),
        observation: provider.observe_backup(&applied),
    })
}

/// An engine backup resource is this backup's when it carries its label and
/// is controlled by it.
fn is_ours(object: &DynamicObject, backup: &DatabaseBackup) -> bool {
    let labelled = object
        .labels()
        .get(LABEL_BACKUP)
        .is_some_and(|v| Some(v.as_str()) == backup.metadata.name.as_deref());
    let controlled = object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == backup.meta().uid.as_ref());
    labelled && controlled
}

/// The status the outcome calls for. Pure.
fn status(
    backup: &DatabaseBackup,
    current: &DatabaseBackupStatus,
    outcome: &Outcome,
    now: &Time,
) -> DatabaseBackupStatus {
    let generation = backup.metadata.generation;
    let mut next = DatabaseBackupStatus {
        observed_generation: generation,
        ..current.clone()
    };
    match outcome {
        Outcome::Observed {
            engine_backup,
            storage,
            storage_namespace,
            observation,
        } => {
            next.phase = Some(observation.phase);
            next.engine_backup = Some(engine_backup.clone());
            if storage.is_some() {
                next.storage_name = storage.clone();
                next.storage_namespace = storage_namespace.clone();
            }
            next.destination = observation.destination.clone().or(next.destination);
            next.started_at = observation.started_at.clone().or(next.started_at);
            next.completed_at = observation.completed_at.clone().or(next.completed_at);
            next.message = observation.message.clone();
            set_condition(
                &mut next.conditions,
                condition::VALID,
                true,
                "BackupAccepted",
                format!("taken by {engine_backup}"),
                generation,
                now,
            );
        }
        Outcome::Waiting { reason, message } | Outcome::Refused { reason, message } => {
            let refused = matches!(outcome, Outcome::Refused { .. });
            if refused {
                next.phase = Some(BackupPhase::Failed);
                next.completed_at = next.completed_at.or_else(|| Some(now.clone()));
            } else {
                next.phase = Some(BackupPhase::Pending);
            }
            next.message = Some(message.clone());
            set_condition(
                &mut next.conditions,
                condition::VALID,
                false,
                reason,
                message.clone(),
                generation,
                now,
            );
        }
    }
    next
}

/// Applies `status` to the status subresource of the `K` called `name`
/// (our field manager owns the whole status).
pub(crate) async fn apply_status<K>(
    client: &Client,
    namespace: &str,
    name: &str,
    status: &impl serde::Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    Api::<K>::namespaced(client.clone(), namespace)
        .patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
}

/// Retry failed reconciles after a pause; conflicts and API hiccups heal.
pub fn error_policy(
    _backup: Arc<DatabaseBackup>,
    error: &Error,
    _ctx: Arc<BackupContext>,
) -> Action {
    tracing::warn!("{error}");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_backups_of_the_same_kind_are_told_apart_by_their_group() {
        let pg = provider_for(EngineType::Postgresql).unwrap();
        let maria = provider_for(EngineType::Mariadb).unwrap();
        let (pg_backup, maria_backup) = (
            pg.backup_resource().unwrap(),
            maria.backup_resource().unwrap(),
        );
        assert_eq!(pg_backup.kind, maria_backup.kind, "both are `Backup`");
        let recorded = engine_backup_ref(&maria_backup, "nightly");
        assert_eq!(recorded, "Backup.k8s.mariadb.com/nightly");
        assert_eq!(
            provider_of_recorded(&recorded).map(|p| p.engine()),
            Some(EngineType::Mariadb)
        );
        assert!(!recorded_as(&recorded, &pg_backup));
        // A record from before groups were recorded still reads as the kind.
        assert!(recorded_as("Backup/nightly", &pg_backup));
        assert_eq!(
            provider_of_recorded("PerconaXtraDBClusterBackup/nightly").map(|p| p.engine()),
            Some(EngineType::Mysql)
        );
    }
}
