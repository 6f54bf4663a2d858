//! `DatabaseCluster`: one spec for a database cluster of any engine.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{ConfigParameter, EngineType};

/// A database cluster of any engine. The operator turns it into the engine
/// operator's own resource (a CloudNativePG `Cluster`, a
/// `PerconaXtraDBCluster`, a `PerconaServerMongoDB`) and maps that resource's
/// status back here.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseCluster",
    namespaced,
    status = "DatabaseClusterStatus",
    shortname = "dbcl",
    category = "dbaas",
    category = "all",
    doc = "A database cluster of any engine behind one API.",
    printcolumn(name = "Engine", type_ = "string", json_path = ".spec.engine.type"),
    printcolumn(name = "Version", type_ = "string", json_path = ".status.engineVersion"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.clusterSize"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.ready"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Host", type_ = "string", json_path = ".status.host", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("self.metadata.name.size() <= 50").message("metadata.name must be at most 50 characters: engine operators derive pod and service names from it")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(self.engine.type in ['mysql', 'mongodb'] || (self.engine.type == 'mariadb' && has(self.engine.topology) && self.engine.topology == 'galera')) || self.clusterSize == 1 || self.clusterSize % 2 == 1").message("mysql, mongodb and galera mariadb need an odd clusterSize (1 for an unsafe single node, or 3, 5, 7, ...) to keep quorum").reason(Reason::FieldValueInvalid).field_path(".clusterSize"),
    validation = Rule::new("!(self.engine.type in ['mysql', 'mongodb'] || (self.engine.type == 'mariadb' && has(self.engine.topology) && self.engine.topology == 'galera')) || oldSelf.clusterSize != 1 || self.clusterSize == 1").message("a single-node mysql, mongodb or galera mariadb cluster cannot grow to cluster mode; create a new cluster with clusterSize >= 3 and restore a backup into it").reason(Reason::FieldValueForbidden).field_path(".clusterSize"),
    validation = Rule::new("!(self.engine.type in ['mysql', 'mongodb'] || (self.engine.type == 'mariadb' && has(self.engine.topology) && self.engine.topology == 'galera')) || oldSelf.clusterSize < 3 || self.clusterSize >= 3").message("a mysql, mongodb or galera mariadb cluster in cluster mode cannot be scaled below 3 members").reason(Reason::FieldValueForbidden).field_path(".clusterSize"),
    validation = Rule::new("self.engine.type != 'mariadb' || oldSelf.clusterSize != 1 || self.clusterSize == 1").message("a single-instance mariadb cluster runs without replication and cannot grow; create a new cluster with clusterSize >= 2 and restore a backup into it").reason(Reason::FieldValueForbidden).field_path(".clusterSize"),
    validation = Rule::new("self.engine.type != 'mariadb' || oldSelf.clusterSize < 2 || self.clusterSize >= 2").message("a mariadb cluster with replicas cannot be scaled below 2 instances (mariadb-operator runs a single instance without replication)").reason(Reason::FieldValueForbidden).field_path(".clusterSize"),
    validation = Rule::new("!has(self.proxy) || !has(self.proxy.type) || self.proxy.type == 'none' || (self.engine.type == 'postgresql' && self.proxy.type == 'pgbouncer') || (self.engine.type == 'mysql' && self.proxy.type in ['haproxy', 'proxysql']) || (self.engine.type == 'mongodb' && self.proxy.type == 'mongos') || (self.engine.type == 'mariadb' && self.proxy.type == 'maxscale')").message("proxy.type must fit the engine: pgbouncer for postgresql, haproxy or proxysql for mysql, mongos for mongodb, maxscale for mariadb").reason(Reason::FieldValueInvalid).field_path(".proxy.type"),
    validation = Rule::new("!has(self.dataSource) || (has(oldSelf.dataSource) && self.dataSource == oldSelf.dataSource)").message("dataSource is only read when the cluster is created: it cannot be added or changed afterwards").reason(Reason::FieldValueForbidden).field_path(".dataSource")
)]
pub struct DatabaseClusterSpec {
    /// Which database engine, and which version of it.
    pub engine: EngineSpec,

