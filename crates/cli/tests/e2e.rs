//! `dbaasctl` end to end: the built binary against the real control plane.
//! No operator runs; the test plays the engine operator by writing the
//! DatabaseCluster's status itself, which is all the CLI reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::process::Output;
use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_api::backup::DatabaseBackup;
use dbaas_api::claim::DatabaseClaim;
use dbaas_api::engine::DatabaseEngine;
use dbaas_testkit::{TestNamespace, shared};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

/// Runs the binary with the test kubeconfig and namespace.
async fn dbaasctl(namespace: &str, args: &[&str]) -> Output {
    dbaasctl_command(namespace, args).output().await.unwrap()
}

fn dbaasctl_command(namespace: &str, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"));
    command
        .arg("--kubeconfig")
        .arg(shared().kubeconfig())
        .args(["-n", namespace])
        .args(args)
        .kill_on_drop(true);
    command
}

/// A running dbaasctl whose stderr (its progress lines) the test follows
/// line by line.
struct Follower {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Follower {
    fn spawn(mut command: tokio::process::Command) -> Self {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (send, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 30 s) until the command has printed `expected` on stderr.
    async fn until_line(&mut self, expected: &str) {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            if self.seen.iter().any(|l| l == expected) {
                return true;
            }
            while let Some(line) = self.lines.recv().await {
                let done = line == expected;
                self.seen.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "dbaasctl did not print {expected:?}; stderr so far: {:?}",
            self.seen
        );
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the exit; stderr holds every line printed.
    async fn output(mut self) -> Output {
        let status = self.child.wait().await.unwrap();
        let mut stdout = Vec::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            pipe.read_to_end(&mut stdout).await.unwrap();
        }
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        let mut stderr = self.seen.join("\n").into_bytes();
        stderr.push(b'\n');
        Output {
            status,
            stdout,
            stderr,
        }
    }
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

async fn set_status<K>(api: &Api<K>, name: &str, status: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn create_wait_credentials_delete() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli").await.unwrap();
    let clusters: Api<DatabaseCluster> = ns.api();

    // Create and wait in the background while the test plays the operator.
    let waiting = dbaasctl_command(
        &ns.name,
        &[
            "cluster",
            "create",
            "pg",
            "--engine",
            "postgresql",
            "--version",
            "17.6",
            "--size",
            "3",
            "--storage",
            "1Gi",
            "--template",
            "small",
            "--wait",
            "--timeout",
            "60s",
        ],
    );
    let mut waiting = Follower::spawn(waiting);

    let created = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(cluster) = clusters.get_opt("pg").await.unwrap() {
                return cluster;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the CLI did not create the cluster");
    let annotations = created.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["dbaas.io/origin"], "cli");
    assert_eq!(
        annotations["dbaas.io/template-kind"],
        "DatabaseClusterTemplate"
    );
    assert_eq!(annotations["dbaas.io/template-name"], "small");
    assert_eq!(created.spec.cluster_size, 3);
    assert_eq!(created.spec.storage.size.0, "1Gi");

    // List shows it, still without a status.
    let list = dbaasctl(&ns.name, &["cluster", "list"]).await;
    assert_exit(&list, 0);
    let lines: Vec<String> = stdout(&list).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("NAME "), "{lines:?}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["pg", "postgresql", "17.6", "3", "0/3", "<none>"]
    );

    // The operator's part: Creating, then Ready. Each status is written once
    // the CLI has shown the one before, so it is watching (a slow start of
    // the CLI must not make it miss one).
    waiting.until_line("pg: Pending, 0/3 ready").await;
    set_status(
        &clusters,
        "pg",
        json!({"phase": "Creating", "ready": 1, "size": 3}),
    )
    .await;
    waiting.until_line("pg: Creating, 1/3 ready").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        waiting.is_running(),
        "--wait returned before the cluster was Ready"
    );
    set_status(
        &clusters,
        "pg",
        json!({"phase": "Ready", "ready": 3, "size": 3, "host": "pg-rw.cli.svc", "port": 5432,
               "credentialsSecret": "pg-superuser"}),
    )
    .await;
    let waited = tokio::time::timeout(Duration::from_secs(30), waiting.output())
        .await
        .expect("--wait did not return after Ready");
    assert_exit(&waited, 0);
    assert_eq!(stdout(&waited), "databasecluster pg created\n");
    let progress = stderr(&waited);
    assert!(progress.contains("pg: Creating, 1/3 ready"), "{progress}");
    assert!(progress.contains("pg: Ready, 3/3 ready"), "{progress}");

