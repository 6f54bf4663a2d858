//! `GET /v1/namespaces/{namespace}/access`: what the caller may do there,
//! per served resource and verb, so a console can disable what would be
//! refused. Each answer is the SubjectAccessReview the request itself would
//! get (and shares its cache); the API server still decides every request.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
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
    /// verbs are those the API serves for the resource; `secrets` has
    /// `get`, which reading a cluster's credentials also needs.
    pub resources: BTreeMap<String, BTreeMap<String, bool>>,
}

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
    questions.push(("secrets".into(), String::new(), "get"));
    questions
}

pub(crate) async fn namespace_access(
    State(state): State<Arc<AppState>>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    let questions = questions();
    let answers = futures::future::try_join_all(questions.iter().map(|(resource, group, verb)| {
        let permission = Permission {
            verb,
            group: group.clone(),
            resource: resource.clone(),
            subresource: None,
            namespace: Some(path.namespace.clone()),
            name: None,
        };
        let auth = &state.auth;
        let caller = &caller;
        async move { auth.allows(caller, &permission).await }
    }))
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
        assert!(has("databasebackups", "create"));
        assert!(!has("databasebackups", "patch"));
        assert!(has("secrets", "get"));
        assert!(!has("secrets", "list"));
    }
}
