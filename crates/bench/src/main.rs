//! `bench`: measures the DESIGN.md targets against the real control plane
//! (and a real PostgreSQL where needed), each beside a baseline measured in
//! the same run, and prints a table plus JSON (`target/bench/latest.json`)
//! so results can be compared across commits.
//!
//!     cargo run --release -p dbaas-bench -- claims --count 1000

mod claims;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks for the DESIGN.md targets")]
struct Args {
    #[command(subcommand)]
    scenario: Scenario,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench/latest.json")]
    json: PathBuf,
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
    },
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
    let rows = match args.scenario {
        Scenario::Claims { count, concurrency } => claims::run(count, concurrency).await?,
    };
    print_table(&rows);
    if let Some(parent) = args.json.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let machine = serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "os": std::env::consts::OS,
    });
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&serde_json::json!({"machine": machine, "rows": rows}))?,
    )?;
    println!("\nJSON written to {}", args.json.display());
    Ok(())
}

fn print_table(rows: &[Row]) {
    let widths = [44, 22, 26, 26, 5];
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
