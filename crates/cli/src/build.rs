//! From arguments to objects, and from objects to credentials: pure logic
//! the commands use, kept apart so it is unit tested without an API server.

use std::collections::BTreeMap;

use dbaas_api::backup::{BackupPhase, DatabaseBackup, DatabaseBackupSpec};
use dbaas_api::cluster::{ClusterPhase, PitrTarget, PitrType};
use dbaas_api::common::{ANNOTATION_ORIGIN, ANNOTATION_TEMPLATE_KIND, ANNOTATION_TEMPLATE_NAME};
use dbaas_api::ops::{OpsPhase, OpsRequest, OpsRequestSpec, OpsType};
use dbaas_api::{DatabaseCluster, DatabaseClusterSpec, EngineType};
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{
    CreateBackupArgs, CreateClusterArgs, CreateOpsArgs, CreateRestoreArgs, EditClusterArgs,
    OpsTypeArg, PitrArgs,
};
use crate::error::CliError;

/// Origin recorded on objects this tool creates.
pub const ORIGIN_CLI: &str = "cli";
/// Template kind the `--template` flag refers to.
pub const TEMPLATE_KIND: &str = "DatabaseClusterTemplate";

/// The DatabaseCluster `cluster create` sends.
pub fn cluster_from_args(args: &CreateClusterArgs) -> Result<DatabaseCluster, CliError> {
    let engine = args.engine;
    let mut engine_spec = json!({ "type": engine });
    if let Some(version) = &args.version {
        engine_spec["version"] = json!(version);
    }
    if let Some(topology) = &args.topology {
        engine_spec["topology"] = json!(topology);
    }
    // Through JSON so fields added to the spec later keep their defaults.
    let spec: DatabaseClusterSpec = serde_json::from_value(json!({
        "engine": engine_spec,
        "clusterSize": args.size,
        "storage": { "size": args.storage },
    }))
    .map_err(|e| CliError::Output(format!("building the DatabaseCluster: {e}")))?;
    let mut cluster = DatabaseCluster::new(&args.name, spec);
    match (&args.from_backup, pitr_target(&args.pitr)) {
        (Some(backup), pitr) => {
            cluster.spec.data_source = Some(dbaas_api::cluster::DataSource {
                backup_name: Some(backup.clone()),
                backup_source: None,
                pitr,
            });
        }
        (None, Some(_)) => {
            return Err(CliError::Usage(
                "--pitr-latest and --pitr-date need --from-backup".to_owned(),
            ));
        }
        (None, None) => {}
    }
    let mut annotations = BTreeMap::from([(ANNOTATION_ORIGIN.to_string(), ORIGIN_CLI.to_string())]);
    if let Some(template) = &args.template {
        annotations.insert(
            ANNOTATION_TEMPLATE_KIND.to_string(),
            TEMPLATE_KIND.to_string(),
        );
        annotations.insert(ANNOTATION_TEMPLATE_NAME.to_string(), template.clone());
    }
    cluster.metadata.annotations = Some(annotations);
    Ok(cluster)
}

/// Whether `--wait` after create is done.
pub fn is_ready(cluster: &DatabaseCluster) -> bool {
    cluster
        .status
        .as_ref()
        .is_some_and(|s| s.phase == Some(ClusterPhase::Ready))
}

/// The one-line progress report of `--wait`.
pub fn progress_line(cluster: &DatabaseCluster) -> String {
    let status = cluster.status.as_ref();
    let phase = status
        .and_then(|s| s.phase)
        .map_or_else(|| "Pending".to_string(), |p| p.to_string());
    let ready = status.map_or(0, |s| s.ready);
    let mut line = format!(
        "{}: {phase}, {ready}/{} ready",
        cluster.metadata.name.as_deref().unwrap_or_default(),
        cluster.spec.cluster_size
    );
    if let Some(message) = status.and_then(|s| s.message.as_deref()) {
        line.push_str(" - ");
        line.push_str(message);
    }
    line
}

/// The DatabaseBackup `backup create` makes.
pub fn backup_from_args(args: &CreateBackupArgs) -> DatabaseBackup {
    let mut backup = DatabaseBackup::new(
        &args.name,
        DatabaseBackupSpec {
            cluster_name: args.cluster.clone(),
            storage_name: args.storage.clone(),
            schedule_name: None,
        },
    );
    backup.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_ORIGIN.to_owned(),
        ORIGIN_CLI.to_owned(),
    )]));
    backup
}

