//! Decoder unit tests: malformed and truncated input, depth limits, configuration
//! switches, and property tests that arbitrary bytes never panic.

use flowtide_dataflows::packet::{flags, Addr, Context, Packet, TunnelKind};
use proptest::prelude::*;

use super::{DecodeConfig, Decoder, SkipReason, MAX_DEPTH};
use crate::capture::{linktype, Frame};

/// Frame builders (checksums 0; the decoder does not verify them).
mod build {
    /// Ethernet II with VLAN `tags` (TPID, TCI) before the Ethernet type.
    pub fn eth_tagged(tags: &[(u16, u16)], ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for &(tpid, tci) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&tci.to_be_bytes());
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Untagged Ethernet II.
    pub fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        eth_tagged(&[], ether_type, payload)
    }

    /// IPv4 (IHL 5, id 0x0102, DF) with protocol `proto`.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0x01, 0x02, 0x40, 0x00, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    /// IPv4 fragment: id, offset in bytes, more-fragments flag.
    pub fn ipv4_frag(proto: u8, id: u16, offset: u16, more: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = ipv4([10, 0, 0, 1], [10, 0, 0, 2], proto, payload);
        p[4..6].copy_from_slice(&id.to_be_bytes());
        let field = (offset / 8) | if more { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&field.to_be_bytes());
        p
    }

    /// IPv6 with next header `next`.
    pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    /// UDP.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    /// TCP with data offset `doff` (options zero-filled).
    pub fn tcp_doff(sport: u16, dport: u16, flags: u8, doff: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, doff << 4, flags, 4, 0, 0, 0, 0, 0]);
        p.resize(p.len().max(usize::from(doff) * 4), 0);
        p.extend_from_slice(payload);
        p
    }

    /// TCP with data offset 5.
    pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        tcp_doff(sport, dport, flags, 5, payload)
    }

    /// `2001:db8::<last>`.
    pub fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        a
    }

    /// GRE version 0 with an optional key.
    pub fn gre(key: Option<u32>, protocol: u16, payload: &[u8]) -> Vec<u8> {
        let flags: u16 = if key.is_some() { 0x2000 } else { 0 };
        let mut p = Vec::new();
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&protocol.to_be_bytes());
        if let Some(k) = key {
            p.extend_from_slice(&k.to_be_bytes());
        }
        p.extend_from_slice(payload);
        p
    }

    /// VXLAN header (I flag) with `vni`, then `payload`.
    pub fn vxlan(vni: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x08, 0, 0, 0];
        p.extend_from_slice(&(vni << 8).to_be_bytes());
        p.extend_from_slice(payload);
        p
    }
}

use build::*;

/// Client and server addresses used by the builders.
const A: [u8; 4] = [192, 0, 2, 1];
/// Server.
const B: [u8; 4] = [192, 0, 2, 2];
/// Outer tunnel endpoints.
const O1: [u8; 4] = [198, 51, 100, 1];
/// Outer tunnel endpoint.
const O2: [u8; 4] = [198, 51, 100, 2];

/// Decodes `data` of `linktype` (captured whole) with `config`.
fn decode_with(
    config: DecodeConfig,
    linktype: u32,
    data: &[u8],
) -> (Result<(), SkipReason>, Packet) {
    let frame = Frame {
        ts_ns: 1,
        linktype,
        orig_len: data.len() as u32,
        data,
    };
    let mut p = Packet::default();
    let r = Decoder::new(config).decode(&frame, 0, 0, &mut p);
    (r, p)
}

/// Decodes an Ethernet frame with the default configuration.
fn decode_eth(data: &[u8]) -> (Result<(), SkipReason>, Packet) {
    decode_with(DecodeConfig::default(), linktype::ETHERNET, data)
}

/// A plain TCP SYN over Ethernet.
fn tcp_frame() -> Vec<u8> {
    eth(0x0800, &ipv4(A, B, 6, &tcp(40000, 80, 0x02, b"hello")))
}

