//! Command-line grammar of `dbaasctl` (clap derive). Parsing only; no I/O.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dbaas_api::EngineType;
use dbaas_api::ops::OpsType;
use k8s_openapi::jiff::Timestamp;

/// Shown under every `--help`, so scripts know what to branch on.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  error (API server refused, connection failed, bad kubeconfig, ...)
  2  usage error (unknown flag, bad value)
  3  not found
  4  timed out waiting (--wait)
  5  conflict: the object changed since it was read (cluster edit)";

/// dbaasctl: database clusters on Kubernetes, straight through the Kubernetes API.
#[derive(Parser, Debug)]
#[command(name = "dbaasctl", version, after_help = EXIT_CODES_HELP, after_long_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config or in-cluster.
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace; default: the kubeconfig context's namespace.
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,

    /// URL of the dbaas REST API server: cluster, claim, backup, ops,
    /// restore and engines commands then go through it instead of the
    /// Kubernetes API.
    #[arg(long, global = true, env = "DBAAS_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Bearer token for --server; default: the current kubeconfig user's token.
    #[arg(long, global = true, env = "DBAAS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// With an https --server: do not check its certificate (testing only).
    #[arg(long, global = true)]
    pub insecure_skip_tls_verify: bool,

    /// Let --server be an http:// URL: the bearer token then crosses the
    /// network readable (a local port-forward or tests only).
    #[arg(long, global = true)]
    pub insecure_plain_http: bool,

    /// PEM file of the CA(s) that signed an https --server's certificate,
    /// trusted instead of the system's roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub server_ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Database clusters (DatabaseCluster).
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Cluster(ClusterCommand),
    /// Database claims (DatabaseClaim).
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Claim(ClaimCommand),
    /// Backups (DatabaseBackup): take one now; list them with their phase,
    /// storage, time and location.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Backup(BackupCommand),
    /// Day-2 operations (OpsRequest): scale, resize, upgrade, restart,
    /// switch over, back up; one at a time per cluster, in creation order.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Ops(OpsCommand),
    /// Restores of a backup into an existing cluster (OpsRequests of type
    /// Restore); `ops get|cancel|delete` work on them too.
    #[command(subcommand, after_help = EXIT_CODES_HELP)]
    Restore(RestoreCommand),
    /// Database engines: operator installed, versions offered and allowed;
    /// `install` / `approve-upgrade` manage engine operators through OLM.
    #[command(after_help = EXIT_CODES_HELP)]
    Engines(EnginesArgs),
    /// Check that the operator's ServiceAccount holds every permission the
    /// operator needs; print each missing one with the command to grant it.
    #[command(after_help = EXIT_CODES_HELP)]
    Preflight(PreflightArgs),
    /// Install or upgrade dbaas-operator: server-side apply of the CRDs
    /// (waiting until Established), then the Namespace (-n, default
    /// dbaas-system), the operator and the REST API server: the manifests of
    /// the Helm chart and the OLM bundle, from the same source.
    #[command(after_help = EXIT_CODES_HELP)]
    Install(crate::install::InstallArgs),
    /// Remove what `install` applied (-n, default dbaas-system). The CRDs,
    /// and so every user's clusters, stay unless --delete-crds.
    #[command(after_help = EXIT_CODES_HELP)]
    Uninstall(crate::install::UninstallArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create a database cluster.
    #[command(after_help = EXIT_CODES_HELP)]
    Create(CreateClusterArgs),
    /// List database clusters.
    #[command(after_help = EXIT_CODES_HELP)]
    List(OutputArgs),
    /// Show one database cluster.
    #[command(after_help = EXIT_CODES_HELP)]
    Get(NamedOutputArgs),
    /// Delete a database cluster.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
    /// Print the admin credentials of a cluster (from status.credentialsSecret).
    #[command(after_help = EXIT_CODES_HELP)]
    Credentials(NamedOutputArgs),
    /// Print a connection URI (without the password).
    #[command(after_help = EXIT_CODES_HELP)]
    ConnectString(NameArg),
    /// Edit a cluster: in $EDITOR (default vi) on its YAML, written back
    /// only if nobody changed it meanwhile (exit 5 otherwise); or, for
    /// scripts, with --set-size, --storage-size, --version, --paused.
    #[command(after_help = EXIT_CODES_HELP)]
    Edit(EditClusterArgs),
}

