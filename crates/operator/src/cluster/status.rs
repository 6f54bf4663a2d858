//! Compose a DatabaseCluster's status from the outcome of a reconcile. Pure.

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::{ClusterPhase, DatabaseClusterStatus, EngineObjectRef};
use dbaas_api::common::condition;
use dbaas_engines::{EngineObservation, ResolvedVersion, Unapplied};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::plan::Refusal;

/// Condition listing spec settings accepted but not applied by this version.
pub const ALL_SETTINGS_APPLIED: &str = "AllSettingsApplied";

/// What a reconcile ended with.
pub enum Outcome<'a> {
    /// Nothing was applied; see the refusal.
    Refused(&'a Refusal),
    /// The engine object was applied and observed.
    Applied {
        version: &'a ResolvedVersion,
        engine_ref: EngineObjectRef,
        observation: &'a EngineObservation,
        unapplied: &'a [Unapplied],
        credentials_secret: String,
    },
}

/// The status to write for `cluster` after `outcome`.
pub fn compose(
    cluster: &DatabaseCluster,
    outcome: Outcome<'_>,
    now: &Time,
) -> DatabaseClusterStatus {
    let previous = cluster.status.clone().unwrap_or_default();
    let generation = cluster.metadata.generation;
    let mut status = DatabaseClusterStatus {
        observed_generation: generation,
        size: cluster.spec.cluster_size,
        ..previous.clone()
    };
    let mut conditions = previous.conditions.clone();
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        set_condition(&mut conditions, type_, ok, reason, message, generation, now);
    };

    match outcome {
        Outcome::Refused(refusal) => {
            set(
                refusal.condition,
                false,
                refusal.reason,
                refusal.message.clone(),
            );
            if refusal.condition == condition::ENGINE_AVAILABLE {
                set(
                    condition::VALID,
                    true,
                    "Accepted",
                    "the spec is valid".to_owned(),
                );
            }
            if previous.engine_ref.is_none() {
                // Nothing runs yet: the refusal is the whole story.
                status.phase = Some(if refusal.retry {
                    ClusterPhase::Pending
                } else {
                    ClusterPhase::Error
                });
                set(
                    condition::READY,
                    false,
                    refusal.reason,
                    refusal.message.clone(),
                );
                set(
                    condition::PROGRESSING,
                    false,
                    refusal.reason,
                    refusal.message.clone(),
                );
            }
            // Otherwise the engine keeps running the last accepted spec:
            // phase and Ready stay as they were, the message says why the
            // change was not applied.
            status.message = Some(refusal.message.clone());
        }
        Outcome::Applied {
            version,
            engine_ref,
            observation,
            unapplied,
            credentials_secret,
        } => {
            let phase = &observation.phase;
            status.phase = Some(phase.phase);
            status.ready = observation.ready_instances;
            status.host = observation.host.clone();
            status.port = observation.port;
            status.engine_version = Some(version.version.clone());
            status.requested_version = cluster
                .spec
                .engine
                .version
                .clone()
                .filter(|requested| *requested != version.version);
            status.credentials_secret = Some(credentials_secret);
            status.engine_ref = Some(engine_ref);
            status.message = Some(phase.message.clone());
            set(
                condition::VALID,
                true,
                "Accepted",
                "the spec is valid".to_owned(),
            );
            set(
                condition::ENGINE_AVAILABLE,
                true,
                "EngineOperatorInstalled",
                "the engine operator's CRDs are served".to_owned(),
            );
            let ready = phase.phase == ClusterPhase::Ready;
            set(condition::READY, ready, phase.reason, phase.message.clone());
            let progressing = matches!(
                phase.phase,
                ClusterPhase::Pending | ClusterPhase::Creating | ClusterPhase::Updating
            );
            set(
                condition::PROGRESSING,
                progressing,
                phase.reason,
                phase.message.clone(),
            );
            if unapplied.is_empty() {
                set(
                    ALL_SETTINGS_APPLIED,
                    true,
                    "AllApplied",
                    "every setting of the spec is applied".to_owned(),
                );
            } else {
                let list = unapplied
                    .iter()
                    .map(|u| format!("{}: {}", u.field, u.why))
                    .collect::<Vec<_>>()
                    .join("; ");
                set(ALL_SETTINGS_APPLIED, false, "SettingsNotApplied", list);
            }
        }
    }
    status.conditions = conditions;
    status
}

/// Sets a condition, keeping its lastTransitionTime when the status did not
/// flip.
pub(crate) fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if ok { "True" } else { "False" }.to_owned();
    let next = |last_transition_time| Condition {
        type_: type_.to_owned(),
        status: status.clone(),
        reason: reason.to_owned(),
        message: message.clone(),
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let since = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                now.clone()
            };
            *existing = next(since);
        }
        None => conditions.push(next(now.clone())),
    }
}