#[test]
fn plain_tcp_udp_icmp() {
    let (r, p) = decode_eth(&tcp_frame());
    assert_eq!(r, Ok(()));
    assert_eq!(
        (p.src, p.dst, p.protocol, p.sport, p.dport),
        (Addr::from_v4(A), Addr::from_v4(B), 6, 40000, 80)
    );
    assert_eq!(
        (p.tcp_flags, p.ip_len, p.payload_len, p.ip_id),
        (0x02, 45, 5, 0x0102)
    );
    assert_eq!(p.flags, flags::DONT_FRAGMENT);
    assert!(p.ctx.is_plain() && p.bytes.is_none());

    // ECE and CWR are part of the flags byte.
    let (_, p) = decode_eth(&eth(0x0800, &ipv4(A, B, 6, &tcp(1, 2, 0xc2, b""))));
    assert_eq!(p.tcp_flags, 0xc2);

    let (_, p) = decode_eth(&eth(0x0800, &ipv4(A, B, 17, &udp(53, 5353, b"abc"))));
    assert_eq!((p.sport, p.dport, p.payload_len), (53, 5353, 3));

    // ICMP echo request: type 8 code 0, identifier 0x4242; destination unreachable: no id.
    let (_, p) = decode_eth(&eth(
        0x0800,
        &ipv4(A, B, 1, &[8, 0, 0, 0, 0x42, 0x42, 0, 1]),
    ));
    assert_eq!((p.sport, p.dport, p.payload_len), (8 << 8, 0x4242, 0));
    let (_, p) = decode_eth(&eth(
        0x0800,
        &ipv4(A, B, 1, &[3, 3, 0, 0, 0x42, 0x42, 0, 1]),
    ));
    assert_eq!((p.sport, p.dport), (3 << 8 | 3, 0));
    // ICMPv6 echo reply (129).
    let (_, p) = decode_eth(&eth(
        0x86dd,
        &ipv6(v6(1), v6(2), 58, &[129, 0, 0, 0, 0, 7, 0, 1]),
    ));
    assert_eq!(
        (p.protocol, p.sport, p.dport, p.ip_len),
        (58, 129 << 8, 7, 48)
    );

    // SCTP and UDP-Lite ports; another protocol (OSPF) by number only.
    let (_, p) = decode_eth(&eth(
        0x0800,
        &ipv4(A, B, 132, &[0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
    ));
    assert_eq!((p.sport, p.dport, p.payload_len), (1, 2, 0));
    let (_, p) = decode_eth(&eth(0x0800, &ipv4(A, B, 136, &udp(7, 8, b"x"))));
    assert_eq!((p.sport, p.dport, p.payload_len), (7, 8, 1));
    let (_, p) = decode_eth(&eth(0x0800, &ipv4(A, B, 89, &[1, 2, 3])));
    assert_eq!((p.protocol, p.sport, p.dport, p.payload_len), (89, 0, 0, 3));
}

#[test]
fn link_layer_rules() {
    // ARP and LLDP are not IP; an unknown link type is unsupported.
    assert_eq!(decode_eth(&eth(0x0806, &[0; 28])).0, Err(SkipReason::NotIp));
    assert_eq!(decode_eth(&eth(0x88cc, &[0; 28])).0, Err(SkipReason::NotIp));
    assert_eq!(
        decode_with(DecodeConfig::default(), 105, &[0; 64]).0,
        Err(SkipReason::UnsupportedLinkType)
    );
    // Plain LLC (STP) is not IP; SNAP with a non-Ethernet OUI (CDP) neither.
    assert_eq!(
        decode_eth(&eth(38, &[0x42, 0x42, 0x03, 0, 0, 0])).0,
        Err(SkipReason::NotIp)
    );
    assert_eq!(
        decode_eth(&eth(38, &[0xaa, 0xaa, 0x03, 0, 0, 0x0c, 0x20, 0x00])).0,
        Err(SkipReason::NotIp)
    );
    // Priority tag (VLAN id 0) then VLAN 300 with PCP bits set: vlan[0] = 300.
    let (r, p) = decode_eth(&eth_tagged(
        &[(0x8100, 0xe000), (0x8100, 0x612c)],
        0x0800,
        &ipv4(A, B, 17, &udp(1, 2, b"")),
    ));
    assert_eq!((r, p.ctx.vlan, p.ctx.outer), (Ok(()), [300, 0], 0));
    // Deeper tags change the outer digest.
    let three = decode_eth(&eth_tagged(
        &[(0x88a8, 1), (0x8100, 2), (0x8100, 3)],
        0x0800,
        &ipv4(A, B, 17, &udp(1, 2, b"")),
    ))
    .1;
    let other = decode_eth(&eth_tagged(
        &[(0x88a8, 1), (0x8100, 2), (0x8100, 4)],
        0x0800,
        &ipv4(A, B, 17, &udp(1, 2, b"")),
    ))
    .1;
    assert_eq!(three.ctx.vlan, [1, 2]);
    assert!(three.ctx.outer != 0 && other.ctx.outer != 0 && three.ctx.outer != other.ctx.outer);
    // Ethernet type IPv4 with a version-6 header is a version error.
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv6(v6(1), v6(2), 59, &[]))).0,
        Err(SkipReason::BadIpVersion)
    );
    // PPPoE session carrying LCP (0xC021) is not IP.
    assert_eq!(
        decode_eth(&eth(0x8864, &[0x11, 0, 0, 1, 0, 4, 0xc0, 0x21, 1, 1])).0,
        Err(SkipReason::NotIp)
    );
    // NULL with an unknown family; SLL with a netlink ARPHRD type.
    let mut null = vec![7, 0, 0, 0];
    null.extend_from_slice(&ipv4(A, B, 17, &udp(1, 2, b"")));
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::NULL, &null).0,
        Err(SkipReason::NotIp)
    );
    let mut sll = vec![0, 0, 0x03, 0x38, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ipv4(A, B, 17, &udp(1, 2, b"")));
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::LINUX_SLL, &sll).0,
        Err(SkipReason::NotIp)
    );
    sll[2..4].copy_from_slice(&[0, 1]); // ARPHRD_ETHER
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::LINUX_SLL, &sll).0,
        Ok(())
    );
    // NULL family 2 in little-endian and IPv6 family 30 (Darwin) in big-endian.
    let mut null = vec![2, 0, 0, 0];
    null.extend_from_slice(&ipv4(A, B, 17, &udp(1, 2, b"")));
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::NULL, &null).0,
        Ok(())
    );
    let mut null = vec![0, 0, 0, 30];
    null.extend_from_slice(&ipv6(v6(1), v6(2), 17, &udp(1, 2, b"")));
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::NULL, &null).0,
        Ok(())
    );
}

