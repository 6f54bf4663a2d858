//! PostgreSQL through CloudNativePG: DatabaseCluster -> `postgresql.cnpg.io/v1`
//! `Cluster`, and the Cluster's status back.

use std::collections::BTreeMap;

use dbaas_api::DatabaseCluster;
use dbaas_api::EngineType;
use dbaas_api::cluster::{ClusterPhase, ExposeType, ProxyType};
use dbaas_api::ops::OpsType;
use dbaas_engine_crds::cnpg_cluster::{
    Cluster, ClusterAffinity, ClusterManaged, ClusterPostgresql, ClusterResources, ClusterSpec,
    ClusterStorage, ClusterSuperuserSecret,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};
use serde_json::json;

use crate::catalog::ResolvedVersion;
use crate::convert::retype;
use crate::provider::{
    BuildError, BuiltEngine, EngineObservation, EngineProvider, ObserveInput, ObservedPhase,
    Unapplied, status_written_since,
};
use crate::shared::{
    credentials_secret_or, engine_metadata, refuse_data_source, unapplied_backup_and_monitoring,
};

/// PostgreSQL minor releases per major that CloudNativePG publishes operand
/// images for (`ghcr.io/cloudnative-pg/postgresql:<major>.<minor>`).
const POSTGRESQL_MINORS: &[(u32, u32)] =
    &[(13, 22), (14, 19), (15, 14), (16, 10), (17, 6), (18, 0)];
const POSTGRESQL_IMAGE: &str = "ghcr.io/cloudnative-pg/postgresql";
/// The recommended version.
pub const POSTGRESQL_DEFAULT: &str = "17.6";

/// The CloudNativePG provider.
#[derive(Debug)]
pub struct Cnpg;

impl EngineProvider for Cnpg {
    fn engine(&self) -> EngineType {
        EngineType::Postgresql
    }

    fn operator_name(&self) -> &'static str {
        "CloudNativePG"
    }

    fn resource(&self) -> ApiResource {
        ApiResource::erase::<Cluster>(&())
    }

    fn versions(&self) -> Vec<ResolvedVersion> {
        POSTGRESQL_MINORS
            .iter()
            .rev()
            .flat_map(|&(major, newest)| {
                (0..=newest).rev().map(move |minor| {
                    let version = format!("{major}.{minor}");
                    let image = format!("{POSTGRESQL_IMAGE}:{version}");
                    ResolvedVersion { version, image }
                })
            })
            .collect()
    }

    fn default_version(&self) -> &'static str {
        POSTGRESQL_DEFAULT
    }

    fn build(
        &self,
        cluster: &DatabaseCluster,
        version: &ResolvedVersion,
    ) -> Result<BuiltEngine, BuildError> {
        build(cluster, version)?.into_engine()
    }

    fn observe(&self, engine: &DynamicObject, input: &ObserveInput<'_>) -> EngineObservation {
        match engine.clone().try_parse::<Cluster>() {
            Ok(cluster) => observe(&cluster, input),
            Err(err) => EngineObservation::unreadable(format!(
                "the CloudNativePG Cluster cannot be read: {err}"
            )),
        }
    }

    fn credentials_secret_name(&self, cluster: &DatabaseCluster) -> String {
        credentials_secret_name(cluster)
    }

    fn supported_operations(&self) -> &'static [OpsType] {
        &[
            OpsType::Start,
            OpsType::Stop,
            OpsType::Restart,
            OpsType::Switchover,
            OpsType::HorizontalScaling,
            OpsType::VerticalScaling,
            OpsType::VolumeExpansion,
            OpsType::Reconfiguring,
            OpsType::Upgrade,
            OpsType::Backup,
            OpsType::Restore,
            OpsType::Expose,
            OpsType::RebuildInstance,
        ]
    }
}

/// CloudNativePG's annotation for declarative hibernation.
pub const HIBERNATION_ANNOTATION: &str = "cnpg.io/hibernation";
/// The condition type CloudNativePG sets once a cluster is hibernated.
pub const HIBERNATION_CONDITION: &str = "cnpg.io/hibernation";
/// PostgreSQL's port on CloudNativePG services.
pub const POSTGRES_PORT: i32 = 5432;

