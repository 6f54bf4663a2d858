//! PostgreSQL through CloudNativePG: DatabaseCluster -> `postgresql.cnpg.io/v1`
//! `Cluster`, and the Cluster's status back.

use std::collections::BTreeMap;

use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{ClusterPhase, ExposeType, ProxyType};
use dbaas_api::ops::OpsType;
use dbaas_api::{DatabaseBackup, DatabaseCluster};
use dbaas_engine_crds::cnpg_backup::Backup;
use dbaas_engine_crds::cnpg_cluster::{
    Cluster, ClusterAffinity, ClusterManaged, ClusterMonitoring, ClusterPostgresql,
    ClusterResources, ClusterSpec, ClusterStorage, ClusterSuperuserSecret,
};
use dbaas_engine_crds::cnpg_pooler::{
    Pooler, PoolerCluster, PoolerMonitoring, PoolerPgbouncer, PoolerPgbouncerPoolMode,
    PoolerServiceTemplate, PoolerServiceTemplateSpec, PoolerSpec, PoolerStatusPhase,
    PoolerTemplate, PoolerTemplateSpec, PoolerTemplateSpecContainers, PoolerType,
};
use dbaas_engine_crds::cnpg_scheduled_backup::ScheduledBackup;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};
use serde_json::json;

use crate::backup::{BackupObservation, StorageInput};
use crate::capabilities::{
    CUSTOM_NOT_OFFERED, Capabilities, EnginePatch, InstancePods, Primary, REBUILD_NOT_OFFERED,
};
use crate::catalog::ResolvedVersion;
use crate::convert::retype;
use crate::monitoring::{NO_AGENT_RESOURCES, Wiring, wiring};
use crate::provider::{
    BuildError, BuildInput, BuiltEngine, EngineObservation, EngineProvider, ObserveInput,
    ObservedPhase, Unapplied, quiet_since_apply, status_written_since, to_dynamic,
};
use crate::shared::{credentials_secret_or, engine_metadata};

