//! The per-cluster queue of OpsRequests. Pure.
//!
//! Operations on one cluster run one at a time: the non-terminal ones are
//! ordered (a running one first, then by creationTimestamp, then by name),
//! the first one runs and the others wait. At most [`QUEUE_LIMIT`] are
//! admitted; the rest stay Pending until a place frees up.

use dbaas_api::OpsRequest;
use dbaas_api::cluster::QueuedOperation;
use dbaas_api::ops::OpsPhase;
use kube::ResourceExt;

/// How many operations a cluster's queue holds (the running one included).
pub const QUEUE_LIMIT: usize = 16;

/// Where one OpsRequest stands in its cluster's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// It runs (or may start now).
    Head,
    /// It waits; 1 is the next to run.
    Waiting(i32),
    /// The queue is full: it is not admitted yet.
    Overflow,
    /// Finished or being deleted: not in any queue.
    Outside,
}

/// The phase an OpsRequest counts as (no status yet: Pending).
pub fn phase_of(op: &OpsRequest) -> OpsPhase {
    op.status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(OpsPhase::Pending)
}

/// Whether `op` is one of the queued operations of `cluster` in `namespace`.
fn queued_on(op: &OpsRequest, namespace: &str, cluster: &str) -> bool {
    op.namespace().as_deref() == Some(namespace)
        && op.spec.cluster_ref.name == cluster
        && op.metadata.deletion_timestamp.is_none()
        && !phase_of(op).is_terminal()
}

/// The queued operations of a cluster, in the order they run.
pub fn ordered<'a>(
    ops: impl IntoIterator<Item = &'a OpsRequest>,
    namespace: &str,
    cluster: &str,
) -> Vec<&'a OpsRequest> {
    let mut queued: Vec<&OpsRequest> = ops
        .into_iter()
        .filter(|op| queued_on(op, namespace, cluster))
        .collect();
    // One that already runs stays first, whatever came in since (a cache
    // that lagged may have hidden an older one when it started).
    queued.sort_by(|a, b| {
        let waiting =
            |op: &OpsRequest| !matches!(phase_of(op), OpsPhase::Running | OpsPhase::Cancelling);
        (
            waiting(a),
            a.metadata.creation_timestamp.as_ref().map(|t| t.0),
            a.name_any(),
        )
            .cmp(&(
                waiting(b),
                b.metadata.creation_timestamp.as_ref().map(|t| t.0),
                b.name_any(),
            ))
    });
    queued
}

/// Where `name` stands in `ordered`.
pub fn place(ordered: &[&OpsRequest], name: &str) -> Place {
    match ordered.iter().position(|op| op.name_any() == name) {
        None => Place::Outside,
        Some(0) => Place::Head,
        Some(i) if i < QUEUE_LIMIT => Place::Waiting(i32::try_from(i).unwrap_or(i32::MAX)),
        Some(_) => Place::Overflow,
    }
}

/// The queue as the cluster's status shows it: the admitted operations.
pub fn entries(ordered: &[&OpsRequest]) -> Vec<QueuedOperation> {
    ordered
        .iter()
        .take(QUEUE_LIMIT)
        .map(|op| QueuedOperation {
            name: op.name_any(),
            type_: op.spec.type_,
            phase: phase_of(op),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, cluster: &str, created: &str, phase: Option<&str>) -> OpsRequest {
        let status = phase
            .map(|p| format!("\nstatus: {{phase: {p}}}"))
            .unwrap_or_default();
        serde_saphyr::from_str(&format!(
            "apiVersion: dbaas.io/v1\nkind: OpsRequest\nmetadata: {{name: {name}, namespace: ns, creationTimestamp: '{created}'}}\nspec: {{clusterRef: {{name: {cluster}}}, type: Restart}}{status}"
        ))
        .unwrap()
    }

    fn names(ordered: &[&OpsRequest]) -> Vec<String> {
        ordered.iter().map(|o| o.name_any()).collect()
    }

    #[test]
    fn oldest_first_then_by_name_and_other_clusters_apart() {
        let ops = [
            op("c", "pg", "2026-01-01T00:00:02Z", None),
            op("b", "pg", "2026-01-01T00:00:01Z", Some("Pending")),
            op("a", "pg", "2026-01-01T00:00:02Z", None),
            op("x", "other", "2026-01-01T00:00:00Z", None),
            op("done", "pg", "2026-01-01T00:00:00Z", Some("Succeeded")),
        ];
        let ordered = ordered(&ops, "ns", "pg");
        assert_eq!(names(&ordered), ["b", "a", "c"]);
        assert_eq!(place(&ordered, "b"), Place::Head);
        assert_eq!(place(&ordered, "c"), Place::Waiting(2));
        assert_eq!(place(&ordered, "done"), Place::Outside);
        let entries = entries(&ordered);
        assert_eq!(entries[0].phase, OpsPhase::Pending);
        assert_eq!(entries.len(), 3);
    }

    #[test]
    fn a_running_operation_stays_at_the_head() {
        let ops = [
            op("late", "pg", "2026-01-01T00:00:09Z", Some("Running")),
            op("early", "pg", "2026-01-01T00:00:01Z", None),
        ];
        let ordered = ordered(&ops, "ns", "pg");
        assert_eq!(names(&ordered), ["late", "early"]);
    }

    #[test]
    fn the_queue_is_bounded_and_the_rest_waits_outside() {
        let ops: Vec<_> = (0..20)
            .map(|i| op(&format!("op{i:02}"), "pg", "2026-01-01T00:00:00Z", None))
            .collect();
        let ordered = ordered(&ops, "ns", "pg");
        assert_eq!(entries(&ordered).len(), QUEUE_LIMIT);
        assert_eq!(place(&ordered, "op15"), Place::Waiting(15));
        assert_eq!(place(&ordered, "op16"), Place::Overflow);
    }
}
