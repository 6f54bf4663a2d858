//! OpsRequests on PostgreSQL clusters against the real control plane with
//! the real CloudNativePG CRD installed: the operator runs in-process; the
//! tests play CloudNativePG by writing its status (and its pods and volumes)
//! the way it does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::time::Duration;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::OpsRequest;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::ops::{OpsPhase, OpsType};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// CloudNativePG's field manager when it writes status.
const CNPG: &str = "cloudnative-pg";
const IMAGE16: &str = "ghcr.io/cloudnative-pg/postgresql:16.0";

fn healthy(instances: i64, name: &str, primary: i64) -> Value {
    json!({
        "phase": "Cluster in healthy state",
        "instances": instances,
        "readyInstances": instances,
        "image": IMAGE16,
        "currentPrimary": format!("{name}-{primary}"),
        "targetPrimary": format!("{name}-{primary}"),
        "instanceNames": (1..=instances).map(|i| format!("{name}-{i}")).collect::<Vec<_>>(),
        "writeService": format!("{name}-rw"),
        "readService": format!("{name}-r"),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "ClusterIsReady",
            "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }],
    })
}

/// A 3-instance PostgreSQL cluster that CloudNativePG reports Ready.
async fn ready_cluster(ns: &dbaas_testkit::TestNamespace, name: &str) -> DatabaseCluster {
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    create_cluster(
        &clusters,
        &format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {name}}}\nspec: {{engine: {{type: postgresql, version: '16.0'}}, clusterSize: 3, storage: {{size: 10Gi}}}}"
        ),
    )
    .await;
    engine_object(&engines, name, "the CNPG Cluster", |_| true).await;
    write_engine_status(&engines, name, CNPG, healthy(3, name, 1)).await;
    cluster_where(&clusters, name, "Ready", in_phase(ClusterPhase::Ready)).await
}

async fn create_op(ops: &Api<OpsRequest>, yaml: &str) -> OpsRequest {
    let op: OpsRequest = from_yaml(&format!(
        "apiVersion: dbaas.io/v1\nkind: OpsRequest\n{yaml}"
    ));
    ops.create(&PostParams::default(), &op)
        .await
        .unwrap_or_else(|e| panic!("create {:?}: {e}", op.metadata.name))
}

