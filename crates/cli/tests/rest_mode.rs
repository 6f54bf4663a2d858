//! `dbaasctl --server`: the built binary against a dbaas-server started in
//! process on the test control plane, with ServiceAccount tokens. Its output
//! must be the Kubernetes mode's, byte for byte; its errors keep their exit
//! codes and carry the server's message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_server::{ServerConfig, TlsFiles, Transport};
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::tls::TestCa;
use dbaas_testkit::{TestNamespace, shared};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

/// The CA of the server's HTTPS certificate, trusted with --server-ca-file.
static SERVER_CA: OnceLock<PathBuf> = OnceLock::new();

/// The binary in REST mode: no kubeconfig at all (KUBECONFIG points
/// nowhere), so nothing can go to the Kubernetes API by mistake; the
/// server is HTTPS, its CA given with --server-ca-file.
fn rest_command(
    server: &str,
    token: &str,
    namespace: &str,
    args: &[&str],
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"));
    command
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("DBAAS_SERVER")
        .env_remove("DBAAS_TOKEN")
        .args(["--server", server, "--token", token, "-n", namespace]);
    if let Some(ca) = SERVER_CA.get() {
        command.arg("--server-ca-file").arg(ca);
    }
    command.args(args).kill_on_drop(true);
    command
}

async fn rest(server: &str, token: &str, namespace: &str, args: &[&str]) -> Output {
    rest_command(server, token, namespace, args)
        .output()
        .await
        .unwrap()
}