#[test]
fn ipv4_header_errors() {
    let good = ipv4(A, B, 17, &udp(1, 2, b"abcd"));
    // IHL < 5.
    for ihl in 0..5u8 {
        let mut bad = good.clone();
        bad[0] = 0x40 | ihl;
        assert_eq!(
            decode_eth(&eth(0x0800, &bad)).0,
            Err(SkipReason::BadIpv4Header),
            "IHL {ihl}"
        );
    }
    // IHL larger than the data.
    let mut bad = good.clone();
    bad[0] = 0x4f;
    assert_eq!(
        decode_eth(&eth(0x0800, &bad)).0,
        Err(SkipReason::BadIpv4Header)
    );
    // Total length shorter than the header.
    let mut bad = good.clone();
    bad[2..4].copy_from_slice(&19u16.to_be_bytes());
    assert_eq!(
        decode_eth(&eth(0x0800, &bad)).0,
        Err(SkipReason::BadIpv4Header)
    );
    // Total length larger than the data: decoded, lengths from the header.
    let mut long = good.clone();
    long[2..4].copy_from_slice(&1000u16.to_be_bytes());
    let (r, p) = decode_eth(&eth(0x0800, &long));
    assert_eq!(
        (r, p.ip_len, p.payload_len, p.sport),
        (Ok(()), 1000, 1000 - 28, 1)
    );
    // Options are skipped; padding after the total length is ignored.
    let mut opts = vec![
        0x46, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0,
    ];
    opts.extend_from_slice(&udp(9, 10, b"x"));
    opts.extend_from_slice(&[0xff; 10]);
    let (r, p) = decode_eth(&eth(0x0800, &opts));
    assert_eq!(
        (r, p.sport, p.dport, p.ip_len, p.payload_len),
        (Ok(()), 9, 10, 33, 1)
    );
    // Version 5 on raw IP.
    let mut v5 = good.clone();
    v5[0] = 0x55;
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::RAW, &v5).0,
        Err(SkipReason::BadIpVersion)
    );
    assert_eq!(
        decode_with(DecodeConfig::default(), linktype::RAW, &[]).0,
        Err(SkipReason::BadIpVersion)
    );
}

#[test]
fn transport_truncation_rules() {
    // Declared IP payload too short for the transport header: malformed.
    let short_udp = ipv4(A, B, 17, &[0, 1, 0, 2]);
    assert_eq!(
        decode_eth(&eth(0x0800, &short_udp)).0,
        Err(SkipReason::TruncatedTransport)
    );
    let short_tcp = ipv4(A, B, 6, &[0; 12]);
    assert_eq!(
        decode_eth(&eth(0x0800, &short_tcp)).0,
        Err(SkipReason::TruncatedTransport)
    );
    // TCP data offset below 5, or beyond the declared payload: malformed.
    let bogus = ipv4(A, B, 6, &tcp_doff(1, 2, 0x10, 2, b""));
    assert_eq!(
        decode_eth(&eth(0x0800, &bogus)).0,
        Err(SkipReason::TruncatedTransport)
    );
    let mut over = tcp(1, 2, 0x10, b"");
    over[12] = 0xf0;
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(A, B, 6, &over))).0,
        Err(SkipReason::TruncatedTransport)
    );
    // The snap length cut the TCP header: record kept, ports 0, NO_TRANSPORT, lengths from
    // the IP header.
    let full = tcp_frame();
    let cut = &full[..14 + 20 + 10];
    let frame = Frame {
        ts_ns: 1,
        linktype: 1,
        orig_len: full.len() as u32,
        data: cut,
    };
    let mut p = Packet::default();
    assert_eq!(Decoder::default().decode(&frame, 0, 0, &mut p), Ok(()));
    assert_eq!((p.sport, p.dport, p.ip_len, p.payload_len), (0, 0, 45, 25));
    assert_eq!(
        p.flags & (flags::NO_TRANSPORT | flags::TRUNCATED),
        flags::NO_TRANSPORT | flags::TRUNCATED
    );
    // A TCP header whose options were cut still yields ports and flags.
    let with_options = eth(0x0800, &ipv4(A, B, 6, &tcp_doff(5, 6, 0x18, 8, b"data")));
    let frame = Frame {
        ts_ns: 1,
        linktype: 1,
        orig_len: with_options.len() as u32,
        data: &with_options[..14 + 20 + 24],
    };
    assert_eq!(Decoder::default().decode(&frame, 0, 0, &mut p), Ok(()));
    assert_eq!(
        (p.sport, p.dport, p.tcp_flags, p.payload_len),
        (5, 6, 0x18, 4)
    );
}

#[test]
fn ipv4_fragments() {
    let first = eth(
        0x0800,
        &ipv4_frag(6, 7, 0, true, &tcp(1000, 2000, 0x02, &[0; 4])),
    );
    let (r, p) = decode_eth(&first);
    assert_eq!(r, Ok(()));
    assert_eq!(
        (p.sport, p.dport, p.ip_id, p.frag_offset),
        (1000, 2000, 7, 0)
    );
    assert_eq!(p.flags & flags::MORE_FRAGMENTS, flags::MORE_FRAGMENTS);
    assert_eq!(p.bytes.as_deref().map(<[u8]>::len), Some(44));
    // A tiny first fragment (8 bytes of TCP) has no whole TCP header.
    let tiny = eth(0x0800, &ipv4_frag(6, 7, 0, true, &[0, 1, 0, 2, 0, 0, 0, 0]));
    let (_, p) = decode_eth(&tiny);
    assert_eq!(
        (p.sport, p.dport, p.flags & flags::NO_TRANSPORT),
        (0, 0, flags::NO_TRANSPORT)
    );
    // Non-first fragment: no ports, payload length = IP payload; padding not kept.
    let mut last = eth(0x0800, &ipv4_frag(6, 7, 24, false, &[9; 16]));
    last.extend_from_slice(&[0; 8]);
    let (_, p) = decode_eth(&last);
    assert_eq!(
        (
            p.sport,
            p.frag_offset,
            p.payload_len,
            p.flags & flags::NO_TRANSPORT
        ),
        (0, 24, 16, flags::NO_TRANSPORT)
    );
    assert_eq!(p.bytes.as_deref().map(<[u8]>::len), Some(36));
    // Without keep_fragment_bytes nothing is kept.
    let config = DecodeConfig {
        keep_fragment_bytes: false,
        ..DecodeConfig::default()
    };
    assert_eq!(decode_with(config, 1, &last).1.bytes, None);
    // A UDP first fragment on a VXLAN port is not decapsulated.
    let vx = udp(
        1,
        4789,
        &vxlan(5, &eth(0x0800, &ipv4(A, B, 17, &udp(3, 4, b"")))),
    );
    let (_, p) = decode_eth(&eth(0x0800, &ipv4_frag(17, 9, 0, true, &vx)));
    assert_eq!(
        (p.ctx.tunnel, p.sport, p.dport),
        (TunnelKind::None, 1, 4789)
    );
}

