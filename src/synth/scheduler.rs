//! The event loop: a priority queue of active flows keyed by the time of their next
//! packet, new flows arriving as a Poisson process whose rate is steered so that the
//! packet rate follows the requested one.
//!
//! Memory is bounded by the number of concurrently active flows, which depends on the
//! packet rate and the flow models, never on the number of packets generated.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::frames::FrameBuf;
use super::rng::Rng;
use super::topology::World;
use super::traffic::{self, Flow, Sizing};
use super::SynthOptions;

/// Latest start time: a classic pcap cannot represent seconds beyond `u32::MAX`, and
/// this leaves room for any capture length without overflow.
pub const MAX_START_NS: u64 = (u32::MAX as u64 - 100 * 86_400) * 1_000_000_000;
/// Mean packets per flow of the default mix, a prior for the arrival rate.
const MEAN_PACKETS_PER_FLOW: f64 = 30.0;
/// Time constant of the rate controller, seconds.
const TAU_SECS: f64 = 1.0;
/// Packets committed ahead of the clock, seconds' worth (flows spread their packets
/// over their lifetime, so the controller must run ahead).
const LEAD_SECS: f64 = 1.5;
/// Time constant of the emitted-packet term, seconds.
const EMITTED_TAU_SECS: f64 = 0.5;
/// Weight of the committed-packet term.
const COMMITTED_WEIGHT: f64 = 1.0;
/// Weight of the emitted-packet term.
const EMITTED_WEIGHT: f64 = 1.0;
/// Largest share of the packet rate one flow's bandwidth may reach.
const MAX_FLOW_SHARE: f64 = 0.1;
/// Largest transfer, in seconds' worth of packets at the requested rate.
const MAX_TRANSFER_SECS: f64 = 0.5;

/// Steers the flow arrival rate (and, with a flow count hint, the transfer sizes) so
/// that the packets committed by started flows track `rate × elapsed`.
#[derive(Clone, Debug)]
struct Controller {
    rate: f64,
    start: u64,
    committed: f64,
    emitted: f64,
    flows: f64,
    /// With a flow count hint: the fixed arrival rate (flows/s) and the initial log2
    /// size scale.
    hint: Option<(f64, f64)>,
    max_bytes: f64,
    max_bps: f64,
}

impl Controller {
    fn new(opts: &SynthOptions, rate: f64) -> Controller {
        let hint = opts.flows_hint.filter(|&f| f > 0).map(|flows| {
            let duration = opts.packets.max(1) as f64 / rate;
            let per_flow = opts.packets.max(1) as f64 / flows as f64;
            (
                flows as f64 / duration,
                (per_flow / MEAN_PACKETS_PER_FLOW).log2(),
            )
        });
        Controller {
            rate,
            start: opts.start_ns.min(MAX_START_NS),
            committed: 0.0,
            emitted: 0.0,
            flows: 0.0,
            hint,
            max_bytes: (rate * MAX_TRANSFER_SECS * 1400.0).max(2e6),
            max_bps: rate * MAX_FLOW_SHARE * 1200.0 * 8.0,
        }
    }

    /// Normalised shortfall at time `now`: of packets committed by started flows
    /// (which keeps the long-run rate) and of packets actually emitted (which evens out
    /// the short-term rate).
    fn deficit(&self, now: u64) -> f64 {
        let elapsed = now.saturating_sub(self.start) as f64 * 1e-9;
        let committed =
            (self.rate * (elapsed + LEAD_SECS) - self.committed) / (self.rate * TAU_SECS);
        let emitted = (self.rate * elapsed - self.emitted) / (self.rate * EMITTED_TAU_SECS);
        COMMITTED_WEIGHT * committed + EMITTED_WEIGHT * emitted
    }

    /// Arrival rate (flows/s) and sizing for flows starting at `now`.
    fn settings(&self, now: u64) -> (f64, Sizing) {
        let e = self.deficit(now);
        match self.hint {
            None => {
                let mean = (self.committed + 8.0 * MEAN_PACKETS_PER_FLOW) / (self.flows + 8.0);
                let lambda = self.rate / mean * e.clamp(-4.0, 4.0).exp2();
                (
                    lambda,
                    Sizing {
                        scale: 1.0,
                        max_bytes: self.max_bytes,
                        max_bps: self.max_bps,
                    },
                )
            }
            Some((lambda, log_scale)) => {
                let want = e + log_scale;
                let got = want.clamp(-6.0, 10.0);
                let lambda = lambda * (want - got).clamp(-4.0, 4.0).exp2();
                (
                    lambda,
                    Sizing {
                        scale: got.exp2(),
                        max_bytes: self.max_bytes * got.exp2().max(1.0),
                        max_bps: self.max_bps,
                    },
                )
            }
        }
    }

