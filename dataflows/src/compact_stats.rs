//! [`CompactStats`]: window statistics in a few bytes, for state that holds millions of
//! keys.
//!
//! A [`WindowStats`] is 224 bytes plus two heap lists, whatever it holds. Most keys of a
//! large population (a scan's targets, a spoofed flood's sources, the hosts of a big
//! network in a quiet minute) hold one flow or a few packets, so almost every field is
//! zero or small. [`CompactStats`] encodes the fields that are not zero as LEB128
//! variable-length integers after a bitmap of which ones are present, stores encodings of
//! up to [`INLINE_BYTES`] bytes in place (24 bytes in all: no heap allocation for a key
//! of one SYN or one DNS exchange) and longer ones on the heap. A key that receives a
//! second aggregate is encoded again; from its third it is merged in its full form.
//! Every value round-trips exactly.

use crate::packet::Addr;
use crate::varint::{put_varint, Reader, Scratch};
use crate::window::WindowStats;

/// Encodings of at most this many bytes are stored in place.
pub const INLINE_BYTES: usize = 22;

/// Window statistics in compact form (24 bytes, see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompactStats {
    /// An encoding of at most [`INLINE_BYTES`] bytes, in place.
    Inline {
        /// Bytes used.
        len: u8,
        /// The encoding (the first `len` bytes).
        bytes: [u8; INLINE_BYTES],
    },
    /// A longer encoding.
    Packed(Box<[u8]>),
    /// A longer encoding of statistics merged once already (the next merge goes
    /// unencoded).
    Remerged(Box<[u8]>),
    /// Statistics merged from several aggregates, unencoded (merging more stays cheap).
    Merged(Box<WindowStats>),
}

impl Default for CompactStats {
    fn default() -> Self {
        CompactStats::pack(&WindowStats::default())
    }
}

/// Bits of the presence bitmap.
mod bit {
    pub const PACKETS: u32 = 0;
    pub const BYTES: u32 = 1;
    pub const SIZE_SUMSQ: u32 = 2;
    pub const IAT_COUNT: u32 = 3;
    pub const IAT_SUM: u32 = 4;
    pub const IAT_SUMSQ: u32 = 5;
    /// Flags take bits 6 to 13.
    pub const FLAGS: u32 = 6;
    pub const STARTED: u32 = 14;
    pub const ENDED: u32 = 15;
    pub const DURATION: u32 = 16;
    pub const PEERS: u32 = 17;
    pub const PORTS: u32 = 18;
}

/// Longest encoding of the fields other than the bitmap and the two lists: five 64-bit
/// counts and four 128-bit sums (10 and 19 bytes at most) and 8 flag counts.
const SCALARS_MAX: usize = 5 * 10 + 4 * 19 + 8 * 10;

/// Longest encoding of the presence bitmap (19 bits).
const BITMAP_MAX: usize = 3;

/// The peers' encoding: a byte 4 and four octets for an IPv4 address, a byte 6 and sixteen
/// octets otherwise.
fn put_peer(out: &mut Vec<u8>, a: &Addr) {
    match a.as_v4() {
        Some(v4) => {
            out.push(4);
            out.extend_from_slice(&v4);
        }
        None => {
            out.push(6);
            out.extend_from_slice(&a.0);
        }
    }
}

