//! TLS 1.3 handshake records (RFC 8446): a browser-like ClientHello with SNI and ALPN,
//! a ServerHello, and ChangeCipherSpec. Everything after them is opaque
//! application-data records (see [`crate::synth::payload::Tail::TlsRecords`]).

use super::with_len;
use crate::synth::rng::Rng;

const CIPHER_SUITES: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c,
    0x009d, 0x002f, 0x0035,
];

/// Appends a handshake record (content type 22) whose body `f` writes.
fn handshake_record(
    buf: &mut Vec<u8>,
    record_version: u16,
    msg_type: u8,
    f: impl FnOnce(&mut Vec<u8>),
) {
    buf.push(22);
    buf.extend_from_slice(&record_version.to_be_bytes());
    with_len(buf, 2, |b| {
        b.push(msg_type);
        with_len(b, 3, f);
    });
}

fn extension(buf: &mut Vec<u8>, kind: u16, f: impl FnOnce(&mut Vec<u8>)) {
    buf.extend_from_slice(&kind.to_be_bytes());
    with_len(buf, 2, f);
}

/// A ClientHello record offering TLS 1.3 and 1.2, for server name `sni`, with ALPN
/// `alpn` (e.g. `["h2", "http/1.1"]`; none when empty). Returns the session id used.
pub fn client_hello(rng: &mut Rng, sni: &str, alpn: &[&str], out: &mut Vec<u8>) -> [u8; 32] {
    let mut session = [0u8; 32];
    rng.fill(&mut session);
    let start = out.len();
    handshake_record(out, 0x0301, 1, |b| {
        b.extend_from_slice(&[3, 3]);
        rng.extend(b, 32);
        b.push(32);
        b.extend_from_slice(&session);
        with_len(b, 2, |b| {
            for c in CIPHER_SUITES {
                b.extend_from_slice(&c.to_be_bytes());
            }
        });
        b.extend_from_slice(&[1, 0]);
        with_len(b, 2, |b| {
            extension(b, 0, |b| {
                with_len(b, 2, |b| {
                    b.push(0);
                    with_len(b, 2, |b| b.extend_from_slice(sni.as_bytes()));
                })
            });
            extension(b, 23, |_| {});
            extension(b, 0xff01, |b| b.push(0));
            extension(b, 10, |b| {
                with_len(b, 2, |b| {
                    b.extend_from_slice(&[0x00, 0x1d, 0x00, 0x17, 0x00, 0x18])
                })
            });
            extension(b, 11, |b| b.extend_from_slice(&[1, 0]));
            extension(b, 35, |_| {});
            if !alpn.is_empty() {
                extension(b, 16, |b| {
                    with_len(b, 2, |b| {
                        for p in alpn {
                            with_len(b, 1, |b| b.extend_from_slice(p.as_bytes()));
                        }
                    })
                });
            }
            extension(b, 5, |b| b.extend_from_slice(&[1, 0, 0, 0, 0]));
            extension(b, 13, |b| {
                with_len(b, 2, |b| {
                    for s in [
                        0x0403u16, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
                    ] {
                        b.extend_from_slice(&s.to_be_bytes());
                    }
                })
            });
            extension(b, 51, |b| {
                with_len(b, 2, |b| {
                    b.extend_from_slice(&[0x00, 0x1d, 0x00, 0x20]);
                    rng.extend(b, 32);
                })
            });
            extension(b, 45, |b| b.extend_from_slice(&[1, 1]));
            extension(b, 43, |b| b.extend_from_slice(&[4, 3, 4, 3, 3]));
            // Pad the record to 517 bytes like common browsers (RFC 7685).
            let used = b.len() - start;
            let pad = 517usize.saturating_sub(used + 4).max(1);
            extension(b, 21, |b| b.extend(std::iter::repeat_n(0, pad)));
        });
    });
    session
}

/// A ServerHello record selecting TLS 1.3 with TLS_AES_128_GCM_SHA256 and X25519,
/// echoing the client's `session` id.
pub fn server_hello(rng: &mut Rng, session: &[u8; 32], out: &mut Vec<u8>) {
    handshake_record(out, 0x0303, 2, |b| {
        b.extend_from_slice(&[3, 3]);
        rng.extend(b, 32);
        b.push(32);
        b.extend_from_slice(session);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        with_len(b, 2, |b| {
            extension(b, 43, |b| b.extend_from_slice(&[3, 4]));
            extension(b, 51, |b| {
                b.extend_from_slice(&[0x00, 0x1d, 0x00, 0x20]);
                rng.extend(b, 32);
            });
        });
    });
}

/// The middlebox-compatibility ChangeCipherSpec record.
pub const CHANGE_CIPHER_SPEC: [u8; 6] = [20, 3, 3, 0, 1, 1];

/// Appends one application-data record of `plain` protected bytes with random content.
pub fn app_record(rng: &mut Rng, plain: usize, out: &mut Vec<u8>) {
    let len = plain + 17;
    out.extend_from_slice(&crate::synth::payload::tls_record_header(23, len as u16));
    rng.extend(out, len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_is_padded_and_consistent() {
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        client_hello(&mut rng, "www.example.com", &["h2", "http/1.1"], &mut out);
        assert_eq!(out.len(), 517);
        assert_eq!(u16::from_be_bytes([out[3], out[4]]) as usize, out.len() - 5);
        let hs_len = u32::from_be_bytes([0, out[6], out[7], out[8]]) as usize;
        assert_eq!(hs_len, out.len() - 9);
    }

    #[test]
    fn server_hello_lengths() {
        let mut rng = Rng::new(2);
        let mut out = Vec::new();
        server_hello(&mut rng, &[7; 32], &mut out);
        assert_eq!(u16::from_be_bytes([out[3], out[4]]) as usize, out.len() - 5);
    }
}
