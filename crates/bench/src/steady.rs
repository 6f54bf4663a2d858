//! Steady state: N DatabaseClusters, all Ready (the bench plays CloudNativePG
//! and writes each CNPG Cluster a healthy status), then an idle window in
//! which the real operator (a subprocess) is measured: resident memory, CPU
//! time, and the write requests kube-apiserver itself counts.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dbaas_testkit::{ControlPlane, TestNamespace, our_crds, upstream_crds};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, ResourceExt};
use kube::core::DynamicObject;
use serde_json::{Value, json};

use crate::Row;
use crate::apimetrics::{self, delta, is_operator_resource};
use crate::fleet::{self, Tracker, cnpg_resource};
use crate::process::{
    OperatorProcess, clock_ticks_per_second, cpu_ticks, find_apiserver, operator_binary, rss_bytes,
};

/// DESIGN.md (round 2).
const TARGET_RSS_MIB: f64 = 100.0;
/// "Near-zero CPU": under 1% of one core over the window.
const TARGET_CPU_SHARE: f64 = 0.01;
/// CloudNativePG's field manager for its status writes.
const CNPG_MANAGER: &str = "cloudnative-pg";
const MIB: f64 = 1024.0 * 1024.0;

/// The status CloudNativePG writes for a healthy cluster.
fn healthy_status(name: &str, instances: i64, image: &str) -> Value {
    json!({
        "phase": "Cluster in healthy state",
        "instances": instances,
        "readyInstances": instances,
        "image": image,
        "currentPrimary": format!("{name}-1"),
        "writeService": format!("{name}-rw"),
        "readService": format!("{name}-r"),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "ClusterIsReady",
            "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"
        }],
    })
}

/// Writes every CNPG Cluster of `api` a healthy status, as CloudNativePG would.
async fn play_cnpg(api: &Api<DynamicObject>, concurrency: usize) -> anyhow::Result<usize> {
    let mut objects = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        objects.extend(page.items);
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    let written = objects.len();
    let patch = PatchParams {
        field_manager: Some(CNPG_MANAGER.to_owned()),
        ..PatchParams::default()
    };
    let objects = Arc::new(objects);
    fleet::create_all(written, concurrency, |i| {
        let (api, patch, objects) = (api.clone(), patch.clone(), objects.clone());
        async move {
            let object = &objects[i];
            let name = object.name_any();
            let spec = &object.data["spec"];
            let instances = spec["instances"].as_i64().unwrap_or(1);
            let image = spec["imageName"].as_str().unwrap_or_default();
            let status = healthy_status(&name, instances, image);
            api.patch_status(&name, &patch, &Patch::Merge(&json!({ "status": status })))
                .await?;
            Ok(())
        }
    })
    .await?;
    Ok(written)
}

/// Peak resident memory of `pid`, sampled every 200 ms until dropped.
struct RssSampler {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(rss) = rss_bytes(pid) {
                    seen.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { peak, task }
    }

    fn peak_mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / MIB
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the scenario and returns its rows.
pub async fn run(
    count: usize,
    concurrency: usize,
    window: Duration,
    settle: Duration,
    log_dir: &Path,
) -> anyhow::Result<Vec<Row>> {
    let binary = operator_binary()?;
    eprintln!("steady {count}: starting the control plane ...");
    let plane = ControlPlane::start(&[our_crds(), upstream_crds()])?;
    let client = plane.client().await?;
    let apiserver = plane.kubeconfig().parent().and_then(find_apiserver);
    let ns = TestNamespace::create(&client, "bench-steady").await?;

    eprintln!("creating {count} DatabaseClusters before the operator starts ...");
    let started = Instant::now();
    fleet::create_database_clusters(&client, &ns.name, count, concurrency).await?;
    eprintln!("  created in {:.1} s", started.elapsed().as_secs_f64());

    let tracker = Tracker::start(&client, &ns.name);
    let started = Instant::now();
    let mut operator = OperatorProcess::start(
        &binary,
        plane.kubeconfig(),
        &ns.name,
        &log_dir.join(format!("operator-steady-{count}.log")),
    )?;
    let pid = operator.pid();
    let sampler = RssSampler::start(pid);
    let converged = tracker
        .wait_until(
            "every CNPG Cluster created and every status synced",
            Duration::from_secs(1800),
            || operator.ensure_running(),
            |p| p.engine_objects == count && p.clusters == count && p.synced == count,
        )
        .await?
        .duration_since(started);
    eprintln!(
        "  converged {:.1} s after the operator started",
        converged.as_secs_f64()
    );

    eprintln!("playing CloudNativePG: a healthy status on every CNPG Cluster ...");
    let engines: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &cnpg_resource());
    let played = Instant::now();
    let written = play_cnpg(&engines, concurrency).await?;
    anyhow::ensure!(
        written == count,
        "{written} CNPG Clusters for {count} DatabaseClusters"
    );
    let ready = tracker
        .wait_until(
            "every DatabaseCluster Ready",
            Duration::from_secs(1800),
            || operator.ensure_running(),
            |p| p.ready == count,
        )
        .await?
        .duration_since(played);
    eprintln!(
        "  all Ready {:.1} s after the first engine status",
        ready.as_secs_f64()
    );
    let peak_while_busy = sampler.peak_mib();
    drop(tracker);

