//! The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-headers of TCP, UDP and
//! ICMPv6.
//!
//! Partial sums are kept unfolded in a `u64` so that pieces (pseudo-header, header,
//! payload) can be summed separately and combined; [`finish`] folds and complements.

/// Adds the bytes of `data`, taken as big-endian 16-bit words (an odd trailing byte is
/// padded with zero), to the partial sum `acc`.
///
/// `data` must start on an even offset of the checksummed message when it is one of
/// several pieces; only the last piece may have an odd length.
#[inline]
pub fn add(mut acc: u64, data: &[u8]) -> u64 {
    // Summing 32-bit words is equivalent modulo 2^16 - 1 (2^16 ≡ 1), and a u64 cannot
    // overflow for any slice shorter than 2^32 words.
    let mut words = data.chunks_exact(4);
    let mut sum = 0u64;
    for w in words.by_ref() {
        sum += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    acc += fold32(sum);
    let rest = words.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u16::from_be_bytes([rest[i], rest[i + 1]]) as u64;
        i += 2;
    }
    if i < rest.len() {
        acc += (rest[i] as u64) << 8;
    }
    acc
}

/// Reduces a sum to at most 33 bits without changing its value modulo 2^16 - 1.
#[inline]
fn fold32(x: u64) -> u64 {
    (x & 0xffff_ffff) + (x >> 32)
}

/// Folds a partial sum to 16 bits and returns its ones' complement: the checksum field.
#[inline]
pub fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The Internet checksum of `data`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// Partial sum of the IPv4 pseudo-header for protocol `proto` and an upper-layer length.
#[inline]
pub fn pseudo_v4(src: &[u8; 4], dst: &[u8; 4], proto: u8, len: u32) -> u64 {
    let acc = add(add(0, src), dst);
    acc + proto as u64 + (len & 0xffff) as u64
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
#[inline]
pub fn pseudo_v6(src: &[u8; 16], dst: &[u8; 16], next_header: u8, len: u32) -> u64 {
    let acc = add(add(0, src), dst);
    acc + (len >> 16) as u64 + (len & 0xffff) as u64 + next_header as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 1071 §3.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut acc = add(0, &data);
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        assert_eq!(acc, 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    /// A well-known IPv4 header (checksum 0xb861).
    #[test]
    fn ipv4_header_vector() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(
            checksum(&hdr),
            0,
            "a header with a valid checksum sums to zero"
        );
    }

    /// Odd lengths pad with a zero byte; splitting on even boundaries is transparent.
    #[test]
    fn odd_lengths_and_pieces() {
        let data: Vec<u8> = (0..=200u8).collect();
        let whole = checksum(&data);
        let mut padded = data.clone();
        padded.push(0);
        assert_eq!(whole, checksum(&padded));
        for cut in [0, 2, 4, 6, 50, 198, 200] {
            assert_eq!(
                finish(add(add(0, &data[..cut]), &data[cut..])),
                whole,
                "cut {cut}"
            );
        }
        // A naive 16-bit reference.
        let mut s: u32 = 0;
        for w in padded.chunks(2) {
            s += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(whole, !(s as u16));
    }

    /// A UDP datagram whose checksum, computed with the pseudo-header helper, verifies
    /// against a naive computation over an explicit pseudo-header.
    #[test]
    fn udp_pseudo_header_round_trip() {
        let src = [192, 168, 1, 10];
        let dst = [192, 168, 1, 1];
        let mut udp = vec![
            0xd4, 0x31, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 0xab, 0xcd, 0x01, 0x00,
        ];
        let c = finish(add(pseudo_v4(&src, &dst, 17, 12), &udp));
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        // Verifying: the sum over pseudo-header and datagram with its checksum is 0xffff.
        assert_eq!(finish(add(pseudo_v4(&src, &dst, 17, 12), &udp)), 0);
        // Naive reference over an explicit pseudo-header.
        let mut buf = Vec::new();
        buf.extend_from_slice(&src);
        buf.extend_from_slice(&dst);
        buf.extend_from_slice(&[0, 17, 0, 12]);
        buf.extend_from_slice(&udp);
        assert_eq!(checksum(&buf), 0);
    }

    #[test]
    fn ipv6_pseudo_header_matches_explicit_layout() {
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let payload = [1u8, 2, 3, 4, 5, 6, 7];
        let mut explicit = Vec::new();
        explicit.extend_from_slice(&src);
        explicit.extend_from_slice(&dst);
        explicit.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        explicit.extend_from_slice(&[0, 0, 0, 58]);
        explicit.extend_from_slice(&payload);
        assert_eq!(
            finish(add(
                pseudo_v6(&src, &dst, 58, payload.len() as u32),
                &payload
            )),
            checksum(&explicit)
        );
    }
}
