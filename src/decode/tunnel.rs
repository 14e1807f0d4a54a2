//! Tunnels: GRE (incl. ERSPAN, PPTP's enhanced GRE), IP-in-IP, and the UDP tunnels VXLAN,
//! Geneve, GTP-U and Teredo. Only followed when `DecodeConfig::decapsulate` is set.
//!
//! Entering a tunnel folds the outer layer into `ctx.outer` (a [`StableHasher`] digest
//! chained over every outer layer, truncated to 32 bits and never 0): the outer IP
//! addresses, in a direction-independent order so that both directions of a flow share a
//! context, and the kind and id of the tunnel that carried the outer packet, if any. It
//! then sets `ctx.tunnel` / `ctx.tunnel_id` to the entered tunnel and decodes the inner
//! packet, whose fields overwrite the outer ones.
//!
//! Rules:
//! - GRE version 0 (RFC 2784/2890: optional checksum, key = tunnel id, sequence number)
//!   and version 1 (RFC 2637 enhanced GRE: key = payload length + call id = tunnel id, kind `Pptp`,
//!   optional sequence and acknowledgment numbers, PPP only). Any other version, version 0
//!   with the (deprecated RFC 1701) routing bit, or a version 1 header that is not
//!   key-bearing PPP is [`SkipReason::BadTunnel`]; so is a GRE header longer than the
//!   declared IP payload. A GRE header cut by the snap length keeps the GRE packet as the
//!   record (`flags::NO_TRANSPORT`).
//! - GRE payloads: IPv4, IPv6, transparent Ethernet bridging (0x6558), PPP (0x880B), MPLS
//!   (0x8847/0x8848), ERSPAN (0x88BE: type II with an 8-byte header of version 1 when the
//!   sequence bit is set, type I — Ethernet directly — without it; 0x22EB: type III with a
//!   12-byte header of version 2 plus an 8-byte platform-specific subheader when the O bit
//!   is set, frame type 0 Ethernet or 2 IP). Other protocol types, and GRE packets
//!   without payload (PPTP acknowledgments), keep the GRE packet as the record.
//! - IP-in-IP: protocol 4 (IPv4 inner) and 41 (IPv6 inner) in IPv4 or IPv6.
//! - UDP: VXLAN (destination port 4789 or 8472, I flag required), Geneve (destination
//!   port 6081, version 0), GTP-U (either port 2152, version 1 G-PDU with an IPv4/IPv6
//!   payload) and Teredo (either port 3544, optional authentication and origin indication,
//!   only when the payload is an IPv6 packet whose payload length matches exactly).
//!   A UDP tunnel header that is cut short, has an unsupported version or flags, or is
//!   some other message keeps the UDP packet as the record.
//! - When the snap length cut the frame (`flags::TRUNCATED`) inside a tunnel's own
//!   header beyond GRE's (ERSPAN) or inside the inner packet's link or IP headers, the
//!   outer packet stays the record, as for a transport header cut by the snap length.
//!   Otherwise errors of the inner packet skip the frame (e.g. ARP inside VXLAN:
//!   [`SkipReason::NotIp`]; a malformed inner IPv4 header: [`SkipReason::BadIpv4Header`]).

use flowtide_dataflows::hash::StableHasher;
use flowtide_dataflows::packet::{flags, Context, Packet, TunnelKind};

use super::bytes::{be16, be32, rest, u8_at};
use super::ethernet::{self, ethertype};
use super::transport::{self, Upper, PROTO_IPIP};
use super::{ip, Decoder, SkipReason};

/// Domain tag of a tunnel layer folded into `ctx.outer`.
const FOLD_TUNNEL: u64 = 0x7475_6e6e << 32;

