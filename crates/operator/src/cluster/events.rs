//! Kubernetes Events for the changes of a DatabaseCluster a user cares
//! about: a new phase, and the spec being refused or accepted again. Pure
//! (which events) apart from publishing them.

use dbaas_api::DatabaseCluster;
use dbaas_api::cluster::{ClusterPhase, DatabaseClusterStatus};
use dbaas_api::common::condition;
use kube::Resource;
use kube::runtime::events::{Event, EventType};

/// One event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub warning: bool,
    pub reason: String,
    pub note: String,
}

fn valid_condition(
    status: Option<&DatabaseClusterStatus>,
) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status.and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::VALID))
}

/// What changed between the status we read and the one we wrote.
pub fn announcements(
    old: Option<&DatabaseClusterStatus>,
    new: &DatabaseClusterStatus,
) -> Vec<Announcement> {
    let mut found = Vec::new();
    let (was, is) = (valid_condition(old), valid_condition(Some(new)));
    match (was.map(|c| (c.status.as_str(), c.reason.as_str())), is) {
        (previous, Some(now))
            if now.status == "False" && previous != Some(("False", now.reason.as_str())) =>
        {
            found.push(Announcement {
                warning: true,
                reason: now.reason.clone(),
                note: now.message.clone(),
            });
        }
        (Some(("False", _)), Some(now)) if now.status == "True" => found.push(Announcement {
            warning: false,
            reason: "SpecAccepted".to_owned(),
            note: now.message.clone(),
        }),
        _ => {}
    }
    let old_phase = old.and_then(|s| s.phase);
    if let Some(phase) = new.phase.filter(|p| Some(*p) != old_phase) {
        found.push(Announcement {
            warning: matches!(phase, ClusterPhase::Error | ClusterPhase::Unknown),
            reason: format!("{phase:?}"),
            note: new
                .message
                .clone()
                .unwrap_or_else(|| format!("the cluster is now {phase:?}")),
        });
    }
    found
}

/// Publishes the announcements as Events on the cluster, best effort.
pub fn publish(
    recorder: &crate::events::EventPublisher,
    cluster: &DatabaseCluster,
    found: Vec<Announcement>,
) {
    let events = found
        .into_iter()
        .map(|announcement| Event {
            type_: if announcement.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: announcement.reason,
            note: Some(announcement.note),
            action: "Reconcile".to_owned(),
            secondary: None,
        })
        .collect();
    crate::events::publish_best_effort(recorder, cluster.object_ref(&()), events);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    fn status(phase: Option<ClusterPhase>, valid: Option<(&str, &str)>) -> DatabaseClusterStatus {
        DatabaseClusterStatus {
            phase,
            message: Some("message".to_owned()),
            conditions: valid
                .map(|(status, reason)| Condition {
                    type_: condition::VALID.to_owned(),
                    status: status.to_owned(),
                    reason: reason.to_owned(),
                    message: format!("{reason} message"),
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                    observed_generation: None,
                })
                .into_iter()
                .collect(),
            ..DatabaseClusterStatus::default()
        }
    }

    #[test]
    fn a_new_phase_is_announced_once() {
        let creating = status(Some(ClusterPhase::Creating), Some(("True", "Accepted")));
        let ready = status(Some(ClusterPhase::Ready), Some(("True", "Accepted")));
        let found = announcements(Some(&creating), &ready);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].reason, "Ready");
        assert!(!found[0].warning);
        assert!(announcements(Some(&ready), &ready).is_empty());
    }

    #[test]
    fn a_refusal_is_a_warning_and_its_end_is_announced() {
        let accepted = status(Some(ClusterPhase::Ready), Some(("True", "Accepted")));
        let refused = status(
            Some(ClusterPhase::Ready),
            Some(("False", "VersionNotAllowed")),
        );
        let found = announcements(Some(&accepted), &refused);
        assert_eq!(
            found,
            vec![Announcement {
                warning: true,
                reason: "VersionNotAllowed".to_owned(),
                note: "VersionNotAllowed message".to_owned(),
            }]
        );
        assert!(announcements(Some(&refused), &refused).is_empty());
        let back = announcements(Some(&refused), &accepted);
        assert_eq!(back[0].reason, "SpecAccepted");
    }

    #[test]
    fn errors_are_warnings() {
        let error = status(Some(ClusterPhase::Error), None);
        let found = announcements(None, &error);
        assert!(found[0].warning);
    }
}
