//! All datagrams being reassembled by one worker: limits, timeouts and eviction.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::datagram::{
    merge, DatagramBuffer, DATAGRAM_OVERHEAD, FRAGMENT_OVERHEAD, MAX_FRAGMENTS_LIMIT,
};
use super::event::{Counters, EventKind, EvictReason, FragKey, Range, ReassemblyEvent};
use super::parse::{build_packet, parse_fragment, ParsedFragment};
use super::policy::{Policy, PolicyMap};
use crate::hash::FastMap;
use crate::packet::{proto, Packet};
use crate::time::NS_PER_SEC;

/// Minimum first-fragment sizes: a first fragment shorter than its transport header
/// raises [`EventKind::TinyFirstFragment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TinyFirst {
    /// TCP (default 20).
    pub tcp: u32,
    /// UDP and UDP-Lite (default 8).
    pub udp: u32,
    /// ICMP and ICMPv6 (default 8).
    pub icmp: u32,
    /// Any other protocol (default 0).
    pub other: u32,
}

impl Default for TinyFirst {
    fn default() -> Self {
        TinyFirst {
            tcp: 20,
            udp: 8,
            icmp: 8,
            other: 0,
        }
    }
}

impl TinyFirst {
    /// The transport header size required of a first fragment of `protocol`.
    pub fn required(&self, protocol: u8) -> u32 {
        match protocol {
            proto::TCP => self.tcp,
            proto::UDP | proto::UDPLITE => self.udp,
            proto::ICMP | proto::ICMPV6 => self.icmp,
            _ => self.other,
        }
    }
}

/// Reassembly settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassemblyConfig {
    /// IPv4 datagram lifetime from its first fragment (event time, ns; default 60 s).
    pub timeout_v4_ns: u64,
    /// IPv6 datagram lifetime from its first fragment (default 60 s).
    pub timeout_v6_ns: u64,
    /// Memory budget in bytes (default 64 MiB): the capacity of each datagram's byte
    /// buffer (its stored fragments' data and header), plus [`FRAGMENT_OVERHEAD`] per
    /// stored fragment and [`DATAGRAM_OVERHEAD`] per datagram.
    pub memory_budget: usize,
    /// Most fragments stored per datagram (default 256; at most
    /// [`MAX_FRAGMENTS_LIMIT`]).
    pub max_fragments: usize,
    /// Most datagrams in flight (default 65,536).
    pub max_datagrams: usize,
    /// The policy of each destination.
    pub policies: PolicyMap,
    /// Policies compared for ambiguity events on completed datagrams (empty: none).
    /// Default: all of [`Policy::ALL`].
    pub ambiguity: Vec<Policy>,
    /// First-fragment sizes.
    pub tiny_first: TinyFirst,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout_v4_ns: 60 * NS_PER_SEC,
            timeout_v6_ns: 60 * NS_PER_SEC,
            memory_budget: 64 << 20,
            max_fragments: 256,
            max_datagrams: 65_536,
            policies: PolicyMap::default(),
            ambiguity: Policy::ALL.to_vec(),
            tiny_first: TinyFirst::default(),
        }
    }
}

/// A reassembled datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassembled {
    /// Capture time of the fragment that completed it.
    pub ts_ns: u64,
    /// Capture time of its first fragment.
    pub first_ns: u64,
    /// The datagram's key.
    pub key: FragKey,
    /// The policy it was reassembled with.
    pub policy: Policy,
    /// Fragments stored and used (exact duplicates are not stored; an atomic fragment
    /// counts 1).
    pub fragments: u32,
    /// The reconstructed IP packet (see [`super::parse::build_packet`]).
    pub bytes: Vec<u8>,
    /// Summed frame lengths of the fragments pushed for the datagram while it was in
    /// flight (duplicates and fragments it rejected included).
    pub frame_bytes: u64,
}