impl CompactStats {
    /// The compact form of `s`.
    pub fn pack(s: &WindowStats) -> CompactStats {
        let mut present = 0u32;
        let mut bitmap = Scratch::<BITMAP_MAX>::new();
        let mut fields = Scratch::<SCALARS_MAX>::new();
        let mut field = |bit: u32, v: u128| {
            if v != 0 {
                present |= 1 << bit;
                fields.put(v);
            }
        };
        field(bit::PACKETS, u128::from(s.packets));
        field(bit::BYTES, u128::from(s.bytes));
        field(bit::SIZE_SUMSQ, s.size_sumsq);
        field(bit::IAT_COUNT, u128::from(s.iat_count));
        field(bit::IAT_SUM, s.iat_sum_ns);
        field(bit::IAT_SUMSQ, s.iat_sumsq);
        for (i, &f) in (0u32..).zip(s.flags.iter()) {
            field(bit::FLAGS + i, u128::from(f));
        }
        field(bit::STARTED, u128::from(s.flows_started));
        field(bit::ENDED, u128::from(s.flows_ended));
        field(bit::DURATION, s.ended_duration_sum_ns);
        if !s.peers.is_empty() {
            present |= 1 << bit::PEERS;
        }
        if !s.dst_ports.is_empty() {
            present |= 1 << bit::PORTS;
        }
        bitmap.put(u128::from(present));
        let (bitmap, fields) = (bitmap.bytes(), fields.bytes());
        let head = bitmap.len() + fields.len();
        let lists = if s.peers.is_empty() && s.dst_ports.is_empty() {
            0
        } else {
            // Counts, each peer at most 17 bytes, each port at most 3.
            20 + 17 * s.peers.len() + 3 * s.dst_ports.len()
        };
        if lists == 0 && head <= INLINE_BYTES {
            let mut bytes = [0u8; INLINE_BYTES];
            bytes[..bitmap.len()].copy_from_slice(bitmap);
            bytes[bitmap.len()..head].copy_from_slice(fields);
            return CompactStats::Inline {
                len: head as u8,
                bytes,
            };
        }
        let mut out = Vec::with_capacity(head + lists);
        out.extend_from_slice(bitmap);
        out.extend_from_slice(fields);
        if !s.peers.is_empty() {
            put_varint(&mut out, s.peers.len() as u128);
            for a in &s.peers {
                put_peer(&mut out, a);
            }
        }
        if !s.dst_ports.is_empty() {
            put_varint(&mut out, s.dst_ports.len() as u128);
            let mut prev = 0u16;
            for &p in &s.dst_ports {
                // Sorted ports make small deltas; wrapping keeps any order exact.
                put_varint(&mut out, u128::from(p.wrapping_sub(prev)));
                prev = p;
            }
        }
        if out.len() <= INLINE_BYTES {
            let mut bytes = [0u8; INLINE_BYTES];
            bytes[..out.len()].copy_from_slice(&out);
            return CompactStats::Inline {
                len: out.len() as u8,
                bytes,
            };
        }
        CompactStats::Packed(out.into_boxed_slice())
    }