async fn op_where(
    ops: &Api<OpsRequest>,
    name: &str,
    what: &str,
    check: impl Fn(&OpsRequest) -> bool,
) -> OpsRequest {
    dbaas_testkit::wait_for(ops, name, TIMEOUT, what, move |o: Option<&OpsRequest>| {
        o.is_some_and(&check)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

fn phase(op: &OpsRequest) -> Option<OpsPhase> {
    op.status.as_ref().and_then(|s| s.phase)
}

fn in_ops_phase(wanted: OpsPhase) -> impl Fn(&OpsRequest) -> bool {
    move |o| phase(o) == Some(wanted)
}

fn message(op: &OpsRequest) -> String {
    op.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

fn failed_reason(op: &OpsRequest) -> String {
    op.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Succeeded"))
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

/// The queue the cluster's status shows, as (name, type, phase).
fn queue_of(cluster: &DatabaseCluster) -> Vec<(String, OpsType, OpsPhase)> {
    cluster
        .status
        .as_ref()
        .map(|s| {
            s.ops_queue
                .iter()
                .map(|q| (q.name.clone(), q.type_, q.phase))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that `op` stays out of `phase` for a while.
async fn stays_out_of(ops: &Api<OpsRequest>, name: &str, not: OpsPhase, for_: Duration) {
    let deadline = tokio::time::Instant::now() + for_;
    while tokio::time::Instant::now() < deadline {
        let op = ops.get(name).await.unwrap();
        assert_ne!(
            phase(&op),
            Some(not),
            "{name} reached {not:?} too early: {:?}",
            op.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn horizontal_scaling_succeeds_only_on_the_engines_evidence() {
    let (_client, ns, _operator) = setup("ops-hs").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;

    create_op(
        &ops,
        "metadata: {name: scale}\nspec: {clusterRef: {name: pg}, type: HorizontalScaling, horizontalScaling: {replicas: 5}}",
    )
    .await;
    let running = op_where(&ops, "scale", "Running", in_ops_phase(OpsPhase::Running)).await;
    assert!(running.status.as_ref().unwrap().start_timestamp.is_some());
    engine_object(&engines, "pg", "5 instances asked of CNPG", |c| {
        c.spec.instances == 5
    })
    .await;
    let cluster = clusters.get("pg").await.unwrap();
    assert_eq!(cluster.spec.cluster_size, 5);
    assert_eq!(
        queue_of(&cluster),
        [(
            "scale".to_owned(),
            OpsType::HorizontalScaling,
            OpsPhase::Running
        )]
    );
    // The cluster was Ready a moment ago; CNPG has not answered yet, and then
    // answers that only 3 run: still not done.
    stays_out_of(&ops, "scale", OpsPhase::Succeeded, Duration::from_secs(2)).await;
    write_engine_status(&engines, "pg", CNPG, healthy(3, "pg", 1)).await;
    stays_out_of(&ops, "scale", OpsPhase::Succeeded, Duration::from_secs(2)).await;
    assert_eq!(
        phase(&ops.get("scale").await.unwrap()),
        Some(OpsPhase::Running)
    );

    write_engine_status(&engines, "pg", CNPG, healthy(5, "pg", 1)).await;
    let done = op_where(
        &ops,
        "scale",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    let status = done.status.as_ref().unwrap();
    assert_eq!(status.progress.as_deref(), Some("2/2"));
    assert!(status.completion_timestamp.is_some());
    assert_eq!(
        status
            .applied
            .as_ref()
            .unwrap()
            .previous
            .as_ref()
            .unwrap()
            .cluster_size,
        Some(3)
    );
    cluster_where(&clusters, "pg", "an empty queue", |c| {
        c.is_some_and(|c| queue_of(c).is_empty())
    })
    .await;

    // Events tell each step.
    let events: Api<Event> = ns.api();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let reasons: Vec<String> = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("scale"))
            .filter_map(|e| e.reason)
            .collect();
        if ["Started", "SpecChanged", "Succeeded"]
            .iter()
            .all(|r| reasons.iter().any(|x| x == r))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "events: {reasons:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn operations_on_one_cluster_run_in_order_and_can_be_cancelled() {
    let (_client, ns, _operator) = setup("ops-queue").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;

    create_op(
        &ops,
        "metadata: {name: first}\nspec: {clusterRef: {name: pg}, type: HorizontalScaling, horizontalScaling: {replicas: 5}}",
    )
    .await;
    op_where(&ops, "first", "Running", in_ops_phase(OpsPhase::Running)).await;
    create_op(
        &ops,
        "metadata: {name: second}\nspec: {clusterRef: {name: pg}, type: Reconfiguring, reconfiguring: {config: [{name: work_mem, value: 64MB}]}}",
    )
    .await;
    create_op(
        &ops,
        "metadata: {name: third}\nspec: {clusterRef: {name: pg}, type: Stop}",
    )
    .await;
    let second = op_where(&ops, "second", "Pending at position 1", |o| {
        o.status.as_ref().and_then(|s| s.queue_position) == Some(1)
    })
    .await;
    assert_eq!(phase(&second), Some(OpsPhase::Pending));
    op_where(&ops, "third", "Pending at position 2", |o| {
        o.status.as_ref().and_then(|s| s.queue_position) == Some(2)
    })
    .await;
    let cluster = cluster_where(&clusters, "pg", "three queued", |c| {
        c.is_some_and(|c| queue_of(c).len() == 3)
    })
    .await;
    assert_eq!(
        queue_of(&cluster),
        [
            (
                "first".to_owned(),
                OpsType::HorizontalScaling,
                OpsPhase::Running
            ),
            (
                "second".to_owned(),
                OpsType::Reconfiguring,
                OpsPhase::Pending
            ),
            ("third".to_owned(), OpsType::Stop, OpsPhase::Pending),
        ]
    );
    // Waiting operations change nothing.
    assert!(cluster.spec.config.is_empty());
    assert!(!cluster.spec.paused);

    // A waiting operation is cancelled at once.
    ops.patch(
        "third",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await
    .unwrap();
    op_where(
        &ops,
        "third",
        "Cancelled",
        in_ops_phase(OpsPhase::Cancelled),
    )
    .await;
    cluster_where(&clusters, "pg", "two queued", |c| {
        c.is_some_and(|c| queue_of(c).len() == 2)
    })
    .await;

    // The first one finishes; the second one starts.
    engine_object(&engines, "pg", "5 instances", |c| c.spec.instances == 5).await;
    write_engine_status(&engines, "pg", CNPG, healthy(5, "pg", 1)).await;
    op_where(
        &ops,
        "first",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    op_where(&ops, "second", "Running", |o| {
        phase(o) == Some(OpsPhase::Running) && o.status.as_ref().unwrap().queue_position.is_none()
    })
    .await;
    engine_object(&engines, "pg", "work_mem reaches CNPG", |c| {
        c.spec
            .postgresql
            .as_ref()
            .and_then(|p| p.parameters.as_ref())
            .is_some_and(|p| p.get("work_mem").map(String::as_str) == Some("64MB"))
    })
    .await;
    // CNPG reports on the change (a status identical to the last one would
    // be no write at all).
    write_engine_status(
        &engines,
        "pg",
        CNPG,
        json!({"phase": "Applying configuration"}),
    )
    .await;
    stays_out_of(&ops, "second", OpsPhase::Succeeded, Duration::from_secs(1)).await;
    write_engine_status(&engines, "pg", CNPG, healthy(5, "pg", 1)).await;
    op_where(
        &ops,
        "second",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    let cluster = cluster_where(&clusters, "pg", "an empty queue", |c| {
        c.is_some_and(|c| queue_of(c).is_empty())
    })
    .await;
    assert!(
        !cluster.spec.paused,
        "the cancelled Stop changed the cluster"
    );

    // A running scale is cancelled by putting the old size back.
    create_op(
        &ops,
        "metadata: {name: back}\nspec: {clusterRef: {name: pg}, type: HorizontalScaling, horizontalScaling: {replicas: 7}}",
    )
    .await;
    op_where(&ops, "back", "Running", in_ops_phase(OpsPhase::Running)).await;
    engine_object(&engines, "pg", "7 instances", |c| c.spec.instances == 7).await;
    ops.patch(
        "back",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await
    .unwrap();
    op_where(&ops, "back", "Cancelled", in_ops_phase(OpsPhase::Cancelled)).await;
    assert_eq!(clusters.get("pg").await.unwrap().spec.cluster_size, 5);
    engine_object(&engines, "pg", "5 instances again", |c| {
        c.spec.instances == 5
    })
    .await;
}

#[tokio::test]
async fn invalid_and_unsupported_operations_fail_and_change_nothing() {
    let (_client, ns, _operator) = setup("ops-invalid").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();

    create_op(
        &ops,
        "metadata: {name: nowhere}\nspec: {clusterRef: {name: missing}, type: Restart}",
    )
    .await;
    let failed = op_where(&ops, "nowhere", "Failed", in_ops_phase(OpsPhase::Failed)).await;
    assert_eq!(failed_reason(&failed), "ClusterNotFound");
    assert!(message(&failed).contains("missing"), "{}", message(&failed));

    let before = ready_cluster(&ns, "pg").await;
    for (name, body, reason) in [
        (
            "shrink",
            "type: VolumeExpansion, volumeExpansion: {storage: 5Gi}",
            "InvalidParameters",
        ),
        // The cluster has no backup spec, so no storage to write to.
        ("backup", "type: Backup, backup: {}", "NoBackupStorage"),
        (
            "rebuild",
            "type: RebuildInstance, rebuildInstance: {instanceName: pg-2}",
            "Unsupported",
        ),
        (
            "too-new",
            "type: Upgrade, upgrade: {version: '99.1'}",
            "VersionNotOffered",
        ),
        (
            "stranger",
            "type: Switchover, switchover: {instanceName: pg-9}",
            "InvalidParameters",
        ),
    ] {
        create_op(
            &ops,
            &format!("metadata: {{name: {name}}}\nspec: {{clusterRef: {{name: pg}}, ttlSecondsAfterFailed: 8, {body}}}"),
        )
        .await;
        let failed = op_where(&ops, name, "Failed", in_ops_phase(OpsPhase::Failed)).await;
        assert_eq!(
            failed_reason(&failed),
            reason,
            "{name}: {}",
            message(&failed)
        );
        assert!(!message(&failed).is_empty());
    }
    let after = clusters.get("pg").await.unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);

    // What an engine cannot do is refused for that engine.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: my}\nspec: {engine: {type: mysql}, clusterSize: 3, storage: {size: 10Gi}}",
    )
    .await;
    create_op(
        &ops,
        "metadata: {name: galera}\nspec: {clusterRef: {name: my}, type: Switchover}",
    )
    .await;
    let galera = op_where(&ops, "galera", "Failed", in_ops_phase(OpsPhase::Failed)).await;
    assert_eq!(failed_reason(&galera), "Unsupported");
    assert!(message(&galera).contains("Galera"), "{}", message(&galera));

    // A stopped cluster takes no operation that needs running instances
    // (it could never finish and would block the queue); it is told to start.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: asleep}\nspec: {engine: {type: postgresql, version: '17.6'}, clusterSize: 1, storage: {size: 1Gi}, paused: true}",
    )
    .await;
    create_op(
        &ops,
        "metadata: {name: wake-by-restart}\nspec: {clusterRef: {name: asleep}, type: Restart}",
    )
    .await;
    let asleep = op_where(
        &ops,
        "wake-by-restart",
        "Failed",
        in_ops_phase(OpsPhase::Failed),
    )
    .await;
    assert_eq!(failed_reason(&asleep), "ClusterStopped");
    assert!(
        message(&asleep).contains("start it first"),
        "{}",
        message(&asleep)
    );
    assert!(
        clusters.get("asleep").await.unwrap().spec.paused,
        "the cluster stays stopped"
    );

    // An operation the engine never confirms fails at its timeout.
    create_op(
        &ops,
        "metadata: {name: slow}\nspec: {clusterRef: {name: pg}, type: HorizontalScaling, horizontalScaling: {replicas: 4}, timeoutSeconds: 2}",
    )
    .await;
    op_where(&ops, "slow", "Running", in_ops_phase(OpsPhase::Running)).await;
    let timed_out = op_where(&ops, "slow", "Failed", in_ops_phase(OpsPhase::Failed)).await;
    assert_eq!(failed_reason(&timed_out), "Timeout");

    // Failed operations go away after their TTL.
    for name in ["shrink", "backup"] {
        dbaas_testkit::wait_gone(&ops, name, TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Without a TTL it stays.
    assert!(ops.get_opt("nowhere").await.unwrap().is_some());
}

#[tokio::test]
async fn switchover_and_restart_use_cloudnativepg_mechanisms() {
    let (client, ns, _operator) = setup("ops-cnpg").await;
    let engines: Api<CnpgCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;

    // Switchover: targetPrimary through the status subresource, done when
    // CNPG reports the target as the current primary.
    create_op(
        &ops,
        "metadata: {name: promote}\nspec: {clusterRef: {name: pg}, type: Switchover, switchover: {instanceName: pg-2}, ttlSecondsAfterSucceed: 8}",
    )
    .await;
    let asked = engine_object(&engines, "pg", "targetPrimary pg-2", |c| {
        c.status.as_ref().and_then(|s| s.target_primary.as_deref()) == Some("pg-2")
    })
    .await;
    assert_eq!(
        asked.status.as_ref().unwrap().current_primary.as_deref(),
        Some("pg-1")
    );
    stays_out_of(&ops, "promote", OpsPhase::Succeeded, Duration::from_secs(1)).await;
    write_engine_status(&engines, "pg", CNPG, healthy(3, "pg", 2)).await;
    op_where(
        &ops,
        "promote",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    // Succeeded operations go away after their TTL.
    dbaas_testkit::wait_gone(&ops, "promote", TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Restart: CNPG's restart annotation on its Cluster; done when every
    // instance pod carries it and is ready again.
    create_op(
        &ops,
        "metadata: {name: restart}\nspec: {clusterRef: {name: pg}, type: Restart}",
    )
    .await;
    let annotated = engine_object(&engines, "pg", "the restart annotation", |c| {
        c.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/restartedAt"))
    })
    .await;
    let restarted_at =
        annotated.metadata.annotations.as_ref().unwrap()["kubectl.kubernetes.io/restartedAt"]
            .clone();
    op_where(&ops, "restart", "Running", in_ops_phase(OpsPhase::Running)).await;
    // A restart under way cannot be cancelled: it says so and goes on.
    ops.patch(
        "restart",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"cancel": true}})),
    )
    .await
    .unwrap();
    let refused = op_where(&ops, "restart", "CancelRefused", |o| {
        o.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "CancelRefused" && c.status == "True")
        })
    })
    .await;
    assert_eq!(phase(&refused), Some(OpsPhase::Running));
    // The pods CNPG recreates carry the cluster's annotation.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns.name);
    let _ = accounts
        .create(
            &PostParams::default(),
            &from_yaml("metadata: {name: default}"),
        )
        .await;
    let pods: Api<Pod> = ns.api();
    for i in 1..=3 {
        let pod: Pod = from_yaml(&format!(
            "metadata:\n  name: pg-{i}\n  labels: {{cnpg.io/cluster: pg, cnpg.io/podRole: instance}}\n  annotations: {{kubectl.kubernetes.io/restartedAt: '{restarted_at}'}}\nspec:\n  automountServiceAccountToken: false\n  containers: [{{name: postgres, image: '{IMAGE16}'}}]"
        ));
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    // Not ready yet: not done.
    stays_out_of(&ops, "restart", OpsPhase::Succeeded, Duration::from_secs(1)).await;
    for i in 1..=3 {
        pods.patch_status(
            &format!("pg-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
    }
    op_where(
        &ops,
        "restart",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
}

#[tokio::test]
async fn volume_expansion_waits_for_the_volumes() {
    let (client, ns, _operator) = setup("ops-volume").await;
    let engines: Api<CnpgCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;
    // The instances' volumes, bound as the PV controller leaves them (it
    // resets the capacity of a claim without a volume).
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let claims: Api<PersistentVolumeClaim> = ns.api();
    let volume_name = |i: i32| format!("{}-pg-{i}", ns.name);
    for i in 1..=3 {
        let volume: PersistentVolume = from_yaml(&format!(
            "metadata: {{name: {}}}\nspec:\n  capacity: {{storage: 10Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {{path: /tmp/pg-{i}}}\n  claimRef: {{namespace: {}, name: pg-{i}}}",
            volume_name(i),
            ns.name
        ));
        volumes
            .create(&PostParams::default(), &volume)
            .await
            .unwrap();
        let claim: PersistentVolumeClaim = from_yaml(&format!(
            "metadata:\n  name: pg-{i}\n  labels: {{cnpg.io/cluster: pg, cnpg.io/pvcRole: PG_DATA}}\nspec:\n  accessModes: [ReadWriteOnce]\n  volumeName: {}\n  resources: {{requests: {{storage: 10Gi}}}}",
            volume_name(i)
        ));
        claims.create(&PostParams::default(), &claim).await.unwrap();
    }
    // The resizer grows a volume, then the claim reports it.
    let grow = |i: i32| {
        let volumes = volumes.clone();
        let claims = claims.clone();
        let volume = volume_name(i);
        async move {
            volumes
                .patch(
                    &volume,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"capacity": {"storage": "20Gi"}}})),
                )
                .await
                .unwrap();
            claims
                .patch_status(
                    &format!("pg-{i}"),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"capacity": {"storage": "20Gi"}}})),
                )
                .await
                .unwrap();
        }
    };
    create_op(
        &ops,
        "metadata: {name: grow}\nspec: {clusterRef: {name: pg}, type: VolumeExpansion, volumeExpansion: {storage: 20Gi}}",
    )
    .await;
    engine_object(&engines, "pg", "20Gi asked of CNPG", |c| {
        c.spec.storage.as_ref().and_then(|s| s.size.as_deref()) == Some("20Gi")
    })
    .await;
    // CNPG reports on the resize (a status identical to the last one would
    // be no write at all), but one volume still has the old capacity.
    let mut resized = healthy(3, "pg", 1);
    resized["healthyPVC"] = json!(["pg-1", "pg-2", "pg-3"]);
    write_engine_status(&engines, "pg", CNPG, resized).await;
    grow(1).await;
    grow(2).await;
    stays_out_of(&ops, "grow", OpsPhase::Succeeded, Duration::from_secs(2)).await;
    grow(3).await;
    let done = op_where(&ops, "grow", "Succeeded", in_ops_phase(OpsPhase::Succeeded)).await;
    assert!(message(&done).contains("3 volumes"), "{}", message(&done));
    for i in 1..=3 {
        let _ = volumes
            .delete(&volume_name(i), &kube::api::DeleteParams::default())
            .await;
    }
}

#[tokio::test]
async fn stop_start_and_upgrade_finish_on_what_cloudnativepg_reports() {
    let (_client, ns, _operator) = setup("ops-lifecycle").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;

    // Stop: CNPG hibernates the cluster through its annotation.
    create_op(
        &ops,
        "metadata: {name: stop}\nspec: {clusterRef: {name: pg}, type: Stop}",
    )
    .await;
    engine_object(&engines, "pg", "the hibernation annotation", |c| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cnpg.io/hibernation"))
            .map(String::as_str)
            == Some("on")
    })
    .await;
    stays_out_of(&ops, "stop", OpsPhase::Succeeded, Duration::from_secs(1)).await;
    let mut hibernated = healthy(3, "pg", 1);
    hibernated["readyInstances"] = json!(0);
    hibernated["conditions"] = json!([{
        "type": "cnpg.io/hibernation", "status": "True", "reason": "Hibernated",
        "message": "Cluster has been hibernated", "lastTransitionTime": "2026-01-01T00:00:00Z"
    }]);
    write_engine_status(&engines, "pg", CNPG, hibernated).await;
    op_where(&ops, "stop", "Succeeded", in_ops_phase(OpsPhase::Succeeded)).await;
    assert!(clusters.get("pg").await.unwrap().spec.paused);

    // Start: done once CNPG is healthy again.
    create_op(
        &ops,
        "metadata: {name: start}\nspec: {clusterRef: {name: pg}, type: Start}",
    )
    .await;
    engine_object(&engines, "pg", "hibernation off", |c| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("cnpg.io/hibernation"))
            .is_none_or(|v| v != "on")
    })
    .await;
    stays_out_of(&ops, "start", OpsPhase::Succeeded, Duration::from_secs(1)).await;
    write_engine_status(&engines, "pg", CNPG, healthy(3, "pg", 1)).await;
    op_where(
        &ops,
        "start",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    assert!(!clusters.get("pg").await.unwrap().spec.paused);

    // Upgrade: done once CNPG reports the new image and every instance pod
    // runs it.
    let image164 = "ghcr.io/cloudnative-pg/postgresql:16.4";
    create_op(
        &ops,
        "metadata: {name: upgrade}\nspec: {clusterRef: {name: pg}, type: Upgrade, upgrade: {version: '16.4'}}",
    )
    .await;
    engine_object(&engines, "pg", "the 16.4 image", |c| {
        c.spec.image_name.as_deref() == Some(image164)
    })
    .await;
    let mut upgraded = healthy(3, "pg", 1);
    upgraded["image"] = json!(image164);
    write_engine_status(&engines, "pg", CNPG, upgraded).await;
    cluster_where(&clusters, "pg", "Ready", in_phase(ClusterPhase::Ready)).await;
    // Ready and on the new version, but no pod runs the image yet.
    stays_out_of(&ops, "upgrade", OpsPhase::Succeeded, Duration::from_secs(2)).await;
    let pods: Api<Pod> = ns.api();
    for i in 1..=3 {
        let pod: Pod = from_yaml(&format!(
            "metadata:\n  name: pg-{i}\n  labels: {{cnpg.io/cluster: pg, cnpg.io/podRole: instance}}\nspec:\n  automountServiceAccountToken: false\n  containers: [{{name: postgres, image: '{image164}'}}]"
        ));
        pods.create(&PostParams::default(), &pod).await.unwrap();
        pods.patch_status(
            &format!("pg-{i}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})),
        )
        .await
        .unwrap();
    }
    let done = op_where(
        &ops,
        "upgrade",
        "Succeeded",
        in_ops_phase(OpsPhase::Succeeded),
    )
    .await;
    assert!(message(&done).contains(image164), "{}", message(&done));
}

#[tokio::test]
async fn a_full_queue_leaves_new_operations_pending_and_deletions_free_places() {
    let (_client, ns, _operator) = setup("ops-full").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let ops: Api<OpsRequest> = ns.api();
    ready_cluster(&ns, "pg").await;

    // The head never finishes: CNPG is not told to report.
    create_op(
        &ops,
        "metadata: {name: head}\nspec: {clusterRef: {name: pg}, type: HorizontalScaling, horizontalScaling: {replicas: 5}}",
    )
    .await;
    op_where(&ops, "head", "Running", in_ops_phase(OpsPhase::Running)).await;
    for i in 0..16 {
        create_op(
            &ops,
            &format!(
                "metadata: {{name: wait-{i:02}}}\nspec: {{clusterRef: {{name: pg}}, type: Stop}}"
            ),
        )
        .await;
    }
    // 16 places, the running one included: the 16th waiting one stays out.
    let outside = op_where(&ops, "wait-15", "QueueFull", |o| {
        o.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == "Queued" && c.reason == "QueueFull")
        })
    })
    .await;
    assert_eq!(phase(&outside), Some(OpsPhase::Pending));
    assert_eq!(outside.status.as_ref().unwrap().queue_position, None);
    op_where(&ops, "wait-14", "position 15", |o| {
        o.status.as_ref().and_then(|s| s.queue_position) == Some(15)
    })
    .await;
    let cluster = cluster_where(&clusters, "pg", "16 queued", |c| {
        c.is_some_and(|c| queue_of(c).len() == 16)
    })
    .await;
    assert_eq!(queue_of(&cluster)[0].0, "head");
    assert!(queue_of(&cluster).iter().all(|q| q.0 != "wait-15"));

    // A deleted one frees its place.
    ops.delete("wait-00", &Default::default()).await.unwrap();
    op_where(&ops, "wait-15", "admitted at position 15", |o| {
        o.status.as_ref().and_then(|s| s.queue_position) == Some(15)
    })
    .await;
    op_where(&ops, "wait-01", "next", |o| {
        o.status.as_ref().and_then(|s| s.queue_position) == Some(1)
    })
    .await;

    // Deleting them all empties the cluster's queue.
    ops.delete_collection(&Default::default(), &ListParams::default())
        .await
        .unwrap();
    cluster_where(&clusters, "pg", "an empty queue", |c| {
        c.is_some_and(|c| queue_of(c).is_empty())
    })
    .await;
    assert!(!clusters.get("pg").await.unwrap().spec.paused);
}
