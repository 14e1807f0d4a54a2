//! All datagrams being reassembled by one worker: limits, timeouts and eviction.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::datagram::{merge, DatagramBuffer, DATAGRAM_OVERHEAD, FRAGMENT_OVERHEAD};
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
    /// Memory budget in bytes (default 64 MiB): fragment data plus
    /// [`FRAGMENT_OVERHEAD`] per stored fragment, stored headers, and
    /// [`DATAGRAM_OVERHEAD`] per datagram.
    pub memory_budget: usize,
    /// Most fragments stored per datagram (default 256).
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
    by_age: BTreeSet<(u64, FragKey)>,
    by_deadline: BTreeSet<(u64, FragKey)>,
    memory: usize,
    counters: Counters,
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
        let max_fragments = config.max_fragments.clamp(1, u32::MAX as usize - 1);
        ReassemblyTable {
            config: ReassemblyConfig {
                max_fragments,
                ..config
            },
            datagrams: FastMap::default(),
            by_age: BTreeSet::new(),
            by_deadline: BTreeSet::new(),
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
        self.by_age.remove(&(d.first_ns, *key));
        self.by_deadline.remove(&(d.deadline_ns, *key));
        self.memory -= d.memory;
        Some(d)
    }

    fn evict_oldest(
        &mut self,
        ts: u64,
        reason: EvictReason,
        events: &mut Vec<ReassemblyEvent>,
    ) -> Option<FragKey> {
        let &(_, key) = self.by_age.iter().next()?;
        let d = self.remove(&key)?;
        self.emit(
            events,
            ts,
            key,
            EventKind::Eviction {
                reason,
                first_ns: d.first_ns,
                fragments: d.fragments.len() as u32,
            },
        );
        Some(key)
    }

    /// Times out every datagram whose deadline is at or before `frontier_ns`.
    pub fn expire(&mut self, frontier_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        while let Some(&(deadline, key)) = self.by_deadline.iter().next() {
            if deadline > frontier_ns {
                break;
            }
            if let Some(d) = self.remove(&key) {
                self.emit(
                    events,
                    deadline,
                    key,
                    EventKind::Timeout {
                        first_ns: d.first_ns,
                        fragments: d.fragments.len() as u32,
                    },
                );
            }
        }
    }

    /// Ends the input: every datagram still in flight times out if its deadline is at or
    /// before `end_of_input_ns` (the latest capture time of the whole input), else it is
    /// reported incomplete at the end of input — so the outcome depends only on the input,
    /// never on how far the frontier got before the input closed. Emitted in
    /// (first-fragment time, key) order.
    pub fn drain(&mut self, end_of_input_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        let all: Vec<(u64, FragKey)> = self.by_age.iter().copied().collect();
        for (_, key) in all {
            if let Some(d) = self.remove(&key) {
                let fragments = d.fragments.len() as u32;
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
        self.push_parsed(ts, key, &parsed, out, events);
    }

    fn push_parsed(
        &mut self,
        ts: u64,
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

        // Checks against the datagram so far.
        if let Some(d) = self.datagrams.get(&key) {
            if let (Some(final_end), false) = (d.final_end, f.more) {
                if end != final_end {
                    self.counters.dropped_fragments += 1;
                    let kind = EventKind::ConflictingFinal { final_end, end };
                    return self.emit(events, ts, key, kind);
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
                self.emit(events, ts, key, kind);
            }
            if let Some(range) = r.extent {
                if r.differing.is_empty() {
                    let duplicate = r.duplicate;
                    self.emit(events, ts, key, EventKind::OverlapSame { range, duplicate });
                    if duplicate {
                        // Stores nothing new under any policy.
                        self.counters.dropped_fragments += 1;
                        return;
                    }
                } else {
                    let differing = r.differing;
                    let kind = EventKind::OverlapDifferent {
                        range,
                        differing: differing.clone(),
                    };
                    self.emit(events, ts, key, kind);
                    let newly_discarded = match self.datagrams.get_mut(&key) {
                        Some(d) => {
                            d.differing.extend_from_slice(&differing);
                            d.differing = merge(std::mem::take(&mut d.differing));
                            let relevant = d.differs_in_payload();
                            let newly = relevant && d.policy == Policy::Rfc5722 && !d.discarded;
                            d.discarded |= newly;
                            newly
                        }
                        None => false,
                    };
                    if newly_discarded {
                        self.emit(events, ts, key, EventKind::Discarded);
                    }
                }
            }
            let full = self
                .datagrams
                .get(&key)
                .is_some_and(|d| d.fragments.len() >= self.config.max_fragments);
            if full {
                self.counters.dropped_fragments += 1;
                if let Some(d) = self.remove(&key) {
                    let kind = EventKind::Eviction {
                        reason: EvictReason::Fragments,
                        first_ns: d.first_ns,
                        fragments: d.fragments.len() as u32,
                    };
                    self.emit(events, ts, key, kind);
                }
                return;
            }
        }

        // Make room.
        let cost = |t: &Self| -> usize {
            let mut c = f.data.len() + FRAGMENT_OVERHEAD;
            match t.datagrams.get(&key) {
                Some(d) => {
                    if off == 0 && d.header.is_none() {
                        c += f.header.len();
                    }
                }
                None => {
                    c += DATAGRAM_OVERHEAD;
                    if off == 0 {
                        c += f.header.len();
                    }
                }
            }
            c
        };
        let alone = f.data.len() + FRAGMENT_OVERHEAD + DATAGRAM_OVERHEAD + f.header.len();
        if alone > self.config.memory_budget {
            self.counters.dropped_fragments += 1;
            let kind = EventKind::OverBudget { cost: alone as u64 };
            return self.emit(events, ts, key, kind);
        }
        while self.memory + cost(self) > self.config.memory_budget {
            if self.evict_oldest(ts, EvictReason::Memory, events).is_none() {
                break;
            }
        }
        while !self.datagrams.contains_key(&key)
            && self.datagrams.len() >= self.config.max_datagrams
        {
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
        let timeout = if f.version == 4 {
            self.config.timeout_v4_ns
        } else {
            self.config.timeout_v6_ns
        };
        let policy = self.config.policies.lookup(&key.dst);
        let d = self.datagrams.entry(key).or_insert_with(|| {
            let d = DatagramBuffer::new(ts, ts.saturating_add(timeout), policy);
            self.memory += d.memory;
            self.by_age.insert((d.first_ns, key));
            self.by_deadline.insert((d.deadline_ns, key));
            d
        });
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
        if off == 0 && d.header.is_none() {
            d.header = Some((f.header.into(), f.next_header_at, f.protocol));
            d.memory += f.header.len();
            self.memory += f.header.len();
        }
        self.memory += d.store(off, f.data);
        let complete = d.is_complete();
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
        let Some((header, next_at, protocol)) = d.header.as_ref() else {
            return;
        };
        self.counters.reassembled += 1;
        out.push(Reassembled {
            ts_ns: ts,
            first_ns: d.first_ns,
            key,
            policy: d.policy,
            fragments: d.fragments.len() as u32,
            bytes: build_packet(version, header, *next_at, *protocol, &payload),
        });
    }
}
