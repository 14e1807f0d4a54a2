//! Parsing a fragment's IP header from the captured datagram bytes. Never panics.

use crate::packet::Addr;

/// IPv6 next-header values of the extension headers that may precede a fragment header.
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DEST_OPTS: u8 = 60;

/// The parts of one fragment the reassembler needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedFragment<'a> {
    /// 4 or 6.
    pub version: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IPv4 protocol or the fragment header's next header.
    pub protocol: u8,
    /// Identification.
    pub id: u32,
    /// Fragment offset in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// IPv4 "don't fragment".
    pub dont_fragment: bool,
    /// IPv4: the header with options. IPv6: the fixed header and the unfragmentable
    /// extension headers (the fragment header excluded).
    pub header: &'a [u8],
    /// IPv6: index in `header` of the next-header byte that names the fragment header.
    pub next_header_at: usize,
    /// The fragment's data (IPv4 payload; IPv6 fragmentable part after the fragment header).
    pub data: &'a [u8],
}

/// Parses an IPv4 or IPv6 fragment; `Err` names what is malformed.
pub fn parse_fragment(b: &[u8]) -> Result<ParsedFragment<'_>, &'static str> {
    match b.first().map(|v| v >> 4) {
        Some(4) => parse_v4(b),
        Some(6) => parse_v6(b),
        Some(_) => Err("not an IPv4 or IPv6 header"),
        None => Err("no bytes"),
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn parse_v4(b: &[u8]) -> Result<ParsedFragment<'_>, &'static str> {
    if b.len() < 20 {
        return Err("IPv4 header truncated");
    }
    let ihl = ((b[0] & 0x0f) as usize) * 4;
    if ihl < 20 {
        return Err("IPv4 header length below 20");
    }
    if b.len() < ihl {
        return Err("IPv4 options truncated");
    }
    let total = be16(b, 2) as usize;
    if total < ihl {
        return Err("IPv4 total length below header length");
    }
    if b.len() < total {
        return Err("IPv4 datagram truncated");
    }
    let frag = be16(b, 6);
    let src = Addr::from_v4([b[12], b[13], b[14], b[15]]);
    let dst = Addr::from_v4([b[16], b[17], b[18], b[19]]);
    Ok(ParsedFragment {
        version: 4,
        src,
        dst,
        protocol: b[9],
        id: be16(b, 4) as u32,
        offset: ((frag & 0x1fff) as u32) * 8,
        more: frag & 0x2000 != 0,
        dont_fragment: frag & 0x4000 != 0,
        header: &b[..ihl],
        next_header_at: 0,
        data: &b[ihl..total],
    })
}

fn parse_v6(b: &[u8]) -> Result<ParsedFragment<'_>, &'static str> {
    if b.len() < 40 {
        return Err("IPv6 header truncated");
    }
    let end = 40 + be16(b, 4) as usize;
    if b.len() < end {
        return Err("IPv6 datagram truncated");
    }
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[8..24]);
    dst.copy_from_slice(&b[24..40]);
    let mut next = b[6];
    let mut next_at = 6usize;
    let mut pos = 40usize;
    while next != FRAGMENT {
        match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS => {
                if pos + 2 > end {
                    return Err("IPv6 extension header truncated");
                }
                let len = (b[pos + 1] as usize + 1) * 8;
                next = b[pos];
                next_at = pos;
                pos += len;
                if pos > end {
                    return Err("IPv6 extension header truncated");
                }
            }
            _ => return Err("no IPv6 fragment header"),
        }
    }
    if pos + 8 > end {
        return Err("IPv6 fragment header truncated");
    }
    let off = be16(b, pos + 2);
    Ok(ParsedFragment {
        version: 6,
        src: Addr::from_v6(src),
        dst: Addr::from_v6(dst),
        protocol: b[pos],
        id: u32::from_be_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]),
        offset: (off & 0xfff8) as u32,
        more: off & 1 != 0,
        dont_fragment: false,
        header: &b[..pos],
        next_header_at: next_at,
        data: &b[pos + 8..end],
    })
}

/// The IPv4 header checksum of `h` (its checksum field included as is).
pub fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in h.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds the reassembled IP packet from the first fragment's header and the payload.
/// IPv4: total length set, MF and offset cleared (DF and the reserved bit kept as on the
/// first fragment), checksum recomputed. IPv6: the fragment header is gone, the preceding
/// next-header field names the fragment header's next header, payload length fixed.
pub fn build_packet(
    version: u8,
    header: &[u8],
    next_header_at: usize,
    protocol: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + payload.len());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    if version == 4 {
        let total = (header.len() + payload.len()).min(0xffff) as u16;
        out[2..4].copy_from_slice(&total.to_be_bytes());
        out[6] &= 0xc0;
        out[7] = 0;
        out[10] = 0;
        out[11] = 0;
        let ck = ipv4_checksum(&out[..header.len()]);
        out[10..12].copy_from_slice(&ck.to_be_bytes());
    } else {
        let plen = (header.len() - 40 + payload.len()).min(0xffff) as u16;
        out[4..6].copy_from_slice(&plen.to_be_bytes());
        out[next_header_at] = protocol;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_panics_on_prefixes_of_valid_headers() {
        let mut v6 = vec![0x60, 0, 0, 0, 0, 24, 60, 64];
        v6.extend_from_slice(&[0u8; 32]);
        v6.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]); // dest opts, next = fragment
        v6.extend_from_slice(&[17, 0, 0, 9, 0, 0, 0, 7]); // fragment: off 8, M
        v6.extend_from_slice(&[0xaa; 8]);
        let p = parse_fragment(&v6).expect("valid");
        assert_eq!((p.offset, p.more, p.id, p.protocol), (8, true, 7, 17));
        assert_eq!(
            (p.header.len(), p.next_header_at, p.data.len()),
            (48, 40, 8)
        );
        for n in 0..v6.len() {
            assert!(parse_fragment(&v6[..n]).is_err());
        }
    }

    #[test]
    fn checksum_of_known_header() {
        // RFC 1071 style example: a header whose checksum verifies to 0.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_checksum(&h), 0);
    }
}
