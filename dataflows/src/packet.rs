//! The decoded packet record: the hot unit of data that flows through every dataflow.
//!
//! One [`Packet`] is produced per captured frame by the decoder (in the `flowtide` binary).
//! It is small and fixed-size except for [`Packet::bytes`], which holds the IP datagram
//! only when a later stage needs it (IP fragments, for reassembly), so the common path
//! allocates nothing per packet.

use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 address stored in 16 bytes (IPv4 as an IPv4-mapped IPv6 address).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Addr(pub [u8; 16]);

impl Addr {
    /// The unspecified address (`::`).
    pub const UNSPECIFIED: Addr = Addr([0; 16]);

    /// Wraps an IPv4 address as `::ffff:a.b.c.d`.
    #[inline]
    pub fn from_v4(octets: [u8; 4]) -> Addr {
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&octets);
        Addr(a)
    }

    /// An IPv6 address.
    #[inline]
    pub fn from_v6(octets: [u8; 16]) -> Addr {
        Addr(octets)
    }

    /// The IPv4 octets when this is an IPv4-mapped address.
    #[inline]
    pub fn as_v4(&self) -> Option<[u8; 4]> {
        let a = &self.0;
        if a[..10].iter().all(|&b| b == 0) && a[10] == 0xff && a[11] == 0xff {
            Some([a[12], a[13], a[14], a[15]])
        } else {
            None
        }
    }

    /// As a standard library address.
    pub fn to_ip(&self) -> std::net::IpAddr {
        match self.as_v4() {
            Some(v4) => std::net::IpAddr::from(v4),
            None => std::net::IpAddr::from(self.0),
        }
    }

    /// The address as two big-endian words (for hashing).
    #[inline]
    pub fn words(&self) -> (u64, u64) {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&self.0[..8]);
        lo.copy_from_slice(&self.0[8..]);
        (u64::from_be_bytes(hi), u64::from_be_bytes(lo))
    }
}

impl Addr {
    /// The address as text (dotted quad for IPv4, RFC 5952 for IPv6), formatted on the
    /// stack: output records write two addresses each.
    pub fn text(&self) -> AddrText {
        let mut t = AddrText {
            buf: [0; AddrText::CAPACITY],
            len: 0,
        };
        match self.as_v4() {
            Some(octets) => {
                for (i, o) in octets.into_iter().enumerate() {
                    if i > 0 {
                        t.push(b'.');
                    }
                    if o >= 100 {
                        t.push(b'0' + o / 100);
                    }
                    if o >= 10 {
                        t.push(b'0' + (o / 10) % 10);
                    }
                    t.push(b'0' + o % 10);
                }
            }
            None => {
                // As the standard library writes an IPv6 address (RFC 5952): lowercase
                // hex groups without leading zeros, the first longest run of two or
                // more zero groups shortened to "::" (IPv4-mapped addresses took the
                // branch above).
                let g: [u16; 8] =
                    std::array::from_fn(|i| u16::from_be_bytes([self.0[2 * i], self.0[2 * i + 1]]));
                let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
                for (i, &x) in g.iter().enumerate() {
                    if x == 0 {
                        if run_len == 0 {
                            run = i;
                        }
                        run_len += 1;
                        if run_len > best_len {
                            (best, best_len) = (run, run_len);
                        }
                    } else {
                        run_len = 0;
                    }
                }
                if best_len > 1 {
                    t.hex_groups(&g[..best]);
                    t.push(b':');
                    t.push(b':');
                    t.hex_groups(&g[best + best_len..]);
                } else {
                    t.hex_groups(&g);
                }
            }
        }
        t
    }
}

/// An address formatted as text, on the stack ([`Addr::text`]).
#[derive(Clone, Copy)]
pub struct AddrText {
    buf: [u8; AddrText::CAPACITY],
    len: u8,
}

impl AddrText {
    const CAPACITY: usize = 48;

    #[inline]
    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    /// IPv6 groups in lowercase hex without leading zeros, separated by colons.
    fn hex_groups(&mut self, groups: &[u16]) {
        for (i, &x) in groups.iter().enumerate() {
            if i > 0 {
                self.push(b':');
            }
            let digits = (16 - x.leading_zeros()).div_ceil(4).max(1);
            for d in (0..digits).rev() {
                self.push(b"0123456789abcdef"[usize::from((x >> (4 * d)) & 0xf)]);
            }
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for AddrText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.text().as_str())
    }
}

