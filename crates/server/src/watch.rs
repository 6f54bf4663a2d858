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
//!   get 503 `Overloaded`), and at most
//!   [`crate::Limits::max_watches_per_caller`] of one caller (more get 429
//!   `TooManyWatches`), so one tenant cannot take every slot. Streams hold
//!   no request slot while they stream.
//! - A stream of a registered cluster that is unregistered ends at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
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

/// The open watch streams, in all and per caller.
pub struct WatchSlots {
    total: Arc<tokio::sync::Semaphore>,
    per_caller: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One stream's slot; released when the stream ends.
pub struct WatchPermit {
    _total: OwnedSemaphorePermit,
    caller: String,
    slots: Arc<WatchSlots>,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

impl WatchSlots {
    pub fn new(total: usize, per_caller: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(tokio::sync::Semaphore::new(total.max(1))),
            per_caller: per_caller.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more stream of `caller` (a user name).
    pub fn take(self: &Arc<Self>, caller: &str) -> Result<WatchPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.get(caller).copied().unwrap_or(0);
        if count >= self.per_caller {
            return Err(ApiError::TooManyWatches {
                limit: self.per_caller,
                retry_after_seconds: 5,
            });
        }
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Overloaded {
                retry_after_seconds: 5,
            })?;
        open.insert(caller.to_owned(), count + 1);
        Ok(WatchPermit {
            _total: total,
            caller: caller.to_owned(),
            slots: self.clone(),
        })
    }

    /// Streams open now, of everyone.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }
}

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
    receiver: tokio::sync::broadcast::Receiver<Change<K>>,
    permit: WatchPermit,
    lifetime: Duration,
) -> impl Stream<Item = Result<Event, Infallible>> + Send
where
    K: Resource + Serialize + Send + Sync + 'static,
{
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

/// The `text/event-stream` response of a watch for `caller`, or 503/429
/// when the server's or the caller's watch slots are taken.
pub fn respond<K>(
    scope: WatchScope<K>,
    slots: &Arc<WatchSlots>,
    caller: &str,
    lifetime: Duration,
) -> Result<Response, ApiError>
where
    K: Resource + Serialize + Send + Sync + 'static,
{
    let permit = slots.take(caller)?;
    let receiver = scope.store.subscribe().ok_or_else(|| {
        ApiError::NotReady("this cluster's caches are closed; it was unregistered".into())
    })?;
    Ok(Sse::new(changes(scope, receiver, permit, lifetime))
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

    #[tokio::test]
    async fn closing_a_store_ends_its_streams() {
        let store: WatchStore<DatabaseCluster> = WatchStore::default();
        let mut receiver = store.subscribe().unwrap();
        store.close();
        assert!(matches!(receiver.recv().await, Err(RecvError::Closed)));
        assert!(
            store.subscribe().is_none(),
            "a closed store takes no new watch"
        );
    }

    #[test]
    fn one_caller_cannot_take_every_slot() {
        let slots = WatchSlots::new(3, 2);
        let a1 = slots.take("alice").unwrap();
        let _a2 = slots.take("alice").unwrap();
        let refused = slots.take("alice").err().unwrap();
        assert_eq!(refused.reason(), "TooManyWatches");
        let _b1 = slots.take("bob").unwrap();
        // Three in all: the server's cap.
        assert_eq!(slots.take("carol").err().unwrap().reason(), "Overloaded");
        assert_eq!(slots.open(), 3);
        drop(a1);
        assert_eq!(slots.open(), 2);
        assert!(slots.take("carol").is_ok());
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
