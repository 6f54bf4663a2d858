//! MySQL and MariaDB: claims as a database and two login accounts
//! (`user_a`@'%', `user_b`@'%') with all privileges on that database only;
//! ownership recorded in `dbaas_operator.ownership`.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Params, Row, SslOpts, Value};
use secrecy::{ExposeSecret, SecretString};

use crate::holds::{self, Hold};
use crate::names::Record;
use crate::password::unknown_password;
use crate::postgres::{CONNECT_TIMEOUT, Login};
use crate::quote::{mysql_grant_database, mysql_ident, mysql_literal};
use crate::{ClaimNames, ClaimOwner, Endpoint, Ensured, SqlError, TlsMode, tls};

/// The database holding the ownership records.
pub(crate) const CATALOG_DATABASE: &str = "dbaas_operator";

/// The ownership records, quoted.
const CATALOG_TABLE: &str = "`dbaas_operator`.`ownership`";

const CATALOG_DDL: &str = "CREATE TABLE IF NOT EXISTS `dbaas_operator`.`ownership` (\
    object_kind VARCHAR(16) NOT NULL, \
    object_name VARCHAR(128) NOT NULL, \
    claim_namespace VARCHAR(253) NOT NULL, \
    claim_name VARCHAR(253) NOT NULL, \
    claim_uid VARCHAR(128) NOT NULL, \
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, \
    PRIMARY KEY (object_kind, object_name)\
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

/// Account host of every login we manage.
const ANY_HOST: &str = "'%'";

fn ssl_opts(mode: TlsMode, trusted_ca: Option<&str>) -> Result<Option<SslOpts>, String> {
    let roots = || -> Result<SslOpts, String> {
        let roots = tls::roots(trusted_ca)?
            .into_iter()
            .map(|der| der.as_ref().to_vec().into())
            .collect();
        Ok(SslOpts::default()
            .with_root_certs(roots)
            .with_disable_built_in_roots(true))
    };
    Ok(match mode {
        TlsMode::Disable => None,
        // libpq's require: encrypted, certificate not checked.
        TlsMode::Prefer | TlsMode::Require => {
            Some(SslOpts::default().with_danger_accept_invalid_certs(true))
        }
        TlsMode::VerifyCa => Some(roots()?.with_danger_skip_domain_validation(true)),
        TlsMode::VerifyFull => Some(roots()?),
    })
}

/// Connects to `endpoint` over TCP.
pub(crate) async fn connect(endpoint: &Endpoint, login: Login) -> Result<Conn, SqlError> {
    let ssl =
        ssl_opts(endpoint.tls, endpoint.trusted_ca.as_deref()).map_err(|detail| SqlError::Tls {
            host: endpoint.host.clone(),
            port: endpoint.port,
            detail,
        })?;
    let attempt = |ssl: Option<SslOpts>| {
        let opts = OptsBuilder::default()
            .ip_or_hostname(endpoint.host.clone())
            .tcp_port(endpoint.port)
            .user(Some(endpoint.user.clone()))
            .pass(Some(endpoint.password.expose_secret().to_owned()))
            .db_name(endpoint.database.clone())
            // Never switch to a local socket behind the caller's back.
            .prefer_socket(false)
            .ssl_opts(ssl);
        async move {
            tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts))
                .await
                .map_err(|_| SqlError::Unreachable {
                    host: endpoint.host.clone(),
                    port: endpoint.port,
                    detail: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
                })
        }
    };
    let classify = |err| classify(err, endpoint, Some(login), "connecting");
    match attempt(ssl.clone()).await? {
        Ok(conn) => Ok(conn),
        // prefer: a server without TLS is fine.
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if endpoint.tls == TlsMode::Prefer =>
        {
            attempt(None).await?.map_err(classify)
        }
        // verify-ca: mysql_async's skip_domain_validation misses rustls'
        // current name error (blackbeam/mysql_async#404). That error comes
        // only after the chain was verified, so connect again verifying
        // against a name the certificate has: chain checked, name ignored.
        Err(err) if endpoint.tls == TlsMode::VerifyCa => {
            match (
                certificate_names(&err).and_then(|names| names.into_iter().next()),
                ssl,
            ) {
                (Some(name), Some(ssl)) => {
                    attempt(Some(ssl.with_danger_tls_hostname_override(Some(name))))
                        .await?
                        .map_err(classify)
                }
                _ => Err(classify(err)),
            }
        }
        Err(err) => Err(classify(err)),
    }
}

