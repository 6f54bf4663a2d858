//! Real PostgreSQL and MariaDB servers for integration tests, started from
//! the Debian packages by `hack/databases/{postgres,mariadb}.sh`.
//!
//! Each server gets a fresh temporary data directory, a free 127.0.0.1 port
//! and password authentication for its admin user (`postgres` / `root`).
//! The script reads our end of a pipe on its stdin: when the test binary
//! exits, however it exits, the pipe closes and the script stops the server
//! and deletes the data directory.
//!
//! - [`DbServer::shared_postgres`] / [`DbServer::shared_mariadb`]: one server
//!   per test binary, shared by its tests (give each test its own database
//!   and user names). Never stop a shared server.
//! - [`DbServer::start`]: a server of the test's own, e.g. for
//!   [`DbServer::stop`] / [`DbServer::resume`] ("server down, then up").
//! - [`DbServer::start_with_tls`]: one that also serves TLS, with a
//!   certificate for `127.0.0.1` (IP only) from a CA of its own
//!   ([`DbServer::ca_cert`]).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Which server to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DbKind {
    Postgres,
    MariaDb,
}

impl DbKind {
    fn script(self) -> &'static str {
        match self {
            DbKind::Postgres => "hack/databases/postgres.sh",
            DbKind::MariaDb => "hack/databases/mariadb.sh",
        }
    }
}

impl std::fmt::Display for DbKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DbKind::Postgres => "postgres",
            DbKind::MariaDb => "mariadb",
        })
    }
}

/// Why a test database server could not be started, stopped or resumed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting {kind} ({script}): {detail}")]
    Start {
        kind: DbKind,
        script: String,
        detail: String,
    },
    #[error("{kind} server: {command} failed: {detail}")]
    Control {
        kind: DbKind,
        command: &'static str,
        detail: String,
    },
}

/// A running (or deliberately stopped) test database server.
pub struct DbServer {
    kind: DbKind,
    host: String,
    port: u16,
    admin_user: String,
    admin_password: String,
    data_dir: PathBuf,
    version: String,
    ca_cert: Option<PathBuf>,
    process: Mutex<Process>,
}

struct Process {
    child: Child,
    // Dropping it (or the test binary exiting) closes the script's stdin,
    // which stops the server and removes its data.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

/// The fields of a `READY key=value ...` line.
struct Ready {
    host: String,
    port: u16,
    user: String,
    password: String,
    data_dir: PathBuf,
    version: String,
    ca_cert: Option<PathBuf>,
}

fn parse_ready(line: &str) -> Result<Ready, String> {
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
            .ok_or_else(|| format!("no {key}= in the READY line"))
    };
    let port = field("port")?;
    Ok(Ready {
        host: field("host")?,
        port: port
            .parse()
            .map_err(|_| format!("bad port {port:?} in the READY line"))?,
        user: field("user")?,
        password: field("password")?,
        data_dir: PathBuf::from(field("datadir")?),
        version: field("version").unwrap_or_default(),
        ca_cert: field("ca").ok().map(PathBuf::from),
    })
}

/// Reads the script's stdout until one of `wanted` (a line prefix) or
/// `ERROR`, returning that line. The password is in READY lines, so lines
/// are never echoed.
fn read_until(stdout: &mut BufReader<ChildStdout>, wanted: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line) {
            Ok(0) => return Err("the script exited (see its stderr above)".to_owned()),
            Ok(_) => {}
            Err(err) => return Err(format!("reading its output: {err}")),
        }
        let line = line.trim_end();
        if line.starts_with(wanted) {
            return Ok(line.to_owned());
        }
        if let Some(message) = line.strip_prefix("ERROR") {
            return Err(message.trim().to_owned());
        }
    }
}

static SHARED_POSTGRES: OnceLock<Result<DbServer, String>> = OnceLock::new();
static SHARED_MARIADB: OnceLock<Result<DbServer, String>> = OnceLock::new();

