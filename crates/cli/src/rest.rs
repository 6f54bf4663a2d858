//! REST mode (`--server`): the commands the REST API of dbaas-server offers
//! go through it instead of the Kubernetes API. It answers with the same
//! JSON objects, so the same render functions print the same output, and its
//! error bodies (`{code, reason, message}`) become the same errors and exit
//! codes as the Kubernetes API's.
//!
//! The HTTP client is kube's (hyper-util with rustls and ring): already in
//! the binary, with bearer tokens and `--insecure-skip-tls-verify` support.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use dbaas_api::DatabaseCluster;
use dbaas_api::backup::{BackupPhase, DatabaseBackup};
use dbaas_api::claim::DatabaseClaim;
use dbaas_api::engine::DatabaseEngine;
use dbaas_api::ops::{OpsPhase, OpsRequest, OpsType};
use k8s_openapi::ByteString;
use k8s_openapi::jiff::Timestamp;
use kube::config::Kubeconfig;
use kube::core::Status;
use kube::{Client, Config, ResourceExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::build;
use crate::cli::{
    BackupCommand, ClaimCommand, Cli, ClusterCommand, Command, DeleteArgs, ListOpsArgs,
    NamedOutputArgs, OpsCommand, OutputFormat, RestoreCommand, WaitArgs,
};
use crate::error::CliError;
use crate::render::{self, ListOutput};
use crate::run::{self, Progress};

const CLUSTER: &str = "DatabaseCluster";
const CLAIM: &str = "DatabaseClaim";
const BACKUP: &str = "DatabaseBackup";
const OPS: &str = "OpsRequest";
const CLUSTERS: &str = "databaseclusters";
const CLAIMS: &str = "databaseclaims";
const BACKUPS: &str = "databasebackups";
const OPS_REQUESTS: &str = "opsrequests";
const ENGINES: &str = "databaseengines";
/// How often `--wait` asks again: the REST API has no watch.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Path segments keep only what a DNS name may hold.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.');

/// Runs one command line that has `--server`.
pub async fn run(cli: Cli, server: &str) -> Result<String, CliError> {
    if let Some(command) = kube_only(&cli.command) {
        return Err(CliError::Usage(format!(
            "`dbaasctl {command}` is not offered through the REST API: run it without --server \
             (and without DBAAS_SERVER) to use the Kubernetes API"
        )));
    }
    let rest = Rest::connect(&cli, server).await?;
    match cli.command {
        Command::Cluster(command) => rest.cluster(command).await,
        Command::Claim(command) => rest.claim(command).await,
        Command::Backup(command) => rest.backup(command).await,
        Command::Ops(command) => rest.ops(command).await,
        Command::Restore(command) => rest.restore(command).await,
        Command::Engines(args) => {
            let engines: Vec<DatabaseEngine> = rest
                .list(&rest.collection(ENGINES), "DatabaseEngine")
                .await?;
            match args.output.format {
                OutputFormat::Table => Ok(render::engines_table(&engines)),
                format => render::structured(&ListOutput::new(&engines), format),
            }
        }
        // kube_only() named these.
        Command::Preflight(_)
        | Command::Install(_)
        | Command::Uninstall(_)
        | Command::Completions { .. } => Ok(String::new()),
    }
}

/// The command, as typed, when the REST API has no endpoint for it.
fn kube_only(command: &Command) -> Option<&'static str> {
    match command {
        Command::Cluster(ClusterCommand::ConnectString(_)) => Some("cluster connect-string"),
        Command::Cluster(ClusterCommand::Edit(_)) => Some("cluster edit"),
        // OpsRequests are created and deleted through the REST API, never patched.
        Command::Ops(OpsCommand::Cancel(_)) => Some("ops cancel"),
        Command::Engines(args) if args.command.is_some() => Some("engines install/approve-upgrade"),
        Command::Preflight(_) => Some("preflight"),
        Command::Install(_) => Some("install"),
        Command::Uninstall(_) => Some("uninstall"),
        Command::Completions { .. } => Some("completions"),
        _ => None,
    }
}

