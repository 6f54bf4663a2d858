//! `dbaas-server`: serves the REST API against the cluster of the current
//! kubeconfig (or the in-cluster config when deployed).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dbaas_server::{AuthConfig, ServerConfig};

#[derive(Parser, Debug)]
#[command(name = "dbaas-server", version, about = "The dbaas-operator REST API")]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "DBAAS_SERVER_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Seconds TokenReview and SubjectAccessReview answers are reused.
    #[arg(long, default_value_t = 10)]
    auth_cache_seconds: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    body_limit: usize,
    /// The server's own namespace: cluster registrations are Secrets here.
    #[arg(long, env = "POD_NAMESPACE", default_value = dbaas_server::DEFAULT_NAMESPACE)]
    namespace: String,
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
    let kube_config = kube::Config::infer()
        .await
        .context("loading the Kubernetes configuration")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let config = ServerConfig {
        auth: AuthConfig {
            cache_ttl: Duration::from_secs(args.auth_cache_seconds),
            ..AuthConfig::default()
        },
        body_limit: args.body_limit,
        namespace: args.namespace,
    };
    let server = dbaas_server::start(kube_config, listener, &config)?;
    tracing::info!(addr = %server.addr, "serving; /readyz turns 200 once the caches are synced");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(server);
    Ok(())
}