/// An IPv6 fragment header: next header, offset in bytes, M flag, id.
fn frag_header(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    // Hop-by-hop (8 bytes), AH (len 1 -> 12 bytes), then UDP.
    let mut payload = vec![51, 0, 1, 4, 0, 0, 0, 0];
    payload.extend_from_slice(&[17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    payload.extend_from_slice(&udp(7, 8, b"abc"));
    let (r, p) = decode_eth(&eth(0x86dd, &ipv6(v6(1), v6(2), 0, &payload)));
    assert_eq!(
        (r, p.protocol, p.sport, p.dport, p.payload_len),
        (Ok(()), 17, 7, 8, 3)
    );
    // No next header (59) and ESP (50) end the walk.
    let (_, p) = decode_eth(&eth(
        0x86dd,
        &ipv6(v6(1), v6(2), 60, &[59, 0, 1, 4, 0, 0, 0, 0]),
    ));
    assert_eq!((p.protocol, p.payload_len), (59, 0));
    let (_, p) = decode_eth(&eth(0x86dd, &ipv6(v6(1), v6(2), 50, &[0; 16])));
    assert_eq!((p.protocol, p.payload_len, p.sport), (50, 16, 0));
    // Chain overrun: a destination options header claiming 16 bytes in an 8-byte payload.
    let (r, _) = decode_eth(&eth(
        0x86dd,
        &ipv6(v6(1), v6(2), 60, &[17, 1, 0, 0, 0, 0, 0, 0]),
    ));
    assert_eq!(r, Err(SkipReason::BadIpv6Header));
    // Chain cut by the snap length: kept, protocol = the header that could not be read.
    let full = eth(
        0x86dd,
        &ipv6(
            v6(1),
            v6(2),
            0,
            &[60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0],
        ),
    );
    let frame = Frame {
        ts_ns: 1,
        linktype: 1,
        orig_len: full.len() as u32,
        data: &full[..14 + 40 + 12],
    };
    let mut p = Packet::default();
    assert_eq!(Decoder::default().decode(&frame, 0, 0, &mut p), Ok(()));
    assert_eq!(
        (p.protocol, p.flags & flags::NO_TRANSPORT, p.ip_len),
        (60, flags::NO_TRANSPORT, 56)
    );
    // Truncated fixed header.
    assert_eq!(
        decode_eth(&eth(0x86dd, &[0x60; 39])).0,
        Err(SkipReason::BadIpv6Header)
    );

    // Real fragments: first (ports), later (none); bytes = whole IPv6 packet.
    let mut first = frag_header(17, 0, true, 0xdead_beef);
    first.extend_from_slice(&udp(53, 53, &[1; 16]));
    let (r, p) = decode_eth(&eth(0x86dd, &ipv6(v6(1), v6(2), 44, &first)));
    assert_eq!(r, Ok(()));
    assert_eq!(
        (p.protocol, p.sport, p.ip_id, p.frag_offset),
        (17, 53, 0xdead_beef, 0)
    );
    assert_eq!(
        p.flags & (flags::MORE_FRAGMENTS | flags::V6_FRAGMENT_HEADER),
        flags::MORE_FRAGMENTS | flags::V6_FRAGMENT_HEADER
    );
    assert_eq!(p.bytes.as_deref().map(<[u8]>::len), Some(40 + 8 + 24));
    let mut later = frag_header(17, 24, false, 0xdead_beef);
    later.extend_from_slice(&[2; 16]);
    let (_, p) = decode_eth(&eth(0x86dd, &ipv6(v6(1), v6(2), 44, &later)));
    assert_eq!(
        (p.protocol, p.sport, p.frag_offset, p.payload_len),
        (17, 0, 24, 16)
    );
    assert_ne!(p.flags & flags::NO_TRANSPORT, 0);
    // Atomic fragment: decoded through, header flag kept, no bytes.
    let mut atomic = frag_header(6, 0, false, 42);
    atomic.extend_from_slice(&tcp(1, 2, 0x02, b""));
    let (_, p) = decode_eth(&eth(0x86dd, &ipv6(v6(1), v6(2), 44, &atomic)));
    assert_eq!(
        (p.protocol, p.sport, p.ip_id, p.bytes.is_none()),
        (6, 1, 42, true)
    );
    assert_eq!(
        p.flags & (flags::V6_FRAGMENT_HEADER | flags::MORE_FRAGMENTS),
        flags::V6_FRAGMENT_HEADER
    );
    assert!(
        p.is_fragment(),
        "the reassembly stage sees atomic fragments"
    );
}

#[test]
fn ipv6_jumbogram() {
    // Payload length 0, hop-by-hop with a jumbo payload option (0xC2, length 4).
    let mut payload = vec![17, 0, 0xc2, 4];
    let body = udp(1, 2, &[0; 8]);
    payload.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    payload.extend_from_slice(&body);
    let mut packet = ipv6(v6(1), v6(2), 0, &payload);
    packet[4..6].copy_from_slice(&[0, 0]);
    let (r, p) = decode_with(DecodeConfig::default(), linktype::IPV6, &packet);
    assert_eq!(
        (r, p.ip_len, p.sport, p.payload_len),
        (Ok(()), 40 + 24, 1, 8)
    );
}

#[test]
fn gre_errors_and_fallbacks() {
    let inner = ipv4(A, B, 17, &udp(1, 2, b""));
    // Version 2 and version 0 with the routing bit are bad tunnels.
    let mut v2 = gre(None, 0x0800, &inner);
    v2[1] = 0x02;
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &v2))).0,
        Err(SkipReason::BadTunnel)
    );
    let mut routing = gre(None, 0x0800, &inner);
    routing[0] = 0x40;
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &routing))).0,
        Err(SkipReason::BadTunnel)
    );
    // Enhanced GRE (version 1) must be key-bearing PPP.
    let v1_ip = [0x20, 0x01, 0x08, 0x00, 0, 0, 0, 1];
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &v1_ip))).0,
        Err(SkipReason::BadTunnel)
    );
    // A key field beyond the declared payload is malformed.
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &[0x20, 0, 8, 0]))).0,
        Err(SkipReason::BadTunnel)
    );
    // PPTP acknowledgment without payload, and an unknown protocol type: GRE record.
    let ack = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 9, 0, 0, 0, 3];
    let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &ack)));
    assert_eq!(
        (r, p.protocol, p.ctx.tunnel, p.src),
        (Ok(()), 47, TunnelKind::None, Addr::from_v4(O1))
    );
    let (r, p) = decode_eth(&eth(
        0x0800,
        &ipv4(O1, O2, 47, &gre(Some(3), 0x1234, b"xx")),
    ));
    assert_eq!(
        (r, p.protocol, p.ctx.tunnel, p.payload_len),
        (Ok(()), 47, TunnelKind::None, 10)
    );
    // ERSPAN type II with version 2 is bad.
    let mut erspan = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x20, 0, 0, 1, 0, 0, 0, 0];
    erspan.extend_from_slice(&eth(0x0800, &inner));
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &erspan))).0,
        Err(SkipReason::BadTunnel)
    );
    // ERSPAN type III carrying IP directly (frame type 2).
    let mut e3 = vec![
        0x10, 0, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0x08, 0,
    ];
    e3.extend_from_slice(&inner);
    let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &e3)));
    assert_eq!(
        (r, p.src, p.ctx.tunnel, p.ctx.tunnel_id),
        (Ok(()), Addr::from_v4(A), TunnelKind::ErspanIII, 5)
    );
    // GRE carrying MPLS carrying IPv4.
    let mut mpls = vec![0, 0x01, 0x01, 0x40];
    mpls.extend_from_slice(&inner);
    let (r, p) = decode_eth(&eth(
        0x0800,
        &ipv4(O1, O2, 47, &gre(Some(8), 0x8847, &mpls)),
    ));
    assert_eq!(
        (r, p.src, p.ctx.tunnel, p.ctx.tunnel_id),
        (Ok(()), Addr::from_v4(A), TunnelKind::Gre, 8)
    );
}

