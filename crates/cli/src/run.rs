//! The commands: each talks to the Kubernetes API and returns the text to
//! print on stdout. Progress of `--wait` goes to stderr.

use std::fmt::Debug;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use clap::CommandFactory;
use dbaas_api::DatabaseCluster;
use dbaas_api::backup::{BackupPhase, DatabaseBackup};
use dbaas_api::claim::DatabaseClaim;
use dbaas_api::engine::DatabaseEngine;
use dbaas_api::ops::{OpsPhase, OpsRequest, OpsType};
use dbaas_api::rbac;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, ValidationDirective};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::NamespaceResourceScope;
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Api, Client, Config, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::build;
use crate::cli::{
    BackupCommand, CancelOpsArgs, ClaimCommand, Cli, ClusterCommand, Command, CreateBackupArgs,
    CreateClusterArgs, DeleteArgs, EditClusterArgs, ListOpsArgs, NamedOutputArgs, OpsCommand,
    OutputFormat, PreflightArgs, RestoreCommand, WaitArgs,
};
use crate::edit;
use crate::error::CliError;
use crate::install;
use crate::render::{self, ListOutput};

const CLUSTER: &str = "DatabaseCluster";
const CLAIM: &str = "DatabaseClaim";
const BACKUP: &str = "DatabaseBackup";
const OPS: &str = "OpsRequest";
/// Field manager of the CLI's patches, so managedFields name the tool.
const FIELD_MANAGER: &str = "dbaasctl";

/// Runs one parsed command line; returns what goes to stdout.
pub async fn run(cli: Cli) -> Result<String, CliError> {
    if let Command::Completions { shell } = cli.command {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::from(shell),
            &mut Cli::command(),
            "dbaasctl",
            &mut script,
        );
        return String::from_utf8(script).map_err(|e| CliError::Output(e.to_string()));
    }
    if let Some(server) = cli.server.clone() {
        return crate::rest::run(cli, &server).await;
    }
    // The namespace of these is where the operator runs, not the context's.
    match &cli.command {
        Command::Install(args) => {
            return install::install(cli.kubeconfig.as_deref(), cli.namespace.as_deref(), args)
                .await;
        }
        Command::Uninstall(args) => {
            return install::uninstall(cli.kubeconfig.as_deref(), cli.namespace.as_deref(), args)
                .await;
        }
        _ => {}
    }
    let client = connect(cli.kubeconfig.as_deref()).await?;
    let namespace = cli
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let context = Context { client, namespace };
    match cli.command {
        Command::Cluster(command) => context.cluster(command).await,
        Command::Claim(command) => context.claim(command).await,
        Command::Backup(command) => context.backup(command).await,
        Command::Ops(command) => context.ops(command).await,
        Command::Restore(command) => context.restore(command).await,
        Command::Engines(args) => match args.command {
            Some(command) => {
                crate::engine_operator::run(&context.client, &context.namespace, command).await
            }
            None => context.engines(args.output.format).await,
        },
        Command::Preflight(args) => context.preflight(&args).await,
        Command::Install(_) | Command::Uninstall(_) => Ok(String::new()),
        Command::Completions { .. } => Ok(String::new()),
    }
}

pub(crate) async fn connect(kubeconfig: Option<&Path>) -> Result<Client, CliError> {
    let Some(path) = kubeconfig else {
        return Client::try_default()
            .await
            .map_err(|e| CliError::Connect(Box::new(e)));
    };
    let kubeconfig_error = |source| CliError::Kubeconfig {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_error)?;
    Client::try_from(config).map_err(|e| CliError::Connect(Box::new(e)))
}

struct Context {
    client: Client,
    namespace: String,
}

impl Context {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn get<K>(&self, kind: &'static str, name: &str) -> Result<K, CliError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let mut object = self
            .api::<K>()
            .get(name)
            .await
            .map_err(|e| CliError::from_api("getting", kind, name, &self.namespace, e))?;
        // Noise to people (kubectl hides them too), and the REST API leaves them out.
        object.meta_mut().managed_fields = None;
        Ok(object)
    }

    async fn list<K>(&self, kind: &'static str) -> Result<Vec<K>, CliError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let mut items = self
            .api::<K>()
            .list(&ListParams::default())
            .await
            .map_err(|e| CliError::from_api("listing", kind, "*", &self.namespace, e))?
            .items;
        for item in &mut items {
            item.meta_mut().managed_fields = None;
        }
        items.sort_by_key(|item| item.name_any());
        Ok(items)
    }

