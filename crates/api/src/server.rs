//! `DatabaseServer`: a server the operator may create databases and users in.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::common::{LocalObjectReference, SecretKeyReference};

/// The annotation by which a Secret says where its credentials may be
/// sent as a DatabaseServer's admin login: `host:port` endpoints,
/// comma-separated (`[v6]:port` for IPv6 addresses). Whoever may write the
/// Secret decides, so a user who may create or edit DatabaseServers but not
/// read Secrets cannot send someone's credentials to a host they control.
pub const ANNOTATION_DATABASE_SERVER_ENDPOINTS: &str = "dbaas.io/database-server-endpoints";

/// Whether a Secret annotated `annotation`
/// ([`ANNOTATION_DATABASE_SERVER_ENDPOINTS`]) lets its credentials go to
/// `host:port` (host names compared without regard to case).
pub fn secret_sent_to(annotation: Option<&str>, host: &str, port: u16) -> bool {
    annotation.is_some_and(|endpoints| {
        endpoints.split(',').any(|endpoint| {
            endpoint
                .trim()
                .rsplit_once(':')
                .is_some_and(|(allowed_host, allowed_port)| {
                    let allowed_host = allowed_host.trim_start_matches('[').trim_end_matches(']');
                    allowed_host
                        .eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']'))
                        && allowed_port.parse::<u16>() == Ok(port)
                })
        })
    })
}

/// A database server the operator provisions databases and users into:
/// external (host, port, TLS mode, admin credentials) or one of our own
/// DatabaseClusters. Its labels are what DatabaseClaims match.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[kube(
    group = "dbaas.io",
    version = "v1",
    kind = "DatabaseServer",
    namespaced,
    status = "DatabaseServerStatus",
    shortname = "dbserver",
    category = "dbaas",
    doc = "A database server the operator may create databases and users in.",
    printcolumn(name = "Engine", type_ = "string", json_path = ".spec.engine"),
    printcolumn(name = "Host", type_ = "string", json_path = ".spec.host"),
    printcolumn(name = "Reachable", type_ = "boolean", json_path = ".status.reachable"),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.serverVersion"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.clusterRef) != has(self.host)").message("set exactly one of host (an external server) or clusterRef (one of our DatabaseClusters)").reason(Reason::FieldValueInvalid),
    validation = Rule::new("has(self.clusterRef) || has(self.adminCredentials)").message("an external server needs adminCredentials").reason(Reason::FieldValueRequired).field_path(".adminCredentials"),
    validation = Rule::new("!has(self.caCertificate) || !has(self.sslMode) || self.sslMode == 'verify-ca' || self.sslMode == 'verify-full'").message("a caCertificate is there to verify the server: set sslMode to verify-full or verify-ca (unset means verify-full)").reason(Reason::FieldValueInvalid).field_path(".sslMode"),
    validation = Rule::new("!has(self.createDatabaseStrategy) || self.engine == 'postgres'").message("createDatabaseStrategy is a PostgreSQL setting").reason(Reason::FieldValueForbidden).field_path(".createDatabaseStrategy")
)]
pub struct DatabaseServerSpec {
    /// postgres, mysql or mariadb.
    pub engine: ServerEngine,
    /// Host name or IP of an external server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,
    /// Port; the engine's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// One of our DatabaseClusters, whose endpoint and admin Secret are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ref: Option<LocalObjectReference>,
    /// TLS mode for connections to the server. Unset: `verify-full` when
    /// `caCertificate` is given, else `prefer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_mode: Option<SslMode>,
    /// A Secret key holding the PEM certificate(s) of the CA that signed the
    /// server's certificate: `verify-ca` and `verify-full` trust it instead of
    /// the operator's system roots. Like an admin Secret, the Secret must
    /// list this server's endpoint in `dbaas.io/database-server-endpoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<SecretKeyReference>,
    /// Secret keys with the admin user name and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_credentials: Option<AdminCredentials>,
    /// Database the operator connects to for administration (postgres: `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_database: Option<String>,
    /// Call these stored procedures instead of running DDL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_procedures: Option<StoredProcedures>,
    /// PostgreSQL 15 and later: how `CREATE DATABASE` copies the template.
    /// `WAL_LOG` (the server's default) writes the copy to the WAL;
    /// `FILE_COPY` copies the files and forces two checkpoints, which is
    /// several times faster for the small template of a claim's database on
    /// a server with few dirty buffers, and slower on a busy one. Unset: the
    /// server's default. Older servers always copy files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_database_strategy: Option<CreateDatabaseStrategy>,
}

