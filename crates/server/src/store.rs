//! Watch caches: one kube-runtime `watcher` per kind, kept in a map ordered by
//! (namespace, name). kube-runtime's own reflector `Store` is a hash map, so
//! every page would need a sort of the whole set; an ordered map serves a page
//! from any continue point in O(log n + page) and gives the consistent
//! ordering for free. The watcher's Init/InitApply/InitDone events are
//! applied the way the reflector applies them: a relist builds a fresh map and
//! swaps it in whole, so readers never see half a list.
//!
//! Each object is also kept serialized, so a list response is a
//! concatenation of ready JSON instead of re-serializing thousands of objects.
//!
//! Every change is also broadcast ([`WatchStore::subscribe`]) to the watch
//! streams of the REST API (`?watch=true`); with nobody subscribed a change
//! costs nothing more.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use dbaas_api::lenient::{Lenient, parse_event, warn_malformed};
use futures::StreamExt;
use kube::core::{Selector, SelectorExt};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher::watcher};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// (namespace, name): the order of every list.
pub type ObjectKey = (String, String);

/// One cached object and its JSON.
pub struct Entry<K> {
    pub object: Arc<K>,
    pub json: Arc<str>,
}

impl<K> Clone for Entry<K> {
    fn clone(&self) -> Self {
        Self {
            object: self.object.clone(),
            json: self.json.clone(),
        }
    }
}

/// One page of a list.
pub struct Page<K> {
    pub items: Vec<Entry<K>>,
    /// The last key returned, when more matching objects follow.
    pub next: Option<ObjectKey>,
    /// How many matching objects follow, when that was cheap to count.
    pub remaining: Option<u64>,
}

/// What happened to a cached object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
    /// The watch relisted: any object may have changed; list again.
    Resync,
}

impl ChangeType {
    /// The name of the server-sent event, as Kubernetes names watch events.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Resync => "RESYNC",
        }
    }
}

/// One change of the cache; `entry` is `None` for [`ChangeType::Resync`].
pub struct Change<K> {
    pub change: ChangeType,
    pub entry: Option<Entry<K>>,
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        Self {
            change: self.change,
            entry: self.entry.clone(),
        }
    }
}

/// Changes a slow watcher may fall behind by before it is told to resync.
const CHANGE_BUFFER: usize = 1024;

/// The cache of one kind, shared by every request.
pub struct WatchStore<K> {
    objects: RwLock<BTreeMap<ObjectKey, Entry<K>>>,
    synced: AtomicBool,
    /// `None` once closed ([`WatchStore::close`]).
    changes: std::sync::Mutex<Option<tokio::sync::broadcast::Sender<Change<K>>>>,
}

impl<K> Default for WatchStore<K> {
    fn default() -> Self {
        Self {
            objects: RwLock::new(BTreeMap::new()),
            synced: AtomicBool::new(false),
            changes: std::sync::Mutex::new(Some(tokio::sync::broadcast::channel(CHANGE_BUFFER).0)),
        }
    }
}

