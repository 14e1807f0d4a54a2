//! Link layers: Ethernet (802.3/LLC/SNAP, VLAN stacks, MPLS, PPPoE), Linux SLL/SLL2,
//! BSD NULL / OpenBSD LOOP, PPP (plain, HDLC-framed, Cisco HDLC) and raw IP.
//!
//! Rules:
//! - An Ethernet type field below 0x0600 is an 802.3 length: the frame carries LLC. Only
//!   SNAP (AA-AA-03) with an Ethernet-compatible OUI (00-00-00 or 00-00-F8) is followed,
//!   using the SNAP protocol id as the Ethernet type; anything else is
//!   [`SkipReason::NotIp`], as are ARP, LLDP and every other non-IP Ethernet type.
//! - VLAN tags (0x8100, 0x88A8, 0x9100, 0x9200) may be stacked to any depth (each tag
//!   consumes 4 bytes, so the loop is bounded by the frame). The first two non-zero VLAN
//!   ids seen in the frame, outermost first, go to `ctx.vlan[0]` and `ctx.vlan[1]`; any
//!   further tag (a third tag, or a tag of an Ethernet frame inside a tunnel once both
//!   slots are taken) is folded into the `ctx.outer` digest. A VLAN id of 0 is an 802.1p
//!   priority tag, which carries no VLAN, and is not recorded.
//! - MPLS (0x8847, 0x8848): labels are popped until bottom-of-stack, each 20-bit label
//!   folded into `ctx.outer`. The payload's first nibble then selects IPv4 (4), IPv6 (6)
//!   or an Ethernet pseudowire with a 4-byte control word (0); anything else is `NotIp`.
//! - PPPoE session (0x8864): a 6-byte PPPoE header, then PPP.
//! - PPP: optional 0xFF 0x03 address/control bytes, then a 1-byte (protocol field
//!   compression, odd first byte) or 2-byte protocol: 0x0021 IPv4, 0x0057 IPv6,
//!   0x0281/0x0283 MPLS; every other protocol (LCP, IPCP, ...) is `NotIp`.
//! - Linux SLL (16-byte header, protocol at offset 14) and SLL2 (20-byte header, protocol
//!   at offset 0): the protocol is dispatched like an Ethernet type. For ARPHRD types whose
//!   protocol field is not an Ethernet type (netlink, CAN, raw 802.2/802.3/802.11, ...)
//!   the value is a small Linux `ETH_P_*` number that matches no IP Ethernet type, so
//!   those frames are `NotIp`; netlink is rejected explicitly.
//! - NULL: a 4-byte address family in the capturing host's byte order, so both byte
//!   orders are accepted; LOOP: the same in network byte order. Family 2 is IPv4;
//!   24, 28 and 30 (NetBSD/OpenBSD, FreeBSD, Darwin) are IPv6.
//! - Raw IP link types select IPv4 or IPv6 by the version nibble (228/229 require it to
//!   match).
//!
//! A header cut short is [`SkipReason::TruncatedLinkLayer`]. Each nested Ethernet frame
//! (inside a tunnel or an MPLS pseudowire) counts one level of depth; deeper than
//! [`super::MAX_DEPTH`] is [`SkipReason::TooDeep`].

use flowtide_dataflows::packet::{Context, Packet};

use super::bytes::{array, be16, be32, le32, rest, u8_at};
use super::{ip, tunnel, Decoder, SkipReason, MAX_DEPTH};
use crate::capture::linktype;

/// Ethernet type / SNAP protocol id / SLL protocol values.
pub(super) mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag.
    pub const QINQ_9100: u16 = 0x9100;
    /// Pre-standard QinQ tag.
    pub const QINQ_9200: u16 = 0x9200;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// PPPoE session stage.
    pub const PPPOE_SESSION: u16 = 0x8864;
    /// PPP (as a GRE protocol type).
    pub const PPP: u16 = 0x880b;
    /// Transparent Ethernet bridging (as a GRE / Geneve protocol type).
    pub const TEB: u16 = 0x6558;
    /// Values below this are 802.3 length fields, not Ethernet types.
    pub const MIN_ETHERTYPE: u16 = 0x0600;
    /// The largest valid 802.3 length field.
    pub const MAX_8023_LENGTH: u16 = 1500;
}

