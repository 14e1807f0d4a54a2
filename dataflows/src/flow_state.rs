//! The flow table's state, independent of timely: open flows in a slab indexed by a hash
//! map, a timer heap of event-time deadlines, and (optionally) per-flow pane accumulators
//! for the windows operator.
//!
//! ## Two tiers of flow state
//! An open flow takes 160 bytes while each direction has at most one packet: its key,
//! times and state, and each direction's only packet ([`LonePacket`]). That covers most
//! flows of a network (DNS and NTP exchanges, scans, unanswered SYNs, ICMP echoes). With
//! windows on, such a flow's current pane is derived from its lone packets when it is
//! folded (the packets whose pane it is), so it needs no accumulator of its own.
//!
//! A direction's second packet moves the flow's statistics into a second slab of full
//! accumulators (`FullStats`, 288 bytes: two [`DirAcc`] and the bidirectional gaps,
//! plus a 96-byte [`PaneAcc`] with windows on), built from the lone packets exactly as if
//! every packet had been added to them.
//!
//! ## Ends
//! A flow ends at the earliest of:
//! - its idle deadline (last packet + idle timeout) → [`EndReason::Idle`];
//! - its active deadline (first packet + active timeout) → [`EndReason::Active`]: long
//!   flows are split, the next packet starts a new flow; if that packet comes within
//!   the idle timeout of the cut flow's last one, the new record is marked
//!   [`FlowRecord::continued`] and keeps the cut flow's source and destination (the
//!   same whether the frontier or the packet ended the cut flow);
//! - for TCP, with teardown enabled: the close (the second side's FIN, or a RST) plus a
//!   short linger that absorbs the last ACKs and retransmissions → [`EndReason::Fin`] /
//!   [`EndReason::Rst`]. A new connection's SYN (without ACK) during the linger ends the
//!   old flow at once and starts a new one.
//!
//! Deadlines are event times: a flow ends when the frontier passes its deadline, whether
//! or not another packet arrives. Ties go to the TCP close, then active, then idle.
//!
//! ## Direction
//! `src` is the sender of the first packet, corrected once to the TCP initiator when a
//! SYN (sender = initiator) or SYN-ACK (sender = responder) shows who it is; a continued
//! record takes its predecessor's.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use hashbrown::HashTable;

use crate::flow::{EndReason, FlowOpening, FlowRecord};
use crate::flow_acc::{DirAcc, IatAcc, LonePacket};
use crate::flow_key::FlowKey;
use crate::hash::{FastMap, TableHasher};
use crate::packet::{proto, tcp, Packet};
use crate::panes::{FlowSide, PaneAcc, PaneCombiner, NO_PANE};
use crate::time::NS_PER_SEC;
use crate::window::{PaneAgg, WindowConfig};

/// Flow-table settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// A flow ends when no packet arrived for this long (event time, ns).
    pub idle_timeout_ns: u64,
    /// A flow is split when it has lasted this long (ns).
    pub active_timeout_ns: u64,
    /// End TCP flows on FIN in both directions or RST.
    pub tcp_teardown: bool,
    /// How long a closed TCP flow stays open for its last packets (ns).
    pub tcp_linger_ns: u64,
    /// Window panes to produce, if any.
    pub window: Option<WindowConfig>,
    /// Announce every new UDP flow (not a continuation) whose first packet has at least
    /// this many IP bytes ([`FlowTableState::take_openings`]); 0: none.
    pub announce_udp_min_bytes: u32,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            idle_timeout_ns: 120 * NS_PER_SEC,
            active_timeout_ns: 1800 * NS_PER_SEC,
            tcp_teardown: true,
            tcp_linger_ns: 2 * NS_PER_SEC,
            window: None,
            announce_udp_min_bytes: 0,
        }
    }
}

/// Counters of one worker's flow table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Packets accounted to flows.
    pub packets: u64,
    /// Flows emitted.
    pub flows: u64,
    /// Most flows open at once.
    pub peak_open_flows: u64,
    /// Pane aggregates emitted.
    pub panes: u64,
}

/// A flow is split (end reason `active`) before either direction exceeds this many
/// packets, so per-direction counters fit 32 bits.
const MAX_DIRECTION_PACKETS: u32 = u32::MAX - 1;

const SRC_IS_LO: u8 = 1;
const ORIENTED: u8 = 2;
const FIN_LO: u8 = 4;
const FIN_HI: u8 = 8;
const CLOSED_BY_RST: u8 = 16;
/// The flow's first packet travelled hi → lo.
const FIRST_REV: u8 = 32;
/// The flow continues a record that ended at the active timeout.
const CONTINUED: u8 = 64;
/// An ICMP or ICMPv6 echo request was seen: its sender is the flow's source.
const ECHO: u8 = 128;

/// A flow cut at the active timeout: until `deadline` (its last packet plus the idle
/// timeout) the next packet of its key continues it in a new record, with its
/// orientation (`bits`: [`SRC_IS_LO`] and [`ORIENTED`]).
#[derive(Clone, Copy, Debug)]
struct Cut {
    deadline: u64,
    bits: u8,
}

