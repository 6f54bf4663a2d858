//! End to end against the real CloudNativePG operator on the real node
//! (`controlplane up --node`): PostgreSQL runs in pods from images built
//! from Debian's packages. No test here writes any engine status: every
//! status our operator maps is the one CloudNativePG wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::{DatabaseCluster, DatabaseEngine, OpsRequest};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_testkit::node::{NodeCluster, shared_node};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// A pod that CloudNativePG starts runs initdb, then PostgreSQL: minutes
/// on a busy 2-core machine, not seconds.
const UP: Duration = Duration::from_secs(300);

/// The namespace, the operator, and the local PostgreSQL images offered
/// through the namespace's DatabaseEngine.
struct E2e {
    node: &'static NodeCluster,
    client: Client,
    ns: dbaas_testkit::TestNamespace,
    operator: Option<Operator>,
    /// version -> image, newest last.
    versions: BTreeMap<String, String>,
}

impl E2e {
    async fn new(prefix: &str) -> Self {
        let node = shared_node();
        let client = node.control_plane.client().await.expect("client");
        let ns = dbaas_testkit::TestNamespace::create(&client, prefix)
            .await
            .expect("namespace");
        let operator = start_operator(&client, &ns.name);
        let versions = node.assets.postgres_images();
        assert!(!versions.is_empty(), "no PostgreSQL image was built");
        // The SRE's version policy: the images this machine has.
        let engines: Api<DatabaseEngine> = ns.api();
        let newest = versions.keys().next_back().cloned().unwrap();
        engines
            .patch(
                "postgresql",
                &PatchParams::apply("e2e-sre").force(),
                &Patch::Apply(json!({
                    "apiVersion": "dbaas.io/v1", "kind": "DatabaseEngine",
                    "metadata": {"name": "postgresql"},
                    "spec": {"type": "postgresql", "images": versions, "defaultVersion": newest},
                })),
            )
            .await
            .expect("point the engine at the local images");
        Self {
            node,
            client,
            ns,
            operator: Some(operator),
            versions,
        }
    }

    fn newest_version(&self) -> String {
        self.versions.keys().next_back().cloned().unwrap()
    }

    fn clusters(&self) -> Api<DatabaseCluster> {
        self.ns.api()
    }

    async fn create(&self, name: &str, size: u32, version: &str) -> DatabaseCluster {
        create_cluster(
            &self.clusters(),
            &format!(
                r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {{name: {name}}}
spec:
  engine: {{type: postgresql, version: "{version}"}}
  clusterSize: {size}
  storage: {{size: 1Gi}}
  resources:
    requests: {{cpu: 50m, memory: 128Mi}}
"#
            ),
        )
        .await
    }

