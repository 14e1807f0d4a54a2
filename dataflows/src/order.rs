//! Releasing records in exact event-time order as the frontier advances.
//!
//! A timely timestamp in flowtide is a lower bound on the capture times of the records it
//! stamps. Once the input frontier has passed `t`, no record with a capture time below `t`
//! can still arrive, so those records can be processed — in (time, feed, index) order,
//! which makes every downstream result independent of how records were batched, stamped
//! or spread over workers.

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
    pending: Vec<R>,
    ready: Vec<R>,
}

impl<R> Default for EventTimeBuffer<R> {
    fn default() -> Self {
        EventTimeBuffer {
            pending: Vec::new(),
            ready: Vec::new(),
        }
    }
}

impl<R: EventOrdered> EventTimeBuffer<R> {
    /// Holds one record.
    #[inline]
    pub fn push(&mut self, record: R) {
        self.pending.push(record);
    }

    /// Holds every record of a batch, leaving the batch empty.
    #[inline]
    pub fn extend_from(&mut self, batch: &mut Vec<R>) {
        if self.pending.is_empty() {
            std::mem::swap(&mut self.pending, batch);
        } else {
            self.pending.append(batch);
        }
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Removes and returns, in event-time order, every record with capture time below
    /// `frontier` (`u64::MAX` releases everything).
    pub fn release(&mut self, frontier: u64) -> std::vec::Drain<'_, R> {
        self.ready.clear();
        if frontier == u64::MAX || self.pending.iter().all(|r| r.event_ns() < frontier) {
            std::mem::swap(&mut self.ready, &mut self.pending);
        } else {
            let mut i = 0;
            while i < self.pending.len() {
                if self.pending[i].event_ns() < frontier {
                    self.ready.push(self.pending.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        // Already-sorted input (the common case: one feed in capture order) costs O(n).
        self.ready.sort_by_key(|r| r.order_key());
        self.ready.drain(..)
    }
}
