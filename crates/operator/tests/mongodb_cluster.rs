//! The MongoDB vertical slice against the real control plane with the real
//! Percona Server for MongoDB CRD installed: the operator runs in-process;
//! the tests play the Percona Operator for MongoDB by writing its status the
//! way it does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE, LABEL_MANAGED_BY, MANAGED_BY_VALUE};
use dbaas_engine_crds::psmdb_cluster::PerconaServerMongoDb;
use dbaas_engines::psmdb::{self, Psmdb};
use dbaas_testkit::wait_gone;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use kube::{Api, Client};
use serde_json::{Value, json};

/// The Percona Operator for MongoDB's field manager when it writes status.
const PERCONA: &str = "percona-server-mongodb-operator";

/// Asserts that everything `psmdb::build` sends for the cluster as stored
/// now came back from the API server unchanged. Read untyped, so a field the
/// real 1.4 MB schema prunes shows up as missing instead of as a default.
async fn assert_sent_fields_kept(
    client: &Client,
    ns: &str,
    clusters: &Api<DatabaseCluster>,
    name: &str,
) {
    let cluster = clusters.get(name).await.unwrap();
    let version =
        dbaas_engines::resolve_version(&Psmdb, cluster.spec.engine.version.as_deref(), None)
            .unwrap();
    let sent = psmdb::build(&cluster, &version).unwrap().cluster;
    let raw: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<PerconaServerMongoDb>(&()),
    );
    let stored = raw.get(name).await.unwrap();
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &stored.data["spec"],
    );
    assert_not_pruned(
        &serde_json::to_value(&sent.metadata.labels).unwrap(),
        &serde_json::to_value(&stored.metadata.labels).unwrap(),
    );
}

