//! A small map whose entries expire, bounded in size: TokenReview and
//! SubjectAccessReview answers are kept for seconds so a burst of requests
//! costs one review, and a flood of distinct tokens cannot grow it forever.
//!
//! Lookups are a hash map lookup; inserts are amortized O(1) too: every
//! entry lives as long as every other (one TTL), so insertion order is
//! expiry order and a queue of insertions names the oldest entry without
//! scanning the map.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    entries: HashMap<K, (Instant, V)>,
    /// (when stored, key), oldest first; an element whose time is not the
    /// entry's (re-inserted since, or removed) is stale and skipped.
    order: VecDeque<(Instant, K)>,
}

impl<K: Eq + Hash + Clone, V> Inner<K, V> {
    /// Whether `order`'s element is the entry's current insertion.
    fn is_current(&self, stored: Instant, key: &K) -> bool {
        self.entries.get(key).is_some_and(|(at, _)| *at == stored)
    }

    /// Drops the oldest entry.
    fn evict_oldest(&mut self) {
        while let Some((stored, key)) = self.order.pop_front() {
            if self.is_current(stored, &key) {
                self.entries.remove(&key);
                return;
            }
        }
    }

    /// Drops expired entries from the front of the queue.
    fn expire(&mut self, ttl: Duration) {
        while let Some((stored, key)) = self.order.front() {
            if stored.elapsed() < ttl {
                return;
            }
            if self.is_current(*stored, key) {
                let key = key.clone();
                self.entries.remove(&key);
            }
            self.order.pop_front();
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// The value stored for `key` if it is younger than the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(key)
            .filter(|(stored, _)| stored.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.expire(self.ttl);
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&key) {
            // Still full of live entries: drop the oldest one.
            inner.evict_oldest();
        }
        let now = Instant::now();
        inner.entries.insert(key.clone(), (now, value));
        inner.order.push_back((now, key));
        // Re-inserted keys leave stale elements behind: keep the queue
        // within twice the map (each compaction pays for the pushes since
        // the last one).
        if inner.order.len() > 2 * self.capacity {
            let Inner { entries, order } = &mut *inner;
            order.retain(|(stored, key)| entries.get(key).is_some_and(|(at, _)| at == stored));
        }
    }

    /// Forgets `key` (its element in the queue goes stale and is skipped).
    pub fn remove(&self, key: &K) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .remove(key);
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = TtlCache::new(Duration::from_millis(50), 2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("c", 3);
        assert_eq!(cache.len(), 2, "oldest entry evicted at capacity");
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"c"), Some(3));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get(&"c"), None, "expired");
    }

    #[test]
    fn removed_entries_are_gone_and_do_not_disturb_eviction() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.remove(&"a");
        assert_eq!(cache.get(&"a"), None);
        cache.insert("c", 3);
        // Room was made by the removal: "b" stays.
        assert_eq!(cache.get(&"b"), Some(2));
        assert_eq!(cache.get(&"c"), Some(3));
        cache.insert("a", 4);
        assert_eq!(cache.get(&"a"), Some(4));
        assert_eq!(cache.get(&"b"), None, "the oldest live entry is evicted");
    }

    #[test]
    fn zero_ttl_caches_nothing() {
        let cache = TtlCache::new(Duration::ZERO, 10);
        cache.insert("a", 1);
        assert!(cache.is_empty());
    }

    #[test]
    fn reinserted_keys_are_evicted_by_their_latest_insertion() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("a", 3);
        // "b" is now the oldest: "a" was stored again after it.
        cache.insert("c", 4);
        assert_eq!(cache.get(&"a"), Some(3));
        assert_eq!(cache.get(&"b"), None);
        assert_eq!(cache.get(&"c"), Some(4));
        // Many re-insertions keep the queue bounded.
        for i in 0..1000 {
            cache.insert("a", i);
        }
        let inner = cache.inner.lock().unwrap_or_else(|p| p.into_inner());
        assert!(inner.order.len() <= 4, "{}", inner.order.len());
        assert_eq!(inner.entries.len(), 2);
    }

    #[test]
    fn a_full_cache_of_distinct_keys_inserts_in_constant_time() {
        // 200k inserts into a full cache of 10k: with a scan per insert this
        // is 2e9 steps (minutes); with the queue it is instant.
        let cache = TtlCache::new(Duration::from_secs(60), 10_000);
        let started = Instant::now();
        for i in 0..200_000u32 {
            cache.insert(i, ());
        }
        assert_eq!(cache.len(), 10_000);
        assert!(cache.get(&199_999).is_some() && cache.get(&0).is_none());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
}