/// The names of a certificate rustls refused only for its name.
fn certificate_names(err: &mysql_async::Error) -> Option<Vec<String>> {
    let mysql_async::Error::Io(mysql_async::IoError::Io(io)) = err else {
        return None;
    };
    let rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
        presented,
        ..
    }) = io.get_ref()?.downcast_ref::<rustls::Error>()?
    else {
        return None;
    };
    Some(
        presented
            .iter()
            .filter_map(|name| presented_name(name))
            .collect(),
    )
}

/// webpki lists names as `DnsName("db.example")` / `IpAddress(10.0.0.1)`;
/// a wildcard gets a label that matches it.
fn presented_name(text: &str) -> Option<String> {
    if let Some(dns) = text
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
    {
        return Some(dns.replacen('*', "x", 1));
    }
    text.strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
        .map(str::to_owned)
}

/// Maps a driver error to [`SqlError`]; `login` is set while connecting.
pub(crate) fn classify(
    err: mysql_async::Error,
    endpoint: &Endpoint,
    login: Option<Login>,
    context: &str,
) -> SqlError {
    use mysql_async::{DriverError, Error, IoError};
    let unreachable = |detail: String| SqlError::Unreachable {
        host: endpoint.host.clone(),
        port: endpoint.port,
        detail,
    };
    let tls = |detail: String| SqlError::Tls {
        host: endpoint.host.clone(),
        port: endpoint.port,
        detail,
    };
    match err {
        Error::Server(server) => match (server.code, login) {
            // Access denied (1045, 1044 for the database), account locked
            // (MySQL 3118, MariaDB 4151), password expired (1862).
            (1045 | 1044 | 3118 | 4151 | 1862, Some(login)) => SqlError::AuthFailed {
                user: endpoint.user.clone(),
                admin: login == Login::Admin,
                detail: server.message,
            },
            // Access denied to an object or a privilege.
            (1044 | 1045 | 1142 | 1143 | 1227 | 1370 | 1410, None) => SqlError::PermissionDenied {
                detail: format!("{context}: {}", server.message),
            },
            // Shutting down, or our connection was killed.
            (1053 | 1927, _) => unreachable(server.message),
            (code, _) => SqlError::Server {
                code: code.to_string(),
                message: format!("{context}: {}", server.message),
            },
        },
        Error::Io(IoError::Tls(err)) => tls(err.to_string()),
        // rustls reports a refused certificate through the I/O error.
        Error::Io(IoError::Io(err))
            if err
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>()) =>
        {
            tls(err.to_string())
        }
        Error::Io(IoError::Io(err)) => unreachable(err.to_string()),
        Error::Driver(DriverError::NoClientSslFlagFromServer) => {
            tls("the server does not offer TLS".to_owned())
        }
        Error::Driver(DriverError::ConnectionClosed) => unreachable("connection closed".to_owned()),
        Error::Driver(err) => SqlError::Server {
            code: "client".to_owned(),
            message: format!("{context}: {err}"),
        },
        Error::Other(err) => SqlError::Server {
            code: "client".to_owned(),
            message: format!("{context}: {err}"),
        },
        Error::Url(err) => SqlError::Invalid {
            detail: err.to_string(),
        },
    }
}

/// A value as text (`None` for NULL).
fn value_text(value: &Value) -> Option<String> {
    Some(match value {
        Value::NULL => return None,
        Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(n) => n.to_string(),
        Value::Double(n) => n.to_string(),
        Value::Date(year, month, day, hour, minute, second, micros) => {
            let mut text =
                format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}");
            if *micros > 0 {
                text.push_str(&format!(".{micros:06}"));
            }
            text
        }
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let hours = u32::from(*hours) + days * 24;
            let sign = if *negative { "-" } else { "" };
            let mut text = format!("{sign}{hours:02}:{minutes:02}:{seconds:02}");
            if *micros > 0 {
                text.push_str(&format!(".{micros:06}"));
            }
            text
        }
    })
}

/// A row as column name -> text, NULLs left out.
fn row_map(row: &Row) -> BTreeMap<String, String> {
    row.columns_ref()
        .iter()
        .enumerate()
        .filter_map(|(i, column)| {
            let text = row.as_ref(i).and_then(value_text)?;
            Some((column.name_str().into_owned(), text))
        })
        .collect()
}