/// Percona's status for an unsharded cluster, as its operator writes it.
fn percona_status(
    state: &str,
    size: i32,
    ready: i32,
    generation: i64,
    image: &str,
    host: &str,
) -> Value {
    json!({
        "state": state,
        "observedGeneration": generation,
        "size": size,
        "ready": ready,
        "host": host,
        "mongoImage": image,
        "replsets": { "rs0": { "initialized": ready > 0, "size": size, "ready": ready, "status": state } },
        "conditions": [{
            "type": state, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    })
}

fn generation(engine: &PerconaServerMongoDb) -> i64 {
    engine.metadata.generation.unwrap()
}

fn rs0(
    engine: &PerconaServerMongoDb,
) -> &dbaas_engine_crds::psmdb_cluster::PerconaServerMongoDbReplsets {
    &engine.spec.replsets.as_ref().unwrap()[0]
}

fn storage_request(engine: &PerconaServerMongoDb) -> Value {
    serde_json::to_value(&rs0(engine).volume_spec).unwrap()["persistentVolumeClaim"]["resources"]
        ["requests"]["storage"]
        .clone()
}

const MY_MONGODB: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: my-mongodb
spec:
  engine:
    type: mongodb
    version: "7.0.18-11"
  clusterSize: 3
  storage:
    size: 10Gi
  resources:
    requests:
      cpu: "1"
      memory: 2Gi
  backup:
    enabled: true
    schedule: "0 2 * * *"
  config:
    - name: operationProfiling.slowOpThresholdMs
      value: "200"
    - name: net.maxIncomingConnections
      value: "1000"
"#;

#[tokio::test]
async fn create_observe_edit_pause_and_delete() {
    let (client, ns, _operator) = setup("mongo").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaServerMongoDb> = ns.api();
    let image7 = "percona/percona-server-mongodb:7.0.18-11";
    let host = format!("my-mongodb-rs0.{}.svc.cluster.local", ns.name);

    // Create: a PerconaServerMongoDB, owned by the cluster, labelled as ours.
    let created = create_cluster(&clusters, MY_MONGODB).await;
    let psmdb = engine_object(&engines, "my-mongodb", "the PerconaServerMongoDB", |_| true).await;
    assert_eq!(psmdb.spec.image, image7);
    assert_eq!(psmdb.spec.cr_version.as_deref(), Some("1.23.0"));
    assert_eq!(psmdb.spec.pause, Some(false));
    let rs = rs0(&psmdb);
    assert_eq!((rs.name.as_deref(), rs.size), (Some("rs0"), 3));
    assert_eq!(storage_request(&psmdb), json!("10Gi"));
    assert_eq!(
        rs.configuration.as_deref(),
        Some(
            "net:\n  maxIncomingConnections: 1000\noperationProfiling:\n  slowOpThresholdMs: 200\n"
        )
    );
    assert_eq!(
        serde_json::to_value(rs.resources.as_ref().unwrap()).unwrap(),
        json!({ "requests": { "cpu": "1", "memory": "2Gi" } })
    );
    assert_eq!(psmdb.spec.sharding.as_ref().map(|s| s.enabled), Some(false));
    assert_eq!(
        psmdb.spec.secrets.as_ref().and_then(|s| s.users.as_deref()),
        Some("my-mongodb-secrets")
    );
    assert_eq!(
        psmdb
            .spec
            .storage_scaling
            .as_ref()
            .and_then(|s| s.enable_volume_scaling),
        Some(true)
    );
    assert_eq!(psmdb.spec.unsafe_flags, None);
    let labels = psmdb.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY_VALUE);
    assert_eq!(labels[LABEL_CLUSTER], "my-mongodb");
    assert_eq!(labels[LABEL_ENGINE], "mongodb");
    let owner = &psmdb.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.uid.as_str(), owner.kind.as_str(), owner.controller),
        (
            created.metadata.uid.as_deref().unwrap(),
            "DatabaseCluster",
            Some(true)
        )
    );
    // What we sent is exactly what the real Percona schema kept.
    assert_sent_fields_kept(&client, &ns.name, &clusters, "my-mongodb").await;

    // Before Percona says anything the cluster is Pending; backup is reported as not applied.
    let pending = cluster_where(
        &clusters,
        "my-mongodb",
        "Pending",
        in_phase(ClusterPhase::Pending),
    )
    .await;
    let unapplied = condition(&pending, "AllSettingsApplied");
    assert_eq!(
        (unapplied.status.as_str(), unapplied.reason.as_str()),
        ("False", "SettingsNotApplied")
    );
    assert!(
        unapplied.message.contains("backup"),
        "{}",
        unapplied.message
    );
    assert_eq!(condition(&pending, "Ready").status, "False");
    assert_eq!(
        pending
            .status
            .as_ref()
            .unwrap()
            .credentials_secret
            .as_deref(),
        Some("my-mongodb-secrets")
    );

    // Percona starts the members: Creating.
    let g1 = generation(&psmdb);
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("initializing", 3, 1, g1, image7, &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mongodb",
        "Creating",
        in_phase(ClusterPhase::Creating),
    )
    .await;

    // Percona reports ready: Ready with endpoint, version and credentials.
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("ready", 3, 3, g1, image7, &host),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-mongodb",
        "Ready",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!((status.ready, status.size), (3, 3));
    assert_eq!(status.host.as_deref(), Some(host.as_str()));
    assert_eq!(status.port, Some(27017));
    assert_eq!(status.engine_version.as_deref(), Some("7.0.18-11"));
    assert_eq!(
        status.credentials_secret.as_deref(),
        Some("my-mongodb-secrets")
    );
    assert_eq!(status.observed_generation, ready.metadata.generation);
    assert_eq!(condition(&ready, "Ready").status, "True");
    let engine_ref = status.engine_ref.as_ref().unwrap();
    assert_eq!(
        (engine_ref.api_version.as_str(), engine_ref.kind.as_str()),
        ("psmdb.percona.com/v1", "PerconaServerMongoDB")
    );

    // Edit: scale, upgrade, reconfigure, grow. Percona's stale "ready"
    // status (of the previous generation) must not make it look Ready.
    clusters
        .patch(
            "my-mongodb",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "clusterSize": 5,
                "engine": { "type": "mongodb", "version": "8.0.8-3" },
                "storage": { "size": "20Gi" },
                "config": [
                    { "name": "operationProfiling.slowOpThresholdMs", "value": "100" },
                    { "name": "operationProfiling.mode", "value": "slowOp" },
                ],
            } })),
        )
        .await
        .unwrap();
    let image8 = "percona/percona-server-mongodb:8.0.8-3";
    let psmdb = engine_object(&engines, "my-mongodb", "the edit to reach Percona", |c| {
        rs0(c).size == 5
    })
    .await;
    assert_eq!(psmdb.spec.image, image8);
    assert_eq!(storage_request(&psmdb), json!("20Gi"));
    assert_eq!(
        rs0(&psmdb).configuration.as_deref(),
        Some("operationProfiling:\n  mode: \"slowOp\"\n  slowOpThresholdMs: 100\n")
    );
    assert_sent_fields_kept(&client, &ns.name, &clusters, "my-mongodb").await;
    let g2 = generation(&psmdb);
    assert!(g2 > g1);
    let updating = cluster_where(
        &clusters,
        "my-mongodb",
        "Updating",
        in_phase(ClusterPhase::Updating),
    )
    .await;
    assert_eq!(condition(&updating, "Ready").status, "False");
    assert_eq!(condition(&updating, "Ready").reason, "WaitingForEngine");
    // Percona saw the new generation but is still adding members: not Ready.
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("initializing", 5, 3, g2, image7, &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mongodb",
        "EngineInitializing",
        has_condition("Ready", "False", "EngineInitializing"),
    )
    .await;
    // "ready" for the new generation while the old image still runs: rolling out.
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("ready", 5, 5, g2, image7, &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mongodb",
        "RollingOut",
        has_condition("Ready", "False", "RollingOut"),
    )
    .await;
    // Everything rolled out.
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("ready", 5, 5, g2, image8, &host),
    )
    .await;
    let ready = cluster_where(
        &clusters,
        "my-mongodb",
        "Ready after the edit",
        in_phase(ClusterPhase::Ready),
    )
    .await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!((status.ready, status.size), (5, 5));
    assert_eq!(status.engine_version.as_deref(), Some("8.0.8-3"));

    // Pause: Percona stops the members, then reports paused.
    clusters
        .patch(
            "my-mongodb",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "paused": true } })),
        )
        .await
        .unwrap();
    let psmdb = engine_object(&engines, "my-mongodb", "spec.pause", |c| {
        c.spec.pause == Some(true)
    })
    .await;
    let g3 = generation(&psmdb);
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("stopping", 5, 2, g3, image8, &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mongodb",
        "Pausing",
        has_condition("Ready", "False", "Pausing"),
    )
    .await;
    write_engine_status(
        &engines,
        "my-mongodb",
        PERCONA,
        percona_status("paused", 5, 0, g3, image8, &host),
    )
    .await;
    cluster_where(
        &clusters,
        "my-mongodb",
        "Paused",
        in_phase(ClusterPhase::Paused),
    )
    .await;

    // Delete: the garbage collector removes the PerconaServerMongoDB.
    clusters
        .delete("my-mongodb", &DeleteParams::background())
        .await
        .unwrap();
    wait_gone(&engines, "my-mongodb", TIMEOUT)
        .await
        .expect("the PerconaServerMongoDB is garbage-collected");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_mongos_proxy_makes_an_exposed_sharded_cluster() {
    let (client, ns, _operator) = setup("mongos").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaServerMongoDb> = ns.api();
    create_cluster(
        &clusters,
        r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {name: sharded}
spec:
  engine: {type: mongodb, version: "8.0.12-4"}
  clusterSize: 3
  storage: {size: 5Gi, class: fast}
  proxy:
    type: mongos
    replicas: 2
    resources: {requests: {cpu: 500m, memory: 1Gi}}
    config: [{name: net.maxIncomingConnections, value: "20000"}]
  expose: {type: external, ipSourceRanges: ["10.0.0.0/8"]}
  scheduling:
    nodeSelector: {disk: ssd}
    tolerations: [{key: db, operator: Exists, effect: NoSchedule}]
    affinity:
      podAntiAffinity:
        requiredDuringSchedulingIgnoredDuringExecution:
          - topologyKey: kubernetes.io/hostname
            labelSelector: {matchLabels: {app.kubernetes.io/instance: sharded}}
    priorityClassName: databases
"#,
    )
    .await;
    let psmdb = engine_object(
        &engines,
        "sharded",
        "the sharded PerconaServerMongoDB",
        |_| true,
    )
    .await;
    let spec = serde_json::to_value(&psmdb.spec).unwrap();
    let sharding = &spec["sharding"];
    assert_eq!(sharding["enabled"], true);
    assert_eq!(sharding["configsvrReplSet"]["size"], 3);
    assert_eq!(
        sharding["configsvrReplSet"]["volumeSpec"],
        spec["replsets"][0]["volumeSpec"]
    );
    assert_eq!(
        spec["replsets"][0]["volumeSpec"]["persistentVolumeClaim"]["storageClassName"],
        "fast"
    );
    let mongos = &sharding["mongos"];
    assert_eq!(mongos["size"], 2);
    assert_eq!(
        mongos["resources"],
        json!({ "requests": { "cpu": "500m", "memory": "1Gi" } })
    );
    assert_eq!(
        mongos["configuration"],
        "net:\n  maxIncomingConnections: 20000\n"
    );
    assert_eq!(
        mongos["expose"],
        json!({ "type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"] })
    );
    assert_eq!(
        spec["replsets"][0].get("expose"),
        None,
        "clients go through mongos"
    );
    for part in [&spec["replsets"][0], &sharding["configsvrReplSet"], mongos] {
        assert_eq!(part["nodeSelector"], json!({ "disk": "ssd" }));
        assert_eq!(part["tolerations"][0]["key"], "db");
        assert_eq!(
            part["affinity"]["advanced"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0]["topologyKey"],
            "kubernetes.io/hostname"
        );
        assert_eq!(part["priorityClassName"], "databases");
    }
    assert_sent_fields_kept(&client, &ns.name, &clusters, "sharded").await;

    // Percona brings it up: the shard first, then mongos.
    let g = generation(&psmdb);
    let image = "percona/percona-server-mongodb:8.0.12-4";
    let host = format!("sharded-mongos.{}.svc.cluster.local", ns.name);
    let mut status = percona_status("ready", 3, 3, g, image, &host);
    status["size"] = json!(8);
    status["ready"] = json!(7);
    status["replsets"]["rs0"]["added_as_shard"] = json!(true);
    status["replsets"]["cfg"] =
        json!({ "size": 3, "ready": 3, "status": "ready", "clusterRole": "configsvr" });
    status["mongos"] = json!({ "size": 2, "ready": 1, "status": "initializing" });
    write_engine_status(&engines, "sharded", PERCONA, status.clone()).await;
    cluster_where(
        &clusters,
        "sharded",
        "waiting for mongos",
        has_condition("Ready", "False", "Scaling"),
    )
    .await;
    status["ready"] = json!(8);
    status["mongos"] = json!({ "size": 2, "ready": 2, "status": "ready" });
    write_engine_status(&engines, "sharded", PERCONA, status).await;
    let ready = cluster_where(&clusters, "sharded", "Ready", in_phase(ClusterPhase::Ready)).await;
    let s = ready.status.as_ref().unwrap();
    assert_eq!((s.ready, s.size), (3, 3));
    assert_eq!(s.host.as_deref(), Some(host.as_str()));
    assert_eq!(s.port, Some(27017));
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_single_member_cluster_is_flagged_unsafe_and_bad_config_is_refused() {
    let (client, ns, _operator) = setup("mongo-one").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<PerconaServerMongoDb> = ns.api();
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: solo}\nspec: {engine: {type: mongodb}, clusterSize: 1, storage: {size: 1Gi}, credentialsSecretName: solo-admin, paused: true}",
    )
    .await;
    let psmdb = engine_object(
        &engines,
        "solo",
        "the single-member PerconaServerMongoDB",
        |_| true,
    )
    .await;
    assert_eq!(rs0(&psmdb).size, 1);
    assert_eq!(
        psmdb
            .spec
            .unsafe_flags
            .as_ref()
            .and_then(|f| f.replset_size),
        Some(true)
    );
    assert_eq!(psmdb.spec.pause, Some(true));
    assert_eq!(
        psmdb.spec.image,
        format!("percona/percona-server-mongodb:{}", psmdb::MONGODB_DEFAULT)
    );
    assert_eq!(
        psmdb.spec.secrets.as_ref().and_then(|s| s.users.as_deref()),
        Some("solo-admin")
    );
    assert_sent_fields_kept(&client, &ns.name, &clusters, "solo").await;

    // A config name that would smuggle YAML in is refused by the API server.
    let sneaky: DatabaseCluster = from_yaml(
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: sneaky}\nspec: {engine: {type: mongodb}, clusterSize: 3, storage: {size: 1Gi}, config: [{name: \"net.port: 1\\nsecurity.authorization\", value: disabled}]}",
    );
    let err = clusters
        .create(&PostParams::default(), &sneaky)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec.config[0].name"), "{err}");
    assert!(engines.get_opt("sneaky").await.unwrap().is_none());

    // A name the API accepts but mongod.conf cannot hold (an empty path
    // segment) is refused by the provider: a condition, nothing created.
    create_cluster(
        &clusters,
        "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: dotty}\nspec: {engine: {type: mongodb}, clusterSize: 3, storage: {size: 1Gi}, config: [{name: net..port, value: '1'}]}",
    )
    .await;
    let refused = cluster_where(
        &clusters,
        "dotty",
        "InvalidSpec",
        has_condition("Valid", "False", "InvalidSpec"),
    )
    .await;
    assert!(
        condition(&refused, "Valid").message.contains("spec.config"),
        "{}",
        condition(&refused, "Valid").message
    );
    assert_eq!(
        refused.status.as_ref().unwrap().phase,
        Some(ClusterPhase::Error)
    );
    assert!(engines.get_opt("dotty").await.unwrap().is_none());
    ns.delete().await.unwrap();
}
