//! Pieces shared by several kinds: engine types, well-known labels and
//! annotations, condition types and small reference structs.

use std::fmt;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// [`is_dns_label`] as a regular expression (with at most 63 characters),
/// for OpenAPI documents and JSON schemas.
pub const DNS_LABEL_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A name of RFC 1123 label form (namespaces, most objects): at most 63
/// characters of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Label put on every object the operator creates, so that objects made by
/// someone else are never touched.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`] on our objects.
pub const MANAGED_BY_VALUE: &str = "dbaas-operator";
/// Label naming the DatabaseCluster an engine object belongs to.
pub const LABEL_CLUSTER: &str = "dbaas.io/cluster";
/// Label naming the engine type (postgresql, mysql, mongodb, mariadb).
pub const LABEL_ENGINE: &str = "dbaas.io/engine";

/// Annotation selecting the kind of template a DatabaseCluster is made from.
pub const ANNOTATION_TEMPLATE_KIND: &str = "dbaas.io/template-kind";
/// Annotation selecting the template's name (same namespace as the cluster).
pub const ANNOTATION_TEMPLATE_NAME: &str = "dbaas.io/template-name";
/// Annotation telling who created an object: ui, api, user, sre, dba or ci.
pub const ANNOTATION_ORIGIN: &str = "dbaas.io/origin";

/// The field manager the operator uses for every server-side apply.
pub const FIELD_MANAGER: &str = "dbaas-operator";
/// Field manager of what OpsRequests write on other objects (a cluster's
/// spec and operation queue, an engine resource's annotation or status).
pub const OPS_FIELD_MANAGER: &str = "dbaas-ops";

/// The database engines the unified API knows.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EngineType {
    /// PostgreSQL, run by CloudNativePG.
    Postgresql,
    /// MySQL, run by Percona XtraDB Cluster.
    Mysql,
    /// MongoDB, run by Percona Server for MongoDB.
    Mongodb,
    /// MariaDB, run by mariadb-operator.
    Mariadb,
}

impl EngineType {
    pub const ALL: [EngineType; 4] = [Self::Postgresql, Self::Mysql, Self::Mongodb, Self::Mariadb];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgresql => "postgresql",
            Self::Mysql => "mysql",
            Self::Mongodb => "mongodb",
            Self::Mariadb => "mariadb",
        }
    }

    /// The engine operator's package in OperatorHub's catalog, what OLM
    /// installs by default.
    pub fn olm_package(self) -> &'static str {
        match self {
            Self::Postgresql => "cloudnative-pg",
            Self::Mysql => "percona-xtradb-cluster-operator",
            Self::Mongodb => "percona-server-mongodb-operator",
            Self::Mariadb => "mariadb-operator",
        }
    }
}

impl fmt::Display for EngineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to an object by name in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct LocalObjectReference {
    /// Name of the referenced object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// A key inside a Secret in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct SecretKeyReference {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key inside the Secret.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// One engine configuration parameter, as the seed's `config` list has it.
/// The engine provider renders the list into the engine's own format
/// (postgresql.conf parameters, my.cnf, mongod.conf).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
pub struct ConfigParameter {
    /// Parameter name, e.g. `max_connections` or `net.maxIncomingConnections`.
    #[schemars(
        length(min = 1, max = 256),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
    )]
    pub name: String,
    /// Parameter value, always a string (`"200"`, `"on"`, `"64MB"`); no
    /// control characters, so nothing can start a new line in a config file.
    #[schemars(length(max = 4096), regex(pattern = r"^[^\x00-\x1f\x7f]*$"))]
    pub value: String,
}

/// Standard condition types used across kinds.
pub mod condition {
    /// The object is usable: for a cluster, the engine reports the desired
    /// spec as running and healthy.
    pub const READY: &str = "Ready";
    /// The operator is working towards the desired spec.
    pub const PROGRESSING: &str = "Progressing";
    /// The spec was accepted by the operator's own checks (the ones the API
    /// server cannot make).
    pub const VALID: &str = "Valid";
    /// The engine operator's CRDs are installed in the cluster.
    pub const ENGINE_AVAILABLE: &str = "EngineAvailable";
    /// A DatabaseServer's certificate is checked before the admin password
    /// is sent (False for TLS modes that accept any certificate).
    pub const CERTIFICATE_VERIFIED: &str = "CertificateVerified";
}