/// The body of every error response of dbaas-server.
#[derive(serde::Deserialize)]
struct ErrorBody {
    code: u16,
    reason: String,
    message: String,
}

/// What `GET .../databaseclusters/{name}/credentials` answers (the part used).
#[derive(serde::Deserialize)]
struct ServerCredentials {
    /// Every key of the Secret.
    data: BTreeMap<String, String>,
}

/// One page of a list.
#[derive(serde::Deserialize)]
struct Page<K> {
    items: Vec<K>,
    #[serde(rename = "continue")]
    continue_token: Option<String>,
}

/// What a failed request was about, for the error message.
struct Target<'a> {
    action: &'static str,
    kind: &'static str,
    name: &'a str,
}

struct Rest {
    client: Client,
    server: String,
    namespace: String,
}

impl Rest {
    async fn connect(cli: &Cli, server: &str) -> Result<Self, CliError> {
        let url: http::Uri = server
            .parse()
            .map_err(|e| CliError::Usage(format!("--server {server:?} is not a URL: {e}")))?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
            return Err(CliError::Usage(format!(
                "--server {server:?} is not an http:// or https:// URL"
            )));
        }
        if url.scheme_str() == Some("http") && !cli.insecure_plain_http {
            return Err(CliError::Usage(format!(
                "--server {server:?} is plain HTTP: the bearer token would cross the network \
                 readable; use https:// or pass --insecure-plain-http"
            )));
        }
        let root_cert = cli
            .server_ca_file
            .as_deref()
            .map(read_certificates)
            .transpose()?;
        let kubeconfig = read_kubeconfig(cli.kubeconfig.as_deref())?;
        let context = kubeconfig.as_ref().and_then(current_context);
        let mut config = Config::new(url);
        config.accept_invalid_certs = cli.insecure_skip_tls_verify;
        config.root_cert = root_cert;
        config.default_namespace = cli
            .namespace
            .clone()
            .or_else(|| context.and_then(|c| c.namespace.clone()))
            .unwrap_or_else(|| "default".to_owned());
        match &cli.token {
            Some(token) => config.auth_info.token = Some(token.clone().into()),
            // The kubeconfig user's bearer token, if it has one; the server
            // checks it with a TokenReview.
            None => {
                let user = kubeconfig
                    .as_ref()
                    .zip(context.and_then(|c| c.user.as_deref()))
                    .and_then(|(kubeconfig, user)| {
                        kubeconfig
                            .auth_infos
                            .iter()
                            .find(|named| named.name == user)
                    })
                    .and_then(|named| named.auth_info.as_ref());
                if let Some(user) = user {
                    config.auth_info.token = user.token.clone();
                    config.auth_info.token_file = user.token_file.clone();
                }
            }
        }
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).map_err(|e| CliError::Server {
            server: server.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            client,
            server: server.to_owned(),
            namespace,
        })
    }

    /// `/v1/namespaces/{namespace}/{plural}`.
    fn collection(&self, plural: &str) -> String {
        format!(
            "/v1/namespaces/{}/{plural}",
            utf8_percent_encode(&self.namespace, SEGMENT)
        )
    }

    /// `/v1/namespaces/{namespace}/{plural}/{name}`.
    fn item(&self, plural: &str, name: &str) -> String {
        format!(
            "{}/{}",
            self.collection(plural),
            utf8_percent_encode(name, SEGMENT)
        )
    }

    /// Sends one request; a status of 400 or more becomes the error the
    /// Kubernetes API's answer would have become.
    async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
        target: &Target<'_>,
    ) -> Result<(u16, Vec<u8>), CliError> {
        let server_error = |detail: String| CliError::Server {
            server: self.server.clone(),
            detail,
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(kube::client::Body::from(body.unwrap_or_default()))
            .map_err(|e| server_error(format!("building the request for {path}: {e}")))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| server_error(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .map_err(|e| server_error(format!("reading the answer to {path}: {e}")))?
            .to_vec();
        if status < 400 {
            return Ok((status, bytes));
        }
        let status = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Status::failure(&body.message, &body.reason).with_code(body.code),
            // Not dbaas-server's answer (a proxy's, say): its text is all there is.
            Err(_) => Status::failure(String::from_utf8_lossy(&bytes).trim(), "").with_code(status),
        };
        Err(CliError::from_api(
            target.action,
            target.kind,
            target.name,
            &self.namespace,
            kube::Error::Api(Box::new(status)),
        ))
    }

    async fn get_path<K: DeserializeOwned>(
        &self,
        path: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<K, CliError> {
        let target = Target {
            action: "getting",
            kind,
            name,
        };
        let (_, bytes) = self.send(http::Method::GET, path, None, &target).await?;
        self.parse(&bytes, path)
    }

    async fn get<K: DeserializeOwned>(
        &self,
        plural: &str,
        kind: &'static str,
        name: &str,
    ) -> Result<K, CliError> {
        self.get_path(&self.item(plural, name), kind, name).await
    }

    /// Every item of a list at `path` (following continue tokens), sorted
    /// by name like the Kubernetes mode's lists.
    async fn list<K: DeserializeOwned + ResourceExt>(
        &self,
        path: &str,
        kind: &'static str,
    ) -> Result<Vec<K>, CliError> {
        let target = Target {
            action: "listing",
            kind,
            name: "*",
        };
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let url = match &next {
                Some(token) => format!(
                    "{path}?continue={}",
                    utf8_percent_encode(token, NON_ALPHANUMERIC)
                ),
                None => path.to_owned(),
            };
            let (_, bytes) = self.send(http::Method::GET, &url, None, &target).await?;
            let page: Page<K> = self.parse(&bytes, path)?;
            items.extend(page.items);
            match page.continue_token.filter(|t| !t.is_empty()) {
                Some(token) => next = Some(token),
                None => break,
            }
        }
        items.sort_by_key(|item| item.name_any());
        Ok(items)
    }

    async fn create<K: Serialize>(
        &self,
        plural: &str,
        kind: &'static str,
        name: &str,
        object: &K,
    ) -> Result<(), CliError> {
        let body = serde_json::to_vec(object)
            .map_err(|e| CliError::Output(format!("encoding the {kind}: {e}")))?;
        let target = Target {
            action: "creating",
            kind,
            name,
        };
        self.send(
            http::Method::POST,
            &self.collection(plural),
            Some(body),
            &target,
        )
        .await?;
        Ok(())
    }

    fn parse<K: DeserializeOwned>(&self, bytes: &[u8], path: &str) -> Result<K, CliError> {
        serde_json::from_slice(bytes).map_err(|e| CliError::Server {
            server: self.server.clone(),
            detail: format!("unexpected answer to {path}: {e}"),
        })
    }

    /// GETs the object every [`POLL_INTERVAL`] until `done` says so (given
    /// the object, or None once it is gone), for at most `timeout`.
    async fn poll<K: DeserializeOwned>(
        &self,
        plural: &str,
        kind: &'static str,
        name: &str,
        wait: &WaitArgs,
        what: &str,
        mut done: impl FnMut(Option<&K>) -> bool,
    ) -> Result<Option<K>, CliError> {
        let polling = async {
            loop {
                let object = match self.get::<K>(plural, kind, name).await {
                    Ok(object) => Some(object),
                    Err(CliError::NotFound { .. }) => None,
                    Err(err) => return Err(err),
                };
                if done(object.as_ref()) {
                    return Ok(object);
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        };
        match tokio::time::timeout(wait.timeout, polling).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CliError::Timeout {
                timeout: wait.timeout,
                what: what.to_owned(),
            }),
        }
    }

    async fn delete<K: DeserializeOwned + ResourceExt>(
        &self,
        plural: &str,
        kind: &'static str,
        args: &DeleteArgs,
    ) -> Result<String, CliError> {
        let name = args.name.as_str();
        let target = Target {
            action: "deleting",
            kind,
            name,
        };
        let (status, bytes) = self
            .send(
                http::Method::DELETE,
                &self.item(plural, name),
                None,
                &target,
            )
            .await?;
        if args.wait.wait {
            // 202: finalizers still run, and the body is the object. Its uid
            // guards against a new object of the same name counting as "still there".
            let uid = if status == 202 {
                serde_json::from_slice::<K>(&bytes)
                    .ok()
                    .and_then(|object| object.uid())
            } else {
                None
            };
            let what = format!("{kind} {name} to be deleted");
            let progress = Progress::new();
            let waited = self
                .poll(
                    plural,
                    kind,
                    name,
                    &args.wait,
                    &what,
                    |object: Option<&K>| match object {
                        Some(object) if uid.is_none() || object.uid() == uid => {
                            progress.show(&format!(
                                "{name}: deleting (finalizers: {})",
                                object.finalizers().join(",")
                            ));
                            false
                        }
                        _ => true,
                    },
                )
                .await;
            progress.finish();
            waited?;
        }
        Ok(format!("{} {name} deleted\n", kind.to_lowercase()))
    }

    async fn cluster(&self, command: ClusterCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            ClusterCommand::Create(args) => {
                let cluster = build::cluster_from_args(&args)?;
                self.create(CLUSTERS, CLUSTER, &args.name, &cluster).await?;
                if args.wait.wait {
                    let name = args.name.as_str();
                    let what = format!("{CLUSTER} {name} to become Ready");
                    let progress = Progress::new();
                    let found = self
                        .poll(
                            CLUSTERS,
                            CLUSTER,
                            name,
                            &args.wait,
                            &what,
                            |object: Option<&DatabaseCluster>| {
                                object.is_none_or(|cluster| {
                                    progress.show(&build::progress_line(cluster));
                                    build::is_ready(cluster)
                                })
                            },
                        )
                        .await;
                    progress.finish();
                    if found?.is_none() {
                        return Err(CliError::DeletedWhileWaiting { what });
                    }
                }
                Ok(format!("databasecluster {} created\n", args.name))
            }
            ClusterCommand::List(output) => {
                let clusters: Vec<DatabaseCluster> =
                    self.list(&self.collection(CLUSTERS), CLUSTER).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::clusters_table(&clusters, now)),
                    format => render::structured(&ListOutput::new(&clusters), format),
                }
            }
            ClusterCommand::Get(NamedOutputArgs { name, output }) => {
                let cluster: DatabaseCluster = self.get(CLUSTERS, CLUSTER, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::clusters_table(&[cluster], now)),
                    format => render::structured(&cluster, format),
                }
            }
            ClusterCommand::Delete(args) => {
                self.delete::<DatabaseCluster>(CLUSTERS, CLUSTER, &args)
                    .await
            }
            ClusterCommand::Credentials(NamedOutputArgs { name, output }) => {
                let credentials = self.credentials(&name).await?;
                run::credentials_output(&credentials, output.format)
            }
            // kube_only() named these.
            ClusterCommand::ConnectString(_) | ClusterCommand::Edit(_) => Ok(String::new()),
        }
    }

    /// Same steps and errors as the Kubernetes mode: the cluster names its
    /// Secret, the Secret's keys (read by the server, as the caller) give
    /// the admin user.
    async fn credentials(&self, name: &str) -> Result<build::Credentials, CliError> {
        let cluster: DatabaseCluster = self.get(CLUSTERS, CLUSTER, name).await?;
        let secret_name = cluster
            .status
            .as_ref()
            .and_then(|s| s.credentials_secret.clone())
            .ok_or_else(|| CliError::NotReported {
                name: name.to_string(),
                field: "status.credentialsSecret",
            })?;
        let path = format!("{}/credentials", self.item(CLUSTERS, name));
        let secret: ServerCredentials = self.get_path(&path, "Secret", &secret_name).await?;
        let (host, port) = run::endpoint(&cluster, name)?;
        let data: BTreeMap<String, ByteString> = secret
            .data
            .into_iter()
            .map(|(key, value)| (key, ByteString(value.into_bytes())))
            .collect();
        build::credentials_from_secret(cluster.spec.engine.type_, &secret_name, &data, &host, port)
    }

    async fn claim(&self, command: ClaimCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            ClaimCommand::List(output) => {
                let claims: Vec<DatabaseClaim> = self.list(&self.collection(CLAIMS), CLAIM).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::claims_table(&claims, now)),
                    format => render::structured(&ListOutput::new(&claims), format),
                }
            }
            ClaimCommand::Get(NamedOutputArgs { name, output }) => {
                let claim: DatabaseClaim = self.get(CLAIMS, CLAIM, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::claims_table(&[claim], now)),
                    format => render::structured(&claim, format),
                }
            }
            ClaimCommand::Delete(args) => self.delete::<DatabaseClaim>(CLAIMS, CLAIM, &args).await,
        }
    }

    /// The list of a cluster's sub-collection (`backups`, `opsrequests`,
    /// `restores`) when `cluster` is given, else of the namespace's `plural`.
    fn of_cluster(&self, plural: &str, cluster: Option<&str>, sub: &str) -> String {
        match cluster {
            Some(cluster) => format!("{}/{sub}", self.item(CLUSTERS, cluster)),
            None => self.collection(plural),
        }
    }

    async fn backup(&self, command: BackupCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            BackupCommand::Create(args) => {
                let backup = build::backup_from_args(&args);
                self.create(BACKUPS, BACKUP, &args.name, &backup).await?;
                if args.wait.wait {
                    let name = args.name.as_str();
                    let what = format!("{BACKUP} {name} to finish");
                    let progress = Progress::new();
                    let found = self
                        .poll(
                            BACKUPS,
                            BACKUP,
                            name,
                            &args.wait,
                            &what,
                            |object: Option<&DatabaseBackup>| {
                                object.is_none_or(|backup| {
                                    progress.show(&build::backup_progress_line(backup));
                                    backup
                                        .status
                                        .as_ref()
                                        .and_then(|s| s.phase)
                                        .is_some_and(BackupPhase::is_terminal)
                                })
                            },
                        )
                        .await;
                    progress.finish();
                    let Some(backup) = found? else {
                        return Err(CliError::DeletedWhileWaiting { what });
                    };
                    let status = backup.status.unwrap_or_default();
                    if status.phase == Some(BackupPhase::Failed) {
                        return Err(CliError::BackupFailed {
                            name: args.name.clone(),
                            message: status.message.unwrap_or_default(),
                        });
                    }
                }
                Ok(format!("databasebackup {} created\n", args.name))
            }
            BackupCommand::List(args) => {
                let path = self.of_cluster(BACKUPS, args.cluster.as_deref(), "backups");
                let backups: Vec<DatabaseBackup> = self.list(&path, BACKUP).await?;
                match args.output.format {
                    OutputFormat::Table => Ok(render::backups_table(&backups, now)),
                    format => render::structured(&ListOutput::new(&backups), format),
                }
            }
            BackupCommand::Get(NamedOutputArgs { name, output }) => {
                let backup: DatabaseBackup = self.get(BACKUPS, BACKUP, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::backups_table(&[backup], now)),
                    format => render::structured(&backup, format),
                }
            }
            BackupCommand::Delete(args) => {
                self.delete::<DatabaseBackup>(BACKUPS, BACKUP, &args).await
            }
        }
    }

    async fn ops(&self, command: OpsCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            OpsCommand::Create(args) => {
                let ops = build::ops_request_from_args(&args)?;
                self.create_ops(ops, &args.wait).await
            }
            OpsCommand::List(args) => {
                let requests = self.list_ops(&args, "opsrequests").await?;
                match args.output.format {
                    OutputFormat::Table => Ok(render::ops_table(&requests, now)),
                    format => render::structured(&ListOutput::new(&requests), format),
                }
            }
            OpsCommand::Get(NamedOutputArgs { name, output }) => {
                let ops: OpsRequest = self.get(OPS_REQUESTS, OPS, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::ops_table(&[ops], now)),
                    format => render::structured(&ops, format),
                }
            }
            OpsCommand::Delete(args) => self.delete::<OpsRequest>(OPS_REQUESTS, OPS, &args).await,
            // kube_only() named it.
            OpsCommand::Cancel(_) => Ok(String::new()),
        }
    }

    async fn restore(&self, command: RestoreCommand) -> Result<String, CliError> {
        match command {
            RestoreCommand::Create(args) => {
                let ops = build::restore_from_args(&args)?;
                self.create_ops(ops, &args.wait).await
            }
            RestoreCommand::List(args) => {
                let mut restores = self.list_ops(&args, "restores").await?;
                restores.retain(|ops| ops.spec.type_ == OpsType::Restore);
                match args.output.format {
                    OutputFormat::Table => Ok(render::restores_table(&restores, Timestamp::now())),
                    format => render::structured(&ListOutput::new(&restores), format),
                }
            }
        }
    }

    async fn list_ops(&self, args: &ListOpsArgs, sub: &str) -> Result<Vec<OpsRequest>, CliError> {
        let path = self.of_cluster(OPS_REQUESTS, args.cluster.as_deref(), sub);
        self.list(&path, OPS).await
    }

    /// Creates the OpsRequest; with --wait, follows it until it is over and
    /// fails unless it Succeeded.
    async fn create_ops(&self, ops: OpsRequest, wait: &WaitArgs) -> Result<String, CliError> {
        let name = ops.name_any();
        self.create(OPS_REQUESTS, OPS, &name, &ops).await?;
        if !wait.wait {
            return Ok(format!("opsrequest {name} created\n"));
        }
        let what = format!("{OPS} {name} to finish");
        let progress = Progress::new();
        let found = self
            .poll(
                OPS_REQUESTS,
                OPS,
                &name,
                wait,
                &what,
                |object: Option<&OpsRequest>| {
                    object.is_none_or(|ops| {
                        progress.show(&build::ops_progress_line(ops));
                        build::ops_phase(ops).is_terminal()
                    })
                },
            )
            .await;
        progress.finish();
        let Some(ops) = found? else {
            return Err(CliError::DeletedWhileWaiting { what });
        };
        let phase = build::ops_phase(&ops);
        if phase == OpsPhase::Succeeded {
            return Ok(format!("opsrequest {name} created\n"));
        }
        Err(CliError::OpsEnded {
            kind: OPS,
            name,
            phase,
            message: ops
                .status
                .and_then(|s| s.message)
                .unwrap_or_else(|| "no message from the operator".to_owned()),
        })
    }
}

