//! `bench`: measures the DESIGN.md targets against the real control plane
//! (and a real PostgreSQL where needed), each beside a baseline measured in
//! the same run, and prints a table plus JSON (`target/bench/latest.json`)
//! so results can be compared across commits.
//!
//!     cargo build --release -p dbaas-bench -p dbaas-operator
//!     target/release/bench all
//!     target/release/bench convergence --count 1000
//!
//! Scenarios that run the operator start the real `dbaas-operator` binary,
//! found next to this executable.

mod apimetrics;
mod claims;
mod console;
mod convergence;
mod first_login;
mod fleet;
mod list;
mod process;
mod report;
mod steady;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use dbaas_server::list_bench::ListBenchOptions;
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks for the DESIGN.md targets")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where the JSON results go (the operator's logs, and the Markdown
    /// table `latest.md`, go beside it).
    #[arg(long, default_value = "target/bench/latest.json")]
    json: PathBuf,
    /// Also publish the Markdown table: write it to docs/benchmarks.md and
    /// between the README's bench markers (a test keeps the two equal).
    #[arg(long)]
    publish: bool,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// N DatabaseClaims on one PostgreSQL server: seconds until every Secret
    /// is ready, beside the same databases and users made with plain SQL.
    Claims {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Reconciles (and SQL sessions) at once, for both sides.
        #[arg(long, default_value_t = 16)]
        concurrency: u16,
        /// CREATE DATABASE strategy on both sides (the server's default,
        /// WAL_LOG on PostgreSQL 15, when unset).
        #[arg(long, value_enum)]
        create_database_strategy: Option<claims::Strategy>,
    },
    /// N DatabaseClusters created at once: seconds until every CNPG Cluster
    /// exists and every status is synced, beside N plain CNPG Clusters
    /// created straight on the same API server.
    Convergence {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Creates in flight, for both sides.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// N Ready DatabaseClusters, then an idle window: the operator's memory,
    /// CPU and the API writes kube-apiserver counts.
    Steady {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Creates and engine status writes in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Length of the idle window, seconds.
        #[arg(long, default_value_t = 60)]
        window: u64,
        /// Pause between "all Ready" and the window, seconds.
        #[arg(long, default_value_t = 5)]
        settle: u64,
    },
    /// REST list latency through dbaas-server beside kube-apiserver (the
    /// `list-bench` binary's measurement).
    List {
        #[arg(long, default_value_t = 10_000)]
        clusters: usize,
        #[arg(long, default_value_t = 300)]
        page_samples: usize,
        #[arg(long, default_value_t = 20)]
        full_samples: usize,
        /// Clients at once in the concurrent scenario.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Seconds each side of the concurrent scenario runs.
        #[arg(long, default_value_t = 30)]
        window: u64,
    },
    /// On the real node with the real CloudNativePG operator: seconds from
    /// create to the first superuser login, a DatabaseCluster beside a plain
    /// CloudNativePG Cluster of the same size (needs root: see hack/node).
    FirstLogin {
        /// clusterSize values to measure, in order.
        #[arg(long, value_delimiter = ',', default_values_t = [1, 3])]
        sizes: Vec<u32>,
        /// Pairs measured per size, in alternating order; medians reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The web console: cold loads of a list of N clusters in headless
    /// Chromium, to the first page's rows on screen (needs
    /// `bash hack/ensure-console.sh` before the build).
    Console {
        #[arg(long, default_value_t = 1000)]
        clusters: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Every target: convergence 100 and 1000, steady 10000, claims 1000,
    /// list 10000, first login (sizes 1 and 3), console 1000, in one table.
    All,
}

/// One row of the results table.
#[derive(Debug, Serialize)]
pub struct Row {
    pub what: String,
    pub measured: String,
    pub baseline: String,
    pub target: String,
    pub met: Option<bool>,
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let log_dir = args
        .json
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&log_dir)?;
    let scenarios = async {
        anyhow::Ok(match args.scenario {
            Scenario::All => run_all(&log_dir).await,
            scenario => (run_one(scenario, &log_dir).await?, 0),
        })
    };
    // Ctrl-C or SIGTERM drops the running scenario, so its guards stop the
    // operator subprocess and the control plane.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (rows, failed) = tokio::select! {
        done = scenarios => done?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = term.recv() => anyhow::bail!("terminated"),
    };
    print_table(&rows);
    let machine = report::Machine::read();
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&serde_json::json!({"machine": machine, "rows": rows}))?,
    )?;
    println!("\nJSON written to {}", args.json.display());
    let markdown = report::markdown(&rows, &machine, &report::command_line());
    let markdown_path = log_dir.join("latest.md");
    std::fs::write(&markdown_path, &markdown)?;
    println!("Markdown written to {}", markdown_path.display());
    if args.publish {
        report::publish(&markdown)?;
        println!("published to {} and README.md", report::PUBLISHED);
    }
    anyhow::ensure!(failed == 0, "{failed} scenario(s) failed (see the table)");
    Ok(())
}