    // get in each format.
    let get = dbaasctl(&ns.name, &["cluster", "get", "pg"]).await;
    assert_exit(&get, 0);
    assert!(stdout(&get).contains("pg-rw.cli.svc"), "{}", stdout(&get));
    let json_out = dbaasctl(&ns.name, &["cluster", "get", "pg", "-o", "json"]).await;
    assert_exit(&json_out, 0);
    let value: Value = serde_json::from_str(&stdout(&json_out)).unwrap();
    assert_eq!(value["status"]["phase"], "Ready");
    let yaml_out = dbaasctl(&ns.name, &["cluster", "list", "-o", "yaml"]).await;
    assert_exit(&yaml_out, 0);
    let value: Value = serde_saphyr::from_str(&stdout(&yaml_out)).unwrap();
    assert_eq!(value["items"][0]["metadata"]["name"], "pg");

    // Credentials: missing Secret is "not found"; then the engine's Secret.
    let missing = dbaasctl(&ns.name, &["cluster", "credentials", "pg"]).await;
    assert_exit(&missing, 3);
    assert!(
        stderr(&missing).contains("pg-superuser"),
        "{}",
        stderr(&missing)
    );
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pg-superuser"},
        "stringData": {"username": "postgres", "password": "s3cret-Pw"}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let credentials = dbaasctl(&ns.name, &["cluster", "credentials", "pg"]).await;
    assert_exit(&credentials, 0);
    assert_eq!(
        stdout(&credentials),
        "username: postgres\npassword: s3cret-Pw\nhost: pg-rw.cli.svc\nport: 5432\n"
    );
    let credentials = dbaasctl(&ns.name, &["cluster", "credentials", "pg", "-o", "json"]).await;
    assert_exit(&credentials, 0);
    let value: Value = serde_json::from_str(&stdout(&credentials)).unwrap();
    assert_eq!(value["password"], "s3cret-Pw");
    assert_eq!(value["port"], 5432);
    let uri = dbaasctl(&ns.name, &["cluster", "connect-string", "pg"]).await;
    assert_exit(&uri, 0);
    assert_eq!(
        stdout(&uri),
        "postgresql://postgres@pg-rw.cli.svc:5432/postgres\n"
    );

    // Delete and wait until it is gone; then get is "not found".
    let delete = dbaasctl(
        &ns.name,
        &["cluster", "delete", "pg", "--wait", "--timeout", "30s"],
    )
    .await;
    assert_exit(&delete, 0);
    assert!(clusters.get_opt("pg").await.unwrap().is_none());
    let gone = dbaasctl(&ns.name, &["cluster", "get", "pg"]).await;
    assert_exit(&gone, 3);
    assert!(stderr(&gone).contains("not found"), "{}", stderr(&gone));

