//! Which DatabaseServer a claim uses: the one it names, or the one whose
//! instance label is the longest dotted prefix of the claim's
//! (`athena.hostapp` matches a server labelled `athena.hostapp`, else one
//! labelled `athena`). Pure: the caller passes the servers of the namespace.

use dbaas_api::claim::{LABEL_CLAIM, LABEL_INSTANCE};
use dbaas_api::{DatabaseClaim, DatabaseServer};
use kube::ResourceExt;

/// Why no server was chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoMatch {
    #[error("DatabaseServer {0} (named by serverRef) does not exist")]
    ReferencedMissing(String),
    #[error(
        "DatabaseServer {server} is a {server_engine} server, the claim asks for {claim_engine}"
    )]
    EngineMismatch {
        server: String,
        server_engine: String,
        claim_engine: String,
    },
    #[error(
        "no {engine} DatabaseServer has an instance label ({LABEL_INSTANCE}) that is a prefix of {label}"
    )]
    NoPrefix { engine: String, label: String },
    #[error(
        "the claim names no server and no instance label, and there is not exactly one {engine} DatabaseServer in the namespace ({count} found)"
    )]
    Ambiguous { engine: String, count: usize },
    #[error("DatabaseServer {0}, which this claim is bound to, no longer exists")]
    BoundServerGone(String),
}

/// The chosen server and, when chosen by label, the label that matched.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub server: &'a DatabaseServer,
    pub label: Option<String>,
}

/// Whether `server_label` is `claim_label` or one of its dotted prefixes.
pub fn is_dotted_prefix(server_label: &str, claim_label: &str) -> bool {
    claim_label == server_label
        || (claim_label.starts_with(server_label)
            && claim_label.as_bytes().get(server_label.len()) == Some(&b'.'))
}