/// GRE checksum present.
const GRE_C: u16 = 0x8000;
/// GRE routing present (RFC 1701, deprecated).
const GRE_R: u16 = 0x4000;
/// GRE key present.
const GRE_K: u16 = 0x2000;
/// GRE sequence number present.
const GRE_S: u16 = 0x1000;
/// Enhanced GRE acknowledgment number present.
const GRE_A: u16 = 0x0080;
/// GRE version bits.
const GRE_VERSION: u16 = 0x0007;
/// GRE fixed header: flags/version and protocol type.
const GRE_BASE_LEN: usize = 4;
/// Length of each optional GRE field (checksum+reserved, key, sequence, ack).
const GRE_FIELD_LEN: usize = 4;
/// Offset of the call id inside the enhanced GRE key field.
const GRE_V1_CALL_ID: usize = 6;
/// GRE protocol type of ERSPAN type I/II.
const GRE_ERSPAN_II: u16 = 0x88be;
/// GRE protocol type of ERSPAN type III.
const GRE_ERSPAN_III: u16 = 0x22eb;

/// ERSPAN type II header length.
const ERSPAN_II_LEN: usize = 8;
/// ERSPAN type III header length.
const ERSPAN_III_LEN: usize = 12;
/// ERSPAN type III platform-specific subheader length.
const ERSPAN_III_SUBHEADER_LEN: usize = 8;
/// ERSPAN version of type II.
const ERSPAN_VERSION_II: u16 = 1;
/// ERSPAN version of type III.
const ERSPAN_VERSION_III: u16 = 2;
/// ERSPAN session id bits (of the second 16-bit word).
const ERSPAN_SESSION_MASK: u16 = 0x03ff;
/// ERSPAN type III: offset of the word holding SGT, P, FT, HW id, D, Gra, O.
const ERSPAN_III_FLAGS_WORD: usize = 8;
/// ERSPAN type III O bit (platform-specific subheader present).
const ERSPAN_III_O: u32 = 0x1;
/// ERSPAN type III frame type shift and mask.
const ERSPAN_III_FT_SHIFT: u32 = 10;
/// ERSPAN type III frame type mask (after shifting).
const ERSPAN_III_FT_MASK: u32 = 0x1f;
/// ERSPAN type III frame type: Ethernet.
const ERSPAN_FT_ETHERNET: u32 = 0;
/// ERSPAN type III frame type: IP.
const ERSPAN_FT_IP: u32 = 2;

/// VXLAN UDP ports (IANA, Linux legacy).
const VXLAN_PORTS: [u16; 2] = [4789, 8472];
/// VXLAN header length.
const VXLAN_HEADER: usize = 8;
/// VXLAN I flag (VNI valid).
const VXLAN_I: u8 = 0x08;
/// Geneve UDP port.
const GENEVE_PORT: u16 = 6081;
/// Geneve fixed header length.
const GENEVE_HEADER: usize = 8;
/// GTP-U UDP port.
const GTPU_PORT: u16 = 2152;
/// GTPv1 mandatory header length.
const GTP_HEADER: usize = 8;
/// GTPv1 optional fields (sequence, N-PDU number, next extension header type).
const GTP_OPTIONAL_LEN: usize = 4;
/// GTP version bits of the flags byte (value 1 << 5 for GTPv1).
const GTP_VERSION_MASK: u8 = 0xe0;
/// GTPv1 in the version bits.
const GTP_VERSION_1: u8 = 0x20;
/// GTP protocol type bit (1 = GTP, 0 = GTP').
const GTP_PT: u8 = 0x10;
/// GTP E, S and PN flags: any of them means the optional fields are present.
const GTP_OPTIONAL_FLAGS: u8 = 0x07;
/// GTP E flag (extension headers follow).
const GTP_E: u8 = 0x04;
/// GTP message type of a G-PDU (user data).
const GTP_G_PDU: u8 = 0xff;
/// Offset of the TEID.
const GTP_TEID: usize = 4;
/// Offset of the "next extension header type" byte.
const GTP_NEXT_EXT: usize = 11;
/// Teredo UDP port.
const TEREDO_PORT: u16 = 3544;
/// Teredo authentication indicator type.
const TEREDO_AUTH: u16 = 0x0001;
/// Teredo authentication: fixed bytes besides client id and value (indicator, lengths,
/// nonce, confirmation).
const TEREDO_AUTH_FIXED: usize = 4 + 8 + 1;
/// Teredo origin indication type.
const TEREDO_ORIGIN: u16 = 0x0000;
/// Teredo origin indication length.
const TEREDO_ORIGIN_LEN: usize = 8;
/// IPv6 header length (Teredo payload check).
const IPV6_HEADER: usize = 40;

