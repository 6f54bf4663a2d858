//! N DatabaseClaims on one PostgreSQL server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dbaas_api::DatabaseClaim;
use dbaas_api::server::ANNOTATION_DATABASE_SERVER_ENDPOINTS;
use dbaas_operator::OperatorConfig;
use dbaas_operator::claim::ClaimsConfig;
use dbaas_sql::{
    Admin, ClaimNames, ClaimOwner, Endpoint, Engine, PasswordPolicy, TlsMode, check_login,
    generate_password,
};
use dbaas_testkit::db::{DbKind, DbServer};
use dbaas_testkit::{ControlPlane, TestNamespace, our_crds, upstream_crds};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use secrecy::SecretString;
use serde_json::json;

use crate::Row;

/// DESIGN.md (round 2): at most 1.2x the plain-SQL baseline doing the same
/// work in the same run, at the same concurrency and strategy.
const TARGET_RATIO: f64 = 1.2;

/// Runs the operator in-process for `namespace`; it stops when the sender is
/// used or dropped.
fn start_operator(
    client: Client,
    namespace: String,
    concurrency: u16,
) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = OperatorConfig {
        namespaces: vec![namespace],
        concurrency,
        claims: ClaimsConfig::default(),
        ..OperatorConfig::default()
    };
    tokio::spawn(dbaas_operator::run(client, config, async move {
        let _ = stopped.await;
    }));
    stop
}

/// Runs the scenario and returns its rows.
/// How PostgreSQL copies the template for each claim's database (both sides).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    WalLog,
    FileCopy,
}

impl Strategy {
    fn sql(self) -> dbaas_sql::CreateDatabaseStrategy {
        match self {
            Self::WalLog => dbaas_sql::CreateDatabaseStrategy::WalLog,
            Self::FileCopy => dbaas_sql::CreateDatabaseStrategy::FileCopy,
        }
    }

    fn api_word(self) -> &'static str {
        self.sql().keyword()
    }
}

pub async fn run(
    count: usize,
    concurrency: u16,
    strategy: Option<Strategy>,
) -> anyhow::Result<Vec<Row>> {
    eprintln!("starting the control plane and PostgreSQL ...");
    let plane = ControlPlane::start(&[our_crds(), upstream_crds()])?;
    let db = DbServer::start(DbKind::Postgres)?;
    let client = plane.client().await?;
    let admin = Endpoint {
        engine: Engine::Postgres,
        host: db.host().to_owned(),
        port: db.port(),
        user: db.admin_user().to_owned(),
        password: SecretString::from(db.admin_password().to_owned()),
        database: Some("postgres".to_owned()),
        tls: TlsMode::Disable,
        trusted_ca: None,
    };

    // Baseline: the same databases, users and login checks with plain SQL,
    // as many sessions at once as the operator runs reconciles.
    eprintln!("baseline: {count} databases and users with plain SQL ...");
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let admin = admin.clone();
            async move {
                let mut session = Admin::connect(&admin).await?;
                session.set_create_database_strategy(strategy.map(|s| s.sql()));
                let name = format!("base_{i}");
                let names = ClaimNames::new(Engine::Postgres, &name, &name)?;
                let owner = ClaimOwner {
                    namespace: "bench".into(),
                    name: name.clone(),
                    uid: name.clone(),
                };
                session.ensure_claim(&owner, &names).await?;
                let password = generate_password(&PasswordPolicy {
                    min_length: 24,
                    complexity: true,
                })?;
                session
                    .set_password(&owner, &names, &names.logins[0], &password)
                    .await?;
                check_login(&Endpoint {
                    user: names.logins[0].clone(),
                    password,
                    database: Some(name),
                    ..admin.clone()
                })
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(usize::from(concurrency))
        .try_collect::<Vec<_>>()
        .await?;
    let baseline = started.elapsed();

    eprintln!("operator: {count} DatabaseClaims ...");
    let ns = TestNamespace::create(&client, "bench-claims").await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "pg-admin", "annotations": {(ANNOTATION_DATABASE_SERVER_ENDPOINTS): format!("{}:{}", db.host(), db.port())}},
                "stringData": {"username": db.admin_user(), "password": db.admin_password()},
            }))?,
        )
        .await?;
    let mut server = json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer", "metadata": {"name": "pg"},
        "spec": {"engine": "postgres", "host": db.host(), "port": db.port(), "sslMode": "disable",
                 "adminCredentials": {"username": {"name": "pg-admin", "key": "username"},
                                      "password": {"name": "pg-admin", "key": "password"}}},
    });
    if let Some(strategy) = strategy {
        server["spec"]["createDatabaseStrategy"] = json!(strategy.api_word());
    }
    let servers: Api<dbaas_api::DatabaseServer> = Api::namespaced(client.clone(), &ns.name);
    servers
        .create(&PostParams::default(), &serde_json::from_value(server)?)
        .await?;
    let stop = start_operator(client.clone(), ns.name.clone(), concurrency);
    let claims: Api<DatabaseClaim> = Api::namespaced(client.clone(), &ns.name);
    let started = Instant::now();
    let claims_ref = Arc::new(claims.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let claims = claims_ref.clone();
            async move {
                let claim: DatabaseClaim = serde_json::from_value(json!({
                    "apiVersion": "dbaas.io/v1", "kind": "DatabaseClaim",
                    "metadata": {"name": format!("c{i}")},
                    "spec": {"secretName": format!("c{i}-db"), "type": "postgres",
                             "username": format!("op_{i}"), "databaseName": format!("op_{i}")},
                }))?;
                claims.create(&PostParams::default(), &claim).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await?;
    let created = started.elapsed();
    // Ready: every Secret exists and every claim says Ready.
    let deadline = Instant::now() + Duration::from_secs(600);
    let ready = loop {
        let listed = claims.list(&ListParams::default()).await?;
        let ready = listed
            .items
            .iter()
            .filter(|c| {
                c.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready == count {
            let secrets = secrets
                .list(&ListParams::default().labels("dbaas.io/claim"))
                .await?
                .items
                .len();
            anyhow::ensure!(
                secrets == count,
                "{secrets} Secrets for {count} ready claims"
            );
            break started.elapsed();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready}/{count} claims ready after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = stop.send(());
    drop(db);
    drop(plane);
    let seconds = ready.as_secs_f64();
    let ratio = seconds / baseline.as_secs_f64().max(f64::EPSILON);
    Ok(vec![
        Row {
            what: format!(
                "claims: {count} on one PostgreSQL ({}) -> all Secrets ready",
                strategy.map_or("server default strategy", Strategy::api_word)
            ),
            measured: format!("{seconds:.1} s ({ratio:.2}x)"),
            baseline: format!("{:.1} s plain SQL", baseline.as_secs_f64()),
            target: format!("<= {TARGET_RATIO:.1}x plain SQL"),
            met: Some(ratio <= TARGET_RATIO),
        },
        Row {
            what: format!("claims: {count} creates accepted by the API server"),
            measured: format!("{:.1} s", created.as_secs_f64()),
            baseline: "-".into(),
            target: "-".into(),
            met: None,
        },
    ])
}