/// The kind of the innermost tunnel a packet was carried in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[repr(u8)]
pub enum TunnelKind {
    /// Not tunnelled.
    #[default]
    None = 0,
    /// GRE (id = GRE key, or 0).
    Gre = 1,
    /// ERSPAN type I or II over GRE (id = session id).
    ErspanII = 2,
    /// ERSPAN type III over GRE (id = session id).
    ErspanIII = 3,
    /// VXLAN (id = VNI).
    Vxlan = 4,
    /// GTP-U (id = TEID).
    GtpU = 5,
    /// IPv4-in-IPv4 (protocol 4).
    IpInIp = 6,
    /// IPv6-in-IPv4 (6in4, protocol 41).
    SixInFour = 7,
    /// IPv4-in-IPv6 (4in6).
    FourInSix = 8,
    /// IPv6-in-IPv6.
    SixInSix = 9,
    /// Teredo (IPv6 over UDP/3544).
    Teredo = 10,
    /// Geneve (id = VNI).
    Geneve = 11,
    /// PPTP's enhanced GRE (GRE version 1; id = the receiving peer's call id).
    Pptp = 12,
}

impl TunnelKind {
    /// True when the tunnel id names the receiving end, so the two directions of one
    /// conversation carry different ids (GTP-U TEIDs, PPTP call ids): such ids identify
    /// a direction, not the tunnel, and stay out of flow keys.
    pub fn id_is_per_direction(self) -> bool {
        matches!(self, TunnelKind::GtpU | TunnelKind::Pptp)
    }

    /// A short lowercase name, as written in output records.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::None => "none",
            TunnelKind::Gre => "gre",
            TunnelKind::ErspanII => "erspan2",
            TunnelKind::ErspanIII => "erspan3",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::GtpU => "gtpu",
            TunnelKind::IpInIp => "ipip",
            TunnelKind::SixInFour => "6in4",
            TunnelKind::FourInSix => "4in6",
            TunnelKind::SixInSix => "6in6",
            TunnelKind::Teredo => "teredo",
            TunnelKind::Geneve => "geneve",
            TunnelKind::Pptp => "pptp",
        }
    }
}

/// Where a packet was observed, beyond its own addresses: the VLAN tags and the tunnel
/// that carried it. Flows in different contexts never merge.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Context {
    /// Outermost and second VLAN id (802.1Q / 802.1ad), 0 when absent (a priority-only
    /// tag with id 0 is not recorded). Deeper tags are folded into `outer`.
    pub vlan: [u16; 2],
    /// Kind of the innermost tunnel.
    pub tunnel: TunnelKind,
    /// Identifier of the innermost tunnel (GRE key, VXLAN/Geneve VNI, GTP-U TEID, ERSPAN
    /// session id, PPTP call id), 0 when the tunnel has none. GTP-U TEIDs and PPTP call
    /// ids differ per direction and are left out of flow keys
    /// ([`TunnelKind::id_is_per_direction`]).
    pub tunnel_id: u32,
    /// A stable 32-bit digest of every outer layer (tunnel endpoints in a
    /// direction-independent order, outer tunnel ids, MPLS labels, VLAN tags beyond the
    /// second), 0 for plain traffic. Distinguishes same-id tunnels between different
    /// endpoints.
    pub outer: u32,
}

impl Context {
    /// True when the packet carried no VLAN tag and no tunnel.
    #[inline]
    pub fn is_plain(&self) -> bool {
        *self == Context::default()
    }

    /// Mixes the context into a hasher.
    #[inline]
    pub fn hash_into(&self, h: &mut crate::hash::StableHasher) {
        h.write_u64(
            (self.vlan[0] as u64) | (self.vlan[1] as u64) << 16 | (self.tunnel as u64) << 32,
        );
        h.write_u64((self.tunnel_id as u64) | (self.outer as u64) << 32);
    }
}

/// Bit flags of a [`Packet`].
pub mod flags {
    /// IPv4 "more fragments" / IPv6 fragment header M bit.
    pub const MORE_FRAGMENTS: u8 = 0x01;
    /// IPv4 "don't fragment".
    pub const DONT_FRAGMENT: u8 = 0x02;
    /// The packet carries an IPv6 fragment header (also set for atomic fragments).
    pub const V6_FRAGMENT_HEADER: u8 = 0x04;
    /// The timestamp was raised to its feed's watermark because the packet arrived late.
    pub const LATE: u8 = 0x08;
    /// The frame was shorter on the wire than captured length suggests (snaplen cut).
    pub const TRUNCATED: u8 = 0x10;
    /// The transport header was not fully present (e.g. a non-first fragment).
    pub const NO_TRANSPORT: u8 = 0x20;
}

/// TCP flag bits as in the TCP header's flags byte.
pub mod tcp {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// IP protocol numbers flowtide treats specially.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// UDP-Lite.
    pub const UDPLITE: u8 = 136;
}