/// A decoder of the layer inside a tunnel (link layer or IP).
type InnerDecoder = fn(&Decoder, &[u8], usize, &mut Packet) -> Result<(), SkipReason>;

/// Folds `words` into `ctx.outer`, chaining the previous digest. The result is never 0.
pub(super) fn fold_outer(ctx: &mut Context, words: &[u64]) {
    let mut h = StableHasher::new();
    h.write_u64(u64::from(ctx.outer));
    for &w in words {
        h.write_u64(w);
    }
    // Truncation to 32 bits is intended.
    let digest = h.finish() as u32;
    ctx.outer = if digest == 0 { 1 } else { digest };
}

/// Enters a tunnel of `kind` with `id` found in the packet currently in `out`.
fn enter(out: &mut Packet, kind: TunnelKind, id: u32) {
    let (a, b) = if out.src <= out.dst {
        (out.src, out.dst)
    } else {
        (out.dst, out.src)
    };
    let (a_hi, a_lo) = a.words();
    let (b_hi, b_lo) = b.words();
    let carrier = (out.ctx.tunnel as u64) << 32 | u64::from(out.ctx.tunnel_id);
    fold_outer(
        &mut out.ctx,
        &[
            FOLD_TUNNEL | u64::from(out.ip_version),
            carrier,
            a_hi,
            a_lo,
            b_hi,
            b_lo,
        ],
    );
    out.ctx.tunnel = kind;
    out.ctx.tunnel_id = id;
}

/// Enters a tunnel and decodes its inner packet `data` with `inner`. When the frame was
/// cut by the snap length and the inner headers turn out incomplete, the outer packet in
/// `out` stays the record. Only truncated frames pay for saving the outer record.
fn follow(
    d: &Decoder,
    out: &mut Packet,
    (kind, id): (TunnelKind, u32),
    inner: InnerDecoder,
    data: &[u8],
    depth: usize,
) -> Result<(), SkipReason> {
    if out.flags & flags::TRUNCATED == 0 {
        enter(out, kind, id);
        return inner(d, data, depth, out);
    }
    let outer = out.clone();
    enter(out, kind, id);
    let result = inner(d, data, depth, out);
    if matches!(result, Err(reason) if is_cut_short(reason)) {
        *out = outer;
        return Ok(());
    }
    result
}

/// Reasons that a snap-length cut can cause.
fn is_cut_short(reason: SkipReason) -> bool {
    matches!(
        reason,
        SkipReason::TruncatedLinkLayer
            | SkipReason::BadIpv4Header
            | SkipReason::BadIpv6Header
            | SkipReason::BadTunnel
    )
}

/// Decodes IP-in-IP (protocol 4 or 41) inside the IP packet in `out`.
pub(super) fn ip_in_ip(
    d: &Decoder,
    upper: Upper<'_>,
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let inner_v4 = upper.proto == PROTO_IPIP;
    let kind = match (out.ip_version, inner_v4) {
        (4, true) => TunnelKind::IpInIp,
        (4, false) => TunnelKind::SixInFour,
        (_, true) => TunnelKind::FourInSix,
        (_, false) => TunnelKind::SixInSix,
    };
    let inner: InnerDecoder = if inner_v4 {
        ip::decode_ipv4
    } else {
        ip::decode_ipv6
    };
    out.payload_len = upper.declared as u32;
    follow(d, out, (kind, 0), inner, upper.data, depth + 1)
}

/// A parsed GRE header.
struct GreHeader {
    /// Version 1 (PPTP's enhanced GRE).
    enhanced: bool,
    /// Protocol type.
    protocol: u16,
    /// Key (version 0) or call id (version 1), 0 when absent.
    key: u32,
    /// Sequence number present.
    sequence: bool,
    /// Header length.
    len: usize,
}

