//! `OpsRequest`: one day-2 operation on one DatabaseCluster.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::cluster::{ExposeSpec, PitrTarget};
use crate::common::{ConfigParameter, LocalObjectReference};

/// Label on what an operation created (a Backup operation's
/// DatabaseBackup): the OpsRequest's name.
pub const LABEL_OPS_REQUEST: &str = "dbaas.io/ops-request";

/// A day-2 operation on a DatabaseCluster. Operations on one cluster run one
/// at a time, in creation order. The spec is immutable except `cancel`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "OpsRequest",
    namespaced,
    status = "OpsRequestStatus",
    shortname = "dbops",
    category = "dbaas",
    doc = "A day-2 operation on a DatabaseCluster.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterRef.name"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Progress", type_ = "string", json_path = ".status.progress"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == oldSelf.type && self.clusterRef == oldSelf.clusterRef").message("type and clusterRef are immutable: create a new OpsRequest").reason(Reason::FieldValueForbidden),
    // An operation's parameters are what it was queued and judged with; a
    // running one must not change under it.
    validation = Rule::new("has(self.horizontalScaling) == has(oldSelf.horizontalScaling) && (!has(self.horizontalScaling) || self.horizontalScaling == oldSelf.horizontalScaling) && has(self.verticalScaling) == has(oldSelf.verticalScaling) && (!has(self.verticalScaling) || self.verticalScaling == oldSelf.verticalScaling) && has(self.volumeExpansion) == has(oldSelf.volumeExpansion) && (!has(self.volumeExpansion) || self.volumeExpansion == oldSelf.volumeExpansion) && has(self.reconfiguring) == has(oldSelf.reconfiguring) && (!has(self.reconfiguring) || self.reconfiguring == oldSelf.reconfiguring) && has(self.upgrade) == has(oldSelf.upgrade) && (!has(self.upgrade) || self.upgrade == oldSelf.upgrade) && has(self.switchover) == has(oldSelf.switchover) && (!has(self.switchover) || self.switchover == oldSelf.switchover) && has(self.backup) == has(oldSelf.backup) && (!has(self.backup) || self.backup == oldSelf.backup) && has(self.restore) == has(oldSelf.restore) && (!has(self.restore) || self.restore == oldSelf.restore) && has(self.expose) == has(oldSelf.expose) && (!has(self.expose) || self.expose == oldSelf.expose) && has(self.rebuildInstance) == has(oldSelf.rebuildInstance) && (!has(self.rebuildInstance) || self.rebuildInstance == oldSelf.rebuildInstance) && has(self.custom) == has(oldSelf.custom) && (!has(self.custom) || self.custom == oldSelf.custom)").message("the operation's parameters are immutable: create a new OpsRequest (only cancel, timeoutSeconds and the TTLs may change)").reason(Reason::FieldValueForbidden),
    validation = Rule::new("self.type != 'HorizontalScaling' || has(self.horizontalScaling)").message("type HorizontalScaling needs horizontalScaling").reason(Reason::FieldValueRequired).field_path(".horizontalScaling"),
    validation = Rule::new("self.type != 'VerticalScaling' || has(self.verticalScaling)").message("type VerticalScaling needs verticalScaling").reason(Reason::FieldValueRequired).field_path(".verticalScaling"),
    validation = Rule::new("self.type != 'VolumeExpansion' || has(self.volumeExpansion)").message("type VolumeExpansion needs volumeExpansion").reason(Reason::FieldValueRequired).field_path(".volumeExpansion"),
    validation = Rule::new("self.type != 'Reconfiguring' || has(self.reconfiguring)").message("type Reconfiguring needs reconfiguring").reason(Reason::FieldValueRequired).field_path(".reconfiguring"),
    validation = Rule::new("self.type != 'Upgrade' || has(self.upgrade)").message("type Upgrade needs upgrade").reason(Reason::FieldValueRequired).field_path(".upgrade"),
    validation = Rule::new("self.type != 'Restore' || has(self.restore)").message("type Restore needs restore").reason(Reason::FieldValueRequired).field_path(".restore"),
    validation = Rule::new("self.type != 'Expose' || has(self.expose)").message("type Expose needs expose").reason(Reason::FieldValueRequired).field_path(".expose"),
    validation = Rule::new("self.type != 'RebuildInstance' || has(self.rebuildInstance)").message("type RebuildInstance needs rebuildInstance").reason(Reason::FieldValueRequired).field_path(".rebuildInstance"),
    validation = Rule::new("self.type != 'Custom' || has(self.custom)").message("type Custom needs custom").reason(Reason::FieldValueRequired).field_path(".custom")
)]
pub struct OpsRequestSpec {
    /// The DatabaseCluster to operate on.
    pub cluster_ref: LocalObjectReference,
    /// The operation.
    #[serde(rename = "type")]
    pub type_: OpsType,
    /// Ask a running operation to stop, where it can.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
    /// Give up when the operation has not finished after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<i64>,
    /// Delete the OpsRequest this many seconds after it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_succeed: Option<i64>,
    /// Delete the OpsRequest this many seconds after it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_failed: Option<i64>,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_scaling: Option<HorizontalScaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertical_scaling: Option<VerticalScaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_expansion: Option<VolumeExpansion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconfiguring: Option<Reconfiguring>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<Switchover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupOperation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreOperation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ExposeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_instance: Option<RebuildInstance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomOperation>,
}

