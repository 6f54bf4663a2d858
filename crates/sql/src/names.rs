//! Who owns what on a server, and the names a claim gets there.

use crate::Engine;

/// The claim an object on the server belongs to. Its namespace and name
/// decide; the uid is informational (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimOwner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl ClaimOwner {
    /// Whether a record names this claim (namespace and name; not the uid).
    pub(crate) fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }

    /// The PostgreSQL role comment: `dbaas.io/claim-sha256=<digest> uid=<uid>`.
    /// Role comments are readable by every login on the server, so they
    /// carry a digest of `<namespace>/<name>`, never the names themselves.
    pub(crate) fn comment(&self) -> String {
        format!("{DIGEST_PREFIX}{} uid={}", self.digest(), self.uid)
    }

    /// Hex SHA-256 of `<namespace>/<name>`.
    fn digest(&self) -> String {
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}/{}", self.namespace, self.name).as_bytes(),
        );
        digest
            .as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl std::fmt::Display for ClaimOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Comments written before digests (still read, rewritten on the next change).
const NAMED_PREFIX: &str = "dbaas.io/claim=";
const DIGEST_PREFIX: &str = "dbaas.io/claim-sha256=";

/// Which claim a record names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claimant {
    Named {
        namespace: String,
        name: String,
    },
    /// [`ClaimOwner::digest`] of the claim.
    Digest(String),
}

/// A claim recorded on the server, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub claimant: Claimant,
    pub uid: String,
}

impl Record {
    pub(crate) fn named(namespace: String, name: String, uid: String) -> Record {
        Record {
            claimant: Claimant::Named { namespace, name },
            uid,
        }
    }

    /// Parses a role comment written by [`ClaimOwner::comment`] (or the
    /// older `dbaas.io/claim=<namespace>/<name> uid=<uid>`); anything else
    /// (no comment, someone's own comment) is no record.
    pub(crate) fn from_comment(comment: &str) -> Option<Record> {
        if let Some(rest) = comment.strip_prefix(DIGEST_PREFIX) {
            let (digest, uid) = rest.split_once(" uid=")?;
            let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            return valid.then(|| Record {
                claimant: Claimant::Digest(digest.to_ascii_lowercase()),
                uid: uid.to_owned(),
            });
        }
        let rest = comment.strip_prefix(NAMED_PREFIX)?;
        let (claim, uid) = rest.split_once(" uid=")?;
        let (namespace, name) = claim.split_once('/')?;
        if namespace.is_empty() || name.is_empty() {
            return None;
        }
        Some(Record::named(
            namespace.to_owned(),
            name.to_owned(),
            uid.to_owned(),
        ))
    }

    /// Who holds an object, as told to `asker` in
    /// [`crate::SqlError::OwnedByOther`]: a claim of the asker's own
    /// namespace by name, any other only as "a claim in another namespace"
    /// (one tenant learns nothing of another's names).
    pub(crate) fn label(record: Option<&Record>, asker: &ClaimOwner) -> String {
        match record.map(|r| &r.claimant) {
            None => "someone outside dbaas-operator (no ownership record)".to_owned(),
            Some(Claimant::Named { namespace, name }) if *namespace == asker.namespace => {
                format!("claim {namespace}/{name}")
            }
            Some(_) => "a claim in another namespace".to_owned(),
        }
    }

    pub(crate) fn belongs_to(&self, owner: &ClaimOwner) -> bool {
        match &self.claimant {
            Claimant::Named { namespace, name } => owner.is(namespace, name),
            Claimant::Digest(digest) => *digest == owner.digest(),
        }
    }

    /// Recorded for a claim of `owner`'s namespace.
    pub(crate) fn in_namespace_of(&self, owner: &ClaimOwner) -> bool {
        matches!(&self.claimant, Claimant::Named { namespace, .. } if *namespace == owner.namespace)
    }

    /// Recorded for `owner`, with its uid, in the current comment format.
    pub(crate) fn is_current_for(&self, owner: &ClaimOwner) -> bool {
        matches!(self.claimant, Claimant::Digest(_))
            && self.belongs_to(owner)
            && self.uid == owner.uid
    }
}

/// The names one claim uses on its server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimNames {
    pub database: String,
    /// PostgreSQL: the NOLOGIN role owning the database and its objects
    /// (the claim's username). Not created on MySQL/MariaDB.
    pub owner: String,
    /// `<username>_a`, `<username>_b`: the two logins rotation alternates.
    pub logins: [String; 2],
}

