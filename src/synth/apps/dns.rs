//! DNS messages (RFC 1035, EDNS0 RFC 6891) with name compression.

use crate::synth::rng::Rng;

/// Record type A.
pub const A: u16 = 1;
/// Record type CNAME.
pub const CNAME: u16 = 5;
/// Record type SOA.
pub const SOA: u16 = 6;
/// Record type PTR.
pub const PTR: u16 = 12;
/// Record type TXT.
pub const TXT: u16 = 16;
/// Record type AAAA.
pub const AAAA: u16 = 28;
/// Record type OPT (EDNS0).
pub const OPT: u16 = 41;
/// Record type HTTPS.
pub const HTTPS: u16 = 65;

/// Response code NXDOMAIN.
pub const NXDOMAIN: u8 = 3;

/// The answer section of a response.
#[derive(Clone, Debug)]
pub enum Answer {
    /// The name does not exist (NXDOMAIN with the zone's SOA).
    NxDomain,
    /// The name exists but has no record of the type (NOERROR, SOA in authority).
    NoData,
    /// Optionally a CNAME to `alias`, then address records (A or AAAA by length).
    Addresses {
        /// CNAME target, if the name is an alias.
        alias: Option<String>,
        /// IPv4 (4 bytes) or IPv6 (16 bytes) addresses.
        addrs: Vec<Vec<u8>>,
        /// TTL in seconds.
        ttl: u32,
    },
    /// TXT records: `records` records each of `strings` 255-byte strings (a large
    /// answer, for EDNS/fragmentation).
    Txt {
        /// Number of records.
        records: usize,
        /// Character strings per record.
        strings: usize,
    },
}

/// Encodes `name` as uncompressed labels (root terminated).
fn write_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
}

/// Writes labels of `prefix` followed by a compression pointer to `target`.
fn write_name_ptr(out: &mut Vec<u8>, prefix: &str, target: u16) {
    for label in prefix.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.extend_from_slice(&(0xc000 | target).to_be_bytes());
}

/// Offset (from the message start) of the zone (the registered domain: last two labels,
/// three under `co.uk`-style suffixes) within the question name, which is written at
/// offset 12.
fn zone_offset(qname: &str) -> u16 {
    let labels: Vec<&str> = qname.split('.').filter(|l| !l.is_empty()).collect();
    let n = labels.len();
    let keep = if n >= 3
        && matches!(labels[n - 2], "co" | "com" | "org" | "net" | "ac")
        && labels[n - 1].len() == 2
    {
        3
    } else {
        2
    };
    let skip = n.saturating_sub(keep);
    12 + labels[..skip]
        .iter()
        .map(|l| l.len().min(63) as u16 + 1)
        .sum::<u16>()
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, counts: [u16; 4]) {
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

fn opt_record(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool) {
    out.push(0);
    out.extend_from_slice(&OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// A recursive query for (`name`, `qtype`), with an EDNS0 OPT record advertising
/// `edns` bytes when given.
pub fn query(out: &mut Vec<u8>, id: u16, name: &str, qtype: u16, edns: Option<u16>) {
    header(out, id, 0x0100, [1, 0, 0, u16::from(edns.is_some())]);
    write_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        opt_record(out, size, false);
    }
}

fn rr_head(out: &mut Vec<u8>, name_ptr: u16, rtype: u16, ttl: u32) {
    out.extend_from_slice(&(0xc000 | name_ptr).to_be_bytes());
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
}

/// Writes an RDATA length placeholder, then `f`, then patches the length.
fn rdata(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>)) {
    super::with_len(out, 2, f);
}

/// The response to a query for (`name`, `qtype`) with `answer`.
#[allow(clippy::too_many_arguments)]
pub fn response(
    out: &mut Vec<u8>,
    rng: &mut Rng,
    id: u16,
    name: &str,
    qtype: u16,
    answer: &Answer,
    edns: Option<u16>,
) {
    let start = out.len();
    let opt = u16::from(edns.is_some());
    let (rcode, an, ns) = match answer {
        Answer::NxDomain => (NXDOMAIN, 0u16, 1u16),
        Answer::NoData => (0, 0, 1),
        Answer::Addresses { alias, addrs, .. } => {
            (0, (addrs.len() + usize::from(alias.is_some())) as u16, 0)
        }
        Answer::Txt { records, .. } => (0, *records as u16, 0),
    };
    header(out, id, 0x8180 | u16::from(rcode), [1, an, ns, opt]);
    write_name(out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    match answer {
        Answer::NxDomain | Answer::NoData => {
            let zone = zone_offset(name);
            rr_head(out, zone, SOA, 900);
            rdata(out, |b| {
                write_name_ptr(b, "ns1", zone);
                write_name_ptr(b, "hostmaster", zone);
                b.extend_from_slice(&(2_023_110_000 + rng.below(9_999) as u32).to_be_bytes());
                for v in [7200u32, 3600, 1_209_600, 300] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
            });
        }
        Answer::Addresses { alias, addrs, ttl } => {
            let mut owner = 12u16;
            if let Some(alias) = alias {
                rr_head(out, owner, CNAME, *ttl);
                let at = (out.len() - start + 2) as u16;
                rdata(out, |b| write_name(b, alias));
                owner = at;
            }
            for a in addrs {
                rr_head(out, owner, if a.len() == 16 { AAAA } else { A }, *ttl);
                rdata(out, |b| b.extend_from_slice(a));
            }
        }
        Answer::Txt { records, strings } => {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            for _ in 0..*records {
                rr_head(out, 12, TXT, 3600);
                rdata(out, |b| {
                    for _ in 0..*strings {
                        b.push(255);
                        for _ in 0..255 {
                            b.push(ALPHABET[(rng.next_u32() >> 26) as usize]);
                        }
                    }
                });
            }
        }
    }
    if let Some(size) = edns {
        opt_record(out, size, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_layout() {
        let mut q = Vec::new();
        query(&mut q, 0x1234, "www.example.com", A, Some(1232));
        assert_eq!(&q[..4], &[0x12, 0x34, 0x01, 0x00]);
        assert_eq!(&q[12..17], &[3, b'w', b'w', b'w', 7]);
        assert_eq!(q.len(), 12 + 17 + 4 + 11);
    }

    #[test]
    fn zone_pointer() {
        // 12 + "www" (4) = 16 -> example.com
        assert_eq!(zone_offset("www.example.com"), 16);
        assert_eq!(zone_offset("example.com"), 12);
        // 12 + "a" (2) + "www" (4) = 18 -> example.co.uk
        assert_eq!(zone_offset("a.www.example.co.uk"), 18);
    }

    #[test]
    fn response_counts() {
        let mut rng = Rng::new(1);
        let mut r = Vec::new();
        let ans = Answer::Addresses {
            alias: Some("edge.cdn.example.net".into()),
            addrs: vec![vec![192, 0, 2, 1], vec![192, 0, 2, 2]],
            ttl: 60,
        };
        response(&mut r, &mut rng, 7, "www.example.com", A, &ans, None);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 3);
        let mut t = Vec::new();
        response(
            &mut t,
            &mut rng,
            7,
            "big.example.com",
            TXT,
            &Answer::Txt {
                records: 4,
                strings: 4,
            },
            Some(4096),
        );
        assert!(t.len() > 4 * 4 * 256);
    }
}
