//! Frame builders: Ethernet with optional 802.1Q/802.1ad tags, optional GRE, VXLAN or
//! GTP-U encapsulation over IPv4, IPv4/IPv6 (including fragments) and the transport
//! checksums, all with correct lengths.
//!
//! Frames are built into one reused buffer ([`FrameBuf`]): link and tunnel headers are
//! written with placeholder lengths, then the transport body, then every length and
//! checksum is patched from the inside out.

use super::checksum;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q customer tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag.
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Minimum Ethernet frame length without the FCS; shorter frames are zero-padded.
pub const MIN_FRAME: usize = 60;
/// IP protocol number of GRE.
pub const PROTO_GRE: u8 = 47;
/// IPv6 next-header value of the fragment header.
pub const PROTO_V6_FRAGMENT: u8 = 44;
/// UDP port of VXLAN.
pub const VXLAN_PORT: u16 = 4789;
/// UDP port of GTP-U.
pub const GTPU_PORT: u16 = 2152;

pub use flowtide_dataflows::packet::proto;

/// A MAC address.
pub type Mac = [u8; 6];

/// Source and destination addresses of one IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addrs {
    /// IPv4 source and destination.
    V4 {
        /// Source.
        src: [u8; 4],
        /// Destination.
        dst: [u8; 4],
    },
    /// IPv6 source and destination.
    V6 {
        /// Source.
        src: [u8; 16],
        /// Destination.
        dst: [u8; 16],
    },
}

impl Addrs {
    /// The same pair in the other direction.
    #[inline]
    pub fn reversed(self) -> Addrs {
        match self {
            Addrs::V4 { src, dst } => Addrs::V4 { src: dst, dst: src },
            Addrs::V6 { src, dst } => Addrs::V6 { src: dst, dst: src },
        }
    }

    /// True for IPv6.
    #[inline]
    pub fn is_v6(&self) -> bool {
        matches!(self, Addrs::V6 { .. })
    }

    /// The EtherType of packets with these addresses.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.is_v6() {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        }
    }

    /// Length of the fixed IP header.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_v6() {
            40
        } else {
            20
        }
    }

    /// Partial checksum of the pseudo-header for `proto` and upper-layer length `len`.
    #[inline]
    pub fn pseudo_sum(&self, proto: u8, len: u32) -> u64 {
        match self {
            Addrs::V4 { src, dst } => checksum::pseudo_v4(src, dst, proto, len),
            Addrs::V6 { src, dst } => checksum::pseudo_v6(src, dst, proto, len),
        }
    }
}

/// The IP header fields of one packet (besides lengths and checksum).
#[derive(Clone, Copy, Debug)]
pub struct IpHeader {
    /// Addresses (and so the version).
    pub addrs: Addrs,
    /// TTL / hop limit.
    pub ttl: u8,
    /// DSCP and ECN byte (IPv4 TOS / IPv6 traffic class).
    pub tos: u8,
    /// IPv4 identification (low 16 bits) or IPv6 flow label (low 20 bits).
    pub id: u32,
    /// IPv4 "don't fragment".
    pub df: bool,
}

/// 802.1Q tagging of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Vlan {
    /// No tag.
    #[default]
    Untagged,
    /// One 802.1Q tag: priority (0–7) and VLAN id.
    Tag {
        /// Priority code point.
        pcp: u8,
        /// VLAN id (1–4094).
        id: u16,
    },
    /// QinQ: an 802.1ad service tag then an 802.1Q customer tag.
    QinQ {
        /// Service (outer) VLAN id.
        service: u16,
        /// Customer (inner) VLAN id.
        customer: u16,
    },
}