/// The one-line progress report of `backup create --wait`.
pub fn backup_progress_line(backup: &DatabaseBackup) -> String {
    let status = backup.status.as_ref();
    let phase = status
        .and_then(|s| s.phase)
        .map_or("Pending", backup_phase_name);
    let mut line = format!(
        "{}: {phase}",
        backup.metadata.name.as_deref().unwrap_or_default()
    );
    if let Some(message) = status.and_then(|s| s.message.as_deref()) {
        line.push_str(" - ");
        line.push_str(message);
    }
    line
}

/// A backup phase as the API spells it.
pub fn backup_phase_name(phase: BackupPhase) -> &'static str {
    match phase {
        BackupPhase::Pending => "Pending",
        BackupPhase::Running => "Running",
        BackupPhase::Succeeded => "Succeeded",
        BackupPhase::Failed => "Failed",
    }
}

/// The point-in-time target the `--pitr-*` flags name, if any.
pub fn pitr_target(args: &PitrArgs) -> Option<PitrTarget> {
    if let Some(date) = args.pitr_date {
        Some(PitrTarget {
            type_: PitrType::Date,
            date: Some(Time(date)),
        })
    } else if args.pitr_latest {
        Some(PitrTarget {
            type_: PitrType::Latest,
            date: None,
        })
    } else {
        None
    }
}

/// Which operation types each parameter flag of `ops create` belongs to.
fn ops_parameters(args: &CreateOpsArgs) -> [(&'static str, bool, &'static [OpsTypeArg]); 10] {
    use OpsTypeArg as T;
    [
        (
            "--replicas",
            args.replicas.is_some(),
            &[T::HorizontalScaling],
        ),
        ("--cpu", args.cpu.is_some(), &[T::VerticalScaling]),
        ("--memory", args.memory.is_some(), &[T::VerticalScaling]),
        (
            "--storage-size",
            args.storage_size.is_some(),
            &[T::VolumeExpansion],
        ),
        ("--version", args.version.is_some(), &[T::Upgrade]),
        ("--target", args.target.is_some(), &[T::Switchover]),
        (
            "--backup-name",
            args.backup_name.is_some(),
            &[T::Backup, T::Restore],
        ),
        ("--storage", args.storage.is_some(), &[T::Backup]),
        ("--pitr-latest", args.pitr.pitr_latest, &[T::Restore]),
        ("--pitr-date", args.pitr.pitr_date.is_some(), &[T::Restore]),
    ]
}

/// The OpsRequest `ops create` sends; a usage error when a parameter flag
/// does not belong to the type or a required one is missing.
pub fn ops_request_from_args(args: &CreateOpsArgs) -> Result<OpsRequest, CliError> {
    let type_: OpsType = args.type_.into();
    let parameters = ops_parameters(args);
    let takes: Vec<&str> = parameters
        .iter()
        .filter(|(_, _, types)| types.contains(&args.type_))
        .map(|(flag, _, _)| *flag)
        .collect();
    let takes = if takes.is_empty() {
        "it takes no parameters".to_owned()
    } else {
        format!("it takes {}", takes.join(", "))
    };
    for (flag, given, types) in parameters {
        if given && !types.contains(&args.type_) {
            return Err(CliError::Usage(format!(
                "{flag} does not apply to --type {type_} ({takes})"
            )));
        }
    }
    let required = |flag: &str, given: bool| {
        if given {
            Ok(())
        } else {
            Err(CliError::Usage(format!("--type {type_} needs {flag}")))
        }
    };
    let mut spec = json!({ "clusterRef": { "name": args.cluster }, "type": type_ });
    match args.type_ {
        OpsTypeArg::Start | OpsTypeArg::Stop | OpsTypeArg::Restart => {}
        OpsTypeArg::Switchover => {
            spec["switchover"] = match &args.target {
                Some(instance) => json!({ "instanceName": instance }),
                None => json!({}),
            };
        }
        OpsTypeArg::HorizontalScaling => {
            required("--replicas", args.replicas.is_some())?;
            spec["horizontalScaling"] = json!({ "replicas": args.replicas });
        }
        OpsTypeArg::VerticalScaling => {
            required(
                "--cpu or --memory",
                args.cpu.is_some() || args.memory.is_some(),
            )?;
            // The operation replaces spec.resources: requests and limits
            // alike, so the instances get exactly what was asked for.
            let mut amounts = serde_json::Map::new();
            if let Some(cpu) = &args.cpu {
                amounts.insert("cpu".to_owned(), json!(cpu));
            }
            if let Some(memory) = &args.memory {
                amounts.insert("memory".to_owned(), json!(memory));
            }
            spec["verticalScaling"] =
                json!({ "resources": { "requests": amounts, "limits": amounts } });
        }
        OpsTypeArg::VolumeExpansion => {
            required("--storage-size", args.storage_size.is_some())?;
            spec["volumeExpansion"] = json!({ "storage": args.storage_size });
        }
        OpsTypeArg::Upgrade => {
            required("--version", args.version.is_some())?;
            spec["upgrade"] = json!({ "version": args.version });
        }
        OpsTypeArg::Backup => {
            let mut backup = serde_json::Map::new();
            if let Some(name) = &args.backup_name {
                backup.insert("backupName".to_owned(), json!(name));
            }
            if let Some(storage) = &args.storage {
                backup.insert("storageName".to_owned(), json!(storage));
            }
            spec["backup"] = Value::Object(backup);
        }
        OpsTypeArg::Restore => {
            let Some(backup) = &args.backup_name else {
                return Err(CliError::Usage(format!(
                    "--type {type_} needs --backup-name (or use `dbaasctl restore create`)"
                )));
            };
            spec["restore"] = restore_parameters(backup, &args.pitr)?;
        }
    }
    ops_request(&args.name, spec)
}

