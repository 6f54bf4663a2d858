//! PostgreSQL: claims as a NOLOGIN owner role, two login roles acting as it,
//! and a database owned by it; ownership recorded in role comments.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::{Client, NoTls};

use crate::holds::{self, Hold};
use crate::names::Record;
use crate::quote::{pg_ident, pg_literal};
use crate::{ClaimNames, ClaimOwner, Endpoint, Ensured, SqlError, scram, tls};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where stored-procedure claims are recorded ([`crate::holds`]; DDL claims
/// are recorded in role comments), in the admin's database.
const PROCEDURE_CATALOG: &str = "dbaas_operator.ownership";

/// Held for the rest of a transaction that reads and writes the records
/// (an advisory lock: readers elsewhere are not blocked).
const LOCK_PROCEDURE_CATALOG: &str = "SELECT pg_advisory_xact_lock(7234017283807667300)";

/// The schema is the admin's: PUBLIC gets nothing on it.
const PROCEDURE_CATALOG_DDL: &str = "CREATE SCHEMA IF NOT EXISTS dbaas_operator;
REVOKE ALL ON SCHEMA dbaas_operator FROM PUBLIC;
CREATE TABLE IF NOT EXISTS dbaas_operator.ownership (
    object_kind text NOT NULL,
    object_name text NOT NULL,
    claim_namespace text NOT NULL,
    claim_name text NOT NULL,
    claim_uid text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (object_kind, object_name)
);";

/// Who is connecting: decides how a refused login is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Login {
    Admin,
    Claim,
}

/// Connects to `endpoint` (database `postgres` unless it names one).
pub(crate) async fn connect(endpoint: &Endpoint, login: Login) -> Result<Client, SqlError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&endpoint.host)
        .port(endpoint.port)
        .user(&endpoint.user)
        .password(endpoint.password.expose_secret())
        .dbname(endpoint.database.as_deref().unwrap_or("postgres"))
        .application_name("dbaas-operator")
        .connect_timeout(CONNECT_TIMEOUT)
        .ssl_mode(match endpoint.tls {
            crate::TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            crate::TlsMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            crate::TlsMode::Require | crate::TlsMode::VerifyCa | crate::TlsMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
    let tls_config =
        tls::client_config(endpoint.tls, endpoint.trusted_ca.as_deref()).map_err(|detail| {
            SqlError::Tls {
                host: endpoint.host.clone(),
                port: endpoint.port,
                detail,
            }
        })?;
    let classify = |err: tokio_postgres::Error| classify(&err, endpoint, Some(login), "connecting");
    // The connection task ends when the client is dropped.
    let client = match tls_config {
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(classify)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!("postgres connection ended: {err}");
                }
            });
            client
        }
        Some(tls_config) => {
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
            let (client, connection) = config.connect(connector).await.map_err(classify)?;
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!("postgres connection ended: {err}");
                }
            });
            client
        }
    };
    Ok(client)
}

/// The error text with its causes (tokio-postgres keeps the interesting
/// part, e.g. "Connection refused", in the source).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a driver error to [`SqlError`]; `login` is set while connecting.
pub(crate) fn classify(
    err: &tokio_postgres::Error,
    endpoint: &Endpoint,
    login: Option<Login>,
    context: &str,
) -> SqlError {
    let unreachable = |detail: String| SqlError::Unreachable {
        host: endpoint.host.clone(),
        port: endpoint.port,
        detail,
    };
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        let mut message = db.message().to_owned();
        if let Some(detail) = db.detail() {
            message.push_str(" (");
            message.push_str(detail);
            message.push(')');
        }
        return match code {
            // While logging in: invalid_password, invalid_authorization_
            // specification (no pg_hba entry, NOLOGIN role), and no CONNECT
            // privilege on the database.
            "28P01" | "28000" | "42501" if login.is_some() => SqlError::AuthFailed {
                user: endpoint.user.clone(),
                admin: login == Some(Login::Admin),
                detail: message,
            },
            "42501" => SqlError::PermissionDenied {
                detail: format!("{context}: {message}"),
            },
            // The server is shutting down or starting up.
            "57P01" | "57P02" | "57P03" => unreachable(message),
            _ => SqlError::Server {
                code: code.to_owned(),
                message: format!("{context}: {message}"),
            },
        };
    }
    let text = chain(err);
    if err.is_closed() {
        return unreachable(text);
    }
    // tokio-postgres keeps the error kind private; its Display names it.
    let kind = err.to_string();
    if kind.starts_with("error performing TLS handshake") {
        SqlError::Tls {
            host: endpoint.host.clone(),
            port: endpoint.port,
            detail: text,
        }
    } else if kind.starts_with("authentication error") {
        SqlError::AuthFailed {
            user: endpoint.user.clone(),
            admin: login != Some(Login::Claim),
            detail: text,
        }
    } else {
        unreachable(text)
    }
}

