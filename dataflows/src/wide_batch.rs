//! Exchange in wide batches.
//!
//! Timely's default exchange ships a message every 8 KiB of records: 73 packets of
//! 112 bytes. Every message is an allocation made by the sending worker and freed by the
//! receiving one (a cross-thread free), plus a queue operation and progress accounting.
//! [`WideBatches`] is a container builder with a larger capacity per message, for the
//! per-packet exchanges:
//!
//! ```
//! use flowtide_dataflows::packet::Packet;
//! use flowtide_dataflows::wide_batch::WideBatches;
//! use timely::dataflow::channels::pact::ExchangeCore;
//!
//! let _pact = ExchangeCore::<WideBatches<Packet>, _>::new_core(|p: &Packet| p.index);
//! ```

use std::collections::VecDeque;

use timely::container::{ContainerBuilder, LengthPreservingContainerBuilder, PushInto};

/// Bytes of records per message (timely's default is 8 KiB).
pub const MESSAGE_BYTES: usize = 128 << 10;

/// Records per message for a record type.
pub const fn capacity<T>() -> usize {
    let size = std::mem::size_of::<T>();
    if size == 0 || size >= MESSAGE_BYTES {
        1
    } else {
        MESSAGE_BYTES / size
    }
}

/// A container builder for `Vec<T>` that ships a message every [`MESSAGE_BYTES`] of
/// records (and whatever is left when the operator finishes), in FIFO order.
#[derive(Debug)]
pub struct WideBatches<T> {
    current: Vec<T>,
    /// A shipped container, kept for its allocation.
    empty: Option<Vec<T>>,
    pending: VecDeque<Vec<T>>,
}

impl<T> Default for WideBatches<T> {
    fn default() -> Self {
        WideBatches {
            current: Vec::new(),
            empty: None,
            pending: VecDeque::new(),
        }
    }
}

impl<T> PushInto<T> for WideBatches<T> {
    #[inline]
    fn push_into(&mut self, item: T) {
        if self.current.capacity() == 0 {
            self.current = self.empty.take().unwrap_or_default();
            self.current.clear();
            self.current.reserve(capacity::<T>());
        }
        self.current.push(item);
        if self.current.len() >= capacity::<T>() {
            self.pending.push_back(std::mem::take(&mut self.current));
        }
    }
}

impl<T: 'static> ContainerBuilder for WideBatches<T> {
    type Container = Vec<T>;

    #[inline]
    fn extract(&mut self) -> Option<&mut Vec<T>> {
        let next = self.pending.pop_front()?;
        self.empty = Some(next);
        self.empty.as_mut()
    }

    #[inline]
    fn finish(&mut self) -> Option<&mut Vec<T>> {
        if !self.current.is_empty() {
            self.pending.push_back(std::mem::take(&mut self.current));
        }
        self.empty = self.pending.pop_front();
        self.empty.as_mut()
    }
}

impl<T: 'static> LengthPreservingContainerBuilder for WideBatches<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ships_full_messages_in_order_and_the_rest_at_finish() {
        let mut b = WideBatches::<u64>::default();
        let n = capacity::<u64>() as u64;
        for i in 0..(2 * n + 5) {
            b.push_into(i);
        }
        let mut seen = Vec::new();
        while let Some(c) = b.extract() {
            assert_eq!(c.len() as u64, n);
            seen.append(c);
        }
        while let Some(c) = b.finish() {
            seen.append(c);
        }
        assert_eq!(seen, (0..(2 * n + 5)).collect::<Vec<_>>());
    }
}