/// The OpsRequest of type Restore `restore create` sends.
pub fn restore_from_args(args: &CreateRestoreArgs) -> Result<OpsRequest, CliError> {
    let spec = json!({
        "clusterRef": { "name": args.cluster },
        "type": OpsType::Restore,
        "restore": restore_parameters(&args.backup, &args.pitr)?,
    });
    ops_request(&args.name, spec)
}

fn restore_parameters(backup: &str, pitr: &PitrArgs) -> Result<Value, CliError> {
    let restore = dbaas_api::ops::RestoreOperation {
        backup_name: backup.to_owned(),
        pitr: pitr_target(pitr),
    };
    serde_json::to_value(restore)
        .map_err(|e| CliError::Output(format!("building the restore parameters: {e}")))
}

/// Through JSON, so fields added to the spec later keep their defaults.
fn ops_request(name: &str, spec: Value) -> Result<OpsRequest, CliError> {
    let spec: OpsRequestSpec = serde_json::from_value(spec)
        .map_err(|e| CliError::Output(format!("building the OpsRequest: {e}")))?;
    let mut ops = OpsRequest::new(name, spec);
    ops.metadata.annotations = Some(BTreeMap::from([(
        ANNOTATION_ORIGIN.to_owned(),
        ORIGIN_CLI.to_owned(),
    )]));
    Ok(ops)
}

/// The phase of an operation; one without a status yet is Pending.
pub fn ops_phase(ops: &OpsRequest) -> OpsPhase {
    ops.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(OpsPhase::Pending)
}

/// The one-line progress report of `ops create --wait`:
/// `scale-up: Running 1/2 - waiting for 3/3 ready`.
pub fn ops_progress_line(ops: &OpsRequest) -> String {
    let status = ops.status.as_ref();
    let mut line = format!(
        "{}: {}",
        ops.metadata.name.as_deref().unwrap_or_default(),
        ops_phase(ops)
    );
    if let Some(progress) = status.and_then(|s| s.progress.as_deref()) {
        line.push(' ');
        line.push_str(progress);
    }
    if let Some(position) = status.and_then(|s| s.queue_position) {
        line.push_str(&format!(" (queue position {position})"));
    }
    if let Some(message) = status.and_then(|s| s.message.as_deref()) {
        line.push_str(" - ");
        line.push_str(message);
    }
    line
}

/// The JSON merge patch of `cluster edit` with flags.
pub fn cluster_edit_patch(args: &EditClusterArgs) -> Value {
    let mut spec = serde_json::Map::new();
    if let Some(size) = args.set_size {
        spec.insert("clusterSize".to_owned(), json!(size));
    }
    if let Some(size) = &args.storage_size {
        spec.insert("storage".to_owned(), json!({ "size": size }));
    }
    if let Some(version) = &args.version {
        spec.insert("engine".to_owned(), json!({ "version": version }));
    }
    if let Some(paused) = args.paused {
        spec.insert("paused".to_owned(), json!(paused));
    }
    json!({ "spec": spec })
}

