//! MariaDB through mariadb-operator: DatabaseCluster ->
//! `k8s.mariadb.com/v1alpha1` `MariaDB` (replication or Galera), a
//! `MaxScale` beside it when the proxy is `maxscale`, and their status back.

use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{ClusterPhase, ExposeType, ProxyType, Topology};
use dbaas_api::ops::OpsType;
use dbaas_api::{DatabaseBackup, DatabaseCluster};
use dbaas_engine_crds::mariadb_mariadb::{
    MariaDb, MariaDbAffinity, MariaDbGalera, MariaDbMaxScaleRef, MariaDbMetrics,
    MariaDbPrimaryService, MariaDbPrimaryServiceType, MariaDbReplication,
    MariaDbReplicationReplica, MariaDbReplicationReplicaBootstrapFrom,
    MariaDbReplicationReplicaBootstrapFromPhysicalBackupTemplateRef,
    MariaDbRootPasswordSecretKeyRef, MariaDbService, MariaDbServiceType, MariaDbSpec,
    MariaDbStorage,
};
use dbaas_engine_crds::mariadb_maxscale::{
    MaxScale, MaxScaleKubernetesService, MaxScaleKubernetesServiceType, MaxScaleMariaDbRef,
    MaxScaleSpec,
};
use dbaas_engine_crds::mariadb_physical_backup::{
    PhysicalBackup, PhysicalBackupMariaDbRef, PhysicalBackupSchedule, PhysicalBackupSpec,
    PhysicalBackupStorage, PhysicalBackupStoragePersistentVolumeClaim,
    PhysicalBackupStoragePersistentVolumeClaimResources,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};

use crate::backup::{BackupObservation, StorageInput};
use crate::capabilities::{
    CUSTOM_NOT_OFFERED, Capabilities, EnginePatch, InstancePods, Primary, REBUILD_NOT_OFFERED,
    ordinal_claim_of_member,
};
use crate::catalog::{ResolvedVersion, tagged_versions};
use crate::convert::retype;
use crate::monitoring::{NO_AGENT_RESOURCES, Wiring, wiring};
use crate::provider::{
    BuildError, BuildInput, BuiltEngine, EngineObservation, EngineProvider, ObserveInput,
    ObservedPhase, Unapplied, quiet_since_apply, status_written_since, to_dynamic,
};
use crate::restore::{RestoreInput, RestoreObservation};
use crate::shared::{credentials_secret_or, engine_metadata, my_cnf};

pub mod backup;
pub mod restore;

/// MariaDB Community Server releases the operator's release documents and
/// manifests name (`docs/docker.md`, `config/manager`, the Helm values of
/// mariadb-operator 25.10.2), newest first. The version is the image tag.
const MARIADB_VERSIONS: &[&str] = &["11.8.2", "11.4.5", "10.11.8"];
const MARIADB_IMAGE: &str = "docker-registry1.mariadb.com/library/mariadb";
/// The recommended version: mariadb-operator 25.10.2's own default.
pub const MARIADB_DEFAULT: &str = "11.8.2";
/// The MaxScale image mariadb-operator 25.10.2 defaults to.
pub const MAXSCALE_IMAGE: &str = "docker-registry2.mariadb.com/mariadb/maxscale:23.08.5";
/// MariaDB's port on the operator's services (MaxScale's read-write
/// listener too).
pub const MARIADB_PORT: i32 = 3306;
/// The key of the credentials Secret holding root's password (the
/// connection contract in `dbaas_api::connection` reads the same key).
pub const ROOT_PASSWORD_KEY: &str = "root";
/// The container running MariaDB in the instance pods.
pub const MARIADB_CONTAINER: &str = "mariadb";
/// The annotation whose change rolls every instance (the operator copies
/// `spec.podMetadata` into the pod template); the pods carry it afterwards.
pub const RESTART_ANNOTATION: &str = "kubectl.kubernetes.io/restartedAt";
/// Suffix of the PhysicalBackup template's name after the cluster's.
pub const SEED_TEMPLATE_SUFFIX: &str = "-replica-seed";
/// Suffix of the MaxScale's name (and Service's) after the cluster's.
pub const MAXSCALE_SUFFIX: &str = "-maxscale";
/// MaxScale pods when `proxy.replicas` is unset.
pub const DEFAULT_MAXSCALE_REPLICAS: i32 = 1;
/// The operator's field manager, whose status writes show it saw our spec.
const OPERATOR_CONDITION_READY: &str = "Ready";

