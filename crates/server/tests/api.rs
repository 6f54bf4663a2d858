//! The REST API against the real control plane (kube-apiserver with RBAC):
//! callers are ServiceAccounts with tokens from the TokenRequest API and
//! Roles of their own; the server runs in-process on 127.0.0.1:0 with the
//! control plane's admin kubeconfig as its own identity.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::future::Future;
use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_server::{AuthConfig, RunningServer, ServerConfig, Transport};
use dbaas_testkit::TestNamespace;
use dbaas_testkit::accounts::namespaced_user;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

struct Harness {
    server: RunningServer,
    admin: Client,
    ns: TestNamespace,
    http: reqwest::Client,
}

async fn harness(prefix: &str) -> Harness {
    harness_with(prefix, AuthConfig::default()).await
}

async fn harness_with(prefix: &str, auth: AuthConfig) -> Harness {
    harness_config(
        prefix,
        ServerConfig {
            auth,
            transport: Transport::PlainHttp,
            ..ServerConfig::default()
        },
    )
    .await
}

async fn harness_config(prefix: &str, config: ServerConfig) -> Harness {
    let cp = dbaas_testkit::shared();
    let admin = cp.client().await.expect("admin client");
    let ns = TestNamespace::create(&admin, prefix)
        .await
        .expect("namespace");
    let kube_config = cp.config().await.expect("kube config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(kube_config, listener, &config).expect("server starts");
    server.wait_synced(TIMEOUT).await.expect("caches sync");
    Harness {
        server,
        admin,
        ns,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    fn ns_url(&self, rest: &str) -> String {
        self.url(&format!("/v1/namespaces/{}/{rest}", self.ns.name))
    }

    /// A ServiceAccount of the test namespace holding `rules` there, and a
    /// token for it. Returns (username, token).
    async fn user(&self, name: &str, rules: Value) -> (String, String) {
        let ns = &self.ns.name;
        let token = namespaced_user(&self.admin, ns, name, rules).await.unwrap();
        (format!("system:serviceaccount:{ns}:{name}"), token)
    }

    async fn send(
        &self,
        token: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} {url}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, token: &str, url: &str) -> (StatusCode, Value) {
        self.send(token, reqwest::Method::GET, url, None).await
    }

    async fn post(&self, token: &str, url: &str, body: Value) -> (StatusCode, Value) {
        self.send(token, reqwest::Method::POST, url, Some(body))
            .await
    }

    fn clusters(&self) -> Api<DatabaseCluster> {
        self.ns.api()
    }
}

fn cluster_body(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql"}, "storage": {"size": "1Gi"}},
    })
}

fn rules(verbs: &[&str], resources: &[&str]) -> Value {
    json!([{"apiGroups": ["dbaas.io"], "resources": resources, "verbs": verbs}])
}

