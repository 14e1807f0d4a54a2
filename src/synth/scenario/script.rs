//! Scripted conversations: every packet of a short conversation (a DNS exchange, a TCP
//! connection, a scan probe, a handful of fragments) is planned when the conversation
//! starts, then emitted in time order by the scenario's event loop.
//!
//! All office traffic is untagged Ethernet and IPv4, seen at the office's uplink:
//! internal hosts have locally administered MAC addresses derived from their IP, every
//! external address is behind the router's MAC.

use crate::synth::frames::{proto, write_udp_header, Addrs, FrameBuf, IpHeader, Link, Vlan};

/// TCP flags.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// Size of the shared pseudo-random payload pool (a power of two), plus slack for the
/// longest segment.
pub const POOL_MASK: usize = 0xffff;
pub const POOL_LEN: usize = POOL_MASK + 1 + 2048;

/// Bytes carried by a packet.
#[derive(Clone, Debug)]
pub enum Data {
    /// No payload.
    None,
    /// These bytes.
    Bytes(Vec<u8>),
    /// `len` bytes of the shared random pool from offset `off` (opaque encrypted data).
    Pool { off: u32, len: u16 },
}

/// The transport part of a planned packet.
#[derive(Clone, Debug)]
pub enum Body {
    /// A TCP segment (a SYN gets MSS, window scale and SACK-permitted options).
    Tcp {
        flags: u8,
        seq: u32,
        ack: u32,
        win: u16,
        data: Data,
    },
    /// A UDP datagram with ports `sport`/`dport` of the conversation.
    Udp { data: Data },
    /// An IPv4 fragment of a datagram of protocol `proto`: `data` is the slice of the
    /// transport datagram at `offset` (a multiple of 8).
    Frag {
        ident: u16,
        offset: u32,
        more: bool,
        proto: u8,
        data: Vec<u8>,
    },
}

/// A planned packet: `up` is client to server.
#[derive(Clone, Debug)]
struct Seg {
    ts: u64,
    up: bool,
    body: Body,
}

/// Who a conversation belongs to, for the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// Ordinary background traffic.
    Background,
    /// Part of benign event number `i` (backup, flash crowd).
    Benign(u16),
    /// Part of attack number `i`.
    Attack(u16),
}

/// Addresses and ports of a conversation (client side first).
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    pub client: [u8; 4],
    pub server: [u8; 4],
    pub cport: u16,
    pub sport: u16,
}

/// The MAC address seen for `ip` on the office link.
pub fn mac_of(ip: [u8; 4]) -> [u8; 6] {
    if is_internal(ip) {
        [0x02, 0x42, ip[0], ip[1], ip[2], ip[3]]
    } else {
        [0x00, 0x1b, 0x21, 0x3c, 0x9d, 0x01]
    }
}

/// True for the office's own addresses (10.0.0.0/8).
pub fn is_internal(ip: [u8; 4]) -> bool {
    ip[0] == 10
}

/// A conversation's planned packets, earliest last (so that `pop` yields them in
/// time order).
#[derive(Debug)]
pub struct Script {
    pub ends: Ends,
    pub tag: Tag,
    ttl: [u8; 2],
    ip_id: [u16; 2],
    df: bool,
    segs: Vec<Seg>,
    sorted: bool,
}

impl Script {
    /// An empty script; `ttl` and `ip_id` are per direction (client's first).
    pub fn new(ends: Ends, tag: Tag, ttl: [u8; 2], ip_id: [u16; 2]) -> Script {
        Script {
            ends,
            tag,
            ttl,
            ip_id,
            df: true,
            segs: Vec::new(),
            sorted: true,
        }
    }

    /// Sets the don't-fragment bit of every packet (default on).
    pub fn set_df(&mut self, df: bool) {
        self.df = df;
    }

    /// Plans a packet.
    pub fn push(&mut self, ts: u64, up: bool, body: Body) {
        self.segs.push(Seg { ts, up, body });
        self.sorted = false;
    }

    /// Orders the plan; must be called after the last `push`.
    pub fn finish(mut self) -> Script {
        if !self.sorted {
            // Stable: packets planned at the same time keep their order.
            self.segs.sort_by_key(|s| s.ts);
            self.segs.reverse();
            self.sorted = true;
        }
        self
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.segs.last().map(|s| s.ts)
    }

    /// Builds the next packet into `fb` and returns its timestamp.
    pub fn emit(&mut self, pool: &[u8], fb: &mut FrameBuf) -> Option<u64> {
        let seg = self.segs.pop()?;
        let d = usize::from(!seg.up);
        let (src, dst, sport, dport) = if seg.up {
            (
                self.ends.client,
                self.ends.server,
                self.ends.cport,
                self.ends.sport,
            )
        } else {
            (
                self.ends.server,
                self.ends.client,
                self.ends.sport,
                self.ends.cport,
            )
        };
        let link = Link {
            src: mac_of(src),
            dst: mac_of(dst),
            vlan: Vlan::Untagged,
            encap: None,
        };
        let id = self.ip_id[d];
        self.ip_id[d] = id.wrapping_add(1);
        let mut ip = IpHeader {
            addrs: Addrs::V4 { src, dst },
            ttl: self.ttl[d],
            tos: 0,
            id: u32::from(id),
            df: self.df,
        };
        let put = |b: &mut Vec<u8>, data: &Data| match data {
            Data::None => {}
            Data::Bytes(v) => b.extend_from_slice(v),
            Data::Pool { off, len } => {
                let start = *off as usize & POOL_MASK;
                let end = (start + usize::from(*len)).min(pool.len());
                b.extend_from_slice(&pool[start.min(end)..end]);
            }
        };
        match &seg.body {
            Body::Tcp {
                flags,
                seq,
                ack,
                win,
                data,
            } => fb.packet(&link, &ip, proto::TCP, |b| {
                let start = b.len();
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                b.extend_from_slice(&ack.to_be_bytes());
                b.extend_from_slice(&[0, *flags]);
                b.extend_from_slice(&win.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]);
                if flags & SYN != 0 {
                    b.extend_from_slice(&[2, 4, 0x05, 0xb4, 1, 3, 3, 7, 1, 1, 4, 2]);
                }
                let header = b.len() - start;
                b[start + 12] = ((header / 4) as u8) << 4;
                put(b, data);
            }),
            Body::Udp { data } => fb.packet(&link, &ip, proto::UDP, |b| {
                write_udp_header(b, sport, dport);
                put(b, data);
            }),
            Body::Frag {
                ident,
                offset,
                more,
                proto,
                data,
            } => {
                ip.id = u32::from(*ident);
                ip.df = false;
                let frag = crate::synth::frames::Fragment {
                    offset: *offset,
                    more: *more,
                    ident: u32::from(*ident),
                    proto: *proto,
                };
                fb.fragment(&link, &ip, &frag, data);
            }
        }
        Some(seg.ts)
    }
}