pub mod backup;
pub mod restore;

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
        input: &BuildInput<'_>,
    ) -> Result<BuiltEngine, BuildError> {
        build_with(cluster, version, input)?.into_engine()
    }

    fn extra_resources(&self) -> Vec<ApiResource> {
        vec![
            ApiResource::erase::<Pooler>(&()),
            ApiResource::erase::<ScheduledBackup>(&()),
        ]
    }

    fn observe_extra(
        &self,
        observation: EngineObservation,
        extra: &[DynamicObject],
        input: &ObserveInput<'_>,
    ) -> EngineObservation {
        let pooler_kind = ApiResource::erase::<Pooler>(&()).kind;
        let pooler = extra
            .iter()
            .filter(|o| o.types.as_ref().is_some_and(|t| t.kind == pooler_kind))
            .find_map(|o| o.clone().try_parse::<Pooler>().ok());
        match pooler {
            Some(pooler) => observe_pooler(observation, &pooler, input),
            None => observation,
        }
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
            OpsType::Expose,
        ]
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            topology: "one primary, streaming replicas",
            topologies: &[],
            proxies: &[ProxyType::Pgbouncer],
            expose: &[ExposeType::Internal, ExposeType::External],
            backup_storages: &[
                BackupStorageType::S3,
                BackupStorageType::Gcs,
                BackupStorageType::Azure,
            ],
            pitr: true,
            restore_into_new_cluster: true,
            not_offered: &[
                (
                    OpsType::Restore,
                    "postgresql clusters cannot be restored in place: CloudNativePG restores a backup only by bootstrapping a new cluster; create one with spec.dataSource.backupName (and pitr); nothing was changed",
                ),
                (OpsType::RebuildInstance, REBUILD_NOT_OFFERED),
                (OpsType::Custom, CUSTOM_NOT_OFFERED),
            ],
        }
    }

    fn operator_images(&self) -> &'static [&'static str] {
        &["cloudnative-pg/cloudnative-pg"]
    }

    fn unconfirmed_after(&self) -> std::time::Duration {
        UNCONFIRMED_AFTER
    }

    fn data_volume_selector(&self, engine_name: &str) -> String {
        format!("cnpg.io/cluster={engine_name},cnpg.io/pvcRole=PG_DATA")
    }

    // CloudNativePG deletes the claims of removed instances and numbers
    // instances by serial, not ordinal: every claim it keeps counts, which
    // the default says.

    fn instance_pods(&self, engine_name: &str) -> Option<InstancePods> {
        Some(InstancePods {
            selector: format!("cnpg.io/cluster={engine_name},cnpg.io/podRole=instance"),
            container: "postgres",
            restart_annotation: RESTART_ANNOTATION,
        })
    }

    fn restart_patch(&self, requested_at: &str) -> Option<EnginePatch> {
        Some(EnginePatch {
            status: false,
            patch: serde_json::json!({"metadata": {"annotations": {RESTART_ANNOTATION: requested_at}}}),
        })
    }

    fn restart_requested(&self, engine: &DynamicObject) -> Option<String> {
        engine
            .metadata
            .annotations
            .as_ref()?
            .get(RESTART_ANNOTATION)
            .cloned()
    }

    fn switches_over(&self) -> bool {
        true
    }

    fn switchover_patch(&self, target: &str) -> Option<EnginePatch> {
        // What `kubectl cnpg promote` writes, through the status subresource.
        Some(EnginePatch {
            status: true,
            patch: serde_json::json!({"status": {
                "targetPrimary": target,
                "phase": phase::SWITCHOVER,
                "phaseReason": format!("Switching over to {target}"),
            }}),
        })
    }

    fn primary(&self, engine: &DynamicObject) -> Primary {
        let status = engine
            .clone()
            .try_parse::<Cluster>()
            .ok()
            .and_then(|c| c.status);
        Primary {
            current: status.as_ref().and_then(|s| s.current_primary.clone()),
            instances: status.and_then(|s| s.instance_names).unwrap_or_default(),
        }
    }

    fn images(&self, engine: &DynamicObject) -> Option<(Option<String>, Option<String>)> {
        let cluster = engine.clone().try_parse::<Cluster>().ok()?;
        Some((
            cluster.spec.image_name,
            cluster.status.and_then(|s| s.image),
        ))
    }

    fn backup_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<Backup>(&()))
    }

    fn build_backup(
        &self,
        backup: &DatabaseBackup,
        cluster: &DatabaseCluster,
        storage: &StorageInput,
    ) -> Result<DynamicObject, BuildError> {
        backup::build_backup_object(backup, cluster, storage)
    }

    fn observe_backup(&self, engine_backup: &DynamicObject) -> BackupObservation {
        backup::observe_backup_object(engine_backup)
    }

    fn scheduled_backup_selector(&self) -> Option<&'static str> {
        Some(backup::SCHEDULED_BACKUP_LABEL)
    }

    fn scheduled_backup_of(
        &self,
        engine_backup: &DynamicObject,
    ) -> Option<crate::backup::ScheduledBackupRef> {
        backup::scheduled_backup_of(engine_backup)
    }

    // CloudNativePG restores only by bootstrapping a new cluster, so
    // `build_restore` keeps refusing.
    fn restores_at_bootstrap(&self) -> bool {
        true
    }
}

/// The annotation whose change makes CloudNativePG restart every instance
/// (what `kubectl cnpg restart` writes); the pods carry it afterwards.
pub const RESTART_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";

/// CloudNativePG's annotation for declarative hibernation.
pub const HIBERNATION_ANNOTATION: &str = "cnpg.io/hibernation";
/// The condition type CloudNativePG sets once a cluster is hibernated.
pub const HIBERNATION_CONDITION: &str = "cnpg.io/hibernation";
/// PostgreSQL's port on CloudNativePG services (PgBouncer's too).
pub const POSTGRES_PORT: i32 = 5432;
/// Suffix of the PgBouncer Pooler's name (and Service's) after the
/// cluster's: it serves the read-write instance.
pub const POOLER_SUFFIX: &str = "-pooler-rw";
/// The PgBouncer container in CloudNativePG's pooler pods.
pub const PGBOUNCER_CONTAINER: &str = "pgbouncer";
/// PgBouncer pods when `proxy.replicas` is unset (CloudNativePG's default).
pub const DEFAULT_POOLER_INSTANCES: i32 = 1;

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

/// The PgBouncer Pooler of a cluster.
pub fn pooler_name(cluster_name: &str) -> String {
    format!("{cluster_name}{POOLER_SUFFIX}")
}

/// Builds the CloudNativePG Cluster for `cluster` at `version`, with nothing
/// looked up (a MonitoringConfig is then reported as not applied).
pub fn build(cluster: &DatabaseCluster, version: &ResolvedVersion) -> Result<Built, BuildError> {
    build_with(cluster, version, &BuildInput::default())
}