/// Parses a GRE header; `None` when cut short, `Err` when malformed or unsupported.
fn gre_header(data: &[u8]) -> Result<Option<GreHeader>, SkipReason> {
    let (Some(flags), Some(protocol)) = (be16(data, 0), be16(data, 2)) else {
        return Ok(None);
    };
    let sequence = flags & GRE_S != 0;
    let optional = |bit: u16| if flags & bit != 0 { GRE_FIELD_LEN } else { 0 };
    let (key, len) = match flags & GRE_VERSION {
        0 if flags & GRE_R == 0 => {
            let key_off = GRE_BASE_LEN + optional(GRE_C);
            let key = if flags & GRE_K != 0 {
                be32(data, key_off)
            } else {
                Some(0)
            };
            let len = key_off + optional(GRE_K) + optional(GRE_S);
            (key, len)
        }
        1 if flags & (GRE_C | GRE_R) == 0 && flags & GRE_K != 0 && protocol == ethertype::PPP => {
            // The call id names the receiving peer's end of the call, so it differs
            // between the two directions (flow keys leave it out, see TunnelKind).
            let call_id = be16(data, GRE_V1_CALL_ID).map(u32::from);
            let len = GRE_BASE_LEN + GRE_FIELD_LEN + optional(GRE_S) + optional(GRE_A);
            (call_id, len)
        }
        _ => return Err(SkipReason::BadTunnel),
    };
    match key {
        Some(key) if data.len() >= len => Ok(Some(GreHeader {
            enhanced: flags & GRE_VERSION == 1,
            protocol,
            key,
            sequence,
            len,
        })),
        _ => Ok(None),
    }
}

/// Decodes GRE inside the IP packet in `out`.
pub(super) fn gre(
    d: &Decoder,
    upper: Upper<'_>,
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let Some(header) = gre_header(upper.data)? else {
        // Cut short: by the snap length (keep the GRE packet) or malformed.
        if upper.declared <= upper.data.len() {
            return Err(SkipReason::BadTunnel);
        }
        transport::no_transport(upper, out);
        return Ok(());
    };
    if header.len > upper.declared {
        return Err(SkipReason::BadTunnel);
    }
    let payload = rest(upper.data, header.len);
    if payload.is_empty() {
        // No payload (e.g. a PPTP acknowledgment), or cut by the snap length.
        return keep_gre(upper, header.len, out);
    }
    let kind = if header.enhanced {
        TunnelKind::Pptp
    } else {
        TunnelKind::Gre
    };
    let gre = (kind, header.key);
    let (tunnel, offset, inner): ((TunnelKind, u32), usize, InnerDecoder) = match header.protocol {
        ethertype::IPV4 => (gre, 0, ip::decode_ipv4),
        ethertype::IPV6 => (gre, 0, ip::decode_ipv6),
        ethertype::TEB => (gre, 0, ethernet::decode_ethernet),
        ethertype::PPP => (gre, 0, ethernet::decode_ppp),
        ethertype::MPLS | ethertype::MPLS_MULTICAST => (gre, 0, ethernet::decode_mpls),
        // Type I: no ERSPAN header, no session id.
        GRE_ERSPAN_II if !header.sequence => {
            ((TunnelKind::ErspanII, 0), 0, ethernet::decode_ethernet)
        }
        GRE_ERSPAN_II | GRE_ERSPAN_III => {
            let parsed = if header.protocol == GRE_ERSPAN_II {
                erspan_ii(payload)
            } else {
                erspan_iii(payload)
            };
            match parsed? {
                Some(erspan) => erspan,
                None if out.flags & flags::TRUNCATED != 0 => {
                    return keep_gre(upper, header.len, out)
                }
                None => return Err(SkipReason::BadTunnel),
            }
        }
        _ => return keep_gre(upper, header.len, out),
    };
    out.payload_len = upper.declared as u32;
    follow(d, out, tunnel, inner, rest(payload, offset), depth + 1)
}

/// Keeps the GRE packet itself as the record (`flags::NO_TRANSPORT` when the snap length
/// cut it right after the GRE header).
fn keep_gre(upper: Upper<'_>, header_len: usize, out: &mut Packet) -> Result<(), SkipReason> {
    if upper.data.len() <= header_len && upper.declared > header_len {
        out.flags |= flags::NO_TRANSPORT;
    }
    out.payload_len = upper.declared as u32;
    Ok(())
}

