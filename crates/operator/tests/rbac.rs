//! Least privilege: the operator runs as a ServiceAccount bound to exactly
//! the shipped ClusterRole (deploy/rbac/operator.yaml) through the cluster
//! and claim flows; the preflight names each rule when it is taken away; the
//! operator refuses to start without a required one; and a namespaced
//! install reaches its namespaces only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use claim_support::*;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::manifests::{InstallOptions, Settings, operator_namespaced_rbac};
use dbaas_api::rbac::{Missing, OPERATOR_NAME, OPERATOR_PERMISSIONS, Permission};
use dbaas_api::{DatabaseClaim, DatabaseCluster};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_operator::OperatorConfig;
use dbaas_operator::metrics::Metrics;
use dbaas_operator::preflight::missing_permissions;
use dbaas_testkit::TestNamespace;
use dbaas_testkit::accounts::{service_account_token, shipped_operator_role};
use dbaas_testkit::db::{DbKind, DbServer};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;

/// A kubeconfig for the control plane that authenticates with `token`.
fn token_kubeconfig(token: &str) -> Kubeconfig {
    let mut kubeconfig = Kubeconfig::read_from(dbaas_testkit::shared().kubeconfig()).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.client_certificate_data = None;
            auth.client_key_data = None;
            auth.token = Some(token.to_owned().into());
        }
    }
    kubeconfig
}

async fn token_client(token: &str) -> Client {
    let config = kube::Config::from_custom_kubeconfig(
        token_kubeconfig(token),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Client::try_from(config).unwrap()
}

/// Creates ClusterRole `role` (renamed `name`) and binds it to the
/// ServiceAccount `namespace`/`account`.
async fn grant(admin: &Client, mut role: ClusterRole, name: &str, namespace: &str, account: &str) {
    role.metadata.name = Some(name.to_owned());
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    bindings
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

async fn revoke(admin: &Client, name: &str) {
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    let _ = bindings.delete(name, &DeleteParams::default()).await;
    let _ = roles.delete(name, &DeleteParams::default()).await;
}

/// Runs the operator binary as `token` over `namespaces` until it exits (or
/// a test times out): whether it exited successfully, and its log.
fn run_operator_binary(token: &str, namespaces: &str, service_account: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        serde_saphyr::to_string(&token_kubeconfig(token)).unwrap(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dbaas-operator"))
        .env("KUBECONFIG", &kubeconfig)
        .args(["--namespace", namespaces, "--metrics-addr", "127.0.0.1:0"])
        .args(["--service-account", service_account])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), log)
}

/// The preflight's answer over `namespaces` once `settled` holds for it
/// (RBAC takes a moment to catch up), or after 20 s.
async fn missing_once(
    client: &Client,
    namespaces: &[String],
    settled: impl Fn(&[Missing]) -> bool,
) -> Vec<Missing> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let missing = missing_permissions(client, namespaces).await.unwrap();
        if settled(&missing) || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The preflight's answer once RBAC has caught up with `expected`.
async fn missing_until(client: &Client, namespace: &str, expected: &[Permission]) -> Vec<Missing> {
    missing_once(client, &[namespace.to_owned()], |missing| {
        missing
            .iter()
            .map(|m| m.permission)
            .eq(expected.iter().copied())
    })
    .await
}

#[tokio::test]
async fn the_shipped_role_is_enough_and_every_rule_is_checked() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "rbac").await.unwrap();
    let role_name = format!("dbaas-operator-{}", ns.name);
    let token = service_account_token(&admin, &ns.name, "operator")
        .await
        .unwrap();
    grant(
        &admin,
        shipped_operator_role().unwrap(),
        &role_name,
        &ns.name,
        "operator",
    )
    .await;
    let operator_client = token_client(&token).await;
    assert!(
        missing_until(&operator_client, &ns.name, &[])
            .await
            .is_empty(),
        "the shipped role grants every permission"
    );

    // The cluster flow, as the ServiceAccount.
    let _operator = common::start_operator(&operator_client, &ns.name);
    let clusters: Api<DatabaseCluster> = ns.api();
    clusters
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "metadata": {"name": "pg"},
                "spec": {"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let engines: Api<CnpgCluster> = ns.api();
    let cnpg = common::engine_object(&engines, "pg", "the CNPG Cluster", |_| true).await;
    common::write_engine_status(&engines, "pg", "cloudnative-pg", json!({
        "phase": "Cluster in healthy state", "instances": 1, "readyInstances": 1,
        "image": cnpg.spec.image_name, "writeService": "pg-rw", "readService": "pg-r",
        "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                        "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    }))
    .await;
    common::cluster_where(
        &clusters,
        "pg",
        "ready",
        common::in_phase(ClusterPhase::Ready),
    )
    .await;

    // The claim flow, as the ServiceAccount.
    let db = DbServer::shared_postgres();
    register_server(&admin, &ns.name, "pg-server", db, None, json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &format!("rbac_{id}"),
            &format!("rbac_{id}"),
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let data = secret_data(&admin, &ns.name, "app-db").await;
    login_with(DbKind::Postgres, &data).await.unwrap();
    claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    dbaas_testkit::wait_gone(&claims, "app", CLAIM_TIMEOUT)
        .await
        .unwrap();
    revoke(&admin, &role_name).await;

    // Take each rule away in turn: the preflight names exactly that one.
    let probe_token = service_account_token(&admin, &ns.name, "probe")
        .await
        .unwrap();
    let probe = token_client(&probe_token).await;
    for (index, permission) in OPERATOR_PERMISSIONS.iter().enumerate() {
        let mut role = shipped_operator_role().unwrap();
        role.rules.as_mut().unwrap().remove(index);
        let name = format!("dbaas-probe-{}-{index}", ns.name);
        grant(&admin, role, &name, &ns.name, "probe").await;
        let missing = missing_until(&probe, &ns.name, &[*permission]).await;
        assert_eq!(
            missing.len(),
            1,
            "without {}: {missing:?}",
            permission.resource
        );
        assert_eq!(missing[0].permission, *permission);
        assert_eq!(missing[0].verbs, permission.verbs);
        revoke(&admin, &name).await;
    }
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn the_operator_refuses_to_start_without_a_required_permission() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&admin, "rbac-refuse").await.unwrap();
    let name = format!("dbaas-operator-{}", ns.name);
    let token = service_account_token(&admin, &ns.name, "operator")
        .await
        .unwrap();
    let mut role = shipped_operator_role().unwrap();
    role.rules
        .as_mut()
        .unwrap()
        .retain(|rule| rule.resources.as_deref() != Some(&["databaseclusters/status".to_owned()]));
    grant(&admin, role, &name, &ns.name, "operator").await;
    let probe = token_client(&token).await;
    let denied = OPERATOR_PERMISSIONS
        .iter()
        .copied()
        .filter(|p| p.resource == "databaseclusters/status")
        .collect::<Vec<_>>();
    assert_eq!(missing_until(&probe, &ns.name, &denied).await.len(), 1);

    let (started, log) = run_operator_binary(&token, &ns.name, &format!("{}:operator", ns.name));
    assert!(!started, "{log}");
    assert!(
        log.contains(&format!(
            "missing permission: patch databaseclusters.dbaas.io/status in namespace {}",
            ns.name
        )),
        "{log}"
    );
    assert!(
        // One watched namespace: a Role there is enough.
        log.contains(&format!(
            "kubectl -n {ns} create role dbaas-operator-databaseclusters-status --verb=patch \
             --resource=databaseclusters.dbaas.io/status && kubectl -n {ns} create rolebinding \
             dbaas-operator-databaseclusters-status --role=dbaas-operator-databaseclusters-status \
             --serviceaccount={ns}:operator",
            ns = ns.name
        )),
        "{log}"
    );
    revoke(&admin, &name).await;
    ns.delete().await.unwrap();
}

