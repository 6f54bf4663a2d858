//! Where a DatabaseServer is and how the operator logs in to it as admin:
//! an external server's host and admin Secret, or one of our
//! DatabaseClusters' endpoint and the admin Secret its engine operator made.

use std::str::FromStr;

use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::SecretKeyReference;
use dbaas_api::connection::AdminLogin;
use dbaas_api::server::{
    ANNOTATION_DATABASE_SERVER_ENDPOINTS, ServerEngine, SslMode, secret_sent_to,
};
use dbaas_api::{DatabaseCluster, DatabaseServer, EngineType};
use dbaas_engines::provider_for;
use dbaas_sql::{Endpoint, Engine, TlsMode};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use secrecy::SecretString;

/// Dial `to` whenever `from` is the target (curl's `--connect-to`): for an
/// operator running outside the cluster (development, tests), where the
/// in-cluster service names that apps use do not resolve. The apps still
/// get `from` in their Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub from_host: String,
    pub from_port: u16,
    pub to_host: String,
    pub to_port: u16,
}

impl FromStr for ConnectTo {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = |side: &str| -> Result<(String, u16), String> {
            let (host, port) = side
                .rsplit_once(':')
                .ok_or_else(|| format!("{side:?} is not HOST:PORT"))?;
            let port = port
                .parse()
                .map_err(|_| format!("{port:?} in {side:?} is not a port"))?;
            if host.is_empty() {
                return Err(format!("{side:?} has no host"));
            }
            Ok((host.to_owned(), port))
        };
        let (from, to) = text
            .split_once('=')
            .ok_or_else(|| format!("{text:?} is not HOST:PORT=HOST:PORT"))?;
        let (from_host, from_port) = parse(from)?;
        let (to_host, to_port) = parse(to)?;
        Ok(Self {
            from_host,
            from_port,
            to_host,
            to_port,
        })
    }
}

/// A server resolved to what the operator dials and what apps are given.
#[derive(Debug, Clone)]
pub struct ResolvedServer {
    /// The admin connection, dialled at the (possibly redirected) address.
    pub admin: Endpoint,
    /// Host and port apps connect to (written to claims' Secrets).
    pub public_host: String,
    pub public_port: u16,
}

impl ResolvedServer {
    /// A connection as a claim's user, dialled like the admin's.
    pub fn as_user(&self, user: &str, password: SecretString, database: &str) -> Endpoint {
        Endpoint {
            user: user.to_owned(),
            password,
            database: Some(database.to_owned()),
            ..self.admin.clone()
        }
    }
}

/// Why a server could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("reading {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {secret} does not exist")]
    SecretMissing { secret: String },
    #[error("Secret {secret} has no key {key}")]
    KeyMissing { secret: String, key: String },
    #[error(
        "Secret {secret} does not allow its credentials to be sent to {endpoint}; whoever manages the Secret lists it in the annotation {ANNOTATION_DATABASE_SERVER_ENDPOINTS}"
    )]
    SecretNotShared { secret: String, endpoint: String },
    #[error("Secret {secret} key {key}: {detail}")]
    CaInvalid {
        secret: String,
        key: String,
        detail: String,
    },
    #[error("DatabaseCluster {0} does not exist")]
    ClusterMissing(String),
    #[error("DatabaseCluster {cluster} is not ready ({phase}); waiting for its endpoint")]
    ClusterNotReady { cluster: String, phase: String },
    #[error("DatabaseCluster {cluster} runs {engine}, which cannot back a {server} DatabaseServer")]
    EngineMismatch {
        cluster: String,
        engine: EngineType,
        server: String,
    },
    #[error("the server spec names neither host nor clusterRef")]
    Incomplete,
}

