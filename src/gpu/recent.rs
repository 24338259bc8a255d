//! [`Recent`]: the few most recently used values per key, for what the GPU types keep between
//! runs (launch parameters per shape, measured kernel choices).

use std::collections::VecDeque;
use std::sync::Mutex;

/// At most `capacity` key–value pairs, most recently used first; inserting past the capacity
/// drops the least recently used. Keys are compared one by one: there are only a few.
#[derive(Debug)]
pub(crate) struct Recent<K, V> {
    capacity: usize,
    entries: Mutex<VecDeque<(K, V)>>,
}

impl<K: PartialEq, V: Clone> Recent<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// The value for `key`, if kept (it becomes the most recently used).
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|(k, _)| k == key)?;
        let entry = entries.remove(at)?;
        let value = entry.1.clone();
        entries.push_front(entry);
        Some(value)
    }

    /// Keeps `value` for `key` as the most recently used.
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|(k, _)| *k != key);
        entries.truncate(self.capacity.saturating_sub(1));
        entries.push_front((key, value));
    }

    /// The value for `key`, or the one `make` returns, which is then kept. The lock is not
    /// held while `make` runs (it may take long: a measurement), so two callers may both
    /// make a value for the same key; the later one is kept.
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        key: K,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let value = make()?;
        self.insert(key, value.clone());
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn keeps_the_most_recently_used() {
        let r = Recent::new(2);
        r.insert(1, "a");
        r.insert(2, "b");
        assert_eq!(r.get(&1), Some("a")); // 1 is now the most recent
        r.insert(3, "c"); // drops 2
        assert_eq!(r.get(&2), None);
        assert_eq!((r.get(&1), r.get(&3)), (Some("a"), Some("c")));
        r.insert(3, "d"); // replaces, no duplicate
        assert_eq!(r.get(&3), Some("d"));
        assert_eq!(r.get(&1), Some("a"));
    }

    #[test]
    fn makes_a_missing_value_once_and_keeps_it() {
        let r = Recent::new(2);
        assert_eq!(r.get_or_try_insert_with(1, || Ok::<_, ()>("a")), Ok("a"));
        assert_eq!(r.get_or_try_insert_with(1, || Err("not called")), Ok("a"));
        // A failure keeps nothing.
        assert_eq!(r.get_or_try_insert_with(2, || Err("failed")), Err("failed"));
        assert_eq!(r.get(&2), None);
    }
}
