//! Baselines and anomaly alerts over finished windows.
//!
//! ## Trailing baselines (differential dataflow)
//! Each finished window (not `partial`) of a key becomes, for its [`BaselineKey`], an
//! update of the differential collection of baselines whose *difference* is the window's
//! exact [`Moments`]: `+m` at time `E` (the window's end; the window's record travels at
//! `E − 1`) and `−m` when it leaves the history, at `E + history` with `E` first rounded
//! up to the history step ([`exit_time`]; a key's windows of one step leave as one
//! update). The collection is arranged by key (`arrange_by_self`): differential keeps
//! each key's past updates compacted into one sum and the retractions still to come, so
//! a baseline is maintained incrementally, one update per window entering and one per
//! step leaving, whatever the history's length. Scoring is a half-join against that
//! arrangement: each window goes to the worker holding its key's shard and, once the
//! arrangement has passed `E − 1`, reads its key's sum through a cursor over the trace,
//! adding the updates at times up to `E − 1`: the windows that ended strictly before it
//! (its own moments enter at `E`). The scorer holds the trace's compaction back to the
//! earliest time it still has to judge, so those times stay distinguishable; the windows
//! themselves are neither arranged nor matched one by one. The population baselines are
//! summed by every worker's [`TrailingScorer`] from their updates, which go to all
//! workers.
//!
//! ## Poisoning resistance: a feedback loop
//! A window that raised an alert must not enter the baseline, so the baseline at `E`
//! depends on the alerts at `E − 1`: a cycle, but one that moves forward in event time.
//! It is a timely feedback edge whose summary advances time by 1 ns: for every alerted
//! window the scorer sends `−m` at `E` and `+m` at its exit, which cancel the window's
//! own updates before the arrangement ever holds a time at which it was present.
//! Progress tracking accepts the cycle because its summary is strictly positive; the
//! baseline at `E` waits for the scores at `E − 1`, which wait only for baselines before
//! `E`. The result is the same whatever the worker count: every quantity is an exact
//! integer sum or a pure function of one.
//!
//! ## Decayed baselines
//! [`BaselineMode::Decayed`] keeps, per key, exponentially decayed moments (time
//! constant `decay`, e.g. 1 min, 10 min, 1 h or 1 day) in a plain timely operator: the
//! windows of each timely time are processed once the frontier passes it, in key order,
//! each scored against its key's moments decayed to its end and then added unless it
//! alerted. The same learning, minimum-windows and threshold rules apply; the minimum
//! counts the windows that entered (a key idle for 10 time constants is forgotten).
//!
//! ## Population prior and hopping windows
//! With `population`, every window also enters (if it tiles time) its granularity's
//! population key ([`population_of`]); a key with fewer than `min_windows` windows of its
//! own is judged against the population. The population keys are a handful, so their
//! baseline changes go to every worker's scorer. Hopping windows (see
//! `DetectConfig::slide_ns`) are all scored; only those that tile time enter baselines.

use std::collections::BTreeMap;

use differential_dataflow::collection::AsCollection;
use differential_dataflow::difference::Abelian;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::operators::arrange::TraceAgent;
use differential_dataflow::trace::cursor::cursor_list;
use differential_dataflow::trace::implementations::KeySpine;
use differential_dataflow::trace::{Cursor, TraceReader};
use differential_dataflow::Hashable;
use serde::{Deserialize, Serialize};
use timely::container::CapacityContainerBuilder as Cb;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::core::Exchange as _;
use timely::dataflow::operators::vec::{Broadcast, Filter, Map};
use timely::dataflow::operators::{Capability, Concat, ConnectLoop, Feedback, Operator};
use timely::dataflow::StreamVec;
use timely::progress::Antichain;

use crate::alert::{explain_anomaly, Alert, AlertKind, AlertMetric};
use crate::baseline::{
    observe, score, BaselineKey, BaselineMode, DetectConfig, Metric, Moments, Summary, Values,
    NO_HOUR,
};
use crate::trailing_scorer::TrailingScorer;
use crate::window::{Granularity, WindowRecord};

