//! The MySQL vertical slice against the real control plane with the real
//! Percona XtraDB Cluster CRD installed: the operator runs in-process; the
//! tests play the Percona operator by writing its status the way it does
//! (state, pxc/haproxy counts, host, observedGeneration).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::pxc_cluster::PerconaXtraDbCluster;
use dbaas_engines::pxc::Pxc;
use dbaas_testkit::wait_gone;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};

/// The Percona operator's field manager when it writes status.
const PERCONA: &str = "percona-xtradb-cluster-operator";
const IMAGE_8042: &str = "percona/percona-xtradb-cluster:8.0.42-33.1";
const IMAGE_8045: &str = "percona/percona-xtradb-cluster:8.0.45-36.1";

/// The engine object's current generation: what Percona would put in
/// `status.observedGeneration` after reconciling it.
async fn generation(api: &Api<PerconaXtraDbCluster>, name: &str) -> i64 {
    api.get(name).await.unwrap().metadata.generation.unwrap()
}

/// A status as the Percona operator writes it (`updateStatus` in
/// `pkg/controller/pxc/status.go`): per-component counts, the summed
/// size/ready, the host of the front service, the generation it describes.
fn percona_status(
    state: &str,
    generation: i64,
    size: i32,
    ready: i32,
    image: Option<&str>,
    host: &str,
) -> Value {
    let proxy_ready = if state == "ready" { 3 } else { 0 };
    let mut pxc = json!({ "size": size, "ready": ready, "status": state });
    if let Some(image) = image {
        pxc["image"] = json!(image);
    }
    json!({
        "state": state,
        "observedGeneration": generation,
        "host": host,
        "pxc": pxc,
        "haproxy": { "size": 3, "ready": proxy_ready, "status": state },
        "size": size + 3,
        "ready": ready + proxy_ready,
        "conditions": [{ "type": state, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }],
    })
}

/// What `pxc::build` sends for the stored DatabaseCluster, to compare with
/// what the real CRD kept.
async fn assert_engine_spec_not_pruned(
    clusters: &Api<DatabaseCluster>,
    engine: &PerconaXtraDbCluster,
    name: &str,
    version: &str,
) {
    let sent = dbaas_engines::pxc::build(
        &clusters.get(name).await.unwrap(),
        &dbaas_engines::resolve_version(&Pxc, Some(version), None).unwrap(),
    )
    .unwrap()
    .cluster;
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &serde_json::to_value(&engine.spec).unwrap(),
    );
    assert_not_pruned(
        &serde_json::to_value(&sent.metadata.labels).unwrap(),
        &serde_json::to_value(&engine.metadata.labels).unwrap(),
    );
}

const MY_MYSQL: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: my-mysql
spec:
  engine:
    type: mysql
    version: "8.0.42-33.1"
  clusterSize: 3
  storage:
    size: 10Gi
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  proxy:
    type: haproxy
  config:
    - name: max_connections
      value: "200"
"#;

