//! The DatabaseServer controller: resolve the server's endpoint and admin
//! login -> probe it -> status (reachable, server version, a Ready condition
//! whose reason says what is wrong: the admin Secret, the credentials, the
//! network, the cluster behind it).

pub mod endpoint;

use std::sync::Arc;
use std::time::Duration;

use dbaas_api::DatabaseServer;
use dbaas_api::common::{FIELD_MANAGER, condition};
use dbaas_api::server::DatabaseServerStatus;
use dbaas_api::server::SslMode;
use dbaas_sql::{Admin, SqlError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tracing::{debug, info};

use crate::cluster::status::set_condition;
use endpoint::{ConnectTo, resolve};

/// How long a probe may take before the server counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the DatabaseServer controller shares.
pub struct ServerContext {
    pub client: Client,
    pub connect_to: Vec<ConnectTo>,
    /// How often a server is probed again.
    pub check_interval: Duration,
}

/// A reconcile failed on Kubernetes I/O; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("writing the status of DatabaseServer {server}: {source}")]
    Status {
        server: String,
        #[source]
        source: kube::Error,
    },
}

impl crate::metrics::ErrorReason for Error {
    fn reason(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
        }
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Reachable {
        version: String,
    },
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// Connects as admin and asks the server's version.
pub async fn probe(client: &Client, server: &DatabaseServer, connect_to: &[ConnectTo]) -> Probe {
    let resolved = match resolve(client, server, connect_to).await {
        Ok(resolved) => resolved,
        Err(err) => {
            return Probe::Failed {
                reason: err.reason(),
                message: err.to_string(),
            };
        }
    };
    let attempt = async {
        let mut admin = Admin::connect(&resolved.admin).await?;
        admin.server_version().await
    };
    match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
        Ok(Ok(version)) => Probe::Reachable { version },
        Ok(Err(err)) => {
            if let SqlError::Unreachable { detail, .. } = &err {
                debug!(server = %server.name_any(), "database server unreachable: {detail}");
            }
            Probe::Failed {
                reason: err.reason(),
                message: err.to_string(),
            }
        }
        // The same message as any other unreachable server (see SqlError).
        Err(_) => Probe::Failed {
            reason: "ServerUnreachable",
            message: SqlError::Unreachable {
                host: resolved.admin.host.clone(),
                port: resolved.admin.port,
                detail: String::new(),
            }
            .to_string(),
        },
    }
}

/// The status for a probe result. `lastChecked` moves only when something
/// else changes, so an idle server costs no writes.
pub fn compose(server: &DatabaseServer, probe: &Probe, now: &Time) -> DatabaseServerStatus {
    let previous = server.status.clone().unwrap_or_default();
    let mut status = previous.clone();
    status.observed_generation = server.metadata.generation;
    match probe {
        Probe::Reachable { version } => {
            status.reachable = true;
            status.server_version = Some(version.clone());
            set_condition(
                &mut status.conditions,
                condition::READY,
                true,
                "Reachable",
                format!("admin login works; server version {version}"),
                server.metadata.generation,
                now,
            );
        }
        Probe::Failed { reason, message } => {
            status.reachable = false;
            set_condition(
                &mut status.conditions,
                condition::READY,
                false,
                reason,
                message.clone(),
                server.metadata.generation,
                now,
            );
        }
    }
    let (verified, reason, message) = certificate_check(server.spec.effective_ssl_mode());
    set_condition(
        &mut status.conditions,
        condition::CERTIFICATE_VERIFIED,
        verified,
        reason,
        message.to_owned(),
        server.metadata.generation,
        now,
    );
    status.last_checked = previous.last_checked.clone();
    if status != previous || status.last_checked.is_none() {
        status.last_checked = Some(now.clone());
    }
    status
}