#[test]
fn udp_tunnel_fallbacks() {
    let inner = eth(0x0800, &ipv4(A, B, 17, &udp(1, 2, b"")));
    // VXLAN header cut short, or without the I flag: the UDP packet is the record.
    for payload in [vec![0x08, 0, 0], {
        let mut v = vxlan(7, &inner);
        v[0] = 0;
        v
    }] {
        let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 17, &udp(5, 4789, &payload))));
        assert_eq!(
            (r, p.src, p.dport, p.ctx.tunnel),
            (Ok(()), Addr::from_v4(O1), 4789, TunnelKind::None)
        );
    }
    // VXLAN carrying ARP: not IP.
    let arp = vxlan(7, &eth(0x0806, &[0; 28]));
    assert_eq!(
        decode_eth(&eth(0x0800, &ipv4(O1, O2, 17, &udp(5, 4789, &arp)))).0,
        Err(SkipReason::NotIp)
    );
    // GTP echo request (type 1) and GTPv2 on 2152: the UDP packet is the record.
    for gtp in [
        [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0],
        [0x48, 0xff, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0],
    ] {
        let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 17, &udp(2152, 2152, &gtp))));
        assert_eq!((r, p.ctx.tunnel, p.sport), (Ok(()), TunnelKind::None, 2152));
    }
    // Teredo port with a payload that is not IPv6 (or IPv6 with a wrong length).
    let (r, p) = decode_eth(&eth(
        0x0800,
        &ipv4(O1, O2, 17, &udp(3544, 5000, &[0x60; 50])),
    ));
    assert_eq!((r, p.ctx.tunnel, p.dport), (Ok(()), TunnelKind::None, 5000));
    // Geneve version 1 is not followed; Geneve carrying IPv6 directly is.
    let mut gen = vec![0x40, 0, 0x86, 0xdd, 0, 0, 9, 0];
    gen.extend_from_slice(&ipv6(v6(1), v6(2), 17, &udp(1, 2, b"")));
    let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 17, &udp(5, 6081, &gen))));
    assert_eq!((r, p.ctx.tunnel), (Ok(()), TunnelKind::None));
    gen[0] = 0;
    let (r, p) = decode_eth(&eth(0x0800, &ipv4(O1, O2, 17, &udp(5, 6081, &gen))));
    assert_eq!(
        (r, p.ctx.tunnel, p.ctx.tunnel_id, p.ip_version),
        (Ok(()), TunnelKind::Geneve, 9, 6)
    );
}

