//! Event-time window statistics: the model shared by the flow table (which produces
//! per-pane partial aggregates) and the windows operator (which merges panes into
//! tumbling or hopping windows).
//!
//! ## Keys
//! Windows aggregate the traffic of *flows*, oriented from the flow's initiator (its
//! `src`) to its responder (`dst`), so both directions of a connection count towards
//! the same key:
//! - [`Granularity::Channel`]: (src, dst, protocol);
//! - [`Granularity::Host`]: src (the traffic of the connections a host initiated);
//! - [`Granularity::Service`]: (dst, dst port, protocol).
//!
//! ## Panes
//! Time is cut into panes of the window *slide*; a window of `size` (a multiple of the
//! slide) is the union of `size / slide` consecutive panes, so tumbling windows have one
//! pane each and hopping windows share panes. Every sum here is an exact integer, so
//! merging panes in any order gives bit-identical results, whatever the worker count.
//!
//! ## Inter-arrival times
//! Inter-arrival times are measured within each flow (between consecutive packets of the
//! same flow, either direction) and pooled over the key's flows; a sample belongs to the
//! pane of the later packet. Inter-arrival times between unrelated flows of a host say
//! nothing about either, so they are not mixed.

use serde::{Deserialize, Serialize};

use crate::hash::StableHasher;
use crate::packet::Addr;
use crate::time::NS_PER_SEC;

/// What a window aggregates over.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// (src, dst, protocol).
    #[default]
    Channel,
    /// src.
    Host,
    /// (dst, dst port, protocol).
    Service,
}

impl Granularity {
    /// Every granularity, in output order.
    pub const ALL: [Granularity; 3] = [
        Granularity::Channel,
        Granularity::Host,
        Granularity::Service,
    ];

    /// The name used in output files.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::Channel => "channel",
            Granularity::Host => "host",
            Granularity::Service => "service",
        }
    }
}

/// The key of a window: a granularity and the fields it uses (the others are zero).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct WindowKey {
    /// Which aggregation this is.
    pub granularity: Granularity,
    /// Source (initiator) address; unspecified for services.
    pub src: Addr,
    /// Destination (responder) address; unspecified for hosts.
    pub dst: Addr,
    /// Destination port; 0 except for services.
    pub dport: u16,
    /// IP protocol; 0 for hosts.
    pub protocol: u8,
}

impl WindowKey {
    /// The key of a flow's traffic at one granularity.
    pub fn of_flow(
        granularity: Granularity,
        src: Addr,
        dst: Addr,
        dport: u16,
        protocol: u8,
    ) -> WindowKey {
        match granularity {
            Granularity::Channel => WindowKey {
                granularity,
                src,
                dst,
                dport: 0,
                protocol,
            },
            Granularity::Host => WindowKey {
                granularity,
                src,
                dst: Addr::UNSPECIFIED,
                dport: 0,
                protocol: 0,
            },
            Granularity::Service => WindowKey {
                granularity,
                src: Addr::UNSPECIFIED,
                dst,
                dport,
                protocol,
            },
        }
    }

    /// The stable, well-mixed route of this key (same in every process).
    pub fn route(&self) -> u64 {
        let mut h = StableHasher::default();
        h.write_u64(self.granularity as u64);
        h.write_addr(&self.src);
        h.write_addr(&self.dst);
        h.write_u64((u64::from(self.dport) << 8) | u64::from(self.protocol));
        h.finish()
    }
}

/// Window settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowConfig {
    /// Window length (ns); a multiple of `slide_ns`.
    pub size_ns: u64,
    /// Distance between window starts (ns); equal to `size_ns` for tumbling windows.
    pub slide_ns: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            size_ns: 60 * NS_PER_SEC,
            slide_ns: 60 * NS_PER_SEC,
        }
    }
}

impl WindowConfig {
    /// Checks the settings: both positive, size a multiple of slide.
    pub fn validate(&self) -> Result<(), String> {
        if self.slide_ns == 0 || self.size_ns == 0 {
            return Err("window size and slide must be positive".into());
        }
        if !self.size_ns.is_multiple_of(self.slide_ns) {
            return Err("the window size must be a multiple of the window slide".into());
        }
        Ok(())
    }

    /// The start of the pane holding time `ts_ns`.
    #[inline]
    pub fn pane_start(&self, ts_ns: u64) -> u64 {
        ts_ns - ts_ns % self.slide_ns.max(1)
    }

    /// The end (exclusive) of the pane starting at `pane_start`.
    #[inline]
    pub fn pane_end(&self, pane_start: u64) -> u64 {
        pane_start.saturating_add(self.slide_ns.max(1))
    }

    /// Panes per window.
    pub fn panes_per_window(&self) -> u64 {
        (self.size_ns / self.slide_ns.max(1)).max(1)
    }
}

