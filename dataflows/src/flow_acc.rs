//! Compact per-flow accumulators, as the flow table keeps them while a flow is open
//! (the finished record uses the roomier [`DirectionStats`]).
//!
//! Every field is 8-byte aligned or smaller (128-bit sums are stored as two words), and
//! per-direction counters are 32-bit: the flow table splits a flow (end reason
//! `active`) before a direction would reach 2³² packets, so no counter can overflow. Sums
//! of squared sizes fit 64 bits under that bound (2³² × 65 535²  < 2⁶⁴); larger IPv6
//! jumbogram sizes saturate.

use crate::flow::{count_flags, DirectionStats, IatStats};
use crate::packet::Packet;

/// A 128-bit sum stored as two words, so that records holding it stay 8-byte aligned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sum128 {
    lo: u64,
    hi: u64,
}

impl Sum128 {
    /// Adds `x` (wrapping at 2¹²⁸, which no sum here reaches).
    #[inline]
    pub fn add(&mut self, x: u128) {
        let (lo, carry) = self.lo.overflowing_add(x as u64);
        self.lo = lo;
        self.hi = self
            .hi
            .wrapping_add((x >> 64) as u64)
            .wrapping_add(u64::from(carry));
    }

    /// The value.
    #[inline]
    pub fn get(self) -> u128 {
        (u128::from(self.hi) << 64) | u128::from(self.lo)
    }
}

/// Inter-arrival accumulator (see [`IatStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IatAcc {
    min_ns: u64,
    max_ns: u64,
    sumsq: Sum128,
}

impl Default for IatAcc {
    fn default() -> Self {
        IatAcc {
            min_ns: u64::MAX,
            max_ns: 0,
            sumsq: Sum128::default(),
        }
    }
}

impl IatAcc {
    /// Records one gap.
    #[inline]
    pub fn add(&mut self, gap_ns: u64) {
        self.min_ns = self.min_ns.min(gap_ns);
        self.max_ns = self.max_ns.max(gap_ns);
        self.sumsq.add(u128::from(gap_ns) * u128::from(gap_ns));
    }

    /// As a record.
    pub fn stats(&self) -> IatStats {
        IatStats {
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            sumsq: self.sumsq.get(),
        }
    }
}

/// One direction of an open flow (128 bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirAcc {
    first_ns: u64,
    last_ns: u64,
    bytes: u64,
    frame_bytes: u64,
    payload_bytes: u64,
    size_sumsq: u64,
    iat: IatAcc,
    /// Packets.
    pub packets: u32,
    fragments: u32,
    size_min: u32,
    size_max: u32,
    flags: [u32; 8],
}

impl DirAcc {
    /// Counts one packet (packets come in event-time order; the caller keeps `packets`
    /// below `u32::MAX`).
    #[inline]
    pub fn add(&mut self, p: &Packet) {
        let size = p.ip_len;
        if self.packets == 0 {
            self.first_ns = p.ts_ns;
            self.size_min = size;
            self.size_max = size;
        } else {
            self.iat.add(p.ts_ns.saturating_sub(self.last_ns));
            self.size_min = self.size_min.min(size);
            self.size_max = self.size_max.max(size);
        }
        self.last_ns = p.ts_ns;
        self.packets += 1;
        self.bytes += u64::from(size);
        self.frame_bytes += u64::from(p.frame_len);
        self.payload_bytes += u64::from(p.payload_len);
        self.size_sumsq = self
            .size_sumsq
            .saturating_add(u64::from(size) * u64::from(size));
        self.fragments = self.fragments.saturating_add(u32::from(p.fragments));
        count_flags(&mut self.flags, p.tcp_flags);
    }

    /// As a record.
    pub fn stats(&self) -> DirectionStats {
        DirectionStats {
            first_ns: self.first_ns,
            last_ns: self.last_ns,
            packets: u64::from(self.packets),
            bytes: self.bytes,
            frame_bytes: self.frame_bytes,
            payload_bytes: self.payload_bytes,
            size_sumsq: u128::from(self.size_sumsq),
            iat: self.iat.stats(),
            flags: self.flags,
            fragments: self.fragments,
            size_min: self.size_min,
            size_max: self.size_max,
        }
    }
}

