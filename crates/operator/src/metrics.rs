//! Prometheus metrics, served on `/metrics` with `/healthz`. Labels are
//! bounded: reasons are fixed CamelCase words, never a DSN, a name or a raw
//! error text.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One bounded `reason` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// The controller a series is about (cluster, engine, server, claim, ops).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: &'static str,
}

/// A controller and the bounded reason of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerError {
    pub controller: &'static str,
    pub reason: &'static str,
}

/// One of our kinds.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// A DatabaseCluster phase (a fixed set of words).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

/// Whether a reconcile sent the engine objects to the API server
/// (`applied`) or found them holding its last apply already (`unchanged`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyResult {
    pub result: &'static str,
}

/// A reconcile error's bounded label: a fixed word per kind of failure,
/// never the error's text.
pub trait ErrorReason {
    fn reason(&self) -> &'static str;
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// What every controller does, by controller.
#[derive(Debug)]
pub struct ControllerMetrics {
    reconciles: Family<ControllerLabel, Counter>,
    errors: Family<ControllerError, Counter>,
    duration: HistogramFamily<ControllerLabel>,
    in_flight: Family<ControllerLabel, Gauge>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(reconcile_histogram),
            in_flight: Family::default(),
        }
    }
}

/// Takes a reconcile off the in-flight gauge however it ends (also when
/// its future is dropped at shutdown).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ControllerMetrics {
    /// Runs one reconcile of `controller`, counting it, its time and, when
    /// it fails, its reason.
    pub async fn instrument<T, E: ErrorReason>(
        &self,
        controller: &'static str,
        reconcile: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let label = ControllerLabel { controller };
        let gauge = self.in_flight.get_or_create(&label).clone();
        gauge.inc();
        let _in_flight = InFlight(gauge);
        let started = std::time::Instant::now();
        let result = reconcile.await;
        self.duration
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        self.reconciles.get_or_create(&label).inc();
        if let Err(err) = &result {
            self.errors
                .get_or_create(&ControllerError {
                    controller,
                    reason: err.reason(),
                })
                .inc();
        }
        result
    }
}

/// Refreshes gauges that are read off the watch caches at scrape time.
type OnScrape = Box<dyn Fn(&Metrics) + Send + Sync>;

/// DatabaseClaim metrics.
#[derive(Debug)]
pub struct ClaimMetrics {
    /// Claims whose first credentials were published (database, owner and
    /// logins made, a login proven, the Secret written).
    pub users_created: Counter,
    /// Secrets switched to new credentials, by why.
    pub rotations: Family<Reason, Counter>,
    /// Claim reconciles that could not finish, by why.
    pub errors: Family<Reason, Counter>,
    /// Seconds the pass that published a claim's first Secret took (server
    /// lookup, DDL, login check, Secret write).
    pub provision_seconds: Histogram,
    /// Seconds a rotation took (new password, login test, Secret write).
    pub rotation_seconds: Histogram,
}

impl Default for ClaimMetrics {
    fn default() -> Self {
        Self {
            users_created: Counter::default(),
            rotations: Family::default(),
            errors: Family::default(),
            provision_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            rotation_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        }
    }
}

