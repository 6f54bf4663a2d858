//! The web console in Debian's Chromium (console/e2e/console.spec.ts),
//! against the real control plane and node: CloudNativePG runs the
//! PostgreSQL the wizard creates, our operator runs in this process, and
//! dbaas-server (with the console built in) serves on loopback. Nothing
//! here writes an engine status.
//!
//! Screenshots go to `$DBAAS_CONSOLE_SCREENSHOTS` when set (the README's
//! come from `DBAAS_CONSOLE_SCREENSHOTS=$PWD/docs/screenshots cargo test -p
//! dbaas-e2e --test console`), else under target/.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::time::Duration;

use dbaas_api::cluster::ClusterPhase;
use dbaas_api::ops::OpsPhase;
use dbaas_api::{DatabaseBackup, DatabaseCluster, DatabaseEngine, OpsRequest};
use dbaas_operator::{OperatorConfig, run};
use dbaas_server::{ServerConfig, Transport};
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::node::shared_node;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

const TEMPLATE: &str = "small";

/// Lets the admin user ask for the cluster's available resources (the
/// wizard's capacity check needs `list nodes`).
async fn may_list_nodes(admin: &Client, namespace: &str, user: &str) {
    let name = format!("{namespace}-{user}-nodes");
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let role = serde_json::from_value(json!({
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
    }))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let binding = serde_json::from_value(json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": user, "namespace": namespace}],
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_against_the_real_node() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    let node = shared_node();
    let cp = &node.control_plane;
    let admin = cp.client().await.expect("client");
    let ns = dbaas_testkit::TestNamespace::create(&admin, "console")
        .await
        .expect("namespace");
    let namespace = ns.name.clone();

    // Our operator, for this namespace.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(run(
        admin.clone(),
        OperatorConfig {
            namespaces: vec![namespace.clone()],
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            ..OperatorConfig::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));

    // The SRE's policy: the PostgreSQL images built here, and a template.
    let versions = node.assets.postgres_images();
    let newest = versions.keys().next_back().cloned().expect("an image");
    let engines: Api<DatabaseEngine> = ns.api();
    engines
        .patch(
            "postgresql",
            &PatchParams::apply("console-e2e").force(),
            &Patch::Apply(json!({
                "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
                "metadata": {"name": "postgresql"},
                "spec": {"type": "postgresql", "images": versions, "defaultVersion": newest},
            })),
        )
        .await
        .expect("the engine's images");
    let templates: Api<dbaas_api::DatabaseClusterTemplate> = ns.api();
    templates
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": TEMPLATE},
                "spec": {
                    "engineType": "postgresql",
                    "description": "One small instance for development",
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}},
                    "engineSpec": {},
                },
            }))
            .unwrap(),
        )
        .await
        .expect("template");

    // Two users: one who may do everything here, one who may only read.
    let admin_token = namespaced_user(
        &admin,
        &namespace,
        "sre",
        json!([
            {"apiGroups": ["dbaas.io"], "resources": ["*"], "verbs": ["*"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
        ]),
    )
    .await
    .expect("sre");
    may_list_nodes(&admin, &namespace, "sre").await;
    let reader_token = namespaced_user(
        &admin,
        &namespace,
        "reader",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]),
    )
    .await
    .expect("reader");

    // dbaas-server with the console built in.
    assert!(
        dbaas_server::console::is_built(),
        "dbaas-server was built without console/dist: run `bash hack/ensure-console.sh`"
    );
    let kube_config = cp.config().await.expect("kube config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(
        kube_config,
        listener,
        &ServerConfig {
            transport: Transport::PlainHttp,
            ..ServerConfig::default()
        },
    )
    .expect("server");
    server
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("synced");

    let screenshots = std::env::var("DBAAS_CONSOLE_SCREENSHOTS").unwrap_or_else(|_| {
        dbaas_testkit::repo_root()
            .join("target/console-screenshots")
            .display()
            .to_string()
    });
    let artifacts = dbaas_testkit::repo_root()
        .join("target/console-e2e")
        .display()
        .to_string();
    let env = [
        ("DBAAS_CONSOLE_URL", server.url()),
        ("DBAAS_CONSOLE_NAMESPACE", namespace.clone()),
        ("DBAAS_CONSOLE_ADMIN_TOKEN", admin_token),
        ("DBAAS_CONSOLE_READER_TOKEN", reader_token),
        ("DBAAS_CONSOLE_TEMPLATE", TEMPLATE.to_owned()),
        ("DBAAS_CONSOLE_SCREENSHOTS", screenshots),
        ("DBAAS_CONSOLE_ARTIFACTS", artifacts),
    ];
    // Playwright blocks; the operator and server run on this runtime's
    // other threads meanwhile.
    let outcome =
        tokio::task::spawn_blocking(move || dbaas_e2e::playwright("e2e/console.spec.ts", &env))
            .await
            .unwrap();

    // What the browser did, seen from the API: independent of the page.
    let clusters: Api<DatabaseCluster> = ns.api();
    let shop = clusters.get_opt("shop").await.unwrap();
    let ops: Api<OpsRequest> = ns.api();
    let restarts: Vec<OpsRequest> = ops
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|op| op.spec.cluster_ref.name == "shop")
        .collect();
    let backups: Api<DatabaseBackup> = ns.api();
    let backup_count = backups
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    let refused = clusters.get_opt("not-allowed").await.unwrap();
    let storages: Api<dbaas_api::BackupStorage> = ns.api();
    let storage_names: Vec<String> = storages
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();

    let _ = stop.send(());
    let _ = operator.await;
    drop(server);
    outcome.expect("the browser tests pass");

    let shop = shop.expect("the wizard created shop");
    let status = shop.status.as_ref().expect("status");
    assert_eq!(status.phase, Some(ClusterPhase::Ready));
    assert_eq!(
        shop.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("dbaas.io/template-name"))
            .map(String::as_str),
        Some(TEMPLATE)
    );
    assert_eq!(shop.spec.engine.version.as_deref(), Some(newest.as_str()));
    assert_eq!(restarts.len(), 1, "one restart was asked for");
    assert_eq!(
        restarts[0].status.as_ref().and_then(|s| s.phase),
        Some(OpsPhase::Succeeded)
    );
    assert_eq!(backup_count, 1, "one backup was asked for");
    assert!(refused.is_none(), "the reader's create was refused");
    assert_eq!(storage_names, ["s3-backups"], "the storage written as YAML");
    ns.delete().await.unwrap();
}