/// One direction's only packet, kept instead of a [`DirAcc`] while the direction has at
/// most one (24 bytes): most flows of a network (DNS and NTP exchanges, scans, unanswered
/// SYNs, ICMP echoes) never send a second packet in either direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LonePacket {
    ts_ns: u64,
    ip_len: u32,
    frame_len: u32,
    payload_len: u32,
    fragments: u16,
    tcp_flags: u8,
    present: bool,
}

impl LonePacket {
    /// The fields of `p` that a direction's statistics need.
    #[inline]
    pub fn of(p: &Packet) -> Self {
        LonePacket {
            ts_ns: p.ts_ns,
            ip_len: p.ip_len,
            frame_len: p.frame_len,
            payload_len: p.payload_len,
            fragments: p.fragments,
            tcp_flags: p.tcp_flags,
            present: true,
        }
    }

    /// Whether the direction has its packet.
    #[inline]
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// The packet's capture time.
    #[inline]
    pub fn ts_ns(&self) -> u64 {
        self.ts_ns
    }

    /// A packet with the fields kept (the others default).
    pub fn packet(&self) -> Packet {
        Packet {
            ts_ns: self.ts_ns,
            ip_len: self.ip_len,
            frame_len: self.frame_len,
            payload_len: self.payload_len,
            fragments: self.fragments,
            tcp_flags: self.tcp_flags,
            ..Packet::default()
        }
    }

    /// The accumulator the direction would have after its packets (none or this one).
    pub fn acc(&self) -> DirAcc {
        let mut acc = DirAcc::default();
        if self.present {
            acc.add(&self.packet());
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reaches_the_record() {
        let mut acc = DirAcc::default();
        for (i, (ts, len)) in [(5u64, 60u32), (900, 1500), (901, 40), (5_000_000_000, 9000)]
            .into_iter()
            .enumerate()
        {
            acc.add(&Packet {
                ts_ns: ts,
                ip_len: len,
                frame_len: len + 14,
                payload_len: len / 2,
                tcp_flags: i as u8 * 0x11,
                fragments: i as u16,
                ..Default::default()
            });
        }
        let r = acc.stats();
        assert_eq!((r.first_ns, r.last_ns, r.packets), (5, 5_000_000_000, 4));
        assert_eq!(
            (r.bytes, r.frame_bytes, r.payload_bytes),
            (10_600, 10_656, 5_300)
        );
        assert_eq!(r.size_sumsq, 60 * 60 + 1500 * 1500 + 40 * 40 + 9000 * 9000);
        assert_eq!((r.size_min, r.size_max, r.fragments), (40, 9000, 6));
        assert_eq!((r.iat.min_ns, r.iat.max_ns), (1, 5_000_000_000 - 901));
        let gaps = [895u128, 1, 5_000_000_000 - 901];
        assert_eq!(r.iat.sumsq, gaps.iter().map(|g| g * g).sum::<u128>());
        // 0x00, 0x11 (FIN, ACK), 0x22 (SYN, URG), 0x33 (FIN, SYN, ACK, URG).
        assert_eq!(r.flags, [2, 0, 0, 2, 2, 0, 0, 2]);
    }

    #[test]
    fn a_lone_packet_accumulates_like_one_added_packet() {
        let p = Packet {
            ts_ns: 7,
            ip_len: 1500,
            frame_len: 1518,
            payload_len: 1460,
            tcp_flags: 0x18,
            fragments: 3,
            ..Default::default()
        };
        let mut direct = DirAcc::default();
        direct.add(&p);
        assert_eq!(LonePacket::of(&p).acc(), direct);
        assert_eq!(LonePacket::default().acc(), DirAcc::default());
    }

    #[test]
    fn wide_sums_carry() {
        let mut s = Sum128::default();
        s.add(u128::from(u64::MAX));
        s.add(1);
        s.add(3 << 64);
        assert_eq!(s.get(), (4u128 << 64));
        assert_eq!(std::mem::size_of::<DirAcc>(), 128);
        assert_eq!(std::mem::size_of::<LonePacket>(), 24);
        assert_eq!(std::mem::align_of::<DirAcc>(), 8);
    }
}
