//! `GET /v1/namespaces/{namespace}/databaseclusters/{name}/events`: the
//! Kubernetes Events about one database cluster (what the operator
//! recorded), newest first. Read live as the caller, so the API server's
//! RBAC on `events` decides as well as ours; Events are not cached.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use dbaas_api::DatabaseCluster;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Permission;
use crate::error::ApiError;
use crate::routes::{
    ApiPath, ApiQuery, Authenticated, NoQuery, ObjectPath, cached_or_live_in, check_object_path,
    json_response, permission,
};

/// One Event about a database cluster.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEvent {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// How many times it happened (1 for a single occurrence).
    pub count: i32,
    /// When it last happened (RFC 3339).
    pub last_seen: Option<String>,
    /// Who reported it (e.g. `dbaas-operator`).
    pub source: String,
}

/// The Events of one database cluster, newest first.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
pub struct ClusterEventList {
    pub items: Vec<ClusterEvent>,
}

/// The latest time an Event carries, whichever API wrote it
/// (`events.k8s.io/v1` sets eventTime and series; `v1` the timestamps).
fn last_seen(event: &Event) -> Option<Timestamp> {
    [
        event
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0),
        event.last_timestamp.as_ref().map(|t| t.0),
        event.event_time.as_ref().map(|t| t.0),
        event.first_timestamp.as_ref().map(|t| t.0),
    ]
    .into_iter()
    .flatten()
    .max()
}

/// The summary of an Event, as the console and the CLI show it.
pub fn summarize(event: &Event) -> ClusterEvent {
    let count = event
        .series
        .as_ref()
        .and_then(|s| s.count)
        .or(event.count)
        .unwrap_or(1);
    let source = event
        .reporting_component
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| event.source.as_ref().and_then(|s| s.component.clone()))
        .unwrap_or_default();
    ClusterEvent {
        type_: event.type_.clone().unwrap_or_else(|| "Normal".to_owned()),
        reason: event.reason.clone().unwrap_or_default(),
        message: event.message.clone().unwrap_or_default(),
        count,
        last_seen: last_seen(event).map(|t| t.to_string()),
        source,
    }
}

/// A Kubernetes uid: hex digits and dashes.
fn is_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

pub(crate) async fn cluster_events(
    State(state): State<Arc<AppState>>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    let (namespace, name) = (&path.namespace, &path.name);
    state
        .auth
        .authorize(
            &caller,
            permission::<DatabaseCluster>("get", Some(namespace), Some(name)),
        )
        .await?;
    state
        .auth
        .authorize(
            &caller,
            Permission {
                verb: "list",
                group: String::new(),
                resource: "events".into(),
                subresource: None,
                namespace: Some(namespace.clone()),
                name: None,
            },
        )
        .await?;
    // This cluster's Events only, not those of an earlier cluster of the
    // same name nor of another kind's object: matched by uid.
    let cluster =
        cached_or_live_in::<DatabaseCluster>(&state.stores, &state.auth, &caller, namespace, name)
            .await?;
    let uid = cluster.object.metadata.uid.clone().unwrap_or_default();
    if !is_uid(&uid) {
        return Err(ApiError::Internal(format!(
            "database cluster {name:?} has no valid uid"
        )));
    }
    let events: Api<Event> = Api::namespaced(state.auth.client_for(&caller)?, namespace);
    // The name is a DNS label (checked above) and the uid hex and dashes:
    // nothing in them can widen the field selector.
    let selector = format!(
        "involvedObject.kind=DatabaseCluster,involvedObject.name={name},involvedObject.uid={uid}"
    );
    let listed = events
        .list(&ListParams::default().fields(&selector))
        .await?;
    let mut items: Vec<(Option<Timestamp>, ClusterEvent)> = listed
        .items
        .iter()
        .map(|event| (last_seen(event), summarize(event)))
        .collect();
    items.sort_by_key(|(seen, _)| std::cmp::Reverse(*seen));
    let body = ClusterEventList {
        items: items.into_iter().map(|(_, event)| event).collect(),
    };
    let json = serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, json))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn events_of_either_api_are_summarized_with_their_latest_time() {
        // As events.k8s.io/v1 writes it (kube-runtime's recorder).
        let recorded: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a"},
            "involvedObject": {"kind": "DatabaseCluster", "name": "shop"},
            "type": "Warning", "reason": "VersionNotAllowed", "message": "no",
            "eventTime": "2026-12-07T10:00:00.000000Z",
            "series": {"count": 4, "lastObservedTime": "2026-12-07T10:05:00.000000Z"},
            "reportingComponent": "dbaas-operator",
        }))
        .unwrap();
        assert_eq!(
            summarize(&recorded),
            ClusterEvent {
                type_: "Warning".into(),
                reason: "VersionNotAllowed".into(),
                message: "no".into(),
                count: 4,
                last_seen: Some("2026-12-07T10:05:00Z".into()),
                source: "dbaas-operator".into(),
            }
        );
        // As core/v1 writes it.
        let core: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "b"},
            "involvedObject": {"kind": "DatabaseCluster", "name": "shop"},
            "reason": "Created", "message": "made",
            "firstTimestamp": "2026-12-07T09:00:00Z", "lastTimestamp": "2026-12-07T09:30:00Z",
            "count": 2, "source": {"component": "someone"},
        }))
        .unwrap();
        let summary = summarize(&core);
        assert_eq!(summary.type_, "Normal");
        assert_eq!(summary.count, 2);
        assert_eq!(summary.source, "someone");
        assert_eq!(summary.last_seen.as_deref(), Some("2026-12-07T09:30:00Z"));
    }
}
