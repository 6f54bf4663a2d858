//! Every OpsRequest type on the two Percona engines, mysql (Percona XtraDB
//! Cluster) and mongodb (Percona Server for MongoDB), against the real
//! control plane with the real Percona CRDs installed: the operator runs
//! in-process; the test plays the Percona operator by writing its status
//! (state, counts, image, `observedGeneration`) and the data volumes' claims.
//! One cluster per engine; the operations run one after the other, each to
//! its end: done on fresh evidence only, or refused with its reason.
//! Backup and Restore are covered by backups.rs and restores.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::time::Duration;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::OpsRequest;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::ops::OpsPhase;
use dbaas_engine_crds::psmdb_cluster::PerconaServerMongoDb;
use dbaas_engine_crds::pxc_cluster::PerconaXtraDbCluster;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client};
use serde_json::{Value, json};

/// How long an operation is watched to make sure it does not finish on
/// evidence that does not prove it.
const NOT_YET: Duration = Duration::from_millis(1500);

/// What differs between the two Percona engines, for one test body.
struct Engine {
    /// `spec.engine.type` of the DatabaseCluster.
    type_: &'static str,
    /// The rest of the DatabaseCluster spec beyond engine, size and storage.
    extra_spec: &'static str,
    resource: ApiResource,
    /// The Percona operator's field manager when it writes status.
    manager: &'static str,
    old_version: &'static str,
    new_version: &'static str,
    old_image: &'static str,
    new_image: &'static str,
    /// `app.kubernetes.io/component` of the data volumes' claims.
    component: &'static str,
    /// Name of the data claim of member `i` (as the StatefulSet names it).
    claim: fn(&str, usize) -> String,
    /// JSON pointers into the engine resource's spec.
    size_at: &'static str,
    cpu_request_at: &'static str,
    storage_at: &'static str,
    config_at: &'static str,
    image_at: &'static str,
    expose_type_at: &'static str,
    /// A Reconfiguring change and what Percona's configuration shows for it.
    config_change: &'static str,
    config_shows: &'static str,
    /// The status Percona writes: state, generation, members, ready, image.
    status: fn(&str, i64, i32, i32, &str) -> Value,
    /// Words each refusal's message carries, per type.
    restart_refused: &'static str,
    switchover_refused: &'static str,
}

/// `updateStatus` of the PXC operator: per-component counts, the summed
/// size/ready, the generation it describes.
fn pxc_status(state: &str, generation: i64, size: i32, ready: i32, image: &str) -> Value {
    let proxy_ready = if state == "ready" { 3 } else { 0 };
    json!({
        "state": state,
        "observedGeneration": generation,
        "host": "db-haproxy",
        "pxc": { "size": size, "ready": ready, "status": state, "image": image },
        "haproxy": { "size": 3, "ready": proxy_ready, "status": state },
        "size": size + 3,
        "ready": ready + proxy_ready,
        "conditions": [{ "type": state, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }],
    })
}

