//! The engine provider interface: every engine builds its operator's
//! resource from the unified spec and reads that resource's status back in
//! our vocabulary. All pure; the operator does the I/O.

use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{FIELD_MANAGER, OPS_FIELD_MANAGER};
use dbaas_api::ops::OpsType;
use dbaas_api::{DatabaseBackup, DatabaseCluster, EngineType, MonitoringConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::core::{ApiResource, DynamicObject};

use std::time::Duration;

use crate::backup::{BackupObservation, ScheduledBackupRef, StorageInput};
use crate::capabilities::{
    Capabilities, DEFAULT_UNCONFIRMED_AFTER, EnginePatch, InstancePods, Primary,
};
use crate::catalog::ResolvedVersion;
use crate::restore::{RestoreInput, RestoreObservation};

/// One engine behind the unified API.
pub trait EngineProvider: Send + Sync + std::fmt::Debug + 'static {
    /// The engine type this provider serves.
    fn engine(&self) -> EngineType;
    /// Human name of the engine operator, for messages ("CloudNativePG").
    fn operator_name(&self) -> &'static str;
    /// The engine operator's resource the provider creates.
    fn resource(&self) -> ApiResource;
    /// Every version offered out of the box, newest first.
    fn versions(&self) -> Vec<ResolvedVersion>;
    /// The recommended version.
    fn default_version(&self) -> &'static str;
    /// Builds the engine resource for `cluster` at `version`, with what the
    /// operator looked up for it.
    fn build(
        &self,
        cluster: &DatabaseCluster,
        version: &ResolvedVersion,
        input: &BuildInput<'_>,
    ) -> Result<BuiltEngine, BuildError>;
    /// Reads the engine resource's status.
    fn observe(&self, engine: &DynamicObject, input: &ObserveInput<'_>) -> EngineObservation;
    /// Kinds of the objects the provider may build besides the engine
    /// resource ([`BuiltEngine::extra`]). The operator watches them and
    /// removes those of a cluster that a build no longer returns.
    fn extra_resources(&self) -> Vec<ApiResource> {
        Vec::new()
    }
    /// Refines an observation with the extra objects as the API server
    /// returned them after the apply (a pooler moves the endpoint and must
    /// be up before the cluster is Ready).
    fn observe_extra(
        &self,
        observation: EngineObservation,
        _extra: &[DynamicObject],
        _input: &ObserveInput<'_>,
    ) -> EngineObservation {
        observation
    }
    /// The Secret with the admin credentials.
    fn credentials_secret_name(&self, cluster: &DatabaseCluster) -> String;
    /// The day-2 operations this engine supports.
    fn supported_operations(&self) -> &'static [OpsType];
    /// What else the engine supports, and why it lacks the operations it
    /// does not offer.
    fn capabilities(&self) -> Capabilities;
    /// Image repositories (without registry) of the engine operator, by
    /// which its Deployment is recognised.
    fn operator_images(&self) -> &'static [&'static str];
    /// How long the engine operator may stay silent after a change before
    /// the cluster is looked at again.
    fn unconfirmed_after(&self) -> Duration {
        DEFAULT_UNCONFIRMED_AFTER
    }
    /// Label selector of the data volume claims of the engine resource
    /// `engine_name`.
    fn data_volume_selector(&self, engine_name: &str) -> String;
    /// Whether the data volume claim `claim_name` belongs to a current
    /// member of a cluster of `cluster_size` (an engine operator that keeps
    /// the claims of removed members must not hold a volume expansion up
    /// waiting for them).
    fn volume_claim_of_member(&self, claim_name: &str, cluster_size: i32) -> bool {
        let _ = (claim_name, cluster_size);
        true
    }
    /// Why changing `clusterSize` from `from` to `to` breaks the engine's
    /// rules (the DatabaseCluster's own validation, asked before an
    /// operation touches anything).
    fn scaling_refusal(&self, from: i32, to: i32) -> Option<String> {
        let _ = (from, to);
        None
    }
    /// The instance pods of the engine resource `engine_name`, where an
    /// operation needs them as evidence.
    fn instance_pods(&self, engine_name: &str) -> Option<InstancePods> {
        let _ = engine_name;
        None
    }
    /// The patch that restarts every instance, marked with `requested_at`
    /// (also the annotation value its pods then carry).
    fn restart_patch(&self, requested_at: &str) -> Option<EnginePatch> {
        let _ = requested_at;
        None
    }
    /// The restart mark the engine resource carries, if any.
    fn restart_requested(&self, engine: &DynamicObject) -> Option<String> {
        let _ = engine;
        None
    }
    /// Whether the engine moves its primary on request
    /// ([`Self::switchover_patch`] then answers for every instance).
    fn switches_over(&self) -> bool {
        false
    }
    /// Why `cluster` cannot switch over although the engine can (a
    /// topology or proxy that moves the primary another way).
    fn switchover_refusal(&self, cluster: &DatabaseCluster) -> Option<String> {
        let _ = cluster;
        None
    }
    /// The patch that makes the instance `target` the primary.
    fn switchover_patch(&self, target: &str) -> Option<EnginePatch> {
        let _ = target;
        None
    }
    /// The primary and the instances the engine resource reports.
    fn primary(&self, engine: &DynamicObject) -> Primary {
        let _ = engine;
        Primary::default()
    }
    /// The image the engine resource asks for and the one it reports
    /// running, for an upgrade's evidence; `None` for engines whose
    /// observation already judges the image.
    fn images(&self, engine: &DynamicObject) -> Option<(Option<String>, Option<String>)> {
        let _ = engine;
        None
    }
    /// The engine operator's resource for one on-demand backup; `None`
    /// when this provider cannot take backups.
    fn backup_resource(&self) -> Option<ApiResource> {
        None
    }
    /// Builds the engine resource that takes `backup` of `cluster` into
    /// `storage` (named like the DatabaseBackup, owned by it).
    fn build_backup(
        &self,
        backup: &DatabaseBackup,
        cluster: &DatabaseCluster,
        storage: &StorageInput,
    ) -> Result<DynamicObject, BuildError> {
        let _ = (backup, cluster, storage);
        Err(BuildError::Unsupported {
            engine: self.engine().as_str(),
            feature: "on-demand backups",
            why: "this engine's provider does not take backups",
        })
    }
    /// Reads the engine's backup resource in our vocabulary.
    fn observe_backup(&self, engine_backup: &DynamicObject) -> BackupObservation {
        let _ = engine_backup;
        BackupObservation::pending()
    }
    /// Label selector matching the backup resources the engine operator's
    /// own schedules create (what the operator watches to mirror them).
    fn scheduled_backup_selector(&self) -> Option<&'static str> {
        None
    }
    /// Which cluster, schedule and storage `engine_backup` belongs to when
    /// the engine operator's schedule created it; `None` for any other
    /// (on-demand ones, ours or someone else's).
    fn scheduled_backup_of(&self, engine_backup: &DynamicObject) -> Option<ScheduledBackupRef> {
        let _ = engine_backup;
        None
    }
    /// The engine operator's resource that restores a backup into a
    /// running cluster; `None` when the engine cannot (CloudNativePG
    /// restores only by bootstrapping a new cluster).
    fn restore_resource(&self) -> Option<ApiResource> {
        None
    }
    /// Whether `spec.dataSource` is restored by the engine resource itself
    /// at bootstrap ([`BuildInput::data_source`]) rather than by a restore
    /// resource once the new cluster runs.
    fn restores_at_bootstrap(&self) -> bool {
        false
    }
    /// Builds the engine resource called `name` that restores `source`
    /// into the running `cluster` (the operator owns and labels it).
    fn build_restore(
        &self,
        name: &str,
        cluster: &DatabaseCluster,
        source: &RestoreInput,
    ) -> Result<DynamicObject, BuildError> {
        let _ = (name, cluster, source);
        Err(BuildError::Unsupported {
            engine: self.engine().as_str(),
            feature: "restoring into a running cluster",
            why: "this engine's operator restores only by bootstrapping a new cluster: create one with spec.dataSource",
        })
    }
    /// Reads the engine's restore resource in our vocabulary.
    fn observe_restore(&self, engine_restore: &DynamicObject) -> RestoreObservation {
        let _ = engine_restore;
        RestoreObservation::pending()
    }
}

