//! The flow table: packets in, finished bidirectional flows out, in event time.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use crate::flow::{DirectionCounters, EndReason, FlowRecord};
use crate::flow_key::FlowKey;
use crate::hash::FastMap;
use crate::order::EventTimeBuffer;
use crate::packet::Packet;
use crate::time::NS_PER_SEC;

/// Flow-table settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTableConfig {
    /// A flow ends when no packet arrived for this long (event time, ns).
    pub idle_timeout_ns: u64,
}

impl Default for FlowTableConfig {
    fn default() -> Self {
        FlowTableConfig {
            idle_timeout_ns: 120 * NS_PER_SEC,
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
}

/// Shared handle to a worker's [`FlowTableStats`].
pub type FlowTableStatsHandle = Rc<RefCell<FlowTableStats>>;

/// Per-flow state while the flow is open.
#[derive(Clone, Debug)]
struct OpenFlow {
    first_ns: u64,
    last_ns: u64,
    /// The deadline of this flow's entry in the timer heap.
    timer_ns: u64,
    /// True when the first packet travelled lo → hi.
    first_forward: bool,
    ip_version: u8,
    lo2hi: DirectionCounters,
    hi2lo: DirectionCounters,
}

impl OpenFlow {
    fn new(p: &Packet, forward: bool, idle: u64) -> Self {
        OpenFlow {
            first_ns: p.ts_ns,
            last_ns: p.ts_ns,
            timer_ns: p.ts_ns.saturating_add(idle),
            first_forward: forward,
            ip_version: p.ip_version,
            lo2hi: DirectionCounters::default(),
            hi2lo: DirectionCounters::default(),
        }
    }

    #[inline]
    fn add(&mut self, p: &Packet, forward: bool) {
        self.last_ns = p.ts_ns;
        if forward {
            self.lo2hi.add(p);
        } else {
            self.hi2lo.add(p);
        }
    }

    fn finish(self, key: FlowKey, end_ns: u64, end_reason: EndReason) -> FlowRecord {
        let (src, dst, src2dst, dst2src) = if self.first_forward {
            (key.lo, key.hi, self.lo2hi, self.hi2lo)
        } else {
            (key.hi, key.lo, self.hi2lo, self.lo2hi)
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
            src2dst,
            dst2src,
        }
    }
}

/// The state of one worker's flow table, independent of timely (unit-testable).
#[derive(Debug, Default)]
pub struct FlowTableState {
    config: FlowTableConfig,
    flows: FastMap<FlowKey, OpenFlow>,
    timers: BinaryHeap<Reverse<(u64, FlowKey)>>,
    stats: FlowTableStats,
}

impl FlowTableState {
    /// An empty table.
    pub fn new(config: FlowTableConfig) -> Self {
        FlowTableState {
            config,
            ..Default::default()
        }
    }

    /// Accounts one packet; packets must come in event-time order. A flow that the packet
    /// finds idle for longer than the timeout is finished into `out` first.
    #[inline]
    pub fn update(&mut self, p: &Packet, out: &mut Vec<FlowRecord>) {
        let idle = self.config.idle_timeout_ns;
        let (key, forward) = FlowKey::of(p);
        self.stats.packets += 1;
        match self.flows.get_mut(&key) {
            Some(flow) if p.ts_ns >= flow.last_ns.saturating_add(idle) => {
                let end = flow.last_ns.saturating_add(idle);
                let mut fresh = OpenFlow::new(p, forward, idle);
                fresh.add(p, forward);
                fresh.timer_ns = flow.timer_ns; // the pending heap entry now belongs to `fresh`
                let old = std::mem::replace(flow, fresh);
                self.stats.flows += 1;
                out.push(old.finish(key, end, EndReason::Idle));
            }
            Some(flow) => flow.add(p, forward),
            None => {
                let mut flow = OpenFlow::new(p, forward, idle);
                flow.add(p, forward);
                self.timers.push(Reverse((flow.timer_ns, key)));
                self.flows.insert(key, flow);
                self.stats.peak_open_flows =
                    self.stats.peak_open_flows.max(self.flows.len() as u64);
            }
        }
    }

    /// Finishes every flow whose idle deadline is at or before `frontier` (no packet that
    /// could extend it can still arrive).
    pub fn expire(&mut self, frontier: u64, out: &mut Vec<FlowRecord>) {
        let idle = self.config.idle_timeout_ns;
        while let Some(Reverse((deadline, key))) = self.timers.peek().copied() {
            if deadline > frontier {
                break;
            }
            self.timers.pop();
            let Some(flow) = self.flows.get_mut(&key) else {
                continue;
            };
            if flow.timer_ns != deadline {
                continue; // stale entry
            }
            let due = flow.last_ns.saturating_add(idle);
            if due <= frontier {
                if let Some(flow) = self.flows.remove(&key) {
                    self.stats.flows += 1;
                    out.push(flow.finish(key, due, EndReason::Idle));
                }
            } else {
                flow.timer_ns = due;
                self.timers.push(Reverse((due, key)));
            }
        }
    }

    /// Finishes every open flow at the end of input. `end_of_input_ns` is the latest
    /// capture time in the whole input (all feeds, all workers): a flow whose idle
    /// deadline is at or before it had ended by idleness; the others were still active
    /// when the input ended. This makes the end reason independent of how far the
    /// frontier happened to get before the input closed.
    pub fn drain(&mut self, end_of_input_ns: u64, out: &mut Vec<FlowRecord>) {
        let idle = self.config.idle_timeout_ns;
        self.timers.clear();
        self.stats.flows += self.flows.len() as u64;
        for (key, flow) in self.flows.drain() {
            let due = flow.last_ns.saturating_add(idle);
            if due <= end_of_input_ns {
                out.push(flow.finish(key, due, EndReason::Idle));
            } else {
                out.push(flow.finish(key, u64::MAX, EndReason::EndOfInput));
            }
        }
    }

    /// Flows currently open.
    pub fn open_flows(&self) -> usize {
        self.flows.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }
}

/// Groups packets into bidirectional flows by canonical 5-tuple and context.
///
/// Packets are exchanged by the stable hash of their [`FlowKey`], held until the frontier
/// passes their capture time, and then applied in event-time order. A flow ends after
/// `idle_timeout_ns` without packets — when the frontier passes that deadline, whether or
/// not another packet ever arrives — or at the end of input. Flow records are emitted at
/// the frontier's time.
///
/// `end_of_input` carries, from every source, the latest capture time it read; it must
/// reach every worker (e.g. `.broadcast()`). When both inputs are complete, flows whose
/// idle deadline is at or before the latest of those times end as idle, the others as
/// `EndOfInput` (see [`FlowTableState::drain`]).
///
/// # Examples
/// ```
/// use flowtide_dataflows::operators::{FlowTable, FlowTableConfig};
/// use flowtide_dataflows::packet::{Addr, Packet};
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Event;
///
/// let flows = timely::example(|scope| {
///     let p = |ts, sport| Packet { ts_ns: ts, protocol: 17, ip_len: 100, sport, dport: 53,
///         src: Addr::from_v4([10, 0, 0, 1]), dst: Addr::from_v4([10, 0, 0, 2]), ..Default::default() };
///     let packets = vec![p(1, 1000), p(2, 1000), p(3, 1001)];
///     let end_of_input = vec![3u64].to_stream(scope).container::<Vec<_>>();
///     let (stream, _stats) = packets.to_stream(scope).container::<Vec<_>>()
///         .flow_table(end_of_input, FlowTableConfig::default());
///     stream.capture()
/// });
/// let records: Vec<_> = flows.try_iter()
///     .flat_map(|event| match event { Event::Messages(_, v) => v, Event::Progress(_) => Vec::new() })
///     .collect();
/// assert_eq!(records.len(), 2);
/// assert_eq!(records.iter().map(|f| f.src2dst.packets).sum::<u64>(), 3);
/// ```
pub trait FlowTable<'scope> {
    /// Builds the flow table; returns finished flows and a handle to the worker's counters.
    fn flow_table(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> (StreamVec<'scope, u64, FlowRecord>, FlowTableStatsHandle);
}

impl<'scope> FlowTable<'scope> for StreamVec<'scope, u64, Packet> {
    fn flow_table(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> (StreamVec<'scope, u64, FlowRecord>, FlowTableStatsHandle) {
        let stats: FlowTableStatsHandle = Rc::default();
        let stats_out = Rc::clone(&stats);
        let pact = Exchange::new(|p: &Packet| FlowKey::of(p).0.route());
        let stream = self.binary_frontier(
            end_of_input,
            pact,
            Pipeline,
            "FlowTable",
            move |cap: Capability<u64>, _info| {
                let mut cap = Some(cap);
                let mut table = FlowTableState::new(config);
                let mut buffer = EventTimeBuffer::default();
                let mut end_of_input_ns = 0u64;
                let mut done: Vec<FlowRecord> = Vec::new();
                move |(packets, packets_frontier), (ends, ends_frontier), output| {
                    packets.for_each(|_time, data| buffer.extend_from(data));
                    ends.for_each(|_time, data| {
                        end_of_input_ns = data.drain(..).fold(end_of_input_ns, u64::max);
                    });
                    let Some(held) = cap.as_mut() else { return };
                    let now = packets_frontier.frontier().iter().min().copied();
                    let finished = now.is_none() && ends_frontier.is_empty();
                    let horizon = now.unwrap_or(u64::MAX);
                    if horizon <= *held.time() && !finished {
                        return; // nothing new is complete
                    }
                    for p in buffer.release(horizon) {
                        table.update(&p, &mut done);
                    }
                    match now {
                        Some(t) => table.expire(t, &mut done),
                        None if finished => table.drain(end_of_input_ns, &mut done),
                        None => {}
                    }
                    if !done.is_empty() {
                        output.session(&*held).give_container(&mut done);
                        done.clear();
                    }
                    *stats.borrow_mut() = table.stats();
                    match now {
                        Some(t) => held.downgrade(&t),
                        None if finished => cap = None,
                        None => {}
                    }
                }
            },
        );
        (stream, stats_out)
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
    fn idle_gap_splits_a_flow_at_the_deadline() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 120 * S,
        });
        let mut out = Vec::new();
        for p in [pkt(0, true), pkt(10 * S, false), pkt(200 * S, true)] {
            t.update(&p, &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_ns, 130 * S);
        assert_eq!(out[0].end_reason, EndReason::Idle);
        assert_eq!((out[0].src2dst.packets, out[0].dst2src.packets), (1, 1));
        t.drain(200 * S, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].first_ns, 200 * S);
        assert_eq!(out[1].end_reason, EndReason::EndOfInput);
        assert_eq!(t.stats().flows, 2);
    }

    #[test]
    fn frontier_expires_exactly_at_the_deadline() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 120 * S,
        });
        let mut out = Vec::new();
        t.update(&pkt(0, true), &mut out);
        t.update(&pkt(5 * S, true), &mut out);
        t.expire(125 * S - 1, &mut out);
        assert!(
            out.is_empty(),
            "a packet at 125 s - 1 ns could still extend the flow"
        );
        t.expire(125 * S, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end_ns, 125 * S);
        assert_eq!(out[0].last_ns, 5 * S);
        assert_eq!(t.open_flows(), 0);
    }

    #[test]
    fn source_is_the_first_sender() {
        let mut t = FlowTableState::new(FlowTableConfig::default());
        let mut out = Vec::new();
        t.update(&pkt(0, false), &mut out);
        t.update(&pkt(1, true), &mut out);
        t.update(&pkt(2, true), &mut out);
        t.drain(2, &mut out);
        let f = &out[0];
        assert_eq!(
            (f.src, f.sport, f.dport),
            (Addr::from_v4([10, 0, 0, 2]), 80, 5000)
        );
        assert_eq!((f.src2dst.packets, f.dst2src.packets), (1, 2));
        assert_eq!(f.src2dst.bytes + f.dst2src.bytes, 180);
    }

    #[test]
    fn end_of_input_reason_depends_only_on_the_input_end() {
        let mut t = FlowTableState::new(FlowTableConfig {
            idle_timeout_ns: 10 * S,
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
        t.drain(20 * S, &mut out);
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
        });
        let mut out = Vec::new();
        t.update(&pkt(0, true), &mut out);
        t.update(&pkt(50 * S, true), &mut out); // closes the first flow (end 10 s), opens a second
        assert_eq!(out.len(), 1);
        t.expire(59 * S, &mut out);
        assert_eq!(out.len(), 1);
        t.expire(60 * S, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].end_ns, 60 * S);
    }
}
