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

/// One worker's pane statistics under construction, per (window key, pane start).
#[derive(Debug, Default)]
pub struct PaneCombiner {
    slide_ns: u64,
    panes: FastMap<(WindowKey, u64), PaneBuild>,
}

impl PaneCombiner {
    /// A combiner for panes of `slide_ns`.
    pub fn new(slide_ns: u64) -> Self {
        PaneCombiner {
            slide_ns: slide_ns.max(1),
            panes: FastMap::default(),
        }
    }

    /// Folds one flow's pane accumulator in (and empties it).
    pub fn fold(&mut self, side: &FlowSide, acc: &mut PaneAcc) {
        if acc.is_empty() {
            return;
        }
        for g in Granularity::ALL {
            let b = self.panes.entry((side.key(g), acc.start)).or_default();
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

    /// Counts a flow that ended at `end_ns` after lasting `duration_ns`.
    pub fn flow_ended(&mut self, side: &FlowSide, end_ns: u64, duration_ns: u64) {
        let start = end_ns - end_ns % self.slide_ns;
        for g in Granularity::ALL {
            let s = &mut self.panes.entry((side.key(g), start)).or_default().stats;
            s.flows_ended += 1;
            s.ended_duration_sum_ns += u128::from(duration_ns);
        }
    }

    /// Moves out every pane that ends at or before `frontier_ns`.
    pub fn take_closed(&mut self, frontier_ns: u64, out: &mut Vec<PaneAgg>) {
        let slide = self.slide_ns;
        let closed = |start: u64| start.saturating_add(slide) <= frontier_ns;
        for ((key, start), b) in self.panes.extract_if(|(_, start), _| closed(*start)) {
            out.push(finish(key, start, b));
        }
    }

    /// Moves out every pane.
    pub fn take_all(&mut self, out: &mut Vec<PaneAgg>) {
        for ((key, start), b) in self.panes.drain() {
            out.push(finish(key, start, b));
        }
    }

    /// Panes under construction (keys × panes).
    pub fn len(&self) -> usize {
        self.panes.len()
    }

    /// True when no pane is under construction.
    pub fn is_empty(&self) -> bool {
        self.panes.is_empty()
    }
}

fn finish(key: WindowKey, pane_start_ns: u64, b: PaneBuild) -> PaneAgg {
    let mut stats = b.stats;
    stats.peers.sort_unstable();
    stats.peers.dedup();
    stats.dst_ports.sort_unstable();
    stats.dst_ports.dedup();
    PaneAgg {
        key,
        pane_start_ns,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        c.take_closed(59, &mut out);
        assert!(out.is_empty());
        c.take_closed(60, &mut out);
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
        c.take_all(&mut out);
        assert_eq!(out.len(), 3);
        assert!(out
            .iter()
            .all(|a| a.pane_start_ns == 120 && a.stats.flows_ended == 1));
    }
}