/// An admin connection to a PostgreSQL server.
pub(crate) struct PgAdmin {
    client: Client,
    endpoint: Endpoint,
    superuser: bool,
    version_num: i32,
    create_strategy: Option<crate::CreateDatabaseStrategy>,
}

/// What exists of one claim's objects.
struct State {
    /// Each of (owner, login a, login b): `None` when the role does not
    /// exist, else its record (`None` inside when it has none).
    roles: [(String, Option<Option<Record>>); 3],
    /// When the database exists: its owner role and that role's record.
    database: Option<(String, Option<Record>)>,
}

impl State {
    /// Refuses when anything that exists is not recorded as `owner`'s.
    fn check(&self, owner: &ClaimOwner, names: &ClaimNames) -> Result<(), SqlError> {
        for (role, existing) in &self.roles {
            if let Some(record) = existing
                && !record.as_ref().is_some_and(|r| r.belongs_to(owner))
            {
                return Err(SqlError::OwnedByOther {
                    object: format!("role {role}"),
                    owner: Record::label(record.as_ref(), owner),
                });
            }
        }
        if let Some((db_owner, record)) = &self.database
            && db_owner != &names.owner
        {
            return Err(SqlError::OwnedByOther {
                object: format!("database {}", names.database),
                owner: Record::label(record.as_ref(), owner),
            });
        }
        Ok(())
    }

    fn existing_roles(&self) -> Vec<&str> {
        self.roles
            .iter()
            .filter(|(_, existing)| existing.is_some())
            .map(|(role, _)| role.as_str())
            .collect()
    }
}

impl PgAdmin {
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<PgAdmin, SqlError> {
        let client = connect(endpoint, Login::Admin).await?;
        let mut admin = PgAdmin {
            client,
            endpoint: endpoint.clone(),
            superuser: false,
            version_num: 0,
            create_strategy: None,
        };
        let row = admin
            .client
            .query_one(
                "SELECT current_setting('server_version_num')::int, \
                        (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
                &[],
            )
            .await
            .map_err(|err| admin.error(&err, "reading the server version"))?;
        admin.version_num = row.get(0);
        admin.superuser = row.get::<_, Option<bool>>(1).unwrap_or(false);
        // Never wait for a lock forever (a claim's session holding one).
        admin
            .batch(
                "configuring the session",
                "SET lock_timeout = '10s'; SET statement_timeout = '120s'",
            )
            .await?;
        Ok(admin)
    }

    pub(crate) fn set_create_strategy(&mut self, strategy: Option<crate::CreateDatabaseStrategy>) {
        self.create_strategy = strategy;
    }

    /// ` STRATEGY = ...` when one is chosen and the server knows the clause
    /// (15 and later; older servers always copy files).
    fn strategy_clause(&self) -> String {
        match self.create_strategy {
            Some(strategy) if self.version_num >= 150_000 => {
                format!(" STRATEGY = {}", strategy.keyword())
            }
            _ => String::new(),
        }
    }

    fn error(&self, err: &tokio_postgres::Error, context: &str) -> SqlError {
        classify(err, &self.endpoint, None, context)
    }

