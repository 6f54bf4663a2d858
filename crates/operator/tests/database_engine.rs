//! DatabaseEngine against the real control plane: created in a namespace
//! once a cluster needs it, reporting the engine operator (CRD served,
//! Deployment found, version from its image), the versions offered and the
//! SRE's policy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::engine::{DatabaseEngine, EngineOperatorStatus};
use dbaas_testkit::{TestNamespace, shared, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

fn engine_status(
    check: impl Fn(&dbaas_api::engine::DatabaseEngineStatus) -> bool,
) -> impl Fn(Option<&DatabaseEngine>) -> bool {
    move |e| e.and_then(|e| e.status.as_ref()).is_some_and(&check)
}

#[tokio::test]
async fn engine_is_created_detected_and_reports_versions_and_policy() {
    let client = shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "engine").await.unwrap();
    let operator_ns = TestNamespace::create(&client, "cnpg-system").await.unwrap();
    let _operator = start_operator(&client, &ns.name);
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<DatabaseEngine> = ns.api();

    // A cluster in the namespace: its DatabaseEngine appears by itself.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}}",
    )
    .await;
    let installing = wait_for(
        &engines,
        "postgresql",
        TIMEOUT,
        "an Installing DatabaseEngine (CRD served, no operator Deployment)",
        engine_status(|s| s.status == Some(EngineOperatorStatus::Installing)),
    )
    .await
    .unwrap();
    let status = installing.status.unwrap();
    assert_eq!(status.default_version.as_deref(), Some("17.6"));
    assert!(
        status
            .available_versions
            .iter()
            .any(|v| v.version == "16.0" && v.allowed && !v.default)
    );
    assert_eq!(status.conditions[0].reason, "DeploymentNotFound");

    // The SRE installs CloudNativePG: its Deployment shows up in another namespace.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "cnpg-controller-manager" },
        "spec": {
            "selector": { "matchLabels": { "app": "cnpg" } },
            "template": {
                "metadata": { "labels": { "app": "cnpg" } },
                "spec": { "containers": [{ "name": "manager", "image": "ghcr.io/cloudnative-pg/cloudnative-pg:1.27.1" }] }
            }
        }
    }))
    .unwrap();
    operator_ns
        .api::<Deployment>()
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let installed = wait_for(
        &engines,
        "postgresql",
        TIMEOUT,
        "Installed with the operator version",
        engine_status(|s| s.status == Some(EngineOperatorStatus::Installed)),
    )
    .await
    .unwrap();
    assert_eq!(
        installed.status.unwrap().operator_version.as_deref(),
        Some("1.27.1")
    );

    // The SRE narrows the versions: the status shows what is allowed and the default.
    engines
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "allowedVersions": ["16.10", "17.6"], "defaultVersion": "16.10" } })),
        )
        .await
        .unwrap();
    let narrowed = wait_for(
        &engines,
        "postgresql",
        TIMEOUT,
        "the policy in the status",
        engine_status(|s| s.default_version.as_deref() == Some("16.10")),
    )
    .await
    .unwrap();
    let status = narrowed.status.unwrap();
    let allowed: Vec<&str> = status
        .available_versions
        .iter()
        .filter(|v| v.allowed)
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(allowed, vec!["17.6", "16.10"]);
    assert_eq!(status.observed_generation, narrowed.metadata.generation);

    // A default outside the allowed list is refused by the API server.
    let bad = engines
        .patch(
            "postgresql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "defaultVersion": "15.3" } })),
        )
        .await
        .unwrap_err();
    assert!(
        bad.to_string()
            .contains("defaultVersion must be one of allowedVersions"),
        "{bad}"
    );
    ns.delete().await.unwrap();
    operator_ns.delete().await.unwrap();
}
