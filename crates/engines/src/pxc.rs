//! MySQL through the Percona Operator for MySQL based on Percona XtraDB
//! Cluster: DatabaseCluster -> `pxc.percona.com/v1` `PerconaXtraDBCluster`,
//! and its status back.

use std::collections::BTreeMap;

use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{ClusterPhase, ExposeType, ProxySpec, ProxyType};
use dbaas_api::common::ConfigParameter;
use dbaas_api::ops::OpsType;
use dbaas_api::{DatabaseBackup, DatabaseCluster};
use dbaas_engine_crds::pxc_cluster::PerconaXtraDbClusterPmm;
use dbaas_engine_crds::pxc_cluster::{
    PerconaXtraDbCluster, PerconaXtraDbClusterHaproxy, PerconaXtraDbClusterHaproxyExposePrimary,
    PerconaXtraDbClusterProxysql, PerconaXtraDbClusterProxysqlExpose,
    PerconaXtraDbClusterProxysqlVolumeSpec,
    PerconaXtraDbClusterProxysqlVolumeSpecPersistentVolumeClaim,
    PerconaXtraDbClusterProxysqlVolumeSpecPersistentVolumeClaimResources, PerconaXtraDbClusterPxc,
    PerconaXtraDbClusterPxcAffinity, PerconaXtraDbClusterPxcExpose,
    PerconaXtraDbClusterPxcVolumeSpec, PerconaXtraDbClusterPxcVolumeSpecPersistentVolumeClaim,
    PerconaXtraDbClusterPxcVolumeSpecPersistentVolumeClaimResources, PerconaXtraDbClusterSpec,
    PerconaXtraDbClusterStatus, PerconaXtraDbClusterUnsafeFlags,
    PerconaXtraDbClusterUpgradeOptions,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};

use crate::backup::{BackupObservation, StorageInput};
use crate::capabilities::{
    CUSTOM_NOT_OFFERED, Capabilities, REBUILD_NOT_OFFERED, ordinal_claim_of_member,
    quorum_scaling_refusal,
};
use crate::catalog::{ResolvedVersion, tagged_versions};
use crate::convert::retype;
use crate::monitoring::{NO_AGENT_RESOURCES, Wiring, wiring};
use crate::provider::{
    BuildError, BuildInput, BuiltEngine, EngineObservation, EngineProvider, ObserveInput,
    ObservedPhase, Unapplied, to_dynamic,
};
use crate::restore::{RestoreInput, RestoreObservation};
use crate::shared::{credentials_secret_or, engine_metadata, my_cnf};

pub mod backup;
pub use backup::{build_backup, observe_backup};
pub mod restore;
pub use restore::{build_restore, observe_restore};

