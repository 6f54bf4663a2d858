//! Least privilege: the operator runs as a ServiceAccount bound to exactly
//! the shipped ClusterRole (deploy/rbac/operator.yaml) through the cluster
//! and claim flows; the preflight names each rule when it is taken away; and
//! the operator refuses to start without a required one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use std::time::{Duration, Instant};

use claim_support::*;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::rbac::{Missing, OPERATOR_PERMISSIONS, Permission};
use dbaas_api::{DatabaseClaim, DatabaseCluster};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_operator::preflight::missing_permissions;
use dbaas_testkit::TestNamespace;
use dbaas_testkit::accounts::{service_account_token, shipped_operator_role};
use dbaas_testkit::db::{DbKind, DbServer};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
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

/// The preflight's answer once RBAC has caught up with `expected`.
async fn missing_until(client: &Client, namespace: &str, expected: &[Permission]) -> Vec<Missing> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let missing = missing_permissions(client, Some(namespace)).await.unwrap();
        let found: Vec<Permission> = missing.iter().map(|m| m.permission).collect();
        if found == expected || Instant::now() > deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
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

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        serde_saphyr::to_string(&token_kubeconfig(&token)).unwrap(),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dbaas-operator"))
        .env("KUBECONFIG", &kubeconfig)
        .args(["--namespace", &ns.name, "--metrics-addr", "127.0.0.1:0"])
        .args(["--service-account", &format!("{}:operator", ns.name)])
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.status.success(), "{log}");
    assert!(
        log.contains("missing permission: patch databaseclusters.dbaas.io/status"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "kubectl create clusterrole dbaas-operator-databaseclusters-status --verb=patch \
             --resource=databaseclusters.dbaas.io/status && kubectl create clusterrolebinding \
             dbaas-operator-databaseclusters-status --clusterrole=dbaas-operator-databaseclusters-status \
             --serviceaccount={}:operator",
            ns.name
        )),
        "{log}"
    );
    revoke(&admin, &name).await;
    ns.delete().await.unwrap();
}
