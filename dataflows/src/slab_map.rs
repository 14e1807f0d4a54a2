//! [`SlabMap`]: a hash map for per-key state of millions of keys, without the doubling
//! peak of a growing hash map.
//!
//! Entries live in a `Vec<(K, V)>` (the slab) and are found through a
//! [`hashbrown::HashTable`] of 4-byte entry numbers. When a hash map of large entries
//! grows it allocates a table twice the size and moves every entry across: for a moment
//! both tables are live (three times the entries' size in all). Here the large part, the
//! slab, grows by reallocation, which for large allocations moves pages instead of
//! copying them, and only the small index is rebuilt. Removal swaps the last entry into
//! the hole, so the slab stays dense and iteration order is a function of the operations
//! applied (deterministic).

use std::hash::{Hash, Hasher};

use hashbrown::HashTable;

use crate::hash::TableHasher;

/// A map from `K` to `V` stored as a dense slab plus an index (see the module
/// documentation).
#[derive(Clone, Debug)]
pub struct SlabMap<K, V> {
    slots: Vec<(K, V)>,
    index: HashTable<u32>,
}

impl<K, V> Default for SlabMap<K, V> {
    fn default() -> Self {
        SlabMap {
            slots: Vec::new(),
            index: HashTable::new(),
        }
    }
}

fn hash_of<K: Hash>(key: &K) -> u64 {
    let mut h = TableHasher::default();
    key.hash(&mut h);
    h.finish()
}

impl<K: Hash + Eq, V> SlabMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn position(&self, key: &K) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash_of(key), |&i| slots[i as usize].0 == *key)
            .map(|&i| i as usize)
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).map(|i| &self.slots[i].1)
    }

    /// The value of `key`, mutable.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.position(key).map(|i| &mut self.slots[i].1)
    }

    /// The value of `key`, inserted with `make` if absent.
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        let i = match self.position(&key) {
            Some(i) => i,
            None => {
                let hash = hash_of(&key);
                self.slots.push((key, make()));
                let i = self.slots.len() - 1;
                let slots = &self.slots;
                self.index
                    .insert_unique(hash, i as u32, |&j| hash_of(&slots[j as usize].0));
                i
            }
        };
        &mut self.slots[i].1
    }

    /// Sets the value of `key`.
    pub fn insert(&mut self, key: K, value: V) {
        match self.position(&key) {
            Some(i) => self.slots[i].1 = value,
            None => {
                self.get_or_insert_with(key, || value);
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.position(key)?;
        Some(self.remove_at(i))
    }

    /// Removes entry `i`: the last entry moves into its place.
    fn remove_at(&mut self, i: usize) -> V {
        let gone = hash_of(&self.slots[i].0);
        if let Ok(entry) = self.index.find_entry(gone, |&j| j as usize == i) {
            entry.remove();
        }
        let last = self.slots.len() - 1;
        let (_, value) = self.slots.swap_remove(i);
        if i < last {
            let moved = hash_of(&self.slots[i].0);
            if let Some(j) = self.index.find_mut(moved, |&j| j as usize == last) {
                *j = i as u32;
            }
        }
        value
    }

    /// Keeps the entries for which `keep` is true; gives memory back once the map has
    /// shrunk to a quarter of its capacity.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        let mut i = 0;
        while i < self.slots.len() {
            let (k, v) = &mut self.slots[i];
            if keep(k, v) {
                i += 1;
            } else {
                self.remove_at(i);
            }
        }
        if self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to(self.slots.len() * 2);
            let slots = &self.slots;
            self.index
                .shrink_to(slots.len(), |&j| hash_of(&slots[j as usize].0));
        }
    }

    /// The entries, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_like_a_hash_map_under_churn() {
        let mut map = SlabMap::new();
        let mut model = HashMap::new();
        let mut x = 12345u64;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (x >> 33) % 500;
            match x % 4 {
                0 => {
                    assert_eq!(map.remove(&key), model.remove(&key));
                }
                1 => {
                    map.insert(key, step);
                    model.insert(key, step);
                }
                2 => {
                    *map.get_or_insert_with(key, || 0) += 1;
                    *model.entry(key).or_insert(0) += 1;
                }
                _ => {
                    let bound = step % 97;
                    map.retain(|_, v| *v % 97 != bound);
                    model.retain(|_, v| *v % 97 != bound);
                }
            }
            assert_eq!(map.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(map.get(k), Some(v));
        }
        assert_eq!(map.iter().count(), model.len());
    }
}