/// Percona XtraDB Cluster releases, newest first, as Percona publishes them
/// (`percona/percona-xtradb-cluster:<version>`): the images certified by the
/// Percona XtraDB Cluster operator releases 1.14.0 to 1.20.0 (their release
/// notes, "Percona certified images"). The version is the image tag.
const PXC_VERSIONS: &[&str] = &[
    "8.4.8-8.1",   // operator 1.20.0
    "8.4.7-7.1",   // 1.19.0, 1.19.1
    "8.4.5-5.1",   // 1.18.0
    "8.4.3-3.1",   // 1.17.0
    "8.4.2-2.1",   // 1.16.0 (tech preview there)
    "8.0.45-36.1", // 1.20.0
    "8.0.44-35.1", // 1.19.0, 1.19.1
    "8.0.42-33.1", // 1.18.0
    "8.0.41-32.1", // 1.17.0
    "8.0.39-30.1", // 1.16.0
    "8.0.36-28.1", // 1.15.0
    "8.0.35-27.1", // 1.14.0
];
const PXC_IMAGE: &str = "percona/percona-xtradb-cluster";
/// The recommended version: the newest 8.4, which Percona recommends for
/// new clusters since operator 1.20.0.
pub const PXC_DEFAULT: &str = "8.4.8-8.1";
/// The `crVersion` the objects are written for: the operator release whose
/// CRD we build against (`pxc.percona.com_perconaxtradbclusters.yaml` from
/// the operator's main branch, labelled v1.20.0 in its `deploy/crd.yaml`).
pub const CR_VERSION: &str = "1.20.0";
/// `spec.upgradeOptions.apply` value that turns Percona's automatic
/// version upgrades off.
pub const UPGRADE_APPLY_DISABLED: &str = "disabled";
/// HAProxy image certified with operator 1.20.0.
pub const HAPROXY_IMAGE: &str = "percona/haproxy:2.8.18-1";
/// ProxySQL image certified with operator 1.20.0.
pub const PROXYSQL_IMAGE: &str = "percona/proxysql2:2.7.3-1.3";
/// Volume of each ProxySQL pod (the operator requires one; Percona's sample
/// CR uses 2G).
pub const PROXYSQL_STORAGE: &str = "2Gi";
/// The Percona operator refuses longer cluster names (`clusterNameMaxLen`).
pub const MAX_NAME_LEN: usize = 22;
/// MySQL's port on the Percona services.
pub const MYSQL_PORT: i32 = 3306;
/// Key of the secrets Secret (`spec.secretsName`) the operator reads the
/// PMM 3 service account token from (`users.PMMServerToken`, operator 1.18.0
/// and later; it wins over the PMM 2 key when both are set).
pub const PMM3_SECRET_KEY: &str = "pmmservertoken";
/// Key of the secrets Secret with the PMM 2 API key (`users.PMMServerKey`).
pub const PMM2_SECRET_KEY: &str = "pmmserverkey";
/// Percona refuses fewer PXC nodes than this without `unsafeFlags.pxcSize`.
const MIN_SAFE_PXC_SIZE: i32 = 3;
/// Percona refuses more PXC nodes than this without `unsafeFlags.pxcSize`.
const MAX_SAFE_PXC_SIZE: i32 = 5;
/// Percona refuses fewer proxy pods than this without `unsafeFlags.proxySize`.
const MIN_SAFE_PROXY_SIZE: i32 = 2;
/// Proxy pods when `proxy.replicas` is unset: one per PXC node, at most 3
/// (Percona's own default).
const DEFAULT_PROXY_SIZE: i32 = 3;

/// The Percona XtraDB Cluster provider.
#[derive(Debug)]
pub struct Pxc;

impl EngineProvider for Pxc {
    fn engine(&self) -> EngineType {
        EngineType::Mysql
    }

