//! Before the watch caches have their first list, the server says so: 503
//! on /readyz, and no list is answered from an empty cache.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::time::Duration;

use serde_json::Value;

#[tokio::test]
async fn not_ready_until_the_caches_are_synced() {
    // An API server that is not there: the watches never sync.
    let kube_config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(
        kube_config,
        listener,
        &dbaas_server::ServerConfig::plain_http(),
    )
    .unwrap();
    assert!(
        server
            .wait_synced(Duration::from_millis(300))
            .await
            .is_err()
    );

    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["reason"], "NotReady");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("DatabaseCluster"),
        "{body}"
    );

    let health = http
        .get(format!("{}/healthz", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);

    // Authentication cannot reach the API server either: a 502 with our
    // error body, not a hang or a 500.
    let list = http
        .get(format!("{}/v1/namespaces/a/databaseclusters", server.url()))
        .bearer_auth("token")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), reqwest::StatusCode::BAD_GATEWAY);
    let body: Value = list.json().await.unwrap();
    assert_eq!(body["reason"], "UpstreamUnavailable");
}