#[test]
fn tunnel_context_is_symmetric_and_chained() {
    let forward = eth(
        0x0800,
        &ipv4(
            O1,
            O2,
            47,
            &gre(Some(77), 0x0800, &ipv4(A, B, 17, &udp(1, 2, b""))),
        ),
    );
    let reverse = eth(
        0x0800,
        &ipv4(
            O2,
            O1,
            47,
            &gre(Some(77), 0x0800, &ipv4(B, A, 17, &udp(2, 1, b""))),
        ),
    );
    let other = eth(
        0x0800,
        &ipv4(
            O1,
            [198, 51, 100, 3],
            47,
            &gre(Some(77), 0x0800, &ipv4(A, B, 17, &udp(1, 2, b""))),
        ),
    );
    let (f, r, o) = (
        decode_eth(&forward).1,
        decode_eth(&reverse).1,
        decode_eth(&other).1,
    );
    assert_eq!((f.ctx.tunnel, f.ctx.tunnel_id), (TunnelKind::Gre, 77));
    assert_eq!(f.ctx, r.ctx, "both directions share a context");
    assert_ne!(f.ctx.outer, o.ctx.outer, "other endpoints, other context");
    // VXLAN inside GRE: the innermost tunnel is VXLAN, the GRE layer is in the digest.
    let vx = ipv4(
        A,
        B,
        17,
        &udp(
            9,
            4789,
            &vxlan(
                5,
                &eth(
                    0x0800,
                    &ipv4([10, 1, 1, 1], [10, 1, 1, 2], 6, &tcp(3, 4, 0x10, b"")),
                ),
            ),
        ),
    );
    let nested = decode_eth(&eth(0x0800, &ipv4(O1, O2, 47, &gre(Some(77), 0x0800, &vx)))).1;
    let alone = decode_eth(&eth(0x0800, &vx)).1;
    assert_eq!(
        (nested.ctx.tunnel, nested.ctx.tunnel_id),
        (TunnelKind::Vxlan, 5)
    );
    assert_eq!((nested.sport, nested.dport), (3, 4));
    assert_ne!(nested.ctx.outer, alone.ctx.outer);
    // decode_ip chains onto the given context (a reassembled datagram inside a tunnel).
    let ctx = Context {
        vlan: [4, 0],
        tunnel: TunnelKind::Gre,
        tunnel_id: 1,
        outer: 99,
    };
    let mut p = Packet::default();
    let d = Decoder::default();
    assert_eq!(
        d.decode_ip(&ipv4(A, B, 6, &tcp(1, 2, 0x02, b"")), ctx, &mut p),
        Ok(())
    );
    assert_eq!(p.ctx, ctx);
    assert_eq!(
        d.decode_ip(
            &ipv4(O1, O2, 4, &ipv4(A, B, 6, &tcp(1, 2, 0x02, b""))),
            ctx,
            &mut p
        ),
        Ok(())
    );
    assert_eq!(
        (p.ctx.vlan, p.ctx.tunnel, p.src),
        ([4, 0], TunnelKind::IpInIp, Addr::from_v4(A))
    );
    assert!(p.ctx.outer != 99 && p.ctx.outer != 0);
}

#[test]
fn decapsulation_off_keeps_outer_packets() {
    let config = DecodeConfig {
        decapsulate: false,
        ..DecodeConfig::default()
    };
    let vx = eth(
        0x0800,
        &ipv4(
            O1,
            O2,
            17,
            &udp(
                9,
                4789,
                &vxlan(5, &eth(0x0800, &ipv4(A, B, 6, &tcp(3, 4, 0x10, b"")))),
            ),
        ),
    );
    let (r, p) = decode_with(config.clone(), 1, &vx);
    assert_eq!(
        (r, p.src, p.sport, p.dport, p.ctx),
        (Ok(()), Addr::from_v4(O1), 9, 4789, Context::default())
    );
    let ipip = eth(
        0x0800,
        &ipv4(O1, O2, 4, &ipv4(A, B, 6, &tcp(3, 4, 0x10, b""))),
    );
    let (r, p) = decode_with(config, 1, &ipip);
    assert_eq!(
        (r, p.src, p.protocol, p.payload_len),
        (Ok(()), Addr::from_v4(O1), 4, 40)
    );
}

/// `levels` IPv4-in-IPv4 headers around a UDP packet.
fn nested_ipip(levels: usize) -> Vec<u8> {
    let mut p = ipv4(A, B, 17, &udp(1, 2, b"x"));
    for _ in 0..levels {
        p = ipv4(O1, O2, 4, &p);
    }
    p
}

#[test]
fn depth_limits() {
    // MAX_DEPTH nested tunnels are followed; more are TooDeep.
    let (r, p) = decode_eth(&eth(0x0800, &nested_ipip(MAX_DEPTH)));
    assert_eq!((r, p.src, p.sport), (Ok(()), Addr::from_v4(A), 1));
    assert_eq!(
        decode_eth(&eth(0x0800, &nested_ipip(MAX_DEPTH + 1))).0,
        Err(SkipReason::TooDeep)
    );
    assert_eq!(
        decode_eth(&eth(0x0800, &nested_ipip(20))).0,
        Err(SkipReason::TooDeep)
    );
    // Ethernet-in-GRE bombs and MPLS pseudowire bombs end the same way.
    let mut frame = eth(0x0800, &ipv4(A, B, 17, &udp(1, 2, b"")));
    for _ in 0..20 {
        frame = eth(0x0800, &ipv4(O1, O2, 47, &gre(None, 0x6558, &frame)));
    }
    assert_eq!(decode_eth(&frame).0, Err(SkipReason::TooDeep));
    let mut frame = eth(0x0800, &ipv4(A, B, 17, &udp(1, 2, b"")));
    for _ in 0..20 {
        let mut pw = vec![0, 0x01, 0x01, 0x40, 0, 0, 0, 0];
        pw.extend_from_slice(&frame);
        frame = eth(0x8847, &pw);
    }
    assert_eq!(decode_eth(&frame).0, Err(SkipReason::TooDeep));
    // A deep VLAN stack is not a depth problem (each tag costs 4 bytes).
    let tags = vec![(0x8100, 5); 50];
    let (r, p) = decode_eth(&eth_tagged(&tags, 0x0800, &ipv4(A, B, 17, &udp(1, 2, b""))));
    assert_eq!((r, p.ctx.vlan), (Ok(()), [5, 5]));
}

