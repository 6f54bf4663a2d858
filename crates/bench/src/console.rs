//! The console target (DESIGN.md round 2): a list of 1,000 database
//! clusters renders its first page in under 1 s in headless Chromium. Each
//! round is a cold load in a new browser context (console/bench/first-page.mjs),
//! timed from navigation to the first page's rows on screen; beside it, the
//! list request's own duration inside that same load.

use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_server::{ServerConfig, Transport};
use dbaas_testkit::accounts::namespaced_user;
use dbaas_testkit::{ControlPlane, TestNamespace, our_crds};
use futures::StreamExt;
use kube::api::PostParams;
use serde::Deserialize;

use crate::Row;

const TARGET: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Measured {
    render_ms: Vec<f64>,
    request_ms: Vec<f64>,
    rows: usize,
    pager: String,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn run(clusters: usize, rounds: usize) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!(
        dbaas_server::console::is_built(),
        "dbaas-server was built without the console: run `bash hack/ensure-console.sh`, then rebuild"
    );
    eprintln!("console {clusters}: starting the control plane ...");
    let plane = ControlPlane::start(&[our_crds()])?;
    let admin = plane.client().await?;
    let ns = TestNamespace::create(&admin, "console-bench").await?;
    let api = ns.api::<DatabaseCluster>();
    eprintln!("console {clusters}: creating the clusters ...");
    let created: Vec<_> = futures::stream::iter(0..clusters)
        .map(|i| {
            let api = api.clone();
            async move {
                let cluster: DatabaseCluster = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("db-{i:05}")},
                    "spec": {"engine": {"type": "postgresql", "version": "17.2"}, "storage": {"size": "1Gi"}},
                }))?;
                api.create(&PostParams::default(), &cluster).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    created.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let token = namespaced_user(
        &admin,
        &ns.name,
        "viewer",
        serde_json::json!([{"apiGroups": ["dbaas.io"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = dbaas_server::start(
        plane.config().await?,
        listener,
        &ServerConfig {
            transport: Transport::PlainHttp,
            ..ServerConfig::default()
        },
    )?;
    server.wait_synced(Duration::from_secs(60)).await?;
    eprintln!("console {clusters}: {rounds} cold loads in Chromium ...");
    let console = dbaas_testkit::repo_root().join("console");
    let output = tokio::process::Command::new("node")
        .arg("bench/first-page.mjs")
        .current_dir(&console)
        .env("DBAAS_CONSOLE_URL", server.url())
        .env("DBAAS_CONSOLE_TOKEN", &token)
        .env("DBAAS_CONSOLE_NAMESPACE", &ns.name)
        .env("DBAAS_CONSOLE_ROUNDS", rounds.to_string())
        .output()
        .await?;
    drop(server);
    drop(plane);
    anyhow::ensure!(
        output.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let measured: Measured = serde_json::from_slice(&output.stdout)?;
    anyhow::ensure!(
        measured.rows > 0,
        "the first page showed no rows ({})",
        measured.pager
    );
    let render = median(&measured.render_ms);
    let request = median(&measured.request_ms);
    let worst = measured.render_ms.iter().copied().fold(0.0, f64::max);
    Ok(vec![Row {
        what: format!(
            "Console: first page ({} rows) of {clusters} clusters, cold load in Chromium",
            measured.rows
        ),
        measured: format!("{render:.0} ms median of {rounds} (max {worst:.0} ms)"),
        baseline: format!("its list request alone {request:.1} ms"),
        target: format!("< {} ms", TARGET.as_millis()),
        met: Some(render < TARGET.as_secs_f64() * 1000.0),
    }])
}