/// The kubeconfig for the default namespace and token: the one given with
/// --kubeconfig (an error if unreadable), else $KUBECONFIG or
/// ~/.kube/config when there is one.
fn read_kubeconfig(path: Option<&Path>) -> Result<Option<Kubeconfig>, CliError> {
    match path {
        Some(path) => {
            Kubeconfig::read_from(path)
                .map(Some)
                .map_err(|source| CliError::Kubeconfig {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                })
        }
        // Without a kubeconfig the token comes from --token alone.
        None => Ok(Kubeconfig::read().ok()),
    }
}

/// The DER certificates of a PEM file (`--server-ca-file`).
fn read_certificates(path: &Path) -> Result<Vec<Vec<u8>>, CliError> {
    use base64::Engine as _;
    let invalid =
        |detail: String| CliError::Usage(format!("--server-ca-file {}: {detail}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
    let mut certificates = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "-----BEGIN CERTIFICATE-----") => body = Some(String::new()),
            (Some(pem), "-----END CERTIFICATE-----") => {
                let der = base64::engine::general_purpose::STANDARD
                    .decode(pem.as_bytes())
                    .map_err(|e| invalid(format!("not PEM: {e}")))?;
                certificates.push(der);
                body = None;
            }
            (Some(pem), line) => pem.push_str(line),
            (None, _) => {}
        }
    }
    if certificates.is_empty() {
        return Err(invalid("holds no PEM certificate".to_owned()));
    }
    Ok(certificates)
}