/// `OpenFlow::full` of a flow whose directions have at most one packet each.
const NO_FULL: u32 = u32::MAX;

/// Per-flow state while the flow is open (160 bytes).
#[derive(Clone, Debug)]
struct OpenFlow {
    key: FlowKey,
    first_ns: u64,
    last_ns: u64,
    /// The earliest deadline of this flow's entries in the timer heap (≤ its due time).
    timer_ns: u64,
    /// When the TCP close completed (`u64::MAX` while open).
    close_ns: u64,
    /// Start of the flow's current window pane, [`NO_PANE`] when it has none (windows off,
    /// or folded since the flow's last packet).
    pane_start: u64,
    /// Slot generation: tells this flow's timer and pane entries from a reused slot's.
    generation: u32,
    /// Index of the flow's [`FullStats`], or [`NO_FULL`] while `lone` holds its packets.
    full: u32,
    bits: u8,
    ip_version: u8,
    /// While `full` is [`NO_FULL`]: the packet of each direction (lo → hi, hi → lo), if any.
    lone: [LonePacket; 2],
}

/// The statistics of a flow that has sent a second packet in some direction (288 bytes).
#[derive(Clone, Debug, Default)]
struct FullStats {
    /// Packets travelling lo → hi.
    fwd: DirAcc,
    /// Packets travelling hi → lo.
    rev: DirAcc,
    /// Gaps between consecutive packets of either direction.
    iat: IatAcc,
}

/// A slab of [`FullStats`] (and, with windows on, a pane accumulator for each) with a
/// free list.
#[derive(Debug, Default)]
struct FullSlab {
    items: Vec<FullStats>,
    /// With windows on, parallel to `items`; otherwise empty.
    panes: Vec<PaneAcc>,
    free: Vec<u32>,
}

impl FullSlab {
    fn insert(&mut self, stats: FullStats, pane: Option<PaneAcc>) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.items[i as usize] = stats;
                if let (Some(pane), Some(slot)) = (pane, self.panes.get_mut(i as usize)) {
                    *slot = pane;
                }
                i
            }
            None => {
                self.items.push(stats);
                if let Some(pane) = pane {
                    self.panes.push(pane);
                }
                u32::try_from(self.items.len() - 1).unwrap_or(NO_FULL)
            }
        }
    }

    fn release(&mut self, i: u32) {
        if i != NO_FULL {
            self.free.push(i);
        }
    }
}

impl OpenFlow {
    fn new(key: FlowKey, p: &Packet, forward: bool, generation: u32) -> Self {
        OpenFlow {
            key,
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            timer_ns: u64::MAX,
            close_ns: u64::MAX,
            pane_start: NO_PANE,
            generation,
            full: NO_FULL,
            bits: if forward { SRC_IS_LO } else { FIRST_REV },
            ip_version: p.ip_version,
            lone: [LonePacket::default(); 2],
        }
    }

    fn packets(&self, full: &FullSlab) -> u64 {
        match full.items.get(self.full as usize) {
            Some(f) => u64::from(f.fwd.packets) + u64::from(f.rev.packets),
            None => self.lone.iter().map(|l| u64::from(l.is_present())).sum(),
        }
    }

    /// True when one more packet could overflow a direction's 32-bit counters.
    #[inline]
    fn is_full(&self, full: &FullSlab) -> bool {
        full.items.get(self.full as usize).is_some_and(|f| {
            f.fwd.packets >= MAX_DIRECTION_PACKETS || f.rev.packets >= MAX_DIRECTION_PACKETS
        })
    }

    /// The gaps between the lone packets: one gap when both directions have theirs.
    fn lone_iat(&self) -> IatAcc {
        let mut iat = IatAcc::default();
        if self.lone.iter().all(LonePacket::is_present) {
            iat.add(self.last_ns.saturating_sub(self.first_ns));
        }
        iat
    }

    /// The pane accumulator of the pane starting at `start` that the lone packets make
    /// (those of them in that pane), as if each had been added when it arrived.
    fn lone_pane(&self, w: &WindowConfig, start: u64) -> PaneAcc {
        let mut acc = PaneAcc {
            start,
            started: w.pane_start(self.first_ns) == start,
            ..PaneAcc::default()
        };
        let first = usize::from(self.bits & FIRST_REV != 0);
        for (dir, lone) in self.lone.iter().enumerate() {
            if lone.is_present() && w.pane_start(lone.ts_ns()) == start {
                // The second lone packet is the flow's second packet: its gap is the
                // flow's only one.
                let gap = (dir != first).then(|| self.last_ns.saturating_sub(self.first_ns));
                acc.add(&lone.packet(), gap);
            }
        }
        acc
    }