/// mariadb-operator's Ready reasons (`api/v1alpha1/condition_types.go`).
pub mod reason {
    pub const INITIALIZING: &str = "Initializing";
    pub const INIT_ERROR: &str = "InitError";
    pub const SCALING_OUT: &str = "ScalingOut";
    pub const SCALE_OUT_ERROR: &str = "ScaleOutError";
    pub const REPLICA_RECOVERING: &str = "ReplicaRecovering";
    pub const REPLICA_RECOVER_ERROR: &str = "ReplicaRecoverError";
    pub const UPDATING: &str = "Updating";
    pub const PENDING_UPDATE: &str = "PendingUpdate";
    pub const SUSPENDED: &str = "Suspended";
    pub const SWITCH_PRIMARY: &str = "SwitchPrimary";
    pub const RESIZING_STORAGE: &str = "ResizingStorage";
    pub const WAIT_STORAGE_RESIZE: &str = "WaitStorageResize";
    pub const RESTORE_BACKUP: &str = "RestoreBackup";
    pub const RESTORE_PHYSICAL_BACKUP: &str = "RestorePhysicalBackup";
    pub const MAXSCALE_NOT_READY: &str = "MaxScaleNotReady";
    pub const GALERA_NOT_READY: &str = "GaleraNotReady";
    pub const STATEFUL_SET_NOT_READY: &str = "StatefulSetNotReady";
    pub const FAILED: &str = "Failed";
}

/// The mariadb-operator provider.
#[derive(Debug)]
pub struct Mariadb;

impl EngineProvider for Mariadb {
    fn engine(&self) -> EngineType {
        EngineType::Mariadb
    }

