//! Transport headers: TCP, UDP, UDP-Lite, SCTP, ICMP, ICMPv6; everything else is kept by
//! protocol number. Tunnel protocols (IP-in-IP, GRE, UDP-based tunnels) are handed to
//! [`super::tunnel`] when decapsulation is on.
//!
//! Rules for a non-fragment:
//! - `payload_len` is computed from the IP header's lengths, not from the captured bytes,
//!   so snap-length-cut captures count correctly: the IP payload length less the
//!   transport header length (TCP: data offset; UDP, UDP-Lite: 8; SCTP: 12; ICMP,
//!   ICMPv6: 8), or the whole IP payload for other protocols.
//! - When the IP header declares a payload too short to hold the transport's fixed header
//!   (TCP 20, UDP/UDP-Lite 8, SCTP 12, ICMP/ICMPv6 8), or a TCP data offset below 5 or
//!   beyond the declared payload, the packet is malformed: [`SkipReason::TruncatedTransport`].
//! - When the declared payload is long enough but the captured bytes are not (snap length,
//!   or an IP length larger than the frame), the record is kept with ports 0 and
//!   `flags::NO_TRANSPORT`.
//! - Ports: TCP, UDP, UDP-Lite, SCTP source and destination ports. ICMP/ICMPv6:
//!   `sport = type << 8 | code`, `dport` = the identifier of echo request/reply (ICMP 8/0,
//!   ICMPv6 128/129), else 0. TCP also records its flags byte (including ECE and CWR).
//!
//! A first fragment only yields ports when the fixed transport header is wholly inside
//! it (else ports 0 and `flags::NO_TRANSPORT`); it is never skipped.

use flowtide_dataflows::packet::{flags, proto, Packet};

use super::bytes::{be16, rest, u8_at};
use super::{tunnel, Decoder, SkipReason};

/// IP-in-IP (IPv4 inner).
pub(super) const PROTO_IPIP: u8 = 4;
/// IPv6 encapsulation.
pub(super) const PROTO_IPV6: u8 = 41;
/// GRE.
pub(super) const PROTO_GRE: u8 = 47;

/// Fixed TCP header length (data offset 5).
const TCP_MIN_HEADER: usize = 20;
/// TCP data offset byte (upper nibble, in 4-byte units).
const TCP_DATA_OFFSET: usize = 12;
/// TCP flags byte.
const TCP_FLAGS: usize = 13;
/// UDP and UDP-Lite header length.
const UDP_HEADER: usize = 8;
/// SCTP common header length.
const SCTP_HEADER: usize = 12;
/// ICMP and ICMPv6 header length (type, code, checksum, 4 message-specific bytes).
const ICMP_HEADER: usize = 8;
/// Offset of the echo identifier in an ICMP/ICMPv6 header.
const ICMP_ECHO_ID: usize = 4;
/// ICMP echo reply and request types.
const ICMP_ECHO_TYPES: [u8; 2] = [0, 8];
/// ICMPv6 echo request and reply types.
const ICMPV6_ECHO_TYPES: [u8; 2] = [128, 129];

/// The upper-layer part of an IP packet.
#[derive(Clone, Copy, Debug)]
pub(super) struct Upper<'a> {
    /// Protocol number (IPv4 protocol / IPv6 final next header).
    pub proto: u8,
    /// The captured bytes, at most `declared` long.
    pub data: &'a [u8],
    /// The length the IP header declares for this part.
    pub declared: usize,
}

/// A parsed transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    /// Source port (or ICMP type/code).
    sport: u16,
    /// Destination port (or ICMP echo identifier).
    dport: u16,
    /// TCP flags byte.
    tcp_flags: u8,
    /// Header length.
    len: usize,
}

/// The fixed header length of the transports whose ports are decoded, `None` for others.
fn fixed_header_len(protocol: u8) -> Option<usize> {
    match protocol {
        proto::TCP => Some(TCP_MIN_HEADER),
        proto::UDP | proto::UDPLITE => Some(UDP_HEADER),
        proto::SCTP => Some(SCTP_HEADER),
        proto::ICMP | proto::ICMPV6 => Some(ICMP_HEADER),
        _ => None,
    }
}