/// A window to score: when (the timely time of its record), its span and its values.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Probe {
    /// The time of the query: the window's record time, `end − 1`.
    pub at: u64,
    /// Window start (ns).
    pub start_ns: u64,
    /// Window end (ns).
    pub end_ns: u64,
    /// The window's metric values, as the moments of one window (compact: see
    /// [`Moments`]); [`Probe::values`] decodes them.
    pub window: Moments,
}

impl Probe {
    /// Whether the window is one of a tiling of time by windows of its length (its start
    /// is a multiple of its length): only those enter the baselines.
    pub fn tiles(&self) -> bool {
        let len = self.end_ns.saturating_sub(self.start_ns);
        len > 0 && self.start_ns.is_multiple_of(len)
    }

    /// The probe of a window whose record travels at time `at`.
    pub fn of(w: &WindowRecord, at: u64) -> Probe {
        Probe {
            at,
            start_ns: w.start_ns,
            end_ns: w.end_ns,
            window: Moments::of(&observe(w.key.granularity, &w.stats)),
        }
    }

    /// The window's metric values.
    pub fn values(&self) -> Values {
        self.window.one_window_values()
    }
}

/// Decides whether a scored window alerts, and builds the alert.
///
/// `first_end_ns` is the end of the first window of the input (`u64::MAX` while unknown).
pub fn judge(
    config: &DetectConfig,
    key: &BaselineKey,
    probe: &Probe,
    baseline: &Summary,
    first_end_ns: u64,
) -> Option<Alert> {
    if baseline.windows < config.min_windows.max(1)
        || first_end_ns == u64::MAX
        || probe.end_ns < first_end_ns.saturating_add(config.learn_ns)
    {
        return None;
    }
    let (s, parts) = score(config, &probe.values(), baseline);
    if s.is_nan() || s < config.threshold {
        return None;
    }
    let k = &key.key;
    let (src, dst, dst_port, protocol) = match k.granularity {
        Granularity::Channel => (Some(k.src), Some(k.dst), None, Some(k.protocol)),
        Granularity::Host => (Some(k.src), None, None, None),
        Granularity::Service => (None, Some(k.dst), Some(k.dport), Some(k.protocol)),
    };
    let mut alert = Alert {
        ts_ns: probe.end_ns,
        kind: AlertKind::Anomaly,
        severity: config.severity(s, config.threshold),
        score: s,
        threshold: config.threshold,
        granularity: k.granularity.into(),
        src,
        dst,
        dst_port,
        protocol,
        hour_of_day: (key.hour != NO_HOUR).then_some(key.hour),
        window_start_ns: probe.start_ns,
        window_end_ns: probe.end_ns,
        metrics: parts.iter().map(AlertMetric::from).collect(),
        explanation: String::new(),
    };
    alert.explanation = explain_anomaly(&alert.describe_key(), &parts, baseline.windows);
    Some(alert)
}