    fn operator_name(&self) -> &'static str {
        "mariadb-operator"
    }

    fn resource(&self) -> ApiResource {
        ApiResource::erase::<MariaDb>(&())
    }

    fn versions(&self) -> Vec<ResolvedVersion> {
        tagged_versions(MARIADB_IMAGE, MARIADB_VERSIONS)
    }

    fn default_version(&self) -> &'static str {
        MARIADB_DEFAULT
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
            ApiResource::erase::<MaxScale>(&()),
            ApiResource::erase::<PhysicalBackup>(&()),
        ]
    }

    fn observe_extra(
        &self,
        observation: EngineObservation,
        extra: &[DynamicObject],
        _input: &ObserveInput<'_>,
    ) -> EngineObservation {
        let maxscale = extra
            .iter()
            .find(|object| object.types.as_ref().is_some_and(|t| t.kind == "MaxScale"));
        match maxscale {
            Some(object) => observe_maxscale(observation, object),
            None => observation,
        }
    }

    fn observe(&self, engine: &DynamicObject, input: &ObserveInput<'_>) -> EngineObservation {
        match engine.clone().try_parse::<MariaDb>() {
            Ok(mariadb) => observe(&mariadb, input),
            Err(err) => EngineObservation::unreadable(format!("the MariaDB cannot be read: {err}")),
        }
    }

    fn credentials_secret_name(&self, cluster: &DatabaseCluster) -> String {
        credentials_secret_name(cluster)
    }

    fn supported_operations(&self) -> &'static [OpsType] {
        &[
            OpsType::HorizontalScaling,
            OpsType::VerticalScaling,
            OpsType::VolumeExpansion,
            OpsType::Reconfiguring,
            OpsType::Upgrade,
            OpsType::Restart,
            OpsType::Switchover,
            OpsType::Backup,
            OpsType::Restore,
            OpsType::Expose,
        ]
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            topology: "one primary with async replicas, or Galera multi-primary (engine.topology)",
            topologies: &[Topology::Replication, Topology::Galera],
            proxies: &[ProxyType::Maxscale],
            expose: &[ExposeType::Internal, ExposeType::External],
            backup_storages: &[BackupStorageType::S3, BackupStorageType::Filesystem],
            pitr: false,
            restore_into_new_cluster: true,
            not_offered: &[
                (
                    OpsType::Stop,
                    "Stop is not supported for mariadb clusters: mariadb-operator cannot stop a MariaDB (suspend only halts its reconciliation); nothing was changed",
                ),
                (
                    OpsType::Start,
                    "Start is not supported for mariadb clusters: mariadb-operator cannot stop a MariaDB, so there is nothing to start; nothing was changed",
                ),
                (OpsType::RebuildInstance, REBUILD_NOT_OFFERED),
                (OpsType::Custom, CUSTOM_NOT_OFFERED),
            ],
        }
    }

    fn operator_images(&self) -> &'static [&'static str] {
        &["mariadb-operator/mariadb-operator"]
    }

    fn unconfirmed_after(&self) -> std::time::Duration {
        UNCONFIRMED_AFTER
    }

    fn data_volume_selector(&self, engine_name: &str) -> String {
        format!("app.kubernetes.io/instance={engine_name},pvc.k8s.mariadb.com/role=storage")
    }

    fn volume_claim_of_member(&self, claim_name: &str, cluster_size: i32) -> bool {
        // A StatefulSet's claims (`storage-<name>-<ordinal>`) outlive the
        // members a scale-down removed.
        ordinal_claim_of_member(claim_name, cluster_size)
    }

    fn scaling_refusal(&self, from: i32, to: i32) -> Option<String> {
        // What holds for both topologies (the DatabaseCluster's own
        // validation, which sees the topology, holds Galera's odd sizes).
        if from == 1 && to != 1 {
            Some("a single-instance mariadb cluster runs without replication and cannot grow; create a new cluster with clusterSize >= 2 and restore a backup into it".to_owned())
        } else if from >= 2 && to < 2 {
            Some("a mariadb cluster with replicas cannot be scaled below 2 instances (mariadb-operator runs a single instance without replication)".to_owned())
        } else {
            None
        }
    }

    fn instance_pods(&self, engine_name: &str) -> Option<InstancePods> {
        Some(InstancePods {
            selector: format!(
                "app.kubernetes.io/instance={engine_name},app.kubernetes.io/name=mariadb"
            ),
            container: MARIADB_CONTAINER,
            restart_annotation: RESTART_ANNOTATION,
        })
    }

    fn restart_patch(&self, requested_at: &str) -> Option<EnginePatch> {
        Some(EnginePatch {
            status: false,
            patch: serde_json::json!({"spec": {"podMetadata": {"annotations": {RESTART_ANNOTATION: requested_at}}}}),
        })
    }

    fn restart_requested(&self, engine: &DynamicObject) -> Option<String> {
        engine
            .data
            .pointer("/spec/podMetadata/annotations")?
            .get(RESTART_ANNOTATION)?
            .as_str()
            .map(str::to_owned)
    }

    fn switches_over(&self) -> bool {
        true
    }

    fn switchover_refusal(&self, cluster: &DatabaseCluster) -> Option<String> {
        let spec = &cluster.spec;
        if spec.engine.topology == Some(Topology::Galera) {
            Some("Switchover is not supported for galera mariadb clusters yet: every member takes writes, and the writer mariadb-operator routes to (galera.primary.podIndex) is not written by this version; nothing was changed".to_owned())
        } else if spec
            .proxy
            .as_ref()
            .is_some_and(|p| p.type_ == Some(ProxyType::Maxscale))
        {
            Some("Switchover is not supported for mariadb clusters behind MaxScale yet: MaxScale moves the primary itself (spec.primaryServer), which this version does not write; nothing was changed".to_owned())
        } else {
            None
        }
    }

    fn switchover_patch(&self, target: &str) -> Option<EnginePatch> {
        // mariadb-operator moves the primary of a replication MariaDB when
        // `replication.primary.podIndex` changes. (Galera's writer,
        // `galera.primary.podIndex`, is not asked for: the patch cannot
        // tell the topologies apart, and the ops controller's evidence,
        // status.currentPrimary, is the same for both.)
        let index = pod_index(target)?;
        Some(EnginePatch {
            status: false,
            patch: serde_json::json!({"spec": {
                "replication": {"primary": {"podIndex": index}},
            }}),
        })
    }

    fn primary(&self, engine: &DynamicObject) -> Primary {
        let Ok(mariadb) = engine.clone().try_parse::<MariaDb>() else {
            return Primary::default();
        };
        let name = mariadb.metadata.name.clone().unwrap_or_default();
        let replicas = mariadb.spec.replicas.unwrap_or(1).max(0);
        Primary {
            current: mariadb.status.and_then(|s| s.current_primary),
            instances: (0..replicas).map(|i| format!("{name}-{i}")).collect(),
        }
    }

    fn images(&self, engine: &DynamicObject) -> Option<(Option<String>, Option<String>)> {
        // mariadb-operator reports no running image: the pods' own images
        // are the evidence (the ops controller reads them).
        let mariadb = engine.clone().try_parse::<MariaDb>().ok()?;
        Some((mariadb.spec.image, None))
    }

    fn backup_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<
            dbaas_engine_crds::mariadb_backup::Backup,
        >(&()))
    }

    fn build_backup(
        &self,
        backup: &DatabaseBackup,
        cluster: &DatabaseCluster,
        storage: &StorageInput,
    ) -> Result<DynamicObject, BuildError> {
        to_dynamic(&backup::build_backup(backup, cluster, storage)?)
    }

    fn observe_backup(&self, engine_backup: &DynamicObject) -> BackupObservation {
        backup::observe_backup(engine_backup)
    }

    fn restore_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<
            dbaas_engine_crds::mariadb_restore::Restore,
        >(&()))
    }

    fn build_restore(
        &self,
        name: &str,
        cluster: &DatabaseCluster,
        source: &RestoreInput,
    ) -> Result<DynamicObject, BuildError> {
        to_dynamic(&restore::build_restore(name, cluster, source)?)
    }

    fn observe_restore(&self, engine_restore: &DynamicObject) -> RestoreObservation {
        restore::observe_restore(engine_restore)
    }
}

