//! N DatabaseClusters created at once, the real operator running as a
//! subprocess: seconds until every CNPG Cluster exists and every
//! DatabaseCluster's status is synced (observedGeneration == generation),
//! beside the API server's raw create throughput for the same number of
//! CNPG Clusters.

use std::path::Path;
use std::time::{Duration, Instant};

use dbaas_testkit::{ControlPlane, TestNamespace, our_crds, upstream_crds};
use kube::Api;
use kube::api::PostParams;
use kube::core::DynamicObject;
use serde_json::json;

use crate::fleet::{self, Tracker, cnpg_resource};
use crate::process::{OperatorProcess, operator_binary};
use crate::{Row, apimetrics};

/// DESIGN.md (round 2): 1,000 clusters converged in at most 3x the time
/// the same API server takes to accept 1,000 plain CNPG Clusters in the same
/// run (our work is about three writes per cluster).
const TARGET_RATIO: f64 = 3.0;
const TARGET_COUNT: usize = 1000;

/// A CNPG Cluster about the size of the one the operator builds.
fn plain_cnpg_cluster(i: usize) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {
            "name": format!("raw-{i:05}"),
            "labels": {"app.kubernetes.io/managed-by": "bench", "dbaas.io/cluster": format!("raw-{i:05}")},
        },
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:16.4",
            "storage": {"size": "10Gi"},
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
            "enableSuperuserAccess": true,
            "bootstrap": {"initdb": {"database": "app", "owner": "app"}},
        },
    }))?)
}

/// Runs the scenario and returns its rows.
pub async fn run(count: usize, concurrency: usize, log_dir: &Path) -> anyhow::Result<Vec<Row>> {
    let binary = operator_binary()?;
    eprintln!("convergence {count}: starting the control plane ...");
    let plane = ControlPlane::start(&[our_crds(), upstream_crds()])?;
    let client = plane.client().await?;

    // Baseline: the same API server, a plain client, plain CNPG Clusters.
    eprintln!("baseline: {count} CNPG Clusters created straight ...");
    let raw_ns = TestNamespace::create(&client, "bench-raw").await?;
    let raw: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &raw_ns.name, &cnpg_resource());
    let started = Instant::now();
    fleet::create_all(count, concurrency, |i| {
        let raw = raw.clone();
        async move {
            raw.create(&PostParams::default(), &plain_cnpg_cluster(i)?)
                .await?;
            Ok(())
        }
    })
    .await?;
    let baseline = started.elapsed();

    let ns = TestNamespace::create(&client, "bench-conv").await?;
    let mut operator = OperatorProcess::start(
        &binary,
        plane.kubeconfig(),
        &ns.name,
        &log_dir.join(format!("operator-convergence-{count}.log")),
    )?;
    let tracker = Tracker::start(&client, &ns.name);
    let requests_before = apimetrics::scrape_all(&client).await?;
    eprintln!("operator: {count} DatabaseClusters at once ...");
    let started = Instant::now();
    fleet::create_database_clusters(&client, &ns.name, count, concurrency).await?;
    let created = started.elapsed();
    let converged = tracker
        .wait_until(
            "convergence",
            Duration::from_secs(300),
            || operator.ensure_running(),
            |p| p.engine_objects == count && p.clusters == count && p.synced == count,
        )
        .await?
        .duration_since(started);
    // What converging cost the API server, per cluster (the bench's own
    // creates and watch included), to see where the time goes.
    let requests_after = apimetrics::scrape_all(&client).await?;
    eprintln!("API requests per cluster while converging:");
    for (series, grown) in apimetrics::delta(&requests_before, &requests_after) {
        eprintln!("  {:>6.2}  {series}", grown / count as f64);
    }
    drop(tracker);
    drop(operator);
    drop(plane);

    let seconds = converged.as_secs_f64();
    let ratio = seconds / baseline.as_secs_f64().max(f64::EPSILON);
    Ok(vec![
        Row {
            what: format!("convergence: {count} clusters -> CNPG CRs + status synced"),
            measured: format!("{seconds:.1} s ({ratio:.1}x)"),
            baseline: format!("{:.1} s raw create of {count}", baseline.as_secs_f64()),
            target: format!("<= {TARGET_RATIO:.0}x raw create, for {TARGET_COUNT}"),
            met: (count >= TARGET_COUNT).then_some(ratio <= TARGET_RATIO),
        },
        Row {
            what: format!("convergence: {count} creates accepted ({concurrency} in flight)"),
            measured: format!("{:.1} s", created.as_secs_f64()),
            baseline: "-".into(),
            target: "-".into(),
            met: None,
        },
    ])
}
