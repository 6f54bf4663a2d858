//! The test database servers really run, keep data across stop/resume, check
//! passwords, and disappear (port closed, data dir removed) when dropped.
//! Queries go through the packages' own command-line clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use dbaas_testkit::db::{DbKind, DbServer};

/// Runs `sql` with the admin user (or `password` instead of the admin's) and returns stdout.
fn query(server: &DbServer, password: &str, sql: &str) -> Result<String, String> {
    let output = match server.kind() {
        DbKind::Postgres => {
            let bin_dir = std::fs::read_dir("/usr/lib/postgresql")
                .unwrap()
                .map(|entry| entry.unwrap().path().join("bin"))
                .max()
                .unwrap();
            Command::new(bin_dir.join("psql"))
                .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(server.host())
                .arg("-p")
                .arg(server.port().to_string())
                .arg("-U")
                .arg(server.admin_user())
                .args(["-d", "postgres", "-c", sql])
                .env("PGPASSWORD", password)
                .env("PGCONNECT_TIMEOUT", "5")
                .output()
                .unwrap()
        }
        DbKind::MariaDb => Command::new("mariadb")
            .args([
                "--no-defaults",
                "--protocol=tcp",
                "--batch",
                "--skip-column-names",
            ])
            .arg(format!("--host={}", server.host()))
            .arg(format!("--port={}", server.port()))
            .arg(format!("--user={}", server.admin_user()))
            .arg(format!("--password={password}"))
            .args(["--connect-timeout=5", "-e", sql])
            .output()
            .unwrap(),
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn port_open(server: &DbServer) -> bool {
    let addr = format!("{}:{}", server.host(), server.port())
        .parse()
        .unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

fn lifecycle(kind: DbKind) {
    let server = DbServer::start(kind).unwrap();
    let password = server.admin_password().to_owned();
    assert_eq!(server.host(), "127.0.0.1");
    assert!(server.data_dir().is_dir());
    assert_eq!(query(&server, &password, "SELECT 40 + 2").unwrap(), "42");
    let denied = query(&server, "not-the-password", "SELECT 1").unwrap_err();
    assert!(
        denied.contains("authentication failed") || denied.contains("Access denied"),
        "{denied}"
    );

    let db = if kind == DbKind::Postgres {
        "public"
    } else {
        "mysql"
    };
    query(
        &server,
        &password,
        &format!("CREATE TABLE {db}.kept (v int)"),
    )
    .unwrap();
    query(
        &server,
        &password,
        &format!("INSERT INTO {db}.kept VALUES (7)"),
    )
    .unwrap();

    server.stop().unwrap();
    assert!(!port_open(&server), "{kind}: port still open after stop");
    assert!(query(&server, &password, "SELECT 1").is_err());
    server.stop().unwrap(); // stopping a stopped server is fine

    server.resume().unwrap();
    assert!(port_open(&server));
    assert_eq!(
        query(&server, &password, &format!("SELECT v FROM {db}.kept")).unwrap(),
        "7",
        "{kind}: data lost across stop/resume"
    );
    server.resume().unwrap(); // resuming a running server is fine

    let data_dir = server.data_dir().to_owned();
    let port = server.port();
    drop(server);
    assert!(
        !data_dir.exists(),
        "{kind}: {} left behind",
        data_dir.display()
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
}

#[test]
fn postgres_lifecycle() {
    lifecycle(DbKind::Postgres);
}

#[test]
fn mariadb_lifecycle() {
    lifecycle(DbKind::MariaDb);
}

#[test]
fn shared_servers_are_started_once() {
    let postgres = DbServer::shared_postgres();
    assert_eq!(postgres.port(), DbServer::shared_postgres().port());
    assert_eq!(
        query(
            postgres,
            postgres.admin_password(),
            "SHOW password_encryption"
        )
        .unwrap(),
        "scram-sha-256"
    );
    let mariadb = DbServer::shared_mariadb();
    assert_eq!(mariadb.port(), DbServer::shared_mariadb().port());
    assert_ne!(postgres.port(), mariadb.port());
    assert_eq!(
        query(mariadb, mariadb.admin_password(), "SELECT CURRENT_USER()").unwrap(),
        "root@%"
    );
}
