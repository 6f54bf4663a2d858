//! The REST list target, measured by `dbaas_server::list_bench` (the same
//! code as the `list-bench` binary) on a control plane of its own.

use std::time::Duration;

use dbaas_server::list_bench::{self, ListBenchOptions, format_ms};
use dbaas_testkit::{ControlPlane, our_crds};

use crate::Row;

/// DESIGN.md (round 2): one client's 100-item page under 0.3 ms at p99.
const TARGET_P99: Duration = Duration::from_micros(300);
const TARGET_RATIO: f64 = 10.0;
/// DESIGN.md (round 2): with 64 clients at once, at least 20x the pages per
/// second kube-apiserver serves for the same page in the same run.
const TARGET_THROUGHPUT_RATIO: f64 = 20.0;

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
    let concurrent = &report.concurrent;
    Ok(vec![
        Row {
            what: format!("REST list: 100-item page of {n}, p99"),
            measured: format!(
                "{} (p50 {}, p99.9 {})",
                format_ms(page.ours.p99),
                format_ms(page.ours.p50),
                format_ms(page.ours.p999)
            ),
            baseline: format!("{} kube p99", format_ms(page.kube.p99)),
            target: format!("< {}", format_ms(TARGET_P99)),
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
            what: format!(
                "REST list: 100-item pages of {n}, {} clients for {} s",
                options.clients,
                options.window.as_secs()
            ),
            measured: format!(
                "{:.0} pages/s, p99 {}, p99.9 {} ({:.1}x)",
                concurrent.ours.pages_per_second,
                format_ms(concurrent.ours.latency.p99),
                format_ms(concurrent.ours.latency.p999),
                concurrent.throughput_ratio()
            ),
            baseline: format!(
                "kube {:.0} pages/s, p99 {}, p99.9 {}",
                concurrent.kube.pages_per_second,
                format_ms(concurrent.kube.latency.p99),
                format_ms(concurrent.kube.latency.p999)
            ),
            target: format!(">= {TARGET_THROUGHPUT_RATIO:.0}x kube's pages/s"),
            met: Some(concurrent.throughput_ratio() >= TARGET_THROUGHPUT_RATIO),
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
