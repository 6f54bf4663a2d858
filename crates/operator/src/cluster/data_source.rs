//! A new cluster made from a backup (`spec.dataSource`).
//!
//! CloudNativePG restores while it bootstraps: its provider renders the
//! restore into the Cluster itself and the restore is done when the cluster
//! first becomes ready. The Percona operators restore into a running
//! cluster: the new cluster is created empty, and once it is up the
//! operator creates the engine's restore resource and reports `Restoring`
//! until the engine says the restore is done. While such a restore runs the
//! engine operator stops and starts the cluster itself, so the cluster
//! controller leaves the engine resource alone ([`restore_in_progress`]).
//!
//! What the dereference found is recorded in `status.dataSource`, so a
//! restored cluster does not depend on the DatabaseBackup existing later.

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::{ClusterPhase, DataSourceStatus, RestorePhase};
use dbaas_api::common::{FIELD_MANAGER, LABEL_CLUSTER, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::ops::OpsType;
use dbaas_engines::EngineProvider;
use dbaas_engines::restore::{LABEL_RESTORE, RestoreBackup};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::core::DynamicObject;
use kube::{Api, Resource, ResourceExt};

use crate::backup::restore::{self, Refusal, Resolved, Wanted};
use crate::context::Context;

/// The engine restore resource that restores a Percona cluster's
/// `spec.dataSource`.
pub fn restore_name(cluster: &str) -> String {
    format!("{cluster}-from-backup")
}

/// Looks up what `spec.dataSource` names; `None` when the cluster has none
/// or needs nothing looked up any more (its engine restored it already).
pub async fn lookup(
    ctx: &Context,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
) -> Result<Option<Result<Resolved, Refusal>>, kube::Error> {
    let Some(source) = &cluster.spec.data_source else {
        return Ok(None);
    };
    let namespace = cluster.namespace().unwrap_or_default();
    let recorded = cluster.status.as_ref().and_then(|s| s.data_source.as_ref());
    let finished = recorded
        .and_then(|r| r.phase)
        .is_some_and(RestorePhase::is_terminal);
    if finished && !provider.restores_at_bootstrap() {
        return Ok(None);
    }
    // Found before: only the storage is looked up again (its bucket and
    // credentials are rendered into the engine resource).
    if let (Some(backup_name), Some(recorded)) = (&source.backup_name, recorded)
        && let (Some(source_cluster), Some(storage_name)) =
            (&recorded.source_cluster, &recorded.storage_name)
        && recorded.backup_name.as_ref() == Some(backup_name)
    {
        let backup = RestoreBackup::Taken {
            backup_name: backup_name.clone(),
            source_cluster: source_cluster.clone(),
            source_namespace: namespace.clone(),
            destination: recorded.destination.clone(),
        };
        let storage_namespace = recorded.storage_namespace.as_ref().unwrap_or(&namespace);
        return restore::resolved_in(
            &ctx.client,
            &namespace,
            backup,
            storage_namespace,
            storage_name,
            source.pitr.as_ref(),
        )
        .await
        .map(Some);
    }
    let wanted = match (&source.backup_name, &source.backup_source) {
        (Some(name), _) => Wanted::Backup(name),
        (None, Some(path)) => Wanted::Path {
            storage: &path.storage_name,
            storage_namespace: path.storage_namespace.as_deref(),
            path: &path.path,
        },
        // The CRD's rule asks for exactly one of them.
        (None, None) => return Ok(None),
    };
    restore::resolve(
        &ctx.client,
        &namespace,
        cluster.spec.engine.type_,
        wanted,
        source.pitr.as_ref(),
    )
    .await
    .map(Some)
}

/// Whether a restore runs on the cluster right now: the Percona restore of
/// its dataSource, or an OpsRequest Restore at the head of its queue. The
/// engine operator then pauses and resumes the cluster itself, which our
/// apply must not undo.
pub fn restore_in_progress(cluster: &DatabaseCluster) -> bool {
    let Some(status) = &cluster.status else {
        return false;
    };
    let data_source = status.data_source.as_ref().is_some_and(|d| {
        d.engine_restore.is_some() && !d.phase.is_some_and(RestorePhase::is_terminal)
    });
    let operation = status.ops_queue.first().is_some_and(|head| {
        head.type_ == OpsType::Restore && head.phase == dbaas_api::ops::OpsPhase::Running
    });
    data_source || operation
}

/// What the dataSource status becomes after this reconcile, and whether the
/// cluster should be looked at again soon (the engine's restore resource
/// sends no event to the cluster).
pub struct Advanced {
    pub status: DataSourceStatus,
    pub look_again: bool,
}

/// Moves the dataSource restore on: records what was found, reports the
/// bootstrap (CloudNativePG) or creates and reads the engine restore
/// resource once the cluster is up (Percona).
pub async fn advance(
    ctx: &Context,
    cluster: &DatabaseCluster,
    provider: &dyn EngineProvider,
    input: Option<&Resolved>,
    restore_object: Option<&DynamicObject>,
    observed: ClusterPhase,
    now: &Time,
) -> Result<Option<Advanced>, kube::Error> {
    if cluster.spec.data_source.is_none() {
        return Ok(None);
    }
    let mut status = cluster
        .status
        .as_ref()
        .and_then(|s| s.data_source.clone())
        .unwrap_or_default();
    if status.phase.is_some_and(RestorePhase::is_terminal) {
        return Ok(Some(Advanced {
            status,
            look_again: false,
        }));
    }
    if let Some(input) = input {
        record(&mut status, cluster, input);
    }
    if provider.restores_at_bootstrap() {
        if observed == ClusterPhase::Ready {
            status.phase = Some(RestorePhase::Succeeded);
            status.completed_at = Some(now.clone());
            status.message = Some("the cluster was bootstrapped from the backup".to_owned());
        } else {
            status.phase = Some(RestorePhase::Running);
            status.started_at.get_or_insert_with(|| now.clone());
            status.message = Some("the cluster is being bootstrapped from the backup".to_owned());
        }
        return Ok(Some(Advanced {
            look_again: false,
            status,
        }));
    }
    let up = matches!(observed, ClusterPhase::Ready);
    let (Some(object), true) = (restore_object, up || status.engine_restore.is_some()) else {
        status.phase = Some(RestorePhase::Pending);
        status.message =
            Some("waiting for the new cluster to be up before restoring the backup".to_owned());
        return Ok(Some(Advanced {
            status,
            look_again: false,
        }));
    };
    let namespace = cluster.namespace().unwrap_or_default();
    let Some(resource) = provider.restore_resource() else {
        return Ok(None);
    };
    let mut object = object.clone();
    object.metadata.owner_references = cluster.controller_owner_ref(&()).map(|o| vec![o]);
    let name = object.name_any();
    let labels = object.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned());
    labels.insert(LABEL_CLUSTER.to_owned(), cluster.name_any());
    labels.insert(LABEL_RESTORE.to_owned(), name.clone());
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &namespace, &resource);
    let applied = match api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
    {
        Ok(applied) => applied,
        Err(kube::Error::Api(rejection)) if matches!(rejection.code, 400 | 403 | 422) => {
            status.phase = Some(RestorePhase::Failed);
            status.completed_at = Some(now.clone());
            status.message = Some(format!(
                "the API server refused the {} {}: {}",
                provider.operator_name(),
                resource.kind,
                rejection.message
            ));
            return Ok(Some(Advanced {
                status,
                look_again: false,
            }));
        }
        Err(other) => return Err(other),
    };
    status.engine_restore = Some(format!("{}/{name}", resource.kind));
    status.started_at.get_or_insert_with(|| now.clone());
    let observation = provider.observe_restore(&applied);
    status.phase = Some(observation.phase);
    status.message = Some(match (&observation.message, observation.phase) {
        (Some(message), _) => message.clone(),
        (None, RestorePhase::Succeeded) => "the backup was restored".to_owned(),
        (None, _) => format!("{} {name} is {:?}", resource.kind, observation.phase),
    });
    if observation.phase.is_terminal() {
        status.completed_at = Some(observation.completed_at.unwrap_or_else(|| now.clone()));
    }
    Ok(Some(Advanced {
        look_again: !observation.phase.is_terminal(),
        status,
    }))
}

