//! Several clusters at once: registering Kubernetes clusters, their
//! database clusters (reads from each cluster's own watch caches, writes as
//! the caller through the registered credentials), one list across every
//! cluster, and each cluster's available resources.
//!
//! Authorization:
//! - managing registrations: a SubjectAccessReview on the management
//!   (local) cluster for the pseudo-resource `kubernetesclusters.dbaas.io`
//!   in the server's namespace (verbs list, get, create, patch, delete);
//!   callers never need access to the Secrets holding the kubeconfigs;
//! - a registration's `lastError`: shown only to callers who may `patch`
//!   that registration (who manage it); others see null;
//! - anything inside a registered cluster: `get kubernetesclusters` on the
//!   management cluster for that registration, AND a SubjectAccessReview
//!   on THAT cluster, made with the registered credentials, asking about the
//!   caller under their prefixed remote name ([`crate::auth::RemoteIdentity`]:
//!   `dbaas:<user>`, `dbaas:<group>` for each group that is not a `system:`
//!   one, no uid, no extras); writes impersonate that name there. Remote RBAC
//!   must grant the prefixed names explicitly.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use dbaas_api::DatabaseCluster;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Auth, Caller, Permission};
use crate::capacity::Capacity;
use crate::clusters::{
    LOCAL_CLUSTER, RegisterCluster, RemoteCluster, RenameCluster, not_registered,
};
use crate::error::ApiError;
use crate::names;
use crate::resources::Stores;
use crate::routes::{
    ApiPath, ApiQuery, Authenticated, ListQuery, NoQuery, body_bytes, cached_or_live_in,
    check_content_type, create_in, delete_in, json_response, list_or_watch, permission,
};
use crate::store::ObjectKey;

type Shared = Arc<AppState>;

/// The pseudo-resource registrations are authorized as.
pub const REGISTRATION_RESOURCE: &str = "kubernetesclusters";

/// The routes of this module.
pub fn router() -> Router<Shared> {
    Router::new()
        .route(
            "/v1/kubernetesclusters",
            get(list_registrations).post(register),
        )
        .route(
            "/v1/kubernetesclusters/{cluster}",
            get(read_registration)
                .patch(rename_registration)
                .delete(unregister),
        )
        .route(
            "/v1/kubernetesclusters/{cluster}/resources",
            get(available_resources),
        )
        .route(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters",
            get(list_cluster_databases).post(create_cluster_database),
        )
        .route(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters/{name}",
            get(read_cluster_database)
                .patch(patch_cluster_database)
                .delete(delete_cluster_database),
        )
        .route(
            "/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters/{name}/credentials",
            get(cluster_database_credentials),
        )
        .route(
            "/v1/allclusters/databaseclusters",
            get(list_databases_everywhere),
        )
}

// ----- targets ------------------------------------------------------------

/// The cluster a request addresses: the server's own, or a registered one.
enum Target {
    Local(Shared),
    Remote(Arc<RemoteCluster>),
}

impl Target {
    fn stores(&self) -> &Stores {
        match self {
            Self::Local(state) => &state.stores,
            Self::Remote(cluster) => &cluster.stores,
        }
    }

    fn auth(&self) -> &Auth {
        match self {
            Self::Local(state) => &state.auth,
            Self::Remote(cluster) => &cluster.auth,
        }
    }

    /// The server's own identity on that cluster.
    fn client(&self) -> Client {
        match self {
            Self::Local(state) => state.client.clone(),
            Self::Remote(cluster) => cluster.client.clone(),
        }
    }
}

fn registration_permission(state: &AppState, verb: &'static str, name: Option<&str>) -> Permission {
    Permission {
        verb,
        group: DatabaseCluster::group(&()).into_owned(),
        resource: REGISTRATION_RESOURCE.into(),
        subresource: None,
        namespace: Some(state.clusters.namespace.clone()),
        name: name.map(str::to_owned),
    }
}

/// Whether the caller may manage the registration `name` (and so see why
/// its checks fail).
async fn may_manage(state: &AppState, caller: &Arc<Caller>, name: &str) -> Result<bool, ApiError> {
    state
        .auth
        .allows(caller, &registration_permission(state, "patch", Some(name)))
        .await
}

