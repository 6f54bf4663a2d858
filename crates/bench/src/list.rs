//! The REST list target, measured by `dbaas_server::list_bench` (the same
//! code as the `list-bench` binary) on a control plane of its own.

use std::time::Duration;

use dbaas_server::list_bench::{self, ListBenchOptions, format_ms};
use dbaas_testkit::{ControlPlane, our_crds};

use crate::Row;

const TARGET_P99: Duration = Duration::from_millis(10);
const TARGET_RATIO: f64 = 10.0;

/// Runs the scenario and returns its rows.
pub async fn run(options: &ListBenchOptions) -> anyhow::Result<Vec<Row>> {
    eprintln!("list {}: starting the control plane ...", options.clusters);
    let plane = ControlPlane::start(&[our_crds()])?;
    let report = list_bench::run(&plane, options).await?;
    drop(plane);
    report.print();
    let n = options.clusters;
    let page = &report.page;
    let full = &report.full;
    Ok(vec![
        Row {
            what: format!("REST list: 100-item page of {n}, p99"),
            measured: format!(
                "{} (p50 {})",
                format_ms(page.ours.p99),
                format_ms(page.ours.p50)
            ),
            baseline: format!("{} kube p99", format_ms(page.kube.p99)),
            target: format!("< {} ms", TARGET_P99.as_millis()),
            met: Some(page.ours.p99 < TARGET_P99),
        },
        Row {
            what: format!("REST list: 100-item page of {n}, p50 speed-up"),
            measured: format!("{:.1}x", page.p50_ratio()),
            baseline: format!("{} kube p50", format_ms(page.kube.p50)),
            target: format!(">= {TARGET_RATIO:.0}x"),
            met: Some(page.p50_ratio() >= TARGET_RATIO),
        },
        Row {
            what: format!("REST list: full list of {n}, p50"),
            measured: format_ms(full.ours.p50),
            baseline: format!("{} kube p50", format_ms(full.kube.p50)),
            target: "-".into(),
            met: None,
        },
    ])
}
