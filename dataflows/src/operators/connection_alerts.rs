//! The connection-pattern rules ([`crate::connections`]), the scan rules
//! ([`crate::scans`]), the repeated SYN-ACK rule ([`crate::syn_acks`]), the half-open
//! burst rule ([`crate::half_open`]) and the UDP reflection rule ([`crate::reflection`])
//! as an operator on finished flows.

use timely::container::CapacityContainerBuilder as Cb;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Concat, Operator, ToStream};
use timely::dataflow::StreamVec;

use crate::alert::Alert;
use crate::baseline::DetectConfig;
use crate::connections::{Connection, ConnectionPatterns, Role};
use crate::flow::{FlowOpening, FlowRecord};
use crate::half_open::HalfOpenBursts;
use crate::reflection::Reflections;
use crate::scans::{shard, PortScans};
use crate::syn_acks::SynAckRepeats;

/// Beacon, brute-force, scan, repeated SYN-ACK, half-open burst and UDP reflection alerts
/// from finished flows.
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::flow::FlowRecord;
/// use flowtide_dataflows::operators::ConnectionAlerts;
/// use flowtide_dataflows::packet::Addr;
/// use timely::dataflow::operators::{Inspect, ToStream};
///
/// // A host opening a TLS connection to the same server every 60 s (± 3 s).
/// let flow = |i: u64| {
///     let mut f = FlowRecord::default();
///     f.src = Addr::from_v4([10, 0, 0, 5]);
///     f.dst = Addr::from_v4([198, 51, 100, 7]);
///     f.dport = 443;
///     f.key.protocol = 6;
///     f.src2dst.flags[0] = 1; // the initiator's SYN
///     f.dst2src.packets = 5;
///     f.first_ns = i * 60_000_000_000 + (i % 3) * 3_000_000_000;
///     f.end_ns = f.first_ns + 2_000_000_000;
///     f
/// };
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::example(move |scope| {
///     let ends = vec![40 * 60_000_000_000u64].to_stream(scope);
///     (0..40)
///         .map(flow)
///         .to_stream(scope)
///         .connection_alerts(ends, &DetectConfig::default())
///         .inspect(move |a| sink.lock().unwrap().push(a.clone()));
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].kind.name(), "beacon");
/// assert_eq!(alerts[0].metrics[0].value, 16.0); // judged from the 16th connection on
/// ```
pub trait ConnectionAlerts<'scope> {
    /// Judges every flow as a connection of its service channel (source, destination,
    /// destination port, protocol) and as a possible probe of its (source, destination)
    /// pair, in the order of the flows' end times once the frontier has passed them, and
    /// raises [`crate::connections`]' and [`crate::scans`]' alerts. Flows are routed by
    /// their source's scan shard ([`crate::scans::shard`]), which keeps a channel's and a
    /// pair's flows together too.
    ///
    /// `end_of_input` carries, from every source, the latest capture time it read, and
    /// must reach every worker (e.g. `.broadcast()`): a flow still open at the end of
    /// input (end time `u64::MAX`) is judged at the end, and its alerts carry the latest
    /// capture time of the input. Every alert is emitted at a timely time at or before
    /// its own time.
    fn connection_alerts(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert>;

    /// [`ConnectionAlerts::connection_alerts`], and [`crate::reflection`]'s rule on the
    /// openings of new UDP flows
    /// ([`crate::operators::FlowTable::flow_table_with_openings`], announced from
    /// `config.reflection.min_bytes`): an unsolicited response
    /// ([`crate::reflection::ReflectionRules::is_unsolicited`]) is routed to its
    /// destination's shard and judged at its capture time, with the flows.
    fn connection_alerts_with_openings(
        self,
        openings: StreamVec<'scope, u64, FlowOpening>,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert>;
}

impl<'scope> ConnectionAlerts<'scope> for StreamVec<'scope, u64, FlowRecord> {
    fn connection_alerts(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert> {
        let none = Vec::<FlowOpening>::new().to_stream(self.scope());
        self.connection_alerts_with_openings(none, end_of_input, config)
    }

    fn connection_alerts_with_openings(
        self,
        openings: StreamVec<'scope, u64, FlowOpening>,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert> {
        let config = config.clone();
        let reflection = config.reflection.clone();
        let responses = openings.flat_map(move |o| {
            reflection
                .is_unsolicited(&o)
                .then(|| Connection::of_opening(&o))
        });
        // A half-open attempt is also judged on its service's shard.
        let half_open_on = config.half_open.burst_min > 0;
        self.flat_map(move |f| {
            let c = Connection::of_flow(&f);
            let copy = (half_open_on && c.half_open).then_some(Connection {
                role: Role::HalfOpen,
                ..c
            });
            std::iter::once(c).chain(copy)
        })
        .concat(responses)
        .binary_frontier::<_, Cb<Vec<Alert>>, _, _, _, _>(
            end_of_input,
            Exchange::new(|c: &Connection| {
                shard(if c.role.by_destination() {
                    &c.key.dst
                } else {
                    &c.key.src
                })
            }),
            Pipeline,
            "ConnectionAlerts",
            move |cap: Capability<u64>, _info| {
                let mut cap = Some(cap);
                let mut rules = WorkerRules::new(&config);
                // Batches as they came: flows open at the end of input all wait for
                // the end, and one growing vector would hold up to twice their size.
                let mut pending: Vec<Vec<Connection>> = Vec::new();
                let mut ready: Vec<Connection> = Vec::new();
                let mut alerts: Vec<Alert> = Vec::new();
                let mut end_of_input_ns = 0u64;
                move |(flows, flows_frontier), (ends, ends_frontier), output| {
                    flows.for_each(|_time, data| pending.push(std::mem::take(data)));
                    ends.for_each(|_time, data| {
                        end_of_input_ns = data.drain(..).fold(end_of_input_ns, u64::max);
                    });
                    let Some(held) = cap.as_mut() else { return };
                    let now = flows_frontier.frontier().iter().min().copied();
                    let finished = now.is_none() && ends_frontier.is_empty();
                    // Flows are emitted at or before their end: once the frontier
                    // passes `t`, every flow that ended before `t` is here.
                    let horizon = match now {
                        Some(t) => t,
                        None if finished => u64::MAX,
                        None => return, // the end-of-input time is still coming
                    };
                    if finished {
                        ready.reserve_exact(pending.iter().map(Vec::len).sum());
                        for batch in pending.drain(..) {
                            ready.extend(batch);
                        }
                    } else {
                        for batch in &mut pending {
                            let mut i = 0;
                            while i < batch.len() {
                                if batch[i].end_ns < horizon {
                                    ready.push(batch.swap_remove(i));
                                } else {
                                    i += 1;
                                }
                            }
                        }
                        pending.retain(|b| !b.is_empty());
                    }
                    if !ready.is_empty() {
                        ready.sort_unstable();
                        for c in ready.drain(..) {
                            // A flow open at the end of input is known to
                            // have ended when the input ended.
                            let ts = if c.end_ns == u64::MAX {
                                end_of_input_ns.max(c.start_ns)
                            } else {
                                c.end_ns
                            };
                            rules.judge(&c, ts, &config, &mut alerts);
                        }
                    }
                    if !alerts.is_empty() {
                        // `held` is at or before the frontier that let these flows
                        // through, so at or before each one's end.
                        output.session(&*held).give_iterator(alerts.drain(..));
                    }
                    if finished {
                        cap = None;
                        return;
                    }
                    if horizon > *held.time() {
                        held.downgrade(&horizon);
                    }
                }
            },
        )
    }
}

/// Every rule of the operator, on one worker: its state, and when each table forgets.
struct WorkerRules {
    patterns: ConnectionPatterns,
    scans: PortScans,
    reflections: Reflections,
    syn_acks: SynAckRepeats,
    half_open: HalfOpenBursts,
    /// When each of the five tables above forgets, in that order.
    cadences: [Cadence; 5],
}

impl WorkerRules {
    fn new(config: &DetectConfig) -> Self {
        let patterns = ConnectionPatterns::new(config.connections.clone());
        let scans = PortScans::new(config.scans.clone());
        let reflections = Reflections::new(config.reflection.clone());
        let syn_acks = SynAckRepeats::new(config.syn_acks.clone());
        let half_open = HalfOpenBursts::new(config.half_open.clone());
        WorkerRules {
            // Quiet state is dropped at fixed points of event time, between the last
            // record judged before each point and the first after: the same points, in
            // every shard's sequence of records, whatever the number of workers (the
            // bounded tables' evictions depend on what they hold). Each table at an
            // eighth of its own memory, so that a short window does not make the long
            // ones sweep often.
            cadences: [
                Cadence::new(patterns.memory_ns()),
                Cadence::new(scans.memory_ns()),
                Cadence::new(reflections.memory_ns()),
                Cadence::new(syn_acks.memory_ns()),
                Cadence::new(half_open.memory_ns()),
            ],
            patterns,
            scans,
            reflections,
            syn_acks,
            half_open,
        }
    }

    /// Judges one record (in (end time, key) order) at time `ts`, after the forgetting
    /// that is due.
    fn judge(&mut self, c: &Connection, ts: u64, config: &DetectConfig, out: &mut Vec<Alert>) {
        let [p, s, r, a, h] = &mut self.cadences;
        if let Some(t) = p.due(ts) {
            self.patterns.forget(t);
        }
        if let Some(t) = s.due(ts) {
            self.scans.forget(t);
        }
        if let Some(t) = r.due(ts) {
            self.reflections.forget(t);
        }
        if let Some(t) = a.due(ts) {
            self.syn_acks.forget(t);
        }
        if let Some(t) = h.due(ts) {
            self.half_open.forget(t);
        }
        match c.role {
            Role::Reflected => self.reflections.observe(c, ts, config, out),
            Role::HalfOpen => self.half_open.observe(c, ts, config, out),
            Role::Flow => {
                self.patterns.observe(c, ts, config, out);
                self.scans.observe(c, ts, config, out);
                self.syn_acks.observe(c, ts, config, out);
            }
        }
    }
}

/// Fixed points of record time at which a table forgets its quiet state: every eighth of
/// its memory.
#[derive(Clone, Copy, Debug)]
struct Cadence {
    every: u64,
    done: u64,
}

impl Cadence {
    fn new(memory_ns: u64) -> Self {
        Cadence {
            every: (memory_ns / 8).max(1),
            done: 0,
        }
    }

    /// The latest point at or before `ts`, if it has not been passed yet.
    fn due(&mut self, ts: u64) -> Option<u64> {
        let point = ts / self.every;
        (point > self.done).then(|| {
            self.done = point;
            point * self.every
        })
    }
}