/// Every prefix of `data` (as if cut by the snap length) decodes without panicking, and
/// with a sensible result: a link-layer cut is `TruncatedLinkLayer`, an IP header cut is
/// `BadIpv4Header`/`BadIpv6Header`, and once the outermost IP header is complete a
/// non-tunnelled packet is always kept, with the same addresses and IP length as the
/// whole frame.
fn check_every_prefix(name: &str, linktype: u32, data: &[u8], ip_offset: usize) {
    let decoder = Decoder::default();
    let mut whole = Packet::default();
    let whole_result = decoder.decode(
        &Frame {
            ts_ns: 0,
            linktype,
            orig_len: data.len() as u32,
            data,
        },
        0,
        0,
        &mut whole,
    );
    let tunnelled = whole.ctx.tunnel != TunnelKind::None;
    let ip_header = match data.get(ip_offset).map(|b| b >> 4) {
        Some(4) => usize::from(data[ip_offset] & 0x0f) * 4,
        _ => 40,
    };
    for len in 0..data.len() {
        let frame = Frame {
            ts_ns: 0,
            linktype,
            orig_len: data.len() as u32,
            data: &data[..len],
        };
        let mut p = Packet::default();
        let r = decoder.decode(&frame, 0, 0, &mut p);
        if len < ip_offset {
            assert!(
                matches!(
                    r,
                    Err(SkipReason::TruncatedLinkLayer
                        | SkipReason::BadIpVersion
                        | SkipReason::BadIpv4Header
                        | SkipReason::BadIpv6Header)
                ),
                "{name}: cut at {len} in the link layer gave {r:?}"
            );
        } else if len == ip_offset && r == Err(SkipReason::TruncatedLinkLayer) {
            // Nothing after the link layer: MPLS cannot tell what would have followed.
            assert!(name.starts_with("mpls"), "{name}: cut at {len} gave {r:?}");
        } else if len < ip_offset + ip_header {
            assert!(
                matches!(
                    r,
                    Err(SkipReason::BadIpv4Header
                        | SkipReason::BadIpv6Header
                        | SkipReason::BadIpVersion)
                ),
                "{name}: cut at {len} in the IP header gave {r:?}"
            );
        } else if whole_result.is_ok() {
            // Cut after the outermost IP header: always kept. Without a tunnel the record
            // is the same packet; with one, the innermost packet whose headers survived.
            assert_eq!(r, Ok(()), "{name}: cut at {len}");
            assert_ne!(p.flags & flags::TRUNCATED, 0);
            if !tunnelled {
                assert_eq!(
                    (p.src, p.dst, p.ip_len),
                    (whole.src, whole.dst, whole.ip_len),
                    "{name}: cut at {len}"
                );
                assert!(
                    (p.sport, p.dport) == (whole.sport, whole.dport)
                        || p.flags & flags::NO_TRANSPORT != 0
                        || p.is_fragment()
                );
            } else if p.ctx.tunnel == whole.ctx.tunnel {
                assert_eq!(p.ctx, whole.ctx, "{name}: cut at {len}");
                assert_eq!(
                    (p.src, p.dst),
                    (whole.src, whole.dst),
                    "{name}: cut at {len}"
                );
            }
        }
    }
}

/// The first frames of some corpus captures, with their link type and IP offset.
fn corpus_frames() -> Vec<(String, u32, Vec<u8>, usize)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !root.is_dir() {
        eprintln!("SKIPPED corpus frames: {} missing", root.display());
        return Vec::new();
    }
    // (capture, frame number, offset of the outermost IP header)
    let picks = [
        ("ndpi/tests/cfgs/default/pcap/gre.pcapng", 1, 18),
        ("ndpi/tests/cfgs/default/pcap/vxlan.pcap", 1, 18),
        ("ndpi/tests/cfgs/default/pcap/ipv6_in_gtp.pcap", 1, 22),
        ("ndpi/tests/cfgs/default/pcap/teredo.pcap", 2, 14),
        ("ndpi/tests/cfgs/default/pcap/6in4tunnel.pcap", 1, 14),
        ("ndpi/tests/cfgs/default/pcap/4in6tunnel.pcap", 1, 14),
        ("ndpi/tests/cfgs/default/pcap/syslog.pcap", 1, 22),
        (
            "ndpi/tests/cfgs/default/pcap/log4j-webapp-exploit.pcap",
            1,
            16,
        ),
        ("ndpi/tests/cfgs/default/pcap/rdp.pcap", 1, 4),
        ("ndpi/tests/cfgs/default/pcap/google_ssl.pcap", 4, 14),
        (
            "suricata-verify/tests/defrag/bug-6887-defrag-ppp-ipv6-tcp/frag-ppp-ipv6-tcp.pcap",
            1,
            1,
        ),
        (
            "suricata-verify/tests/ipv6-evasion/ipv6-dos-with-ext-headers-6/denial6-6.pcap",
            1,
            14,
        ),
        ("nfstream/tests/pcaps/gtp-u.pcap", 1, 14),
    ];
    let mut out = Vec::new();
    for (rel, number, ip_offset) in picks {
        let path = root.join(rel);
        let Ok(mut cap) = pcap::Capture::from_file(&path) else {
            continue;
        };
        let lt = cap.get_datalink().0 as u32;
        for n in 1..=number {
            let Ok(p) = cap.next_packet() else { break };
            if n == number {
                out.push((format!("{rel}#{number}"), lt, p.data.to_vec(), ip_offset));
            }
        }
    }
    out
}

