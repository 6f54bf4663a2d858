//! What an SRE watches: /metrics (reconciles, errors, durations, objects by
//! kind, clusters by phase), /readyz (caches synced, leader or standby) and
//! Kubernetes Events on the state changes of a cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbaas_api::DatabaseCluster;
use dbaas_operator::OperatorConfig;
use dbaas_operator::metrics::{self, Metrics};
use dbaas_testkit::TestNamespace;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on `addr`: (status code, body).
async fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Serves `metrics` on a free loopback port; returns the address.
async fn serve(metrics: Arc<Metrics>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    tokio::spawn(metrics::serve(addr, metrics, std::future::pending()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the metrics endpoint never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    addr.to_string()
}

/// A leading operator watching `ns`, its metrics served at the returned
/// address.
async fn observed_operator(
    client: &kube::Client,
    ns: &TestNamespace,
) -> (String, common::Operator) {
    let metrics = Arc::new(Metrics::default());
    metrics.leader.set(1);
    let addr = serve(metrics.clone()).await;
    let operator = common::start_operator_with(
        client,
        OperatorConfig {
            namespaces: vec![ns.name.clone()],
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            metrics,
            ..OperatorConfig::default()
        },
    );
    (addr, operator)
}

/// The value of the first series whose line starts with `series`.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

fn cluster(name: &str, version: &str) -> DatabaseCluster {
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql", "version": version}, "clusterSize": 1,
                 "storage": {"size": "1Gi"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn readiness_says_leader_standby_or_syncing() {
    let metrics = Arc::new(Metrics::default());
    let addr = serve(metrics.clone()).await;
    let (code, body) = get(&addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["role"], "standby");
    // A leader whose caches have not synced is not ready yet.
    metrics.leader.set(1);
    let (code, body) = get(&addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "caches-syncing"
    );
    assert_eq!(get(&addr, "/healthz").await.0, 200);
}

#[tokio::test]
async fn metrics_count_reconciles_objects_and_phases_and_events_tell_changes() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "observe").await.unwrap();
    let (addr, _operator) = observed_operator(&client, &ns).await;
    let clusters: Api<DatabaseCluster> = ns.api();
    clusters
        .create(&PostParams::default(), &cluster("good", "17.6"))
        .await
        .unwrap();
    clusters
        .create(&PostParams::default(), &cluster("refused", "99.1"))
        .await
        .unwrap();
    common::cluster_where(&clusters, "refused", "refused", |c| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "VersionNotOffered"))
    })
    .await;

    // Ready once the caches are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = get(&addr, "/readyz").await;
        if code == 200 {
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["status"],
                "ready"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Counted once a reconcile returns: poll until both clusters' first
    // reconciles are in.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (text, reconciles) = loop {
        let (code, text) = get(&addr, "/metrics").await;
        assert_eq!(code, 200);
        let reconciles =
            value_of(&text, "dbaas_reconciles_total{controller=\"cluster\"}").unwrap_or(0.0);
        if reconciles >= 2.0 {
            break (text, reconciles);
        }
        assert!(Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        value_of(
            &text,
            "dbaas_reconcile_duration_seconds_count{controller=\"cluster\"}"
        )
        .unwrap()
            >= reconciles,
        "{text}"
    );
    assert_eq!(
        value_of(&text, "dbaas_objects{kind=\"DatabaseCluster\"}"),
        Some(2.0),
        "{text}"
    );
    let phases: f64 = text
        .lines()
        .filter(|l| l.starts_with("dbaas_cluster_phase{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(
        phases, 2.0,
        "every cluster is counted under one phase: {text}"
    );
    assert!(text.contains("dbaas_reconciles_in_flight"), "{text}");
    assert_eq!(value_of(&text, "dbaas_leader"), Some(1.0), "{text}");

    // Events: the refusal as a Warning with its reason, the good cluster's
    // phase as a Normal event.
    let events: Api<Event> = ns.api();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        let about = |name: &str| -> Vec<(String, String)> {
            list.items
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
                .map(|e| {
                    (
                        e.type_.clone().unwrap_or_default(),
                        e.reason.clone().unwrap_or_default(),
                    )
                })
                .collect()
        };
        let refused = about("refused");
        let good = about("good");
        if refused.contains(&("Warning".into(), "VersionNotOffered".into()))
            && good.iter().any(|(t, _)| t == "Normal")
        {
            let reporter = list
                .items
                .iter()
                .find_map(|e| e.reporting_controller.clone());
            assert_eq!(reporter.as_deref(), Some(dbaas_operator::EVENT_REPORTER));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events: refused {refused:?}, good {good:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ns.delete().await.unwrap();
}

/// `dbaas_engine_applies_total{result}` off `addr`: (applied, unchanged).
async fn applies(addr: &str) -> (f64, f64) {
    let (_, text) = get(addr, "/metrics").await;
    let of = |result: &str| {
        value_of(
            &text,
            &format!("dbaas_engine_applies_total{{result=\"{result}\"}}"),
        )
        .unwrap_or(0.0)
    };
    (of("applied"), of("unchanged"))
}

/// Waits until the apply counters pass `check`.
async fn applies_until(addr: &str, what: &str, check: impl Fn(f64, f64) -> bool) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (applied, unchanged) = applies(addr).await;
        if check(applied, unchanged) {
            return (applied, unchanged);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: applied {applied}, unchanged {unchanged}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Engine status writes wake the cluster, but what was applied and still
/// holds is not sent again (each such no-op apply is a write request for
/// kube-apiserver); a spec edit by someone else, a relabel or a deletion of
/// the engine object is applied over at once.
#[tokio::test]
async fn an_engine_status_write_is_observed_without_applying_again() {
    use dbaas_api::cluster::ClusterPhase;
    use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
    use kube::api::{DeleteParams, Patch, PatchParams};

    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "noop-apply").await.unwrap();
    let (addr, _operator) = observed_operator(&client, &ns).await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    clusters
        .create(&PostParams::default(), &cluster("db", "17.6"))
        .await
        .unwrap();
    let cnpg = common::engine_object(&engines, "db", "the CNPG Cluster", |_| true).await;
    let image = cnpg.spec.image_name.clone().unwrap();
    let (applied, _) = applies_until(&addr, "first apply", |a, _| a >= 1.0).await;

    // CloudNativePG reports, twice: the cluster follows, nothing is applied.
    for ready in [0, 1] {
        common::write_engine_status(
            &engines,
            "db",
            "cloudnative-pg",
            json!({
                "phase": if ready == 1 { "Cluster in healthy state" } else { "Setting up primary" },
                "instances": 1, "readyInstances": ready, "image": image,
                "writeService": "db-rw", "currentPrimary": "db-1",
            }),
        )
        .await;
    }
    common::cluster_where(
        &clusters,
        "db",
        "Ready",
        common::in_phase(ClusterPhase::Ready),
    )
    .await;
    let (still, unchanged) = applies_until(&addr, "status writes observed", |_, u| u >= 1.0).await;
    assert_eq!(still, applied, "an engine status write caused a re-apply");
    assert!(unchanged >= 1.0);

    // Someone edits a field we own: it is applied over (and put back).
    engines
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": { "instances": 5 } })),
        )
        .await
        .unwrap();
    common::engine_object(&engines, "db", "instances put back", |c| {
        c.spec.instances == 1
    })
    .await;
    let (after_edit, _) = applies_until(&addr, "re-apply after an edit", |a, _| a > applied).await;

    // Someone removes our label (no generation moves): applied over.
    engines
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({ "metadata": { "labels": { "app.kubernetes.io/managed-by": null } } }),
            ),
        )
        .await
        .unwrap();
    common::engine_object(&engines, "db", "label put back", |c| {
        c.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("app.kubernetes.io/managed-by"))
    })
    .await;
    let (after_label, _) =
        applies_until(&addr, "re-apply after a relabel", |a, _| a > after_edit).await;

    // Someone deletes the engine object: it is made again.
    let uid = common::engine_object(&engines, "db", "present", |_| true)
        .await
        .metadata
        .uid;
    engines
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    common::engine_object(&engines, "db", "made again", move |c| c.metadata.uid != uid).await;
    applies_until(&addr, "re-apply after a deletion", |a, _| a > after_label).await;
    ns.delete().await.unwrap();
}