#[derive(Args, Debug)]
pub struct EditClusterArgs {
    pub name: String,
    /// New number of instances (spec.clusterSize); no editor is opened.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=99))]
    pub set_size: Option<i32>,
    /// New volume size of each instance (spec.storage.size; it can only
    /// grow); no editor is opened.
    #[arg(long, value_name = "QUANTITY", value_parser = parse_quantity)]
    pub storage_size: Option<String>,
    /// New engine version (spec.engine.version); no editor is opened.
    #[arg(long)]
    pub version: Option<String>,
    /// Stop (true) or start (false) the cluster (spec.paused); no editor
    /// is opened.
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub paused: Option<bool>,
}

impl EditClusterArgs {
    /// Whether any non-interactive flag was given.
    pub fn has_changes(&self) -> bool {
        self.set_size.is_some()
            || self.storage_size.is_some()
            || self.version.is_some()
            || self.paused.is_some()
    }
}

#[derive(Subcommand, Debug)]
pub enum OpsCommand {
    /// Ask for an operation on a cluster. With --wait, exits 0 once it
    /// succeeded and 1 when it failed or was cancelled.
    #[command(after_help = EXIT_CODES_HELP)]
    Create(Box<CreateOpsArgs>),
    /// List operations (of one cluster with --cluster).
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListOpsArgs),
    /// Show one operation.
    #[command(after_help = EXIT_CODES_HELP)]
    Get(NamedOutputArgs),
    /// Ask an operation to stop (spec.cancel: true): a pending one is
    /// cancelled at once, a running spec change is undone where it can be.
    /// With --wait, exits 0 once it is Cancelled and 1 when it ended otherwise.
    #[command(after_help = EXIT_CODES_HELP)]
    Cancel(CancelOpsArgs),
    /// Delete an operation.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

/// The operation types `ops create` offers (the API's spelling); the others
/// (Reconfiguring, Expose, RebuildInstance, Custom) take structured
/// parameters: create those with kubectl or the REST API.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpsTypeArg {
    #[value(name = "Start")]
    Start,
    #[value(name = "Stop")]
    Stop,
    #[value(name = "Restart")]
    Restart,
    #[value(name = "Switchover")]
    Switchover,
    #[value(name = "HorizontalScaling")]
    HorizontalScaling,
    #[value(name = "VerticalScaling")]
    VerticalScaling,
    #[value(name = "VolumeExpansion")]
    VolumeExpansion,
    #[value(name = "Upgrade")]
    Upgrade,
    #[value(name = "Backup")]
    Backup,
    #[value(name = "Restore")]
    Restore,
}

impl From<OpsTypeArg> for OpsType {
    fn from(arg: OpsTypeArg) -> Self {
        match arg {
            OpsTypeArg::Start => OpsType::Start,
            OpsTypeArg::Stop => OpsType::Stop,
            OpsTypeArg::Restart => OpsType::Restart,
            OpsTypeArg::Switchover => OpsType::Switchover,
            OpsTypeArg::HorizontalScaling => OpsType::HorizontalScaling,
            OpsTypeArg::VerticalScaling => OpsType::VerticalScaling,
            OpsTypeArg::VolumeExpansion => OpsType::VolumeExpansion,
            OpsTypeArg::Upgrade => OpsType::Upgrade,
            OpsTypeArg::Backup => OpsType::Backup,
            OpsTypeArg::Restore => OpsType::Restore,
        }
    }
}

