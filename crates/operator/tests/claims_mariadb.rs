//! DatabaseServer and DatabaseClaim against a real MariaDB (Debian's,
//! started by hack/databases/mariadb.sh) and the real control plane.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests state their expectations by unwrapping

mod claim_support;
mod common;

use claim_support::*;
use dbaas_api::{DatabaseClaim, DatabaseServer};
use dbaas_testkit::db::{DbKind, DbServer};
use dbaas_testkit::{TestNamespace, wait_gone};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use mysql_async::prelude::Queryable;
use serde_json::json;

async fn setup(prefix: &str) -> (Client, TestNamespace, common::Operator) {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let ns = TestNamespace::create(&client, prefix).await.unwrap();
    let operator = claim_operator(&client, &ns.name);
    (client, ns, operator)
}

async fn admin(db: &DbServer) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname(db.host())
        .tcp_port(db.port())
        .user(Some(db.admin_user()))
        .pass(Some(db.admin_password()));
    mysql_async::Conn::new(opts).await.unwrap()
}

async fn database_exists(db: &DbServer, name: &str) -> bool {
    let mut conn = admin(db).await;
    let found: Option<String> = conn
        .exec_first(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?",
            (name,),
        )
        .await
        .unwrap();
    found.is_some()
}

async fn user_exists(db: &DbServer, name: &str) -> bool {
    let mut conn = admin(db).await;
    let found: Option<String> = conn
        .exec_first("SELECT user FROM mysql.user WHERE user = ?", (name,))
        .await
        .unwrap();
    found.is_some()
}

#[tokio::test]
async fn claims_on_mariadb_work_stay_apart_and_are_dropped_on_delete() {
    let (client, ns, operator) = setup("claim-maria").await;
    let db = DbServer::shared_mariadb();
    register_server(&client, &ns.name, "maria", db, Some("shop"), json!({})).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let id = unique();
    let (a, b) = (format!("a_{id}"), format!("b_{id}"));
    create_claim(
        &claims,
        &claim(
            "a",
            DbKind::MariaDb,
            &a,
            &a,
            json!({"instanceLabel": "shop.cart", "deletePolicy": "delete"}),
        ),
    )
    .await;
    create_claim(
        &claims,
        &claim(
            "b",
            DbKind::MariaDb,
            &b,
            &b,
            json!({"instanceLabel": "shop"}),
        ),
    )
    .await;
    let ready = claim_where(&claims, "a", "ready", is_ready).await;
    claim_where(&claims, "b", "ready", is_ready).await;
    let data = secret_data(&client, &ns.name, "a-db").await;
    assert!(data["dsn"].starts_with("mysql://"), "{}", data["dsn"]);
    login_with(DbKind::MariaDb, &data).await.unwrap();
    assert_no_password_in(&ready, &data);
    let b_data = secret_data(&client, &ns.name, "b-db").await;
    assert!(
        login_as(DbKind::MariaDb, &data, &b).await.is_err(),
        "a's login reached b's database"
    );
    login_with(DbKind::MariaDb, &b_data).await.unwrap();

    // Rotation: the Secret moves to the other login; the old one keeps
    // working until the next rotation.
    claims
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"dbaas.io/rotate": "r1"}}})),
        )
        .await
        .unwrap();
    let rotated = claim_where(&claims, "a", "rotated", |s| {
        s.handled_rotate_request.as_deref() == Some("r1")
    })
    .await;
    let new = secret_data(&client, &ns.name, "a-db").await;
    assert_ne!(new["username"], data["username"]);
    assert_eq!(
        rotated.status.as_ref().unwrap().active_login.as_deref(),
        Some(new["username"].as_str())
    );
    login_with(DbKind::MariaDb, &new).await.unwrap();
    login_with(DbKind::MariaDb, &data).await.unwrap();

    // A second request right away waits out the grace period: the login
    // apps just left keeps its password at least that long.
    claims
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"dbaas.io/rotate": "r2"}}})),
        )
        .await
        .unwrap();
    let second = claim_where(&claims, "a", "rotated again", |s| {
        s.handled_rotate_request.as_deref() == Some("r2")
    })
    .await;
    let (first_at, second_at) = (
        rotated
            .status
            .as_ref()
            .unwrap()
            .last_rotation
            .clone()
            .unwrap()
            .0,
        second.status.unwrap().last_rotation.unwrap().0,
    );
    let gap = second_at.duration_since(first_at);
    assert!(
        gap >= TEST_GRACE.try_into().unwrap(),
        "switches {gap:?} apart, grace {TEST_GRACE:?}"
    );
    let third = secret_data(&client, &ns.name, "a-db").await;
    assert_eq!(
        third["username"], data["username"],
        "back on the first login"
    );
    login_with(DbKind::MariaDb, &third).await.unwrap();
    login_with(DbKind::MariaDb, &new).await.unwrap();

    claims.delete("a", &DeleteParams::default()).await.unwrap();
    claims.delete("b", &DeleteParams::default()).await.unwrap();
    wait_gone(&claims, "a", CLAIM_TIMEOUT).await.unwrap();
    wait_gone(&claims, "b", CLAIM_TIMEOUT).await.unwrap();
    assert!(
        !database_exists(db, &a).await,
        "delete policy left the database"
    );
    assert!(!user_exists(db, &format!("{a}_a")).await && !user_exists(db, &format!("{a}_b")).await);
    assert!(
        database_exists(db, &b).await,
        "retain policy dropped the database"
    );
    drop(operator);
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_mariadb_claim_in_another_namespace_cannot_take_over() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let first = TestNamespace::create(&client, "maria-own").await.unwrap();
    let second = TestNamespace::create(&client, "maria-thief").await.unwrap();
    let _op1 = claim_operator(&client, &first.name);
    let _op2 = claim_operator(&client, &second.name);
    let db = DbServer::shared_mariadb();
    register_server(&client, &first.name, "maria", db, None, json!({})).await;
    register_server(&client, &second.name, "maria", db, None, json!({})).await;
    let id = unique();
    let name = format!("owned_{id}");
    let owners: Api<DatabaseClaim> = first.api();
    create_claim(
        &owners,
        &claim("app", DbKind::MariaDb, &name, &name, json!({})),
    )
    .await;
    claim_where(&owners, "app", "ready", is_ready).await;
    let before = secret_data(&client, &first.name, "app-db").await;
    let thieves: Api<DatabaseClaim> = second.api();
    create_claim(
        &thieves,
        &claim(
            "app",
            DbKind::MariaDb,
            &name,
            &name,
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    claim_where(
        &thieves,
        "app",
        "refused",
        ready_is("False", "OwnedByAnotherClaim"),
    )
    .await;
    let secrets: Api<Secret> = second.api();
    assert!(secrets.get_opt("app-db").await.unwrap().is_none());
    thieves
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&thieves, "app", CLAIM_TIMEOUT).await.unwrap();
    assert!(database_exists(db, &name).await);
    login_with(DbKind::MariaDb, &before).await.unwrap();
    first.delete().await.unwrap();
    second.delete().await.unwrap();
}