    fn operator_name(&self) -> &'static str {
        "Percona Operator for MySQL (Percona XtraDB Cluster)"
    }

    fn resource(&self) -> ApiResource {
        ApiResource::erase::<PerconaXtraDbCluster>(&())
    }

    fn versions(&self) -> Vec<ResolvedVersion> {
        tagged_versions(PXC_IMAGE, PXC_VERSIONS)
    }

    fn default_version(&self) -> &'static str {
        PXC_DEFAULT
    }

    fn build(
        &self,
        cluster: &DatabaseCluster,
        version: &ResolvedVersion,
        input: &BuildInput<'_>,
    ) -> Result<BuiltEngine, BuildError> {
        build_with(cluster, version, input)?.into_engine()
    }

    fn observe(&self, engine: &DynamicObject, input: &ObserveInput<'_>) -> EngineObservation {
        match parse(engine) {
            Ok(cluster) => observe(&cluster, input),
            Err(err) => EngineObservation::unreadable(format!(
                "the PerconaXtraDBCluster cannot be read: {err}"
            )),
        }
    }

    fn credentials_secret_name(&self, cluster: &DatabaseCluster) -> String {
        credentials_secret_name(cluster)
    }

    fn supported_operations(&self) -> &'static [OpsType] {
        // What the PerconaXtraDBCluster (and its Backup/Restore CRs) can do.
        // No restart, switchover or instance rebuild: the CR has no field for
        // them (Galera has no single primary to switch over; HAProxy and
        // ProxySQL pick the writer).
        &[
            OpsType::Start,
            OpsType::Stop,
            OpsType::HorizontalScaling,
            OpsType::VerticalScaling,
            OpsType::VolumeExpansion,
            OpsType::Reconfiguring,
            OpsType::Upgrade,
            OpsType::Backup,
            OpsType::Restore,
            OpsType::Expose,
        ]
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            topology: "Galera multi-primary (1, 3, 5, ... members)",
            topologies: &[],
            proxies: &[ProxyType::Haproxy, ProxyType::Proxysql],
            expose: &[ExposeType::Internal, ExposeType::External],
            backup_storages: &[BackupStorageType::S3, BackupStorageType::Azure],
            pitr: true,
            restore_into_new_cluster: true,
            not_offered: &[
                (
                    OpsType::Restart,
                    "Restart is not supported for mysql clusters: the PerconaXtraDBCluster resource has no restart field; nothing was changed",
                ),
                (
                    OpsType::Switchover,
                    "Switchover is not supported for mysql clusters: Galera has no single primary to switch over (HAProxy or ProxySQL pick the writer); nothing was changed",
                ),
                (OpsType::RebuildInstance, REBUILD_NOT_OFFERED),
                (OpsType::Custom, CUSTOM_NOT_OFFERED),
            ],
        }
    }

    fn operator_images(&self) -> &'static [&'static str] {
        &["percona/percona-xtradb-cluster-operator"]
    }

    fn data_volume_selector(&self, engine_name: &str) -> String {
        format!("app.kubernetes.io/instance={engine_name},app.kubernetes.io/component=pxc")
    }

    fn volume_claim_of_member(&self, claim_name: &str, cluster_size: i32) -> bool {
        ordinal_claim_of_member(claim_name, cluster_size)
    }

    fn scaling_refusal(&self, from: i32, to: i32) -> Option<String> {
        quorum_scaling_refusal(self.engine(), from, to)
    }

    fn backup_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<
            dbaas_engine_crds::pxc_backup::PerconaXtraDbClusterBackup,
        >(&()))
    }

    fn build_backup(
        &self,
        backup: &DatabaseBackup,
        cluster: &DatabaseCluster,
        storage: &StorageInput,
    ) -> Result<DynamicObject, BuildError> {
        to_dynamic(&build_backup(backup, cluster, storage)?)
    }

    fn observe_backup(&self, engine_backup: &DynamicObject) -> BackupObservation {
        observe_backup(engine_backup)
    }

    fn scheduled_backup_selector(&self) -> Option<&'static str> {
        Some(backup::SCHEDULED_SELECTOR)
    }

    fn scheduled_backup_of(
        &self,
        engine_backup: &DynamicObject,
    ) -> Option<crate::backup::ScheduledBackupRef> {
        backup::scheduled_backup_of(engine_backup)
    }

    fn restore_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<
            dbaas_engine_crds::pxc_restore::PerconaXtraDbClusterRestore,
        >(&()))
    }

    fn build_restore(
        &self,
        name: &str,
        cluster: &DatabaseCluster,
        source: &RestoreInput,
    ) -> Result<DynamicObject, BuildError> {
        to_dynamic(&build_restore(name, cluster, source)?)
    }

    fn observe_restore(&self, engine_restore: &DynamicObject) -> RestoreObservation {
        observe_restore(engine_restore)
    }
}

/// Reads a PerconaXtraDBCluster. Percona's own status conditions are
/// informative only; if they do not fit the typed schema (e.g. a condition
/// without `lastTransitionTime`), the object is read without them rather
/// than not at all.
fn parse(
    engine: &DynamicObject,
) -> Result<PerconaXtraDbCluster, kube::core::dynamic::ParseDynamicObjectError> {
    match engine.clone().try_parse::<PerconaXtraDbCluster>() {
        Ok(cluster) => Ok(cluster),
        Err(err) => {
            let mut lenient = engine.clone();
            let removed = lenient
                .data
                .get_mut("status")
                .and_then(|s| s.as_object_mut())
                .and_then(|s| s.remove("conditions"))
                .is_some();
            if removed {
                lenient.try_parse::<PerconaXtraDbCluster>()
            } else {
                Err(err)
            }
        }
    }
}

/// Percona's cluster states (`AppState` in `pkg/apis/pxc/v1/pxc_types.go`);
/// `unknown` is what older operator versions wrote. Anything else maps to
/// `Unknown`, never an error.
pub mod state {
    pub const INITIALIZING: &str = "initializing";
    pub const READY: &str = "ready";
    pub const ERROR: &str = "error";
    pub const PAUSED: &str = "paused";
    pub const STOPPING: &str = "stopping";
    pub const UNKNOWN: &str = "unknown";
}

/// The PerconaXtraDBCluster for a DatabaseCluster, and what of the spec it
/// does not carry yet.
pub type Built = crate::provider::Built<PerconaXtraDbCluster>;

