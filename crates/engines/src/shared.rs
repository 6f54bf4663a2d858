//! What every provider does the same way.

use std::collections::BTreeMap;

use dbaas_api::backup::LABEL_BACKUP;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

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

/// Identity of an engine's backup resource: named like the DatabaseBackup,
/// in its namespace, with our labels, and owned by it (deleting the
/// DatabaseBackup deletes the engine's record; what happens to the data in
/// the storage is the engine operator's rule).
pub(crate) fn backup_metadata(
    backup: &DatabaseBackup,
    cluster: &DatabaseCluster,
    engine: EngineType,
) -> ObjectMeta {
    let name = backup.metadata.name.clone().unwrap_or_default();
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (
            LABEL_CLUSTER.to_owned(),
            cluster.metadata.name.clone().unwrap_or_default(),
        ),
        (LABEL_ENGINE.to_owned(), engine.as_str().to_owned()),
        (LABEL_BACKUP.to_owned(), name.clone()),
    ]);
    ObjectMeta {
        name: Some(name),
        namespace: backup.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: backup.controller_owner_ref(&()).map(|owner| vec![owner]),
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
