//! dbaas-sql against a real MariaDB (hack/databases/mariadb.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{admin_endpoint, claim, hostile_password, login_endpoint, owner, unique};
use dbaas_sql::quote::{mysql_ident, mysql_literal};
use dbaas_sql::{
    Admin, ClaimNames, ClaimOwner, Endpoint, Engine, PasswordPolicy, SqlError, TlsMode,
    check_login, generate_password,
};
use dbaas_testkit::db::{DbKind, DbServer};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row};
use secrecy::{ExposeSecret, SecretString};

fn server() -> &'static DbServer {
    DbServer::shared_mariadb()
}

fn admin_ep() -> Endpoint {
    admin_endpoint(server(), Engine::MariaDb)
}

async fn admin() -> Admin {
    Admin::connect(&admin_ep()).await.unwrap()
}

/// A plain connection, for checking what the crate did.
async fn raw(
    user: &str,
    password: &str,
    database: Option<&str>,
) -> Result<Conn, mysql_async::Error> {
    Conn::new(
        OptsBuilder::default()
            .ip_or_hostname(server().host())
            .tcp_port(server().port())
            .user(Some(user))
            .pass(Some(password))
            .db_name(database)
            .prefer_socket(false),
    )
    .await
}

async fn raw_admin() -> Conn {
    raw(server().admin_user(), server().admin_password(), None)
        .await
        .unwrap()
}

fn new_password() -> SecretString {
    generate_password(&PasswordPolicy::default()).unwrap()
}

async fn count(conn: &mut Conn, sql: &str, params: impl Into<mysql_async::Params> + Send) -> i64 {
    let row: Row = conn.exec_first(sql, params).await.unwrap().unwrap();
    row.get::<i64, usize>(0).unwrap()
}

async fn database_exists(conn: &mut Conn, database: &str) -> bool {
    count(
        conn,
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        (database,),
    )
    .await
        > 0
}

async fn user_exists(conn: &mut Conn, user: &str) -> bool {
    count(
        conn,
        "SELECT COUNT(*) FROM mysql.user WHERE User = ?",
        (user,),
    )
    .await
        > 0
}