    /// Number of database instances. postgresql runs one primary and
    /// clusterSize - 1 replicas (any size); replication mariadb too, from 2
    /// (1 is a single instance without replication that cannot grow). For
    /// the quorum engines (mysql, mongodb, galera mariadb) 1 is a single
    /// instance (the unsafe mode that cannot grow); 3 or more runs in
    /// cluster mode and can scale 3 -> 5 -> 7 and back down to 3.
    #[serde(default = "default_cluster_size")]
    #[schemars(range(min = 1, max = 99))]
    pub cluster_size: i32,

    /// Persistent storage of each instance.
    pub storage: StorageSpec,

    /// CPU and memory of each database instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Engine configuration as name/value pairs, rendered into the engine's
    /// own configuration format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 512))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub config: Vec<ConfigParameter>,

    /// Proxy or load balancer in front of the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxySpec>,

    /// How the cluster is reachable: inside Kubernetes only, or from outside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose: Option<ExposeSpec>,

    /// Backups of this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,

    /// Monitoring of this cluster through a MonitoringConfig.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,

    /// Create the cluster from a backup instead of empty (only read at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSource>,

    /// Where the instances may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,

    /// Stop the database (instances shut down, storage kept). Set back to
    /// false to start it again.
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,

    /// Name of the Secret with the engine's admin credentials, in the engine
    /// operator's own format: postgresql (CloudNativePG superuser Secret)
    /// keys `username` and `password`; mysql (Percona XtraDB Cluster) one key
    /// per system user (`root`, `xtrabackup`, `monitor`, ...); mongodb
    /// (Percona Server for MongoDB) `MONGODB_DATABASE_ADMIN_USER` /
    /// `MONGODB_DATABASE_ADMIN_PASSWORD` and the other system users; mariadb
    /// (mariadb-operator) the root password under the key `root`. When
    /// unset the engine operator generates it under a name derived from the
    /// cluster's; `status.credentialsSecret` always names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub credentials_secret_name: Option<String>,
}

fn default_cluster_size() -> i32 {
    1
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Engine type and version.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.topology) || self.type == 'mariadb'").message("engine.topology is only offered for mariadb (replication or galera); the other engines have one topology each").reason(Reason::FieldValueForbidden).field_path(".topology"),
    validation = Rule::new("has(self.topology) == has(oldSelf.topology)").message("engine.topology is immutable (it cannot be added or removed after creation)").reason(Reason::FieldValueForbidden).field_path(".topology")
)]
pub struct EngineSpec {
    /// The engine: postgresql, mysql, mongodb or mariadb. Immutable.
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("engine.type is immutable: create a new cluster and restore a backup into it").reason(Reason::FieldValueForbidden))]
    pub type_: EngineType,

    /// How the instances replicate, for engines that offer a choice (mariadb:
    /// `replication`, one primary and asynchronous replicas, the default; or
    /// `galera`, synchronous multi-primary). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("engine.topology is immutable: create a new cluster and restore a backup into it").reason(Reason::FieldValueForbidden))]
    pub topology: Option<Topology>,

    /// Database version, e.g. "16.4" or "8.0.36". When unset the operator
    /// uses the default (recommended) version of the DatabaseEngine. Must be
    /// one of the versions the DatabaseEngine allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^[0-9][0-9A-Za-z.\-_+]*$")
    )]
    pub version: Option<String>,
}

/// How an engine's instances replicate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Topology {
    /// One primary, asynchronous replicas; a switchover moves the primary.
    Replication,
    /// Galera: every member writable, synchronous, needs a quorum.
    Galera,
}

/// Persistent storage of each instance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0").message("storage.size cannot shrink").reason(Reason::FieldValueForbidden),
    validation = Rule::new("has(self.class) == has(oldSelf.class) && (!has(self.class) || self.class == oldSelf.class)").message("storage.class is immutable (it cannot be added, changed or removed)").reason(Reason::FieldValueForbidden)
)]
pub struct StorageSpec {
    /// Size of each instance's volume, e.g. 10Gi. Can grow, never shrink.
    #[x_kube(validation = Rule::new("isQuantity(string(self)) && quantity(string(self)).isGreaterThan(quantity('0'))").message("storage.size must be a positive quantity such as 10Gi"))]
    pub size: Quantity,

