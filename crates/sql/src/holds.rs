//! Who holds the names a claim hands to stored procedures.
//!
//! The procedures receive only `(database, username)`, so these records are
//! what keeps one namespace's claim from rotating or deleting another's:
//!
//! | kind | name | held by |
//! |---|---|---|
//! | `database` | the database | a namespace: its claims may share the database (a DBA's "one database, a user per app"), no other namespace's may use it |
//! | `user` | the username | one claim |
//! | `proc_use` | `<database>.<username>` | one claim: that it uses the database; the database record goes with the last one |
//!
//! An unrecorded name is free: what the procedures make is theirs to name,
//! so existence on the server says nothing. Both engines keep the rows in a
//! table keyed by (kind, name); this module decides, the engines read and
//! write.

use crate::names::Record;
use crate::{ClaimOwner, SqlError};

pub(crate) const DATABASE: &str = "database";
pub(crate) const USER: &str = "user";
pub(crate) const USE: &str = "proc_use";

/// The records one claim's procedure names need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hold<'a> {
    pub database: &'a str,
    pub username: &'a str,
    /// `<database>.<username>` (names cannot contain a dot).
    pub usage: String,
}

/// A row read back: (kind, name) and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub kind: String,
    pub name: String,
    pub record: Record,
}

/// A row to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write<'a> {
    Insert {
        kind: &'static str,
        name: &'a str,
    },
    /// Ours under another uid (the claim was created again): take the new uid.
    UpdateUid {
        kind: &'static str,
        name: &'a str,
    },
}

impl<'a> Hold<'a> {
    pub(crate) fn new(database: &'a str, username: &'a str) -> Hold<'a> {
        Hold {
            database,
            username,
            usage: format!("{database}.{username}"),
        }
    }

    /// The (kind, name) pairs to read.
    pub(crate) fn wanted(&self) -> [(&'static str, &str); 3] {
        [
            (DATABASE, self.database),
            (USER, self.username),
            (USE, &self.usage),
        ]
    }

    /// What to write so that `owner` holds the names, or why it may not
    /// (nothing written then).
    pub(crate) fn plan(
        &self,
        owner: &ClaimOwner,
        rows: &[Row],
    ) -> Result<Vec<Write<'_>>, SqlError> {
        let mut writes = Vec::new();
        for (kind, name) in self.wanted() {
            let Some(record) = rows
                .iter()
                .find(|row| row.kind == kind && row.name == name)
                .map(|row| &row.record)
            else {
                writes.push(Write::Insert { kind, name });
                continue;
            };
            let (held, object) = if kind == DATABASE {
                (record.in_namespace_of(owner), format!("database {name}"))
            } else {
                (record.belongs_to(owner), format!("user {}", self.username))
            };
            if !held {
                return Err(SqlError::OwnedByOther {
                    object,
                    owner: Record::label(Some(record), owner),
                });
            }
            // The database record names whichever claim made it first.
            if kind != DATABASE && record.uid != owner.uid {
                writes.push(Write::UpdateUid { kind, name });
            }
        }
        Ok(writes)
    }
}

