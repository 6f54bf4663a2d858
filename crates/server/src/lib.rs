//! `dbaas-server`: the REST API of dbaas-operator.
//!
//! - Reads come from watch caches ([`store`]), one watch per kind started at
//!   boot; `/readyz` is 200 once every cache has its first full list. Lists
//!   are ordered by (namespace, name), paginated with `limit`/`continue`,
//!   filtered with Kubernetes label selectors.
//! - Writes go to the API server impersonating the caller ([`auth`]), so the
//!   cluster's RBAC decides them; the response is the object the API server
//!   wrote.
//! - Authentication is a TokenReview of the bearer token, authorization a
//!   SubjectAccessReview per request; both answers are cached briefly.
//! - Every error is `{code, reason, message}` ([`error`]); client mistakes
//!   are 4xx.
//! - Several clusters ([`clusters`], [`multicluster`]): registered
//!   Kubernetes clusters (kubeconfigs in Secrets of the server's namespace)
//!   each get their own watch caches; reads there are authorized by that
//!   cluster's SubjectAccessReview, writes impersonate the caller there,
//!   under a prefixed name ([`auth::RemoteIdentity`]). Where a kubeconfig
//!   may point is checked before the server connects ([`cluster_url`]).
//! - HTTPS from a certificate and key file, reloaded when they change
//!   ([`tls`]); plain HTTP only when asked for ([`Transport`]).
//! - Limits ([`limits`]): requests at once, request time, list page size;
//!   TokenReviews of unknown tokens are paced ([`auth`]).

pub mod access;
pub mod auth;
pub mod capabilities;
pub mod capacity;
pub mod cluster_url;
pub mod clusters;
pub mod console;
pub mod error;
pub mod events;
pub mod limits;
pub mod list_bench;
pub mod listen;
pub mod multicluster;
pub mod names;
pub mod openapi;
pub mod resources;
pub mod routes;
pub mod selector;
pub mod store;
pub mod tls;
pub mod ttl_cache;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use kube::Client;
use tokio::net::TcpListener;

pub use auth::{AuthConfig, RemoteIdentity};
pub use cluster_url::RegistrationPolicy;
pub use error::{ApiError, ErrorBody};
pub use limits::Limits;
use resources::Stores;
pub use tls::TlsFiles;

/// What every request handler shares.
pub struct AppState {
    pub stores: Stores,
    pub auth: auth::Auth,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Registered Kubernetes clusters, each with its own watch caches.
    pub clusters: clusters::ClusterRegistry,
    /// The server's own identity on the management cluster (reads of Nodes,
    /// Pods and StorageClasses for available resources).
    pub client: Client,
    /// Request timeout, concurrency and page size limits.
    pub limits: Limits,
    /// The open watch streams ([`watch`]).
    pub watch_slots: Arc<watch::WatchSlots>,
    /// Recent answers of `GET .../access` per (caller, namespace), as JSON.
    pub access_summaries: ttl_cache::TtlCache<(Arc<auth::Caller>, String), Arc<str>>,
}

/// Settings of the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub auth: AuthConfig,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The server's own namespace: cluster registrations are Secrets here,
    /// and `kubernetesclusters.dbaas.io` permissions are asked here.
    pub namespace: String,
    /// Where registered clusters may point, and how many there may be.
    pub registration: RegistrationPolicy,
    /// HTTPS or plain HTTP; [`Transport::Unset`] (the default) refuses to
    /// start, so every caller decides.
    pub transport: Transport,
    pub limits: Limits,
}

/// How the server talks to its clients.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Not decided: [`start`] refuses.
    #[default]
    Unset,
    /// HTTPS with the certificate and key of these files, reloaded when
    /// they change.
    Tls(TlsFiles),
    /// Plain HTTP (`--insecure-plain-http`): bearer tokens cross the
    /// network readable; behind a TLS-terminating proxy or in tests only.
    PlainHttp,
}

/// How many access summaries (caller, namespace) are kept at once.
const ACCESS_SUMMARIES_KEPT: usize = 1000;

/// Where the server keeps cluster registrations unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "dbaas-system";

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            auth: AuthConfig::default(),
            body_limit: 1024 * 1024,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            registration: RegistrationPolicy::default(),
            transport: Transport::Unset,
            limits: Limits::default(),
        }
    }
}