/// Every metric of the operator, registered once.
pub struct Metrics {
    registry: Registry,
    pub claims: Arc<ClaimMetrics>,
    pub controllers: ControllerMetrics,
    /// Objects in the watch caches, by kind.
    pub objects: Family<KindLabel, Gauge>,
    /// DatabaseClusters by phase.
    pub cluster_phases: Family<PhaseLabel, Gauge>,
    /// Whether the controllers' watch caches have their first list.
    pub caches_synced: std::sync::atomic::AtomicBool,
    on_scrape: std::sync::Mutex<Vec<OnScrape>>,
    /// 1 while this replica holds the leader Lease (or runs without
    /// election), 0 while it stands by.
    pub leader: Gauge,
    /// Engine-object applies sent and skipped as unchanged.
    pub engine_applies: Family<ApplyResult, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let claims = Arc::new(ClaimMetrics::default());
        let mut registry = Registry::with_prefix("dbaas");
        let sub = registry.sub_registry_with_prefix("claim");
        sub.register(
            "users_created",
            "Claims whose first credentials were published",
            claims.users_created.clone(),
        );
        sub.register(
            "rotations",
            "Claim Secrets switched to new credentials, by reason",
            claims.rotations.clone(),
        );
        sub.register(
            "errors",
            "Claim reconciles that could not finish, by reason",
            claims.errors.clone(),
        );
        sub.register(
            "provision_duration_seconds",
            "Time of the pass that published a claim's first Secret",
            claims.provision_seconds.clone(),
        );
        sub.register(
            "rotation_duration_seconds",
            "Time a password rotation took",
            claims.rotation_seconds.clone(),
        );
        let controllers = ControllerMetrics::default();
        registry.register(
            "reconciles",
            "Reconciles run, by controller",
            controllers.reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed and will be retried, by controller and reason",
            controllers.errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time of one reconcile, by controller",
            controllers.duration.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconciles running now, by controller (kube-runtime does not expose its queue; this is the busy part of it)",
            controllers.in_flight.clone(),
        );
        let objects = Family::<KindLabel, Gauge>::default();
        registry.register(
            "objects",
            "Objects in the operator's watch caches, by kind",
            objects.clone(),
        );
        let cluster_phases = Family::<PhaseLabel, Gauge>::default();
        registry.register(
            "cluster_phase",
            "DatabaseClusters by phase",
            cluster_phases.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads (holds the Lease, or runs without election), 0 while it stands by",
            leader.clone(),
        );
        let engine_applies = Family::<ApplyResult, Counter>::default();
        registry.register(
            "engine_applies",
            "Reconciles that applied the engine objects (applied) or found them holding the last apply (unchanged)",
            engine_applies.clone(),
        );
        Self {
            engine_applies,
            registry,
            claims,
            controllers,
            objects,
            cluster_phases,
            caches_synced: std::sync::atomic::AtomicBool::new(false),
            on_scrape: std::sync::Mutex::new(Vec::new()),
            leader,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Runs `refresh` before every scrape, to read gauges off caches. The
    /// object and phase gauges start each scrape at zero and every hook adds
    /// its caches' counts (one set of caches per watched namespace).
    pub fn on_scrape(&self, refresh: impl Fn(&Metrics) + Send + Sync + 'static) {
        if let Ok(mut hooks) = self.on_scrape.lock() {
            hooks.push(Box::new(refresh));
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        // Scrapes take turns: one scrape's zeroing must not show in another's
        // text.
        let hooks = self.on_scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.objects.clear();
        self.cluster_phases.clear();
        for refresh in hooks.iter() {
            refresh(self);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            "encoding failed".to_owned(),
        ),
    }
}

/// Ready when this replica stands by (nothing to serve, and a rollout must
/// not wait for it) or leads with its watch caches synced; 503 while a
/// leader's caches are still loading.
async fn readyz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    let leading = metrics.leader.get() == 1;
    let synced = metrics
        .caches_synced
        .load(std::sync::atomic::Ordering::Acquire);
    let (code, status) = match (leading, synced) {
        (false, _) => (StatusCode::OK, "standby"),
        (true, true) => (StatusCode::OK, "ready"),
        (true, false) => (StatusCode::SERVICE_UNAVAILABLE, "caches-syncing"),
    };
    let body = serde_json::json!({
        "status": status,
        "role": if leading { "leader" } else { "standby" },
        "cachesSynced": synced,
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(metrics);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_metrics_are_exposed_with_bounded_labels() {
        let metrics = Metrics::default();
        metrics.claims.users_created.inc();
        metrics
            .claims
            .rotations
            .get_or_create(&Reason { reason: "Period" })
            .inc();
        metrics.claims.rotation_seconds.observe(0.02);
        let text = metrics.encode().unwrap();
        assert!(text.contains("dbaas_claim_users_created_total 1"), "{text}");
        assert!(
            text.contains("dbaas_claim_rotations_total{reason=\"Period\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("dbaas_claim_rotation_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn every_series_the_dashboard_queries_is_exported() {
        let metrics = Metrics::default();
        // Give every family one series, so each shows in the text.
        metrics.claims.users_created.inc();
        metrics
            .claims
            .rotations
            .get_or_create(&Reason { reason: "Period" })
            .inc();
        metrics
            .claims
            .errors
            .get_or_create(&Reason { reason: "Auth" })
            .inc();
        metrics.claims.provision_seconds.observe(0.1);
        metrics.claims.rotation_seconds.observe(0.1);
        let label = ControllerLabel {
            controller: "cluster",
        };
        metrics.controllers.reconciles.get_or_create(&label).inc();
        metrics
            .controllers
            .duration
            .get_or_create(&label)
            .observe(0.1);
        metrics.controllers.in_flight.get_or_create(&label).set(0);
        metrics
            .controllers
            .errors
            .get_or_create(&ControllerError {
                controller: "cluster",
                reason: "apply",
            })
            .inc();
        // The cache gauges are refilled at each scrape by every scope's hook.
        for _scope in 0..2 {
            metrics.on_scrape(|metrics| {
                metrics
                    .objects
                    .get_or_create(&KindLabel {
                        kind: "DatabaseCluster",
                    })
                    .inc_by(1);
                metrics
                    .cluster_phases
                    .get_or_create(&PhaseLabel {
                        phase: "Ready".to_owned(),
                    })
                    .inc_by(1);
            });
        }
        let text = metrics.encode().unwrap();
        // Summed over scopes, and not again at the next scrape.
        let again = metrics.encode().unwrap();
        for text in [&text, &again] {
            assert!(
                text.contains("dbaas_objects{kind=\"DatabaseCluster\"} 2"),
                "{text}"
            );
        }
        let dashboard = include_str!("../../../deploy/grafana/dbaas-operator.json");
        let queried: std::collections::BTreeSet<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("dbaas_"))
            .collect();
        assert!(queried.len() >= 10, "{queried:?}");
        for series in queried {
            assert!(
                text.lines().any(|line| line.starts_with(series)),
                "the dashboard queries {series}, which the operator does not export:\n{text}"
            );
        }
    }
}
