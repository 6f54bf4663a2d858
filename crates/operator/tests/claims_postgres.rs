//! DatabaseServer and DatabaseClaim against a real PostgreSQL (Debian's,
//! started by hack/databases/postgres.sh) and the real control plane.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use std::time::Duration;

use claim_support::*;
use dbaas_api::server::ANNOTATION_DATABASE_SERVER_ENDPOINTS;
use dbaas_api::{DatabaseClaim, DatabaseServer};
use dbaas_sql::{Endpoint, TlsMode, check_login};
use dbaas_testkit::db::{DbKind, DbServer};
use dbaas_testkit::{TestNamespace, wait_gone};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

async fn setup(prefix: &str) -> (Client, TestNamespace, common::Operator) {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let operator = claim_operator(&client, &ns.name);
    (client, ns, operator)
}

/// Runs one SQL statement as the server's admin and returns the first
/// column of each row as text.
async fn admin_query(db: &DbServer, sql: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname=postgres",
            db.host(),
            db.port(),
            db.admin_user(),
            db.admin_password()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
        .query(sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect()
}

/// Runs SQL statements as the server's admin.
async fn admin_exec(db: &DbServer, sql: &str) {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname=postgres",
            db.host(),
            db.port(),
            db.admin_user(),
            db.admin_password()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

async fn database_exists(db: &DbServer, name: &str) -> bool {
    !admin_query(
        db,
        &format!("SELECT datname::text FROM pg_database WHERE datname = '{name}'"),
    )
    .await
    .is_empty()
}

async fn role_exists(db: &DbServer, name: &str) -> bool {
    !admin_query(
        db,
        &format!("SELECT rolname::text FROM pg_roles WHERE rolname = '{name}'"),
    )
    .await
    .is_empty()
}

#[tokio::test]
async fn claims_share_a_server_get_working_secrets_and_stay_apart() {
    let (client, ns, operator) = setup("claim-pg").await;
    let db = DbServer::shared_postgres();
    register_server(&client, &ns.name, "pg", db, Some("athena"), json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    let (orders_db, users_db) = (format!("orders_{id}"), format!("users_{id}"));
    create_claim(
        &claims,
        &claim(
            "orders",
            DbKind::Postgres,
            &orders_db,
            &format!("orders_{id}"),
            json!({
                "instanceLabel": "athena.orders", "dsnName": "DATABASE_URL",
                "secretTemplates": {"jdbc": "jdbc:postgresql://{{host}}:{{port}}/{{database}}"}
            }),
        ),
    )
    .await;
    create_claim(
        &claims,
        &claim(
            "users",
            DbKind::Postgres,
            &users_db,
            &format!("users_{id}"),
            json!({"instanceLabel": "athena"}),
        ),
    )
    .await;

    let orders = claim_where(&claims, "orders", "orders ready", is_ready).await;
    let users = claim_where(&claims, "users", "users ready", is_ready).await;
    let status = orders.status.clone().unwrap();
    assert_eq!(status.server.as_deref(), Some("pg"));
    assert_eq!(status.matched_label.as_deref(), Some("athena"));
    assert!(status.db_created_at.is_some() && status.connection_info_updated_at.is_some());
    let info = status.connection_info.clone().unwrap();
    assert_eq!(
        (info.host.as_str(), info.port, info.database.as_str()),
        (db.host(), i32::from(db.port()), orders_db.as_str())
    );
    assert_eq!(info.username, format!("orders_{id}_a"));
    assert_eq!(status.active_login.as_deref(), Some(info.username.as_str()));

    // The Secret has every documented key, and its credentials log in.
    let data = secret_data(&client, &ns.name, "orders-db").await;
    for key in [
        "username",
        "password",
        "host",
        "port",
        "database",
        "sslmode",
        "uri",
        "DATABASE_URL",
        "jdbc",
    ] {
        assert!(
            data.contains_key(key),
            "Secret lacks {key}: {:?}",
            data.keys()
        );
    }
    assert!(data["password"].len() >= 20);
    assert_eq!(
        data["jdbc"],
        format!("jdbc:postgresql://{}:{}/{orders_db}", db.host(), db.port())
    );
    login_with(DbKind::Postgres, &data).await.unwrap();
    assert_no_password_in(&orders, &data);
    let users_data = secret_data(&client, &ns.name, "users-db").await;
    login_with(DbKind::Postgres, &users_data).await.unwrap();
    assert_no_password_in(&users, &users_data);

    // Grants are limited to the claim's own database.
    let crossed = login_as(DbKind::Postgres, &data, &users_db).await;
    assert!(crossed.is_err(), "orders' login reached users' database");
    // The Secret belongs to the claim (garbage-collected with it).
    let secrets: Api<Secret> = ns.api();
    let secret = secrets.get("orders-db").await.unwrap();
    assert_eq!(secret.metadata.owner_references.unwrap()[0].name, "orders");

    // The server reports itself reachable with its version.
    let servers: Api<DatabaseServer> = ns.api();
    let server = dbaas_testkit::wait_for(
        &servers,
        "pg",
        CLAIM_TIMEOUT,
        "server probed",
        |s: Option<&DatabaseServer>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|s| s.reachable)
        },
    )
    .await
    .unwrap();
    assert!(
        server
            .status
            .unwrap()
            .server_version
            .unwrap()
            .contains(&db.version()[..2])
    );
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn the_longest_instance_label_prefix_wins() {
    let (client, ns, operator) = setup("claim-prefix").await;
    let db = DbServer::shared_postgres();
    register_server(&client, &ns.name, "athena", db, Some("athena"), json!({})).await;
    register_server(
        &client,
        &ns.name,
        "hostapp",
        db,
        Some("athena.hostapp"),
        json!({}),
    )
    .await;
    register_server(&client, &ns.name, "atlas", db, Some("atlas"), json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    for (name, label) in [
        ("exact", "athena.hostapp"),
        ("deeper", "athena.hostapp.eu"),
        ("parent", "athena.billing"),
        ("none", "northstar"),
    ] {
        create_claim(
            &claims,
            &claim(
                name,
                DbKind::Postgres,
                &format!("{name}_{id}"),
                &format!("{name}_{id}"),
                json!({"instanceLabel": label}),
            ),
        )
        .await;
    }
    for (name, server) in [
        ("exact", "hostapp"),
        ("deeper", "hostapp"),
        ("parent", "athena"),
    ] {
        let c = claim_where(&claims, name, "ready", is_ready).await;
        assert_eq!(c.status.unwrap().server.as_deref(), Some(server), "{name}");
    }
    let none = claim_where(
        &claims,
        "none",
        "no server",
        ready_is("False", "ServerNotFound"),
    )
    .await;
    assert!(none.status.unwrap().error.unwrap().contains("northstar"));
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn delete_policy_drops_or_retains() {
    let (client, ns, operator) = setup("claim-delete").await;
    let db = DbServer::shared_postgres();
    register_server(&client, &ns.name, "pg", db, None, json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    let (gone, kept) = (format!("gone_{id}"), format!("kept_{id}"));
    create_claim(
        &claims,
        &claim(
            "gone",
            DbKind::Postgres,
            &gone,
            &gone,
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    create_claim(
        &claims,
        &claim("kept", DbKind::Postgres, &kept, &kept, json!({})),
    )
    .await;
    claim_where(&claims, "gone", "ready", is_ready).await;
    claim_where(&claims, "kept", "ready", is_ready).await;
    // Objects inside the database, owned through the login users, and a
    // live session: deletion must still not wedge.
    let data = secret_data(&client, &ns.name, "gone-db").await;
    let (app, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname={}",
            data["host"], data["port"], data["username"], data["password"], data["database"]
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let session = tokio::spawn(connection);
    app.batch_execute("CREATE TABLE t (id int primary key); CREATE VIEW v AS SELECT * FROM t; INSERT INTO t VALUES (1);")
        .await
        .unwrap();
    assert!(database_exists(db, &gone).await);

    claims
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    claims
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&claims, "gone", CLAIM_TIMEOUT).await.unwrap();
    wait_gone(&claims, "kept", CLAIM_TIMEOUT).await.unwrap();
    assert!(
        !database_exists(db, &gone).await,
        "delete policy left the database"
    );
    for role in [gone.clone(), format!("{gone}_a"), format!("{gone}_b")] {
        assert!(
            !role_exists(db, &role).await,
            "delete policy left role {role}"
        );
    }
    assert!(
        database_exists(db, &kept).await,
        "retain policy dropped the database"
    );
    assert!(role_exists(db, &format!("{kept}_a")).await);
    session.abort();
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_claim_waits_while_its_server_is_down_and_completes_when_it_returns() {
    let (client, ns, operator) = setup("claim-down").await;
    let db = DbServer::start(DbKind::Postgres).unwrap();
    register_server(&client, &ns.name, "pg", &db, None, json!({})).await;
    db.stop().unwrap();
    let claims: Api<DatabaseClaim> = ns.api();
    create_claim(
        &claims,
        &claim("app", DbKind::Postgres, "app", "app", json!({})),
    )
    .await;
    let waiting = claim_where(
        &claims,
        "app",
        "server unreachable",
        ready_is("False", "ServerUnreachable"),
    )
    .await;
    assert!(waiting.status.unwrap().error.is_some());
    let servers: Api<DatabaseServer> = ns.api();
    dbaas_testkit::wait_for(
        &servers,
        "pg",
        CLAIM_TIMEOUT,
        "server unreachable",
        |s: Option<&DatabaseServer>| {
            s.and_then(|s| s.status.as_ref()).is_some_and(|s| {
                !s.reachable && s.conditions.iter().any(|c| c.reason == "ServerUnreachable")
            })
        },
    )
    .await
    .unwrap();
    // Nothing half-made: no Secret while the server was down.
    let secrets: Api<Secret> = ns.api();
    assert!(secrets.get_opt("app-db").await.unwrap().is_none());

    db.resume().unwrap();
    claim_where(&claims, "app", "ready after the server returned", is_ready).await;
    let data = secret_data(&client, &ns.name, "app-db").await;
    login_with(DbKind::Postgres, &data).await.unwrap();
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_rotation_while_the_server_is_down_waits_and_changes_nothing_until_it_returns() {
    let (client, ns, operator) = setup("claim-rot-down").await;
    let db = DbServer::start(DbKind::Postgres).unwrap();
    register_server(&client, &ns.name, "pg", &db, None, json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    create_claim(
        &claims,
        &claim("app", DbKind::Postgres, "app", "app", json!({})),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let before = secret_data(&client, &ns.name, "app-db").await;

    db.stop().unwrap();
    claims
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"dbaas.io/rotate": "1"}}})),
        )
        .await
        .unwrap();
    let waiting = claim_where(
        &claims,
        "app",
        "rotation waiting for the server",
        ready_is("False", "ServerUnreachable"),
    )
    .await;
    let status = waiting.status.unwrap();
    assert_ne!(
        status.handled_rotate_request.as_deref(),
        Some("1"),
        "a rotation that could not run is not marked done"
    );
    // Nothing half-made: the Secret still holds the login that works.
    assert_eq!(secret_data(&client, &ns.name, "app-db").await, before);

    db.resume().unwrap();
    let rotated = claim_where(&claims, "app", "rotated after the server returned", |s| {
        s.handled_rotate_request.as_deref() == Some("1")
    })
    .await;
    assert!(is_ready(&rotated.status.unwrap()));
    let after = secret_data(&client, &ns.name, "app-db").await;
    assert_ne!(after["password"], before["password"]);
    login_with(DbKind::Postgres, &after).await.unwrap();
    // Apps still holding the old files keep working through the grace.
    login_with(DbKind::Postgres, &before).await.unwrap();
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn wrong_admin_credentials_are_a_condition() {
    let (client, ns, operator) = setup("claim-auth").await;
    let db = DbServer::shared_postgres();
    register_server_with_password(
        &client,
        &ns.name,
        "pg",
        db,
        "not-the-password",
        None,
        json!({}),
    )
    .await;
    let servers: Api<DatabaseServer> = ns.api();
    dbaas_testkit::wait_for(
        &servers,
        "pg",
        CLAIM_TIMEOUT,
        "admin auth failure",
        |s: Option<&DatabaseServer>| {
            s.and_then(|s| s.status.as_ref())
                .is_some_and(|s| s.conditions.iter().any(|c| c.reason == "AdminAuthFailed"))
        },
    )
    .await
    .unwrap();
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &format!("app_{id}"),
            &format!("app_{id}"),
            json!({}),
        ),
    )
    .await;
    claim_where(
        &claims,
        "app",
        "admin auth failure",
        ready_is("False", "AdminAuthFailed"),
    )
    .await;
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn an_admin_secret_goes_only_to_the_endpoints_it_names() {
    let (client, ns, operator) = setup("claim-share").await;
    let db = DbServer::shared_postgres();
    // Secret pg-admin, whose credentials may go to the PostgreSQL only.
    register_server(&client, &ns.name, "pg", db, None, json!({})).await;
    // Someone who may create DatabaseServers names pg's Secret and points
    // at a host they control: it must never receive a connection.
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let servers: Api<DatabaseServer> = ns.api();
    let borrowed: DatabaseServer = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
        "metadata": {"name": "borrowed"},
        "spec": {
            "engine": "postgres", "host": "127.0.0.1", "port": trap_port,
            "adminCredentials": {
                "username": {"name": "pg-admin", "key": "username"},
                "password": {"name": "pg-admin", "key": "password"},
            },
        },
    }))
    .unwrap();
    servers
        .create(&PostParams::default(), &borrowed)
        .await
        .unwrap();
    let refused = server_ready_reason(&servers, "borrowed", "AdminSecretNotShared").await;
    let message = server_condition(&refused, "Ready").unwrap().message;
    assert!(
        message.contains("dbaas.io/database-server-endpoints"),
        "{message}"
    );
    // The default sslMode (prefer) accepts any certificate: said so.
    assert_eq!(
        server_condition(&refused, "CertificateVerified")
            .unwrap()
            .reason,
        "CertificateNotVerified"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(3), trap.accept())
            .await
            .is_err(),
        "the operator dialled a server its Secret does not name"
    );
    let pg = servers.get("pg").await.unwrap();
    assert_eq!(server_condition(&pg, "Ready").unwrap().reason, "Reachable");
    assert_eq!(
        server_condition(&pg, "CertificateVerified").unwrap().reason,
        "TLSDisabled"
    );
    // Nor may the server the Secret was made for be pointed elsewhere.
    servers
        .patch(
            "pg",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"host": "127.0.0.1", "port": trap_port}})),
        )
        .await
        .unwrap();
    server_ready_reason(&servers, "pg", "AdminSecretNotShared").await;
    assert!(
        tokio::time::timeout(Duration::from_secs(3), trap.accept())
            .await
            .is_err(),
        "the operator sent the Secret to where its server was moved"
    );

    // Whoever manages the Secret lists the endpoint: now it is dialled.
    let secrets: Api<Secret> = ns.api();
    let endpoints = format!("{}:{}, 127.0.0.1:{trap_port}", db.host(), db.port());
    secrets
        .patch(
            "pg-admin",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"dbaas.io/database-server-endpoints": endpoints}}})),
        )
        .await
        .unwrap();
    tokio::time::timeout(CLAIM_TIMEOUT, trap.accept())
        .await
        .expect("a shared Secret is used")
        .unwrap();
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_claim_in_another_namespace_cannot_take_over_a_database() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let first = TestNamespace::create(&client, "claim-own").await.unwrap();
    let second = TestNamespace::create(&client, "claim-thief").await.unwrap();
    let _op1 = claim_operator(&client, &first.name);
    let _op2 = claim_operator(&client, &second.name);
    let db = DbServer::shared_postgres();
    register_server(&client, &first.name, "pg", db, None, json!({})).await;
    register_server(&client, &second.name, "pg", db, None, json!({})).await;
    let id = unique();
    let name = format!("shared_{id}");
    let owner_claims: Api<DatabaseClaim> = first.api();
    create_claim(
        &owner_claims,
        &claim("app", DbKind::Postgres, &name, &name, json!({})),
    )
    .await;
    claim_where(&owner_claims, "app", "ready", is_ready).await;
    let before = secret_data(&client, &first.name, "app-db").await;

    // Same database and user names from another namespace: refused.
    let thief_claims: Api<DatabaseClaim> = second.api();
    create_claim(
        &thief_claims,
        &claim("app", DbKind::Postgres, &name, &name, json!({})),
    )
    .await;
    let refused = claim_where(
        &thief_claims,
        "app",
        "refused",
        ready_is("False", "OwnedByAnotherClaim"),
    )
    .await;
    // Refused without naming the other namespace's claim.
    let error = refused.status.unwrap().error.unwrap();
    assert!(!error.contains(&first.name), "{error}");
    assert!(error.contains("another namespace"), "{error}");
    // A different user but the same database: refused too.
    create_claim(
        &thief_claims,
        &claim(
            "db-only",
            DbKind::Postgres,
            &name,
            &format!("other_{id}"),
            json!({}),
        ),
    )
    .await;
    claim_where(
        &thief_claims,
        "db-only",
        "refused",
        ready_is("False", "OwnedByAnotherClaim"),
    )
    .await;
    let secrets: Api<Secret> = second.api();
    assert!(secrets.get_opt("app-db").await.unwrap().is_none());
    // The owner's credentials were not touched.
    login_with(DbKind::Postgres, &before).await.unwrap();
    // And deleting the thief's claims with policy delete drops nothing.
    thief_claims
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"deletePolicy": "delete"}})),
        )
        .await
        .unwrap();
    thief_claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&thief_claims, "app", CLAIM_TIMEOUT)
        .await
        .unwrap();
    assert!(database_exists(db, &name).await);
    login_with(DbKind::Postgres, &before).await.unwrap();
    first.delete().await.unwrap();
    second.delete().await.unwrap();
}