/// The kind and identifiers of a tunnel encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// GRE (RFC 2890) with a key.
    Gre {
        /// The GRE key.
        key: u32,
    },
    /// VXLAN over UDP/4789 carrying an inner Ethernet frame.
    Vxlan {
        /// VXLAN network identifier (24 bits).
        vni: u32,
        /// Outer UDP source port (flow entropy).
        sport: u16,
        /// Inner Ethernet source.
        inner_src: Mac,
        /// Inner Ethernet destination.
        inner_dst: Mac,
    },
    /// GTP-U (G-PDU) over UDP/2152.
    GtpU {
        /// Tunnel endpoint identifier of the receiving side.
        teid: u32,
    },
}

/// An outer IPv4 header and tunnel header wrapped around the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encap {
    /// Outer IPv4 source (tunnel endpoint).
    pub src: [u8; 4],
    /// Outer IPv4 destination (tunnel endpoint).
    pub dst: [u8; 4],
    /// Outer TTL.
    pub ttl: u8,
    /// Outer IPv4 identification.
    pub id: u16,
    /// The tunnel.
    pub tunnel: Tunnel,
}

/// Everything outside the (inner) IP packet: Ethernet, VLAN tags and encapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Ethernet source.
    pub src: Mac,
    /// Ethernet destination.
    pub dst: Mac,
    /// VLAN tagging of the outer frame.
    pub vlan: Vlan,
    /// Tunnel encapsulation, if any.
    pub encap: Option<Encap>,
}

impl Link {
    /// Bytes the link adds in front of the inner IP packet.
    pub fn overhead(&self) -> usize {
        let vlan = match self.vlan {
            Vlan::Untagged => 0,
            Vlan::Tag { .. } => 4,
            Vlan::QinQ { .. } => 8,
        };
        let encap = match self.encap.map(|e| e.tunnel) {
            None => 0,
            Some(Tunnel::Gre { .. }) => 20 + 8,
            Some(Tunnel::Vxlan { .. }) => 20 + 8 + 8 + 14,
            Some(Tunnel::GtpU { .. }) => 20 + 8 + 8,
        };
        14 + vlan + encap
    }
}

/// IPv4 fragment or IPv6 fragment-header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in the datagram, in bytes (a multiple of 8).
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// IPv6 fragment identification (IPv4 uses [`IpHeader::id`]).
    pub ident: u32,
    /// Protocol of the fragmented datagram.
    pub proto: u8,
}

/// What kind of packet the last built frame was, for the report counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// Protocol of the innermost IP packet (of the datagram for fragments).
    pub proto: u8,
    /// The innermost IP packet is IPv6.
    pub ipv6: bool,
    /// The outer frame carries a VLAN tag.
    pub vlan: bool,
    /// The packet is encapsulated in a tunnel.
    pub tunnelled: bool,
    /// The innermost IP packet is a fragment.
    pub fragment: bool,
}

/// Offsets of the encapsulation headers to patch once the inner packet is complete.
struct EncapMarks {
    ip: usize,
    udp: Option<usize>,
    gtp: Option<usize>,
    src: [u8; 4],
    dst: [u8; 4],
}

/// A reusable buffer holding the frame being built.
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    info: FrameInfo,
}

impl FrameBuf {
    /// An empty frame buffer.
    pub fn new() -> FrameBuf {
        FrameBuf {
            buf: Vec::with_capacity(16 * 1024),
            info: FrameInfo::default(),
        }
    }

    /// Forgets the last frame ([`FrameBuf::bytes`] becomes empty).
    #[inline]
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The frame built last.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Classification of the frame built last.
    #[inline]
    pub fn info(&self) -> FrameInfo {
        self.info
    }

    /// Builds a frame carrying a complete IP packet of protocol `proto` whose transport
    /// header and payload `body` appends. Lengths and checksums are filled in afterwards
    /// (TCP, UDP, ICMP and ICMPv6 checksum fields must be left zero by `body`).
    pub fn packet(
        &mut self,
        link: &Link,
        ip: &IpHeader,
        proto: u8,
        body: impl FnOnce(&mut Vec<u8>),
    ) {
        self.buf.clear();
        let marks = begin_link(&mut self.buf, link, ip.addrs.ethertype());
        write_ip_packet(&mut self.buf, ip, proto, body);
        finish_link(&mut self.buf, marks);
        pad(&mut self.buf);
        self.info = FrameInfo {
            proto,
            ipv6: ip.addrs.is_v6(),
            vlan: link.vlan != Vlan::Untagged,
            tunnelled: link.encap.is_some(),
            fragment: false,
        };
    }