/// One decoded packet.
///
/// Addresses, ports and protocol are those of the innermost IP packet that could be
/// decoded. When that IP packet is a fragment, `ip_id`, `frag_offset` and
/// [`flags::MORE_FRAGMENTS`] describe it, ports are those of the first fragment (or 0),
/// and `bytes` holds the IP datagram from its IP header on, for reassembly.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Capture timestamp, nanoseconds since the Unix epoch (event time).
    pub ts_ns: u64,
    /// Index of the packet within its feed (0-based). With `feed`, a stable handle to the
    /// original frame and the final tie-breaker of event-time order.
    pub index: u64,
    /// The feed (capture file or interface) the packet came from: a stable 32-bit digest
    /// of the feed's name, so that it is the same whichever process reads the feed.
    pub feed: u32,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP protocol (IPv6: the upper-layer next header after extension headers).
    pub protocol: u8,
    /// VLAN and tunnel context.
    pub ctx: Context,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// Source port (TCP, UDP, UDP-Lite, SCTP), ICMP type << 8 | code for ICMP, else 0.
    pub sport: u16,
    /// Destination port, ICMP identifier for echo messages, else 0.
    pub dport: u16,
    /// IPv4 identification or IPv6 fragment identification.
    pub ip_id: u32,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// [`flags`] bits.
    pub flags: u8,
    /// TCP flags byte ([`tcp`] bits), 0 for non-TCP.
    pub tcp_flags: u8,
    /// Length of the frame on the wire.
    pub frame_len: u32,
    /// IP total length (header + payload) of the innermost IP packet.
    pub ip_len: u32,
    /// Transport payload length (IP payload less the transport header when known).
    pub payload_len: u32,
    /// For a datagram reassembled from IP fragments, how many fragments it was made of;
    /// 0 for a packet that was not fragmented.
    pub fragments: u16,
    /// The IP datagram bytes, kept only when a later stage needs them (fragments).
    pub bytes: Option<Box<[u8]>>,
}

impl Packet {
    /// True for an IP fragment (more-fragments set or non-zero offset) or a packet with an
    /// IPv6 fragment header.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags & (flags::MORE_FRAGMENTS | flags::V6_FRAGMENT_HEADER) != 0
            || self.frag_offset != 0
    }

    /// True for an ICMP echo request (type 8) or ICMPv6 echo request (type 128).
    #[inline]
    pub fn is_echo_request(&self) -> bool {
        matches!(
            (self.protocol, self.sport >> 8),
            (proto::ICMP, 8) | (proto::ICMPV6, 128)
        )
    }

    /// Event-time order key: capture time, then feed, then index within the feed.
    #[inline]
    pub fn order_key(&self) -> (u64, u32, u64) {
        (self.ts_ns, self.feed, self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// IPv6 text as the standard library writes it, for addresses with zero groups
        /// anywhere (each group zero with probability one half).
        #[test]
        fn ipv6_text_matches_the_standard_library(
            groups in prop::array::uniform8(prop_oneof![Just(0u16), any::<u16>()]),
        ) {
            let mut bytes = [0u8; 16];
            for (i, g) in groups.iter().enumerate() {
                bytes[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
            }
            let a = Addr::from_v6(bytes);
            let text = a.text();
            prop_assert_eq!(text.as_str(), a.to_ip().to_string());
            prop_assert_eq!(a.to_string(), a.to_ip().to_string());
        }

        /// IPv4 text as the standard library writes it.
        #[test]
        fn ipv4_text_matches_the_standard_library(octets in any::<[u8; 4]>()) {
            let text = Addr::from_v4(octets).text();
            prop_assert_eq!(text.as_str(), std::net::Ipv4Addr::from(octets).to_string());
        }
    }

    #[test]
    fn addresses_print_like_the_standard_library() {
        for v4 in [
            [0, 0, 0, 0],
            [10, 0, 0, 1],
            [192, 168, 100, 255],
            [1, 22, 133, 9],
        ] {
            let a = Addr::from_v4(v4);
            assert_eq!(a.to_string(), std::net::Ipv4Addr::from(v4).to_string());
        }
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(Addr::from_v6(v6).to_string(), "2001:db8::1");
    }

    #[test]
    fn hot_record_stays_small() {
        // One cache line and a half; the exchange and the flow table move it per packet.
        assert!(
            std::mem::size_of::<Packet>() <= 112,
            "{}",
            std::mem::size_of::<Packet>()
        );
    }

    #[test]
    fn v4_mapping_round_trips() {
        let a = Addr::from_v4([192, 0, 2, 1]);
        assert_eq!(a.as_v4(), Some([192, 0, 2, 1]));
        assert_eq!(a.to_string(), "192.0.2.1");
        let b = Addr::from_v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(b.as_v4(), None);
        assert_eq!(b.to_string(), "2001:db8::1");
    }
}
