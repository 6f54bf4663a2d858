//! Kubernetes Events, published best effort: the status says the same, so a
//! slow or failing events API never holds up a reconcile.
//!
//! Not kube-runtime's `Recorder`: it keeps every event it published for six
//! minutes, to count repeats as a series, and scans that whole cache on each
//! publish. At 10,000 clusters it held about 20,000 events (tens of MiB of
//! the operator's memory) and each new event paid a scan of all of them. Our
//! events announce changes (a new phase, a refusal, an operation's step),
//! each once, so there is no series to count: one create per event.

use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client};
use tracing::warn;

/// How long one Event may take before it is given up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// events.k8s.io/v1 refuses a longer `note` (bytes).
const NOTE_LIMIT: usize = 1024;

/// The last name suffix given out: names stay unique when two events are
/// made within one reading of the clock.
static LAST_SUFFIX: Mutex<i128> = Mutex::new(0);

/// A name suffix from `now`, larger than every one given out before.
fn unique_suffix(now: Timestamp) -> i128 {
    let mut last = LAST_SUFFIX
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *last = now.as_nanosecond().max(*last + 1);
    *last
}

/// `note` cut to what the API accepts, on a character boundary.
fn limited(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_owned();
    }
    let mut end = NOTE_LIMIT - '…'.len_utf8();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &note[..end])
}

/// Publishes events.k8s.io/v1 Events as this operator.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    /// `reportingController`.
    controller: String,
    /// `reportingInstance`: the pod's name when known.
    instance: String,
}

impl EventPublisher {
    /// Events reported by [`crate::EVENT_REPORTER`], from the pod `POD_NAME`
    /// names (the controller's name when unset).
    pub fn new(client: Client) -> Self {
        let controller = crate::EVENT_REPORTER.to_owned();
        let instance = std::env::var("POD_NAME").unwrap_or_else(|_| controller.clone());
        Self {
            client,
            controller,
            instance,
        }
    }

    /// Creates one Event about `regarding`.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let object = build(
            event,
            regarding,
            (&self.controller, &self.instance),
            now,
            unique_suffix(now),
        );
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        Api::<K8sEvent>::namespaced(self.client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await
            .map(drop)
    }
}

/// The Event object for `event` about `regarding`, reported by
/// (controller, instance) at `now`, named after the object and `suffix`
/// (the time in nanoseconds, as client-go names its events).
fn build(
    event: &Event,
    regarding: &ObjectReference,
    (controller, instance): (&str, &str),
    now: Timestamp,
    suffix: i128,
) -> K8sEvent {
    let name = format!(
        "{}.{suffix:x}",
        regarding.name.as_deref().unwrap_or(controller)
    );
    K8sEvent {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        action: Some(event.action.clone()),
        reason: Some(event.reason.clone()),
        note: event.note.as_deref().map(limited),
        type_: Some(
            match event.type_ {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_owned(),
        ),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(controller.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..K8sEvent::default()
    }
}

/// Publishes `events` about `regarding`, in order, on a task of their own;
/// failures and timeouts are only logged.
pub fn publish_best_effort(
    publisher: &EventPublisher,
    regarding: ObjectReference,
    events: Vec<Event>,
) {
    if events.is_empty() {
        return;
    }
    let publisher = publisher.clone();
    tokio::spawn(async move {
        for event in events {
            let published =
                tokio::time::timeout(PUBLISH_TIMEOUT, publisher.publish(&event, &regarding));
            match published.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => warn!(
                    kind = ?regarding.kind, name = ?regarding.name, namespace = ?regarding.namespace,
                    reason = %event.reason, "publishing an event: {err}"
                ),
                Err(_) => warn!(
                    kind = ?regarding.kind, name = ?regarding.name, namespace = ?regarding.namespace,
                    reason = %event.reason, "publishing an event timed out"
                ),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_its_object_reporter_and_time() {
        let regarding = ObjectReference {
            kind: Some("DatabaseCluster".to_owned()),
            namespace: Some("team-a".to_owned()),
            name: Some("orders".to_owned()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: "VersionNotAllowed".to_owned(),
            note: Some("17.1 is not allowed".to_owned()),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let suffix = unique_suffix(now);
        let built = build(&event, &regarding, ("dbaas-operator", "pod-1"), now, suffix);
        assert_eq!(
            built.metadata.name.as_deref(),
            Some(format!("orders.{suffix:x}").as_str())
        );
        assert_eq!(built.metadata.namespace.as_deref(), Some("team-a"));
        assert_eq!(built.type_.as_deref(), Some("Warning"));
        assert_eq!(built.reason.as_deref(), Some("VersionNotAllowed"));
        assert_eq!(built.note, event.note);
        assert_eq!(built.action.as_deref(), Some("Reconcile"));
        assert_eq!(built.regarding, Some(regarding));
        assert_eq!(
            built.reporting_controller.as_deref(),
            Some("dbaas-operator")
        );
        assert_eq!(built.reporting_instance.as_deref(), Some("pod-1"));
        assert_eq!(built.event_time, Some(MicroTime(now)));
        assert!(built.series.is_none());
    }

    #[test]
    fn names_are_unique_within_one_clock_reading() {
        let now = Timestamp::now();
        let first = unique_suffix(now);
        assert!(unique_suffix(now) > first);
    }

    #[test]
    fn long_notes_are_cut_to_the_api_limit_on_a_character_boundary() {
        assert_eq!(limited("short"), "short");
        let long = "é".repeat(NOTE_LIMIT);
        let cut = limited(&long);
        assert!(cut.len() <= NOTE_LIMIT, "{}", cut.len());
        assert!(cut.ends_with('…'));
    }
}