async fn run_one(scenario: Scenario, log_dir: &Path) -> anyhow::Result<Vec<Row>> {
    match scenario {
        Scenario::Claims {
            count,
            concurrency,
            create_database_strategy,
        } => claims::run(count, concurrency, create_database_strategy).await,
        Scenario::Convergence { count, concurrency } => {
            convergence::run(count, concurrency, log_dir).await
        }
        Scenario::Steady {
            count,
            concurrency,
            window,
            settle,
        } => {
            steady::run(
                count,
                concurrency,
                Duration::from_secs(window),
                Duration::from_secs(settle),
                log_dir,
            )
            .await
        }
        Scenario::List {
            clusters,
            page_samples,
            full_samples,
            clients,
            window,
        } => {
            list::run(&ListBenchOptions {
                clusters,
                page_samples,
                full_samples,
                clients,
                window: Duration::from_secs(window),
                ..ListBenchOptions::default()
            })
            .await
        }
        Scenario::FirstLogin { sizes, rounds } => first_login::run(&sizes, rounds, log_dir).await,
        Scenario::Console { clusters, rounds } => console::run(clusters, rounds).await,
        Scenario::All => anyhow::bail!("`all` runs the other scenarios, not itself"),
    }
}

/// Every scenario in turn, each on a control plane of its own; a failed
/// one becomes a row saying so and the others still run.
async fn run_all(log_dir: &Path) -> (Vec<Row>, usize) {
    let scenarios = [
        Scenario::Convergence {
            count: 100,
            concurrency: 32,
        },
        Scenario::Convergence {
            count: 1000,
            concurrency: 32,
        },
        Scenario::Steady {
            count: 10_000,
            concurrency: 32,
            window: 60,
            settle: 5,
        },
        Scenario::Claims {
            count: 1000,
            concurrency: 16,
            create_database_strategy: None,
        },
        Scenario::Claims {
            count: 1000,
            concurrency: 16,
            create_database_strategy: Some(claims::Strategy::FileCopy),
        },
        Scenario::List {
            clusters: 10_000,
            page_samples: 300,
            full_samples: 20,
            clients: 64,
            window: 30,
        },
        Scenario::FirstLogin {
            sizes: vec![1, 3],
            rounds: 3,
        },
        Scenario::Console {
            clusters: 1000,
            rounds: 5,
        },
    ];
    let mut rows = Vec::new();
    let mut failed = 0;
    for scenario in scenarios {
        let name = format!("{scenario:?}");
        match Box::pin(run_one(scenario, log_dir)).await {
            Ok(mut more) => {
                print_table(&more);
                println!();
                rows.append(&mut more);
            }
            Err(err) => {
                eprintln!("{name} failed: {err:#}");
                failed += 1;
                rows.push(Row {
                    what: name,
                    measured: format!("FAILED: {err:#}"),
                    baseline: "-".into(),
                    target: "-".into(),
                    met: Some(false),
                });
            }
        }
    }
    (rows, failed)
}

fn print_table(rows: &[Row]) {
    let widths = [58, 30, 32, 22, 5];
    let line = |cells: [&str; 5]| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(widths) {
            out.push_str(&format!("{cell:<width$} "));
        }
        println!("{}", out.trim_end());
    };
    line(["what", "measured", "baseline (same run)", "target", "met"]);
    line(["----", "--------", "-------------------", "------", "---"]);
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        line([&row.what, &row.measured, &row.baseline, &row.target, met]);
    }
}
