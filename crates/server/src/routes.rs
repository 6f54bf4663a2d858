//! The HTTP surface: one generic set of handlers per served kind (reads from
//! the watch caches, writes through the API server as the caller), plus
//! cluster credentials, a cluster's ops requests and the engine-version
//! summary. Routes and their OpenAPI entries come from one [`Registry`], so
//! the document cannot list a route the router lacks or the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use axum::{Json, Router};
use base64::Engine as _;
use dbaas_api::{DatabaseCluster, DatabaseEngine, OpsRequest};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{Caller, Permission};
use crate::error::ApiError;
use crate::names;
use crate::resources::Served;
use crate::store::{Entry, ObjectKey, Page, WatchStore};

type Shared = Arc<AppState>;

// ----- extractors -------------------------------------------------------

/// The authenticated caller (TokenReview), or 401.
pub struct Authenticated(pub Arc<Caller>);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        state.auth.authenticate(&parts.headers).await.map(Self)
    }
}

/// Path parameters with our error body on failure.
pub struct ApiPath<T>(pub T);

impl<T> FromRequestParts<Shared> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Self(t))
            .map_err(|e: PathRejection| ApiError::InvalidName(e.body_text()))
    }
}

/// Query parameters with our error body on failure (unknown parameters too).
pub struct ApiQuery<T>(pub T);

impl<T> FromRequestParts<Shared> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Self(t))
            .map_err(|e: QueryRejection| ApiError::InvalidQuery(e.body_text()))
    }
}

#[derive(Deserialize)]
pub struct NamespacePath {
    pub(crate) namespace: String,
}

#[derive(Deserialize)]
pub struct ObjectPath {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

/// Query of every list.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many items; unset, 0 or above the server's maximum
    /// page size (`--max-page-size`, default 500): that maximum. Follow
    /// `continue` for the rest.
    pub(crate) limit: Option<usize>,
    /// The token of the previous page.
    #[serde(rename = "continue")]
    pub(crate) continue_token: Option<String>,
    /// Kubernetes label selector syntax.
    #[serde(rename = "labelSelector")]
    pub(crate) label_selector: Option<String>,
    /// Instead of a page, the stream of changes as server-sent events
    /// ([`crate::watch`]); needs `watch` permission.
    pub(crate) watch: Option<bool>,
}

impl ListQuery {
    /// A 400 saying `why` when the query asks to watch a list that
    /// serves no watch.
    pub(crate) fn refuse_watch(&self, why: impl FnOnce() -> String) -> Result<(), ApiError> {
        match self.watch {
            Some(true) => Err(ApiError::InvalidQuery(why())),
            _ => Ok(()),
        }
    }

    /// The page size: `limit` clamped to `max` (unset and 0 mean `max`).
    pub(crate) fn page_size(&self, max: usize) -> usize {
        let max = max.max(1);
        self.limit.filter(|l| *l > 0).map_or(max, |l| l.min(max))
    }
}

/// Writes take no query parameters.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}

// ----- list responses ---------------------------------------------------

/// Where a page ended: opaque to clients.
#[derive(Serialize, Deserialize)]
struct ContinueToken {
    ns: String,
    name: String,
    /// Objects the pages so far served (unfiltered lists only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    served: Option<u64>,
    /// The list was of every namespace: its `served` counts in no other.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all: bool,
}