/// One worker's reassembly state, independent of timely (unit-testable).
///
/// Fragments must be pushed in event-time order. The deadline of a datagram is its first
/// fragment's capture time plus the timeout of its IP version (as Linux and Suricata do):
/// a stream of late fragments cannot keep a datagram alive. A push first expires every
/// datagram whose deadline is at or before the fragment's time, so a fragment never joins
/// a datagram that had already timed out.
#[derive(Debug)]
pub struct ReassemblyTable {
    config: ReassemblyConfig,
    datagrams: FastMap<FragKey, DatagramBuffer>,
    /// The datagrams of each IP version (IPv4, then IPv6) in (first-fragment time, key)
    /// order. A version has one timeout, so this is also their deadline order: the
    /// oldest datagram is the first of the two fronts by (first time, key), the next to
    /// time out the first by (deadline, key).
    by_age: [AgeQueue; 2],
    memory: usize,
    counters: Counters,
}

/// Keys in (first-fragment time, key) order, with lazy deletion: an entry `(t, k)` is live
/// while datagram `k` exists and started at `t`; others are skipped when they reach the
/// front, and dropped in bulk once they outnumber the live ones.
///
/// Fragments arrive in event-time order, so a new datagram's time is at least that of
/// every entry: it is appended, or joins the last bucket when the time ties (ties are
/// ordered by key, in a set). Each operation is O(1), O(log n) on ties; an out-of-order
/// time (outside the table's contract) is still placed correctly, in O(n).
#[derive(Debug, Default)]
struct AgeQueue {
    buckets: VecDeque<(u64, Bucket)>,
    /// Entries, live or not.
    entries: usize,
    /// Live datagrams of this version.
    live: usize,
}

#[derive(Debug)]
enum Bucket {
    One(FragKey),
    Many(BTreeSet<FragKey>),
}

impl Bucket {
    fn first(&self) -> Option<&FragKey> {
        match self {
            Bucket::One(k) => Some(k),
            Bucket::Many(set) => set.first(),
        }
    }

    /// Adds `key`; false when it was there already.
    fn insert(&mut self, key: FragKey) -> bool {
        match self {
            Bucket::One(k) if *k == key => false,
            Bucket::One(k) => {
                *self = Bucket::Many(BTreeSet::from([*k, key]));
                true
            }
            Bucket::Many(set) => set.insert(key),
        }
    }
}

impl AgeQueue {
    fn push(&mut self, t: u64, key: FragKey) {
        let added = match self.buckets.back_mut() {
            Some((bt, b)) if *bt == t => b.insert(key),
            Some((bt, _)) if *bt > t => {
                let i = self.buckets.partition_point(|(bt, _)| *bt < t);
                match self.buckets.get_mut(i) {
                    Some((bt, b)) if *bt == t => b.insert(key),
                    _ => {
                        self.buckets.insert(i, (t, Bucket::One(key)));
                        true
                    }
                }
            }
            _ => {
                self.buckets.push_back((t, Bucket::One(key)));
                true
            }
        };
        self.entries += usize::from(added);
    }

    /// The first entry, live or not.
    fn front(&self) -> Option<(u64, FragKey)> {
        let (t, b) = self.buckets.front()?;
        b.first().map(|k| (*t, *k))
    }

    /// Removes the first entry.
    fn pop(&mut self) {
        let Some((_, b)) = self.buckets.front_mut() else {
            return;
        };
        let empty = match b {
            Bucket::One(_) => true,
            Bucket::Many(set) => {
                set.pop_first();
                set.is_empty()
            }
        };
        if empty {
            self.buckets.pop_front();
        }
        self.entries -= 1;
    }

    /// Drops every entry for which `live` is false.
    fn retain(&mut self, live: impl Fn(u64, &FragKey) -> bool) {
        let mut entries = 0;
        self.buckets.retain_mut(|(t, b)| match b {
            Bucket::One(k) => {
                let keep = live(*t, k);
                entries += usize::from(keep);
                keep
            }
            Bucket::Many(set) => {
                set.retain(|k| live(*t, k));
                entries += set.len();
                !set.is_empty()
            }
        });
        self.entries = entries;
    }
}

/// The queue of a key's IP version.
#[inline]
fn queue_of(key: &FragKey) -> usize {
    usize::from(key.ip_version != 4)
}

fn event(
    events: &mut Vec<ReassemblyEvent>,
    counters: &mut Counters,
    ts_ns: u64,
    key: FragKey,
    kind: EventKind,
) {
    counters.count(&kind);
    events.push(ReassemblyEvent { ts_ns, key, kind });
}