    ns.delete().await.unwrap();
}

#[tokio::test]
async fn wait_times_out_with_exit_code_4() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-timeout").await.unwrap();
    let out = dbaasctl(
        &ns.name,
        &[
            "cluster",
            "create",
            "slow",
            "--engine",
            "mysql",
            "--wait",
            "--timeout",
            "2s",
        ],
    )
    .await;
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("timed out after 2s"),
        "{}",
        stderr(&out)
    );
    // The cluster was created; only the wait gave up.
    let clusters: Api<DatabaseCluster> = ns.api();
    assert!(clusters.get_opt("slow").await.unwrap().is_some());
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn not_found_and_bad_arguments() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-errors").await.unwrap();
    for args in [
        &["cluster", "get", "nope"][..],
        &["cluster", "delete", "nope"],
        &["cluster", "credentials", "nope"],
        &["cluster", "connect-string", "nope"],
        &["claim", "get", "nope"],
        &["claim", "delete", "nope"],
    ] {
        let out = dbaasctl(&ns.name, args).await;
        assert_exit(&out, 3);
        assert!(
            stderr(&out).contains(r#""nope" not found"#),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for args in [
        &["cluster", "create", "pg", "--engine", "oracle"][..],
        &["cluster", "create", "Bad_Name", "--engine", "mysql"],
        &["cluster", "create", "pg"],
        &["cluster", "list", "-o", "xml"],
        &["cluster", "frobnicate"],
    ] {
        let out = dbaasctl(&ns.name, args).await;
        assert_exit(&out, 2);
    }
    // The API server's own validation (even size for mysql) is a plain error.
    let out = dbaasctl(
        &ns.name,
        &[
            "cluster", "create", "my", "--engine", "mysql", "--size", "2",
        ],
    )
    .await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("odd clusterSize"), "{}", stderr(&out));
    // Creating twice: already exists is an error, not "not found".
    let first = dbaasctl(
        &ns.name,
        &["cluster", "create", "pg", "--engine", "postgresql"],
    )
    .await;
    assert_exit(&first, 0);
    let again = dbaasctl(
        &ns.name,
        &["cluster", "create", "pg", "--engine", "postgresql"],
    )
    .await;
    assert_exit(&again, 1);
    // A kubeconfig that does not exist.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .args(["--kubeconfig", "/nonexistent/kubeconfig", "cluster", "list"])
        .output()
        .await
        .unwrap();
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("/nonexistent/kubeconfig"),
        "{}",
        stderr(&out)
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn claims_and_engines() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-claims").await.unwrap();

    let claim: DatabaseClaim = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
        "metadata": {"name": "orders"},
        "spec": {"secretName": "orders-db", "type": "postgres", "username": "orders", "databaseName": "orders"}
    }))
    .unwrap();
    ns.api::<DatabaseClaim>()
        .create(&PostParams::default(), &claim)
        .await
        .unwrap();
    let list = dbaasctl(&ns.name, &["claim", "list"]).await;
    assert_exit(&list, 0);
    let row: Vec<String> = stdout(&list)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        &row[..6],
        [
            "orders",
            "postgres",
            "orders",
            "orders-db",
            "<none>",
            "Pending"
        ]
    );
    let get = dbaasctl(&ns.name, &["claim", "get", "orders", "-o", "yaml"]).await;
    assert_exit(&get, 0);
    let value: Value = serde_saphyr::from_str(&stdout(&get)).unwrap();
    assert_eq!(value["spec"]["secretName"], "orders-db");
    let delete = dbaasctl(&ns.name, &["claim", "delete", "orders", "--wait"]).await;
    assert_exit(&delete, 0);
    assert!(
        ns.api::<DatabaseClaim>()
            .get_opt("orders")
            .await
            .unwrap()
            .is_none()
    );

    // Engines: what the operator would have reported.
    let engines: Api<DatabaseEngine> = ns.api();
    let engine: DatabaseEngine = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
        "metadata": {"name": "postgresql"},
        "spec": {"type": "postgresql", "allowedVersions": ["17.6", "16.4"], "defaultVersion": "17.6"}
    }))
    .unwrap();
    engines
        .create(&PostParams::default(), &engine)
        .await
        .unwrap();
    engines
        .patch_status(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "status": "Installed", "operatorVersion": "1.27.0", "defaultVersion": "17.6",
                "availableVersions": [
                    {"version": "16.4", "image": "pg:16.4", "allowed": true},
                    {"version": "17.6", "image": "pg:17.6", "allowed": true, "default": true},
                    {"version": "15.0", "image": "pg:15.0", "allowed": false}
                ]
            }})),
        )
        .await
        .unwrap();
    let out = dbaasctl(&ns.name, &["engines"]).await;
    assert_exit(&out, 0);
    let row: Vec<String> = stdout(&out)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        row,
        ["postgresql", "Installed", "1.27.0", "17.6", "16.4,17.6"]
    );
    let out = dbaasctl(&ns.name, &["engines", "-o", "json"]).await;
    assert_exit(&out, 0);
    let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(value["items"][0]["status"]["operatorVersion"], "1.27.0");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn completions_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
            .args(["completions", shell])
            .output()
            .await
            .unwrap();
        assert_exit(&out, 0);
        for command in [
            "connect-string",
            "edit",
            "ops",
            "cancel",
            "restore",
            "pitr-date",
            "set-size",
        ] {
            assert!(stdout(&out).contains(command), "{shell}: {command}");
        }
    }
    let help = tokio::process::Command::new(env!("CARGO_BIN_EXE_dbaasctl"))
        .args(["cluster", "create", "--help"])
        .output()
        .await
        .unwrap();
    assert_exit(&help, 0);
    assert!(stdout(&help).contains("3  not found"), "{}", stdout(&help));
}