impl EndpointError {
    /// A bounded reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "KubernetesError",
            Self::SecretMissing { .. } | Self::KeyMissing { .. } => "AdminSecretInvalid",
            Self::SecretNotShared { .. } => "AdminSecretNotShared",
            Self::CaInvalid { .. } => "CACertificateInvalid",
            Self::ClusterMissing(_) => "ClusterMissing",
            Self::ClusterNotReady { .. } => "ClusterNotReady",
            Self::EngineMismatch { .. } => "EngineMismatch",
            Self::Incomplete => "Incomplete",
        }
    }
}

/// The sql crate's engine for a server engine.
pub fn sql_engine(engine: ServerEngine) -> Engine {
    match engine {
        ServerEngine::Postgres => Engine::Postgres,
        ServerEngine::Mysql => Engine::MySql,
        ServerEngine::Mariadb => Engine::MariaDb,
    }
}

/// The sql crate's TLS mode for an SSL mode of the API.
pub fn tls_mode(mode: SslMode) -> TlsMode {
    match mode {
        SslMode::Disable => TlsMode::Disable,
        SslMode::Prefer => TlsMode::Prefer,
        SslMode::Require => TlsMode::Require,
        SslMode::VerifyCa => TlsMode::VerifyCa,
        SslMode::VerifyFull => TlsMode::VerifyFull,
    }
}

/// A Secret's key. `sent_to`: the `(host, port)` the value goes to, which
/// the Secret's [`ANNOTATION_DATABASE_SERVER_ENDPOINTS`] must list (an
/// external server's admin Secret: the server's author picks both the
/// Secret and the host), checked before any value is read; `None` for the
/// Secrets our engine operators made for our own clusters.
async fn secret_key(
    secrets: &Api<Secret>,
    reference: &SecretKeyReference,
    sent_to: Option<(&str, u16)>,
) -> Result<String, EndpointError> {
    let secret = secrets
        .get_opt(&reference.name)
        .await
        .map_err(|source| EndpointError::Kube {
            what: format!("Secret {}", reference.name),
            source,
        })?
        .ok_or_else(|| EndpointError::SecretMissing {
            secret: reference.name.clone(),
        })?;
    if let Some((host, port)) = sent_to {
        let annotation = secret
            .annotations()
            .get(ANNOTATION_DATABASE_SERVER_ENDPOINTS)
            .map(String::as_str);
        if !secret_sent_to(annotation, host, port) {
            return Err(EndpointError::SecretNotShared {
                secret: reference.name.clone(),
                endpoint: format!("{host}:{port}"),
            });
        }
    }
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .ok_or_else(|| EndpointError::KeyMissing {
            secret: reference.name.clone(),
            key: reference.key.clone(),
        })
}

