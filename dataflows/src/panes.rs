//! Per-flow pane accumulators and the per-worker pane combiner: how the flow table turns
//! packets into [`PaneAgg`] records for the windows operator without a second pass over
//! the packets.
//!
//! Each open flow accumulates the current pane's traffic in a small [`PaneAcc`] (a few
//! additions per packet). When the flow moves to a later pane, ends, or the frontier
//! closes the pane, the accumulator is folded into the worker's [`PaneCombiner`] under
//! the flow's channel, host and service keys; when the pane closes the combiner emits
//! one [`PaneAgg`] per key. Everything is an exact integer sum, so the result does not
//! depend on the order of folding.

use std::collections::{BTreeMap, VecDeque};

use crate::compact_stats::CompactStats;
use crate::flow::count_flags;
use crate::flow_acc::Sum128;
use crate::hash::FastMap;
use crate::packet::{proto, Addr, Packet};
use crate::window::{Granularity, PaneAgg, WindowKey, WindowStats};

/// No pane.
pub const NO_PANE: u64 = u64::MAX;

/// One flow's traffic in its current pane (96 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaneAcc {
    /// Start of the pane, or [`NO_PANE`].
    pub start: u64,
    /// IP bytes.
    pub bytes: u64,
    /// Sum of the gaps (ns).
    pub iat_sum_ns: u64,
    /// Sum of squared sizes (saturating; exact below 2³² packets of at most 65 535 bytes).
    pub size_sumsq: u64,
    /// Sum of squared gaps.
    pub iat_sumsq: Sum128,
    /// Packets.
    pub packets: u32,
    /// Inter-arrival samples (gaps to the flow's previous packet).
    pub iat_count: u32,
    /// Per-flag packet counts.
    pub flags: [u32; 8],
    /// Whether the flow started in this pane.
    pub started: bool,
}

impl Default for PaneAcc {
    fn default() -> Self {
        PaneAcc {
            start: NO_PANE,
            bytes: 0,
            iat_sum_ns: 0,
            size_sumsq: 0,
            iat_sumsq: Sum128::default(),
            packets: 0,
            iat_count: 0,
            flags: [0; 8],
            started: false,
        }
    }
}

impl PaneAcc {
    /// Counts one packet; `gap_ns` is the time since the flow's previous packet, if any.
    #[inline]
    pub fn add(&mut self, p: &Packet, gap_ns: Option<u64>) {
        let size = u64::from(p.ip_len);
        self.packets = self.packets.saturating_add(1);
        self.bytes += size;
        self.size_sumsq = self.size_sumsq.saturating_add(size * size);
        if let Some(g) = gap_ns {
            self.iat_count = self.iat_count.saturating_add(1);
            self.iat_sum_ns += g;
            self.iat_sumsq.add(u128::from(g) * u128::from(g));
        }
        count_flags(&mut self.flags, p.tcp_flags);
    }

    /// True when nothing was accumulated.
    pub fn is_empty(&self) -> bool {
        self.start == NO_PANE
    }
}

/// The orientation of a flow as windows see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSide {
    /// Initiator.
    pub src: Addr,
    /// Responder.
    pub dst: Addr,
    /// Responder port.
    pub dport: u16,
    /// IP protocol.
    pub protocol: u8,
}

impl FlowSide {
    /// The destination port when the protocol has ports (TCP, UDP, UDP-Lite, SCTP).
    pub fn service_port(&self) -> Option<u16> {
        match self.protocol {
            proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP => Some(self.dport),
            _ => None,
        }
    }

    fn key(&self, g: Granularity) -> WindowKey {
        WindowKey::of_flow(
            g,
            self.src,
            self.dst,
            self.service_port().unwrap_or(0),
            self.protocol,
        )
    }
}

/// A pane under construction: its sums, and its peers and ports as they come (made
/// distinct when they double, and at the end).
#[derive(Debug, Default)]
struct PaneBuild {
    stats: WindowStats,
    peers_compacted: usize,
    ports_compacted: usize,
}

fn push_distinct<T: Ord + Copy>(v: &mut Vec<T>, x: T, compacted: &mut usize) {
    if v.last() == Some(&x) {
        return;
    }
    v.push(x);
    if v.len() >= 2 * (*compacted).max(32) {
        v.sort_unstable();
        v.dedup();
        *compacted = v.len();
    }
}