/// The PSMDB operator's status of an unsharded cluster.
fn psmdb_status(state: &str, generation: i64, size: i32, ready: i32, image: &str) -> Value {
    json!({
        "state": state,
        "observedGeneration": generation,
        "size": size,
        "ready": ready,
        "host": "db-rs0",
        "mongoImage": image,
        "replsets": { "rs0": { "initialized": ready > 0, "size": size, "ready": ready, "status": state } },
        "conditions": [{ "type": state, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z" }],
    })
}

fn pxc() -> Engine {
    Engine {
        type_: "mysql",
        extra_spec: "proxy: {type: haproxy}, config: [{name: max_connections, value: '200'}]",
        resource: ApiResource::erase::<PerconaXtraDbCluster>(&()),
        manager: "percona-xtradb-cluster-operator",
        old_version: "8.0.42-33.1",
        new_version: "8.0.45-36.1",
        old_image: "percona/percona-xtradb-cluster:8.0.42-33.1",
        new_image: "percona/percona-xtradb-cluster:8.0.45-36.1",
        component: "pxc",
        claim: |name, i| format!("datadir-{name}-pxc-{i}"),
        size_at: "/pxc/size",
        cpu_request_at: "/pxc/resources/requests/cpu",
        storage_at: "/pxc/volumeSpec/persistentVolumeClaim/resources/requests/storage",
        config_at: "/pxc/configuration",
        image_at: "/pxc/image",
        expose_type_at: "/haproxy/exposePrimary/type",
        config_change: "[{name: max_connections, value: '300'}]",
        config_shows: "max_connections=300",
        status: pxc_status,
        restart_refused: "no restart field",
        switchover_refused: "Galera",
    }
}

fn psmdb() -> Engine {
    Engine {
        type_: "mongodb",
        extra_spec: "config: [{name: net.maxIncomingConnections, value: '1000'}]",
        resource: ApiResource::erase::<PerconaServerMongoDb>(&()),
        manager: "percona-server-mongodb-operator",
        old_version: "7.0.18-11",
        new_version: "7.0.30-16",
        old_image: "percona/percona-server-mongodb:7.0.18-11",
        new_image: "percona/percona-server-mongodb:7.0.30-16",
        component: "mongod",
        claim: |name, i| format!("mongod-data-{name}-rs0-{i}"),
        size_at: "/replsets/0/size",
        cpu_request_at: "/replsets/0/resources/requests/cpu",
        storage_at: "/replsets/0/volumeSpec/persistentVolumeClaim/resources/requests/storage",
        config_at: "/replsets/0/configuration",
        image_at: "/image",
        expose_type_at: "/replsets/0/expose/type",
        config_change: "[{name: net.maxIncomingConnections, value: '2000'}]",
        config_shows: "2000",
        status: psmdb_status,
        restart_refused: "not implemented yet",
        switchover_refused: "no way to choose the primary",
    }
}

/// One engine's cluster, its engine resource and its operations.
struct Fixture {
    engine: Engine,
    client: Client,
    ns: String,
    clusters: Api<DatabaseCluster>,
    engines: Api<DynamicObject>,
    ops: Api<OpsRequest>,
}

const NAME: &str = "db";

impl Fixture {
    async fn generation(&self) -> i64 {
        self.engines
            .get(NAME)
            .await
            .unwrap()
            .metadata
            .generation
            .unwrap()
    }

    async fn report(&self, state: &str, generation: i64, size: i32, ready: i32, image: &str) {
        write_engine_status(
            &self.engines,
            NAME,
            self.engine.manager,
            (self.engine.status)(state, generation, size, ready, image),
        )
        .await;
    }

    /// Waits until the engine resource's spec passes `check`; returns its
    /// generation then (what Percona's next status must name).
    async fn engine_spec(&self, what: &str, check: impl Fn(&Value) -> bool) -> i64 {
        let object = engine_object(&self.engines, NAME, what, |o: &DynamicObject| {
            check(&o.data["spec"])
        })
        .await;
        object.metadata.generation.unwrap()
    }

    async fn create_op(&self, name: &str, params: &str) {
        let op: OpsRequest = from_yaml(&format!(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {{name: {name}}}\nspec: {{clusterRef: {{name: {NAME}}}, {params}}}"
        ));
        self.ops
            .create(&PostParams::default(), &op)
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }

    async fn op_in(&self, name: &str, wanted: OpsPhase) -> OpsRequest {
        dbaas_testkit::wait_for(
            &self.ops,
            name,
            TIMEOUT,
            &format!("{} {name} {wanted:?}", self.engine.type_),
            move |o: Option<&OpsRequest>| o.is_some_and(|o| phase(o) == Some(wanted)),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asserts that `name` is Running and stays so for a while.
    async fn still_running(&self, name: &str, why: &str) {
        let deadline = tokio::time::Instant::now() + NOT_YET;
        while tokio::time::Instant::now() < deadline {
            let op = self.ops.get(name).await.unwrap();
            assert_eq!(
                phase(&op),
                Some(OpsPhase::Running),
                "{} {name} must still run ({why}): {:?}",
                self.engine.type_,
                op.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn succeeded(&self, name: &str) -> String {
        let done = self.op_in(name, OpsPhase::Succeeded).await;
        message(&done)
    }

    async fn cluster_phase(&self, wanted: ClusterPhase) -> DatabaseCluster {
        cluster_where(
            &self.clusters,
            NAME,
            &format!("{wanted:?}"),
            in_phase(wanted),
        )
        .await
    }

    /// A bound PersistentVolume and its claim for member `i`, labelled as
    /// Percona's StatefulSet labels its data volumes.
    async fn data_volume(&self, i: usize) {
        let claim = (self.engine.claim)(NAME, i);
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        let volume: PersistentVolume = from_yaml(&format!(
            "metadata: {{name: {ns}-{claim}}}\nspec:\n  capacity: {{storage: 10Gi}}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {{path: /tmp/{claim}}}\n  claimRef: {{namespace: {ns}, name: {claim}}}",
            ns = self.ns
        ));
        volumes
            .create(&PostParams::default(), &volume)
            .await
            .unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &self.ns);
        let pvc: PersistentVolumeClaim = from_yaml(&format!(
            "metadata:\n  name: {claim}\n  labels: {{app.kubernetes.io/instance: {NAME}, app.kubernetes.io/component: {}, app.kubernetes.io/managed-by: {}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  volumeName: {}-{claim}\n  resources: {{requests: {{storage: 10Gi}}}}",
            self.engine.component, self.engine.manager, self.ns
        ));
        claims.create(&PostParams::default(), &pvc).await.unwrap();
    }

    /// The claim of member `i` of an earlier, larger cluster: Percona keeps
    /// the claims of the members a scale-down removed, and resizes only the
    /// claims of running members; this one never grows.
    async fn left_behind_claim(&self, i: usize) {
        let claim = (self.engine.claim)(NAME, i);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &self.ns);
        let pvc: PersistentVolumeClaim = from_yaml(&format!(
            "metadata:\n  name: {claim}\n  labels: {{app.kubernetes.io/instance: {NAME}, app.kubernetes.io/component: {}, app.kubernetes.io/managed-by: {}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 10Gi}}}}",
            self.engine.component, self.engine.manager
        ));
        claims.create(&PostParams::default(), &pvc).await.unwrap();
    }

    /// The resizer grows member `i`'s volume, then its claim reports it.
    async fn grow(&self, i: usize) {
        let claim = (self.engine.claim)(NAME, i);
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        volumes
            .patch(
                &format!("{}-{claim}", self.ns),
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"capacity": {"storage": "20Gi"}}})),
            )
            .await
            .unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &self.ns);
        claims
            .patch_status(
                &claim,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"capacity": {"storage": "20Gi"}}})),
            )
            .await
            .unwrap();
    }

    async fn remove_volumes(&self, members: usize) {
        let volumes: Api<PersistentVolume> = Api::all(self.client.clone());
        for i in 0..members {
            let claim = (self.engine.claim)(NAME, i);
            let _ = volumes
                .delete(&format!("{}-{claim}", self.ns), &DeleteParams::default())
                .await;
        }
    }
}

