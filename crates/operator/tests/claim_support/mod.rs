//! Helpers for the DatabaseClaim tests: a real database server (from
//! `dbaas_testkit::db`), its admin Secret and DatabaseServer, claims, and
//! reading what the operator published.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use dbaas_api::claim::DatabaseClaimStatus;
use dbaas_api::server::ANNOTATION_DATABASE_SERVER_ENDPOINTS;
use dbaas_api::{DatabaseClaim, DatabaseServer};
use dbaas_operator::OperatorConfig;
use dbaas_operator::claim::ClaimsConfig;
use dbaas_operator::server::endpoint::ConnectTo;
use dbaas_sql::{Endpoint, Engine, PasswordPolicy, SqlError, TlsMode, check_login};
use dbaas_testkit::db::{DbKind, DbServer};
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::{Operator, start_operator_with};

pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(60);

/// The grace period the tests run with: short, so rotations can follow
/// each other quickly.
pub const TEST_GRACE: Duration = Duration::from_millis(500);

/// An operator for `namespace` with test-friendly claim settings.
pub fn claim_operator(client: &Client, namespace: &str) -> Operator {
    claim_operator_dialling(client, namespace, Vec::new())
}

/// [`claim_operator`] that dials database servers through `connect_to`.
pub fn claim_operator_dialling(
    client: &Client,
    namespace: &str,
    connect_to: Vec<ConnectTo>,
) -> Operator {
    start_operator_with(
        client,
        OperatorConfig {
            namespaces: vec![namespace.to_owned()],
            concurrency: 8,
            detection_interval: Duration::from_secs(1),
            claims: ClaimsConfig {
                password: PasswordPolicy {
                    min_length: 20,
                    complexity: true,
                },
                rotation_grace: TEST_GRACE,
                connect_to,
                ..ClaimsConfig::default()
            },
            server_check_interval: Duration::from_secs(2),
            ..OperatorConfig::default()
        },
    )
}

pub fn engine_word(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Postgres => "postgres",
        DbKind::MariaDb => "mariadb",
    }
}

/// A unique suffix for names on the shared database servers.
pub fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:x}", std::process::id() % 4096, nanos % 0xfffff)
}

/// Creates the admin Secret and a DatabaseServer `name` for `db`.
pub async fn register_server(
    client: &Client,
    namespace: &str,
    name: &str,
    db: &DbServer,
    label: Option<&str>,
    extra_spec: Value,
) -> DatabaseServer {
    register_server_with_password(
        client,
        namespace,
        name,
        db,
        db.admin_password(),
        label,
        extra_spec,
    )
    .await
}

pub async fn register_server_with_password(
    client: &Client,
    namespace: &str,
    name: &str,
    db: &DbServer,
    password: &str,
    label: Option<&str>,
    extra_spec: Value,
) -> DatabaseServer {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": format!("{name}-admin"),
            "annotations": {(ANNOTATION_DATABASE_SERVER_ENDPOINTS): format!("{}:{}", db.host(), db.port())},
        },
        "stringData": {"username": db.admin_user(), "password": password},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let mut spec = json!({
        "engine": engine_word(db.kind()),
        "host": db.host(),
        "port": db.port(),
        "sslMode": "disable",
        "adminCredentials": {
            "username": {"name": format!("{name}-admin"), "key": "username"},
            "password": {"name": format!("{name}-admin"), "key": "password"},
        },
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        spec.extend(extra.clone());
    }
    let mut metadata = json!({"name": name});
    if let Some(label) = label {
        metadata["labels"] = json!({"dbaas.io/instance": label});
    }
    let server: DatabaseServer = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
        "metadata": metadata, "spec": spec,
    }))
    .unwrap();
    let servers: Api<DatabaseServer> = Api::namespaced(client.clone(), namespace);
    servers
        .create(&PostParams::default(), &server)
        .await
        .unwrap()
}

/// A claim object; `extra` is merged into the spec.
pub fn claim(
    name: &str,
    kind: DbKind,
    database: &str,
    username: &str,
    extra: Value,
) -> DatabaseClaim {
    let mut spec = json!({
        "secretName": format!("{name}-db"),
        "type": engine_word(kind),
        "username": username,
        "databaseName": database,
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

pub async fn create_claim(api: &Api<DatabaseClaim>, claim: &DatabaseClaim) -> DatabaseClaim {
    api.create(&PostParams::default(), claim)
        .await
        .unwrap_or_else(|e| panic!("create claim {:?}: {e}", claim.metadata.name))
}

/// Waits until the claim passes `check`.
pub async fn claim_where(
    api: &Api<DatabaseClaim>,
    name: &str,
    what: &str,
    check: impl Fn(&DatabaseClaimStatus) -> bool,
) -> DatabaseClaim {
    dbaas_testkit::wait_for(
        api,
        name,
        CLAIM_TIMEOUT,
        what,
        move |c: Option<&DatabaseClaim>| c.and_then(|c| c.status.as_ref()).is_some_and(&check),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The claim's Ready condition has `status` and `reason`.
pub fn ready_is(
    status: &'static str,
    reason: &'static str,
) -> impl Fn(&DatabaseClaimStatus) -> bool {
    move |s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == status && c.reason == reason)
    }
}

/// The claim is Ready (any reason) for its current generation.
pub fn is_ready(s: &DatabaseClaimStatus) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The claim's Secret as text.
pub async fn secret_data(client: &Client, namespace: &str, name: &str) -> BTreeMap<String, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets.get(name).await.unwrap();
    secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
        .collect()
}

fn sql_engine(kind: DbKind) -> Engine {
    match kind {
        DbKind::Postgres => Engine::Postgres,
        DbKind::MariaDb => Engine::MariaDb,
    }
}

/// The condition `kind` of a DatabaseServer.
pub fn server_condition(
    server: &DatabaseServer,
    kind: &str,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    server
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == kind).cloned())
}