/// A parsed ERSPAN header: tunnel kind and session id, header length, frame decoder.
type Erspan = ((TunnelKind, u32), usize, InnerDecoder);

/// ERSPAN type II: version (4 bits), VLAN (12), COS (3), En (2), T (1), session id (10);
/// reserved (12), index (20); then the mirrored Ethernet frame. `None` when cut short,
/// [`SkipReason::BadTunnel`] for a version other than 1.
fn erspan_ii(data: &[u8]) -> Result<Option<Erspan>, SkipReason> {
    let (Some(version_vlan), Some(session)) = (be16(data, 0), be16(data, 2)) else {
        return Ok(None);
    };
    if version_vlan >> 12 != ERSPAN_VERSION_II {
        return Err(SkipReason::BadTunnel);
    }
    if data.len() < ERSPAN_II_LEN {
        return Ok(None);
    }
    let id = u32::from(session & ERSPAN_SESSION_MASK);
    Ok(Some((
        (TunnelKind::ErspanII, id),
        ERSPAN_II_LEN,
        ethernet::decode_ethernet,
    )))
}

/// ERSPAN type III: version (4 bits), VLAN (12), COS (3), BSO (2), T (1), session id (10);
/// timestamp (32); SGT (16), P (1), FT (5), HW id (6), D (1), Gra (2), O (1); an 8-byte
/// platform-specific subheader when O is set; then the frame of type FT (0 Ethernet,
/// 2 IP). `None` when cut short, [`SkipReason::BadTunnel`] for a version other than 2 or
/// another frame type.
fn erspan_iii(data: &[u8]) -> Result<Option<Erspan>, SkipReason> {
    let Some(version_vlan) = be16(data, 0) else {
        return Ok(None);
    };
    if version_vlan >> 12 != ERSPAN_VERSION_III {
        return Err(SkipReason::BadTunnel);
    }
    let (Some(session), Some(word)) = (be16(data, 2), be32(data, ERSPAN_III_FLAGS_WORD)) else {
        return Ok(None);
    };
    let inner: InnerDecoder = match (word >> ERSPAN_III_FT_SHIFT) & ERSPAN_III_FT_MASK {
        ERSPAN_FT_ETHERNET => ethernet::decode_ethernet,
        ERSPAN_FT_IP => ip::decode_ip,
        _ => return Err(SkipReason::BadTunnel),
    };
    let mut len = ERSPAN_III_LEN;
    if word & ERSPAN_III_O != 0 {
        len += ERSPAN_III_SUBHEADER_LEN;
    }
    if data.len() < len {
        return Ok(None);
    }
    let id = u32::from(session & ERSPAN_SESSION_MASK);
    Ok(Some(((TunnelKind::ErspanIII, id), len, inner)))
}

/// Follows a UDP tunnel inside the UDP packet in `out` (ports already recorded), or keeps
/// the UDP packet as the record. `payload` is the UDP payload.
pub(super) fn udp(
    d: &Decoder,
    sport: u16,
    dport: u16,
    payload: Upper<'_>,
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let data = payload.data;
    let depth = depth + 1;
    if VXLAN_PORTS.contains(&dport) {
        if let Some(r) = vxlan(d, data, depth, out) {
            return r;
        }
    } else if dport == GENEVE_PORT {
        if let Some(r) = geneve(d, data, depth, out) {
            return r;
        }
    }
    if sport == GTPU_PORT || dport == GTPU_PORT {
        if let Some(r) = gtp_u(d, data, depth, out) {
            return r;
        }
    }
    if sport == TEREDO_PORT || dport == TEREDO_PORT {
        if let Some(r) = teredo(d, payload, depth, out) {
            return r;
        }
    }
    Ok(())
}

