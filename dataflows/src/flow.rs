//! Flow records: what the flow table emits for every finished flow, with the running
//! statistics it keeps per direction.
//!
//! Every accumulator is an exact integer (counts, sums, sums of squares), so statistics
//! are exact, independent of the order in which they are combined, and the standard
//! deviations are computed from exact sums without cancellation (see
//! [`crate::window::sample_stddev`]).

use serde::{Deserialize, Serialize};

use crate::flow_key::FlowKey;
use crate::packet::{tcp, Addr, Context};
use crate::window::{flag_index, mean, sample_stddev};

/// Why a flow ended.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the idle timeout (event time).
    #[default]
    Idle,
    /// The flow reached the active timeout and was split; the next packet starts a new
    /// flow.
    Active,
    /// TCP: both sides sent FIN (and the linger passed).
    Fin,
    /// TCP: a side sent RST (and the linger passed).
    Rst,
    /// The input ended (end of the capture, or capture stopped) with the flow still open.
    EndOfInput,
}

impl EndReason {
    /// The name used in output files.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Idle => "idle",
            EndReason::Active => "active",
            EndReason::Fin => "fin",
            EndReason::Rst => "rst",
            EndReason::EndOfInput => "end_of_input",
        }
    }
}

/// Inter-arrival statistics of a sequence of packets (the count and the sum follow from
/// the packets' count and first and last times).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IatStats {
    /// Smallest gap (ns); `u64::MAX` before the second packet.
    pub min_ns: u64,
    /// Largest gap (ns).
    pub max_ns: u64,
    /// Sum of squared gaps (ns²).
    pub sumsq: u128,
}

impl Default for IatStats {
    fn default() -> Self {
        IatStats {
            min_ns: u64::MAX,
            max_ns: 0,
            sumsq: 0,
        }
    }
}

impl IatStats {
    /// Records one gap.
    #[inline]
    pub fn add(&mut self, gap_ns: u64) {
        self.min_ns = self.min_ns.min(gap_ns);
        self.max_ns = self.max_ns.max(gap_ns);
        self.sumsq += u128::from(gap_ns) * u128::from(gap_ns);
    }
}

/// The statistics of one direction of a flow (or, combined, of both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionStats {
    /// Capture time of the first packet (ns); 0 without packets.
    pub first_ns: u64,
    /// Capture time of the last packet (ns); 0 without packets.
    pub last_ns: u64,
    /// Packets (a reassembled datagram counts once).
    pub packets: u64,
    /// Bytes at the IP layer (IP total length); the packet size of the size statistics.
    pub bytes: u64,
    /// Bytes on the wire (frame lengths; all fragments' frames for a reassembled datagram).
    pub frame_bytes: u64,
    /// Transport payload bytes.
    pub payload_bytes: u64,
    /// Sum of squared packet sizes.
    pub size_sumsq: u128,
    /// Inter-arrival statistics within this direction.
    pub iat: IatStats,
    /// Packets carrying each TCP flag, indexed by [`flag_index`].
    pub flags: [u32; 8],
    /// IP fragments the reassembled packets of this direction were made of.
    pub fragments: u32,
    /// Smallest packet size (0 without packets).
    pub size_min: u32,
    /// Largest packet size.
    pub size_max: u32,
}

/// Adds a packet's TCP flags to per-flag counters.
#[inline]
pub fn count_flags<C: Copy + std::ops::Add<Output = C> + From<u8>>(counts: &mut [C; 8], f: u8) {
    if f == 0 {
        return;
    }
    let bit = |b: u8| C::from(u8::from(f & b != 0));
    counts[flag_index::SYN] = counts[flag_index::SYN] + bit(tcp::SYN);
    counts[flag_index::CWR] = counts[flag_index::CWR] + bit(tcp::CWR);
    counts[flag_index::ECE] = counts[flag_index::ECE] + bit(tcp::ECE);
    counts[flag_index::URG] = counts[flag_index::URG] + bit(tcp::URG);
    counts[flag_index::ACK] = counts[flag_index::ACK] + bit(tcp::ACK);
    counts[flag_index::PSH] = counts[flag_index::PSH] + bit(tcp::PSH);
    counts[flag_index::RST] = counts[flag_index::RST] + bit(tcp::RST);
    counts[flag_index::FIN] = counts[flag_index::FIN] + bit(tcp::FIN);
}