/// Ethernet header: destination and source MAC, then the type/length field.
const ETH_TYPE_OFFSET: usize = 12;
/// Length of the Ethernet header.
const ETH_HEADER_LEN: usize = 14;
/// LLC header (DSAP, SSAP, control) length.
const LLC_LEN: usize = 3;
/// LLC header value announcing SNAP.
const LLC_SNAP: [u8; 3] = [0xaa, 0xaa, 0x03];
/// Offset of the SNAP protocol id after the LLC header (it follows a 3-byte OUI).
const SNAP_PROTOCOL_OFFSET: usize = LLC_LEN + 3;
/// LLC + SNAP header length.
const LLC_SNAP_LEN: usize = LLC_LEN + 5;
/// SNAP OUIs whose protocol id is an Ethernet type: RFC 1042 and 802.1H.
const SNAP_ETHERNET_OUIS: [[u8; 3]; 2] = [[0, 0, 0], [0, 0, 0xf8]];
/// VLAN tag: TCI, then the next Ethernet type.
const VLAN_TAG_LEN: usize = 4;
/// VLAN id bits of the TCI.
const VLAN_ID_MASK: u16 = 0x0fff;
/// MPLS label stack entry length.
const MPLS_ENTRY_LEN: usize = 4;
/// Bottom-of-stack bit of an MPLS label stack entry.
const MPLS_BOTTOM_OF_STACK: u32 = 0x100;
/// Shift of the 20-bit label in an MPLS label stack entry.
const MPLS_LABEL_SHIFT: u32 = 12;
/// Pseudowire control word length (RFC 4385).
const PW_CONTROL_WORD_LEN: usize = 4;
/// PPPoE header: version/type, code, session id, length.
const PPPOE_HEADER_LEN: usize = 6;
/// PPP protocol numbers.
mod ppp {
    /// IPv4.
    pub const IPV4: u16 = 0x0021;
    /// IPv6.
    pub const IPV6: u16 = 0x0057;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x0281;
    /// MPLS multicast.
    pub const MPLS_MULTICAST: u16 = 0x0283;
}
/// Cisco HDLC address bytes (unicast, broadcast), followed by a zero control byte and
/// an Ethernet type.
const CISCO_HDLC_ADDRESSES: [u8; 2] = [0x0f, 0x8f];
/// Cisco HDLC header length.
const CISCO_HDLC_LEN: usize = 4;
/// Linux SLL: offset of the ARPHRD type.
const SLL_HATYPE_OFFSET: usize = 2;
/// Linux SLL: offset of the protocol.
const SLL_PROTOCOL_OFFSET: usize = 14;
/// Linux SLL header length.
const SLL_HEADER_LEN: usize = 16;
/// Linux SLL2: offset of the protocol.
const SLL2_PROTOCOL_OFFSET: usize = 0;
/// Linux SLL2: offset of the ARPHRD type.
const SLL2_HATYPE_OFFSET: usize = 8;
/// Linux SLL2 header length.
const SLL2_HEADER_LEN: usize = 20;
/// ARPHRD_NETLINK: the SLL protocol field holds a netlink protocol.
const ARPHRD_NETLINK: u16 = 824;
/// NULL/LOOP header length.
const LOOPBACK_HEADER_LEN: usize = 4;
/// BSD address family values.
const AF_INET: u32 = 2;
/// AF_INET6 on NetBSD, OpenBSD, BSD/OS.
const AF_INET6_BSD: u32 = 24;
/// AF_INET6 on FreeBSD.
const AF_INET6_FREEBSD: u32 = 28;
/// AF_INET6 on Darwin.
const AF_INET6_DARWIN: u32 = 30;
/// Domain tag of a VLAN id folded into `ctx.outer`.
const FOLD_VLAN: u64 = 0x766c_616e << 32;
/// Domain tag of an MPLS label folded into `ctx.outer`.
const FOLD_MPLS: u64 = 0x6d70_6c73 << 32;