/// Baselines and anomaly alerts over finished windows.
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::operators::Detect;
/// use flowtide_dataflows::packet::Addr;
/// use flowtide_dataflows::window::{Granularity, WindowKey, WindowRecord, WindowStats};
/// use timely::container::CapacityContainerBuilder;
/// use timely::dataflow::operators::{Input, Inspect, Probe};
/// use timely::dataflow::{InputHandle, ProbeHandle};
///
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::execute_directly(move |worker| {
///     let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<WindowRecord>>>::new();
///     let probe = ProbeHandle::new();
///     let config = DetectConfig { learn_ns: 0, ..DetectConfig::default() };
///     let sink = sink.clone();
///     worker.dataflow::<u64, _, _>(|scope| {
///         scope.input_from(&mut input)
///             .detect_anomalies(config)
///             .inspect(move |a| sink.lock().unwrap().push(a.clone()))
///             .probe_with(&probe);
///     });
///     let key = WindowKey { granularity: Granularity::Host, src: Addr::from_v4([10, 0, 0, 5]),
///         ..Default::default() };
///     // 20 quiet windows of 1 s, then a SYN flood: 100 times the packets, bytes, new
///     // flows and SYNs (one metric alone cannot alert: each deviation is capped).
///     for i in 1..=21u64 {
///         let packets = if i == 21 { 5_000 } else { 50 + i % 3 };
///         let mut flags = [0; 8];
///         flags[0] = packets / 10;
///         let stats = WindowStats { packets, bytes: 60 * packets, flows_started: packets / 10,
///             flags, ..Default::default() };
///         let end = i * 1_000_000_000;
///         input.advance_to(end - 1);
///         input.send(WindowRecord { key, start_ns: end - 1_000_000_000, end_ns: end,
///             partial: false, stats });
///     }
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].ts_ns, 21_000_000_000);
/// assert!(alerts[0].explanation.starts_with("host 10.0.0.5: packets 5000 vs baseline"));
/// ```
pub trait Detect<'scope> {
    /// Scores every finished window against its key's baseline (trailing or decayed, per
    /// `config.mode`) and returns the alerts, each at the timely time of its window's
    /// record (`end − 1`).
    fn detect_anomalies(self, config: DetectConfig) -> StreamVec<'scope, u64, Alert>;
}

impl<'scope> Detect<'scope> for StreamVec<'scope, u64, WindowRecord> {
    fn detect_anomalies(self, config: DetectConfig) -> StreamVec<'scope, u64, Alert> {
        let windows = self.filter(|w: &WindowRecord| !w.partial);
        let firsts = first_window_ends(windows.clone());
        match config.mode {
            BaselineMode::Trailing => trailing(windows, firsts, config),
            BaselineMode::Decayed => {
                let min = config.min_packets;
                let judged = windows.filter(move |w: &WindowRecord| w.stats.packets >= min);
                decayed(judged, firsts, config)
            }
        }
    }
}

/// The end of the first window, for every worker: each worker sends the least window
/// end it has seen whenever it decreases, to every worker; the least value received
/// once the frontier passes a time is the input's first window end.
fn first_window_ends<'scope>(
    windows: StreamVec<'scope, u64, WindowRecord>,
) -> StreamVec<'scope, u64, u64> {
    windows
        .unary::<Cb<Vec<u64>>, _, _, _>(Pipeline, "FirstWindow", |_cap, _info| {
            let mut least = u64::MAX;
            move |input, output| {
                input.for_each(|time, data| {
                    let Some(m) = data.iter().map(|w| w.end_ns).min() else {
                        return;
                    };
                    if m < least {
                        least = m;
                        if let Some(cap) = time.retain_least(output.output_index()) {
                            output.session(&cap).give(m);
                        }
                    }
                });
            }
        })
        .broadcast()
}

/// Records of merge work an idle arrangement does per activation ([`configure_worker`]).
pub const IDLE_MERGE_EFFORT: isize = 1000;

/// Configures a timely worker for the trailing baselines: their arrangement keeps merging
/// its batches while the worker is idle, so that its memory shrinks between bursts of
/// windows instead of waiting for the next ones.
pub fn configure_worker(worker: &mut timely::WorkerConfig) {
    differential_dataflow::configure(
        worker,
        &differential_dataflow::Config::default().idle_merge_effort(Some(IDLE_MERGE_EFFORT)),
    );
}

/// A scored window that alerted: its baseline key, the window, the alert.
type Scored = (BaselineKey, Probe, Alert);

/// What the trailing scorer receives besides the arranged baselines: a window to judge,
/// an update of a population baseline at a time, or the end of a first window.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum ScoreIn {
    Window(BaselineKey, Probe),
    Population(BaselineKey, Moments, u64),
    First(u64),
}

/// Per time, awaiting the frontiers: the windows to judge (with a capability for their
/// alerts) and the population updates at that time.
#[derive(Default)]
struct Due {
    cap: Option<Capability<u64>>,
    windows: Vec<(BaselineKey, Probe)>,
    population: Vec<(BaselineKey, Moments)>,
}