/// Whether the admin password goes only to a server whose certificate was
/// checked: the `CertificateVerified` condition for an SSL mode.
fn certificate_check(mode: SslMode) -> (bool, &'static str, &'static str) {
    match mode {
        SslMode::VerifyFull => (
            true,
            "Verified",
            "the certificate chain and host name are checked before the admin password is sent",
        ),
        SslMode::VerifyCa => (
            true,
            "ChainVerified",
            "the certificate chain is checked, the host name is not (sslMode verify-full checks both)",
        ),
        SslMode::Prefer | SslMode::Require => (
            false,
            "CertificateNotVerified",
            "this sslMode accepts any certificate, so whoever answers at this address receives the admin password; name the server's CA in caCertificate (verify-full becomes the default) or use verify-full",
        ),
        SslMode::Disable => (
            false,
            "TLSDisabled",
            "sslMode disable sends the admin password unencrypted; use verify-full",
        ),
    }
}

/// Probes the server and records what was found.
pub async fn reconcile(
    server: Arc<DatabaseServer>,
    ctx: Arc<ServerContext>,
) -> Result<Action, Error> {
    let name = server.name_any();
    let namespace = server.namespace().unwrap_or_default();
    let found = probe(&ctx.client, &server, &ctx.connect_to).await;
    let status = compose(&server, &found, &Time(Timestamp::now()));
    if server.status.as_ref() != Some(&status) {
        match &found {
            Probe::Reachable { version } => {
                info!(server = %name, %namespace, %version, "database server reachable")
            }
            Probe::Failed { reason, message } => {
                info!(server = %name, %namespace, %reason, "database server not usable: {message}")
            }
        }
        let api: Api<DatabaseServer> = Api::namespaced(ctx.client.clone(), &namespace);
        let patch = json!({
            "apiVersion": "dbaas.io/v1",
            "kind": "DatabaseServer",
            "status": status,
        });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::Status {
            server: name.clone(),
            source,
        })?;
    } else {
        debug!(server = %name, "database server unchanged");
    }
    Ok(Action::requeue(ctx.check_interval))
}

/// Kubernetes I/O errors are retried soon.
pub fn error_policy(
    _server: Arc<DatabaseServer>,
    error: &Error,
    _ctx: Arc<ServerContext>,
) -> Action {
    debug!("{error}");
    Action::requeue(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server() -> DatabaseServer {
        let mut s: DatabaseServer = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
            "metadata": {"name": "pg", "namespace": "apps", "generation": 2},
            "spec": {"engine": "postgres", "host": "db", "adminCredentials": {
                "username": {"name": "a", "key": "u"}, "password": {"name": "a", "key": "p"}}}
        }))
        .unwrap();
        s.metadata.generation = Some(2);
        s
    }

    fn at(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    #[test]
    fn a_reachable_server_reports_its_version() {
        let s = compose(
            &server(),
            &Probe::Reachable {
                version: "PostgreSQL 15.8".into(),
            },
            &at("2026-01-01T00:00:00Z"),
        );
        assert!(s.reachable);
        assert_eq!(s.server_version.as_deref(), Some("PostgreSQL 15.8"));
        assert_eq!(s.observed_generation, Some(2));
        let ready = &s.conditions[0];
        assert_eq!(
            (
                ready.type_.as_str(),
                ready.status.as_str(),
                ready.reason.as_str()
            ),
            ("Ready", "True", "Reachable")
        );
    }

    #[test]
    fn a_failure_names_its_reason_and_an_unchanged_probe_writes_nothing() {
        let failed = Probe::Failed {
            reason: "AdminAuthFailed",
            message: "password authentication failed".into(),
        };
        let mut s = server();
        s.status = Some(compose(&s, &failed, &at("2026-01-01T00:00:00Z")));
        let status = s.status.clone().unwrap();
        assert!(!status.reachable);
        assert_eq!(status.conditions[0].reason, "AdminAuthFailed");
        // The same result later: identical status, so no write.
        assert_eq!(compose(&s, &failed, &at("2026-01-01T01:00:00Z")), status);
        // Recovery flips the condition and moves lastChecked.
        let ok = compose(
            &s,
            &Probe::Reachable {
                version: "15".into(),
            },
            &at("2026-01-01T02:00:00Z"),
        );
        assert_eq!(ok.last_checked, Some(at("2026-01-01T02:00:00Z")));
        assert_eq!(
            ok.conditions[0].last_transition_time,
            at("2026-01-01T02:00:00Z")
        );
    }
}
