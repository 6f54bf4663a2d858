//! What every provider does the same way.

use std::collections::BTreeMap;

use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseCluster, DatabaseClusterSpec, EngineType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

use crate::provider::{BuildError, Unapplied};

/// Identity of an engine object: the cluster's name and namespace, our
/// labels, and the DatabaseCluster as controller owner (so the garbage
/// collector removes it with the cluster).
pub(crate) fn engine_metadata(cluster: &DatabaseCluster, engine: EngineType) -> ObjectMeta {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (LABEL_CLUSTER.to_owned(), name.clone()),
        (LABEL_ENGINE.to_owned(), engine.as_str().to_owned()),
    ]);
    ObjectMeta {
        name: Some(name),
        namespace: cluster.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: cluster.controller_owner_ref(&()).map(|owner| vec![owner]),
        ..Default::default()
    }
}

/// The admin credentials Secret: the user's, or `<cluster>-<suffix>`.
pub(crate) fn credentials_secret_or(cluster: &DatabaseCluster, suffix: &str) -> String {
    cluster
        .spec
        .credentials_secret_name
        .clone()
        .unwrap_or_else(|| {
            format!(
                "{}-{suffix}",
                cluster.metadata.name.as_deref().unwrap_or_default()
            )
        })
}

/// Restoring into a new cluster is not built yet: refuse rather than build
/// an empty cluster, which would silently lose the user's data.
pub(crate) fn refuse_data_source(
    spec: &DatabaseClusterSpec,
    engine: EngineType,
) -> Result<(), BuildError> {
    match spec.data_source {
        Some(_) => Err(BuildError::Unsupported {
            engine: engine.as_str(),
            feature: "spec.dataSource (create from backup)",
            why: "restoring into a new cluster is not implemented by this operator version; the cluster was not created",
        }),
        None => Ok(()),
    }
}

/// Backups: accepted by every engine, not applied by this version yet.
pub(crate) fn unapplied_backup(spec: &DatabaseClusterSpec) -> Vec<Unapplied> {
    let mut unapplied = Vec::new();
    if spec
        .backup
        .as_ref()
        .is_some_and(|b| b.enabled || b.pitr.as_ref().is_some_and(|p| p.enabled))
    {
        unapplied.push(Unapplied {
            field: "backup",
            why: "scheduled backups and PITR are not configured by this operator version",
        });
    }
    unapplied
}
