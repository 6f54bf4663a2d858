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
    shortname = "dbeng",
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
        name = "Upgrade",
        type_ = "string",
        json_path = ".status.upgradeAvailable.version"
    ),
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
#[x_kube(validation = Rule::new("!has(self.defaultVersion) || !has(self.allowedVersions) || size(self.allowedVersions) == 0 || self.defaultVersion in self.allowedVersions").message("defaultVersion must be one of allowedVersions").reason(Reason::FieldValueInvalid).field_path(".defaultVersion"))]
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
    /// How the engine operator is installed and upgraded. Unset: it is
    /// installed by other means (plain manifests, Helm) and detected from
    /// its CRDs and Deployment image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<EngineOperatorInstall>,
}

impl DatabaseEngineSpec {
    /// Whether the SRE allows `version`: every version when the list is
    /// empty; a build (`8.0.36-28.1`) also when its upstream version
    /// (`8.0.36`) is listed.
    pub fn allows(&self, version: &str) -> bool {
        let listed = |v: &str| self.allowed_versions.iter().any(|a| a == v);
        self.allowed_versions.is_empty()
            || listed(version)
            || version
                .split_once('-')
                .is_some_and(|(upstream, _)| listed(upstream))
    }
}

/// The engine operator, installed by the operator through OLM.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineOperatorInstall {
    /// Install from an OLM catalog (a Subscription with manual approval).
    pub olm: OlmSource,
    /// The upgrade the SRE approves: an operator version (`1.28.0`) or a
    /// ClusterServiceVersion name (`cloudnative-pg.v1.28.0`). An upgrade
    /// OLM offers is approved only when it matches; the first install is
    /// approved without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-+._a-zA-Z0-9]+$"))]
    pub approved_version: Option<String>,
}

/// Where OLM finds the engine operator.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OlmSource {
    /// The CatalogSource holding the operator's package.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub catalog_source: String,
    /// The CatalogSource's namespace (`olm`, `openshift-marketplace`, ...).
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub catalog_source_namespace: String,
    /// The operator's package in the catalog. Immutable: another package is
    /// another operator.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    #[x_kube(validation = Rule::new("self == oldSelf").message("olm.package is immutable: remove spec.operator, then set it again with the new package").reason(Reason::FieldValueForbidden))]
    pub package: String,
    /// The update channel (`stable`, `stable-v1`, ...).
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-+._a-zA-Z0-9]+$"))]
    pub channel: String,
    /// The ClusterServiceVersion to install first (`cloudnative-pg.v1.27.1`);
    /// unset: the channel's head.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "startingCSV"
    )]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-+._a-zA-Z0-9]+$"))]
    pub starting_csv: Option<String>,
    /// Which namespaces the operator serves when we create the namespace's
    /// OperatorGroup: `OwnNamespace` (default) or `AllNamespaces`. An
    /// existing OperatorGroup is reused as it is.
    #[serde(default)]
    pub install_mode: OlmInstallMode,
}

/// The OperatorGroup we create when the namespace has none.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum OlmInstallMode {
    /// The operator serves the DatabaseEngine's namespace only.
    #[default]
    OwnNamespace,
    /// The operator serves every namespace.
    AllNamespaces,
}

/// How the engine operator came to be installed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum OperatorInstallSource {
    /// By OLM, from the Subscription this DatabaseEngine asks for.
    Olm,
    /// By other means (plain manifests, Helm): detected from its CRDs and
    /// Deployment.
    Manifest,
}

/// An upgrade OLM offers (an InstallPlan waiting for approval).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorUpgrade {
    /// The operator version, from the ClusterServiceVersion name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The ClusterServiceVersion it would install.
    #[serde(rename = "csv")]
    pub csv: String,
    /// The InstallPlan waiting for approval.
    pub install_plan: String,
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
    /// How the operator is installed: `Olm` (spec.operator) or `Manifest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_source: Option<OperatorInstallSource>,
    /// The installed ClusterServiceVersion (OLM only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "installedCSV"
    )]
    pub installed_csv: Option<String>,
    /// An upgrade OLM offers that waits for `spec.operator.approvedVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_available: Option<OperatorUpgrade>,
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
