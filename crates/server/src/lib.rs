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

pub mod auth;
pub mod capacity;
pub mod cluster_url;
pub mod clusters;
pub mod error;
pub mod list_bench;
pub mod multicluster;
pub mod names;
pub mod openapi;
pub mod resources;
pub mod routes;
pub mod selector;
pub mod store;
pub mod ttl_cache;

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
use resources::Stores;

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
}

/// Where the server keeps cluster registrations unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "dbaas-system";

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            auth: AuthConfig::default(),
            body_limit: 1024 * 1024,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            registration: RegistrationPolicy::default(),
        }
    }
}

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
}

/// The router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.body_limit;
    routes::Registry::build()
        .router
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A server running in this process; stops when dropped.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
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

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
    });
    let mut tasks = state.stores.start_watches(&client);
    let loading = state.clone();
    tasks.push(tokio::spawn(async move { loading.clusters.load().await }));
    let app = router(state.clone());
    tasks.push(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "HTTP server stopped");
        }
    }));
    Ok(RunningServer { addr, state, tasks })
}
