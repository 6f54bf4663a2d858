//! End to end against the real CloudNativePG operator on the real node
//! (`controlplane up --node`): PostgreSQL runs in pods from images built
//! from Debian's packages. No test here writes any engine status: every
//! status our operator maps is the one CloudNativePG wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::{DatabaseCluster, DatabaseEngine};
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_testkit::node::{NodeCluster, shared_node};
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use kube::api::{ListParams, Patch, PatchParams};
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
    _operator: Operator,
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
            _operator: operator,
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