/// Decodes a frame of link type `linktype`.
pub(super) fn decode_link(
    d: &Decoder,
    linktype: u32,
    data: &[u8],
    out: &mut Packet,
) -> Result<(), SkipReason> {
    match linktype {
        linktype::ETHERNET => decode_ethernet(d, data, 0, out),
        linktype::RAW | linktype::RAW_12 | linktype::RAW_OPENBSD => ip::decode_ip(d, data, 0, out),
        linktype::IPV4 => ip::decode_ipv4(d, data, 0, out),
        linktype::IPV6 => ip::decode_ipv6(d, data, 0, out),
        linktype::LINUX_SLL => decode_sll(d, data, out),
        linktype::LINUX_SLL2 => decode_sll2(d, data, out),
        linktype::NULL => decode_null(d, data, out),
        linktype::LOOP => decode_loop(d, data, out),
        linktype::PPP => decode_ppp(d, data, 0, out),
        linktype::PPP_HDLC => decode_ppp_hdlc(d, data, out),
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

/// Decodes an Ethernet II / 802.3 frame found at nesting `depth`.
pub(super) fn decode_ethernet(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    if depth > MAX_DEPTH {
        return Err(SkipReason::TooDeep);
    }
    let ether_type = be16(data, ETH_TYPE_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    decode_ethertype(d, ether_type, rest(data, ETH_HEADER_LEN), depth, out)
}

/// Decodes `payload` announced by an Ethernet type (or an 802.3 length), following VLAN
/// tags, LLC/SNAP, MPLS and PPPoE.
pub(super) fn decode_ethertype(
    d: &Decoder,
    mut ether_type: u16,
    mut payload: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    // Every iteration either returns or consumes a VLAN tag or an LLC/SNAP header.
    loop {
        match ether_type {
            ethertype::IPV4 => return ip::decode_ipv4(d, payload, depth, out),
            ethertype::IPV6 => return ip::decode_ipv6(d, payload, depth, out),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_9100 | ethertype::QINQ_9200 => {
                let tci = be16(payload, 0).ok_or(SkipReason::TruncatedLinkLayer)?;
                ether_type = be16(payload, 2).ok_or(SkipReason::TruncatedLinkLayer)?;
                record_vlan(&mut out.ctx, tci & VLAN_ID_MASK);
                payload = rest(payload, VLAN_TAG_LEN);
            }
            ethertype::MPLS | ethertype::MPLS_MULTICAST => {
                return decode_mpls(d, payload, depth, out)
            }
            ethertype::PPPOE_SESSION => {
                if payload.len() < PPPOE_HEADER_LEN {
                    return Err(SkipReason::TruncatedLinkLayer);
                }
                return decode_ppp(d, rest(payload, PPPOE_HEADER_LEN), depth, out);
            }
            len if len <= ethertype::MAX_8023_LENGTH => {
                ether_type = snap_protocol(payload)?;
                payload = rest(payload, LLC_SNAP_LEN);
            }
            _ => return Err(SkipReason::NotIp),
        }
    }
}

/// The Ethernet type carried by an 802.2 LLC/SNAP header, or `NotIp` for other LLC
/// payloads (STP, NetBEUI, IPX, CDP, ...).
fn snap_protocol(llc: &[u8]) -> Result<u16, SkipReason> {
    let dsap_ssap_control = llc.get(..LLC_LEN).ok_or(SkipReason::TruncatedLinkLayer)?;
    if dsap_ssap_control != LLC_SNAP {
        return Err(SkipReason::NotIp);
    }
    let oui = array::<3>(llc, LLC_LEN).ok_or(SkipReason::TruncatedLinkLayer)?;
    let protocol = be16(llc, SNAP_PROTOCOL_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    if SNAP_ETHERNET_OUIS.contains(&oui) && protocol >= ethertype::MIN_ETHERTYPE {
        Ok(protocol)
    } else {
        Err(SkipReason::NotIp)
    }
}

/// Records a VLAN id: the first two non-zero ids fill `ctx.vlan`, later ones are folded
/// into `ctx.outer`. Id 0 (802.1p priority tag) carries no VLAN.
fn record_vlan(ctx: &mut Context, vid: u16) {
    if vid == 0 {
        return;
    }
    if ctx.vlan[0] == 0 {
        ctx.vlan[0] = vid;
    } else if ctx.vlan[1] == 0 {
        ctx.vlan[1] = vid;
    } else {
        tunnel::fold_outer(ctx, &[FOLD_VLAN | u64::from(vid)]);
    }
}

/// Decodes an MPLS label stack and what follows its bottom entry.
pub(super) fn decode_mpls(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let mut off = 0;
    // Every iteration consumes one label stack entry.
    loop {
        let entry = be32(data, off).ok_or(SkipReason::TruncatedLinkLayer)?;
        off += MPLS_ENTRY_LEN;
        tunnel::fold_outer(
            &mut out.ctx,
            &[FOLD_MPLS | u64::from(entry >> MPLS_LABEL_SHIFT)],
        );
        if entry & MPLS_BOTTOM_OF_STACK != 0 {
            break;
        }
    }
    let payload = rest(data, off);
    match payload.first().map(|b| b >> 4) {
        Some(4) => ip::decode_ipv4(d, payload, depth, out),
        Some(6) => ip::decode_ipv6(d, payload, depth, out),
        Some(0) if payload.len() >= PW_CONTROL_WORD_LEN => {
            decode_ethernet(d, rest(payload, PW_CONTROL_WORD_LEN), depth + 1, out)
        }
        Some(0) | None => Err(SkipReason::TruncatedLinkLayer),
        Some(_) => Err(SkipReason::NotIp),
    }
}

/// Decodes a PPP frame: optional HDLC address/control, protocol (1 or 2 bytes), payload.
pub(super) fn decode_ppp(
    d: &Decoder,
    data: &[u8],
    depth: usize,
    out: &mut Packet,
) -> Result<(), SkipReason> {
    let data = strip_address_control(data)?;
    let first = u8_at(data, 0).ok_or(SkipReason::TruncatedLinkLayer)?;
    // Protocol numbers end in an odd byte; an odd first byte is a compressed 1-byte field.
    let (protocol, header_len) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(data, 0).ok_or(SkipReason::TruncatedLinkLayer)?, 2)
    };
    let payload = rest(data, header_len);
    match protocol {
        ppp::IPV4 => ip::decode_ipv4(d, payload, depth, out),
        ppp::IPV6 => ip::decode_ipv6(d, payload, depth, out),
        ppp::MPLS | ppp::MPLS_MULTICAST => decode_mpls(d, payload, depth, out),
        _ => Err(SkipReason::NotIp),
    }
}

/// Removes the HDLC address/control bytes (0xFF 0x03) when present. A leading 0xFF (the
/// all-stations address) is never a PPP protocol byte, so it must be followed by 0x03.
fn strip_address_control(data: &[u8]) -> Result<&[u8], SkipReason> {
    match data {
        [0xff, 0x03, rest @ ..] => Ok(rest),
        [0xff] => Err(SkipReason::TruncatedLinkLayer),
        [0xff, ..] => Err(SkipReason::NotIp),
        _ => Ok(data),
    }
}

/// LINKTYPE_PPP_HDLC: PPP in HDLC-like framing, or Cisco HDLC (address 0x0F/0x8F, control
/// 0, Ethernet type).
fn decode_ppp_hdlc(d: &Decoder, data: &[u8], out: &mut Packet) -> Result<(), SkipReason> {
    match data.first() {
        Some(address) if CISCO_HDLC_ADDRESSES.contains(address) => {
            let ether_type = be16(data, 2).ok_or(SkipReason::TruncatedLinkLayer)?;
            decode_ethertype(d, ether_type, rest(data, CISCO_HDLC_LEN), 0, out)
        }
        _ => decode_ppp(d, data, 0, out),
    }
}

/// Linux cooked capture v1.
fn decode_sll(d: &Decoder, data: &[u8], out: &mut Packet) -> Result<(), SkipReason> {
    if data.len() < SLL_HEADER_LEN {
        return Err(SkipReason::TruncatedLinkLayer);
    }
    let hatype = be16(data, SLL_HATYPE_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    let protocol = be16(data, SLL_PROTOCOL_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    decode_cooked(d, hatype, protocol, rest(data, SLL_HEADER_LEN), out)
}

/// Linux cooked capture v2.
fn decode_sll2(d: &Decoder, data: &[u8], out: &mut Packet) -> Result<(), SkipReason> {
    if data.len() < SLL2_HEADER_LEN {
        return Err(SkipReason::TruncatedLinkLayer);
    }
    let protocol = be16(data, SLL2_PROTOCOL_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    let hatype = be16(data, SLL2_HATYPE_OFFSET).ok_or(SkipReason::TruncatedLinkLayer)?;
    decode_cooked(d, hatype, protocol, rest(data, SLL2_HEADER_LEN), out)
}

/// The payload of a Linux cooked header with ARPHRD type `hatype`.
fn decode_cooked(
    d: &Decoder,
    hatype: u16,
    protocol: u16,
    payload: &[u8],
    out: &mut Packet,
) -> Result<(), SkipReason> {
    // Below 0x0600 the protocol is a Linux ETH_P_* value (802.2, 802.3, CAN, ...), and for
    // netlink it is a netlink protocol: neither is an Ethernet type.
    if hatype == ARPHRD_NETLINK || protocol < ethertype::MIN_ETHERTYPE {
        return Err(SkipReason::NotIp);
    }
    decode_ethertype(d, protocol, payload, 0, out)
}

/// BSD NULL: address family in the capturing host's byte order.
fn decode_null(d: &Decoder, data: &[u8], out: &mut Packet) -> Result<(), SkipReason> {
    let family = le32(data, 0).ok_or(SkipReason::TruncatedLinkLayer)?;
    // Families are small numbers: a value above 16 bits was written big-endian.
    let family = if family > 0xffff {
        family.swap_bytes()
    } else {
        family
    };
    decode_family(d, family, rest(data, LOOPBACK_HEADER_LEN), out)
}

/// OpenBSD LOOP: address family in network byte order.
fn decode_loop(d: &Decoder, data: &[u8], out: &mut Packet) -> Result<(), SkipReason> {
    let family = be32(data, 0).ok_or(SkipReason::TruncatedLinkLayer)?;
    decode_family(d, family, rest(data, LOOPBACK_HEADER_LEN), out)
}

/// The payload of a NULL/LOOP header with address family `family`.
fn decode_family(
    d: &Decoder,
    family: u32,
    payload: &[u8],
    out: &mut Packet,
) -> Result<(), SkipReason> {
    match family {
        AF_INET => ip::decode_ipv4(d, payload, 0, out),
        AF_INET6_BSD | AF_INET6_FREEBSD | AF_INET6_DARWIN => ip::decode_ipv6(d, payload, 0, out),
        _ => Err(SkipReason::NotIp),
    }
}