/// Retries `check` until it returns Some or the timeout passes.
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names_of(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn admin_create_cluster(h: &Harness, name: &str, labels: Value) {
    let mut body = cluster_body(name);
    body["metadata"]["labels"] = labels;
    h.clusters()
        .create(
            &PostParams::default(),
            &serde_json::from_value(body).unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn missing_or_invalid_tokens_get_401_and_health_needs_none() {
    let h = harness("srv-authn").await;
    let url = h.ns_url("databaseclusters");
    let no_header = h.http.get(&url).send().await.unwrap();
    assert_eq!(no_header.status(), StatusCode::UNAUTHORIZED);
    let body: Value = no_header.json().await.unwrap();
    assert_eq!(body["reason"], "Unauthenticated");
    assert_eq!(body["code"], 401);

    let basic = h
        .http
        .get(&url)
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);

    let (status, body) = h.get("not-a-real-token", &url).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "Unauthenticated");
    assert_eq!(body["message"], "the bearer token is not valid");

    for path in ["/healthz", "/readyz"] {
        let response = h.http.get(h.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_failed_token_review_tells_the_unauthenticated_caller_nothing() {
    // A server whose own identity may not create TokenReviews.
    let cp = dbaas_testkit::shared();
    let admin = cp.client().await.unwrap();
    let ns = TestNamespace::create(&admin, "srv-tr").await.unwrap();
    let powerless = dbaas_testkit::accounts::service_account_token(&admin, &ns.name, "powerless")
        .await
        .unwrap();
    let mut kube_config = cp.config().await.unwrap();
    kube_config.auth_info = kube::config::AuthInfo {
        token: Some(powerless.into()),
        ..kube::config::AuthInfo::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server =
        dbaas_server::start(kube_config, listener, &ServerConfig::plain_http()).expect("starts");
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/namespaces/{}/databaseclusters",
            server.url(),
            ns.name
        ))
        .bearer_auth("whatever-token")
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("could not be reviewed"), "{body}");
    for secret in ["forbidden", "powerless", "serviceaccount", "tokenreviews"] {
        assert!(!message.contains(secret), "{secret}: {body}");
    }
}

#[tokio::test]
async fn rbac_decides_reads_and_403_names_the_missing_permission() {
    let h = harness("srv-authz").await;
    let ns = h.ns.name.clone();
    let (nobody, nobody_token) = h.user("nobody", json!([])).await;
    let (_, reader) = h
        .user("reader", rules(&["get", "list"], &["databaseclusters"]))
        .await;
    admin_create_cluster(&h, "visible", json!({})).await;

    let (status, body) = h.get(&nobody_token, &h.ns_url("databaseclusters")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        format!("user {nobody} cannot list databaseclusters.dbaas.io in namespace {ns}")
    );
    let (status, body) = h
        .get(&nobody_token, &h.ns_url("databaseclusters/visible"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        format!("user {nobody} cannot get databaseclusters.dbaas.io \"visible\" in namespace {ns}")
    );

    let listed = eventually("the reader sees the cluster", || async {
        let (status, body) = h.get(&reader, &h.ns_url("databaseclusters")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (names_of(&body) == ["visible"]).then_some(body)
    })
    .await;
    assert!(listed["continue"].is_null());
    let (status, body) = h.get(&reader, &h.ns_url("databaseclusters/visible")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["kind"], "DatabaseCluster");
    assert_eq!(body["spec"]["engine"]["type"], "postgresql");

    // A namespaced Role does not grant the cross-namespace list.
    let (status, body) = h.get(&reader, &h.url("/v1/databaseclusters")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .ends_with("cannot list databaseclusters.dbaas.io across all namespaces")
    );
    // Reading is not writing.
    let (status, body) = h
        .post(&reader, &h.ns_url("databaseclusters"), cluster_body("nope"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot create databaseclusters.dbaas.io")
    );
    // Other kinds need their own permission.
    let (status, _) = h.get(&reader, &h.ns_url("databaseclaims")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn writes_happen_as_the_caller_and_return_the_written_object() {
    let h = harness("srv-write").await;
    let (writer, token) = h
        .user(
            "writer",
            rules(
                &["get", "list", "create", "update", "patch", "delete"],
                &["databaseclusters"],
            ),
        )
        .await;

    let (status, created) = h
        .post(
            &token,
            &h.ns_url("databaseclusters"),
            cluster_body("orders"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["metadata"]["uid"].is_string());
    assert_eq!(created["metadata"]["annotations"]["dbaas.io/origin"], "api");
    let managers: Vec<&str> = created["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, [format!("dbaas-server/{writer}")]);

    // Served from the cache once the watch has seen it.
    eventually("the cluster in the cache", || async {
        h.server
            .state
            .stores
            .clusters
            .get(&h.ns.name, "orders")
            .map(|_| ())
    })
    .await;
    let (status, fetched) = h.get(&token, &h.ns_url("databaseclusters/orders")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["metadata"]["uid"], created["metadata"]["uid"]);

    // Merge patch.
    let response = h
        .http
        .patch(h.ns_url("databaseclusters/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(
            json!({"spec": {"clusterSize": 3}, "metadata": {"labels": {"team": "payments"}}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["spec"]["clusterSize"], 3);
    assert_eq!(patched["metadata"]["labels"]["team"], "payments");

    // Replace without a resourceVersion replaces the version last seen.
    let mut replacement = patched.clone();
    replacement["spec"]["storage"]["size"] = json!("2Gi");
    replacement["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    replacement["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    let replaced = eventually("replace with the cached resourceVersion", || async {
        let (status, body) = h
            .send(
                &token,
                reqwest::Method::PUT,
                &h.ns_url("databaseclusters/orders"),
                Some(replacement.clone()),
            )
            .await;
        // The cache may still hold the version before the patch: a 409,
        // never a lost update.
        assert!(
            status == StatusCode::OK || status == StatusCode::CONFLICT,
            "{status} {body}"
        );
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    assert_eq!(replaced["spec"]["storage"]["size"], "2Gi");
    assert_eq!(replaced["spec"]["clusterSize"], 3);
    // A stale explicit resourceVersion is a conflict.
    let mut stale = replacement.clone();
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let (status, body) = h
        .send(
            &token,
            reqwest::Method::PUT,
            &h.ns_url("databaseclusters/orders"),
            Some(stale),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["reason"], "Conflict");

    let (status, _) = h
        .send(
            &token,
            reqwest::Method::DELETE,
            &h.ns_url("databaseclusters/orders"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.clusters().get_opt("orders").await.unwrap().is_none());
    eventually("the cluster gone from the API", || async {
        let (status, body) = h.get(&token, &h.ns_url("databaseclusters/orders")).await;
        (status == StatusCode::NOT_FOUND).then_some(body)
    })
    .await;
}

#[tokio::test]
async fn the_api_server_judges_writes_by_the_callers_own_rbac() {
    // Our own SubjectAccessReview answers live long here, so after the Role
    // loses `create` only impersonation can stop the write.
    let h = harness_with(
        "srv-imp",
        AuthConfig {
            cache_ttl: Duration::from_secs(120),
            ..AuthConfig::default()
        },
    )
    .await;
    let (_, token) = h
        .user("maker", rules(&["create", "list"], &["databaseclusters"]))
        .await;
    let (status, body) = h
        .post(&token, &h.ns_url("databaseclusters"), cluster_body("first"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let roles: Api<Role> = Api::namespaced(h.admin.clone(), &h.ns.name);
    roles
        .patch(
            "maker",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": rules(&["list"], &["databaseclusters"])})),
        )
        .await
        .unwrap();
    let mut attempt = 0;
    let refused = eventually("the API server to refuse the caller", || {
        attempt += 1;
        let name = format!("again-{attempt}");
        let h = &h;
        let token = &token;
        async move {
            let (status, body) = h
                .post(token, &h.ns_url("databaseclusters"), cluster_body(&name))
                .await;
            (status == StatusCode::FORBIDDEN).then_some(body)
        }
    })
    .await;
    // The API server's wording, not ours: the refusal came through impersonation.
    assert_eq!(refused["reason"], "Forbidden");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "User \"system:serviceaccount:{}:maker\" cannot create resource \"databaseclusters\"",
            h.ns.name
        )),
        "{message}"
    );
    // The server's own identity could have created it.
    admin_create_cluster(&h, "admin-can", json!({})).await;
}

#[tokio::test]
async fn lists_page_in_order_and_filter_by_label_selectors() {
    let h = harness("srv-page").await;
    let (_, token) = h
        .user("lister", rules(&["list"], &["databaseclusters"]))
        .await;
    let mut expected = Vec::new();
    for i in 0..25 {
        let name = format!("db-{i:02}");
        let labels = match i % 3 {
            0 => json!({"tier": "gold"}),
            1 => json!({"tier": "silver"}),
            _ => json!({}),
        };
        admin_create_cluster(&h, &name, labels).await;
        expected.push(name);
    }
    eventually("all 25 clusters in the cache", || async {
        let (_, body) = h.get(&token, &h.ns_url("databaseclusters")).await;
        (names_of(&body).len() == 25).then_some(())
    })
    .await;

    let mut seen = Vec::new();
    let mut remaining_counts = Vec::new();
    let mut url = h.ns_url("databaseclusters?limit=10");
    loop {
        let (status, page) = h.get(&token, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(names_of(&page));
        remaining_counts.push(page["remainingItemCount"].as_u64());
        match page["continue"].as_str() {
            Some(token) => url = h.ns_url(&format!("databaseclusters?limit=10&continue={token}")),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every item once, ordered by name");
    assert_eq!(remaining_counts, [Some(15), Some(5), None]);

    let count = |selector: &'static str| {
        let h = &h;
        let token = &token;
        async move {
            let url = h.ns_url(&format!(
                "databaseclusters?labelSelector={}",
                percent_encode(selector)
            ));
            let (status, body) = h.get(token, &url).await;
            assert_eq!(status, StatusCode::OK, "{selector}: {body}");
            names_of(&body).len()
        }
    };
    assert_eq!(count("tier=gold").await, 9);
    assert_eq!(count("tier==gold").await, 9);
    assert_eq!(count("tier!=gold").await, 16);
    assert_eq!(count("tier").await, 17);
    assert_eq!(count("!tier").await, 8);
    assert_eq!(count("tier in (gold,silver)").await, 17);
    assert_eq!(count("tier notin (gold)").await, 16);
    assert_eq!(count("tier=gold,!tier").await, 0);

    // A selector with pages: no remainingItemCount, still every match once.
    let (_, first) = h
        .get(
            &token,
            &h.ns_url("databaseclusters?limit=5&labelSelector=tier%3Dgold"),
        )
        .await;
    assert_eq!(
        names_of(&first),
        ["db-00", "db-03", "db-06", "db-09", "db-12"]
    );
    assert!(first.get("remainingItemCount").is_none());
    let next = first["continue"].as_str().unwrap();
    let (_, second) = h
        .get(
            &token,
            &h.ns_url(&format!(
                "databaseclusters?limit=5&labelSelector=tier%3Dgold&continue={next}"
            )),
        )
        .await;
    assert_eq!(names_of(&second), ["db-15", "db-18", "db-21", "db-24"]);
    assert!(second["continue"].is_null());

    for (query, reason) in [
        ("labelSelector=tier%20in%20(gold", "InvalidQuery"),
        ("labelSelector=%3Dgold", "InvalidQuery"),
        ("limit=ten", "InvalidQuery"),
        ("limit=-1", "InvalidQuery"),
        ("continue=garbage!", "InvalidQuery"),
        ("labelselector=tier", "InvalidQuery"),
    ] {
        let (status, body) = h
            .get(&token, &h.ns_url(&format!("databaseclusters?{query}")))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["reason"], reason, "{query}");
    }

    // Across namespaces (a ClusterRole): ordered by namespace, then name.
    let name = format!("{}-all", h.ns.name);
    let cluster_roles: Api<ClusterRole> = Api::all(h.admin.clone());
    cluster_roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}, "rules": rules(&["list"], &["databaseclusters"])}))
                .unwrap(),
        )
        .await
        .unwrap();
    let cluster_bindings: Api<ClusterRoleBinding> = Api::all(h.admin.clone());
    cluster_bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": "lister", "namespace": h.ns.name}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let all = eventually("the cluster-wide list", || async {
        // The first answer (403) may be cached for a few seconds.
        let (status, body) = h.get(&token, &h.url("/v1/databaseclusters")).await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;
    let keys: Vec<(String, String)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["metadata"]["namespace"].as_str().unwrap().to_owned(),
                i["metadata"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(keys.iter().filter(|(ns, _)| *ns == h.ns.name).count() >= 25);
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_reason_never_a_500() {
    let h = harness("srv-bad").await;
    let (_, token) = h
        .user(
            "writer",
            rules(
                &["get", "list", "create", "update", "patch", "delete"],
                &["databaseclusters", "databaseclustertemplates"],
            ),
        )
        .await;
    let url = h.ns_url("databaseclusters");
    let raw = |body: String, content_type: &'static str| {
        let h = &h;
        let token = &token;
        let url = url.clone();
        async move {
            let response = h
                .http
                .post(url)
                .bearer_auth(token)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let expect =
        |status: StatusCode, body: &Value, code: StatusCode, reason: &str, needle: &str| {
            assert_eq!(status, code, "{body}");
            assert_eq!(body["reason"], reason, "{body}");
            assert_eq!(body["code"], code.as_u16());
            assert!(
                body["message"].as_str().unwrap().contains(needle),
                "{needle:?} in {body}"
            );
        };

    let (s, b) = raw("{\"metadata\": {".into(), "application/json").await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "not valid JSON",
    );
    let (s, b) = raw("[1, 2]".into(), "application/json").await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "must be a JSON object",
    );
    let mut unknown = cluster_body("typo");
    unknown["spec"]["sise"] = json!(3);
    let (s, b) = h.post(&token, &url, unknown).await;
    expect(s, &b, StatusCode::BAD_REQUEST, "UnknownField", "spec.sise");
    let mut wrong_type = cluster_body("wrong");
    wrong_type["spec"]["clusterSize"] = json!("three");
    let (s, b) = h.post(&token, &url, wrong_type).await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "invalid type",
    );
    let (s, b) = h.post(&token, &url, cluster_body("Bad_Name")).await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidName",
        "\"Bad_Name\"",
    );
    let (s, b) = h
        .post(&token, &url, json!({"spec": cluster_body("x")["spec"]}))
        .await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "missing field `metadata`",
    );
    let (s, b) = h
        .post(
            &token,
            &url,
            json!({"metadata": {}, "spec": cluster_body("x")["spec"]}),
        )
        .await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "metadata.name is required",
    );
    let (s, b) = h
        .get(&token, &h.ns_url("databaseclusters/Not.A.Label"))
        .await;
    expect(s, &b, StatusCode::BAD_REQUEST, "InvalidName", "Not.A.Label");
    let big = format!(
        "{{\"metadata\":{{\"name\":\"big\"}},\"spec\":{{\"engine\":{{\"type\":\"postgresql\"}},\"storage\":{{\"size\":\"1Gi\"}},\"credentialsSecretName\":\"{}\"}}}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let (s, b) = raw(big, "application/json").await;
    expect(
        s,
        &b,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
        "1048576",
    );
    let (s, b) = raw(cluster_body("text").to_string(), "text/plain").await;
    expect(
        s,
        &b,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "text/plain",
    );
    let (s, b) = h.get(&token, &h.url("/v1/namespaces/x/pizzas")).await;
    expect(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "NotFound",
        "/v1/namespaces/x/pizzas",
    );
    let (s, b) = h
        .post(&token, &h.ns_url("databaseclusters/x"), json!({}))
        .await;
    expect(
        s,
        &b,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "POST",
    );
    let (s, b) = h.get(&token, &h.ns_url("databaseclusters/missing")).await;
    expect(s, &b, StatusCode::NOT_FOUND, "NotFound", "missing");

    // What only the API server can judge (CEL) is its 422, passed on.
    let mut even_mysql = cluster_body("even");
    even_mysql["spec"]["engine"]["type"] = json!("mysql");
    even_mysql["spec"]["clusterSize"] = json!(2);
    let (s, b) = h.post(&token, &url, even_mysql).await;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        "odd clusterSize",
    );

    let (s, b) = h.post(&token, &url, cluster_body("twice")).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = h.post(&token, &url, cluster_body("twice")).await;
    expect(s, &b, StatusCode::CONFLICT, "AlreadyExists", "twice");
    let (s, b) = h
        .send(
            &token,
            reqwest::Method::PUT,
            &h.ns_url("databaseclusters/twice"),
            Some(cluster_body("other")),
        )
        .await;
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "differs from the name in the URL",
    );
    let mut bad_patch = h
        .http
        .patch(h.ns_url("databaseclusters/twice"))
        .bearer_auth(&token);
    bad_patch = bad_patch
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"clusterSize": {"a": 1}}}).to_string());
    let response = bad_patch.send().await.unwrap();
    let (s, b) = (response.status(), response.json::<Value>().await.unwrap());
    expect(
        s,
        &b,
        StatusCode::BAD_REQUEST,
        "InvalidBody",
        "invalid type",
    );

    let mut templated = cluster_body("templated");
    templated["metadata"]["annotations"] = json!({"dbaas.io/template-name": "no-such-template"});
    let (s, b) = h.post(&token, &url, templated).await;
    expect(
        s,
        &b,
        StatusCode::UNPROCESSABLE_ENTITY,
        "TemplateNotFound",
        "no-such-template",
    );
}

#[tokio::test]
async fn credentials_only_for_callers_who_may_read_the_secret() {
    let h = harness("srv-cred").await;
    let ns = h.ns.name.clone();
    admin_create_cluster(&h, "pg", json!({})).await;
    let secrets: Api<Secret> = Api::namespaced(h.admin.clone(), &ns);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "pg-superuser"},
                "stringData": {"username": "postgres", "password": "s3cret-Pa55"},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    h.clusters()
        .patch_status(
            "pg",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"credentialsSecret": "pg-superuser", "host": "pg-rw.svc", "port": 5432}})),
        )
        .await
        .unwrap();
    let (cluster_reader, cluster_only) = h
        .user("cluster-only", rules(&["get"], &["databaseclusters"]))
        .await;
    let (_, with_secret) = h
        .user(
            "with-secret",
            json!([
                {"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["pg-superuser"], "verbs": ["get"]},
            ]),
        )
        .await;
    let (secret_reader, secret_only) = h
        .user(
            "secret-only",
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        )
        .await;
    let url = h.ns_url("databaseclusters/pg/credentials");

    let (status, body) = h.get(&secret_only, &url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        format!(
            "user {secret_reader} cannot get databaseclusters.dbaas.io \"pg\" in namespace {ns}"
        )
    );
    // Wait for the status to reach the cache, then: no Secret permission, no password.
    eventually("the cluster status in the cache", || async {
        let entry = h.server.state.stores.clusters.get(&ns, "pg")?;
        entry
            .object
            .status
            .as_ref()?
            .credentials_secret
            .as_ref()
            .map(|_| ())
    })
    .await;
    let (status, body) = h.get(&cluster_only, &url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        format!("user {cluster_reader} cannot get secrets \"pg-superuser\" in namespace {ns}")
    );
    assert!(!body.to_string().contains("s3cret"));

    let (status, body) = h.get(&with_secret, &url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["secretName"], "pg-superuser");
    assert_eq!(body["username"], "postgres");
    assert_eq!(body["password"], "s3cret-Pa55");
    assert_eq!(body["host"], "pg-rw.svc");
    assert_eq!(body["port"], 5432);
}

