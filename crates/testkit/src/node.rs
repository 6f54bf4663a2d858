//! A control plane with a real node (`controlplane up --node`: kubelet,
//! containerd, CNI, kube-proxy, CoreDNS) and the real engine operators
//! running on it: CloudNativePG, installed from its own release manifest,
//! and mariadb-operator, from its own Helm chart and CRDs.
//!
//! The node lives in a network namespace of its own; [`ControlPlane::connect`]
//! opens a TCP connection from inside it, so tests reach pods and Services
//! at their cluster addresses.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{ControlPlane, Error, our_crds, repo_root, upstream_crds};

/// What `hack/node/build.sh` built for the node.
#[derive(Debug, Clone)]
pub struct NodeAssets {
    /// Every image archive to import, by image name.
    pub images: BTreeMap<String, PathBuf>,
    pub coredns: PathBuf,
    pub cnpg_version: String,
    pub cnpg_manifest: PathBuf,
    /// The operator image (ours, built from CNPG's module).
    pub cnpg_image: String,
    pub mariadb_operator_version: String,
    /// Its CRDs and the operator, rendered from its module's Helm chart.
    pub mariadb_operator_manifest: PathBuf,
    /// The MariaDB image built from Debian's `mariadb-server`.
    pub mariadb_image: String,
}

impl NodeAssets {
    /// Builds (or finds up to date) everything the node runs.
    pub fn build() -> Result<Self, Error> {
        let script = repo_root().join("hack/node/build.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| build_error(&script, e.to_string()))?;
        if !out.status.success() {
            return Err(build_error(&script, format!("exited with {}", out.status)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut images = BTreeMap::new();
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("IMAGE"), Some(name), Some(path)) => {
                    images.insert(name.to_owned(), PathBuf::from(path));
                }
                (Some(key), Some(value), None) => {
                    fields.insert(key.to_owned(), value.to_owned());
                }
                _ => {}
            }
        }
        let field = |key: &str| {
            fields
                .get(key)
                .cloned()
                .ok_or_else(|| build_error(&script, format!("no {key} line in {text:?}")))
        };
        Ok(Self {
            images,
            coredns: PathBuf::from(field("COREDNS")?),
            cnpg_version: field("CNPG_VERSION")?,
            cnpg_manifest: PathBuf::from(field("CNPG_MANIFEST")?),
            cnpg_image: field("CNPG_IMAGE")?,
            mariadb_operator_version: field("MARIADB_OPERATOR_VERSION")?,
            mariadb_operator_manifest: PathBuf::from(field("MARIADB_OPERATOR_MANIFEST")?),
            mariadb_image: field("MARIADB_IMAGE")?,
        })
    }

    /// The PostgreSQL images, version (the image tag) -> image.
    pub fn postgres_images(&self) -> BTreeMap<String, String> {
        self.images
            .keys()
            .filter_map(|name| {
                let (repository, tag) = name.rsplit_once(':')?;
                repository
                    .ends_with("/postgresql")
                    .then(|| (tag.to_owned(), name.clone()))
            })
            .collect()
    }
}

fn build_error(script: &std::path::Path, detail: String) -> Error {
    Error::Build {
        script: script.display().to_string(),
        detail,
    }
}

/// A control plane with the node and CloudNativePG, and what it runs.
pub struct NodeCluster {
    pub control_plane: ControlPlane,
    pub assets: NodeAssets,
}

static SHARED_NODE: OnceLock<Result<NodeCluster, String>> = OnceLock::new();

/// The node cluster shared by every test of this binary: our CRDs, the
/// upstream CRDs of the engines whose operators do not run here, and
/// CloudNativePG and mariadb-operator installed from their own manifests
/// (with their own CRDs, at the versions that run).
pub fn shared_node() -> &'static NodeCluster {
    let started = SHARED_NODE.get_or_init(|| start_node_cluster().map_err(|err| err.to_string()));
    match started {
        Ok(cluster) => cluster,
        Err(err) => panic!("the node cluster did not start: {err}"),
    }
}

fn start_node_cluster() -> Result<NodeCluster, Error> {
    NodeCluster::start()
}

impl NodeCluster {
    /// Starts a node cluster of its own (what [`shared_node`] shares).
    pub fn start() -> Result<Self, Error> {
        start_new_node_cluster()
    }
}

/// The upstream CRD directories of the operators that run on the node:
/// their CRDs come from their own manifests instead.
const RUNNING_OPERATORS: [&str; 2] = ["cloudnative-pg", "mariadb-operator"];