/// Parses the header of a transport with a fixed header length, from captured bytes that
/// hold at least that fixed header.
fn parse_header(protocol: u8, data: &[u8]) -> Option<Header> {
    let word = |off| be16(data, off);
    match protocol {
        proto::TCP => Some(Header {
            sport: word(0)?,
            dport: word(2)?,
            tcp_flags: u8_at(data, TCP_FLAGS)?,
            len: usize::from(u8_at(data, TCP_DATA_OFFSET)? >> 4) * 4,
        }),
        proto::ICMP | proto::ICMPV6 => {
            let kind = u8_at(data, 0)?;
            let echo = if protocol == proto::ICMP {
                ICMP_ECHO_TYPES
            } else {
                ICMPV6_ECHO_TYPES
            };
            Some(Header {
                sport: word(0)?,
                dport: if echo.contains(&kind) {
                    word(ICMP_ECHO_ID)?
                } else {
                    0
                },
                tcp_flags: 0,
                len: ICMP_HEADER,
            })
        }
        _ => Some(Header {
            sport: word(0)?,
            dport: word(2)?,
            tcp_flags: 0,
            len: fixed_header_len(protocol)?,
        }),
    }
}

/// Writes a parsed header into the record.
fn record(header: Header, declared: usize, out: &mut Packet) {
    out.sport = header.sport;
    out.dport = header.dport;
    out.tcp_flags = header.tcp_flags;
    out.payload_len = (declared - header.len) as u32;
}

/// Keeps the record without transport information (header not captured).
pub(super) fn no_transport(upper: Upper<'_>, out: &mut Packet) {
    out.flags |= flags::NO_TRANSPORT;
    out.payload_len = upper.declared as u32;
}

/// Decodes the upper layer of a non-fragment IP packet (`out.protocol` is set).
pub(super) fn decode(
    d: &Decoder,
    upper: Upper<'_>,
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    if d.config().decapsulate {
        match upper.proto {
            PROTO_IPIP | PROTO_IPV6 => return tunnel::ip_in_ip(d, upper, depth, out),
            PROTO_GRE => return tunnel::gre(d, upper, depth, out),
            _ => {}
        }
    }
    let Some(min_len) = fixed_header_len(upper.proto) else {
        out.payload_len = upper.declared as u32;
        return Ok(());
    };
    if upper.declared < min_len {
        return Err(SkipReason::TruncatedTransport);
    }
    let Some(header) = upper
        .data
        .get(..min_len)
        .and_then(|h| parse_header(upper.proto, h))
    else {
        no_transport(upper, out);
        return Ok(());
    };
    if header.len < min_len || header.len > upper.declared {
        return Err(SkipReason::TruncatedTransport);
    }
    record(header, upper.declared, out);
    if upper.proto == proto::UDP && d.config().decapsulate {
        let payload = Upper {
            proto: upper.proto,
            data: rest(upper.data, UDP_HEADER),
            declared: upper.declared - UDP_HEADER,
        };
        return tunnel::udp(d, header.sport, header.dport, payload, depth, out);
    }
    Ok(())
}

/// Records the ports of a first fragment when its fixed transport header is wholly
/// captured and consistent, else sets `flags::NO_TRANSPORT`.
pub(super) fn first_fragment(upper: Upper<'_>, out: &mut Packet) {
    let header = fixed_header_len(upper.proto).and_then(|min_len| {
        let header = parse_header(upper.proto, upper.data.get(..min_len)?)?;
        (min_len <= header.len && header.len <= upper.declared).then_some(header)
    });
    match header {
        Some(header) => record(header, upper.declared, out),
        None if fixed_header_len(upper.proto).is_some() => no_transport(upper, out),
        None => out.payload_len = upper.declared as u32,
    }
}