impl<K> WatchStore<K>
where
    K: Resource + Serialize,
{
    /// Whether the first full list has arrived.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<ObjectKey, Entry<K>>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<ObjectKey, Entry<K>>> {
        self.objects.write().unwrap_or_else(|p| p.into_inner())
    }

    fn changes(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<tokio::sync::broadcast::Sender<Change<K>>>> {
        self.changes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every change from now on; `None` once closed. A receiver that falls
    /// more than `CHANGE_BUFFER` changes behind gets `Lagged` and should
    /// resync.
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<Change<K>>> {
        self.changes().as_ref().map(|sender| sender.subscribe())
    }

    /// Ends every subscription: the cache is going away (its cluster was
    /// unregistered).
    pub fn close(&self) {
        self.changes().take();
    }

    fn publish(&self, change: ChangeType, entry: Option<Entry<K>>) {
        if let Some(sender) = self.changes().as_ref() {
            // An error only says nobody listens.
            let _ = sender.send(Change { change, entry });
        }
    }

    /// Whether `entry` is in `namespace` (any when `None`) and its labels
    /// match `selector`: the filter of lists and watches alike.
    pub fn selected(entry: &Entry<K>, namespace: Option<&str>, selector: &Selector) -> bool {
        let meta = entry.object.meta();
        let in_scope = namespace.is_none_or(|ns| meta.namespace.as_deref() == Some(ns));
        in_scope
            && match meta.labels.as_ref() {
                Some(labels) => selector.matches(labels),
                None => selector.matches(&BTreeMap::new()),
            }
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Entry<K>> {
        self.read()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects of `namespace` (every namespace when `None`) matching
    /// `selector` and `filter`, after `after`, at most `limit` of them.
    pub fn list(
        &self,
        namespace: Option<&str>,
        selector: &Selector,
        filter: &dyn Fn(&K) -> bool,
        after: Option<&ObjectKey>,
        limit: Option<usize>,
    ) -> Page<K> {
        let objects = self.read();
        let start = match (after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let in_scope = |key: &ObjectKey| namespace.is_none_or(|ns| key.0 == ns);
        let matches =
            |entry: &Entry<K>| Self::selected(entry, None, selector) && filter(&entry.object);
        // limit=0 means no limit, as in the Kubernetes API.
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut more = false;
        let mut rest = objects
            .range((start, Bound::Unbounded))
            .take_while(|(key, _)| in_scope(key));
        for (_, entry) in rest.by_ref() {
            if !matches(entry) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(entry.clone());
        }
        let (next, remaining) = if more {
            // Counting is cheap without a label selector; the API server
            // omits the count with one, and so do we.
            let remaining = selector_is_empty(selector)
                .then(|| 1 + rest.filter(|(_, e)| matches(e)).count() as u64);
            (items.last().map(|e| key_of(&*e.object)), remaining)
        } else {
            (None, None)
        };
        Page {
            items,
            next,
            remaining,
        }
    }

    /// The cache's form of `object`, or `None` (logged) when it cannot be
    /// serialized.
    fn entry(mut object: K) -> Option<Entry<K>> {
        // Managed fields are bookkeeping for writers, and a large share of
        // each object: not worth their memory in a read cache.
        object.meta_mut().managed_fields = None;
        match serde_json::to_string(&object) {
            Ok(json) => Some(Entry {
                object: Arc::new(object),
                json: json.into(),
            }),
            Err(err) => {
                tracing::warn!(name = %object.meta().name.as_deref().unwrap_or_default(), %err, "cannot serialize a watched object; skipped");
                None
            }
        }
    }

    fn insert(map: &mut BTreeMap<ObjectKey, Entry<K>>, object: K) {
        if let Some(entry) = Self::entry(object) {
            map.insert(key_of(&*entry.object), entry);
        }
    }

    /// A watched create or update, published to the watch streams.
    fn apply(&self, object: K) {
        let Some(entry) = Self::entry(object) else {
            return;
        };
        let previous = self.write().insert(key_of(&*entry.object), entry.clone());
        let change = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.publish(change, Some(entry));
    }

    /// A watched delete, published with the last state the cache had.
    fn remove(&self, object: &K) {
        if let Some(entry) = self.write().remove(&key_of(object)) {
            self.publish(ChangeType::Deleted, Some(entry));
        }
    }
}

pub fn key_of<K: Resource>(object: &K) -> ObjectKey {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

/// Keeps `store` in step with the API server until the task is dropped.
///
/// The watch reads objects one by one: one stored object our types cannot
/// read (written before a validation rule existed) is left out with a
/// warning instead of failing every list of its kind.
pub async fn run_watch<K>(api: Api<Lenient<K>>, store: Arc<WatchStore<K>>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut relist: Option<BTreeMap<ObjectKey, Entry<K>>> = None;
    let events = watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| {
            let parsed =
                event.map(|event| parse_event(event, |malformed| warn_malformed::<K>(&malformed)));
            futures::future::ready(parsed.transpose())
        });
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => relist = Some(BTreeMap::new()),
            Ok(Event::InitApply(object)) => {
                if let Some(map) = relist.as_mut() {
                    WatchStore::insert(map, object);
                }
            }
            Ok(Event::InitDone) => {
                if let Some(map) = relist.take() {
                    *store.write() = map;
                    store.publish(ChangeType::Resync, None);
                }
                store.synced.store(true, Ordering::Release);
            }
            Ok(Event::Apply(object)) => store.apply(object),
            Ok(Event::Delete(object)) => store.remove(&object),
            Err(err) => {
                tracing::warn!(kind = %K::kind(&()), %err, "watch failed; retrying");
            }
        }
    }
}

impl<K: Resource> std::fmt::Debug for WatchStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStore")
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn selector_is_empty(selector: &Selector) -> bool {
    selector.clone().into_iter().next().is_none()
}
