//! `GET /v1/namespaces/{namespace}/access`: what the caller may do there,
//! per served resource and verb, so a console can disable what would be
//! refused. Each answer is the SubjectAccessReview the request itself would
//! get; the API server still decides every request.
//!
//! One summary asks about 60 questions, so they are asked a few at a time,
//! their answers are not kept in the per-request review cache (a tenant
//! asking about many namespaces would push everyone's answers out), and the
//! whole summary is kept for the review cache's time instead.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Permission;
use crate::error::ApiError;
use crate::names;
use crate::routes::{
    ApiPath, ApiQuery, Authenticated, KindDoc, NamespacePath, NoQuery, Registry, json_response,
};

/// What the caller may do in one namespace.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceAccess {
    pub namespace: String,
    /// Resource (plural, e.g. `databaseclusters`) -> verb -> allowed. The
    /// verbs are those the API serves for the resource, plus `secrets`
    /// `get` (a cluster's credentials), `events` `list` (a cluster's Events)
    /// and `databaseengines` `patch`/`update` (approving and installing
    /// engine operators).
    pub resources: BTreeMap<String, BTreeMap<String, bool>>,
}

/// SubjectAccessReviews one summary has in flight at once.
const QUESTIONS_AT_ONCE: usize = 8;

/// The served kinds and their writes, read once from the route registry.
static KINDS: LazyLock<Vec<KindDoc>> = LazyLock::new(|| Registry::build().kinds);

/// (resource plural, group, verb) of every question asked.
fn questions() -> Vec<(String, String, &'static str)> {
    let group = <dbaas_api::DatabaseCluster as kube::Resource>::group(&()).into_owned();
    let mut questions = Vec::new();
    for kind in KINDS.iter() {
        let writes = kind.writes;
        let verbs = [
            ("get", true),
            ("list", true),
            ("watch", true),
            ("create", writes.create),
            ("update", writes.replace),
            ("patch", writes.patch),
            ("delete", writes.delete),
        ];
        for (verb, served) in verbs {
            if served {
                questions.push((kind.plural.clone(), group.clone(), verb));
            }
        }
    }
    // Reading a cluster's credentials also needs its Secret; approving an
    // engine operator's upgrade and installing one change the engine.
    questions.push(("secrets".into(), String::new(), "get"));
    questions.push(("events".into(), String::new(), "list"));
    questions.push(("databaseengines".into(), group.clone(), "patch"));
    questions.push(("databaseengines".into(), group, "update"));
    questions
}

pub(crate) async fn namespace_access(
    State(state): State<Arc<AppState>>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    let key = (caller.clone(), path.namespace.clone());
    if let Some(json) = state.access_summaries.get(&key) {
        return Ok(json_response(StatusCode::OK, json.to_string()));
    }
    let questions = questions();
    let permissions: Vec<Permission> = questions
        .iter()
        .map(|(resource, group, verb)| Permission {
            verb,
            group: group.clone(),
            resource: resource.clone(),
            subresource: None,
            namespace: Some(path.namespace.clone()),
            name: None,
        })
        .collect();
    let answers: Vec<bool> = futures::stream::iter(permissions.into_iter().map(|permission| {
        let state = state.clone();
        let caller = caller.clone();
        async move { state.auth.allows_uncached(&caller, &permission).await }
    }))
    .buffered(QUESTIONS_AT_ONCE)
    .try_collect()
    .await?;
    let mut resources: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for ((resource, _, verb), allowed) in questions.into_iter().zip(answers) {
        resources
            .entry(resource)
            .or_default()
            .insert((*verb).to_owned(), allowed);
    }
    let body = NamespaceAccess {
        namespace: path.namespace,
        resources,
    };
    let json = serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    state.access_summaries.insert(key, json.clone().into());
    Ok(json_response(StatusCode::OK, json))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn questions_follow_the_writes_each_kind_serves() {
        let asked = questions();
        let has = |resource: &str, verb: &str| {
            asked
                .iter()
                .any(|(r, _, v)| r.as_str() == resource && *v == verb)
        };
        assert!(has("databaseclusters", "patch"));
        assert!(has("databaseclusters", "watch"));
        // Engines are read-only through the API, backups never edited.
        assert!(has("databaseengines", "list"));
        assert!(!has("databaseengines", "create"));
        // ... but approving an upgrade patches it.
        assert!(has("databaseengines", "patch"));
        assert!(has("events", "list"));
        assert!(has("databasebackups", "create"));
        assert!(!has("databasebackups", "patch"));
        assert!(has("secrets", "get"));
        assert!(!has("secrets", "list"));
    }
}
