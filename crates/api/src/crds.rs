//! The CustomResourceDefinitions of this API, and their YAML form as
//! committed in `deploy/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use schemars::{Schema, SchemaGenerator, json_schema};

use crate::{
    BackupScheduleTemplate, BackupStorage, DatabaseBackup, DatabaseClaim, DatabaseCluster,
    DatabaseClusterTemplate, DatabaseEngine, DatabaseServer, MonitoringConfig, OpsRequest,
};

/// Every CRD of the `dbaas.io` group.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        DatabaseCluster::crd(),
        DatabaseEngine::crd(),
        BackupStorage::crd(),
        DatabaseBackup::crd(),
        MonitoringConfig::crd(),
        OpsRequest::crd(),
        DatabaseClusterTemplate::crd(),
        BackupScheduleTemplate::crd(),
        DatabaseServer::crd(),
        DatabaseClaim::crd(),
    ]
}

/// The file name a CRD is committed under: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// The YAML committed for a CRD.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::ser::Error> {
    let body = serde_saphyr::to_string(crd)?;
    Ok(format!(
        "# Generated from crates/api by `cargo run -p dbaas-api --bin crdgen`. Do not edit.\n{body}"
    ))
}

/// Schema of a free-form object whose fields the API server keeps as sent
/// (used for engine-resource fragments in templates).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