#[derive(Args, Debug)]
pub struct CreateOpsArgs {
    /// OpsRequest name: a DNS label of at most 63 characters.
    #[arg(value_parser = parse_object_name)]
    pub name: String,
    /// The cluster to operate on.
    #[arg(long)]
    pub cluster: String,
    /// The operation.
    #[arg(long = "type", value_enum, ignore_case = true)]
    pub type_: OpsTypeArg,
    /// HorizontalScaling: the new number of instances.
    #[arg(long, help_heading = "Parameters", value_parser = clap::value_parser!(i32).range(1..=99))]
    pub replicas: Option<i32>,
    /// VerticalScaling: CPU of each instance (requests and limits), e.g. 2 or 500m.
    #[arg(long, help_heading = "Parameters", value_parser = parse_quantity)]
    pub cpu: Option<String>,
    /// VerticalScaling: memory of each instance (requests and limits), e.g. 4Gi.
    #[arg(long, help_heading = "Parameters", value_parser = parse_quantity)]
    pub memory: Option<String>,
    /// VolumeExpansion: the new volume size of each instance, e.g. 50Gi.
    #[arg(long, help_heading = "Parameters", value_parser = parse_quantity)]
    pub storage_size: Option<String>,
    /// Upgrade: the engine version to move to.
    #[arg(long, help_heading = "Parameters")]
    pub version: Option<String>,
    /// Switchover: the instance to promote; the engine picks one when omitted.
    #[arg(long, help_heading = "Parameters")]
    pub target: Option<String>,
    /// Backup: name of the DatabaseBackup to create (default: the
    /// OpsRequest's name). Restore: the DatabaseBackup to restore (required).
    #[arg(long, help_heading = "Parameters")]
    pub backup_name: Option<String>,
    /// Backup: the BackupStorage to write to; the cluster's default when omitted.
    #[arg(long, help_heading = "Parameters")]
    pub storage: Option<String>,
    #[command(flatten)]
    pub pitr: PitrArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

/// Point-in-time recovery target of a restore.
#[derive(Args, Debug, Default)]
#[group(multiple = false)]
pub struct PitrArgs {
    /// Restore: replay every archived transaction after the backup.
    #[arg(long, help_heading = "Parameters")]
    pub pitr_latest: bool,
    /// Restore: stop at this point in time (RFC 3339, e.g. 2026-11-24T02:00:00Z).
    #[arg(long, help_heading = "Parameters", value_name = "RFC3339", value_parser = parse_rfc3339)]
    pub pitr_date: Option<Timestamp>,
}

impl PitrArgs {
    pub fn is_set(&self) -> bool {
        self.pitr_latest || self.pitr_date.is_some()
    }
}

#[derive(Args, Debug)]
pub struct ListOpsArgs {
    /// Only the operations of this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct CancelOpsArgs {
    pub name: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Subcommand, Debug)]
pub enum RestoreCommand {
    /// Restore a backup into an existing cluster (an OpsRequest of type
    /// Restore). With --wait, exits 0 once it succeeded and 1 when it failed
    /// or was cancelled.
    #[command(after_help = EXIT_CODES_HELP)]
    Create(CreateRestoreArgs),
    /// List restores (of one cluster with --cluster).
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListOpsArgs),
}

#[derive(Args, Debug)]
pub struct CreateRestoreArgs {
    /// OpsRequest name: a DNS label of at most 63 characters.
    #[arg(value_parser = parse_object_name)]
    pub name: String,
    /// The cluster to restore into.
    #[arg(long)]
    pub cluster: String,
    /// The DatabaseBackup to restore.
    #[arg(long)]
    pub backup: String,
    #[command(flatten)]
    pub pitr: PitrArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Subcommand, Debug)]