fn start_new_node_cluster() -> Result<NodeCluster, Error> {
    let assets = NodeAssets::build()?;
    // CloudNativePG's CRDs come from its release manifest, at the version that runs.
    let mut crds = vec![our_crds()];
    let upstream = upstream_crds();
    let entries = std::fs::read_dir(&upstream).map_err(|e| Error::RepoFile {
        path: upstream.clone(),
        detail: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !RUNNING_OPERATORS.iter().any(|o| entry.file_name() == *o) {
            crds.push(path);
        }
    }
    let control_plane = ControlPlane::start_with_node(&crds, &assets)?;
    install_cnpg(&control_plane, &assets)?;
    install_mariadb_operator(&control_plane, &assets)?;
    Ok(NodeCluster {
        control_plane,
        assets,
    })
}

/// Applies CloudNativePG's release manifest, running our operator image, and
/// waits until its Deployment is available and its webhooks answer.
pub fn install_cnpg(cp: &ControlPlane, assets: &NodeAssets) -> Result<(), Error> {
    let started = Instant::now();
    let manifest = std::fs::read_to_string(&assets.cnpg_manifest).map_err(|e| Error::RepoFile {
        path: assets.cnpg_manifest.clone(),
        detail: e.to_string(),
    })?;
    let upstream_image = format!(
        "ghcr.io/cloudnative-pg/cloudnative-pg:{}",
        assets.cnpg_version
    );
    if !manifest.contains(&upstream_image) {
        return Err(Error::Start(format!(
            "{} does not name {upstream_image}",
            assets.cnpg_manifest.display()
        )));
    }
    // Our image, and never a pull: no registry can be reached.
    let manifest = manifest
        .replace(&upstream_image, &assets.cnpg_image)
        .replace("imagePullPolicy: Always", "imagePullPolicy: IfNotPresent");
    let path = cp.data_dir().join("cnpg.yaml");
    std::fs::write(&path, manifest).map_err(|e| Error::RepoFile {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    cp.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &path.to_string_lossy(),
    ])?;
    cp.kubectl(&[
        "-n",
        "cnpg-system",
        "rollout",
        "status",
        "deployment/cnpg-controller-manager",
        "--timeout=240s",
    ])?;
    // The operator writes its webhooks' CA bundle after it starts: wait until
    // a server-side dry run of a Cluster passes through them.
    let probe = r#"{"apiVersion":"postgresql.cnpg.io/v1","kind":"Cluster",
        "metadata":{"name":"webhook-probe","namespace":"default"},
        "spec":{"instances":1,"storage":{"size":"1Gi"}}}"#;
    let probe_path = cp.data_dir().join("cnpg-webhook-probe.json");
    std::fs::write(&probe_path, probe).map_err(|e| Error::RepoFile {
        path: probe_path.clone(),
        detail: e.to_string(),
    })?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match cp.kubectl(&[
            "create",
            "--dry-run=server",
            "-f",
            &probe_path.to_string_lossy(),
        ]) {
            Ok(_) => break,
            Err(err) if Instant::now() > deadline => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
    eprintln!(
        "testkit: CloudNativePG {} ready in {:.1}s",
        assets.cnpg_version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Applies mariadb-operator's manifest (its CRDs, and the operator from its
/// Helm chart with the webhook and cert-controller off, running our image)
/// and waits until its Deployment is available.
pub fn install_mariadb_operator(cp: &ControlPlane, assets: &NodeAssets) -> Result<(), Error> {
    let started = Instant::now();
    cp.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        &assets.mariadb_operator_manifest.to_string_lossy(),
    ])?;
    cp.kubectl(&[
        "-n",
        "mariadb-operator",
        "rollout",
        "status",
        "deployment/mariadb-operator",
        "--timeout=240s",
    ])?;
    eprintln!(
        "testkit: mariadb-operator {} ready in {:.1}s",
        assets.mariadb_operator_version,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl ControlPlane {
    /// Runs `controlplane kubectl` against this control plane; its stdout.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, Error> {
        let binary = crate::controlplane_binary()?;
        let out = Command::new(binary)
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Start(format!("kubectl {args:?}: {e}")))?;
        if !out.status.success() {
            return Err(Error::Start(format!(
                "kubectl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The node's network namespace, when this control plane has a node.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// A TCP connection opened from inside the node's network namespace:
    /// pod and Service addresses are reachable there.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let netns = self
            .netns
            .clone()
            .ok_or_else(|| std::io::Error::other("this control plane has no node"))?;
        connect_in(&netns, addr)
    }

    /// [`Self::connect`] as a tokio stream.
    pub async fn connect_async(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        let stream = self.connect(addr)?;
        stream.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(stream)
    }
}

/// A loopback port of the host forwarded to an address inside the node: for
/// clients that run outside it (the operator in tests, psql on the host).
/// Stops when dropped.
pub struct NodeForward {
    addr: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl NodeForward {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for NodeForward {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl ControlPlane {
    /// Forwards a free loopback port of the host to `target` inside the node.
    pub async fn forward_into_node(&self, target: SocketAddr) -> std::io::Result<NodeForward> {
        let netns = self
            .netns
            .clone()
            .ok_or_else(|| std::io::Error::other("this control plane has no node"))?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let netns = netns.clone();
                tokio::spawn(async move {
                    let Ok(Ok(upstream)) =
                        tokio::task::spawn_blocking(move || connect_in(&netns, target)).await
                    else {
                        return;
                    };
                    if upstream.set_nonblocking(true).is_err() {
                        return;
                    }
                    let Ok(mut upstream) = tokio::net::TcpStream::from_std(upstream) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                });
            }
        });
        Ok(NodeForward { addr, acceptor })
    }
}

/// A TCP connection to `addr` made from inside the network namespace
/// `netns`: a thread of its own enters the namespace and ends with it; the
/// socket stays in the namespace it was made in.
fn connect_in(netns: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let path = format!("/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path)?;
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
    })
    .join()
    .map_err(|_| std::io::Error::other("the connecting thread panicked"))?
}
