//! How far a worker's reader may run ahead of the dataflow.
//!
//! The reader stamps packets with epochs (timely times) and the dataflow's outputs report,
//! through a probe, which epochs are complete. The reader is held back while either
//! - the outputs are more than `lag` of event time behind the input's epoch, or
//! - more than `max_packets` packets it sent sit in epochs that the outputs have not
//!   passed yet, and an earlier epoch than the current one is still incomplete (so
//!   waiting can make progress: the current epoch cannot complete before the reader
//!   moves on).
//!
//! The event-time lag keeps the dataflow busy: it must exceed the time operators
//! naturally hold records back (epochs close one tick behind, event-time buffers wait
//! for the frontier), or the reader waits on every epoch and the workers idle in turns.
//! The packet bound caps the memory that lag costs when event time is dense (a flood
//! of a million packets per second of capture time). Neither changes any result: only
//! when packets enter the dataflow, never their timestamps or order.

use std::collections::VecDeque;

/// Default event-time lag: long enough for the workers to overlap their epochs.
pub const DEFAULT_LAG_NS: u64 = 5_000_000_000;

/// Default bound on the packets a worker has in epochs that are not complete.
pub const DEFAULT_MAX_PACKETS: u64 = 1 << 18;

/// The packets a worker sent per epoch, until the outputs pass the epoch.
#[derive(Debug)]
pub struct InFlight {
    lag: u64,
    max_packets: u64,
    /// Packets sent so far.
    sent: u64,
    /// Packets sent in epochs known to be complete.
    done: u64,
    /// Per closed epoch: its time and the packets sent up to its end, oldest first.
    epochs: VecDeque<(u64, u64)>,
}

impl InFlight {
    /// `lag` in nanoseconds of event time; `max_packets` per worker.
    pub fn new(lag: u64, max_packets: u64) -> Self {
        InFlight {
            lag,
            max_packets,
            sent: 0,
            done: 0,
            epochs: VecDeque::new(),
        }
    }

    /// The event-time lag.
    pub fn lag(&self) -> u64 {
        self.lag
    }

    /// Counts `n` packets sent in the current epoch.
    #[inline]
    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
    }

    /// The input moves on from epoch `time`: everything sent so far belongs to epochs at
    /// or before it.
    pub fn close_epoch(&mut self, time: u64) {
        match self.epochs.back_mut() {
            Some(last) if last.0 == time => last.1 = self.sent,
            _ => self.epochs.push_back((time, self.sent)),
        }
    }

    /// Packets sent in epochs the outputs have not passed; `passed(t)` tells whether the
    /// outputs are complete for every time up to and including `t`.
    pub fn pending(&mut self, passed: impl Fn(u64) -> bool) -> u64 {
        while let Some(&(time, count)) = self.epochs.front() {
            if !passed(time) {
                break;
            }
            self.done = count;
            self.epochs.pop_front();
        }
        self.sent - self.done
    }

    /// Whether the reader must wait, with the input at epoch `input_time`;
    /// `behind(t)` tells whether the outputs are still incomplete for some time before
    /// `t`.
    pub fn must_wait(&mut self, input_time: u64, behind: impl Fn(u64) -> bool) -> bool {
        let horizon = input_time.saturating_sub(self.lag);
        if behind(horizon) {
            return true;
        }
        self.pending(|t| !behind(t.saturating_add(1))) > self.max_packets && behind(input_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_lag_holds_the_reader() {
        let mut f = InFlight::new(10, u64::MAX);
        // Outputs complete before 95: input at 100 is within the lag.
        assert!(!f.must_wait(100, |t| 95 < t));
        // Outputs complete before 85: input at 100 is too far ahead.
        assert!(f.must_wait(100, |t| 85 < t));
    }

    #[test]
    fn packet_bound_waits_only_for_closed_epochs() {
        let mut f = InFlight::new(u64::MAX, 100);
        f.sent(80);
        f.close_epoch(10);
        f.sent(80);
        f.close_epoch(20);
        f.sent(80);
        // 240 in flight, outputs complete before 10: epoch 10 and 20 are incomplete.
        assert!(f.must_wait(30, |t| 10 < t));
        // Outputs complete before 15 (epoch 10 done): 160 still pending, epoch 20 open.
        assert_eq!(f.pending(|t| t < 15), 160);
        assert!(f.must_wait(30, |t| 15 < t));
        // Outputs complete before 30: only the current epoch's 80 remain.
        assert!(!f.must_wait(30, |t| 30 < t));
        // Over the bound within the current epoch alone: waiting cannot help.
        f.sent(200);
        assert_eq!(f.pending(|t| t < 30), 280);
        assert!(!f.must_wait(30, |t| 30 < t));
    }

    #[test]
    fn reclosing_an_epoch_extends_it() {
        let mut f = InFlight::new(u64::MAX, 0);
        f.sent(5);
        f.close_epoch(10);
        f.sent(5);
        f.close_epoch(10);
        assert_eq!(f.pending(|t| t < 10), 10);
        assert_eq!(f.pending(|t| t <= 10), 0);
    }
}