#[tokio::test]
async fn engines_templates_claims_and_ops_requests() {
    let h = harness("srv-misc").await;
    let ns = h.ns.name.clone();
    let (_, token) = h
        .user(
            "dev",
            rules(
                &["get", "list", "create", "patch", "delete"],
                &[
                    "databaseclusters",
                    "databaseclustertemplates",
                    "databaseclaims",
                    "opsrequests",
                    "databaseengines",
                    "databasebackups",
                ],
            ),
        )
        .await;

    let engines: Api<dbaas_api::DatabaseEngine> = h.ns.api();
    engines
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "postgresql"}, "spec": {"type": "postgresql", "allowedVersions": ["16.4", "17.2"], "defaultVersion": "17.2"}})).unwrap(),
        )
        .await
        .unwrap();
    engines
        .patch_status(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "status": "Installed",
                "operatorVersion": "1.25.0",
                "defaultVersion": "17.2",
                "availableVersions": [
                    {"version": "15.8", "image": "pg:15.8", "allowed": false},
                    {"version": "16.4", "image": "pg:16.4", "allowed": true},
                    {"version": "17.2", "image": "pg:17.2", "allowed": true, "default": true},
                ],
            }})),
        )
        .await
        .unwrap();
    let versions = eventually("the engine in the cache", || async {
        let (status, body) = h.get(&token, &h.ns_url("engineversions")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["items"][0]["operatorStatus"] == "Installed").then_some(body)
    })
    .await;
    // What the engine supports comes with it, from its provider.
    let mut versions = versions;
    let capabilities = versions["items"][0]
        .as_object_mut()
        .and_then(|engine| engine.remove("capabilities"))
        .expect("the engine's capabilities");
    assert_eq!(capabilities["proxies"], json!(["pgbouncer"]));
    assert_eq!(capabilities["operator"], "CloudNativePG");
    assert_eq!(
        capabilities["connection"],
        json!({"scheme": "postgresql", "database": "postgres", "defaultPort": 5432})
    );
    assert!(
        capabilities["notOffered"]
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["type"] == "Restore"
                && op["why"].as_str().unwrap().contains("spec.dataSource")),
        "{capabilities}"
    );
    assert_eq!(
        versions,
        json!({"items": [{
            "engineType": "postgresql", "name": "postgresql", "operatorStatus": "Installed",
            "operatorVersion": "1.25.0", "offered": ["15.8", "16.4", "17.2"],
            "allowed": ["16.4", "17.2"], "default": "17.2",
        }]})
    );

    // A template made through the API, then a cluster choosing it by name:
    // the kind is filled in, and the version is the engine's default.
    let (status, body) = h
        .post(
            &token,
            &h.ns_url("databaseclustertemplates"),
            json!({"metadata": {"name": "small"}, "spec": {"engineType": "postgresql", "storageClass": "fast"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut cluster = cluster_body("from-template");
    cluster["metadata"]["annotations"] = json!({"dbaas.io/template-name": "small"});
    let (status, created) = h.post(&token, &h.ns_url("databaseclusters"), cluster).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["metadata"]["annotations"]["dbaas.io/template-kind"],
        "DatabaseClusterTemplate"
    );
    assert_eq!(created["spec"]["engine"]["version"], "17.2");
    // A version the engine offers but does not allow, and one it does not
    // offer: refused at the field before anything is written, on create
    // and on a patch alike.
    let mut refused = cluster_body("old-version");
    refused["spec"]["engine"]["version"] = json!("15.8");
    let (status, body) = h.post(&token, &h.ns_url("databaseclusters"), refused).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["reason"], "VersionNotAllowed");
    assert_eq!(
        body["message"],
        r#"spec.engine.version: Unsupported value: "15.8": supported values: "17.2", "16.4""#
    );
    assert!(h.clusters().get_opt("old-version").await.unwrap().is_none());
    let response = h
        .http
        .patch(h.ns_url("databaseclusters/from-template"))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"engine": {"version": "9.9"}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "VersionNotOffered", "{body}");
    let mut mismatched = cluster_body("wrong-engine");
    mismatched["spec"]["engine"]["type"] = json!("mongodb");
    mismatched["metadata"]["annotations"] = json!({"dbaas.io/template-name": "small"});
    let (status, body) = h
        .post(&token, &h.ns_url("databaseclusters"), mismatched)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["reason"], "TemplateEngineMismatch");
    // Who may create clusters but not read templates learns nothing of
    // them: an existing template of another engine and a missing one get
    // the same 403.
    let (_, creator) = h
        .user("creator", rules(&["create"], &["databaseclusters"]))
        .await;
    let mut answers = Vec::new();
    for template in ["small", "absent"] {
        let mut named = cluster_body(&format!("probe-{template}"));
        named["spec"]["engine"]["type"] = json!("mongodb");
        named["metadata"]["annotations"] = json!({"dbaas.io/template-name": template});
        let (status, body) = h.post(&creator, &h.ns_url("databaseclusters"), named).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{template}: {body}");
        assert_eq!(body["reason"], "Forbidden", "{template}: {body}");
        let message = body["message"].as_str().unwrap().replace(template, "NAME");
        assert!(
            !message.contains("mongodb") && !message.contains("postgresql"),
            "{message}"
        );
        answers.push(message);
    }
    assert_eq!(answers[0], answers[1]);

    // Claims: create and delete.
    let (status, claim) = h
        .post(
            &token,
            &h.ns_url("databaseclaims"),
            json!({"metadata": {"name": "app"}, "spec": {"secretName": "app-db", "type": "postgres", "username": "app", "databaseName": "app"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{claim}");
    assert_eq!(claim["spec"]["dsnName"], "dsn");
    let (status, _) = h
        .send(
            &token,
            reqwest::Method::DELETE,
            &h.ns_url("databaseclaims/app"),
            None,
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::ACCEPTED,
        "{status}"
    );
    // Claims take no PUT through this API.
    let (status, body) = h
        .send(
            &token,
            reqwest::Method::PUT,
            &h.ns_url("databaseclaims/app"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");

    // An ops request, listed under its cluster.
    let (status, ops) = h
        .post(
            &token,
            &h.ns_url("opsrequests"),
            json!({"metadata": {"name": "scale-up"}, "spec": {"clusterRef": {"name": "from-template"}, "type": "HorizontalScaling", "horizontalScaling": {"replicas": 3}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ops}");
    let (status, body) = h
        .post(
            &token,
            &h.ns_url("opsrequests"),
            json!({"metadata": {"name": "no-spec"}, "spec": {"clusterRef": {"name": "from-template"}, "type": "HorizontalScaling"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("needs horizontalScaling"),
        "{body}"
    );
    let listed = eventually("the ops request under its cluster", || async {
        let (status, body) = h
            .get(
                &token,
                &h.ns_url("databaseclusters/from-template/opsrequests"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (names_of(&body) == ["scale-up"]).then_some(body)
    })
    .await;
    assert_eq!(listed["items"][0]["spec"]["type"], "HorizontalScaling");
    let (_, other) = h
        .get(&token, &h.ns_url("databaseclusters/other/opsrequests"))
        .await;
    assert!(names_of(&other).is_empty());

    // A backup, listed under its cluster; taken once, so no PUT.
    let (status, backup) = h
        .post(
            &token,
            &h.ns_url("databasebackups"),
            json!({"metadata": {"name": "before-migration"}, "spec": {"clusterName": "from-template"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{backup}");
    let (status, body) = h
        .post(
            &token,
            &h.ns_url("databasebackups"),
            json!({"metadata": {"name": "no-cluster"}, "spec": {}}),
        )
        .await;
    // Not a DatabaseBackup at all: refused before it reaches Kubernetes.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("clusterName"),
        "{body}"
    );
    let (status, body) = h
        .send(
            &token,
            reqwest::Method::PUT,
            &h.ns_url("databasebackups/before-migration"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let listed = eventually("the backup under its cluster", || async {
        let (status, body) = h
            .get(&token, &h.ns_url("databaseclusters/from-template/backups"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (names_of(&body) == ["before-migration"]).then_some(body)
    })
    .await;
    assert_eq!(listed["items"][0]["spec"]["clusterName"], "from-template");
    let (_, other) = h
        .get(&token, &h.ns_url("databaseclusters/other/backups"))
        .await;
    assert!(names_of(&other).is_empty());
    let _ = ns;
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let h = harness("srv-doc").await;
    let served: Value = h
        .http
        .get(h.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/openapi.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "run `cargo run -p dbaas-server --bin openapigen`"
    );
}

#[tokio::test]
async fn cluster_restores_are_its_ops_requests_of_type_restore() {
    let h = harness("srv-restores").await;
    let (_, token) = h
        .user("dev", rules(&["get", "list", "create"], &["opsrequests"]))
        .await;
    let ops = |name: &str, cluster: &str, spec: Value| {
        let mut body = json!({"metadata": {"name": name}, "spec": spec});
        body["spec"]["clusterRef"] = json!({"name": cluster});
        body
    };
    for body in [
        ops(
            "restore-latest",
            "orders",
            json!({"type": "Restore", "restore": {"backupName": "nightly", "pitr": {"type": "latest"}}}),
        ),
        ops(
            "restore-plain",
            "orders",
            json!({"type": "Restore", "restore": {"backupName": "nightly"}}),
        ),
        ops(
            "scale-up",
            "orders",
            json!({"type": "HorizontalScaling", "horizontalScaling": {"replicas": 3}}),
        ),
        ops(
            "restore-other",
            "payments",
            json!({"type": "Restore", "restore": {"backupName": "weekly"}}),
        ),
    ] {
        let (status, created) = h.post(&token, &h.ns_url("opsrequests"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    // A Restore without its parameters is refused by the CRD's own rule.
    let (status, body) = h
        .post(
            &token,
            &h.ns_url("opsrequests"),
            ops("no-backup", "orders", json!({"type": "Restore"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("needs restore"),
        "{body}"
    );

    let listed = eventually("the restores under their cluster", || async {
        let (status, body) = h
            .get(&token, &h.ns_url("databaseclusters/orders/restores"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (names_of(&body) == ["restore-latest", "restore-plain"]).then_some(body)
    })
    .await;
    assert_eq!(
        listed["items"][0]["spec"]["restore"]["pitr"]["type"],
        "latest"
    );
    // Paged like any list.
    let (status, first) = h
        .get(
            &token,
            &format!("{}?limit=1", h.ns_url("databaseclusters/orders/restores")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(names_of(&first), ["restore-latest"]);
    let token_continue = first["continue"].as_str().unwrap().to_owned();
    let (_, second) = h
        .get(
            &token,
            &format!(
                "{}?limit=1&continue={token_continue}",
                h.ns_url("databaseclusters/orders/restores")
            ),
        )
        .await;
    assert_eq!(names_of(&second), ["restore-plain"]);
    // The other cluster's, and a cluster with none.
    let (_, other) = h
        .get(&token, &h.ns_url("databaseclusters/payments/restores"))
        .await;
    assert_eq!(names_of(&other), ["restore-other"]);
    let (status, none) = h
        .get(&token, &h.ns_url("databaseclusters/nothing/restores"))
        .await;
    assert_eq!(status, StatusCode::OK, "{none}");
    assert!(names_of(&none).is_empty());

    // Authorized as a list of OpsRequests.
    let (_, reader) = h
        .user(
            "cluster-reader",
            rules(&["get", "list"], &["databaseclusters"]),
        )
        .await;
    let (status, body) = h
        .get(&reader, &h.ns_url("databaseclusters/orders/restores"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot list opsrequests.dbaas.io"),
        "{body}"
    );
}

/// A server-sent event stream read event by event.
struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    async fn open(h: &Harness, token: &str, url: &str) -> Self {
        let response = h.http.get(url).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{url}"
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next (event, data), or None when the stream ended. Comments
    /// (keep-alives) are skipped.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|line| line.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                let (Some(event), Some(data)) = (field("event:"), field("data:")) else {
                    continue;
                };
                return Some((event, serde_json::from_str(&data).unwrap()));
            }
            let chunk = tokio::time::timeout(TIMEOUT, self.response.chunk())
                .await
                .expect("an event within the timeout")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next event that is not RESYNC, as (event, "namespace/name").
    async fn next_change(&mut self) -> (String, String) {
        loop {
            let (event, data) = self.next().await.expect("the stream goes on");
            if event != "RESYNC" {
                let meta = &data["metadata"];
                let key = format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap(),
                    meta["name"].as_str().unwrap()
                );
                return (event, key);
            }
        }
    }
}

#[tokio::test]
async fn watch_streams_the_changes_it_may_see_and_ends_after_its_lifetime() {
    let h = harness_config(
        "srv-watch",
        ServerConfig {
            transport: Transport::PlainHttp,
            limits: dbaas_server::Limits {
                watch_lifetime: Duration::from_secs(8),
                ..dbaas_server::Limits::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    let ns = h.ns.name.clone();
    let (lister, lister_token) = h
        .user("lister", rules(&["get", "list"], &["databaseclusters"]))
        .await;
    let (_, watcher) = h
        .user(
            "watcher",
            rules(
                &["get", "list", "watch"],
                &["databaseclusters", "databasebackups"],
            ),
        )
        .await;
    let watch_url = h.ns_url("databaseclusters?watch=true&labelSelector=tier%3Ddb");

    // Listing is not watching.
    let (status, body) = h.get(&lister_token, &watch_url).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        format!("user {lister} cannot watch databaseclusters.dbaas.io in namespace {ns}")
    );
    // A watch streams every change: no pages.
    let (status, body) = h
        .get(&watcher, &h.ns_url("databaseclusters?watch=true&limit=10"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("no limit"));
    // Lists that are views of other lists are not watched.
    let (status, body) = h
        .get(&watcher, &h.ns_url("databaseclusters/x/backups?watch=true"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let mut stream = EventStream::open(&h, &watcher, &watch_url).await;
    let (first, _) = stream.next().await.unwrap();
    assert_eq!(first, "RESYNC", "the first event says: list now");
    // Another namespace's object that the selector would select.
    let other = TestNamespace::create(&h.admin, "srv-watch-other")
        .await
        .unwrap();
    let mut elsewhere = cluster_body("db");
    elsewhere["metadata"]["labels"] = json!({"tier": "db"});
    other
        .api::<DatabaseCluster>()
        .create(
            &PostParams::default(),
            &serde_json::from_value(elsewhere).unwrap(),
        )
        .await
        .unwrap();
    admin_create_cluster(&h, "web", json!({"tier": "web"})).await;
    admin_create_cluster(&h, "db", json!({"tier": "db"})).await;
    // Only what the selector selects in this namespace: "web" and the other
    // namespace's "db" never show (the first change seen is this "db").
    let db = format!("{ns}/db");
    assert_eq!(stream.next_change().await, ("ADDED".into(), db.clone()));
    h.clusters()
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"note": "changed"}}})),
        )
        .await
        .unwrap();
    assert_eq!(stream.next_change().await, ("MODIFIED".into(), db.clone()));
    h.clusters()
        .delete("db", &Default::default())
        .await
        .unwrap();
    assert_eq!(stream.next_change().await, ("DELETED".into(), db));
    other.delete().await.unwrap();
    // The lifetime ends the stream; the client comes back, authorized anew.
    let ended =
        tokio::time::timeout(TIMEOUT, async { while stream.next().await.is_some() {} }).await;
    assert!(ended.is_ok(), "the stream ended after its lifetime");
}

#[tokio::test]
async fn access_tells_the_console_what_the_caller_may_do() {
    let h = harness("srv-access").await;
    let (_, reader) = h
        .user(
            "reader",
            rules(&["get", "list", "watch"], &["databaseclusters"]),
        )
        .await;
    let (_, operator) = h
        .user(
            "operator",
            json!([
                {"apiGroups": ["dbaas.io"], "resources": ["databaseclusters", "opsrequests"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            ]),
        )
        .await;
    let (status, body) = h.get(&reader, &h.ns_url("access")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["namespace"], h.ns.name);
    let clusters = &body["resources"]["databaseclusters"];
    assert_eq!(clusters["list"], true);
    assert_eq!(clusters["watch"], true);
    assert_eq!(clusters["create"], false);
    assert_eq!(clusters["patch"], false);
    assert_eq!(body["resources"]["opsrequests"]["create"], false);
    assert_eq!(body["resources"]["secrets"]["get"], false);
    // Engines are read-only through the API: no write verbs are offered.
    assert!(body["resources"]["databaseengines"]["create"].is_null());

    let (status, body) = h.get(&operator, &h.ns_url("access")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["resources"]["databaseclusters"]["create"], true);
    assert_eq!(body["resources"]["opsrequests"]["create"], true);
    assert_eq!(body["resources"]["secrets"]["get"], true);
    assert_eq!(body["resources"]["databasebackups"]["create"], false);

    // The answer is about the caller: no token, no answer.
    let response = h.http.get(h.ns_url("access")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_clusters_events_newest_first_for_callers_who_may_list_events() {
    let h = harness("srv-events").await;
    admin_create_cluster(&h, "shop", json!({})).await;
    let (_, no_events) = h
        .user("no-events", rules(&["get"], &["databaseclusters"]))
        .await;
    let (_, reader) = h
        .user(
            "reader",
            json!([
                {"apiGroups": ["dbaas.io"], "resources": ["databaseclusters"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ]),
        )
        .await;
    let uid = h
        .clusters()
        .get("shop")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(h.admin.clone(), &h.ns.name);
    for (name, about, uid, reason, last) in [
        (
            "older",
            "shop",
            uid.as_str(),
            "Created",
            "2026-12-07T09:00:00Z",
        ),
        (
            "newer",
            "shop",
            uid.as_str(),
            "VersionNotAllowed",
            "2026-12-07T10:00:00Z",
        ),
        (
            "other",
            "another",
            uid.as_str(),
            "Created",
            "2026-12-07T11:00:00Z",
        ),
        // About an earlier cluster of the same name.
        (
            "earlier",
            "shop",
            "0b6c2a9e-0000-4000-8000-000000000000",
            "Deleted",
            "2026-12-07T12:00:00Z",
        ),
    ] {
        let event = serde_json::from_value(json!({
            "metadata": {"name": name},
            "involvedObject": {"apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "name": about, "namespace": h.ns.name, "uid": uid},
            "type": if reason == "Created" { "Normal" } else { "Warning" },
            "reason": reason, "message": format!("{reason} happened"),
            "firstTimestamp": last, "lastTimestamp": last, "count": 1,
            "source": {"component": "dbaas-operator"},
        }))
        .unwrap();
        events.create(&PostParams::default(), &event).await.unwrap();
    }
    let url = h.ns_url("databaseclusters/shop/events");
    let (status, body) = h.get(&no_events, &url).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("cannot list events")
    );
    let (status, body) = h.get(&reader, &url).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reasons: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    // Only this cluster's (not another's, not an earlier one's of the same
    // name), newest first.
    assert_eq!(reasons, ["VersionNotAllowed", "Created"]);
    assert_eq!(body["items"][0]["type"], "Warning");
    assert_eq!(body["items"][0]["source"], "dbaas-operator");
    assert_eq!(body["items"][0]["lastSeen"], "2026-12-07T10:00:00Z");
}