/// Builds the CloudNativePG Cluster (its backup store included), its
/// PgBouncer Pooler and its ScheduledBackups for
/// `cluster` at `version` with what the operator looked up for it.
pub fn build_with(
    cluster: &DatabaseCluster,
    version: &ResolvedVersion,
    input: &BuildInput<'_>,
) -> Result<Built, BuildError> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut unapplied = Vec::new();

    let pooled = spec
        .proxy
        .as_ref()
        .is_some_and(|p| p.type_ == Some(ProxyType::Pgbouncer));

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

    // With a pooler, clients go through it: it is what gets exposed.
    if let Some(expose) = &spec.expose
        && expose.type_ == ExposeType::External
        && !pooled
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

    if !pooled
        && spec
            .proxy
            .as_ref()
            .is_some_and(|p| p.replicas.is_some() || p.resources.is_some() || !p.config.is_empty())
    {
        unapplied.push(Unapplied {
            field: "proxy",
            why: "replicas, resources and config apply to the PgBouncer pooler only, and proxy.type is not pgbouncer",
        });
    }
    let rendered_backup = backup::render(cluster, input)?;
    engine_spec.backup = rendered_backup.cluster_backup;
    unapplied.extend(rendered_backup.unapplied);

    // spec.dataSource: bootstrap by recovery instead of CloudNativePG's
    // default initdb.
    if let Some(recovery) = restore::render(cluster, input, engine_spec.backup.as_ref())? {
        engine_spec.bootstrap = Some(recovery.bootstrap);
        engine_spec.external_clusters = recovery.external_clusters;
        for note in recovery.unapplied {
            // The same storage's notes come once.
            if !unapplied.contains(&note) {
                unapplied.push(note);
            }
        }
    }

    // Every instance exports Prometheus metrics (port 9187) whatever we set;
    // a PodMonitor is CloudNativePG's to create when asked.
    let wiring = wiring(spec, input)?;
    let pod_monitor = matches!(wiring, Wiring::Prometheus { pod_monitor: true });
    match wiring {
        Wiring::None | Wiring::Prometheus { .. } => {}
        Wiring::Pmm(_) => unapplied.push(Unapplied {
            field: "monitoring",
            why: "CloudNativePG has no PMM client: use a prometheus MonitoringConfig (every instance exports metrics on port 9187); nothing was configured",
        }),
        Wiring::NotApplied(note) => unapplied.push(note),
    }
    if pod_monitor {
        // Deprecated upstream in favour of a PodMonitor made by hand, but
        // still the CRD's only way to have one made.
        engine_spec.monitoring = Some(ClusterMonitoring {
            enable_pod_monitor: Some(true),
            ..Default::default()
        });
    }
    if spec
        .monitoring
        .as_ref()
        .is_some_and(|m| m.resources.is_some())
    {
        unapplied.push(NO_AGENT_RESOURCES);
    }

    let mut extra = Vec::new();
    if pooled {
        extra.push(to_dynamic(&build_pooler(cluster, pod_monitor)?)?);
    }
    for scheduled in &rendered_backup.scheduled {
        extra.push(to_dynamic(scheduled)?);
    }

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
        extra,
        secret_keys: Vec::new(),
        unapplied,
    })
}

