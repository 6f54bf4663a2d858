//! dbaas-sql against a real PostgreSQL (hack/databases/postgres.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{admin_endpoint, claim, hostile_password, login_endpoint, owner, unique};
use dbaas_sql::quote::{pg_ident, pg_literal};
use dbaas_sql::{
    Admin, ClaimNames, ClaimOwner, Endpoint, Engine, PasswordPolicy, SqlError, TlsMode,
    check_login, generate_password,
};
use dbaas_testkit::db::{DbKind, DbServer};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls};

fn server() -> &'static DbServer {
    DbServer::shared_postgres()
}

fn admin_ep() -> Endpoint {
    admin_endpoint(server(), Engine::Postgres)
}

async fn admin() -> Admin {
    Admin::connect(&admin_ep()).await.unwrap()
}

/// A plain client, for checking what the crate did.
async fn raw(user: &str, password: &str, database: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::Config::new()
        .host(server().host())
        .port(server().port())
        .user(user)
        .password(password)
        .dbname(database)
        .connect(NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn raw_admin(database: &str) -> Client {
    raw(server().admin_user(), server().admin_password(), database)
        .await
        .unwrap()
}

fn new_password() -> SecretString {
    generate_password(&PasswordPolicy::default()).unwrap()
}

async fn role_comment(client: &Client, role: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap()
        .and_then(|row| row.get(0))
}

async fn role_exists(client: &Client, role: &str) -> bool {
    role_comment(client, role).await.is_some()
        || client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .unwrap()
            .is_some()
}

async fn database_owner(client: &Client, database: &str) -> Option<String> {
    client
        .query_opt(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
            &[&database],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

#[tokio::test]
async fn create_is_idempotent_and_both_logins_act_as_the_owner() {
    let (owner, names) = claim(Engine::Postgres, "create");
    let mut admin = admin().await;
    assert!(
        admin
            .server_version()
            .await
            .unwrap()
            .starts_with(server().version())
    );

    let first = admin.ensure_claim(&owner, &names).await.unwrap();
    assert!(first.database_created);
    let again = admin.ensure_claim(&owner, &names).await.unwrap();
    assert!(!again.database_created, "a second call adopts, not creates");

    let check = raw_admin("postgres").await;
    assert_eq!(
        database_owner(&check, &names.database).await.as_deref(),
        Some(names.owner.as_str())
    );
    for role in [&names.owner, &names.logins[0], &names.logins[1]] {
        // Every login can read role comments: a digest, never the names.
        let comment = role_comment(&check, role).await.unwrap();
        assert!(comment.starts_with("dbaas.io/claim-sha256="), "{comment}");
        assert!(
            comment.ends_with(&format!(" uid={}", owner.uid)),
            "{comment}"
        );
        assert!(
            !comment.contains(&owner.namespace) && !comment.contains(&owner.name),
            "{comment}"
        );
    }
    let can_login: bool = check
        .query_one(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&names.logins[0]],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!can_login, "logins start without a usable password");

    // Login a gets a password; b has none yet.
    let password_a = new_password();
    admin
        .set_password(&owner, &names, &names.logins[0], &password_a)
        .await
        .unwrap();
    let ep_a = login_endpoint(
        &admin_ep(),
        &names.logins[0],
        password_a.expose_secret(),
        &names.database,
    );
    check_login(&ep_a).await.unwrap();
    let ep_b_unset = login_endpoint(&admin_ep(), &names.logins[1], "anything", &names.database);
    let err = check_login(&ep_b_unset).await.unwrap_err();
    assert!(
        matches!(err, SqlError::AuthFailed { admin: false, .. }),
        "{err:?}"
    );
    assert_eq!(err.reason(), "LoginFailed");

    // A hostile password (not plain ASCII: the server hashes it) for b.
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
    check_login(&login_endpoint(
        &admin_ep(),
        &names.logins[1],
        &password_b,
        &names.database,
    ))
    .await
    .unwrap();

    // What a creates belongs to the owner, so b can use and drop it.
    let as_a = raw(
        &names.logins[0],
        password_a.expose_secret(),
        &names.database,
    )
    .await
    .unwrap();
    as_a.batch_execute(
        "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1), (2);",
    )
    .await
    .unwrap();
    let table_owner: String = as_a
        .query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'orders'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(table_owner, names.owner);
    let as_b = raw(&names.logins[1], &password_b, &names.database)
        .await
        .unwrap();
    let count: i64 = as_b
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);
    as_b.batch_execute("DROP TABLE orders").await.unwrap();

    // Rotation: a new password for a; the old one stops, b keeps working.
    let rotated = new_password();
    admin
        .set_password(&owner, &names, &names.logins[0], &rotated)
        .await
        .unwrap();
    assert!(
        check_login(&ep_a).await.is_err(),
        "the old password still works"
    );
    check_login(&login_endpoint(
        &admin_ep(),
        &names.logins[0],
        rotated.expose_secret(),
        &names.database,
    ))
    .await
    .unwrap();
    as_b.simple_query("SELECT 1").await.unwrap();

    // Only the claim's own logins.
    let err = admin
        .set_password(&owner, &names, "postgres", &rotated)
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Invalid { .. }), "{err:?}");

    admin.drop_claim(&owner, &names).await.unwrap();
}

