//! The real `dbaas-operator` binary as a subprocess, and what /proc says
//! about a process (resident memory, CPU time).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// The operator binary next to this bench's own executable (both land in
/// `target/release` with `cargo build --release -p dbaas-bench -p dbaas-operator`).
pub fn operator_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench executable")?;
    let dir = exe
        .parent()
        .context("the bench executable has no parent directory")?;
    let binary = dir.join("dbaas-operator");
    anyhow::ensure!(
        binary.is_file(),
        "{} not found: build the operator next to the bench first, \
         `cargo build --release -p dbaas-bench -p dbaas-operator`",
        binary.display()
    );
    Ok(binary)
}

/// A running operator; killed (and reaped) when dropped, whatever the
/// bench's outcome.
pub struct OperatorProcess {
    child: Child,
    log: PathBuf,
}

impl OperatorProcess {
    /// Starts the operator for `namespace` against the cluster of
    /// `kubeconfig`, its output going to `log`, and waits until its
    /// `/healthz` answers.
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        namespace: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let out = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
        let err = out.try_clone()?;
        let metrics_addr = free_loopback_addr()?;
        let child = Command::new(binary)
            .arg("--namespace")
            .arg(namespace)
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .env("KUBECONFIG", kubeconfig)
            // The operator's default level, whatever the bench runs with.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = Self {
            child,
            log: log.to_owned(),
        };
        process.wait_healthy(metrics_addr, Duration::from_secs(30))?;
        Ok(process)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_healthy(&mut self, addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "dbaas-operator exited ({status}) at start; see {}",
                    self.log.display()
                );
            }
            if healthz(addr) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "dbaas-operator did not answer /healthz on {addr} within {timeout:?}; see {}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails if the operator has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "dbaas-operator exited ({status}); see {}",
                self.log.display()
            );
        }
        Ok(())
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_loopback_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn healthz(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
}

/// Resident memory of `pid` in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))?;
    Ok(kib * 1024)
}

/// User plus system CPU time of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its ')'.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected /proc/{pid}/stat"))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); field 3 (state) is first here.
    let utime = fields.get(11).and_then(|f| f.parse::<u64>().ok());
    let stime = fields.get(12).and_then(|f| f.parse::<u64>().ok());
    match (utime, stime) {
        (Some(u), Some(s)) => Ok(u + s),
        _ => anyhow::bail!("no utime/stime in /proc/{pid}/stat"),
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100)
}

/// The kube-apiserver process of the control plane whose files live in
/// `data_dir` (its command line names certificates there).
pub fn find_apiserver(data_dir: &Path) -> Option<u32> {
    let dir = data_dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_apiserver = args
                .iter()
                .take(2)
                .any(|a| a == "kube-apiserver" || a.ends_with("/kube-apiserver"));
            (is_apiserver && args.iter().any(|a| a.contains(&dir))).then_some(pid)
        })
}