fn shared(cell: &'static OnceLock<Result<DbServer, String>>, kind: DbKind) -> &'static DbServer {
    // A failed start is remembered, so every test reports it instead of retrying.
    let started = cell.get_or_init(|| DbServer::start(kind).map_err(|err| err.to_string()));
    match started {
        Ok(server) => server,
        Err(err) => panic!(
            "the shared test {kind} server did not start: {err} \
             (is the Debian package installed? bash hack/ensure-tools.sh installs it)"
        ),
    }
}

impl DbServer {
    /// Starts a fresh server of `kind` and waits until it accepts connections.
    pub fn start(kind: DbKind) -> Result<DbServer, Error> {
        Self::start_with(kind, false)
    }

    /// Like [`DbServer::start`], also serving TLS (plain connections still
    /// work). The certificate is for the IP `127.0.0.1` only, signed by
    /// [`DbServer::ca_cert`].
    pub fn start_with_tls(kind: DbKind) -> Result<DbServer, Error> {
        Self::start_with(kind, true)
    }

    fn start_with(kind: DbKind, tls: bool) -> Result<DbServer, Error> {
        let started = Instant::now();
        let script = crate::repo_root().join(kind.script());
        let start_error = |detail: String| Error::Start {
            kind,
            script: script.display().to_string(),
            detail,
        };
        let mut command = Command::new("bash");
        command.arg(&script).arg("--exit-on-stdin-close");
        if tls {
            command.arg("--tls");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| start_error(err.to_string()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(start_error("no stdin/stdout pipe".to_owned()));
        };
        let mut process = Process {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
        };
        let ready = read_until(&mut process.stdout, "READY ")
            .and_then(|line| parse_ready(&line))
            .map_err(start_error)?;
        eprintln!(
            "testkit: {kind} {} ready at {}:{} in {:.2}s",
            ready.version,
            ready.host,
            ready.port,
            started.elapsed().as_secs_f64()
        );
        Ok(DbServer {
            kind,
            host: ready.host,
            port: ready.port,
            admin_user: ready.user,
            admin_password: ready.password,
            data_dir: ready.data_dir,
            version: ready.version,
            ca_cert: ready.ca_cert,
            process: Mutex::new(process),
        })
    }

    /// The PostgreSQL server shared by every test of this binary.
    /// Panics with the reason if it could not be started.
    pub fn shared_postgres() -> &'static DbServer {
        shared(&SHARED_POSTGRES, DbKind::Postgres)
    }

    /// The MariaDB server shared by every test of this binary.
    /// Panics with the reason if it could not be started.
    pub fn shared_mariadb() -> &'static DbServer {
        shared(&SHARED_MARIADB, DbKind::MariaDb)
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres` (a superuser) or `root` (all privileges, with grant option).
    pub fn admin_user(&self) -> &str {
        &self.admin_user
    }

    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The temporary directory holding the data (removed when the server goes away).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server version as the package reports it (e.g. `15.18`, `10.11.19-MariaDB-0+deb12u1`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The CA that signed the server's certificate (servers from
    /// [`DbServer::start_with_tls`] only).
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// Stops the server (its port closes); the data is kept for [`DbServer::resume`].
    pub fn stop(&self) -> Result<(), Error> {
        let mut process = self.lock();
        self.command(&mut process, "stop", "STOPPED").map(drop)
    }

    /// Starts a stopped server again on the same port with the same data.
    pub fn resume(&self) -> Result<(), Error> {
        let mut process = self.lock();
        let line = self.command(&mut process, "start", "READY ")?;
        let ready = parse_ready(&line).map_err(|detail| self.control_error("start", detail))?;
        if ready.port != self.port {
            return Err(self.control_error(
                "start",
                format!("came back on port {} instead of {}", ready.port, self.port),
            ));
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Process> {
        // A panic while holding the lock leaves the process usable.
        self.process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn control_error(&self, command: &'static str, detail: String) -> Error {
        Error::Control {
            kind: self.kind,
            command,
            detail,
        }
    }

    fn command(
        &self,
        process: &mut Process,
        command: &'static str,
        wanted: &str,
    ) -> Result<String, Error> {
        let stdin = process
            .stdin
            .as_mut()
            .ok_or_else(|| self.control_error(command, "the server was shut down".to_owned()))?;
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(|err| self.control_error(command, format!("writing to the script: {err}")))?;
        read_until(&mut process.stdout, wanted)
            .map_err(|detail| self.control_error(command, detail))
    }
}

impl Drop for DbServer {
    fn drop(&mut self) {
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // EOF on its stdin: the script stops the server and removes the data.
        drop(process.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match process.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                Ok(Some(_)) | Err(_) => return,
            }
        }
        eprintln!("testkit: the {} script did not exit within 30s", self.kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_parsed() {
        let ready = parse_ready(
            "READY host=127.0.0.1 port=5433 user=postgres password=abc datadir=/tmp/x version=15.18",
        )
        .unwrap();
        assert_eq!(ready.host, "127.0.0.1");
        assert_eq!(ready.port, 5433);
        assert_eq!(ready.user, "postgres");
        assert_eq!(ready.password, "abc");
        assert_eq!(ready.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(ready.version, "15.18");
        assert_eq!(ready.ca_cert, None);
        let tls =
            parse_ready("READY host=h port=1 user=u password=p datadir=d version=v ca=/x/ca.crt")
                .unwrap();
        assert_eq!(tls.ca_cert, Some(PathBuf::from("/x/ca.crt")));
        assert!(parse_ready("READY host=127.0.0.1 port=x").is_err());
        assert!(parse_ready("READY host=127.0.0.1 user=u password=p datadir=d").is_err());
    }
}