    /// StorageClass of the volumes; the cluster default when unset. Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

/// Proxy / load balancer types; which ones fit depends on the engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProxyType {
    /// No proxy: clients connect to the instances' services.
    None,
    /// PgBouncer (CloudNativePG Pooler), for postgresql.
    Pgbouncer,
    /// HAProxy, for mysql.
    Haproxy,
    /// ProxySQL, for mysql.
    Proxysql,
    /// mongos routers of a sharded cluster, for mongodb.
    Mongos,
    /// MariaDB MaxScale (a mariadb-operator MaxScale), for mariadb.
    Maxscale,
}

/// Proxy or load balancer in front of the instances.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// The proxy type; must fit the engine.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<ProxyType>,
    /// Number of proxy instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 99))]
    pub replicas: Option<i32>,
    /// CPU and memory of each proxy instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Proxy configuration parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub config: Vec<ConfigParameter>,
}

/// Exposure types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExposeType {
    /// Reachable inside the Kubernetes cluster only (ClusterIP).
    Internal,
    /// Reachable from outside (LoadBalancer), limited to `ipSourceRanges`.
    External,
}

/// How the cluster is reachable.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExposeSpec {
    /// internal or external.
    #[serde(rename = "type")]
    pub type_: ExposeType,
    /// CIDRs allowed to connect when external; everyone when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 43)))]
    #[x_kube(validation = Rule::new("self.all(r, isCIDR(r))").message("every ipSourceRanges entry must be a CIDR such as 10.0.0.0/8"))]
    pub ip_source_ranges: Vec<String>,
}

/// Backups of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Whether scheduled backups run.
    #[serde(default)]
    pub enabled: bool,
    /// A single cron schedule (the seed's short form); `schedules` allows several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 9, max = 128))]
    pub schedule: Option<String>,
    /// Number of backups kept for the short-form schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retention_copies: Option<i32>,
    /// BackupStorage the short-form schedule writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
    /// Named schedules, each with its own cron, retention and storage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub schedules: Vec<BackupSchedule>,
    /// A BackupScheduleTemplate (same namespace) whose schedules run beside
    /// `schedules`: a schedule of the cluster's own (or the short form, which
    /// runs as `default`) wins by name. The template must exist and fit the
    /// engine, or nothing is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub schedule_template_name: Option<String>,
    /// Namespace of every BackupStorage this backup spec names (and the
    /// schedules of its BackupScheduleTemplate); the cluster's own when
    /// unset. A storage in another namespace must list the cluster's
    /// namespace in its `allowedNamespaces`; its credentials are copied into
    /// the cluster's namespace for the engine operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// Point-in-time recovery (continuous log archiving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrSpec>,
}

/// A named backup schedule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSchedule {
    /// Unique name of the schedule.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Whether this schedule runs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Cron expression, e.g. "0 2 * * *".
    #[schemars(length(min = 9, max = 128))]
    pub schedule: String,
    /// Number of backups kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub retention_copies: Option<i32>,
    /// BackupStorage this schedule writes to.
    #[schemars(length(min = 1, max = 253))]
    pub storage_name: String,
}

fn default_true() -> bool {
    true
}

/// Point-in-time recovery settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PitrSpec {
    /// Whether transaction logs are archived continuously.
    #[serde(default)]
    pub enabled: bool,
    /// BackupStorage the logs go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
}

/// Monitoring of the cluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Name of the MonitoringConfig.
    #[schemars(length(min = 1, max = 253))]
    pub monitoring_config_name: String,
    /// Namespace of the MonitoringConfig; the cluster's own when unset. A
    /// MonitoringConfig in another namespace must list the cluster's
    /// namespace in its `allowedNamespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub monitoring_config_namespace: Option<String>,
    /// CPU and memory of the monitoring agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Where a new cluster's data comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.backupName) != has(self.backupSource)").message("dataSource needs exactly one of backupName or backupSource"))]
pub struct DataSource {
    /// A backup object of another cluster in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// A backup at a path in a BackupStorage (a "provided backup file").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_source: Option<BackupSource>,
    /// Restore to a point in time instead of the end of the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pitr: Option<PitrTarget>,
}