impl ReassemblyTable {
    /// An empty table.
    pub fn new(config: ReassemblyConfig) -> Self {
        let max_fragments = config.max_fragments.clamp(1, MAX_FRAGMENTS_LIMIT);
        ReassemblyTable {
            config: ReassemblyConfig {
                max_fragments,
                ..config
            },
            datagrams: FastMap::default(),
            by_age: Default::default(),
            memory: 0,
            counters: Counters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// Bytes charged to datagrams in flight (never above the budget).
    pub fn memory_used(&self) -> usize {
        self.memory
    }

    /// Datagrams in flight.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    /// True when no datagram is in flight.
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    fn emit(&mut self, events: &mut Vec<ReassemblyEvent>, ts: u64, key: FragKey, k: EventKind) {
        event(events, &mut self.counters, ts, key, k);
    }

    fn remove(&mut self, key: &FragKey) -> Option<DatagramBuffer> {
        let d = self.datagrams.remove(key)?;
        self.by_age[queue_of(key)].live -= 1;
        self.memory -= d.memory;
        Some(d)
    }

    /// Removes and returns the first live datagram by `order` (applied to the entries
    /// at the front of the two queues: (time, key) for age, (deadline, key) for
    /// timeouts), provided `accept` takes its order value. Stale entries met on the way
    /// are dropped. A queue's stale entries come before its live ones in both orders, so
    /// the lesser of the two fronts is either live or stale, never later than a live one.
    fn pop_first<O: Ord + Copy>(
        &mut self,
        order: impl Fn(usize, u64, &FragKey) -> O,
        accept: impl Fn(O) -> bool,
    ) -> Option<(FragKey, DatagramBuffer)> {
        loop {
            let q = match (self.by_age[0].front(), self.by_age[1].front()) {
                (Some((ta, ka)), Some((tb, kb))) => {
                    usize::from(order(1, tb, &kb) < order(0, ta, &ka))
                }
                (Some(_), None) => 0,
                (None, Some(_)) => 1,
                (None, None) => return None,
            };
            let (t, key) = self.by_age[q].front()?;
            if !accept(order(q, t, &key)) {
                return None;
            }
            self.by_age[q].pop();
            if let std::collections::hash_map::Entry::Occupied(o) = self.datagrams.entry(key) {
                if o.get().first_ns == t {
                    let d = o.remove();
                    self.by_age[q].live -= 1;
                    self.memory -= d.memory;
                    return Some((key, d));
                }
            }
        }
    }

    /// Removes the oldest datagram in flight, by (first-fragment time, key).
    fn pop_oldest(&mut self) -> Option<(FragKey, DatagramBuffer)> {
        self.pop_first(|_, t, key| (t, *key), |_| true)
    }

    /// Drops the stale entries of queue `q` once they outnumber the live ones.
    fn compact(&mut self, q: usize) {
        let queue = &mut self.by_age[q];
        if queue.entries > 2 * queue.live + 64 {
            let datagrams = &self.datagrams;
            queue.retain(|t, k| datagrams.get(k).is_some_and(|d| d.first_ns == t));
        }
    }

    fn evict_oldest(
        &mut self,
        ts: u64,
        reason: EvictReason,
        events: &mut Vec<ReassemblyEvent>,
    ) -> Option<FragKey> {
        let (key, d) = self.pop_oldest()?;
        self.emit(
            events,
            ts,
            key,
            EventKind::Eviction {
                reason,
                first_ns: d.first_ns,
                fragments: d.fragment_count() as u32,
            },
        );
        Some(key)
    }

    /// Times out every datagram whose deadline is at or before `frontier_ns`.
    pub fn expire(&mut self, frontier_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        let timeouts = [self.config.timeout_v4_ns, self.config.timeout_v6_ns];
        while let Some((key, d)) = self.pop_first(
            |q, t, key| (t.saturating_add(timeouts[q]), *key),
            |(deadline, _)| deadline <= frontier_ns,
        ) {
            self.emit(
                events,
                d.deadline_ns,
                key,
                EventKind::Timeout {
                    first_ns: d.first_ns,
                    fragments: d.fragment_count() as u32,
                },
            );
        }
    }

    /// Ends the input: every datagram still in flight times out if its deadline is at or
    /// before `end_of_input_ns` (the latest capture time of the whole input), else it is
    /// reported incomplete at the end of input — so the outcome depends only on the input,
    /// never on how far the frontier got before the input closed. Emitted in
    /// (first-fragment time, key) order.
    pub fn drain(&mut self, end_of_input_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        while let Some((key, d)) = self.pop_oldest() {
            let fragments = d.fragment_count() as u32;
            let first_ns = d.first_ns;
            let (ts, kind) = if d.deadline_ns <= end_of_input_ns {
                (
                    d.deadline_ns,
                    EventKind::Timeout {
                        first_ns,
                        fragments,
                    },
                )
            } else {
                (
                    end_of_input_ns,
                    EventKind::IncompleteAtEnd {
                        first_ns,
                        fragments,
                    },
                )
            };
            self.emit(events, ts, key, kind);
        }
    }

    /// Records an IPv6 atomic fragment that was decoded without its datagram bytes (the
    /// caller passes the decoded packet on as it is): counted and reported like an
    /// atomic fragment given to [`Self::push`] with its bytes.
    pub fn atomic(&mut self, p: &Packet, events: &mut Vec<ReassemblyEvent>) {
        self.counters.fragments += 1;
        self.expire(p.ts_ns, events);
        self.counters.reassembled += 1;
        let key = FragKey::of_decoded(p);
        self.emit(events, p.ts_ns, key, EventKind::AtomicFragment);
    }

    /// Feeds one fragment (a packet for which [`Packet::is_fragment`] holds), in
    /// event-time order. Completed datagrams go to `out`, events to `events`.
    pub fn push(
        &mut self,
        p: &Packet,
        out: &mut Vec<Reassembled>,
        events: &mut Vec<ReassemblyEvent>,
    ) {
        let ts = p.ts_ns;
        self.counters.fragments += 1;
        self.expire(ts, events);
        let fallback = FragKey::of_decoded(p);
        let parsed = match p.bytes.as_deref().map(parse_fragment) {
            Some(Ok(f)) => f,
            Some(Err(reason)) => {
                if reason.contains("total length below") {
                    self.emit(
                        events,
                        ts,
                        fallback,
                        EventKind::Teardrop {
                            range: (p.frag_offset as u32, p.frag_offset as u32),
                            earlier: (0, 0),
                        },
                    );
                }
                self.counters.dropped_fragments += 1;
                let kind = EventKind::Malformed {
                    reason: reason.to_string(),
                };
                return self.emit(events, ts, fallback, kind);
            }
            None => {
                self.counters.dropped_fragments += 1;
                let kind = EventKind::Malformed {
                    reason: "no datagram bytes".to_string(),
                };
                return self.emit(events, ts, fallback, kind);
            }
        };
        let key = FragKey {
            ctx: p.ctx,
            ip_version: parsed.version,
            src: parsed.src,
            dst: parsed.dst,
            protocol: FragKey::keyed_protocol(parsed.version, parsed.protocol),
            id: parsed.id,
        };
        self.push_parsed(ts, p.frame_len, key, &parsed, out, events);
    }

    fn push_parsed(
        &mut self,
        ts: u64,
        frame_len: u32,
        key: FragKey,
        f: &ParsedFragment<'_>,
        out: &mut Vec<Reassembled>,
        events: &mut Vec<ReassemblyEvent>,
    ) {
        let len = f.data.len() as u32;
        let (off, end) = (f.offset, f.offset + len);
        if f.offset == 0 && !f.more {
            // IPv6 atomic fragment (RFC 6946: processed in isolation), or an unfragmented
            // IPv4 packet given by mistake: passed through.
            if f.version == 6 {
                self.emit(events, ts, key, EventKind::AtomicFragment);
            }
            self.counters.reassembled += 1;
            out.push(Reassembled {
                ts_ns: ts,
                first_ns: ts,
                key,
                policy: self.config.policies.lookup(&key.dst),
                fragments: 1,
                bytes: build_packet(f.version, f.header, f.next_header_at, f.protocol, f.data),
                frame_bytes: u64::from(frame_len),
            });
            return;
        }
        if len == 0 {
            self.counters.dropped_fragments += 1;
            let kind = EventKind::Malformed {
                reason: "empty fragment".to_string(),
            };
            return self.emit(events, ts, key, kind);
        }
        if f.dont_fragment {
            self.emit(events, ts, key, EventKind::ForbiddenFragment);
        }
        let size = if f.version == 4 {
            f.header.len() as u32 + end
        } else {
            f.header.len() as u32 - 40 + end
        };
        if size > 0xffff {
            self.counters.dropped_fragments += 1;
            return self.emit(events, ts, key, EventKind::TooLarge { size });
        }
        if f.more && !len.is_multiple_of(8) {
            self.emit(events, ts, key, EventKind::Misaligned { len });
        }
        if off == 0 {
            let required = self.config.tiny_first.required(f.protocol);
            if len < required {
                self.emit(
                    events,
                    ts,
                    key,
                    EventKind::TinyFirstFragment { len, required },
                );
            }
        }

        // Checks against the datagram so far. `existing`: the datagram is in flight, and
        // what storing the fragment in it would cost.
        let mut existing: Option<usize> = None;
        let mut full = false;
        if let Some(d) = self.datagrams.get_mut(&key) {
            d.frame_bytes += u64::from(frame_len);
            let counters = &mut self.counters;
            if let (Some(final_end), false) = (d.final_end, f.more) {
                if end != final_end {
                    counters.dropped_fragments += 1;
                    let kind = EventKind::ConflictingFinal { final_end, end };
                    return event(events, counters, ts, key, kind);
                }
            }
            let mut r = d.analyse(off, f.data);
            // A duplicate that brings the final-fragment mark is still news.
            r.duplicate &= f.more || d.final_end.is_some();
            if let Some(earlier) = r.shrinks {
                let kind = EventKind::Teardrop {
                    range: (off, end),
                    earlier,
                };
                event(events, counters, ts, key, kind);
            }
            if let Some(range) = r.extent {
                if r.differing.is_empty() {
                    let duplicate = r.duplicate;
                    let kind = EventKind::OverlapSame { range, duplicate };
                    event(events, counters, ts, key, kind);
                    if duplicate {
                        // Stores nothing new under any policy.
                        counters.dropped_fragments += 1;
                        return;
                    }
                } else {
                    d.differing.extend_from_slice(&r.differing);
                    let kind = EventKind::OverlapDifferent {
                        range,
                        differing: r.differing,
                    };
                    event(events, counters, ts, key, kind);
                    d.differing = merge(std::mem::take(&mut d.differing));
                    let relevant = d.differs_in_payload();
                    let newly_discarded = relevant && d.policy == Policy::Rfc5722 && !d.discarded;
                    d.discarded |= newly_discarded;
                    if newly_discarded {
                        event(events, counters, ts, key, EventKind::Discarded);
                    }
                }
            }
            full = d.fragment_count() >= self.config.max_fragments;
            let header = if off == 0 && !d.has_header() {
                f.header.len()
            } else {
                0
            };
            existing = Some(d.growth(header, f.data.len()) + FRAGMENT_OVERHEAD);
        }
        if full {
            self.counters.dropped_fragments += 1;
            if let Some(d) = self.remove(&key) {
                let kind = EventKind::Eviction {
                    reason: EvictReason::Fragments,
                    first_ns: d.first_ns,
                    fragments: d.fragment_count() as u32,
                };
                self.emit(events, ts, key, kind);
            }
            return;
        }

        // Make room. `existing`: the cost of storing the fragment in its datagram, if it
        // is in flight; `alone`: the cost in a new one.
        let header_len = if off == 0 { f.header.len() } else { 0 };
        let alone = DatagramBuffer::initial_growth(header_len, f.data.len())
            + FRAGMENT_OVERHEAD
            + DATAGRAM_OVERHEAD;
        let cost = |existing: Option<usize>| existing.unwrap_or(alone);
        if alone > self.config.memory_budget {
            self.counters.dropped_fragments += 1;
            let kind = EventKind::OverBudget { cost: alone as u64 };
            return self.emit(events, ts, key, kind);
        }
        while self.memory + cost(existing) > self.config.memory_budget {
            match self.evict_oldest(ts, EvictReason::Memory, events) {
                Some(evicted) if evicted == key => existing = None,
                Some(_) => {}
                None => break,
            }
        }
        while existing.is_none() && self.datagrams.len() >= self.config.max_datagrams {
            if self
                .evict_oldest(ts, EvictReason::Datagrams, events)
                .is_none()
            {
                break;
            }
        }
        if self.config.max_datagrams == 0 {
            self.counters.dropped_fragments += 1;
            return;
        }

        // Store.
        let q = queue_of(&key);
        let d = match self.datagrams.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let timeout = if f.version == 4 {
                    self.config.timeout_v4_ns
                } else {
                    self.config.timeout_v6_ns
                };
                let policy = self.config.policies.lookup(&key.dst);
                let mut d = DatagramBuffer::new(ts, ts.saturating_add(timeout), policy);
                d.frame_bytes = u64::from(frame_len);
                self.memory += d.memory;
                let queue = &mut self.by_age[q];
                queue.live += 1;
                queue.push(ts, key);
                v.insert(d)
            }
        };
        let mut past = None;
        if let Some(final_end) = d.final_end {
            if end > final_end {
                past = Some((final_end, end));
            }
        } else if !f.more {
            d.final_end = Some(end);
            if d.max_end > end {
                past = Some((end, d.max_end));
            }
        }
        if off == 0 && !d.has_header() {
            self.memory += d.set_header(f.header, f.next_header_at, f.protocol);
        }
        self.memory += d.store(off, f.data);
        let complete = d.is_complete();
        self.compact(q);
        if let Some((final_end, end)) = past {
            self.emit(events, ts, key, EventKind::DataPastFinal { final_end, end });
        }
        if complete {
            if let Some(d) = self.remove(&key) {
                self.complete(ts, key, f.version, d, out, events);
            }
        }
    }