impl DirectionStats {
    /// Last minus first packet time (ns).
    pub fn duration_ns(&self) -> u64 {
        self.last_ns.saturating_sub(self.first_ns)
    }

    /// Mean packet size.
    pub fn size_mean(&self) -> f64 {
        mean(u128::from(self.bytes), u128::from(self.packets))
    }

    /// Sample standard deviation of packet sizes (0 below two packets).
    pub fn size_stddev(&self) -> f64 {
        sample_stddev(
            u128::from(self.packets),
            u128::from(self.bytes),
            self.size_sumsq,
        )
    }

    /// Gaps between this direction's packets.
    pub fn iat_count(&self) -> u64 {
        self.packets.saturating_sub(1)
    }

    /// Smallest gap (ns), 0 below two packets.
    pub fn iat_min_ns(&self) -> u64 {
        if self.packets < 2 {
            0
        } else {
            self.iat.min_ns
        }
    }

    /// Mean gap (ns), 0 below two packets.
    pub fn iat_mean_ns(&self) -> f64 {
        mean(u128::from(self.duration_ns()), u128::from(self.iat_count()))
    }

    /// Sample standard deviation of the gaps (ns), 0 below three packets.
    pub fn iat_stddev_ns(&self) -> f64 {
        sample_stddev(
            u128::from(self.iat_count()),
            u128::from(self.duration_ns()),
            self.iat.sumsq,
        )
    }

    /// Packets with flag `i` ([`flag_index`]).
    pub fn flag(&self, i: usize) -> u64 {
        u64::from(self.flags[i])
    }
}

/// The first packet of a new UDP flow, announced as the flow opens (when the flow table is
/// asked to: [`crate::flow_state::FlowTableConfig::announce_udp_min_bytes`]), for rules
/// that must not wait for the flow to end.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FlowOpening {
    /// Capture time of the packet (ns).
    pub ts_ns: u64,
    /// Its sender: the flow's source.
    pub src: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Addr,
    /// Destination port.
    pub dport: u16,
    /// IP length of the packet (of the whole datagram when it was reassembled).
    pub ip_len: u32,
}

/// A finished flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The canonical key (for ordering and routing).
    pub key: FlowKey,
    /// Source address: the TCP initiator when its SYN was seen, else the sender of the
    /// first packet.
    pub src: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Addr,
    /// Destination port.
    pub dport: u16,
    /// IP version of the first packet.
    pub ip_version: u8,
    /// Capture time of the first packet (ns).
    pub first_ns: u64,
    /// Capture time of the last packet (ns).
    pub last_ns: u64,
    /// Event time at which the flow was known to have ended (ns): the deadline that ended
    /// it (idle, active, TCP close plus linger), the time of the packet that replaced it,
    /// or `u64::MAX` at the end of input. Output files are ordered by it.
    pub end_ns: u64,
    /// Why it ended.
    pub end_reason: EndReason,
    /// The flow continues a record of the same key that ended at the active timeout
    /// (its first packet came within the idle timeout of that record's last one); its
    /// source and destination are that record's.
    pub continued: bool,
    /// An ICMP or ICMPv6 echo exchange: the source sent an echo request (the requester is
    /// the source, whichever packet came first).
    pub icmp_echo: bool,
    /// Source → destination statistics.
    pub src2dst: DirectionStats,
    /// Destination → source statistics.
    pub dst2src: DirectionStats,
    /// Inter-arrival statistics over both directions.
    pub bidirectional_iat: IatStats,
}

impl FlowRecord {
    /// The flow's context.
    pub fn ctx(&self) -> &Context {
        &self.key.ctx
    }