/// The binary in Kubernetes mode, as the control plane's admin.
async fn kube_mode(namespace: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .env_remove("DBAAS_SERVER")
        .env_remove("DBAAS_TOKEN")
        .arg("--kubeconfig")
        .arg(shared().kubeconfig())
        .args(["-n", namespace])
        .args(args)
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// REST and Kubernetes mode print the same; a table's AGE column may tick
/// between two runs, so the REST output must equal the one before or after.
async fn assert_same_output(server: &str, token: &str, namespace: &str, args: &[&str]) -> String {
    let before = kube_mode(namespace, args).await;
    let via_rest = rest(server, token, namespace, args).await;
    let after = kube_mode(namespace, args).await;
    assert_exit(&before, 0);
    assert_exit(&via_rest, 0);
    let text = stdout(&via_rest);
    assert!(
        text == stdout(&before) || text == stdout(&after),
        "{args:?} differs:\nREST:\n{text}\nKubernetes:\n{}",
        stdout(&before)
    );
    text
}

#[tokio::test]
async fn rest_mode_create_list_get_credentials_delete() {
    let admin = shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "cli-rest").await.unwrap();
    let tls_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::create(tls_dir.path()).unwrap();
    let cert = ca.server_cert("dbaas-server").unwrap();
    SERVER_CA.set(ca.cert.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(shared().kubeconfig()).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
        listener,
        &ServerConfig {
            namespace: ns.name.clone(),
            transport: Transport::Tls(TlsFiles::new(&cert.cert, &cert.key)),
            ..ServerConfig::default()
        },
    )
    .unwrap();
    server.wait_synced(Duration::from_secs(30)).await.unwrap();
    let url = server.url();
    assert!(url.starts_with("https://"), "{url}");

    let writer = namespaced_user(
        &admin,
        &ns.name,
        "writer",
        json!([
            {"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get", "list", "create", "delete"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
        ]),
    )
    .await
    .unwrap();
    // May see clusters, not their Secrets.
    let viewer = namespaced_user(
        &admin,
        &ns.name,
        "viewer",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get", "list"]}]),
    )
    .await
    .unwrap();

    // Create with --wait: it polls GET while the test plays the operator.
    let waiting = rest_command(
        &url,
        &writer,
        &ns.name,
        &[
            "cluster",
            "create",
            "orders",
            "--engine",
            "postgresql",
            "--storage",
            "1Gi",
            "--wait",
            "--timeout",
            "60s",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let clusters: Api<DatabaseCluster> = ns.api();
    let created = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(cluster) = clusters.get_opt("orders").await.unwrap() {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the CLI did not create the cluster through the REST API");
    assert_eq!(
        created.metadata.annotations.unwrap()["dbaas.io/origin"],
        "cli"
    );
    let secrets: Api<Secret> = ns.api();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "orders-superuser"},
                "stringData": {"username": "postgres", "password": "s3cret-pw"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    clusters
        .patch_status(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "phase": "Ready", "ready": 1, "size": 1,
                "host": "orders-rw.example.svc", "port": 5432,
                "credentialsSecret": "orders-superuser",
            }})),
        )
        .await
        .unwrap();
    let created = tokio::time::timeout(Duration::from_secs(30), waiting.wait_with_output())
        .await
        .expect("create --wait did not see the cluster Ready")
        .unwrap();
    assert_exit(&created, 0);
    assert_eq!(stdout(&created), "databasecluster orders created\n");
    assert!(
        stderr(&created).contains("orders: Ready, 1/1 ready"),
        "{}",
        stderr(&created)
    );

    // List and get: the Kubernetes mode's output, table and structured.
    let table = assert_same_output(&url, &writer, &ns.name, &["cluster", "list"]).await;
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("orders"), "{table}");
    let listed =
        assert_same_output(&url, &writer, &ns.name, &["cluster", "list", "-o", "json"]).await;
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["kind"], "List");
    assert_eq!(listed["items"][0]["metadata"]["name"], "orders");
    assert_eq!(listed["items"][0]["status"]["phase"], "Ready");
    assert_same_output(&url, &writer, &ns.name, &["cluster", "get", "orders"]).await;
    assert_same_output(
        &url,
        &writer,
        &ns.name,
        &["cluster", "get", "orders", "-o", "yaml"],
    )
    .await;

    // Credentials: the Secret's, through the server, as the caller.
    let credentials = assert_same_output(
        &url,
        &writer,
        &ns.name,
        &["cluster", "credentials", "orders"],
    )
    .await;
    assert_eq!(
        credentials,
        "username: postgres\npassword: s3cret-pw\nhost: orders-rw.example.svc\nport: 5432\n"
    );
    let denied = rest(
        &url,
        &viewer,
        &ns.name,
        &["cluster", "credentials", "orders"],
    )
    .await;
    assert_exit(&denied, 1);
    let message = stderr(&denied);
    assert!(
        message.starts_with(&format!(
            "error: getting Secret \"orders-superuser\" in namespace \"{}\": ",
            ns.name
        )),
        "{message}"
    );
    assert!(
        message.contains("Forbidden") || message.contains("forbidden"),
        "{message}"
    );
    assert!(!message.contains("s3cret-pw"), "{message}");
    assert!(stdout(&denied).is_empty());

    // Errors keep their exit codes.
    let missing = rest(&url, &writer, &ns.name, &["cluster", "get", "nope"]).await;
    assert_exit(&missing, 3);
    assert_eq!(
        stderr(&missing),
        format!(
            "error: DatabaseCluster \"nope\" not found in namespace \"{}\"\n",
            ns.name
        )
    );
    let again = rest(
        &url,
        &writer,
        &ns.name,
        &["cluster", "create", "orders", "--engine", "postgresql"],
    )
    .await;
    assert_exit(&again, 1);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let unauthenticated = rest(&url, "not-a-token", &ns.name, &["cluster", "list"]).await;
    assert_exit(&unauthenticated, 1);
    assert!(
        stderr(&unauthenticated).contains("Unauthenticated"),
        "{}",
        stderr(&unauthenticated)
    );
    // The server's certificate is not trusted without its CA...
    let untrusted = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("DBAAS_SERVER")
        .env_remove("DBAAS_TOKEN")
        .args([
            "--server", &url, "--token", &writer, "-n", &ns.name, "cluster", "list",
        ])
        .output()
        .await
        .unwrap();
    assert_exit(&untrusted, 1);
    // ...and the token is not sent to an http:// URL (exit code 2, usage).
    let plain_url = url.replacen("https://", "http://", 1);
    let plain = rest(&plain_url, &writer, &ns.name, &["cluster", "list"]).await;
    assert_exit(&plain, 2);
    assert!(
        stderr(&plain).contains("--insecure-plain-http"),
        "{}",
        stderr(&plain)
    );
    // No backup permission: the server's 403, exit code 1.
    let forbidden = rest(&url, &writer, &ns.name, &["backup", "list"]).await;
    assert_exit(&forbidden, 1);
    assert!(
        stderr(&forbidden).contains("Forbidden"),
        "{}",
        stderr(&forbidden)
    );
    // What the REST API does not offer is a usage error.
    for args in [
        &["install"][..],
        &["preflight"],
        &["ops", "cancel", "x"],
        &["cluster", "connect-string", "orders"],
    ] {
        let refused = rest(&url, &writer, &ns.name, args).await;
        assert_exit(&refused, 2);
        assert!(
            stderr(&refused).contains("without --server"),
            "{}",
            stderr(&refused)
        );
    }

    // The environment and the kubeconfig user's token work as the flags do.
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        kubeconfig.path(),
        serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "rest",
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "w", "user": {"token": writer}}],
            "contexts": [{"name": "rest", "context": {"cluster": "c", "user": "w", "namespace": ns.name}}],
        }))
        .unwrap(),
    )
    .unwrap();
    let from_env = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .env("DBAAS_SERVER", &url)
        .env_remove("DBAAS_TOKEN")
        .arg("--kubeconfig")
        .arg(kubeconfig.path())
        .arg("--server-ca-file")
        .arg(&ca.cert)
        .args(["cluster", "get", "orders", "-o", "json"])
        .output()
        .await
        .unwrap();
    assert_exit(&from_env, 0);
    let got: serde_json::Value = serde_json::from_slice(&from_env.stdout).unwrap();
    assert_eq!(got["metadata"]["namespace"], ns.name.as_str());

    // Delete and wait until it is gone.
    let deleted = rest(
        &url,
        &writer,
        &ns.name,
        &["cluster", "delete", "orders", "--wait", "--timeout", "30s"],
    )
    .await;
    assert_exit(&deleted, 0);
    assert_eq!(stdout(&deleted), "databasecluster orders deleted\n");
    assert!(clusters.get_opt("orders").await.unwrap().is_none());
    let gone = rest(&url, &writer, &ns.name, &["cluster", "get", "orders"]).await;
    assert_exit(&gone, 3);
}
