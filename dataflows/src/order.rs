//! Releasing records in exact event-time order as the frontier advances.
//!
//! A timely timestamp in flowtide is a lower bound on the capture times of the records it
//! stamps. Once the input frontier has passed `t`, no record with a capture time below `t`
//! can still arrive, so those records can be processed — in (time, feed, index) order,
//! which makes every downstream result independent of how records were batched, stamped
//! or spread over workers.

use std::collections::VecDeque;

/// Something with a total event-time order.
pub trait EventOrdered {
    /// Capture time in nanoseconds.
    fn event_ns(&self) -> u64;
    /// The full, unique order key: (capture time, feed, index in feed).
    fn order_key(&self) -> (u64, u32, u64);
}

impl EventOrdered for crate::packet::Packet {
    #[inline]
    fn event_ns(&self) -> u64 {
        self.ts_ns
    }
    #[inline]
    fn order_key(&self) -> (u64, u32, u64) {
        crate::packet::Packet::order_key(self)
    }
}

/// A buffer that holds records until the frontier passes their event time, then hands
/// them out sorted.
///
/// Records are kept as a few *runs*, each already in order: a batch that continues a run
/// (its first record is not before the run's last) is appended to it, anything else is
/// sorted once and starts a run of its own. One feed read in capture order thus makes a
/// single run, from which [`EventTimeBuffer::release`] takes the ready prefix without
/// scanning what is still held or sorting anything; several runs (several feeds, or
/// chunks decoded by different workers) are merged.
///
/// ```
/// use flowtide_dataflows::order::EventTimeBuffer;
/// use flowtide_dataflows::packet::Packet;
/// let mut buf = EventTimeBuffer::default();
/// buf.push(Packet { ts_ns: 30, index: 2, ..Default::default() });
/// buf.push(Packet { ts_ns: 10, index: 0, ..Default::default() });
/// buf.push(Packet { ts_ns: 20, index: 1, ..Default::default() });
/// let ready: Vec<u64> = buf.release(25).map(|p| p.ts_ns).collect();
/// assert_eq!(ready, vec![10, 20]);
/// assert_eq!(buf.len(), 1);
/// ```
#[derive(Debug)]
pub struct EventTimeBuffer<R> {
    /// Runs, each in ascending order key; never empty.
    runs: Vec<VecDeque<R>>,
    /// Records being handed out.
    ready: Vec<R>,
    /// Emptied runs, kept for their allocation.
    spare: Vec<VecDeque<R>>,
    /// Records held.
    len: usize,
}

impl<R> Default for EventTimeBuffer<R> {
    fn default() -> Self {
        EventTimeBuffer {
            runs: Vec::new(),
            ready: Vec::new(),
            spare: Vec::new(),
            len: 0,
        }
    }
}

impl<R: EventOrdered> EventTimeBuffer<R> {
    /// Holds one record.
    #[inline]
    pub fn push(&mut self, record: R) {
        let key = record.order_key();
        self.len += 1;
        match self.run_continued_by(key) {
            Some(i) => self.runs[i].push_back(record),
            None => {
                let mut run = self.spare.pop().unwrap_or_default();
                run.push_back(record);
                self.runs.push(run);
            }
        }
    }

    /// Holds every record of a batch, leaving the batch empty.
    pub fn extend_from(&mut self, batch: &mut Vec<R>) {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        let in_order = first.order_key() <= last.order_key()
            && batch
                .windows(2)
                .all(|w| w[0].order_key() <= w[1].order_key());
        if !in_order {
            batch.sort_by_key(|r| r.order_key());
        }
        self.len += batch.len();
        let first = batch[0].order_key();
        match self.run_continued_by(first) {
            Some(i) => self.runs[i].extend(batch.drain(..)),
            None => {
                let mut run = self.spare.pop().unwrap_or_default();
                run.extend(batch.drain(..));
                self.runs.push(run);
            }
        }
    }

    /// The run whose last record is latest among those not after `key`: appending there
    /// keeps it in order and leaves the other runs free for later batches.
    fn run_continued_by(&self, key: (u64, u32, u64)) -> Option<usize> {
        let mut best: Option<(usize, (u64, u32, u64))> = None;
        for (i, run) in self.runs.iter().enumerate() {
            if let Some(last) = run.back().map(EventOrdered::order_key) {
                if last <= key && best.is_none_or(|(_, b)| last > b) {
                    best = Some((i, last));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes and returns, in event-time order, every record with capture time below
    /// `frontier` (`u64::MAX` releases everything).
    pub fn release(&mut self, frontier: u64) -> std::vec::Drain<'_, R> {
        self.ready.clear();
        let mut contributing = 0;
        for run in &mut self.runs {
            let before = self.ready.len();
            while run.front().is_some_and(|r| r.event_ns() < frontier) {
                if let Some(r) = run.pop_front() {
                    self.ready.push(r);
                }
            }
            if self.ready.len() > before {
                contributing += 1;
            }
        }
        if contributing > 1 {
            // Each run's part is in order: the stable sort merges the runs.
            self.ready.sort_by_key(|r| r.order_key());
        }
        let mut i = 0;
        while i < self.runs.len() {
            if self.runs[i].is_empty() {
                let run = self.runs.swap_remove(i);
                if self.spare.len() < 4 {
                    self.spare.push(run);
                }
            } else {
                i += 1;
            }
        }
        self.len -= self.ready.len();
        self.ready.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Packet;
    use proptest::prelude::*;

    fn packet(ts_ns: u64, feed: u32, index: u64) -> Packet {
        Packet {
            ts_ns,
            feed,
            index,
            ..Default::default()
        }
    }

    proptest! {
        /// Whatever the batches (in order or not, interleaved from several feeds) and
        /// frontiers, the records come out exactly once, each release in order and
        /// holding exactly the records below its frontier.
        #[test]
        fn releases_exactly_what_the_frontier_passed(
            batches in prop::collection::vec(
                prop::collection::vec((0u64..500, 0u32..3), 0..40), 1..12),
            frontiers in prop::collection::vec(0u64..600, 1..12),
        ) {
            let mut buf = EventTimeBuffer::default();
            let mut held: Vec<Packet> = Vec::new();
            let mut index = 0u64;
            let mut frontier = 0u64;
            for (i, batch) in batches.iter().enumerate() {
                let mut records: Vec<Packet> = batch
                    .iter()
                    .filter(|(ts, _)| *ts >= frontier)
                    .map(|&(ts, feed)| { index += 1; packet(ts, feed, index) })
                    .collect();
                if i % 2 == 0 {
                    records.sort_by_key(|p| p.order_key());
                }
                if i % 3 == 0 {
                    for r in records.drain(..) {
                        held.push(r.clone());
                        buf.push(r);
                    }
                } else {
                    held.extend(records.iter().cloned());
                    buf.extend_from(&mut records);
                    prop_assert!(records.is_empty());
                }
                prop_assert_eq!(buf.len(), held.len());
                let f = frontiers[i % frontiers.len()].max(frontier);
                frontier = f;
                let out: Vec<Packet> = buf.release(f).collect();
                let mut expected: Vec<Packet> =
                    held.iter().filter(|p| p.ts_ns < f).cloned().collect();
                expected.sort_by_key(|p| p.order_key());
                held.retain(|p| p.ts_ns >= f);
                prop_assert_eq!(out, expected);
                prop_assert_eq!(buf.len(), held.len());
            }
            let rest: Vec<Packet> = buf.release(u64::MAX).collect();
            held.sort_by_key(|p| p.order_key());
            prop_assert_eq!(rest, held);
            prop_assert!(buf.is_empty());
        }
    }
}