/// The trailing baselines of this worker's keys, as differential arranges them.
type Baselines = TraceAgent<KeySpine<BaselineKey, u64, Moments>>;

/// The population baseline a key falls back to while it has too little history of its
/// own: every window of its granularity (and hour, with profiles). Its hour is moved out
/// of the range real keys use, so it never collides with one.
pub fn population_of(k: &BaselineKey) -> BaselineKey {
    BaselineKey {
        key: crate::window::WindowKey {
            granularity: k.key.granularity,
            ..Default::default()
        },
        hour: if k.hour == NO_HOUR {
            NO_HOUR - 1
        } else {
            100u8.saturating_add(k.hour)
        },
    }
}

/// Whether `k` is a population key ([`population_of`]).
pub fn is_population(k: &BaselineKey) -> bool {
    k.hour == NO_HOUR - 1 || (100..124).contains(&k.hour)
}

fn trailing<'scope>(
    windows: StreamVec<'scope, u64, WindowRecord>,
    firsts: StreamVec<'scope, u64, u64>,
    config: DetectConfig,
) -> StreamVec<'scope, u64, Alert> {
    let scope = windows.scope();
    let history = (config.history_ns, config.history_step_ns());
    let hour_of_day = config.hour_of_day;
    let probes = windows.unary::<Cb<Vec<(BaselineKey, Probe)>>, _, _, _>(
        Pipeline,
        "Probes",
        move |_cap, _info| {
            move |input, output| {
                input.for_each(|time, data| {
                    let Some(cap) = time.retain_least(output.output_index()) else {
                        return;
                    };
                    let t = *cap.time();
                    let mut session = output.session(&cap);
                    for w in data.drain(..) {
                        // The window's record time is `end − 1`; never before its message.
                        let at = w.end_ns.saturating_sub(1).max(t);
                        session.give((BaselineKey::of(&w, hour_of_day), Probe::of(&w, at)));
                    }
                });
            }
        },
    );
    // Windows under `min_packets` are too small to judge: not scored, not in their own
    // key's baseline (only in their population's).
    let min_packets = i64::try_from(config.min_packets).unwrap_or(i64::MAX);
    let judged = move |p: &Probe| p.values()[Metric::Packets as usize].unwrap_or(0) >= min_packets;
    let population = config.population;
    // Each window enters its key's and its population's baseline at `at + 1` (its end)
    // and leaves them with the history ([`exit_time`]).
    // Only windows that tile time enter (with hopping detection windows, one in
    // `length / slide`), so a baseline describes disjoint windows.
    let entries = probes
        .clone()
        .filter(|(_, p)| p.tiles())
        .flat_map(move |(k, p)| {
            let mut e = Vec::with_capacity(4);
            if judged(&p) {
                e.extend(window_updates(k, &p, history, 1));
            }
            if population {
                e.extend(window_updates(population_of(&k), &p, history, 1));
            }
            e
        })
        .unary::<Cb<Vec<(BaselineKey, u64, Moments)>>, _, _, _>(
            Pipeline,
            "CombineEntries",
            |_cap, _info| {
                // Every tiling window also enters its granularity's one population key:
                // sum each batch's entries per (key, time) before they travel (the
                // moments are a group, so this changes nothing but the traffic).
                move |input, output| {
                    input.for_each(|time, data| {
                        differential_dataflow::consolidation::consolidate_updates(data);
                        output.session(&time).give_container(data);
                    });
                }
            },
        );
    // Alerted windows come back 1 ns later and cancel their entries and exits (own key
    // and population: one flood window would otherwise inflate the population's spread).
    let (handle, alerted) = scope.feedback::<Vec<(BaselineKey, u64, Moments)>>(1);
    let entries = entries.concat(alerted);
    // A key's own baseline: differential's arrangement, sharded by the key's hash.
    let baselines = entries
        .clone()
        .filter(|(k, _, _)| !is_population(k))
        .as_collection()
        .arrange_by_self_named("Baselines");
    // The population baselines (a handful of keys): every update to every worker.
    let population_updates = entries
        .filter(|(k, _, _)| is_population(k))
        .broadcast()
        .map(|(k, t, m)| ScoreIn::Population(k, m, t));
    // Each window goes to the worker holding its key's shard of the arrangement.
    let scored_windows = probes
        .filter(move |(_, p)| judged(p))
        .map(|(k, p)| ScoreIn::Window(k, p))
        .exchange(|c: &ScoreIn| match c {
            ScoreIn::Window(k, _) => k.hashed(),
            _ => 0,
        });

    let scorer_config = config.clone();
    let mut trace: Baselines = baselines.trace;
    let scored = scored_windows
        .concat(population_updates)
        .concat(firsts.map(ScoreIn::First))
        .binary_frontier::<_, Cb<Vec<Scored>>, _, _, _, _>(
            baselines.stream,
            Pipeline,
            Pipeline,
            "Score",
            move |_cap, _info| {
                let mut scorer = TrailingScorer::new(scorer_config);
                let mut first_end = u64::MAX;
                let mut pending: BTreeMap<u64, Due> = BTreeMap::new();
                let mut alerts = Vec::new();
                let mut upper = Antichain::new();
                move |(input, frontier), (batches, batches_frontier), output| {
                    input.for_each(|time, data| {
                        for d in data.drain(..) {
                            match d {
                                ScoreIn::Window(k, p) => {
                                    let at = p.at;
                                    let due = pending.entry(at).or_default();
                                    if due.cap.is_none() {
                                        due.cap = Some(time.delayed(&at, 0));
                                    }
                                    due.windows.push((k, p));
                                }
                                ScoreIn::Population(k, m, t) => {
                                    pending.entry(t).or_default().population.push((k, m));
                                }
                                ScoreIn::First(e) => first_end = first_end.min(e),
                            }
                        }
                    });
                    // Only the batches' progress matters: the trace holds their updates.
                    batches.for_each(|_time, data| data.clear());
                    // Time by time, once every window, population update and baseline
                    // update at or before `t` is in: the population as of `t`, then the
                    // windows of `t` against their keys' baselines as of `t`.
                    while let Some(entry) = pending.first_entry() {
                        let t = *entry.key();
                        if frontier.less_equal(&t) || batches_frontier.less_equal(&t) {
                            break;
                        }
                        trace.read_upper(&mut upper);
                        if upper.less_equal(&t) {
                            break;
                        }
                        let mut due = entry.remove();
                        scorer.update_population(due.population.drain(..));
                        let Some(cap) = due.cap.take() else {
                            continue;
                        };
                        let Some(spans) = trace.batches_through(upper.borrow()) else {
                            // Cannot happen: compaction never passes a pending time.
                            due.cap = Some(cap);
                            pending.insert(t, due);
                            break;
                        };
                        let (mut cursor, storage) = cursor_list(spans);
                        // The cursor moves forward only: keys in order.
                        due.windows.sort_by_key(|a| a.0);
                        let mut own: Option<(BaselineKey, Moments)> = None;
                        for (k, p) in &due.windows {
                            if own.as_ref().map(|(ok, _)| ok) != Some(k) {
                                let mut sum = Moments::default();
                                cursor.seek_key(&storage, k);
                                if cursor.get_key(&storage) == Some(k) {
                                    cursor.map_times(&storage, |time, diff| {
                                        if *time <= t {
                                            sum.plus_equals(diff);
                                        }
                                    });
                                }
                                own = Some((*k, sum));
                            }
                            let m = own.as_ref().map(|(_, m)| m);
                            if let Some(alert) = scorer.judge(k, p, m, first_end) {
                                alerts.push((*k, p.clone(), alert));
                            }
                        }
                        if !alerts.is_empty() {
                            output.session(&cap).give_iterator(alerts.drain(..));
                        }
                    }
                    // The baselines need to stay distinguishable only from the earliest
                    // time still to be judged on.
                    let mut needed = Antichain::new();
                    if let Some(t) = pending.keys().next() {
                        needed.insert(*t);
                    }
                    for t in frontier.frontier().iter() {
                        needed.insert(*t);
                    }
                    trace.set_logical_compaction(needed.borrow());
                    trace.set_physical_compaction(needed.borrow());
                }
            },
        );
    scored
        .clone()
        .filter(|(_, p, _)| p.tiles())
        .flat_map(move |(k, p, _)| {
            let mut e = window_updates(k, &p, history, -1).to_vec();
            if population {
                e.extend(window_updates(population_of(&k), &p, history, -1));
            }
            e
        })
        .connect_loop(handle);
    scored.map(|(_, _, a)| a)
}