#[cfg(test)]
mod tests {
    use dbaas_engines::ObservedPhase;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse::<Timestamp>().unwrap())
    }

    fn cluster() -> DatabaseCluster {
        serde_saphyr::from_str(
            "apiVersion: dbaas.io/v1\nkind: DatabaseCluster\nmetadata: {name: pg, namespace: ns, generation: 4}\nspec: {engine: {type: postgresql}, clusterSize: 3, storage: {size: 1Gi}}",
        )
        .unwrap()
    }

    fn observation(phase: ClusterPhase, reason: &'static str) -> EngineObservation {
        EngineObservation {
            phase: ObservedPhase {
                phase,
                reason,
                message: "m".into(),
            },
            saw_latest_spec: true,
            ready_instances: 3,
            host: Some("pg-rw.ns.svc".into()),
            port: Some(5432),
        }
    }

    fn applied<'a>(
        version: &'a ResolvedVersion,
        observation: &'a EngineObservation,
        unapplied: &'a [Unapplied],
    ) -> Outcome<'a> {
        Outcome::Applied {
            version,
            engine_ref: EngineObjectRef::default(),
            observation,
            unapplied,
            credentials_secret: "pg-superuser".into(),
        }
    }

    fn condition<'a>(s: &'a DatabaseClusterStatus, type_: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn ready_observation_gives_ready_status_and_endpoint() {
        let version = ResolvedVersion {
            version: "17.6".into(),
            image: "i".into(),
        };
        let obs = observation(ClusterPhase::Ready, "EngineHealthy");
        let s = compose(
            &cluster(),
            applied(&version, &obs, &[]),
            &at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Ready));
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!((s.ready, s.size), (3, 3));
        assert_eq!(s.host.as_deref(), Some("pg-rw.ns.svc"));
        assert_eq!(s.engine_version.as_deref(), Some("17.6"));
        assert_eq!(s.credentials_secret.as_deref(), Some("pg-superuser"));
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(condition(&s, "Progressing").status, "False");
        assert_eq!(condition(&s, ALL_SETTINGS_APPLIED).status, "True");
        assert_eq!(condition(&s, "Ready").observed_generation, Some(4));
    }

    #[test]
    fn transition_time_only_moves_when_status_flips() {
        let version = ResolvedVersion {
            version: "17.6".into(),
            image: "i".into(),
        };
        let ready = observation(ClusterPhase::Ready, "EngineHealthy");
        let mut c = cluster();
        c.status = Some(compose(
            &c,
            applied(&version, &ready, &[]),
            &at("2026-01-01T00:00:00Z"),
        ));
        let again = compose(
            &c,
            applied(&version, &ready, &[]),
            &at("2026-01-01T01:00:00Z"),
        );
        assert_eq!(
            condition(&again, "Ready").last_transition_time,
            at("2026-01-01T00:00:00Z")
        );
        let updating = observation(ClusterPhase::Updating, "Scaling");
        let flipped = compose(
            &c,
            applied(&version, &updating, &[]),
            &at("2026-01-01T02:00:00Z"),
        );
        assert_eq!(
            condition(&flipped, "Ready").last_transition_time,
            at("2026-01-01T02:00:00Z")
        );
        assert_eq!(condition(&flipped, "Ready").reason, "Scaling");
        assert_eq!(condition(&flipped, "Progressing").status, "True");
    }

    #[test]
    fn unapplied_settings_are_listed() {
        let version = ResolvedVersion {
            version: "17.6".into(),
            image: "i".into(),
        };
        let obs = observation(ClusterPhase::Ready, "EngineHealthy");
        let unapplied = [Unapplied {
            field: "backup",
            why: "not yet",
        }];
        let s = compose(
            &cluster(),
            applied(&version, &obs, &unapplied),
            &at("2026-01-01T00:00:00Z"),
        );
        let c = condition(&s, ALL_SETTINGS_APPLIED);
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("False", "backup: not yet")
        );
    }

    #[test]
    fn refusal_of_a_new_cluster_is_an_error_phase() {
        let refusal = Refusal {
            condition: condition::VALID,
            reason: "VersionNotAllowed",
            message: "no".into(),
            retry: false,
        };
        let s = compose(
            &cluster(),
            Outcome::Refused(&refusal),
            &at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Error));
        assert_eq!(condition(&s, "Valid").reason, "VersionNotAllowed");
        assert_eq!(condition(&s, "Ready").status, "False");
    }

    #[test]
    fn refusal_of_a_change_keeps_the_running_cluster_ready() {
        let version = ResolvedVersion {
            version: "17.6".into(),
            image: "i".into(),
        };
        let obs = observation(ClusterPhase::Ready, "EngineHealthy");
        let mut c = cluster();
        c.status = Some(compose(
            &c,
            applied(&version, &obs, &[]),
            &at("2026-01-01T00:00:00Z"),
        ));
        let refusal = Refusal {
            condition: condition::VALID,
            reason: "VersionNotAllowed",
            message: "15.0 is not allowed".into(),
            retry: false,
        };
        let s = compose(&c, Outcome::Refused(&refusal), &at("2026-01-01T00:01:00Z"));
        assert_eq!(s.phase, Some(ClusterPhase::Ready));
        assert_eq!(condition(&s, "Ready").status, "True");
        assert_eq!(condition(&s, "Valid").status, "False");
        assert_eq!(s.message.as_deref(), Some("15.0 is not allowed"));
    }

    #[test]
    fn missing_engine_operator_leaves_new_cluster_pending() {
        let refusal = Refusal {
            condition: condition::ENGINE_AVAILABLE,
            reason: "EngineOperatorNotInstalled",
            message: "install it".into(),
            retry: true,
        };
        let s = compose(
            &cluster(),
            Outcome::Refused(&refusal),
            &at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.phase, Some(ClusterPhase::Pending));
        assert_eq!(condition(&s, "EngineAvailable").status, "False");
        assert_eq!(condition(&s, "Valid").status, "True");
    }
}
