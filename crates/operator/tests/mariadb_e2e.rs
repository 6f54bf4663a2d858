//! End to end against the real mariadb-operator on the real node
//! (`controlplane up --node`): MariaDB runs in pods from an image built from
//! Debian's `mariadb-server`. No test here writes any engine status: every
//! status our operator maps is the one mariadb-operator wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use dbaas_api::backup::BackupPhase;
use dbaas_api::cluster::{ClusterPhase, RestorePhase};
use dbaas_api::{DatabaseBackup, DatabaseCluster, DatabaseEngine, OpsRequest};
use dbaas_engine_crds::mariadb_mariadb::MariaDb;
use dbaas_testkit::node::{NodeCluster, NodeForward, shared_node};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mysql_async::prelude::*;
use serde_json::json;

/// A MariaDB pod initialises its data directory, then starts: a minute or
/// more on a busy 2-core machine.
const UP: Duration = Duration::from_secs(300);

struct E2e {
    node: &'static NodeCluster,
    client: Client,
    ns: dbaas_testkit::TestNamespace,
    operator: Option<Operator>,
    /// The one MariaDB version this machine has an image of.
    version: String,
}

impl E2e {
    async fn new(prefix: &str) -> Self {
        let node = shared_node();
        let client = node.control_plane.client().await.expect("client");
        let ns = dbaas_testkit::TestNamespace::create(&client, prefix)
            .await
            .expect("namespace");
        let operator = start_operator(&client, &ns.name);
        let image = node.assets.mariadb_image.clone();
        let version = image.rsplit_once(':').unwrap().1.to_owned();
        // The SRE's version policy: the image this machine has.
        let engines: Api<DatabaseEngine> = ns.api();
        engines
            .patch(
                "mariadb",
                &PatchParams::apply("e2e-sre").force(),
                &Patch::Apply(json!({
                    "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
                    "metadata": {"name": "mariadb"},
                    "spec": {"type": "mariadb", "images": {&version: image}, "defaultVersion": version},
                })),
            )
            .await
            .expect("point the engine at the local image");
        Self {
            node,
            client,
            ns,
            operator: Some(operator),
            version,
        }
    }

    fn clusters(&self) -> Api<DatabaseCluster> {
        self.ns.api()
    }