/// A window's updates of the baseline collection: its moments times `sign` at its end
/// (`at + 1`), negated when it leaves the history ([`exit_time`]).
fn window_updates(
    key: BaselineKey,
    p: &Probe,
    history: (u64, u64),
    sign: i64,
) -> [(BaselineKey, u64, Moments); 2] {
    let mut m = p.window.clone();
    if sign < 0 {
        m.negate();
    }
    let mut neg = m.clone();
    neg.negate();
    let enter = p.at.saturating_add(1);
    [(key, enter, m), (key, exit_time(enter, history), neg)]
}

/// When a window that entered at `enter` leaves a history of `(length, step)`: `enter`
/// rounded up to a multiple of `step` (unless it is 0), plus `length`.
pub fn exit_time(enter: u64, (length, step): (u64, u64)) -> u64 {
    let rounded = match step {
        0 => enter,
        s => enter.div_ceil(s).saturating_mul(s),
    };
    rounded.saturating_add(length)
}

pub use crate::decayed_baselines::DecayedBaselines;

/// The windows of one timely time awaiting the frontier, with their capability.
type DecayedPending = (Capability<u64>, Vec<(BaselineKey, Probe)>);

fn decayed<'scope>(
    windows: StreamVec<'scope, u64, WindowRecord>,
    firsts: StreamVec<'scope, u64, u64>,
    config: DetectConfig,
) -> StreamVec<'scope, u64, Alert> {
    let hour = config.hour_of_day;
    // Only the key and the window's values travel and wait: about 100 bytes a window.
    windows
        .map(move |w| {
            (
                BaselineKey::of(&w, hour),
                Probe::of(&w, w.end_ns.saturating_sub(1)),
            )
        })
        .binary_frontier::<_, Cb<Vec<Alert>>, _, _, _, _>(
            firsts,
            Exchange::new(|(k, _): &(BaselineKey, Probe)| k.key.route()),
            Pipeline,
            "DecayedBaselines",
            move |_cap, _info| {
                let mut state = DecayedBaselines::new(config);
                let mut first_end = u64::MAX;
                let mut pending: BTreeMap<u64, DecayedPending> = BTreeMap::new();
                let mut alerts = Vec::new();
                move |(input, frontier), (firsts, firsts_frontier), output| {
                    input.for_each(|time, data| {
                        let Some(cap) = time.retain_least(output.output_index()) else {
                            return;
                        };
                        let t = *cap.time();
                        pending
                            .entry(t)
                            .or_insert_with(|| (cap, Vec::new()))
                            .1
                            .append(data);
                    });
                    firsts.for_each(|_time, data| {
                        first_end = data.drain(..).fold(first_end, u64::min);
                    });
                    while let Some(entry) = pending.first_entry() {
                        let t = *entry.key();
                        if frontier.less_equal(&t) || firsts_frontier.less_equal(&t) {
                            break;
                        }
                        let (cap, mut windows) = entry.remove();
                        state.process(&mut windows, first_end, &mut alerts);
                        if !alerts.is_empty() {
                            output.session(&cap).give_iterator(alerts.drain(..));
                        }
                    }
                }
            },
        )
}

#[cfg(test)]
mod tests;