/// CloudNativePG's phase strings (`api/v1/cluster_types.go`). The phase is
/// free text upstream; anything not listed here maps to `Unknown`.
pub mod phase {
    pub const HEALTHY: &str = "Cluster in healthy state";
    pub const FIRST_PRIMARY: &str = "Setting up primary";
    pub const CREATING_REPLICA: &str = "Creating a new replica";
    pub const WAITING_FOR_INSTANCES: &str = "Waiting for the instances to become active";
    pub const UPGRADE: &str = "Upgrading cluster";
    pub const UPGRADE_DELAYED: &str = "Cluster upgrade delayed";
    pub const MAJOR_UPGRADE: &str = "Upgrading Postgres major version";
    pub const SWITCHOVER: &str = "Switchover in progress";
    pub const FAILOVER: &str = "Failing over";
    pub const INPLACE_PRIMARY_RESTART: &str = "Primary instance is being restarted in-place";
    pub const INPLACE_DELETE_PRIMARY_RESTART: &str =
        "Primary instance is being restarted without a switchover";
    pub const ONLINE_UPGRADING: &str = "Online upgrade in progress";
    pub const APPLYING_CONFIGURATION: &str = "Applying configuration";
    pub const REPLICA_CLUSTER_PROMOTION: &str = "Promoting to primary cluster";
    pub const WAITING_FOR_USER: &str = "Waiting for user action";
    pub const UNRECOVERABLE: &str = "Cluster is unrecoverable and needs manual intervention";
    pub const UNRECOVERABLE_OLD: &str =
        "Cluster is in an unrecoverable state, needs manual intervention";
    pub const CANNOT_CREATE_OBJECTS: &str = "Unable to create required cluster objects";
    pub const IMAGE_CATALOG_ERROR: &str = "Cluster has incomplete or invalid image catalog";
    pub const UNKNOWN_PLUGIN: &str =
        "Cluster cannot proceed to reconciliation due to an unknown plugin being required";
    pub const FAILURE_PLUGIN: &str =
        "Cluster cannot proceed to reconciliation due to an error while interacting with plugins";
    pub const ARCHITECTURE_BINARY_MISSING: &str =
        "Cluster cannot execute instance online upgrade due to missing architecture binary";
}

/// The CloudNativePG Cluster for a DatabaseCluster, and what of the spec it
/// does not carry yet.
pub type Built = crate::provider::Built<Cluster>;

/// The Secret with the admin (superuser) credentials.
pub fn credentials_secret_name(cluster: &DatabaseCluster) -> String {
    credentials_secret_or(cluster, "superuser")
}