/// VXLAN: flags (I = 0x08), 3 reserved bytes, 24-bit VNI, 1 reserved byte; Ethernet.
fn vxlan(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Option<Result<(), SkipReason>> {
    let flags = u8_at(data, 0)?;
    let vni = be32(data, 4)? >> 8;
    if flags & VXLAN_I == 0 {
        return None;
    }
    let inner = data.get(VXLAN_HEADER..)?;
    Some(follow(
        d,
        out,
        (TunnelKind::Vxlan, vni),
        ethernet::decode_ethernet,
        inner,
        depth,
    ))
}

/// Geneve: version (2 bits) and options length (6 bits, 4-byte units), O/C flags,
/// protocol type, 24-bit VNI, reserved byte, options; then the payload of that type.
fn geneve(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Option<Result<(), SkipReason>> {
    let version_optlen = u8_at(data, 0)?;
    let protocol = be16(data, 2)?;
    let vni = be32(data, 4)? >> 8;
    if version_optlen >> 6 != 0 {
        return None;
    }
    let len = GENEVE_HEADER + usize::from(version_optlen & 0x3f) * 4;
    let inner = data.get(len..)?;
    let decode: InnerDecoder = match protocol {
        ethertype::TEB => ethernet::decode_ethernet,
        ethertype::IPV4 => ip::decode_ipv4,
        ethertype::IPV6 => ip::decode_ipv6,
        _ => return None,
    };
    Some(follow(
        d,
        out,
        (TunnelKind::Geneve, vni),
        decode,
        inner,
        depth,
    ))
}

/// GTP-U (GTPv1, G-PDU): flags (version 1, PT 1, E/S/PN), message type 0xFF, length,
/// TEID; 4 optional bytes when any of E/S/PN is set; extension headers (length in 4-byte
/// units, last byte = next type) while E is set; then an IPv4 or IPv6 packet.
fn gtp_u(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Option<Result<(), SkipReason>> {
    let flags = u8_at(data, 0)?;
    let message_type = u8_at(data, 1)?;
    let teid = be32(data, GTP_TEID)?;
    if flags & (GTP_VERSION_MASK | GTP_PT) != GTP_VERSION_1 | GTP_PT || message_type != GTP_G_PDU {
        return None;
    }
    let mut len = GTP_HEADER;
    if flags & GTP_OPTIONAL_FLAGS != 0 {
        len += GTP_OPTIONAL_LEN;
        let mut next = if flags & GTP_E != 0 {
            u8_at(data, GTP_NEXT_EXT)?
        } else {
            0
        };
        // Every extension header is at least 4 bytes long.
        while next != 0 {
            let ext_len = usize::from(u8_at(data, len)?) * 4;
            if ext_len == 0 {
                return None;
            }
            len += ext_len;
            next = u8_at(data, len - 1)?;
        }
    }
    let inner = data.get(len..)?;
    let decode: InnerDecoder = match inner.first()? >> 4 {
        4 => ip::decode_ipv4,
        6 => ip::decode_ipv6,
        _ => return None,
    };
    Some(follow(
        d,
        out,
        (TunnelKind::GtpU, teid),
        decode,
        inner,
        depth,
    ))
}

/// Teredo: optional authentication (0x0001, client id length, value length, client id,
/// value, 8-byte nonce, confirmation byte) and origin indication (0x0000, port, address),
/// then an IPv6 packet filling the UDP payload exactly.
fn teredo(
    d: &Decoder,
    payload: Upper<'_>,
    depth: usize,
    out: &mut Packet,
) -> Option<Result<(), SkipReason>> {
    let data = payload.data;
    let mut off = 0;
    if be16(data, off)? == TEREDO_AUTH {
        let id_len = usize::from(u8_at(data, 2)?);
        let value_len = usize::from(u8_at(data, 3)?);
        off += TEREDO_AUTH_FIXED + id_len + value_len;
    }
    if be16(data, off)? == TEREDO_ORIGIN {
        off += TEREDO_ORIGIN_LEN;
    }
    let inner = data.get(off..)?;
    let looks_like_ipv6 = inner.len() >= IPV6_HEADER
        && inner.first()? >> 4 == 6
        && usize::from(be16(inner, 4)?) + IPV6_HEADER + off == payload.declared;
    if !looks_like_ipv6 {
        return None;
    }
    Some(follow(
        d,
        out,
        (TunnelKind::Teredo, 0),
        ip::decode_ipv6,
        inner,
        depth,
    ))
}