#[tokio::test]
async fn preflight_names_each_missing_permission_and_how_to_grant_it() {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::RoleBinding;

    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-preflight")
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = ns.api();
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "operator"}})).unwrap(),
        )
        .await
        .unwrap();
    let account = format!("{}:operator", ns.name);
    let args = [
        "preflight",
        "--service-account",
        &account,
        "--watch-namespace",
        &ns.name,
    ];

    // Nothing granted: every required permission is missing, each with its
    // grant command.
    let output = dbaasctl(&ns.name, &args).await;
    assert_exit(&output, 1);
    let report = stderr(&output);
    assert!(
        report.contains("databaseclusters/status (dbaas.io)"),
        "{report}"
    );
    assert!(
        report.contains(&format!("MISSING in {}", ns.name)),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "kubectl -n {ns} create role dbaas-operator-databaseclusters-status --verb=patch \
             --resource=databaseclusters.dbaas.io/status && kubectl -n {ns} create rolebinding \
             dbaas-operator-databaseclusters-status --role=dbaas-operator-databaseclusters-status \
             --serviceaccount={account}",
            ns = ns.name
        )),
        "{report}"
    );

    // The shipped ClusterRole, bound in the namespace: all granted.
    let role_name = format!("dbaas-operator-{}", ns.name);
    let mut role = dbaas_testkit::accounts::shipped_operator_role().unwrap();
    role.metadata.name = Some(role_name.clone());
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = ns.api();
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "operator"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
                "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns.name}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut output = dbaasctl(&ns.name, &args).await;
    for _ in 0..40 {
        if output.status.code() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        output = dbaasctl(&ns.name, &args).await;
    }
    assert_exit(&output, 0);
    let report = stdout(&output);
    assert!(!report.contains("MISSING"), "{report}");
    assert!(
        report.contains("databaseclaims/status (dbaas.io)"),
        "{report}"
    );

    // Two watched namespaces, granted in one: the other is named.
    let unbound = format!("{}-b", ns.name);
    let watched = format!("{},{unbound}", ns.name);
    let output = dbaasctl(
        &ns.name,
        &[
            "preflight",
            "--service-account",
            &account,
            "--watch-namespace",
            &watched,
        ],
    )
    .await;
    assert_exit(&output, 1);
    let report = stderr(&output);
    assert!(
        report.contains(&format!("MISSING in {unbound}")),
        "{report}"
    );
    assert!(
        !report.contains(&format!("MISSING in {},", ns.name)),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "kubectl -n {unbound} create role dbaas-operator-secrets"
        )),
        "{report}"
    );
    let _ = roles.delete(&role_name, &Default::default()).await;
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn backup_create_wait_list_and_failure() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-backup").await.unwrap();
    let backups: Api<DatabaseBackup> = ns.api();

    // Create and wait while the test plays the operator.
    let mut waiting = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "backup",
            "create",
            "nightly-1",
            "--cluster",
            "orders",
            "--storage",
            "minio",
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    waiting.until_line("nightly-1: Pending").await;
    let created = backups.get("nightly-1").await.unwrap();
    assert_eq!(created.spec.cluster_name, "orders");
    assert_eq!(created.spec.storage_name.as_deref(), Some("minio"));
    assert_eq!(
        created.metadata.annotations.unwrap()["dbaas.io/origin"],
        "cli"
    );
    set_status(&backups, "nightly-1", json!({"phase": "Running"})).await;
    waiting.until_line("nightly-1: Running").await;
    assert!(waiting.is_running(), "--wait returned while Running");
    set_status(
        &backups,
        "nightly-1",
        json!({"phase": "Succeeded", "storageName": "minio", "completedAt": "2026-11-24T02:03:10Z",
               "destination": "s3://backups/ns/orders/base/20261124T020001"}),
    )
    .await;
    let done = tokio::time::timeout(Duration::from_secs(30), waiting.output())
        .await
        .expect("--wait did not return after Succeeded");
    assert_exit(&done, 0);
    assert_eq!(stdout(&done), "databasebackup nightly-1 created\n");

    // A failed backup: --wait exits 1 with the operator's message.
    let mut failing = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "backup",
            "create",
            "broken",
            "--cluster",
            "orders",
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    failing.until_line("broken: Pending").await;
    set_status(
        &backups,
        "broken",
        json!({"phase": "Failed", "message": "can't find the bucket"}),
    )
    .await;
    let failed = tokio::time::timeout(Duration::from_secs(30), failing.output())
        .await
        .expect("--wait did not return after Failed");
    assert_exit(&failed, 1);
    assert!(
        stderr(&failed).contains("backup \"broken\" failed: can't find the bucket"),
        "{}",
        stderr(&failed)
    );

    // Another cluster's backup, to see --cluster filter.
    let other = dbaasctl(
        &ns.name,
        &["backup", "create", "other-1", "--cluster", "payments"],
    )
    .await;
    assert_exit(&other, 0);

    let list = dbaasctl(&ns.name, &["backup", "list"]).await;
    assert_exit(&list, 0);
    let lines: Vec<String> = stdout(&list).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines[0].starts_with("NAME "), "{lines:?}");
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("nightly-1 "))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["nightly-1", "orders", "minio", "Succeeded"]);
    assert_eq!(row[5], "s3://backups/ns/orders/base/20261124T020001");
    let of_orders = dbaasctl(
        &ns.name,
        &["backup", "list", "--cluster", "orders", "-o", "json"],
    )
    .await;
    assert_exit(&of_orders, 0);
    let value: Value = serde_json::from_str(&stdout(&of_orders)).unwrap();
    let names: Vec<&str> = value["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "nightly-1"]);

    // Bad input and missing objects.
    let bad = dbaasctl(
        &ns.name,
        &["backup", "create", "Bad_Name", "--cluster", "orders"],
    )
    .await;
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("not a DNS label"), "{}", stderr(&bad));
    let missing = dbaasctl(&ns.name, &["backup", "get", "nope"]).await;
    assert_exit(&missing, 3);

    let delete = dbaasctl(
        &ns.name,
        &[
            "backup",
            "delete",
            "nightly-1",
            "--wait",
            "--timeout",
            "30s",
        ],
    )
    .await;
    assert_exit(&delete, 0);
    assert!(backups.get_opt("nightly-1").await.unwrap().is_none());
    ns.delete().await.unwrap();
}

