//! The flow table: packets in, finished bidirectional flows (and window panes) out, in
//! event time.

use std::cell::RefCell;
use std::rc::Rc;

use timely::dataflow::channels::pact::{ExchangeCore, Pipeline};
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use crate::flow::{FlowOpening, FlowRecord};
use crate::flow_key::FlowKey;
pub use crate::flow_state::{FlowTableConfig, FlowTableState, FlowTableStats};
use crate::order::EventTimeBuffer;
use crate::packet::Packet;
use crate::wide_batch::WideBatches;
use crate::window::PaneAgg;

/// Flows finished per activation when the input has ended.
const DRAIN_STEP: usize = 16_384;

/// Shared handle to a worker's [`FlowTableStats`].
pub type FlowTableStatsHandle = Rc<RefCell<FlowTableStats>>;

/// What [`FlowTable::flow_table_with_openings`] returns: finished flows, window panes,
/// openings of new UDP flows and the worker's counters.
pub type FlowTableOutputs<'scope> = (
    StreamVec<'scope, u64, FlowRecord>,
    StreamVec<'scope, u64, PaneAgg>,
    StreamVec<'scope, u64, FlowOpening>,
    FlowTableStatsHandle,
);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Out {
    Flow(FlowRecord),
    Pane(PaneAgg),
    Opening(FlowOpening),
}