    /// Builds a frame carrying one fragment (`data`, a slice of the transport datagram)
    /// of an IP datagram: IPv4 fragment fields, or an IPv6 fragment header.
    pub fn fragment(&mut self, link: &Link, ip: &IpHeader, frag: &Fragment, data: &[u8]) {
        self.buf.clear();
        let marks = begin_link(&mut self.buf, link, ip.addrs.ethertype());
        let off = self.buf.len();
        match ip.addrs {
            Addrs::V4 { .. } => {
                let field =
                    ((frag.offset / 8) as u16 & 0x1fff) | if frag.more { 0x2000 } else { 0 };
                write_ip_header(&mut self.buf, ip, frag.proto, field);
            }
            Addrs::V6 { .. } => {
                write_ip_header(&mut self.buf, ip, PROTO_V6_FRAGMENT, 0);
                self.buf.push(frag.proto);
                self.buf.push(0);
                let field = ((frag.offset / 8) as u16) << 3 | u16::from(frag.more);
                self.buf.extend_from_slice(&field.to_be_bytes());
                self.buf.extend_from_slice(&frag.ident.to_be_bytes());
            }
        }
        self.buf.extend_from_slice(data);
        finish_ip_header(&mut self.buf, off, ip.addrs.is_v6());
        finish_link(&mut self.buf, marks);
        pad(&mut self.buf);
        self.info = FrameInfo {
            proto: frag.proto,
            ipv6: ip.addrs.is_v6(),
            vlan: link.vlan != Vlan::Untagged,
            tunnelled: link.encap.is_some(),
            fragment: true,
        };
    }
}

fn pad(buf: &mut Vec<u8>) {
    if buf.len() < MIN_FRAME {
        buf.resize(MIN_FRAME, 0);
    }
}

/// Writes Ethernet, VLAN tags and the encapsulation headers (with placeholder lengths)
/// for an inner packet of EtherType `inner`.
fn begin_link(buf: &mut Vec<u8>, link: &Link, inner: u16) -> Option<EncapMarks> {
    buf.extend_from_slice(&link.dst);
    buf.extend_from_slice(&link.src);
    match link.vlan {
        Vlan::Untagged => {}
        Vlan::Tag { pcp, id } => {
            buf.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            buf.extend_from_slice(&(u16::from(pcp & 7) << 13 | (id & 0x0fff)).to_be_bytes());
        }
        Vlan::QinQ { service, customer } => {
            buf.extend_from_slice(&ETHERTYPE_QINQ.to_be_bytes());
            buf.extend_from_slice(&(service & 0x0fff).to_be_bytes());
            buf.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            buf.extend_from_slice(&(customer & 0x0fff).to_be_bytes());
        }
    }
    let Some(encap) = link.encap else {
        buf.extend_from_slice(&inner.to_be_bytes());
        return None;
    };
    buf.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    let outer = IpHeader {
        addrs: Addrs::V4 {
            src: encap.src,
            dst: encap.dst,
        },
        ttl: encap.ttl,
        tos: 0,
        id: u32::from(encap.id),
        df: true,
    };
    let ip = buf.len();
    let mut marks = EncapMarks {
        ip,
        udp: None,
        gtp: None,
        src: encap.src,
        dst: encap.dst,
    };
    match encap.tunnel {
        Tunnel::Gre { key } => {
            write_ip_header(buf, &outer, PROTO_GRE, 0);
            buf.extend_from_slice(&0x2000u16.to_be_bytes()); // K bit, version 0
            buf.extend_from_slice(&inner.to_be_bytes());
            buf.extend_from_slice(&key.to_be_bytes());
        }
        Tunnel::Vxlan {
            vni,
            sport,
            inner_src,
            inner_dst,
        } => {
            write_ip_header(buf, &outer, proto::UDP, 0);
            marks.udp = Some(buf.len());
            write_udp_header(buf, sport, VXLAN_PORT);
            buf.extend_from_slice(&[0x08, 0, 0, 0]);
            buf.extend_from_slice(&((vni & 0x00ff_ffff) << 8).to_be_bytes());
            buf.extend_from_slice(&inner_dst);
            buf.extend_from_slice(&inner_src);
            buf.extend_from_slice(&inner.to_be_bytes());
        }
        Tunnel::GtpU { teid } => {
            write_ip_header(buf, &outer, proto::UDP, 0);
            marks.udp = Some(buf.len());
            write_udp_header(buf, GTPU_PORT, GTPU_PORT);
            marks.gtp = Some(buf.len());
            buf.extend_from_slice(&[0x30, 0xff, 0, 0]); // v1, PT=1, G-PDU, length
            buf.extend_from_slice(&teid.to_be_bytes());
        }
    }
    Some(marks)
}

