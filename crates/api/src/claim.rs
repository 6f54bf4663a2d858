//! `DatabaseClaim`: "my app needs a database".

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::LocalObjectReference;

/// Label on a DatabaseServer naming the instance label claims match.
pub const LABEL_INSTANCE: &str = "dbaas.io/instance";
/// Label on a claim's Secret (and on a dynamically provisioned cluster)
/// naming the DatabaseClaim it belongs to.
pub const LABEL_CLAIM: &str = "dbaas.io/claim";
/// Annotation on a DatabaseClaim asking for a password rotation now: any new
/// value (a timestamp, say) rotates once.
pub const ANNOTATION_ROTATE: &str = "dbaas.io/rotate";

/// A database and a user for an app, on a matching DatabaseServer, with the
/// connection info in a Secret whose password rotates without downtime.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseClaim",
    namespaced,
    status = "DatabaseClaimStatus",
    shortname = "dbclaim",
    category = "dbaas",
    doc = "A database and a user for an app, with credentials in a Secret.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Database", type_ = "string", json_path = ".spec.databaseName"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretName"),
    printcolumn(name = "Matched", type_ = "string", json_path = ".status.matchedLabel"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.serverRef) || !has(self.instanceLabel)").message("set at most one of serverRef or instanceLabel").reason(Reason::FieldValueInvalid),
    validation = Rule::new("self.databaseName == oldSelf.databaseName && self.username == oldSelf.username && self.type == oldSelf.type").message("type, databaseName and username are immutable").reason(Reason::FieldValueForbidden),
    validation = Rule::new("(has(self.dbNameOverride) ? self.dbNameOverride : self.databaseName) == (has(oldSelf.dbNameOverride) ? oldSelf.dbNameOverride : oldSelf.databaseName)").message("dbNameOverride cannot change the database of an existing claim").reason(Reason::FieldValueForbidden).field_path(".dbNameOverride"),
    validation = Rule::new("self.type == 'postgres' || size(self.username) <= 29").message("mysql user names are at most 32 characters: username must leave room for the _a/_b suffix (29)").reason(Reason::FieldValueInvalid).field_path(".username")
)]
pub struct DatabaseClaimSpec {
    /// The application this database is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Secret the connection info is written to.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub secret_name: String,
    /// postgres, mysql or mariadb.
    #[serde(rename = "type")]
    pub type_: crate::server::ServerEngine,
    /// Instance label matched against DatabaseServer labels
    /// (`dbaas.io/instance`) by longest prefix, e.g. `athena.hostapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub instance_label: Option<String>,
    /// An explicit DatabaseServer instead of label matching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ref: Option<LocalObjectReference>,
    /// Base name of the login user.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub username: String,
    /// Name of the database.
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub database_name: String,
    /// Use this database name on the server instead of databaseName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub db_name_override: Option<String>,
    /// Secret key holding the DSN/URI.
    #[serde(default = "default_dsn_name")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub dsn_name: String,
    /// Override the host written to the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Override the port written to the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Template (DatabaseClusterTemplate) used for a new cluster when no server matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<String>,
    /// Minimum storage of a dynamically provisioned cluster, in GB.
    #[serde(
        rename = "minStorageGB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1))]
    pub min_storage_gb: Option<i32>,
    /// What happens to the database and user when the claim is deleted.
    #[serde(default)]
    pub delete_policy: DeletePolicy,
    /// Rotate the password every this many minutes (60..1440); the
    /// operator's default period when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 1440))]
    pub rotation_minutes: Option<i32>,
    /// Extra Secret keys rendered from templates, for formats other than the
    /// default keys (e.g. JDBC): `{{host}}`, `{{port}}`, `{{database}}`,
    /// `{{username}}`, `{{password}}`, `{{password_urlencoded}}`, `{{sslmode}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(k, !(k in ['username', 'password', 'host', 'port', 'database', 'sslmode', 'uri']))").message("secretTemplates must not replace a default key (username, password, host, port, database, sslmode, uri)"))]
    pub secret_templates: BTreeMap<String, String>,
}

fn default_dsn_name() -> String {
    "dsn".to_string()
}

/// What happens to the database and user when the claim is deleted.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DeletePolicy {
    /// Keep them (the default).
    #[default]
    Retain,
    /// Drop them.
    Delete,
}

/// Observed state of a DatabaseClaim. Never holds a password.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseClaimStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Last error, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_created_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_info_updated_at: Option<Time>,
    /// The server label that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_label: Option<String>,
    /// The DatabaseServer in use. Once the database exists the claim stays
    /// bound to it, even if a better-matching server appears later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The login user the Secret currently holds (`<username>_a` or `_b`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_login: Option<String>,
    /// When the Secret last switched to new credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation: Option<Time>,
    /// The last `dbaas.io/rotate` annotation value acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_rotate_request: Option<String>,
    /// The DatabaseCluster made for this claim (dynamic provisioning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned_cluster: Option<String>,
    /// Connection info without the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<ConnectionInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Connection info without the password.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    pub host: String,
    pub port: i32,
    pub database: String,
    pub username: String,
    pub ssl_mode: String,
}