/// Groups packets into bidirectional flows by canonical 5-tuple and context, with full
/// per-direction statistics, and (when `config.window` is set) cuts their traffic into
/// window panes.
///
/// Packets are exchanged by the stable hash of their [`FlowKey`], held until the frontier
/// passes their capture time, and then applied in event-time order. A flow ends at its
/// idle or active deadline or after its TCP close (see [`crate::flow_state`]) — when the
/// frontier passes that deadline, whether or not another packet ever arrives — or at the
/// end of input.
///
/// `end_of_input` carries, from every source, the latest capture time it read; it must
/// reach every worker (e.g. `.broadcast()`). When both inputs are complete, flows whose
/// deadline is at or before the latest of those times end with that deadline's reason,
/// the others as `EndOfInput` (see [`FlowTableState::drain`]).
///
/// Every [`PaneAgg`] of a pane ending at `e` is emitted at a timely time below `e`, so a
/// downstream operator has all of a pane once its input frontier reaches `e`.
///
/// # Examples
/// ```
/// use flowtide_dataflows::operators::{FlowTable, FlowTableConfig};
/// use flowtide_dataflows::packet::{Addr, Packet};
/// use flowtide_dataflows::window::WindowConfig;
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Event;
///
/// let (flows, panes) = timely::example(|scope| {
///     let p = |ts, sport| Packet { ts_ns: ts, protocol: 17, ip_len: 100, sport, dport: 53,
///         src: Addr::from_v4([10, 0, 0, 1]), dst: Addr::from_v4([10, 0, 0, 2]), ..Default::default() };
///     let packets = vec![p(1, 1000), p(2, 1000), p(3, 1001)];
///     let end_of_input = vec![3u64].to_stream(scope).container::<Vec<_>>();
///     let config = FlowTableConfig { window: Some(WindowConfig::default()), ..Default::default() };
///     let (flows, panes, _stats) = packets.to_stream(scope).container::<Vec<_>>()
///         .flow_table(end_of_input, config);
///     (flows.capture(), panes.capture())
/// });
/// fn data<T>(r: std::sync::mpsc::Receiver<Event<u64, Vec<T>>>) -> Vec<T> {
///     r.try_iter()
///         .flat_map(|e| match e { Event::Messages(_, v) => v, Event::Progress(_) => Vec::new() })
///         .collect()
/// }
/// let records = data(flows);
/// assert_eq!(records.len(), 2);
/// assert_eq!(records.iter().map(|f| f.src2dst.packets).sum::<u64>(), 3);
/// // One channel, one host, one service, all in the first minute.
/// let panes = data(panes);
/// assert_eq!(panes.len(), 3);
/// assert!(panes.iter().all(|a| a.stats.packets == 3 && a.stats.flows_started == 2));
/// ```
pub trait FlowTable<'scope> {
    /// Builds the flow table; returns finished flows, window panes (empty unless
    /// `config.window` is set) and a handle to the worker's counters.
    fn flow_table(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> (
        StreamVec<'scope, u64, FlowRecord>,
        StreamVec<'scope, u64, PaneAgg>,
        FlowTableStatsHandle,
    );

    /// [`FlowTable::flow_table`], also returning the announced openings of new UDP flows
    /// (`config.announce_udp_min_bytes`), each emitted at a timely time at or before its
    /// packet's capture time.
    fn flow_table_with_openings(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> FlowTableOutputs<'scope>;
}

impl<'scope> FlowTable<'scope> for StreamVec<'scope, u64, Packet> {
    fn flow_table(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> (
        StreamVec<'scope, u64, FlowRecord>,
        StreamVec<'scope, u64, PaneAgg>,
        FlowTableStatsHandle,
    ) {
        let (flows, panes, _openings, stats) = self.flow_table_with_openings(
            end_of_input,
            FlowTableConfig {
                announce_udp_min_bytes: 0,
                ..config
            },
        );
        (flows, panes, stats)
    }

    fn flow_table_with_openings(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: FlowTableConfig,
    ) -> FlowTableOutputs<'scope> {
        let stats: FlowTableStatsHandle = Rc::default();
        let stats_out = Rc::clone(&stats);
        // Packets are small and many: ship them in wide messages.
        let pact =
            ExchangeCore::<WideBatches<Packet>, _>::new_core(|p: &Packet| FlowKey::of(p).0.route());
        let scope = self.scope();
        let stream = self.binary_frontier(
            end_of_input,
            pact,
            Pipeline,
            "FlowTable",
            move |cap: Capability<u64>, info| {
                let activator = scope.activator_for(info.address);
                let mut cap = Some(cap);
                let mut table = FlowTableState::new(config);
                let mut buffer = EventTimeBuffer::default();
                let mut end_of_input_ns = 0u64;
                let mut done: Vec<FlowRecord> = Vec::new();
                let mut panes: Vec<PaneAgg> = Vec::new();
                let mut openings: Vec<FlowOpening> = Vec::new();
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
                    if finished {
                        // Every packet is in: release the buffer's memory, sized by
                        // how far the reader ran ahead, for the end-of-input work.
                        buffer = EventTimeBuffer::default();
                    }
                    table.take_openings(&mut openings);
                    // Closed panes, and at the end flows, go out a part per activation, so
                    // that the records (and what downstream makes of them) are not all in
                    // flight at once: a pane of a spoofed-source flood has millions of keys.
                    let mut drained = false;
                    let mut panes_out = true;
                    match now {
                        Some(t) => {
                            panes_out = table.expire_some(t, DRAIN_STEP, &mut done, &mut panes);
                        }
                        None if finished => {
                            drained = table.drain_some(
                                end_of_input_ns,
                                DRAIN_STEP,
                                &mut done,
                                &mut panes,
                            );
                        }
                        None => {}
                    }
                    if !done.is_empty() || !panes.is_empty() || !openings.is_empty() {
                        // `held` is at the previous frontier, below the end of every pane
                        // still open then (the contract downstream relies on), and at or
                        // before every packet released since.
                        let mut session = output.session(&*held);
                        session.give_iterator(
                            done.drain(..)
                                .map(Out::Flow)
                                .chain(panes.drain(..).map(Out::Pane))
                                .chain(openings.drain(..).map(Out::Opening)),
                        );
                    }
                    *stats.borrow_mut() = table.stats();
                    match now {
                        // The rest of the closed panes go out at this time, before the
                        // capability moves past them.
                        Some(_) if !panes_out => activator.activate(),
                        Some(t) => held.downgrade(&t),
                        None if finished && drained => cap = None,
                        None if finished => activator.activate(),
                        None => {}
                    }
                }
            },
        );
        let mut split = stream.partition(3, |o: Out| match o {
            Out::Flow(_) => (0, o),
            Out::Pane(_) => (1, o),
            Out::Opening(_) => (2, o),
        });
        let openings = split.pop().expect("three parts").flat_map(|o| match o {
            Out::Opening(x) => Some(x),
            _ => None,
        });
        let panes = split.pop().expect("three parts").flat_map(|o| match o {
            Out::Pane(a) => Some(a),
            _ => None,
        });
        let flows = split.pop().expect("three parts").flat_map(|o| match o {
            Out::Flow(f) => Some(f),
            _ => None,
        });
        (flows, panes, openings, stats_out)
    }
}
