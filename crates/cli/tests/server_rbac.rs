//! The API server's packaged RBAC is enough: the server runs as the
//! `dbaas-server` ServiceAccount bound to exactly the generated ClusterRole
//! (nothing else), syncs its caches (list/watch of every kind), and serves
//! a caller's create (TokenReview, SubjectAccessReview, impersonation of a
//! ServiceAccount with its groups, uid and extras).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_api::manifests::{self, InstallOptions, SERVER_NAME, Settings};
use dbaas_cli::install::{Applier, reference};
use dbaas_server::ServerConfig;
use dbaas_testkit::accounts::{namespaced_user, service_account_token};
use dbaas_testkit::{TestNamespace, shared};
use kube::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

/// The control plane's kubeconfig with its user replaced by `token`.
async fn config_with_token(token: &str) -> kube::Config {
    let admin = Kubeconfig::read_from(shared().kubeconfig()).unwrap();
    let mut raw = serde_json::to_value(&admin).unwrap();
    for user in raw["users"].as_array_mut().unwrap() {
        user["user"] = json!({"token": token});
    }
    let kubeconfig: Kubeconfig = serde_json::from_value(raw).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_api_server_runs_with_its_packaged_cluster_role_alone() {
    let admin = shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "server-rbac").await.unwrap();
    let settings = Settings::from_options(&InstallOptions {
        namespace: ns.name.clone(),
        ..InstallOptions::default()
    });
    // The ServiceAccount, its ClusterRole, Role and bindings, as packaged.
    let mut applier = Applier::new(admin.clone());
    for object in manifests::server_objects(&settings)
        .iter()
        .filter(|o| o["kind"] != "Deployment" && o["kind"] != "Service")
    {
        applier
            .apply(object)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", reference(object)));
    }
    let token = service_account_token(&admin, &ns.name, SERVER_NAME)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(
        config_with_token(&token).await,
        listener,
        // Registrations of other clusters are Secrets in its own
        // namespace, read at start with the packaged Role.
        &ServerConfig {
            namespace: ns.name.clone(),
            ..ServerConfig::plain_http()
        },
    )
    .unwrap();
    server
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("the caches sync with list/watch from the packaged role");

    let caller = namespaced_user(
        &admin,
        &ns.name,
        "writer",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get", "list", "create"]}]),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/namespaces/{}/databaseclusters",
        server.url(),
        ns.name
    );
    let body = json!({
        "metadata": {"name": "orders"},
        "spec": {"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}},
    });
    let response = http
        .post(&url)
        .bearer_auth(&caller)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, reqwest::StatusCode::CREATED, "{answer}");
    // Written through impersonation: without `impersonate` the API
    // server would have refused the server's request.
    let clusters: Api<DatabaseCluster> = ns.api();
    assert!(clusters.get_opt("orders").await.unwrap().is_some());

    // A token the API server rejects gets 401, through the same TokenReview.
    let response = http
        .get(&url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
}