#[test]
fn truncation_at_every_offset() {
    let frames = corpus_frames();
    for (name, lt, data, ip_offset) in &frames {
        check_every_prefix(name, *lt, data, *ip_offset);
    }
    // Hand-built frames the corpus lacks: MPLS, QinQ, GRE with key, IPv6 fragment.
    let mut mpls = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40];
    mpls.extend_from_slice(&ipv4(A, B, 6, &tcp(1, 2, 0x10, b"abc")));
    check_every_prefix("mpls", 1, &eth(0x8847, &mpls), 22);
    let qinq = eth_tagged(
        &[(0x88a8, 1), (0x8100, 2)],
        0x86dd,
        &ipv6(v6(1), v6(2), 17, &udp(1, 2, b"abc")),
    );
    check_every_prefix("qinq", 1, &qinq, 22);
    let gre_key = eth(
        0x0800,
        &ipv4(
            O1,
            O2,
            47,
            &gre(Some(5), 0x0800, &ipv4(A, B, 17, &udp(1, 2, b"x"))),
        ),
    );
    check_every_prefix("gre", 1, &gre_key, 14);
    let mut frag = frag_header(17, 0, true, 1);
    frag.extend_from_slice(&udp(1, 2, &[0; 16]));
    check_every_prefix(
        "v6frag",
        1,
        &eth(0x86dd, &ipv6(v6(1), v6(2), 44, &frag)),
        14,
    );
    assert!(
        frames.is_empty() || frames.len() >= 10,
        "corpus frames found: {}",
        frames.len()
    );
}

/// Link types to fuzz: every supported one and an unsupported one.
const LINKTYPES: [u32; 13] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::RAW,
    linktype::RAW_OPENBSD,
    linktype::RAW_12,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    105,
];

/// Valid frames (of several encapsulations) to mutate.
fn seeds() -> Vec<(u32, Vec<u8>)> {
    let inner = ipv4(A, B, 6, &tcp(1, 2, 0x10, b"abcdef"));
    let mut teredo = vec![0, 0, 0x12, 0x34, 1, 2, 3, 4];
    teredo.extend_from_slice(&ipv6(v6(1), v6(2), 59, &[]));
    let mut gtp = vec![0x34, 0xff, 0, 40, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 9, 0];
    gtp.extend_from_slice(&inner);
    let mut erspan = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0];
    erspan.extend_from_slice(&eth(0x0800, &inner));
    let mut erspan3 = vec![
        0x10, 0, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        0, 0,
    ];
    erspan3.extend_from_slice(&eth(0x0800, &inner));
    let mut mpls = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40, 0, 0, 0, 0];
    mpls.extend_from_slice(&eth(0x0800, &inner));
    let mut geneve = vec![0x01, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 1, 2, 0];
    geneve.extend_from_slice(&eth(0x0800, &inner));
    let mut pppoe = vec![0x11, 0, 0, 1, 0, 60, 0, 0x21];
    pppoe.extend_from_slice(&inner);
    let mut v6ext = vec![
        43, 0, 1, 4, 0, 0, 0, 0, 44, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 1,
    ];
    v6ext.extend_from_slice(&tcp(1, 2, 0x02, b""));
    vec![
        (1, eth(0x0800, &inner)),
        (
            1,
            eth_tagged(
                &[(0x88a8, 1), (0x8100, 2)],
                0x86dd,
                &ipv6(v6(1), v6(2), 0, &v6ext),
            ),
        ),
        (1, eth(0x0800, &ipv4(O1, O2, 17, &udp(3544, 3544, &teredo)))),
        (1, eth(0x0800, &ipv4(O1, O2, 17, &udp(2152, 2152, &gtp)))),
        (1, eth(0x0800, &ipv4(O1, O2, 47, &erspan))),
        (1, eth(0x0800, &ipv4(O1, O2, 47, &erspan3))),
        (1, eth(0x8847, &mpls)),
        (1, eth(0x0800, &ipv4(O1, O2, 17, &udp(1, 6081, &geneve)))),
        (
            1,
            eth(
                0x0800,
                &ipv4(O1, O2, 17, &udp(1, 4789, &vxlan(1, &eth(0x0800, &inner)))),
            ),
        ),
        (1, eth(0x8864, &pppoe)),
        (1, eth(0x86dd, &ipv6(v6(1), v6(2), 4, &inner))),
        (linktype::RAW, nested_ipip(3)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        lt in proptest::sample::select(LINKTYPES.to_vec()),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        orig_extra in 0u32..100,
        decapsulate in any::<bool>(),
    ) {
        let config = DecodeConfig { decapsulate, keep_fragment_bytes: true };
        let frame = Frame { ts_ns: 0, linktype: lt, orig_len: data.len() as u32 + orig_extra, data: &data };
        let mut p = Packet::default();
        let r = Decoder::new(config).decode(&frame, 0, 0, &mut p);
        if r.is_ok() {
            prop_assert!(p.ip_version == 4 || p.ip_version == 6);
            prop_assert!(p.ctx.tunnel == TunnelKind::None || p.ctx.outer != 0);
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in 0usize..12,
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<proptest::sample::Index>(),
        lt_override in proptest::option::weighted(0.2, proptest::sample::select(LINKTYPES.to_vec())),
    ) {
        let seeds = seeds();
        let (lt, mut data) = seeds[seed % seeds.len()].clone();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let len = cut.index(data.len() + 1);
        let frame = Frame { ts_ns: 0, linktype: lt_override.unwrap_or(lt), orig_len: data.len() as u32, data: &data[..len] };
        let mut p = Packet::default();
        let r = Decoder::default().decode(&frame, 0, 0, &mut p);
        if r.is_ok() {
            prop_assert!(p.ctx.tunnel == TunnelKind::None || p.ctx.outer != 0);
            if let Some(bytes) = &p.bytes {
                prop_assert!(p.is_fragment() && bytes.len() <= len);
            }
        }
    }
}

#[test]
fn unmutated_seeds_decode() {
    for (i, (lt, data)) in seeds().iter().enumerate() {
        let (r, p) = decode_with(DecodeConfig::default(), *lt, data);
        assert_eq!(r, Ok(()), "seed {i}");
        assert!(p.ip_version == 4 || p.ip_version == 6);
    }
}