/// Patches the encapsulation lengths and checksums once the inner packet is written.
/// VXLAN keeps a zero outer UDP checksum (RFC 7348); GTP-U gets a full one.
fn finish_link(buf: &mut [u8], marks: Option<EncapMarks>) {
    let Some(m) = marks else { return };
    let end = buf.len();
    if let Some(g) = m.gtp {
        let len = (end - g - 8) as u16;
        buf[g + 2..g + 4].copy_from_slice(&len.to_be_bytes());
    }
    if let Some(u) = m.udp {
        let len = (end - u) as u16;
        buf[u + 4..u + 6].copy_from_slice(&len.to_be_bytes());
        if m.gtp.is_some() {
            let sum = checksum::add(
                checksum::pseudo_v4(&m.src, &m.dst, proto::UDP, u32::from(len)),
                &buf[u..],
            );
            let c = nonzero(checksum::finish(sum));
            buf[u + 6..u + 8].copy_from_slice(&c.to_be_bytes());
        }
    }
    finish_ip_header(buf, m.ip, false);
}

/// A UDP checksum of zero is sent as all ones (zero means "no checksum").
#[inline]
fn nonzero(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

/// Appends an 8-byte UDP header with zero length and checksum.
#[inline]
pub fn write_udp_header(buf: &mut Vec<u8>, sport: u16, dport: u16) {
    buf.extend_from_slice(&sport.to_be_bytes());
    buf.extend_from_slice(&dport.to_be_bytes());
    buf.extend_from_slice(&[0, 0, 0, 0]);
}

/// Appends an IPv4 (with fragment field `frag`: flags and offset, DF added from `ip`) or
/// IPv6 header with zero length and checksum.
fn write_ip_header(buf: &mut Vec<u8>, ip: &IpHeader, proto: u8, frag: u16) {
    match ip.addrs {
        Addrs::V4 { src, dst } => {
            let field = frag | if ip.df { 0x4000 } else { 0 };
            buf.extend_from_slice(&[0x45, ip.tos, 0, 0]);
            buf.extend_from_slice(&(ip.id as u16).to_be_bytes());
            buf.extend_from_slice(&field.to_be_bytes());
            buf.extend_from_slice(&[ip.ttl, proto, 0, 0]);
            buf.extend_from_slice(&src);
            buf.extend_from_slice(&dst);
        }
        Addrs::V6 { src, dst } => {
            let word = 6u32 << 28 | u32::from(ip.tos) << 20 | (ip.id & 0x000f_ffff);
            buf.extend_from_slice(&word.to_be_bytes());
            buf.extend_from_slice(&[0, 0, proto, ip.ttl]);
            buf.extend_from_slice(&src);
            buf.extend_from_slice(&dst);
        }
    }
}

/// Sets the length (and the IPv4 header checksum) of the IP header at `off`, whose
/// packet extends to the end of `buf`.
fn finish_ip_header(buf: &mut [u8], off: usize, v6: bool) {
    let total = buf.len() - off;
    if v6 {
        let plen = (total - 40) as u16;
        buf[off + 4..off + 6].copy_from_slice(&plen.to_be_bytes());
    } else {
        buf[off + 2..off + 4].copy_from_slice(&(total as u16).to_be_bytes());
        buf[off + 10..off + 12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&buf[off..off + 20]);
        buf[off + 10..off + 12].copy_from_slice(&c.to_be_bytes());
    }
}

/// Appends a complete IP packet: header, the transport header and payload appended by
/// `body`, then patches the transport length and checksum and the IP length/checksum.
pub fn write_ip_packet(
    buf: &mut Vec<u8>,
    ip: &IpHeader,
    proto: u8,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let off = buf.len();
    write_ip_header(buf, ip, proto, 0);
    let l4 = buf.len();
    body(buf);
    finish_transport(buf, l4, &ip.addrs, proto);
    finish_ip_header(buf, off, ip.addrs.is_v6());
}

/// Appends a transport datagram (header and payload written by `body`) with its
/// length and checksum set for `addrs`: the unit that is then cut into fragments.
pub fn write_transport(
    buf: &mut Vec<u8>,
    addrs: &Addrs,
    proto: u8,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let l4 = buf.len();
    body(buf);
    finish_transport(buf, l4, addrs, proto);
}

/// Patches the UDP length and the TCP/UDP/ICMP/ICMPv6 checksum of the transport
/// datagram starting at `l4`.
fn finish_transport(buf: &mut [u8], l4: usize, addrs: &Addrs, proto: u8) {
    let len = (buf.len() - l4) as u32;
    let field = match proto {
        proto::TCP if len >= 20 => 16,
        proto::UDP if len >= 8 => {
            buf[l4 + 4..l4 + 6].copy_from_slice(&(len as u16).to_be_bytes());
            6
        }
        proto::ICMP | proto::ICMPV6 if len >= 4 => 2,
        _ => return,
    };
    buf[l4 + field..l4 + field + 2].copy_from_slice(&[0, 0]);
    let init = if proto == proto::ICMP {
        0
    } else {
        addrs.pseudo_sum(proto, len)
    };
    let mut c = checksum::finish(checksum::add(init, &buf[l4..]));
    if proto == proto::UDP {
        c = nonzero(c);
    }
    buf[l4 + field..l4 + field + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> IpHeader {
        IpHeader {
            addrs: Addrs::V4 {
                src: [10, 0, 0, 1],
                dst: [192, 0, 2, 7],
            },
            ttl: 64,
            tos: 0,
            id: 0x1234,
            df: true,
        }
    }

    fn plain() -> Link {
        Link {
            src: [2, 0, 0, 0, 0, 1],
            dst: [2, 0, 0, 0, 0, 2],
            vlan: Vlan::Untagged,
            encap: None,
        }
    }

    fn verify_transport(datagram: &[u8], addrs: &Addrs, proto: u8) {
        let init = if proto == proto::ICMP {
            0
        } else {
            addrs.pseudo_sum(proto, datagram.len() as u32)
        };
        assert_eq!(checksum::finish(checksum::add(init, datagram)), 0);
    }

    #[test]
    fn udp_over_ipv4_is_consistent() {
        let mut fb = FrameBuf::new();
        let ip = v4();
        fb.packet(&plain(), &ip, proto::UDP, |b| {
            write_udp_header(b, 5353, 53);
            b.extend_from_slice(b"hello");
        });
        let f = fb.bytes();
        assert_eq!(f.len(), MIN_FRAME, "padded");
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        let ipb = &f[14..14 + 33];
        assert_eq!(u16::from_be_bytes([ipb[2], ipb[3]]), 33);
        assert_eq!(checksum::checksum(&ipb[..20]), 0);
        assert_eq!(u16::from_be_bytes([ipb[24], ipb[25]]), 13);
        verify_transport(&ipb[20..], &ip.addrs, proto::UDP);
        assert!(!fb.info().fragment && fb.info().proto == proto::UDP);
    }

    #[test]
    fn tcp_over_ipv6_in_qinq() {
        let mut fb = FrameBuf::new();
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        let mut b = a;
        b[15] = 9;
        let ip = IpHeader {
            addrs: Addrs::V6 { src: a, dst: b },
            ttl: 64,
            tos: 0,
            id: 0xabcde,
            df: false,
        };
        let link = Link {
            vlan: Vlan::QinQ {
                service: 100,
                customer: 20,
            },
            ..plain()
        };
        fb.packet(&link, &ip, proto::TCP, |buf| {
            buf.extend_from_slice(&[
                0, 80, 0x30, 0x39, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
            ]);
        });
        let f = fb.bytes();
        assert_eq!(&f[12..14], &[0x88, 0xa8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        assert_eq!(&f[20..22], &[0x86, 0xdd]);
        let ipb = &f[22..];
        assert_eq!(u16::from_be_bytes([ipb[4], ipb[5]]), 20);
        verify_transport(&ipb[40..60], &ip.addrs, proto::TCP);
        assert!(fb.info().vlan && fb.info().ipv6);
    }

    #[test]
    fn tunnels_have_consistent_outer_lengths() {
        let mut fb = FrameBuf::new();
        for tunnel in [
            Tunnel::Gre { key: 7 },
            Tunnel::Vxlan {
                vni: 5001,
                sport: 50000,
                inner_src: [2, 1, 1, 1, 1, 1],
                inner_dst: [2, 2, 2, 2, 2, 2],
            },
            Tunnel::GtpU { teid: 0xdead },
        ] {
            let link = Link {
                encap: Some(Encap {
                    src: [172, 16, 0, 1],
                    dst: [172, 16, 0, 2],
                    ttl: 63,
                    id: 9,
                    tunnel,
                }),
                ..plain()
            };
            let ip = v4();
            fb.packet(&link, &ip, proto::UDP, |b| {
                write_udp_header(b, 1000, 53);
                b.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
            });
            let f = fb.bytes().to_vec();
            assert_eq!(f.len(), link.overhead() + 20 + 15);
            let outer = &f[14..];
            assert_eq!(
                u16::from_be_bytes([outer[2], outer[3]]) as usize,
                f.len() - 14
            );
            assert_eq!(checksum::checksum(&outer[..20]), 0);
            if let Tunnel::GtpU { .. } = tunnel {
                let a = Addrs::V4 {
                    src: [172, 16, 0, 1],
                    dst: [172, 16, 0, 2],
                };
                verify_transport(&outer[20..], &a, proto::UDP);
                assert_eq!(u16::from_be_bytes([outer[30], outer[31]]) as usize, 35);
            }
            assert!(fb.info().tunnelled);
        }
    }

    #[test]
    fn fragments_carry_offsets_and_flags() {
        let mut fb = FrameBuf::new();
        let ip = IpHeader { df: false, ..v4() };
        let frag = Fragment {
            offset: 1480,
            more: true,
            ident: 0,
            proto: proto::UDP,
        };
        fb.fragment(&plain(), &ip, &frag, &[0u8; 1480]);
        let f = fb.bytes();
        let ipb = &f[14..];
        assert_eq!(u16::from_be_bytes([ipb[6], ipb[7]]), 0x2000 | 185);
        assert_eq!(u16::from_be_bytes([ipb[2], ipb[3]]), 1500);
        assert_eq!(checksum::checksum(&ipb[..20]), 0);
        assert!(fb.info().fragment);
    }
}
