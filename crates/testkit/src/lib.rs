//! Test support for integration tests against a REAL Kubernetes control plane
//! (etcd + kube-apiserver + kube-controller-manager built from the official Go
//! modules by `hack/controlplane`).
//!
//! - [`shared`] starts one control plane per test binary, with our CRDs and
//!   the upstream engine CRDs installed, and keeps it for the binary's life.
//!   The control plane reads our end of a pipe on its stdin: when the test
//!   process exits, however it exits, the pipe closes and the control plane
//!   shuts down and deletes its data directory.
//! - [`ControlPlane::start`] starts another one with a chosen set of CRDs
//!   (e.g. without an engine operator's CRDs).
//! - [`ControlPlane::start_in`] and [`ControlPlane::stop`] restart one on
//!   the same data directory; [`forward::Forwarder`] keeps a stable address
//!   in front of its changing ports.
//! - [`TestNamespace`] gives each test a namespace of its own.
//! - [`db`] starts real PostgreSQL and MariaDB servers.

pub mod accounts;
pub mod db;
pub mod forward;
pub mod node;
pub mod schema;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Why the control plane or a test helper failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("building the control plane ({script}): {detail}")]
    Build { script: String, detail: String },
    #[error("starting the control plane: {0}")]
    Start(String),
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig { path: PathBuf, detail: String },
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("object shape: {0}")]
    Json(#[from] serde_json::Error),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("repository file {path}: {detail}")]
    RepoFile { path: PathBuf, detail: String },
    #[error("no token was issued for ServiceAccount {0}")]
    NoToken(String),
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Our generated CRDs.
pub fn our_crds() -> PathBuf {
    repo_root().join("deploy/crds")
}

/// The upstream engine CRDs: `$DBAAS_UPSTREAM_CRDS` (hack/test.sh sets it
/// from hack/upstream-crds.sh), else `../shared/upstream-crds`.
pub fn upstream_crds() -> PathBuf {
    std::env::var_os("DBAAS_UPSTREAM_CRDS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/upstream-crds"))
}

/// A running control plane.
pub struct ControlPlane {
    kubeconfig: PathBuf,
    server: String,
    startup: Duration,
    data_dir: PathBuf,
    /// The node's network namespace (`up --node`), if it has a node.
    netns: Option<String>,
    // Held for the process's life: dropping them (or exiting) stops it;
    // [`ControlPlane::stop`] takes them to stop it and wait.
    process: Mutex<(Child, ChildStdin)>,
}

/// How long [`ControlPlane::stop`] waits before it kills.
const STOP_GRACE: Duration = Duration::from_secs(60);

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane shared by every test of this binary, with our CRDs and
/// all upstream CRDs installed. Started on first use; a failed start is
/// remembered, so every test reports it instead of retrying.
pub fn shared() -> &'static ControlPlane {
    let started = SHARED.get_or_init(|| {
        ControlPlane::start(&[our_crds(), upstream_crds()]).map_err(|err| err.to_string())
    });
    match started {
        Ok(cp) => cp,
        Err(err) => panic!("the test control plane did not start: {err}"),
    }
}

fn new_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!(
        "dbaas-cp-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ u128::from(rand_u32())
    ))
}

