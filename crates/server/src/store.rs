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

use std::collections::{BTreeMap, HashMap};
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
    /// How many objects the pages so far served, this one included, when
    /// the list is unfiltered and the caller said how many came before.
    pub served: Option<u64>,
    /// The list is of every namespace (what `served` counts in).
    pub all_namespaces: bool,
}

/// The cached objects in list order, and how many each namespace holds: an
/// unfiltered page's remainingItemCount is then a subtraction, not a walk
/// over every object that follows (10,000 of them on a first page).
struct Objects<K> {
    map: BTreeMap<ObjectKey, Entry<K>>,
    per_namespace: HashMap<String, u64>,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            per_namespace: HashMap::new(),
        }
    }
}

impl<K> Objects<K> {
    fn insert(&mut self, key: ObjectKey, entry: Entry<K>) -> Option<Entry<K>> {
        let namespace = key.0.clone();
        let previous = self.map.insert(key, entry);
        if previous.is_none() {
            *self.per_namespace.entry(namespace).or_default() += 1;
        }
        previous
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Entry<K>> {
        let removed = self.map.remove(key)?;
        if let Some(count) = self.per_namespace.get_mut(&key.0) {
            *count -= 1;
            if *count == 0 {
                self.per_namespace.remove(&key.0);
            }
        }
        Some(removed)
    }

    /// Objects in `namespace`, or in all when `None`.
    fn count(&self, namespace: Option<&str>) -> u64 {
        match namespace {
            None => self.map.len() as u64,
            Some(ns) => self.per_namespace.get(ns).copied().unwrap_or(0),
        }
    }
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
    objects: RwLock<Objects<K>>,
    synced: AtomicBool,
    /// `None` once closed ([`WatchStore::close`]).
    changes: std::sync::Mutex<Option<tokio::sync::broadcast::Sender<Change<K>>>>,
}

impl<K> Default for WatchStore<K> {
    fn default() -> Self {
        Self {
            objects: RwLock::new(Objects::default()),
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
        self.read().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Objects<K>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects<K>> {
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
            .map
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Objects of `namespace` (every namespace when `None`) matching
    /// `selector` and `filter` (every object when `None`), after `after`, at
    /// most `limit` of them. `served_before` is how many objects the earlier
    /// pages of this list served (0 for the first): with it, an unfiltered
    /// page counts what remains without walking it.
    pub fn list(
        &self,
        namespace: Option<&str>,
        selector: &Selector,
        filter: Option<&dyn Fn(&K) -> bool>,
        after: Option<&ObjectKey>,
        served_before: Option<u64>,
        limit: Option<usize>,
    ) -> Page<K> {
        let objects = self.read();
        let start = match (after, namespace) {
            (Some(key), _) => Bound::Excluded(key.clone()),
            (None, Some(ns)) => Bound::Included((ns.to_owned(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        let in_scope = |key: &ObjectKey| namespace.is_none_or(|ns| key.0 == ns);
        let no_selector = selector_is_empty(selector);
        let matches = |entry: &Entry<K>| {
            (no_selector || Self::selected(entry, None, selector))
                && filter.is_none_or(|filter| filter(&entry.object))
        };
        // limit=0 means no limit, as in the Kubernetes API.
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut more = false;
        let mut rest = objects
            .map
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
        let unfiltered = no_selector && filter.is_none();
        // `served_before` comes from a client's token: trusted only as far
        // as it can be true.
        let served = served_before
            .filter(|before| unfiltered && *before <= objects.count(namespace))
            .map(|before| before.saturating_add(items.len() as u64));
        let (next, remaining) = if more {
            // Counting is cheap without a label selector; the API server
            // omits the count with one, and so do we. Unfiltered, it is the
            // namespace's count less what was served (an estimate when
            // objects came or went between pages, at least the one found).
            let remaining = match served {
                Some(served) => Some(objects.count(namespace).saturating_sub(served).max(1)),
                None => no_selector.then(|| 1 + rest.filter(|(_, e)| matches(e)).count() as u64),
            };
            (items.last().map(|e| key_of(&*e.object)), remaining)
        } else {
            (None, None)
        };
        Page {
            items,
            next,
            remaining,
            served,
            all_namespaces: namespace.is_none(),
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

    fn insert(objects: &mut Objects<K>, object: K) {
        if let Some(entry) = Self::entry(object) {
            objects.insert(key_of(&*entry.object), entry);
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
    let mut relist: Option<Objects<K>> = None;
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
            Ok(Event::Init) => relist = Some(Objects::default()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn store_of(keys: &[(&str, &str)]) -> WatchStore<ConfigMap> {
        let store = WatchStore::default();
        for (namespace, name) in keys {
            let mut object = ConfigMap::default();
            object.metadata.namespace = Some((*namespace).to_owned());
            object.metadata.name = Some((*name).to_owned());
            object.metadata.labels = Some([("tier".to_owned(), (*name).to_owned())].into());
            store.apply(object);
        }
        store
    }

    fn names(page: &Page<ConfigMap>) -> Vec<String> {
        page.items
            .iter()
            .map(|e| e.object.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn unfiltered_pages_count_what_remains_by_subtraction() {
        let store = store_of(&[("a", "1"), ("a", "2"), ("a", "3"), ("b", "1"), ("b", "2")]);
        let all = Selector::default();
        let first = store.list(Some("a"), &all, None, None, Some(0), Some(2));
        assert_eq!(names(&first), ["1", "2"]);
        assert_eq!((first.remaining, first.served), (Some(1), Some(2)));
        let rest = store.list(
            Some("a"),
            &all,
            None,
            first.next.as_ref(),
            first.served,
            Some(2),
        );
        assert_eq!(names(&rest), ["3"]);
        assert_eq!((rest.next, rest.remaining), (None, None));
        // Every namespace: 5 objects, 2 served.
        let everywhere = store.list(None, &all, None, None, Some(0), Some(2));
        assert_eq!(everywhere.remaining, Some(3));
        // A deleted object leaves its namespace's count.
        store.remove(&first.items[0].object);
        let after = store.list(Some("a"), &all, None, None, Some(0), Some(1));
        assert_eq!(after.remaining, Some(1));
        assert_eq!(store.read().count(Some("a")), 2);
        assert_eq!(store.read().count(Some("c")), 0);
        // A count no list of this scope could have served (a crafted
        // token) is not believed: what remains is walked instead.
        let crafted = store.list(Some("a"), &all, None, None, Some(u64::MAX), Some(1));
        assert_eq!((crafted.served, crafted.remaining), (None, Some(1)));
    }

    #[test]
    fn filtered_pages_count_by_walking_and_selected_ones_not_at_all() {
        let store = store_of(&[("a", "1"), ("a", "2"), ("a", "3"), ("a", "4")]);
        let all = Selector::default();
        let odd = |c: &ConfigMap| c.metadata.name.as_deref().is_some_and(|n| n != "2");
        let page = store.list(Some("a"), &all, Some(&odd), None, Some(0), Some(1));
        assert_eq!(names(&page), ["1"]);
        // 3 and 4 remain; the filter is not the subtraction's business.
        assert_eq!((page.remaining, page.served), (Some(2), None));
        let selector = crate::selector::parse("tier in (1,2,3)").unwrap();
        let selected = store.list(Some("a"), &selector, None, None, Some(0), Some(1));
        assert_eq!(names(&selected), ["1"]);
        assert_eq!(selected.remaining, None);
    }
}