/// Index of each TCP flag in flag-count arrays, in NFStream's order of names.
pub mod flag_index {
    /// SYN.
    pub const SYN: usize = 0;
    /// CWR.
    pub const CWR: usize = 1;
    /// ECE.
    pub const ECE: usize = 2;
    /// URG.
    pub const URG: usize = 3;
    /// ACK.
    pub const ACK: usize = 4;
    /// PSH.
    pub const PSH: usize = 5;
    /// RST.
    pub const RST: usize = 6;
    /// FIN.
    pub const FIN: usize = 7;
    /// Names in index order (`syn`, `cwr`, ...).
    pub const NAMES: [&str; 8] = ["syn", "cwr", "ece", "urg", "ack", "psh", "rst", "fin"];
}

/// Exact additive statistics of some traffic over a span of event time (a pane or a
/// window).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Packets.
    pub packets: u64,
    /// IP bytes (sum of packet sizes).
    pub bytes: u64,
    /// Sum of squared packet sizes.
    pub size_sumsq: u128,
    /// Inter-arrival samples (within flows).
    pub iat_count: u64,
    /// Sum of inter-arrival times (ns).
    pub iat_sum_ns: u128,
    /// Sum of squared inter-arrival times (ns²).
    pub iat_sumsq: u128,
    /// Packets with each TCP flag, indexed by [`flag_index`].
    pub flags: [u64; 8],
    /// Flows whose first packet fell here.
    pub flows_started: u64,
    /// Flows that ended here (FIN/RST, idle or active timeout; not end of input).
    pub flows_ended: u64,
    /// Sum of the durations of the flows that ended here (ns).
    pub ended_duration_sum_ns: u128,
    /// Distinct peers, sorted: responders for hosts, initiators for services, empty for
    /// channels.
    pub peers: Vec<Addr>,
    /// Distinct destination ports, sorted (empty for services: they have one).
    pub dst_ports: Vec<u16>,
}

impl WindowStats {
    /// Adds `other` into `self` (exact; order-independent).
    pub fn merge(&mut self, other: &WindowStats) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.size_sumsq += other.size_sumsq;
        self.iat_count += other.iat_count;
        self.iat_sum_ns += other.iat_sum_ns;
        self.iat_sumsq += other.iat_sumsq;
        for (a, b) in self.flags.iter_mut().zip(other.flags.iter()) {
            *a += *b;
        }
        self.flows_started += other.flows_started;
        self.flows_ended += other.flows_ended;
        self.ended_duration_sum_ns += other.ended_duration_sum_ns;
        union_sorted(&mut self.peers, &other.peers);
        union_sorted(&mut self.dst_ports, &other.dst_ports);
    }

    /// Adds one distinct peer.
    pub fn add_peer(&mut self, peer: Addr) {
        if let Err(at) = self.peers.binary_search(&peer) {
            self.peers.insert(at, peer);
        }
    }

    /// Adds one distinct destination port.
    pub fn add_dst_port(&mut self, port: u16) {
        if let Err(at) = self.dst_ports.binary_search(&port) {
            self.dst_ports.insert(at, port);
        }
    }

    /// Mean packet size (bytes), 0 without packets.
    pub fn size_mean(&self) -> f64 {
        mean(u128::from(self.bytes), u128::from(self.packets))
    }

    /// Sample standard deviation of packet sizes (bytes), 0 with fewer than two packets.
    pub fn size_stddev(&self) -> f64 {
        sample_stddev(
            u128::from(self.packets),
            u128::from(self.bytes),
            self.size_sumsq,
        )
    }

    /// Mean inter-arrival time (ns), 0 without samples.
    pub fn iat_mean_ns(&self) -> f64 {
        mean(self.iat_sum_ns, u128::from(self.iat_count))
    }

    /// Sample standard deviation of inter-arrival times (ns).
    pub fn iat_stddev_ns(&self) -> f64 {
        sample_stddev(u128::from(self.iat_count), self.iat_sum_ns, self.iat_sumsq)
    }

    /// Mean duration of the flows that ended (ns), 0 if none did.
    pub fn ended_duration_mean_ns(&self) -> f64 {
        mean(self.ended_duration_sum_ns, u128::from(self.flows_ended))
    }
}

/// `sum / n` (0 when `n` is 0).
pub fn mean(sum: u128, n: u128) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum as f64 / n as f64
    }
}

/// The sample (n − 1) standard deviation from exact integer sums: the numerator
/// `n·Σx² − (Σx)²` is formed exactly (wide integer arithmetic, no cancellation) and only
/// then converted to floating point. 0 when `n < 2`.
pub fn sample_stddev(n: u128, sum: u128, sumsq: u128) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let num = wide_sub(wide_mul(n, sumsq), wide_mul(sum, sum));
    let var = wide_to_f64(num) / (n as f64) / ((n - 1) as f64);
    var.max(0.0).sqrt()
}

/// A 256-bit unsigned integer as (high, low) halves.
type Wide = (u128, u128);