#[tokio::test]
async fn grants_are_limited_to_the_claims_own_database() {
    let (owner_a, names_a) = claim(Engine::Postgres, "gra");
    let (owner_b, names_b) = claim(Engine::Postgres, "grb");
    let mut admin = admin().await;
    admin.ensure_claim(&owner_a, &names_a).await.unwrap();
    admin.ensure_claim(&owner_b, &names_b).await.unwrap();
    let password = new_password();
    admin
        .set_password(&owner_a, &names_a, &names_a.logins[0], &password)
        .await
        .unwrap();
    let password_b = new_password();
    admin
        .set_password(&owner_b, &names_b, &names_b.logins[0], &password_b)
        .await
        .unwrap();
    let as_b = raw(
        &names_b.logins[0],
        password_b.expose_secret(),
        &names_b.database,
    )
    .await
    .unwrap();
    as_b.batch_execute("CREATE TABLE secret (v text); INSERT INTO secret VALUES ('b only');")
        .await
        .unwrap();

    // A's login cannot even connect to B's database.
    let err = check_login(&login_endpoint(
        &admin_ep(),
        &names_a.logins[0],
        password.expose_secret(),
        &names_b.database,
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, SqlError::AuthFailed { .. }), "{err:?}");
    let err = raw(
        &names_a.logins[0],
        password.expose_secret(),
        &names_b.database,
    )
    .await
    .err()
    .unwrap();
    assert_eq!(
        err.code().map(|c| c.code()),
        Some("42501"),
        "expected permission denied for database: {err}"
    );

    // Nor become B's owner, nor read B's table from elsewhere.
    let as_a = raw(
        &names_a.logins[0],
        password.expose_secret(),
        &names_a.database,
    )
    .await
    .unwrap();
    let err = as_a
        .batch_execute(&format!("SET ROLE {}", pg_ident(&names_b.owner)))
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    // And nothing beyond its database: no new databases or roles.
    for ddl in ["CREATE DATABASE sneaky", "CREATE ROLE sneaky"] {
        let err = as_a.batch_execute(ddl).await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{ddl}: {err}");
    }

    admin.drop_claim(&owner_a, &names_a).await.unwrap();
    admin.drop_claim(&owner_b, &names_b).await.unwrap();
}

