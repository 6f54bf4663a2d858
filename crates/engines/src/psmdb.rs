//! MongoDB through Percona Server for MongoDB: DatabaseCluster ->
//! `psmdb.percona.com/v1` `PerconaServerMongoDB`, and its status back.
//!
//! The cluster is one replica set, `rs0`. With a mongos proxy it becomes a
//! sharded cluster of that one shard, a three-member config server replica
//! set and the mongos routers.

use std::collections::BTreeMap;

use dbaas_api::EngineType;
use dbaas_api::backup_storage::BackupStorageType;
use dbaas_api::cluster::{ClusterPhase, ExposeType, ProxyType, SchedulingSpec};
use dbaas_api::common::ConfigParameter;
use dbaas_api::ops::OpsType;
use dbaas_api::{DatabaseBackup, DatabaseCluster};
use dbaas_engine_crds::psmdb_cluster::PerconaServerMongoDbPmm;
use dbaas_engine_crds::psmdb_cluster::{
    PerconaServerMongoDb, PerconaServerMongoDbReplsets, PerconaServerMongoDbReplsetsAffinity,
    PerconaServerMongoDbReplsetsExpose, PerconaServerMongoDbReplsetsVolumeSpec,
    PerconaServerMongoDbReplsetsVolumeSpecPersistentVolumeClaim,
    PerconaServerMongoDbReplsetsVolumeSpecPersistentVolumeClaimResources,
    PerconaServerMongoDbSecrets, PerconaServerMongoDbSharding,
    PerconaServerMongoDbShardingConfigsvrReplSet, PerconaServerMongoDbShardingMongos,
    PerconaServerMongoDbShardingMongosAffinity, PerconaServerMongoDbShardingMongosExpose,
    PerconaServerMongoDbSpec, PerconaServerMongoDbStatus, PerconaServerMongoDbStatusReplsets,
    PerconaServerMongoDbStorageScaling, PerconaServerMongoDbUnsafeFlags,
    PerconaServerMongoDbUpgradeOptions,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};
use serde::Serialize;
use serde::de::DeserializeOwned;

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
    ObservedPhase, Unapplied, status_written_since,
};
use crate::shared::{credentials_secret_or, engine_metadata};

pub mod backup;
pub mod restore;

/// Percona Server for MongoDB releases Percona publishes operand images for
/// (`percona/percona-server-mongodb:<version>-<build>`), newest first per
/// major: the images certified with Percona Operator for MongoDB 1.20.0,
/// 1.21.x and 1.22.0 (the operator's release notes, "Percona certified
/// images"). Only tags published without a `-multi` suffix are listed.
const MONGODB_VERSIONS: &[&str] = &[
    "8.0.19-7",
    "8.0.17-6",
    "8.0.12-4",
    "8.0.8-3",
    "7.0.30-16",
    "7.0.28-15",
    "7.0.24-13",
    "7.0.18-11",
    "7.0.12-7",
    "6.0.27-21",
    "6.0.25-20",
    "6.0.21-18",
    "6.0.16-13",
];
const MONGODB_IMAGE: &str = "percona/percona-server-mongodb";
/// The recommended version: the newest 8.0 certified with the operator.
pub const MONGODB_DEFAULT: &str = "8.0.19-7";

/// The `crVersion` we write: the operator version the upstream CRD in
/// `../shared/upstream-crds/percona-server-mongodb-operator/` belongs to.
/// That copy is from the operator's main branch (`git describe`
/// v1.22.0-126) and its `deploy/crd.yaml` labels it v1.23.0 (see the
/// README there). The operator applies the defaults and checks of this
/// version to the object.
pub const CR_VERSION: &str = "1.23.0";
/// `spec.upgradeOptions.apply` value that turns Percona's automatic
/// version upgrades off.
pub const UPGRADE_APPLY_DISABLED: &str = "disabled";
/// The one replica set.
pub const REPLSET_NAME: &str = "rs0";
/// Members of the config server replica set of a sharded cluster.
pub const CONFIG_SERVERS: i32 = 3;
/// mongos routers when `proxy.replicas` is unset.
pub const DEFAULT_MONGOS: i32 = 3;
/// Percona refuses fewer mongos than this without `unsafeFlags.mongosSize`.
const MIN_SAFE_MONGOS: i32 = 2;
/// MongoDB's port on Percona's services.
pub const MONGODB_PORT: i32 = 27017;
/// Key of the users Secret (`spec.secrets.users`) the operator reads the
/// PMM 3 service account token from; it wins over the PMM 2 key when both
/// are set.
pub const PMM3_SECRET_KEY: &str = "PMM_SERVER_TOKEN";
/// Key of the users Secret with the PMM 2 API key.
pub const PMM2_SECRET_KEY: &str = "PMM_SERVER_API_KEY";