/// The claims recorded for these object names.
async fn records(conn: &mut Conn, names: &ClaimNames) -> Vec<(String, String, String, String)> {
    conn.exec_map(
        "SELECT object_kind, object_name, claim_namespace, claim_name \
         FROM dbaas_operator.ownership WHERE object_name IN (?, ?, ?) ORDER BY object_kind, object_name",
        (
            names.database.as_str(),
            names.logins[0].as_str(),
            names.logins[1].as_str(),
        ),
        |(kind, name, namespace, claim)| (kind, name, namespace, claim),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn create_is_idempotent_and_both_logins_share_the_database() {
    let (owner, names) = claim(Engine::MariaDb, "create");
    let mut admin = admin().await;
    assert!(admin.server_version().await.unwrap().contains("MariaDB"));

    assert!(
        admin
            .ensure_claim(&owner, &names)
            .await
            .unwrap()
            .database_created
    );
    assert!(
        !admin
            .ensure_claim(&owner, &names)
            .await
            .unwrap()
            .database_created
    );

    let mut check = raw_admin().await;
    assert!(database_exists(&mut check, &names.database).await);
    let recorded = records(&mut check, &names).await;
    let expected: Vec<_> = [
        ("database", &names.database),
        ("user", &names.logins[0]),
        ("user", &names.logins[1]),
    ]
    .iter()
    .map(|(kind, name)| {
        (
            kind.to_string(),
            name.to_string(),
            owner.namespace.clone(),
            owner.name.clone(),
        )
    })
    .collect();
    assert_eq!(recorded, expected);

    // Locked until a password is set.
    let err = check_login(&login_endpoint(
        &admin_ep(),
        &names.logins[0],
        "x",
        &names.database,
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(err, SqlError::AuthFailed { admin: false, .. }),
        "{err:?}"
    );

    let password_a = new_password();
    admin
        .set_password(&owner, &names, &names.logins[0], &password_a)
        .await
        .unwrap();
    let password_b = hostile_password("b");
    admin
        .set_password(
            &owner,
            &names,
            &names.logins[1],
            &SecretString::from(password_b.clone()),
        )
        .await
        .unwrap();
    let ep_a = login_endpoint(
        &admin_ep(),
        &names.logins[0],
        password_a.expose_secret(),
        &names.database,
    );
    check_login(&ep_a).await.unwrap();
    check_login(&login_endpoint(
        &admin_ep(),
        &names.logins[1],
        &password_b,
        &names.database,
    ))
    .await
    .unwrap();

    // What a creates, b uses and drops.
    let mut as_a = raw(
        &names.logins[0],
        password_a.expose_secret(),
        Some(&names.database),
    )
    .await
    .unwrap();
    as_a.query_drop("CREATE TABLE orders (id INT PRIMARY KEY); INSERT INTO orders VALUES (1), (2)")
        .await
        .unwrap();
    let mut as_b = raw(&names.logins[1], &password_b, Some(&names.database))
        .await
        .unwrap();
    assert_eq!(count(&mut as_b, "SELECT COUNT(*) FROM orders", ()).await, 2);
    as_b.query_drop("DROP TABLE orders").await.unwrap();

    // Rotation: a's old password stops, b is untouched.
    let rotated = new_password();
    admin
        .set_password(&owner, &names, &names.logins[0], &rotated)
        .await
        .unwrap();
    assert!(check_login(&ep_a).await.is_err());
    check_login(&login_endpoint(
        &admin_ep(),
        &names.logins[0],
        rotated.expose_secret(),
        &names.database,
    ))
    .await
    .unwrap();
    as_b.query_drop("SELECT 1").await.unwrap();

    admin.drop_claim(&owner, &names).await.unwrap();
}

#[tokio::test]
async fn grants_are_limited_to_the_claims_own_database() {
    // `<p>_q` read as a GRANT pattern would also match `<p>xq`.
    let prefix = unique("wild");
    let names_a = ClaimNames::new(Engine::MariaDb, &format!("{prefix}_q"), &unique("ga")).unwrap();
    let names_b = ClaimNames::new(Engine::MariaDb, &format!("{prefix}xq"), &unique("gb")).unwrap();
    let owner_a = owner("team-a", "app");
    let owner_b = owner("team-b", "app");
    let mut admin = admin().await;
    admin.ensure_claim(&owner_a, &names_a).await.unwrap();
    admin.ensure_claim(&owner_b, &names_b).await.unwrap();
    let password = new_password();
    admin
        .set_password(&owner_a, &names_a, &names_a.logins[0], &password)
        .await
        .unwrap();

    let err = check_login(&login_endpoint(
        &admin_ep(),
        &names_a.logins[0],
        password.expose_secret(),
        &names_b.database,
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, SqlError::AuthFailed { .. }), "{err:?}");

    let mut as_a = raw(
        &names_a.logins[0],
        password.expose_secret(),
        Some(&names_a.database),
    )
    .await
    .unwrap();
    for sql in [
        format!("CREATE TABLE {}.t (v INT)", mysql_ident(&names_b.database)),
        format!("USE {}", mysql_ident(&names_b.database)),
        "CREATE DATABASE sneaky".to_owned(),
        "CREATE USER sneaky".to_owned(),
        "SELECT * FROM mysql.user".to_owned(),
        "SELECT * FROM dbaas_operator.ownership".to_owned(),
    ] {
        let err = as_a.query_drop(&sql).await.unwrap_err();
        assert!(
            matches!(&err, mysql_async::Error::Server(e) if [1044, 1142, 1227].contains(&e.code)),
            "{sql}: {err}"
        );
    }
    // Its own database works.
    as_a.query_drop("CREATE TABLE mine (v INT)").await.unwrap();

    admin.drop_claim(&owner_a, &names_a).await.unwrap();
    admin.drop_claim(&owner_b, &names_b).await.unwrap();
}

#[tokio::test]
async fn another_claim_cannot_take_over_and_changes_nothing() {
    let (owner_a, names_a) = claim(Engine::MariaDb, "own");
    let mut admin = admin().await;
    admin.ensure_claim(&owner_a, &names_a).await.unwrap();
    let mut check = raw_admin().await;
    let before = records(&mut check, &names_a).await;

    let intruder = ClaimOwner {
        namespace: "evil".into(),
        ..owner_a.clone()
    };
    let other_user = unique("intruder");
    let elsewhere = unique("elsewhere");
    let attempts = [
        names_a.clone(),
        ClaimNames::new(Engine::MariaDb, &elsewhere, &names_a.owner).unwrap(),
        ClaimNames::new(Engine::MariaDb, &names_a.database, &other_user).unwrap(),
    ];
    for names in &attempts {
        let err = admin.ensure_claim(&intruder, names).await.unwrap_err();
        assert_eq!(
            err,
            match &err {
                SqlError::OwnedByOther { object, .. } => SqlError::OwnedByOther {
                    object: object.clone(),
                    // Another namespace's claim is never named.
                    owner: "a claim in another namespace".into(),
                },
                other => panic!("expected OwnedByOther, got {other:?}"),
            }
        );
        let err = admin.drop_claim(&intruder, names).await.unwrap_err();
        assert!(matches!(err, SqlError::OwnedByOther { .. }), "{err:?}");
    }
    let err = admin
        .set_password(&intruder, &names_a, &names_a.logins[0], &new_password())
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::OwnedByOther { .. }), "{err:?}");

    assert_eq!(records(&mut check, &names_a).await, before);
    assert!(!database_exists(&mut check, &elsewhere).await);
    assert!(!user_exists(&mut check, &format!("{other_user}_a")).await);
    assert!(database_exists(&mut check, &names_a.database).await);
    let unrecorded = count(
        &mut check,
        "SELECT COUNT(*) FROM dbaas_operator.ownership WHERE object_name IN (?, ?)",
        (elsewhere.as_str(), format!("{other_user}_a")),
    )
    .await;
    assert_eq!(unrecorded, 0, "the refused claim left records behind");

    // The same claim recreated (new uid) adopts it and updates the uid.
    let recreated = ClaimOwner {
        uid: unique("newuid"),
        ..owner_a.clone()
    };
    assert!(
        !admin
            .ensure_claim(&recreated, &names_a)
            .await
            .unwrap()
            .database_created
    );
    let uids = count(
        &mut check,
        "SELECT COUNT(*) FROM dbaas_operator.ownership WHERE claim_uid = ?",
        (recreated.uid.as_str(),),
    )
    .await;
    assert_eq!(uids, 3);
    admin.drop_claim(&recreated, &names_a).await.unwrap();
    assert!(records(&mut check, &names_a).await.is_empty());
}

#[tokio::test]
async fn objects_that_exist_without_a_record_are_refused() {
    let mut check = raw_admin().await;
    let mut admin = admin().await;

    let (owner, names) = claim(Engine::MariaDb, "pre");
    check
        .query_drop(format!("CREATE DATABASE {}", mysql_ident(&names.database)))
        .await
        .unwrap();
    let err = admin.ensure_claim(&owner, &names).await.unwrap_err();
    assert_eq!(
        err,
        SqlError::OwnedByOther {
            object: format!("database {}", names.database),
            owner: "someone outside dbaas-operator (no ownership record)".into()
        }
    );
    assert!(!user_exists(&mut check, &names.logins[0]).await);
    assert!(records(&mut check, &names).await.is_empty());
    assert!(matches!(
        admin.drop_claim(&owner, &names).await,
        Err(SqlError::OwnedByOther { .. })
    ));
    assert!(database_exists(&mut check, &names.database).await);

    let (owner, names) = claim(Engine::MariaDb, "preuser");
    check
        .query_drop(format!("CREATE USER {}@'%'", mysql_ident(&names.logins[1])))
        .await
        .unwrap();
    let err = admin.ensure_claim(&owner, &names).await.unwrap_err();
    assert_eq!(
        err,
        SqlError::OwnedByOther {
            object: format!("user {}@'%'", names.logins[1]),
            owner: "someone outside dbaas-operator (no ownership record)".into()
        }
    );
    assert!(!database_exists(&mut check, &names.database).await);
    assert!(records(&mut check, &names).await.is_empty());
}

#[tokio::test]
async fn drop_leaves_nothing_despite_objects_and_sessions() {
    let (owner, names) = claim(Engine::MariaDb, "drop");
    let mut admin = admin().await;
    admin.ensure_claim(&owner, &names).await.unwrap();
    let password = new_password();
    for login in &names.logins {
        admin
            .set_password(&owner, &names, login, &password)
            .await
            .unwrap();
    }
    let mut as_a = raw(
        &names.logins[0],
        password.expose_secret(),
        Some(&names.database),
    )
    .await
    .unwrap();
    as_a.query_drop(
        "CREATE TABLE customers (id INT PRIMARY KEY) ENGINE=InnoDB; \
         CREATE TABLE orders (id INT PRIMARY KEY, customer INT, \
           FOREIGN KEY (customer) REFERENCES customers (id)) ENGINE=InnoDB; \
         CREATE VIEW order_ids AS SELECT id FROM orders; \
         CREATE PROCEDURE total() SELECT COUNT(*) FROM orders; \
         INSERT INTO customers VALUES (1);",
    )
    .await
    .unwrap();
    // b holds a row lock and a metadata lock in an open transaction.
    let mut as_b = raw(
        &names.logins[1],
        password.expose_secret(),
        Some(&names.database),
    )
    .await
    .unwrap();
    as_b.query_drop("START TRANSACTION; SELECT * FROM customers FOR UPDATE")
        .await
        .unwrap();

    tokio::time::timeout(Duration::from_secs(60), admin.drop_claim(&owner, &names))
        .await
        .expect("drop_claim wedged")
        .unwrap();

    let mut check = raw_admin().await;
    assert!(!database_exists(&mut check, &names.database).await);
    for login in &names.logins {
        assert!(!user_exists(&mut check, login).await, "{login} survived");
    }
    assert!(records(&mut check, &names).await.is_empty());
    let grants = count(
        &mut check,
        "SELECT COUNT(*) FROM mysql.db WHERE User IN (?, ?)",
        (names.logins[0].as_str(), names.logins[1].as_str()),
    )
    .await;
    assert_eq!(grants, 0);
    assert!(
        as_b.query_drop("SELECT 1").await.is_err(),
        "b's session survived"
    );
    admin.drop_claim(&owner, &names).await.unwrap();
}

#[tokio::test]
async fn quoting_round_trips_through_the_server() {
    let mut check = raw_admin().await;
    let tag = unique("q");
    for name in [
        format!("{tag}`b"),
        format!("{tag}'); DROP USER root; --"),
        format!("{tag}\"d"),
        format!("{tag} ü名"),
        format!("{tag}\\x"),
    ] {
        check
            .query_drop(format!("CREATE USER {}@'%'", mysql_ident(&name)))
            .await
            .unwrap();
        assert!(user_exists(&mut check, &name).await, "{name}");
        check
            .query_drop(format!("DROP USER {}@'%'", mysql_ident(&name)))
            .await
            .unwrap();
        // Database names may not hold / \ . or end in a space.
        if !name.contains(['\\', '.', '/']) {
            check
                .query_drop(format!("CREATE DATABASE {}", mysql_ident(&name)))
                .await
                .unwrap();
            assert!(database_exists(&mut check, &name).await, "{name}");
            check
                .query_drop(format!("DROP DATABASE {}", mysql_ident(&name)))
                .await
                .unwrap();
        }
    }
    assert!(user_exists(&mut check, "root").await);

    let mut texts: Vec<String> = vec![
        String::new(),
        "'".into(),
        "\\".into(),
        "\\'".into(),
        "\0".into(),
        "\u{1a}".into(),
        "\"".into(),
        "%_".into(),
        "🦀 \r\n\t".into(),
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(vec!['\'', '"', '\\', '`', '\0', '\u{1a}', ';', '\n', 'é']),
            proptest::char::any(),
        ],
        0..30,
    );
    for _ in 0..300 {
        use proptest::strategy::{Strategy, ValueTree};
        let chars = strategy.new_tree(&mut runner).unwrap().current();
        texts.push(chars.into_iter().collect());
    }
    // What our sessions use, and ANSI_QUOTES (where "" would be a name).
    check.query_drop("SET NAMES utf8mb4").await.unwrap();
    for mode in ["", "ANSI_QUOTES"] {
        check
            .exec_drop("SET SESSION sql_mode = ?", (mode,))
            .await
            .unwrap();
        for text in &texts {
            let row: Row = check
                .query_first(format!("SELECT CAST({} AS CHAR)", mysql_literal(text)))
                .await
                .unwrap()
                .unwrap();
            let back: String = row.get(0).unwrap();
            assert_eq!(&back, text, "sql_mode={mode}");
        }
    }
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_transient() {
    let own = DbServer::start(DbKind::MariaDb).unwrap();
    let endpoint = admin_endpoint(&own, Engine::MariaDb);
    let (owner, names) = claim(Engine::MariaDb, "down");
    let mut connected = Admin::connect(&endpoint).await.unwrap();

    own.stop().unwrap();
    let err = Admin::connect(&endpoint).await.unwrap_err();
    assert!(matches!(err, SqlError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.reason(), "ServerUnreachable");
    let err = connected.ensure_claim(&owner, &names).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");

    own.resume().unwrap();
    let mut admin = Admin::connect(&endpoint).await.unwrap();
    assert!(
        admin
            .ensure_claim(&owner, &names)
            .await
            .unwrap()
            .database_created
    );
}

#[tokio::test]
async fn a_wrong_admin_password_is_auth_failed() {
    let endpoint = Endpoint {
        password: SecretString::from("not-the-password"),
        ..admin_ep()
    };
    let err = Admin::connect(&endpoint).await.unwrap_err();
    assert!(
        matches!(err, SqlError::AuthFailed { admin: true, .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "AdminAuthFailed");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn tls_modes_against_a_server_without_tls() {
    Admin::connect(&Endpoint {
        tls: TlsMode::Prefer,
        trusted_ca: None,
        ..admin_ep()
    })
    .await
    .unwrap();
    let err = Admin::connect(&Endpoint {
        tls: TlsMode::Require,
        trusted_ca: None,
        ..admin_ep()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, SqlError::Tls { .. }), "{err:?}");
}

/// Procedures a DBA might provide; they quote with QUOTE() and backticks
/// themselves, we bind the arguments.
const PROCEDURES: [&str; 4] = [
    "CREATE DATABASE IF NOT EXISTS dba",
    "CREATE OR REPLACE PROCEDURE dba.create_claim(IN p_database VARCHAR(64), IN p_username VARCHAR(80), IN p_password VARCHAR(255))
     BEGIN
       SET @ddl = CONCAT('CREATE DATABASE `', REPLACE(p_database, '`', '``'), '`');
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
       SET @ddl = CONCAT('CREATE USER ', QUOTE(p_username), '@''%'' IDENTIFIED BY ', QUOTE(p_password));
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
       SET @ddl = CONCAT('GRANT ALL ON `', REPLACE(p_database, '`', '``'), '`.* TO ', QUOTE(p_username), '@''%''');
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
       SELECT p_username AS username, p_database AS `database`, 3306 AS port, NULL AS nothing;
     END",
    "CREATE OR REPLACE PROCEDURE dba.rotate_claim(IN p_database VARCHAR(64), IN p_username VARCHAR(80), IN p_password VARCHAR(255))
     BEGIN
       SET @ddl = CONCAT('ALTER USER ', QUOTE(p_username), '@''%'' IDENTIFIED BY ', QUOTE(p_password));
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
       SELECT p_username AS username, NOW() AS rotated_at;
     END",
    "CREATE OR REPLACE PROCEDURE dba.delete_claim(IN p_database VARCHAR(64), IN p_username VARCHAR(80))
     BEGIN
       SET @ddl = CONCAT('DROP DATABASE IF EXISTS `', REPLACE(p_database, '`', '``'), '`');
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
       SET @ddl = CONCAT('DROP USER IF EXISTS ', QUOTE(p_username), '@''%''');
       PREPARE s FROM @ddl; EXECUTE s; DEALLOCATE PREPARE s;
     END",
];

#[tokio::test]
async fn stored_procedures_create_rotate_and_delete() {
    let mut check = raw_admin().await;
    for ddl in PROCEDURES {
        check.query_drop(ddl).await.unwrap();
    }
    let mut admin = admin().await;
    let database = unique("sp");
    let username = unique("spuser");
    let password = hostile_password("create");

    let out = admin
        .call_create(
            "dba.create_claim",
            &database,
            &username,
            &SecretString::from(password.clone()),
        )
        .await
        .unwrap();
    assert_eq!(out["username"], username);
    assert_eq!(out["database"], database);
    assert_eq!(out["port"], "3306");
    assert!(!out.contains_key("nothing"));
    check_login(&login_endpoint(
        &admin_ep(),
        &username,
        &password,
        &database,
    ))
    .await
    .unwrap();

    let rotated = hostile_password("rotated");
    let out = admin
        .call_rotate(
            "dba.rotate_claim",
            &database,
            &username,
            &SecretString::from(rotated.clone()),
        )
        .await
        .unwrap();
    assert_eq!(out["username"], username);
    assert!(out["rotated_at"].starts_with("20"), "{out:?}");
    check_login(&login_endpoint(&admin_ep(), &username, &rotated, &database))
        .await
        .unwrap();
    assert!(
        check_login(&login_endpoint(
            &admin_ep(),
            &username,
            &password,
            &database
        ))
        .await
        .is_err()
    );

    // A failing procedure: a Procedure error without the password.
    let err = admin
        .call_create(
            "dba.create_claim",
            &database,
            &username,
            &SecretString::from(password.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Procedure { .. }), "{err:?}");
    assert!(!err.to_string().contains(&password), "{err}");

    admin
        .call_delete("dba.delete_claim", &database, &username)
        .await
        .unwrap();
    assert!(!database_exists(&mut check, &database).await);
    assert!(!user_exists(&mut check, &username).await);

    for bad in ["dba.create_claim(); DROP USER root; --", "a.b.c", "`x`"] {
        let err = admin
            .call_delete(bad, &database, &username)
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::Invalid { .. }), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn concurrent_claims_for_the_same_names_never_share() {
    let base = unique("race");
    let names = ClaimNames::new(Engine::MariaDb, &format!("{base}_db"), &base).unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let names = names.clone();
            let claimant = owner(&format!("ns{i}"), "app");
            tokio::spawn(async move {
                let mut admin = Admin::connect(&admin_ep()).await.unwrap();
                admin.ensure_claim(&claimant, &names).await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(SqlError::OwnedByOther { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners, 1);
    let mut check = raw_admin().await;
    let recorded = records(&mut check, &names).await;
    assert_eq!(recorded.len(), 3);
    assert!(
        recorded.iter().all(|r| r.2 == recorded[0].2),
        "{recorded:?}"
    );
}