    async fn ready(&self, name: &str, instances: i32) -> DatabaseCluster {
        dbaas_testkit::wait_for(
            &self.clusters(),
            name,
            UP,
            &format!("Ready with {instances} instances"),
            |c: Option<&DatabaseCluster>| {
                c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
                    s.phase == Some(ClusterPhase::Ready)
                        && s.ready == instances
                        && s.observed_generation == c.and_then(|c| c.metadata.generation)
                })
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A loopback port forwarded to `host:3306` inside the node (a Service
    /// or a pod address).
    async fn forward(&self, ip: &str) -> NodeForward {
        self.node
            .control_plane
            .forward_into_node(format!("{ip}:3306").parse().unwrap())
            .await
            .unwrap()
    }

    async fn service_ip(&self, name: &str) -> String {
        let services: Api<Service> = self.ns.api();
        services
            .get(name)
            .await
            .expect("the Service")
            .spec
            .unwrap()
            .cluster_ip
            .unwrap()
    }

    async fn pod_ip(&self, pod: &str) -> String {
        let pods: Api<Pod> = self.ns.api();
        pods.get(pod).await.unwrap().status.unwrap().pod_ip.unwrap()
    }

    /// root's password, from the Secret the cluster's status names.
    async fn root_password(&self, cluster: &DatabaseCluster) -> String {
        let secrets: Api<Secret> = self.ns.api();
        let name = cluster
            .status
            .as_ref()
            .unwrap()
            .credentials_secret
            .clone()
            .unwrap();
        let secret = secrets.get(&name).await.expect("the credentials Secret");
        let login = dbaas_api::EngineType::Mariadb.connection().admin_login;
        let password_key = login.password_key();
        String::from_utf8(secret.data.unwrap()[password_key].0.clone()).unwrap()
    }

    /// A root session through `forward`, retried while a Service has no
    /// endpoint yet (as a client would).
    async fn connect(&self, cluster: &DatabaseCluster, forward: &NodeForward) -> mysql_async::Conn {
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(forward.local_addr().port())
            .user(Some("root"))
            .pass(Some(self.root_password(cluster).await));
        let started = std::time::Instant::now();
        loop {
            match mysql_async::Conn::new(opts.clone()).await {
                Ok(conn) => return conn,
                Err(err) if started.elapsed() > Duration::from_secs(60) => {
                    panic!("logging in through {}: {err}", forward.local_addr())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// Creates an OpsRequest on `cluster` and waits until it succeeds
    /// (failing the test with its message if it fails).
    async fn op(&self, cluster: &str, name: &str, fields: &str) -> OpsRequest {
        run_op(&self.ns.api(), cluster, name, fields, UP).await
    }
}

async fn count_rows(conn: &mut mysql_async::Conn) -> i64 {
    conn.query_first("SELECT count(*) FROM shop.items")
        .await
        .unwrap()
        .unwrap()
}

/// Create, connect, scale out, switch the primary, back up and restore into
/// a new cluster: each step judged by what MariaDB and mariadb-operator
/// themselves show.
#[tokio::test]
async fn a_mariadb_cluster_on_the_real_operator() {
    let e2e = E2e::new("e2e-mariadb").await;
    let clusters = e2e.clusters();
    let engines: Api<MariaDb> = e2e.ns.api();
    let started = std::time::Instant::now();
    create_cluster(
        &clusters,
        &format!(
            r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {{name: shop}}
spec:
  engine: {{type: mariadb, version: "{}"}}
  clusterSize: 2
  storage: {{size: 1Gi}}
  resources:
    requests: {{cpu: 50m, memory: 128Mi}}
  config:
    - {{name: max_connections, value: "77"}}
"#,
            e2e.version
        ),
    )
    .await;
    let ready = e2e.ready("shop", 2).await;
    eprintln!(
        "e2e: mariadb shop Ready in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let status = ready.status.clone().unwrap();
    assert_eq!(
        status.host.as_deref(),
        Some(format!("shop-primary.{}.svc", e2e.ns.name).as_str())
    );
    assert_eq!(status.port, Some(3306));
    assert_eq!(status.engine_version.as_deref(), Some(e2e.version.as_str()));
    assert_eq!(
        status.credentials_secret.as_deref(),
        Some("shop-credentials")
    );

    // What we sent is what mariadb-operator's own CRD (its release) kept.
    let mariadb = engines.get("shop").await.unwrap();
    let sent = dbaas_engines::mariadb::build(
        &ready,
        &dbaas_engines::catalog::ResolvedVersion {
            version: e2e.version.clone(),
            image: e2e.node.assets.mariadb_image.clone(),
        },
    )
    .unwrap()
    .cluster;
    assert_not_pruned(
        &serde_json::to_value(&sent.spec).unwrap(),
        &serde_json::to_value(&mariadb.spec).unwrap(),
    );
    assert_eq!(
        mariadb
            .status
            .as_ref()
            .and_then(|s| s.current_primary.as_deref()),
        Some("shop-0")
    );

    // The primary takes writes, with our configuration; the replica follows.
    let primary = e2e.forward(&e2e.service_ip("shop-primary").await).await;
    let mut db = e2e.connect(&ready, &primary).await;
    let max: i64 = db
        .query_first("SELECT @@max_connections")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(max, 77, "config reached my.cnf");
    db.query_drop("CREATE DATABASE shop").await.unwrap();
    db.query_drop("CREATE TABLE shop.items (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)")
        .await
        .unwrap();
    db.query_drop("INSERT INTO shop.items (note) VALUES ('first'), ('second')")
        .await
        .unwrap();
    drop(db);
    let replica = e2e.forward(&e2e.pod_ip("shop-1").await).await;
    let mut on_replica = e2e.connect(&ready, &replica).await;
    wait_rows(&mut on_replica, 2, "the replica to replay the writes").await;
    drop(on_replica);

    // Scale out: the new replica is seeded from a physical backup of a
    // ready one (our template), then replicates.
    clusters
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterSize": 3}})),
        )
        .await
        .unwrap();
    let scaled = e2e.ready("shop", 3).await;
    let third = e2e.forward(&e2e.pod_ip("shop-2").await).await;
    let mut on_third = e2e.connect(&scaled, &third).await;
    wait_rows(&mut on_third, 2, "the new replica to hold the data").await;
    drop(on_third);

    // Switchover: done only once mariadb-operator reports the new primary.
    e2e.op(
        "shop",
        "switchover",
        "type: Switchover, switchover: {instanceName: shop-1}",
    )
    .await;
    let mariadb = engines.get("shop").await.unwrap();
    assert_eq!(
        mariadb
            .status
            .as_ref()
            .and_then(|s| s.current_primary.as_deref()),
        Some("shop-1")
    );
    let switched = e2e.ready("shop", 3).await;
    let primary = e2e.forward(&e2e.service_ip("shop-primary").await).await;
    // mariadb-operator points the Service at the new primary after it
    // reports the switch, and kube-proxy follows: a new connection lands on
    // shop-1 within moments.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut db = loop {
        let mut db = e2e.connect(&switched, &primary).await;
        let host: String = db.query_first("SELECT @@hostname").await.unwrap().unwrap();
        if host == "shop-1" {
            break db;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the primary Service still reaches {host}, not shop-1"
        );
        drop(db);
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    db.query_drop("INSERT INTO shop.items (note) VALUES ('after switchover')")
        .await
        .unwrap();
    assert_eq!(count_rows(&mut db).await, 3);
    drop(db);

    // Backup onto a volume (a filesystem BackupStorage), then a new cluster
    // restored from it.
    let claims: Api<PersistentVolumeClaim> = e2e.ns.api();
    claims
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "dumps"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let storages: Api<dbaas_api::BackupStorage> = e2e.ns.api();
    storages
        .create(
            &PostParams::default(),
            &from_yaml("apiVersion: dbaas.io/v1\nkind: BackupStorage\nmetadata: {name: dumps}\nspec: {type: filesystem, persistentVolumeClaim: dumps}"),
        )
        .await
        .unwrap();
    // The cluster declares where its backups go (no schedule: on demand only).
    clusters
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"backup": {"enabled": true, "storageName": "dumps"}}})),
        )
        .await
        .unwrap();
    e2e.ready("shop", 3).await;
    let backups: Api<DatabaseBackup> = e2e.ns.api();
    backups
        .create(
            &PostParams::default(),
            &from_yaml("apiVersion: dbaas.io/v1\nkind: DatabaseBackup\nmetadata: {name: shop-1}\nspec: {clusterName: shop, storageName: dumps}"),
        )
        .await
        .unwrap();
    let backup = dbaas_testkit::wait_for(
        &backups,
        "shop-1",
        UP,
        "the backup to end",
        |b: Option<&DatabaseBackup>| {
            b.and_then(|b| b.status.as_ref())
                .and_then(|s| s.phase)
                .is_some_and(BackupPhase::is_terminal)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let backup_status = backup.status.unwrap();
    assert_eq!(
        backup_status.phase,
        Some(BackupPhase::Succeeded),
        "{:?}",
        backup_status.message
    );
    assert_eq!(backup_status.destination.as_deref(), Some("pvc://dumps"));

    create_cluster(
        &clusters,
        &format!(
            r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {{name: shop-copy}}
spec:
  engine: {{type: mariadb, version: "{}"}}
  clusterSize: 1
  storage: {{size: 1Gi}}
  dataSource: {{backupName: shop-1}}
"#,
            e2e.version
        ),
    )
    .await;
    let restored = dbaas_testkit::wait_for(
        &clusters,
        "shop-copy",
        UP,
        "the restore to end",
        |c: Option<&DatabaseCluster>| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.data_source.as_ref())
                .and_then(|d| d.phase)
                .is_some_and(RestorePhase::is_terminal)
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let data_source = restored.status.unwrap().data_source.unwrap();
    assert_eq!(
        data_source.phase,
        Some(RestorePhase::Succeeded),
        "{:?}",
        data_source.message
    );
    let copy = e2e.ready("shop-copy", 1).await;
    let copy_primary = e2e.forward(&e2e.service_ip("shop-copy").await).await;
    let mut on_copy = e2e.connect(&copy, &copy_primary).await;
    assert_eq!(
        count_rows(&mut on_copy).await,
        3,
        "the copy holds what the backup took"
    );
    drop(on_copy);

    // A claim on a DatabaseServer backed by the cluster, as for PostgreSQL.
    claim_on_the_cluster(e2e, &copy, copy_primary).await;
}

/// Waits until `shop.items` holds `rows` rows on `conn`'s server.
async fn wait_rows(conn: &mut mysql_async::Conn, rows: i64, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let count: Option<i64> = conn
            .query_first("SELECT count(*) FROM shop.items")
            .await
            .ok()
            .flatten();
        if count == Some(rows) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {count:?} of {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A DatabaseServer on the `mariadb` cluster and a claim through it: the
/// app's Secret names the cluster's Service and its login works.
async fn claim_on_the_cluster(mut e2e: E2e, cluster: &DatabaseCluster, forward: NodeForward) {
    use claim_support::*;
    use dbaas_api::DatabaseClaim;
    use dbaas_operator::server::endpoint::ConnectTo;
    use dbaas_testkit::db::DbKind;

    let name = cluster.metadata.name.clone().unwrap();
    let service_host = cluster.status.as_ref().unwrap().host.clone().unwrap();
    drop(e2e.operator.take());
    e2e.operator = Some(claim_operator_dialling(
        &e2e.client,
        &e2e.ns.name,
        vec![ConnectTo {
            from_host: service_host.clone(),
            from_port: 3306,
            to_host: "127.0.0.1".into(),
            to_port: forward.local_addr().port(),
        }],
    ));
    let servers: Api<dbaas_api::DatabaseServer> = e2e.ns.api();
    servers
        .create(
            &PostParams::default(),
            &from_yaml(&format!(
                "apiVersion: dbaas.io/v1\nkind: DatabaseServer\n\
                 metadata: {{name: {name}, labels: {{dbaas.io/instance: e2e}}}}\n\
                 spec: {{engine: mariadb, clusterRef: {{name: {name}}}}}"
            )),
        )
        .await
        .unwrap();
    let claims: Api<DatabaseClaim> = e2e.ns.api();
    create_claim(
        &claims,
        &claim(
            "orders",
            DbKind::MariaDb,
            "orders",
            "orders",
            json!({"instanceLabel": "e2e.orders"}),
        ),
    )
    .await;
    claim_where(&claims, "orders", "ready", is_ready).await;
    let data = secret_data(&e2e.client, &e2e.ns.name, "orders-db").await;
    assert_eq!(data["host"], service_host, "the app is given the Service");
    let mut reachable: BTreeMap<String, String> = data.clone();
    reachable.insert("host".into(), "127.0.0.1".into());
    reachable.insert("port".into(), forward.local_addr().port().to_string());
    login_with(DbKind::MariaDb, &reachable)
        .await
        .expect("the app's login works");
    // The claim's user reaches its own database only.
    let pods: Api<Pod> = e2e.ns.api();
    let instance_pods = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap();
    assert!(
        !instance_pods.items.is_empty(),
        "the instance selector the provider declares finds the pods"
    );
}