    /// The canonical output order: end time, then key, then start.
    pub fn order_key(&self) -> (u64, FlowKey, u64) {
        (self.end_ns, self.key, self.first_ns)
    }

    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.src2dst.packets + self.dst2src.packets
    }

    /// Both directions' statistics combined (the bidirectional inter-arrival statistics
    /// are [`FlowRecord::bidirectional_iat`]'s, not a combination).
    pub fn bidirectional(&self) -> DirectionStats {
        let (a, b) = (&self.src2dst, &self.dst2src);
        let mut flags = [0u32; 8];
        for (i, f) in flags.iter_mut().enumerate() {
            *f = a.flags[i].saturating_add(b.flags[i]);
        }
        let (size_min, size_max) = match (a.packets, b.packets) {
            (0, _) => (b.size_min, b.size_max),
            (_, 0) => (a.size_min, a.size_max),
            _ => (a.size_min.min(b.size_min), a.size_max.max(b.size_max)),
        };
        DirectionStats {
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            packets: a.packets + b.packets,
            bytes: a.bytes + b.bytes,
            frame_bytes: a.frame_bytes + b.frame_bytes,
            payload_bytes: a.payload_bytes + b.payload_bytes,
            size_sumsq: a.size_sumsq + b.size_sumsq,
            iat: self.bidirectional_iat,
            flags,
            fragments: a.fragments.saturating_add(b.fragments),
            size_min,
            size_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow_acc::DirAcc;
    use crate::packet::Packet;

    fn pkt(ts: u64, len: u32, flags: u8) -> Packet {
        Packet {
            ts_ns: ts,
            ip_len: len,
            frame_len: len + 14,
            tcp_flags: flags,
            ..Default::default()
        }
    }

    fn two_pass_stddev(xs: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    }

    #[test]
    fn running_statistics_match_a_two_pass_computation() {
        let times = [0u64, 10, 35, 36, 100, 1_000_000_007];
        let sizes = [60u32, 1500, 40, 40, 576, 9000];
        let mut acc = DirAcc::default();
        for (t, s) in times.iter().zip(sizes) {
            acc.add(&pkt(*t, s, tcp::ACK | tcp::PSH));
        }
        let d = acc.stats();
        let sz: Vec<f64> = sizes.iter().map(|&s| f64::from(s)).collect();
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        assert_eq!(d.packets, 6);
        assert_eq!((d.size_min, d.size_max), (40, 9000));
        assert!((d.size_mean() - sz.iter().sum::<f64>() / 6.0).abs() < 1e-9);
        assert!((d.size_stddev() - two_pass_stddev(&sz)).abs() < 1e-9);
        assert_eq!((d.iat_min_ns(), d.iat.max_ns), (1, 1_000_000_007 - 100));
        assert!((d.iat_mean_ns() - gaps.iter().sum::<f64>() / 5.0).abs() < 1e-6);
        assert!((d.iat_stddev_ns() - two_pass_stddev(&gaps)).abs() < 1e-6);
        assert_eq!(d.flag(flag_index::ACK), 6);
        assert_eq!(d.flag(flag_index::SYN), 0);
    }

    #[test]
    fn fewer_than_two_packets_have_zero_spread() {
        let mut acc = DirAcc::default();
        let d = acc.stats();
        assert_eq!(
            (d.size_stddev(), d.iat_mean_ns(), d.iat_min_ns()),
            (0.0, 0.0, 0)
        );
        acc.add(&pkt(5, 100, 0));
        let d = acc.stats();
        assert_eq!(
            (d.size_stddev(), d.iat_mean_ns(), d.iat_min_ns()),
            (0.0, 0.0, 0)
        );
        assert_eq!((d.first_ns, d.last_ns, d.size_min), (5, 5, 100));
    }

    #[test]
    fn every_flag_is_counted() {
        let mut c = [0u32; 8];
        count_flags(&mut c, 0xff);
        count_flags(&mut c, tcp::SYN | tcp::ACK);
        assert_eq!(c[flag_index::SYN], 2);
        assert_eq!(c[flag_index::ACK], 2);
        assert_eq!(c[flag_index::CWR], 1);
        assert_eq!(c.iter().sum::<u32>(), 10);
    }
}