    fn complete(
        &mut self,
        ts: u64,
        key: FragKey,
        version: u8,
        d: DatagramBuffer,
        out: &mut Vec<Reassembled>,
        events: &mut Vec<ReassemblyEvent>,
    ) {
        let payload = d.payload(d.policy);
        if d.differs_in_payload() && !self.config.ambiguity.is_empty() {
            let mut groups: Vec<(Vec<u8>, Vec<Policy>)> = Vec::new();
            let mut discarded_by = Vec::new();
            let mut set = self.config.ambiguity.clone();
            set.sort();
            set.dedup();
            for p in set {
                if p == Policy::Rfc5722 {
                    discarded_by.push(p);
                    continue;
                }
                let bytes = if p == d.policy {
                    payload.clone()
                } else {
                    d.payload(p)
                };
                match groups.iter_mut().find(|(b, _)| *b == bytes) {
                    Some(g) => g.1.push(p),
                    None => groups.push((bytes, vec![p])),
                }
            }
            let disagree = groups.len() > 1 || (!discarded_by.is_empty() && !groups.is_empty());
            if disagree {
                let mut ranges: Vec<Range> = Vec::new();
                if let Some((first, rest)) = groups.split_first() {
                    for (b, _) in rest {
                        let differs = first.0.iter().zip(b).map(|(x, y)| x != y);
                        let mut run: Option<u32> = None;
                        for (j, d) in differs.chain(std::iter::once(false)).enumerate() {
                            match (d, run) {
                                (true, None) => run = Some(j as u32),
                                (false, Some(s)) => {
                                    ranges.push((s, j as u32));
                                    run = None;
                                }
                                _ => {}
                            }
                        }
                    }
                }
                let kind = EventKind::Ambiguity {
                    groups: groups.into_iter().map(|g| g.1).collect(),
                    discarded_by,
                    ranges: merge(ranges),
                };
                self.emit(events, ts, key, kind);
            }
        }
        if d.discarded {
            return;
        }
        let Some((header, next_at, protocol)) = d.header() else {
            return;
        };
        self.counters.reassembled += 1;
        out.push(Reassembled {
            ts_ns: ts,
            first_ns: d.first_ns,
            key,
            policy: d.policy,
            fragments: d.fragment_count() as u32,
            bytes: build_packet(version, header, next_at, protocol, &payload),
            frame_bytes: d.frame_bytes,
        });
    }
}
