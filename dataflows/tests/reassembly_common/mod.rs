//! Helpers shared by the reassembly tests: fragment builders and a table driver.
#![allow(dead_code)]

use flowtide_dataflows::packet::{flags, Addr, Packet};
use flowtide_dataflows::reassembly::parse::ipv4_checksum;
use flowtide_dataflows::reassembly::{
    Policy, PolicyMap, Reassembled, ReassemblyConfig, ReassemblyEvent, ReassemblyTable,
};

pub const SRC4: [u8; 4] = [10, 0, 0, 1];
pub const DST4: [u8; 4] = [10, 0, 0, 2];

pub fn src6() -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = 1;
    a
}

pub fn dst6() -> [u8; 16] {
    let mut a = src6();
    a[15] = 2;
    a
}

/// An IPv4 fragment with a valid header checksum.
pub fn v4(id: u16, protocol: u8, offset: u32, more: bool, data: &[u8], ts: u64) -> Packet {
    v4_flags(id, protocol, offset, more, false, data, ts)
}

pub fn v4_flags(
    id: u16,
    protocol: u8,
    offset: u32,
    more: bool,
    df: bool,
    data: &[u8],
    ts: u64,
) -> Packet {
    let mut h = vec![0x45u8, 0];
    h.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    let frag = (offset / 8) as u16 | if more { 0x2000 } else { 0 } | if df { 0x4000 } else { 0 };
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, protocol, 0, 0]);
    h.extend_from_slice(&SRC4);
    h.extend_from_slice(&DST4);
    let ck = ipv4_checksum(&h);
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    h.extend_from_slice(data);
    packet_of(h, ts)
}

/// An IPv6 fragment; with `dest_opts`, an 8-byte destination-options header precedes the
/// fragment header.
pub fn v6(
    id: u32,
    next: u8,
    offset: u32,
    more: bool,
    data: &[u8],
    ts: u64,
    dest_opts: bool,
) -> Packet {
    let ext = if dest_opts { 8 } else { 0 };
    let mut b = vec![0x60u8, 0, 0, 0];
    b.extend_from_slice(&((ext + 8 + data.len()) as u16).to_be_bytes());
    b.push(if dest_opts { 60 } else { 44 });
    b.push(64);
    b.extend_from_slice(&src6());
    b.extend_from_slice(&dst6());
    if dest_opts {
        // next = fragment, len 0, PadN of 4 bytes.
        b.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    }
    b.push(next);
    b.push(0);
    let off = (offset as u16 & 0xfff8) | more as u16;
    b.extend_from_slice(&off.to_be_bytes());
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(data);
    packet_of(b, ts)
}

/// The Packet record the decoder would produce for these IP datagram bytes.
pub fn packet_of(b: Vec<u8>, ts: u64) -> Packet {
    let mut p = Packet {
        ts_ns: ts,
        ..Default::default()
    };
    if b.first().map(|v| v >> 4) == Some(4) && b.len() >= 20 {
        p.ip_version = 4;
        p.protocol = b[9];
        p.ip_id = u16::from_be_bytes([b[4], b[5]]) as u32;
        let frag = u16::from_be_bytes([b[6], b[7]]);
        p.frag_offset = (frag & 0x1fff) * 8;
        if frag & 0x2000 != 0 {
            p.flags |= flags::MORE_FRAGMENTS;
        }
        if frag & 0x4000 != 0 {
            p.flags |= flags::DONT_FRAGMENT;
        }
        p.src = Addr::from_v4([b[12], b[13], b[14], b[15]]);
        p.dst = Addr::from_v4([b[16], b[17], b[18], b[19]]);
    } else {
        p.ip_version = 6;
        p.flags |= flags::V6_FRAGMENT_HEADER;
        p.src = Addr::from_v6(src6());
        p.dst = Addr::from_v6(dst6());
    }
    p.bytes = Some(b.into_boxed_slice());
    p
}

pub fn config(policy: Policy) -> ReassemblyConfig {
    ReassemblyConfig {
        policies: PolicyMap::uniform(policy),
        ..Default::default()
    }
}

pub fn table(policy: Policy) -> ReassemblyTable {
    ReassemblyTable::new(config(policy))
}

/// Pushes every packet; returns the output and events.
pub fn run(t: &mut ReassemblyTable, ps: &[Packet]) -> (Vec<Reassembled>, Vec<ReassemblyEvent>) {
    let mut out = Vec::new();
    let mut ev = Vec::new();
    for p in ps {
        t.push(p, &mut out, &mut ev);
    }
    (out, ev)
}

/// The shared corpus directory, or None (with a message) when it is absent.
pub fn corpus() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: corpus not found at {}", dir.display());
        None
    }
}
