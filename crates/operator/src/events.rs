//! Kubernetes Events, published best effort: the status says the same, so a
//! slow or failing events API never holds up a reconcile.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder};
use tracing::warn;

/// How long one Event may take before it is given up.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes `events` about `regarding`, in order, on a task of their own;
/// failures and timeouts are only logged.
pub fn publish_best_effort(recorder: &Recorder, regarding: ObjectReference, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let recorder = recorder.clone();
    tokio::spawn(async move {
        for event in events {
            let published =
                tokio::time::timeout(PUBLISH_TIMEOUT, recorder.publish(&event, &regarding));
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
