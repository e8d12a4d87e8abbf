//! A least-recently-used map bounded by the total weight (bytes) of what
//! it holds, shared by the file system's threads: the blob cache (weight:
//! plaintext length) and the directory cache (weight: an estimate of a
//! parsed listing's size). A value heavier than the whole budget is handed
//! back to its reader and not kept.

use std::hash::Hash;
use std::sync::{Arc, Mutex};

use lru::LruCache;

/// Values behind an `Arc`, at most `budget` weight in all.
pub struct Cache<K: Hash + Eq, V> {
    budget: u64,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K: Hash + Eq, V> {
    map: LruCache<K, (Arc<V>, u64)>,
    weight: u64,
}

impl<K: Hash + Eq + Clone, V> Cache<K, V> {
    /// An empty cache holding at most `budget` weight.
    pub fn new(budget: u64) -> Self {
        Cache {
            budget,
            inner: Mutex::new(Inner {
                map: LruCache::unbounded(),
                weight: 0,
            }),
        }
    }

    /// The value of `key`, if held (it becomes the most recently used).
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.map.get(key).map(|(v, _)| v.clone())
    }

    /// Holds `value` of `weight` for `key`, evicting the least recently
    /// used values until the total fits the budget; returns it shared.
    pub fn put(&self, key: K, value: V, weight: u64) -> Arc<V> {
        let value = Arc::new(value);
        if weight > self.budget {
            return value;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = g.map.put(key, (value.clone(), weight)) {
            g.weight -= old;
        }
        g.weight += weight;
        while g.weight > self.budget {
            match g.map.pop_lru() {
                Some((_, (_, w))) => g.weight -= w,
                None => break,
            }
        }
        value
    }

    /// The total weight held.
    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.inner.lock().unwrap().weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used_to_stay_within_the_budget() {
        let c: Cache<u32, Vec<u8>> = Cache::new(100);
        c.put(1, vec![0; 40], 40);
        c.put(2, vec![0; 40], 40);
        assert!(c.get(&1).is_some()); // 2 is now the least recently used
        c.put(3, vec![0; 40], 40);
        assert!(c.get(&2).is_none());
        assert!(c.get(&1).is_some() && c.get(&3).is_some());
        assert_eq!(c.weight(), 80);
    }

    #[test]
    fn a_value_heavier_than_the_budget_is_not_kept() {
        let c: Cache<u32, Vec<u8>> = Cache::new(10);
        assert_eq!(c.put(1, vec![7; 20], 20).len(), 20);
        assert!(c.get(&1).is_none());
        assert_eq!(c.weight(), 0);
    }
}
