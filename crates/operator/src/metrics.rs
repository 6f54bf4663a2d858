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
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub claims: Arc<ClaimMetrics>,
    /// 1 while this replica holds the leader Lease (or runs without
    /// election), 0 while it stands by.
    pub leader: Gauge,
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
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica leads (holds the Lease, or runs without election), 0 while it stands by",
            leader.clone(),
        );
        Self {
            registry,
            claims,
            leader,
        }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
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

/// Serves `/metrics` and `/healthz` on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
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
}