impl DatabaseServerSpec {
    /// The TLS mode in force: the one set, else `verify-full` when a CA is
    /// given (verification is the default where it is possible), else
    /// `prefer`.
    pub fn effective_ssl_mode(&self) -> SslMode {
        match (self.ssl_mode, &self.ca_certificate) {
            (Some(mode), _) => mode,
            (None, Some(_)) => SslMode::VerifyFull,
            (None, None) => SslMode::Prefer,
        }
    }
}

/// PostgreSQL's `CREATE DATABASE ... STRATEGY`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum CreateDatabaseStrategy {
    #[serde(rename = "WAL_LOG")]
    WalLog,
    #[serde(rename = "FILE_COPY")]
    FileCopy,
}

/// Engines a DatabaseServer can be.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerEngine {
    Postgres,
    Mysql,
    Mariadb,
}

/// TLS modes, in libpq's vocabulary.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the admin credentials are.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminCredentials {
    pub username: SecretKeyReference,
    pub password: SecretKeyReference,
}

/// Admin-named stored procedures used instead of DDL.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredProcedures {
    /// Called as `create(database, username, password)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// Called as `delete(database, username)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete: Option<String>,
    /// Called as `rotate(username, password)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<String>,
}

/// Observed state of a DatabaseServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseServerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// When the probe result last changed (reachability, version or the
    /// Ready condition); an unchanged result is not written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod secret_sharing_tests {
    use super::secret_sent_to;

    #[test]
    fn a_secret_names_the_endpoints_its_credentials_may_go_to() {
        let listed = Some("pg.example.internal:5432, [fd00::5]:5433");
        assert!(secret_sent_to(listed, "pg.example.internal", 5432));
        assert!(secret_sent_to(listed, "PG.Example.Internal", 5432));
        assert!(secret_sent_to(listed, "fd00::5", 5433));
        for (host, port) in [
            ("pg.example.internal", 5433),
            ("evil.example", 5432),
            ("pg.example.internal.evil.example", 5432),
            ("fd00::5", 5432),
        ] {
            assert!(!secret_sent_to(listed, host, port), "{host}:{port}");
        }
        for refused in [
            None,
            Some(""),
            Some("*"),
            Some("pg.example.internal"),
            Some("pg.example.internal:x"),
        ] {
            assert!(
                !secret_sent_to(refused, "pg.example.internal", 5432),
                "{refused:?}"
            );
        }
    }
}

#[cfg(test)]
mod ssl_mode_tests {
    use super::*;

    fn spec(fields: serde_json::Value) -> DatabaseServerSpec {
        let mut base = serde_json::json!({"engine": "postgres", "host": "pg.example"});
        if let (Some(base), Some(fields)) = (base.as_object_mut(), fields.as_object()) {
            base.extend(fields.clone());
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_given_ca_makes_verification_the_default() {
        let ca = serde_json::json!({"name": "pg-ca", "key": "ca.crt"});
        assert_eq!(
            spec(serde_json::json!({})).effective_ssl_mode(),
            SslMode::Prefer
        );
        assert_eq!(
            spec(serde_json::json!({"caCertificate": ca})).effective_ssl_mode(),
            SslMode::VerifyFull
        );
        assert_eq!(
            spec(serde_json::json!({"caCertificate": ca, "sslMode": "verify-ca"}))
                .effective_ssl_mode(),
            SslMode::VerifyCa
        );
        assert_eq!(
            spec(serde_json::json!({"sslMode": "require"})).effective_ssl_mode(),
            SslMode::Require
        );
    }
}