/// The multi-call control-plane binary (kube-apiserver, kubectl, ...).
pub fn controlplane_binary() -> Result<PathBuf, Error> {
    if let Some(bin) = std::env::var_os("DBAAS_CONTROLPLANE_BIN") {
        return Ok(PathBuf::from(bin));
    }
    // build.sh is a no-op when the binary is newer than its sources.
    let script = repo_root().join("hack/controlplane/build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::Build {
            script: script.display().to_string(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Build {
            script: script.display().to_string(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(repo_root().join("target/controlplane/controlplane"))
}

impl ControlPlane {
    /// Starts a control plane with the CRDs under `crds` (files or directories).
    pub fn start(crds: &[PathBuf]) -> Result<Self, Error> {
        Self::start_in(&new_data_dir(), crds, true)
    }

    /// Starts a control plane on the data directory `data_dir`. An existing
    /// directory is reused with its PKI and etcd data: stop a control plane
    /// with [`ControlPlane::stop`] and start it again on the same directory to
    /// restart it with its objects (on new ports). With `cleanup` the
    /// directory is removed when it stops; without, it is kept for a restart.
    pub fn start_in(data_dir: &Path, crds: &[PathBuf], cleanup: bool) -> Result<Self, Error> {
        Self::launch(data_dir, crds, cleanup, None)
    }

    /// Starts a control plane with a real node running the images of
    /// `assets` (see [`node`]).
    pub fn start_with_node(crds: &[PathBuf], assets: &node::NodeAssets) -> Result<Self, Error> {
        Self::launch(&new_data_dir(), crds, true, Some(assets))
    }

    fn launch(
        data_dir: &Path,
        crds: &[PathBuf],
        cleanup: bool,
        node: Option<&node::NodeAssets>,
    ) -> Result<Self, Error> {
        let started = Instant::now();
        let binary = controlplane_binary()?;
        let mut command = Command::new(&binary);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--exit-on-stdin-close");
        if cleanup {
            command.arg("--cleanup");
        }
        for path in crds {
            command.arg("--crds").arg(path);
        }
        if let Some(assets) = node {
            command
                .arg("--node")
                .arg("--coredns")
                .arg(&assets.coredns)
                .arg("--startup-timeout")
                .arg("5m");
            for archive in assets.images.values() {
                command.arg("--image").arg(archive);
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::Start(format!("{}: {e}", binary.display())))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| Error::Start("no stdin pipe".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Error::Start("no stdout pipe".into()))?;
        let mut ready_line = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| Error::Start(e.to_string()))?;
            if line.starts_with("READY ") {
                ready_line = Some(line);
                break;
            }
        }
        let line = ready_line.ok_or_else(|| {
            Error::Start(format!(
                "{} exited before it was ready (see its stderr above)",
                binary.display()
            ))
        })?;
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .map(str::to_owned)
                .ok_or_else(|| Error::Start(format!("no {key} in {line:?}")))
        };
        let kubeconfig = PathBuf::from(field("kubeconfig=")?);
        let server = field("server=")?;
        let netns = field("netns=").ok();
        let startup = started.elapsed();
        eprintln!(
            "testkit: control plane ready at {server} in {:.2}s ({})",
            startup.as_secs_f64(),
            field("startup=")?
        );
        Ok(Self {
            kubeconfig,
            server,
            startup,
            data_dir: data_dir.to_owned(),
            netns,
            process: Mutex::new((child, stdin)),
        })
    }

    /// Stops the control plane (etcd, API server, controller manager) and
    /// waits until it has exited: closing its stdin asks it to shut down;
    /// what still runs after `STOP_GRACE` is killed.
    pub fn stop(self) -> Result<(), Error> {
        let (mut child, stdin) = self
            .process
            .into_inner()
            .map_err(|_| Error::Start("the control plane's handle was poisoned".into()))?;
        drop(stdin);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) => {
                    // Its components die with it (Pdeathsig).
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Timeout(
                        STOP_GRACE,
                        "the control plane to stop".into(),
                    ));
                }
                Err(err) => {
                    return Err(Error::Start(format!(
                        "waiting for the control plane: {err}"
                    )));
                }
            }
        }
    }

    /// The data directory (PKI, etcd data, logs, kubeconfig).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The API server's loopback address (host and port of [`Self::server`]).
    pub fn api_addr(&self) -> Result<SocketAddr, Error> {
        let authority = self
            .server
            .strip_prefix("https://")
            .unwrap_or(&self.server)
            .trim_end_matches('/');
        authority
            .parse()
            .map_err(|e| Error::Start(format!("API server address {authority:?}: {e}")))
    }

    /// An admin client that reaches the API server at `server` (e.g. a
    /// [`forward::Forwarder`] in front of it) instead of its own address.
    /// The serving certificate names 127.0.0.1, so TLS still verifies.
    pub async fn client_via(&self, server: &str) -> Result<Client, Error> {
        let mut config = self.config().await?;
        config.cluster_url = server.parse().map_err(|e| Error::Kubeconfig {
            path: self.kubeconfig.clone(),
            detail: format!("server {server:?}: {e}"),
        })?;
        Ok(Client::try_from(config)?)
    }

    /// Path of the admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// How long start-up took, as this process saw it.
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// A client with admin rights. Make one per test: a client belongs to the
    /// tokio runtime it was made on.
    pub async fn client(&self) -> Result<Client, Error> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// The admin kubeconfig as a client configuration (e.g. the identity of
    /// a dbaas-server a test starts).
    pub async fn config(&self) -> Result<kube::Config, Error> {
        let kubeconfig =
            Kubeconfig::read_from(&self.kubeconfig).map_err(|e| Error::Kubeconfig {
                path: self.kubeconfig.clone(),
                detail: e.to_string(),
            })?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kubeconfig {
                path: self.kubeconfig.clone(),
                detail: e.to_string(),
            })
    }
}

fn rand_u32() -> u32 {
    // Unique enough for names: the clock's nanoseconds mixed with the pid.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ std::process::id().rotate_left(16)
}

/// A namespace of one test's own. Deleted by [`TestNamespace::delete`]; the
/// whole control plane goes away when the test binary exits anyway.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`.
    pub async fn create(client: &Client, prefix: &str) -> Result<Self, Error> {
        let name = format!("{prefix}-{:08x}", rand_u32());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "dbaas.io/test": "true" } }
        }))
        .map_err(|e| Error::Start(e.to_string()))?;
        api.create(&PostParams::default(), &ns).await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// A namespaced API handle in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + DeserializeOwned,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (the namespace controller empties it).
    pub async fn delete(self) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.delete(&self.name, &DeleteParams::default()).await?;
        Ok(())
    }
}

/// Waits until `condition` holds for the object `name`, or fails after
/// `timeout` with `what` in the message.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    condition: impl Condition<K>,
) -> Result<K, Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(timeout, await_condition(api.clone(), name, condition)).await {
        Ok(Ok(Some(object))) => Ok(object),
        Ok(Ok(None)) => Err(Error::Timeout(
            timeout,
            format!("{what} ({name} was deleted)"),
        )),
        Ok(Err(err)) => Err(Error::Start(format!("watching {name}: {err}"))),
        Err(_) => {
            let last = api.get_opt(name).await.ok().flatten();
            Err(Error::Timeout(
                timeout,
                format!("{what}; last seen: {}", describe(last.as_ref())),
            ))
        }
    }
}

/// Waits until the object `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, timeout: Duration) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let deadline = Instant::now() + timeout;
    loop {
        if api.get_opt(name).await?.is_none() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout(timeout, format!("{name} to be deleted")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn describe<K: std::fmt::Debug>(object: Option<&K>) -> String {
    match object {
        Some(object) => {
            let text = format!("{object:?}");
            // The status is what matters; keep failure messages readable.
            match text.find("status:") {
                Some(at) => text[at..].chars().take(1500).collect(),
                None => text.chars().take(1500).collect(),
            }
        }
        None => "absent".to_owned(),
    }
}