/// The Percona Server for MongoDB provider.
#[derive(Debug)]
pub struct Psmdb;

impl EngineProvider for Psmdb {
    fn engine(&self) -> EngineType {
        EngineType::Mongodb
    }

    fn operator_name(&self) -> &'static str {
        "Percona Operator for MongoDB"
    }

    fn resource(&self) -> ApiResource {
        ApiResource::erase::<PerconaServerMongoDb>(&())
    }

    fn versions(&self) -> Vec<ResolvedVersion> {
        tagged_versions(MONGODB_IMAGE, MONGODB_VERSIONS)
    }

    fn default_version(&self) -> &'static str {
        MONGODB_DEFAULT
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
        match engine.clone().try_parse::<PerconaServerMongoDb>() {
            Ok(cluster) => observe(&cluster, input),
            Err(err) => EngineObservation::unreadable(format!(
                "the PerconaServerMongoDB cannot be read: {err}"
            )),
        }
    }

    fn credentials_secret_name(&self, cluster: &DatabaseCluster) -> String {
        credentials_secret_name(cluster)
    }

    fn backup_resource(&self) -> Option<ApiResource> {
        Some(ApiResource::erase::<
            dbaas_engine_crds::psmdb_backup::PerconaServerMongoDbBackup,
        >(&()))
    }

    fn build_backup(
        &self,
        backup: &DatabaseBackup,
        cluster: &DatabaseCluster,
        storage: &StorageInput,
    ) -> Result<DynamicObject, BuildError> {
        backup::build_backup(backup, cluster, storage)
    }

    fn observe_backup(&self, engine_backup: &DynamicObject) -> BackupObservation {
        backup::observe_backup(engine_backup)
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
            dbaas_engine_crds::psmdb_restore::PerconaServerMongoDbRestore,
        >(&()))
    }

    fn build_restore(
        &self,
        name: &str,
        cluster: &DatabaseCluster,
        source: &crate::restore::RestoreInput,
    ) -> Result<DynamicObject, BuildError> {
        restore::build_restore(name, cluster, source)
    }

    fn observe_restore(
        &self,
        engine_restore: &DynamicObject,
    ) -> crate::restore::RestoreObservation {
        restore::observe_restore(engine_restore)
    }

    fn supported_operations(&self) -> &'static [OpsType] {
        // What the PerconaServerMongoDB resource itself can express, and
        // this operator drives. Backup / Restore: the
        // PerconaServerMongoDBBackup / -Restore resources. Not offered:
        // restart (a changed `replsets[].annotations` would roll the
        // members, not written yet), switchover (no primary selection in
        // the CR) and rebuilding one member (only by deleting its pod and
        // volume by hand).
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
            topology: "one replica set (1, 3, 5, ... members); sharded with mongos",
            topologies: &[],
            proxies: &[ProxyType::Mongos],
            expose: &[ExposeType::Internal, ExposeType::External],
            backup_storages: &[
                BackupStorageType::S3,
                BackupStorageType::Azure,
                BackupStorageType::Filesystem,
            ],
            pitr: true,
            restore_into_new_cluster: true,
            not_offered: &[
                (
                    OpsType::Restart,
                    "Restart of mongodb clusters is not implemented yet: it needs a changed pod annotation in the PerconaServerMongoDB replsets, which this version does not write; nothing was changed",
                ),
                (
                    OpsType::Switchover,
                    "Switchover is not supported for mongodb clusters: the PerconaServerMongoDB resource has no way to choose the primary; nothing was changed",
                ),
                (OpsType::RebuildInstance, REBUILD_NOT_OFFERED),
                (OpsType::Custom, CUSTOM_NOT_OFFERED),
            ],
        }
    }

    fn operator_images(&self) -> &'static [&'static str] {
        &["percona/percona-server-mongodb-operator"]
    }

    fn data_volume_selector(&self, engine_name: &str) -> String {
        format!("app.kubernetes.io/instance={engine_name},app.kubernetes.io/component=mongod")
    }

    fn volume_claim_of_member(&self, claim_name: &str, cluster_size: i32) -> bool {
        ordinal_claim_of_member(claim_name, cluster_size)
    }

    fn scaling_refusal(&self, from: i32, to: i32) -> Option<String> {
        quorum_scaling_refusal(self.engine(), from, to)
    }
}

