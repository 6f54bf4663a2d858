//! The TLS modes against real PostgreSQL and MariaDB servers that serve TLS
//! with a certificate for the IP 127.0.0.1 from a CA of their own.
//!
//! The verifying modes trust the endpoint's CA when it names one (checked
//! in process), else the system's roots (`SSL_CERT_FILE`), which is
//! process-wide, so those checks run in a child process of this test binary
//! with `SSL_CERT_FILE` pointing at the test CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{admin_endpoint, login_endpoint};
use dbaas_sql::{Admin, Endpoint, Engine, SqlError, TlsMode, check_login};
use dbaas_testkit::db::{DbKind, DbServer};
use mysql_async::prelude::Queryable;
use secrecy::SecretString;

const CHILD_ENV: &str = "DBAAS_SQL_TLS_CHILD";

fn engine_of(kind: DbKind) -> Engine {
    match kind {
        DbKind::Postgres => Engine::Postgres,
        DbKind::MariaDb => Engine::MariaDb,
    }
}

fn with_tls(endpoint: &Endpoint, tls: TlsMode, host: &str) -> Endpoint {
    Endpoint {
        tls,
        trusted_ca: None,
        host: host.to_owned(),
        ..endpoint.clone()
    }
}

/// How many sessions of ours the PostgreSQL server sees encrypted.
async fn encrypted_sessions(server: &DbServer) -> i64 {
    let (client, connection) = tokio_postgres::Config::new()
        .host(server.host())
        .port(server.port())
        .user(server.admin_user())
        .password(server.admin_password())
        .dbname("postgres")
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'dbaas-operator' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn without_trusted_ca(server: &DbServer, engine: Engine) {
    let admin = admin_endpoint(server, engine);
    let host = server.host();

    // require: encrypted, certificate not checked.
    let mut connected = Admin::connect(&with_tls(&admin, TlsMode::Require, host))
        .await
        .unwrap();
    connected.server_version().await.unwrap();
    match engine {
        Engine::Postgres => assert!(encrypted_sessions(server).await >= 1),
        Engine::MySql | Engine::MariaDb => {
            // A user the server only lets in over TLS.
            let mut root = mysql_async::Conn::new(
                mysql_async::OptsBuilder::default()
                    .ip_or_hostname(host)
                    .tcp_port(server.port())
                    .user(Some(server.admin_user()))
                    .pass(Some(server.admin_password()))
                    .prefer_socket(false),
            )
            .await
            .unwrap();
            root.query_drop(
                "CREATE USER IF NOT EXISTS tls_only@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL",
            )
            .await
            .unwrap();
            let login = login_endpoint(&admin, "tls_only", "tls-pw", "");
            let login = Endpoint {
                database: None,
                ..login
            };
            for mode in [TlsMode::Require, TlsMode::Prefer] {
                check_login(&with_tls(&login, mode, host)).await.unwrap();
            }
            let err = check_login(&with_tls(&login, TlsMode::Disable, host))
                .await
                .unwrap_err();
            assert!(matches!(err, SqlError::AuthFailed { .. }), "{err:?}");
        }
    }

    // The test CA is not among the system's roots: verifying modes refuse.
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
        let err = Admin::connect(&with_tls(&admin, mode, host))
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::Tls { .. }), "{mode:?}: {err:?}");
        assert!(!err.is_transient());
    }
}

/// The endpoint's own CA: trusted in place of the system's roots, by this
/// process alone.
async fn with_the_endpoints_ca(server: &DbServer, engine: Engine, other_ca: &str) {
    let admin = admin_endpoint(server, engine);
    let ca = std::fs::read_to_string(server.ca_cert().unwrap()).unwrap();
    let trusting = |ca: &str, mode: TlsMode, host: &str| Endpoint {
        trusted_ca: Some(ca.into()),
        ..with_tls(&admin, mode, host)
    };
    let mut connected = Admin::connect(&trusting(&ca, TlsMode::VerifyFull, "127.0.0.1"))
        .await
        .unwrap();
    connected.server_version().await.unwrap();
    // The name still counts under verify-full, not under verify-ca.
    let err = Admin::connect(&trusting(&ca, TlsMode::VerifyFull, "localhost"))
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Tls { .. }), "{err:?}");
    Admin::connect(&trusting(&ca, TlsMode::VerifyCa, "localhost"))
        .await
        .unwrap();
    // Another CA (a real one, of the other server) is refused.
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyFull] {
        let err = Admin::connect(&trusting(other_ca, mode, "127.0.0.1"))
            .await
            .unwrap_err();
        assert!(matches!(err, SqlError::Tls { .. }), "{mode:?}: {err:?}");
    }
}

#[test]
fn tls_modes_against_servers_with_tls() {
    let servers = [DbKind::Postgres, DbKind::MariaDb]
        .map(|kind| (kind, DbServer::start_with_tls(kind).unwrap()));
    let ca_of = |server: &DbServer| std::fs::read_to_string(server.ca_cert().unwrap()).unwrap();
    for (index, (kind, server)) in servers.iter().enumerate() {
        let kind = *kind;
        let engine = engine_of(kind);
        let other_ca = ca_of(&servers[1 - index].1);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(without_trusted_ca(server, engine));
        runtime.block_on(with_the_endpoints_ca(server, engine, &other_ca));

        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "verify_modes_with_the_test_ca_trusted",
                "--ignored",
                "--nocapture",
            ])
            .env(
                CHILD_ENV,
                format!(
                    "{kind} {} {} {}",
                    server.port(),
                    server.admin_user(),
                    server.admin_password()
                ),
            )
            .env("SSL_CERT_FILE", server.ca_cert().unwrap())
            .env_remove("SSL_CERT_DIR")
            .status()
            .unwrap();
        assert!(status.success(), "{kind}: the verify-mode checks failed");
    }
}

/// Run by [`tls_modes_against_servers_with_tls`] in a child process.
#[tokio::test]
#[ignore = "run by tls_modes_against_servers_with_tls, with SSL_CERT_FILE set"]
async fn verify_modes_with_the_test_ca_trusted() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        eprintln!(
            "{CHILD_ENV} is not set: nothing to check outside tls_modes_against_servers_with_tls"
        );
        return;
    };
    let fields: Vec<&str> = spec.split(' ').collect();
    let engine = if fields[0] == DbKind::Postgres.to_string() {
        Engine::Postgres
    } else {
        Engine::MariaDb
    };
    let admin = Endpoint {
        engine,
        host: "127.0.0.1".into(),
        port: fields[1].parse().unwrap(),
        user: fields[2].into(),
        password: SecretString::from(fields[3]),
        database: None,
        tls: TlsMode::VerifyFull,
        trusted_ca: None,
    };
    // The certificate names 127.0.0.1, and the CA is trusted now.
    let mut connected = Admin::connect(&admin).await.unwrap();
    connected.server_version().await.unwrap();
    // "localhost" is not in the certificate: verify-full refuses ...
    let err = Admin::connect(&with_tls(&admin, TlsMode::VerifyFull, "localhost"))
        .await
        .unwrap_err();
    assert!(matches!(err, SqlError::Tls { .. }), "{err:?}");
    // ... verify-ca checks the chain only.
    Admin::connect(&with_tls(&admin, TlsMode::VerifyCa, "localhost"))
        .await
        .unwrap();
}
