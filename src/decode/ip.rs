//! IPv4 and IPv6.
//!
//! Rules:
//! - Each IP layer overwrites the address, protocol, port, fragment and length fields of
//!   the record (so the innermost IP packet wins); `flags::TRUNCATED` and `flags::LATE`
//!   are kept.
//! - IPv4: IHL must be at least 5 and the header present, and the total length at least
//!   the header length, else [`SkipReason::BadIpv4Header`]. Options are skipped. Bytes
//!   beyond the total length (Ethernet padding) are ignored. A total length larger than
//!   the captured data (snap length) is recorded as `ip_len` and what was captured is
//!   decoded.
//! - IPv6: extension headers (hop-by-hop, routing, fragment, destination options, AH,
//!   mobility, HIP, shim6) are walked to the upper-layer protocol; 59 (no next header) and
//!   50 (ESP) end the walk and are the protocol. An extension header that overruns the
//!   payload length is [`SkipReason::BadIpv6Header`]; one cut by the snap length ends the
//!   walk with the record kept (`protocol` = that header's type, `flags::NO_TRANSPORT`).
//!   `ip_len` = 40 + payload length; a jumbogram (payload length 0 with a hop-by-hop
//!   jumbo payload option) uses the jumbo length.
//! - Fragments (IPv4 MF set or offset ≠ 0; IPv6 fragment header with M set or offset ≠ 0)
//!   end decoding: `ip_id`, `frag_offset`, `MORE_FRAGMENTS` describe them, the IPv6
//!   fragment header's next header is the protocol, and ports come only from a first
//!   fragment that holds the whole fixed transport header (else they are 0 and
//!   `flags::NO_TRANSPORT` is set). Tunnels inside fragments are not followed. With
//!   `keep_fragment_bytes`, the datagram from the IP header to the end of the captured
//!   part of the packet is kept in `Packet::bytes` for reassembly.
//! - An IPv6 atomic fragment (fragment header with offset 0 and M = 0) is not a fragment:
//!   it keeps `flags::V6_FRAGMENT_HEADER` (and its `ip_id`) and is decoded through.
//! - Tunnels are followed from the transport stage; each IP layer checks the nesting
//!   depth ([`super::MAX_DEPTH`], else [`SkipReason::TooDeep`]).

use flowtide_dataflows::packet::{flags, Addr, Packet};

use super::bytes::{array, be16, be32, u8_at};
use super::transport::{self, Upper};
use super::{Decoder, SkipReason, MAX_DEPTH};

/// Minimum IPv4 header length (IHL 5).
const IPV4_MIN_HEADER: usize = 20;
/// IPv4 total length field.
const V4_TOTAL_LEN: usize = 2;
/// IPv4 identification field.
const V4_ID: usize = 4;
/// IPv4 flags and fragment offset field.
const V4_FLAGS_OFFSET: usize = 6;
/// IPv4 protocol field.
const V4_PROTOCOL: usize = 9;
/// IPv4 source address.
const V4_SRC: usize = 12;
/// IPv4 destination address.
const V4_DST: usize = 16;
/// IPv4 "don't fragment".
const V4_DF: u16 = 0x4000;
/// IPv4 "more fragments".
const V4_MF: u16 = 0x2000;
/// IPv4 fragment offset (8-byte units).
const V4_OFFSET_MASK: u16 = 0x1fff;

/// IPv6 fixed header length.
const IPV6_HEADER: usize = 40;
/// IPv6 payload length field.
const V6_PAYLOAD_LEN: usize = 4;
/// IPv6 next header field.
const V6_NEXT_HEADER: usize = 6;
/// IPv6 source address.
const V6_SRC: usize = 8;
/// IPv6 destination address.
const V6_DST: usize = 24;
/// Fragment header length.
const V6_FRAG_HEADER_LEN: usize = 8;
/// Fragment header: offset (upper 13 bits, 8-byte units: masking gives bytes) and M bit.
const V6_FRAG_OFFSET_MASK: u16 = 0xfff8;
/// Fragment header M bit.
const V6_FRAG_MORE: u16 = 0x0001;
/// Hop-by-hop option type of the jumbo payload option (RFC 2675).
const JUMBO_OPTION: u8 = 0xc2;
/// Jumbo payload option data length.
const JUMBO_OPTION_LEN: u8 = 4;
/// Pad1 option type (a single byte without length).
const PAD1_OPTION: u8 = 0;