/// Waits until the DatabaseServer `name` is `Ready` for (or not for)
/// `reason`.
pub async fn server_ready_reason(
    servers: &Api<DatabaseServer>,
    name: &str,
    reason: &str,
) -> DatabaseServer {
    dbaas_testkit::wait_for(
        servers,
        name,
        CLAIM_TIMEOUT,
        reason,
        |s: Option<&DatabaseServer>| {
            s.and_then(|s| server_condition(s, "Ready"))
                .is_some_and(|c| c.reason == reason)
        },
    )
    .await
    .unwrap()
}

/// Logs in with a Secret's credentials (at its host and port).
pub async fn login_with(kind: DbKind, data: &BTreeMap<String, String>) -> Result<(), SqlError> {
    login_as(kind, data, &data["database"]).await
}

/// Logs in with a Secret's credentials into `database`.
pub async fn login_as(
    kind: DbKind,
    data: &BTreeMap<String, String>,
    database: &str,
) -> Result<(), SqlError> {
    check_login(&Endpoint {
        engine: sql_engine(kind),
        host: data["host"].clone(),
        port: data["port"].parse().unwrap(),
        user: data["username"].clone(),
        password: SecretString::from(data["password"].clone()),
        database: Some(database.to_owned()),
        tls: TlsMode::Disable,
        trusted_ca: None,
    })
    .await
}

/// Asserts that no password of `data` appears anywhere in the claim object.
pub fn assert_no_password_in(claim: &DatabaseClaim, data: &BTreeMap<String, String>) {
    let text = serde_json::to_string(claim).unwrap();
    assert!(
        !text.contains(&data["password"]),
        "the claim object carries the password"
    );
}

/// Clients querying through `pool` the whole time: `workers` tasks each
/// inserting a row into `hits` until [`Load::finish`].
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<(u64, Vec<String>)>>,
}

impl Load {
    pub fn start(pool: &dbaas_hotload::HotPool, workers: usize) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers = (0..workers)
            .map(|_| {
                let (pool, stop) = (pool.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0u64, Vec::new());
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let result = async {
                            let conn = pool.get().await.map_err(|e| e.to_string())?;
                            conn.execute("INSERT INTO hits VALUES (1)", &[])
                                .await
                                .map_err(|e| e.to_string())
                        }
                        .await;
                        match result {
                            Ok(_) => ok += 1,
                            Err(e) => failed.push(e),
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// Stops the clients: the queries that succeeded, and every failure.
    pub async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut total, mut failures) = (0u64, Vec::new());
        for worker in self.workers {
            let (ok, failed) = worker.await.unwrap();
            total += ok;
            failures.extend(failed);
        }
        (total, failures)
    }
}

/// Plays the kubelet: mirrors the Secret `name` into `dir` the way a
/// Secret volume is updated (atomic symlink swap), with `overrides`
/// replacing some keys' values (e.g. the address a client outside the
/// cluster dials instead of the Service).
pub fn kubelet_mirror(
    client: Client,
    namespace: String,
    name: String,
    dir: std::path::PathBuf,
    overrides: BTreeMap<String, String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secrets: Api<Secret> = Api::namespaced(client, &namespace);
        let mut volume = dbaas_hotload::test_util::KubeletDir::new(dir).unwrap();
        let mut last = None;
        loop {
            if let Ok(Some(secret)) = secrets.get_opt(&name).await {
                let data = secret.data.unwrap_or_default();
                if last.as_ref() != Some(&data) {
                    let files: Vec<(String, String)> = data
                        .iter()
                        .map(|(k, v)| {
                            let value = overrides
                                .get(k)
                                .cloned()
                                .unwrap_or_else(|| String::from_utf8(v.0.clone()).unwrap());
                            (k.clone(), value)
                        })
                        .collect();
                    volume.publish(&files).unwrap();
                    last = Some(data);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// Asks for rotation `round` of the claim `name`, waits until the operator
/// handled it, then until `pool` reloaded the new credentials (within
/// `reload_within`); returns the claim as it was once rotated.
pub async fn rotate_and_reload(
    claims: &Api<DatabaseClaim>,
    name: &str,
    round: usize,
    pool: &dbaas_hotload::HotPool,
    reload_within: Duration,
) -> DatabaseClaim {
    let reloads = pool.reloads();
    claims
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                &serde_json::json!({"metadata": {"annotations": {"dbaas.io/rotate": round.to_string()}}}),
            ),
        )
        .await
        .unwrap();
    let rotated = claim_where(claims, name, "rotated", |s| {
        s.handled_rotate_request.as_deref() == Some(round.to_string().as_str())
    })
    .await;
    let deadline = std::time::Instant::now() + reload_within;
    while pool.reloads() == reloads {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool did not reload after rotation {round}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rotated
}