/// The provider of an engine, if this version has one.
pub fn provider_for(engine: EngineType) -> Option<&'static dyn EngineProvider> {
    match engine {
        EngineType::Postgresql => Some(&crate::cnpg::Cnpg),
        EngineType::Mysql => Some(&crate::pxc::Pxc),
        EngineType::Mongodb => Some(&crate::psmdb::Psmdb),
        EngineType::Mariadb => Some(&crate::mariadb::Mariadb),
    }
}

/// What the operator looked up for a build, besides the cluster itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildInput<'a> {
    /// The MonitoringConfig `spec.monitoring` names, found and allowed for
    /// the cluster's namespace. `None` while the cluster names one means it
    /// was not looked up: monitoring is then reported as not applied.
    pub monitoring: Option<&'a MonitoringConfig>,
    /// The BackupStorages the cluster's backup spec names
    /// ([`crate::backup::referenced_storages`]), found and usable. A storage
    /// named but missing here was not found: the provider refuses to build
    /// backups into it rather than guess.
    pub backup_storages: &'a [StorageInput],
    /// `spec.dataSource` as the operator found it, for providers that
    /// restore at bootstrap ([`EngineProvider::restores_at_bootstrap`]).
    /// `None` while the spec has one means it was not looked up: such a
    /// provider refuses rather than bootstrap an empty cluster.
    pub data_source: Option<&'a RestoreInput>,
}

