//! Event-time tumbling and hopping windows: per-pane aggregates in, finished windows out.

use std::collections::BTreeMap;

use hashbrown::HashTable;

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use crate::compact_stats::CompactStats;
use crate::hash::TableHasher;
use crate::window::{PaneAgg, WindowConfig, WindowKey, WindowRecord, WindowStats};

/// Keys whose windows are emitted per activation (when a slide closes windows for very
/// many keys, and at the end of input).
const DRAIN_STEP: usize = 16_384;

/// Counters of one worker's windows operator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowsStats {
    /// Windows emitted.
    pub windows: u64,
    /// Pane aggregates that arrived after every window holding their pane had been
    /// emitted (dropped; never happens when the upstream keeps the pane contract).
    pub late_panes: u64,
    /// Most keys held at once.
    pub peak_keys: u64,
}

/// No window is due (window ends are positive).
const NOT_DUE: u64 = 0;

/// The panes of one key that later windows still need, in ascending start order: a few
/// (the panes of one window), most often one.
#[derive(Debug, Default)]
enum PaneList {
    /// A free slot.
    #[default]
    Vacant,
    /// One pane (start, statistics).
    One((u64, CompactStats)),
    /// Several.
    Many(Vec<(u64, CompactStats)>),
}

impl PaneList {
    fn as_slice(&self) -> &[(u64, CompactStats)] {
        match self {
            PaneList::Vacant => &[],
            PaneList::One(p) => std::slice::from_ref(p),
            PaneList::Many(v) => v,
        }
    }

    /// Adds a pane's aggregate (merged into the pane if it has one).
    fn insert(&mut self, start: u64, stats: &WindowStats) {
        let new = |start| (start, CompactStats::pack(stats));
        *self = match std::mem::take(self) {
            PaneList::Vacant => PaneList::One(new(start)),
            PaneList::One(mut p) if p.0 == start => {
                p.1.merge(stats);
                PaneList::One(p)
            }
            PaneList::One(p) if p.0 < start => PaneList::Many(vec![p, new(start)]),
            PaneList::One(p) => PaneList::Many(vec![new(start), p]),
            PaneList::Many(mut v) => {
                // Panes mostly arrive in order: search from the back.
                match v.iter().rposition(|(s, _)| *s <= start) {
                    Some(i) if v[i].0 == start => v[i].1.merge(stats),
                    Some(i) => v.insert(i + 1, new(start)),
                    None => v.insert(0, new(start)),
                }
                PaneList::Many(v)
            }
        };
    }