#[tokio::test]
async fn another_claim_cannot_take_over_and_changes_nothing() {
    let (owner_a, names_a) = claim(Engine::Postgres, "own");
    let mut admin = admin().await;
    admin.ensure_claim(&owner_a, &names_a).await.unwrap();
    let check = raw_admin("postgres").await;
    let comment_before = role_comment(&check, &names_a.owner).await;

    let intruder = ClaimOwner {
        namespace: "evil".into(),
        name: owner_a.name.clone(),
        uid: owner_a.uid.clone(),
    };
    let other_user = unique("intruder");
    let attempts = [
        // The same database and user.
        names_a.clone(),
        // The same user (and so roles), another database.
        ClaimNames::new(Engine::Postgres, &unique("elsewhere"), &names_a.owner).unwrap(),
        // The same database, another user.
        ClaimNames::new(Engine::Postgres, &names_a.database, &other_user).unwrap(),
    ];
    for names in &attempts {
        let err = admin.ensure_claim(&intruder, names).await.unwrap_err();
        match &err {
            SqlError::OwnedByOther { owner, .. } => {
                // Another namespace's claim is never named.
                assert_eq!(owner, "a claim in another namespace");
            }
            other => panic!("expected OwnedByOther, got {other:?}"),
        }
        assert_eq!(err.reason(), "OwnedByAnotherClaim");
        assert!(!err.is_transient());
        let err = admin.drop_claim(&intruder, names).await.unwrap_err();
        assert!(matches!(err, SqlError::OwnedByOther { .. }), "{err:?}");
    }
    let err = admin
        .set_password(&intruder, &names_a, &names_a.logins[0], &new_password())
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::OwnedByOther { .. }), "{err:?}");

    // Nothing changed: A's records and database as they were, no new roles
    // or databases for the intruder.
    assert_eq!(role_comment(&check, &names_a.owner).await, comment_before);
    assert_eq!(
        database_owner(&check, &names_a.database).await.as_deref(),
        Some(names_a.owner.as_str())
    );
    assert!(!role_exists(&check, &other_user).await);
    assert!(
        database_owner(&check, &attempts[1].database)
            .await
            .is_none()
    );
    let can_login: bool = check
        .query_one(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&names_a.logins[0]],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!can_login, "the intruder's set_password changed the login");

    // The same claim recreated (new uid, same namespace/name) adopts it.
    let recreated = ClaimOwner {
        uid: unique("newuid"),
        ..owner_a.clone()
    };
    let ensured = admin.ensure_claim(&recreated, &names_a).await.unwrap();
    assert!(!ensured.database_created);
    assert!(
        role_comment(&check, &names_a.logins[1])
            .await
            .unwrap()
            .ends_with(&format!("uid={}", recreated.uid))
    );
    admin.drop_claim(&recreated, &names_a).await.unwrap();
}

#[tokio::test]
async fn objects_that_exist_without_a_record_are_refused() {
    let check = raw_admin("postgres").await;
    let mut admin = admin().await;

    // A database made by someone else.
    let (owner, names) = claim(Engine::Postgres, "pre");
    check
        .batch_execute(&format!("CREATE DATABASE {}", pg_ident(&names.database)))
        .await
        .unwrap();
    let err = admin.ensure_claim(&owner, &names).await.unwrap_err();
    assert_eq!(
        err,
        SqlError::OwnedByOther {
            object: format!("database {}", names.database),
            owner: "someone outside dbaas-operator (no ownership record)".into(),
        }
    );
    assert!(
        !role_exists(&check, &names.owner).await,
        "roles were created anyway"
    );
    let err = admin.drop_claim(&owner, &names).await.unwrap_err();
    assert!(matches!(err, SqlError::OwnedByOther { .. }), "{err:?}");
    assert!(database_owner(&check, &names.database).await.is_some());

    // A role made by someone else, with a comment of its own.
    let (owner, names) = claim(Engine::Postgres, "prerole");
    check
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN; COMMENT ON ROLE {} IS 'the billing team''s login'",
            pg_ident(&names.logins[1]),
            pg_ident(&names.logins[1])
        ))
        .await
        .unwrap();
    let err = admin.ensure_claim(&owner, &names).await.unwrap_err();
    assert_eq!(
        err,
        SqlError::OwnedByOther {
            object: format!("role {}", names.logins[1]),
            owner: "someone outside dbaas-operator (no ownership record)".into(),
        }
    );
    assert!(!role_exists(&check, &names.owner).await);
    assert!(database_owner(&check, &names.database).await.is_none());
    assert_eq!(
        role_comment(&check, &names.logins[1]).await.as_deref(),
        Some("the billing team's login")
    );
}

#[tokio::test]
async fn a_crash_between_roles_and_database_is_recovered() {
    // Roles recorded, database missing: as if the operator died between
    // the two steps (CREATE DATABASE cannot share the roles' transaction).
    let (owner, names) = claim(Engine::Postgres, "crash");
    let mut admin = admin().await;
    admin.ensure_claim(&owner, &names).await.unwrap();
    let check = raw_admin("postgres").await;
    check
        .batch_execute(&format!("DROP DATABASE {}", pg_ident(&names.database)))
        .await
        .unwrap();
    let ensured = admin.ensure_claim(&owner, &names).await.unwrap();
    assert!(ensured.database_created);
    admin.drop_claim(&owner, &names).await.unwrap();
}