    async fn delete<K>(&self, kind: &'static str, args: &DeleteArgs) -> Result<String, CliError>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + 'static,
    {
        let api = self.api::<K>();
        let name = args.name.as_str();
        let deleting = api
            .delete(name, &DeleteParams::default())
            .await
            .map_err(|e| CliError::from_api("deleting", kind, name, &self.namespace, e))?;
        if args.wait.wait {
            // The uid guards against a new object of the same name counting as "still there".
            let uid = deleting.left().and_then(|object| object.uid());
            let what = format!("{kind} {name} to be deleted");
            let progress = Progress::new();
            let waited = wait(args.wait.timeout, &what, async {
                await_condition(api.clone(), name, |object: Option<&K>| {
                    if let Some(object) = object {
                        progress.show(&format!(
                            "{name}: deleting (finalizers: {})",
                            object.finalizers().join(",")
                        ));
                    }
                    match &uid {
                        Some(uid) => conditions::is_deleted(uid).matches_object(object),
                        None => object.is_none(),
                    }
                })
                .await
            })
            .await;
            progress.finish();
            waited?;
        }
        Ok(format!("{} {name} deleted\n", kind.to_lowercase()))
    }

    async fn cluster(&self, command: ClusterCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            ClusterCommand::Create(args) => self.create_cluster(&args).await,
            ClusterCommand::List(output) => {
                let clusters: Vec<DatabaseCluster> = self.list(CLUSTER).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::clusters_table(&clusters, now)),
                    format => render::structured(&ListOutput::new(&clusters), format),
                }
            }
            ClusterCommand::Get(NamedOutputArgs { name, output }) => {
                let cluster: DatabaseCluster = self.get(CLUSTER, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::clusters_table(&[cluster], now)),
                    format => render::structured(&cluster, format),
                }
            }
            ClusterCommand::Delete(args) => self.delete::<DatabaseCluster>(CLUSTER, &args).await,
            ClusterCommand::Credentials(NamedOutputArgs { name, output }) => {
                let credentials = self.credentials(&name).await?;
                credentials_output(&credentials, output.format)
            }
            ClusterCommand::ConnectString(args) => self.connect_string(&args.name).await,
            ClusterCommand::Edit(args) => self.edit_cluster(&args).await,
        }
    }

    /// `cluster edit`: a merge patch from the flags, or the user's editor.
    async fn edit_cluster(&self, args: &EditClusterArgs) -> Result<String, CliError> {
        let name = args.name.as_str();
        let api = self.api::<DatabaseCluster>();
        let before: DatabaseCluster = self.get(CLUSTER, name).await?;
        let read_version = before.resource_version().unwrap_or_default();
        let patch = if args.has_changes() {
            crate::build::cluster_edit_patch(args)
        } else {
            let original =
                serde_json::to_value(&before).map_err(|e| CliError::Output(e.to_string()))?;
            let shown = edit::editable(&original);
            let file = edit::temp_file(&edit::document(&shown)?)?;
            edit::run_editor(&edit::editor_command(), file.path())?;
            let text = std::fs::read_to_string(file.path())
                .map_err(|e| CliError::Output(format!("reading {}: {e}", file.path().display())))?;
            let edited = match edit::parse_edited(&text) {
                Ok(edited) => edited,
                Err(detail) => {
                    // The user's work is worth keeping.
                    let kept = file
                        .into_temp_path()
                        .keep()
                        .map_or_else(|e| e.to_string(), |path| path.display().to_string());
                    return Err(CliError::InvalidEdit { detail, kept });
                }
            };
            match edit::edit_patch(&shown, &edited, &read_version) {
                Some(patch) => patch,
                None => return Ok(format!("databasecluster {name} unchanged\n")),
            }
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            field_validation: Some(ValidationDirective::Strict),
            ..PatchParams::default()
        };
        let after = api
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| match &e {
                kube::Error::Api(status) if status.is_conflict() => CliError::EditConflict {
                    name: name.to_owned(),
                    read_version: read_version.clone(),
                },
                _ => CliError::from_api("editing", CLUSTER, name, &self.namespace, e),
            })?;
        if after.resource_version() == before.resource_version() {
            Ok(format!("databasecluster {name} unchanged\n"))
        } else {
            Ok(format!("databasecluster {name} edited\n"))
        }
    }

    async fn create_cluster(&self, args: &CreateClusterArgs) -> Result<String, CliError> {
        let cluster = build::cluster_from_args(args)?;
        let api = self.api::<DatabaseCluster>();
        api.create(&PostParams::default(), &cluster)
            .await
            .map_err(|e| CliError::from_api("creating", CLUSTER, &args.name, &self.namespace, e))?;
        if args.wait.wait {
            let name = args.name.as_str();
            let what = format!("{CLUSTER} {name} to become Ready");
            let progress = Progress::new();
            let found = wait(args.wait.timeout, &what, async {
                await_condition(api.clone(), name, |object: Option<&DatabaseCluster>| {
                    object.is_some_and(|cluster| {
                        progress.show(&build::progress_line(cluster));
                        build::is_ready(cluster)
                    })
                })
                .await
            })
            .await;
            progress.finish();
            if found?.is_none() {
                return Err(CliError::DeletedWhileWaiting { what });
            }
        }
        Ok(format!("databasecluster {} created\n", args.name))
    }

    /// The cluster and its credentials Secret's data (never printed here).
    async fn cluster_and_secret(
        &self,
        name: &str,
    ) -> Result<(DatabaseCluster, String, Secret), CliError> {
        let cluster: DatabaseCluster = self.get(CLUSTER, name).await?;
        let secret_name = cluster
            .status
            .as_ref()
            .and_then(|s| s.credentials_secret.clone())
            .ok_or_else(|| CliError::NotReported {
                name: name.to_string(),
                field: "status.credentialsSecret",
            })?;
        let secret: Secret = self.get("Secret", &secret_name).await?;
        Ok((cluster, secret_name, secret))
    }

    async fn credentials(&self, name: &str) -> Result<build::Credentials, CliError> {
        let (cluster, secret_name, secret) = self.cluster_and_secret(name).await?;
        let (host, port) = endpoint(&cluster, name)?;
        build::credentials_from_secret(
            cluster.spec.engine.type_,
            &secret_name,
            &secret.data.unwrap_or_default(),
            &host,
            port,
        )
    }

    async fn connect_string(&self, name: &str) -> Result<String, CliError> {
        let cluster: DatabaseCluster = self.get(CLUSTER, name).await?;
        let engine = cluster.spec.engine.type_;
        let (host, port) = endpoint(&cluster, name)?;
        // The user name is worth reading from the Secret, but the URI is still
        // useful to someone who may not read Secrets.
        let user = match self.cluster_and_secret(name).await {
            Ok((_, _, secret)) => {
                build::admin_user_from_secret(engine, &secret.data.unwrap_or_default())
            }
            Err(_) => build::default_admin_user(engine).to_string(),
        };
        Ok(format!(
            "{}\n",
            build::connect_string(engine, &user, &host, port)
        ))
    }

    async fn claim(&self, command: ClaimCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            ClaimCommand::List(output) => {
                let claims: Vec<DatabaseClaim> = self.list(CLAIM).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::claims_table(&claims, now)),
                    format => render::structured(&ListOutput::new(&claims), format),
                }
            }
            ClaimCommand::Get(NamedOutputArgs { name, output }) => {
                let claim: DatabaseClaim = self.get(CLAIM, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::claims_table(&[claim], now)),
                    format => render::structured(&claim, format),
                }
            }
            ClaimCommand::Delete(args) => self.delete::<DatabaseClaim>(CLAIM, &args).await,
        }
    }

    async fn backup(&self, command: BackupCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            BackupCommand::Create(args) => self.create_backup(&args).await,
            BackupCommand::List(args) => {
                let mut backups: Vec<DatabaseBackup> = self.list(BACKUP).await?;
                if let Some(cluster) = &args.cluster {
                    backups.retain(|b| &b.spec.cluster_name == cluster);
                }
                match args.output.format {
                    OutputFormat::Table => Ok(render::backups_table(&backups, now)),
                    format => render::structured(&ListOutput::new(&backups), format),
                }
            }
            BackupCommand::Get(NamedOutputArgs { name, output }) => {
                let backup: DatabaseBackup = self.get(BACKUP, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::backups_table(&[backup], now)),
                    format => render::structured(&backup, format),
                }
            }
            BackupCommand::Delete(args) => self.delete::<DatabaseBackup>(BACKUP, &args).await,
        }
    }

    async fn create_backup(&self, args: &CreateBackupArgs) -> Result<String, CliError> {
        let api = self.api::<DatabaseBackup>();
        api.create(&PostParams::default(), &build::backup_from_args(args))
            .await
            .map_err(|e| CliError::from_api("creating", BACKUP, &args.name, &self.namespace, e))?;
        if args.wait.wait {
            let name = args.name.as_str();
            let what = format!("{BACKUP} {name} to finish");
            let progress = Progress::new();
            let found = wait(args.wait.timeout, &what, async {
                await_condition(api.clone(), name, |object: Option<&DatabaseBackup>| {
                    object.is_some_and(|backup| {
                        progress.show(&build::backup_progress_line(backup));
                        backup
                            .status
                            .as_ref()
                            .and_then(|s| s.phase)
                            .is_some_and(BackupPhase::is_terminal)
                    })
                })
                .await
            })
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

    async fn ops(&self, command: OpsCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        match command {
            OpsCommand::Create(args) => {
                let ops = build::ops_request_from_args(&args)?;
                self.create_ops(ops, &args.wait).await
            }
            OpsCommand::List(args) => {
                let requests = self.list_ops(&args, |_| true).await?;
                match args.output.format {
                    OutputFormat::Table => Ok(render::ops_table(&requests, now)),
                    format => render::structured(&ListOutput::new(&requests), format),
                }
            }
            OpsCommand::Get(NamedOutputArgs { name, output }) => {
                let ops: OpsRequest = self.get(OPS, &name).await?;
                match output.format {
                    OutputFormat::Table => Ok(render::ops_table(&[ops], now)),
                    format => render::structured(&ops, format),
                }
            }
            OpsCommand::Cancel(args) => self.cancel_ops(&args).await,
            OpsCommand::Delete(args) => self.delete::<OpsRequest>(OPS, &args).await,
        }
    }

    async fn restore(&self, command: RestoreCommand) -> Result<String, CliError> {
        match command {
            RestoreCommand::Create(args) => {
                let ops = build::restore_from_args(&args)?;
                self.create_ops(ops, &args.wait).await
            }
            RestoreCommand::List(args) => {
                let restores = self
                    .list_ops(&args, |ops| ops.spec.type_ == OpsType::Restore)
                    .await?;
                match args.output.format {
                    OutputFormat::Table => Ok(render::restores_table(&restores, Timestamp::now())),
                    format => render::structured(&ListOutput::new(&restores), format),
                }
            }
        }
    }

    async fn list_ops(
        &self,
        args: &ListOpsArgs,
        wanted: impl Fn(&OpsRequest) -> bool,
    ) -> Result<Vec<OpsRequest>, CliError> {
        let mut requests: Vec<OpsRequest> = self.list(OPS).await?;
        requests.retain(|ops| {
            wanted(ops)
                && args
                    .cluster
                    .as_ref()
                    .is_none_or(|cluster| &ops.spec.cluster_ref.name == cluster)
        });
        Ok(requests)
    }

    /// Creates the OpsRequest; with --wait, follows it until it is over and
    /// fails unless it Succeeded.
    async fn create_ops(&self, ops: OpsRequest, wait: &WaitArgs) -> Result<String, CliError> {
        let name = ops.name_any();
        self.api::<OpsRequest>()
            .create(&PostParams::default(), &ops)
            .await
            .map_err(|e| CliError::from_api("creating", OPS, &name, &self.namespace, e))?;
        if wait.wait {
            self.wait_ops_over(&name, wait.timeout, OpsPhase::Succeeded)
                .await?;
        }
        Ok(format!("opsrequest {name} created\n"))
    }

    /// Sets spec.cancel; with --wait, follows it until it is over and fails
    /// unless it was Cancelled.
    async fn cancel_ops(&self, args: &CancelOpsArgs) -> Result<String, CliError> {
        let name = args.name.as_str();
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PatchParams::default()
        };
        self.api::<OpsRequest>()
            .patch(
                name,
                &params,
                &Patch::Merge(serde_json::json!({ "spec": { "cancel": true } })),
            )
            .await
            .map_err(|e| CliError::from_api("cancelling", OPS, name, &self.namespace, e))?;
        if args.wait.wait {
            self.wait_ops_over(name, args.wait.timeout, OpsPhase::Cancelled)
                .await?;
            return Ok(format!("opsrequest {name} cancelled\n"));
        }
        Ok(format!("opsrequest {name} cancel requested\n"))
    }

    /// Waits until the operation reaches a final phase; an error unless it
    /// is `wanted`, with the operator's message.
    async fn wait_ops_over(
        &self,
        name: &str,
        timeout: Duration,
        wanted: OpsPhase,
    ) -> Result<(), CliError> {
        let api = self.api::<OpsRequest>();
        let what = format!("{OPS} {name} to finish");
        let progress = Progress::new();
        let found = wait(timeout, &what, async {
            await_condition(api.clone(), name, |object: Option<&OpsRequest>| {
                object.is_some_and(|ops| {
                    progress.show(&build::ops_progress_line(ops));
                    build::ops_phase(ops).is_terminal()
                })
            })
            .await
        })
        .await;
        progress.finish();
        let Some(ops) = found? else {
            return Err(CliError::DeletedWhileWaiting { what });
        };
        let phase = build::ops_phase(&ops);
        if phase == wanted {
            return Ok(());
        }
        Err(CliError::OpsEnded {
            kind: OPS,
            name: name.to_owned(),
            phase,
            message: ops
                .status
                .and_then(|s| s.message)
                .unwrap_or_else(|| "no message from the operator".to_owned()),
        })
    }

    /// Asks, with one SubjectAccessReview per verb, whether the operator's
    /// ServiceAccount may do what the operator does.
    async fn preflight(&self, args: &PreflightArgs) -> Result<String, CliError> {
        let (sa_namespace, sa_name) = &args.service_account;
        let account = format!("{sa_namespace}:{sa_name}");
        let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let checks = rbac::access_checks_in(rbac::OPERATOR_PERMISSIONS, &args.watch_namespace);
        let mut denied = Vec::new();
        for check in &checks {
            let answer = reviews
                .create(
                    &PostParams::default(),
                    &check.service_account_review(sa_namespace, sa_name),
                )
                .await
                .map_err(|source| CliError::Review {
                    service_account: account.clone(),
                    source: Box::new(source),
                })?;
            if !answer.status.is_some_and(|s| s.allowed) {
                denied.push(check);
            }
        }
        let missing = rbac::missing(&denied);
        let report = render::preflight_report(&account, &missing);
        let required: Vec<String> = missing
            .iter()
            .filter(|gap| gap.permission.required)
            .map(rbac::Missing::what)
            .collect();
        if required.is_empty() {
            Ok(report)
        } else {
            Err(CliError::PermissionsMissing {
                report,
                required: required.join("; "),
            })
        }
    }

    async fn engines(&self, format: OutputFormat) -> Result<String, CliError> {
        let engines: Vec<DatabaseEngine> = self.list("DatabaseEngine").await?;
        match format {
            OutputFormat::Table => Ok(render::engines_table(&engines)),
            format => render::structured(&ListOutput::new(&engines), format),
        }
    }
}