#[tokio::test]
async fn create_observe_edit_pause_and_delete() {
    let (_client, ns, _operator) = setup("mysql").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();
    let host = format!("my-mysql-haproxy.{}", ns.name);

    // Create: a PerconaXtraDBCluster, owned by the DatabaseCluster, labelled as ours.
    let created = create_cluster(&clusters, MY_MYSQL).await;
    let pxc = engine_object(&engines, "my-mysql", "the PerconaXtraDBCluster", |_| true).await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(spec["crVersion"], "1.20.0");
    assert_eq!(spec["secretsName"], "my-mysql-secrets");
    assert_eq!(spec["pause"], false);
    assert_eq!(spec["enableVolumeExpansion"], true);
    assert_eq!(spec.get("unsafeFlags"), None);
    assert_eq!(spec["pxc"]["size"], 3);
    assert_eq!(spec["pxc"]["image"], IMAGE_8042);
    assert_eq!(
        spec["pxc"]["volumeSpec"]["persistentVolumeClaim"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    assert_eq!(
        spec["pxc"]["resources"],
        json!({ "requests": { "cpu": "1", "memory": "2Gi" } })
    );
    assert_eq!(
        spec["pxc"]["configuration"],
        "[mysqld]\nmax_connections=200\n"
    );
    assert_eq!(
        spec["haproxy"],
        json!({ "enabled": true, "size": 3, "image": "percona/haproxy:2.8.18-1" })
    );
    assert_eq!(spec["proxysql"], json!({ "enabled": false }));
    let labels = pxc.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-mysql");
    assert_eq!(labels[LABEL_ENGINE], "mysql");
    let owner = &pxc.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        (
            "DatabaseCluster",
            created.metadata.uid.as_deref().unwrap(),
            Some(true)
        )
    );
    // What we sent is exactly what the real Percona schema kept.
    assert_engine_spec_not_pruned(&clusters, &pxc, "my-mysql", "8.0.42-33.1").await;

    // Before Percona says anything the cluster is Pending.
    let pending = cluster_where(
        &clusters,
        "my-mysql",
        "Pending",
        in_phase(ClusterPhase::Pending),
    )
    .await;
    assert_eq!(condition(&pending, "Ready").status, "False");
    assert_eq!(condition(&pending, "Valid").status, "True");
    assert_eq!(condition(&pending, "AllSettingsApplied").status, "True");
    let engine_ref = pending.status.as_ref().unwrap().engine_ref.clone().unwrap();
    assert_eq!(
        (engine_ref.api_version.as_str(), engine_ref.kind.as_str()),
        ("pxc.percona.com/v1", "PerconaXtraDBCluster")
    );

    // Percona starts the nodes: Creating.
    let g = generation(&engines, "my-mysql").await;
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("initializing", g, 3, 1, None, &host),
    )
    .await;
    let creating = cluster_where(
        &clusters,
        "my-mysql",
        "Creating",
        in_phase(ClusterPhase::Creating),
    )
    .await;
    assert_eq!(
        condition(&creating, "Progressing").reason,
        "EngineInitializing"
    );

    // Percona reports ready: Ready with endpoint, version and credentials.
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("ready", g, 3, 3, Some(IMAGE_8042), &host),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-mysql",
        "Ready",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!((status.ready, status.size), (3, 3));
    assert_eq!(status.host.as_deref(), Some(host.as_str()));
    assert_eq!(status.port, Some(3306));
    assert_eq!(status.engine_version.as_deref(), Some("8.0.42-33.1"));
    assert_eq!(
        status.credentials_secret.as_deref(),
        Some("my-mysql-secrets")
    );
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(condition(&ready, "Ready").status, "True");
    assert_eq!(condition(&ready, "Ready").reason, "EngineHealthy");

    // Edit: scale, upgrade, grow, reconfigure. Percona's "ready" about the
    // previous generation must not make the new spec look Ready.
    clusters
        .patch(
            "my-mysql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "clusterSize": 5,
                "engine": { "type": "mysql", "version": "8.0.45-36.1" },
                "storage": { "size": "20Gi" },
                "config": [
                    { "name": "max_connections", "value": "300" },
                    { "name": "innodb_log_file_size", "value": "256M" },
                ],
            } })),
        )
        .await
        .unwrap();
    let pxc = engine_object(&engines, "my-mysql", "the edit to reach Percona", |c| {
        c.spec.pxc.as_ref().and_then(|p| p.size) == Some(5)
    })
    .await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(spec["pxc"]["image"], IMAGE_8045);
    assert_eq!(
        spec["pxc"]["volumeSpec"]["persistentVolumeClaim"]["resources"]["requests"]["storage"],
        "20Gi"
    );
    assert_eq!(
        spec["pxc"]["configuration"],
        "[mysqld]\nmax_connections=300\ninnodb_log_file_size=256M\n"
    );
    assert_eq!(
        spec.get("unsafeFlags"),
        None,
        "5 nodes are safe for Percona"
    );
    assert_engine_spec_not_pruned(&clusters, &pxc, "my-mysql", "8.0.45-36.1").await;
    let g2 = pxc.metadata.generation.unwrap();
    assert!(g2 > g);
    let updating = cluster_where(
        &clusters,
        "my-mysql",
        "Updating on a stale status",
        has_condition("Ready", "False", "WaitingForEngine"),
    )
    .await;
    assert_eq!(
        updating.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Updating)
    );
    assert_eq!(
        updating.status.as_ref().unwrap().engine_version.as_deref(),
        Some("8.0.45-36.1")
    );
    // Percona reacts: it rolls the nodes out and adds two.
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("initializing", g2, 5, 3, Some(IMAGE_8042), &host),
    )
    .await;
    let rolling = cluster_where(
        &clusters,
        "my-mysql",
        "EngineInitializing",
        has_condition("Ready", "False", "EngineInitializing"),
    )
    .await;
    assert_eq!(
        rolling.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Updating)
    );
    // Ready again, but the version Percona records is still the old image.
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("ready", g2, 5, 5, Some(IMAGE_8042), &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mysql",
        "RollingOut",
        has_condition("Ready", "False", "RollingOut"),
    )
    .await;
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("ready", g2, 5, 5, Some(IMAGE_8045), &host),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-mysql",
        "Ready after the edit",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    assert_eq!(
        (
            ready.status.as_ref().unwrap().ready,
            ready.status.as_ref().unwrap().size
        ),
        (5, 5)
    );

    // Pause: spec.pause, then Percona stops the pods and reports paused.
    clusters
        .patch(
            "my-mysql",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "paused": true } })),
        )
        .await
        .unwrap();
    let pxc = engine_object(&engines, "my-mysql", "spec.pause", |c| {
        c.spec.pause == Some(true)
    })
    .await;
    let g3 = pxc.metadata.generation.unwrap();
    cluster_where(
        &clusters,
        "my-mysql",
        "Pausing",
        has_condition("Ready", "False", "Pausing"),
    )
    .await;
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("stopping", g3, 5, 2, Some(IMAGE_8045), &host),
    )
    .await;
    write_engine_status(
        &engines,
        "my-mysql",
        PERCONA,
        percona_status("paused", g3, 5, 0, Some(IMAGE_8045), &host),
    )
    .await;
    let paused = cluster_where(
        &clusters,
        "my-mysql",
        "Paused",
        in_phase(ClusterPhase::Paused),
    )
    .await;
    assert_eq!(paused.status.as_ref().unwrap().ready, 0);

    // Percona reports an error: Error, with its words.
    let mut failed = percona_status("error", g3, 5, 0, Some(IMAGE_8045), &host);
    failed["message"] = json!(["Error: reconcile users: some failure"]);
    write_engine_status(&engines, "my-mysql", PERCONA, failed).await;
    let error = cluster_where(
        &clusters,
        "my-mysql",
        "Error",
        in_phase(ClusterPhase::Error),
    )
    .await;
    assert!(
        condition(&error, "Ready")
            .message
            .contains("reconcile users: some failure"),
        "{:?}",
        condition(&error, "Ready")
    );

    // Delete: the garbage collector removes the PerconaXtraDBCluster.
    clusters
        .delete("my-mysql", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&engines, "my-mysql", TIMEOUT)
        .await
        .expect("the PerconaXtraDBCluster is garbage-collected");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn single_node_cluster_gets_the_unsafe_flags() {
    let (_client, ns, _operator) = setup("mysql-one").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: single}\nspec: {engine: {type: mysql}, clusterSize: 1, storage: {size: 1Gi}, proxy: {type: haproxy}}",
    )
    .await;
    let pxc = engine_object(&engines, "single", "the PerconaXtraDBCluster", |_| true).await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(
        spec["unsafeFlags"],
        json!({ "pxcSize": true, "proxySize": true })
    );
    assert_eq!(spec["pxc"]["size"], 1);
    assert_eq!(spec["haproxy"]["size"], 1);
    // The default version is the newest 8.4.
    assert_eq!(
        spec["pxc"]["image"],
        "percona/percona-xtradb-cluster:8.4.8-8.1"
    );
    assert_engine_spec_not_pruned(&clusters, &pxc, "single", "8.4.8-8.1").await;

    // Ready with one node.
    let host = format!("single-haproxy.{}", ns.name);
    let g = generation(&engines, "single").await;
    let mut ready = percona_status(
        "ready",
        g,
        1,
        1,
        Some("percona/percona-xtradb-cluster:8.4.8-8.1"),
        &host,
    );
    ready["haproxy"] = json!({ "size": 1, "ready": 1, "status": "ready" });
    write_engine_status(&engines, "single", PERCONA, ready).await;
    let ready = cluster_where(&clusters, "single", "Ready", in_phase(ClusterPhase::Ready)).await;
    assert_eq!(
        (
            ready.status.as_ref().unwrap().ready,
            ready.status.as_ref().unwrap().size
        ),
        (1, 1)
    );

    // A single node cannot grow (refused by the API server itself).
    let err = clusters
        .patch(
            "single",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "clusterSize": 3 } })),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot grow"), "{err}");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn an_upstream_version_runs_the_one_percona_build_of_it() {
    let (_client, ns, _operator) = setup("mysql-upstream").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: upstream}\nspec: {engine: {type: mysql, version: '8.4.8'}, clusterSize: 1, storage: {size: 1Gi}}",
    )
    .await;
    let pxc = engine_object(&engines, "upstream", "the PerconaXtraDBCluster", |_| true).await;
    assert_eq!(
        serde_json::to_value(&pxc.spec).unwrap()["pxc"]["image"],
        "percona/percona-xtradb-cluster:8.4.8-8.1"
    );
    let recorded = cluster_where(&clusters, "upstream", "both versions in status", |c| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.engine_version.is_some())
    })
    .await;
    let status = recorded.status.unwrap();
    assert_eq!(status.engine_version.as_deref(), Some("8.4.8-8.1"));
    assert_eq!(status.requested_version.as_deref(), Some("8.4.8"));

    // A version with no build on offer names the nearest that are.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: unknown}\nspec: {engine: {type: mysql, version: '8.4.99'}, clusterSize: 1, storage: {size: 1Gi}}",
    )
    .await;
    let refused = cluster_where(&clusters, "unknown", "VersionNotOffered", |c| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "VersionNotOffered"))
    })
    .await;
    let message = refused
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.reason == "VersionNotOffered")
        .unwrap()
        .message;
    assert_eq!(
        message,
        r#"mysql version "8.4.99" is not offered; the nearest offered: "8.4.8-8.1", "8.4.7-7.1", "8.4.5-5.1", "8.4.3-3.1", "8.4.2-2.1""#
    );
    assert!(engines.get_opt("unknown").await.unwrap().is_none());
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn every_mapped_field_survives_the_real_crd() {
    let (_client, ns, _operator) = setup("mysql-fields").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaXtraDbCluster> = ns.api();

    // ProxySQL, exposed, scheduled, with limits, class and an admin Secret.
    create_cluster(
        &clusters,
        r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {name: full}
spec:
  engine: {type: mysql, version: "8.4.5-5.1"}
  clusterSize: 3
  storage: {size: 5Gi, class: fast}
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {memory: 2Gi}
  config:
    - {name: innodb_buffer_pool_size, value: "{{containerMemoryLimit * 1 / 2}}"}
    - {name: skip_name_resolve, value: ""}
  proxy:
    type: proxysql
    replicas: 2
    resources: {requests: {cpu: 100m, memory: 128Mi}}
  expose: {type: external, ipSourceRanges: ["10.0.0.0/8"]}
  scheduling:
    nodeSelector: {disk: ssd}
    tolerations: [{key: db, operator: Exists, effect: NoSchedule}]
    affinity:
      nodeAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          nodeSelectorTerms: [{matchExpressions: [{key: zone, operator: In, values: [a, b]}]}]
      podAntiAffinity:
        preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector: {matchLabels: {app.kubernetes.io/component: pxc}}
              topologyKey: kubernetes.io/hostname
    priorityClassName: databases
  credentialsSecretName: mysql-admin
"#,
    )
    .await;
    let pxc = engine_object(&engines, "full", "the PerconaXtraDBCluster", |_| true).await;
    assert_engine_spec_not_pruned(&clusters, &pxc, "full", "8.4.5-5.1").await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(spec["secretsName"], "mysql-admin");
    assert_eq!(spec["proxysql"]["enabled"], true);
    assert_eq!(spec["proxysql"]["size"], 2);
    assert_eq!(
        spec["proxysql"]["expose"],
        json!({ "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"] })
    );
    assert_eq!(spec["haproxy"], json!({ "enabled": false }));
    assert_eq!(spec["pxc"]["priorityClassName"], "databases");
    assert_eq!(
        spec["pxc"]["affinity"]["advanced"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
            [0]["weight"],
        100
    );

    // Switch to HAProxy: ProxySQL goes off, HAProxy on, in one apply.
    clusters
        .patch(
            "full",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "proxy": { "type": "haproxy", "replicas": 2 } } })),
        )
        .await
        .unwrap();
    let pxc = engine_object(&engines, "full", "the switch to HAProxy", |c| {
        c.spec.haproxy.as_ref().and_then(|h| h.enabled) == Some(true)
    })
    .await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(spec["proxysql"], json!({ "enabled": false }));
    assert_eq!(
        spec["haproxy"]["exposePrimary"],
        json!({ "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"] })
    );
    assert_engine_spec_not_pruned(&clusters, &pxc, "full", "8.4.5-5.1").await;

    // No proxy: the nodes themselves are exposed.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: bare}\nspec: {engine: {type: mysql, version: '8.0.45-36.1'}, clusterSize: 3, storage: {size: 1Gi}, proxy: {type: none}, expose: {type: external}, paused: true}",
    )
    .await;
    let pxc = engine_object(&engines, "bare", "the PerconaXtraDBCluster", |_| true).await;
    assert_engine_spec_not_pruned(&clusters, &pxc, "bare", "8.0.45-36.1").await;
    let spec = serde_json::to_value(&pxc.spec).unwrap();
    assert_eq!(
        spec["pxc"]["expose"],
        json!({ "enabled": true, "type": "LoadBalancer" })
    );
    assert_eq!(spec["pause"], true);

    // A name Percona would refuse is refused here, before anything is created.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: a-much-too-long-mysql-name}\nspec: {engine: {type: mysql}, clusterSize: 3, storage: {size: 1Gi}}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "a-much-too-long-mysql-name",
        "UnsupportedFeature",
        has_condition("Valid", "False", "UnsupportedFeature"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("22 characters"),
        "{:?}",
        condition(&refused, "Valid")
    );
    assert!(
        engines
            .get_opt("a-much-too-long-mysql-name")
            .await
            .unwrap()
            .is_none()
    );

    // A value that would start a new my.cnf line is refused by the API server.
    let err = clusters
        .patch(
            "bare",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "config": [
                { "name": "max_connections", "value": "1\n[client]\npassword=x" }
            ] } })),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.config[0].value"), "{err}");
    // A value the API accepts but my.cnf cannot hold safely (a section
    // header) is refused by the provider; nothing changes.
    clusters
        .patch(
            "bare",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "config": [
                { "name": "max_connections", "value": "1 [client]" }
            ] } })),
        )
        .await
        .unwrap();
    cluster_where(
        &clusters,
        "bare",
        "InvalidSpec",
        has_condition("Valid", "False", "InvalidSpec"),
    )
    .await;
    assert_eq!(
        engines
            .get("bare")
            .await
            .unwrap()
            .spec
            .pxc
            .and_then(|p| p.configuration),
        None
    );
    ns.delete().await.unwrap();
}