    async fn wait(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(Option<&DatabaseCluster>) -> bool,
    ) -> DatabaseCluster {
        dbaas_testkit::wait_for(&self.clusters(), name, timeout, what, check)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn ready(&self, name: &str) -> DatabaseCluster {
        self.wait(name, "Ready", UP, |c| {
            c.and_then(|c| c.status.as_ref()).is_some_and(|s| {
                s.phase == Some(ClusterPhase::Ready)
                    && s.observed_generation == c.and_then(|c| c.metadata.generation)
            })
        })
        .await
    }

    /// A session as the cluster's superuser, from the published Secret, to
    /// `host` (a Service or pod address inside the node).
    async fn connect(&self, cluster: &DatabaseCluster, addr: SocketAddr) -> tokio_postgres::Client {
        let status = cluster.status.as_ref().unwrap();
        let secret: Api<Secret> = self.ns.api();
        let secret = secret
            .get(status.credentials_secret.as_deref().unwrap())
            .await
            .expect("the credentials Secret");
        let key =
            |k: &str| String::from_utf8(secret.data.as_ref().unwrap()[k].0.clone()).expect("utf-8");
        let stream = self.dial(addr).await;
        let mut config = tokio_postgres::Config::new();
        config
            .user(key("username"))
            .password(key("password"))
            .dbname("postgres");
        let (client, connection) = config
            .connect_raw(stream, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("logging in at {addr}: {e}"));
        tokio::spawn(connection);
        client
    }

    /// A TCP connection from inside the node to `addr`. A Service's address
    /// answers once kube-proxy has its endpoints: retried for a while, as a
    /// client would.
    async fn dial(&self, addr: SocketAddr) -> tokio::net::TcpStream {
        let started = std::time::Instant::now();
        loop {
            match self.node.control_plane.connect_async(addr).await {
                Ok(stream) => {
                    if started.elapsed() > Duration::from_secs(1) {
                        eprintln!("e2e: {addr} answered after {:?}", started.elapsed());
                    }
                    return stream;
                }
                Err(err) if started.elapsed() > Duration::from_secs(60) => {
                    panic!("connecting to {addr}: {err}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// The ClusterIP address of a Service of the cluster.
    async fn service(&self, name: &str) -> SocketAddr {
        let services: Api<Service> = self.ns.api();
        let service = services.get(name).await.expect("the Service");
        let ip = service.spec.unwrap().cluster_ip.unwrap();
        format!("{ip}:5432").parse().unwrap()
    }

    async fn pods(&self, cluster: &str) -> Vec<Pod> {
        let pods: Api<Pod> = self.ns.api();
        pods.list(&ListParams::default().labels(&format!("cnpg.io/cluster={cluster}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("cnpg.io/instanceName"))
            })
            .collect()
    }
}

impl E2e {
    /// Creates an OpsRequest on `cluster` and waits until it succeeds
    /// (failing the test with its message if it fails).
    async fn op(&self, cluster: &str, name: &str, fields: &str) -> OpsRequest {
        run_op(&self.ns.api(), cluster, name, fields, UP).await
    }

    async fn cnpg(&self, name: &str) -> CnpgCluster {
        let engines: Api<CnpgCluster> = self.ns.api();
        engines.get(name).await.unwrap()
    }

    /// The pod's address for PostgreSQL.
    async fn pod_addr(&self, pod: &str) -> SocketAddr {
        let pods: Api<Pod> = self.ns.api();
        let pod = pods.get(pod).await.unwrap();
        let ip = pod.status.unwrap().pod_ip.unwrap();
        format!("{ip}:5432").parse().unwrap()
    }

    async fn count_rows(&self, cluster: &DatabaseCluster, addr: SocketAddr) -> i64 {
        let db = self.connect(cluster, addr).await;
        db.query_one("SELECT count(*) FROM items", &[])
            .await
            .unwrap()
            .get(0)
    }

    /// Waits until every standby has replayed what the primary wrote.
    async fn standbys_caught_up(&self, cluster: &DatabaseCluster, standbys: i64) {
        let db = self
            .connect(
                cluster,
                self.service(&format!("{}-rw", cluster.metadata.name.as_deref().unwrap()))
                    .await,
            )
            .await;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let caught_up: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_replication \
                     WHERE state = 'streaming' AND replay_lsn >= pg_current_wal_lsn()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if caught_up == standbys {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{caught_up} of {standbys} standbys caught up"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The day-2 path on one cluster, each step judged by what PostgreSQL and
/// CloudNativePG themselves show: scale out, switchover, reconfigure,
/// vertical scaling, restart, failover, hibernation, delete.
#[tokio::test]
async fn day_two_operations_on_the_real_operator() {
    let e2e = E2e::new("e2e-day2").await;
    let version = e2e.newest_version();
    e2e.create("pg", 1, &version).await;
    let cluster = e2e.ready("pg").await;
    let rw = e2e.service("pg-rw").await;
    {
        let db = e2e.connect(&cluster, rw).await;
        db.batch_execute(
            "CREATE TABLE items (id serial PRIMARY KEY, note text);
             INSERT INTO items (note) SELECT 'row ' || g FROM generate_series(1, 100) g;",
        )
        .await
        .unwrap();
    }

    // HorizontalScaling 1 -> 3: two streaming standbys holding the rows.
    e2e.op(
        "pg",
        "scale-out",
        "type: HorizontalScaling, horizontalScaling: {replicas: 3}",
    )
    .await;
    let cluster = e2e.ready("pg").await;
    assert_eq!(cluster.status.as_ref().unwrap().ready, 3);
    let pods = e2e.pods("pg").await;
    assert_eq!(pods.len(), 3, "three instance pods");
    e2e.standbys_caught_up(&cluster, 2).await;
    let primary = e2e
        .cnpg("pg")
        .await
        .status
        .unwrap()
        .current_primary
        .unwrap();
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap();
        let db = e2e.connect(&cluster, e2e.pod_addr(&name).await).await;
        let in_recovery: bool = db
            .query_one("SELECT pg_is_in_recovery()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(in_recovery, name != primary, "{name} (primary {primary})");
        let rows: i64 = db
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 100, "rows on {name}");
    }

    // Switchover to a standby: done only once CloudNativePG reports it.
    let target = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .find(|n| *n != primary)
        .unwrap();
    e2e.op(
        "pg",
        "switchover",
        &format!("type: Switchover, switchover: {{instanceName: {target}}}"),
    )
    .await;
    assert_eq!(
        e2e.cnpg("pg")
            .await
            .status
            .unwrap()
            .current_primary
            .as_deref(),
        Some(target.as_str()),
        "the OpsRequest succeeded before CloudNativePG reported the new primary"
    );
    let cluster = e2e.ready("pg").await;
    {
        let db = e2e.connect(&cluster, e2e.pod_addr(&target).await).await;
        db.execute("INSERT INTO items (note) VALUES ('after switchover')", &[])
            .await
            .unwrap();
    }
    assert_eq!(
        e2e.count_rows(&cluster, rw).await,
        101,
        "writes through the Service reach the new primary"
    );

    // Reconfiguring: the parameter as PostgreSQL shows it.
    e2e.op(
        "pg",
        "work-mem",
        "type: Reconfiguring, reconfiguring: {config: [{name: work_mem, value: 8MB}]}",
    )
    .await;
    let cluster = e2e.ready("pg").await;
    {
        let db = e2e.connect(&cluster, rw).await;
        let work_mem: String = db.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
        assert_eq!(work_mem, "8MB");
    }

    // VerticalScaling: CloudNativePG rolls the pods to the new resources.
    e2e.op(
        "pg",
        "resize",
        "type: VerticalScaling, verticalScaling: {resources: {requests: {cpu: 60m, memory: 160Mi}}}",
    )
    .await;
    e2e.ready("pg").await;
    for pod in e2e.pods("pg").await {
        let postgres = pod
            .spec
            .unwrap()
            .containers
            .into_iter()
            .find(|c| c.name == "postgres")
            .unwrap();
        let requests = postgres.resources.unwrap().requests.unwrap();
        assert_eq!(requests["memory"].0, "160Mi", "{:?}", pod.metadata.name);
        assert_eq!(requests["cpu"].0, "60m", "{:?}", pod.metadata.name);
    }

    // Restart: every instance pod restarted (CloudNativePG's restartedAt).
    e2e.op("pg", "restart", "type: Restart").await;
    for pod in e2e.pods("pg").await {
        let annotations = pod.metadata.annotations.unwrap_or_default();
        assert!(
            annotations.contains_key("kubectl.kubernetes.io/restartedAt"),
            "{:?} was not restarted",
            pod.metadata.name
        );
    }
    let cluster = e2e.ready("pg").await;

    // Failover: the primary's pod is deleted; CloudNativePG promotes a
    // standby; our status leaves Ready and comes back; no committed row lost.
    e2e.standbys_caught_up(&cluster, 2).await;
    let before = e2e.count_rows(&cluster, rw).await;
    let old_primary = e2e
        .cnpg("pg")
        .await
        .status
        .unwrap()
        .current_primary
        .unwrap();
    let phases = watch_phases(e2e.clusters(), "pg");
    let pods: Api<Pod> = e2e.ns.api();
    pods.delete(
        &old_primary,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let new_primary = dbaas_testkit::wait_for(
        &e2e.ns.api::<CnpgCluster>(),
        "pg",
        UP,
        "a new primary",
        |c: Option<&CnpgCluster>| {
            c.and_then(|c| c.status.as_ref())
                .and_then(|s| s.current_primary.as_deref())
                .is_some_and(|p| p != old_primary)
        },
    )
    .await
    .unwrap()
    .status
    .unwrap()
    .current_primary
    .unwrap();
    let cluster = e2e.ready("pg").await;
    let seen = phases.stop().await;
    assert!(
        seen.iter().any(|p| *p != ClusterPhase::Ready),
        "the status never left Ready during the failover: {seen:?}"
    );
    eprintln!("e2e: failover {old_primary} -> {new_primary}, phases {seen:?}");
    assert_eq!(
        e2e.count_rows(&cluster, rw).await,
        before,
        "rows lost in the failover"
    );

    // Stop: hibernation removes the pods and keeps the volumes; Start brings
    // the same data back.
    e2e.op("pg", "stop", "type: Stop").await;
    let deadline = std::time::Instant::now() + UP;
    while !e2e.pods("pg").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "pods still there after Stop"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let claims: Api<PersistentVolumeClaim> = e2e.ns.api();
    let kept = claims
        .list(&ListParams::default().labels("cnpg.io/cluster=pg"))
        .await
        .unwrap()
        .items;
    assert_eq!(kept.len(), 3, "the volumes are kept while stopped");
    e2e.op("pg", "start", "type: Start").await;
    let cluster = e2e.ready("pg").await;
    assert_eq!(
        e2e.count_rows(&cluster, rw).await,
        before,
        "rows after Start"
    );

    // Delete: pods, volumes and Services go with the cluster.
    e2e.clusters()
        .delete("pg", &DeleteParams::default())
        .await
        .unwrap();
    let services: Api<Service> = e2e.ns.api();
    let deadline = std::time::Instant::now() + UP;
    loop {
        let selector = ListParams::default().labels("cnpg.io/cluster=pg");
        let left = (
            pods.list(&selector).await.unwrap().items.len(),
            claims.list(&selector).await.unwrap().items.len(),
            services.list(&selector).await.unwrap().items.len(),
        );
        if left == (0, 0, 0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left after delete (pods, volumes, services): {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Records every phase a DatabaseCluster's status shows until stopped.
struct PhaseWatch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<ClusterPhase>>,
}

impl PhaseWatch {
    async fn stop(self) -> Vec<ClusterPhase> {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

fn watch_phases(api: Api<DatabaseCluster>, name: &str) -> PhaseWatch {
    use futures::StreamExt;
    use kube::runtime::WatchStreamExt;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let config = kube::runtime::watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut seen: Vec<ClusterPhase> = Vec::new();
        let mut events = kube::runtime::watcher(api, config)
            .applied_objects()
            .boxed();
        loop {
            tokio::select! {
                _ = &mut stopped => return seen,
                event = events.next() => match event {
                    Some(Ok(cluster)) => {
                        if let Some(phase) = cluster.status.and_then(|s| s.phase)
                            && seen.last() != Some(&phase)
                        {
                            seen.push(phase);
                        }
                    }
                    Some(Err(_)) => {}
                    None => return seen,
                }
            }
        }
    });
    PhaseWatch { stop, task }
}

#[tokio::test]
async fn a_cluster_comes_up_from_the_real_operator_and_takes_writes() {
    let e2e = E2e::new("e2e-up").await;
    let version = e2e.newest_version();
    e2e.create("pg1", 1, &version).await;

    let ready = e2e.ready("pg1").await;
    let status = ready.status.as_ref().unwrap();
    assert_eq!((status.ready, status.size), (1, 1));
    assert_eq!(status.engine_version.as_deref(), Some(version.as_str()));
    assert_eq!(
        status.host.as_deref(),
        Some(format!("pg1-rw.{}.svc", e2e.ns.name).as_str())
    );

    // What CloudNativePG itself says.
    let engines: Api<CnpgCluster> = e2e.ns.api();
    let cnpg = engines.get("pg1").await.unwrap();
    let cnpg_status = cnpg.status.as_ref().unwrap();
    assert_eq!(
        cnpg_status.phase.as_deref(),
        Some("Cluster in healthy state")
    );
    assert_eq!(
        cnpg_status.image.as_deref(),
        Some(e2e.versions[&version].as_str())
    );

    // Through the read-write Service (kube-proxy), with the published credentials.
    let db = e2e.connect(&ready, e2e.service("pg1-rw").await).await;
    db.batch_execute("CREATE TABLE items (id int PRIMARY KEY, note text)")
        .await
        .unwrap();
    db.execute(
        "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 100) g",
        &[],
    )
    .await
    .unwrap();
    let count: i64 = db
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 100);
    let server_version: String = db
        .query_one("SHOW server_version", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        server_version.starts_with(&version),
        "{server_version} vs {version}"
    );
    assert_eq!(e2e.pods("pg1").await.len(), 1);
    let _ = &e2e.client;
}

/// Input our API accepts but CloudNativePG's own webhook refuses: a fixed
/// PostgreSQL parameter. The refusal reaches the DatabaseCluster as a
/// condition carrying CloudNativePG's words, and nothing is created.
#[tokio::test]
async fn what_only_cloudnative_pg_refuses_is_a_condition_with_its_message() {
    let e2e = E2e::new("e2e-refused").await;
    let version = e2e.newest_version();
    create_cluster(
        &e2e.clusters(),
        &format!(
            r#"
apiVersion: dbaas.io/v1
kind: DatabaseCluster
metadata: {{name: fixed-port}}
spec:
  engine: {{type: postgresql, version: "{version}"}}
  clusterSize: 1
  storage: {{size: 1Gi}}
  config: [{{name: port, value: "5433"}}]
"#
        ),
    )
    .await;
    let refused = e2e
        .wait(
            "fixed-port",
            "Valid=False EngineRejected",
            Duration::from_secs(60),
            has_condition("Valid", "False", "EngineRejected"),
        )
        .await;
    let valid = condition(&refused, "Valid");
    assert!(
        valid
            .message
            .contains("Can't set fixed configuration parameter"),
        "{}",
        valid.message
    );
    assert!(valid.message.contains("port"), "{}", valid.message);
    let engines: Api<CnpgCluster> = e2e.ns.api();
    assert!(
        engines.get_opt("fixed-port").await.unwrap().is_none(),
        "CloudNativePG refused it: no Cluster exists"
    );

    // Fixed by the user: the same cluster comes up.
    e2e.clusters()
        .patch(
            "fixed-port",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"config": [{"name": "work_mem", "value": "4MB"}]}})),
        )
        .await
        .unwrap();
    e2e.ready("fixed-port").await;
}

/// "My app needs a database" on a cluster of ours: a DatabaseServer that
/// references the CloudNativePG cluster, a claim on it, the app's login, and
/// password rotations while an app queries the whole time without a failure.
/// The operator and the app run outside the node here: each reaches the
/// cluster's read-write Service through a loopback forward into the node
/// (the operator through its --connect-to, the app through the host and
/// port its mounted Secret is rewritten to); the Secret itself names the
/// Service, as an app in the cluster uses it.
#[tokio::test]
async fn a_claim_on_a_database_server_backed_by_the_cluster() {
    use claim_support::*;
    use dbaas_api::DatabaseClaim;
    use dbaas_hotload::{HotPool, HotPoolOptions};
    use dbaas_operator::server::endpoint::ConnectTo;
    use dbaas_testkit::db::DbKind;

    let mut e2e = E2e::new("e2e-claim").await;
    let version = e2e.newest_version();
    e2e.create("appdb", 1, &version).await;
    e2e.ready("appdb").await;
    let forward = e2e
        .node
        .control_plane
        .forward_into_node(e2e.service("appdb-rw").await)
        .await
        .unwrap();
    let service_host = format!("appdb-rw.{}.svc", e2e.ns.name);
    drop(e2e.operator.take());
    e2e.operator = Some(claim_operator_dialling(
        &e2e.client,
        &e2e.ns.name,
        vec![ConnectTo {
            from_host: service_host.clone(),
            from_port: 5432,
            to_host: "127.0.0.1".into(),
            to_port: forward.local_addr().port(),
        }],
    ));

    let servers: Api<dbaas_api::DatabaseServer> = e2e.ns.api();
    servers
        .create(
            &PostParams::default(),
            &from_yaml(
                "apiVersion: dbaas.io/v1\nkind: DatabaseServer\n\
                 metadata: {name: appdb, labels: {dbaas.io/instance: e2e}}\n\
                 spec: {engine: postgres, clusterRef: {name: appdb}}",
            ),
        )
        .await
        .unwrap();
    let claims: Api<DatabaseClaim> = e2e.ns.api();
    create_claim(
        &claims,
        &claim(
            "orders",
            DbKind::Postgres,
            "orders",
            "orders",
            json!({"instanceLabel": "e2e.orders"}),
        ),
    )
    .await;
    claim_where(&claims, "orders", "ready", is_ready).await;
    let data = secret_data(&e2e.client, &e2e.ns.name, "orders-db").await;
    assert_eq!(data["host"], service_host, "the app is given the Service");
    let mut reachable = data.clone();
    reachable.insert("host".into(), "127.0.0.1".into());
    reachable.insert("port".into(), forward.local_addr().port().to_string());
    login_with(DbKind::Postgres, &reachable)
        .await
        .expect("the app's login works");

    // The app's pool follows the mounted Secret; rotations under load.
    let dir = tempfile::tempdir().unwrap();
    let mirror = kubelet_mirror(
        e2e.client.clone(),
        e2e.ns.name.clone(),
        "orders-db".into(),
        dir.path().to_owned(),
        BTreeMap::from([
            ("host".to_owned(), "127.0.0.1".to_owned()),
            ("port".to_owned(), forward.local_addr().port().to_string()),
        ]),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dir.path().join("password").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the Secret never reached the volume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pool = HotPool::open(dir.path(), HotPoolOptions::default())
        .await
        .unwrap();
    pool.get()
        .await
        .unwrap()
        .batch_execute("CREATE TABLE hits (n bigint)")
        .await
        .unwrap();
    let load = Load::start(&pool, 2);
    const ROTATIONS: usize = 5;
    for round in 1..=ROTATIONS {
        rotate_and_reload(&claims, "orders", round, &pool, Duration::from_secs(60)).await;
    }
    let (total, failures) = load.finish().await;
    mirror.abort();
    eprintln!(
        "e2e: {ROTATIONS} rotations, {total} queries, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(total > 50, "only {total} queries ran");
}