/// A backup at a path in a BackupStorage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupSource {
    /// Name of the BackupStorage.
    pub storage_name: String,
    /// Namespace of the BackupStorage; the cluster's own when unset. A
    /// storage in another namespace must list the cluster's namespace in its
    /// `allowedNamespaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// Path of the backup inside the storage.
    #[schemars(length(min = 1))]
    pub path: String,
}

/// A point-in-time recovery target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.type != 'date' || has(self.date)").message("pitr.type date needs pitr.date"))]
pub struct PitrTarget {
    /// `latest` (everything archived) or `date`.
    #[serde(rename = "type")]
    pub type_: PitrType,
    /// The point in time, RFC 3339, for type `date`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<Time>,
}

/// Point-in-time recovery target types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PitrType {
    Latest,
    Date,
}

/// Where the instances may run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Node selector for the instance pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Tolerations of the instance pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Affinity of the instance pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// PriorityClass of the instance pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Observed state of a DatabaseCluster, in one vocabulary for every engine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Summary of the cluster's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// Instances that are ready.
    #[serde(default)]
    pub ready: i32,
    /// Instances asked for.
    #[serde(default)]
    pub size: i32,
    /// Host name clients connect to (read-write endpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port clients connect to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// Engine version the operator asked the engine for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// The version as `spec.engine.version` names it, when that is the
    /// upstream release of the engine build in `engineVersion` (`8.0.36`
    /// for `8.0.36-28.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_version: Option<String>,
    /// Secret with the engine's admin credentials (see spec.credentialsSecretName).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// The engine resource this cluster is made of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_ref: Option<EngineObjectRef>,
    /// Human-readable detail of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, Progressing, Valid, EngineAvailable and others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The OpsRequests admitted on this cluster in the order they run: the
    /// first one runs, the others wait. Written by the OpsRequest controller.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub ops_queue: Vec<QueuedOperation>,
    /// Where restoring `spec.dataSource` into this new cluster stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source: Option<DataSourceStatus>,
}

/// Where restoring `spec.dataSource` stands, and what was found for it (so
/// a restored cluster no longer depends on the DatabaseBackup existing).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RestorePhase>,
    /// The DatabaseBackup restored (`dataSource.backupName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_name: Option<String>,
    /// The cluster that backup was taken of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_cluster: Option<String>,
    /// The BackupStorage restored from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_name: Option<String>,
    /// The namespace of that BackupStorage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_namespace: Option<String>,
    /// Where the backup is, as its engine wrote it or the user gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The engine operator's restore resource (kind/name), for engines
    /// that restore into a running cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_restore: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
    /// Why the restore failed or waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a restore is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum RestorePhase {
    /// Not started by the engine yet (or waiting for the cluster).
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl RestorePhase {
    /// Whether the restore will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// One OpsRequest in a cluster's queue.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueuedOperation {
    /// Name of the OpsRequest.
    pub name: String,
    /// Its operation.
    #[serde(rename = "type")]
    pub type_: crate::ops::OpsType,
    /// Its phase.
    pub phase: crate::ops::OpsPhase,
}

/// The engine resource a DatabaseCluster is made of, and what the operator
/// last asked of it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `metadata.generation` of the engine resource right after the
    /// operator's last apply that changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_generation: Option<i64>,
    /// When that apply happened. Engine operators without an
    /// observedGeneration (CloudNativePG) count as having seen the spec only
    /// once they write status after this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<Time>,
    /// `metadata.resourceVersion` right after that apply: a status written
    /// in the same second counts only if the object changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_resource_version: Option<String>,
}

/// Phases of a DatabaseCluster.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ClusterPhase {
    /// Accepted, engine resource not created or not yet reported on.
    Pending,
    /// First start: the engine is bringing the instances up.
    Creating,
    /// Running the desired spec and healthy.
    Ready,
    /// A change is being rolled out (scale, restart, upgrade, switchover...).
    Updating,
    /// Stopped on request (`spec.paused`).
    Paused,
    /// Up, and the backup of `spec.dataSource` is being restored into it.
    Restoring,
    /// Needs attention; see conditions and message.
    Error,
    /// Being deleted.
    Deleting,
    /// The engine reports something the operator does not recognise.
    Unknown,
}

impl std::fmt::Display for ClusterPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