/// The text of column `i` (empty when NULL).
fn text_at(row: &Row, i: usize) -> String {
    row.as_ref(i).and_then(value_text).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Database,
    User,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::User => "user",
        }
    }
}

/// One of a claim's objects as found on the server.
struct Object {
    kind: Kind,
    name: String,
    exists: bool,
    record: Option<Record>,
}

impl Object {
    fn label(&self) -> String {
        match self.kind {
            Kind::Database => format!("database {}", self.name),
            Kind::User => format!("user {}@'%'", self.name),
        }
    }

    /// Ours when recorded as the claim's; free when neither recorded nor present.
    fn check(&self, owner: &ClaimOwner) -> Result<(), SqlError> {
        match &self.record {
            Some(record) if record.belongs_to(owner) => Ok(()),
            None if !self.exists => Ok(()),
            record => Err(SqlError::OwnedByOther {
                object: self.label(),
                owner: Record::label(record.as_ref(), owner),
            }),
        }
    }
}

/// An admin connection to a MySQL or MariaDB server.
pub(crate) struct MyAdmin {
    conn: Conn,
    endpoint: Endpoint,
    /// MySQL 8 with `partial_revokes`: GRANT takes `_` and `%` literally.
    wildcards_literal: bool,
    catalog_ready: bool,
}

impl MyAdmin {
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<MyAdmin, SqlError> {
        let conn = connect(endpoint, Login::Admin).await?;
        let mut admin = MyAdmin {
            conn,
            endpoint: endpoint.clone(),
            wildcards_literal: false,
            catalog_ready: false,
        };
        // mysql_literal relies on backslash escapes; utf8mb4 has no
        // multi-byte character that ends in a quote byte.
        admin
            .run(
                "configuring the session",
                "SET NAMES utf8mb4, \
                 SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', ''), \
                 SESSION lock_wait_timeout = 30",
            )
            .await?;
        let version = admin.server_version().await?;
        if !version.contains("MariaDB") {
            // Unknown before MySQL 8.0.16: then wildcards apply.
            admin.wildcards_literal = admin
                .conn
                .query_first::<Row, _>("SELECT @@GLOBAL.partial_revokes")
                .await
                .ok()
                .flatten()
                .is_some_and(|row| text_at(&row, 0) == "1");
        }
        Ok(admin)
    }

    fn error(&self, err: mysql_async::Error, context: &str) -> SqlError {
        classify(err, &self.endpoint, None, context)
    }

