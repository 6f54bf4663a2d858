//! The engine-operator endpoints (install through OLM, approve an upgrade)
//! against the real control plane, as ServiceAccounts whose RBAC decides.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

use std::time::Duration;

use dbaas_api::DatabaseEngine;
use dbaas_server::{RunningServer, ServerConfig};
use dbaas_testkit::TestNamespace;
use dbaas_testkit::accounts::namespaced_user;
use kube::api::PostParams;
use kube::{Api, Client};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(20);

struct Harness {
    server: RunningServer,
    admin: Client,
    ns: TestNamespace,
    http: reqwest::Client,
}

async fn harness(prefix: &str) -> Harness {
    let cp = dbaas_testkit::shared();
    let admin = cp.client().await.expect("admin client");
    let ns = TestNamespace::create(&admin, prefix)
        .await
        .expect("namespace");
    let kube_config = cp.config().await.expect("kube config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = dbaas_server::start(kube_config, listener, &ServerConfig::plain_http())
        .expect("server starts");
    server.wait_synced(TIMEOUT).await.expect("caches sync");
    Harness {
        server,
        admin,
        ns,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    fn engine_url(&self, name: &str, rest: &str) -> String {
        format!(
            "{}/v1/namespaces/{}/databaseengines/{name}/{rest}",
            self.server.url(),
            self.ns.name
        )
    }

    async fn user(&self, name: &str, verbs: &[&str]) -> String {
        let rules =
            json!([{"apiGroups": ["dbaas.io"], "resources": ["databaseengines"], "verbs": verbs}]);
        namespaced_user(&self.admin, &self.ns.name, name, rules)
            .await
            .unwrap()
    }

    async fn send(
        &self,
        token: &str,
        method: Method,
        url: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status} {url}: not JSON ({e}): {text}"));
        (status, value)
    }
}

fn olm(channel: &str) -> Value {
    json!({"olm": {"catalogSource": "operatorhubio", "catalogSourceNamespace": "olm",
                   "package": "cloudnative-pg", "channel": channel}})
}

#[tokio::test]
async fn sres_install_and_approve_engine_operators_through_the_api() {
    let h = harness("api-olm").await;
    let sre = h
        .user(
            "sre",
            &["get", "list", "watch", "create", "update", "patch"],
        )
        .await;
    let viewer = h.user("viewer", &["get", "list", "watch"]).await;
    let install = h.engine_url("postgresql", "operator");
    let approve = h.engine_url("postgresql", "approve-upgrade");

    // Without create/update: 403 naming the permission.
    let (code, body) = h.send(&viewer, Method::PUT, &install, olm("stable")).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("create databaseengines"),
        "{body}"
    );

    let refused_before = body;

    // No DatabaseEngine yet: created, named after its type, as the caller.
    let (code, body) = h.send(&sre, Method::PUT, &install, olm("stable")).await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    // The 403 does not tell whether it exists: the same answer as before.
    let (code, refused_after) = h.send(&viewer, Method::PUT, &install, olm("stable")).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused_after}");
    assert_eq!(refused_after, refused_before);
    assert_eq!(body["spec"]["type"], "postgresql");
    assert_eq!(body["spec"]["operator"]["olm"]["package"], "cloudnative-pg");
    let engines: Api<DatabaseEngine> = h.ns.api();
    let stored = engines.get("postgresql").await.unwrap();
    assert!(
        stored
            .metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref()
                == Some(&format!(
                    "dbaas-server/system:serviceaccount:{}:sre",
                    h.ns.name
                )))
    );

    // Again with another channel: replaced, 200.
    let (code, body) = h.send(&sre, Method::PUT, &install, olm("stable-v1")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(
        engines
            .get("postgresql")
            .await
            .unwrap()
            .spec
            .operator
            .unwrap()
            .olm
            .channel,
        "stable-v1"
    );

    // Bad bodies: an unknown field (400), a bad name (the CRD's 422), an
    // unknown engine (404); none changes the stored object.
    let before = engines.get("postgresql").await.unwrap();
    let mut typo = olm("stable");
    typo["olm"]["chanel"] = json!("fast");
    let (code, body) = h.send(&sre, Method::PUT, &install, typo).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("UnknownField")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("spec.operator.olm.chanel"),
        "{body}"
    );
    let mut bad = olm("stable");
    bad["olm"]["catalogSource"] = json!("Not_A_Name");
    let (code, body) = h.send(&sre, Method::PUT, &install, bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("catalogSource"),
        "{body}"
    );
    let (code, body) = h
        .send(
            &sre,
            Method::PUT,
            &h.engine_url("oracle", "operator"),
            olm("stable"),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not an engine type"),
        "{body}"
    );
    assert_eq!(
        engines
            .get("postgresql")
            .await
            .unwrap()
            .metadata
            .resource_version,
        before.metadata.resource_version
    );

    // Approving an upgrade: viewer 403, the SRE sets approvedVersion.
    let (code, _) = h
        .send(
            &viewer,
            Method::POST,
            &approve,
            json!({"version": "1.28.0"}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, body) = h
        .send(&sre, Method::POST, &approve, json!({"version": "1.28.0"}))
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["spec"]["operator"]["approvedVersion"], "1.28.0");
    assert_eq!(
        engines
            .get("postgresql")
            .await
            .unwrap()
            .spec
            .operator
            .unwrap()
            .approved_version
            .as_deref(),
        Some("1.28.0")
    );
    let (code, body) = h
        .send(
            &sre,
            Method::POST,
            &approve,
            json!({"version": "1.28.0", "force": true}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");

    // An engine whose operator is not installed through OLM: 409.
    let manual: DatabaseEngine = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
        "metadata": {"name": "mysql"}, "spec": {"type": "mysql"},
    }))
    .unwrap();
    engines
        .create(&PostParams::default(), &manual)
        .await
        .unwrap();
    let (code, body) = h
        .send(
            &sre,
            Method::POST,
            &h.engine_url("mysql", "approve-upgrade"),
            json!({"version": "1.0.0"}),
        )
        .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (StatusCode::CONFLICT, Some("NotInstalledThroughOlm")),
        "{body}"
    );
}
