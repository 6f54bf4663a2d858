//! Objects stored before today's validation existed (here: written while the
//! CRD had no schema) must not stop the operator from serving the others;
//! each one is marked `Valid=False, Malformed` and served once fixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use dbaas_api::{DatabaseClaim, DatabaseCluster};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_testkit::schema::{create_until_served, without_schema};
use dbaas_testkit::{ControlPlane, TestNamespace};
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

fn cluster(name: &str, size: Value) -> Value {
    json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
        "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql"}, "clusterSize": size, "storage": {"size": "1Gi"}},
    })
}

fn condition<'a>(conditions: Option<&'a Value>, type_: &str) -> Option<&'a Value> {
    conditions?.as_array()?.iter().find(|c| c["type"] == type_)
}

/// Waits until the object's raw JSON passes `check`.
async fn raw_where(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut last = Value::Null;
    while tokio::time::Instant::now() < deadline {
        if let Ok(object) = api.get(name).await {
            last = serde_json::to_value(&object).unwrap();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {name}: {what}; last seen: {last}");
}

#[tokio::test]
async fn malformed_objects_are_marked_and_do_not_stop_the_others() {
    // A control plane of its own: the test changes our CRDs.
    let plane =
        ControlPlane::start(&[dbaas_testkit::our_crds(), dbaas_testkit::upstream_crds()]).unwrap();
    let client = plane.client().await.unwrap();
    let ns = TestNamespace::create(&client, "malformed").await.unwrap();

    without_schema(&client, "databaseclusters.dbaas.io", async || {
        create_until_served(
            &client,
            &ns.name,
            ("dbaas.io", "DatabaseCluster", "databaseclusters"),
            cluster("broken", json!("three")),
        )
        .await
    })
    .await
    .unwrap();
    without_schema(&client, "databaseclaims.dbaas.io", async || {
        create_until_served(
            &client,
            &ns.name,
            ("dbaas.io", "DatabaseClaim", "databaseclaims"),
            json!({
                "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
                "metadata": {"name": "broken"},
                "spec": {"secretName": "broken-db", "type": "postgres", "username": "app",
                         "databaseName": "app", "minStorageGB": "lots"},
            }),
        )
        .await
    })
    .await
    .unwrap();
    // A well-formed cluster and claim beside them, written under the real
    // schema (it may take a moment to be served again).
    let clusters: Api<DatabaseCluster> = ns.api();
    let good: DatabaseCluster = serde_json::from_value(cluster("good", json!(1))).unwrap();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while let Err(err) = clusters.create(&PostParams::default(), &good).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "creating good: {err}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let claims: Api<DatabaseClaim> = ns.api();
    let good_claim: DatabaseClaim = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim", "metadata": {"name": "good"},
        "spec": {"secretName": "good-db", "type": "postgres", "username": "app", "databaseName": "app"},
    }))
    .unwrap();
    claims
        .create(&PostParams::default(), &good_claim)
        .await
        .unwrap();
    // The real schema is back: the malformed cluster reads back as stored.
    let raw_clusters: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<DatabaseCluster>(&()),
    );
    let stored = raw_clusters.get("broken").await.unwrap();
    assert_eq!(stored.data["spec"]["clusterSize"], "three");
    assert!(
        clusters.get("broken").await.is_err(),
        "our type cannot read it"
    );

    let _operator = common::start_operator(&client, &ns.name);

    // The good cluster is served: its CNPG Cluster exists and it is valid.
    let engines: Api<CnpgCluster> = ns.api();
    common::engine_object(&engines, "good", "the good cluster's CNPG Cluster", |_| {
        true
    })
    .await;
    common::cluster_where(&clusters, "good", "valid", |c| {
        c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Valid" && c.status == "True")
        })
    })
    .await;
    // The good claim is served too (no server here: it says so).
    let raw_claims: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns.name,
        &ApiResource::erase::<DatabaseClaim>(&()),
    );
    raw_where(&raw_claims, "good", "a Ready condition", |o| {
        condition(o.pointer("/status/conditions"), "Ready").is_some()
    })
    .await;

    // Each malformed object is marked, with the reason and the field.
    for (api, field) in [
        (&raw_clusters, "clusterSize"),
        (&raw_claims, "minStorageGB"),
    ] {
        let marked = raw_where(api, "broken", "a Malformed condition", |o| {
            condition(o.pointer("/status/conditions"), "Valid")
                .is_some_and(|c| c["status"] == "False" && c["reason"] == "Malformed")
        })
        .await;
        let message = condition(marked.pointer("/status/conditions"), "Valid").unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains("invalid type") && message.contains(field),
            "the message names what is wrong: {message}"
        );
    }
    assert!(
        engines.get("broken").await.is_err(),
        "nothing is built from a malformed cluster"
    );

    // Clusters created after the start are served as usual.
    let later: DatabaseCluster = serde_json::from_value(cluster("later", json!(1))).unwrap();
    clusters
        .create(&PostParams::default(), &later)
        .await
        .unwrap();
    common::engine_object(&engines, "later", "a later cluster's CNPG Cluster", |_| {
        true
    })
    .await;

    // The SRE fixes the malformed cluster: it is served like any other.
    raw_clusters
        .patch(
            "broken",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterSize": 1}})),
        )
        .await
        .unwrap();
    let fixed = common::engine_object(
        &engines,
        "broken",
        "the fixed cluster's CNPG Cluster",
        |_| true,
    )
    .await;
    assert_eq!(fixed.spec.instances, 1);
    common::cluster_where(&clusters, "broken", "valid once fixed", |c| {
        c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Valid" && c.status == "True")
        })
    })
    .await;
    drop(plane);
}