/// The keys of one open pane: their aggregates in a vector, indexed by key.
#[derive(Debug, Default)]
struct OpenPane {
    index: FastMap<WindowKey, u32>,
    builds: Vec<(WindowKey, PaneBuild)>,
}

impl OpenPane {
    fn build(&mut self, key: WindowKey) -> &mut PaneBuild {
        let builds = &mut self.builds;
        let i = *self.index.entry(key).or_insert_with(|| {
            builds.push((key, PaneBuild::default()));
            u32::try_from(builds.len() - 1).unwrap_or(u32::MAX)
        });
        // `builds` holds the key's entry (so it is not empty); the index is below its
        // length unless a pane had over 2³² keys, which cannot fit in memory.
        let i = (i as usize).min(builds.len().saturating_sub(1));
        &mut builds[i].1
    }
}

/// An open pane with this many keys is flushed: its aggregates so far go out as partial
/// ones (the windows operator merges several aggregates of one key and pane, exactly),
/// and it starts again empty.
pub const FLUSH_KEYS: usize = 1 << 16;

/// One worker's pane statistics under construction, per pane start and window key.
///
/// Closed panes are moved out a part at a time ([`PaneCombiner::take`]): a pane of a
/// flood from a million spoofed sources holds two million keys, and emitting them at once
/// would put them all in flight (and in copies) downstream. A closed pane drops its index
/// at once and gives back the memory of its aggregates as they go out. An open pane that
/// reaches [`FLUSH_KEYS`] keys is flushed the same way, so the combiner's memory stays
/// bounded whatever the number of keys; with fewer keys a pane goes out once, complete.
#[derive(Debug, Default)]
pub struct PaneCombiner {
    slide_ns: u64,
    /// Open panes by start.
    panes: BTreeMap<u64, OpenPane>,
    /// Closed panes whose aggregates are not all taken out yet, oldest first.
    closing: VecDeque<(u64, Closed)>,
}

/// A closed pane's aggregates.
#[derive(Debug)]
enum Closed {
    /// As built: a pane closed by the frontier, with at most [`FLUSH_KEYS`] keys, goes out
    /// at once.
    Full(Vec<(WindowKey, PaneBuild)>),
    /// Finished and in compact form (24 bytes of statistics instead of 224 and two lists
    /// for a key of a few packets): the flushed parts of a pane with very many keys,
    /// which at the end of input wait for the flow table to free its flows.
    Compact(Vec<(WindowKey, CompactStats)>),
}

impl Closed {
    fn len(&self) -> usize {
        match self {
            Closed::Full(v) => v.len(),
            Closed::Compact(v) => v.len(),
        }
    }

    /// Moves out up to `room` aggregates; returns how many.
    fn take(&mut self, start: u64, room: usize, out: &mut Vec<PaneAgg>) -> usize {
        let n = room.min(self.len());
        match self {
            Closed::Full(v) => take_last(v, n, out, |(key, b)| finish(key, start, b)),
            Closed::Compact(v) => take_last(v, n, out, |(key, stats)| PaneAgg {
                key,
                pane_start_ns: start,
                stats: stats.unpack(),
            }),
        }
        n
    }
}

/// Moves the last `n` entries of `v` out as aggregates, giving back the vector's memory
/// as it empties.
fn take_last<T>(v: &mut Vec<T>, n: usize, out: &mut Vec<PaneAgg>, f: impl FnMut(T) -> PaneAgg) {
    let at = v.len().saturating_sub(n);
    out.extend(v.drain(at..).rev().map(f));
    if v.len() < v.capacity() / 4 {
        v.shrink_to(v.len() * 2);
    }
}

impl PaneCombiner {
    /// A combiner for panes of `slide_ns`.
    pub fn new(slide_ns: u64) -> Self {
        PaneCombiner {
            slide_ns: slide_ns.max(1),
            panes: BTreeMap::new(),
            closing: VecDeque::new(),
        }
    }

