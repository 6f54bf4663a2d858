//! The admin connection and the login check, dispatching to the engines.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::mysql::MyAdmin;
use crate::postgres::{Login, PgAdmin};
use crate::quote::{mysql_ident, pg_ident};
use crate::{ClaimNames, ClaimOwner, Endpoint, Engine, SqlError};

/// What [`Admin::ensure_claim`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ensured {
    /// The database was created now (not adopted from an earlier call).
    pub database_created: bool,
}

/// One admin connection to a server. Not shareable: one per task.
pub struct Admin {
    engine: Engine,
    inner: Inner,
}

enum Inner {
    Postgres(PgAdmin),
    MySql(MyAdmin),
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// Which stored-procedure call this is, for messages.
#[derive(Debug, Clone, Copy)]
enum Call {
    Create,
    Rotate,
    Delete,
}

impl Admin {
    /// Logs in as the admin of `endpoint` (PostgreSQL: database `postgres`
    /// unless it names one).
    pub async fn connect(endpoint: &Endpoint) -> Result<Admin, SqlError> {
        let inner = if endpoint.engine.is_postgres() {
            Inner::Postgres(PgAdmin::connect(endpoint).await?)
        } else {
            Inner::MySql(MyAdmin::connect(endpoint).await?)
        };
        Ok(Admin {
            engine: endpoint.engine,
            inner,
        })
    }

    /// How PostgreSQL copies the template for the databases this connection
    /// creates; the server's default when None. MySQL has no such choice.
    pub fn set_create_database_strategy(
        &mut self,
        strategy: Option<crate::CreateDatabaseStrategy>,
    ) {
        if let Inner::Postgres(pg) = &mut self.inner {
            pg.set_create_strategy(strategy);
        }
    }

    /// The server's version (`15.18 (Debian ...)`, `10.11.19-MariaDB-...`).
    pub async fn server_version(&mut self) -> Result<String, SqlError> {
        match &mut self.inner {
            Inner::Postgres(pg) => pg.server_version().await,
            Inner::MySql(my) => my.server_version().await,
        }
    }