/// The Secret with the system users' passwords (`root`, ...).
pub fn credentials_secret_name(cluster: &DatabaseCluster) -> String {
    credentials_secret_or(cluster, "secrets")
}

/// Builds the PerconaXtraDBCluster for `cluster` at `version`, with nothing
/// looked up (a MonitoringConfig is then reported as not applied).
pub fn build(cluster: &DatabaseCluster, version: &ResolvedVersion) -> Result<Built, BuildError> {
    build_with(cluster, version, &BuildInput::default())
}

/// Builds the PerconaXtraDBCluster for `cluster` at `version` with what the
/// operator looked up for it.
pub fn build_with(
    cluster: &DatabaseCluster,
    version: &ResolvedVersion,
    input: &BuildInput<'_>,
) -> Result<Built, BuildError> {
    let spec = &cluster.spec;
    let name = cluster.metadata.name.clone().unwrap_or_default();
    let mut unapplied = Vec::new();
    let mut secret_keys = Vec::new();

    if name.len() > MAX_NAME_LEN {
        return Err(BuildError::Unsupported {
            engine: "mysql",
            feature: "metadata.name longer than 22 characters",
            why: "the Percona XtraDB Cluster operator refuses longer cluster names (it derives pod, service and secret names from it); the cluster was not created: choose a shorter name",
        });
    }

    let size = spec.cluster_size;
    let class = spec.storage.class.clone();
    let mut pxc = PerconaXtraDbClusterPxc {
        size: Some(size),
        image: Some(version.image.clone()),
        volume_spec: Some(PerconaXtraDbClusterPxcVolumeSpec {
            persistent_volume_claim: Some(PerconaXtraDbClusterPxcVolumeSpecPersistentVolumeClaim {
                storage_class_name: class.clone(),
                resources: Some(
                    PerconaXtraDbClusterPxcVolumeSpecPersistentVolumeClaimResources {
                        requests: Some(storage_request(&spec.storage.size.0)),
                        limits: None,
                    },
                ),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: spec
            .resources
            .as_ref()
            .map(|r| retype("resources", r))
            .transpose()?,
        configuration: render_my_cnf(&spec.config, memory_limit_set(spec.resources.as_ref()))?,
        ..Default::default()
    };

    if let Some(scheduling) = &spec.scheduling {
        pxc.node_selector =
            (!scheduling.node_selector.is_empty()).then(|| scheduling.node_selector.clone());
        pxc.tolerations = if scheduling.tolerations.is_empty() {
            None
        } else {
            Some(retype("scheduling.tolerations", &scheduling.tolerations)?)
        };
        pxc.affinity = scheduling
            .affinity
            .as_ref()
            .map(|affinity| -> Result<_, BuildError> {
                Ok(PerconaXtraDbClusterPxcAffinity {
                    advanced: Some(retype("scheduling.affinity", affinity)?),
                    anti_affinity_topology_key: None,
                })
            })
            .transpose()?;
        pxc.priority_class_name = scheduling.priority_class_name.clone();
    }

    let proxy_type = spec
        .proxy
        .as_ref()
        .and_then(|p| p.type_)
        .unwrap_or(ProxyType::None);
    let external = spec
        .expose
        .as_ref()
        .filter(|e| e.type_ == ExposeType::External);
    let source_ranges = external
        .map(|e| e.ip_source_ranges.clone())
        .filter(|r| !r.is_empty());

    // Exactly one proxy enabled, or none; both switches always sent so a
    // change of proxy type turns the other one off.
    let mut haproxy = PerconaXtraDbClusterHaproxy {
        enabled: Some(false),
        ..Default::default()
    };
    let mut proxysql = PerconaXtraDbClusterProxysql {
        enabled: Some(false),
        ..Default::default()
    };
    let mut proxy_size = None;
    match proxy_type {
        ProxyType::Haproxy => {
            let proxy = spec.proxy.as_ref();
            let replicas = proxy_replicas(proxy, size)?;
            proxy_size = Some(replicas);
            haproxy = PerconaXtraDbClusterHaproxy {
                enabled: Some(true),
                size: Some(replicas),
                image: Some(HAPROXY_IMAGE.to_owned()),
                resources: proxy
                    .and_then(|p| p.resources.as_ref())
                    .map(|r| retype("proxy.resources", r))
                    .transpose()?,
                expose_primary: external.map(|_| PerconaXtraDbClusterHaproxyExposePrimary {
                    r#type: Some("LoadBalancer".to_owned()),
                    load_balancer_source_ranges: source_ranges.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
        }
        ProxyType::Proxysql => {
            let proxy = spec.proxy.as_ref();
            let replicas = proxy_replicas(proxy, size)?;
            proxy_size = Some(replicas);
            proxysql = PerconaXtraDbClusterProxysql {
                enabled: Some(true),
                size: Some(replicas),
                image: Some(PROXYSQL_IMAGE.to_owned()),
                resources: proxy
                    .and_then(|p| p.resources.as_ref())
                    .map(|r| retype("proxy.resources", r))
                    .transpose()?,
                volume_spec: Some(PerconaXtraDbClusterProxysqlVolumeSpec {
                    persistent_volume_claim: Some(
                        PerconaXtraDbClusterProxysqlVolumeSpecPersistentVolumeClaim {
                            storage_class_name: class.clone(),
                            resources: Some(
                                PerconaXtraDbClusterProxysqlVolumeSpecPersistentVolumeClaimResources {
                                    requests: Some(storage_request(PROXYSQL_STORAGE)),
                                    limits: None,
                                },
                            ),
                            ..Default::default()
                        },
                    ),
                    ..Default::default()
                }),
                expose: external.map(|_| PerconaXtraDbClusterProxysqlExpose {
                    r#type: Some("LoadBalancer".to_owned()),
                    load_balancer_source_ranges: source_ranges.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            };
        }
        // pgbouncer, mongos and maxscale never reach here (refused by the API's CEL
        // for mysql); treat them like none rather than guess.
        ProxyType::None | ProxyType::Pgbouncer | ProxyType::Mongos | ProxyType::Maxscale => {
            // Without a proxy, "external" exposes the PXC nodes themselves.
            pxc.expose = external.map(|_| PerconaXtraDbClusterPxcExpose {
                enabled: Some(true),
                r#type: Some("LoadBalancer".to_owned()),
                load_balancer_source_ranges: source_ranges.clone(),
                ..Default::default()
            });
        }
    }

    if spec.proxy.as_ref().is_some_and(|p| !p.config.is_empty()) {
        unapplied.push(Unapplied {
            field: "proxy.config",
            why: "HAProxy and ProxySQL take a whole configuration file, not parameters; proxy parameters are not applied by this operator version",
        });
    }
    let backup = backup::render(cluster, version, input, &mut unapplied)?;

    // PMM: a client next to every PXC and proxy pod. The token goes into the
    // secrets Secret, where Percona's operator reads it.
    let pmm = match wiring(spec, input)? {
        Wiring::None => None,
        Wiring::Pmm(pmm) => {
            let key = if pmm.pmm3 {
                PMM3_SECRET_KEY
            } else {
                PMM2_SECRET_KEY
            };
            secret_keys.extend(pmm.credentials_copy(credentials_secret_name(cluster), key));
            Some(PerconaXtraDbClusterPmm {
                enabled: Some(true),
                server_host: Some(pmm.server_host),
                image: Some(pmm.image),
                resources: pmm
                    .resources
                    .as_ref()
                    .map(|r| retype("monitoring.resources", r))
                    .transpose()?,
                ..Default::default()
            })
        }
        Wiring::Prometheus { .. } => {
            unapplied.push(Unapplied {
                field: "monitoring",
                why: "the Percona XtraDB Cluster operator exports metrics through PMM only: use a pmm MonitoringConfig; nothing was configured",
            });
            None
        }
        Wiring::NotApplied(note) => {
            unapplied.push(note);
            None
        }
    };
    if pmm.is_none()
        && spec
            .monitoring
            .as_ref()
            .is_some_and(|m| m.resources.is_some())
    {
        unapplied.push(NO_AGENT_RESOURCES);
    }

    // Percona refuses "unsafe" sizes unless told; our API already judged
    // them (1 is the single-node mode, odd sizes only), so say so.
    let pxc_size_unsafe = !(MIN_SAFE_PXC_SIZE..=MAX_SAFE_PXC_SIZE).contains(&size);
    let proxy_size_unsafe = proxy_size.is_some_and(|s| s < MIN_SAFE_PROXY_SIZE);
    let unsafe_flags =
        (pxc_size_unsafe || proxy_size_unsafe).then(|| PerconaXtraDbClusterUnsafeFlags {
            pxc_size: pxc_size_unsafe.then_some(true),
            proxy_size: proxy_size_unsafe.then_some(true),
            ..Default::default()
        });

    let engine_spec = PerconaXtraDbClusterSpec {
        cr_version: Some(CR_VERSION.to_owned()),
        // We own the image: Percona's version service must not change it
        // behind our back (our next apply would revert it, and the two would
        // fight). Upgrades go through engine.version.
        upgrade_options: Some(PerconaXtraDbClusterUpgradeOptions {
            apply: Some(UPGRADE_APPLY_DISABLED.to_owned()),
            ..Default::default()
        }),
        secrets_name: Some(credentials_secret_name(cluster)),
        pause: Some(spec.paused),
        // Without it Percona does not grow the volumes when storage.size grows.
        enable_volume_expansion: Some(true),
        unsafe_flags,
        pxc: Some(pxc),
        haproxy: Some(haproxy),
        proxysql: Some(proxysql),
        pmm,
        backup,
        ..Default::default()
    };

    let engine_cluster = PerconaXtraDbCluster {
        metadata: engine_metadata(cluster, EngineType::Mysql),
        spec: engine_spec,
        status: None,
    };
    Ok(Built {
        cluster: engine_cluster,
        extra: Vec::new(),
        secret_keys,
        unapplied,
    })
}

/// Proxy pods: `proxy.replicas`, else one per PXC node up to 3. A proxy
/// with no pods would leave clients without an endpoint: refused.
fn proxy_replicas(proxy: Option<&ProxySpec>, cluster_size: i32) -> Result<i32, BuildError> {
    match proxy.and_then(|p| p.replicas) {
        Some(0) => Err(BuildError::Unsupported {
            engine: "mysql",
            feature: "proxy.replicas 0 with a haproxy or proxysql proxy",
            why: "clients connect through the proxy, so it needs at least one pod; set proxy.type none to go without a proxy",
        }),
        Some(replicas) => Ok(replicas),
        None => Ok(cluster_size.clamp(1, DEFAULT_PROXY_SIZE)),
    }
}

fn storage_request(size: &str) -> BTreeMap<String, IntOrString> {
    BTreeMap::from([("storage".to_owned(), IntOrString::String(size.to_owned()))])
}

fn memory_limit_set(resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>) -> bool {
    resources
        .and_then(|r| r.limits.as_ref())
        .is_some_and(|limits| limits.contains_key("memory"))
}

/// Renders the config list as my.cnf text for `spec.pxc.configuration`
/// ([`crate::shared::my_cnf`] with a `[mysqld]` section). Percona renders
/// the text as a pongo2 template when a memory limit is set: `{{ ... }}`
/// expressions (its documented sizing feature, e.g.
/// `{{containerMemoryLimit * 3 / 4}}`) need that limit, and template tags
/// and comments (`{%`, `{#`) are refused.
pub fn render_my_cnf(
    config: &[ConfigParameter],
    memory_limit_set: bool,
) -> Result<Option<String>, BuildError> {
    my_cnf(config, "mysqld", |value| {
        if value.contains("{%") || value.contains("{#") {
            Some(
                "the value contains a template tag or comment ('{%' or '{#'), which the Percona operator would execute",
            )
        } else if value.contains("{{") && !memory_limit_set {
            Some(
                "a '{{ }}' expression needs resources.limits.memory (the Percona operator refuses it otherwise)",
            )
        } else {
            None
        }
    })
}

/// Reads a PerconaXtraDBCluster's status in our vocabulary.
pub fn observe(engine: &PerconaXtraDbCluster, input: &ObserveInput<'_>) -> EngineObservation {
    let status = engine.status.as_ref();
    let ready_instances = status
        .and_then(|s| s.pxc.as_ref())
        .and_then(|p| p.ready)
        .unwrap_or(0)
        .max(0);
    let host = status
        .and_then(|s| s.host.as_deref())
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    // Percona writes status.observedGeneration with every status it derives
    // from the spec (not when a reconcile fails: then it only sets the error).
    let saw_latest_spec = match (
        status.and_then(|s| s.observed_generation),
        input.applied_generation,
    ) {
        (Some(observed), Some(applied)) => observed >= applied,
        _ => false,
    };
    let phase = observe_phase(status, input, saw_latest_spec, ready_instances);
    EngineObservation {
        phase,
        saw_latest_spec,
        ready_instances,
        port: host.as_ref().map(|_| MYSQL_PORT),
        host,
    }
}

/// Percona's own words on the cluster: `status.message`, else the newest
/// condition's message.
fn engine_message(status: &PerconaXtraDbClusterStatus) -> Option<String> {
    let messages = status
        .message
        .iter()
        .flatten()
        .filter(|m| !m.is_empty())
        .cloned()
        .collect::<Vec<_>>();
    if !messages.is_empty() {
        return Some(messages.join("; "));
    }
    status
        .conditions
        .iter()
        .flatten()
        .next_back()
        .map(|c| c.message.clone())
        .filter(|m| !m.is_empty())
}

fn observe_phase(
    status: Option<&PerconaXtraDbClusterStatus>,
    input: &ObserveInput<'_>,
    saw_latest_spec: bool,
    ready_instances: i32,
) -> ObservedPhase {
    let observed = |phase, reason: &'static str, message: String| ObservedPhase {
        phase,
        reason,
        message,
    };
    let Some(status) = status.filter(|s| s.state.as_deref().is_some_and(|t| !t.is_empty())) else {
        return observed(
            ClusterPhase::Pending,
            "WaitingForEngine",
            "waiting for the Percona XtraDB Cluster operator to report status".to_owned(),
        );
    };
    let text = status.state.clone().unwrap_or_default();
    let first_start = input.first_start();
    let progressing = |reason: &'static str, message: String| {
        let phase = if first_start {
            ClusterPhase::Creating
        } else {
            ClusterPhase::Updating
        };
        observed(phase, reason, message)
    };
    let detail = engine_message(status);
    let with_detail = |summary: String| match &detail {
        Some(detail) => format!("{summary}: {detail}"),
        None => summary,
    };
    let pxc = status.pxc.as_ref();
    let desired = input.desired_instances;
    let nodes = format!("{ready_instances} of {desired} PXC nodes ready");

    if text == state::ERROR {
        // Percona does not move observedGeneration when a reconcile fails,
        // so an error counts whatever generation it names.
        return observed(
            ClusterPhase::Error,
            "EngineError",
            with_detail("the Percona XtraDB Cluster operator reports an error".to_owned()),
        );
    }

    if input.paused {
        return if text == state::PAUSED && saw_latest_spec {
            observed(
                ClusterPhase::Paused,
                "Paused",
                "stopped by the Percona XtraDB Cluster operator".to_owned(),
            )
        } else {
            observed(
                ClusterPhase::Updating,
                "Pausing",
                format!("pausing: the cluster is {text}"),
            )
        };
    }

    match text.as_str() {
        state::READY => {
            let size = pxc.and_then(|p| p.size).unwrap_or(0);
            let image = pxc
                .and_then(|p| p.image.as_deref())
                .filter(|i| !i.is_empty());
            if !saw_latest_spec {
                progressing(
                    "WaitingForEngine",
                    "the Percona XtraDB Cluster operator has not reported on the latest spec yet"
                        .to_owned(),
                )
            } else if size != desired || ready_instances != desired {
                progressing("Scaling", nodes)
            } else if let Some(image) = image.filter(|i| *i != input.desired_image) {
                progressing("RollingOut", format!("PXC nodes still run {image}"))
            } else {
                observed(
                    ClusterPhase::Ready,
                    "EngineHealthy",
                    format!("ready: {ready_instances} PXC nodes"),
                )
            }
        }
        state::INITIALIZING => progressing("EngineInitializing", with_detail(nodes)),
        state::STOPPING | state::PAUSED => progressing(
            "Resuming",
            format!("starting again: the cluster is still {text}"),
        ),
        state::UNKNOWN => observed(
            ClusterPhase::Unknown,
            "EngineStateUnknown",
            with_detail("the Percona XtraDB Cluster operator reports state unknown".to_owned()),
        ),
        _ => observed(
            ClusterPhase::Unknown,
            "UnknownEnginePhase",
            format!("the Percona XtraDB Cluster operator reports an unrecognised state: {text}"),
        ),
    }
}

#[cfg(test)]
mod tests;
