//! How a client reaches each engine: the layout of the admin credentials
//! Secret its operator writes, the port, the URL scheme and the database a
//! login lands in. Written once here, read by the operator (claims on our
//! clusters), the REST API (`/credentials`) and the CLI.

use std::str::FromStr;

use crate::common::EngineType;
use crate::server::ServerEngine;

/// Where an engine operator keeps the admin login in its Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminLogin {
    /// One key holds the user name, another the password.
    UserKey {
        user_key: &'static str,
        password_key: &'static str,
    },
    /// The user is fixed; the key named like it holds its password
    /// (Percona XtraDB Cluster keeps one key per system user).
    FixedUser { user: &'static str },
}

impl AdminLogin {
    /// The key holding the password.
    pub fn password_key(self) -> &'static str {
        match self {
            Self::UserKey { password_key, .. } => password_key,
            Self::FixedUser { user } => user,
        }
    }

    /// The user name, read through `get` where the Secret holds it.
    /// `Err(key)` names the key the Secret lacks.
    pub fn user<F>(self, get: F) -> Result<String, &'static str>
    where
        F: Fn(&str) -> Option<String>,
    {
        match self {
            Self::UserKey { user_key, .. } => get(user_key).ok_or(user_key),
            Self::FixedUser { user } => Ok(user.to_owned()),
        }
    }

    /// The user name and password, read through `get`. `Err(key)` names
    /// the first key the Secret lacks.
    pub fn read<F>(self, get: F) -> Result<(String, String), &'static str>
    where
        F: Fn(&str) -> Option<String>,
    {
        let user = self.user(&get)?;
        let password = get(self.password_key()).ok_or(self.password_key())?;
        Ok((user, password))
    }
}

/// How clients connect to one engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConnection {
    pub admin_login: AdminLogin,
    /// The admin user shown when the Secret cannot be read.
    pub default_admin_user: &'static str,
    /// The port when the status reports none.
    pub default_port: u16,
    /// The URL scheme of a connection string.
    pub scheme: &'static str,
    /// The database a login lands in (the URL's path; empty for none).
    pub database: &'static str,
    /// The DatabaseServer engine a claim on a cluster of this engine talks
    /// to; `None` where claims cannot use such clusters.
    pub server_engine: Option<ServerEngine>,
}

impl EngineConnection {
    /// A connection URL without the password, safe to paste or log.
    pub fn url(&self, user: &str, host: &str, port: impl std::fmt::Display) -> String {
        format!("{}://{user}@{host}:{port}/{}", self.scheme, self.database)
    }
}

impl EngineType {
    /// How clients connect to this engine.
    pub fn connection(self) -> EngineConnection {
        match self {
            Self::Postgresql => EngineConnection {
                admin_login: AdminLogin::UserKey {
                    user_key: "username",
                    password_key: "password",
                },
                default_admin_user: "postgres",
                default_port: 5432,
                scheme: "postgresql",
                database: "postgres",
                server_engine: Some(ServerEngine::Postgres),
            },
            Self::Mysql => EngineConnection {
                admin_login: AdminLogin::FixedUser { user: "root" },
                default_admin_user: "root",
                default_port: 3306,
                scheme: "mysql",
                database: "",
                server_engine: Some(ServerEngine::Mysql),
            },
            Self::Mongodb => EngineConnection {
                admin_login: AdminLogin::UserKey {
                    user_key: "MONGODB_DATABASE_ADMIN_USER",
                    password_key: "MONGODB_DATABASE_ADMIN_PASSWORD",
                },
                default_admin_user: "databaseAdmin",
                default_port: 27017,
                scheme: "mongodb",
                database: "admin",
                server_engine: None,
            },
            Self::Mariadb => EngineConnection {
                admin_login: AdminLogin::FixedUser { user: "root" },
                default_admin_user: "root",
                default_port: 3306,
                scheme: "mysql",
                database: "",
                server_engine: Some(ServerEngine::Mariadb),
            },
        }
    }
}

impl ServerEngine {
    /// The name as the API spells it (`spec.engine` of a DatabaseServer).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
            Self::Mariadb => "mariadb",
        }
    }

    /// The cluster engine that provisions a server of this engine for a
    /// claim; `None` when no engine here runs it.
    pub fn cluster_engine(self) -> Option<EngineType> {
        EngineType::ALL
            .into_iter()
            .find(|engine| engine.connection().server_engine == Some(self))
    }
}

/// An engine name no engine has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown engine {given:?}; known engines: {known}")]
pub struct UnknownEngine {
    pub given: String,
    pub known: String,
}

impl FromStr for EngineType {
    type Err = UnknownEngine;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|engine| engine.as_str() == given)
            .ok_or_else(|| UnknownEngine {
                given: given.to_owned(),
                known: Self::ALL.map(EngineType::as_str).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_layout_reads_its_operators_secret() {
        let pg = secret(&[("username", "app"), ("password", "pw")]);
        let login = EngineType::Postgresql.connection().admin_login;
        assert_eq!(
            login.read(|k| pg.get(k).cloned()),
            Ok(("app".into(), "pw".into()))
        );
        let pxc = secret(&[("root", "rpw")]);
        let login = EngineType::Mysql.connection().admin_login;
        assert_eq!(
            login.read(|k| pxc.get(k).cloned()),
            Ok(("root".into(), "rpw".into()))
        );
        let login = EngineType::Mongodb.connection().admin_login;
        assert_eq!(
            login.read(|k| pg.get(k).cloned()),
            Err("MONGODB_DATABASE_ADMIN_USER")
        );
        let half = secret(&[("username", "app")]);
        let login = EngineType::Postgresql.connection().admin_login;
        assert_eq!(login.read(|k| half.get(k).cloned()), Err("password"));
        assert_eq!(login.user(|k| half.get(k).cloned()), Ok("app".into()));
    }

    #[test]
    fn urls_name_the_landing_database_and_never_a_password() {
        let pg = EngineType::Postgresql.connection();
        assert_eq!(
            pg.url("postgres", "pg-rw.ns.svc", 5432),
            "postgresql://postgres@pg-rw.ns.svc:5432/postgres"
        );
        assert_eq!(
            EngineType::Mysql.connection().url("root", "h", 3306),
            "mysql://root@h:3306/"
        );
        assert_eq!(
            EngineType::Mongodb
                .connection()
                .url("databaseAdmin", "m", 27017),
            "mongodb://databaseAdmin@m:27017/admin"
        );
    }

    #[test]
    fn server_engines_map_to_the_cluster_engines_that_run_them() {
        assert_eq!(
            ServerEngine::Postgres.cluster_engine(),
            Some(EngineType::Postgresql)
        );
        assert_eq!(
            ServerEngine::Mysql.cluster_engine(),
            Some(EngineType::Mysql)
        );
        assert_eq!(
            ServerEngine::Mariadb.cluster_engine(),
            Some(EngineType::Mariadb)
        );
        for engine in [
            ServerEngine::Postgres,
            ServerEngine::Mysql,
            ServerEngine::Mariadb,
        ] {
            let json = serde_json::to_value(engine).unwrap();
            assert_eq!(
                json,
                engine.as_str(),
                "as_str spells {engine:?} as the API does"
            );
        }
    }

    #[test]
    fn engine_names_parse_and_unknown_ones_list_the_known() {
        for engine in EngineType::ALL {
            assert_eq!(engine.as_str().parse::<EngineType>(), Ok(engine));
        }
        let err = "oracle".parse::<EngineType>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown engine \"oracle\"; known engines: postgresql, mysql, mongodb, mariadb"
        );
    }
}
