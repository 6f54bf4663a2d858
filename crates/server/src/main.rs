//! `dbaas-server`: serves the REST API against the cluster of the current
//! kubeconfig (or the in-cluster config when deployed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dbaas_server::{
    AuthConfig, Limits, RegistrationPolicy, RemoteIdentity, ServerConfig, TlsFiles, Transport,
};

#[derive(Parser, Debug)]
#[command(name = "dbaas-server", version, about = "The dbaas-operator REST API")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "DBAAS_SERVER_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// PEM certificate (chain) to serve HTTPS with; read again when it
    /// changes. Needs --tls-key-file.
    #[arg(
        long,
        env = "DBAAS_TLS_CERT_FILE",
        requires = "tls_key_file",
        value_name = "FILE"
    )]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(
        long,
        env = "DBAAS_TLS_KEY_FILE",
        requires = "tls_cert_file",
        value_name = "FILE"
    )]
    tls_key_file: Option<PathBuf>,
    /// Seconds between two reads of the certificate and key files.
    #[arg(long, default_value_t = 5)]
    tls_reload_seconds: u64,
    /// Serve plain HTTP: bearer tokens cross the network readable. Only
    /// behind a TLS-terminating proxy on the same host, or in tests.
    /// Without it and without --tls-cert-file the server does not start.
    #[arg(long, conflicts_with_all = ["tls_cert_file", "tls_key_file"])]
    insecure_plain_http: bool,
    /// Audiences bearer tokens must be for, comma-separated (e.g.
    /// `dbaas-server`): TokenReviews ask for them and an answer must name
    /// one. Empty (default): the API server's own audiences, i.e. the
    /// tokens kubectl uses are accepted.
    #[arg(long, value_delimiter = ',')]
    token_audiences: Vec<String>,
    /// Average TokenReviews a second for tokens not in the cache; more get 429.
    #[arg(long, default_value_t = dbaas_server::auth::DEFAULT_TOKEN_REVIEWS_PER_SECOND)]
    token_review_qps: f64,
    /// TokenReviews of new tokens allowed at once after a quiet spell.
    #[arg(long, default_value_t = dbaas_server::auth::DEFAULT_TOKEN_REVIEW_BURST)]
    token_review_burst: u32,
    /// Seconds a request may take; then 504.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout_seconds: u64,
    /// Requests handled at once; more get 503 with Retry-After.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Most items in one list page (a larger or no `limit` gets this many
    /// and a `continue` token).
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_MAX_PAGE_SIZE)]
    max_page_size: usize,
    /// Connections held at once (handshaking and idle ones included); more
    /// wait to be accepted.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Watch streams (`?watch=true`) open at once; more get 503.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_MAX_WATCHES)]
    max_watches: usize,
    /// Watch streams one caller (user name) may hold open; more get 429.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_MAX_WATCHES_PER_CALLER)]
    max_watches_per_caller: usize,
    /// Seconds a watch stream lasts; then it ends and the client
    /// reconnects, authenticated and authorized again.
    #[arg(long, default_value_t = dbaas_server::limits::DEFAULT_WATCH_LIFETIME.as_secs())]
    watch_lifetime_seconds: u64,
    /// Seconds TokenReview and SubjectAccessReview answers are reused.
    #[arg(long, default_value_t = 10)]
    auth_cache_seconds: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// The server's own namespace: cluster registrations are Secrets here.
    #[arg(long, env = "POD_NAMESPACE", default_value = dbaas_server::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Let registered clusters point at loopback addresses (`localhost`),
    /// use plain `http://` or `insecure-skip-tls-verify` (and everything
    /// --allow-private-cluster-addresses allows). For development and
    /// tests; link-local, metadata, unspecified and multicast addresses
    /// stay refused.
    #[arg(long)]
    allow_insecure_cluster_urls: bool,
    /// Let registered clusters point at private addresses (10/8,
    /// 172.16/12, 192.168/16, 100.64/10, fc00::/7) and in-cluster Service
    /// names (`*.svc`, `*.cluster.local`).
    #[arg(long)]
    allow_private_cluster_addresses: bool,
    /// The most Kubernetes clusters that may be registered.
    #[arg(long, default_value_t = dbaas_server::cluster_url::DEFAULT_MAX_REGISTRATIONS)]
    max_cluster_registrations: usize,
    /// Prefix of a caller's user name on registered clusters (like
    /// kube-apiserver's --oidc-username-prefix); remote RBAC names
    /// e.g. `dbaas:system:serviceaccount:team-a:ci`. Not empty, not `system:`.
    #[arg(long, default_value = dbaas_server::auth::DEFAULT_REMOTE_PREFIX)]
    remote_username_prefix: String,
    /// Prefix of a caller's groups on registered clusters; the management
    /// cluster's `system:` groups are never sent there.
    #[arg(long, default_value = dbaas_server::auth::DEFAULT_REMOTE_PREFIX)]
    remote_groups_prefix: String,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let transport = match (args.tls_cert_file, args.tls_key_file) {
        (Some(cert), Some(key)) => Transport::Tls(TlsFiles {
            reload_interval: Duration::from_secs(args.tls_reload_seconds.max(1)),
            ..TlsFiles::new(cert, key)
        }),
        _ if args.insecure_plain_http => {
            tracing::warn!(
                "serving plain HTTP (--insecure-plain-http): bearer tokens are readable on the network"
            );
            Transport::PlainHttp
        }
        _ => anyhow::bail!(dbaas_server::NO_TRANSPORT),
    };
    let token_audiences: Vec<String> = args
        .token_audiences
        .into_iter()
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
        .collect();
    let config = ServerConfig {
        auth: AuthConfig {
            cache_ttl: Duration::from_secs(args.auth_cache_seconds),
            remote_identity: RemoteIdentity {
                username_prefix: args.remote_username_prefix,
                groups_prefix: args.remote_groups_prefix,
            },
            token_audiences,
            token_reviews_per_second: args.token_review_qps,
            token_review_burst: args.token_review_burst,
            ..AuthConfig::default()
        },
        body_limit: args.body_limit,
        namespace: args.namespace,
        registration: RegistrationPolicy {
            allow_insecure_urls: args.allow_insecure_cluster_urls,
            allow_private_addresses: args.allow_private_cluster_addresses,
            max_registrations: args.max_cluster_registrations,
        },
        transport,
        limits: Limits {
            request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
            max_in_flight: args.max_in_flight.max(1),
            max_page_size: args.max_page_size.max(1),
            max_connections: args.max_connections.max(1),
            max_watches: args.max_watches.max(1),
            max_watches_per_caller: args.max_watches_per_caller.max(1),
            watch_lifetime: Duration::from_secs(args.watch_lifetime_seconds.max(1)),
        },
    };
    // Refuse bad prefixes before anything else.
    config
        .auth
        .remote_identity
        .check()
        .map_err(anyhow::Error::msg)?;
    let kube_config = kube::Config::infer()
        .await
        .context("loading the Kubernetes configuration")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let server = dbaas_server::start(kube_config, listener, &config)?;
    tracing::info!(addr = %server.addr, "serving; /readyz turns 200 once the caches are synced");
    // Ctrl-C, or SIGTERM (how Kubernetes stops a pod).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("stopping");
    drop(server);
    Ok(())
}