#[tokio::test]
async fn drop_leaves_nothing_despite_objects_dependencies_and_sessions() {
    let (owner, names) = claim(Engine::Postgres, "drop");
    let mut admin = admin().await;
    admin.ensure_claim(&owner, &names).await.unwrap();
    let password = new_password();
    for login in &names.logins {
        admin
            .set_password(&owner, &names, login, &password)
            .await
            .unwrap();
    }
    let as_a = raw(&names.logins[0], password.expose_secret(), &names.database)
        .await
        .unwrap();
    as_a.batch_execute(
        "CREATE SCHEMA app; \
         CREATE TABLE app.customers (id serial PRIMARY KEY, name text); \
         CREATE TABLE app.orders (id serial PRIMARY KEY, customer int REFERENCES app.customers); \
         CREATE VIEW app.order_names AS SELECT o.id, c.name FROM app.orders o JOIN app.customers c ON c.id = o.customer; \
         CREATE FUNCTION app.total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM app.orders'; \
         INSERT INTO app.customers (name) VALUES ('x');",
    )
    .await
    .unwrap();
    // A session of b in an open transaction holding a lock.
    let as_b = raw(&names.logins[1], password.expose_secret(), &names.database)
        .await
        .unwrap();
    as_b.batch_execute("BEGIN; LOCK TABLE app.customers IN ACCESS EXCLUSIVE MODE;")
        .await
        .unwrap();

    // Dependencies outside the claim's database: an object owned by the
    // owner role and a grant to a login, in another database.
    let other_db = unique("other");
    let check = raw_admin("postgres").await;
    check
        .batch_execute(&format!("CREATE DATABASE {}", pg_ident(&other_db)))
        .await
        .unwrap();
    let other = raw_admin(&other_db).await;
    other
        .batch_execute(&format!(
            "CREATE TABLE shared (v int); GRANT SELECT ON shared TO {}; \
             CREATE SCHEMA claim_owned AUTHORIZATION {};",
            pg_ident(&names.logins[0]),
            pg_ident(&names.owner)
        ))
        .await
        .unwrap();

    tokio::time::timeout(Duration::from_secs(60), admin.drop_claim(&owner, &names))
        .await
        .expect("drop_claim wedged")
        .unwrap();

    assert!(database_owner(&check, &names.database).await.is_none());
    for role in [&names.owner, &names.logins[0], &names.logins[1]] {
        assert!(!role_exists(&check, role).await, "{role} survived");
    }
    let leftover: i64 = other
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'claim_owned'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leftover, 0);
    other.simple_query("SELECT * FROM shared").await.unwrap();
    assert!(
        as_b.simple_query("SELECT 1").await.is_err(),
        "b's session survived"
    );

    // Dropping again is fine.
    admin.drop_claim(&owner, &names).await.unwrap();
    drop(other);
    check
        .batch_execute(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            pg_ident(&other_db)
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn quoting_round_trips_through_the_server() {
    let check = raw_admin("postgres").await;
    let tag = unique("q");
    let hostile_names = [
        format!("{tag} a\"b"),
        format!("{tag}'); DROP ROLE postgres; --"),
        format!("{tag} \"\"\""),
        format!("{tag} ü名🦀"),
        format!("{tag} back\\slash"),
        format!("{tag} $$dollar$$"),
    ];
    for name in &hostile_names {
        check
            .batch_execute(&format!(
                "CREATE ROLE {} NOLOGIN; COMMENT ON ROLE {} IS {}",
                pg_ident(name),
                pg_ident(name),
                pg_literal(name)
            ))
            .await
            .unwrap();
        assert_eq!(
            role_comment(&check, name).await.as_deref(),
            Some(name.as_str())
        );
        check
            .batch_execute(&format!("DROP ROLE {}", pg_ident(name)))
            .await
            .unwrap();
    }
    assert!(role_exists(&check, "postgres").await);

    // Literals mean the same with standard_conforming_strings on and off.
    let mut texts: Vec<String> = vec![
        String::new(),
        "'".into(),
        "\\".into(),
        "\\'".into(),
        "''\\\\''".into(),
        "E'x'".into(),
        "$1 $$ ;--".into(),
        "\u{2028}\t\r\n".into(),
    ];
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        proptest::prop_oneof![
            proptest::sample::select(vec!['\'', '"', '\\', ';', '$', 'E', '\n', 'é']),
            // Any char but NUL, which PostgreSQL text cannot hold.
            proptest::char::range('\u{1}', char::MAX),
        ],
        0..30,
    );
    for _ in 0..300 {
        use proptest::strategy::{Strategy, ValueTree};
        let chars = strategy.new_tree(&mut runner).unwrap().current();
        texts.push(chars.into_iter().collect());
    }
    for setting in ["on", "off"] {
        check
            .batch_execute(&format!("SET standard_conforming_strings = {setting}"))
            .await
            .unwrap();
        for text in &texts {
            let row = check
                .query_one(&format!("SELECT {}::text", pg_literal(text)), &[])
                .await
                .unwrap();
            assert_eq!(
                &row.get::<_, String>(0),
                text,
                "standard_conforming_strings={setting}"
            );
        }
    }
}

