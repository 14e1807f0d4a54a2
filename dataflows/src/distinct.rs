//! Distinct values per key in bounded shards: the counting behind the scan and
//! reflection rules.
//!
//! A key (a scanning source, a pair, a victim) collects distinct values (ports, hosts,
//! reflectors) until it reaches a threshold; a key whose newest value is older than the
//! table's window starts afresh. Optionally a lower *burst* threshold counts the new
//! values of the key's current burst: the records within a short window of the burst's
//! first one (a fast scan shows its breadth within seconds; a slow one needs the long
//! window). Keys live in shards (chosen by the caller from a
//! stable hash, which also routes the records to workers) of bounded size: a full shard
//! evicts the earliest-come key that holds one value or is past its window, failing
//! that the key with the fewest values. Everything depends only on the sequence of
//! calls a shard sees, never on timing.

use std::collections::VecDeque;
use std::hash::Hash;

use crate::hash::{FastMap, StableHasher};
use crate::packet::Addr;

/// Shards of each table (the unit of routing between workers).
pub const SHARDS: usize = 1024;

/// The shard of an address (stable in every process): the records of a table's keys must
/// be routed to workers by it, so that a shard is judged on one worker.
pub fn shard(addr: &Addr) -> u64 {
    let mut h = StableHasher::default();
    h.write_addr(addr);
    h.finish() % SHARDS as u64
}

/// Checks the settings of a rule counting distinct values in a table of shards: the
/// thresholds (`(name, value)`: 0 for off, or 2..=65536), the window (positive) and the
/// capacity (at least one key per shard of `shards`).
pub(crate) fn check_settings(
    thresholds: &[(&str, usize)],
    (window_name, window_ns): (&str, u64),
    capacity: usize,
    shards: usize,
) -> Result<(), String> {
    for &(name, min) in thresholds {
        if min == 1 || min > 65_536 {
            return Err(format!("{name} must be 0 (off) or 2..=65536"));
        }
    }
    if window_ns == 0 {
        return Err(format!("{window_name} must be positive"));
    }
    if capacity < shards {
        return Err(format!("scan_capacity must be at least {shards}"));
    }
    Ok(())
}

/// One key's distinct values.
#[derive(Debug)]
pub(crate) struct Tally<V> {
    /// Distinct values, ascending (at most the threshold).
    pub(crate) values: Vec<V>,
    /// Earliest start of a value counted.
    pub(crate) first_ns: u64,
    /// Start of the latest value.
    pub(crate) newest_ns: u64,
    /// The latest time on the table's window clock (see [`DistinctTable::add`]).
    clock_ns: u64,
    /// Start of the first record of the current burst.
    pub(crate) burst_first_ns: u64,
    /// New distinct values counted in the current burst.
    pub(crate) burst_values: u32,
    /// Time of the last alert.
    pub(crate) last_alert: Option<u64>,
}

impl<V> Default for Tally<V> {
    fn default() -> Self {
        Tally {
            values: Vec::new(),
            first_ns: 0,
            newest_ns: 0,
            clock_ns: 0,
            burst_first_ns: 0,
            burst_values: 0,
            last_alert: None,
        }
    }
}

/// One shard: the tallies and the order their keys came in (eviction candidates; keys
/// that have gone are skipped lazily).
#[derive(Debug)]
struct Shard<K, V> {
    tallies: FastMap<K, Tally<V>>,
    arrivals: VecDeque<K>,
}

impl<K, V> Default for Shard<K, V> {
    fn default() -> Self {
        Shard {
            tallies: FastMap::default(),
            arrivals: VecDeque::new(),
        }
    }
}

/// When a key's tally alerts: at `min` distinct values within the table's window, or at
/// `burst_min` new ones in a burst: the records within `burst_window_ns` of the burst's
/// first one (0: no burst tier); at most once per `realert_ns`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Thresholds {
    pub(crate) min: usize,
    pub(crate) burst_min: usize,
    pub(crate) burst_window_ns: u64,
    pub(crate) realert_ns: u64,
}

impl<V> Tally<V> {
    /// True when the tally reached its alert by the burst tier (fewer than `min` values
    /// in all).
    pub(crate) fn by_burst(&self, th: &Thresholds) -> bool {
        th.min == 0 || self.values.len() < th.min
    }
}

/// Distinct values per key, in bounded shards (see the module docs).
#[derive(Debug)]
pub(crate) struct DistinctTable<K, V> {
    shards: FastMap<u64, Shard<K, V>>,
    per_shard: usize,
    window_ns: u64,
    /// How long after its clock time a record may still arrive (see [`Self::new`]).
    delay_ns: u64,
    pub(crate) evictions: u64,
}