/// Resolves `server` (reading its admin Secret, and its DatabaseCluster when
/// it is one of ours).
pub async fn resolve(
    client: &Client,
    server: &DatabaseServer,
    connect_to: &[ConnectTo],
) -> Result<ResolvedServer, EndpointError> {
    let namespace = server.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let spec = &server.spec;
    let (host, port, user, password) = match (&spec.host, &spec.cluster_ref) {
        (Some(host), _) => {
            let admin = spec
                .admin_credentials
                .as_ref()
                .ok_or(EndpointError::Incomplete)?;
            let port = spec
                .port
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| sql_engine(spec.engine).default_port());
            let sent_to = Some((host.as_str(), port));
            let user = secret_key(&secrets, &admin.username, sent_to).await?;
            let password = secret_key(&secrets, &admin.password, sent_to).await?;
            (host.clone(), port, user, password)
        }
        (None, Some(reference)) => {
            let clusters: Api<DatabaseCluster> = Api::namespaced(client.clone(), &namespace);
            let cluster = clusters
                .get_opt(&reference.name)
                .await
                .map_err(|source| EndpointError::Kube {
                    what: format!("DatabaseCluster {}", reference.name),
                    source,
                })?
                .ok_or_else(|| EndpointError::ClusterMissing(reference.name.clone()))?;
            cluster_endpoint(&secrets, &cluster, spec.engine).await?
        }
        (None, None) => return Err(EndpointError::Incomplete),
    };
    // The CA is lent like admin credentials: its Secret names this
    // endpoint. Only its certificates are kept (they go on into claims'
    // Secrets).
    let trusted_ca = match &spec.ca_certificate {
        Some(reference) => {
            let text = secret_key(&secrets, reference, Some((host.as_str(), port))).await?;
            let certificates =
                dbaas_sql::certificates_only(&text).map_err(|detail| EndpointError::CaInvalid {
                    secret: reference.name.clone(),
                    key: reference.key.clone(),
                    detail,
                })?;
            Some(certificates.into())
        }
        None => None,
    };
    let (dial_host, dial_port) = connect_to
        .iter()
        .find(|c| c.from_host == host && c.from_port == port)
        .map(|c| (c.to_host.clone(), c.to_port))
        .unwrap_or_else(|| (host.clone(), port));
    let database = spec.admin_database.clone().or_else(|| match spec.engine {
        ServerEngine::Postgres => Some("postgres".to_owned()),
        ServerEngine::Mysql | ServerEngine::Mariadb => None,
    });
    Ok(ResolvedServer {
        admin: Endpoint {
            engine: sql_engine(spec.engine),
            host: dial_host,
            port: dial_port,
            user,
            password: SecretString::from(password),
            database,
            tls: tls_mode(spec.effective_ssl_mode()),
            trusted_ca,
        },
        public_host: host,
        public_port: port,
    })
}

/// The endpoint and admin login of one of our DatabaseClusters.
async fn cluster_endpoint(
    secrets: &Api<Secret>,
    cluster: &DatabaseCluster,
    server_engine: ServerEngine,
) -> Result<(String, u16, String, String), EndpointError> {
    let engine = cluster.spec.engine.type_;
    let mismatch = || EndpointError::EngineMismatch {
        cluster: cluster.name_any(),
        engine,
        server: server_engine.as_str().to_owned(),
    };
    let status = cluster.status.clone().unwrap_or_default();
    let (Some(host), Some(port), Some(ClusterPhase::Ready)) =
        (status.host, status.port, status.phase)
    else {
        return Err(EndpointError::ClusterNotReady {
            cluster: cluster.name_any(),
            phase: status
                .phase
                .map_or_else(|| "no status yet".to_owned(), |p| p.to_string()),
        });
    };
    let port = u16::try_from(port).map_err(|_| EndpointError::Incomplete)?;
    let provider = provider_for(engine).ok_or_else(mismatch)?;
    let secret = status
        .credentials_secret
        .unwrap_or_else(|| provider.credentials_secret_name(cluster));
    let key = |key: &str| SecretKeyReference {
        name: secret.clone(),
        key: key.to_owned(),
    };
    if engine.connection().server_engine != Some(server_engine) {
        return Err(mismatch());
    }
    // Each engine operator keeps its admin login in its own layout.
    let user = match engine.connection().admin_login {
        AdminLogin::UserKey { user_key, .. } => secret_key(secrets, &key(user_key), None).await?,
        AdminLogin::FixedUser { user } => user.to_owned(),
    };
    let password_key = engine.connection().admin_login.password_key();
    let password = secret_key(secrets, &key(password_key), None).await?;
    Ok((host, port, user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_parses_like_curl() {
        let c: ConnectTo = "pg-rw.apps.svc:5432=127.0.0.1:15432".parse().unwrap();
        assert_eq!(
            c,
            ConnectTo {
                from_host: "pg-rw.apps.svc".into(),
                from_port: 5432,
                to_host: "127.0.0.1".into(),
                to_port: 15432
            }
        );
        for bad in ["", "a:1", "a:1=b", "a:x=b:2", ":1=b:2", "a:1=b:99999"] {
            assert!(bad.parse::<ConnectTo>().is_err(), "{bad} parsed");
        }
    }
}