/// Builds the CloudNativePG Cluster for `cluster` at `version`.
pub fn build(cluster: &DatabaseCluster, version: &ResolvedVersion) -> Result<Built, BuildError> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut unapplied = Vec::new();

    refuse_data_source(spec, EngineType::Postgresql)?;

    let mut engine_spec = ClusterSpec {
        instances: i64::from(spec.cluster_size),
        image_name: Some(version.image.clone()),
        storage: Some(ClusterStorage {
            size: Some(spec.storage.size.0.clone()),
            storage_class: spec.storage.class.clone(),
            ..Default::default()
        }),
        enable_superuser_access: Some(true),
        superuser_secret: spec.credentials_secret_name.as_ref().map(|secret| {
            ClusterSuperuserSecret {
                name: secret.clone(),
            }
        }),
        ..Default::default()
    };

    if let Some(resources) = &spec.resources {
        engine_spec.resources = Some(ClusterResources {
            claims: None,
            limits: resources.limits.as_ref().map(quantities),
            requests: resources.requests.as_ref().map(quantities),
        });
    }

    if !spec.config.is_empty() {
        let parameters: BTreeMap<String, String> = spec
            .config
            .iter()
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        engine_spec.postgresql = Some(ClusterPostgresql {
            parameters: Some(parameters),
            ..Default::default()
        });
    }

    if let Some(scheduling) = &spec.scheduling {
        let affinity = scheduling.affinity.as_ref();
        engine_spec.affinity = Some(ClusterAffinity {
            node_selector: (!scheduling.node_selector.is_empty())
                .then(|| scheduling.node_selector.clone()),
            tolerations: if scheduling.tolerations.is_empty() {
                None
            } else {
                Some(retype("scheduling.tolerations", &scheduling.tolerations)?)
            },
            node_affinity: affinity
                .and_then(|a| a.node_affinity.as_ref())
                .map(|a| retype("scheduling.affinity.nodeAffinity", a))
                .transpose()?,
            additional_pod_affinity: affinity
                .and_then(|a| a.pod_affinity.as_ref())
                .map(|a| retype("scheduling.affinity.podAffinity", a))
                .transpose()?,
            additional_pod_anti_affinity: affinity
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .map(|a| retype("scheduling.affinity.podAntiAffinity", a))
                .transpose()?,
            ..Default::default()
        });
        engine_spec.priority_class_name = scheduling.priority_class_name.clone();
    }

    if let Some(expose) = &spec.expose
        && expose.type_ == ExposeType::External
    {
        // An extra LoadBalancer service on the read-write instance; the
        // default -rw/-ro/-r ClusterIP services stay as they are.
        let additional = json!([{
            "selectorType": "rw",
            "serviceTemplate": {
                "metadata": { "name": format!("{name}-external") },
                "spec": {
                    "type": "LoadBalancer",
                    "loadBalancerSourceRanges": expose.ip_source_ranges,
                },
            },
        }]);
        engine_spec.managed = Some(ClusterManaged {
            services: Some(retype("expose", &json!({ "additional": additional }))?),
            ..Default::default()
        });
    }

    if let Some(proxy) = &spec.proxy
        && proxy.type_.is_some_and(|t| t != ProxyType::None)
    {
        unapplied.push(Unapplied {
            field: "proxy",
            why: "the PgBouncer Pooler is not created by this operator version",
        });
    }
    unapplied.extend(unapplied_backup_and_monitoring(spec));

    let mut annotations = BTreeMap::new();
    annotations.insert(
        HIBERNATION_ANNOTATION.to_owned(),
        if spec.paused { "on" } else { "off" }.to_owned(),
    );

    let engine_cluster = Cluster {
        metadata: ObjectMeta {
            annotations: Some(annotations),
            ..engine_metadata(cluster, EngineType::Postgresql)
        },
        spec: engine_spec,
        status: None,
    };
    Ok(Built {
        cluster: engine_cluster,
        unapplied,
    })
}

fn quantities(
    map: &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
) -> BTreeMap<String, IntOrString> {
    map.iter()
        .map(|(k, v)| (k.clone(), IntOrString::String(v.0.clone())))
        .collect()
}

/// Reads a CloudNativePG Cluster's status in our vocabulary.
pub fn observe(engine: &Cluster, input: &ObserveInput<'_>) -> EngineObservation {
    let status = engine.status.as_ref();
    let namespace = engine.metadata.namespace.as_deref().unwrap_or("default");
    let ready_instances = status
        .and_then(|s| s.ready_instances)
        .and_then(|n| i32::try_from(n).ok())
        .unwrap_or(0);
    let host = status
        .and_then(|s| s.write_service.as_deref())
        .filter(|s| !s.is_empty())
        .map(|service| format!("{service}.{namespace}.svc"));
    // CloudNativePG has no observedGeneration: it has seen our spec once it
    // wrote its status after our last spec-changing apply.
    let saw_latest_spec = status_written_since(
        &engine.metadata,
        input.applied_at,
        input.applied_resource_version,
    );
    let phase = observe_phase(engine, input, saw_latest_spec, ready_instances);
    EngineObservation {
        phase,
        saw_latest_spec,
        ready_instances,
        port: host.as_ref().map(|_| POSTGRES_PORT),
        host,
    }
}

/// How long CloudNativePG may stay silent after a change before a healthy
/// status that matches the spec is taken as its answer.
pub const UNCONFIRMED_AFTER: std::time::Duration = std::time::Duration::from_secs(120);

fn quiet_since_apply(input: &ObserveInput<'_>) -> bool {
    match (input.now, input.applied_at) {
        (Some(now), Some(applied_at)) => now
            .0
            .duration_since(applied_at.0)
            .try_into()
            .is_ok_and(|elapsed: std::time::Duration| elapsed >= UNCONFIRMED_AFTER),
        _ => false,
    }
}

