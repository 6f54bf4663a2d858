//! `DatabaseEngine`: per engine type, which operator provides it, whether it
//! is installed, which versions it offers and which the SRE allows.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::EngineType;

/// An engine type in a namespace: its operator and the database versions
/// users may run. The operator creates one per engine whose operator CRDs it
/// finds; the SRE edits `allowedVersions` and `defaultVersion`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseEngine",
    namespaced,
    status = "DatabaseEngineStatus",
    shortname = "dbengine",
    category = "dbaas",
    doc = "An engine type, its operator and the database versions users may run.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Operator",
        type_ = "string",
        json_path = ".status.operatorVersion"
    ),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.status"),
    printcolumn(
        name = "Default",
        type_ = "string",
        json_path = ".status.defaultVersion"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.defaultVersion) || size(self.allowedVersions) == 0 || self.defaultVersion in self.allowedVersions").message("defaultVersion must be one of allowedVersions").reason(Reason::FieldValueInvalid).field_path(".defaultVersion"))]
pub struct DatabaseEngineSpec {
    /// The engine type this object describes. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("type is immutable"))]
    pub type_: EngineType,
    /// Versions users may create or upgrade to. Empty: every offered version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_versions: Vec<String>,
    /// Version used when a DatabaseCluster names none (the recommended one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    /// Versions offered beyond the built-in catalogue, version -> image.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
}

/// Whether the engine operator is there.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "PascalCase")]
pub enum EngineOperatorStatus {
    /// CRDs present and the operator's Deployment found.
    Installed,
    /// CRDs present, operator Deployment not (yet) found.
    Installing,
    /// The operator's CRDs are not in the cluster.
    NotInstalled,
}

/// Observed state of a DatabaseEngine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEngineStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Whether the engine operator is installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<EngineOperatorStatus>,
    /// Version of the engine operator (from its Deployment image or its
    /// ClusterServiceVersion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_version: Option<String>,
    /// Versions the engine offers, each with its image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available_versions: Vec<EngineVersion>,
    /// The version used when a cluster names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// One database version an engine offers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineVersion {
    pub version: String,
    pub image: String,
    /// Whether the SRE allows it.
    pub allowed: bool,
    /// Whether it is the default (recommended) version.
    #[serde(default)]
    pub default: bool,
}
