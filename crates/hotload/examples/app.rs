//! An app that keeps querying through a DatabaseClaim's credentials while
//! they rotate.
//!
//!     cargo run -p dbaas-hotload --example app -- --secret-dir /etc/db
//!
//! In a Pod, mount the claim's Secret as a volume at `/etc/db` (not with
//! `subPath`: kubelet does not update those). Every `--interval-ms` it runs a
//! query; it prints a line per switch to new credentials and a summary every
//! `--report-every` queries. Ctrl-C stops it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dbaas_hotload::{HotPool, HotPoolOptions};

#[derive(Debug, Parser)]
struct Args {
    /// Directory the claim's Secret is mounted at.
    #[arg(long, env = "DB_SECRET_DIR")]
    secret_dir: PathBuf,
    /// Secret key holding the DSN (the claim's dsnName).
    #[arg(long, default_value = "dsn")]
    dsn_key: String,
    /// Pause between queries.
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// Print a summary line every this many queries.
    #[arg(long, default_value_t = 25)]
    report_every: u64,
    /// Stop after this many queries (default: run until Ctrl-C).
    #[arg(long)]
    queries: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let pool = HotPool::open(
        &args.secret_dir,
        HotPoolOptions::default()
            .dsn_key(&args.dsn_key)
            .application_name("dbaas-hotload-example"),
    )
    .await
    .with_context(|| format!("opening the pool from {}", args.secret_dir.display()))?;
    println!(
        "connected as {} to {}:{}/{}",
        pool.credentials().username,
        pool.credentials().host,
        pool.credentials().port,
        pool.credentials().database
    );

    let reports = tokio::spawn(print_reloads(pool.clone()));
    tokio::select! {
        () = query_loop(&pool, &args) => {}
        stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C")?,
    }
    reports.abort();
    let stats = pool.stats();
    println!(
        "done: {} reloads, {} failed reload attempts, {} unreadable Secret versions",
        stats.reloads, stats.reload_failures, stats.credential_read_failures
    );
    Ok(())
}

async fn print_reloads(pool: HotPool) {
    let mut generations = pool.subscribe_generation();
    while generations.changed().await.is_ok() {
        let generation = *generations.borrow_and_update();
        println!(
            "reload #{generation}: now logging in as {} ({} failed attempts so far)",
            pool.credentials().username,
            pool.reload_failures()
        );
    }
}

async fn query_loop(pool: &HotPool, args: &Args) {
    let (mut succeeded, mut failed) = (0u64, 0u64);
    let mut last_error = None;
    let (mut session_user, mut current_user) = (String::from("?"), String::from("?"));
    while args.queries.is_none_or(|limit| succeeded + failed < limit) {
        match run_query(pool).await {
            Ok(users) => {
                succeeded += 1;
                (session_user, current_user) = users;
            }
            Err(err) => {
                failed += 1;
                last_error = Some(format!("{err:#}"));
            }
        }
        if (succeeded + failed) % args.report_every.max(1) == 0 {
            println!(
                "queries: {succeeded} ok, {failed} failed (session_user {session_user}, acting as {current_user}){}",
                last_error
                    .take()
                    .map(|err| format!("; last error: {err}"))
                    .unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
    }
}

/// The login the session used and the role it acts as.
async fn run_query(pool: &HotPool) -> anyhow::Result<(String, String)> {
    let client = pool.get().await?;
    let row = client
        .query_one("SELECT session_user::text, current_user::text", &[])
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
