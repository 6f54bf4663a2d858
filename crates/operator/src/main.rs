//! `dbaas-operator`: runs the controllers against the cluster of the current
//! kubeconfig, or the in-cluster config when deployed.

use clap::Parser;
use dbaas_operator::{OperatorConfig, run};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "DBAAS_WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Reconciles running at once (0: unbounded).
    #[arg(long, default_value_t = 16, env = "DBAAS_CONCURRENCY")]
    concurrency: u16,
    /// Seconds between looks for engine operators (CRDs, Deployments).
    #[arg(long, default_value_t = 30, env = "DBAAS_DETECTION_INTERVAL")]
    detection_interval: u64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "DBAAS_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// Engine resources (the CloudNativePG Cluster type alone has hundreds of
/// nested fields) are deserialised on worker threads: give them room.
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK_BYTES)
        .build()?
        .block_on(operate())
}

async fn operate() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    let client = kube::Client::try_default().await?;
    let config = OperatorConfig {
        namespace: args.namespace,
        concurrency: args.concurrency,
        detection_interval: std::time::Duration::from_secs(args.detection_interval),
    };
    let shutdown = async {
        // Ctrl-C or SIGTERM from the kubelet.
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(err) => {
                    tracing::error!("cannot listen for SIGTERM: {err}");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    };
    run(client, config, shutdown).await;
    Ok(())
}
