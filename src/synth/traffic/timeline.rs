//! A small time-ordered queue of the packets a flow has already decided to send.

use std::collections::VecDeque;

/// Items ordered by timestamp; items with equal timestamps keep insertion order.
#[derive(Clone, Debug)]
pub struct Timeline<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Timeline {
            items: VecDeque::new(),
        }
    }
}

impl<T> Timeline<T> {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `item` at time `ts` (after any items with the same time).
    pub fn push(&mut self, ts: u64, item: T) {
        // Most pushes are at or near the end.
        let mut i = self.items.len();
        while i > 0 && self.items[i - 1].0 > ts {
            i -= 1;
        }
        self.items.insert(i, (ts, item));
    }

    /// Time of the earliest item.
    #[inline]
    pub fn next_ts(&self) -> Option<u64> {
        self.items.front().map(|(t, _)| *t)
    }

    /// Removes and returns the earliest item.
    #[inline]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        self.items.pop_front()
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_time_order_and_fifo_ties() {
        let mut t = Timeline::new();
        t.push(5, 'a');
        t.push(3, 'b');
        t.push(5, 'c');
        t.push(4, 'd');
        t.push(9, 'e');
        let order: Vec<char> = std::iter::from_fn(|| t.pop().map(|(_, c)| c)).collect();
        assert_eq!(order, vec!['b', 'd', 'a', 'c', 'e']);
    }
}