/// The operation types of the seed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum OpsType {
    Start,
    Stop,
    Restart,
    Switchover,
    HorizontalScaling,
    VerticalScaling,
    VolumeExpansion,
    Reconfiguring,
    Upgrade,
    Backup,
    Restore,
    Expose,
    RebuildInstance,
    Custom,
}

/// Change the number of instances.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct HorizontalScaling {
    /// The new clusterSize.
    #[schemars(range(min = 1, max = 99))]
    pub replicas: i32,
}

/// Change CPU and memory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct VerticalScaling {
    pub resources: ResourceRequirements,
}

/// Grow the volumes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct VolumeExpansion {
    /// The new size of each instance's volume.
    pub storage: Quantity,
}

/// Change engine parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct Reconfiguring {
    #[schemars(length(min = 1))]
    pub config: Vec<ConfigParameter>,
}

/// Change the engine version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct Upgrade {
    #[schemars(length(min = 1))]
    pub version: String,
}

/// Make another instance the primary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Switchover {
    /// The instance to promote; the engine picks one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_name: Option<String>,
}

/// Take a backup now.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupOperation {
    /// Name of the backup object to create; generated when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// BackupStorage to write to; the cluster's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
}

/// Restore a backup into this cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreOperation {
    /// The backup object to restore.
    pub backup_name: String,
    /// Restore to a point in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrTarget>,
}

/// Rebuild one instance from the others.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildInstance {
    pub instance_name: String,
}

/// An engine-specific operation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomOperation {
    /// Operation name the engine provider understands.
    pub name: String,
    /// Its parameters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// Phases of an OpsRequest.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum OpsPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelling,
    Cancelled,
}

/// Observed state of an OpsRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpsRequestStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<OpsPhase>,
    /// Steps done out of steps planned, e.g. "1/3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    /// Position in the cluster's queue while Pending (1 = next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the operation changed once it started: the evidence it waits
    /// for and what a cancel puts back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// What a running operation changed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedChange {
    /// `metadata.generation` of the DatabaseCluster after the operation's
    /// spec change (or after a cancel put the old value back): the cluster's
    /// status describes the change once its observedGeneration reaches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_generation: Option<i64>,
    /// The spec field the operation changed, as it was before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<SpecBefore>,
    /// The DatabaseBackup a Backup operation created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// The restart timestamp written on the engine resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<String>,
    /// The instance asked to become the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_primary: Option<String>,
    /// The engine operator's restore resource a Restore operation created
    /// (kind/name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_restore: Option<String>,
}

/// The DatabaseCluster spec field an operation changed, as it was before.
/// Only the field of the operation's type is meaningful; an unset field
/// there means it was unset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpecBefore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<ConfigParameter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ExposeSpec>,
}

impl OpsType {
    /// Every operation type, in the order of the API reference.
    pub const ALL: [OpsType; 14] = [
        Self::Start,
        Self::Stop,
        Self::Restart,
        Self::Switchover,
        Self::HorizontalScaling,
        Self::VerticalScaling,
        Self::VolumeExpansion,
        Self::Reconfiguring,
        Self::Upgrade,
        Self::Backup,
        Self::Restore,
        Self::Expose,
        Self::RebuildInstance,
        Self::Custom,
    ];
}

impl std::fmt::Display for OpsType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::fmt::Display for OpsPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl OpsPhase {
    /// Whether the operation is over (nothing more happens to it).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}