    /// Folds one flow's pane accumulator in (and empties it).
    pub fn fold(&mut self, side: &FlowSide, acc: &mut PaneAcc) {
        if acc.is_empty() {
            return;
        }
        let pane = self.open_pane(acc.start);
        for g in Granularity::ALL {
            let b = pane.build(side.key(g));
            let s = &mut b.stats;
            s.packets += u64::from(acc.packets);
            s.bytes += acc.bytes;
            s.size_sumsq += u128::from(acc.size_sumsq);
            s.iat_count += u64::from(acc.iat_count);
            s.iat_sum_ns += u128::from(acc.iat_sum_ns);
            s.iat_sumsq += acc.iat_sumsq.get();
            for (a, f) in s.flags.iter_mut().zip(acc.flags) {
                *a += u64::from(f);
            }
            s.flows_started += u64::from(acc.started);
            let port = side.service_port();
            match g {
                Granularity::Host => {
                    push_distinct(&mut b.stats.peers, side.dst, &mut b.peers_compacted);
                    if let Some(port) = port {
                        push_distinct(&mut b.stats.dst_ports, port, &mut b.ports_compacted);
                    }
                }
                Granularity::Service => {
                    push_distinct(&mut b.stats.peers, side.src, &mut b.peers_compacted);
                }
                Granularity::Channel => {
                    if let Some(port) = port {
                        push_distinct(&mut b.stats.dst_ports, port, &mut b.ports_compacted);
                    }
                }
            }
        }
        *acc = PaneAcc::default();
    }

    /// The open pane starting at `start`, with room for a flow's keys: flushed first (its
    /// aggregates so far go out as partial ones) if it would pass [`FLUSH_KEYS`].
    fn open_pane(&mut self, start: u64) -> &mut OpenPane {
        let pane = self.panes.entry(start).or_default();
        if pane.builds.len() + Granularity::ALL.len() > FLUSH_KEYS {
            let full = std::mem::take(pane);
            self.closing
                .push_back((start, Closed::Compact(compact(full.builds))));
        }
        pane
    }

    /// Counts a flow that ended at `end_ns` after lasting `duration_ns`.
    pub fn flow_ended(&mut self, side: &FlowSide, end_ns: u64, duration_ns: u64) {
        let start = end_ns - end_ns % self.slide_ns;
        let pane = self.open_pane(start);
        for g in Granularity::ALL {
            let s = &mut pane.build(side.key(g)).stats;
            s.flows_ended += 1;
            s.ended_duration_sum_ns += u128::from(duration_ns);
        }
    }

    /// Closes every pane that ends at or before `frontier_ns` (see [`PaneCombiner::take`]).
    pub fn close(&mut self, frontier_ns: u64) {
        let slide = self.slide_ns;
        while let Some(entry) = self.panes.first_entry() {
            if entry.key().saturating_add(slide) > frontier_ns {
                break;
            }
            let (start, pane) = entry.remove_entry();
            self.closing.push_back((start, Closed::Full(pane.builds)));
        }
    }

    /// Closes every pane, in compact form: at the end of input they all wait while the
    /// windows operator builds its state from them a part at a time.
    pub fn close_all(&mut self) {
        while let Some((start, pane)) = self.panes.pop_first() {
            self.closing
                .push_back((start, Closed::Compact(compact(pane.builds))));
        }
    }

    /// Moves out up to `max` (window key, pane) aggregates of the closed panes; true when
    /// none is left.
    pub fn take(&mut self, max: usize, out: &mut Vec<PaneAgg>) -> bool {
        let mut room = max;
        while let Some((start, closed)) = self.closing.front_mut() {
            room -= closed.take(*start, room, out);
            if closed.len() == 0 {
                self.closing.pop_front();
                continue;
            }
            return false;
        }
        true
    }

    /// (Window key, pane) aggregates under construction or closed and not taken out.
    pub fn len(&self) -> usize {
        self.panes.values().map(|p| p.builds.len()).sum::<usize>()
            + self.closing.iter().map(|(_, c)| c.len()).sum::<usize>()
    }

    /// True when no pane is under construction or waiting to be taken out.
    pub fn is_empty(&self) -> bool {
        self.panes.is_empty() && self.closing.is_empty()
    }
}

/// A pane's aggregates, finished (peers and ports distinct) and in compact form.
fn compact(builds: Vec<(WindowKey, PaneBuild)>) -> Vec<(WindowKey, CompactStats)> {
    builds
        .into_iter()
        .map(|(key, b)| (key, CompactStats::pack(&finished(b))))
        .collect()
}

