//! The MariaDB vertical slice against the real control plane with the real
//! mariadb-operator CRDs installed: the operator runs in-process; the tests
//! play mariadb-operator by writing its status the way it does (the Ready
//! condition with its reasons, `replicas` = ready pods, `currentPrimary`).
//! The real mariadb-operator on the real node is `mariadb_e2e.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use common::*;
use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{LABEL_CLUSTER, LABEL_ENGINE};
use dbaas_engine_crds::mariadb_mariadb::MariaDb;
use dbaas_engine_crds::mariadb_maxscale::MaxScale;
use dbaas_engines::mariadb::Mariadb;
use dbaas_testkit::wait_gone;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// mariadb-operator's field manager when it writes status.
const MARIADB_OPERATOR: &str = "mariadb-operator";

/// A status as mariadb-operator writes it (`mariadb_controller_status.go`).
fn mariadb_status(reason: &str, ready: bool, replicas: i32, primary: Option<&str>) -> Value {
    let mut status = json!({
        "replicas": replicas,
        "conditions": [{
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": reason,
            "message": reason,
            "lastTransitionTime": "2027-01-15T08:00:00Z",
        }],
    });
    if let Some(primary) = primary {
        status["currentPrimary"] = json!(primary);
        status["currentPrimaryPodIndex"] =
            json!(primary.rsplit('-').next().unwrap().parse::<i64>().unwrap());
    }
    status
}

const SHOP: &str = r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata:
  name: shop
spec:
  engine:
    type: mariadb
    version: "11.8.2"
  clusterSize: 2
  storage:
    size: 1Gi
  config:
    - name: max_connections
      value: "200"
"#;

#[tokio::test]
async fn create_observe_scale_proxy_and_delete() {
    let (client, ns, _operator) = setup("mariadb").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<MariaDb> = ns.api();
    let maxscales: Api<MaxScale> = ns.api();

    let created = create_cluster(&clusters, SHOP).await;
    let mariadb = engine_object(&engines, "shop", "the MariaDB", |_| true).await;
    let spec = serde_json::to_value(&mariadb.spec).unwrap();
    assert_eq!(
        spec["image"],
        "docker-registry1.mariadb.com/library/mariadb:11.8.2"
    );
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["replication"]["enabled"], true);
    assert_eq!(
        spec["replication"]["replica"]["bootstrapFrom"]["physicalBackupTemplateRef"]["name"],
        "shop-replica-seed"
    );
    assert_eq!(spec["myCnf"], "[mariadb]\nmax_connections=200\n");
    assert_eq!(
        spec["rootPasswordSecretKeyRef"],
        json!({"name": "shop-credentials", "key": "root", "generate": true})
    );
    let labels = mariadb.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_CLUSTER], "shop");
    assert_eq!(labels[LABEL_ENGINE], "mariadb");
    assert_eq!(
        mariadb.metadata.owner_references.as_ref().unwrap()[0].uid,
        created.metadata.uid.clone().unwrap()
    );
    // What we sent is what the real mariadb-operator schema kept.
    let sent = dbaas_engines::mariadb::build(
        &clusters.get("shop").await.unwrap(),
        &dbaas_engines::resolve_version(&Mariadb, Some("11.8.2"), None).unwrap(),
    )
    .unwrap()
    .cluster;
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &serde_json::to_value(&mariadb.spec).unwrap(),
    );

    // Nothing reported yet: Pending.
    let pending = cluster_where(
        &clusters,
        "shop",
        "Pending",
        in_phase(ClusterPhase::Pending),
    )
    .await;
    let engine_ref = pending.status.as_ref().unwrap().engine_ref.clone().unwrap();
    assert_eq!(
        (engine_ref.api_version.as_str(), engine_ref.kind.as_str()),
        ("k8s.mariadb.com/v1alpha1", "MariaDB")
    );

    // mariadb-operator initialises: Creating.
    write_engine_status(
        &engines,
        "shop",
        MARIADB_OPERATOR,
        mariadb_status("Initializing", false, 0, None),
    )
    .await;
    let creating = cluster_where(
        &clusters,
        "shop",
        "Creating",
        in_phase(ClusterPhase::Creating),
    )
    .await;
    assert_eq!(
        condition(&creating, "Progressing").reason,
        "EngineInitializing"
    );

    // Ready: the endpoint is the primary Service, the credentials Secret is named.
    write_engine_status(
        &engines,
        "shop",
        MARIADB_OPERATOR,
        mariadb_status("StatefulSetReady", true, 2, Some("shop-0")),
    )
    .await;
    let ready = cluster_where(&clusters, "shop", "Ready", in_phase(ClusterPhase::Ready)).await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!(
        status.host.as_deref(),
        Some(format!("shop-primary.{}.svc", ns.name).as_str())
    );
    assert_eq!(status.port, Some(3306));
    assert_eq!(status.ready, 2);
    assert_eq!(
        status.credentials_secret.as_deref(),
        Some("shop-credentials")
    );
    assert_eq!(status.engine_version.as_deref(), Some("11.8.2"));

    // An error mariadb-operator reports reaches the cluster with its words.
    write_engine_status(
        &engines,
        "shop",
        MARIADB_OPERATOR,
        json!({"replicas": 1, "conditions": [{"type": "Ready", "status": "False", "reason": "ReplicaRecoverError",
               "message": "error recovering replica shop-1", "lastTransitionTime": "2027-01-15T08:01:00Z"}]}),
    )
    .await;
    let failed = cluster_where(&clusters, "shop", "Error", in_phase(ClusterPhase::Error)).await;
    assert!(
        condition(&failed, "Ready")
            .message
            .contains("error recovering replica shop-1"),
        "{:?}",
        condition(&failed, "Ready")
    );

    // Scale to 3 (replication scales freely) with MaxScale in front.
    clusters
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterSize": 3, "proxy": {"type": "maxscale"}}})),
        )
        .await
        .unwrap();
    let scaled = engine_object(&engines, "shop", "the MariaDB at 3 replicas", |m| {
        m.spec.replicas == Some(3)
    })
    .await;
    assert_eq!(
        scaled
            .spec
            .max_scale_ref
            .as_ref()
            .and_then(|r| r.name.as_deref()),
        Some("shop-maxscale")
    );
    let maxscale = engine_object(&maxscales, "shop-maxscale", "the MaxScale", |_| true).await;
    assert_eq!(
        maxscale
            .spec
            .maria_db_ref
            .as_ref()
            .and_then(|r| r.name.as_deref()),
        Some("shop")
    );
    assert_eq!(
        maxscale.metadata.labels.as_ref().unwrap()[LABEL_CLUSTER],
        "shop"
    );
    write_engine_status(
        &engines,
        "shop",
        MARIADB_OPERATOR,
        mariadb_status("StatefulSetReady", true, 3, Some("shop-0")),
    )
    .await;
    // The instances are ready; MaxScale is not: the cluster waits for it.
    let waiting = cluster_where(
        &clusters,
        "shop",
        "waiting for MaxScale",
        has_condition("Progressing", "True", "WaitingForProxy"),
    )
    .await;
    assert_eq!(
        waiting.status.as_ref().unwrap().host.as_deref(),
        Some(format!("shop-maxscale.{}.svc", ns.name).as_str())
    );
    write_engine_status(
        &maxscales,
        "shop-maxscale",
        MARIADB_OPERATOR,
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "MaxScaleReady",
               "message": "Running", "lastTransitionTime": "2027-01-15T08:02:00Z"}]}),
    )
    .await;
    cluster_where(
        &clusters,
        "shop",
        "Ready behind MaxScale",
        in_phase(ClusterPhase::Ready),
    )
    .await;

    // Proxy off: the MaxScale goes, the MariaDB no longer references it.
    clusters
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"proxy": {"type": "none"}}})),
        )
        .await
        .unwrap();
    wait_gone(&maxscales, "shop-maxscale", TIMEOUT)
        .await
        .unwrap();
    engine_object(&engines, "shop", "the MariaDB without maxScaleRef", |m| {
        m.spec.max_scale_ref.is_none()
    })
    .await;

    // Deleting the cluster deletes the MariaDB (owner reference; the real
    // control plane's garbage collector runs).
    clusters.delete("shop", &Default::default()).await.unwrap();
    wait_gone(&clusters, "shop", TIMEOUT).await.unwrap();
    let _ = client;
}

