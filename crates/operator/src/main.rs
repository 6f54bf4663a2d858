//! `dbaas-operator`: runs the controllers against the cluster of the current
//! kubeconfig, or the in-cluster config when deployed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dbaas_operator::claim::ClaimsConfig;
use dbaas_operator::metrics::{self, Metrics};
use dbaas_operator::server::endpoint::ConnectTo;
use dbaas_operator::{OperatorConfig, run};
use dbaas_sql::PasswordPolicy;
use futures::FutureExt;
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
    /// Address of the /metrics and /healthz endpoint.
    #[arg(long, default_value = "0.0.0.0:8080", env = "DBAAS_METRICS_ADDR")]
    metrics_addr: SocketAddr,
    /// Length of generated claim passwords (15..=99).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u16).range(15..=99), env = "DBAAS_PASSWORD_MIN_LENGTH")]
    password_min_length: u16,
    /// Generated passwords mix lower and upper case, digits and symbols.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "DBAAS_PASSWORD_COMPLEXITY")]
    password_complexity: bool,
    /// Rotation period of claims that set none, in minutes (60..=1440).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(60..=1440), env = "DBAAS_ROTATION_PERIOD_MINUTES")]
    rotation_period_minutes: u64,
    /// Seconds the login apps used before a rotation stays valid after it:
    /// the kubelet's Secret refresh plus the apps' reload.
    #[arg(long, default_value_t = 300, env = "DBAAS_ROTATION_GRACE_SECONDS")]
    rotation_grace_seconds: u64,
    /// Seconds between probes of each DatabaseServer.
    #[arg(long, default_value_t = 60, env = "DBAAS_SERVER_CHECK_INTERVAL")]
    server_check_interval: u64,
    /// Dial HOST2:PORT2 for database servers at HOST:PORT (HOST:PORT=HOST2:PORT2),
    /// for an operator outside the cluster; repeatable.
    #[arg(long = "connect-to", value_name = "HOST:PORT=HOST2:PORT2")]
    connect_to: Vec<ConnectTo>,
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
    let metrics = Arc::new(Metrics::default());
    let config = OperatorConfig {
        namespace: args.namespace,
        concurrency: args.concurrency,
        detection_interval: Duration::from_secs(args.detection_interval),
        claims: ClaimsConfig {
            password: PasswordPolicy {
                min_length: usize::from(args.password_min_length),
                complexity: args.password_complexity,
            },
            rotation_period: Duration::from_secs(args.rotation_period_minutes * 60),
            rotation_grace: Duration::from_secs(args.rotation_grace_seconds),
            connect_to: args.connect_to,
        },
        server_check_interval: Duration::from_secs(args.server_check_interval),
        metrics: metrics.clone(),
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
    let shutdown = shutdown.shared();
    let serving = metrics::serve(args.metrics_addr, metrics, shutdown.clone());
    let operator = run(client, config, shutdown);
    tokio::pin!(operator);
    tokio::select! {
        // A metrics endpoint that cannot bind stops the operator at start.
        served = serving => {
            served?;
            operator.await;
        }
        () = &mut operator => {}
    }
    Ok(())
}