#[tokio::test]
async fn a_stopped_server_is_unreachable_and_transient() {
    let own = DbServer::start(DbKind::Postgres).unwrap();
    let endpoint = admin_endpoint(&own, Engine::Postgres);
    let (owner, names) = claim(Engine::Postgres, "down");
    let mut connected = Admin::connect(&endpoint).await.unwrap();

    own.stop().unwrap();
    let err = Admin::connect(&endpoint).await.unwrap_err();
    assert!(matches!(err, SqlError::Unreachable { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(err.reason(), "ServerUnreachable");
    let err = connected.ensure_claim(&owner, &names).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = check_login(&login_endpoint(&endpoint, "x_a", "pw", "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Unreachable { .. }), "{err:?}");

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
    assert!(!err.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn tls_modes_against_a_server_without_tls() {
    // The test server has no certificate: prefer falls back, require refuses.
    let prefer = Endpoint {
        tls: TlsMode::Prefer,
        trusted_ca: None,
        ..admin_ep()
    };
    Admin::connect(&prefer).await.unwrap();
    let require = Endpoint {
        tls: TlsMode::Require,
        trusted_ca: None,
        ..admin_ep()
    };
    let err = Admin::connect(&require).await.unwrap_err();
    assert!(matches!(err, SqlError::Tls { .. }), "{err:?}");
    assert_eq!(err.reason(), "TlsFailed");
}

/// Functions a DBA might provide: create a login and a schema named after
/// the database (a function cannot CREATE DATABASE), rotate, delete.
const PROCEDURES: &str = r#"
CREATE SCHEMA IF NOT EXISTS dba;
CREATE OR REPLACE FUNCTION dba.create_claim(p_database text, p_username text, p_password text)
RETURNS TABLE (username text, database text, schema text, created_by text)
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', p_username, p_password);
  EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', p_database, p_username);
  RETURN QUERY SELECT p_username, current_database()::text, p_database, 'dba.create_claim'::text;
END
$fn$;
CREATE OR REPLACE FUNCTION dba.rotate_claim(p_database text, p_username text, p_password text)
RETURNS TABLE (username text, rotated boolean)
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('ALTER ROLE %I PASSWORD %L', p_username, p_password);
  RETURN QUERY SELECT p_username, true;
END
$fn$;
CREATE OR REPLACE FUNCTION dba.delete_claim(p_database text, p_username text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', p_database);
  EXECUTE format('DROP ROLE IF EXISTS %I', p_username);
END
$fn$;
"#;

#[tokio::test]
async fn stored_procedures_create_rotate_and_delete() {
    let check = raw_admin("postgres").await;
    // Several tests binaries may define them at once.
    check
        .batch_execute(&format!(
            "SELECT pg_advisory_lock(4242); {PROCEDURES} SELECT pg_advisory_unlock(4242);"
        ))
        .await
        .unwrap();
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
    assert_eq!(out["database"], "postgres");
    assert_eq!(out["schema"], database);
    assert_eq!(out["created_by"], "dba.create_claim");
    check_login(&login_endpoint(
        &admin_ep(),
        &username,
        &password,
        &out["database"],
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
    assert_eq!(out["rotated"], "true");
    check_login(&login_endpoint(
        &admin_ep(),
        &username,
        &rotated,
        "postgres",
    ))
    .await
    .unwrap();
    assert!(
        check_login(&login_endpoint(
            &admin_ep(),
            &username,
            &password,
            "postgres"
        ))
        .await
        .is_err()
    );

    // What the function raises is a Procedure error, without the password.
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
    assert_eq!(err.reason(), "StoredProcedureFailed");
    assert!(!err.to_string().contains(&password), "{err}");

    admin
        .call_delete("dba.delete_claim", &database, &username)
        .await
        .unwrap();
    assert!(!role_exists(&check, &username).await);

    // Names are validated and quoted, never spliced.
    for bad in ["dba.create_claim(); DROP ROLE postgres; --", "a.b.c", "x y"] {
        let err = admin
            .call_delete(bad, &database, &username)
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::Invalid { .. }), "{bad}: {err:?}");
    }
    let err = admin
        .call_delete("dba.no_such_function", &database, &username)
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Procedure { .. }), "{err:?}");
}

#[tokio::test]
async fn concurrent_claims_for_the_same_names_never_share() {
    let base = unique("race");
    let names = ClaimNames::new(Engine::Postgres, &format!("{base}_db"), &base).unwrap();
    let claimants: Vec<ClaimOwner> = (0..4).map(|i| owner(&format!("ns{i}"), "app")).collect();
    let tasks: Vec<_> = claimants
        .iter()
        .cloned()
        .map(|claimant| {
            let names = names.clone();
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
    let check = raw_admin("postgres").await;
    let mut comments = Vec::new();
    for role in [&names.owner, &names.logins[0], &names.logins[1]] {
        comments.push(role_comment(&check, role).await);
    }
    assert!(comments.iter().all(|c| c == &comments[0]), "{comments:?}");
}

#[tokio::test]
async fn an_admin_with_createrole_and_createdb_but_not_superuser() {
    // What managed PostgreSQL services give: no superuser.
    let check = raw_admin("postgres").await;
    let admin_role = unique("manager");
    let admin_password = new_password();
    check
        .batch_execute(&format!(
            "CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}",
            pg_ident(&admin_role),
            pg_literal(admin_password.expose_secret())
        ))
        .await
        .unwrap();
    let endpoint = Endpoint {
        user: admin_role.clone(),
        password: admin_password.clone(),
        ..admin_ep()
    };
    let mut admin = Admin::connect(&endpoint).await.unwrap();
    let (owner, names) = claim(Engine::Postgres, "managed");
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
    let password = new_password();
    admin
        .set_password(&owner, &names, &names.logins[0], &password)
        .await
        .unwrap();
    let as_a = raw(&names.logins[0], password.expose_secret(), &names.database)
        .await
        .unwrap();
    as_a.batch_execute("CREATE TABLE t (v int)").await.unwrap();
    // A session still open while the claim is dropped.
    admin.drop_claim(&owner, &names).await.unwrap();
    assert!(database_owner(&check, &names.database).await.is_none());
    for role in [&names.owner, &names.logins[0], &names.logins[1]] {
        assert!(!role_exists(&check, role).await, "{role} survived");
    }
    drop(admin);
    check
        .batch_execute(&format!("DROP ROLE {}", pg_ident(&admin_role)))
        .await
        .unwrap();
}

/// Checkpoints requested so far (PostgreSQL 17 moved the counter).
async fn requested_checkpoints(client: &Client) -> i64 {
    client
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    match client
        .query_one("SELECT checkpoints_req FROM pg_stat_bgwriter", &[])
        .await
    {
        Ok(row) => row.get(0),
        Err(_) => client
            .query_one("SELECT num_requested FROM pg_stat_checkpointer", &[])
            .await
            .unwrap()
            .get(0),
    }
}

#[tokio::test]
async fn the_file_copy_strategy_copies_files_with_a_checkpoint() {
    let check = raw_admin("postgres").await;
    let (owner, names) = claim(Engine::Postgres, "filecopy");
    let mut admin = admin().await;
    admin.set_create_database_strategy(Some(dbaas_sql::CreateDatabaseStrategy::FileCopy));
    let before = requested_checkpoints(&check).await;
    assert!(
        admin
            .ensure_claim(&owner, &names)
            .await
            .unwrap()
            .database_created
    );
    // FILE_COPY checkpoints before and after copying; WAL_LOG never does.
    let mut after = requested_checkpoints(&check).await;
    for _ in 0..20 {
        if after > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = requested_checkpoints(&check).await;
    }
    assert!(
        after > before,
        "no checkpoint was requested: {before} -> {after}"
    );
    assert_eq!(
        database_owner(&check, &names.database).await.as_deref(),
        Some(names.owner.as_str())
    );
    admin.drop_claim(&owner, &names).await.unwrap();
}