impl<K: Copy + Eq + Hash + Ord, V: Copy + Ord> DistinctTable<K, V> {
    /// At most `capacity` keys over all [`SHARDS`]; a key whose records are `window_ns`
    /// apart on the window clock starts afresh. Records reach the table up to `delay_ns`
    /// after their clock time (a flow's start, judged when the flow ends), so a key is
    /// kept that much longer by [`Self::forget`].
    pub(crate) fn new(capacity: usize, window_ns: u64, delay_ns: u64) -> Self {
        DistinctTable {
            shards: FastMap::default(),
            per_shard: (capacity / SHARDS).max(1),
            window_ns,
            delay_ns,
            evictions: 0,
        }
    }

    /// How long a key is kept after its latest clock time.
    pub(crate) fn memory_ns(&self) -> u64 {
        self.window_ns.saturating_add(self.delay_ns)
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.values().map(|s| s.tallies.len()).sum()
    }

    /// Drops the keys whose latest clock time is [`Self::memory_ns`] or more before
    /// `now_ns`, a record time no later than the next record's: that record's clock time
    /// is at least a window after theirs, so it would start them afresh anyway.
    pub(crate) fn forget(&mut self, now_ns: u64) {
        let memory = self.memory_ns();
        for s in self.shards.values_mut() {
            s.tallies
                .retain(|_, t| t.clock_ns.saturating_add(memory) > now_ns);
            let tallies = &s.tallies;
            s.arrivals.retain(|k| tallies.contains_key(k));
        }
        self.shards.retain(|_, s| !s.tallies.is_empty());
    }

    /// Makes room in a full shard: the earliest-come key that is past its window or
    /// holds one value; failing that, the key with the fewest values (the least recent
    /// among equals).
    fn evict(shard: &mut Shard<K, V>, window: u64, clock_ns: u64) {
        let live = |t: &Tally<V>| t.clock_ns.saturating_add(window) > clock_ns;
        while let Some(k) = shard.arrivals.pop_front() {
            match shard.tallies.get(&k) {
                Some(t) if !live(t) || t.values.len() <= 1 => {
                    shard.tallies.remove(&k);
                    return;
                }
                _ => {} // gone, or a live key with two values or more: no candidate
            }
        }
        let victim = shard
            .tallies
            .iter()
            .min_by_key(|(k, t)| (live(t), t.values.len(), t.clock_ns, **k))
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            shard.tallies.remove(&k);
        }
    }

    /// Adds `value` to `key`'s set (its record started at `start_ns` and is judged at
    /// `ts_ns`; `clock_ns`, at most `ts_ns`, is its time on the window clock: the start
    /// for scans, the record time for reflections); returns the tally when it has just
    /// reached a threshold and an alert is due. A key whose latest clock time is a
    /// window or more before `ts_ns` starts afresh; a record whose clock time is a
    /// burst window or more after the burst's first starts a new burst.
    pub(crate) fn add(
        &mut self,
        (shard, key): (u64, K),
        value: V,
        (start_ns, clock_ns, ts_ns): (u64, u64, u64),
        th: &Thresholds,
    ) -> Option<&Tally<V>> {
        let window = self.window_ns;
        let shard = self.shards.entry(shard).or_default();
        if !shard.tallies.contains_key(&key) {
            if shard.tallies.len() >= self.per_shard {
                Self::evict(shard, window, clock_ns);
                self.evictions += 1;
            }
            shard.arrivals.push_back(key);
        }
        let t = shard.tallies.entry(key).or_default();
        // A key quiet for a window (clock time against clock time) starts afresh here, as
        // `forget` would have dropped it: the outcome does not depend on when `forget`
        // runs.
        if t.clock_ns.saturating_add(window) <= clock_ns {
            *t = Tally::default();
        }
        if t.values.is_empty() || start_ns < t.first_ns {
            t.first_ns = start_ns;
        }
        if t.values.is_empty() || clock_ns >= t.burst_first_ns.saturating_add(th.burst_window_ns) {
            t.burst_first_ns = start_ns;
            t.burst_values = 0;
            if th.min == 0 {
                // Bursts only: a key holds the values of its current burst.
                t.values.clear();
            }
        } else if start_ns < t.burst_first_ns {
            t.burst_first_ns = start_ns; // records come in end-time order
        }
        t.newest_ns = t.newest_ns.max(start_ns);
        t.clock_ns = t.clock_ns.max(clock_ns);
        let cap = if th.min > 0 { th.min } else { th.burst_min };
        if t.values.len() >= cap {
            return None; // counted enough (alerted, or waiting to realert), or off
        }
        if let Err(at) = t.values.binary_search(&value) {
            t.values.insert(at, value);
            t.burst_values = t.burst_values.saturating_add(1);
        }
        let burst = th.burst_min > 0 && t.burst_values as usize >= th.burst_min;
        let due = t
            .last_alert
            .is_none_or(|last| ts_ns >= last.saturating_add(th.realert_ns));
        let full = th.min > 0 && t.values.len() >= th.min;
        if !(full || burst) || !due {
            return None;
        }
        t.last_alert = Some(ts_ns);
        Some(t)
    }
}