#[tokio::test]
async fn bad_mariadb_specs_are_refused_with_clear_messages() {
    let (_client, ns, _operator) = setup("mariadb-bad").await;
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<MariaDb> = ns.api();
    let create = |yaml: String| {
        let clusters = clusters.clone();
        async move {
            clusters
                .create(&PostParams::default(), &from_yaml::<DatabaseCluster>(&yaml))
                .await
        }
    };
    let spec = |name: &str, extra: &str| {
        format!(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata:\n  name: {name}\nspec:\n  storage:\n    size: 1Gi\n{extra}"
        )
    };

    // Galera keeps a quorum: an even size is refused by the CRD's CEL.
    let err = create(spec(
        "even",
        "  clusterSize: 2\n  engine:\n    type: mariadb\n    topology: galera\n",
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("odd clusterSize"), "{err}");
    // Replication takes any size.
    create(spec(
        "two",
        "  clusterSize: 2\n  engine:\n    type: mariadb\n    topology: replication\n",
    ))
    .await
    .unwrap();
    // The topology is a mariadb choice only.
    let err = create(spec(
        "pg",
        "  engine:\n    type: postgresql\n    topology: galera\n",
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("only offered for mariadb"),
        "{err}"
    );
    // MaxScale fronts mariadb only; mariadb takes no other proxy.
    let err = create(spec(
        "mx",
        "  engine:\n    type: mysql\n  proxy:\n    type: maxscale\n",
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("maxscale for mariadb"), "{err}");
    let err = create(spec(
        "hp",
        "  engine:\n    type: mariadb\n  proxy:\n    type: haproxy\n",
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("proxy.type must fit the engine"),
        "{err}"
    );
    // The topology cannot change after creation.
    let err = clusters
        .patch(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engine": {"topology": "galera"}}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("engine.topology is immutable"),
        "{err}"
    );

    // One instance runs without replication: it cannot grow into it, and a
    // replicated cluster cannot shrink to one.
    let err = clusters
        .patch(
            "two",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterSize": 1}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot be scaled below 2"),
        "{err}"
    );
    create(spec("one", "  engine:\n    type: mariadb\n"))
        .await
        .unwrap();
    let err = clusters
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterSize": 2}})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot grow"), "{err}");

    // Paused is accepted by the API but the provider refuses it: Valid=False,
    // and no MariaDB is created.
    create(spec(
        "stopped",
        "  engine:\n    type: mariadb\n  paused: true\n",
    ))
    .await
    .unwrap();
    let refused = cluster_where(
        &clusters,
        "stopped",
        "Valid=False",
        has_condition("Valid", "False", "UnsupportedFeature"),
    )
    .await;
    assert!(
        condition(&refused, "Valid")
            .message
            .contains("cannot stop a MariaDB"),
        "{:?}",
        condition(&refused, "Valid")
    );
    assert!(engines.get_opt("stopped").await.unwrap().is_none());
}
