//! A stored object our types cannot read (written before a validation rule
//! existed) must not keep the REST API unready or hide the other objects.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::time::Duration;

use dbaas_server::ServerConfig;
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::schema::{create_until_served, without_schema};
use dbaas_testkit::{ControlPlane, TestNamespace};
use serde_json::{Value, json};

fn cluster(name: &str, size: Value) -> Value {
    json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
        "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql"}, "clusterSize": size, "storage": {"size": "1Gi"}},
    })
}

#[tokio::test]
async fn a_malformed_object_is_left_out_and_the_rest_is_served() {
    // A control plane of its own: the test changes our CRDs.
    let plane = ControlPlane::start(&[dbaas_testkit::our_crds()]).unwrap();
    let admin = plane.client().await.unwrap();
    let ns = TestNamespace::create(&admin, "rest-malformed")
        .await
        .unwrap();
    let kind = ("dbaas.io", "DatabaseCluster", "databaseclusters");
    without_schema(&admin, "databaseclusters.dbaas.io", async || {
        create_until_served(&admin, &ns.name, kind, cluster("broken", json!("three"))).await
    })
    .await
    .unwrap();
    create_until_served(&admin, &ns.name, kind, cluster("good", json!(1)))
        .await
        .unwrap();

    let kube_config = plane.config().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(kube_config, listener, &ServerConfig::plain_http()).unwrap();
    server
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("the caches sync despite the malformed object");

    // A reader of the namespace's clusters sees the good one.
    let reader = "reader";
    let token = namespaced_user(
        &admin,
        &ns.name,
        reader,
        json!([{
            "apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get", "list"],
        }]),
    )
    .await
    .unwrap();
    let list: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/namespaces/{}/databaseclusters",
            server.url(),
            ns.name
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["good"], "{list}");
    drop(plane);
}
