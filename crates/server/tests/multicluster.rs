//! Several clusters at once, against TWO real control planes: the shared
//! one is the management cluster the server runs against; a second,
//! independent one is registered through the API with its admin kubeconfig.
//! Callers are ServiceAccounts of the management cluster; on the second
//! cluster they hold RBAC through bindings naming their prefixed remote
//! name (`dbaas:system:serviceaccount:<ns>:<name>`), never the
//! ServiceAccount itself. Both control planes listen on loopback, so the
//! servers here run with `allow_insecure_urls` (--allow-insecure-cluster-urls)
//! unless a test is about the default policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use dbaas_api::DatabaseCluster;
use dbaas_server::auth::{Caller, Permission};
use dbaas_server::{RegistrationPolicy, RunningServer, ServerConfig, Transport};
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::{ControlPlane, TestNamespace};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(30);

/// The second control plane, started once for this binary.
fn second() -> &'static ControlPlane {
    static SECOND: OnceLock<ControlPlane> = OnceLock::new();
    SECOND.get_or_init(|| {
        ControlPlane::start(&[dbaas_testkit::our_crds()]).expect("second control plane")
    })
}

struct Harness {
    server: RunningServer,
    admin: Client,
    remote_admin: Client,
    /// The server's own namespace on the management cluster.
    ns: TestNamespace,
    http: reqwest::Client,
}

/// The registration policy of these tests: the second control plane is on
/// loopback.
fn loopback_allowed() -> RegistrationPolicy {
    RegistrationPolicy {
        allow_insecure_urls: true,
        ..RegistrationPolicy::default()
    }
}

async fn start_server(ns: &str) -> RunningServer {
    start_server_with(ns, loopback_allowed()).await
}

async fn start_server_with(ns: &str, registration: RegistrationPolicy) -> RunningServer {
    let cp = dbaas_testkit::shared();
    let kube_config = cp.config().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = ServerConfig {
        namespace: ns.to_owned(),
        registration,
        transport: Transport::PlainHttp,
        ..ServerConfig::default()
    };
    let server = dbaas_server::start(kube_config, listener, &config).expect("server starts");
    server.wait_synced(TIMEOUT).await.expect("caches sync");
    server
}

async fn harness(prefix: &str) -> Harness {
    harness_with(prefix, loopback_allowed()).await
}

async fn harness_with(prefix: &str, registration: RegistrationPolicy) -> Harness {
    let second = tokio::task::spawn_blocking(second).await.unwrap();
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let remote_admin = second.client().await.unwrap();
    let ns = TestNamespace::create(&admin, prefix).await.unwrap();
    let server = start_server_with(&ns.name, registration).await;
    Harness {
        server,
        admin,
        remote_admin,
        ns,
        http: reqwest::Client::new(),
    }
}

fn second_kubeconfig_base64() -> String {
    let text = std::fs::read(second().kubeconfig()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The second control plane's admin kubeconfig with its API server URL
/// replaced by `server`, base64-encoded.
fn second_kubeconfig_via(server: &str) -> String {
    let text = std::fs::read_to_string(second().kubeconfig()).unwrap();
    assert!(text.contains(second().server()), "{text}");
    base64::engine::general_purpose::STANDARD.encode(text.replace(second().server(), server))
}

/// A kubeconfig pointing at `server` with an inline token, base64-encoded.
fn kubeconfig_for(server: &str, cluster_extra: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: '{server}'{cluster_extra}}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    ))
}