/// How long mariadb-operator may stay silent after a change before a
/// healthy status that matches the spec is taken as its answer: it writes
/// status on every reconcile, but a write that changes nothing leaves no
/// trace.
pub const UNCONFIRMED_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The ordinal of an instance pod `<name>-<ordinal>`.
fn pod_index(pod: &str) -> Option<i64> {
    pod.rsplit_once('-')?.1.parse().ok()
}

/// The MariaDB for a DatabaseCluster, the MaxScale beside it, and what of
/// the spec it does not carry yet.
pub type Built = crate::provider::Built<MariaDb>;

/// The Secret with root's password (key [`ROOT_PASSWORD_KEY`]).
pub fn credentials_secret_name(cluster: &DatabaseCluster) -> String {
    credentials_secret_or(cluster, "credentials")
}

/// The MaxScale's name (and its Service's) for the cluster `cluster_name`.
pub fn maxscale_name(cluster_name: &str) -> String {
    format!("{cluster_name}{MAXSCALE_SUFFIX}")
}

/// Builds the MariaDB for `cluster` at `version`, with nothing looked up.
pub fn build(cluster: &DatabaseCluster, version: &ResolvedVersion) -> Result<Built, BuildError> {
    build_with(cluster, version, &BuildInput::default())
}

/// Builds the MariaDB (and its MaxScale) for `cluster` at `version`.
pub fn build_with(
    cluster: &DatabaseCluster,
    version: &ResolvedVersion,
    input: &BuildInput<'_>,
) -> Result<Built, BuildError> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut unapplied = Vec::new();

    if spec.paused {
        return Err(BuildError::Unsupported {
            engine: "mariadb",
            feature: "paused",
            why: "mariadb-operator cannot stop a MariaDB (its suspend only halts reconciliation and leaves the database running); set paused back to false",
        });
    }

    let galera = spec.engine.topology == Some(Topology::Galera);
    // mariadb-operator runs one instance without replication (and refuses
    // replication or Galera on fewer than 2): a single instance stays one.
    let single = spec.cluster_size == 1;
    let external = spec
        .expose
        .as_ref()
        .filter(|e| e.type_ == ExposeType::External);
    let source_ranges = external
        .map(|e| e.ip_source_ranges.clone())
        .filter(|r| !r.is_empty());
    let proxy = spec
        .proxy
        .as_ref()
        .filter(|p| p.type_ == Some(ProxyType::Maxscale));

    let mut engine_spec = MariaDbSpec {
        image: Some(version.image.clone()),
        replicas: Some(spec.cluster_size),
        root_password_secret_key_ref: Some(MariaDbRootPasswordSecretKeyRef {
            name: Some(credentials_secret_name(cluster)),
            key: ROOT_PASSWORD_KEY.to_owned(),
            // Our derived Secret is generated; a Secret the user names must
            // exist (the operator reports it missing otherwise).
            generate: Some(spec.credentials_secret_name.is_none()),
        }),
        storage: Some(MariaDbStorage {
            size: Some(IntOrString::String(spec.storage.size.0.clone())),
            storage_class_name: spec.storage.class.clone(),
            // Grow the volumes in place when storage.size grows.
            resize_in_use_volumes: Some(true),
            wait_for_volume_resize: Some(true),
            ..Default::default()
        }),
        resources: spec
            .resources
            .as_ref()
            .map(|r| retype("resources", r))
            .transpose()?,
        my_cnf: my_cnf(&spec.config, "mariadb", |_| None)?,
        max_scale_ref: proxy.map(|_| MariaDbMaxScaleRef {
            name: Some(maxscale_name(&name)),
            namespace: None,
        }),
        ..Default::default()
    };
    if single {
        // Neither topology: a standalone MariaDB.
    } else if galera {
        engine_spec.galera = Some(MariaDbGalera {
            enabled: Some(true),
            ..Default::default()
        });
    } else {
        // New replicas (a scale-out, a lost replica) are seeded from a
        // physical backup of a ready one, made from this template.
        engine_spec.replication = Some(MariaDbReplication {
            enabled: Some(true),
            replica: Some(MariaDbReplicationReplica {
                bootstrap_from: Some(MariaDbReplicationReplicaBootstrapFrom {
                    physical_backup_template_ref:
                        MariaDbReplicationReplicaBootstrapFromPhysicalBackupTemplateRef {
                            name: Some(seed_template_name(&name)),
                        },
                    restore_job: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    if external.is_some() && proxy.is_none() {
        engine_spec.primary_service = (!single).then(|| MariaDbPrimaryService {
            r#type: Some(MariaDbPrimaryServiceType::LoadBalancer),
            load_balancer_source_ranges: source_ranges.clone(),
            ..Default::default()
        });
        engine_spec.service = Some(MariaDbService {
            r#type: Some(MariaDbServiceType::LoadBalancer),
            load_balancer_source_ranges: source_ranges.clone(),
            ..Default::default()
        });
    }

    if let Some(scheduling) = &spec.scheduling {
        engine_spec.node_selector =
            (!scheduling.node_selector.is_empty()).then(|| scheduling.node_selector.clone());
        engine_spec.tolerations = if scheduling.tolerations.is_empty() {
            None
        } else {
            Some(retype("scheduling.tolerations", &scheduling.tolerations)?)
        };
        if let Some(affinity) = &scheduling.affinity {
            if affinity.pod_affinity.is_some() {
                unapplied.push(Unapplied {
                    field: "scheduling.affinity.podAffinity",
                    why: "mariadb-operator takes node affinity and pod anti-affinity only; pod affinity is not applied",
                });
            }
            engine_spec.affinity = Some(MariaDbAffinity {
                node_affinity: affinity
                    .node_affinity
                    .as_ref()
                    .map(|a| retype("scheduling.affinity.nodeAffinity", a))
                    .transpose()?,
                pod_anti_affinity: affinity
                    .pod_anti_affinity
                    .as_ref()
                    .map(|a| retype("scheduling.affinity.podAntiAffinity", a))
                    .transpose()?,
                anti_affinity_enabled: None,
            });
        }
        engine_spec.priority_class_name = scheduling.priority_class_name.clone();
    }

    match wiring(spec, input)? {
        Wiring::None => {}
        Wiring::Prometheus { .. } => {
            // mysqld-exporter beside every instance, and a ServiceMonitor
            // where the Prometheus operator's CRD is installed.
            engine_spec.metrics = Some(MariaDbMetrics {
                enabled: Some(true),
                ..Default::default()
            });
        }
        Wiring::Pmm(_) => unapplied.push(Unapplied {
            field: "monitoring",
            why: "mariadb-operator has no PMM client: use a prometheus MonitoringConfig (mysqld-exporter beside every instance); nothing was configured",
        }),
        Wiring::NotApplied(note) => unapplied.push(note),
    }
    if spec
        .monitoring
        .as_ref()
        .is_some_and(|m| m.resources.is_some())
    {
        unapplied.push(NO_AGENT_RESOURCES);
    }
    if spec.proxy.as_ref().is_some_and(|p| !p.config.is_empty()) {
        unapplied.push(Unapplied {
            field: "proxy.config",
            why: "MaxScale parameters are not applied by this operator version",
        });
    }
    backup::check_cluster_backup(spec, &mut unapplied)?;

    let mut extra = Vec::new();
    if !galera && !single {
        extra.push(to_dynamic(&seed_template(cluster))?);
    }
    if let Some(proxy) = proxy {
        let replicas = match proxy.replicas {
            Some(0) => {
                return Err(BuildError::Unsupported {
                    engine: "mariadb",
                    feature: "proxy.replicas 0 with a maxscale proxy",
                    why: "clients connect through MaxScale, so it needs at least one pod; set proxy.type none to go without a proxy",
                });
            }
            Some(replicas) => replicas,
            None => DEFAULT_MAXSCALE_REPLICAS,
        };
        let mut metadata = engine_metadata(cluster, EngineType::Mariadb);
        metadata.name = Some(maxscale_name(&name));
        let maxscale = MaxScale {
            metadata,
            spec: MaxScaleSpec {
                maria_db_ref: Some(MaxScaleMariaDbRef {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                replicas: Some(replicas),
                image: Some(MAXSCALE_IMAGE.to_owned()),
                resources: proxy
                    .resources
                    .as_ref()
                    .map(|r| retype("proxy.resources", r))
                    .transpose()?,
                kubernetes_service: external.map(|_| MaxScaleKubernetesService {
                    r#type: Some(MaxScaleKubernetesServiceType::LoadBalancer),
                    load_balancer_source_ranges: source_ranges.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            status: None,
        };
        extra.push(to_dynamic(&maxscale)?);
    }

    Ok(Built {
        cluster: MariaDb {
            metadata: engine_metadata(cluster, EngineType::Mariadb),
            spec: engine_spec,
            status: None,
        },
        extra,
        secret_keys: Vec::new(),
        unapplied,
    })
}

/// The PhysicalBackup template's name for the cluster `cluster_name`.
pub fn seed_template_name(cluster_name: &str) -> String {
    format!("{cluster_name}{SEED_TEMPLATE_SUFFIX}")
}

/// The template mariadb-operator copies into a PhysicalBackup when a new
/// replica needs the data (its schedule suspended: it never runs itself).
/// The copy goes to a volume of the instances' size and class.
fn seed_template(cluster: &DatabaseCluster) -> PhysicalBackup {
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut metadata = engine_metadata(cluster, EngineType::Mariadb);
    metadata.name = Some(seed_template_name(&name));
    PhysicalBackup {
        metadata,
        spec: PhysicalBackupSpec {
            maria_db_ref: PhysicalBackupMariaDbRef {
                name: Some(name),
                ..Default::default()
            },
            schedule: Some(PhysicalBackupSchedule {
                suspend: Some(true),
                ..Default::default()
            }),
            storage: PhysicalBackupStorage {
                persistent_volume_claim: Some(PhysicalBackupStoragePersistentVolumeClaim {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: cluster.spec.storage.class.clone(),
                    resources: Some(PhysicalBackupStoragePersistentVolumeClaimResources {
                        requests: Some(std::collections::BTreeMap::from([(
                            "storage".to_owned(),
                            IntOrString::String(cluster.spec.storage.size.0.clone()),
                        )])),
                        limits: None,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
        status: None,
    }
}

/// The Ready condition mariadb-operator keeps on a MariaDB.
fn ready_condition(conditions: Option<&Vec<Condition>>) -> Option<&Condition> {
    conditions?
        .iter()
        .find(|c| c.type_ == OPERATOR_CONDITION_READY)
}

/// Reads a MariaDB's status in our vocabulary.
pub fn observe(engine: &MariaDb, input: &ObserveInput<'_>) -> EngineObservation {
    let status = engine.status.as_ref();
    let name = engine.metadata.name.as_deref().unwrap_or_default();
    let namespace = engine.metadata.namespace.as_deref().unwrap_or("default");
    let ready_instances = status.and_then(|s| s.replicas).unwrap_or(0).max(0);
    // Writes go to the primary: the `-primary` Service of the replication
    // and Galera topologies, or the single instance's own Service.
    let ha = engine
        .spec
        .replication
        .as_ref()
        .is_some_and(|r| r.enabled == Some(true))
        || engine
            .spec
            .galera
            .as_ref()
            .is_some_and(|g| g.enabled == Some(true));
    let service = if ha {
        format!("{name}-primary")
    } else {
        name.to_owned()
    };
    let host = status
        .filter(|s| s.conditions.is_some())
        .map(|_| format!("{service}.{namespace}.svc"));
    // mariadb-operator has no observedGeneration: it has seen our spec once
    // it wrote status after our apply, or after a quiet period.
    let saw_latest_spec = status_written_since(
        &engine.metadata,
        input.applied_at,
        input.applied_resource_version,
    ) || quiet_since_apply(input, UNCONFIRMED_AFTER);
    let phase = observe_phase(engine, input, saw_latest_spec, ready_instances);
    EngineObservation {
        phase,
        saw_latest_spec,
        ready_instances,
        port: host.as_ref().map(|_| MARIADB_PORT),
        host,
    }
}

fn observe_phase(
    engine: &MariaDb,
    input: &ObserveInput<'_>,
    saw_latest_spec: bool,
    ready_instances: i32,
) -> ObservedPhase {
    let observed = |phase, reason: &'static str, message: String| ObservedPhase {
        phase,
        reason,
        message,
    };
    let status = engine.status.as_ref();
    let Some(ready) = ready_condition(status.and_then(|s| s.conditions.as_ref())) else {
        return observed(
            ClusterPhase::Pending,
            "WaitingForEngine",
            "waiting for mariadb-operator to report status".to_owned(),
        );
    };
    let progressing = |reason: &'static str, message: String| {
        let phase = if input.first_start() {
            ClusterPhase::Creating
        } else {
            ClusterPhase::Updating
        };
        observed(phase, reason, message)
    };
    let desired = input.desired_instances;
    let words = if ready.message.is_empty() {
        ready.reason.clone()
    } else {
        format!("{}: {}", ready.reason, ready.message)
    };

    match ready.reason.as_str() {
        // `Failed` is any failing reconcile step ("Error reconciling ..."),
        // often passing (pods restarting): progress with its words, below.
        reason::INIT_ERROR | reason::SCALE_OUT_ERROR | reason::REPLICA_RECOVER_ERROR => {
            return observed(
                ClusterPhase::Error,
                "EngineError",
                format!("mariadb-operator reports an error: {words}"),
            );
        }
        reason::SUSPENDED => {
            return observed(
                ClusterPhase::Unknown,
                "EngineSuspended",
                "mariadb-operator's reconciliation of this MariaDB is suspended".to_owned(),
            );
        }
        _ => {}
    }

    if ready.status != "True" {
        let reason = match ready.reason.as_str() {
            reason::INITIALIZING => "EngineInitializing",
            reason::SCALING_OUT => "Scaling",
            reason::UPDATING | reason::PENDING_UPDATE => "RollingOut",
            reason::SWITCH_PRIMARY => "SwitchingPrimary",
            reason::RESIZING_STORAGE | reason::WAIT_STORAGE_RESIZE => "ResizingStorage",
            reason::RESTORE_BACKUP | reason::RESTORE_PHYSICAL_BACKUP => "Restoring",
            reason::MAXSCALE_NOT_READY => "WaitingForProxy",
            reason::REPLICA_RECOVERING => "RecoveringReplicas",
            _ => "EngineNotReady",
        };
        return progressing(
            reason,
            format!("{ready_instances} of {desired} instances ready ({words})"),
        );
    }
    if !saw_latest_spec {
        return progressing(
            "WaitingForEngine",
            "mariadb-operator has not reported on the latest spec yet".to_owned(),
        );
    }
    if ready_instances != desired {
        return progressing(
            "Scaling",
            format!("{ready_instances} of {desired} instances ready"),
        );
    }
    let primary = status
        .and_then(|s| s.current_primary.as_deref())
        .map(|p| format!(", primary {p}"))
        .unwrap_or_default();
    observed(
        ClusterPhase::Ready,
        "EngineHealthy",
        format!("ready: {ready_instances} instances{primary}"),
    )
}

/// Clients connect through MaxScale when there is one: its Service is the
/// endpoint, and it must be ready before the cluster is.
fn observe_maxscale(
    mut observation: EngineObservation,
    object: &DynamicObject,
) -> EngineObservation {
    let Ok(maxscale) = object.clone().try_parse::<MaxScale>() else {
        return observation;
    };
    let name = maxscale.metadata.name.as_deref().unwrap_or_default();
    let namespace = maxscale.metadata.namespace.as_deref().unwrap_or("default");
    observation.host = Some(format!("{name}.{namespace}.svc"));
    observation.port = Some(MARIADB_PORT);
    let ready = ready_condition(maxscale.status.as_ref().and_then(|s| s.conditions.as_ref()))
        .is_some_and(|c| c.status == "True");
    if observation.phase.phase == ClusterPhase::Ready && !ready {
        observation.phase = ObservedPhase {
            phase: ClusterPhase::Updating,
            reason: "WaitingForProxy",
            message: format!("the instances are ready; MaxScale {name} is not yet"),
        };
    }
    observation
}

#[cfg(test)]
mod tests;