/// Admin credentials of a cluster, as `cluster credentials` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub host: String,
    pub port: i32,
}

/// Default port of each engine, for a status that reports none.
pub fn default_port(engine: EngineType) -> i32 {
    i32::from(engine.connection().default_port)
}

/// Reads the admin user out of the engine's credentials Secret.
pub fn credentials_from_secret(
    engine: EngineType,
    secret_name: &str,
    data: &BTreeMap<String, ByteString>,
    host: &str,
    port: i32,
) -> Result<Credentials, CliError> {
    let (username, password) = engine
        .connection()
        .admin_login
        .read(|key| secret_value(data, key))
        .map_err(|key| CliError::MissingSecretKey {
            secret: secret_name.to_string(),
            key: key.to_string(),
        })?;
    Ok(Credentials {
        username,
        password,
        host: host.to_string(),
        port,
    })
}

fn secret_value(data: &BTreeMap<String, ByteString>, key: &str) -> Option<String> {
    data.get(key)
        .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
}

/// A connection URI without the password, so it is safe to paste or log.
pub fn connect_string(engine: EngineType, username: &str, host: &str, port: i32) -> String {
    engine.connection().url(username, host, port)
}

/// The admin user name when the Secret cannot be read.
pub fn default_admin_user(engine: EngineType) -> &'static str {
    engine.connection().default_admin_user
}

