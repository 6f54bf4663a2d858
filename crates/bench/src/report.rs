//! The results as a Markdown table with where and how they were measured:
//! `target/bench/latest.md` after every run, and with `--publish` also
//! `docs/benchmarks.md` and the README's block between [`BEGIN`] and
//! [`END`] (a test keeps the two equal, so the README shows the last
//! published run, not numbers typed by hand).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::Row;

/// Where `--publish` writes the table, relative to the repository.
pub const PUBLISHED: &str = "docs/benchmarks.md";
/// The README's markers around the published table.
pub const BEGIN: &str = "<!-- bench:begin (written by `bench --publish`; do not edit) -->";
pub const END: &str = "<!-- bench:end -->";

/// What the numbers were measured on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub commit: String,
    pub date: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown CPU".to_owned(), |(_, m)| m.trim().to_owned());
        let memory_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| k.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        let commit = std::process::Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel,
            commit,
            date: k8s_openapi::jiff::Timestamp::now()
                .strftime("%Y-%m-%d %H:%M UTC")
                .to_string(),
        }
    }
}

/// The command as run (the binary relative to the repository when it is
/// inside it, `--publish` left out).
pub fn command_line() -> String {
    let mut args = std::env::args();
    let binary = args.next().unwrap_or_else(|| "bench".to_owned());
    let root = repository().canonicalize().unwrap_or_else(|_| repository());
    let binary = std::path::Path::new(&binary)
        .canonicalize()
        .ok()
        .and_then(|path| {
            path.strip_prefix(&root)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or(binary);
    let mut words = vec![binary];
    words.extend(args.filter(|a| a != "--publish"));
    words.join(" ")
}

/// A table cell: pipes escaped, one line.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The table, with date, machine, commit and the exact command.
pub fn markdown(rows: &[Row], machine: &Machine, command: &str) -> String {
    let mut out = format!(
        "Measured {} on {} CPUs ({}), {:.0} GiB, Linux {}, at commit {}, by `{command}`.\n\n",
        machine.date,
        machine.cpus,
        machine.cpu_model,
        machine.memory_gib,
        machine.kernel,
        machine.commit
    );
    out.push_str("| scenario | measured | baseline (same run) | target | met |\n");
    out.push_str("|---|---|---|---|---|\n");
    for row in rows {
        let met = match row.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "-",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {met} |\n",
            cell(&row.what),
            cell(&row.measured),
            cell(&row.baseline),
            cell(&row.target)
        ));
    }
    out
}

/// The repository (the bench runs from its root, as the README says).
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `readme` with the text between the markers replaced by `table`.
pub fn embed(readme: &str, table: &str) -> anyhow::Result<String> {
    let (before, rest) = readme
        .split_once(BEGIN)
        .ok_or_else(|| anyhow::anyhow!("README.md has no line {BEGIN}"))?;
    let (_, after) = rest
        .split_once(END)
        .ok_or_else(|| anyhow::anyhow!("README.md has no line {END}"))?;
    Ok(format!("{before}{BEGIN}\n{table}{END}{after}"))
}

/// The table embedded in `readme`, if any.
pub fn embedded(readme: &str) -> Option<&str> {
    let rest = readme.split_once(BEGIN)?.1;
    Some(rest.split_once(END)?.0.trim_start_matches('\n'))
}

/// Writes the table to [`PUBLISHED`] and into the README.
pub fn publish(table: &str) -> anyhow::Result<()> {
    let root = repository();
    std::fs::write(root.join(PUBLISHED), table)?;
    let readme_path: &Path = &root.join("README.md");
    let readme = std::fs::read_to_string(readme_path)?;
    let updated = embed(&readme, table)?;
    anyhow::ensure!(
        embedded(&updated) == Some(table),
        "the table did not land between the README's markers"
    );
    std::fs::write(readme_path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_shows_the_published_run() {
        let root = repository();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let published = std::fs::read_to_string(root.join(PUBLISHED)).unwrap();
        assert_eq!(
            embedded(&readme),
            Some(published.as_str()),
            "README.md's bench block differs from {PUBLISHED}: run `target/release/bench --publish all`"
        );
    }

    #[test]
    fn rows_become_a_table_with_where_and_how() {
        let machine = Machine {
            cpus: 2,
            cpu_model: "Test CPU".into(),
            memory_gib: 24.0,
            kernel: "6.1.0".into(),
            commit: "abc1234".into(),
            date: "2026-12-07 10:00 UTC".into(),
        };
        let rows = [Row {
            what: "a | b".into(),
            measured: "1.0 s".into(),
            baseline: "2.0 s".into(),
            target: "< 3 s".into(),
            met: Some(false),
        }];
        let table = markdown(&rows, &machine, "target/release/bench all");
        assert!(table.starts_with(
            "Measured 2026-12-07 10:00 UTC on 2 CPUs (Test CPU), 24 GiB, Linux 6.1.0, at commit abc1234, by `target/release/bench all`."
        ));
        assert!(table.ends_with("| a \\| b | 1.0 s | 2.0 s | < 3 s | **no** |\n"));
        let readme = format!("intro\n{BEGIN}\nold\n{END}\nrest\n");
        let updated = embed(&readme, &table).unwrap();
        assert_eq!(embedded(&updated), Some(table.as_str()));
        assert!(updated.ends_with(&format!("{END}\nrest\n")));
        assert!(embed("no markers", &table).is_err());
    }
}