/// Why a database or user name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the {what} name is empty")]
    Empty { what: &'static str },
    #[error(
        "the {what} name {name:?} must match ^[a-z_][a-z0-9_]*$ (lower-case letters, digits, underscores)"
    )]
    Pattern { what: &'static str, name: String },
    #[error(
        "the {what} name {name:?} is {length} characters long; {engine} allows at most {max}{note}"
    )]
    TooLong {
        what: &'static str,
        name: String,
        length: usize,
        max: usize,
        engine: Engine,
        note: &'static str,
    },
    #[error("the {what} name {name:?} is reserved")]
    Reserved { what: &'static str, name: String },
}

/// Databases that belong to the server itself (or to us).
const RESERVED_DATABASES: &[&str] = &[
    "postgres",
    "template0",
    "template1",
    "mysql",
    "information_schema",
    "performance_schema",
    "sys",
    crate::mysql::CATALOG_DATABASE,
];

/// Users and roles that belong to the server itself.
const RESERVED_USERS: &[&str] = &[
    "postgres",
    "public",
    "none",
    "current_user",
    "current_role",
    "session_user",
    "root",
    "mysql",
    "mariadb_sys",
];

const LOGIN_SUFFIXES: [&str; 2] = ["_a", "_b"];

impl ClaimNames {
    /// Checks `database` and `username` and derives the server names.
    ///
    /// Limits: PostgreSQL identifiers are at most 63 bytes (so the username
    /// at most 61, leaving room for `_a`/`_b`); MySQL database names 64
    /// characters and user names 32 (username at most 30); MariaDB user
    /// names 80 (username at most 78).
    pub fn new(engine: Engine, database: &str, username: &str) -> Result<Self, NameError> {
        check_pattern("database", database)?;
        check_pattern("user", username)?;
        let (max_database, max_user) = match engine {
            Engine::Postgres => (63, 63),
            Engine::MySql => (64, 32),
            Engine::MariaDb => (64, 80),
        };
        if database.len() > max_database {
            return Err(NameError::TooLong {
                what: "database",
                name: database.to_owned(),
                length: database.len(),
                max: max_database,
                engine,
                note: "",
            });
        }
        let max_username = max_user - 2;
        if username.len() > max_username {
            return Err(NameError::TooLong {
                what: "user",
                name: username.to_owned(),
                length: username.len(),
                max: max_username,
                engine,
                note: " (the logins add _a and _b)",
            });
        }
        if RESERVED_DATABASES.contains(&database) {
            return Err(NameError::Reserved {
                what: "database",
                name: database.to_owned(),
            });
        }
        let logins = LOGIN_SUFFIXES.map(|suffix| format!("{username}{suffix}"));
        for user in std::iter::once(username).chain(logins.iter().map(String::as_str)) {
            // PostgreSQL reserves every role name starting with pg_.
            if RESERVED_USERS.contains(&user) || user.starts_with("pg_") {
                return Err(NameError::Reserved {
                    what: "user",
                    name: user.to_owned(),
                });
            }
        }
        Ok(ClaimNames {
            database: database.to_owned(),
            owner: username.to_owned(),
            logins,
        })
    }

    /// Whether `login` is one of this claim's two logins.
    pub fn is_login(&self, login: &str) -> bool {
        self.logins.iter().any(|l| l == login)
    }
}