fn encode_continue(key: &ObjectKey, served: Option<u64>, all: bool) -> String {
    let token = ContinueToken {
        ns: key.0.clone(),
        name: key.1.clone(),
        served,
        all,
    };
    let json = serde_json::to_vec(&token).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

fn decode_continue(
    token: &str,
    namespace: Option<&str>,
) -> Result<(ObjectKey, Option<u64>), ApiError> {
    let invalid = || ApiError::InvalidQuery(format!("continue token {token:?} is not valid"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if namespace.is_some_and(|ns| ns != token.ns) {
        return Err(ApiError::InvalidQuery(
            "continue token belongs to a list of another namespace".into(),
        ));
    }
    // A count from a list of another scope would mislead; the page itself
    // depends only on the key.
    let served = token.served.filter(|_| token.all == namespace.is_none());
    Ok(((token.ns, token.name), served))
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"items":[...],"continue":..,"remainingItemCount":..}` from the cached
/// JSON of each item, without re-serializing them.
pub(crate) fn page_response<K>(page: Page<K>) -> Response {
    let mut body =
        String::with_capacity(page.items.iter().map(|e| e.json.len() + 1).sum::<usize>() + 64);
    body.push_str("{\"items\":[");
    for (i, entry) in page.items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&entry.json);
    }
    body.push_str("],\"continue\":");
    match &page.next {
        Some(key) => body.push_str(
            &Value::String(encode_continue(key, page.served, page.all_namespaces)).to_string(),
        ),
        None => body.push_str("null"),
    }
    if let Some(remaining) = page.remaining {
        body.push_str(&format!(",\"remainingItemCount\":{remaining}"));
    }
    body.push('}');
    json_response(StatusCode::OK, body)
}

/// The query's label selector, once `store` has its first full list.
fn synced_selector<K: Served>(
    store: &WatchStore<K>,
    query: &ListQuery,
) -> Result<kube::core::Selector, ApiError> {
    if !store.is_synced() {
        return Err(ApiError::NotReady(format!(
            "the {} cache is still loading",
            K::kind(&())
        )));
    }
    crate::selector::parse(query.label_selector.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::InvalidQuery(e.to_string()))
}

/// A page of `store`'s objects (those `filter` keeps, all when `None`), of
/// at most `max_page` items.
pub(crate) fn list_page<K: Served>(
    store: &WatchStore<K>,
    namespace: Option<&str>,
    query: &ListQuery,
    max_page: usize,
    filter: Option<&dyn Fn(&K) -> bool>,
) -> Result<Page<K>, ApiError> {
    query.refuse_watch(|| {
        format!(
            "this list takes no watch; watch /v1/namespaces/{{namespace}}/{} instead",
            K::plural(&())
        )
    })?;
    let selector = synced_selector(store, query)?;
    let (after, served_before) = match query.continue_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => {
            let (key, served) = decode_continue(token, namespace)?;
            (Some(key), served)
        }
        None => (None, Some(0)),
    };
    let limit = query.page_size(max_page);
    Ok(store.list(
        namespace,
        &selector,
        filter,
        after.as_ref(),
        served_before,
        Some(limit),
    ))
}

pub(crate) fn permission<K: Served>(
    verb: &'static str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Permission {
    Permission {
        verb,
        group: K::group(&()).into_owned(),
        resource: K::plural(&()).into_owned(),
        subresource: None,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
    }
}

// ----- generic handlers -------------------------------------------------

async fn list_all<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let store = K::store(&state.stores);
    list_or_watch(&state, store, &state.auth, &caller, None, &query).await
}

async fn list_namespaced<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    let store = K::store(&state.stores);
    list_or_watch(
        &state,
        store,
        &state.auth,
        &caller,
        Some(&path.namespace),
        &query,
    )
    .await
}

/// A page of `store`'s objects of `namespace` (all when `None`), or with
/// `watch=true` the stream of their changes; authorized by `auth`, the
/// authorization of the cluster `store` caches.
pub(crate) async fn list_or_watch<K: Served>(
    state: &AppState,
    store: &Arc<WatchStore<K>>,
    auth: &crate::auth::Auth,
    caller: &Arc<Caller>,
    namespace: Option<&str>,
    query: &ListQuery,
) -> Result<Response, ApiError> {
    let watching = query.watch == Some(true);
    let verb = if watching { "watch" } else { "list" };
    auth.authorize(caller, permission::<K>(verb, namespace, None))
        .await?;
    if !watching {
        let page = list_page(store, namespace, query, state.limits.max_page_size, None)?;
        return Ok(page_response(page));
    }
    if query.limit.is_some() || query.continue_token.is_some() {
        return Err(ApiError::InvalidQuery(
            "watch=true takes no limit or continue: it streams every change".into(),
        ));
    }
    let selector = synced_selector(store, query)?;
    crate::watch::respond(
        crate::watch::WatchScope {
            store: store.clone(),
            namespace: namespace.map(str::to_owned),
            selector,
        },
        &state.watch_slots,
        &caller.username,
        state.limits.watch_lifetime,
    )
}

/// The object from the cache; on a miss (e.g. created a moment ago and not
/// yet seen by the watch) from the API server as the caller.
async fn cached_or_live<K: Served>(
    state: &AppState,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
) -> Result<Entry<K>, ApiError> {
    cached_or_live_in(&state.stores, &state.auth, caller, namespace, name).await
}

/// [`cached_or_live`] on any cluster's caches and authorization.
pub(crate) async fn cached_or_live_in<K: Served>(
    stores: &crate::resources::Stores,
    auth: &crate::auth::Auth,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
) -> Result<Entry<K>, ApiError> {
    if let Some(entry) = K::store(stores).get(namespace, name) {
        return Ok(entry);
    }
    let api: Api<K> = Api::namespaced(auth.client_for(caller)?, namespace);
    match api.get_opt(name).await? {
        Some(mut object) => {
            object.meta_mut().managed_fields = None;
            let json =
                serde_json::to_string(&object).map_err(|e| ApiError::Internal(e.to_string()))?;
            Ok(Entry {
                object: Arc::new(object),
                json: json.into(),
            })
        }
        None => Err(ApiError::NotFound(format!(
            "{} {name:?} not found in namespace {namespace}",
            K::resource_name()
        ))),
    }
}

async fn get_one<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    state
        .auth
        .authorize(
            &caller,
            permission::<K>("get", Some(&path.namespace), Some(&path.name)),
        )
        .await?;
    let entry = cached_or_live::<K>(&state, &caller, &path.namespace, &path.name).await?;
    Ok(json_response(StatusCode::OK, entry.json.to_string()))
}

pub(crate) fn check_object_path(path: &ObjectPath) -> Result<(), ApiError> {
    names::check("namespace", &path.namespace)?;
    names::check("name", &path.name)
}

pub(crate) fn check_content_type(headers: &HeaderMap, merge_patch: bool) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let accepted =
        media == "application/json" || (merge_patch && media == "application/merge-patch+json");
    if accepted {
        Ok(())
    } else if merge_patch {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {media:?}: send application/merge-patch+json or application/json"
        )))
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {media:?}: send application/json"
        )))
    }
}

pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::InvalidBody(rejection.body_text())
        }
    })
}

/// The body as JSON, a JSON object.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::InvalidBody(format!("the request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::InvalidBody(format!(
            "the request body must be a JSON object, not {}",
            json_type(&other)
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The object in `bytes`, strictly: apiVersion/kind (optional) must be
/// ours, every field must be known and of the right type.
fn parse_object<K: Served>(bytes: &[u8]) -> Result<K, ApiError> {
    let map = parse_json(bytes)?;
    check_type_meta::<K>(&map)?;
    typed_strictly::<K>(&Value::Object(map))
}

fn check_type_meta<K: Served>(map: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    for (field, expected) in [("apiVersion", K::api_version(&())), ("kind", K::kind(&()))] {
        match map.get(field) {
            None => {}
            Some(Value::String(s)) if *s == expected => {}
            Some(other) => {
                return Err(ApiError::InvalidBody(format!(
                    "{field} must be {expected:?}, not {other}"
                )));
            }
        }
    }
    Ok(())
}

/// Deserializes `value` into `K`, refusing unknown fields (the API server
/// would silently drop them, and the caller would never know).
fn typed_strictly<K: Served>(value: &Value) -> Result<K, ApiError> {
    let text = value.to_string();
    let mut unknown = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(&text);
    let mut note_unknown = |path: serde_ignored::Path<'_>| {
        let path = path.to_string();
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    };
    let ignoring = serde_ignored::Deserializer::new(&mut deserializer, &mut note_unknown);
    let object: K = serde_path_to_error::deserialize(ignoring).map_err(|e| {
        // Position in our compact re-rendering means nothing to the caller;
        // the field's path does.
        let message = e.inner().to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        let field = e.path().to_string();
        let at = if field == "." {
            String::new()
        } else {
            format!(" at {field}")
        };
        ApiError::InvalidBody(format!(
            "the request body is not a valid {}{at}: {message}",
            K::kind(&())
        ))
    })?;
    if !unknown.is_empty() {
        return Err(ApiError::UnknownField(format!(
            "unknown field{} in {}: {}",
            if unknown.len() == 1 { "" } else { "s" },
            K::kind(&()),
            unknown.join(", ")
        )));
    }
    Ok(object)
}

/// The body's name and namespace must agree with the URL.
fn settle_identity<K: Served>(
    object: &mut K,
    namespace: &str,
    path_name: Option<&str>,
) -> Result<String, ApiError> {
    let meta = object.meta_mut();
    if let Some(ns) = &meta.namespace
        && ns != namespace
    {
        return Err(ApiError::InvalidBody(format!(
            "metadata.namespace {ns:?} differs from the namespace in the URL ({namespace})"
        )));
    }
    meta.namespace = Some(namespace.to_owned());
    let name = match (meta.name.clone(), path_name) {
        (Some(body), Some(path)) if body != path => {
            return Err(ApiError::InvalidBody(format!(
                "metadata.name {body:?} differs from the name in the URL ({path})"
            )));
        }
        (Some(name), _) => name,
        (None, Some(path)) => path.to_owned(),
        (None, None) => {
            return Err(ApiError::InvalidBody("metadata.name is required".into()));
        }
    };
    names::check("metadata.name", &name)?;
    meta.name = Some(name.clone());
    // Server-set fields are not the caller's to choose.
    meta.uid = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.generation = None;
    meta.managed_fields = None;
    Ok(name)
}

fn written<K: Served>(status: StatusCode, object: &K) -> Result<Response, ApiError> {
    let json = serde_json::to_string(object).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(status, json))
}

async fn create<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    create_in::<K>(
        &state.stores,
        &state.auth,
        state.body_limit,
        &caller,
        &path.namespace,
        &headers,
        body,
    )
    .await
}

/// Creates an object as the caller on the cluster of `stores` and `auth`.
pub(crate) async fn create_in<K: Served>(
    stores: &crate::resources::Stores,
    auth: &crate::auth::Auth,
    body_limit: usize,
    caller: &Arc<Caller>,
    namespace: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    names::check("namespace", namespace)?;
    auth.authorize(caller, permission::<K>("create", Some(namespace), None))
        .await?;
    check_content_type(headers, false)?;
    let bytes = body_bytes(body, body_limit)?;
    let mut object = parse_object::<K>(&bytes)?;
    settle_identity(&mut object, namespace, None)?;
    object.meta_mut().resource_version = None;
    let client = auth.client_for(caller)?;
    K::prepare_create(stores, &client, namespace, &mut object).await?;
    let api: Api<K> = Api::namespaced(client, namespace);
    let params = PostParams {
        field_manager: Some(caller.field_manager()),
        ..PostParams::default()
    };
    let created = api.create(&params, &object).await?;
    written(StatusCode::CREATED, &created)
}

async fn replace<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    state
        .auth
        .authorize(
            &caller,
            permission::<K>("update", Some(&path.namespace), Some(&path.name)),
        )
        .await?;
    check_content_type(&headers, false)?;
    let bytes = body_bytes(body, state.body_limit)?;
    let mut object = parse_object::<K>(&bytes)?;
    settle_identity(&mut object, &path.namespace, Some(&path.name))?;
    let current = cached_or_live::<K>(&state, &caller, &path.namespace, &path.name).await?;
    K::check_update(&state.stores, &path.namespace, &current.object, &object)?;
    if object.meta().resource_version.is_none() {
        // No resourceVersion: replace what we last saw; a newer write in
        // between is a 409, never silently lost.
        object.meta_mut().resource_version = current.object.meta().resource_version.clone();
    }
    let api: Api<K> = Api::namespaced(state.auth.client_for(&caller)?, &path.namespace);
    let params = PostParams {
        field_manager: Some(caller.field_manager()),
        ..PostParams::default()
    };
    let replaced = api.replace(&path.name, &params, &object).await?;
    written(StatusCode::OK, &replaced)
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(target_fields) = target {
                for (key, value) in fields {
                    if value.is_null() {
                        target_fields.remove(key);
                    } else {
                        merge_patch(
                            target_fields.entry(key.clone()).or_insert(Value::Null),
                            value,
                        );
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

async fn patch<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    let place = Place {
        stores: &state.stores,
        auth: &state.auth,
        body_limit: state.body_limit,
    };
    patch_in::<K>(place, &caller, &path.namespace, &path.name, &headers, body).await
}

/// The caches, authorization and body limit of the cluster a request
/// addresses (the server's own, or a registered one).
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub stores: &'a crate::resources::Stores,
    pub auth: &'a crate::auth::Auth,
    pub body_limit: usize,
}

/// Changes an object with a JSON merge patch as the caller, on the
/// cluster of `place`.
pub(crate) async fn patch_in<K: Served>(
    place: Place<'_>,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    names::check("namespace", namespace)?;
    names::check("name", name)?;
    place
        .auth
        .authorize(
            caller,
            permission::<K>("patch", Some(namespace), Some(name)),
        )
        .await?;
    check_content_type(headers, true)?;
    let bytes = body_bytes(body, place.body_limit)?;
    let patch = Value::Object(parse_json(&bytes)?);
    if let Value::Object(map) = &patch {
        check_type_meta::<K>(map)?;
    }
    // Check the patch by applying it to what we know: a typo or a wrong
    // type is a 400 here rather than silently pruned by the API server.
    let current = cached_or_live_in::<K>(place.stores, place.auth, caller, namespace, name).await?;
    let mut merged = serde_json::from_str::<Value>(&current.json)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    merge_patch(&mut merged, &patch);
    let mut object = typed_strictly::<K>(&merged)?;
    let meta = object.meta();
    if meta.name.as_deref() != Some(name) || meta.namespace.as_deref() != Some(namespace) {
        return Err(ApiError::InvalidBody(
            "a patch cannot change metadata.name or metadata.namespace".into(),
        ));
    }
    settle_identity(&mut object, namespace, Some(name))?;
    K::check_update(place.stores, namespace, &current.object, &object)?;
    let api: Api<K> = Api::namespaced(place.auth.client_for(caller)?, namespace);
    let params = PatchParams {
        field_manager: Some(caller.field_manager()),
        ..PatchParams::default()
    };
    let patched = api.patch(name, &params, &Patch::Merge(&patch)).await?;
    written(StatusCode::OK, &patched)
}

async fn delete<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    delete_in::<K>(&state.auth, &caller, &path.namespace, &path.name).await
}

/// Deletes an object as the caller on the cluster of `auth`.
pub(crate) async fn delete_in<K: Served>(
    auth: &crate::auth::Auth,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
) -> Result<Response, ApiError> {
    names::check("namespace", namespace)?;
    names::check("name", name)?;
    auth.authorize(
        caller,
        permission::<K>("delete", Some(namespace), Some(name)),
    )
    .await?;
    let api: Api<K> = Api::namespaced(auth.client_for(caller)?, namespace);
    let outcome = api.delete(name, &DeleteParams::default()).await?;
    match outcome.left() {
        // Finalizers still to run: the object, with its deletionTimestamp.
        Some(object) if object.meta().deletion_timestamp.is_some() => {
            written(StatusCode::ACCEPTED, &object)
        }
        _ => Ok(json_response(
            StatusCode::OK,
            serde_json::json!({ "deleted": { "namespace": namespace, "name": name } }).to_string(),
        )),
    }
}

// ----- cluster extras ---------------------------------------------------

/// The admin credentials of a database cluster.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The Secret they were read from.
    pub secret_name: String,
    /// The admin user, when the engine's Secret format names one.
    pub username: Option<String>,
    /// The admin password, when the engine's Secret format names one.
    pub password: Option<String>,
    /// The read-write endpoint.
    pub host: Option<String>,
    pub port: Option<i32>,
    /// Every key of the Secret (UTF-8 values; others base64).
    pub data: BTreeMap<String, String>,
}

async fn credentials(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    credentials_in(
        &state.stores,
        &state.auth,
        &caller,
        &path.namespace,
        &path.name,
    )
    .await
}

/// The admin credentials of a database cluster, read as the caller on the
/// cluster of `auth`.
pub(crate) async fn credentials_in(
    stores: &crate::resources::Stores,
    auth: &crate::auth::Auth,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
) -> Result<Response, ApiError> {
    names::check("namespace", namespace)?;
    names::check("name", name)?;
    auth.authorize(
        caller,
        permission::<DatabaseCluster>("get", Some(namespace), Some(name)),
    )
    .await?;
    let cluster =
        cached_or_live_in::<DatabaseCluster>(stores, auth, caller, namespace, name).await?;
    let status = cluster.object.status.as_ref();
    let secret_name = status
        .and_then(|s| s.credentials_secret.clone())
        .or_else(|| cluster.object.spec.credentials_secret_name.clone())
        .ok_or_else(|| ApiError::Upstream {
            code: 404,
            reason: "CredentialsNotReady".into(),
            message: format!(
                "database cluster {:?} does not name its credentials Secret yet",
                name
            ),
        })?;
    // Only a caller who may read that Secret directly gets its contents.
    auth.authorize(
        caller,
        Permission {
            verb: "get",
            group: String::new(),
            resource: "secrets".into(),
            subresource: None,
            namespace: Some(namespace.to_owned()),
            name: Some(secret_name.clone()),
        },
    )
    .await?;
    // Read as the caller: the API server judges too.
    let secrets: Api<Secret> = Api::namespaced(auth.client_for(caller)?, namespace);
    let secret = secrets
        .get_opt(&secret_name)
        .await?
        .ok_or_else(|| ApiError::Upstream {
            code: 404,
            reason: "CredentialsNotReady".into(),
            message: format!("Secret {secret_name:?} does not exist yet"),
        })?;
    let data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = String::from_utf8(value.0.clone())
                .unwrap_or_else(|_| base64::engine::general_purpose::STANDARD.encode(&value.0));
            (key, text)
        })
        .collect();
    let (username, password) = admin_login(cluster.object.spec.engine.type_, &data);
    let body = Credentials {
        secret_name,
        username,
        password,
        host: status.and_then(|s| s.host.clone()),
        port: status.and_then(|s| s.port),
        data,
    };
    let json = serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, json))
}

/// The admin user and password, each where the engine operator's Secret
/// has it.
fn admin_login(
    engine: dbaas_api::EngineType,
    data: &BTreeMap<String, String>,
) -> (Option<String>, Option<String>) {
    let login = engine.connection().admin_login;
    let get = |key: &str| data.get(key).cloned();
    (login.user(get).ok(), get(login.password_key()))
}

async fn cluster_ops_requests(
    state: State<Shared>,
    caller: Authenticated,
    path: ApiPath<ObjectPath>,
    query: ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    of_cluster(state, caller, path, query, |op: &OpsRequest, cluster| {
        op.spec.cluster_ref.name == cluster
    })
    .await
}

/// The restores of one cluster: its OpsRequests of type Restore.
async fn cluster_restores(
    state: State<Shared>,
    caller: Authenticated,
    path: ApiPath<ObjectPath>,
    query: ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    of_cluster(state, caller, path, query, |op: &OpsRequest, cluster| {
        op.spec.type_ == dbaas_api::ops::OpsType::Restore && op.spec.cluster_ref.name == cluster
    })
    .await
}

/// The DatabaseBackups of one cluster (a page of the list, in its order).
async fn cluster_backups(
    state: State<Shared>,
    caller: Authenticated,
    path: ApiPath<ObjectPath>,
    query: ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    of_cluster(
        state,
        caller,
        path,
        query,
        |backup: &dbaas_api::DatabaseBackup, cluster| backup.spec.cluster_name == cluster,
    )
    .await
}

/// The objects of kind `K` that belong to the cluster the path names
/// (`belongs` tells, given one and the cluster's name), as a page of the
/// list; authorized as a `list` of `K` in the namespace.
async fn of_cluster<K: Served>(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(query): ApiQuery<ListQuery>,
    belongs: fn(&K, &str) -> bool,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    state
        .auth
        .authorize(
            &caller,
            permission::<K>("list", Some(&path.namespace), None),
        )
        .await?;
    let cluster = path.name.clone();
    let page = list_page(
        K::store(&state.stores),
        Some(&path.namespace),
        &query,
        state.limits.max_page_size,
        Some(&move |object: &K| belongs(object, &cluster)),
    )?;
    Ok(page_response(page))
}

/// What one engine offers in a namespace.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineVersions {
    /// The engine type (`EngineType`: postgresql, mysql, mongodb, mariadb).
    pub engine_type: String,
    /// The DatabaseEngine object.
    pub name: String,
    /// Installed, Installing or NotInstalled.
    pub operator_status: Option<String>,
    pub operator_version: Option<String>,
    /// Every version the engine offers.
    pub offered: Vec<String>,
    /// The offered versions users may create or upgrade to.
    pub allowed: Vec<String>,
    /// The recommended version.
    pub default: Option<String>,
    /// How the operator is installed: Olm or Manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_source: Option<String>,
    /// An operator version OLM offers that waits for approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_available: Option<String>,
    /// What the engine supports (the same for every namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<crate::capabilities::EngineCapabilities>,
}

/// Engines and versions of a namespace.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, ToSchema)]
pub struct EngineVersionsList {
    pub items: Vec<EngineVersions>,
}

async fn engine_versions(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<NamespacePath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
) -> Result<Response, ApiError> {
    names::check("namespace", &path.namespace)?;
    state
        .auth
        .authorize(
            &caller,
            permission::<DatabaseEngine>("list", Some(&path.namespace), None),
        )
        .await?;
    let page = list_page(
        &state.stores.engines,
        Some(&path.namespace),
        // Every engine of the namespace: a handful, not a page.
        &ListQuery::default(),
        usize::MAX,
        None,
    )?;
    let items = page
        .items
        .iter()
        .map(|entry| engine_summary(&entry.object))
        .collect();
    let json = serde_json::to_string(&EngineVersionsList { items })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, json))
}

fn engine_summary(engine: &DatabaseEngine) -> EngineVersions {
    let status = engine.status.as_ref();
    let versions = status
        .map(|s| s.available_versions.as_slice())
        .unwrap_or_default();
    EngineVersions {
        engine_type: engine.spec.type_.to_string(),
        name: engine.metadata.name.clone().unwrap_or_default(),
        operator_status: status
            .and_then(|s| s.status)
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        operator_version: status.and_then(|s| s.operator_version.clone()),
        offered: versions.iter().map(|v| v.version.clone()).collect(),
        allowed: versions
            .iter()
            .filter(|v| v.allowed)
            .map(|v| v.version.clone())
            .collect(),
        default: status
            .and_then(|s| s.default_version.clone())
            .or_else(|| engine.spec.default_version.clone()),
        install_source: status
            .and_then(|s| s.install_source)
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| v.as_str().map(str::to_owned)),
        upgrade_available: status
            .and_then(|s| s.upgrade_available.as_ref())
            .map(|u| u.version.clone().unwrap_or_else(|| u.csv.clone())),
        capabilities: crate::capabilities::of(engine.spec.type_),
    }
}

// ----- engine operators (OLM) -------------------------------------------

/// Approve an engine operator upgrade OLM offers.
#[derive(Serialize, Deserialize, Debug, Clone, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveUpgrade {
    /// The operator version (`1.28.0`) or ClusterServiceVersion name
    /// (`cloudnative-pg.v1.28.0`) to approve.
    pub version: String,
}

/// The DatabaseEngine from the cache, else from the API server as the
/// caller; None when it does not exist.
async fn engine_opt(
    state: &AppState,
    caller: &Arc<Caller>,
    namespace: &str,
    name: &str,
) -> Result<Option<DatabaseEngine>, ApiError> {
    if let Some(entry) = state.stores.engines.get(namespace, name) {
        return Ok(Some((*entry.object).clone()));
    }
    let api: Api<DatabaseEngine> = Api::namespaced(state.auth.client_for(caller)?, namespace);
    Ok(api.get_opt(name).await?)
}

/// `PUT .../databaseengines/{name}/operator`: install (or change how) the
/// engine operator through OLM: sets the DatabaseEngine's `spec.operator`
/// to the body, creating the DatabaseEngine (named after its engine type)
/// when there is none.
async fn install_engine_operator(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    // Authorized before the lookup: a caller who may neither create nor
    // update it learns nothing about whether it exists.
    let create = permission::<DatabaseEngine>("create", Some(&path.namespace), None);
    let update = permission::<DatabaseEngine>("update", Some(&path.namespace), Some(&path.name));
    if !state.auth.allows(&caller, &create).await? && !state.auth.allows(&caller, &update).await? {
        return Err(ApiError::Forbidden(format!(
            "{}, nor update databaseengines.dbaas.io {:?} there",
            create.denied_message(&caller),
            path.name
        )));
    }
    let existing = engine_opt(&state, &caller, &path.namespace, &path.name).await?;
    let verb = if existing.is_some() {
        "update"
    } else {
        "create"
    };
    let name = existing.as_ref().map(|_| path.name.as_str());
    state
        .auth
        .authorize(
            &caller,
            permission::<DatabaseEngine>(verb, Some(&path.namespace), name),
        )
        .await?;
    check_content_type(&headers, false)?;
    let bytes = body_bytes(body, state.body_limit)?;
    let operator = Value::Object(parse_json(&bytes)?);
    let mut candidate = match &existing {
        Some(engine) => {
            serde_json::to_value(engine).map_err(|e| ApiError::Internal(e.to_string()))?
        }
        None => {
            let engine_type: dbaas_api::EngineType = path.name.parse().map_err(
                |unknown: dbaas_api::connection::UnknownEngine| {
                    ApiError::NotFound(format!(
                        "no DatabaseEngine {:?} in namespace {}, and {:?} is not an engine type ({}) to create one for",
                        path.name, path.namespace, path.name, unknown.known
                    ))
                },
            )?;
            serde_json::json!({
                "apiVersion": <DatabaseEngine as kube::Resource>::api_version(&()),
                "kind": <DatabaseEngine as kube::Resource>::kind(&()),
                "metadata": { "name": path.name, "namespace": path.namespace },
                "spec": { "type": engine_type },
            })
        }
    };
    candidate["spec"]["operator"] = operator;
    // Unknown or mistyped fields of the body are a 400 here, not silently
    // pruned by the API server.
    let mut engine = typed_strictly::<DatabaseEngine>(&candidate).map_err(|e| match e {
        // serde_ignored writes `?` for an Option's content.
        ApiError::UnknownField(message) => ApiError::UnknownField(message.replace(".?.", ".")),
        other => other,
    })?;
    settle_identity(&mut engine, &path.namespace, Some(&path.name))?;
    let api: Api<DatabaseEngine> =
        Api::namespaced(state.auth.client_for(&caller)?, &path.namespace);
    let params = PostParams {
        field_manager: Some(caller.field_manager()),
        ..PostParams::default()
    };
    match existing {
        // The resourceVersion last seen: a write in between is a 409.
        Some(current) => {
            engine.metadata.resource_version = current.metadata.resource_version;
            let replaced = api.replace(&path.name, &params, &engine).await?;
            written(StatusCode::OK, &replaced)
        }
        None => {
            engine.metadata.resource_version = None;
            let created = api.create(&params, &engine).await?;
            written(StatusCode::CREATED, &created)
        }
    }
}

/// `POST .../databaseengines/{name}/approve-upgrade`: the SRE approves an
/// operator version; the operator approves OLM's InstallPlan for it.
async fn approve_engine_operator_upgrade(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ApiPath(path): ApiPath<ObjectPath>,
    ApiQuery(NoQuery {}): ApiQuery<NoQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_object_path(&path)?;
    state
        .auth
        .authorize(
            &caller,
            permission::<DatabaseEngine>("patch", Some(&path.namespace), Some(&path.name)),
        )
        .await?;
    check_content_type(&headers, false)?;
    let bytes = body_bytes(body, state.body_limit)?;
    let request: ApproveUpgrade = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::InvalidBody(format!("the request body is not valid: {e}")))?;
    let engine = engine_opt(&state, &caller, &path.namespace, &path.name)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "DatabaseEngine {:?} not found in namespace {}",
                path.name, path.namespace
            ))
        })?;
    if engine.spec.operator.is_none() {
        return Err(ApiError::Upstream {
            code: 409,
            reason: "NotInstalledThroughOlm".into(),
            message: format!(
                "DatabaseEngine {:?} does not install its operator through OLM (no spec.operator): install it first (PUT .../databaseengines/{}/operator)",
                path.name, path.name
            ),
        });
    }
    let api: Api<DatabaseEngine> =
        Api::namespaced(state.auth.client_for(&caller)?, &path.namespace);
    let params = PatchParams {
        field_manager: Some(caller.field_manager()),
        ..PatchParams::default()
    };
    let patch =
        serde_json::json!({ "spec": { "operator": { "approvedVersion": request.version } } });
    let patched = api
        .patch(&path.name, &params, &Patch::Merge(&patch))
        .await?;
    written(StatusCode::OK, &patched)
}

// ----- health, documents, fallbacks -------------------------------------

async fn healthz() -> Response {
    json_response(StatusCode::OK, "{\"status\":\"ok\"}".into())
}

async fn readyz(State(state): State<Shared>) -> Response {
    let loading: Vec<&str> = state
        .stores
        .sync_state()
        .into_iter()
        .filter(|(_, synced)| !synced)
        .map(|(kind, _)| kind)
        .collect();
    if loading.is_empty() {
        json_response(StatusCode::OK, "{\"status\":\"ok\"}".into())
    } else {
        ApiError::NotReady(format!("caches still loading: {}", loading.join(", "))).into_response()
    }
}

async fn openapi_json() -> Response {
    Json(crate::openapi::document()).into_response()
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such resource: {method} {}", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed(format!("{method} is not supported on {}", uri.path()))
}

// ----- registry ---------------------------------------------------------

/// Which writes a kind accepts through the API.
#[derive(Clone, Copy, Debug)]
pub struct Writes {
    pub create: bool,
    pub replace: bool,
    pub patch: bool,
    pub delete: bool,
}

impl Writes {
    pub const ALL: Self = Self {
        create: true,
        replace: true,
        patch: true,
        delete: true,
    };
    pub const NONE: Self = Self {
        create: false,
        replace: false,
        patch: false,
        delete: false,
    };
    /// Created, cancelled (a merge patch of `spec.cancel`; the CRD keeps
    /// the rest of the spec immutable) and deleted.
    pub const CREATE_PATCH_DELETE: Self = Self {
        create: true,
        replace: false,
        patch: true,
        delete: true,
    };
    pub const CREATE_DELETE: Self = Self {
        create: true,
        replace: false,
        patch: false,
        delete: true,
    };
}

/// One served kind, as the OpenAPI document describes it.
#[derive(Clone, Debug)]
pub struct KindDoc {
    pub kind: String,
    pub plural: String,
    pub writes: Writes,
}

/// Routes and their documentation, built together.
pub struct Registry {
    pub router: Router<Shared>,
    pub kinds: Vec<KindDoc>,
}

impl Registry {
    fn serve<K: Served>(mut self, writes: Writes) -> Self {
        let plural = K::plural(&()).into_owned();
        let mut collection: MethodRouter<Shared> = get(list_namespaced::<K>);
        if writes.create {
            collection = collection.post(create::<K>);
        }
        let mut item: MethodRouter<Shared> = get(get_one::<K>);
        if writes.replace {
            item = item.put(replace::<K>);
        }
        if writes.patch {
            item = item.patch(patch::<K>);
        }
        if writes.delete {
            item = item.delete(delete::<K>);
        }
        self.router = self
            .router
            .route(&format!("/v1/{plural}"), get(list_all::<K>))
            .route(
                &format!("/v1/namespaces/{{namespace}}/{plural}"),
                collection,
            )
            .route(
                &format!("/v1/namespaces/{{namespace}}/{plural}/{{name}}"),
                item,
            );
        self.kinds.push(KindDoc {
            kind: K::kind(&()).into_owned(),
            plural,
            writes,
        });
        self
    }

    /// Every route of the API.
    pub fn build() -> Self {
        let registry = Self {
            router: Router::new(),
            kinds: Vec::new(),
        };
        let registry = registry
            .serve::<DatabaseCluster>(Writes::ALL)
            .serve::<dbaas_api::DatabaseClusterTemplate>(Writes::ALL)
            .serve::<dbaas_api::BackupScheduleTemplate>(Writes::ALL)
            .serve::<dbaas_api::BackupStorage>(Writes::ALL)
            .serve::<dbaas_api::MonitoringConfig>(Writes::ALL)
            .serve::<dbaas_api::DatabaseClaim>(Writes::CREATE_DELETE)
            .serve::<OpsRequest>(Writes::CREATE_PATCH_DELETE)
            // A backup is taken once: created and deleted, never edited.
            .serve::<dbaas_api::DatabaseBackup>(Writes::CREATE_DELETE)
            // Engines are created by the operator; SREs edit their policy
            // with kubectl.
            .serve::<DatabaseEngine>(Writes::NONE);
        let router = registry
            .router
            .route(
                "/v1/namespaces/{namespace}/databaseclusters/{name}/credentials",
                get(credentials),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseclusters/{name}/opsrequests",
                get(cluster_ops_requests),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseclusters/{name}/backups",
                get(cluster_backups),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseclusters/{name}/events",
                get(crate::events::cluster_events),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseclusters/{name}/restores",
                get(cluster_restores),
            )
            .route(
                "/v1/namespaces/{namespace}/access",
                get(crate::access::namespace_access),
            )
            .route(
                "/v1/namespaces/{namespace}/engineversions",
                get(engine_versions),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseengines/{name}/operator",
                axum::routing::put(install_engine_operator),
            )
            .route(
                "/v1/namespaces/{namespace}/databaseengines/{name}/approve-upgrade",
                axum::routing::post(approve_engine_operator_upgrade),
            )
            .merge(crate::multicluster::router())
            .merge(crate::console::router())
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/openapi.json", get(openapi_json))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed);
        Self {
            router,
            kinds: registry.kinds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut target = serde_json::json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(
            &mut target,
            &serde_json::json!({"a": "z", "c": {"f": null}}),
        );
        assert_eq!(target, serde_json::json!({"a": "z", "c": {"d": "e"}}));
        let mut target = serde_json::json!({"a": [1, 2]});
        merge_patch(&mut target, &serde_json::json!({"a": [3], "b": {"x": 1}}));
        assert_eq!(target, serde_json::json!({"a": [3], "b": {"x": 1}}));
    }

    #[test]
    fn page_sizes_are_clamped_to_the_maximum() {
        let query = |limit| ListQuery {
            limit,
            ..ListQuery::default()
        };
        assert_eq!(query(None).page_size(500), 500);
        assert_eq!(query(Some(0)).page_size(500), 500);
        assert_eq!(query(Some(10)).page_size(500), 10);
        assert_eq!(query(Some(100_000)).page_size(500), 500);
        assert_eq!(query(Some(10)).page_size(0), 1);
    }

    #[test]
    fn continue_tokens_round_trip_and_are_scoped() {
        let key = ("team-a".to_owned(), "db-7".to_owned());
        let token = encode_continue(&key, Some(200), false);
        assert_eq!(
            decode_continue(&token, Some("team-a")).unwrap(),
            (key.clone(), Some(200))
        );
        // A namespace's count means nothing to a list of every namespace,
        // and the other way round; the key still holds.
        assert_eq!(decode_continue(&token, None).unwrap(), (key.clone(), None));
        let everywhere = encode_continue(&key, Some(200), true);
        assert_eq!(
            decode_continue(&everywhere, None).unwrap(),
            (key.clone(), Some(200))
        );
        assert_eq!(
            decode_continue(&everywhere, Some("team-a")).unwrap(),
            (key.clone(), None)
        );
        let filtered = encode_continue(&key, None, false);
        assert_eq!(
            decode_continue(&filtered, Some("team-a")).unwrap(),
            (key, None)
        );
        assert!(decode_continue(&token, Some("team-b")).is_err());
        assert!(decode_continue("not-a-token!", None).is_err());
    }

    #[test]
    fn strict_parsing_names_unknown_fields_and_wrong_types() {
        let unknown = parse_object::<DatabaseCluster>(
            br#"{"metadata":{"name":"a","colour":"red"},"spec":{"engine":{"type":"postgresql"},"storage":{"size":"1Gi"},"sise":3}}"#,
        )
        .unwrap_err();
        assert_eq!(unknown.reason(), "UnknownField");
        assert!(unknown.to_string().contains("spec.sise"), "{unknown}");
        assert!(unknown.to_string().contains("metadata.colour"), "{unknown}");

        let wrong_type = parse_object::<DatabaseCluster>(
            br#"{"metadata":{"name":"a"},"spec":{"engine":{"type":"postgresql"},"storage":{"size":"1Gi"},"clusterSize":"three"}}"#,
        )
        .unwrap_err();
        assert_eq!(wrong_type.reason(), "InvalidBody");

        let wrong_kind = parse_object::<DatabaseCluster>(
            br#"{"kind":"Pod","metadata":{"name":"a"},"spec":{"engine":{"type":"postgresql"},"storage":{"size":"1Gi"}}}"#,
        )
        .unwrap_err();
        assert_eq!(wrong_kind.reason(), "InvalidBody");

        let ok = parse_object::<DatabaseCluster>(
            br#"{"apiVersion":"dbaas.io/v1","kind":"DatabaseCluster","metadata":{"name":"a"},"spec":{"engine":{"type":"postgresql"},"storage":{"size":"1Gi"}}}"#,
        )
        .unwrap();
        assert_eq!(ok.metadata.name.as_deref(), Some("a"));
    }
}