/// The cluster `name` names, once the caller may use it: `local` needs
/// nothing more; a registered cluster needs `get kubernetesclusters` on
/// the management cluster. Unknown clusters are a 404.
async fn target(state: &Shared, caller: &Arc<Caller>, name: &str) -> Result<Target, ApiError> {
    if name == LOCAL_CLUSTER {
        return Ok(Target::Local(state.clone()));
    }
    names::check("cluster", name)?;
    state
        .auth
        .authorize(caller, registration_permission(state, "get", Some(name)))
        .await?;
    state
        .clusters
        .get(name)
        .map(Target::Remote)
        .ok_or_else(|| not_registered(name))
}

// ----- registrations --------------------------------------------------------

#[derive(Deserialize)]
struct ClusterPath {
    cluster: String,
}

#[derive(Deserialize)]
struct NamespacePath {
    cluster: String,
    namespace: String,
}

#[derive(Deserialize)]
struct ObjectPath {
    cluster: String,
    namespace: String,
    name: String,
}

fn json_body<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    merge_patch: bool,
) -> Result<T, ApiError> {
    check_content_type(headers, merge_patch)?;
    let bytes = body_bytes(body, state.body_limit)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidBody(format!("the request body is not valid: {e}")))
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let json = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(status, json))
}

async fn list_registrations(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    state
        .auth
        .authorize(&caller, registration_permission(&state, "list", None))
        .await?;
    if !state.clusters.is_loaded() {
        return Err(ApiError::NotReady(
            "the cluster registrations are still loading".into(),
        ));
    }
    let mut items = Vec::new();
    for (name, cluster) in state.clusters.all() {
        let with_error = may_manage(&state, &caller, &name).await?;
        items.push(cluster.summary(&name, with_error));
    }
    to_json(StatusCode::OK, &serde_json::json!({ "items": items }))
}

async fn register(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .authorize(&caller, registration_permission(&state, "create", None))
        .await?;
    let request: RegisterCluster = json_body(&state, &headers, body, false)?;
    let with_error = may_manage(&state, &caller, &request.name).await?;
    let summary = state.clusters.register(request, with_error).await?;
    to_json(StatusCode::CREATED, &summary)
}

async fn read_registration(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ClusterPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("cluster", &path.cluster)?;
    state
        .auth
        .authorize(
            &caller,
            registration_permission(&state, "get", Some(&path.cluster)),
        )
        .await?;
    let cluster = state
        .clusters
        .get(&path.cluster)
        .ok_or_else(|| not_registered(&path.cluster))?;
    let with_error = may_manage(&state, &caller, &path.cluster).await?;
    to_json(StatusCode::OK, &cluster.summary(&path.cluster, with_error))
}

async fn rename_registration(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ClusterPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    names::check("cluster", &path.cluster)?;
    state
        .auth
        .authorize(
            &caller,
            registration_permission(&state, "patch", Some(&path.cluster)),
        )
        .await?;
    let request: RenameCluster = json_body(&state, &headers, body, true)?;
    // Authorized to patch it above: the caller manages it.
    let summary = state
        .clusters
        .rename(&path.cluster, &request.name, true)
        .await?;
    to_json(StatusCode::OK, &summary)
}

async fn unregister(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ClusterPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("cluster", &path.cluster)?;
    state
        .auth
        .authorize(
            &caller,
            registration_permission(&state, "delete", Some(&path.cluster)),
        )
        .await?;
    state.clusters.unregister(&path.cluster).await?;
    to_json(
        StatusCode::OK,
        &serde_json::json!({ "deleted": { "name": path.cluster } }),
    )
}

// ----- available resources ------------------------------------------------

/// What a cluster can still take.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailableResources {
    /// `local` or the registered name.
    pub kubernetes_cluster: String,
    #[serde(flatten)]
    pub capacity: Capacity,
    pub storage_classes: Vec<StorageClassSummary>,
}

#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageClassSummary {
    pub name: String,
    pub provisioner: String,
    /// Annotated `storageclass.kubernetes.io/is-default-class: "true"`.
    pub is_default: bool,
    pub allow_volume_expansion: bool,
}