/// The PgBouncer Pooler in front of the read-write instance for
/// `proxy.type: pgbouncer`: `proxy.replicas` pods (default 1), their
/// resources, `proxy.config` as PgBouncer parameters (`pool_mode` as the
/// pool mode), paused with the cluster, the node placement of the cluster
/// (node selector, tolerations, priority class), and the external exposure.
pub fn build_pooler(cluster: &DatabaseCluster, pod_monitor: bool) -> Result<Pooler, BuildError> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let proxy = spec.proxy.as_ref();
    let instances = match proxy.and_then(|p| p.replicas) {
        Some(0) => {
            return Err(BuildError::Unsupported {
                engine: "postgresql",
                feature: "proxy.replicas 0 with a pgbouncer proxy",
                why: "clients connect through PgBouncer, so it needs at least one pod; set proxy.type none to go without a pooler",
            });
        }
        Some(replicas) => replicas,
        None => DEFAULT_POOLER_INSTANCES,
    };

    let mut parameters = BTreeMap::new();
    let mut pool_mode = None;
    for parameter in proxy.map_or(&[][..], |p| &p.config) {
        if parameter.name == "pool_mode" {
            pool_mode = Some(match parameter.value.as_str() {
                "session" => PoolerPgbouncerPoolMode::Session,
                "transaction" => PoolerPgbouncerPoolMode::Transaction,
                other => {
                    return Err(BuildError::Convert {
                        field: "proxy.config",
                        source: serde::de::Error::custom(format!(
                            "pool_mode {other:?} is not supported by CloudNativePG's pooler: use session or transaction"
                        )),
                    });
                }
            });
        } else {
            parameters.insert(parameter.name.clone(), parameter.value.clone());
        }
    }

    let resources = proxy
        .and_then(|p| p.resources.as_ref())
        .map(|r| retype("proxy.resources", r))
        .transpose()?;
    let scheduling = spec.scheduling.as_ref();
    let node_selector = scheduling
        .map(|s| s.node_selector.clone())
        .filter(|n| !n.is_empty());
    let tolerations = scheduling
        .map(|s| &s.tolerations)
        .filter(|t| !t.is_empty())
        .map(|t| retype("scheduling.tolerations", t))
        .transpose()?;
    let priority_class_name = scheduling.and_then(|s| s.priority_class_name.clone());
    let template = (resources.is_some()
        || node_selector.is_some()
        || tolerations.is_some()
        || priority_class_name.is_some())
    .then(|| PoolerTemplate {
        metadata: None,
        spec: Some(PoolerTemplateSpec {
            // CloudNativePG merges its own settings into the container of
            // this name.
            containers: vec![PoolerTemplateSpecContainers {
                name: PGBOUNCER_CONTAINER.to_owned(),
                resources,
                ..Default::default()
            }],
            node_selector,
            tolerations,
            priority_class_name,
            ..Default::default()
        }),
    });

    let service_template = spec
        .expose
        .as_ref()
        .filter(|e| e.type_ == ExposeType::External)
        .map(|expose| PoolerServiceTemplate {
            metadata: None,
            spec: Some(PoolerServiceTemplateSpec {
                r#type: Some("LoadBalancer".to_owned()),
                load_balancer_source_ranges: (!expose.ip_source_ranges.is_empty())
                    .then(|| expose.ip_source_ranges.clone()),
                ..Default::default()
            }),
        });

    Ok(Pooler {
        metadata: ObjectMeta {
            name: Some(pooler_name(&name)),
            ..engine_metadata(cluster, EngineType::Postgresql)
        },
        spec: PoolerSpec {
            cluster: PoolerCluster { name },
            r#type: Some(PoolerType::Rw),
            instances: Some(instances),
            pgbouncer: PoolerPgbouncer {
                parameters: (!parameters.is_empty()).then_some(parameters),
                pool_mode,
                paused: Some(spec.paused),
                ..Default::default()
            },
            template,
            service_template,
            monitoring: pod_monitor.then(|| PoolerMonitoring {
                enable_pod_monitor: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    })
}

/// Reads the Pooler beside a cluster: its Service becomes the endpoint, and
/// a cluster is Ready only once CloudNativePG runs as many PgBouncer pods as
/// asked and has not failed the pooler.
pub fn observe_pooler(
    mut observation: EngineObservation,
    pooler: &Pooler,
    input: &ObserveInput<'_>,
) -> EngineObservation {
    let namespace = pooler.metadata.namespace.as_deref().unwrap_or("default");
    let name = pooler.metadata.name.clone().unwrap_or_default();
    if observation.host.is_some() {
        observation.host = Some(format!("{name}.{namespace}.svc"));
        observation.port = Some(POSTGRES_PORT);
    }
    if observation.phase.phase != ClusterPhase::Ready {
        return observation;
    }
    let status = pooler.status.as_ref();
    let wanted = pooler.spec.instances.unwrap_or(DEFAULT_POOLER_INSTANCES);
    let running = status.and_then(|s| s.instances).unwrap_or(0);
    let phase = status.and_then(|s| s.phase.clone());
    let detail = status
        .and_then(|s| s.phase_reason.clone().or_else(|| s.error.clone()))
        .filter(|d| !d.is_empty());
    let progressing = |reason: &'static str, message: String| ObservedPhase {
        phase: if input.first_start() {
            ClusterPhase::Creating
        } else {
            ClusterPhase::Updating
        },
        reason,
        message,
    };
    observation.phase = match phase {
        Some(PoolerStatusPhase::Failed) => ObservedPhase {
            phase: ClusterPhase::Error,
            reason: "PoolerFailed",
            message: format!(
                "CloudNativePG reports the PgBouncer pooler {name} failed{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
        },
        Some(PoolerStatusPhase::Inactive | PoolerStatusPhase::Paused) => progressing(
            "PoolerStarting",
            format!(
                "the PgBouncer pooler {name} is not active yet{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            ),
        ),
        Some(PoolerStatusPhase::Active) | None if running != wanted => progressing(
            "PoolerStarting",
            format!("{running} of {wanted} PgBouncer pods of {name}"),
        ),
        Some(PoolerStatusPhase::Active) | None => observation.phase,
    };
    observation
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
            if !saw_latest_spec && matches_spec && quiet_since_apply(input, UNCONFIRMED_AFTER) {
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