/// IPv6 next-header values of extension headers.
mod ext {
    /// Hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// Routing.
    pub const ROUTING: u8 = 43;
    /// Fragment.
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (length in 4-byte units, + 2).
    pub const AH: u8 = 51;
    /// Destination options.
    pub const DEST_OPTIONS: u8 = 60;
    /// Mobility.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}

/// Decodes an IP packet of either version (by its version nibble) at tunnel depth `depth`.
pub(super) fn decode_ip(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    match data.first().map(|b| b >> 4) {
        Some(4) => decode_ipv4(d, data, depth, out),
        Some(6) => decode_ipv6(d, data, depth, out),
        _ => Err(SkipReason::BadIpVersion),
    }
}

/// Resets the per-IP-layer fields before an (inner) IP header is decoded.
fn begin_layer(out: &mut Packet, version: u8) {
    out.ip_version = version;
    out.sport = 0;
    out.dport = 0;
    out.tcp_flags = 0;
    out.ip_id = 0;
    out.frag_offset = 0;
    out.payload_len = 0;
    out.flags &= !(flags::MORE_FRAGMENTS
        | flags::DONT_FRAGMENT
        | flags::V6_FRAGMENT_HEADER
        | flags::NO_TRANSPORT);
    out.bytes = None;
}

/// Fails when tunnels are nested deeper than the limit.
#[inline]
fn check_depth(depth: usize) -> Result<(), SkipReason> {
    if depth > MAX_DEPTH {
        Err(SkipReason::TooDeep)
    } else {
        Ok(())
    }
}

/// Decodes an IPv4 packet.
pub(super) fn decode_ipv4(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    check_depth(depth)?;
    let version_ihl = u8_at(data, 0).ok_or(SkipReason::BadIpv4Header)?;
    if version_ihl >> 4 != 4 {
        return Err(SkipReason::BadIpVersion);
    }
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if header_len < IPV4_MIN_HEADER || data.len() < header_len {
        return Err(SkipReason::BadIpv4Header);
    }
    let bad = SkipReason::BadIpv4Header;
    let total_len = usize::from(be16(data, V4_TOTAL_LEN).ok_or(bad)?);
    if total_len < header_len {
        return Err(bad);
    }
    let flags_offset = be16(data, V4_FLAGS_OFFSET).ok_or(bad)?;
    let protocol = u8_at(data, V4_PROTOCOL).ok_or(bad)?;

    begin_layer(out, 4);
    out.protocol = protocol;
    out.src = Addr::from_v4(array(data, V4_SRC).ok_or(bad)?);
    out.dst = Addr::from_v4(array(data, V4_DST).ok_or(bad)?);
    out.ip_id = u32::from(be16(data, V4_ID).ok_or(bad)?);
    out.frag_offset = (flags_offset & V4_OFFSET_MASK) << 3;
    out.ip_len = total_len as u32;
    if flags_offset & V4_DF != 0 {
        out.flags |= flags::DONT_FRAGMENT;
    }
    if flags_offset & V4_MF != 0 {
        out.flags |= flags::MORE_FRAGMENTS;
    }

    // Padding after the total length is ignored; a snap-length cut keeps what is there.
    let packet = data.get(..total_len).unwrap_or(data);
    let upper = Upper {
        proto: protocol,
        data: packet.get(header_len..).unwrap_or(&[]),
        declared: total_len - header_len,
    };
    if flags_offset & (V4_MF | V4_OFFSET_MASK) != 0 {
        fragment(d, packet, upper, out);
        Ok(())
    } else {
        transport::decode(d, upper, depth, out)
    }
}

/// Records a fragment: ports from a first fragment, bytes for reassembly.
fn fragment(d: &Decoder, packet: &[u8], upper: Upper<'_>, out: &mut Packet) {
    if out.frag_offset == 0 {
        transport::first_fragment(upper, out);
    } else {
        out.flags |= flags::NO_TRANSPORT;
        out.payload_len = upper.declared as u32;
    }
    if d.config().keep_fragment_bytes {
        out.bytes = Some(Box::from(packet));
    }
}

/// Decodes an IPv6 packet.
pub(super) fn decode_ipv6(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    check_depth(depth)?;
    match data.first().map(|b| b >> 4) {
        Some(6) => {}
        Some(_) => return Err(SkipReason::BadIpVersion),
        None => return Err(SkipReason::BadIpv6Header),
    }
    let bad = SkipReason::BadIpv6Header;
    if data.len() < IPV6_HEADER {
        return Err(bad);
    }
    let payload_len = usize::from(be16(data, V6_PAYLOAD_LEN).ok_or(bad)?);
    let next_header = u8_at(data, V6_NEXT_HEADER).ok_or(bad)?;
    let declared_end = if payload_len == 0 && next_header == ext::HOP_BY_HOP {
        IPV6_HEADER.saturating_add(jumbo_payload_len(data).unwrap_or(0))
    } else {
        IPV6_HEADER + payload_len
    };

    begin_layer(out, 6);
    out.src = Addr::from_v6(array(data, V6_SRC).ok_or(bad)?);
    out.dst = Addr::from_v6(array(data, V6_DST).ok_or(bad)?);
    out.ip_len = u32::try_from(declared_end).unwrap_or(u32::MAX);
    let packet = data.get(..declared_end).unwrap_or(data);
    walk_ipv6(d, packet, declared_end, next_header, depth, out)
}

/// Walks the IPv6 extension headers of `packet` (captured bytes, at most `declared_end`
/// long) starting with `next_header`, then decodes the upper layer.
fn walk_ipv6(
    d: &Decoder,
    packet: &[u8],
    declared_end: usize,
    mut next_header: u8,
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let mut off = IPV6_HEADER;
    // Every iteration consumes at least 8 bytes or returns.
    loop {
        let header_len = match next_header {
            ext::HOP_BY_HOP
            | ext::ROUTING
            | ext::DEST_OPTIONS
            | ext::MOBILITY
            | ext::HIP
            | ext::SHIM6 => u8_at(packet, off + 1).map(|l| (usize::from(l) + 1) * 8),
            ext::AH => u8_at(packet, off + 1).map(|l| (usize::from(l) + 2) * 4),
            ext::FRAGMENT => Some(V6_FRAG_HEADER_LEN),
            _ => break,
        };
        let end = header_len.map(|len| off + len);
        // Overrunning the declared length is malformed; the snap length merely truncates.
        if end.unwrap_or(off + 2) > declared_end {
            return Err(SkipReason::BadIpv6Header);
        }
        let header = match end.and_then(|end| packet.get(off..end)) {
            Some(header) => header,
            None => {
                out.protocol = next_header;
                out.flags |= flags::NO_TRANSPORT;
                out.payload_len = (declared_end - off) as u32;
                return Ok(());
            }
        };
        if next_header == ext::FRAGMENT
            && fragment_header(d, packet, header, declared_end, off, out)
        {
            return Ok(());
        }
        next_header = u8_at(header, 0).ok_or(SkipReason::BadIpv6Header)?;
        off += header.len();
    }
    out.protocol = next_header;
    let upper = Upper {
        proto: next_header,
        data: packet.get(off..).unwrap_or(&[]),
        declared: declared_end - off,
    };
    transport::decode(d, upper, depth, out)
}

/// Records an IPv6 fragment header found at `off`. Returns true when the packet is a real
/// fragment (decoding ends), false for an atomic fragment (decoding continues).
fn fragment_header(
    d: &Decoder,
    packet: &[u8],
    header: &[u8],
    declared_end: usize,
    off: usize,
    out: &mut Packet,
) -> bool {
    let (Some(next), Some(offset_m), Some(id)) =
        (u8_at(header, 0), be16(header, 2), be32(header, 4))
    else {
        return false;
    };
    if offset_m & (V6_FRAG_OFFSET_MASK | V6_FRAG_MORE) == 0 {
        // Atomic: the first of (possibly several) fragment headers gives the id.
        if out.flags & flags::V6_FRAGMENT_HEADER == 0 {
            out.flags |= flags::V6_FRAGMENT_HEADER;
            out.ip_id = id;
        }
        return false;
    }
    out.flags |= flags::V6_FRAGMENT_HEADER;
    out.ip_id = id;
    out.frag_offset = offset_m & V6_FRAG_OFFSET_MASK;
    if offset_m & V6_FRAG_MORE != 0 {
        out.flags |= flags::MORE_FRAGMENTS;
    }
    out.protocol = next;
    let start = off + V6_FRAG_HEADER_LEN;
    let upper = Upper {
        proto: next,
        data: packet.get(start..).unwrap_or(&[]),
        declared: declared_end - start,
    };
    fragment(d, packet, upper, out);
    true
}

/// The jumbo payload length of a packet whose payload length is 0 and whose first
/// extension header is hop-by-hop, when that header carries a jumbo payload option.
fn jumbo_payload_len(data: &[u8]) -> Option<usize> {
    let hbh_len = (usize::from(u8_at(data, IPV6_HEADER + 1)?) + 1) * 8;
    let options = data.get(IPV6_HEADER + 2..IPV6_HEADER + hbh_len)?;
    let mut off = 0;
    while let Some(&kind) = options.get(off) {
        if kind == PAD1_OPTION {
            off += 1;
            continue;
        }
        let len = *options.get(off + 1)?;
        if kind == JUMBO_OPTION && len == JUMBO_OPTION_LEN {
            return be32(options, off + 2).and_then(|l| usize::try_from(l).ok());
        }
        off += 2 + usize::from(len);
    }
    None
}
