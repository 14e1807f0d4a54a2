//! Decoding captured frames into [`Packet`] records.
//!
//! The decoder walks link layer → (VLAN/MPLS/PPPoE) → IP → (tunnels) → innermost IP →
//! transport, without allocating (except to keep the bytes of IP fragments), and never
//! panics: every length is checked before it is read. A frame that cannot be decoded is
//! skipped with a [`SkipReason`], which the runtime counts.
//!
//! Supported:
//! - link types: Ethernet (802.1Q/802.1ad/QinQ VLAN stacks, MPLS, PPPoE), Linux cooked
//!   SLL and SLL2, raw IPv4/IPv6, BSD loopback/NULL and OpenBSD LOOP, PPP (with or
//!   without HDLC framing);
//! - IPv4 with options, IPv6 with extension headers (hop-by-hop, routing, fragment,
//!   destination options, AH, mobility, HIP, shim6);
//! - tunnels, decoded down to the innermost IP packet while recording the outer context
//!   ([`Context`]): GRE (incl. transparent Ethernet bridging, ERSPAN type I/II/III, PPP,
//!   MPLS payloads), VXLAN (UDP 4789, 8472), Geneve (UDP 6081), GTP-U (UDP 2152),
//!   IP-in-IP / 6in4 / 4in6 / 6in6, Teredo (UDP 3544);
//! - transport: TCP, UDP, UDP-Lite, SCTP (ports), ICMP, ICMPv6 (type/code, echo id),
//!   anything else kept by protocol number.
//!
//! An IP packet that is a fragment ends decoding at that layer: its transport header (or
//! the tunnel inside it) is only decoded after reassembly, via [`Decoder::decode_ip`].

mod bytes;
mod ethernet;
mod ip;
mod transport;
mod tunnel;

#[cfg(test)]
mod tests;

use flowtide_dataflows::packet::{Context, Packet};

use crate::capture::Frame;

/// Why a frame was skipped. The discriminant indexes [`SkipCounts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SkipReason {
    /// The link type is not decodable.
    UnsupportedLinkType = 0,
    /// Link-layer header cut short.
    TruncatedLinkLayer,
    /// A non-IP frame (ARP, LLDP, STP, ...): not malformed, just not analysed.
    NotIp,
    /// IPv4 header cut short or inconsistent (IHL < 5, total length < IHL).
    BadIpv4Header,
    /// IPv6 header or extension-header chain cut short or inconsistent.
    BadIpv6Header,
    /// IP version nibble neither 4 nor 6 where IP was expected.
    BadIpVersion,
    /// A tunnel header cut short or of an unsupported version.
    BadTunnel,
    /// Transport header cut short (in a non-fragment).
    TruncatedTransport,
    /// Tunnels nested deeper than the decoder's limit.
    TooDeep,
}

impl SkipReason {
    /// Number of reasons.
    pub const COUNT: usize = 9;

    /// All reasons, in discriminant order.
    pub const ALL: [SkipReason; SkipReason::COUNT] = [
        SkipReason::UnsupportedLinkType,
        SkipReason::TruncatedLinkLayer,
        SkipReason::NotIp,
        SkipReason::BadIpv4Header,
        SkipReason::BadIpv6Header,
        SkipReason::BadIpVersion,
        SkipReason::BadTunnel,
        SkipReason::TruncatedTransport,
        SkipReason::TooDeep,
    ];

    /// The snake_case name used in `summary.json`.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
            SkipReason::TruncatedLinkLayer => "truncated_link_layer",
            SkipReason::NotIp => "not_ip",
            SkipReason::BadIpv4Header => "bad_ipv4_header",
            SkipReason::BadIpv6Header => "bad_ipv6_header",
            SkipReason::BadIpVersion => "bad_ip_version",
            SkipReason::BadTunnel => "bad_tunnel",
            SkipReason::TruncatedTransport => "truncated_transport",
            SkipReason::TooDeep => "too_deep",
        }
    }
}

/// Counters of skipped frames by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipCounts(pub [u64; SkipReason::COUNT]);

impl SkipCounts {
    /// Counts one skip.
    #[inline]
    pub fn add(&mut self, reason: SkipReason) {
        self.0[reason as usize] += 1;
    }

    /// Adds another set of counters.
    pub fn merge(&mut self, other: &SkipCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Total skipped.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Decoder options.
#[derive(Clone, Debug)]
pub struct DecodeConfig {
    /// Keep the IP datagram bytes of fragments in [`Packet::bytes`] (needed for reassembly).
    pub keep_fragment_bytes: bool,
    /// Decode tunnels (GRE, VXLAN, Geneve, GTP-U, IP-in-IP, Teredo). When false the outer
    /// packet is the record.
    pub decapsulate: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            keep_fragment_bytes: true,
            decapsulate: true,
        }
    }
}

/// Maximum number of nested tunnels/VLAN/MPLS layers followed.
pub const MAX_DEPTH: usize = 8;

/// A frame decoder. Cheap to create; holds only configuration.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    config: DecodeConfig,
}

impl Decoder {
    /// A decoder with the given options.
    pub fn new(config: DecodeConfig) -> Self {
        Decoder { config }
    }

    /// Decodes one frame into `out` (every field of `out` is overwritten).
    #[inline]
    pub fn decode(
        &self,
        frame: &Frame<'_>,
        feed: u32,
        index: u64,
        out: &mut Packet,
    ) -> Result<(), SkipReason> {
        *out = Packet {
            ts_ns: frame.ts_ns,
            index,
            feed,
            frame_len: frame.orig_len,
            ..Packet::default()
        };
        if (frame.data.len() as u32) < frame.orig_len {
            out.flags |= flowtide_dataflows::packet::flags::TRUNCATED;
        }
        ethernet::decode_link(self, frame.linktype, frame.data, out)
    }

    /// Decodes an IP packet (e.g. a reassembled datagram) that was found in context `ctx`:
    /// tunnels inside it are followed and the innermost packet's fields written to `out`.
    /// `ts_ns`, `index`, `feed` and `frame_len` of `out` are left unchanged.
    pub fn decode_ip(&self, ip: &[u8], ctx: Context, out: &mut Packet) -> Result<(), SkipReason> {
        out.ctx = ctx;
        ip::decode_ip(self, ip, 0, out)
    }

    /// The options.
    pub fn config(&self) -> &DecodeConfig {
        &self.config
    }
}
