//! Application payload bytes: message contents that can be produced at any byte offset
//! without materialising large bodies.
//!
//! A [`Content`] is a small explicit head (protocol headers, handshakes) followed by a
//! [`Tail`] whose bytes are computed on demand: opaque data copied from a shared random
//! [`Pool`], or a run of TLS application-data records framed around such data.

use super::rng::Rng;

/// Size of the shared random pool (a power of two).
const POOL_BYTES: usize = 1 << 20;

/// A fixed block of random bytes from which opaque payloads are copied.
#[derive(Clone, Debug)]
pub struct Pool {
    bytes: Box<[u8]>,
}

impl Pool {
    /// A pool filled from `rng`.
    pub fn new(rng: &mut Rng) -> Pool {
        let mut bytes = vec![0u8; POOL_BYTES].into_boxed_slice();
        rng.fill(&mut bytes);
        Pool { bytes }
    }

    /// Appends `len` opaque bytes of the stream identified by `key`, from `offset` on.
    pub fn extend(&self, key: u64, offset: u64, len: usize, out: &mut Vec<u8>) {
        let mask = POOL_BYTES as u64 - 1;
        let mut pos = (key.wrapping_add(offset) & mask) as usize;
        let mut left = len;
        while left > 0 {
            let n = left.min(POOL_BYTES - pos);
            out.extend_from_slice(&self.bytes[pos..pos + n]);
            left -= n;
            pos = 0;
        }
    }
}

/// TLS record content type of application data.
pub const TLS_APPLICATION_DATA: u8 = 23;
/// Largest TLS 1.3 plaintext fragment.
pub const TLS_MAX_FRAGMENT: u64 = 16_384;
/// TLS 1.3 AEAD expansion: inner content type byte plus a 16-byte tag.
pub const TLS_EXPANSION: u64 = 17;

/// The computed part of a message.
#[derive(Clone, Debug, Default)]
pub enum Tail {
    /// Nothing after the head.
    #[default]
    None,
    /// `len` opaque bytes of stream `key`.
    Opaque {
        /// Length in bytes.
        len: u64,
        /// Stream key (selects where in the pool the bytes come from).
        key: u64,
    },
    /// TLS 1.3 application-data records carrying `plain` bytes of application data,
    /// in full-size records except the last.
    TlsRecords {
        /// Application bytes protected by the records.
        plain: u64,
        /// Stream key of the ciphertext bytes.
        key: u64,
    },
}

impl Tail {
    /// Length of the tail on the wire.
    pub fn len(&self) -> u64 {
        match *self {
            Tail::None => 0,
            Tail::Opaque { len, .. } => len,
            Tail::TlsRecords { plain, .. } => {
                let records = plain.div_ceil(TLS_MAX_FRAGMENT);
                plain + records * (5 + TLS_EXPANSION)
            }
        }
    }

    /// True when the tail has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends tail bytes `[offset, offset + len)`.
    fn extend(&self, pool: &Pool, offset: u64, len: usize, out: &mut Vec<u8>) {
        match *self {
            Tail::None => {}
            Tail::Opaque { key, .. } => pool.extend(key, offset, len, out),
            Tail::TlsRecords { plain, key } => {
                let full = 5 + TLS_MAX_FRAGMENT + TLS_EXPANSION;
                let records = plain.div_ceil(TLS_MAX_FRAGMENT);
                let mut pos = offset;
                let end = offset + len as u64;
                while pos < end {
                    let index = pos / full;
                    let start = index * full;
                    let body = if index + 1 < records {
                        TLS_MAX_FRAGMENT
                    } else {
                        plain.saturating_sub(index * TLS_MAX_FRAGMENT)
                    } + TLS_EXPANSION;
                    let header = tls_record_header(TLS_APPLICATION_DATA, body as u16);
                    let in_record = pos - start;
                    if in_record < 5 {
                        let n = ((5 - in_record) as usize).min((end - pos) as usize);
                        out.extend_from_slice(&header[in_record as usize..in_record as usize + n]);
                        pos += n as u64;
                    } else {
                        let record_end = start + 5 + body;
                        let n = (record_end.min(end) - pos) as usize;
                        pool.extend(key, pos, n, out);
                        pos += n as u64;
                    }
                }
            }
        }
    }
}

/// The 5-byte header of a TLS 1.2/1.3 record.
#[inline]
pub fn tls_record_header(content_type: u8, len: u16) -> [u8; 5] {
    let l = len.to_be_bytes();
    [content_type, 0x03, 0x03, l[0], l[1]]
}

/// One application message: explicit head bytes, then a computed tail.
#[derive(Clone, Debug, Default)]
pub struct Content {
    /// Explicit leading bytes.
    pub head: Vec<u8>,
    /// Computed remainder.
    pub tail: Tail,
}

impl Content {
    /// A message of explicit bytes only.
    pub fn bytes(head: Vec<u8>) -> Content {
        Content {
            head,
            tail: Tail::None,
        }
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.tail.len()
    }

    /// True for an empty message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes `[offset, offset + len)` of the message to `out`.
    pub fn extend(&self, pool: &Pool, offset: u64, len: usize, out: &mut Vec<u8>) {
        let head = self.head.len() as u64;
        let mut offset = offset;
        let mut len = len;
        if offset < head {
            let n = ((head - offset) as usize).min(len);
            out.extend_from_slice(&self.head[offset as usize..offset as usize + n]);
            offset += n as u64;
            len -= n;
        }
        if len > 0 {
            self.tail.extend(pool, offset - head, len, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_frame_the_stream() {
        let pool = Pool::new(&mut Rng::new(1));
        let c = Content {
            head: b"HEAD".to_vec(),
            tail: Tail::TlsRecords {
                plain: 40_000,
                key: 77,
            },
        };
        assert_eq!(c.len(), 4 + 40_000 + 3 * 22);
        let mut whole = Vec::new();
        c.extend(&pool, 0, c.len() as usize, &mut whole);
        // Piecewise extraction matches the whole.
        let mut pieces = Vec::new();
        let mut off = 0u64;
        for step in [1u64, 3, 1448, 7, 16_000, 5, 100_000] {
            let n = step.min(c.len() - off) as usize;
            c.extend(&pool, off, n, &mut pieces);
            off += n as u64;
        }
        assert_eq!(off, c.len());
        assert_eq!(pieces, whole);
        // Walk the records.
        let mut pos = 4;
        let mut plain = 0;
        while pos < whole.len() {
            assert_eq!(&whole[pos..pos + 3], &[23, 3, 3]);
            let l = u16::from_be_bytes([whole[pos + 3], whole[pos + 4]]) as usize;
            plain += l - 17;
            pos += 5 + l;
        }
        assert_eq!(pos, whole.len());
        assert_eq!(plain, 40_000);
    }

    #[test]
    fn opaque_tail_wraps_the_pool() {
        let pool = Pool::new(&mut Rng::new(2));
        let t = Tail::Opaque {
            len: 3 * POOL_BYTES as u64,
            key: 5,
        };
        let mut out = Vec::new();
        t.extend(&pool, POOL_BYTES as u64 - 10, 30, &mut out);
        assert_eq!(out.len(), 30);
    }
}