impl ServerConfig {
    /// The defaults, serving plain HTTP (tests and benchmarks on loopback).
    pub fn plain_http() -> Self {
        Self {
            transport: Transport::PlainHttp,
            ..Self::default()
        }
    }
}

/// Why the server refuses to start without a transport.
pub const NO_TRANSPORT: &str = "refusing to serve: no TLS certificate (--tls-cert-file and --tls-key-file) \
     and no --insecure-plain-http; bearer tokens must not cross the network in plain text \
     unless plain HTTP is asked for explicitly";

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("listening: {0}")]
    Listen(#[source] std::io::Error),
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error("the watch caches did not sync within {0:?}")]
    NotSynced(Duration),
    #[error("serving certificate: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("TLS configuration: {0}")]
    TlsConfig(#[source] rustls::Error),
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    let limits = state.limits.clone();
    let router = routes::Registry::build()
        .router
        .layer(DefaultBodyLimit::max(limit));
    limits::apply(router, &limits).with_state(state)
}

/// A server running in this process; stops when dropped.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    /// Whether it serves HTTPS.
    pub tls: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// Waits until every watch cache has its first full list.
    pub async fn wait_synced(&self, timeout: Duration) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !(self.state.clusters.is_loaded()
            && self
                .state
                .stores
                .sync_state()
                .iter()
                .all(|(_, synced)| *synced))
        {
            if tokio::time::Instant::now() > deadline {
                return Err(ServerError::NotSynced(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// `https://<addr>` or, with plain HTTP, `http://<addr>`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for (_, cluster) in self.state.clusters.all() {
            cluster.stop();
        }
    }
}

/// Starts the watches and serves the API on `listener`. `kube_config` is the
/// server's own identity: watches, TokenReview, SubjectAccessReview, and the
/// base of the impersonating clients.
pub fn start(
    kube_config: kube::Config,
    listener: TcpListener,
    config: &ServerConfig,
) -> Result<RunningServer, ServerError> {
    config
        .auth
        .remote_identity
        .check()
        .map_err(ServerError::Config)?;
    // The certificate loads before anything starts: a bad pair is a
    // startup error, not a server that fails every handshake.
    let tls = match &config.transport {
        Transport::Unset => return Err(ServerError::Config(NO_TRANSPORT.to_owned())),
        Transport::PlainHttp => None,
        Transport::Tls(files) => {
            let cert = tls::ReloadingCert::load(files.clone())?;
            let rustls_config = cert.server_config().map_err(ServerError::TlsConfig)?;
            Some((cert, Arc::new(rustls_config)))
        }
    };
    let client = Client::try_from(kube_config.clone()).map_err(ServerError::Client)?;
    let addr = listener.local_addr().map_err(ServerError::Listen)?;
    let state = Arc::new(AppState {
        stores: Stores::default(),
        auth: auth::Auth::new(client.clone(), kube_config, &config.auth),
        body_limit: config.body_limit,
        clusters: clusters::ClusterRegistry::new(
            client.clone(),
            config.namespace.clone(),
            config.auth.clone(),
            config.registration.clone(),
        ),
        client: client.clone(),
        limits: config.limits.clone(),
        access_summaries: ttl_cache::TtlCache::new(config.auth.cache_ttl, ACCESS_SUMMARIES_KEPT),
        watch_slots: watch::WatchSlots::new(
            config.limits.max_watches,
            config.limits.max_watches_per_caller,
        ),
    });
    let mut tasks = state.stores.start_watches(&client);
    let loading = state.clone();
    tasks.push(tokio::spawn(async move { loading.clusters.load().await }));
    let app = router(state.clone());
    let serves_tls = tls.is_some();
    let max_connections = config.limits.max_connections;
    let rustls_config = match tls {
        Some((cert, rustls_config)) => {
            tasks.push(tokio::spawn(cert.watch()));
            Some(rustls_config)
        }
        None => None,
    };
    tasks.push(tokio::spawn(listen::serve(
        listener,
        rustls_config,
        app,
        max_connections,
    )));
    Ok(RunningServer {
        addr,
        state,
        tls: serves_tls,
        tasks,
    })
}