impl BuildInput<'_> {
    /// The storage called `name`, as the operator found it.
    pub fn storage(&self, name: &str) -> Result<&StorageInput, BuildError> {
        self.backup_storages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| BuildError::InvalidBackup {
                why: format!("BackupStorage {name:?} was not found in the cluster's namespace"),
            })
    }
}

/// A provider's typed engine resource, the objects that go with it, and
/// what of the spec it does not carry yet.
#[derive(Debug)]
pub struct Built<K> {
    pub cluster: K,
    /// Objects applied beside the engine resource (a CloudNativePG Pooler),
    /// owned by the DatabaseCluster like it.
    pub extra: Vec<DynamicObject>,
    /// Secret keys to copy for the engine (the PMM token): named here, read
    /// and written by the operator, never put into a spec.
    pub secret_keys: Vec<SecretKeyCopy>,
    pub unapplied: Vec<Unapplied>,
}

impl<K> Built<K> {
    /// An engine resource with nothing beside it.
    pub fn new(cluster: K, unapplied: Vec<Unapplied>) -> Self {
        Self {
            cluster,
            extra: Vec::new(),
            secret_keys: Vec::new(),
            unapplied,
        }
    }
}

impl<K: serde::Serialize> Built<K> {
    /// The same as a DynamicObject, for the generic apply.
    pub fn into_engine(self) -> Result<BuiltEngine, BuildError> {
        Ok(BuiltEngine {
            object: to_dynamic(&self.cluster)?,
            extra: self.extra,
            secret_keys: self.secret_keys,
            unapplied: self.unapplied,
        })
    }
}

/// A built engine resource, the objects that go with it, and what of the
/// spec it does not carry yet.
#[derive(Debug)]
pub struct BuiltEngine {
    pub object: DynamicObject,
    /// See [`Built::extra`].
    pub extra: Vec<DynamicObject>,
    /// See [`Built::secret_keys`].
    pub secret_keys: Vec<SecretKeyCopy>,
    pub unapplied: Vec<Unapplied>,
}

/// A Secret key the operator copies into a Secret of the cluster's
/// namespace (the engine operator reads it from there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretKeyCopy {
    /// Namespace of the Secret the value is read from.
    pub source_namespace: String,
    /// The Secret the value is read from.
    pub source_secret: String,
    /// The key the value is read from.
    pub source_key: &'static str,
    /// The Secret (cluster's namespace) the value is written to.
    pub target_secret: String,
    /// The key the value is written under.
    pub target_key: &'static str,
}

/// What the operator knows besides the engine resource when it reads status.
#[derive(Clone, Debug)]
pub struct ObserveInput<'a> {
    /// Instances we asked for.
    pub desired_instances: i32,
    /// Image we asked for.
    pub desired_image: &'a str,
    /// The engine resource's generation after our last spec-changing apply.
    pub applied_generation: Option<i64>,
    /// When our last spec-changing apply happened.
    pub applied_at: Option<&'a Time>,
    /// The engine object's resourceVersion right after that apply.
    pub applied_resource_version: Option<&'a str>,
    /// Whether the cluster is meant to be stopped.
    pub paused: bool,
    /// Our previous phase, to tell a first start from a later change.
    pub previous_phase: Option<ClusterPhase>,
    /// The current time, for engines whose evidence can only be "nothing
    /// happened for a while" (None: such evidence is never accepted).
    pub now: Option<&'a Time>,
}