/// Percona's `status.state` values (`pkg/apis/psmdb/v1/psmdb_types.go`,
/// `AppState`). Anything else maps to `Unknown`.
pub mod state {
    pub const INITIALIZING: &str = "initializing";
    pub const READY: &str = "ready";
    pub const ERROR: &str = "error";
    pub const STOPPING: &str = "stopping";
    pub const PAUSED: &str = "paused";
    pub const SHARDING: &str = "sharding";
}

/// The PerconaServerMongoDB for a DatabaseCluster, and what of the spec it
/// does not carry yet.
pub type Built = crate::provider::Built<PerconaServerMongoDb>;

/// The Secret with the system users' credentials (`spec.secrets.users`).
/// Always named explicitly: Percona's own default
/// (`percona-server-mongodb-users`) would be shared by every cluster of the
/// namespace.
pub fn credentials_secret_name(cluster: &DatabaseCluster) -> String {
    credentials_secret_or(cluster, "secrets")
}

/// Builds the PerconaServerMongoDB for `cluster` at `version`, with nothing
/// looked up (a MonitoringConfig is then reported as not applied).
pub fn build(cluster: &DatabaseCluster, version: &ResolvedVersion) -> Result<Built, BuildError> {
    build_with(cluster, version, &BuildInput::default())
}

