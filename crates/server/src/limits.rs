//! What one request may cost: at most [`Limits::max_in_flight`] requests
//! are handled at once (more are answered 503 `Overloaded` with
//! `Retry-After` at once, not queued), each for at most
//! [`Limits::request_timeout`] (then 504 `Timeout`), and list pages hold at
//! most [`Limits::max_page_size`] items (see [`crate::routes::ListQuery`]).
//! A watch stream counts against the request limits only until its headers
//! are sent; [`Limits::max_watches`] bounds the streams themselves.
//! `/healthz` and `/readyz` are outside the concurrency limit, so probes
//! do not fail (and restart the pod) because the server is busy.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The limits of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest a request may take (`--request-timeout-seconds`).
    pub request_timeout: Duration,
    /// Most requests handled at once (`--max-in-flight`).
    pub max_in_flight: usize,
    /// Most items in one list page (`--max-page-size`): a larger `limit`
    /// (and no `limit`) gets pages of this size and a `continue` token.
    pub max_page_size: usize,
    /// Most connections held at once (`--max-connections`), handshaking or
    /// idle ones included; more wait to be accepted.
    pub max_connections: usize,
    /// Most watch streams open at once (`--max-watches`); they hold no
    /// request slot while they stream.
    pub max_watches: usize,
    /// Most watch streams one caller (user name) may hold open
    /// (`--max-watches-per-caller`), so one tenant cannot take every slot.
    pub max_watches_per_caller: usize,
    /// Longest a watch stream lasts before the server ends it and the
    /// client reconnects, authorized anew (`--watch-lifetime-seconds`).
    pub watch_lifetime: Duration,
}

pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_IN_FLIGHT: usize = 400;
pub const DEFAULT_MAX_PAGE_SIZE: usize = 500;
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
pub const DEFAULT_MAX_WATCHES: usize = 1000;
pub const DEFAULT_MAX_WATCHES_PER_CALLER: usize = 32;
pub const DEFAULT_WATCH_LIFETIME: Duration = Duration::from_secs(300);

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_page_size: DEFAULT_MAX_PAGE_SIZE,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_watches: DEFAULT_MAX_WATCHES,
            max_watches_per_caller: DEFAULT_MAX_WATCHES_PER_CALLER,
            watch_lifetime: DEFAULT_WATCH_LIFETIME,
        }
    }
}

struct Enforced {
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

/// Probes are never shed.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

async fn enforce(State(limits): State<Arc<Enforced>>, request: Request, next: Next) -> Response {
    let _permit = if exempt(request.uri().path()) {
        None
    } else {
        match limits.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                return ApiError::Overloaded {
                    retry_after_seconds: 1,
                }
                .into_response();
            }
        }
    };
    match tokio::time::timeout(limits.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limits.timeout).into_response(),
    }
}

/// `router` with the concurrency limit and the request timeout.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>, limits: &Limits) -> Router<S> {
    let enforced = Arc::new(Enforced {
        timeout: limits.request_timeout,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
    });
    router.layer(axum::middleware::from_fn_with_state(enforced, enforce))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use axum::routing::get;
    use tokio::sync::Notify;

    /// A server whose `/slow` waits for `release`.
    async fn serve(limits: &Limits, release: Arc<Notify>) -> String {
        let router = Router::new()
            .route(
                "/slow",
                get(move || {
                    let release = release.clone();
                    async move {
                        release.notified().await;
                        "done"
                    }
                }),
            )
            .route("/fast", get(|| async { "fast" }))
            .route("/healthz", get(|| async { "ok" }));
        let app = apply(router, limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn requests_beyond_the_limit_are_shed_with_503() {
        let limits = Limits {
            max_in_flight: 2,
            ..Limits::default()
        };
        let release = Arc::new(Notify::new());
        let url = serve(&limits, release.clone()).await;
        let http = reqwest::Client::new();
        let slow: Vec<_> = (0..2)
            .map(|_| tokio::spawn(http.get(format!("{url}/slow")).send()))
            .collect();
        // Both slow requests hold their permits.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let answer = http.get(format!("{url}/fast")).send().await.unwrap();
            if answer.status() == 503 {
                assert_eq!(answer.headers()["retry-after"], "1");
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["reason"], "Overloaded");
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "never shed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Probes are not shed.
        let probe = http.get(format!("{url}/healthz")).send().await.unwrap();
        assert_eq!(probe.status(), 200);
        release.notify_waiters();
        for request in slow {
            assert_eq!(request.await.unwrap().unwrap().status(), 200);
        }
        let after = http.get(format!("{url}/fast")).send().await.unwrap();
        assert_eq!(after.status(), 200);
    }

    #[tokio::test]
    async fn slow_requests_time_out_with_504() {
        let limits = Limits {
            request_timeout: Duration::from_millis(100),
            ..Limits::default()
        };
        let url = serve(&limits, Arc::new(Notify::new())).await;
        let answer = reqwest::get(format!("{url}/slow")).await.unwrap();
        assert_eq!(answer.status(), 504);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["reason"], "Timeout");
        assert_eq!(
            reqwest::get(format!("{url}/fast")).await.unwrap().status(),
            200
        );
    }
}