#[tokio::test]
async fn hostile_names_are_refused_by_the_api() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "claim-bad").await.unwrap();
    let claims: Api<DatabaseClaim> = ns.api();
    let cases = [
        (
            "quote",
            json!({"databaseName": "x'; DROP DATABASE postgres; --"}),
        ),
        ("upper", json!({"username": "Admin"})),
        ("long", json!({"databaseName": "a".repeat(64)})),
        ("dash", json!({"username": "a-b"})),
        (
            "both",
            json!({"instanceLabel": "x", "serverRef": {"name": "pg"}}),
        ),
        ("dsn", json!({"dsnName": "a/b"})),
        (
            "tpl",
            json!({"secretTemplates": {"password": "{{password}}"}}),
        ),
        ("rot", json!({"rotationMinutes": 5})),
    ];
    for (name, extra) in cases {
        let c = claim(name, DbKind::Postgres, "ok", "ok", extra.clone());
        let err = claims
            .create(&Default::default(), &c)
            .await
            .expect_err(&format!("{name} accepted: {extra}"));
        let kube::Error::Api(status) = err else {
            panic!("{name}: {err}")
        };
        assert_eq!(status.code, 422, "{name}: {}", status.message);
    }
    // MySQL user names are at most 32 characters with the _a/_b suffix.
    let mysql = claim(
        "mysql",
        DbKind::MariaDb,
        "ok",
        &"u".repeat(30),
        json!({"type": "mysql"}),
    );
    let err = claims
        .create(&Default::default(), &mysql)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("29"), "{err}");
    // Immutable database and user.
    let ok = create_claim(
        &claims,
        &claim("fixed", DbKind::Postgres, "ok", "ok", json!({})),
    )
    .await;
    let err = claims
        .patch(
            "fixed",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"databaseName": "other"}})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
    assert_eq!(ok.spec.database_name, "ok");
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_deleted_secret_comes_back_and_the_old_login_keeps_working() {
    let (client, ns, operator) = setup("claim-secret").await;
    let db = DbServer::shared_postgres();
    register_server(&client, &ns.name, "pg", db, None, json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &format!("app_{id}"),
            &format!("app_{id}"),
            json!({}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let first = secret_data(&client, &ns.name, "app-db").await;
    let secrets: Api<Secret> = ns.api();
    secrets
        .delete("app-db", &DeleteParams::default())
        .await
        .unwrap();
    let back = dbaas_testkit::wait_for(
        &secrets,
        "app-db",
        CLAIM_TIMEOUT,
        "Secret recreated",
        |s: Option<&Secret>| s.is_some(),
    )
    .await
    .unwrap();
    assert!(back.metadata.owner_references.is_some());
    let second = secret_data(&client, &ns.name, "app-db").await;
    assert_ne!(
        first["username"], second["username"],
        "recreated on the other login"
    );
    login_with(DbKind::Postgres, &second).await.unwrap();
    // Apps still holding the old files keep working.
    login_with(DbKind::Postgres, &first).await.unwrap();

    // A Secret we do not own is never overwritten.
    let mut foreign = claim(
        "foreign",
        DbKind::Postgres,
        &format!("f_{id}"),
        &format!("f_{id}"),
        json!({}),
    );
    foreign.spec.secret_name = "someone-elses".into();
    let theirs: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "someone-elses"}, "stringData": {"keep": "me"}}))
    .unwrap();
    secrets.create(&Default::default(), &theirs).await.unwrap();
    create_claim(&claims, &foreign).await;
    claim_where(
        &claims,
        "foreign",
        "conflict",
        ready_is("False", "SecretConflict"),
    )
    .await;
    assert_eq!(
        secret_data(&client, &ns.name, "someone-elses").await["keep"],
        "me"
    );
    drop(operator);
    ns.delete().await.unwrap();
}