fn observe_phase(
    engine: &Cluster,
    input: &ObserveInput<'_>,
    saw_latest_spec: bool,
    ready_instances: i32,
) -> ObservedPhase {
    let status = engine.status.as_ref();
    let text = status.and_then(|s| s.phase.clone()).unwrap_or_default();
    let observed = |phase, reason: &'static str, message: String| ObservedPhase {
        phase,
        reason,
        message,
    };
    let first_start = input.first_start();
    let progressing = |reason: &'static str, message: String| {
        let phase = if first_start {
            ClusterPhase::Creating
        } else {
            ClusterPhase::Updating
        };
        observed(phase, reason, message)
    };

    if text.is_empty() {
        return observed(
            ClusterPhase::Pending,
            "WaitingForEngine",
            "waiting for CloudNativePG to report status".to_owned(),
        );
    }

    if input.paused {
        let hibernated = status
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == HIBERNATION_CONDITION && c.status == "True");
        return if hibernated && saw_latest_spec {
            observed(
                ClusterPhase::Paused,
                "Hibernated",
                "hibernated by CloudNativePG".to_owned(),
            )
        } else {
            observed(
                ClusterPhase::Updating,
                "Hibernating",
                format!("hibernating: {text}"),
            )
        };
    }

    match text.as_str() {
        phase::HEALTHY => {
            let instances = status.and_then(|s| s.instances).unwrap_or(0);
            let image = status.and_then(|s| s.image.as_deref());
            let ready_condition_false = status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "False");
            let desired = i64::from(input.desired_instances);
            let matches_spec = instances == desired
                && i64::from(ready_instances) == desired
                && image.is_none_or(|image| image == input.desired_image)
                && !ready_condition_false;
            if !saw_latest_spec && matches_spec && quiet_since_apply(input) {
                // CloudNativePG writes no status for changes that need no
                // visible action (a load balancer source range, a reloadable
                // parameter). After a quiet period with everything we can
                // check in order, say Ready, under a reason that tells.
                observed(
                    ClusterPhase::Ready,
                    "EngineHealthyUnconfirmed",
                    format!(
                        "{text}; CloudNativePG wrote no status in the {}s since the last change",
                        UNCONFIRMED_AFTER.as_secs()
                    ),
                )
            } else if !saw_latest_spec {
                progressing(
                    "WaitingForEngine",
                    "CloudNativePG has not reported on the latest spec yet".to_owned(),
                )
            } else if instances != desired || i64::from(ready_instances) != desired {
                progressing(
                    "Scaling",
                    format!("{ready_instances} of {desired} instances ready"),
                )
            } else if image.is_some_and(|image| image != input.desired_image) {
                progressing(
                    "RollingOut",
                    format!("instances still run {}", image.unwrap_or_default()),
                )
            } else if ready_condition_false {
                progressing(
                    "NotReady",
                    "CloudNativePG reports the cluster not ready".to_owned(),
                )
            } else {
                observed(ClusterPhase::Ready, "EngineHealthy", text)
            }
        }
        phase::FIRST_PRIMARY | phase::CREATING_REPLICA | phase::WAITING_FOR_INSTANCES => {
            progressing("InstancesStarting", text)
        }
        phase::UPGRADE
        | phase::UPGRADE_DELAYED
        | phase::MAJOR_UPGRADE
        | phase::SWITCHOVER
        | phase::FAILOVER
        | phase::INPLACE_PRIMARY_RESTART
        | phase::INPLACE_DELETE_PRIMARY_RESTART
        | phase::ONLINE_UPGRADING
        | phase::APPLYING_CONFIGURATION
        | phase::REPLICA_CLUSTER_PROMOTION => progressing("EngineUpdating", text),
        phase::WAITING_FOR_USER => observed(ClusterPhase::Error, "EngineWaitingForUser", text),
        phase::UNRECOVERABLE
        | phase::UNRECOVERABLE_OLD
        | phase::CANNOT_CREATE_OBJECTS
        | phase::IMAGE_CATALOG_ERROR
        | phase::UNKNOWN_PLUGIN
        | phase::FAILURE_PLUGIN
        | phase::ARCHITECTURE_BINARY_MISSING => observed(ClusterPhase::Error, "EngineError", text),
        _ => observed(
            ClusterPhase::Unknown,
            "UnknownEnginePhase",
            format!("CloudNativePG reports an unrecognised phase: {text}"),
        ),
    }
}

#[cfg(test)]
mod tests;