    /// Creates what the claim needs, or adopts what an earlier call for
    /// the same claim made; idempotent. See the crate docs for the objects
    /// and the ownership records. Refuses with [`SqlError::OwnedByOther`],
    /// changing nothing, when the database or a user exists and is not
    /// recorded as this claim's.
    pub async fn ensure_claim(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<crate::Ensured, SqlError> {
        match &mut self.inner {
            Inner::Postgres(pg) => pg.ensure_claim(owner, names).await,
            Inner::MySql(my) => my.ensure_claim(owner, names).await,
        }
    }

    /// Gives `login` (one of `names.logins`) the password and lets it log
    /// in. Ownership-checked; the login must exist ([`Admin::ensure_claim`]).
    pub async fn set_password(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
        login: &str,
        password: &SecretString,
    ) -> Result<(), SqlError> {
        if !names.is_login(login) {
            return Err(SqlError::Invalid {
                detail: format!("{login} is not one of the claim's logins"),
            });
        }
        match &mut self.inner {
            Inner::Postgres(pg) => pg.set_password(owner, names, login, password).await,
            Inner::MySql(my) => my.set_password(owner, names, login, password).await,
        }
    }

    /// Drops the claim's database (ending its sessions first), whatever
    /// its users created (PostgreSQL: `DROP OWNED` in every database where
    /// they own something, so nothing can keep the roles alive), and the
    /// logins and owner. Ownership-checked: refuses, changing nothing, if
    /// any of them is another claim's. Ok when already gone.
    pub async fn drop_claim(
        &mut self,
        owner: &ClaimOwner,
        names: &ClaimNames,
    ) -> Result<(), SqlError> {
        match &mut self.inner {
            Inner::Postgres(pg) => pg.drop_claim(owner, names).await,
            Inner::MySql(my) => my.drop_claim(owner, names).await,
        }
    }

    /// Records `owner` as holding the `database` and `username` it passes
    /// to the stored procedures, or confirms that it already does;
    /// idempotent. Refuses with [`SqlError::OwnedByOther`], changing
    /// nothing, when either name is recorded as another claim's: the
    /// procedures receive only names, so these records are what keeps one
    /// namespace's claim from rotating or deleting another's. Call it
    /// before every procedure call. See the crate docs for where the
    /// records live.
    pub async fn hold_procedure_names(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        // A concurrent claim for the same name loses on the primary key (or
        // on creating the catalog); the second look decides.
        match self.try_hold(owner, database, username).await {
            Err(err) if err.is_conflict() => self.try_hold(owner, database, username).await,
            other => other,
        }
    }

    async fn try_hold(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        match &mut self.inner {
            Inner::Postgres(pg) => pg.hold_procedure_names(owner, database, username).await,
            Inner::MySql(my) => my.hold_procedure_names(owner, database, username).await,
        }
    }

    /// Removes what [`Admin::hold_procedure_names`] recorded for `owner`
    /// (after the delete procedure); others' records stay.
    pub async fn release_procedure_names(
        &mut self,
        owner: &ClaimOwner,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        match &mut self.inner {
            Inner::Postgres(pg) => pg.release_procedure_names(owner, database, username).await,
            Inner::MySql(my) => my.release_procedure_names(owner, database, username).await,
        }
    }

    /// Calls the create procedure with `(database, username, password)`;
    /// its row becomes the result (see the crate docs).
    pub async fn call_create(
        &mut self,
        procedure: &str,
        database: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<BTreeMap<String, String>, SqlError> {
        self.call_one(Call::Create, procedure, database, username, password)
            .await
    }

    /// Calls the rotate procedure with `(database, username, password)`.
    pub async fn call_rotate(
        &mut self,
        procedure: &str,
        database: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<BTreeMap<String, String>, SqlError> {
        self.call_one(Call::Rotate, procedure, database, username, password)
            .await
    }

    /// Calls the delete procedure with `(database, username)`; what it
    /// returns is ignored.
    pub async fn call_delete(
        &mut self,
        procedure: &str,
        database: &str,
        username: &str,
    ) -> Result<(), SqlError> {
        self.call(Call::Delete, procedure, &[database, username], "")
            .await
            .map(drop)
    }

    async fn call_one(
        &mut self,
        call: Call,
        procedure: &str,
        database: &str,
        username: &str,
        password: &SecretString,
    ) -> Result<BTreeMap<String, String>, SqlError> {
        let password = password.expose_secret();
        let mut rows = self
            .call(call, procedure, &[database, username, password], password)
            .await?;
        if rows.len() > 1 {
            return Err(SqlError::Procedure {
                procedure: procedure.to_owned(),
                detail: format!("returned {} rows; expected at most one", rows.len()),
            });
        }
        Ok(rows.pop().unwrap_or_default())
    }

    async fn call(
        &mut self,
        call: Call,
        procedure: &str,
        args: &[&str],
        secret: &str,
    ) -> Result<Vec<BTreeMap<String, String>>, SqlError> {
        let quoted = quote_procedure(self.engine, procedure)?;
        let result = match &mut self.inner {
            Inner::Postgres(pg) => pg.call(&quoted, args).await,
            Inner::MySql(my) => my.call(&quoted, args).await,
        };
        result.map_err(|err| {
            let err = err.redact(secret);
            match err {
                // What the procedure itself raised, or a missing procedure.
                SqlError::Server { code, message } if !err_is_transient(&code) => {
                    SqlError::Procedure {
                        procedure: procedure.to_owned(),
                        detail: format!("{call:?} failed ({code}): {message}"),
                    }
                }
                other => other,
            }
        })
    }
}

fn err_is_transient(code: &str) -> bool {
    SqlError::Server {
        code: code.to_owned(),
        message: String::new(),
    }
    .is_transient()
}

/// Checks `name` against `^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`
/// and quotes each part. Quoted names keep their case: PostgreSQL folds
/// unquoted names to lower case when they are created, so write them in
/// lower case (as the catalog has them).
pub(crate) fn quote_procedure(engine: Engine, name: &str) -> Result<String, SqlError> {
    let parts: Vec<&str> = name.split('.').collect();
    let valid_part = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if parts.len() > 2 || !parts.iter().all(|p| valid_part(p)) {
        return Err(SqlError::Invalid {
            detail: format!(
                "procedure name {name:?} must look like name or schema.name (letters, digits, underscores)"
            ),
        });
    }
    let quote = if engine.is_postgres() {
        pg_ident
    } else {
        mysql_ident
    };
    Ok(parts.iter().map(|p| quote(p)).collect::<Vec<_>>().join("."))
}

/// Logs in with `endpoint` (a claim's user, password and database) and runs
/// `SELECT 1`, proving the credentials work before they are published.
/// A refused login is [`SqlError::AuthFailed`] with `admin: false`.
pub async fn check_login(endpoint: &Endpoint) -> Result<(), SqlError> {
    use mysql_async::prelude::Queryable;
    if endpoint.engine.is_postgres() {
        let client = crate::postgres::connect(endpoint, Login::Claim).await?;
        client.simple_query("SELECT 1").await.map_err(|err| {
            crate::postgres::classify(&err, endpoint, Some(Login::Claim), "SELECT 1")
        })?;
    } else {
        let mut conn = crate::mysql::connect(endpoint, Login::Claim).await?;
        let outcome = conn.query_drop("SELECT 1").await;
        // Close politely; the check's verdict does not depend on it.
        let _ = conn.disconnect().await;
        outcome
            .map_err(|err| crate::mysql::classify(err, endpoint, Some(Login::Claim), "SELECT 1"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_names_are_checked_and_quoted() {
        assert_eq!(
            quote_procedure(Engine::Postgres, "dba.create_db").unwrap(),
            "\"dba\".\"create_db\""
        );
        assert_eq!(
            quote_procedure(Engine::MariaDb, "Create_DB").unwrap(),
            "`Create_DB`"
        );
        for bad in [
            "", ".", "a.", ".a", "a.b.c", "1a", "a-b", "a b", "a;drop", "a\"b", "a`b", "a()", "ü",
        ] {
            assert!(
                matches!(
                    quote_procedure(Engine::Postgres, bad),
                    Err(SqlError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