    /// Drops the panes that start before `keep_from`.
    fn drop_before(&mut self, keep_from: u64) {
        match self {
            PaneList::Vacant => {}
            PaneList::One(p) => {
                if p.0 < keep_from {
                    *self = PaneList::Vacant;
                }
            }
            PaneList::Many(v) => {
                let n = v.partition_point(|(s, _)| *s < keep_from);
                v.drain(..n);
                match v.len() {
                    0 => *self = PaneList::Vacant,
                    1 => {
                        if let Some(p) = v.pop() {
                            *self = PaneList::One(p);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// One key's state: the key, its panes, and the end of its next window with data (its
/// entry in the schedule), or [`NOT_DUE`].
#[derive(Debug, Default)]
struct Slot {
    key: WindowKey,
    due: u64,
    panes: PaneList,
}

fn key_hash(key: &WindowKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = TableHasher::default();
    key.hash(&mut h);
    h.finish()
}

/// The windows of one worker's keys, independent of timely (unit-testable).
///
/// Pane aggregates are merged per (key, pane) as they arrive, in any order. Each key with
/// data has exactly one entry in a schedule ordered by window end: the end of its next
/// window with data. When the frontier reaches that end the window is merged from its
/// panes and emitted, panes that no later window covers are dropped, and the key is
/// rescheduled at its next window with data (or forgotten when it has no panes left).
/// Windows without data are never visited, so the cost is proportional to the windows
/// emitted, and the memory to the keys with data times the panes per window (plus any
/// panes that arrived ahead of the frontier).
///
/// Memory: a key is an 88-byte slot in a slab (the key, its schedule entry, and its
/// panes' statistics as [`CompactStats`], in place for a key of a few packets), found
/// through a hash index of 4-byte slot numbers, and a 4-byte entry in the schedule:
/// about 115 bytes with the slab's and the index's growth slack for a key with one pane
/// of a few packets (a scan's target, a spoofed source), where a map of full statistics
/// took 480 (`tests/window_state_memory.rs`).
#[derive(Debug)]
pub struct WindowsState {
    config: WindowConfig,
    /// Slot numbers of the keys, by key hash.
    index: HashTable<u32>,
    slots: Vec<Slot>,
    /// Vacant slots.
    free: Vec<u32>,
    /// Window end → slots whose key's next window with data ends there. An entry is
    /// stale (skipped) when the slot's `due` has moved since; ends are multiples of the
    /// slide, so there are few buckets and scheduling a key is a push.
    due: BTreeMap<u64, Vec<u32>>,
    /// Every window ending at or before this has been emitted.
    closed_until: u64,
    stats: WindowsStats,
    /// Emit a partial window only if it tiles time (see [`WindowsState::tiling_partials`]).
    tiling_partials: bool,
}

/// True when a window with these statistics is worth reporting: it saw packets or flow
/// events.
fn has_data(s: &WindowStats) -> bool {
    s.packets > 0 || s.flows_started > 0 || s.flows_ended > 0
}

impl WindowsState {
    /// An empty state. `config` should be valid ([`WindowConfig::validate`]); a zero
    /// slide is treated as 1 ns.
    pub fn new(config: WindowConfig) -> Self {
        WindowsState {
            config,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            due: BTreeMap::new(),
            closed_until: 0,
            stats: WindowsStats::default(),
            tiling_partials: false,
        }
    }

    /// Of the partial windows (those ending after the input), emit only the ones that tile
    /// time (start a multiple of their length), for consumers that use nothing else: the
    /// detector ignores partial windows and `windows.jsonl` takes the tiling ones, and a
    /// key's hopping windows past the end of input are otherwise most of the windows
    /// emitted at the end.
    pub fn tiling_partials(mut self) -> Self {
        self.tiling_partials = true;
        self
    }

    fn slide(&self) -> u64 {
        self.config.slide_ns.max(1)
    }

    fn size(&self) -> u64 {
        self.slide().saturating_mul(self.config.panes_per_window())
    }

    /// The slot of `key`, taken (vacant) if the key has none.
    fn slot_of(&mut self, key: WindowKey) -> u32 {
        let hash = key_hash(&key);
        let slots = &self.slots;
        if let Some(&i) = self.index.find(hash, |&i| slots[i as usize].key == key) {
            return i;
        }
        let slot = Slot {
            key,
            due: NOT_DUE,
            panes: PaneList::Vacant,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| key_hash(&slots[j as usize].key));
        i
    }

    /// Forgets the key of slot `i`.
    fn vacate(&mut self, i: u32) {
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        let hash = key_hash(&slot.key);
        *slot = Slot::default();
        if let Ok(entry) = self.index.find_entry(hash, |&j| j == i) {
            entry.remove();
        }
        self.free.push(i);
    }

    /// Adds one pane aggregate (several for the same key and pane are merged).
    pub fn insert(&mut self, agg: PaneAgg) {
        if agg.stats == WindowStats::default() {
            return;
        }
        let slide = self.slide();
        let start = self.config.pane_start(agg.pane_start_ns);
        // The windows holding this pane end at start + slide, ..., start + size; the
        // first of them not emitted yet is its key's next window with data.
        let not_closed = self.closed_until - self.closed_until % slide;
        let first = start
            .saturating_add(slide)
            .max(not_closed.saturating_add(slide));
        if first > start.saturating_add(self.size()) || first <= self.closed_until {
            self.stats.late_panes += 1;
            return;
        }
        let i = self.slot_of(agg.key);
        let slot = &mut self.slots[i as usize];
        slot.panes.insert(start, &agg.stats);
        if slot.due == NOT_DUE || first < slot.due {
            slot.due = first;
            self.due.entry(first).or_default().push(i);
        }
        self.stats.peak_keys = self.stats.peak_keys.max(self.index.len() as u64);
    }

    /// Emits, in (end, key) order, every window with data that ends at or before
    /// `frontier`: all their panes have arrived. Such windows are not partial: sources
    /// never stamp records beyond the latest capture time they have read, so a frontier
    /// at or past a window's end means the input reached it.
    pub fn close(&mut self, frontier: u64, out: &mut Vec<WindowRecord>) {
        while !self.close_some(frontier, usize::MAX, out) {}
    }

    /// Like [`WindowsState::close`], a part at a time: emits the next windows ending at or
    /// before `frontier`, stopping once at least `limit` keys have been visited, and
    /// returns true when none is left (a slide of a spoofed-source flood closes a window
    /// for each of millions of keys). The windows of one end go out in parts of at most
    /// `limit` keys, each part in key order (writers sort each time's records anyway).
    pub fn close_some(&mut self, frontier: u64, limit: usize, out: &mut Vec<WindowRecord>) -> bool {
        let done = self.emit_some(frontier, u64::MAX, limit, out);
        if done {
            self.closed_until = self.closed_until.max(frontier);
        }
        done
    }

    /// Emits the next windows ending at or before `until`, stopping once at least
    /// `limit` keys have been visited; windows ending after `partial_after` are partial.
    /// True when no window ending at or before `until` is left.
    fn emit_some(
        &mut self,
        until: u64,
        partial_after: u64,
        limit: usize,
        out: &mut Vec<WindowRecord>,
    ) -> bool {
        let mut visited = 0usize;
        while visited < limit {
            let Some(entry) = self.due.first_entry() else {
                break;
            };
            let end = *entry.key();
            if end > until {
                break;
            }
            let keys = entry.remove();
            visited += self.emit_part(end, keys, limit - visited, end > partial_after, out);
        }
        self.due
            .first_key_value()
            .is_none_or(|(end, _)| *end > until)
    }

    /// Emits, in key order, the windows ending at `end` of up to `room` entries of `keys`
    /// (one bucket of the schedule), skipping stale entries, and puts the rest of the
    /// bucket back; returns how many entries it took.
    fn emit_part(
        &mut self,
        end: u64,
        mut keys: Vec<u32>,
        room: usize,
        partial: bool,
        out: &mut Vec<WindowRecord>,
    ) -> usize {
        let take = keys.len().min(room);
        let part = keys.split_off(keys.len() - take);
        if !keys.is_empty() {
            self.due.insert(end, keys);
        }
        let mut due: Vec<(WindowKey, u32)> = part
            .into_iter()
            .filter_map(|i| {
                let slot = self.slots.get(i as usize)?;
                (slot.due == end).then_some((slot.key, i))
            })
            .collect();
        due.sort_unstable();
        due.dedup();
        for (_, i) in due {
            self.emit(end, i, partial, out);
        }
        take
    }

    /// Emits every remaining window with data, in (end, key) order, and forgets all
    /// state. `end_of_input_ns` is the latest capture time of the whole input: windows
    /// ending after it are `partial`.
    pub fn drain(&mut self, end_of_input_ns: u64, out: &mut Vec<WindowRecord>) {
        while !self.drain_some(end_of_input_ns, usize::MAX, out) {}
    }

    /// Like [`WindowsState::drain`], a part at a time: emits the next windows in end
    /// order, stopping once at least `limit` keys have been visited, and returns true
    /// (with all state forgotten and its memory released) when nothing is left.
    pub fn drain_some(
        &mut self,
        end_of_input_ns: u64,
        limit: usize,
        out: &mut Vec<WindowRecord>,
    ) -> bool {
        let done = self.emit_some(u64::MAX, end_of_input_ns, limit, out);
        if done {
            self.index = HashTable::new();
            self.slots = Vec::new();
            self.free = Vec::new();
            self.closed_until = u64::MAX;
        }
        done
    }

    /// Emits slot `i`'s window ending at `end` (if it has data), evicts the panes no later
    /// window needs and reschedules the key.
    fn emit(&mut self, end: u64, i: u32, partial: bool, out: &mut Vec<WindowRecord>) {
        let (slide, size) = (self.slide(), self.size());
        let tiling_partials = self.tiling_partials;
        let Some(slot) = self.slots.get_mut(i as usize) else {
            return;
        };
        slot.due = NOT_DUE;
        let start = end.saturating_sub(size);
        // A hopping window that would start before time 0 (a capture near the Unix
        // epoch) is not a window: windows start at multiples of the slide from 0 on.
        let wanted = end >= size && !(partial && tiling_partials && !start.is_multiple_of(size));
        if wanted {
            let mut in_window = slot
                .panes
                .as_slice()
                .iter()
                .filter(|(s, _)| (start..end).contains(s));
            let mut stats = in_window
                .next()
                .map(|(_, p)| p.unpack())
                .unwrap_or_default();
            for (_, pane) in in_window {
                stats.merge(&pane.unpack());
            }
            if has_data(&stats) {
                self.stats.windows += 1;
                out.push(WindowRecord {
                    key: slot.key,
                    start_ns: start,
                    end_ns: end,
                    partial,
                    stats,
                });
            }
        }
        // The next window starts at `end + slide − size`: earlier panes are done. (Not
        // `start + slide`: near time 0 a window's start is cut at 0, and the next
        // windows still hold the panes after it.)
        slot.panes
            .drop_before(end.saturating_add(slide).saturating_sub(size));
        let next = slot
            .panes
            .as_slice()
            .first()
            .map(|&(s, _)| s.saturating_add(slide).max(end.saturating_add(slide)));
        match next {
            Some(next) if next > end => {
                slot.due = next;
                self.due.entry(next).or_default().push(i);
            }
            _ => self.vacate(i),
        }
    }

    /// Keys currently held.
    pub fn keys(&self) -> usize {
        self.index.len()
    }

    /// Panes currently held, over all keys.
    pub fn panes(&self) -> usize {
        self.slots.iter().map(|s| s.panes.as_slice().len()).sum()
    }

    /// The counters so far.
    pub fn stats(&self) -> WindowsStats {
        self.stats
    }
}

/// Merges per-pane aggregates into tumbling or hopping windows.
///
/// Pane aggregates are exchanged by [`WindowKey::route`] and merged per (key, pane) with
/// [`WindowStats::merge`] (exact and order-independent, so several workers' aggregates of
/// one pane combine into the same result however they arrive). The upstream contract: an
/// aggregate of the pane `[s, e)` is stamped with a timely time below `e`, so once the
/// input frontier reaches a pane end `E`, every pane before `E` is complete. Then, for
/// every key with data in `[E − size, E)`, one [`WindowRecord`] is emitted (a tumbling
/// window has one pane, a hopping one `size / slide`); windows without packets or flow
/// events are not. When both inputs are complete, the remaining windows with data are
/// emitted and the state dropped (see [`WindowsState`]).
///
/// `end_of_input` carries, from every source, the latest capture time it read; it must
/// reach every worker (e.g. `.broadcast()`). A window is `partial` when it ends after the
/// latest of those times.
///
/// A window ending at `E` is emitted at timely time `E − 1`, whatever the worker or the
/// moment it was closed, so a writer that sorts each timely time's records by
/// [`WindowRecord::order_key`] writes them in that order as a whole.
///
/// # Examples
/// ```
/// use flowtide_dataflows::operators::Windows;
/// use flowtide_dataflows::packet::Addr;
/// use flowtide_dataflows::window::{
///     Granularity, PaneAgg, WindowConfig, WindowKey, WindowRecord, WindowStats,
/// };
/// use timely::dataflow::operators::capture::Event;
/// use timely::dataflow::operators::{Capture, ToStream};
///
/// // Windows of 30 ns sliding by 10 ns (three panes each).
/// let config = WindowConfig { size_ns: 30, slide_ns: 10 };
/// let key = WindowKey {
///     granularity: Granularity::Host,
///     src: Addr::from_v4([10, 0, 0, 1]),
///     ..Default::default()
/// };
/// let pane = move |start, packets| PaneAgg {
///     key,
///     pane_start_ns: start,
///     stats: WindowStats { packets, bytes: 100 * packets, ..Default::default() },
/// };
/// let out = timely::example(move |scope| {
///     // Two workers' aggregates of the pane [100, 110), one of [110, 120); the input
///     // ended at 115.
///     let panes = vec![pane(100, 1), pane(100, 2), pane(110, 4)];
///     let end_of_input = vec![115u64].to_stream(scope).container::<Vec<_>>();
///     panes.to_stream(scope).container::<Vec<_>>().windows(config, end_of_input).capture()
/// });
/// let windows: Vec<WindowRecord> = out.try_iter()
///     .flat_map(|e| match e { Event::Messages(_, v) => v, Event::Progress(_) => Vec::new() })
///     .collect();
/// let got: Vec<_> = windows.iter()
///     .map(|w| (w.start_ns, w.end_ns, w.stats.packets, w.partial))
///     .collect();
/// assert_eq!(got, vec![
///     (80, 110, 3, false),
///     (90, 120, 7, true),
///     (100, 130, 7, true),
///     (110, 140, 4, true),
/// ]);
/// ```
pub trait Windows<'scope> {
    /// Builds the windows operator; returns the finished windows.
    fn windows(
        self,
        config: WindowConfig,
        end_of_input: StreamVec<'scope, u64, u64>,
    ) -> StreamVec<'scope, u64, WindowRecord>;

    /// Like [`Windows::windows`], with a state prepared by the caller (e.g.
    /// [`WindowsState::tiling_partials`]).
    fn windows_with(
        self,
        state: WindowsState,
        end_of_input: StreamVec<'scope, u64, u64>,
    ) -> StreamVec<'scope, u64, WindowRecord>;
}

impl<'scope> Windows<'scope> for StreamVec<'scope, u64, PaneAgg> {
    fn windows(
        self,
        config: WindowConfig,
        end_of_input: StreamVec<'scope, u64, u64>,
    ) -> StreamVec<'scope, u64, WindowRecord> {
        self.windows_with(WindowsState::new(config), end_of_input)
    }

    fn windows_with(
        self,
        state: WindowsState,
        end_of_input: StreamVec<'scope, u64, u64>,
    ) -> StreamVec<'scope, u64, WindowRecord> {
        let pact = Exchange::new(|a: &PaneAgg| a.key.route());
        let scope = self.scope();
        self.binary_frontier(
            end_of_input,
            pact,
            Pipeline,
            "Windows",
            move |cap: Capability<u64>, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut state = state;
                let mut end_of_input_ns = 0u64;
                let mut done: Vec<WindowRecord> = Vec::new();
                move |(panes, panes_frontier), (ends, ends_frontier), output| {
                    panes.for_each(|_time, data| {
                        for agg in data.drain(..) {
                            state.insert(agg);
                        }
                    });
                    ends.for_each(|_time, data| {
                        end_of_input_ns = data.drain(..).fold(end_of_input_ns, u64::max);
                    });
                    let Some(held) = cap.as_mut() else { return };
                    let now = panes_frontier.frontier().iter().min().copied();
                    let finished = now.is_none() && ends_frontier.is_empty();
                    // Windows go out a part per activation, so that they (and what
                    // downstream makes of them) are not all in flight at once.
                    let mut drained = false;
                    let mut closed = true;
                    match now {
                        Some(t) => closed = state.close_some(t, DRAIN_STEP, &mut done),
                        None if finished => {
                            drained = state.drain_some(end_of_input_ns, DRAIN_STEP, &mut done);
                        }
                        None => {}
                    }
                    // One session per window end, at `end - 1` (see the trait's doc).
                    let mut ready = done.drain(..).peekable();
                    while let Some(first) = ready.next() {
                        let end = first.end_ns;
                        let at = end.saturating_sub(1).max(*held.time());
                        let at = held.delayed(&at);
                        let mut session = output.session(&at);
                        session.give(first);
                        while let Some(w) = ready.next_if(|w| w.end_ns == end) {
                            session.give(w);
                        }
                    }
                    drop(ready);
                    match now {
                        // The rest go out at times before `t`: hold the capability.
                        Some(_) if !closed => activator.activate(),
                        Some(t) if t > *held.time() => held.downgrade(&t),
                        None if finished && drained => cap = None,
                        None if finished => activator.activate(),
                        _ => {}
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;
    use crate::window::Granularity;

    #[test]
    fn a_key_slot_is_88_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 88);
    }

    fn host(last: u8) -> WindowKey {
        WindowKey::of_flow(
            Granularity::Host,
            Addr::from_v4([10, 0, 0, last]),
            Addr::from_v4([10, 0, 1, 1]),
            80,
            6,
        )
    }

    fn agg(key: WindowKey, start: u64, packets: u64, bytes: u64) -> PaneAgg {
        PaneAgg {
            key,
            pane_start_ns: start,
            stats: WindowStats {
                packets,
                bytes,
                ..Default::default()
            },
        }
    }

    fn summary(out: &[WindowRecord]) -> Vec<(u8, u64, u64, u64, bool)> {
        out.iter()
            .map(|w| {
                let last = w.key.src.as_v4().map_or(0, |a| a[3]);
                (last, w.start_ns, w.end_ns, w.stats.packets, w.partial)
            })
            .collect()
    }

    #[test]
    fn tumbling_windows_close_with_the_frontier() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 10,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 0, 2, 200));
        s.insert(agg(host(2), 0, 1, 50));
        s.insert(agg(host(1), 20, 5, 500)); // the window [10, 20) has no data
        s.close(9, &mut out);
        assert!(out.is_empty(), "pane [0, 10) may still grow");
        s.close(10, &mut out);
        assert_eq!(
            summary(&out),
            vec![(1, 0, 10, 2, false), (2, 0, 10, 1, false)]
        );
        assert_eq!((s.keys(), s.panes()), (1, 1));
        s.close(25, &mut out);
        assert_eq!(out.len(), 2, "no empty window [10, 20)");
        s.close(30, &mut out);
        assert_eq!(summary(&out[2..]), vec![(1, 20, 30, 5, false)]);
        assert_eq!((s.keys(), s.panes()), (0, 0));
        assert_eq!(out[2].stats.bytes, 500);
        assert_eq!(s.stats().windows, 3);
    }

    #[test]
    fn hopping_windows_share_three_panes() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 100, 1, 10));
        s.insert(agg(host(1), 110, 2, 20));
        s.insert(agg(host(1), 150, 4, 40));
        s.close(200, &mut out);
        assert_eq!(
            summary(&out),
            vec![
                (1, 80, 110, 1, false),
                (1, 90, 120, 3, false),
                (1, 100, 130, 3, false),
                (1, 110, 140, 2, false),
                // [120, 150) has no data
                (1, 130, 160, 4, false),
                (1, 140, 170, 4, false),
                (1, 150, 180, 4, false),
            ]
        );
        assert_eq!(s.keys(), 0);
        // Each pane counted in exactly size / slide windows.
        let total: u64 = out.iter().map(|w| w.stats.bytes).sum();
        assert_eq!(total, 3 * 70);
    }

    /// Seven host keys with four panes each, in 30 ns windows sliding by 10.
    fn seven_keys_four_panes() -> WindowsState {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        });
        for key in 1..=7u8 {
            for p in 0..4u64 {
                s.insert(agg(host(key), 100 + 10 * p, 1, u64::from(key) + p));
            }
        }
        s
    }

    /// Emitting in parts of any size gives the windows of emitting at once, in end order
    /// (within one end, each part is in key order); returns the states after the parts.
    fn same_in_parts(
        whole: impl Fn(&mut WindowsState, &mut Vec<WindowRecord>),
        some: impl Fn(&mut WindowsState, usize, &mut Vec<WindowRecord>) -> bool,
    ) -> Vec<WindowsState> {
        let mut all = Vec::new();
        whole(&mut seven_keys_four_panes(), &mut all);
        assert!(all.len() > 20, "{}", all.len());
        let mut states = Vec::new();
        for limit in [1, 2, 3, 5, 100] {
            let mut s = seven_keys_four_panes();
            let mut parts = Vec::new();
            let mut rounds = 0;
            while !some(&mut s, limit, &mut parts) {
                rounds += 1;
                assert!(rounds < 1000);
            }
            assert!(
                parts.is_sorted_by_key(|w| w.end_ns),
                "limit {limit}: in end order"
            );
            let mut sorted = parts.clone();
            sorted.sort_by_key(|w| w.order_key());
            assert_eq!(sorted, all, "limit {limit}: the same windows");
            states.push(s);
        }
        states
    }

    #[test]
    fn draining_in_parts_emits_the_same_windows_in_end_order() {
        let states = same_in_parts(
            |s, out| s.drain(125, out),
            |s, limit, out| s.drain_some(125, limit, out),
        );
        assert!(states.iter().all(|s| s.keys() == 0));
    }

    #[test]
    fn closing_in_parts_emits_the_same_windows_in_end_order() {
        same_in_parts(
            |s, out| s.close(135, out),
            |s, limit, out| s.close_some(135, limit, out),
        );
    }

    #[test]
    fn tiling_partials_drops_only_partial_windows_that_do_not_tile() {
        let fill = |s: WindowsState| {
            let mut s = s;
            for p in 0..6u64 {
                s.insert(agg(host(1), 100 + 10 * p, 1, 1 + p));
            }
            let mut out = Vec::new();
            s.close(140, &mut out);
            s.drain(145, &mut out);
            out
        };
        let config = WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        };
        let all = fill(WindowsState::new(config));
        let some = fill(WindowsState::new(config).tiling_partials());
        let expected: Vec<_> = all
            .iter()
            .filter(|w| !w.partial || w.start_ns % 30 == 0)
            .cloned()
            .collect();
        assert!(all.iter().any(|w| w.partial && w.start_ns % 30 != 0));
        assert!(some.iter().any(|w| w.partial));
        assert_eq!(summary(&some), summary(&expected));
    }

    #[test]
    fn churning_keys_reuse_slots_and_give_the_windows_of_a_naive_model() {
        use std::collections::BTreeSet;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rand = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for (size, slide) in [(10u64, 10u64), (30, 10)] {
            let config = WindowConfig {
                size_ns: size,
                slide_ns: slide,
            };
            let mut s = WindowsState::new(config);
            let (mut aggs, mut out, mut frontier) = (Vec::new(), Vec::new(), 0u64);
            let mut most_keys = 0;
            for step in 0..3000u64 {
                // Panes still open: from the frontier's own on.
                let pane = (frontier / slide + rand(3)) * slide;
                let a = agg(host(1 + rand(60) as u8), pane, 1 + rand(5), 1 + rand(100));
                aggs.push(a.clone());
                s.insert(a);
                most_keys = most_keys.max(s.keys());
                if step % 5 == 0 {
                    frontier += rand(3) * slide / 2 + rand(3);
                    let limit = 1 + rand(4) as usize;
                    while !s.close_some(frontier, limit, &mut out) {}
                }
            }
            assert!(s.slots.len() < 60, "slots are reused: {}", s.slots.len());
            assert!(most_keys > 10);
            let end_of_input = frontier + 2 * slide + 3;
            s.drain(end_of_input, &mut out);

            let mut panes: BTreeMap<(WindowKey, u64), WindowStats> = BTreeMap::new();
            for a in &aggs {
                panes
                    .entry((a.key, a.pane_start_ns))
                    .or_default()
                    .merge(&a.stats);
            }
            let keys: BTreeSet<WindowKey> = aggs.iter().map(|a| a.key).collect();
            let last = aggs.iter().map(|a| a.pane_start_ns).max().unwrap_or(0);
            let mut want = Vec::new();
            for key in keys {
                for end in (size / slide..)
                    .map(|i| i * slide)
                    .take_while(|e| *e <= last + size)
                {
                    let start = end - size;
                    let mut stats = WindowStats::default();
                    for ((_, _), p) in panes.range((key, start)..(key, end)) {
                        stats.merge(p);
                    }
                    if has_data(&stats) {
                        want.push(WindowRecord {
                            key,
                            start_ns: start,
                            end_ns: end,
                            partial: end > end_of_input,
                            stats,
                        });
                    }
                }
            }
            want.sort_by_key(|w| w.order_key());
            let mut got = out.clone();
            got.sort_by_key(|w| w.order_key());
            assert_eq!(got.len(), want.len(), "size {size}");
            assert_eq!(got, want, "size {size}");
            assert!(out.is_sorted_by_key(|w| w.end_ns), "in end order");
        }
    }

    #[test]
    fn no_window_starts_before_time_zero() {
        // A capture at the Unix epoch: hopping windows that would start before 0 are not
        // emitted, and the pane stays for the windows that hold it from 0 on.
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 0, 1, 10));
        s.insert(agg(host(1), 10, 2, 20));
        s.drain(15, &mut out);
        assert_eq!(
            summary(&out),
            vec![(1, 0, 30, 3, true), (1, 10, 40, 2, true)]
        );
    }

    #[test]
    fn panes_are_evicted_as_windows_pass() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        for p in 0..100u64 {
            s.insert(agg(host(1), p * 10, 1, 1));
            s.close(p * 10, &mut out);
            assert!(s.panes() <= 3, "{} panes held at pane {p}", s.panes());
        }
    }

    #[test]
    fn windows_past_the_end_of_input_are_partial() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 30,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 100, 1, 10));
        s.insert(agg(host(1), 120, 2, 20));
        s.close(110, &mut out);
        assert_eq!(summary(&out), vec![(1, 80, 110, 1, false)]);
        s.drain(125, &mut out);
        assert_eq!(
            summary(&out[1..]),
            vec![
                (1, 90, 120, 1, false),
                (1, 100, 130, 3, true),
                (1, 110, 140, 2, true),
                (1, 120, 150, 2, true),
            ]
        );
        assert_eq!((s.keys(), s.panes()), (0, 0));
        // A window ending exactly at the end of input is complete.
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 10,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 0, 1, 10));
        s.drain(10, &mut out);
        assert_eq!(summary(&out), vec![(1, 0, 10, 1, false)]);
    }

    #[test]
    fn duplicates_from_two_workers_merge_exactly() {
        let config = WindowConfig {
            size_ns: 20,
            slide_ns: 10,
        };
        let peer = |i| Addr::from_v4([192, 0, 2, i]);
        let part = |packets, peers: &[u8], ports: &[u16], started| PaneAgg {
            key: host(1),
            pane_start_ns: 10,
            stats: WindowStats {
                packets,
                bytes: packets * 100,
                size_sumsq: u128::from(packets) * 10_000,
                flags: [packets, 0, 0, 0, packets, 0, 0, 0],
                flows_started: started,
                peers: peers.iter().map(|&i| peer(i)).collect(),
                dst_ports: ports.to_vec(),
                ..Default::default()
            },
        };
        let a = part(3, &[1, 2], &[80], 1);
        let b = part(4, &[2, 3], &[80, 443], 2); // sorted, as the model keeps them
        let run = |first: &PaneAgg, second: &PaneAgg| {
            let mut s = WindowsState::new(config);
            let mut out = Vec::new();
            s.insert(first.clone());
            s.insert(second.clone());
            s.drain(u64::MAX, &mut out);
            out
        };
        let ab = run(&a, &b);
        assert_eq!(ab, run(&b, &a));
        assert_eq!(ab.len(), 2);
        let w = &ab[0];
        assert_eq!((w.start_ns, w.end_ns), (0, 20));
        assert_eq!((w.stats.packets, w.stats.bytes), (7, 700));
        assert_eq!(w.stats.flows_started, 3);
        assert_eq!(w.stats.flags[0], 7);
        assert_eq!(w.stats.peers, vec![peer(1), peer(2), peer(3)]);
        assert_eq!(w.stats.dst_ports, vec![80, 443]);
        assert_eq!(ab[1].stats, w.stats);
        assert_eq!((ab[1].start_ns, ab[1].end_ns), (10, 30));
    }

    #[test]
    fn flow_events_without_packets_make_a_window_empty_aggregates_do_not() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 10,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(PaneAgg {
            key: host(1),
            pane_start_ns: 0,
            ..Default::default()
        });
        s.insert(PaneAgg {
            key: host(2),
            pane_start_ns: 0,
            stats: WindowStats {
                flows_ended: 1,
                ended_duration_sum_ns: 5,
                ..Default::default()
            },
        });
        s.drain(100, &mut out);
        assert_eq!(summary(&out), vec![(2, 0, 10, 0, false)]);
    }

    #[test]
    fn late_panes_are_counted_not_merged() {
        let mut s = WindowsState::new(WindowConfig {
            size_ns: 10,
            slide_ns: 10,
        });
        let mut out = Vec::new();
        s.insert(agg(host(1), 0, 1, 1));
        s.close(10, &mut out);
        s.insert(agg(host(1), 0, 1, 1));
        assert_eq!(s.stats().late_panes, 1);
        assert_eq!(s.keys(), 0);
        s.drain(100, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn results_do_not_depend_on_how_often_the_frontier_moves() {
        let config = WindowConfig {
            size_ns: 60,
            slide_ns: 20,
        };
        let aggs: Vec<PaneAgg> = (0..200u64)
            .map(|i| agg(host((i % 7) as u8), (i * 37 % 1000) / 20 * 20, i % 5 + 1, i))
            .collect();
        let mut sorted = aggs.clone();
        sorted.sort_by_key(|a| a.pane_start_ns);
        // All at once.
        let mut once = WindowsState::new(config);
        let mut a = Vec::new();
        for x in &aggs {
            once.insert(x.clone());
        }
        once.drain(990, &mut a);
        // Pane by pane, closing at every step.
        let mut stepped = WindowsState::new(config);
        let mut b = Vec::new();
        for x in &sorted {
            stepped.close(x.pane_start_ns, &mut b);
            stepped.insert(x.clone());
        }
        stepped.drain(990, &mut b);
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].order_key() < w[1].order_key()));
    }
}
