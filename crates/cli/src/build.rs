//! From arguments to objects, and from objects to credentials: pure logic
//! the commands use, kept apart so it is unit tested without an API server.

use std::collections::BTreeMap;

use dbaas_api::backup::{BackupPhase, DatabaseBackup, DatabaseBackupSpec};
use dbaas_api::cluster::ClusterPhase;
use dbaas_api::common::{ANNOTATION_ORIGIN, ANNOTATION_TEMPLATE_KIND, ANNOTATION_TEMPLATE_NAME};
use dbaas_api::{DatabaseCluster, DatabaseClusterSpec, EngineType};
use k8s_openapi::ByteString;
use serde::Serialize;
use serde_json::json;

use crate::cli::{CreateBackupArgs, CreateClusterArgs};
use crate::error::CliError;

/// Origin recorded on objects this tool creates.
pub const ORIGIN_CLI: &str = "cli";
/// Template kind the `--template` flag refers to.
pub const TEMPLATE_KIND: &str = "DatabaseClusterTemplate";

/// The DatabaseCluster `cluster create` sends.
pub fn cluster_from_args(args: &CreateClusterArgs) -> Result<DatabaseCluster, CliError> {
    let engine: EngineType = args.engine.into();
    let mut engine_spec = json!({ "type": engine });
    if let Some(version) = &args.version {
        engine_spec["version"] = json!(version);
    }
    // Through JSON so fields added to the spec later keep their defaults.
    let spec: DatabaseClusterSpec = serde_json::from_value(json!({
        "engine": engine_spec,
        "clusterSize": args.size,
        "storage": { "size": args.storage },
    }))
    .map_err(|e| CliError::Output(format!("building the DatabaseCluster: {e}")))?;
    let mut cluster = DatabaseCluster::new(&args.name, spec);
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

/// Admin credentials of a cluster, as `cluster credentials` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub host: String,
    pub port: i32,
}

/// Where each engine operator keeps the admin user in its Secret: a key
/// holding the user name, or a fixed user whose key holds the password.
enum UserLayout {
    Keys {
        user: &'static str,
        password: &'static str,
    },
    FixedUser {
        user: &'static str,
    },
}

fn user_layout(engine: EngineType) -> UserLayout {
    match engine {
        EngineType::Postgresql => UserLayout::Keys {
            user: "username",
            password: "password",
        },
        // Percona XtraDB Cluster: one key per system user.
        EngineType::Mysql => UserLayout::FixedUser { user: "root" },
        EngineType::Mongodb => UserLayout::Keys {
            user: "MONGODB_DATABASE_ADMIN_USER",
            password: "MONGODB_DATABASE_ADMIN_PASSWORD",
        },
    }
}

/// Default port of each engine, for a status that reports none.
pub fn default_port(engine: EngineType) -> i32 {
    match engine {
        EngineType::Postgresql => 5432,
        EngineType::Mysql => 3306,
        EngineType::Mongodb => 27017,
    }
}

/// Reads the admin user out of the engine's credentials Secret.
pub fn credentials_from_secret(
    engine: EngineType,
    secret_name: &str,
    data: &BTreeMap<String, ByteString>,
    host: &str,
    port: i32,
) -> Result<Credentials, CliError> {
    let value = |key: &str| {
        data.get(key)
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .ok_or_else(|| CliError::MissingSecretKey {
                secret: secret_name.to_string(),
                key: key.to_string(),
            })
    };
    let (username, password) = match user_layout(engine) {
        UserLayout::Keys { user, password } => (value(user)?, value(password)?),
        UserLayout::FixedUser { user } => (user.to_string(), value(user)?),
    };
    Ok(Credentials {
        username,
        password,
        host: host.to_string(),
        port,
    })
}

/// A connection URI without the password, so it is safe to paste or log.
pub fn connect_string(engine: EngineType, username: &str, host: &str, port: i32) -> String {
    match engine {
        EngineType::Postgresql => format!("postgresql://{username}@{host}:{port}/postgres"),
        EngineType::Mysql => format!("mysql://{username}@{host}:{port}/"),
        EngineType::Mongodb => format!("mongodb://{username}@{host}:{port}/admin"),
    }
}

/// The admin user name when the Secret cannot be read.
pub fn default_admin_user(engine: EngineType) -> &'static str {
    match engine {
        EngineType::Postgresql => "postgres",
        EngineType::Mysql => "root",
        EngineType::Mongodb => "databaseAdmin",
    }
}

/// The admin user name from the Secret, without touching the password.
pub fn admin_user_from_secret(engine: EngineType, data: &BTreeMap<String, ByteString>) -> String {
    match user_layout(engine) {
        UserLayout::Keys { user, .. } => data
            .get(user)
            .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            .unwrap_or_else(|| default_admin_user(engine).to_string()),
        UserLayout::FixedUser { user } => user.to_string(),
    }
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
