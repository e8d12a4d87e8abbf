//! A small bounded map of open descriptors, shared by restore's workers:
//! a tree of millions of entries cannot hold one descriptor each, so the
//! least recently used is closed when the map is full, and opened again
//! (and checked) when it is needed.

use std::collections::HashMap;
use std::sync::Mutex;

/// Up to `cap` values (descriptors behind an `Arc`) by entry index.
pub struct FdCache<T> {
    cap: usize,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    tick: u64,
    map: HashMap<u32, (T, u64)>,
}

impl<T: Clone> FdCache<T> {
    /// An empty map holding at most `cap` values.
    pub fn new(cap: usize) -> Self {
        FdCache {
            cap: cap.max(1),
            inner: Mutex::new(Inner {
                tick: 0,
                map: HashMap::new(),
            }),
        }
    }

    /// The value of `key`, if held.
    pub fn get(&self, key: u32) -> Option<T> {
        let mut g = self.inner.lock().unwrap();
        g.tick += 1;
        let tick = g.tick;
        g.map.get_mut(&key).map(|(v, t)| {
            *t = tick;
            v.clone()
        })
    }

    /// Holds `value` for `key`, closing the least recently used if full.
    pub fn put(&self, key: u32, value: T) {
        let mut g = self.inner.lock().unwrap();
        if g.map.len() >= self.cap && !g.map.contains_key(&key) {
            if let Some(old) = g.map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k) {
                g.map.remove(&old);
            }
        }
        g.tick += 1;
        let tick = g.tick;
        g.map.insert(key, (value, tick));
    }

    /// Forgets `key` (its descriptor closes once no one uses it).
    pub fn remove(&self, key: u32) {
        self.inner.lock().unwrap().map.remove(&key);
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.inner.lock().unwrap().map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_goes_first() {
        let c = FdCache::new(2);
        c.put(1, "a");
        c.put(2, "b");
        assert_eq!(c.get(1), Some("a"));
        c.put(3, "c");
        assert_eq!(c.get(2), None);
        assert_eq!((c.get(1), c.get(3)), (Some("a"), Some("c")));
        c.remove(1);
        assert_eq!(c.get(1), None);
        c.clear();
        assert_eq!(c.get(3), None);
    }
}