    async fn run(&mut self, context: &str, sql: &str) -> Result<(), SqlError> {
        match self.conn.query_drop(sql).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.error(err, context)),
        }
    }

    async fn rows(
        &mut self,
        context: &str,
        sql: &str,
        params: impl Into<Params> + Send,
    ) -> Result<Vec<Row>, SqlError> {
        match self.conn.exec::<Row, _, _>(sql, params).await {
            Ok(rows) => Ok(rows),
            Err(err) => Err(self.error(err, context)),
        }
    }

    pub(crate) async fn server_version(&mut self) -> Result<String, SqlError> {
        let row = match self.conn.query_first::<Row, _>("SELECT VERSION()").await {
            Ok(row) => row,
            Err(err) => return Err(self.error(err, "reading the server version")),
        };
        Ok(row.map(|row| text_at(&row, 0)).unwrap_or_default())
    }

    async fn ensure_catalog(&mut self) -> Result<(), SqlError> {
        if !self.catalog_ready {
            self.run(
                "creating the ownership catalog",
                "CREATE DATABASE IF NOT EXISTS `dbaas_operator` CHARACTER SET utf8mb4",
            )
            .await?;
            self.run("creating the ownership catalog", CATALOG_DDL)
                .await?;
            self.catalog_ready = true;
        }
        Ok(())
    }

    /// The ownership records of objects named `names` (any kind).
    async fn records(&mut self, names: &[&str]) -> Result<Vec<holds::Row>, SqlError> {
        self.ensure_catalog().await?;
        let placeholders = vec!["?"; names.len()].join(", ");
        let names: Vec<Value> = names.iter().map(|name| Value::from(*name)).collect();
        Ok(self
            .rows(
                "reading the ownership records",
                &format!(
                    "SELECT object_kind, object_name, claim_namespace, claim_name, claim_uid \
                     FROM {CATALOG_TABLE} WHERE object_name IN ({placeholders})"
                ),
                Params::Positional(names),
            )
            .await?
            .iter()
            .map(|row| holds::Row {
                kind: text_at(row, 0),
                name: text_at(row, 1),
                record: Record::named(text_at(row, 2), text_at(row, 3), text_at(row, 4)),
            })
            .collect())
    }

    /// Removes `owner`'s records of `objects` (kind, name); others' stay.
    async fn forget(
        &mut self,
        owner: &ClaimOwner,
        objects: &[(Kind, &str)],
    ) -> Result<(), SqlError> {
        for (kind, name) in objects {
            if let Err(err) = self
                .conn
                .exec_drop(
                    "DELETE FROM `dbaas_operator`.`ownership` \
                     WHERE claim_namespace = ? AND claim_name = ? \
                       AND object_kind = ? AND object_name = ?",
                    (
                        owner.namespace.as_str(),
                        owner.name.as_str(),
                        kind.as_str(),
                        *name,
                    ),
                )
                .await
            {
                return Err(self.error(err, "removing the ownership records"));
            }
        }
        Ok(())
    }

    /// The claim's database and logins, with their records.
    async fn inspect(&mut self, names: &ClaimNames) -> Result<Vec<Object>, SqlError> {
        let [login_a, login_b] = &names.logins;
        let wanted = [
            (Kind::Database, names.database.as_str()),
            (Kind::User, login_a.as_str()),
            (Kind::User, login_b.as_str()),
        ];
        let records = self.records(&wanted.map(|(_, name)| name)).await?;
        let database_exists = !self
            .rows(
                "reading databases",
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
                (names.database.as_str(),),
            )
            .await?
            .is_empty();
        let users: Vec<String> = self
            .rows(
                "reading users",
                "SELECT User FROM mysql.user WHERE Host = '%' AND User IN (?, ?)",
                (login_a.as_str(), login_b.as_str()),
            )
            .await?
            .iter()
            .map(|row| text_at(row, 0))
            .collect();
        Ok(wanted
            .iter()
            .map(|(kind, name)| Object {
                kind: *kind,
                name: (*name).to_owned(),
                record: records
                    .iter()
                    .find(|row| row.kind == kind.as_str() && row.name == *name)
                    .map(|row| row.record.clone()),
                exists: match kind {
                    Kind::Database => database_exists,
                    Kind::User => users.iter().any(|user| user == name),
                },
            })
            .collect())
    }

    pub(crate) async fn ensure_claim(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<Ensured, SqlError> {
        // A concurrent claim for the same name loses on the primary key or
        // on CREATE; the second look tells whether it was ours.
        match self.try_ensure(owner, names).await {
            Err(err) if err.is_conflict() => self.try_ensure(owner, names).await,
            other => other,
        }
    }

    async fn try_ensure(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<Ensured, SqlError> {
        let objects = self.inspect(names).await?;
        for object in &objects {
            object.check(owner)?;
        }
        self.record(owner, &objects).await?;

        let database_created = !objects[0].exists;
        if database_created {
            self.run(
                "creating the database",
                &format!(
                    "CREATE DATABASE {} CHARACTER SET utf8mb4",
                    mysql_ident(&names.database)
                ),
            )
            .await?;
        }
        let grant_target = mysql_grant_database(&names.database, self.wildcards_literal);
        for user in objects.iter().filter(|o| o.kind == Kind::User) {
            let account = format!("{}@{ANY_HOST}", mysql_ident(&user.name));
            if !user.exists {
                // Locked, with a password nobody knows, until set_password.
                let password = unknown_password().map_err(|err| SqlError::Invalid {
                    detail: err.to_string(),
                })?;
                self.run(
                    "creating the user",
                    &format!(
                        "CREATE USER {account} IDENTIFIED BY {} ACCOUNT LOCK",
                        mysql_literal(&password)
                    ),
                )
                .await
                .map_err(|err| err.redact(&password))?;
            }
            self.run(
                "granting the database",
                &format!("GRANT ALL PRIVILEGES ON {grant_target}.* TO {account}"),
            )
            .await?;
        }
        Ok(Ensured { database_created })
    }

    /// Writes the records of `objects` for `owner` in one transaction:
    /// new rows for unrecorded objects, the current uid for ours.
    async fn record(&mut self, owner: &ClaimOwner, objects: &[Object]) -> Result<(), SqlError> {
        let pending: Vec<&Object> = objects
            .iter()
            .filter(|o| o.record.as_ref().is_none_or(|r| r.uid != owner.uid))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let writes: Vec<holds::Write<'_>> = pending
            .iter()
            .map(|object| {
                let (kind, name) = (object.kind.as_str(), object.name.as_str());
                if object.record.is_none() {
                    holds::Write::Insert { kind, name }
                } else {
                    holds::Write::UpdateUid { kind, name }
                }
            })
            .collect();
        self.write_records(owner, &writes).await
    }

    /// Carries out `writes` in one transaction.
    async fn write_records(
        &mut self,
        owner: &ClaimOwner,
        writes: &[holds::Write<'_>],
    ) -> Result<(), SqlError> {
        let statements = holds::write_statements(writes, owner, CATALOG_TABLE, mysql_literal);
        self.in_transaction("recording ownership", |admin| {
            Box::pin(async move {
                for statement in &statements {
                    admin.run("recording ownership", statement).await?;
                }
                Ok(())
            })
        })
        .await
    }

    pub(crate) async fn set_password(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
        login: &str,
        password: &SecretString,
    ) -> Result<(), SqlError> {
        let objects = self.inspect(names).await?;
        let user = objects
            .iter()
            .find(|o| o.kind == Kind::User && o.name == login)
            .ok_or_else(|| SqlError::Invalid {
                detail: format!("{login} is not one of the claim's logins"),
            })?;
        user.check(owner)?;
        if !user.exists {
            return Err(SqlError::NotFound {
                object: user.label(),
            });
        }
        let password = password.expose_secret();
        self.run(
            "setting the password",
            &format!(
                "ALTER USER {}@{ANY_HOST} IDENTIFIED BY {} ACCOUNT UNLOCK",
                mysql_ident(login),
                mysql_literal(password)
            ),
        )
        .await
        .map_err(|err| err.redact(password))
    }

    pub(crate) async fn drop_claim(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<(), SqlError> {
        let objects = self.inspect(names).await?;
        for object in &objects {
            object.check(owner)?;
        }
        let users: Vec<&Object> = objects
            .iter()
            .filter(|o| o.kind == Kind::User && o.exists)
            .collect();
        // No new sessions, then end the current ones (an open transaction
        // would hold DROP DATABASE on a metadata lock).
        for user in &users {
            self.run(
                "locking the user",
                &format!(
                    "ALTER USER {}@{ANY_HOST} ACCOUNT LOCK",
                    mysql_ident(&user.name)
                ),
            )
            .await?;
        }
        let [login_a, login_b] = &names.logins;
        let sessions = self
            .rows(
                "finding the claim's sessions",
                "SELECT ID FROM information_schema.PROCESSLIST \
                 WHERE (USER IN (?, ?) OR DB = ?) AND ID <> CONNECTION_ID()",
                (login_a.as_str(), login_b.as_str(), names.database.as_str()),
            )
            .await?;
        for session in sessions {
            let Some(Ok(id)) = session.get_opt::<u64, usize>(0) else {
                continue;
            };
            // 1094: it ended in the meantime.
            match self.conn.query_drop(format!("KILL CONNECTION {id}")).await {
                Ok(()) => {}
                Err(mysql_async::Error::Server(err)) if err.code == 1094 => {}
                Err(err) => return Err(self.error(err, "ending the claim's sessions")),
            }
        }
        self.run(
            "dropping the database",
            &format!("DROP DATABASE IF EXISTS {}", mysql_ident(&names.database)),
        )
        .await?;
        for user in &users {
            self.run(
                "dropping the user",
                &format!("DROP USER IF EXISTS {}@{ANY_HOST}", mysql_ident(&user.name)),
            )
            .await?;
        }
        self.forget(
            owner,
            &[
                (Kind::Database, names.database.as_str()),
                (Kind::User, login_a.as_str()),
                (Kind::User, login_b.as_str()),
            ],
        )
        .await
    }

    /// One attempt at recording `owner` as holding the database and user
    /// names it passes to the stored procedures (see
    /// [`crate::Admin::hold_procedure_names`], which retries a conflict).
    pub(crate) async fn hold_procedure_names(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        let hold = Hold::new(database, username);
        self.lock_catalog().await?;
        let held = async {
            let rows = self.records(&hold.wanted().map(|(_, name)| name)).await?;
            let writes = hold.plan(owner, &rows)?;
            if writes.is_empty() {
                return Ok(());
            }
            self.write_records(owner, &writes).await
        }
        .await;
        self.unlock_catalog().await;
        held
    }

    /// Removes what [`MyAdmin::hold_procedure_names`] recorded for `owner`.
    pub(crate) async fn release_procedure_names(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        self.ensure_catalog().await?;
        let release = Hold::new(database, username).release(owner, CATALOG_TABLE, mysql_literal);
        self.lock_catalog().await?;
        let released = self
            .in_transaction("removing the ownership records", |admin| {
                Box::pin(async move {
                    let context = "removing the ownership records";
                    admin.run(context, &release.forget_claim).await?;
                    // A count that cannot be read keeps the database's record.
                    let uses_left = admin
                        .rows(context, &release.uses_left, ())
                        .await?
                        .first()
                        .and_then(|row| row.get_opt::<u64, usize>(0))
                        .and_then(Result::ok);
                    if uses_left == Some(0) {
                        admin.run(context, &release.forget_database).await?;
                    }
                    Ok(())
                })
            })
            .await;
        self.unlock_catalog().await;
        released
    }

    /// Takes the server-wide lock on the procedure records (a named lock,
    /// held by this session), so that a release deciding a database has no
    /// users left cannot interleave with a hold.
    async fn lock_catalog(&mut self) -> Result<(), SqlError> {
        let got = self
            .rows(
                "locking the ownership records",
                "SELECT GET_LOCK('dbaas_operator.ownership', 10)",
                (),
            )
            .await?
            .first()
            .and_then(|row| row.get_opt::<i64, usize>(0))
            .and_then(Result::ok);
        if got == Some(1) {
            Ok(())
        } else {
            Err(SqlError::Server {
                code: "1205".to_owned(),
                message: "the ownership records stayed locked for 10s".to_owned(),
            })
        }
    }

    /// Best effort: the lock also ends with the session.
    async fn unlock_catalog(&mut self) {
        let _ = self
            .conn
            .query_drop("DO RELEASE_LOCK('dbaas_operator.ownership')")
            .await;
    }

    /// Runs `body` between START TRANSACTION and COMMIT; rolls back when it fails.
    async fn in_transaction<'a, F>(&'a mut self, context: &str, body: F) -> Result<(), SqlError>
    where
        F: for<'b> FnOnce(
            &'b mut MyAdmin,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), SqlError>> + Send + 'b>,
        >,
    {
        self.run(context, "START TRANSACTION").await?;
        match body(self).await {
            Ok(()) => self.run(context, "COMMIT").await,
            Err(err) => {
                // Best effort: the connection rolls back when it closes anyway.
                let _ = self.conn.query_drop("ROLLBACK").await;
                Err(err)
            }
        }
    }

    /// `CALL procedure(?, ?[, ?])`; the rows of its first result set.
    pub(crate) async fn call(
        &mut self,
        procedure: &str,
        args: &[&str],
    ) -> Result<Vec<BTreeMap<String, String>>, SqlError> {
        let placeholders = vec!["?"; args.len()].join(", ");
        let sql = format!("CALL {procedure}({placeholders})");
        let params = Params::Positional(args.iter().map(|a| Value::from(*a)).collect());
        let outcome = async {
            let mut result = self.conn.exec_iter(sql, params).await?;
            let rows: Vec<Row> = result.collect().await?;
            result.drop_result().await?;
            Ok::<_, mysql_async::Error>(rows)
        }
        .await;
        match outcome {
            Ok(rows) => Ok(rows.iter().map(row_map).collect()),
            Err(err) => Err(self.error(err, "calling the procedure")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_from_webpki() {
        assert_eq!(
            presented_name("DnsName(\"db.example\")").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            presented_name("DnsName(\"*.example\")").as_deref(),
            Some("x.example")
        );
        assert_eq!(
            presented_name("IpAddress(127.0.0.1)").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(presented_name("DirectoryName"), None);
    }

    #[test]
    fn values_as_text() {
        assert_eq!(value_text(&Value::NULL), None);
        assert_eq!(value_text(&Value::Bytes(b"x'y".to_vec())).unwrap(), "x'y");
        assert_eq!(value_text(&Value::Int(-3)).unwrap(), "-3");
        assert_eq!(value_text(&Value::UInt(3306)).unwrap(), "3306");
        assert_eq!(
            value_text(&Value::Date(2026, 1, 2, 3, 4, 5, 0)).unwrap(),
            "2026-01-02 03:04:05"
        );
        assert_eq!(
            value_text(&Value::Time(true, 1, 2, 3, 4, 5)).unwrap(),
            "-26:03:04.000005"
        );
    }
}
