//! A control plane WITHOUT the CloudNativePG CRDs: a postgresql cluster waits
//! with a clear condition (no crash loop), and is created by itself once the
//! engine operator's CRDs are installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_testkit::{ControlPlane, TestNamespace, our_crds, upstream_crds, wait_for};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::conditions;

#[tokio::test]
async fn cluster_waits_for_the_engine_operator_and_proceeds_when_it_arrives() {
    let cp = ControlPlane::start(&[our_crds()]).expect("control plane without engine CRDs");
    let client = cp.client().await.unwrap();
    let ns = TestNamespace::create(&client, "noengine").await.unwrap();
    let _operator = start_operator(&client, &ns.name);
    let clusters: Api<DatabaseCluster> = ns.api();

    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg}\nspec: {engine: {type: postgresql}, storage: {size: 1Gi}}",
    )
    .await;
    let waiting = wait_for(
        &clusters,
        "pg",
        TIMEOUT,
        "EngineOperatorNotInstalled",
        has_condition("EngineAvailable", "False", "EngineOperatorNotInstalled"),
    )
    .await
    .unwrap();
    assert_eq!(
        waiting.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Pending)
    );
    assert!(
        condition(&waiting, "EngineAvailable")
            .message
            .contains("install CloudNativePG")
    );

    // The SRE installs CloudNativePG (its CRD; the tests play the operator).
    let crd: CustomResourceDefinition = from_yaml(
        &std::fs::read_to_string(
            upstream_crds().join("cloudnative-pg/postgresql.cnpg.io_clusters.yaml"),
        )
        .unwrap(),
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.patch(
        "clusters.postgresql.cnpg.io",
        &PatchParams::apply("test-sre").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    wait_for(
        &crds,
        "clusters.postgresql.cnpg.io",
        TIMEOUT,
        "the CRD to be established",
        conditions::is_crd_established(),
    )
    .await
    .unwrap();

    let engines: Api<CnpgCluster> = ns.api();
    wait_for(
        &engines,
        "pg",
        TIMEOUT * 2,
        "the CNPG Cluster once the CRD exists",
        |c: Option<&CnpgCluster>| c.is_some(),
    )
    .await
    .unwrap();
    let created = wait_for(
        &clusters,
        "pg",
        TIMEOUT,
        "EngineAvailable",
        has_condition("EngineAvailable", "True", "EngineOperatorInstalled"),
    )
    .await
    .unwrap();
    assert_eq!(
        created.status.as_ref().unwrap().engine_version.as_deref(),
        Some("17.6")
    );
    eprintln!(
        "control plane start-up (without engine CRDs): {:.2}s",
        cp.startup().as_secs_f64()
    );
}