pub enum ClaimCommand {
    /// List database claims.
    #[command(after_help = EXIT_CODES_HELP)]
    List(OutputArgs),
    /// Show one database claim.
    #[command(after_help = EXIT_CODES_HELP)]
    Get(NamedOutputArgs),
    /// Delete a database claim.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a backup of a cluster now. With --wait, exits 0 once it
    /// succeeded and 1 when it failed.
    #[command(after_help = EXIT_CODES_HELP)]
    Create(CreateBackupArgs),
    /// List backups (of one cluster with --cluster).
    #[command(after_help = EXIT_CODES_HELP)]
    List(ListBackupsArgs),
    /// Show one backup.
    #[command(after_help = EXIT_CODES_HELP)]
    Get(NamedOutputArgs),
    /// Delete a backup (what happens to the data in the storage is the
    /// engine operator's rule).
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

#[derive(Args, Debug)]
pub struct CreateBackupArgs {
    /// Backup name: a DNS label of at most 63 characters.
    #[arg(value_parser = parse_backup_name)]
    pub name: String,
    /// The cluster to back up.
    #[arg(long)]
    pub cluster: String,
    /// BackupStorage to write to; the cluster's default when omitted.
    #[arg(long)]
    pub storage: Option<String>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct ListBackupsArgs {
    /// Only the backups of this cluster.
    #[arg(long)]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_backup_name(name: &str) -> Result<String, String> {
    dns_label(name, 63)
}

fn parse_object_name(name: &str) -> Result<String, String> {
    dns_label(name, 63)
}

/// RFC 3339 with an offset, e.g. `2026-11-24T02:00:00Z`.
fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-11-24T02:00:00Z: {e}"))
}

/// A Kubernetes quantity (`500m`, `2`, `1.5Gi`, `1e3`): checked here so a
/// typo is a usage error, not an API server message about int-or-string.
pub fn parse_quantity(text: &str) -> Result<String, String> {
    const SUFFIXES: [&str; 16] = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let bad = || format!("{text:?} is not a quantity such as 500m, 2, 4Gi or 1.5Gi");
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let exponent_ok = |rest: &str| {
        let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
    };
    let suffix_ok =
        SUFFIXES.contains(&suffix) || suffix.strip_prefix(['e', 'E']).is_some_and(exponent_ok);
    if number_ok && suffix_ok {
        Ok(text.to_owned())
    } else {
        Err(bad())
    }
}

#[derive(Args, Debug)]
pub struct CreateClusterArgs {
    /// Cluster name: a DNS label of at most 50 characters.
    #[arg(value_parser = parse_cluster_name)]
    pub name: String,
    /// Database engine.
    #[arg(long, value_parser = engine_parser())]
    pub engine: EngineType,
    /// Engine version; the DatabaseEngine's default when omitted.
    #[arg(long)]
    pub version: Option<String>,
    /// How the instances replicate, where the engine offers a choice
    /// (mariadb: replication, the default, or galera); the API server
    /// refuses it for other engines.
    #[arg(long)]
    pub topology: Option<String>,
    /// Number of instances.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=99))]
    pub size: i32,
    /// Storage of each instance, e.g. 10Gi.
    #[arg(long, default_value = "10Gi")]
    pub storage: String,
    /// DatabaseClusterTemplate to create the cluster from (same namespace).
    #[arg(long)]
    pub template: Option<String>,
    /// Start from this DatabaseBackup's data (spec.dataSource.backupName).
    #[arg(long, value_name = "BACKUP")]
    pub from_backup: Option<String>,
    /// With --from-backup: a point in time to recover to.
    #[command(flatten)]
    pub pitr: PitrArgs,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Wait until the operation finished, printing progress on stderr.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits: 90s, 10m, 1h or plain seconds.
    #[arg(long, default_value = "10m", value_parser = parse_duration, requires = "wait")]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub name: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct NameArg {
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NamedOutputArgs {
    pub name: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct PreflightArgs {
    /// The operator's ServiceAccount.
    #[arg(long, value_name = "NAMESPACE:NAME", default_value = "dbaas-system:dbaas-operator", value_parser = parse_service_account)]
    pub service_account: (String, String),
    /// Check inside these namespaces (an operator run with --namespace
    /// NS[,NS...], comma-separated or repeated); default: cluster-wide.
    #[arg(long, value_name = "NAMESPACE", value_delimiter = ',', value_parser = parse_namespace)]
    pub watch_namespace: Vec<String>,
}

/// A namespace name, refused before any request when malformed.
pub(crate) fn parse_namespace(text: &str) -> Result<String, String> {
    if dbaas_api::common::is_dns_label(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
        ))
    }
}

fn parse_service_account(text: &str) -> Result<(String, String), String> {
    match text.split_once(':') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(format!("expected NAMESPACE:NAME, got {text:?}")),
    }
}