impl ObserveInput<'_> {
    /// Whether this is still the cluster's first start.
    pub fn first_start(&self) -> bool {
        matches!(
            self.previous_phase,
            None | Some(ClusterPhase::Pending) | Some(ClusterPhase::Creating)
        )
    }
}

/// For engine operators without `status.observedGeneration` (CloudNativePG):
/// whether they wrote their status subresource after our last spec-changing
/// apply. managedFields times have one-second resolution, so a status write
/// in the very second of the apply counts only if the object changed since
/// the apply (its resourceVersion moved).
pub fn status_written_since(
    meta: &ObjectMeta,
    applied_at: Option<&Time>,
    applied_resource_version: Option<&str>,
) -> bool {
    let Some(applied_at) = applied_at else {
        return false;
    };
    let changed_since_apply =
        applied_resource_version.is_none_or(|rv| meta.resource_version.as_deref() != Some(rv));
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.subresource.as_deref() == Some("status"))
        // Our own writes (an OpsRequest's switchover request) are no report.
        .filter(|entry| {
            entry.manager.as_deref() != Some(FIELD_MANAGER)
                && entry.manager.as_deref() != Some(OPS_FIELD_MANAGER)
        })
        .filter_map(|entry| entry.time.as_ref())
        .any(|written| {
            written.0 > applied_at.0 || (written.0 == applied_at.0 && changed_since_apply)
        })
}

/// For engine operators whose status writes may leave no trace (a write
/// that changes nothing): whether `period` has passed since our last
/// spec-changing apply, after which a healthy status that matches the spec
/// is taken as the answer.
pub fn quiet_since_apply(input: &ObserveInput<'_>, period: Duration) -> bool {
    match (input.now, input.applied_at) {
        (Some(now), Some(applied_at)) => now
            .0
            .duration_since(applied_at.0)
            .try_into()
            .is_ok_and(|elapsed: Duration| elapsed >= period),
        _ => false,
    }
}

/// Re-types a typed engine resource as a DynamicObject for the generic apply.
pub fn to_dynamic<K: serde::Serialize>(object: &K) -> Result<DynamicObject, BuildError> {
    crate::convert::retype("(engine resource)", object)
}

/// Why a provider refuses to build the engine resource. Every variant is a
/// user error that shows as the `Valid=False` condition; nothing is created
/// or changed while it holds.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{feature} is not supported for {engine} clusters yet: {why}")]
    Unsupported {
        engine: &'static str,
        feature: &'static str,
        why: &'static str,
    },
    #[error("spec.{field} cannot be converted for the engine: {source}")]
    Convert {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("MonitoringConfig {config:?} cannot be used: {why}")]
    Monitoring { config: String, why: String },
    #[error("backups cannot be configured: {why}")]
    InvalidBackup { why: String },
}

impl BuildError {
    /// The condition reason for this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unsupported { .. } => "UnsupportedFeature",
            Self::Convert { .. } => "InvalidSpec",
            Self::Monitoring { .. } => "InvalidMonitoringConfig",
            Self::InvalidBackup { .. } => "InvalidBackupSpec",
        }
    }
}

/// A part of the spec the provider accepted but does not apply yet. The
/// cluster is still built; the operator reports these so nobody believes a
/// setting took effect when it did not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unapplied {
    pub field: &'static str,
    pub why: &'static str,
}

/// Phase in our vocabulary plus the engine's own words for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedPhase {
    pub phase: ClusterPhase,
    /// Machine-readable reason for conditions, e.g. `EngineHealthy`.
    pub reason: &'static str,
    /// The engine operator's own phase text, for people.
    pub message: String,
}

/// What the engine resource's status says about the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineObservation {
    pub phase: ObservedPhase,
    /// Whether the engine has reported on the spec we last applied. Engine
    /// operators without observedGeneration only count once they wrote
    /// status after our apply.
    pub saw_latest_spec: bool,
    pub ready_instances: i32,
    pub host: Option<String>,
    pub port: Option<i32>,
}

impl EngineObservation {
    /// The engine resource could not be read as its type (a newer or broken
    /// engine operator): say so instead of failing the reconcile.
    pub fn unreadable(message: String) -> Self {
        Self {
            phase: ObservedPhase {
                phase: ClusterPhase::Unknown,
                reason: "EngineStatusUnreadable",
                message,
            },
            saw_latest_spec: false,
            ready_instances: 0,
            host: None,
            port: None,
        }
    }
}
