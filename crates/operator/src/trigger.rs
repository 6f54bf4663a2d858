//! Watches that wake controllers. Their errors are logged at debug level and
//! not passed on: kube-runtime backs off a controller's whole combined
//! trigger stream on any error, so one watch whose kind is not served (an
//! engine operator that is not installed, the normal case) would otherwise
//! stall every reconcile.

use futures::{Stream, StreamExt};
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tracing::debug;

use dbaas_api::common::{LABEL_MANAGED_BY, MANAGED_BY_VALUE};

/// Objects of `K` (in `namespace`, or all), kept in a store the mapping
/// functions read, as they change.
pub fn stored<K>(
    client: &Client,
    namespace: Option<&str>,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .default_backoff()
        .touched_objects()
        .filter_map(|event| async move {
            match event {
                Ok(object) => Some(Ok(object)),
                Err(err) => {
                    debug!(kind = %K::kind(&()), "watch: {err}");
                    None
                }
            }
        });
    (store, stream)
}

/// The objects of an engine operator's kind that we made (our label), as
/// they change: their owner reference says which of ours to wake.
pub fn ours(
    client: &Client,
    namespace: Option<&str>,
    resource: &ApiResource,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let kind = resource.kind.clone();
    watcher(
        api,
        watcher::Config::default().labels(&format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}")),
    )
    .default_backoff()
    .touched_objects()
    .filter_map(move |event| {
        futures::future::ready(match event {
            Ok(object) => Some(Ok(object)),
            Err(err) => {
                debug!(kind = %kind, "watch: {err}");
                None
            }
        })
    })
}