/// Picks the server for `claim` among `servers` (same namespace). A claim
/// already bound (`status.server` with its database made) stays on that
/// server: a better match appearing later must not move an app's data.
pub fn choose<'a>(
    claim: &DatabaseClaim,
    servers: &'a [DatabaseServer],
) -> Result<Matched<'a>, NoMatch> {
    let by_name = |name: &str| servers.iter().find(|s| s.name_any() == name);
    let engine = claim.spec.type_;
    let same_engine = |server: &'a DatabaseServer| -> Result<&'a DatabaseServer, NoMatch> {
        if server.spec.engine == engine {
            Ok(server)
        } else {
            Err(NoMatch::EngineMismatch {
                server: server.name_any(),
                server_engine: format!("{:?}", server.spec.engine).to_lowercase(),
                claim_engine: format!("{engine:?}").to_lowercase(),
            })
        }
    };
    let status = claim.status.as_ref();
    if let Some(bound) = status.and_then(|s| s.server.as_deref())
        && status.is_some_and(|s| s.db_created_at.is_some())
    {
        let server = by_name(bound).ok_or_else(|| NoMatch::BoundServerGone(bound.to_owned()))?;
        return Ok(Matched {
            server: same_engine(server)?,
            label: status.and_then(|s| s.matched_label.clone()),
        });
    }
    if let Some(reference) = &claim.spec.server_ref {
        let server = by_name(&reference.name)
            .ok_or_else(|| NoMatch::ReferencedMissing(reference.name.clone()))?;
        return Ok(Matched {
            server: same_engine(server)?,
            label: None,
        });
    }
    // Servers made for another claim (dynamic provisioning) are private.
    let candidates = servers
        .iter()
        .filter(|s| s.spec.engine == engine)
        .filter(|s| {
            s.labels()
                .get(LABEL_CLAIM)
                .is_none_or(|c| *c == claim.name_any())
        });
    let engine_name = format!("{engine:?}").to_lowercase();
    match &claim.spec.instance_label {
        Some(wanted) => candidates
            .filter_map(|s| {
                let label = s.labels().get(LABEL_INSTANCE)?;
                is_dotted_prefix(label, wanted).then_some((label.len(), s, label.clone()))
            })
            // Longest label wins; equal labels resolve by name so the choice
            // is stable from one reconcile to the next.
            .max_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| b.1.name_any().cmp(&a.1.name_any()))
            })
            .map(|(_, server, label)| Matched {
                server,
                label: Some(label),
            })
            .ok_or(NoMatch::NoPrefix {
                engine: engine_name,
                label: wanted.clone(),
            }),
        None => {
            let all: Vec<_> = candidates.collect();
            match all.as_slice() {
                [only] => Ok(Matched {
                    server: only,
                    label: None,
                }),
                _ => Err(NoMatch::Ambiguous {
                    engine: engine_name,
                    count: all.len(),
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbaas_api::claim::{DatabaseClaimSpec, DatabaseClaimStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn server(name: &str, engine: &str, label: Option<&str>) -> DatabaseServer {
        let mut object: DatabaseServer = serde_json::from_value(json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseServer",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"engine": engine, "host": "db.example", "adminCredentials": {
                "username": {"name": "admin", "key": "username"},
                "password": {"name": "admin", "key": "password"}}}
        }))
        .unwrap();
        if let Some(label) = label {
            object
                .metadata
                .labels
                .get_or_insert_default()
                .insert(LABEL_INSTANCE.into(), label.into());
        }
        object
    }

    fn claim(label: Option<&str>) -> DatabaseClaim {
        let spec: DatabaseClaimSpec = serde_json::from_value(json!({
            "secretName": "app-db", "type": "postgres", "username": "app", "databaseName": "app"
        }))
        .unwrap();
        let mut claim = DatabaseClaim::new("app", spec);
        claim.spec.instance_label = label.map(Into::into);
        claim
    }

    fn names(
        servers: &[DatabaseServer],
        claim: &DatabaseClaim,
    ) -> Result<(String, Option<String>), NoMatch> {
        choose(claim, servers).map(|m| (m.server.name_any(), m.label))
    }

    #[test]
    fn dotted_prefix_is_by_segment() {
        assert!(is_dotted_prefix("athena", "athena"));
        assert!(is_dotted_prefix("athena", "athena.hostapp"));
        assert!(is_dotted_prefix("athena.hostapp", "athena.hostapp.eu"));
        assert!(!is_dotted_prefix("athena", "athenax"));
        assert!(!is_dotted_prefix("athena.hostapp", "athena"));
        assert!(!is_dotted_prefix("", "athena"));
    }

    #[test]
    fn longest_prefix_wins_as_in_the_seed() {
        let servers = vec![
            server("atlas", "postgres", Some("atlas")),
            server("athena", "postgres", Some("athena")),
            server("northstar", "postgres", Some("northstar")),
        ];
        let wanted = claim(Some("athena.hostapp"));
        assert_eq!(
            names(&servers, &wanted),
            Ok(("athena".into(), Some("athena".into())))
        );
        let mut more = servers.clone();
        more.push(server("hostapp", "postgres", Some("athena.hostapp")));
        assert_eq!(
            names(&more, &wanted),
            Ok(("hostapp".into(), Some("athena.hostapp".into())))
        );
    }

    #[test]
    fn other_engines_and_non_prefixes_do_not_match() {
        let servers = vec![
            server("my", "mysql", Some("athena")),
            server("x", "postgres", Some("athenax")),
        ];
        assert!(matches!(
            names(&servers, &claim(Some("athena.hostapp"))),
            Err(NoMatch::NoPrefix { .. })
        ));
    }

    #[test]
    fn explicit_reference_is_checked() {
        let servers = vec![
            server("pg", "postgres", None),
            server("my", "mariadb", None),
        ];
        let mut wanted = claim(None);
        wanted.spec.server_ref =
            Some(dbaas_api::common::LocalObjectReference { name: "pg".into() });
        assert_eq!(names(&servers, &wanted), Ok(("pg".into(), None)));
        wanted.spec.server_ref =
            Some(dbaas_api::common::LocalObjectReference { name: "my".into() });
        assert!(matches!(
            names(&servers, &wanted),
            Err(NoMatch::EngineMismatch { .. })
        ));
        wanted.spec.server_ref = Some(dbaas_api::common::LocalObjectReference {
            name: "gone".into(),
        });
        assert_eq!(
            names(&servers, &wanted),
            Err(NoMatch::ReferencedMissing("gone".into()))
        );
    }

    #[test]
    fn no_label_needs_exactly_one_server() {
        let one = vec![
            server("pg", "postgres", Some("x")),
            server("my", "mysql", None),
        ];
        assert_eq!(names(&one, &claim(None)), Ok(("pg".into(), None)));
        let two = vec![server("a", "postgres", None), server("b", "postgres", None)];
        assert_eq!(
            names(&two, &claim(None)),
            Err(NoMatch::Ambiguous {
                engine: "postgres".into(),
                count: 2
            })
        );
    }

    #[test]
    fn servers_made_for_another_claim_are_private() {
        let mut private = server("other-db", "postgres", Some("athena"));
        private
            .metadata
            .labels
            .get_or_insert_default()
            .insert(LABEL_CLAIM.into(), "other".into());
        let servers = vec![private];
        assert!(matches!(
            names(&servers, &claim(Some("athena.app"))),
            Err(NoMatch::NoPrefix { .. })
        ));
        assert!(matches!(
            names(&servers, &claim(None)),
            Err(NoMatch::Ambiguous { count: 0, .. })
        ));
    }

    #[test]
    fn a_bound_claim_stays_on_its_server() {
        let servers = vec![
            server("athena", "postgres", Some("athena")),
            server("hostapp", "postgres", Some("athena.hostapp")),
        ];
        let mut wanted = claim(Some("athena.hostapp"));
        wanted.status = Some(DatabaseClaimStatus {
            server: Some("athena".into()),
            matched_label: Some("athena".into()),
            db_created_at: Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        });
        assert_eq!(
            names(&servers, &wanted),
            Ok(("athena".into(), Some("athena".into())))
        );
        assert_eq!(
            names(&servers[1..], &wanted),
            Err(NoMatch::BoundServerGone("athena".into()))
        );
    }
}