/// The remote name of the ServiceAccount `name` of namespace `ns`.
fn remote_user(ns: &str, name: &str) -> String {
    format!("dbaas:system:serviceaccount:{ns}:{name}")
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} {path}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.send(token, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    /// A ServiceAccount of the server's namespace that may manage cluster
    /// registrations there; returns (username, token).
    async fn registrar(&self, name: &str) -> (String, String) {
        let rules = json!([{"apiGroups": ["dbaas.io"], "resources": ["kubernetesclusters"],
            "verbs": ["get", "list", "create", "patch", "delete"]}]);
        let token = namespaced_user(&self.admin, &self.ns.name, name, rules)
            .await
            .unwrap();
        (
            format!("system:serviceaccount:{}:{name}", self.ns.name),
            token,
        )
    }

    /// Grants the ServiceAccount `name` of the server's namespace `rules`
    /// cluster-wide on the management cluster.
    async fn grant_cluster_wide(&self, client: &Client, name: &str, rules: Value) {
        let subject = json!({"kind": "ServiceAccount", "name": name, "namespace": self.ns.name});
        self.bind(client, name, subject, rules).await;
    }

    /// Grants the ServiceAccount `name` of the server's namespace `rules`
    /// cluster-wide on the registered (second) cluster, under its remote
    /// name.
    async fn grant_remote(&self, name: &str, rules: Value) {
        let subject = json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
            "name": remote_user(&self.ns.name, name)});
        self.bind(&self.remote_admin, name, subject, rules).await;
    }

    /// A ClusterRole `<ns>-<suffix>` with `rules`, bound to `subject` on
    /// the cluster of `client`.
    async fn bind(&self, client: &Client, suffix: &str, subject: Value, rules: Value) {
        let role_name = format!("{}-{suffix}", self.ns.name);
        let roles: Api<ClusterRole> = Api::all(client.clone());
        let role = serde_json::from_value(json!({"metadata": {"name": role_name}, "rules": rules}))
            .unwrap();
        roles.create(&PostParams::default(), &role).await.unwrap();
        let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
        let binding = serde_json::from_value(json!({
            "metadata": {"name": role_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [subject],
        }))
        .unwrap();
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap();
    }

    async fn register_second(&self, token: &str, name: &str) -> Value {
        let (status, body) = self
            .post(
                token,
                "/v1/kubernetesclusters",
                json!({"name": name, "kubeconfig": second_kubeconfig_base64()}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Waits until the registered cluster `name` reports synced caches.
    async fn wait_cluster_synced(&self, token: &str, name: &str) {
        eventually(&format!("cluster {name} synced"), || async {
            let (status, body) = self
                .get(token, &format!("/v1/kubernetesclusters/{name}"))
                .await;
            (status == StatusCode::OK && body["synced"] == true).then_some(())
        })
        .await;
    }
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    api.create(&PostParams::default(), &ns).await.unwrap();
}

fn cluster_body(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql"}, "storage": {"size": "1Gi"}},
    })
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn registrations(ns: &str, client: &Client) -> Api<Secret> {
    Api::namespaced(client.clone(), ns)
}

#[tokio::test]
async fn bad_kubeconfigs_are_refused_with_a_message() {
    let h = harness("mc-bad").await;
    let (_, token) = h.registrar("alice").await;
    let cases = [
        (
            json!({"name": "x", "kubeconfig": "%%% not base64"}),
            400,
            "InvalidKubeconfig",
            "base64",
        ),
        (
            json!({"name": "x", "kubeconfig": base64::engine::general_purpose::STANDARD.encode("apiVersion: v1\nkind: Config\nclusters: []\n")}),
            400,
            "InvalidKubeconfig",
            "current-context",
        ),
        (
            json!({"name": "x", "kubeconfig": base64::engine::general_purpose::STANDARD.encode(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n")}),
            422,
            "ClusterUnreachable",
            "127.0.0.1:1",
        ),
        (
            json!({"name": "local", "kubeconfig": second_kubeconfig_base64()}),
            400,
            "InvalidName",
            "reserved",
        ),
        (
            json!({"name": "x", "kubeconfig": "", "extra": 1}),
            400,
            "InvalidBody",
            "extra",
        ),
    ];
    for (body, code, reason, needle) in cases {
        let (status, answer) = h.post(&token, "/v1/kubernetesclusters", body.clone()).await;
        assert_eq!(status.as_u16(), code, "{body} -> {answer}");
        assert_eq!(answer["reason"], reason, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    let stored = registrations(&h.ns.name, &h.admin)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        stored.items.iter().all(|s| s.metadata.labels.is_none()),
        "nothing stored"
    );
}

#[tokio::test]
async fn register_list_across_clusters_rename_restart_unregister() {
    let h = harness("mc-flow").await;
    let ns = h.ns.name.clone();
    let (alice, token) = h.registrar("alice").await;
    // Alice may work with database clusters on both clusters.
    let db_rules = json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"],
        "verbs": ["get", "list", "create", "patch", "delete"]}]);
    h.grant_cluster_wide(&h.admin, "alice", db_rules.clone())
        .await;
    let mut remote_rules = db_rules;
    remote_rules
        .as_array_mut()
        .unwrap()
        .push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}));
    h.grant_remote("alice", remote_rules).await;

    let registered = h.register_second(&token, "east").await;
    assert_eq!(registered["name"], "east");
    assert_eq!(registered["server"], second().server());
    assert!(registered.get("kubeconfig").is_none(), "{registered}");
    let (status, list) = h.get(&token, "/v1/kubernetesclusters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["items"][0]["name"], "east");
    assert!(!list.to_string().contains("client-key-data"), "{list}");
    let stored = registrations(&ns, &h.admin)
        .list(&ListParams::default().labels("dbaas.io/kubernetes-cluster-name=east"))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1, "the registration is a Secret");
    h.wait_cluster_synced(&token, "east").await;
    let (_, east) = h.get(&token, "/v1/kubernetesclusters/east").await;
    assert_eq!(east["reachable"], true, "{east}");

    // One database cluster in each cluster; the remote one through the API,
    // impersonating alice there.
    let remote_ns = format!("{ns}-remote");
    create_namespace(&h.remote_admin, &remote_ns).await;
    let (status, created) = h
        .post(
            &token,
            &format!("/v1/kubernetesclusters/east/namespaces/{remote_ns}/databaseclusters"),
            cluster_body("db-east"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let managers: Vec<&str> = created["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, [format!("dbaas-server/{alice}")]);
    let local: Api<DatabaseCluster> = h.ns.api();
    local
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster_body("db-local")).unwrap(),
        )
        .await
        .unwrap();

    let everywhere = eventually("both database clusters listed", || async {
        let (status, body) = h.get(&token, "/v1/allclusters/databaseclusters").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["items"].as_array().unwrap().len() == 2).then_some(body)
    })
    .await;
    let items: Vec<(String, String)> = everywhere["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kubernetesCluster"].as_str().unwrap().to_owned(),
                i["databaseCluster"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            ("east".to_owned(), "db-east".to_owned()),
            ("local".to_owned(), "db-local".to_owned())
        ]
    );
    assert_eq!(everywhere["skipped"], json!([]));
    // Pages of one: the same two, in the same order.
    let (_, first) = h
        .get(&token, "/v1/allclusters/databaseclusters?limit=1")
        .await;
    assert_eq!(first["items"][0]["kubernetesCluster"], "east");
    let next = first["continue"].as_str().unwrap().to_owned();
    let (_, second_page) = h
        .get(
            &token,
            &format!("/v1/allclusters/databaseclusters?limit=1&continue={next}"),
        )
        .await;
    assert_eq!(
        second_page["items"][0]["kubernetesCluster"], "local",
        "{second_page}"
    );
    assert_eq!(second_page["continue"], Value::Null, "{second_page}");

    let (status, one) = h
        .get(
            &token,
            &format!("/v1/kubernetesclusters/east/namespaces/{remote_ns}/databaseclusters/db-east"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    let (status, page) = h
        .get(
            &token,
            &format!("/v1/kubernetesclusters/local/namespaces/{ns}/databaseclusters"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"][0]["metadata"]["name"], "db-local");

    // Rename: not onto `local`, not onto a taken name.
    let rename = |to: &str| {
        h.send(
            &token,
            reqwest::Method::PATCH,
            "/v1/kubernetesclusters/east",
            Some(json!({ "name": to })),
        )
    };
    let (status, body) = rename("local").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["reason"], "InvalidName");
    let (status, body) = rename("Not_A_Label").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, renamed) = h
        .send(
            &token,
            reqwest::Method::PATCH,
            "/v1/kubernetesclusters/east",
            Some(json!({"name": "west"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["name"], "west");
    let (status, gone) = h.get(&token, "/v1/kubernetesclusters/east").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    let (status, _) = h
        .get(
            &token,
            &format!("/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // A restarted server loads the registration from its Secret.
    let restarted = start_server(&ns).await;
    let response = h
        .http
        .get(format!("{}/v1/kubernetesclusters", restarted.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["items"][0]["name"], "west", "{list}");
    drop(restarted);

    // Edit in the registered cluster, as alice: a merge patch checked
    // against the remote cache, written impersonating her there.
    let remote: Api<DatabaseCluster> = Api::namespaced(h.remote_admin.clone(), &remote_ns);
    let (status, patched) = h
        .send(
            &token,
            reqwest::Method::PATCH,
            &format!("/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east"),
            Some(json!({"spec": {"paused": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert!(remote.get("db-east").await.unwrap().spec.paused);
    let (status, refused) = h
        .send(
            &token,
            reqwest::Method::PATCH,
            &format!("/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east"),
            Some(json!({"spec": {"pasued": true}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // Its credentials, read as alice there.
    let secrets: Api<Secret> = Api::namespaced(h.remote_admin.clone(), &remote_ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "db-east-superuser"},
                "stringData": {"username": "postgres", "password": "remote-secret"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    remote
        .patch_status(
            "db-east",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"credentialsSecret": "db-east-superuser"}})),
        )
        .await
        .unwrap();
    let credentials = eventually("the remote credentials", || async {
        let (status, body) = h
            .get(
                &token,
                &format!(
                    "/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east/credentials"
                ),
            )
            .await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(credentials["password"], "remote-secret", "{credentials}");

    // Delete in the registered cluster, as alice.
    let (status, body) = h
        .send(
            &token,
            reqwest::Method::DELETE,
            &format!("/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    dbaas_testkit::wait_gone(&remote, "db-east", TIMEOUT)
        .await
        .unwrap();

    // Unregister: no longer served, and its watches stop.
    let stale = h.server.state.clusters.get("west").unwrap();
    assert!(stale.is_synced());
    let (status, deleted) = h
        .send(
            &token,
            reqwest::Method::DELETE,
            "/v1/kubernetesclusters/west",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, body) = h
        .get(
            &token,
            &format!("/v1/kubernetesclusters/west/namespaces/{remote_ns}/databaseclusters/db-east"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, list) = h.get(&token, "/v1/kubernetesclusters").await;
    assert_eq!(list["items"], json!([]));
    let (_, everywhere) = h.get(&token, "/v1/allclusters/databaseclusters").await;
    assert_eq!(
        everywhere["items"].as_array().unwrap().len(),
        1,
        "{everywhere}"
    );
    let stored = registrations(&ns, &h.admin)
        .list(&ListParams::default().labels("dbaas.io/kubernetes-cluster-registration=true"))
        .await
        .unwrap();
    assert!(stored.items.is_empty(), "the Secret is deleted");
    remote
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster_body("db-late")).unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        stale.stores.clusters.get(&remote_ns, "db-late").is_none(),
        "an unregistered cluster is no longer watched"
    );
}

#[tokio::test]
async fn callers_without_permission_get_403() {
    let h = harness("mc-authz").await;
    let ns = h.ns.name.clone();
    let (_, registrar) = h.registrar("admin").await;
    h.register_second(&registrar, "far").await;
    h.wait_cluster_synced(&registrar, "far").await;

    // Nothing at all.
    let nobody = namespaced_user(&h.admin, &ns, "nobody", json!([]))
        .await
        .unwrap();
    let (status, body) = h.get(&nobody, "/v1/kubernetesclusters").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot list kubernetesclusters.dbaas.io"),
        "{body}"
    );
    let (status, _) = h
        .post(
            &nobody,
            "/v1/kubernetesclusters",
            json!({"name": "x", "kubeconfig": second_kubeconfig_base64()}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // May use the registration on the management cluster, but holds no
    // RBAC on the registered cluster itself: that cluster's
    // SubjectAccessReview says no.
    let viewer_rules = json!([{"apiGroups": ["dbaas.io"], "resources": ["kubernetesclusters"], "verbs": ["get", "list"]}]);
    let viewer = namespaced_user(&h.admin, &ns, "viewer", viewer_rules)
        .await
        .unwrap();
    let (status, body) = h
        .get(
            &viewer,
            "/v1/kubernetesclusters/far/namespaces/default/databaseclusters",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("user dbaas:system:serviceaccount:{ns}:viewer cannot list databaseclusters.dbaas.io in namespace default")),
        "{body}"
    );
    let (status, body) = h.get(&viewer, "/v1/kubernetesclusters/far/resources").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // The all-clusters list leaves out what the caller may not list.
    let (status, body) = h.get(&viewer, "/v1/allclusters/databaseclusters").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let skipped: Vec<&str> = body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kubernetesCluster"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["far", "local"], "{body}");

    // Without the registration permission, the remote cluster is off limits
    // even for someone that cluster would allow.
    let remote_only = namespaced_user(&h.admin, &ns, "remote-only", json!([]))
        .await
        .unwrap();
    h.grant_remote(
        "remote-only",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["list"]}]),
    )
    .await;
    let (status, body) = h
        .get(
            &remote_only,
            "/v1/kubernetesclusters/far/namespaces/default/databaseclusters",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot get kubernetesclusters.dbaas.io \"far\""),
        "{body}"
    );
    let (status, _) = h
        .send(
            &remote_only,
            reqwest::Method::DELETE,
            "/v1/kubernetesclusters/far",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn available_resources_are_allocatable_minus_requests() {
    let h = harness("mc-res").await;
    let ns = h.ns.name.clone();
    let (_, token) = h.registrar("sre").await;
    h.grant_remote(
        "sre",
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]),
    )
    .await;
    h.register_second(&token, "res").await;

    // The second control plane has no kubelets: Nodes are API objects
    // whose allocatable is set through the status subresource.
    let nodes: Api<Node> = Api::all(h.remote_admin.clone());
    for (name, cpu, memory) in [("node-a", "4", "8Gi"), ("node-b", "2", "4Gi")] {
        let node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        nodes.create(&PostParams::default(), &node).await.unwrap();
        let status = json!({"status": {
            "capacity": {"cpu": cpu, "memory": memory, "ephemeral-storage": "100Gi", "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": "100Gi", "pods": "110"},
        }});
        nodes
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }
    let pod_ns = format!("{ns}-pods");
    create_namespace(&h.remote_admin, &pod_ns).await;
    let pods: Api<Pod> = Api::namespaced(h.remote_admin.clone(), &pod_ns);
    for (name, node, cpu, memory) in [
        ("p1", "node-a", "1500m", "2Gi"),
        ("p2", "node-a", "500m", "1Gi"),
        ("p3", "node-b", "250m", "512Mi"),
    ] {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "nodeName": node,
                "automountServiceAccountToken": false,
                "containers": [{"name": "c", "image": "busybox",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
            },
        }))
        .unwrap();
        // The namespace's default ServiceAccount appears a moment after it.
        eventually(&format!("pod {name} created"), || async {
            pods.create(&PostParams::default(), &pod).await.ok()
        })
        .await;
    }
    let classes: Api<StorageClass> = Api::all(h.remote_admin.clone());
    let class = serde_json::from_value(json!({
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "example.com/fast",
        "allowVolumeExpansion": true,
    }))
    .unwrap();
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();

    let (status, body) = h.get(&token, "/v1/kubernetesclusters/res/resources").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let gi: u64 = 1 << 30;
    assert_eq!(body["kubernetesCluster"], "res");
    assert_eq!(body["allocatable"]["cpuMillis"], 6000, "{body}");
    assert_eq!(body["requested"]["cpuMillis"], 2250, "{body}");
    assert_eq!(body["available"]["cpuMillis"], 3750, "{body}");
    assert_eq!(
        body["available"]["memoryBytes"],
        (8 * gi - 3 * gi) + (4 * gi - gi / 2),
        "{body}"
    );
    assert_eq!(body["available"]["ephemeralStorageBytes"], 200 * gi);
    assert_eq!(body["nodes"][0]["name"], "node-a");
    assert_eq!(body["nodes"][0]["available"]["cpuMillis"], 2000);
    assert_eq!(
        body["storageClasses"],
        json!([{"name": "fast", "provisioner": "example.com/fast", "isDefault": true, "allowVolumeExpansion": true}])
    );

    // The local cluster answers under `local` (the registrar holds no
    // `list nodes` there).
    let (status, body) = h
        .get(&token, "/v1/kubernetesclusters/local/resources")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = h
        .get(&token, "/v1/kubernetesclusters/nowhere/resources")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// A plain-HTTP server on loopback that answers every request with
/// `status` and `body`; returns its URL.
async fn answering(status: &'static str, body: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap()
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_metadata_private_and_insecure_urls() {
    let h = harness_with("mc-ssrf", RegistrationPolicy::default()).await;
    let (_, token) = h.registrar("sre").await;
    // Something listening on loopback: the server must not even connect.
    let listener = dbaas_testkit::forward::Forwarder::start(None)
        .await
        .unwrap();
    let cases = [
        (second_kubeconfig_base64(), "loopback"),
        (
            kubeconfig_for(&listener.https_url(), ""),
            "--allow-insecure-cluster-urls",
        ),
        (
            kubeconfig_for(
                &format!("https://localhost:{}", listener.local_addr().port()),
                "",
            ),
            "loopback",
        ),
        (kubeconfig_for("https://169.254.169.254", ""), "link-local"),
        (kubeconfig_for("https://[fe80::1]:6443", ""), "link-local"),
        (
            kubeconfig_for("https://[::ffff:169.254.169.254]", ""),
            "link-local",
        ),
        (
            kubeconfig_for("https://metadata.google.internal", ""),
            "metadata",
        ),
        (
            kubeconfig_for("https://kubernetes.default.svc", ""),
            "--allow-private-cluster-addresses",
        ),
        (kubeconfig_for("https://10.96.0.1", ""), "private"),
        (kubeconfig_for("https://0.0.0.0:6443", ""), "unspecified"),
        (kubeconfig_for("http://8.8.8.8", ""), "https://"),
        (
            kubeconfig_for("https://8.8.8.8", ", insecure-skip-tls-verify: true"),
            "insecure-skip-tls-verify",
        ),
    ];
    for (kubeconfig, needle) in cases {
        let (status, body) = h
            .post(
                &token,
                "/v1/kubernetesclusters",
                json!({"name": "x", "kubeconfig": kubeconfig}),
            )
            .await;
        assert_eq!(status.as_u16(), 422, "{needle}: {body}");
        assert_eq!(body["reason"], "ClusterUrlRefused", "{body}");
        assert!(message(&body).contains(needle), "{needle}: {body}");
        // A name's resolved addresses are not told.
        if message(&body).contains("localhost") {
            assert!(!message(&body).contains("127.0.0.1"), "{body}");
        }
    }
    // A proxy would connect anywhere for us.
    let (status, body) = h
        .post(
            &token,
            "/v1/kubernetesclusters",
            json!({"name": "x", "kubeconfig": kubeconfig_for("https://8.8.8.8", ", proxy-url: 'http://127.0.0.1:3128'")}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("proxy-url"), "{body}");
    assert_eq!(listener.accepted(), 0, "no connection was attempted");
    let stored = registrations(&h.ns.name, &h.admin)
        .list(&ListParams::default().labels("dbaas.io/kubernetes-cluster-registration=true"))
        .await
        .unwrap();
    assert!(stored.items.is_empty(), "nothing stored");
}

#[tokio::test]
async fn what_a_registered_url_answers_is_not_passed_back() {
    let h = harness("mc-echo").await;
    let (_, token) = h.registrar("sre").await;
    let refusing = answering(
        "418 SECRET-REASON",
        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"SECRET-BODY internal data","reason":"SECRET-REASON","code":418}"#,
    )
    .await;
    let not_kubernetes = answering("200 OK", "SECRET-PAGE <html>internal</html>").await;
    for url in [refusing, not_kubernetes] {
        let (status, body) = h
            .post(
                &token,
                "/v1/kubernetesclusters",
                json!({"name": "x", "kubeconfig": kubeconfig_for(&url, "")}),
            )
            .await;
        assert_eq!(status.as_u16(), 422, "{body}");
        assert_eq!(body["reason"], "ClusterUnreachable", "{body}");
        assert!(message(&body).contains(&url), "{body}");
        assert!(!body.to_string().contains("SECRET"), "{body}");
        assert!(!body.to_string().contains("internal"), "{body}");
    }
}

#[tokio::test]
async fn last_errors_only_for_callers_who_manage_registrations() {
    let h = harness("mc-lasterr").await;
    let ns = h.ns.name.clone();
    let (_, registrar) = h.registrar("sre").await;
    let viewer = namespaced_user(
        &h.admin,
        &ns,
        "viewer",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["kubernetesclusters"], "verbs": ["get", "list"]}]),
    )
    .await
    .unwrap();
    let forwarder = dbaas_testkit::forward::Forwarder::start(Some(second().api_addr().unwrap()))
        .await
        .unwrap();
    let (status, body) = h
        .post(
            &registrar,
            "/v1/kubernetesclusters",
            json!({"name": "flaky", "kubeconfig": second_kubeconfig_via(&forwarder.https_url())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.wait_cluster_synced(&registrar, "flaky").await;
    // The API server goes away: the next check fails.
    forwarder.switch_to(None);
    let seen = eventually("the failed check", || async {
        let (status, body) = h.get(&registrar, "/v1/kubernetesclusters/flaky").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["reachable"] == false && body["lastError"].is_string()).then_some(body)
    })
    .await;
    assert!(
        message_free(&seen["lastError"]),
        "a fixed description: {seen}"
    );
    let (_, list) = h.get(&registrar, "/v1/kubernetesclusters").await;
    assert!(list["items"][0]["lastError"].is_string(), "{list}");
    // Someone who may only look sees that it is unreachable, not why.
    let (status, body) = h.get(&viewer, "/v1/kubernetesclusters/flaky").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reachable"], false, "{body}");
    assert_eq!(body["lastError"], Value::Null, "{body}");
    let (status, list) = h.get(&viewer, "/v1/kubernetesclusters").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["name"], "flaky", "{list}");
    assert_eq!(list["items"][0]["lastError"], Value::Null, "{list}");
}

/// A fixed description names no address and quotes nothing.
fn message_free(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    !text.is_empty() && !text.contains("127.0.0.1") && !text.contains("error trying")
}

#[tokio::test]
async fn registrations_are_capped() {
    let h = harness_with(
        "mc-cap",
        RegistrationPolicy {
            max_registrations: 1,
            ..loopback_allowed()
        },
    )
    .await;
    let (_, token) = h.registrar("sre").await;
    h.register_second(&token, "one").await;
    let (status, body) = h
        .post(
            &token,
            "/v1/kubernetesclusters",
            json!({"name": "two", "kubeconfig": second_kubeconfig_base64()}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["reason"], "TooManyRegistrations", "{body}");
    assert!(
        message(&body).contains("--max-cluster-registrations"),
        "{body}"
    );
    let stored = registrations(&h.ns.name, &h.admin)
        .list(&ListParams::default().labels("dbaas.io/kubernetes-cluster-registration=true"))
        .await
        .unwrap();
    assert_eq!(stored.items.len(), 1);
    // Room again after unregistering.
    let (status, _) = h
        .send(
            &token,
            reqwest::Method::DELETE,
            "/v1/kubernetesclusters/one",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.register_second(&token, "two").await;
}

fn list_databases() -> Permission {
    Permission {
        verb: "list",
        group: "dbaas.io".into(),
        resource: "databaseclusters".into(),
        subresource: None,
        namespace: None,
        name: None,
    }
}

fn caller(username: &str, groups: &[&str]) -> Arc<Caller> {
    Arc::new(Caller {
        username: username.to_owned(),
        uid: None,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        extra: BTreeMap::new(),
    })
}

#[tokio::test]
async fn remote_rbac_must_name_the_prefixed_identity() {
    let h = harness("mc-ident").await;
    let ns = h.ns.name.clone();
    let (_, registrar) = h.registrar("sre").await;
    h.register_second(&registrar, "far").await;
    h.wait_cluster_synced(&registrar, "far").await;
    let remote_ns = format!("{ns}-remote");
    create_namespace(&h.remote_admin, &remote_ns).await;
    let db_rules = json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"],
        "verbs": ["get", "list", "create"]}]);

    // Granted on the registered cluster under the management cluster's
    // names (the ServiceAccount, and the same user name): not enough.
    let plain = namespaced_user(
        &h.admin,
        &ns,
        "plain",
        json!([{"apiGroups": ["dbaas.io"], "resources": ["kubernetesclusters"], "verbs": ["get", "list"]}]),
    )
    .await
    .unwrap();
    h.bind(
        &h.remote_admin,
        "plain-sa",
        json!({"kind": "ServiceAccount", "name": "plain", "namespace": ns}),
        db_rules.clone(),
    )
    .await;
    h.bind(
        &h.remote_admin,
        "plain-user",
        json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io",
            "name": format!("system:serviceaccount:{ns}:plain")}),
        db_rules.clone(),
    )
    .await;
    let list_path = format!("/v1/kubernetesclusters/far/namespaces/{remote_ns}/databaseclusters");
    let (status, body) = h.get(&plain, &list_path).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        message(&body).contains(&format!(
            "user {} cannot list databaseclusters.dbaas.io",
            remote_user(&ns, "plain")
        )),
        "{body}"
    );
    let (status, body) = h.post(&plain, &list_path, cluster_body("nope")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Granted under the prefixed name: allowed (once the cached denial
    // expires), and the write impersonates that name there.
    h.grant_remote("plain", db_rules.clone()).await;
    eventually("the prefixed grant applies", || async {
        let (status, _) = h.get(&plain, &list_path).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let (status, body) = eventually("the create", || async {
        let (status, body) = h.post(&plain, &list_path, cluster_body("db-plain")).await;
        (status != StatusCode::FORBIDDEN).then_some((status, body))
    })
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // The local cluster keeps the caller's own identity: system:masters
    // there is everything...
    let far = h.server.state.clusters.get("far").unwrap();
    let root = caller("root", &["system:masters", "system:authenticated"]);
    h.server
        .state
        .auth
        .authorize(&root, list_databases())
        .await
        .unwrap();
    let local: Api<DatabaseCluster> = Api::all(h.server.state.auth.client_for(&root).unwrap());
    local.list(&ListParams::default()).await.unwrap();
    // ... and nothing extra on the registered cluster: neither the
    // SubjectAccessReview there nor the impersonated request.
    let err = far
        .auth
        .authorize(&root, list_databases())
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 403, "{err}");
    assert!(err.to_string().contains("user dbaas:root cannot"), "{err}");
    let remote: Api<DatabaseCluster> = Api::all(far.auth.client_for(&root).unwrap());
    match remote.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("system:masters must not carry over: {other:?}"),
    }

    // Groups: the prefixed name counts, the bare one does not.
    h.bind(
        &h.remote_admin,
        "db-admins",
        json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "dbaas:db-admins"}),
        db_rules.clone(),
    )
    .await;
    h.bind(
        &h.remote_admin,
        "db-ops",
        json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "db-ops"}),
        db_rules,
    )
    .await;
    let carol = caller("carol", &["db-admins"]);
    far.auth.authorize(&carol, list_databases()).await.unwrap();
    let as_carol: Api<DatabaseCluster> = Api::all(far.auth.client_for(&carol).unwrap());
    as_carol.list(&ListParams::default()).await.unwrap();
    let dave = caller("dave", &["db-ops"]);
    assert!(far.auth.authorize(&dave, list_databases()).await.is_err());
    let as_dave: Api<DatabaseCluster> = Api::all(far.auth.client_for(&dave).unwrap());
    assert!(as_dave.list(&ListParams::default()).await.is_err());
}
