//! `dbaas-operator`: runs the controllers against the cluster of the current
//! kubeconfig, or the in-cluster config when deployed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dbaas_operator::claim::ClaimsConfig;
use dbaas_operator::engine::allowlist::OlmAllowlist;
use dbaas_operator::leader::{self, LeaseConfig};
use dbaas_operator::metrics::{self, Metrics};
use dbaas_operator::preflight;
use dbaas_operator::server::endpoint::ConnectTo;
use dbaas_operator::{OperatorConfig, run};
use dbaas_sql::PasswordPolicy;
use futures::FutureExt;
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Watch only these namespaces, comma-separated or repeated (OLM's
    /// `olm.targetNamespaces` form); unset or empty: all namespaces. With a
    /// list, the operator needs Roles in those namespaces only.
    #[arg(long, env = "DBAAS_WATCH_NAMESPACE", value_delimiter = ',')]
    namespace: Vec<String>,
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
    /// Elect one leader among the replicas with a Lease; the others stand by.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, env = "DBAAS_LEADER_ELECT")]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: --namespace, else the pod's
    /// namespace from POD_NAMESPACE, else `default`).
    #[arg(long, env = "DBAAS_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(
        long,
        default_value = "dbaas-operator",
        env = "DBAAS_LEADER_ELECTION_ID"
    )]
    leader_election_id: String,
    /// Seconds a Lease stays with a leader that stopped renewing.
    #[arg(long, default_value_t = 15, env = "DBAAS_LEASE_DURATION_SECONDS")]
    lease_duration_seconds: u64,
    /// Seconds a leader keeps leading without a successful renewal.
    #[arg(long, default_value_t = 10, env = "DBAAS_LEASE_RENEW_DEADLINE_SECONDS")]
    lease_renew_deadline_seconds: u64,
    /// Check every permission the operator needs before starting; a missing
    /// required one stops it with the command that grants it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "DBAAS_PREFLIGHT")]
    preflight: bool,
    /// The operator's ServiceAccount as NAMESPACE:NAME, for the preflight's
    /// grant commands.
    #[arg(
        long,
        default_value = "dbaas-system:dbaas-operator",
        env = "DBAAS_SERVICE_ACCOUNT"
    )]
    service_account: String,
    /// Seconds between renewals, and between tries of a standby.
    #[arg(long, default_value_t = 2, env = "DBAAS_LEASE_RETRY_PERIOD_SECONDS")]
    lease_retry_period_seconds: u64,
    /// What DatabaseEngines may install through OLM, as YAML or JSON:
    /// `{packages: [NAME...], catalogs: [{name: CATALOGSOURCE, namespace: NS}...],
    /// installModes: [OwnNamespace|AllNamespaces...]}` (every key required; it
    /// replaces the default). Unset or empty: the engine operators'
    /// packages (cloudnative-pg, percona-xtradb-cluster-operator,
    /// percona-server-mongodb-operator, mariadb-operator) from
    /// olm/operatorhubio-catalog,
    /// OwnNamespace only.
    #[arg(long, value_name = "YAML", env = "DBAAS_OLM_ALLOWLIST")]
    olm_allowlist: Option<String>,
    /// A file holding the OLM allowlist (as --olm-allowlist), read at start;
    /// --olm-allowlist wins when both are set.
    #[arg(long, value_name = "PATH", env = "DBAAS_OLM_ALLOWLIST_FILE")]
    olm_allowlist_file: Option<String>,
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
    // The packaged manifests always set DBAAS_WATCH_NAMESPACE; OLM sets it
    // from the OperatorGroup, empty for all namespaces.
    let namespaces = watch_namespaces(&args.namespace)?;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    // A broken allowlist stops the operator at start, before it installs
    // anything.
    let olm_allowlist = OlmAllowlist::from_config(
        args.olm_allowlist.as_deref(),
        args.olm_allowlist_file.as_deref(),
    )?;
    tracing::info!("OLM allowlist: {}", olm_allowlist.summary());
    let client = kube::Client::try_default().await?;
    if args.preflight {
        preflight::check_at_start(&client, &namespaces, &args.service_account).await?;
    }
    let metrics = Arc::new(Metrics::default());
    let config = OperatorConfig {
        namespaces,
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
        olm_allowlist,
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
    let election = args.leader_elect.then(|| {
        let namespace = args
            .leader_election_namespace
            .or_else(|| config.namespaces.first().cloned())
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .unwrap_or_else(|| "default".to_owned());
        LeaseConfig {
            lease_duration: Duration::from_secs(args.lease_duration_seconds),
            renew_deadline: Duration::from_secs(args.lease_renew_deadline_seconds),
            retry_period: Duration::from_secs(args.lease_retry_period_seconds),
            ..LeaseConfig::new(namespace, args.leader_election_id, identity())
        }
    });
    let serving = metrics::serve(args.metrics_addr, metrics.clone(), shutdown.clone());
    let operator = lead_and_run(client, config, election, metrics, shutdown);
    tokio::pin!(operator);
    tokio::select! {
        // A metrics endpoint that cannot bind stops the operator at start.
        served = serving => {
            served?;
            operator.await?;
        }
        led = &mut operator => led?,
    }
    Ok(())
}

/// The namespaces to watch, without blanks and repeats; each must be a
/// namespace name.
fn watch_namespaces(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut namespaces: Vec<String> = Vec::new();
    for namespace in given.iter().map(|ns| ns.trim()).filter(|ns| !ns.is_empty()) {
        if !dbaas_api::common::is_dns_label(namespace) {
            anyhow::bail!(
                "--namespace: {namespace:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
            );
        }
        if !namespaces.iter().any(|known| known == namespace) {
            namespaces.push(namespace.to_owned());
        }
    }
    Ok(namespaces)
}

/// This replica's name in the Lease: the pod's name, else host and pid.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        format!("{host}-{}", std::process::id())
    })
}

/// Runs the controllers, after winning the election when there is one.
/// Losing the Lease stops them and returns an error, so the process exits
/// and comes back as a standby.
async fn lead_and_run(
    client: kube::Client,
    config: OperatorConfig,
    election: Option<LeaseConfig>,
    metrics: Arc<Metrics>,
    shutdown: futures::future::Shared<impl std::future::Future<Output = ()> + Send + 'static>,
) -> anyhow::Result<()> {
    let Some(election) = election else {
        metrics.leader.set(1);
        run(client, config, shutdown).await;
        return Ok(());
    };
    let gauge = metrics.leader.clone();
    let leadership = tokio::select! {
        led = leader::acquire(client.clone(), election, move |leading| {
            gauge.set(i64::from(leading));
        }) => led?,
        () = shutdown.clone() => return Ok(()),
    };
    let lost = leadership.lost();
    let stop = async move {
        tokio::select! {
            () = shutdown => {},
            () = lost => {},
        }
    };
    run(client, config, stop).await;
    if leadership.is_lost() {
        anyhow::bail!("lost the leader Lease; exiting so that a restart stands by");
    }
    leadership.release().await;
    Ok(())
}