/// Nodes, Pods and StorageClasses are read live (one LIST each, with the
/// server's identity on that cluster) after the caller is authorized to
/// list nodes there: watching every Pod of every cluster would cost far
/// more than this occasional question.
async fn available_resources(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ClusterPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let target = target(&state, &caller, &path.cluster).await?;
    target
        .auth()
        .authorize(
            &caller,
            Permission {
                verb: "list",
                group: String::new(),
                resource: "nodes".into(),
                subresource: None,
                namespace: None,
                name: None,
            },
        )
        .await?;
    let client = target.client();
    let params = ListParams::default();
    let nodes = Api::<Node>::all(client.clone()).list(&params).await?;
    // Finished pods hold nothing; leave them out on the server side.
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
        .await?;
    let classes = Api::<StorageClass>::all(client).list(&params).await?;
    let mut storage_classes: Vec<_> = classes
        .items
        .into_iter()
        .map(|class| StorageClassSummary {
            is_default: class
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                .is_some_and(|v| v == "true"),
            name: class.metadata.name.unwrap_or_default(),
            provisioner: class.provisioner,
            allow_volume_expansion: class.allow_volume_expansion.unwrap_or(false),
        })
        .collect();
    storage_classes.sort_by(|a, b| a.name.cmp(&b.name));
    to_json(
        StatusCode::OK,
        &AvailableResources {
            kubernetes_cluster: path.cluster,
            capacity: crate::capacity::available(&nodes.items, &pods.items),
            storage_classes,
        },
    )
}

// ----- database clusters of one cluster -----------------------------------

async fn list_cluster_databases(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    let target = target(&state, &caller, &path.cluster).await?;
    list_or_watch(
        &state,
        &target.stores().clusters,
        target.auth(),
        &caller,
        Some(&path.namespace),
        &query,
    )
    .await
}

async fn read_cluster_database(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    names::check("name", &path.name)?;
    let target = target(&state, &caller, &path.cluster).await?;
    target
        .auth()
        .authorize(
            &caller,
            permission::<DatabaseCluster>("get", Some(&path.namespace), Some(&path.name)),
        )
        .await?;
    let entry = cached_or_live_in::<DatabaseCluster>(
        target.stores(),
        target.auth(),
        &caller,
        &path.namespace,
        &path.name,
    )
    .await?;
    Ok(json_response(StatusCode::OK, entry.json.to_string()))
}

async fn create_cluster_database(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&state, &caller, &path.cluster).await?;
    create_in::<DatabaseCluster>(
        target.stores(),
        target.auth(),
        state.body_limit,
        &caller,
        &path.namespace,
        &headers,
        body,
    )
    .await
}

async fn patch_cluster_database(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let target = target(&state, &caller, &path.cluster).await?;
    let place = crate::routes::Place {
        stores: target.stores(),
        auth: target.auth(),
        body_limit: state.body_limit,
    };
    crate::routes::patch_in::<DatabaseCluster>(
        place,
        &caller,
        &path.namespace,
        &path.name,
        &headers,
        body,
    )
    .await
}

async fn cluster_database_credentials(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let target = target(&state, &caller, &path.cluster).await?;
    crate::routes::credentials_in(
        target.stores(),
        target.auth(),
        &caller,
        &path.namespace,
        &path.name,
    )
    .await
}

async fn delete_cluster_database(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    let target = target(&state, &caller, &path.cluster).await?;
    delete_in::<DatabaseCluster>(target.auth(), &caller, &path.namespace, &path.name).await
}

// ----- one list across every cluster ---------------------------------------

/// Where a page of the all-clusters list ended: opaque to clients.
#[derive(Serialize, Deserialize)]
struct EverywhereToken {
    cluster: String,
    ns: String,
    name: String,
}

