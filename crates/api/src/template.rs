//! SRE/DBA-owned presets a DatabaseCluster can be made from. Merge priority:
//! what the user set > the chosen template > operator defaults.
//!
//! A cluster selects a template with the annotations
//! `dbaas.io/template-kind: DatabaseClusterTemplate` and
//! `dbaas.io/template-name: <name>` (same namespace); without both, no
//! template applies. The cluster's own settings always win; a template only
//! fills what the cluster leaves unset (clusterSize and storage.size are
//! always the cluster's: the API server defaults or requires them).

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::cluster::{BackupSchedule, SchedulingSpec};
use crate::common::{ConfigParameter, EngineType};

/// Set to `"true"` by whoever may write a DatabaseClusterTemplate (an SRE)
/// to let DatabaseClaims of its namespace provision clusters from it
/// (`spec.shape`). A template without it serves `DatabaseCluster`s only.
pub const ANNOTATION_USABLE_BY_CLAIMS: &str = "dbaas.io/usable-by-claims";

/// The largest `minStorageGB` (whole GiB) a claim may ask of this template;
/// no cap when unset.
pub const ANNOTATION_CLAIM_MAX_STORAGE_GB: &str = "dbaas.io/claim-max-storage-gb";

/// A preset for DatabaseClusters of one engine: resource size, engine
/// configuration, and a fragment merged into the generated engine resource
/// (fields the unified spec does not know). Its labels and annotations
/// propagate to what it produced.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseClusterTemplate",
    namespaced,
    shortname = "dbtpl",
    category = "dbaas",
    doc = "A preset (size, configuration, engine-resource fragment) for DatabaseClusters of one engine.",
    printcolumn(name = "Engine", type_ = "string", json_path = ".spec.engineType"),
    // `kubectl get ... --field-selector spec.engineType=mysql`: what a UI
    // offers for one engine, filtered by the API server.
    selectable = ".spec.engineType",
    printcolumn(
        name = "Description",
        type_ = "string",
        json_path = ".spec.description"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseClusterTemplateSpec {
    /// The engine this template fits.
    pub engine_type: EngineType,
    /// Shown to users choosing a template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// StorageClass for clusters that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// Default CPU and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Default engine configuration; a cluster's own entries win by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub config: Vec<ConfigParameter>,
    /// Default scheduling (node selector, tolerations, affinity, priority class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
    /// A fragment of the engine resource's `spec`, merged under what the
    /// operator generates (the operator's fields win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::crds::preserve_unknown_object")]
    pub engine_spec: Option<serde_json::Value>,
}

/// A preset backup schedule set. A cluster selects it with
/// `spec.backup.scheduleTemplateName` (same namespace); its schedules run
/// beside the cluster's own, which win by name.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "BackupScheduleTemplate",
    namespaced,
    shortname = "dbbst",
    category = "dbaas",
    doc = "A preset set of backup schedules.",
    printcolumn(name = "Engine", type_ = "string", json_path = ".spec.engineType"),
    // `kubectl get ... --field-selector spec.engineType=mysql`: what a UI
    // offers for one engine, filtered by the API server.
    selectable = ".spec.engineType",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BackupScheduleTemplateSpec {
    /// The engine this template fits; every engine when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_type: Option<EngineType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub schedules: Vec<BackupSchedule>,
}