/// The statements that carry out `writes` for `owner` in `table`, with
/// values quoted by the engine's `literal`.
pub(crate) fn write_statements(
    writes: &[Write<'_>],
    owner: &ClaimOwner,
    table: &str,
    literal: fn(&str) -> String,
) -> Vec<String> {
    writes
        .iter()
        .map(|write| match write {
            Write::Insert { kind, name } => format!(
                "INSERT INTO {table} (object_kind, object_name, claim_namespace, claim_name, claim_uid) \
                 VALUES ({}, {}, {}, {}, {})",
                literal(kind),
                literal(name),
                literal(&owner.namespace),
                literal(&owner.name),
                literal(&owner.uid),
            ),
            Write::UpdateUid { kind, name } => format!(
                "UPDATE {table} SET claim_uid = {} WHERE object_kind = {} AND object_name = {} \
                 AND claim_namespace = {} AND claim_name = {}",
                literal(&owner.uid),
                literal(kind),
                literal(name),
                literal(&owner.namespace),
                literal(&owner.name),
            ),
        })
        .collect()
}

/// Releasing a claim's hold, in one transaction: forget its user and use
/// records; then, when `uses_left` counts none for the database, forget
/// the database record too.
pub(crate) struct Release {
    pub forget_claim: String,
    pub uses_left: String,
    pub forget_database: String,
}

impl Hold<'_> {
    pub(crate) fn release(
        &self,
        owner: &ClaimOwner,
        table: &str,
        literal: fn(&str) -> String,
    ) -> Release {
        let prefix = format!("{}.", self.database);
        Release {
            forget_claim: format!(
                "DELETE FROM {table} WHERE claim_namespace = {} AND claim_name = {} \
                 AND ((object_kind = {} AND object_name = {}) OR (object_kind = {} AND object_name = {}))",
                literal(&owner.namespace),
                literal(&owner.name),
                literal(USER),
                literal(self.username),
                literal(USE),
                literal(&self.usage),
            ),
            uses_left: format!(
                "SELECT COUNT(*) FROM {table} WHERE object_kind = {} AND LEFT(object_name, {}) = {}",
                literal(USE),
                prefix.len(),
                literal(&prefix),
            ),
            forget_database: format!(
                "DELETE FROM {table} WHERE object_kind = {} AND object_name = {} AND claim_namespace = {}",
                literal(DATABASE),
                literal(self.database),
                literal(&owner.namespace),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(namespace: &str, name: &str, uid: &str) -> ClaimOwner {
        ClaimOwner {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn rows_of(hold: &Hold<'_>, holder: &ClaimOwner) -> Vec<Row> {
        hold.wanted()
            .iter()
            .map(|(kind, name)| Row {
                kind: (*kind).to_owned(),
                name: (*name).to_owned(),
                record: Record::named(
                    holder.namespace.clone(),
                    holder.name.clone(),
                    holder.uid.clone(),
                ),
            })
            .collect()
    }

    #[test]
    fn free_names_are_recorded_and_held_ones_left_alone() {
        let app = owner("shop", "app", "u1");
        let hold = Hold::new("orders", "orders_app");
        assert_eq!(
            hold.plan(&app, &[]).unwrap(),
            vec![
                Write::Insert {
                    kind: DATABASE,
                    name: "orders"
                },
                Write::Insert {
                    kind: USER,
                    name: "orders_app"
                },
                Write::Insert {
                    kind: USE,
                    name: "orders.orders_app"
                },
            ]
        );
        let rows = rows_of(&hold, &app);
        assert_eq!(hold.plan(&app, &rows).unwrap(), vec![]);
        // Created again under the same name: the same claim, a new uid.
        let again = owner("shop", "app", "u2");
        assert_eq!(
            hold.plan(&again, &rows).unwrap(),
            vec![
                Write::UpdateUid {
                    kind: USER,
                    name: "orders_app"
                },
                Write::UpdateUid {
                    kind: USE,
                    name: "orders.orders_app"
                },
            ]
        );
    }

    #[test]
    fn another_namespace_gets_neither_the_user_nor_the_database() {
        let app = owner("shop", "app", "u1");
        let rows = rows_of(&Hold::new("orders", "orders_app"), &app);
        let thief = owner("evil", "app", "u9");
        for hold in [
            Hold::new("orders", "orders_app"),
            Hold::new("orders", "thief"),
            Hold::new("elsewhere", "orders_app"),
        ] {
            let err = hold.plan(&thief, &rows).unwrap_err();
            let SqlError::OwnedByOther { owner, .. } = &err else {
                panic!("{err:?}");
            };
            assert!(!owner.contains("shop"), "{owner}");
        }
    }

    #[test]
    fn claims_of_one_namespace_share_a_database_but_not_a_user() {
        let app = owner("shop", "app", "u1");
        let rows = rows_of(&Hold::new("orders", "orders_app"), &app);
        let reports = owner("shop", "reports", "u3");
        assert_eq!(
            Hold::new("orders", "orders_reports")
                .plan(&reports, &rows)
                .unwrap(),
            vec![
                Write::Insert {
                    kind: USER,
                    name: "orders_reports"
                },
                Write::Insert {
                    kind: USE,
                    name: "orders.orders_reports"
                },
            ]
        );
        let err = Hold::new("orders", "orders_app")
            .plan(&reports, &rows)
            .unwrap_err();
        assert!(
            err.to_string().contains("claim shop/app"),
            "a neighbour is named: {err}"
        );
    }
}