/// A DBA's functions in `schema`, idempotent as DBAs write them: create
/// makes the user (or gives an existing one the new password) with CONNECT
/// on an existing database (PostgreSQL cannot CREATE DATABASE inside a
/// function) and says what the app gets; every call is logged.
async fn dba_functions(db: &DbServer, schema: &str) {
    admin_exec(db, &format!(r#"
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.log (action text, db text, usr text);
        CREATE FUNCTION {schema}.create_db(db text, usr text, pw text) RETURNS TABLE (username text, note text)
        LANGUAGE plpgsql AS $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = usr) THEN
                EXECUTE format('CREATE ROLE %I LOGIN', usr);
            END IF;
            EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', usr, pw);
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', db, usr);
            INSERT INTO {schema}.log VALUES ('create', db, usr);
            RETURN QUERY SELECT usr, 'made by the DBA procedure'::text;
        END $$;
        CREATE FUNCTION {schema}.rotate_db(db text, usr text, pw text) RETURNS TABLE (username text)
        LANGUAGE plpgsql AS $$ BEGIN
            EXECUTE format('ALTER ROLE %I PASSWORD %L', usr, pw);
            INSERT INTO {schema}.log VALUES ('rotate', db, usr);
            RETURN QUERY SELECT usr;
        END $$;
        CREATE FUNCTION {schema}.delete_db(db text, usr text) RETURNS void
        LANGUAGE plpgsql AS $$ BEGIN
            EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM %I', db, usr);
            EXECUTE format('DROP ROLE IF EXISTS %I', usr);
            INSERT INTO {schema}.log VALUES ('delete', db, usr);
        END $$;
    "#)).await;
}

/// `spec` of a DatabaseServer calling [`dba_functions`].
fn procedures(schema: &str) -> serde_json::Value {
    json!({"storedProcedures": {
        "create": format!("{schema}.create_db"),
        "rotate": format!("{schema}.rotate_db"),
        "delete": format!("{schema}.delete_db"),
    }})
}

#[tokio::test]
async fn stored_procedures_create_rotate_and_delete() {
    let (client, ns, operator) = setup("claim-proc").await;
    let db = DbServer::shared_postgres();
    let id = unique();
    let schema = format!("dba_{id}");
    let database = format!("procdb_{id}");
    admin_exec(db, &format!("CREATE DATABASE {database}")).await;
    dba_functions(db, &schema).await;
    register_server(&client, &ns.name, "pg", db, None, procedures(&schema)).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let user = format!("proc_{id}");
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &database,
            &user,
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let data = secret_data(&client, &ns.name, "app-db").await;
    assert_eq!(data["note"], "made by the DBA procedure");
    assert_eq!(data["username"], user);
    login_with(DbKind::Postgres, &data).await.unwrap();

    claims
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"dbaas.io/rotate": "1"}}})),
        )
        .await
        .unwrap();
    claim_where(&claims, "app", "rotated", |s| {
        s.handled_rotate_request.as_deref() == Some("1")
    })
    .await;
    let rotated = secret_data(&client, &ns.name, "app-db").await;
    assert_ne!(rotated["password"], data["password"]);
    login_with(DbKind::Postgres, &rotated).await.unwrap();

    claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&claims, "app", CLAIM_TIMEOUT).await.unwrap();
    let log = admin_query(
        db,
        &format!("SELECT action || ':' || usr FROM {schema}.log"),
    )
    .await;
    assert_eq!(
        log,
        vec![
            format!("create:{user}"),
            format!("rotate:{user}"),
            format!("delete:{user}")
        ]
    );
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn stored_procedure_names_of_one_namespace_are_not_anothers() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let first = TestNamespace::create(&client, "proc-own").await.unwrap();
    let second = TestNamespace::create(&client, "proc-thief").await.unwrap();
    let _op1 = claim_operator(&client, &first.name);
    let _op2 = claim_operator(&client, &second.name);
    let db = DbServer::shared_postgres();
    let id = unique();
    let schema = format!("dba_{id}");
    let database = format!("procdb_{id}");
    admin_exec(db, &format!("CREATE DATABASE {database}")).await;
    dba_functions(db, &schema).await;
    for ns in [&first, &second] {
        register_server(&client, &ns.name, "pg", db, None, procedures(&schema)).await;
    }
    let delete = json!({"deletePolicy": "delete"});
    let (user, reports) = (format!("proc_{id}"), format!("rep_{id}"));
    let owners: Api<DatabaseClaim> = first.api();
    // Claims of one namespace share the DBA's database, a user each.
    for (name, username) in [("app", &user), ("reports", &reports)] {
        create_claim(
            &owners,
            &claim(name, DbKind::Postgres, &database, username, delete.clone()),
        )
        .await;
        claim_where(&owners, name, "ready", is_ready).await;
    }
    let before = secret_data(&client, &first.name, "app-db").await;

    // Another namespace naming the same user, or only the same database:
    // refused before any procedure runs, without naming the holder.
    let thieves: Api<DatabaseClaim> = second.api();
    for (name, username) in [("app", user.clone()), ("other", format!("thief_{id}"))] {
        create_claim(
            &thieves,
            &claim(name, DbKind::Postgres, &database, &username, delete.clone()),
        )
        .await;
        let refused = claim_where(
            &thieves,
            name,
            "refused",
            ready_is("False", "OwnedByAnotherClaim"),
        )
        .await;
        let error = refused.status.unwrap().error.unwrap();
        assert!(!error.contains(&first.name), "{error}");
        assert!(error.contains("another namespace"), "{error}");
    }
    let secrets: Api<Secret> = second.api();
    assert!(secrets.get_opt("app-db").await.unwrap().is_none());
    assert!(secrets.get_opt("other-db").await.unwrap().is_none());
    // Deleting them calls no delete procedure.
    for name in ["app", "other"] {
        thieves
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
        wait_gone(&thieves, name, CLAIM_TIMEOUT).await.unwrap();
    }
    login_with(DbKind::Postgres, &before).await.unwrap();
    let log = |schema: String| async move {
        let mut log = admin_query(
            db,
            &format!("SELECT action || ':' || usr FROM {schema}.log"),
        )
        .await;
        log.sort();
        log
    };
    assert_eq!(
        log(schema.clone()).await,
        vec![format!("create:{user}"), format!("create:{reports}")]
    );

    // Once the namespace's last claim on the database is gone, the
    // database is free for another namespace.
    for name in ["app", "reports"] {
        owners.delete(name, &DeleteParams::default()).await.unwrap();
        wait_gone(&owners, name, CLAIM_TIMEOUT).await.unwrap();
    }
    create_claim(
        &thieves,
        &claim(
            "later",
            DbKind::Postgres,
            &database,
            &format!("later_{id}"),
            delete,
        ),
    )
    .await;
    claim_where(&thieves, "later", "ready", is_ready).await;
    first.delete().await.unwrap();
    second.delete().await.unwrap();
}