/// `dbaasctl engines` lists; its subcommands manage engine operators.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EnginesArgs {
    #[command(subcommand)]
    pub command: Option<crate::engine_operator::EngineOperatorCommand>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct OutputArgs {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// Parses an engine name, offering every engine the API knows (so a new
/// engine needs no change here).
pub fn engine_parser() -> impl clap::builder::TypedValueParser<Value = EngineType> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(EngineType::ALL.map(EngineType::as_str)).try_map(
        |name| {
            name.parse::<EngineType>()
                .map_err(|err| clap::Error::raw(clap::error::ErrorKind::InvalidValue, err))
        },
    )
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

impl From<CompletionShell> for clap_complete::Shell {
    fn from(shell: CompletionShell) -> Self {
        match shell {
            CompletionShell::Bash => clap_complete::Shell::Bash,
            CompletionShell::Zsh => clap_complete::Shell::Zsh,
            CompletionShell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// The CRD allows at most 50 characters (engine operators derive longer
/// names from it); checking here turns a server-side 422 into a usage error.
pub fn parse_cluster_name(name: &str) -> Result<String, String> {
    dns_label(name, 50)
}

/// `name` when it is a DNS label of at most `max` characters.
fn dns_label(name: &str, max: usize) -> Result<String, String> {
    let bytes = name.as_bytes();
    let valid_chars = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let alnum_ends = bytes
        .first()
        .zip(bytes.last())
        .is_some_and(|(first, last)| first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric());
    if name.len() > max {
        return Err(format!("{name:?} is longer than {max} characters"));
    }
    if !valid_chars || !alnum_ends {
        return Err(format!(
            "{name:?} is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)"
        ));
    }
    Ok(name.to_string())
}

/// `90s`, `10m`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_seconds) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 3600),
        _ => (text, 1),
    };
    let count: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
    count
        .checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("-5s").is_err());
    }

    #[test]
    fn cluster_names() {
        assert!(parse_cluster_name("pg-1").is_ok());
        assert!(parse_cluster_name("a").is_ok());
        assert!(parse_cluster_name("Pg").is_err());
        assert!(parse_cluster_name("-pg").is_err());
        assert!(parse_cluster_name("pg-").is_err());
        assert!(parse_cluster_name("pg_1").is_err());
        assert!(parse_cluster_name("").is_err());
        assert!(parse_cluster_name(&"a".repeat(50)).is_ok());
        assert!(parse_cluster_name(&"a".repeat(51)).is_err());
    }

    #[test]
    fn create_parses_all_flags() {
        let cli = Cli::try_parse_from([
            "dbaasctl",
            "-n",
            "team",
            "cluster",
            "create",
            "pg",
            "--engine",
            "postgresql",
            "--version",
            "16.4",
            "--size",
            "3",
            "--storage",
            "5Gi",
            "--template",
            "small",
            "--wait",
            "--timeout",
            "2m",
        ])
        .unwrap();
        assert_eq!(cli.namespace.as_deref(), Some("team"));
        let Command::Cluster(ClusterCommand::Create(args)) = cli.command else {
            panic!("parsed as {:?}", cli.command);
        };
        assert_eq!(args.engine, EngineType::Postgresql);
        assert_eq!(args.size, 3);
        assert_eq!(args.wait.timeout, Duration::from_secs(120));
        assert!(args.wait.wait);
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for argv in [
            vec!["dbaasctl", "cluster", "create", "pg"],
            vec!["dbaasctl", "cluster", "create", "pg", "--engine", "oracle"],
            vec![
                "dbaasctl", "cluster", "create", "pg", "--engine", "mysql", "--size", "0",
            ],
            vec!["dbaasctl", "cluster", "create", "PG", "--engine", "mysql"],
            vec![
                "dbaasctl",
                "cluster",
                "create",
                "pg",
                "--engine",
                "mysql",
                "--timeout",
                "1m",
            ],
            vec!["dbaasctl", "cluster", "list", "-o", "xml"],
        ] {
            let err = Cli::try_parse_from(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
        }
    }

    #[test]
    fn quantities() {
        for good in [
            "1", "500m", "2Gi", "1.5Gi", "+3", "1e3", "1E-2", "10k", ".5",
        ] {
            assert_eq!(parse_quantity(good), Ok(good.to_owned()));
        }
        for bad in ["", "Gi", "10GB", "1..5", "-1", "1e", "ten", "5 Gi", "."] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("4  timed out waiting"), "{help}");
    }
}
