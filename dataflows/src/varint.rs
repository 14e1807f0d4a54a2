//! LEB128 variable-length integers: the byte encoding of the compact state types
//! ([`crate::compact_stats::CompactStats`], [`crate::moments::Moments`]).
//!
//! A value takes one byte per 7 bits, low bits first, the high bit of each byte saying
//! that another follows. Signed values are zigzag-mapped first (0, −1, 1, −2, … → 0, 1,
//! 2, 3, …) so that small negative numbers stay short. Reading never panics: a truncated
//! or overlong encoding yields some value (the encodings are written by this crate).

/// A bounded byte writer on the stack; `N` must cover the longest encoding written.
pub(crate) struct Scratch<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Scratch<N> {
    /// An empty writer.
    pub(crate) fn new() -> Self {
        Scratch {
            buf: [0; N],
            len: 0,
        }
    }

    /// The bytes written (all of them when `N` was large enough).
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len.min(N)]
    }

    /// Appends one byte.
    pub(crate) fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
        }
        self.len += 1;
    }

    /// Appends `v` as LEB128.
    pub(crate) fn put(&mut self, mut v: u128) {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            self.byte(if v == 0 { low } else { low | 0x80 });
            if v == 0 {
                break;
            }
        }
    }

    /// Appends `v` zigzag-mapped, as LEB128.
    pub(crate) fn put_signed(&mut self, v: i128) {
        self.put(zigzag(v));
    }
}

/// Appends `v` as LEB128 to a growable buffer.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u128) {
    loop {
        let low = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(low);
            break;
        }
        out.push(low | 0x80);
    }
}

/// The zigzag map of a signed value.
pub(crate) fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// The inverse of [`zigzag`].
pub(crate) fn unzigzag(u: u128) -> i128 {
    ((u >> 1) as i128) ^ -((u & 1) as i128)
}

/// Reads LEB128 values from an encoding this crate wrote.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// The next value (0 past the end).
    pub(crate) fn varint(&mut self) -> u128 {
        let mut v = 0u128;
        let mut shift = 0u32;
        while let Some(&b) = self.bytes.get(self.at) {
            self.at += 1;
            if shift < 128 {
                v |= u128::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        v
    }

    /// The next value, zigzag-mapped back to a signed one.
    pub(crate) fn signed(&mut self) -> i128 {
        unzigzag(self.varint())
    }

    /// The next value as a `u64` (saturating).
    pub(crate) fn u64(&mut self) -> u64 {
        u64::try_from(self.varint()).unwrap_or(u64::MAX)
    }

    /// The next raw byte (0 past the end).
    pub(crate) fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let values: [i128; 9] = [0, 1, -1, 63, -64, 64, i64::MAX.into(), i128::MAX, i128::MIN];
        let mut s = Scratch::<{ 9 * 19 }>::new();
        for v in values {
            s.put_signed(v);
        }
        assert_eq!(s.bytes().len(), 5 + 2 + 10 + 19 + 19);
        let mut r = Reader::new(s.bytes());
        for v in values {
            assert_eq!(r.signed(), v);
        }
        // Small magnitudes of either sign take one byte.
        let mut one = Scratch::<1>::new();
        one.put_signed(-64);
        assert_eq!(one.bytes(), &[127]);
        let mut v = Vec::new();
        put_varint(&mut v, u128::MAX);
        assert_eq!(v.len(), 19);
        assert_eq!(Reader::new(&v).varint(), u128::MAX);
    }

    #[test]
    fn truncated_input_reads_without_panic() {
        let mut r = Reader::new(&[0x80, 0x80]);
        assert_eq!(r.varint(), 0);
        assert_eq!(r.byte(), 0);
        assert_eq!(r.u64(), 0);
    }
}