fn encode_everywhere(cluster: &str, key: &ObjectKey) -> String {
    let token = EverywhereToken {
        cluster: cluster.to_owned(),
        ns: key.0.clone(),
        name: key.1.clone(),
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_everywhere(token: &str) -> Result<EverywhereToken, ApiError> {
    let invalid = || ApiError::InvalidQuery(format!("continue token {token:?} is not valid"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// A cluster the all-clusters list left out, and why.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedCluster {
    pub kubernetes_cluster: String,
    /// `Forbidden` (the caller may not list database clusters of every
    /// namespace there), `NotReady` (its caches are loading), or the reason
    /// of the failed authorization.
    pub reason: String,
    pub message: String,
}

/// `GET /v1/allclusters/databaseclusters`: database clusters of every
/// namespace of the local cluster and every registered cluster, ordered by
/// (cluster, namespace, name), each item `{kubernetesCluster, databaseCluster}`.
/// Clusters where the caller may not list database clusters of every
/// namespace (or whose caches are loading) are left out and named in
/// `skipped`, so one unreachable cluster does not fail the whole list.
async fn list_databases_everywhere(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    query.refuse_watch(|| {
        "this list of every cluster takes no watch; watch each cluster's list instead".into()
    })?;
    let selector = crate::selector::parse(query.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(e.to_string()))?;
    let after = query
        .continue_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(decode_everywhere)
        .transpose()?;
    let mut targets: Vec<(String, Target)> =
        vec![(LOCAL_CLUSTER.to_owned(), Target::Local(state.clone()))];
    targets.extend(
        state
            .clusters
            .all()
            .into_iter()
            .map(|(name, cluster)| (name, Target::Remote(cluster))),
    );
    targets.sort_by(|a, b| a.0.cmp(&b.0));
    let limit = query.page_size(state.limits.max_page_size);
    let mut body = String::from("{\"items\":[");
    let mut count = 0usize;
    let mut next: Option<(String, ObjectKey)> = None;
    let mut skipped = Vec::new();
    for (name, target) in &targets {
        if let Some(token) = &after
            && name.as_str() < token.cluster.as_str()
        {
            continue;
        }
        let allowed = match target {
            Target::Local(_) => Ok(()),
            Target::Remote(_) => {
                state
                    .auth
                    .authorize(&caller, registration_permission(&state, "get", Some(name)))
                    .await
            }
        };
        let allowed = match allowed {
            Ok(()) => {
                target
                    .auth()
                    .authorize(&caller, permission::<DatabaseCluster>("list", None, None))
                    .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = allowed {
            skipped.push(SkippedCluster {
                kubernetes_cluster: name.clone(),
                reason: err.reason().to_owned(),
                message: err.to_string(),
            });
            continue;
        }
        let store = &target.stores().clusters;
        if !store.is_synced() {
            skipped.push(SkippedCluster {
                kubernetes_cluster: name.clone(),
                reason: "NotReady".into(),
                message: format!("the caches of cluster {name} are still loading"),
            });
            continue;
        }
        if count == limit {
            // The page is full and this cluster has something to offer: the
            // next page starts here.
            if !store.is_empty() && next.is_none() {
                next = Some((name.clone(), (String::new(), String::new())));
            }
            break;
        }
        let start = after
            .as_ref()
            .filter(|t| t.cluster == *name)
            .map(|t| (t.ns.clone(), t.name.clone()));
        let page = store.list(
            None,
            &selector,
            None,
            start.as_ref(),
            None,
            Some(limit - count),
        );
        for entry in &page.items {
            if count > 0 {
                body.push(',');
            }
            body.push_str("{\"kubernetesCluster\":");
            body.push_str(&Value::String(name.clone()).to_string());
            body.push_str(",\"databaseCluster\":");
            body.push_str(&entry.json);
            body.push('}');
            count += 1;
        }
        if let Some(key) = page.next {
            next = Some((name.clone(), key));
            break;
        }
    }
    body.push_str("],\"continue\":");
    match &next {
        Some((cluster, key)) => {
            body.push_str(&Value::String(encode_everywhere(cluster, key)).to_string())
        }
        None => body.push_str("null"),
    }
    body.push_str(",\"skipped\":");
    body.push_str(&serde_json::to_string(&skipped).map_err(|e| ApiError::Internal(e.to_string()))?);
    body.push('}');
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everywhere_tokens_round_trip() {
        let token = encode_everywhere("east", &("team-a".into(), "db".into()));
        let decoded = decode_everywhere(&token).unwrap();
        assert_eq!(
            (
                decoded.cluster.as_str(),
                decoded.ns.as_str(),
                decoded.name.as_str()
            ),
            ("east", "team-a", "db")
        );
        assert!(decode_everywhere("nope!").is_err());
    }
}