fn check_pattern(what: &'static str, name: &str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(NameError::Empty { what });
    };
    let first_ok = first.is_ascii_lowercase() || first == '_';
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(NameError::Pattern {
            what,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_claim() {
        let names = ClaimNames::new(Engine::Postgres, "orders", "orders_app").unwrap();
        assert_eq!(names.database, "orders");
        assert_eq!(names.owner, "orders_app");
        assert_eq!(names.logins, ["orders_app_a", "orders_app_b"]);
        assert!(names.is_login("orders_app_b"));
        assert!(!names.is_login("orders_app"));
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            "",
            "Orders",
            "1orders",
            "or-ders",
            "or ders",
            "a\"b",
            "a'b",
            "a`b",
            "a;drop",
            "x'); DROP ROLE postgres; --",
            "ü",
            "名前",
            "a\0b",
            "a\\b",
            "a.b",
            "a$b",
        ] {
            for engine in [Engine::Postgres, Engine::MySql, Engine::MariaDb] {
                assert!(
                    ClaimNames::new(engine, bad, "ok").is_err(),
                    "database {bad:?} accepted on {engine}"
                );
                assert!(
                    ClaimNames::new(engine, "ok", bad).is_err(),
                    "user {bad:?} accepted on {engine}"
                );
            }
        }
    }

    #[test]
    fn length_limits_per_engine() {
        let name = |n: usize| "a".repeat(n);
        assert!(ClaimNames::new(Engine::Postgres, &name(63), &name(61)).is_ok());
        assert!(matches!(
            ClaimNames::new(Engine::Postgres, &name(64), "u"),
            Err(NameError::TooLong { max: 63, .. })
        ));
        assert!(matches!(
            ClaimNames::new(Engine::Postgres, "d", &name(62)),
            Err(NameError::TooLong { max: 61, .. })
        ));
        assert!(ClaimNames::new(Engine::MySql, &name(64), &name(30)).is_ok());
        assert!(ClaimNames::new(Engine::MySql, &name(65), "u").is_err());
        assert!(ClaimNames::new(Engine::MySql, "d", &name(31)).is_err());
        assert!(ClaimNames::new(Engine::MariaDb, "d", &name(78)).is_ok());
        assert!(ClaimNames::new(Engine::MariaDb, "d", &name(79)).is_err());
        let err = ClaimNames::new(Engine::MySql, "d", &name(31)).unwrap_err();
        assert!(err.to_string().contains("_a and _b"), "{err}");
    }

    #[test]
    fn reserved_names_are_refused() {
        for db in [
            "postgres",
            "template1",
            "mysql",
            "information_schema",
            "dbaas_operator",
        ] {
            assert!(matches!(
                ClaimNames::new(Engine::Postgres, db, "u"),
                Err(NameError::Reserved { .. })
            ));
        }
        for user in ["postgres", "root", "public", "pg_monitor", "pg"] {
            assert!(
                matches!(
                    ClaimNames::new(Engine::Postgres, "d", user),
                    Err(NameError::Reserved { .. })
                ),
                "{user}"
            );
        }
    }

    #[test]
    fn records_round_trip_through_comments() {
        let owner = ClaimOwner {
            namespace: "shop".into(),
            name: "orders.v2".into(),
            uid: "0b7c-11".into(),
        };
        let record = Record::from_comment(&owner.comment()).unwrap();
        assert!(record.belongs_to(&owner));
        assert_eq!(record.uid, "0b7c-11");
        let other_uid = ClaimOwner {
            uid: "new".into(),
            ..owner.clone()
        };
        assert!(record.belongs_to(&other_uid), "the uid does not decide");
        let other_ns = ClaimOwner {
            namespace: "evil".into(),
            ..owner.clone()
        };
        assert!(!record.belongs_to(&other_ns));
        assert!(record.is_current_for(&owner));
        assert!(!record.is_current_for(&other_uid));
        for foreign in [
            "",
            "app role",
            "dbaas.io/claim=",
            "dbaas.io/claim=ns uid=1",
            "dbaas.io/claim-sha256=abc uid=1",
        ] {
            assert_eq!(Record::from_comment(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn comments_name_no_namespace_or_claim() {
        let owner = ClaimOwner {
            namespace: "team-secret".into(),
            name: "payroll".into(),
            uid: "u1".into(),
        };
        let comment = owner.comment();
        assert!(
            !comment.contains("team-secret") && !comment.contains("payroll"),
            "{comment}"
        );
        // Comments written before digests are still understood, and are
        // not current (the next change rewrites them).
        let legacy = Record::from_comment("dbaas.io/claim=team-secret/payroll uid=u1").unwrap();
        assert!(legacy.belongs_to(&owner));
        assert!(!legacy.is_current_for(&owner));
    }

    #[test]
    fn refusals_name_only_claims_of_the_askers_namespace() {
        let asker = ClaimOwner {
            namespace: "shop".into(),
            name: "cart".into(),
            uid: "u".into(),
        };
        let neighbour = Record::named("shop".into(), "orders".into(), "u2".into());
        assert_eq!(Record::label(Some(&neighbour), &asker), "claim shop/orders");
        let foreign = Record::named("bank".into(), "ledger".into(), "u3".into());
        let label = Record::label(Some(&foreign), &asker);
        assert!(
            !label.contains("bank") && !label.contains("ledger"),
            "{label}"
        );
        let digest = Record::from_comment(
            &ClaimOwner {
                namespace: "bank".into(),
                name: "ledger".into(),
                uid: "u3".into(),
            }
            .comment(),
        );
        assert_eq!(
            Record::label(digest.as_ref(), &asker),
            "a claim in another namespace"
        );
        assert!(Record::label(None, &asker).contains("no ownership record"));
    }
}
