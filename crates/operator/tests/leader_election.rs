//! Two operator processes with leader election: one leads, the other stands
//! by without reconciling; the leader killed with SIGKILL is replaced within
//! the lease duration; a leader stopped with SIGTERM hands the Lease back,
//! even when it is stopped before its first lists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod common;

use std::io::Read;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use dbaas_api::DatabaseCluster;
use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
use dbaas_testkit::TestNamespace;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEASE: &str = "dbaas-operator-test";

/// An operator process; killed (SIGKILL) on drop.
struct Replica {
    name: &'static str,
    child: Child,
    metrics: String,
    log: std::path::PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// Starts a replica whose leader keeps leading `renew_deadline` seconds
/// without renewing (a 4 s lease, renewed every second).
fn start(name: &'static str, namespace: &str, renew_deadline: &str) -> Replica {
    let metrics = free_addr();
    let log = std::env::temp_dir().join(format!("{namespace}-{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_dbaas-operator"))
        .env(
            "KUBECONFIG",
            dbaas_testkit::shared().kubeconfig().as_os_str(),
        )
        .env("POD_NAME", name)
        .env("RUST_LOG", "info,dbaas_operator=debug,kube_runtime=debug")
        .args(["--namespace", namespace, "--metrics-addr", &metrics])
        .args(["--leader-elect", "true", "--leader-election-id", LEASE])
        .args(["--lease-duration-seconds", "4"])
        .args(["--lease-renew-deadline-seconds", renew_deadline])
        .args(["--lease-retry-period-seconds", "1"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Replica {
        name,
        child,
        metrics,
        log,
    }
}

impl Replica {
    fn log(&self) -> String {
        let mut text = String::new();
        std::fs::File::open(&self.log)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    /// The value of the `dbaas_leader` gauge, once the endpoint answers.
    async fn leader_gauge(&self) -> Option<i64> {
        let mut stream = tokio::net::TcpStream::connect(&self.metrics).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        body.lines()
            .find_map(|line| line.strip_prefix("dbaas_leader "))
            .and_then(|value| value.trim().parse().ok())
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cluster(name: &str) -> DatabaseCluster {
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
        "metadata": {"name": name},
        "spec": {"engine": {"type": "postgresql"}, "clusterSize": 1, "storage": {"size": "1Gi"}},
    }))
    .unwrap()
}

#[tokio::test]
async fn one_replica_leads_and_a_standby_takes_over() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "leader").await.unwrap();
    let leases: Api<Lease> = ns.api();
    let clusters: Api<DatabaseCluster> = ns.api();
    let engines: Api<CnpgCluster> = ns.api();

    let mut first = start("replica-a", &ns.name, "3");
    eventually("replica-a to lead", Duration::from_secs(30), async || {
        (holder(&leases).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let second = start("replica-b", &ns.name, "3");
    eventually("both gauges", Duration::from_secs(30), async || {
        match (first.leader_gauge().await, second.leader_gauge().await) {
            (Some(1), Some(0)) => Some(()),
            _ => None,
        }
    })
    .await;

    // The leader serves; the standby does not reconcile anything.
    clusters
        .create(&PostParams::default(), &cluster("one"))
        .await
        .unwrap();
    common::engine_object(&engines, "one", "the leader's CNPG Cluster", |_| true).await;
    assert!(second.log().contains("standing by"), "{}", second.log());
    assert!(
        first.log().contains("reconciling object"),
        "the leader's log names its reconciles:\n{}",
        first.log()
    );
    assert!(
        !second.log().contains("reconciling object"),
        "the standby reconciled:\n{}",
        second.log()
    );

    // SIGKILL the leader: no release, so the standby waits out the lease.
    let killed = Instant::now();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    eventually("replica-b to lead", Duration::from_secs(30), async || {
        (holder(&leases).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await;
    eprintln!(
        "{} took over {:.1}s after {} was killed",
        second.name,
        killed.elapsed().as_secs_f64(),
        first.name
    );
    let lease = leases.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(lease.lease_transitions, Some(1));
    clusters
        .create(&PostParams::default(), &cluster("two"))
        .await
        .unwrap();
    common::engine_object(&engines, "two", "the new leader's CNPG Cluster", |_| true).await;
    assert_eq!(second.leader_gauge().await, Some(1));

    // SIGTERM: the leader stops and hands the Lease back.
    let pid = i32::try_from(second.child.id()).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut second = second;
    let exited = eventually("replica-b to exit", Duration::from_secs(30), async || {
        second.child.try_wait().unwrap()
    })
    .await;
    assert!(exited.success(), "{}", second.log());
    assert_eq!(holder(&leases).await, None, "the Lease was handed back");
    assert!(second.log().contains("released the lease"));
    drop(first);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn impossible_lease_timings_are_refused_at_start() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "leader-bad").await.unwrap();
    let mut replica = start("replica-bad", &ns.name, "20");
    let exited = eventually("the refusal", Duration::from_secs(30), async || {
        replica.child.try_wait().unwrap()
    })
    .await;
    assert!(!exited.success());
    assert!(
        replica
            .log()
            .contains("retry period < renew deadline < lease duration"),
        "{}",
        replica.log()
    );
    let leases: Api<Lease> = ns.api();
    assert!(leases.get_opt(LEASE).await.unwrap().is_none());
    ns.delete().await.unwrap();
}

/// A shutdown signal that comes before the controllers' first lists (a pod
/// stopped right after it started) must still stop the operator: the
/// signal stops the watches, so their stores never fill, and kube-runtime
/// would wait for them forever.
#[tokio::test]
async fn a_shutdown_before_the_first_lists_still_stops() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "early-stop").await.unwrap();
    let config = dbaas_operator::OperatorConfig {
        namespaces: vec![ns.name.clone()],
        ..dbaas_operator::OperatorConfig::default()
    };
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        dbaas_operator::run(client, config, std::future::ready(())),
    )
    .await
    .expect("the operator did not stop after an early shutdown signal");
    eprintln!(
        "stopped {:.1}s after an immediate shutdown signal",
        started.elapsed().as_secs_f64()
    );
    ns.delete().await.unwrap();
}