/// A DBA's procedures in database `schema`, idempotent as DBAs write
/// them: create makes the database and user if missing and gives the user
/// the new password; every call is logged.
async fn dba_procedures(db: &DbServer, schema: &str) {
    let mut conn = admin(db).await;
    conn.query_drop(format!("CREATE DATABASE {schema}"))
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE {schema}.log (action VARCHAR(16), db VARCHAR(64), usr VARCHAR(80))"
    ))
    .await
    .unwrap();
    conn.query_drop(format!(r#"CREATE PROCEDURE {schema}.create_db(IN db VARCHAR(64), IN usr VARCHAR(80), IN pw VARCHAR(128))
        BEGIN
            SET @stmt = CONCAT('CREATE DATABASE IF NOT EXISTS ', CONCAT('`', REPLACE(db, '`', '``'), '`')); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            SET @stmt = CONCAT('CREATE USER IF NOT EXISTS ', QUOTE(usr), '@''%'''); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            SET @stmt = CONCAT('ALTER USER ', QUOTE(usr), '@''%'' IDENTIFIED BY ', QUOTE(pw)); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            SET @stmt = CONCAT('GRANT ALL ON ', CONCAT('`', REPLACE(db, '`', '``'), '`'), '.* TO ', QUOTE(usr), '@''%'''); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            INSERT INTO {schema}.log VALUES ('create', db, usr);
            SELECT usr AS username, 'made by the DBA procedure' AS note;
        END"#)).await.unwrap();
    conn.query_drop(format!(r#"CREATE PROCEDURE {schema}.rotate_db(IN db VARCHAR(64), IN usr VARCHAR(80), IN pw VARCHAR(128))
        BEGIN
            SET @stmt = CONCAT('ALTER USER ', QUOTE(usr), '@''%'' IDENTIFIED BY ', QUOTE(pw)); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            INSERT INTO {schema}.log VALUES ('rotate', db, usr);
            SELECT usr AS username;
        END"#)).await.unwrap();
    conn.query_drop(format!(r#"CREATE PROCEDURE {schema}.delete_db(IN db VARCHAR(64), IN usr VARCHAR(80))
        BEGIN
            SET @stmt = CONCAT('DROP DATABASE IF EXISTS ', CONCAT('`', REPLACE(db, '`', '``'), '`')); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            SET @stmt = CONCAT('DROP USER IF EXISTS ', QUOTE(usr), '@''%'''); PREPARE s FROM @stmt; EXECUTE s; DEALLOCATE PREPARE s;
            INSERT INTO {schema}.log VALUES ('delete', db, usr);
        END"#)).await.unwrap();
}

/// `spec` of a DatabaseServer calling [`dba_procedures`].
fn procedures(schema: &str) -> serde_json::Value {
    json!({"storedProcedures": {
        "create": format!("{schema}.create_db"),
        "rotate": format!("{schema}.rotate_db"),
        "delete": format!("{schema}.delete_db"),
    }})
}

#[tokio::test]
async fn mariadb_stored_procedure_names_of_one_namespace_are_not_anothers() {
    let client = dbaas_testkit::shared().client().await.unwrap();
    let first = TestNamespace::create(&client, "mproc-own").await.unwrap();
    let second = TestNamespace::create(&client, "mproc-thief").await.unwrap();
    let _op1 = claim_operator(&client, &first.name);
    let _op2 = claim_operator(&client, &second.name);
    let db = DbServer::shared_mariadb();
    let id = unique();
    let schema = format!("dba_{id}");
    dba_procedures(db, &schema).await;
    for ns in [&first, &second] {
        register_server(&client, &ns.name, "maria", db, None, procedures(&schema)).await;
    }
    let delete = json!({"deletePolicy": "delete"});
    let name = format!("proc_{id}");
    let owners: Api<DatabaseClaim> = first.api();
    create_claim(
        &owners,
        &claim("app", DbKind::MariaDb, &name, &name, delete.clone()),
    )
    .await;
    claim_where(&owners, "app", "ready", is_ready).await;
    let before = secret_data(&client, &first.name, "app-db").await;

    // The same names from another namespace: without the records, the
    // DBA's idempotent create would hand this claim the owner's user with
    // a new password, and delete would drop the owner's database.
    let thieves: Api<DatabaseClaim> = second.api();
    create_claim(
        &thieves,
        &claim("app", DbKind::MariaDb, &name, &name, delete),
    )
    .await;
    let refused = claim_where(
        &thieves,
        "app",
        "refused",
        ready_is("False", "OwnedByAnotherClaim"),
    )
    .await;
    let error = refused.status.unwrap().error.unwrap();
    assert!(!error.contains(&first.name), "{error}");
    let secrets: Api<Secret> = second.api();
    assert!(secrets.get_opt("app-db").await.unwrap().is_none());
    thieves
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&thieves, "app", CLAIM_TIMEOUT).await.unwrap();
    assert!(database_exists(db, &name).await);
    login_with(DbKind::MariaDb, &before).await.unwrap();
    let mut conn = admin(db).await;
    let log: Vec<String> = conn
        .query(format!("SELECT CONCAT(action, ':', usr) FROM {schema}.log"))
        .await
        .unwrap();
    assert_eq!(log, vec![format!("create:{name}")]);
    first.delete().await.unwrap();
    second.delete().await.unwrap();
}

#[tokio::test]
async fn mariadb_stored_procedures_create_rotate_and_delete() {
    let (client, ns, operator) = setup("maria-proc").await;
    let db = DbServer::shared_mariadb();
    let id = unique();
    let schema = format!("dba_{id}");
    dba_procedures(db, &schema).await;
    register_server(&client, &ns.name, "maria", db, None, procedures(&schema)).await;
    let claims: Api<DatabaseClaim> = ns.api();
    let name = format!("proc_{id}");
    create_claim(
        &claims,
        &claim(
            "app",
            DbKind::MariaDb,
            &name,
            &name,
            json!({"deletePolicy": "delete"}),
        ),
    )
    .await;
    claim_where(&claims, "app", "ready", is_ready).await;
    let data = secret_data(&client, &ns.name, "app-db").await;
    assert_eq!(data["note"], "made by the DBA procedure");
    login_with(DbKind::MariaDb, &data).await.unwrap();
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
    login_with(DbKind::MariaDb, &rotated).await.unwrap();
    claims
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&claims, "app", CLAIM_TIMEOUT).await.unwrap();
    assert!(!database_exists(db, &name).await);
    let mut conn = admin(db).await;
    let log: Vec<String> = conn
        .query(format!("SELECT CONCAT(action, ':', usr) FROM {schema}.log"))
        .await
        .unwrap();
    assert_eq!(
        log,
        vec![
            format!("create:{name}"),
            format!("rotate:{name}"),
            format!("delete:{name}")
        ]
    );
    let servers: Api<DatabaseServer> = ns.api();
    assert!(servers.get("maria").await.unwrap().status.is_some());
    drop(operator);
    ns.delete().await.unwrap();
}