fn current_context(kubeconfig: &Kubeconfig) -> Option<&kube::config::Context> {
    let current = kubeconfig.current_context.as_deref()?;
    kubeconfig
        .contexts
        .iter()
        .find(|named| named.name == current)
        .and_then(|named| named.context.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn command(argv: &[&str]) -> Command {
        Cli::try_parse_from(
            ["dbaasctl", "--server", "http://localhost:1"]
                .iter()
                .chain(argv),
        )
        .unwrap()
        .command
    }

    #[test]
    fn commands_without_an_endpoint_are_named() {
        assert_eq!(kube_only(&command(&["install"])), Some("install"),);
        assert_eq!(
            kube_only(&command(&["ops", "cancel", "op"])),
            Some("ops cancel")
        );
        assert_eq!(
            kube_only(&command(&["cluster", "edit", "pg", "--set-size", "2"])),
            Some("cluster edit")
        );
        for supported in [
            &["cluster", "list"][..],
            &["cluster", "credentials", "pg"],
            &["backup", "list", "--cluster", "pg"],
            &["restore", "list"],
            &["ops", "get", "op"],
            &["engines"],
            &["claim", "list"],
        ] {
            assert_eq!(kube_only(&command(supported)), None, "{supported:?}");
        }
    }

    #[tokio::test]
    async fn unsupported_commands_are_usage_errors_before_any_connection() {
        let cli = Cli::try_parse_from(["dbaasctl", "--server", "http://127.0.0.1:9", "preflight"])
            .unwrap();
        let err = run(cli, "http://127.0.0.1:9").await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        assert!(err.to_string().contains("without --server"), "{err}");
    }

    #[tokio::test]
    async fn server_urls_are_checked() {
        for bad in ["localhost:8080", "ftp://host", "not a url"] {
            let cli =
                Cli::try_parse_from(["dbaasctl", "--server", bad, "cluster", "list"]).unwrap();
            let err = run(cli, bad).await.err().unwrap();
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn tokens_are_not_sent_over_plain_http_unless_asked() {
        let argv = |extra: &[&'static str]| {
            let mut argv = vec!["dbaasctl", "--server", "http://127.0.0.1:9", "--token", "t"];
            argv.extend(extra);
            argv.extend(["cluster", "list"]);
            Cli::try_parse_from(argv).unwrap()
        };
        let err = run(argv(&[]), "http://127.0.0.1:9").await.unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE, "{err}");
        assert!(err.to_string().contains("--insecure-plain-http"), "{err}");
        // Told so, it connects (and fails: nothing listens there).
        let err = run(argv(&["--insecure-plain-http"]), "http://127.0.0.1:9")
            .await
            .unwrap_err();
        assert_ne!(err.exit_code(), crate::error::EXIT_USAGE, "{err}");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        assert!(read_certificates(&empty).is_err());
        let pem = dir.path().join("ca.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAAEC\nAw==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(read_certificates(&pem).unwrap(), vec![vec![0, 1, 2, 3]]);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(
            utf8_percent_encode("a/b?c", SEGMENT).to_string(),
            "a%2Fb%3Fc"
        );
        assert_eq!(utf8_percent_encode("pg-1.x", SEGMENT).to_string(), "pg-1.x");
    }
}