/// The admin user name from the Secret, without touching the password.
pub fn admin_user_from_secret(engine: EngineType, data: &BTreeMap<String, ByteString>) -> String {
    let connection = engine.connection();
    connection
        .admin_login
        .user(|key| secret_value(data, key))
        .unwrap_or_else(|_| connection.default_admin_user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, ClusterCommand, Command};
    use clap::Parser;
    use pretty_assertions::assert_eq;

    #[test]
    fn backup_create_builds_a_database_backup_and_reports_its_phase() {
        let argv = [
            "dbaasctl",
            "backup",
            "create",
            "b1",
            "--cluster",
            "orders",
            "--storage",
            "minio",
        ];
        let args = match Cli::try_parse_from(argv).unwrap().command {
            Command::Backup(crate::cli::BackupCommand::Create(args)) => args,
            other => panic!("parsed as {other:?}"),
        };
        let mut backup = backup_from_args(&args);
        assert_eq!(backup.metadata.name.as_deref(), Some("b1"));
        assert_eq!(backup.spec.cluster_name, "orders");
        assert_eq!(backup.spec.storage_name.as_deref(), Some("minio"));
        assert_eq!(backup_progress_line(&backup), "b1: Pending");
        backup.status = Some(
            serde_json::from_value(json!({"phase": "Failed", "message": "no bucket"})).unwrap(),
        );
        assert_eq!(backup_progress_line(&backup), "b1: Failed - no bucket");
        // Names are DNS labels.
        for bad in ["B1", "-b", "b_1", &"b".repeat(64)] {
            let argv = ["dbaasctl", "backup", "create", bad, "--cluster", "orders"];
            assert!(Cli::try_parse_from(argv).is_err(), "{bad} was accepted");
        }
    }

    fn ops_args(argv: &[&str]) -> Result<CreateOpsArgs, clap::Error> {
        let argv = ["dbaasctl", "ops", "create", "op", "--cluster", "orders"]
            .iter()
            .chain(argv);
        Cli::try_parse_from(argv).map(|cli| match cli.command {
            Command::Ops(crate::cli::OpsCommand::Create(args)) => *args,
            other => panic!("parsed as {other:?}"),
        })
    }

    fn ops_spec(argv: &[&str]) -> Result<serde_json::Value, CliError> {
        let ops = ops_request_from_args(&ops_args(argv).unwrap())?;
        assert_eq!(
            ops.metadata.annotations.as_ref().unwrap()["dbaas.io/origin"],
            "cli"
        );
        Ok(serde_json::to_value(&ops.spec).unwrap())
    }

    #[test]
    fn ops_create_builds_each_type_from_its_flags() {
        let cases: [(&[&str], serde_json::Value); 9] = [
            (
                &["--type", "HorizontalScaling", "--replicas", "3"],
                json!({"type": "HorizontalScaling", "horizontalScaling": {"replicas": 3}}),
            ),
            (
                &[
                    "--type",
                    "VerticalScaling",
                    "--cpu",
                    "500m",
                    "--memory",
                    "2Gi",
                ],
                json!({"type": "VerticalScaling", "verticalScaling": {"resources": {
                    "requests": {"cpu": "500m", "memory": "2Gi"}, "limits": {"cpu": "500m", "memory": "2Gi"}}}}),
            ),
            (
                &["--type", "volumeexpansion", "--storage-size", "20Gi"],
                json!({"type": "VolumeExpansion", "volumeExpansion": {"storage": "20Gi"}}),
            ),
            (
                &["--type", "Upgrade", "--version", "17.6"],
                json!({"type": "Upgrade", "upgrade": {"version": "17.6"}}),
            ),
            (
                &["--type", "Switchover", "--target", "orders-2"],
                json!({"type": "Switchover", "switchover": {"instanceName": "orders-2"}}),
            ),
            (
                &["--type", "Switchover"],
                json!({"type": "Switchover", "switchover": {}}),
            ),
            (
                &[
                    "--type",
                    "Backup",
                    "--backup-name",
                    "b1",
                    "--storage",
                    "minio",
                ],
                json!({"type": "Backup", "backup": {"backupName": "b1", "storageName": "minio"}}),
            ),
            (&["--type", "Restart"], json!({"type": "Restart"})),
            (
                &[
                    "--type",
                    "Restore",
                    "--backup-name",
                    "b1",
                    "--pitr-date",
                    "2026-11-24T02:00:00Z",
                ],
                json!({"type": "Restore", "restore": {"backupName": "b1",
                       "pitr": {"type": "date", "date": "2026-11-24T02:00:00Z"}}}),
            ),
        ];
        for (argv, mut expected) in cases {
            expected["clusterRef"] = json!({"name": "orders"});
            assert_eq!(ops_spec(argv).unwrap(), expected, "{argv:?}");
        }
    }

    #[test]
    fn ops_create_refuses_flags_of_another_type_and_missing_ones() {
        for (argv, message) in [
            (
                &["--type", "Upgrade", "--version", "17", "--replicas", "3"][..],
                "--replicas does not apply to --type Upgrade (it takes --version)",
            ),
            (
                &["--type", "Restart", "--cpu", "1"],
                "--cpu does not apply to --type Restart (it takes no parameters)",
            ),
            (
                &["--type", "Backup", "--pitr-latest"],
                "--pitr-latest does not apply to --type Backup (it takes --backup-name, --storage)",
            ),
            (
                &["--type", "HorizontalScaling"],
                "--type HorizontalScaling needs --replicas",
            ),
            (
                &["--type", "VerticalScaling"],
                "--type VerticalScaling needs --cpu or --memory",
            ),
            (
                &["--type", "VolumeExpansion"],
                "--type VolumeExpansion needs --storage-size",
            ),
            (&["--type", "Upgrade"], "--type Upgrade needs --version"),
            (
                &["--type", "Restore"],
                "--type Restore needs --backup-name (or use `dbaasctl restore create`)",
            ),
        ] {
            let err = ops_spec(argv).unwrap_err();
            assert_eq!(err.to_string(), message, "{argv:?}");
            assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
        }
        // What clap refuses itself (exit code 2 as well).
        for argv in [
            &["--type", "Reconfiguring"][..],
            &["--type", "HorizontalScaling", "--replicas", "0"],
            &["--type", "VerticalScaling", "--cpu", "lots"],
            &["--type", "VolumeExpansion", "--storage-size", "10GB"],
            &[
                "--type",
                "Restore",
                "--backup-name",
                "b",
                "--pitr-latest",
                "--pitr-date",
                "2026-11-24T02:00:00Z",
            ],
            &[
                "--type",
                "Restore",
                "--backup-name",
                "b",
                "--pitr-date",
                "yesterday",
            ],
        ] {
            let err = ops_args(argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{argv:?}: {err}");
        }
    }

    #[test]
    fn restore_and_cluster_from_backup() {
        let args = match Cli::try_parse_from([
            "dbaasctl",
            "restore",
            "create",
            "r1",
            "--cluster",
            "orders",
            "--backup",
            "nightly",
            "--pitr-latest",
        ])
        .unwrap()
        .command
        {
            Command::Restore(crate::cli::RestoreCommand::Create(args)) => args,
            other => panic!("parsed as {other:?}"),
        };
        let restore = restore_from_args(&args).unwrap();
        assert_eq!(
            serde_json::to_value(&restore.spec).unwrap(),
            json!({"clusterRef": {"name": "orders"}, "type": "Restore",
                   "restore": {"backupName": "nightly", "pitr": {"type": "latest"}}})
        );
        let cluster = cluster_from_args(&create_args(&[
            "copy",
            "--engine",
            "postgresql",
            "--from-backup",
            "nightly",
            "--pitr-date",
            "2026-11-24T02:00:00+01:00",
        ]))
        .unwrap();
        assert_eq!(
            serde_json::to_value(&cluster.spec.data_source).unwrap(),
            json!({"backupName": "nightly", "pitr": {"type": "date", "date": "2026-11-24T01:00:00Z"}})
        );
        let err = cluster_from_args(&create_args(&[
            "copy",
            "--engine",
            "postgresql",
            "--pitr-latest",
        ]))
        .unwrap_err();
        assert_eq!(err.exit_code(), crate::error::EXIT_USAGE);
    }

    #[test]
    fn ops_progress_lines() {
        let mut ops = ops_request_from_args(
            &ops_args(&["--type", "HorizontalScaling", "--replicas", "3"]).unwrap(),
        )
        .unwrap();
        assert_eq!(ops_progress_line(&ops), "op: Pending");
        ops.status =
            Some(serde_json::from_value(json!({"phase": "Pending", "queuePosition": 2})).unwrap());
        assert_eq!(ops_progress_line(&ops), "op: Pending (queue position 2)");
        ops.status = Some(
            serde_json::from_value(
                json!({"phase": "Running", "progress": "1/2", "message": "waiting for 3/3 ready"}),
            )
            .unwrap(),
        );
        assert_eq!(
            ops_progress_line(&ops),
            "op: Running 1/2 - waiting for 3/3 ready"
        );
    }

    #[test]
    fn cluster_edit_flags_make_a_merge_patch() {
        let args = match Cli::try_parse_from([
            "dbaasctl",
            "cluster",
            "edit",
            "pg",
            "--set-size",
            "3",
            "--storage-size",
            "20Gi",
            "--version",
            "17.6",
            "--paused",
            "false",
        ])
        .unwrap()
        .command
        {
            Command::Cluster(ClusterCommand::Edit(args)) => args,
            other => panic!("parsed as {other:?}"),
        };
        assert!(args.has_changes());
        assert_eq!(
            cluster_edit_patch(&args),
            json!({"spec": {"clusterSize": 3, "storage": {"size": "20Gi"},
                            "engine": {"version": "17.6"}, "paused": false}})
        );
        for bad in [
            &["--paused", "yes"][..],
            &["--paused"],
            &["--set-size", "0"],
            &["--storage-size", "big"],
        ] {
            let argv = ["dbaasctl", "cluster", "edit", "pg"].iter().chain(bad);
            assert!(Cli::try_parse_from(argv).is_err(), "{bad:?} was accepted");
        }
    }

    fn create_args(argv: &[&str]) -> CreateClusterArgs {
        let argv = ["dbaasctl", "cluster", "create"].iter().chain(argv);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Cluster(ClusterCommand::Create(args)) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn minimal_create_builds_a_valid_cluster() {
        let cluster = cluster_from_args(&create_args(&["pg", "--engine", "postgresql"])).unwrap();
        assert_eq!(
            serde_json::to_value(&cluster).unwrap(),
            json!({
                "apiVersion": "dbaas.io/v1",
                "kind": "DatabaseCluster",
                "metadata": { "name": "pg", "annotations": { "dbaas.io/origin": "cli" } },
                "spec": {
                    "engine": { "type": "postgresql" },
                    "clusterSize": 1,
                    "storage": { "size": "10Gi" }
                }
            })
        );
    }

    #[test]
    fn create_takes_a_topology_and_names_the_known_ones_for_a_bad_one() {
        let galera = cluster_from_args(&create_args(&[
            "shop",
            "--engine",
            "mariadb",
            "--topology",
            "galera",
            "--size",
            "3",
        ]))
        .unwrap();
        assert_eq!(
            galera.spec.engine.topology,
            Some(dbaas_api::cluster::Topology::Galera)
        );
        let err = cluster_from_args(&create_args(&[
            "shop",
            "--engine",
            "mariadb",
            "--topology",
            "ring",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("galera"), "{err}");
    }

    #[test]
    fn full_create_sets_version_size_storage_and_template() {
        let cluster = cluster_from_args(&create_args(&[
            "db",
            "--engine",
            "mysql",
            "--version",
            "8.0.36",
            "--size",
            "3",
            "--storage",
            "20Gi",
            "--template",
            "small",
        ]))
        .unwrap();
        let annotations = cluster.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations["dbaas.io/template-kind"],
            "DatabaseClusterTemplate"
        );
        assert_eq!(annotations["dbaas.io/template-name"], "small");
        assert_eq!(annotations["dbaas.io/origin"], "cli");
        assert_eq!(cluster.spec.engine.type_, EngineType::Mysql);
        assert_eq!(cluster.spec.engine.version.as_deref(), Some("8.0.36"));
        assert_eq!(cluster.spec.cluster_size, 3);
        assert_eq!(cluster.spec.storage.size.0, "20Gi");
    }

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn credentials_per_engine() {
        let pg = secret(&[("username", "app"), ("password", "pw1")]);
        assert_eq!(
            credentials_from_secret(EngineType::Postgresql, "s", &pg, "h", 5432).unwrap(),
            Credentials {
                username: "app".into(),
                password: "pw1".into(),
                host: "h".into(),
                port: 5432
            }
        );
        let pxc = secret(&[("root", "pw2"), ("monitor", "x")]);
        let mysql = credentials_from_secret(EngineType::Mysql, "s", &pxc, "h", 3306).unwrap();
        assert_eq!(
            (mysql.username.as_str(), mysql.password.as_str()),
            ("root", "pw2")
        );
        let psmdb = secret(&[
            ("MONGODB_DATABASE_ADMIN_USER", "databaseAdmin"),
            ("MONGODB_DATABASE_ADMIN_PASSWORD", "pw3"),
        ]);
        let mongo = credentials_from_secret(EngineType::Mongodb, "s", &psmdb, "h", 27017).unwrap();
        assert_eq!(
            (mongo.username.as_str(), mongo.password.as_str()),
            ("databaseAdmin", "pw3")
        );
    }

    #[test]
    fn missing_key_names_the_key_not_the_values() {
        let err = credentials_from_secret(
            EngineType::Postgresql,
            "pg-superuser",
            &secret(&[("username", "app")]),
            "h",
            1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Secret "pg-superuser" has no key "password""#
        );
    }

    #[test]
    fn connect_strings_have_no_password() {
        assert_eq!(
            connect_string(EngineType::Postgresql, "postgres", "pg-rw.ns.svc", 5432),
            "postgresql://postgres@pg-rw.ns.svc:5432/postgres"
        );
        assert_eq!(
            connect_string(EngineType::Mongodb, "databaseAdmin", "m", 27017),
            "mongodb://databaseAdmin@m:27017/admin"
        );
        assert_eq!(
            admin_user_from_secret(EngineType::Mysql, &secret(&[("root", "pw")])),
            "root"
        );
        assert_eq!(
            admin_user_from_secret(EngineType::Postgresql, &BTreeMap::new()),
            "postgres"
        );
    }

    #[test]
    fn progress_and_readiness() {
        let mut cluster = cluster_from_args(&create_args(&[
            "pg",
            "--engine",
            "postgresql",
            "--size",
            "3",
        ]))
        .unwrap();
        assert!(!is_ready(&cluster));
        assert_eq!(progress_line(&cluster), "pg: Pending, 0/3 ready");
        cluster.status = serde_json::from_value(
            json!({"phase": "Creating", "ready": 1, "size": 3, "message": "starting"}),
        )
        .unwrap();
        assert_eq!(
            progress_line(&cluster),
            "pg: Creating, 1/3 ready - starting"
        );
        assert!(!is_ready(&cluster));
        cluster.status =
            serde_json::from_value(json!({"phase": "Ready", "ready": 3, "size": 3})).unwrap();
        assert!(is_ready(&cluster));
    }
}
