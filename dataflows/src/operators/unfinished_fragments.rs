//! Fragment floods seen by their rate rather than by the reassembler's limits.
//!
//! Per destination and bucket of event time (`frag_bucket`), the IP fragments received
//! minus the fragments of the datagrams reassembled, both by capture time: a flood of
//! fragments whose datagrams never complete stays far below the reassembler's eviction
//! limits (which [`super::FragAlerts`] watches), and its timeouts come a minute later.

use std::collections::{BTreeMap, BTreeSet};

use timely::container::CapacityContainerBuilder as Cb;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Capability, Operator};
use timely::dataflow::StreamVec;

use super::frag_alerts::{frag_alert, MAX_SOURCES};
use crate::alert::{Alert, AlertKind};
use crate::baseline::DetectConfig;
use crate::hash::StableHasher;
use crate::packet::Addr;

/// A fragment (`+1`) or a reassembled datagram (`−fragments`): destination, source,
/// protocol, capture time, count.
pub type FragCount = (Addr, Addr, u8, u64, i64);

/// The count of one fragment received, for [`UnfinishedFragments`]: built where the
/// fragments are read, so that counting never copies a fragment's bytes.
pub fn fragment_arrival(p: &crate::packet::Packet) -> FragCount {
    (p.dst, p.src, p.protocol, p.ts_ns, 1)
}

/// Per bucket: destination → (unfinished fragments, protocol, sources).
type UnfinishedBucket = BTreeMap<Addr, (i64, u8, BTreeSet<Addr>)>;

/// Fragment floods seen by their rate rather than by the reassembler's limits.
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::operators::{fragment_arrival, FragCount, UnfinishedFragments};
/// use flowtide_dataflows::packet::{Addr, Packet};
/// use timely::container::CapacityContainerBuilder;
/// use timely::dataflow::operators::{Input, Inspect};
/// use timely::dataflow::InputHandle;
///
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::execute_directly(move |worker| {
///     let mut arrivals = InputHandle::<u64, CapacityContainerBuilder<Vec<FragCount>>>::new();
///     let mut done = InputHandle::<u64, CapacityContainerBuilder<Vec<Packet>>>::new();
///     let sink = sink.clone();
///     worker.dataflow::<u64, _, _>(|scope| {
///         let reassembled = scope.input_from(&mut done);
///         scope.input_from(&mut arrivals)
///             .unfinished_fragment_alerts(reassembled, &DetectConfig::default())
///             .inspect(move |a| sink.lock().unwrap().push(a.clone()));
///     });
///     // 800 fragments towards 10.0.0.9 within 8 s; 100 datagrams of 2 fragments
///     // complete, so 600 stay unfinished (the default threshold is 500 per 10 s).
///     for i in 0..800u64 {
///         let ts_ns = 20_000_000_000 + i * 10_000_000;
///         arrivals.advance_to(ts_ns);
///         done.advance_to(ts_ns);
///         let mut p = Packet { ts_ns, ip_version: 4, protocol: 17,
///             src: Addr::from_v4([192, 0, 2, 1]), dst: Addr::from_v4([10, 0, 0, 9]),
///             ..Default::default() };
///         arrivals.send(fragment_arrival(&p));
///         if i % 8 == 1 {
///             p.fragments = 2; // the reassembled datagram of this and the previous one
///             done.send(p);
///         }
///     }
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].score, 600.0);
/// assert_eq!(alerts[0].ts_ns, 30_000_000_000);
/// ```
pub trait UnfinishedFragments<'scope> {
    /// Counts, per destination and bucket of event time (`frag_bucket`), the IP fragments
    /// received minus the fragments of the datagrams reassembled, both by capture time;
    /// a destination with at least `frag_unfinished_threshold` unfinished fragments in a
    /// bucket raises a `frag_flood` alert at the bucket's end (timely time `end − 1`).
    /// A fragment flood whose datagrams never complete stays far below the eviction
    /// limits that `frag_alerts` watches, and its timeouts come a minute later.
    /// `self` holds one [`fragment_arrival`] per fragment given to the reassembler.
    fn unfinished_fragment_alerts(
        self,
        reassembled: StreamVec<'scope, u64, crate::packet::Packet>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert>;
}

impl<'scope> UnfinishedFragments<'scope> for StreamVec<'scope, u64, FragCount> {
    fn unfinished_fragment_alerts(
        self,
        reassembled: StreamVec<'scope, u64, crate::packet::Packet>,
        config: &DetectConfig,
    ) -> StreamVec<'scope, u64, Alert> {
        let config = config.clone();
        let bucket = config.frag_bucket_ns.max(1);
        let threshold = config.frag_unfinished_threshold;
        let received = self;
        let done = reassembled.flat_map(move |p| {
            (threshold > 0 && p.fragments > 0).then_some((
                p.dst,
                p.src,
                p.protocol,
                p.ts_ns,
                -i64::from(p.fragments),
            ))
        });
        let route = |c: &FragCount| {
            let mut s = StableHasher::new();
            s.write_addr(&c.0);
            s.finish()
        };
        received.binary_frontier::<_, Cb<Vec<Alert>>, _, _, _, _>(
            done,
            Exchange::new(route),
            Exchange::new(route),
            "UnfinishedFragments",
            move |_cap, _info| {
                let mut pending: BTreeMap<u64, (Capability<u64>, UnfinishedBucket)> =
                    BTreeMap::new();
                let add = move |time: &timely::dataflow::operators::InputCapability<u64>,
                                data: &mut Vec<FragCount>,
                                pending: &mut BTreeMap<
                    u64,
                    (Capability<u64>, UnfinishedBucket),
                >| {
                    let Some(&least) = time.least() else { return };
                    for (dst, src, protocol, ts, n) in data.drain(..) {
                        let end = (ts / bucket).saturating_add(1).saturating_mul(bucket);
                        let (_, b) = pending.entry(end).or_insert_with(|| {
                            (time.delayed(&least.max(end - 1), 0), BTreeMap::new())
                        });
                        let e = b.entry(dst).or_insert((0, protocol, BTreeSet::new()));
                        e.0 += n;
                        if n > 0 && e.2.len() < MAX_SOURCES {
                            e.2.insert(src);
                        }
                    }
                };
                move |(input1, frontier1), (input2, frontier2), output| {
                    input1.for_each(|time, data| add(&time, data, &mut pending));
                    input2.for_each(|time, data| add(&time, data, &mut pending));
                    while let Some(entry) = pending.first_entry() {
                        let end = *entry.key();
                        if frontier1.less_equal(&(end - 1)) || frontier2.less_equal(&(end - 1)) {
                            break;
                        }
                        let (cap, b) = entry.remove();
                        let mut session = output.session(&cap);
                        for (dst, (count, protocol, sources)) in b {
                            if count >= threshold as i64 {
                                if let Some(a) = frag_alert(
                                    &config,
                                    AlertKind::FragFlood,
                                    dst,
                                    protocol,
                                    &sources,
                                    count as u64,
                                    end,
                                    Some(("unfinished_fragments", threshold)),
                                ) {
                                    session.give(a);
                                }
                            }
                        }
                    }
                }
            },
        )
    }
}

#[cfg(test)]
mod tests;