fn phase(op: &OpsRequest) -> Option<OpsPhase> {
    op.status.as_ref().and_then(|s| s.phase)
}

fn message(op: &OpsRequest) -> String {
    op.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

fn reason(op: &OpsRequest) -> String {
    op.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Succeeded"))
        .map(|c| c.reason.clone())
        .unwrap_or_default()
}

fn at<'a>(spec: &'a Value, pointer: &str) -> &'a Value {
    spec.pointer(pointer).unwrap_or(&Value::Null)
}

/// Every operation type on one Percona engine, in sequence on one cluster.
async fn every_operation(engine: Engine) {
    let (client, ns, _operator) = setup(&format!("ops-{}", engine.type_)).await;
    let fx = Fixture {
        engines: engine_api(&client, &ns.name, &engine.resource),
        clusters: ns.api(),
        ops: ns.api(),
        ns: ns.name.clone(),
        client,
        engine,
    };
    let e = &fx.engine;
    // A 3-member cluster that Percona reports ready.
    create_cluster(
        &fx.clusters,
        &format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {{name: {NAME}}}\nspec: {{engine: {{type: {}, version: '{}'}}, clusterSize: 3, storage: {{size: 10Gi}}, resources: {{requests: {{cpu: '1', memory: 2Gi}}}}, {}}}",
            e.type_, e.old_version, e.extra_spec
        ),
    )
    .await;
    let g = fx.engine_spec("the engine resource", |_| true).await;
    fx.report("ready", g, 3, 3, e.old_image).await;
    fx.cluster_phase(ClusterPhase::Ready).await;

    // Stop: spec.pause; done once Percona reports paused about that spec.
    fx.create_op("stop", "type: Stop").await;
    let g_stop = fx
        .engine_spec("spec.pause", |s| at(s, "/pause") == &json!(true))
        .await;
    fx.report("stopping", g_stop, 3, 1, e.old_image).await;
    fx.still_running("stop", "Percona is still stopping").await;
    // "paused" about the spec before: not about our change.
    fx.report("paused", g, 3, 0, e.old_image).await;
    fx.still_running("stop", "a paused state of the previous generation")
        .await;
    fx.report("paused", g_stop, 3, 0, e.old_image).await;
    assert!(
        fx.succeeded("stop").await.contains("stopped"),
        "{}",
        e.type_
    );
    fx.cluster_phase(ClusterPhase::Paused).await;

    // Start: spec.pause back to false; done once Percona is ready again.
    fx.create_op("start", "type: Start").await;
    let g_start = fx
        .engine_spec("spec.pause off", |s| at(s, "/pause") == &json!(false))
        .await;
    fx.report("ready", g_stop, 3, 3, e.old_image).await;
    fx.still_running("start", "a ready state of the previous generation")
        .await;
    fx.report("initializing", g_start, 3, 1, e.old_image).await;
    fx.still_running("start", "Percona is still starting").await;
    fx.report("ready", g_start, 3, 3, e.old_image).await;
    fx.succeeded("start").await;
    assert!(!fx.clusters.get(NAME).await.unwrap().spec.paused);

    // HorizontalScaling 3 -> 5: done only once Percona reports 5 ready
    // members at the generation that asks for 5.
    fx.create_op(
        "scale-out",
        "type: HorizontalScaling, horizontalScaling: {replicas: 5}",
    )
    .await;
    let g_scale = fx
        .engine_spec("5 members asked", |s| at(s, e.size_at) == &json!(5))
        .await;
    assert!(g_scale > g_start);
    fx.still_running("scale-out", "only the old ready of 3 members")
        .await;
    // Even 5 ready members prove nothing when the status is about the spec
    // before the change.
    fx.report("ready", g_start, 5, 5, e.old_image).await;
    fx.still_running("scale-out", "5 ready at the previous generation")
        .await;
    fx.report("initializing", g_scale, 5, 3, e.old_image).await;
    fx.still_running("scale-out", "3 of 5 members ready").await;
    fx.report("ready", g_scale, 5, 4, e.old_image).await;
    fx.still_running("scale-out", "ready, but 4 of 5 members")
        .await;
    fx.report("ready", g_scale, 5, 5, e.old_image).await;
    let done = fx.succeeded("scale-out").await;
    assert!(done.contains("5 instances ready"), "{}: {done}", e.type_);
    let cluster = fx.clusters.get(NAME).await.unwrap();
    assert_eq!(cluster.spec.cluster_size, 5);
    assert_eq!(cluster.status.as_ref().unwrap().ready, 5);

    // VerticalScaling: the members' resources.
    fx.create_op(
        "bigger",
        "type: VerticalScaling, verticalScaling: {resources: {requests: {cpu: '2', memory: 4Gi}, limits: {memory: 4Gi}}}",
    )
    .await;
    let g_vertical = fx
        .engine_spec("2 CPUs asked", |s| at(s, e.cpu_request_at) == &json!("2"))
        .await;
    fx.still_running("bigger", "a ready state of the previous generation")
        .await;
    fx.report("initializing", g_vertical, 5, 4, e.old_image)
        .await;
    fx.still_running("bigger", "a rolling restart").await;
    fx.report("ready", g_vertical, 5, 5, e.old_image).await;
    fx.succeeded("bigger").await;

    // VolumeExpansion 10Gi -> 20Gi: done once the cluster is ready at the new
    // generation and the data claim (Percona's labels) of every member
    // reports 20Gi.
    for i in 0..5 {
        fx.data_volume(i).await;
    }
    // Members 5 and 6 of an earlier scale-down: not part of the cluster.
    fx.left_behind_claim(5).await;
    fx.left_behind_claim(6).await;
    fx.create_op(
        "grow",
        "type: VolumeExpansion, volumeExpansion: {storage: 20Gi}",
    )
    .await;
    let g_grow = fx
        .engine_spec("20Gi asked", |s| at(s, e.storage_at) == &json!("20Gi"))
        .await;
    for i in 0..4 {
        fx.grow(i).await;
    }
    fx.still_running("grow", "a ready state of the previous generation")
        .await;
    fx.report("ready", g_grow, 5, 5, e.old_image).await;
    fx.still_running("grow", "4 of 5 volumes grown").await;
    fx.grow(4).await;
    let done = fx.succeeded("grow").await;
    assert!(done.contains("5 volumes"), "{}: {done}", e.type_);

    // Reconfiguring: merged by name into Percona's configuration.
    fx.create_op(
        "reconfigure",
        &format!(
            "type: Reconfiguring, reconfiguring: {{config: {}}}",
            e.config_change
        ),
    )
    .await;
    let g_config = fx
        .engine_spec("the new configuration", |s| {
            at(s, e.config_at)
                .as_str()
                .is_some_and(|c| c.contains(e.config_shows))
        })
        .await;
    fx.still_running("reconfigure", "a ready state of the previous generation")
        .await;
    fx.report("ready", g_config, 5, 5, e.old_image).await;
    fx.succeeded("reconfigure").await;

    // Upgrade: the new image; done once Percona is ready at that generation
    // and reports the members on the new image.
    fx.create_op(
        "upgrade",
        &format!("type: Upgrade, upgrade: {{version: '{}'}}", e.new_version),
    )
    .await;
    let g_upgrade = fx
        .engine_spec("the new image", |s| {
            at(s, e.image_at) == &json!(e.new_image)
        })
        .await;
    fx.still_running("upgrade", "a ready state of the previous generation")
        .await;
    fx.report("ready", g_upgrade, 5, 5, e.old_image).await;
    fx.still_running("upgrade", "ready, but still on the old image")
        .await;
    fx.report("ready", g_upgrade, 5, 5, e.new_image).await;
    let done = fx.succeeded("upgrade").await;
    assert!(done.contains(e.new_version), "{}: {done}", e.type_);
    let cluster = fx.cluster_phase(ClusterPhase::Ready).await;
    assert_eq!(
        cluster.status.as_ref().unwrap().engine_version.as_deref(),
        Some(e.new_version)
    );

    // Expose: a LoadBalancer in front of the cluster.
    fx.create_op("expose", "type: Expose, expose: {type: external}")
        .await;
    let g_expose = fx
        .engine_spec("a LoadBalancer", |s| {
            at(s, e.expose_type_at) == &json!("LoadBalancer")
        })
        .await;
    fx.still_running("expose", "a ready state of the previous generation")
        .await;
    fx.report("ready", g_expose, 5, 5, e.new_image).await;
    fx.succeeded("expose").await;

    // What Percona's resources cannot express is refused, changing nothing.
    let before = fx.clusters.get(NAME).await.unwrap();
    let engine_before = fx.generation().await;
    let refusals = [
        ("restart", "type: Restart", e.restart_refused),
        ("switchover", "type: Switchover", e.switchover_refused),
        (
            "rebuild",
            "type: RebuildInstance, rebuildInstance: {instanceName: db-0}",
            "RebuildInstance is not implemented",
        ),
        (
            "custom",
            "type: Custom, custom: {name: compact}",
            "Custom operations are not implemented",
        ),
    ];
    for (name, params, _) in &refusals {
        fx.create_op(name, params).await;
    }
    for (name, _, words) in &refusals {
        let refused = fx.op_in(name, OpsPhase::Failed).await;
        assert_eq!(reason(&refused), "Unsupported", "{} {name}", e.type_);
        assert!(
            message(&refused).contains(words),
            "{} {name}: {}",
            e.type_,
            message(&refused)
        );
        let status = refused.status.as_ref().unwrap();
        assert!(status.start_timestamp.is_none(), "{name} never started");
        assert!(status.applied.is_none(), "{name} applied nothing");
    }
    let after = fx.clusters.get(NAME).await.unwrap();
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.spec, before.spec);
    assert_eq!(fx.generation().await, engine_before);

    // Everything the operations asked for stands.
    assert_eq!(after.spec.cluster_size, 5);
    assert_eq!(after.spec.storage.size.0, "20Gi");
    assert_eq!(after.spec.engine.version.as_deref(), Some(e.new_version));
    assert!(!after.spec.paused);
    assert!(after.spec.expose.is_some());
    // The queue is empty again.
    let queue = cluster_where(&fx.clusters, NAME, "an empty queue", |c| {
        c.and_then(|c| c.status.as_ref())
            .is_some_and(|s| s.ops_queue.is_empty())
    })
    .await;
    assert_eq!(queue.status.unwrap().phase, Some(ClusterPhase::Ready));

    fx.remove_volumes(5).await;
}

#[tokio::test]
async fn every_operation_on_percona_xtradb_cluster() {
    every_operation(pxc()).await;
}

#[tokio::test]
async fn every_operation_on_percona_server_for_mongodb() {
    every_operation(psmdb()).await;
}
