//! Database and user provisioning on PostgreSQL and MySQL/MariaDB for
//! DatabaseClaims. No Kubernetes in here: the operator maps claims to these
//! calls.
//!
//! # What a claim gets on the server
//!
//! [`ClaimNames::new`] turns the claim's database and user name into the
//! names on the server (checked against `^[a-z_][a-z0-9_]*$` and the
//! engine's length limits):
//!
//! | | PostgreSQL | MySQL / MariaDB |
//! |---|---|---|
//! | database | `db`, owned by the owner role; `CONNECT`/`TEMP` revoked from `PUBLIC` | `db` |
//! | owner | `user`: a `NOLOGIN` role that owns the database and every object in it | not created (tables have no owner there) |
//! | logins | `user_a`, `user_b`: members of the owner role with `ALTER ROLE .. SET role = user`, so what they create belongs to the owner | `` `user_a`@'%' ``, `` `user_b`@'%' `` with `ALL` on `` `db`.* `` only |
//!
//! Two logins make rotation free of downtime: the operator gives the
//! inactive one a new password ([`Admin::set_password`]), proves it works
//! ([`check_login`]), publishes it, and leaves the other one valid until the
//! app has moved over. Logins start without a usable password (`NOLOGIN` /
//! a locked account with a random password nobody knows).
//!
//! # Ownership
//!
//! Every object is recorded on the server as belonging to one claim
//! ([`ClaimOwner`]) and checked before every change; anything recorded as
//! another claim's, or existing without a record (made by someone else),
//! is refused with [`SqlError::OwnedByOther`] and left untouched.
//!
//! - PostgreSQL: a comment on each role, `dbaas.io/claim-sha256=<digest> uid=<uid>`
//!   (a digest of `<namespace>/<name>`: every login may read role comments),
//!   written in the same transaction that creates the roles, before the
//!   database (which `CREATE DATABASE` cannot join). The database is ours
//!   when its owner is our recorded owner role, so a crash between the two
//!   steps is recovered on the next call.
//! - MySQL/MariaDB: rows in `dbaas_operator.ownership`
//!   (`object_kind`, `object_name` -> claim namespace, name, uid), inserted
//!   in a transaction before the objects are created; the primary key makes
//!   a concurrent claim for the same name fail instead of sharing it.
//!
//! The claim's namespace and name decide; its uid is informational and is
//! updated to the current claim's uid. So a claim deleted with the `retain`
//! policy and created again under the same name (a new uid) gets its
//! database back, while a claim of the same name in another namespace never
//! does. The namespace is the trust boundary.
//!
//! # Stored procedures
//!
//! Servers whose admins provision by procedure ([`Admin::call_create`],
//! [`Admin::call_rotate`], [`Admin::call_delete`]) are called with bind
//! parameters `(database, username, password)` / `(database, username)`:
//!
//! - PostgreSQL: a **function** (`RETURNS TABLE (...)`, a composite type, or
//!   `SETOF` either; `void` for delete) called as
//!   `SELECT row_to_json(t)::text FROM (SELECT * FROM fn($1::text, $2::text, $3::text)) t`.
//!   A `PROCEDURE` cannot return a result set, so functions are what fits.
//!   Note that PostgreSQL cannot `CREATE DATABASE` inside a function: such a
//!   function creates roles/schemas in existing databases and says where in
//!   its `database` column.
//! - MySQL/MariaDB: a **procedure** called as `CALL proc(?, ?, ?)`, whose
//!   first result set (its `SELECT`) is the output.
//!
//! The procedures receive only names, so [`Admin::hold_procedure_names`]
//! records which claim holds them before every call (a user per claim, a
//! database per namespace; see `holds.rs`) and refuses another namespace's.
//!
//! The single row it returns becomes a map of column name -> value as text
//! (`NULL` columns left out; no row gives an empty map, more than one row is
//! an error), which the operator puts in the claim's Secret.
//!
//! # Safety
//!
//! Values go through bind parameters wherever the server allows them. DDL
//! cannot take parameters, so identifiers and literals are quoted by
//! [`quote`] (one function per engine and kind, property-tested and
//! round-tripped through the real servers). PostgreSQL passwords are sent as
//! SCRAM-SHA-256 verifiers computed here, so the password itself never
//! reaches the server's statement logs. Error messages never contain a
//! password.

mod admin;
mod error;
mod holds;
mod mysql;
mod names;
mod password;
mod postgres;
pub mod quote;
mod scram;
mod secret;
mod tls;

use std::sync::Arc;

use secrecy::SecretString;

pub use admin::{Admin, Ensured, check_login};
pub use error::SqlError;
pub use names::{ClaimNames, ClaimOwner, NameError};
pub use password::{
    PASSWORD_LENGTHS, PASSWORD_SYMBOLS, PasswordError, PasswordPolicy, generate_password,
};
pub use secret::{
    Connection, DEFAULT_KEYS, PLACEHOLDERS, TemplateError, libpq_dsn, render_template, secret_data,
    uri,
};
pub use tls::certificates_only;

/// The kind of server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    Postgres,
    MySql,
    MariaDb,
}

impl Engine {
    /// `postgres`, `mysql` or `mariadb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
            Engine::MariaDb => "mariadb",
        }
    }

    /// The server's usual port (5432 or 3306).
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MySql | Engine::MariaDb => 3306,
        }
    }

    fn is_postgres(self) -> bool {
        self == Engine::Postgres
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TLS to the server, in libpq's vocabulary (for MySQL: `DISABLED`,
/// `PREFERRED`, `REQUIRED`, `VERIFY_CA`, `VERIFY_IDENTITY`).
///
/// `Prefer` and `Require` encrypt without checking the certificate (as
/// libpq does without a root certificate); `VerifyCa` checks the chain and
/// `VerifyFull` also the host name. Trusted roots are the endpoint's
/// `trusted_ca` when given, else the system's (`/etc/ssl/certs`;
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` point elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsMode {
    Disable,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    /// libpq's `sslmode` value (`disable` .. `verify-full`).
    pub fn as_libpq(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }

    /// MySQL's `ssl-mode` value (`DISABLED` .. `VERIFY_IDENTITY`).
    pub fn as_mysql(self) -> &'static str {
        match self {
            TlsMode::Disable => "DISABLED",
            TlsMode::Prefer => "PREFERRED",
            TlsMode::Require => "REQUIRED",
            TlsMode::VerifyCa => "VERIFY_CA",
            TlsMode::VerifyFull => "VERIFY_IDENTITY",
        }
    }
}

/// PostgreSQL's `CREATE DATABASE ... STRATEGY` (15 and later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDatabaseStrategy {
    /// Write the copy of the template to the WAL (the server's default).
    WalLog,
    /// Copy the template's files, with a checkpoint before and after.
    FileCopy,
}

impl CreateDatabaseStrategy {
    /// The keyword of the `STRATEGY` clause.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::WalLog => "WAL_LOG",
            Self::FileCopy => "FILE_COPY",
        }
    }
}

/// Where to connect and as whom: the admin's login for [`Admin::connect`],
/// a claim's login for [`check_login`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: SecretString,
    /// The database to connect to; PostgreSQL defaults to `postgres`, MySQL
    /// to none.
    pub database: Option<String>,
    pub tls: TlsMode,
    /// PEM certificates the verifying modes trust instead of the system's
    /// roots (the CA that signed the server's certificate).
    pub trusted_ca: Option<Arc<str>>,
}