#[tokio::test]
async fn rotation_under_load_loses_no_query() {
    use dbaas_hotload::{HotPool, HotPoolOptions};
    let (client, ns, operator) = setup("claim-rotate").await;
    let db = DbServer::shared_postgres();
    register_server(&client, &ns.name, "pg", db, None, json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &format!("rot_{id}"),
            &format!("rot_{id}"),
            json!({}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;

    // Play the kubelet: mirror the Secret into a mounted-style directory.
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet_mirror(
        client.clone(),
        ns.name.clone(),
        "app-db".into(),
        dir.path().to_owned(),
        std::collections::BTreeMap::new(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !dir.path().join("password").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the Secret never reached the volume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pool = HotPool::open(dir.path(), HotPoolOptions::default())
        .await
        .unwrap();
    {
        let conn = pool.get().await.unwrap();
        conn.batch_execute("CREATE TABLE hits (n bigint)")
            .await
            .unwrap();
    }
    let load = Load::start(&pool, 4);
    const ROTATIONS: usize = 50;
    let mut logins = Vec::new();
    for round in 1..=ROTATIONS {
        let c = rotate_and_reload(&claims, "app", round, &pool, Duration::from_secs(30)).await;
        logins.push(c.status.unwrap().active_login.unwrap());
    }
    let (total, failures) = load.finish().await;
    kubelet.abort();
    println!(
        "rotation under load: {ROTATIONS} rotations, {total} queries, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} failed queries, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(total > 500, "only {total} queries ran");
    // The logins alternated: each rotation moved to the other user.
    assert!(logins.windows(2).all(|w| w[0] != w[1]), "{logins:?}");
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_claim_that_matches_no_server_gets_a_cluster_from_its_shape() {
    use dbaas_api::DatabaseCluster;
    use dbaas_api::cluster::ClusterPhase;
    use dbaas_engine_crds::cnpg_cluster::Cluster as CnpgCluster;
    use dbaas_operator::server::endpoint::ConnectTo;

    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, "claim-dyn").await.unwrap();
    let db = DbServer::shared_postgres();
    // The operator runs outside the cluster: the cluster's service name is
    // dialled at the local PostgreSQL that plays the CNPG instance.
    let service = format!("app-rw.{}.svc", ns.name);
    let _operator = claim_operator_dialling(
        &client,
        &ns.name,
        vec![ConnectTo {
            from_host: service.clone(),
            from_port: 5432,
            to_host: db.host().to_owned(),
            to_port: db.port(),
        }],
    );
    let templates: Api<dbaas_api::DatabaseClusterTemplate> = ns.api();
    templates
        .create(&Default::default(), &serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseClusterTemplate",
            "metadata": {"name": "small"},
            "spec": {"engineType": "postgresql", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        })).unwrap())
        .await
        .unwrap();
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    let clusters: Api<DatabaseCluster> = ns.api();
    // A template nobody marked for claims makes no cluster for one.
    create_claim(
        &claims,
        &claim(
            "early",
            DbKind::Postgres,
            &format!("early_{id}"),
            &format!("early_{id}"),
            json!({
                "shape": "small", "minStorageGB": 5
            }),
        ),
    )
    .await;
    claim_where(
        &claims,
        "early",
        "refused",
        ready_is("False", "TemplateNotForClaims"),
    )
    .await;
    assert!(clusters.get_opt("early").await.unwrap().is_none());
    // Gone before the template is marked: a waiting claim would then
    // rightly get its cluster.
    claims
        .delete("early", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&claims, "early", CLAIM_TIMEOUT).await.unwrap();
    // Marked, with a cap: a claim above it makes nothing either.
    templates
        .patch(
            "small",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {
                "dbaas.io/usable-by-claims": "true", "dbaas.io/claim-max-storage-gb": "8",
            }}})),
        )
        .await
        .unwrap();
    create_claim(
        &claims,
        &claim(
            "big",
            DbKind::Postgres,
            &format!("big_{id}"),
            &format!("big_{id}"),
            json!({
                "shape": "small", "minStorageGB": 50
            }),
        ),
    )
    .await;
    claim_where(
        &claims,
        "big",
        "refused",
        ready_is("False", "StorageAboveTemplateMaximum"),
    )
    .await;
    assert!(clusters.get_opt("big").await.unwrap().is_none());
    claims
        .delete("big", &DeleteParams::default())
        .await
        .unwrap();
    create_claim(&claims, &claim("app", DbKind::Postgres, &format!("dyn_{id}"), &format!("dyn_{id}"), json!({
        "instanceLabel": "dynamic.app", "shape": "small", "minStorageGB": 5, "deletePolicy": "delete"
    }))).await;
    claim_where(&claims, "app", "provisioning", |s| {
        s.provisioned_cluster.as_deref() == Some("app")
    })
    .await;

    // The cluster comes from the template and the claim, and runs on CNPG.
    let cluster = clusters.get("app").await.unwrap();
    assert_eq!(cluster.spec.storage.size.0, "5Gi");
    assert_eq!(
        cluster.metadata.annotations.as_ref().unwrap()["dbaas.io/template-name"],
        "small"
    );
    let engines: Api<CnpgCluster> = ns.api();
    let cnpg = common::engine_object(&engines, "app", "the CNPG Cluster", |_| true).await;
    assert_eq!(
        serde_json::to_value(cnpg.spec.resources.unwrap().requests.unwrap()).unwrap(),
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    claim_where(
        &claims,
        "app",
        "waiting for the cluster",
        ready_is("False", "ClusterNotReady"),
    )
    .await;

    // Play CloudNativePG: the superuser Secret and a healthy status.
    let secrets: Api<Secret> = ns.api();
    secrets
        .create(
            &Default::default(),
            &serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-superuser"},
                "stringData": {"username": db.admin_user(), "password": db.admin_password()},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let image = cnpg.spec.image_name.clone().unwrap();
    common::write_engine_status(&engines, "app", "cloudnative-pg", json!({
        "phase": "Cluster in healthy state", "instances": 1, "readyInstances": 1, "image": image,
        "currentPrimary": "app-1", "writeService": "app-rw", "readService": "app-r",
        "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                        "message": "Cluster is Ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })).await;
    common::cluster_where(
        &clusters,
        "app",
        "ready",
        common::in_phase(ClusterPhase::Ready),
    )
    .await;
    let bound = claim_where(&claims, "app", "ready on its own cluster", is_ready).await;
    assert_eq!(bound.status.unwrap().server.as_deref(), Some("app"));
    let mut data = secret_data(&client, &ns.name, "app-db").await;
    assert_eq!(data["host"], service, "apps get the in-cluster service");
    // Log in the way an app in the cluster would, through the redirect.
    data.insert("host".into(), db.host().to_owned());
    data.insert("port".into(), db.port().to_string());
    login_with(DbKind::Postgres, &data).await.unwrap();
    let servers: Api<DatabaseServer> = ns.api();
    let server = servers.get("app").await.unwrap();
    let labels = server.metadata.labels.unwrap();
    assert_eq!(labels["dbaas.io/claim"], "app");
    assert!(!labels.contains_key("dbaas.io/instance"));
    // The claim's own server is private: another claim does not land on it.
    create_claim(
        &claims,
        &claim(
            "other",
            DbKind::Postgres,
            &format!("other_{id}"),
            &format!("other_{id}"),
            json!({}),
        ),
    )
    .await;
    claim_where(
        &claims,
        "other",
        "no server",
        ready_is("False", "ServerNotFound"),
    )
    .await;
    ns.delete().await.unwrap();
}

/// A server whose CA is given is verified by default: the admin password
/// goes only to a certificate that CA signed for the host, and the claim's
/// Secret carries the CA for the app. The CA's Secret is lent like an admin
/// Secret, and a CA with a mode that does not verify is refused.
#[tokio::test]
async fn a_servers_ca_makes_verification_the_default() {
    let (client, ns, _operator) = setup("claim-ca").await;
    let db = DbServer::start_with_tls(DbKind::Postgres).unwrap();
    let ca = std::fs::read_to_string(db.ca_cert().unwrap()).unwrap();
    let endpoint = format!("{}:{}", db.host(), db.port());
    let secrets: Api<Secret> = ns.api();
    for (name, annotations) in [
        (
            "pg-ca",
            json!({(ANNOTATION_DATABASE_SERVER_ENDPOINTS): endpoint}),
        ),
        ("unlent-ca", json!({})),
    ] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "stringData": {"ca.crt": ca},
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    // No sslMode: verify-full, against the CA named.
    register_server(
        &client,
        &ns.name,
        "pg",
        &db,
        None,
        json!({"sslMode": null, "caCertificate": {"name": "pg-ca", "key": "ca.crt"}}),
    )
    .await;
    let servers: Api<DatabaseServer> = ns.api();
    let verified = server_ready_reason(&servers, "pg", "Reachable").await;
    assert_eq!(
        server_condition(&verified, "CertificateVerified")
            .unwrap()
            .reason,
        "Verified"
    );

    // A claim gets verify-full and the CA to verify with.
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::Postgres,
            &format!("ca_{id}"),
            &format!("ca_{id}"),
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let data = secret_data(&client, &ns.name, "app-db").await;
    assert_eq!(data["sslmode"], "verify-full");
    assert_eq!(data["ca.crt"], ca);
    check_login(&Endpoint {
        engine: dbaas_sql::Engine::Postgres,
        host: data["host"].clone(),
        port: data["port"].parse().unwrap(),
        user: data["username"].clone(),
        password: data["password"].clone().into(),
        database: Some(data["database"].clone()),
        tls: TlsMode::VerifyFull,
        trusted_ca: Some(data["ca.crt"].as_str().into()),
    })
    .await
    .unwrap();

    // A CA Secret that does not lend itself to this endpoint is not read.
    register_server(
        &client,
        &ns.name,
        "unlent",
        &db,
        None,
        json!({"sslMode": null, "caCertificate": {"name": "unlent-ca", "key": "ca.crt"}}),
    )
    .await;
    server_ready_reason(&servers, "unlent", "AdminSecretNotShared").await;

    // A CA with a mode that accepts any certificate is a contradiction.
    let contradiction: DatabaseServer = serde_json::from_value(json!({
        "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
        "metadata": {"name": "contradiction"},
        "spec": {
            "engine": "postgres", "host": db.host(), "port": db.port(), "sslMode": "require",
            "caCertificate": {"name": "pg-ca", "key": "ca.crt"},
            "adminCredentials": {
                "username": {"name": "pg-admin", "key": "username"},
                "password": {"name": "pg-admin", "key": "password"},
            },
        },
    }))
    .unwrap();
    let refused = servers
        .create(&PostParams::default(), &contradiction)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("a caCertificate is there to verify the server"),
        "{refused}"
    );
    claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&claims, "app", CLAIM_TIMEOUT).await.unwrap();
    ns.delete().await.unwrap();
}
