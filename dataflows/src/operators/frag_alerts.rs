//! Alerts from reassembly events that signal attacks.
//!
//! The events are aggregated per bucket of event time (`frag_bucket`, default 10 s):
//! `ambiguity` (→ `frag_ambiguity`), `overlap_different` (→ `frag_overlap`) and
//! `too_large` (→ `frag_too_large`) per source/destination pair, one alert per pair and
//! bucket; `eviction` and `over_budget` (→ `frag_flood`) per destination, one alert per
//! destination and bucket once at least `frag_flood_threshold` events (floods often
//! spoof their sources; the source is named when there was only one). Events are
//! exchanged by destination, so the alerts are the same whatever the worker count.
//! [`super::UnfinishedFragments`] adds a rate rule for floods whose datagrams never
//! complete.

use std::collections::{BTreeMap, BTreeSet};

use timely::container::CapacityContainerBuilder as Cb;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use crate::alert::{Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::{DetectConfig, Severity};
use crate::hash::StableHasher;
use crate::packet::Addr;
use crate::reassembly::{EventKind, ReassemblyEvent};

/// Alerts from reassembly events (see the module documentation).
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::operators::FragAlerts;
/// use flowtide_dataflows::packet::Addr;
/// use flowtide_dataflows::reassembly::{EventKind, EvictReason, FragKey, ReassemblyEvent};
/// use timely::container::CapacityContainerBuilder;
/// use timely::dataflow::operators::{Input, Inspect};
/// use timely::dataflow::InputHandle;
///
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::execute_directly(move |worker| {
///     let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<ReassemblyEvent>>>::new();
///     let sink = sink.clone();
///     worker.dataflow::<u64, _, _>(|scope| {
///         scope.input_from(&mut input)
///             .frag_alerts(&DetectConfig::default())
///             .inspect(move |a| sink.lock().unwrap().push(a.clone()));
///     });
///     // 150 datagrams towards 10.0.0.9 evicted within one second, from 150 sources:
///     // a fragment flood (the default threshold is 100 events per 10 s bucket).
///     for i in 0..150u32 {
///         let ts_ns = 5_000_000_000 + u64::from(i) * 1_000_000;
///         input.advance_to(ts_ns);
///         let key = FragKey { ip_version: 4, protocol: 17, id: i,
///             src: Addr::from_v4([192, 0, 2, (i % 250) as u8]),
///             dst: Addr::from_v4([10, 0, 0, 9]), ..Default::default() };
///         let kind = EventKind::Eviction { reason: EvictReason::Memory, first_ns: ts_ns,
///             fragments: 1 };
///         input.send(ReassemblyEvent { ts_ns, key, kind });
///     }
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].ts_ns, 10_000_000_000); // the end of the 10 s bucket
/// assert_eq!(alerts[0].score, 150.0);
/// assert_eq!(alerts[0].src, None); // 150 sources
/// ```
pub trait FragAlerts<'scope> {
    /// Aggregates the attack-signalling events per bucket and key; each alert is emitted
    /// at the timely time `bucket end − 1`, with the bucket's end as its time.
    fn frag_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert>;
}

/// An event that may become an alert: kind, source, destination, protocol, time.
type FragHit = (AlertKind, Addr, Addr, u8, u64);

/// Per bucket: (kind, destination, source or unspecified) → (events, protocol, sources).
type FragBucket = BTreeMap<(AlertKind, Addr, Addr), (u64, u8, BTreeSet<Addr>)>;

/// Distinct sources remembered per flood alert.
pub(super) const MAX_SOURCES: usize = 1024;

fn frag_hit(e: ReassemblyEvent) -> Option<FragHit> {
    let kind = match e.kind {
        EventKind::Ambiguity { .. } => AlertKind::FragAmbiguity,
        EventKind::OverlapDifferent { .. } => AlertKind::FragOverlap,
        EventKind::Eviction { .. } | EventKind::OverBudget { .. } => AlertKind::FragFlood,
        EventKind::TooLarge { .. } => AlertKind::FragTooLarge,
        _ => return None,
    };
    Some((kind, e.key.src, e.key.dst, e.key.protocol, e.ts_ns))
}

fn dst_route(h: &FragHit) -> u64 {
    let mut s = StableHasher::new();
    s.write_addr(&h.2);
    s.finish()
}