    /// The statistics, decoded.
    pub fn unpack(&self) -> WindowStats {
        let bytes: &[u8] = match self {
            CompactStats::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE_BYTES)],
            CompactStats::Packed(b) | CompactStats::Remerged(b) => b,
            CompactStats::Merged(s) => return (**s).clone(),
        };
        let mut r = Reader::new(bytes);
        let present = u32::try_from(r.varint()).unwrap_or(0);
        let has = |bit: u32| present & (1 << bit) != 0;
        let mut s = WindowStats::default();
        let mut next = |bit: u32| if has(bit) { r.varint() } else { 0 };
        s.packets = u64::try_from(next(bit::PACKETS)).unwrap_or(u64::MAX);
        s.bytes = u64::try_from(next(bit::BYTES)).unwrap_or(u64::MAX);
        s.size_sumsq = next(bit::SIZE_SUMSQ);
        s.iat_count = u64::try_from(next(bit::IAT_COUNT)).unwrap_or(u64::MAX);
        s.iat_sum_ns = next(bit::IAT_SUM);
        s.iat_sumsq = next(bit::IAT_SUMSQ);
        for (i, f) in (0u32..).zip(s.flags.iter_mut()) {
            *f = u64::try_from(next(bit::FLAGS + i)).unwrap_or(u64::MAX);
        }
        s.flows_started = u64::try_from(next(bit::STARTED)).unwrap_or(u64::MAX);
        s.flows_ended = u64::try_from(next(bit::ENDED)).unwrap_or(u64::MAX);
        s.ended_duration_sum_ns = next(bit::DURATION);
        if has(bit::PEERS) {
            let n = r.u64() as usize;
            s.peers.reserve_exact(n.min(bytes.len()));
            for _ in 0..n {
                let peer = match r.byte() {
                    4 => {
                        let mut v4 = [0u8; 4];
                        for o in &mut v4 {
                            *o = r.byte();
                        }
                        Addr::from_v4(v4)
                    }
                    _ => {
                        let mut v6 = [0u8; 16];
                        for o in &mut v6 {
                            *o = r.byte();
                        }
                        Addr(v6)
                    }
                };
                s.peers.push(peer);
            }
        }
        if has(bit::PORTS) {
            let n = r.u64() as usize;
            s.dst_ports.reserve_exact(n.min(bytes.len()));
            let mut prev = 0u16;
            for _ in 0..n {
                let delta = u16::try_from(r.varint()).unwrap_or(0);
                prev = prev.wrapping_add(delta);
                s.dst_ports.push(prev);
            }
        }
        s
    }

    /// Adds `other` (exact, as [`WindowStats::merge`]). The result of a first merge is
    /// encoded again (a key of two aggregates, such as a flow's start and its end, stays
    /// compact); from the second merge on it is kept unencoded, so that a key receiving
    /// many aggregates pays for the encoding at most twice.
    pub fn merge(&mut self, other: &WindowStats) {
        match self {
            CompactStats::Merged(s) => s.merge(other),
            CompactStats::Remerged(_) => {
                let mut s = self.unpack();
                s.merge(other);
                *self = CompactStats::Merged(Box::new(s));
            }
            CompactStats::Inline { .. } | CompactStats::Packed(_) => {
                let mut s = self.unpack();
                s.merge(other);
                *self = match CompactStats::pack(&s) {
                    CompactStats::Packed(b) => CompactStats::Remerged(b),
                    packed => packed,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_is_24_bytes() {
        assert_eq!(std::mem::size_of::<CompactStats>(), 24);
    }

    #[test]
    fn one_syn_is_inline() {
        let mut s = WindowStats {
            packets: 1,
            bytes: 40,
            size_sumsq: 1600,
            flows_started: 1,
            dst_ports: vec![80],
            ..Default::default()
        };
        s.flags[0] = 1;
        let c = CompactStats::pack(&s);
        assert!(matches!(c, CompactStats::Inline { .. }), "{c:?}");
        assert_eq!(c.unpack(), s);
        s.peers = vec![Addr::from_v4([192, 0, 2, 1])];
        let c = CompactStats::pack(&s);
        assert!(matches!(c, CompactStats::Inline { .. }), "{c:?}");
        assert_eq!(c.unpack(), s);
        assert_eq!(CompactStats::default().unpack(), WindowStats::default());
    }

    #[test]
    fn extremes_round_trip() {
        let s = WindowStats {
            packets: u64::MAX,
            bytes: u64::MAX,
            size_sumsq: u128::MAX,
            iat_count: u64::MAX,
            iat_sum_ns: u128::MAX,
            iat_sumsq: u128::MAX,
            flags: [u64::MAX; 8],
            flows_started: u64::MAX,
            flows_ended: u64::MAX,
            ended_duration_sum_ns: u128::MAX,
            peers: vec![Addr([0xff; 16]), Addr::from_v4([255; 4]), Addr::UNSPECIFIED],
            dst_ports: vec![u16::MAX, 0, 1, u16::MAX],
        };
        let c = CompactStats::pack(&s);
        assert!(matches!(c, CompactStats::Packed(_)));
        assert_eq!(c.unpack(), s);
    }

    #[test]
    fn merging_stays_encoded_once_then_goes_unencoded() {
        let a = WindowStats {
            packets: 2,
            peers: vec![Addr::from_v4([10, 0, 0, 1])],
            ..Default::default()
        };
        let b = WindowStats {
            packets: 3,
            peers: vec![Addr([0x20; 16])],
            ..Default::default()
        };
        let mut c = CompactStats::pack(&a);
        assert!(matches!(c, CompactStats::Inline { .. }));
        c.merge(&b);
        // Two peers, one of them IPv6, no longer fit in place: encoded on the heap.
        assert!(matches!(c, CompactStats::Remerged(_)));
        let mut want = a.clone();
        want.merge(&b);
        assert_eq!(c.unpack(), want);
        c.merge(&b);
        assert!(matches!(c, CompactStats::Merged(_)));
        want.merge(&b);
        assert_eq!(c.unpack(), want);
    }

    fn addr() -> impl Strategy<Value = Addr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(Addr::from_v4),
            any::<[u8; 16]>().prop_map(Addr),
        ]
    }

    fn stats() -> impl Strategy<Value = WindowStats> {
        let small = prop_oneof![Just(0u64), 0u64..300, any::<u64>()];
        let wide = prop_oneof![Just(0u128), 0u128..100_000, any::<u128>()];
        (
            (small.clone(), small.clone(), wide.clone(), small.clone()),
            (wide.clone(), wide.clone(), wide),
            prop::array::uniform8(small.clone()),
            (small.clone(), small),
            prop::collection::vec(addr(), 0..20),
            prop::collection::vec(any::<u16>(), 0..20),
        )
            .prop_map(
                |(
                    (packets, bytes, size_sumsq, iat_count),
                    (iat_sum_ns, iat_sumsq, dur),
                    flags,
                    (started, ended),
                    peers,
                    dst_ports,
                )| {
                    WindowStats {
                        packets,
                        bytes,
                        size_sumsq,
                        iat_count,
                        iat_sum_ns,
                        iat_sumsq,
                        flags,
                        flows_started: started,
                        flows_ended: ended,
                        ended_duration_sum_ns: dur,
                        peers,
                        dst_ports,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn every_value_round_trips(s in stats()) {
            let c = CompactStats::pack(&s);
            prop_assert_eq!(c.unpack(), s);
        }

        #[test]
        fn merging_matches_the_full_form(a in stats(), b in stats(), d in stats()) {
            let mut c = CompactStats::pack(&a);
            c.merge(&b);
            let mut want = a;
            want.merge(&b);
            prop_assert_eq!(c.unpack(), want.clone());
            c.merge(&d);
            want.merge(&d);
            prop_assert_eq!(c.unpack(), want);
        }
    }
}