/// The read-write endpoint a cluster reports; its engine's port by default.
pub(crate) fn endpoint(cluster: &DatabaseCluster, name: &str) -> Result<(String, i32), CliError> {
    let status = cluster.status.as_ref();
    let host = status
        .and_then(|s| s.host.clone())
        .ok_or_else(|| CliError::NotReported {
            name: name.to_string(),
            field: "status.host",
        })?;
    let port = status
        .and_then(|s| s.port)
        .unwrap_or_else(|| build::default_port(cluster.spec.engine.type_));
    Ok((host, port))
}

/// What `cluster credentials` prints.
pub(crate) fn credentials_output(
    credentials: &build::Credentials,
    format: OutputFormat,
) -> Result<String, CliError> {
    match format {
        OutputFormat::Table => Ok(format!(
            "username: {}\npassword: {}\nhost: {}\nport: {}\n",
            credentials.username, credentials.password, credentials.host, credentials.port
        )),
        format => render::structured(credentials, format),
    }
}

/// Runs `watch` for at most `timeout`.
async fn wait<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    watch: impl Future<Output = Result<T, E>>,
) -> Result<T, CliError> {
    match tokio::time::timeout(timeout, watch).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(CliError::Watch {
            what: what.to_string(),
            detail: err.to_string(),
        }),
        Err(_) => Err(CliError::Timeout {
            timeout,
            what: what.to_string(),
        }),
    }
}

/// One progress line on stderr: rewritten in place on a terminal, a new
/// line per change otherwise (logs of scripts stay readable).
pub(crate) struct Progress {
    last: Mutex<String>,
    terminal: bool,
}

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            last: Mutex::new(String::new()),
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub(crate) fn show(&self, line: &str) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if *last == line {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the command.
        let _ = if self.terminal {
            write!(stderr, "\r\x1b[K{line}")
        } else {
            writeln!(stderr, "{line}")
        };
        let _ = stderr.flush();
        *last = line.to_string();
    }

    pub(crate) fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}