/// A pane's statistics, finished: peers and ports distinct and sorted.
fn finished(b: PaneBuild) -> WindowStats {
    let mut stats = b.stats;
    stats.peers.sort_unstable();
    stats.peers.dedup();
    stats.dst_ports.sort_unstable();
    stats.dst_ports.dedup();
    stats
}

/// A pane's aggregate of `key`, finished.
fn finish(key: WindowKey, pane_start_ns: u64, b: PaneBuild) -> PaneAgg {
    PaneAgg {
        key,
        pane_start_ns,
        stats: finished(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pane_of_many_keys_is_flushed_in_exact_partial_aggregates() {
        let mut c = PaneCombiner::new(60);
        let flows = FLUSH_KEYS as u32; // two keys of their own each: several flushes
        for i in 0..flows {
            let side = FlowSide {
                src: Addr::from_v4((0x0a00_0000 + i).to_be_bytes()),
                dst: Addr::from_v4([192, 0, 2, 1]),
                dport: 53,
                protocol: proto::UDP,
            };
            let mut acc = PaneAcc {
                start: 0,
                started: true,
                ..Default::default()
            };
            acc.add(
                &Packet {
                    ip_len: 80,
                    ..Default::default()
                },
                None,
            );
            c.fold(&side, &mut acc);
            assert!(c.panes.values().all(|p| p.builds.len() <= FLUSH_KEYS));
        }
        let mut out = Vec::new();
        c.close_all();
        let mut parts = 1;
        while !c.take(1000, &mut out) {
            assert_eq!(out.len(), 1000 * parts, "a part is at most 1000 aggregates");
            parts += 1;
        }
        assert!(parts > 100, "{parts}");
        let service: Vec<_> = out
            .iter()
            .filter(|a| a.key.granularity == Granularity::Service)
            .collect();
        assert!(service.len() >= 2, "the service key went out in parts");
        let packets: u64 = service.iter().map(|a| a.stats.packets).sum();
        let peers: usize = service.iter().map(|a| a.stats.peers.len()).sum();
        assert_eq!((packets, peers), (u64::from(flows), flows as usize));
        let hosts = out
            .iter()
            .filter(|a| a.key.granularity == Granularity::Host)
            .count();
        assert_eq!(hosts, flows as usize, "a host key goes out once");
        assert!(c.is_empty());
    }

    #[test]
    fn a_flow_counts_under_three_keys_and_ends_are_separate() {
        let side = FlowSide {
            src: Addr::from_v4([10, 0, 0, 1]),
            dst: Addr::from_v4([10, 0, 0, 2]),
            dport: 443,
            protocol: proto::TCP,
        };
        let mut c = PaneCombiner::new(60);
        let mut acc = PaneAcc {
            start: 0,
            started: true,
            ..Default::default()
        };
        let p = Packet {
            ip_len: 100,
            tcp_flags: crate::packet::tcp::SYN,
            ..Default::default()
        };
        acc.add(&p, None);
        acc.add(&p, Some(7));
        c.fold(&side, &mut acc);
        assert!(acc.is_empty());
        c.flow_ended(&side, 125, 40);
        let mut out = Vec::new();
        c.close(59);
        assert!(c.take(usize::MAX, &mut out));
        assert!(out.is_empty());
        c.close(60);
        assert!(c.take(usize::MAX, &mut out));
        assert_eq!(out.len(), 3);
        for a in &out {
            assert_eq!(
                (a.stats.packets, a.stats.bytes, a.stats.iat_sum_ns),
                (2, 200, 7)
            );
            assert_eq!((a.stats.flows_started, a.stats.flags[0]), (1, 2));
        }
        let host = out
            .iter()
            .find(|a| a.key.granularity == Granularity::Host)
            .map(|a| a.stats.clone());
        assert_eq!(
            host.map(|s| (s.peers, s.dst_ports)),
            Some((vec![side.dst], vec![443]))
        );
        out.clear();
        c.close_all();
        assert!(c.take(usize::MAX, &mut out));
        assert_eq!(out.len(), 3);
        assert!(out
            .iter()
            .all(|a| a.pane_start_ns == 120 && a.stats.flows_ended == 1));
    }
}
