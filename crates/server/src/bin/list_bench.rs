//! `list-bench`: seeds DatabaseClusters into a fresh control plane and
//! prints, side by side in one run, the latency of a 100-item page and of a
//! full list through dbaas-server (watch cache) and straight from
//! kube-apiserver (see `dbaas_server::list_bench`; `bench list` runs the
//! same measurement among the other DESIGN.md targets).
//!
//!     cargo run --release -p dbaas-server --bin list-bench -- [--clusters 10000]

use anyhow::Context;
use clap::Parser;
use dbaas_server::list_bench::{self, ListBenchOptions};
use dbaas_testkit::{ControlPlane, our_crds};

#[derive(Parser, Debug)]
#[command(name = "list-bench")]
struct Args {
    /// DatabaseClusters to seed into one namespace.
    #[arg(long, default_value_t = 10_000)]
    clusters: usize,
    /// Samples of the 100-item page, per side.
    #[arg(long, default_value_t = 300)]
    page_samples: usize,
    /// Samples of the full list, per side.
    #[arg(long, default_value_t = 20)]
    full_samples: usize,
    /// Concurrent creates while seeding.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Clients at once in the concurrent scenario.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds each side of the concurrent scenario runs.
    #[arg(long, default_value_t = 30)]
    window_seconds: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Started before the runtime: it blocks until the API server is ready.
    let control_plane = ControlPlane::start(&[our_crds()]).context("starting the control plane")?;
    let options = ListBenchOptions {
        clusters: args.clusters,
        page_samples: args.page_samples,
        full_samples: args.full_samples,
        concurrency: args.concurrency,
        clients: args.clients,
        window: std::time::Duration::from_secs(args.window_seconds),
    };
    let report = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(list_bench::run(&control_plane, &options))?;
    report.print();
    Ok(())
}