/// Rows of a table (header left out), split into cells.
fn rows(output: &Output) -> Vec<Vec<String>> {
    stdout(output)
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect()
}

fn item_names(output: &Output) -> Vec<String> {
    let value: Value = serde_json::from_str(&stdout(output)).unwrap();
    value["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn ops_create_wait_cancel_list_and_failures() {
    use dbaas_api::ops::OpsRequest;

    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-ops").await.unwrap();
    let requests: Api<OpsRequest> = ns.api();

    // Scale with --wait while the test plays the operator.
    let mut waiting = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "ops",
            "create",
            "scale-up",
            "--cluster",
            "orders",
            "--type",
            "HorizontalScaling",
            "--replicas",
            "3",
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    waiting.until_line("scale-up: Pending").await;
    let created = requests.get("scale-up").await.unwrap();
    assert_eq!(
        serde_json::to_value(&created.spec).unwrap(),
        json!({"clusterRef": {"name": "orders"}, "type": "HorizontalScaling",
               "horizontalScaling": {"replicas": 3}})
    );
    assert_eq!(
        created.metadata.annotations.unwrap()["dbaas.io/origin"],
        "cli"
    );
    set_status(
        &requests,
        "scale-up",
        json!({"phase": "Running", "progress": "1/2", "message": "waiting for 3/3 ready"}),
    )
    .await;
    waiting
        .until_line("scale-up: Running 1/2 - waiting for 3/3 ready")
        .await;
    assert!(waiting.is_running(), "--wait returned while Running");
    set_status(
        &requests,
        "scale-up",
        json!({"phase": "Succeeded", "progress": "2/2", "message": null}),
    )
    .await;
    let done = tokio::time::timeout(Duration::from_secs(30), waiting.output())
        .await
        .expect("--wait did not return after Succeeded");
    assert_exit(&done, 0);
    assert_eq!(stdout(&done), "opsrequest scale-up created\n");

    // A failed operation: exit 1 with the operator's reason.
    let mut failing = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "ops",
            "create",
            "upgrade",
            "--cluster",
            "orders",
            "--type",
            "Upgrade",
            "--version",
            "99.0",
            "--wait",
        ],
    ));
    failing.until_line("upgrade: Pending").await;
    set_status(
        &requests,
        "upgrade",
        json!({"phase": "Failed", "message": "version 99.0 is not offered"}),
    )
    .await;
    let failed = tokio::time::timeout(Duration::from_secs(30), failing.output())
        .await
        .expect("--wait did not return after Failed");
    assert_exit(&failed, 1);
    assert!(
        stderr(&failed).contains(r#"OpsRequest "upgrade" Failed: version 99.0 is not offered"#),
        "{}",
        stderr(&failed)
    );

    // Cancelled while --wait follows it: exit 1 as well.
    let mut restarting = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "ops",
            "create",
            "restart",
            "--cluster",
            "orders",
            "--type",
            "Restart",
            "--wait",
        ],
    ));
    restarting.until_line("restart: Pending").await;
    let cancel = dbaasctl(&ns.name, &["ops", "cancel", "restart"]).await;
    assert_exit(&cancel, 0);
    assert_eq!(stdout(&cancel), "opsrequest restart cancel requested\n");
    assert!(requests.get("restart").await.unwrap().spec.cancel);
    set_status(
        &requests,
        "restart",
        json!({"phase": "Cancelled", "message": "cancelled before it started"}),
    )
    .await;
    let cancelled = tokio::time::timeout(Duration::from_secs(30), restarting.output())
        .await
        .expect("--wait did not return after Cancelled");
    assert_exit(&cancelled, 1);
    assert!(
        stderr(&cancelled)
            .contains(r#"OpsRequest "restart" Cancelled: cancelled before it started"#),
        "{}",
        stderr(&cancelled)
    );

    // `ops cancel --wait`: exit 0 once Cancelled, 1 when it ended otherwise.
    for (name, phase, code) in [("stop", "Cancelled", 0), ("grow", "Succeeded", 1)] {
        let argv: &[&str] = if name == "stop" {
            &[
                "ops",
                "create",
                "stop",
                "--cluster",
                "payments",
                "--type",
                "Stop",
            ]
        } else {
            &[
                "ops",
                "create",
                "grow",
                "--cluster",
                "payments",
                "--type",
                "VolumeExpansion",
                "--storage-size",
                "20Gi",
            ]
        };
        assert_exit(&dbaasctl(&ns.name, argv).await, 0);
        let mut cancelling = Follower::spawn(dbaasctl_command(
            &ns.name,
            &["ops", "cancel", name, "--wait", "--timeout", "60s"],
        ));
        cancelling.until_line(&format!("{name}: Pending")).await;
        assert!(requests.get(name).await.unwrap().spec.cancel);
        set_status(
            &requests,
            name,
            json!({"phase": phase, "message": "volume expansion cannot be undone"}),
        )
        .await;
        let out = tokio::time::timeout(Duration::from_secs(30), cancelling.output())
            .await
            .expect("cancel --wait did not return");
        assert_exit(&out, code);
        if code == 0 {
            assert_eq!(stdout(&out), "opsrequest stop cancelled\n");
        } else {
            assert!(
                stderr(&out).contains(r#"OpsRequest "grow" Succeeded: volume expansion"#),
                "{}",
                stderr(&out)
            );
        }
    }

    // Flags that do not fit the type, or missing ones: usage errors, nothing created.
    for (argv, message) in [
        (
            &["--type", "Upgrade", "--version", "17", "--replicas", "3"][..],
            "--replicas does not apply to --type Upgrade (it takes --version)",
        ),
        (
            &["--type", "HorizontalScaling"],
            "--type HorizontalScaling needs --replicas",
        ),
    ] {
        let argv: Vec<&str> = ["ops", "create", "bad", "--cluster", "orders"]
            .into_iter()
            .chain(argv.iter().copied())
            .collect();
        let out = dbaasctl(&ns.name, &argv).await;
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    for argv in [
        &["--type", "Reconfiguring"][..],
        &["--type", "VerticalScaling", "--cpu", "lots"],
    ] {
        let argv: Vec<&str> = ["ops", "create", "bad", "--cluster", "orders"]
            .into_iter()
            .chain(argv.iter().copied())
            .collect();
        assert_exit(&dbaasctl(&ns.name, &argv).await, 2);
    }
    assert!(requests.get_opt("bad").await.unwrap().is_none());

    // list, filtered by cluster; get; delete; missing ones.
    let list = dbaasctl(&ns.name, &["ops", "list"]).await;
    assert_exit(&list, 0);
    assert!(
        stdout(&list).starts_with("NAME       CLUSTER    TYPE"),
        "{}",
        stdout(&list)
    );
    let table = rows(&list);
    assert_eq!(table.len(), 5, "{table:?}");
    let scale_row = table.iter().find(|row| row[0] == "scale-up").unwrap();
    assert_eq!(
        &scale_row[..5],
        [
            "scale-up",
            "orders",
            "HorizontalScaling",
            "Succeeded",
            "2/2"
        ]
    );
    let of_orders = dbaasctl(
        &ns.name,
        &["ops", "list", "--cluster", "orders", "-o", "json"],
    )
    .await;
    assert_exit(&of_orders, 0);
    assert_eq!(item_names(&of_orders), ["restart", "scale-up", "upgrade"]);
    let get = dbaasctl(&ns.name, &["ops", "get", "upgrade", "-o", "yaml"]).await;
    assert_exit(&get, 0);
    let value: Value = serde_saphyr::from_str(&stdout(&get)).unwrap();
    assert_eq!(value["status"]["phase"], "Failed");
    assert_eq!(value["spec"]["upgrade"]["version"], "99.0");
    let delete = dbaasctl(&ns.name, &["ops", "delete", "upgrade", "--wait"]).await;
    assert_exit(&delete, 0);
    assert!(requests.get_opt("upgrade").await.unwrap().is_none());
    for argv in [
        &["ops", "get", "nope"][..],
        &["ops", "cancel", "nope"],
        &["ops", "delete", "nope"],
    ] {
        let out = dbaasctl(&ns.name, argv).await;
        assert_exit(&out, 3);
        assert!(stderr(&out).contains(r#""nope" not found"#), "{argv:?}");
    }
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn restore_create_wait_list_and_cluster_from_backup() {
    use dbaas_api::ops::OpsRequest;

    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-restore").await.unwrap();
    let requests: Api<OpsRequest> = ns.api();

    let mut waiting = Follower::spawn(dbaasctl_command(
        &ns.name,
        &[
            "restore",
            "create",
            "back-to-2am",
            "--cluster",
            "orders",
            "--backup",
            "nightly",
            "--pitr-date",
            "2026-11-24T02:00:00Z",
            "--wait",
            "--timeout",
            "60s",
        ],
    ));
    waiting.until_line("back-to-2am: Pending").await;
    let created = requests.get("back-to-2am").await.unwrap();
    assert_eq!(
        serde_json::to_value(&created.spec).unwrap(),
        json!({"clusterRef": {"name": "orders"}, "type": "Restore",
               "restore": {"backupName": "nightly", "pitr": {"type": "date", "date": "2026-11-24T02:00:00Z"}}})
    );
    set_status(
        &requests,
        "back-to-2am",
        json!({"phase": "Running", "progress": "1/2"}),
    )
    .await;
    waiting.until_line("back-to-2am: Running 1/2").await;
    set_status(&requests, "back-to-2am", json!({"phase": "Succeeded"})).await;
    let done = tokio::time::timeout(Duration::from_secs(30), waiting.output())
        .await
        .expect("--wait did not return after Succeeded");
    assert_exit(&done, 0);
    assert_eq!(stdout(&done), "opsrequest back-to-2am created\n");

    // Another cluster's restore, and an operation that is not a restore.
    let latest = dbaasctl(
        &ns.name,
        &[
            "restore",
            "create",
            "latest",
            "--cluster",
            "payments",
            "--backup",
            "weekly",
            "--pitr-latest",
        ],
    )
    .await;
    assert_exit(&latest, 0);
    let scale = dbaasctl(
        &ns.name,
        &[
            "ops",
            "create",
            "scale",
            "--cluster",
            "orders",
            "--type",
            "HorizontalScaling",
            "--replicas",
            "2",
        ],
    )
    .await;
    assert_exit(&scale, 0);

    let list = dbaasctl(&ns.name, &["restore", "list"]).await;
    assert_exit(&list, 0);
    assert_eq!(
        rows(&list)
            .into_iter()
            .map(|row| row[..5].to_vec())
            .collect::<Vec<_>>(),
        [
            [
                "back-to-2am",
                "orders",
                "nightly",
                "2026-11-24T02:00:00Z",
                "Succeeded"
            ],
            ["latest", "payments", "weekly", "latest", "Pending"],
        ]
    );
    let of_orders = dbaasctl(
        &ns.name,
        &["restore", "list", "--cluster", "orders", "-o", "json"],
    )
    .await;
    assert_exit(&of_orders, 0);
    assert_eq!(item_names(&of_orders), ["back-to-2am"]);

    // Both PITR flags, or a bad time: usage errors.
    for pitr in [
        &["--pitr-latest", "--pitr-date", "2026-11-24T02:00:00Z"][..],
        &["--pitr-date", "yesterday"],
    ] {
        let argv: Vec<&str> = [
            "restore",
            "create",
            "bad",
            "--cluster",
            "orders",
            "--backup",
            "nightly",
        ]
        .into_iter()
        .chain(pitr.iter().copied())
        .collect();
        assert_exit(&dbaasctl(&ns.name, &argv).await, 2);
    }

    // A new cluster from a backup.
    let copy = dbaasctl(
        &ns.name,
        &[
            "cluster",
            "create",
            "orders-copy",
            "--engine",
            "postgresql",
            "--from-backup",
            "nightly",
            "--pitr-latest",
        ],
    )
    .await;
    assert_exit(&copy, 0);
    let cluster: DatabaseCluster = ns.api().get("orders-copy").await.unwrap();
    assert_eq!(
        serde_json::to_value(&cluster.spec.data_source).unwrap(),
        json!({"backupName": "nightly", "pitr": {"type": "latest"}})
    );
    let no_backup = dbaasctl(
        &ns.name,
        &[
            "cluster",
            "create",
            "orphan",
            "--engine",
            "postgresql",
            "--pitr-latest",
        ],
    )
    .await;
    assert_exit(&no_backup, 2);
    assert!(
        stderr(&no_backup).contains("need --from-backup"),
        "{}",
        stderr(&no_backup)
    );
    ns.delete().await.unwrap();
}

/// Runs `cluster edit NAME` with EDITOR set to `editor`.
async fn edit_with(namespace: &str, name: &str, editor: &str) -> Output {
    dbaasctl_command(namespace, &["cluster", "edit", name])
        .env("EDITOR", editor)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn cluster_edit_with_flags_and_in_an_editor() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "cli-edit").await.unwrap();
    let clusters: Api<DatabaseCluster> = ns.api();
    let create = dbaasctl(
        &ns.name,
        &[
            "cluster",
            "create",
            "pg",
            "--engine",
            "postgresql",
            "--storage",
            "1Gi",
        ],
    )
    .await;
    assert_exit(&create, 0);

    // Flags: one merge patch; the same again changes nothing.
    let flags = [
        "cluster",
        "edit",
        "pg",
        "--set-size",
        "3",
        "--storage-size",
        "2Gi",
        "--version",
        "17.6",
        "--paused",
        "true",
    ];
    let edited = dbaasctl(&ns.name, &flags).await;
    assert_exit(&edited, 0);
    assert_eq!(stdout(&edited), "databasecluster pg edited\n");
    let cluster = clusters.get("pg").await.unwrap();
    assert_eq!(cluster.spec.cluster_size, 3);
    assert_eq!(cluster.spec.storage.size.0, "2Gi");
    assert_eq!(cluster.spec.engine.version.as_deref(), Some("17.6"));
    assert!(cluster.spec.paused);
    let again = dbaasctl(&ns.name, &flags).await;
    assert_exit(&again, 0);
    assert_eq!(stdout(&again), "databasecluster pg unchanged\n");
    // The API server's rules apply (storage never shrinks); a bad value is a
    // usage error; a missing cluster is "not found".
    let shrink = dbaasctl(
        &ns.name,
        &["cluster", "edit", "pg", "--storage-size", "1Gi"],
    )
    .await;
    assert_exit(&shrink, 1);
    assert!(
        stderr(&shrink).contains("storage.size cannot shrink"),
        "{}",
        stderr(&shrink)
    );
    assert_exit(
        &dbaasctl(&ns.name, &["cluster", "edit", "pg", "--paused", "maybe"]).await,
        2,
    );
    assert_exit(
        &dbaasctl(&ns.name, &["cluster", "edit", "nope", "--set-size", "3"]).await,
        3,
    );
    assert_exit(&edit_with(&ns.name, "nope", "true").await, 3);

    // The editor path: what the editor saves is applied.
    let edited = edit_with(
        &ns.name,
        "pg",
        "sed -i -e 's/clusterSize: 3/clusterSize: 5/' -e 's/paused: true/paused: false/'",
    )
    .await;
    assert_exit(&edited, 0);
    assert_eq!(stdout(&edited), "databasecluster pg edited\n");
    let cluster = clusters.get("pg").await.unwrap();
    assert_eq!(cluster.spec.cluster_size, 5);
    assert!(!cluster.spec.paused);
    let version = cluster.metadata.resource_version.clone();

    // Saved unchanged, or the editor failed: nothing is written.
    let unchanged = edit_with(&ns.name, "pg", "true").await;
    assert_exit(&unchanged, 0);
    assert_eq!(stdout(&unchanged), "databasecluster pg unchanged\n");
    let editor_failed = edit_with(&ns.name, "pg", "false").await;
    assert_exit(&editor_failed, 1);
    assert!(
        stderr(&editor_failed).contains("running the editor"),
        "{}",
        stderr(&editor_failed)
    );
    // Not YAML: refused, and the edit is kept for the user.
    let broken = edit_with(&ns.name, "pg", "sed -i 's/clusterSize: 5/clusterSize: [/'").await;
    assert_exit(&broken, 1);
    let message = stderr(&broken);
    assert!(message.contains("is not valid"), "{message}");
    let kept = message
        .split("your edit is kept in ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(')');
    assert!(
        std::fs::read_to_string(kept)
            .unwrap()
            .contains("clusterSize: ["),
        "{kept}"
    );
    std::fs::remove_file(kept).unwrap();
    // A field the API does not have: the API server refuses it (strict).
    let unknown = edit_with(&ns.name, "pg", "sed -i 's/clusterSize:/clusterSise:/'").await;
    assert_exit(&unknown, 1);
    assert!(
        stderr(&unknown).contains("clusterSise"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(
        clusters.get("pg").await.unwrap().metadata.resource_version,
        version
    );

    // Someone else writes while the editor is open: conflict, exit 5, and
    // their change stays.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\n'{bin}' --kubeconfig '{kubeconfig}' -n '{ns}' cluster edit pg --paused true >/dev/null\n\
             sed -i 's/clusterSize: 5/clusterSize: 7/' \"$1\"\n",
            bin = env!("CARGO_BIN_EXE_dbaasctl"),
            kubeconfig = shared().kubeconfig().display(),
            ns = ns.name,
        ),
    )
    .unwrap();
    let conflict = edit_with(&ns.name, "pg", &format!("sh {}", script.display())).await;
    assert_exit(&conflict, 5);
    assert!(
        stderr(&conflict).contains("was changed by someone else since it was read"),
        "{}",
        stderr(&conflict)
    );
    let cluster = clusters.get("pg").await.unwrap();
    assert_eq!(cluster.spec.cluster_size, 5);
    assert!(cluster.spec.paused);
    ns.delete().await.unwrap();
}