/// Records what the dereference found.
fn record(status: &mut DataSourceStatus, cluster: &DatabaseCluster, resolved: &Resolved) {
    let input = &resolved.input;
    status.storage_name = input.storage.as_ref().map(|s| s.name.clone());
    status.storage_namespace = Some(resolved.storage_namespace.clone())
        .filter(|ns| Some(ns) != cluster.metadata.namespace.as_ref());
    match &input.backup {
        RestoreBackup::Taken {
            backup_name,
            source_cluster,
            destination,
            ..
        } => {
            status.backup_name = Some(backup_name.clone());
            status.source_cluster = Some(source_cluster.clone());
            status.destination = destination.clone();
        }
        RestoreBackup::Path(path) => status.destination = Some(path.clone()),
    }
}

/// The phase to show while the dataSource restore has not finished, or
/// failed: the engine's own phase says little then (the Percona operators
/// stop the cluster to restore it).
pub fn phase_override(status: &DataSourceStatus) -> Option<(ClusterPhase, String)> {
    let restoring = || {
        Some((
            ClusterPhase::Restoring,
            status
                .message
                .clone()
                .unwrap_or_else(|| "restoring the backup".to_owned()),
        ))
    };
    match status.phase? {
        RestorePhase::Running => restoring(),
        // Created but not yet started by the engine counts: the engine
        // will stop the cluster any moment.
        RestorePhase::Pending if status.engine_restore.is_some() => restoring(),
        RestorePhase::Failed => Some((
            ClusterPhase::Error,
            format!(
                "restoring spec.dataSource failed: {}",
                status.message.as_deref().unwrap_or("no reason given")
            ),
        )),
        RestorePhase::Pending | RestorePhase::Succeeded => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(status: serde_json::Value) -> DatabaseCluster {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
            "metadata": {"name": "my", "namespace": "ns"},
            "spec": {"engine": {"type": "mysql"}, "clusterSize": 3, "storage": {"size": "1Gi"}},
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn the_engine_resource_is_left_alone_only_while_a_restore_runs() {
        assert!(!restore_in_progress(&cluster(serde_json::json!({}))));
        assert!(restore_in_progress(&cluster(serde_json::json!({
            "dataSource": {"phase": "Running", "engineRestore": "PerconaXtraDBClusterRestore/my-from-backup"}
        }))));
        assert!(!restore_in_progress(&cluster(serde_json::json!({
            "dataSource": {"phase": "Succeeded", "engineRestore": "PerconaXtraDBClusterRestore/my-from-backup"}
        }))));
        // Waiting for the cluster to come up: nothing restores yet.
        assert!(!restore_in_progress(&cluster(serde_json::json!({
            "dataSource": {"phase": "Pending"}
        }))));
        assert!(restore_in_progress(&cluster(serde_json::json!({
            "opsQueue": [{"name": "r1", "type": "Restore", "phase": "Running"}]
        }))));
        assert!(!restore_in_progress(&cluster(serde_json::json!({
            "opsQueue": [{"name": "r1", "type": "Restore", "phase": "Pending"}]
        }))));
        assert!(!restore_in_progress(&cluster(serde_json::json!({
            "opsQueue": [{"name": "s1", "type": "HorizontalScaling", "phase": "Running"}]
        }))));
    }

    #[test]
    fn a_running_or_failed_restore_decides_the_phase() {
        let status = |phase| DataSourceStatus {
            phase: Some(phase),
            message: Some("engine words".to_owned()),
            ..Default::default()
        };
        assert_eq!(
            phase_override(&status(RestorePhase::Running)).map(|p| p.0),
            Some(ClusterPhase::Restoring)
        );
        let (phase, message) = phase_override(&status(RestorePhase::Failed)).unwrap();
        assert_eq!(phase, ClusterPhase::Error);
        assert!(message.contains("engine words"), "{message}");
        assert_eq!(phase_override(&status(RestorePhase::Succeeded)), None);
        assert_eq!(phase_override(&status(RestorePhase::Pending)), None);
        let created = DataSourceStatus {
            engine_restore: Some("PerconaXtraDBClusterRestore/my-from-backup".to_owned()),
            ..status(RestorePhase::Pending)
        };
        assert_eq!(
            phase_override(&created).map(|p| p.0),
            Some(ClusterPhase::Restoring)
        );
    }
}