    fn record(&mut self, estimate: u64) {
        self.committed += estimate as f64;
        self.flows += 1.0;
    }
}

/// An active flow and whether it has produced a packet yet.
#[derive(Debug)]
struct Slot {
    flow: Flow,
    emitted: bool,
}

/// The packet that [`Scheduler::next`] built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// Its timestamp.
    pub ts_ns: u64,
    /// It is the first packet of its flow.
    pub first_of_flow: bool,
}

/// Interleaves the packets of all active flows in time order.
#[derive(Debug)]
pub struct Scheduler {
    world: World,
    seed: u64,
    rng: Rng,
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    seq: u64,
    next_arrival: u64,
    spawned: u64,
    controller: Controller,
    clock: u64,
}

impl Scheduler {
    /// A scheduler for `opts`; the first flow starts at `opts.start_ns`.
    pub fn new(opts: &SynthOptions) -> Scheduler {
        let rate = if opts.rate_pps.is_finite() && opts.rate_pps > 0.0 {
            opts.rate_pps
        } else {
            SynthOptions::default().rate_pps
        };
        let start = opts.start_ns.min(MAX_START_NS);
        Scheduler {
            world: World::new(opts.seed, opts.hosts),
            seed: opts.seed,
            rng: Rng::stream(opts.seed, u64::MAX),
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            next_arrival: start,
            spawned: 0,
            controller: Controller::new(opts, rate),
            clock: start,
        }
    }

    /// Number of flows currently active.
    pub fn active(&self) -> usize {
        self.heap.len()
    }

    fn schedule(&mut self, ts: u64, slot: u32) {
        self.seq += 1;
        self.heap.push(Reverse((ts, self.seq, slot)));
    }

    /// Starts the flow arriving now and draws the next arrival time.
    fn arrive(&mut self) {
        let now = self.next_arrival;
        let (lambda, sizing) = self.controller.settings(now);
        let flow_rng = Rng::stream(self.seed, self.spawned);
        self.spawned += 1;
        let (flow, estimate) = traffic::spawn(flow_rng, &self.world, now, sizing);
        self.controller.record(estimate);
        if let Some(ts) = flow.next_ts() {
            let slot = Slot {
                flow,
                emitted: false,
            };
            let index = match self.free.pop() {
                Some(i) => {
                    self.slots[i as usize] = Some(slot);
                    i
                }
                None => {
                    self.slots.push(Some(slot));
                    (self.slots.len() - 1) as u32
                }
            };
            self.schedule(ts.max(now), index);
        }
        let gap = self.rng.exp(1e9 / lambda.max(1e-6));
        self.next_arrival = now + (gap.min(3.6e12) as u64).max(1);
    }

    /// Builds the next packet (in time order) into `fb`.
    pub fn next(&mut self, fb: &mut FrameBuf) -> Emitted {
        loop {
            let due = self.heap.peek().map(|Reverse((t, _, _))| *t);
            if due.is_none_or(|t| self.next_arrival <= t) {
                self.arrive();
                continue;
            }
            let Some(Reverse((ts, _, index))) = self.heap.pop() else {
                continue;
            };
            let Some(slot) = self.slots.get_mut(index as usize).and_then(Option::as_mut) else {
                continue;
            };
            let ts = ts.max(self.clock);
            fb.clear();
            let next = slot.flow.step(ts, &self.world, fb);
            let built = !fb.bytes().is_empty();
            let first = built && !slot.emitted;
            slot.emitted |= built;
            match next {
                Some(t) => self.schedule(t.max(ts), index),
                None => {
                    self.slots[index as usize] = None;
                    self.free.push(index);
                }
            }
            self.clock = ts;
            if !built {
                continue;
            }
            self.controller.emitted += 1.0;
            return Emitted {
                ts_ns: ts,
                first_of_flow: first,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_in_time_order_and_state_stays_bounded() {
        let opts = SynthOptions {
            packets: 0,
            seed: 11,
            ..SynthOptions::default()
        };
        let mut s = Scheduler::new(&opts);
        let mut fb = FrameBuf::new();
        let mut last = 0;
        let mut peak = [0usize; 2];
        for i in 0..240_000 {
            let e = s.next(&mut fb);
            assert!(e.ts_ns >= last);
            assert!(!fb.bytes().is_empty());
            last = e.ts_ns;
            let half = usize::from(i >= 120_000);
            peak[half] = peak[half].max(s.active());
        }
        // Active flows (and so memory) do not grow with the number of packets.
        assert!(peak[1] < 2 * peak[0] + 100, "peaks {peak:?}");
        assert!(
            s.slots.len() < 3 * peak[0] + 100,
            "slots {} for peaks {peak:?}",
            s.slots.len()
        );
    }
}