    async fn batch(&self, context: &str, sql: &str) -> Result<(), SqlError> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|err| self.error(&err, context))
    }

    pub(crate) async fn server_version(&mut self) -> Result<String, SqlError> {
        let row = self
            .client
            .query_one("SELECT current_setting('server_version')", &[])
            .await
            .map_err(|err| self.error(&err, "reading the server version"))?;
        Ok(row.get(0))
    }

    async fn inspect(&self, names: &ClaimNames) -> Result<State, SqlError> {
        let wanted = [
            names.owner.as_str(),
            names.logins[0].as_str(),
            names.logins[1].as_str(),
        ];
        let rows = self
            .client
            .query(
                "SELECT rolname::text, shobj_description(oid, 'pg_authid') \
                 FROM pg_roles WHERE rolname::text = ANY($1::text[])",
                &[&wanted.as_slice()],
            )
            .await
            .map_err(|err| self.error(&err, "reading roles"))?;
        let found: BTreeMap<String, Option<Record>> = rows
            .iter()
            .map(|row| {
                let comment: Option<String> = row.get(1);
                (
                    row.get::<_, String>(0),
                    comment.as_deref().and_then(Record::from_comment),
                )
            })
            .collect();
        let roles = wanted.map(|role| (role.to_owned(), found.get(role).cloned()));
        let database = self
            .client
            .query_opt(
                "SELECT pg_get_userbyid(datdba)::text, shobj_description(datdba, 'pg_authid') \
                 FROM pg_database WHERE datname::text = $1",
                &[&names.database],
            )
            .await
            .map_err(|err| self.error(&err, "reading databases"))?
            .map(|row| {
                let comment: Option<String> = row.get(1);
                (
                    row.get::<_, String>(0),
                    comment.as_deref().and_then(Record::from_comment),
                )
            });
        Ok(State { roles, database })
    }

    pub(crate) async fn ensure_claim(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<Ensured, SqlError> {
        // A concurrent creation of the same name loses with a duplicate
        // error; the second look tells whether it was ours.
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
        let state = self.inspect(names).await?;
        state.check(owner, names)?;

        // The roles and their records, all or nothing, before the database.
        let comment = pg_literal(&owner.comment());
        let owner_role = pg_ident(&names.owner);
        let mut sql = String::new();
        for (role, existing) in &state.roles {
            let role_ident = pg_ident(role);
            if existing.is_none() {
                sql.push_str(&format!("CREATE ROLE {role_ident} NOLOGIN;\n"));
            }
            let current = existing
                .as_ref()
                .and_then(Option::as_ref)
                .is_some_and(|r| r.is_current_for(owner));
            if !current {
                sql.push_str(&format!("COMMENT ON ROLE {role_ident} IS {comment};\n"));
            }
            if role != &names.owner {
                // Logins act as the owner, so what they create is the owner's.
                sql.push_str(&format!(
                    "GRANT {owner_role} TO {role_ident};\n\
                     ALTER ROLE {role_ident} SET role = {};\n",
                    pg_literal(&names.owner)
                ));
            }
        }
        if !self.superuser {
            // A CREATEROLE admin needs membership to create the database
            // for the owner and, later, to drop what the roles own.
            sql.push_str(&format!(
                "GRANT {owner_role}, {}, {} TO CURRENT_USER;\n",
                pg_ident(&names.logins[0]),
                pg_ident(&names.logins[1])
            ));
        }
        let transaction = self
            .client
            .transaction()
            .await
            .map_err(|err| classify(&err, &self.endpoint, None, "starting a transaction"))?;
        transaction
            .batch_execute(&sql)
            .await
            .map_err(|err| classify(&err, &self.endpoint, None, "creating the roles"))?;
        transaction
            .commit()
            .await
            .map_err(|err| classify(&err, &self.endpoint, None, "creating the roles"))?;

        let database = pg_ident(&names.database);
        let database_created = state.database.is_none();
        if database_created {
            self.batch(
                "creating the database",
                &format!(
                    "CREATE DATABASE {database} OWNER {owner_role}{}",
                    self.strategy_clause()
                ),
            )
            .await?;
        }
        // Only the owner (and so its logins) may connect or make temp tables.
        self.batch(
            "restricting the database",
            &format!("REVOKE ALL ON DATABASE {database} FROM PUBLIC"),
        )
        .await?;
        Ok(Ensured { database_created })
    }

    pub(crate) async fn set_password(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
        login: &str,
        password: &SecretString,
    ) -> Result<(), SqlError> {
        let state = self.inspect(names).await?;
        state.check(owner, names)?;
        let exists = state
            .roles
            .iter()
            .any(|(role, existing)| role == login && existing.is_some());
        if !exists {
            return Err(SqlError::NotFound {
                object: format!("role {login}"),
            });
        }
        let password = password.expose_secret();
        // A SCRAM verifier, so the password itself never reaches the server.
        let stored = scram::verifier(password).unwrap_or_else(|| password.to_owned());
        self.batch(
            "setting the password",
            &format!(
                "ALTER ROLE {} WITH LOGIN PASSWORD {}",
                pg_ident(login),
                pg_literal(&stored)
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
        let state = self.inspect(names).await?;
        state.check(owner, names)?;
        let roles = state.existing_roles();
        let role_list = roles
            .iter()
            .map(|r| pg_ident(r))
            .collect::<Vec<_>>()
            .join(", ");
        let logins: Vec<&str> = roles
            .iter()
            .copied()
            .filter(|role| *role != names.owner)
            .collect();

        // No new sessions, then end the current ones.
        for login in &logins {
            self.batch(
                "locking the login",
                &format!("ALTER ROLE {} NOLOGIN", pg_ident(login)),
            )
            .await?;
        }
        if !roles.is_empty() {
            self.client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE usename::text = ANY($1::text[]) AND pid <> pg_backend_pid()",
                    &[&roles],
                )
                .await
                .map_err(|err| self.error(&err, "ending the claim's sessions"))?;
        }

        if state.database.is_some() {
            let database = pg_ident(&names.database);
            if self.version_num >= 130_000 {
                self.batch(
                    "dropping the database",
                    &format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
                )
                .await?;
            } else {
                self.client
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname::text = $1 AND pid <> pg_backend_pid()",
                        &[&names.database],
                    )
                    .await
                    .map_err(|err| self.error(&err, "ending the database's sessions"))?;
                self.batch(
                    "dropping the database",
                    &format!("DROP DATABASE IF EXISTS {database}"),
                )
                .await?;
            }
        }

        if roles.is_empty() {
            return Ok(());
        }
        // Objects the roles own or were granted in other databases would
        // keep DROP ROLE from working: drop them where they are.
        let elsewhere = self
            .client
            .query(
                "SELECT DISTINCT d.datname::text FROM pg_shdepend s \
                 JOIN pg_database d ON d.oid = s.dbid \
                 WHERE s.refclassid = 'pg_authid'::regclass \
                   AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname::text = ANY($1::text[])) \
                   AND d.datname <> current_database() AND d.datallowconn",
                &[&roles],
            )
            .await
            .map_err(|err| self.error(&err, "finding the roles' objects"))?;
        for row in elsewhere {
            let database: String = row.get(0);
            let endpoint = Endpoint {
                database: Some(database.clone()),
                ..self.endpoint.clone()
            };
            let client = connect(&endpoint, Login::Admin).await?;
            client
                .batch_execute(&format!("DROP OWNED BY {role_list}"))
                .await
                .map_err(|err| {
                    classify(
                        &err,
                        &endpoint,
                        None,
                        &format!("dropping the roles' objects in database {database}"),
                    )
                })?;
        }
        self.batch(
            "dropping the roles' objects",
            &format!("DROP OWNED BY {role_list}"),
        )
        .await?;
        self.batch(
            "dropping the roles",
            &format!("DROP ROLE IF EXISTS {role_list}"),
        )
        .await
    }

    /// The table of stored-procedure ownership records, in the admin's
    /// database, made when missing. A new schema grants nothing to PUBLIC.
    async fn ensure_procedure_catalog(&mut self) -> Result<(), SqlError> {
        let exists: bool = self
            .client
            .query_one(
                "SELECT to_regclass('dbaas_operator.ownership') IS NOT NULL",
                &[],
            )
            .await
            .map_err(|err| self.error(&err, "reading the ownership records"))?
            .get(0);
        if !exists {
            self.batch("creating the ownership catalog", PROCEDURE_CATALOG_DDL)
                .await?;
        }
        Ok(())
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
        self.ensure_procedure_catalog().await?;
        let hold = Hold::new(database, username);
        let names: Vec<&str> = hold.wanted().iter().map(|(_, name)| *name).collect();
        let classify = |err: tokio_postgres::Error| {
            classify(&err, &self.endpoint, None, "recording ownership")
        };
        // Read and write under the catalog's lock: a release deciding that a
        // database has no users left cannot interleave with a hold.
        let transaction = self.client.transaction().await.map_err(classify)?;
        transaction
            .batch_execute(LOCK_PROCEDURE_CATALOG)
            .await
            .map_err(classify)?;
        let rows: Vec<holds::Row> = transaction
            .query(
                "SELECT object_kind, object_name, claim_namespace, claim_name, claim_uid \
                 FROM dbaas_operator.ownership WHERE object_name = ANY($1::text[])",
                &[&names],
            )
            .await
            .map_err(classify)?
            .iter()
            .map(|row| holds::Row {
                kind: row.get(0),
                name: row.get(1),
                record: Record::named(row.get(2), row.get(3), row.get(4)),
            })
            .collect();
        let writes = hold.plan(owner, &rows)?;
        if !writes.is_empty() {
            let sql =
                holds::write_statements(&writes, owner, PROCEDURE_CATALOG, pg_literal).join(";\n");
            transaction.batch_execute(&sql).await.map_err(classify)?;
        }
        transaction.commit().await.map_err(classify)
    }

    /// Removes what [`PgAdmin::hold_procedure_names`] recorded for `owner`.
    pub(crate) async fn release_procedure_names(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        self.ensure_procedure_catalog().await?;
        let release = Hold::new(database, username).release(owner, PROCEDURE_CATALOG, pg_literal);
        let classify = |err: tokio_postgres::Error| {
            classify(&err, &self.endpoint, None, "removing the ownership records")
        };
        let transaction = self.client.transaction().await.map_err(classify)?;
        transaction
            .batch_execute(LOCK_PROCEDURE_CATALOG)
            .await
            .map_err(classify)?;
        transaction
            .batch_execute(&release.forget_claim)
            .await
            .map_err(classify)?;
        let uses_left: i64 = transaction
            .query_one(&release.uses_left, &[])
            .await
            .map_err(classify)?
            .get(0);
        if uses_left == 0 {
            transaction
                .batch_execute(&release.forget_database)
                .await
                .map_err(classify)?;
        }
        transaction.commit().await.map_err(classify)
    }

    /// `SELECT row_to_json(t)::text FROM (SELECT * FROM fn($1, $2[, $3])) t`.
    pub(crate) async fn call(
        &mut self,
        function: &str,
        args: &[&str],
    ) -> Result<Vec<BTreeMap<String, String>>, SqlError> {
        let placeholders = (1..=args.len())
            .map(|i| format!("${i}::text"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT row_to_json(t)::text FROM (SELECT * FROM {function}({placeholders})) AS t"
        );
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = args
            .iter()
            .map(|a| a as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = self
            .client
            .query(&sql, &params)
            .await
            .map_err(|err| self.error(&err, "calling the function"))?;
        rows.iter()
            .map(|row| {
                let json: Option<String> = row.get(0);
                json_object(json.as_deref().unwrap_or("{}"))
            })
            .collect()
    }
}

/// A row as JSON -> column name -> text (strings as they are, other values
/// as JSON text, nulls left out).
fn json_object(json: &str) -> Result<BTreeMap<String, String>, SqlError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|err| SqlError::Invalid {
        detail: format!("the function's row is not JSON: {err}"),
    })?;
    let serde_json::Value::Object(map) = value else {
        return Ok(BTreeMap::new());
    };
    Ok(map
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::Null => None,
            serde_json::Value::String(text) => Some((key, text)),
            other => Some((key, other.to_string())),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_text_maps() {
        let map = json_object(r#"{"username":"u","port":5432,"ok":true,"gone":null,"x":"it's"}"#)
            .unwrap();
        assert_eq!(map["username"], "u");
        assert_eq!(map["port"], "5432");
        assert_eq!(map["ok"], "true");
        assert_eq!(map["x"], "it's");
        assert!(!map.contains_key("gone"));
        // A void function's row.
        assert!(json_object(r#"{"f":""}"#).unwrap()["f"].is_empty());
    }
}