    /// The flow's statistics: its full accumulators, or those its lone packets make.
    fn stats<'a>(&self, full: &'a FullSlab) -> Cow<'a, FullStats> {
        match full.items.get(self.full as usize) {
            Some(f) => Cow::Borrowed(f),
            None => Cow::Owned(FullStats {
                fwd: self.lone[0].acc(),
                rev: self.lone[1].acc(),
                iat: self.lone_iat(),
            }),
        }
    }

    /// When and why the flow ends if no packet intervenes.
    fn due(&self, c: &FlowTableConfig) -> (u64, EndReason) {
        let idle = self.last_ns.saturating_add(c.idle_timeout_ns);
        let active = self.first_ns.saturating_add(c.active_timeout_ns);
        let mut due = (idle, EndReason::Idle);
        if active <= due.0 {
            due = (active, EndReason::Active);
        }
        if self.close_ns != u64::MAX {
            let close = self.close_ns.saturating_add(c.tcp_linger_ns);
            if close <= due.0 {
                due = (close, self.close_reason());
            }
        }
        due
    }

    fn close_reason(&self) -> EndReason {
        if self.bits & CLOSED_BY_RST != 0 {
            EndReason::Rst
        } else {
            EndReason::Fin
        }
    }

    fn side(&self) -> FlowSide {
        let (src, dst) = if self.bits & SRC_IS_LO != 0 {
            (self.key.lo, self.key.hi)
        } else {
            (self.key.hi, self.key.lo)
        };
        FlowSide {
            src: src.addr,
            dst: dst.addr,
            dport: dst.port,
            protocol: self.key.protocol,
        }
    }

    /// Accounts one packet; returns the gap to the flow's previous packet. A flow still
    /// on lone packets must not have one in the packet's direction yet
    /// ([`FlowTableState::update`] moves it to full statistics first).
    #[inline]
    fn add(
        &mut self,
        p: &Packet,
        forward: bool,
        c: &FlowTableConfig,
        full: &mut FullSlab,
    ) -> Option<u64> {
        let gap = if self.packets(full) == 0 {
            None
        } else {
            Some(p.ts_ns.saturating_sub(self.last_ns))
        };
        let dir = usize::from(!forward);
        if self.full == NO_FULL {
            self.lone[dir] = LonePacket::of(p);
        } else if let Some(f) = full.items.get_mut(self.full as usize) {
            if let Some(g) = gap {
                f.iat.add(g);
            }
            if forward {
                f.fwd.add(p);
            } else {
                f.rev.add(p);
            }
        }
        self.last_ns = p.ts_ns;
        if self.key.protocol == proto::TCP {
            if p.tcp_flags != 0 {
                self.track_tcp(p.tcp_flags, p.ts_ns, forward, c);
            }
        } else if self.bits & ECHO == 0 && p.is_echo_request() {
            // The requester initiates, as a SYN's sender does.
            let src_is_lo = forward;
            self.bits =
                (self.bits & !SRC_IS_LO) | ORIENTED | ECHO | if src_is_lo { SRC_IS_LO } else { 0 };
        }
        gap
    }

    #[inline]
    fn track_tcp(&mut self, f: u8, ts: u64, forward: bool, c: &FlowTableConfig) {
        if self.bits & ORIENTED == 0 && f & tcp::SYN != 0 {
            // SYN: the sender initiates; SYN-ACK: the sender responds.
            let sender_is_initiator = f & tcp::ACK == 0;
            let src_is_lo = forward == sender_is_initiator;
            self.bits = (self.bits & !SRC_IS_LO) | ORIENTED | if src_is_lo { SRC_IS_LO } else { 0 };
        }
        if !c.tcp_teardown || self.close_ns != u64::MAX {
            return;
        }
        if f & tcp::RST != 0 {
            self.bits |= CLOSED_BY_RST;
            self.close_ns = ts;
        } else if f & tcp::FIN != 0 {
            self.bits |= if forward { FIN_LO } else { FIN_HI };
            if self.bits & (FIN_LO | FIN_HI) == FIN_LO | FIN_HI {
                self.close_ns = ts;
            }
        }
    }

    fn finish(&self, end_ns: u64, end_reason: EndReason, full: &FullSlab) -> FlowRecord {
        let key = self.key;
        let stats = self.stats(full);
        let (src, dst, src2dst, dst2src) = if self.bits & SRC_IS_LO != 0 {
            (key.lo, key.hi, stats.fwd.stats(), stats.rev.stats())
        } else {
            (key.hi, key.lo, stats.rev.stats(), stats.fwd.stats())
        };
        FlowRecord {
            key,
            src: src.addr,
            sport: src.port,
            dst: dst.addr,
            dport: dst.port,
            ip_version: self.ip_version,
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            end_ns,
            end_reason,
            continued: self.bits & CONTINUED != 0,
            icmp_echo: self.bits & ECHO != 0,
            src2dst,
            dst2src,
            bidirectional_iat: stats.iat.stats(),
        }
    }

    /// What a record that continues this flow takes from it.
    fn cut(&self, c: &FlowTableConfig) -> Cut {
        Cut {
            deadline: self.last_ns.saturating_add(c.idle_timeout_ns),
            bits: self.bits & (SRC_IS_LO | ORIENTED),
        }
    }
}