    tokio::time::sleep(settle).await;
    eprintln!("idle window of {} s ...", window.as_secs());
    let ticks = clock_ticks_per_second() as f64;
    let writes_before = apimetrics::scrape_writes(&client).await?;
    let cpu_before = cpu_ticks(pid)?;
    let apiserver_cpu_before = apiserver.map(cpu_ticks).transpose()?;
    let window_started = Instant::now();
    let mut rss_max = rss_bytes(pid)?;
    let mut apiserver_rss_max = 0;
    while window_started.elapsed() < window {
        tokio::time::sleep(Duration::from_millis(500)).await;
        operator.ensure_running()?;
        rss_max = rss_max.max(rss_bytes(pid)?);
        if let Some(apiserver) = apiserver {
            apiserver_rss_max = apiserver_rss_max.max(rss_bytes(apiserver)?);
        }
    }
    let cpu_after = cpu_ticks(pid)?;
    let apiserver_cpu_after = apiserver.map(cpu_ticks).transpose()?;
    let elapsed = window_started.elapsed().as_secs_f64();
    let writes_after = apimetrics::scrape_writes(&client).await?;
    drop(sampler);
    drop(operator);
    drop(plane);

    let grown = delta(&writes_before, &writes_after);
    let (ours, others): (Vec<_>, Vec<_>) =
        grown.iter().partition(|(key, _)| is_operator_resource(key));
    let operator_writes: f64 = ours.iter().map(|(_, n)| n).sum();
    let other_writes: f64 = others.iter().map(|(_, n)| n).sum();
    eprintln!(
        "writes counted by kube-apiserver during the window (verb group/resource code: count):"
    );
    for (key, n) in &grown {
        let counted = if is_operator_resource(key) {
            "counted"
        } else {
            "other client"
        };
        eprintln!("  {key}: {n} ({counted})");
    }
    let rss_mib = rss_max as f64 / MIB;
    let cpu_seconds = cpu_after.saturating_sub(cpu_before) as f64 / ticks;
    let cpu_share = cpu_seconds / elapsed;
    let apiserver_cpu = match (apiserver_cpu_before, apiserver_cpu_after) {
        (Some(before), Some(after)) => format!(
            "{:.2} s kube-apiserver",
            after.saturating_sub(before) as f64 / ticks
        ),
        _ => "-".into(),
    };
    let mut operator_series: Vec<String> = ours.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    operator_series.truncate(3);
    Ok(vec![
        Row {
            what: format!("steady {count}: operator RSS, max over {elapsed:.0} s idle"),
            measured: format!("{rss_mib:.1} MiB"),
            baseline: if apiserver.is_some() {
                format!("{:.0} MiB kube-apiserver", apiserver_rss_max as f64 / MIB)
            } else {
                "-".into()
            },
            target: format!("< {TARGET_RSS_MIB:.0} MiB"),
            met: Some(rss_mib < TARGET_RSS_MIB),
        },
        Row {
            what: format!("steady {count}: API writes in {elapsed:.0} s idle"),
            measured: if operator_series.is_empty() {
                "0".into()
            } else {
                format!("{operator_writes:.0}: {}", operator_series.join(", "))
            },
            baseline: format!("{other_writes:.0} by other clients"),
            target: "0".into(),
            met: Some(operator_writes == 0.0),
        },
        Row {
            what: format!("steady {count}: operator CPU in {elapsed:.0} s idle"),
            measured: format!("{cpu_seconds:.2} s ({:.2}% core)", cpu_share * 100.0),
            baseline: apiserver_cpu,
            target: format!("< {:.0}% of a core", TARGET_CPU_SHARE * 100.0),
            met: Some(cpu_share < TARGET_CPU_SHARE),
        },
        Row {
            what: format!("steady {count}: operator start -> all converged"),
            measured: format!("{:.1} s", converged.as_secs_f64()),
            baseline: "-".into(),
            target: "-".into(),
            met: None,
        },
        Row {
            what: format!("steady {count}: engine healthy -> all Ready"),
            measured: format!("{:.1} s", ready.as_secs_f64()),
            baseline: "-".into(),
            target: "-".into(),
            met: None,
        },
        Row {
            what: format!("steady {count}: operator peak RSS while converging"),
            measured: format!("{peak_while_busy:.1} MiB"),
            baseline: "-".into(),
            target: "-".into(),
            met: None,
        },
    ])
}