impl<'scope> FragAlerts<'scope> for StreamVec<'scope, u64, ReassemblyEvent> {
    fn frag_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert> {
        let config = config.clone();
        let bucket = config.frag_bucket_ns.max(1);
        self.flat_map(frag_hit)
            .unary_frontier::<Cb<Vec<Alert>>, _, _, _>(
                Exchange::new(dst_route),
                "FragAlerts",
                move |_cap, _info| {
                    let mut pending: BTreeMap<u64, (Capability<u64>, FragBucket)> = BTreeMap::new();
                    move |(input, frontier), output| {
                        input.for_each(|time, data| {
                            let Some(&least) = time.least() else { return };
                            for (kind, src, dst, protocol, ts) in data.drain(..) {
                                let end = (ts / bucket).saturating_add(1).saturating_mul(bucket);
                                let (_, b) = pending.entry(end).or_insert_with(|| {
                                    (time.delayed(&least.max(end - 1), 0), BTreeMap::new())
                                });
                                let key_src = if kind == AlertKind::FragFlood {
                                    Addr::UNSPECIFIED
                                } else {
                                    src
                                };
                                let e = b.entry((kind, dst, key_src)).or_insert((
                                    0,
                                    protocol,
                                    BTreeSet::new(),
                                ));
                                e.0 += 1;
                                if e.2.len() < MAX_SOURCES {
                                    e.2.insert(src);
                                }
                            }
                        });
                        while let Some(entry) = pending.first_entry() {
                            let end = *entry.key();
                            if frontier.less_equal(&(end - 1)) {
                                break;
                            }
                            let (cap, b) = entry.remove();
                            let mut session = output.session(&cap);
                            for ((kind, dst, _), (count, protocol, sources)) in b {
                                if let Some(a) = frag_alert(
                                    &config, kind, dst, protocol, &sources, count, end, None,
                                ) {
                                    session.give(a);
                                }
                            }
                        }
                    }
                },
            )
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn frag_alert(
    config: &DetectConfig,
    kind: AlertKind,
    dst: Addr,
    protocol: u8,
    sources: &BTreeSet<Addr>,
    count: u64,
    end: u64,
    rate: Option<(&'static str, u64)>,
) -> Option<Alert> {
    let (threshold, severity, event) = match (kind, rate) {
        (AlertKind::FragFlood, Some((event, threshold))) => {
            let t = threshold.max(1) as f64;
            (t, config.severity(count as f64, t), event)
        }
        (AlertKind::FragFlood, None) => {
            let t = config.frag_flood_threshold.max(1) as f64;
            (
                t,
                config.severity(count as f64, t),
                "eviction_or_over_budget",
            )
        }
        (AlertKind::FragAmbiguity, _) => (1.0, Severity::High, "ambiguity"),
        (AlertKind::FragOverlap, _) => (1.0, Severity::High, "overlap_different"),
        (AlertKind::FragTooLarge, _) => (1.0, Severity::Medium, "too_large"),
        (
            AlertKind::Anomaly
            | AlertKind::SynFlood
            | AlertKind::SynAckReflection
            | AlertKind::UdpFlood
            | AlertKind::Beacon
            | AlertKind::BruteForce
            | AlertKind::PortScan
            | AlertKind::AddressScan
            | AlertKind::UdpReflection,
            _,
        ) => return None,
    };
    if (count as f64) < threshold {
        return None;
    }
    let src = (sources.len() == 1)
        .then(|| sources.iter().next().copied())
        .flatten();
    let bucket = config.frag_bucket_ns.max(1);
    let mut metrics = vec![AlertMetric {
        name: if rate.is_some() {
            event.to_string()
        } else {
            format!("{event}_events")
        },
        value: count as f64,
        baseline_mean: 0.0,
        baseline_stddev: 0.0,
        deviation: count as f64 / threshold,
        weight: 1.0,
    }];
    if kind == AlertKind::FragFlood {
        metrics.push(AlertMetric {
            name: "distinct_sources".to_string(),
            value: sources.len() as f64,
            baseline_mean: 0.0,
            baseline_stddev: 0.0,
            deviation: 0.0,
            weight: 0.0,
        });
    }
    let mut alert = Alert {
        ts_ns: end,
        kind,
        severity,
        score: count as f64,
        threshold,
        granularity: AlertGranularity::Pair,
        src,
        dst: Some(dst),
        dst_port: None,
        // IPv6 datagrams are keyed without a protocol (0).
        protocol: (protocol != 0).then_some(protocol),
        hour_of_day: None,
        window_start_ns: end.saturating_sub(bucket),
        window_end_ns: end,
        metrics,
        explanation: String::new(),
    };
    let more = if src.is_none() {
        format!(" from {} sources", sources.len())
    } else {
        String::new()
    };
    let secs = crate::alert::short_number(bucket as f64 / 1e9);
    alert.explanation = if rate.is_some() {
        format!(
            "{}: {count} IP fragments in {secs} s not part of a reassembled datagram{more}",
            alert.describe_key()
        )
    } else {
        format!(
            "{}: {count} {event} reassembly events in {secs} s{more}",
            alert.describe_key()
        )
    };
    Some(alert)
}

#[cfg(test)]
mod tests;