/// Folds the flow's current pane, if any, into the combiner: its full pane accumulator, or
/// the one its lone packets make.
fn fold_pane(
    combiner: &mut PaneCombiner,
    flow: &mut OpenFlow,
    full: &mut FullSlab,
    w: &WindowConfig,
) {
    if flow.pane_start == NO_PANE {
        return;
    }
    let side = flow.side();
    match full.panes.get_mut(flow.full as usize) {
        Some(acc) => combiner.fold(&side, acc),
        None => combiner.fold(&side, &mut flow.lone_pane(w, flow.pane_start)),
    }
    flow.pane_start = NO_PANE;
}

#[inline]
fn key_hash(key: &FlowKey) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = TableHasher::default();
    key.hash(&mut h);
    h.finish()
}

#[inline]
fn is_new_connection(p: &Packet) -> bool {
    p.protocol == proto::TCP && p.tcp_flags & (tcp::SYN | tcp::ACK) == tcp::SYN
}

/// The state of one worker's flow table.
#[derive(Debug, Default)]
pub struct FlowTableState {
    config: FlowTableConfig,
    /// Open flows: slot numbers, hashed by their flow key (which lives in the slot).
    index: HashTable<u32>,
    slots: Vec<OpenFlow>,
    free: Vec<u32>,
    /// Full statistics of the flows that outgrew their lone packets.
    full: FullSlab,
    timers: BinaryHeap<Reverse<(u64, u32, u32)>>,
    /// For each open pane, the (slot, generation) of flows with traffic in it.
    pane_members: BTreeMap<u64, Vec<(u32, u32)>>,
    combiner: PaneCombiner,
    stats: FlowTableStats,
    /// Flows the frontier ended at the active timeout, by key, until their idle
    /// deadline passes (a packet that reopens a flow past its active deadline takes
    /// the same from the flow it finds).
    cuts: FastMap<FlowKey, Cut>,
    /// New UDP flows announced and not yet taken.
    openings: Vec<FlowOpening>,
}

impl FlowTableState {
    /// An empty table.
    pub fn new(config: FlowTableConfig) -> Self {
        let slide = config.window.map_or(1, |w| w.slide_ns);
        FlowTableState {
            config,
            combiner: PaneCombiner::new(slide),
            ..Default::default()
        }
    }

    /// Accounts one packet; packets must come in event-time order. A flow that the packet
    /// finds already over (past its deadline, or closed and now reopened by a new SYN) is
    /// finished into `out` first.
    #[inline]
    pub fn update(&mut self, p: &Packet, out: &mut Vec<FlowRecord>) {
        let (key, forward) = FlowKey::of(p);
        self.stats.packets += 1;
        let hash = key_hash(&key);
        let slots = &self.slots;
        let found = self
            .index
            .find(hash, |&s| slots[s as usize].key == key)
            .copied();
        let slot = match found {
            Some(slot) => {
                let flow = &self.slots[slot as usize];
                let (due, reason) = flow.due(&self.config);
                if flow.is_full(&self.full) {
                    let cut = flow.cut(&self.config);
                    self.end(slot, p.ts_ns, EndReason::Active, out);
                    self.reopen(key, p, forward, Some(cut))
                } else if p.ts_ns >= due {
                    let cut = (reason == EndReason::Active).then(|| flow.cut(&self.config));
                    self.end(slot, due, reason, out);
                    self.reopen(key, p, forward, cut)
                } else if flow.close_ns != u64::MAX && is_new_connection(p) {
                    let reason = flow.close_reason();
                    self.end(slot, p.ts_ns, reason, out);
                    self.open(key, p, forward)
                } else {
                    slot
                }
            }
            None => {
                let cut = if self.cuts.is_empty() {
                    None
                } else {
                    self.cuts.remove(&key)
                };
                self.reopen(key, p, forward, cut)
            }
        };
        let config = self.config;
        let flow = &mut self.slots[slot as usize];
        if let Some(w) = &config.window {
            // Fold the previous pane before this packet can change the orientation, so
            // a pane is keyed the same whether the frontier closed it first or not.
            let start = w.pane_start(p.ts_ns);
            if flow.pane_start != start {
                fold_pane(&mut self.combiner, flow, &mut self.full, w);
                flow.pane_start = start;
                if let Some(acc) = self.full.panes.get_mut(flow.full as usize) {
                    // A flow with full statistics has had packets before this one.
                    acc.start = start;
                    acc.started = false;
                }
                self.pane_members
                    .entry(start)
                    .or_default()
                    .push((slot, flow.generation));
            }
        }
        if flow.full == NO_FULL && flow.lone[usize::from(!forward)].is_present() {
            // The direction's second packet: move to full statistics.
            let stats = flow.stats(&self.full).into_owned();
            let pane = config
                .window
                .as_ref()
                .map(|w| flow.lone_pane(w, flow.pane_start));
            flow.full = self.full.insert(stats, pane);
        }
        let was_closing = flow.close_ns != u64::MAX;
        let gap = flow.add(p, forward, &config, &mut self.full);
        if let Some(acc) = self.full.panes.get_mut(flow.full as usize) {
            acc.add(p, gap);
        }
        if !was_closing && flow.close_ns != u64::MAX {
            let (due, _) = flow.due(&config);
            if due < flow.timer_ns {
                flow.timer_ns = due;
                self.timers.push(Reverse((due, slot, flow.generation)));
            }
        }
    }