fn wide_mul(a: u128, b: u128) -> Wide {
    let mask = u128::from(u64::MAX);
    let (a1, a0) = (a >> 64, a & mask);
    let (b1, b0) = (b >> 64, b & mask);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 & mask) + (p10 & mask);
    let lo = (p00 & mask) | (mid << 64);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    (hi, lo)
}

/// `a − b`, saturating at 0.
fn wide_sub(a: Wide, b: Wide) -> Wide {
    if a <= b {
        return (0, 0);
    }
    let (lo, borrow) = a.1.overflowing_sub(b.1);
    (a.0 - b.0 - u128::from(borrow), lo)
}

fn wide_to_f64(w: Wide) -> f64 {
    w.0 as f64 * 2f64.powi(128) + w.1 as f64
}

fn union_sorted<T: Ord + Copy>(into: &mut Vec<T>, other: &[T]) {
    if other.is_empty() {
        return;
    }
    if into.is_empty() {
        into.extend_from_slice(other);
        return;
    }
    let mut merged = Vec::with_capacity(into.len() + other.len());
    let (mut i, mut j) = (0, 0);
    while i < into.len() && j < other.len() {
        match into[i].cmp(&other[j]) {
            std::cmp::Ordering::Less => {
                merged.push(into[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                merged.push(other[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                merged.push(into[i]);
                i += 1;
                j += 1;
            }
        }
    }
    merged.extend_from_slice(&into[i..]);
    merged.extend_from_slice(&other[j..]);
    *into = merged;
}

/// One pane's statistics for one key, as the flow table emits them (already combined
/// over the flows of one worker).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaneAgg {
    /// The key.
    pub key: WindowKey,
    /// Start of the pane (ns); the pane ends at `pane_start_ns + slide`.
    pub pane_start_ns: u64,
    /// The statistics.
    pub stats: WindowStats,
}

/// A finished window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// The key.
    pub key: WindowKey,
    /// Window start (ns, inclusive).
    pub start_ns: u64,
    /// Window end (ns, exclusive).
    pub end_ns: u64,
    /// True when the input ended before the window did (its statistics cover less than
    /// the window's span).
    pub partial: bool,
    /// The statistics.
    pub stats: WindowStats,
}

impl WindowRecord {
    /// The canonical output order: window end, then key, then start.
    pub fn order_key(&self) -> (u64, WindowKey, u64) {
        (self.end_ns, self.key, self.start_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_pass(xs: &[u64]) -> f64 {
        let n = xs.len() as f64;
        let m = xs.iter().map(|&x| x as f64).sum::<f64>() / n;
        (xs.iter().map(|&x| (x as f64 - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    #[test]
    fn exact_stddev_matches_two_pass_even_with_a_huge_mean() {
        // A beacon: 1 s apart, jitter of a few ns. Naive f64 sums lose all of it.
        let xs: Vec<u64> = (0..1000).map(|i| 1_000_000_000 + (i % 7)).collect();
        let sum: u128 = xs.iter().map(|&x| u128::from(x)).sum();
        let sumsq: u128 = xs.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
        let got = sample_stddev(xs.len() as u128, sum, sumsq);
        let want = two_pass(&xs);
        assert!((got - want).abs() < 1e-9 * want.max(1.0), "{got} vs {want}");
    }

    #[test]
    fn wide_arithmetic_handles_extremes() {
        assert_eq!(wide_mul(u128::MAX, u128::MAX), (u128::MAX - 1, 1));
        assert_eq!(wide_sub((1, 0), (0, 1)), (0, u128::MAX));
        let n = 4_000_000_000u128;
        let x = 1_800_000_000_000u128; // 30 min in ns
        assert_eq!(sample_stddev(n, n * x, n * x * x), 0.0);
    }

    #[test]
    fn merge_is_order_independent() {
        let mut a = WindowStats {
            packets: 2,
            bytes: 100,
            peers: vec![Addr::from_v4([1, 1, 1, 1])],
            dst_ports: vec![80, 443],
            ..Default::default()
        };
        let b = WindowStats {
            packets: 1,
            bytes: 40,
            peers: vec![Addr::from_v4([1, 1, 1, 1]), Addr::from_v4([2, 2, 2, 2])],
            dst_ports: vec![22, 80],
            ..Default::default()
        };
        let mut c = b.clone();
        c.merge(&a);
        a.merge(&b);
        assert_eq!(a, c);
        assert_eq!(a.peers.len(), 2);
        assert_eq!(a.dst_ports, vec![22, 80, 443]);
    }

    #[test]
    fn panes() {
        let w = WindowConfig {
            size_ns: 60,
            slide_ns: 20,
        };
        assert_eq!(w.pane_start(59), 40);
        assert_eq!(w.pane_end(40), 60);
        assert_eq!(w.panes_per_window(), 3);
        assert!(WindowConfig {
            size_ns: 50,
            slide_ns: 20
        }
        .validate()
        .is_err());
    }
}
