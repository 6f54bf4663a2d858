//! `?watch=true` on a list: the changes of the watch cache as server-sent
//! events, so a console shows phase changes as they happen instead of
//! polling.
//!
//! - The first event is `RESYNC`: the subscription is live, list now and
//!   apply the events that follow. `RESYNC` comes again whenever the cache
//!   relisted or the stream fell more than the change buffer behind.
//! - Then `ADDED`, `MODIFIED` and `DELETED`, each with the object's JSON
//!   (the last state the cache had, for `DELETED`), filtered by namespace
//!   and label selector like the list.
//! - A stream lasts at most [`crate::Limits::watch_lifetime`], then ends;
//!   the client reconnects and is authenticated and authorized again, so a
//!   revoked token or permission stops a watch within that time.
//! - At most [`crate::Limits::max_watches`] streams are open at once (more
//!   get 503 `Overloaded`); they hold no request slot while they stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use kube::Resource;
use kube::core::Selector;
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;

use crate::error::ApiError;
use crate::store::{Change, ChangeType, WatchStore};

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a watch stream reads from and what it shows.
pub struct WatchScope<K> {
    pub store: Arc<WatchStore<K>>,
    pub namespace: Option<String>,
    pub selector: Selector,
}

/// The event a change becomes, or `None` when it is out of scope.
fn event_of<K>(change: &Change<K>, scope: &WatchScope<K>) -> Option<Event>
where
    K: Resource + Serialize,
{
    let event = Event::default().event(change.change.event_name());
    match &change.entry {
        None => Some(event.data("{}")),
        Some(entry) => WatchStore::selected(entry, scope.namespace.as_deref(), &scope.selector)
            .then(|| event.data(entry.json.as_ref())),
    }
}

fn resync() -> Event {
    Event::default()
        .event(ChangeType::Resync.event_name())
        .data("{}")
}

/// The stream of `scope`'s changes, ending after `lifetime`; `permit` is
/// its watch slot, released when the stream ends.
fn changes<K>(
    scope: WatchScope<K>,
    permit: OwnedSemaphorePermit,
    lifetime: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> + Send
where
    K: Resource + Serialize + Send + Sync + 'static,
{
    let receiver = scope.store.subscribe();
    let deadline = tokio::time::Instant::now() + lifetime;
    // The subscription exists before the first event: a list made after
    // RESYNC misses no change.
    let first = futures::stream::once(async { Ok(resync()) });
    let rest = futures::stream::unfold(
        (receiver, scope, permit),
        move |(mut receiver, scope, permit)| async move {
            loop {
                let next = tokio::time::timeout_at(deadline, receiver.recv()).await;
                let event = match next {
                    // The stream's time is up; the client reconnects.
                    Err(_elapsed) => return None,
                    Ok(Err(RecvError::Closed)) => return None,
                    Ok(Err(RecvError::Lagged(_))) => Some(resync()),
                    Ok(Ok(change)) => event_of(&change, &scope),
                };
                if let Some(event) = event {
                    return Some((Ok(event), (receiver, scope, permit)));
                }
            }
        },
    );
    futures::StreamExt::chain(first, rest)
}

/// The `text/event-stream` response of a watch, or 503 when every watch
/// slot is taken.
pub fn respond<K>(
    scope: WatchScope<K>,
    slots: &Arc<tokio::sync::Semaphore>,
    lifetime: Duration,
) -> Result<Response, ApiError>
where
    K: Resource + Serialize + Send + Sync + 'static,
{
    let permit = slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::Overloaded {
            retry_after_seconds: 5,
        })?;
    Ok(Sse::new(changes(scope, permit, lifetime))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::store::Entry;
    use dbaas_api::DatabaseCluster;
    use kube::core::ObjectMeta;

    fn cluster(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Change<DatabaseCluster> {
        let object: DatabaseCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "dbaas.io/v1", "kind": "DatabaseCluster",
            "metadata": ObjectMeta {
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()),
                ..ObjectMeta::default()
            },
            "spec": {"engine": {"type": "postgresql"}, "storage": {"size": "1Gi"}},
        }))
        .unwrap();
        let json = serde_json::to_string(&object).unwrap();
        Change {
            change: ChangeType::Added,
            entry: Some(Entry {
                object: Arc::new(object),
                json: json.into(),
            }),
        }
    }

    fn scope(namespace: Option<&str>, selector: &str) -> WatchScope<DatabaseCluster> {
        WatchScope {
            store: Arc::default(),
            namespace: namespace.map(str::to_owned),
            selector: crate::selector::parse(selector).unwrap(),
        }
    }

    #[test]
    fn events_keep_to_the_namespace_and_selector_of_the_watch() {
        let team = scope(Some("team"), "tier=db");
        assert!(event_of(&cluster("team", "a", &[("tier", "db")]), &team).is_some());
        assert!(event_of(&cluster("team", "b", &[("tier", "web")]), &team).is_none());
        assert!(event_of(&cluster("team", "c", &[]), &team).is_none());
        assert!(event_of(&cluster("other", "d", &[("tier", "db")]), &team).is_none());
        let everywhere = scope(None, "");
        assert!(event_of(&cluster("other", "d", &[]), &everywhere).is_some());
        // A resync concerns every watch.
        let resync = Change::<DatabaseCluster> {
            change: ChangeType::Resync,
            entry: None,
        };
        assert!(event_of(&resync, &team).is_some());
    }
}