    fn open(&mut self, key: FlowKey, p: &Packet, forward: bool) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => {
                let generation = self.slots[s as usize].generation.wrapping_add(1);
                self.slots[s as usize] = OpenFlow::new(key, p, forward, generation);
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(OpenFlow::new(key, p, forward, 0));
                s
            }
        };
        let flow = &mut self.slots[slot as usize];
        flow.last_ns = p.ts_ns;
        let (due, _) = flow.due(&self.config);
        flow.timer_ns = due;
        self.timers.push(Reverse((due, slot, flow.generation)));
        let slots = &self.slots;
        self.index
            .insert_unique(key_hash(&key), slot, |&s| key_hash(&slots[s as usize].key));
        self.stats.peak_open_flows = self.stats.peak_open_flows.max(self.index.len() as u64);
        slot
    }

    /// Opens a flow for `p`; with the `cut` of a flow of its key that ended at the
    /// active timeout, the new one continues it if `p` came before the cut's deadline.
    fn reopen(&mut self, key: FlowKey, p: &Packet, forward: bool, cut: Option<Cut>) -> u32 {
        let slot = self.open(key, p, forward);
        if let Some(cut) = cut.filter(|c| p.ts_ns < c.deadline) {
            let flow = &mut self.slots[slot as usize];
            flow.bits = (flow.bits & !(SRC_IS_LO | ORIENTED)) | cut.bits | CONTINUED;
        } else {
            let min = self.config.announce_udp_min_bytes;
            if min > 0 && key.protocol == proto::UDP && p.ip_len >= min {
                self.openings.push(FlowOpening {
                    ts_ns: p.ts_ns,
                    src: p.src,
                    sport: p.sport,
                    dst: p.dst,
                    dport: p.dport,
                    ip_len: p.ip_len,
                });
            }
        }
        slot
    }

    /// Moves the announced openings of new UDP flows (in packet order) to `out`.
    pub fn take_openings(&mut self, out: &mut Vec<FlowOpening>) {
        out.append(&mut self.openings);
    }

    /// Finishes the flow in `slot`.
    fn end(&mut self, slot: u32, end_ns: u64, reason: EndReason, out: &mut Vec<FlowRecord>) {
        let flow = &mut self.slots[slot as usize];
        if let Some(w) = &self.config.window {
            fold_pane(&mut self.combiner, flow, &mut self.full, w);
            let side = flow.side();
            if reason != EndReason::EndOfInput {
                self.combiner
                    .flow_ended(&side, end_ns, flow.last_ns.saturating_sub(flow.first_ns));
            }
        }
        out.push(flow.finish(end_ns, reason, &self.full));
        self.full.release(flow.full);
        flow.full = NO_FULL;
        flow.generation = flow.generation.wrapping_add(1);
        let key = flow.key;
        let slots = &self.slots;
        if let Ok(entry) = self
            .index
            .find_entry(key_hash(&key), |&s| slots[s as usize].key == key)
        {
            entry.remove();
        }
        self.free.push(slot);
        self.stats.flows += 1;
    }

    /// Finishes every flow whose deadline is at or before `frontier` (no packet that
    /// could extend it can still arrive), then closes the window panes that end at or
    /// before `frontier` into `panes`.
    pub fn expire(&mut self, frontier: u64, out: &mut Vec<FlowRecord>, panes: &mut Vec<PaneAgg>) {
        self.expire_some(frontier, usize::MAX, out, panes);
    }

    /// Like [`FlowTableState::expire`], moving out at most `max_panes` (window key, pane)
    /// aggregates of the closed panes; returns true when none is left to move out (the
    /// caller calls again, with this or a later frontier, for the rest, so that a pane
    /// of millions of keys is not in flight all at once).
    pub fn expire_some(
        &mut self,
        frontier: u64,
        max_panes: usize,
        out: &mut Vec<FlowRecord>,
        panes: &mut Vec<PaneAgg>,
    ) -> bool {
        while let Some(Reverse((deadline, slot, generation))) = self.timers.peek().copied() {
            if deadline > frontier {
                break;
            }
            self.timers.pop();
            let Some(flow) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            if flow.generation != generation || flow.timer_ns != deadline {
                continue; // stale entry
            }
            let (due, reason) = flow.due(&self.config);
            if due <= frontier {
                if reason == EndReason::Active {
                    let cut = flow.cut(&self.config);
                    self.cuts.insert(flow.key, cut);
                }
                self.end(slot, due, reason, out);
            } else {
                flow.timer_ns = due;
                self.timers.push(Reverse((due, slot, generation)));
            }
        }
        if !self.cuts.is_empty() {
            // A packet before a cut's deadline would have come before this frontier.
            self.cuts.retain(|_, c| c.deadline > frontier);
        }
        self.close_panes(frontier);
        self.take_panes(max_panes, panes)
    }

    /// Folds the flows' accumulators of the panes that end at or before `frontier` and
    /// closes those panes.
    fn close_panes(&mut self, frontier: u64) {
        let Some(w) = self.config.window else { return };
        while let Some(entry) = self.pane_members.first_entry() {
            let start = *entry.key();
            if w.pane_end(start) > frontier {
                break;
            }
            for (slot, generation) in entry.remove() {
                if let Some(flow) = self.slots.get_mut(slot as usize) {
                    if flow.generation == generation && flow.pane_start == start {
                        fold_pane(&mut self.combiner, flow, &mut self.full, &w);
                    }
                }
            }
        }
        self.combiner.close(frontier);
    }

    /// Moves out up to `max` aggregates of panes closed by the frontier or flushed because
    /// they reached [`crate::panes::FLUSH_KEYS`] keys; true when none is left.
    pub fn take_panes(&mut self, max: usize, panes: &mut Vec<PaneAgg>) -> bool {
        let before = panes.len();
        let done = self.combiner.take(max, panes);
        self.stats.panes += (panes.len() - before) as u64;
        done
    }

    /// Finishes every open flow at the end of input. `end_of_input_ns` is the latest
    /// capture time in the whole input (all feeds, all workers): a flow whose deadline is
    /// at or before it, or whose TCP close was seen, had ended (idle, active, fin, rst);
    /// the others were still open when the input ended. This makes the end reason independent of how far the
    /// frontier happened to get before the input closed. Every pane is then emitted.
    pub fn drain(
        &mut self,
        end_of_input_ns: u64,
        out: &mut Vec<FlowRecord>,
        panes: &mut Vec<PaneAgg>,
    ) {
        while !self.drain_some(end_of_input_ns, usize::MAX, out, panes) {}
    }

    /// Like [`FlowTableState::drain`], a part at a time: finishes at most `max` flows
    /// (and, once every flow is finished, moves out at most `max` pane aggregates)
    /// and returns true once every flow and pane is out (so that a caller can let the
    /// records flow downstream between parts instead of holding them all at once).
    pub fn drain_some(
        &mut self,
        end_of_input_ns: u64,
        max: usize,
        out: &mut Vec<FlowRecord>,
        panes: &mut Vec<PaneAgg>,
    ) -> bool {
        self.timers.clear();
        let some: Vec<u32> = self.index.iter().take(max).copied().collect();
        for slot in some {
            let flow = &self.slots[slot as usize];
            let (due, reason) = flow.due(&self.config);
            // A TCP connection seen closing ended by its close, even when the input
            // stopped within the linger.
            if due <= end_of_input_ns || flow.close_ns != u64::MAX {
                self.end(slot, due, reason, out);
            } else {
                self.end(slot, u64::MAX, EndReason::EndOfInput, out);
            }
        }
        let flows_done = self.index.is_empty();
        if flows_done {
            // Release the table's memory (not just its contents) for what comes
            // downstream.
            self.pane_members = BTreeMap::new();
            self.slots = Vec::new();
            self.free = Vec::new();
            self.full = FullSlab::default();
            self.index = HashTable::new();
            self.timers = BinaryHeap::new();
            self.combiner.close_all();
        }
        // The panes go out `max` at a time once every flow is finished (and the table's
        // memory is free): sending flushed ones earlier would build the windows'
        // state while the table still holds its flows.
        flows_done && self.take_panes(max, panes)
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.index.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;

    const S: u64 = NS_PER_SEC;

    fn pkt(ts: u64, from_a: bool) -> Packet {
        let (a, b) = (Addr::from_v4([10, 0, 0, 1]), Addr::from_v4([10, 0, 0, 2]));
        let (src, dst, sport, dport) = if from_a {
            (a, b, 5000, 80)
        } else {
            (b, a, 80, 5000)
        };
        Packet {
            ts_ns: ts,
            protocol: 6,
            src,
            dst,
            sport,
            dport,
            ip_len: 60,
            frame_len: 74,
            ..Default::default()
        }
    }

    #[test]
    fn draining_in_parts_gives_the_same_records() {
        let config = FlowTableConfig {
            window: Some(crate::window::WindowConfig::default()),
            ..Default::default()
        };
        let fill = |t: &mut FlowTableState| {
            let mut out = Vec::new();
            for i in 0..1_000u16 {
                let p = Packet {
                    sport: 1000 + i,
                    ..pkt(u64::from(i) * S / 10, i % 2 == 0)
                };
                t.update(&p, &mut out);
            }
            assert!(out.is_empty());
        };
        let (mut whole, mut whole_panes) = (Vec::new(), Vec::new());
        let mut a = FlowTableState::new(config);
        fill(&mut a);
        a.drain(100 * S, &mut whole, &mut whole_panes);
        let (mut parts, mut part_panes) = (Vec::new(), Vec::new());
        let mut b = FlowTableState::new(config);
        fill(&mut b);
        let mut steps = 1;
        while !b.drain_some(100 * S, 64, &mut parts, &mut part_panes) {
            steps += 1;
        }
        assert_eq!(steps, 16);
        let key = |f: &FlowRecord| f.order_key();
        whole.sort_by_key(key);
        parts.sort_by_key(key);
        assert_eq!(whole, parts);
        let pkey = |a: &PaneAgg| (a.key, a.pane_start_ns);
        whole_panes.sort_by_key(pkey);
        part_panes.sort_by_key(pkey);
        assert_eq!(whole_panes, part_panes);
        assert_eq!(b.open_flows(), 0);
    }

    #[test]
    fn idle_gap_splits_a_flow_at_the_deadline() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 120 * S,
            ..Default::default()
        });
        let mut out = Vec::new();
        for p in [pkt(0, true), pkt(10 * S, false), pkt(200 * S, true)] {
            t.update(&p, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_ns, 130 * S);
        assert_eq!(out[0].end_reason, EndReason::Idle);
        assert_eq!((out[0].src2dst.packets, out[0].dst2src.packets), (1, 1));
        t.drain(200 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].first_ns, 200 * S);
        assert_eq!(out[1].end_reason, EndReason::EndOfInput);
        assert_eq!(t.stats().flows, 2);
    }

    #[test]
    fn frontier_expires_exactly_at_the_deadline() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 120 * S,
            ..Default::default()
        });
        let mut out = Vec::new();
        t.update(&pkt(0, true), &mut out);
        t.update(&pkt(5 * S, true), &mut out);
        t.expire(125 * S - 1, &mut out, &mut Vec::new());
        assert!(
            out.is_empty(),
            "a packet at 125 s - 1 ns could still extend the flow"
        );
        t.expire(125 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_ns, 125 * S);
        assert_eq!(out[0].last_ns, 5 * S);
        assert_eq!(t.open_flows(), 0);
    }

    /// A flow cut at the active timeout goes on in a record marked `continued`, with the
    /// cut flow's orientation, whether the frontier ended the cut flow before the next
    /// packet came or the packet found it past its deadline; after the idle timeout the
    /// next packet starts an unrelated flow.
    #[test]
    fn records_after_an_active_cut_continue_it() {
        let config = FlowTableConfig {
            idle_timeout_ns: 120 * S,
            active_timeout_ns: 300 * S,
            ..Default::default()
        };
        // Client a sends every 100 s; the packet at 400 s (after the cut at 300 s) comes
        // from the server b.
        let packets = [
            pkt(0, true),
            pkt(100 * S, true),
            pkt(200 * S, true),
            pkt(290 * S, true),
            pkt(400 * S, false),
            pkt(450 * S, true),
        ];
        let run = |expire_between: bool| {
            let mut t = FlowTableState::new(config);
            let mut out = Vec::new();
            for p in &packets {
                if expire_between {
                    t.expire(p.ts_ns.saturating_sub(1), &mut out, &mut Vec::new());
                }
                t.update(p, &mut out);
            }
            t.drain(450 * S, &mut out, &mut Vec::new());
            out
        };
        let (by_frontier, by_packet) = (run(true), run(false));
        assert_eq!(by_frontier, by_packet);
        let out = by_packet;
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].end_reason, out[0].continued),
            (EndReason::Active, false)
        );
        assert_eq!(out[0].end_ns, 300 * S);
        let next = &out[1];
        assert!(next.continued);
        assert_eq!(next.first_ns, 400 * S);
        assert_eq!(
            (
                next.src,
                next.sport,
                next.src2dst.packets,
                next.dst2src.packets
            ),
            (Addr::from_v4([10, 0, 0, 1]), 5000, 1, 1),
            "the client stays the source"
        );

        // The same, with the next packet 500 s after the cut flow's last: a new flow.
        let mut t = FlowTableState::new(config);
        let mut out = Vec::new();
        for p in &packets[..4] {
            t.update(p, &mut out);
        }
        t.expire(600 * S, &mut out, &mut Vec::new());
        assert!(t.cuts.is_empty(), "cuts are dropped after their deadline");
        t.update(&pkt(790 * S, false), &mut out);
        t.drain(790 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 2);
        assert!(!out[1].continued);
        assert_eq!(out[1].src, Addr::from_v4([10, 0, 0, 2]));
    }

    /// Only the packet that opens a UDP flow is announced, when it is large enough; not
    /// the flow's later packets, not a small opener, not TCP, not a continuation.
    #[test]
    fn large_udp_openers_are_announced() {
        let udp = |ts, from_a, ip_len| Packet {
            protocol: 17,
            ip_len,
            ..pkt(ts, from_a)
        };
        let mut t = FlowTableState::new(FlowTableConfig {
            announce_udp_min_bytes: 512,
            active_timeout_ns: 300 * S,
            ..Default::default()
        });
        let mut out = Vec::new();
        let mut openings = Vec::new();
        t.update(&udp(0, false, 1400), &mut out); // a response opens the flow
        t.update(&udp(S, true, 1400), &mut out); // the host answers: same flow
        t.update(&udp(2 * S, false, 1400), &mut out);
        t.take_openings(&mut openings);
        assert_eq!(openings.len(), 1);
        let o = openings[0];
        assert_eq!((o.ts_ns, o.sport, o.dport, o.ip_len), (0, 80, 5000, 1400));
        assert_eq!(o.src, Addr::from_v4([10, 0, 0, 2]));
        // Kept alive, cut by the active timeout and continued: no new opening.
        for ts in [100, 200, 290, 301] {
            t.update(&udp(ts * S, false, 1400), &mut out);
        }
        // A new flow after the idle timeout, with a small first datagram: none either.
        t.update(&udp(1000 * S, false, 100), &mut out);
        let mut tcp = pkt(2000 * S, false);
        tcp.ip_len = 1400;
        t.update(&tcp, &mut out);
        openings.clear();
        t.take_openings(&mut openings);
        assert!(openings.is_empty(), "{openings:?}");
        assert!(out.iter().any(|f| f.continued));
    }

    #[test]
    fn source_is_the_first_sender() {
        let mut t = FlowTableState::new(FlowTableConfig::default());
        let mut out = Vec::new();
        t.update(&pkt(0, false), &mut out);
        t.update(&pkt(1, true), &mut out);
        t.update(&pkt(2, true), &mut out);
        t.drain(2, &mut out, &mut Vec::new());
        let f = &out[0];
        assert_eq!(
            (f.src, f.sport, f.dport),
            (Addr::from_v4([10, 0, 0, 2]), 80, 5000)
        );
        assert_eq!((f.src2dst.packets, f.dst2src.packets), (1, 2));
        assert_eq!(f.src2dst.bytes + f.dst2src.bytes, 180);
    }

    /// An echo request orients its flow like a SYN: the requester is the source even
    /// when the capture caught the reply first; other ICMP messages are no echo.
    #[test]
    fn echo_requester_is_the_source() {
        let icmp = |ts, from_a, icmp_type: u16| {
            let p = pkt(ts, from_a);
            Packet {
                protocol: proto::ICMP,
                sport: icmp_type << 8,
                dport: 77, // echo identifier
                ..p
            }
        };
        let mut t = FlowTableState::new(FlowTableConfig::default());
        let mut out = Vec::new();
        t.update(&icmp(0, false, 0), &mut out); // a reply from .2 first
        t.update(&icmp(S, true, 8), &mut out); // .1 asks
        t.update(&icmp(S + 1, false, 0), &mut out);
        t.drain(10 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert!(f.icmp_echo);
        assert_eq!(f.src, Addr::from_v4([10, 0, 0, 1]));
        assert_eq!((f.src2dst.packets, f.dst2src.packets), (1, 2));
        // A port unreachable (type 3) is not an echo; the first sender stays the source.
        let mut t = FlowTableState::new(FlowTableConfig::default());
        out.clear();
        t.update(&icmp(0, false, 3), &mut out);
        t.drain(10 * S, &mut out, &mut Vec::new());
        assert!(!out[0].icmp_echo);
        assert_eq!(out[0].src, Addr::from_v4([10, 0, 0, 2]));
    }

    #[test]
    fn end_of_input_reason_depends_only_on_the_input_end() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 10 * S,
            ..Default::default()
        });
        let mut out = Vec::new();
        t.update(&pkt(0, true), &mut out); // quiet for 20 s before the input ends: idle
        t.update(
            &Packet {
                sport: 6000,
                ..pkt(15 * S, true)
            },
            &mut out,
        ); // active at the end
        t.drain(20 * S, &mut out, &mut Vec::new());
        out.sort_by_key(|f| f.first_ns);
        assert_eq!(
            (out[0].end_reason, out[0].end_ns),
            (EndReason::Idle, 10 * S)
        );
        assert_eq!(
            (out[1].end_reason, out[1].end_ns),
            (EndReason::EndOfInput, u64::MAX)
        );
    }

    #[test]
    fn restarted_flow_keeps_a_valid_timer() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 10 * S,
            ..Default::default()
        });
        let mut out = Vec::new();
        t.update(&pkt(0, true), &mut out);
        t.update(&pkt(50 * S, true), &mut out); // closes the first flow (end 10 s), opens a second
        assert_eq!(out.len(), 1);
        t.expire(59 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 1);
        t.expire(60 * S, &mut out, &mut Vec::new());
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].end_ns, 60 * S);
    }
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn open_flow_state_stays_compact() {
        // Key 56 + times and pane 40 + generation, slab index and bits 16 + two lone
        // packets 2 × 24.
        assert_eq!(std::mem::size_of::<super::OpenFlow>(), 160);
        assert_eq!(std::mem::align_of::<super::OpenFlow>(), 8);
        // Two directions 2 × 128 + bidirectional gaps 32.
        assert_eq!(std::mem::size_of::<super::FullStats>(), 288);
        assert_eq!(std::mem::size_of::<crate::panes::PaneAcc>(), 96);
    }
}