/// The namespaced install (`dbaasctl install --watch-namespace A,B`, Helm's
/// `watchNamespaces`): Roles in the watched namespaces only. The operator,
/// as that ServiceAccount, serves both; a third namespace is neither served
/// nor readable; the preflight names what is missing and where.
#[tokio::test]
async fn a_namespaced_install_serves_its_namespaces_and_reaches_no_other() {
    let admin = dbaas_testkit::shared().client().await.unwrap();
    let home = TestNamespace::create(&admin, "rbac-home").await.unwrap();
    let other = TestNamespace::create(&admin, "rbac-other").await.unwrap();
    let outside = TestNamespace::create(&admin, "rbac-outside").await.unwrap();
    let watched = vec![home.name.clone(), other.name.clone()];

    // The shipped namespaced RBAC, bound to the operator's account at home
    // (no CatalogSource Roles: OLM is not installed here).
    let settings = Settings::from_options(&InstallOptions {
        namespace: home.name.clone(),
        watch_namespaces: watched.clone(),
        ..InstallOptions::default()
    });
    let objects = operator_namespaced_rbac(&settings, &watched, false);
    assert!(
        objects
            .iter()
            .all(|o| !o["kind"].as_str().unwrap().starts_with("Cluster"))
    );
    for object in objects.iter().filter(|o| {
        watched
            .iter()
            .any(|ns| o["metadata"]["namespace"] == ns.as_str())
    }) {
        let namespace = object["metadata"]["namespace"].as_str().unwrap();
        if object["kind"] == "Role" {
            let roles: Api<Role> = Api::namespaced(admin.clone(), namespace);
            roles
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(object.clone()).unwrap(),
                )
                .await
                .unwrap();
        } else {
            let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
            bindings
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(object.clone()).unwrap(),
                )
                .await
                .unwrap();
        }
    }
    let token = service_account_token(&admin, &home.name, OPERATOR_NAME)
        .await
        .unwrap();
    let operator_client = token_client(&token).await;

    // The preflight: everything in the watched namespaces, nothing outside.
    assert!(
        missing_once(&operator_client, &watched, <[Missing]>::is_empty)
            .await
            .is_empty(),
        "the namespaced Roles grant every permission in the watched namespaces"
    );
    let with_outside = [watched.clone(), vec![outside.name.clone()]].concat();
    let gaps = missing_once(&operator_client, &with_outside, |missing| {
        missing.len() == OPERATOR_PERMISSIONS.len()
    })
    .await;
    assert_eq!(gaps.len(), OPERATOR_PERMISSIONS.len(), "{gaps:?}");
    assert!(
        gaps.iter()
            .all(|g| g.namespace.as_deref() == Some(outside.name.as_str()))
    );
    let secrets = gaps
        .iter()
        .find(|g| g.permission.resource == "secrets")
        .unwrap();
    assert!(
        secrets
            .what()
            .ends_with(&format!("secrets in namespace {}", outside.name)),
        "{}",
        secrets.what()
    );
    assert!(
        secrets
            .grant_command("x:y")
            .starts_with(&format!("kubectl -n {} create role", outside.name)),
        "{}",
        secrets.grant_command("x:y")
    );
    // Nor cluster-wide: no Secret of any namespace can be listed.
    let everywhere = missing_permissions(&operator_client, &[]).await.unwrap();
    assert!(
        everywhere
            .iter()
            .any(|g| g.permission.resource == "secrets"),
        "{everywhere:?}"
    );
    let outside_secrets: Api<Secret> = Api::namespaced(operator_client.clone(), &outside.name);
    let denied = outside_secrets.list(&Default::default()).await.unwrap_err();
    assert!(
        matches!(denied, kube::Error::Api(ref s) if s.code == 403),
        "{denied:?}"
    );

    // The operator, as that account, serves both watched namespaces.
    let metrics = Arc::new(Metrics::default());
    let _operator = common::start_operator_with(
        &operator_client,
        OperatorConfig {
            namespaces: watched.clone(),
            concurrency: 4,
            detection_interval: Duration::from_secs(1),
            metrics: metrics.clone(),
            ..OperatorConfig::default()
        },
    );
    let cluster = json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster", "metadata": {"name": "pg"},
        "spec": {"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}},
    });
    for ns in [&outside, &home, &other] {
        let clusters: Api<DatabaseCluster> = ns.api();
        clusters
            .create(
                &PostParams::default(),
                &serde_json::from_value(cluster.clone()).unwrap(),
            )
            .await
            .unwrap();
    }
    for ns in [&home, &other] {
        let engines: Api<CnpgCluster> = ns.api();
        common::engine_object(&engines, "pg", "the CNPG Cluster", |_| true).await;
        let clusters: Api<DatabaseCluster> = ns.api();
        common::cluster_where(&clusters, "pg", "a status", |c| {
            c.is_some_and(|c| c.status.is_some())
        })
        .await;
    }
    // Both served and counted once each; the cluster outside was never
    // seen (the watched ones were served after it was created).
    let synced = Instant::now() + Duration::from_secs(20);
    while !metrics
        .caches_synced
        .load(std::sync::atomic::Ordering::Acquire)
    {
        assert!(Instant::now() < synced, "caches never synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = metrics.encode().unwrap();
    assert!(
        text.contains("dbaas_objects{kind=\"DatabaseCluster\"} 2"),
        "{text}"
    );
    let outside_clusters: Api<DatabaseCluster> = outside.api();
    let untouched = outside_clusters.get("pg").await.unwrap();
    assert!(untouched.status.is_none(), "{:?}", untouched.status);
    assert!(untouched.metadata.finalizers.is_none());
    let outside_engines: Api<CnpgCluster> = outside.api();
    assert!(outside_engines.get_opt("pg").await.unwrap().is_none());

    // The binary refuses to start when a listed namespace has no Role,
    // saying which and how to grant it.
    let (started, log) = run_operator_binary(
        &token,
        &format!("{},{}", home.name, outside.name),
        &format!("{}:{OPERATOR_NAME}", home.name),
    );
    assert!(!started, "{log}");
    assert!(
        log.contains(&format!(
            "missing permission: patch databaseclusters.dbaas.io/status in namespace {}",
            outside.name
        )),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "kubectl -n {} create role dbaas-operator-databaseclusters-status",
            outside.name
        )),
        "{log}"
    );
    assert!(
        !log.contains(&format!("in namespace {} ", home.name)),
        "nothing is missing at home: {log}"
    );
    // A malformed namespace is refused before any request.
    let (started, log) = run_operator_binary(&token, "team,Not_A_Namespace", "x:y");
    assert!(!started, "{log}");
    assert!(
        log.contains("\"Not_A_Namespace\" is not a namespace name"),
        "{log}"
    );
    for ns in [home, other, outside] {
        ns.delete().await.unwrap();
    }
}