/// Builds the PerconaServerMongoDB for `cluster` at `version` with what the
/// operator looked up for it.
pub fn build_with(
    cluster: &DatabaseCluster,
    version: &ResolvedVersion,
    input: &BuildInput<'_>,
) -> Result<Built, BuildError> {
    let spec = &cluster.spec;
    let mut unapplied = Vec::new();
    let mut secret_keys = Vec::new();

    let external = spec
        .expose
        .as_ref()
        .filter(|e| e.type_ == ExposeType::External);
    let source_ranges = external
        .map(|e| e.ip_source_ranges.clone())
        .filter(|ranges| !ranges.is_empty());
    let proxy = spec.proxy.as_ref();
    let sharded = proxy.is_some_and(|p| p.type_ == Some(ProxyType::Mongos));
    let mut unsafe_flags = PerconaServerMongoDbUnsafeFlags::default();
    let backups = backup::render(cluster, input)?;
    unapplied.extend(backups.unapplied);

    // The replica set.
    let mut rs0 = PerconaServerMongoDbReplsets {
        name: Some(REPLSET_NAME.to_owned()),
        size: spec.cluster_size,
        volume_spec: PerconaServerMongoDbReplsetsVolumeSpec {
            persistent_volume_claim: Some(
                PerconaServerMongoDbReplsetsVolumeSpecPersistentVolumeClaim {
                    storage_class_name: spec.storage.class.clone(),
                    resources: Some(
                        PerconaServerMongoDbReplsetsVolumeSpecPersistentVolumeClaimResources {
                            requests: Some(BTreeMap::from([(
                                "storage".to_owned(),
                                IntOrString::String(spec.storage.size.0.clone()),
                            )])),
                            limits: None,
                        },
                    ),
                    ..Default::default()
                },
            ),
            ..Default::default()
        },
        resources: spec
            .resources
            .as_ref()
            .map(|r| retype("resources", r))
            .transpose()?,
        configuration: render_config("config", &spec.config)?,
        ..Default::default()
    };
    if spec.cluster_size < 3 {
        // Percona refuses fewer than three members (and even sizes, which
        // our API refuses already) unless told it is on purpose.
        unsafe_flags.replset_size = Some(true);
    }
    let placement = Placement::from_spec(spec.scheduling.as_ref())?;
    rs0.node_selector = placement.node_selector.clone();
    rs0.tolerations = placement.tolerations()?;
    rs0.affinity = placement.affinity::<PerconaServerMongoDbReplsetsAffinity>()?;
    rs0.priority_class_name = placement.priority_class_name.clone();
    rs0.sidecar_volumes = sidecar_volumes(&backups.sidecar_volumes)?;
    if external.is_some() && !sharded {
        // One LoadBalancer service per member; clients use the replica set's
        // member list.
        rs0.expose = Some(PerconaServerMongoDbReplsetsExpose {
            enabled: true,
            r#type: Some("LoadBalancer".to_owned()),
            load_balancer_source_ranges: source_ranges.clone(),
            ..Default::default()
        });
    }

    // Sharding: mongos routers in front of rs0, with a config server replica set.
    let sharding = if sharded {
        let mongos_size = proxy.and_then(|p| p.replicas).unwrap_or(DEFAULT_MONGOS);
        if mongos_size < MIN_SAFE_MONGOS {
            unsafe_flags.mongos_size = Some(true);
        }
        let config_servers = PerconaServerMongoDbShardingConfigsvrReplSet {
            size: CONFIG_SERVERS,
            volume_spec: retype("storage", &rs0.volume_spec)?,
            node_selector: placement.node_selector.clone(),
            tolerations: placement.tolerations()?,
            affinity: placement.affinity()?,
            priority_class_name: placement.priority_class_name.clone(),
            // The config servers run a pbm-agent too.
            sidecar_volumes: sidecar_volumes(&backups.sidecar_volumes)?,
            ..Default::default()
        };
        let mongos = PerconaServerMongoDbShardingMongos {
            size: Some(mongos_size),
            resources: proxy
                .and_then(|p| p.resources.as_ref())
                .map(|r| retype("proxy.resources", r))
                .transpose()?,
            configuration: render_config("proxy.config", proxy.map_or(&[][..], |p| &p.config))?,
            expose: external.map(|_| PerconaServerMongoDbShardingMongosExpose {
                r#type: Some("LoadBalancer".to_owned()),
                load_balancer_source_ranges: source_ranges.clone(),
                ..Default::default()
            }),
            node_selector: placement.node_selector.clone(),
            tolerations: placement.tolerations()?,
            affinity: placement.affinity::<PerconaServerMongoDbShardingMongosAffinity>()?,
            priority_class_name: placement.priority_class_name.clone(),
            ..Default::default()
        };
        PerconaServerMongoDbSharding {
            enabled: true,
            configsvr_repl_set: Some(config_servers),
            mongos: Some(mongos),
            ..Default::default()
        }
    } else {
        if proxy
            .is_some_and(|p| p.replicas.is_some() || p.resources.is_some() || !p.config.is_empty())
        {
            unapplied.push(Unapplied {
                field: "proxy",
                why: "replicas, resources and config apply to mongos routers only, and proxy.type is not mongos",
            });
        }
        PerconaServerMongoDbSharding {
            enabled: false,
            ..Default::default()
        }
    };

    // PMM: a client next to every mongod and mongos pod. The token goes into
    // the users Secret, where Percona's operator reads it.
    let pmm = match wiring(spec, input)? {
        Wiring::None => None,
        Wiring::Pmm(pmm) => {
            let key = if pmm.pmm3 {
                PMM3_SECRET_KEY
            } else {
                PMM2_SECRET_KEY
            };
            secret_keys.extend(pmm.credentials_copy(credentials_secret_name(cluster), key));
            Some(PerconaServerMongoDbPmm {
                enabled: Some(true),
                server_host: Some(pmm.server_host),
                image: pmm.image,
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
                why: "the Percona Operator for MongoDB exports metrics through PMM only: use a pmm MonitoringConfig; nothing was configured",
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

    let engine_spec = PerconaServerMongoDbSpec {
        cr_version: Some(CR_VERSION.to_owned()),
        // We own the image: Percona's version service must not change it
        // behind our back (our next apply would revert it, and the two would
        // fight). Upgrades go through engine.version.
        upgrade_options: Some(PerconaServerMongoDbUpgradeOptions {
            apply: Some(UPGRADE_APPLY_DISABLED.to_owned()),
            ..Default::default()
        }),
        image: version.image.clone(),
        pause: Some(spec.paused),
        replsets: Some(vec![rs0]),
        sharding: Some(sharding),
        secrets: Some(PerconaServerMongoDbSecrets {
            users: Some(credentials_secret_name(cluster)),
            ..Default::default()
        }),
        // Percona resizes volumes only when told to; our storage.size grows.
        storage_scaling: Some(PerconaServerMongoDbStorageScaling {
            enable_volume_scaling: Some(true),
            ..Default::default()
        }),
        unsafe_flags: (unsafe_flags != PerconaServerMongoDbUnsafeFlags::default())
            .then_some(unsafe_flags),
        pmm,
        backup: backups.backup,
        ..Default::default()
    };

    let engine_cluster = PerconaServerMongoDb {
        metadata: engine_metadata(cluster, EngineType::Mongodb),
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

/// Where the pods may run, the same for every component (replica set,
/// config servers, mongos). Kept as k8s types; each component's kopium
/// copies are made with [`retype`].
struct Placement {
    node_selector: Option<BTreeMap<String, String>>,
    tolerations: Option<Vec<k8s_openapi::api::core::v1::Toleration>>,
    affinity: Option<k8s_openapi::api::core::v1::Affinity>,
    priority_class_name: Option<String>,
}

impl Placement {
    fn from_spec(scheduling: Option<&SchedulingSpec>) -> Result<Self, BuildError> {
        let Some(s) = scheduling else {
            return Ok(Self {
                node_selector: None,
                tolerations: None,
                affinity: None,
                priority_class_name: None,
            });
        };
        Ok(Self {
            node_selector: (!s.node_selector.is_empty()).then(|| s.node_selector.clone()),
            tolerations: (!s.tolerations.is_empty()).then(|| s.tolerations.clone()),
            affinity: s.affinity.clone(),
            priority_class_name: s.priority_class_name.clone(),
        })
    }

    fn tolerations<T: DeserializeOwned>(&self) -> Result<Option<Vec<T>>, BuildError> {
        retype_opt("scheduling.tolerations", self.tolerations.as_ref())
    }

    /// `affinity.advanced` holds a whole k8s Affinity; Percona then ignores
    /// its own `antiAffinityTopologyKey` default.
    fn affinity<T: DeserializeOwned>(&self) -> Result<Option<T>, BuildError> {
        let wrapped = self
            .affinity
            .as_ref()
            .map(|a| serde_json::json!({ "advanced": a }));
        retype_opt("scheduling.affinity", wrapped.as_ref())
    }
}

/// The pbm-agent's volumes (filesystem storages) as a component's sidecar
/// volumes; `None` when there are none.
fn sidecar_volumes<T: DeserializeOwned>(
    volumes: &[k8s_openapi::api::core::v1::Volume],
) -> Result<Option<Vec<T>>, BuildError> {
    retype_opt("backup", (!volumes.is_empty()).then_some(&volumes))
}

fn retype_opt<S: Serialize, T: DeserializeOwned>(
    field: &'static str,
    value: Option<&S>,
) -> Result<Option<T>, BuildError> {
    value.map(|v| retype(field, v)).transpose()
}

/// Renders name/value parameters as mongod.conf (or mongos.conf) YAML:
/// dotted names become nested sections, values that are numbers or
/// booleans stay scalars, everything else becomes a double-quoted string.
/// A name that is not a dotted path of identifiers, a value with a line
/// break or other control character, or a name that is both a value and a
/// section is refused. `None` when there are no parameters.
pub fn render_config(
    field: &'static str,
    params: &[ConfigParameter],
) -> Result<Option<String>, BuildError> {
    if params.is_empty() {
        return Ok(None);
    }
    let invalid = |message: String| BuildError::Convert {
        field,
        source: <serde_json::Error as serde::de::Error>::custom(message),
    };
    let mut root: BTreeMap<String, ConfigNode> = BTreeMap::new();
    for param in params {
        let path: Vec<&str> = param.name.split('.').collect();
        if let Some(bad) = path.iter().find(|segment| !is_config_key(segment)) {
            return Err(invalid(format!(
                "parameter {:?}: {:?} is not an option name; names are dotted paths of identifiers such as operationProfiling.slowOpThresholdMs",
                param.name, bad
            )));
        }
        if param.value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "parameter {:?}: the value must be a single line without control characters",
                param.name
            )));
        }
        let conflict = || {
            invalid(format!(
                "parameter {:?} conflicts with another parameter: a name cannot be both a value and a section",
                param.name
            ))
        };
        let (leaf, sections) = path.split_last().ok_or_else(conflict)?;
        let mut level = &mut root;
        for section in sections {
            let node = level
                .entry((*section).to_owned())
                .or_insert_with(|| ConfigNode::Section(BTreeMap::new()));
            level = match node {
                ConfigNode::Section(children) => children,
                ConfigNode::Value(_) => return Err(conflict()),
            };
        }
        if level
            .insert((*leaf).to_owned(), ConfigNode::Value(scalar(&param.value)))
            .is_some()
        {
            return Err(conflict());
        }
    }
    let mut text = String::new();
    write_config(&root, 0, &mut text);
    Ok(Some(text))
}

enum ConfigNode {
    Value(String),
    Section(BTreeMap<String, ConfigNode>),
}

/// An option name segment: an identifier that YAML reads as a plain string.
fn is_config_key(segment: &str) -> bool {
    const YAML_WORDS: &[&str] = &["true", "false", "yes", "no", "on", "off", "y", "n", "null"];
    let mut chars = segment.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !YAML_WORDS.contains(&segment.to_ascii_lowercase().as_str())
}

/// A YAML scalar for a parameter value: integers, decimals and booleans as
/// they are, anything else double-quoted (JSON string syntax, which YAML
/// reads the same way), so no value can add keys or documents.
fn scalar(value: &str) -> String {
    if value == "true" || value == "false" || is_plain_number(value) {
        value.to_owned()
    } else {
        serde_json::Value::String(value.to_owned()).to_string()
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: read as a number by every YAML version.
fn is_plain_number(value: &str) -> bool {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    digits(int) && (int == "0" || !int.starts_with('0')) && frac.is_none_or(digits)
}

fn write_config(level: &BTreeMap<String, ConfigNode>, depth: usize, out: &mut String) {
    for (key, node) in level {
        let indent = "  ".repeat(depth);
        match node {
            ConfigNode::Value(value) => out.push_str(&format!("{indent}{key}: {value}\n")),
            ConfigNode::Section(children) => {
                out.push_str(&format!("{indent}{key}:\n"));
                write_config(children, depth + 1, out);
            }
        }
    }
}

/// Reads a PerconaServerMongoDB's status in our vocabulary.
pub fn observe(engine: &PerconaServerMongoDb, input: &ObserveInput<'_>) -> EngineObservation {
    let status = engine.status.as_ref();
    let rs0 = replset_status(status);
    let ready_instances = rs0.and_then(|rs| rs.ready).unwrap_or(0);
    let (host, port) = match status
        .and_then(|s| s.host.as_deref())
        .filter(|h| !h.is_empty())
    {
        Some(endpoint) => {
            let (host, port) = split_endpoint(endpoint);
            (Some(host), Some(port))
        }
        None => (None, None),
    };
    let saw_latest_spec = match status.and_then(|s| s.observed_generation) {
        // Percona records the generation each status describes.
        Some(observed) => input
            .applied_generation
            .is_some_and(|applied| observed >= applied),
        None => status_written_since(
            &engine.metadata,
            input.applied_at,
            input.applied_resource_version,
        ),
    };
    let phase = observe_phase(engine, input, saw_latest_spec, ready_instances);
    EngineObservation {
        phase,
        saw_latest_spec,
        ready_instances,
        host,
        port,
    }
}

fn replset_status(
    status: Option<&PerconaServerMongoDbStatus>,
) -> Option<&PerconaServerMongoDbStatusReplsets> {
    status
        .and_then(|s| s.replsets.as_ref())
        .and_then(|r| r.get(REPLSET_NAME))
}

/// `status.host` is a host name (service or load balancer), possibly with
/// `:port`.
fn split_endpoint(endpoint: &str) -> (String, i32) {
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => match port.parse() {
            Ok(port) => (host.to_owned(), port),
            Err(_) => (endpoint.to_owned(), MONGODB_PORT),
        },
        _ => (endpoint.to_owned(), MONGODB_PORT),
    }
}

fn observe_phase(
    engine: &PerconaServerMongoDb,
    input: &ObserveInput<'_>,
    saw_latest_spec: bool,
    ready_instances: i32,
) -> ObservedPhase {
    let status = engine.status.as_ref();
    let text = status.and_then(|s| s.state.clone()).unwrap_or_default();
    let engine_message = status
        .and_then(|s| s.message.clone())
        .filter(|m| !m.is_empty());
    let with_message = |text: &str| match &engine_message {
        Some(message) => format!("{text}: {message}"),
        None => text.to_owned(),
    };
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
            "waiting for the Percona Operator for MongoDB to report status".to_owned(),
        );
    }

    let error = || {
        let detail = engine_message.clone().or_else(|| error_condition(status));
        observed(
            ClusterPhase::Error,
            "EngineError",
            match detail {
                Some(detail) => {
                    format!("the Percona Operator for MongoDB reports an error: {detail}")
                }
                None => "the Percona Operator for MongoDB reports an error".to_owned(),
            },
        )
    };
    // An error wins over pausing: the real operator fails a pause it cannot
    // carry out (it cannot reach the primary) and stays in `error`.
    if text == state::ERROR {
        return error();
    }

    if input.paused {
        return if text == state::PAUSED && saw_latest_spec {
            observed(
                ClusterPhase::Paused,
                "EnginePaused",
                "paused by the Percona Operator for MongoDB".to_owned(),
            )
        } else {
            observed(
                ClusterPhase::Updating,
                "Pausing",
                with_message(&format!("pausing: {text}")),
            )
        };
    }

    match text.as_str() {
        state::READY => {
            let desired = input.desired_instances;
            let rs0 = replset_status(status);
            let members = rs0.and_then(|rs| rs.size).unwrap_or(0);
            let mongos_lagging = mongos_lagging(engine);
            let image = status.and_then(|s| s.mongo_image.as_deref());
            if !saw_latest_spec {
                progressing(
                    "WaitingForEngine",
                    "the Percona Operator for MongoDB has not reported on the latest spec yet"
                        .to_owned(),
                )
            } else if members != desired || ready_instances != desired {
                progressing(
                    "Scaling",
                    format!("{ready_instances} of {desired} replica set members ready"),
                )
            } else if let Some(message) = mongos_lagging {
                progressing("Scaling", message)
            } else if let Some(image) = image.filter(|image| *image != input.desired_image) {
                progressing("RollingOut", format!("members still run {image}"))
            } else {
                observed(ClusterPhase::Ready, "EngineHealthy", text)
            }
        }
        state::INITIALIZING => progressing("EngineInitializing", with_message(&text)),
        state::SHARDING => progressing("Sharding", with_message(&text)),
        state::STOPPING => progressing("EngineStopping", with_message(&text)),
        // Still paused although we no longer ask for it: resuming.
        state::PAUSED => progressing("Resuming", with_message(&text)),
        state::ERROR => error(),
        _ => observed(
            ClusterPhase::Unknown,
            "UnknownEnginePhase",
            format!("the Percona Operator for MongoDB reports an unrecognised state: {text}"),
        ),
    }
}

/// For a sharded cluster: why the mongos routers are not all ready yet.
fn mongos_lagging(engine: &PerconaServerMongoDb) -> Option<String> {
    let sharding = engine.spec.sharding.as_ref().filter(|s| s.enabled)?;
    let wanted = sharding
        .mongos
        .as_ref()
        .and_then(|m| m.size)
        .map(i64::from)
        .unwrap_or(i64::from(DEFAULT_MONGOS));
    let status = engine.status.as_ref().and_then(|s| s.mongos.as_ref());
    let (size, ready) = status.map_or((0, 0), |m| (m.size, m.ready));
    (size != wanted || ready != wanted).then(|| format!("{ready} of {wanted} mongos routers ready"))
}

/// The message of Percona's `error` condition, when it is set.
fn error_condition(status: Option<&PerconaServerMongoDbStatus>) -> Option<String> {
    status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.type_ == state::ERROR && c.status == "True")
        .map(|c| {
            if c.message.is_empty() {
                c.reason.clone()
            } else {
                c.message.clone()
            }
        })
        .find(|m| !m.is_empty())
}

#[cfg(test)]
mod tests;
