//! A stable, well-mixed 64-bit hash used to route records between workers.
//!
//! Timely routes a record to worker `hash & (peers - 1)` (or `hash % peers`), so the route
//! must be well mixed in its low bits and identical in every process of a cluster. Rust's
//! `RandomState` differs per process and `DefaultHasher` is not promised stable across Rust
//! releases, so flowtide uses its own mixer: a fixed-constant multiply–xorshift fold over
//! 64-bit words, finished with the MurmurHash3 `fmix64` avalanche. It never changes between
//! builds, platforms or processes.

/// Streaming stable hasher over 64-bit words.
///
/// ```
/// use flowtide_dataflows::hash::StableHasher;
/// let mut h = StableHasher::new();
/// h.write_u64(42);
/// h.write_bytes(b"abc");
/// assert_eq!(h.finish(), { let mut g = StableHasher::new(); g.write_u64(42); g.write_bytes(b"abc"); g.finish() });
/// ```
#[derive(Clone, Copy, Debug)]
pub struct StableHasher {
    state: u64,
}

const SEED: u64 = 0x243f_6a88_85a3_08d3; // pi
const MUL: u64 = 0x9e37_79b9_7f4a_7c15; // golden ratio

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    /// A hasher with the fixed seed.
    #[inline]
    pub const fn new() -> Self {
        StableHasher { state: SEED }
    }

    /// Mixes one 64-bit word into the state.
    #[inline]
    pub fn write_u64(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(MUL).rotate_left(29);
    }

    /// Mixes an address (its two 64-bit words).
    #[inline]
    pub fn write_addr(&mut self, addr: &crate::packet::Addr) {
        let (a, b) = addr.words();
        self.write_u64(a);
        self.write_u64(b);
    }

    /// Mixes a byte string (length-prefixed, little-endian words).
    #[inline]
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    /// The final, avalanched hash value.
    #[inline]
    pub fn finish(&self) -> u64 {
        fmix64(self.state)
    }
}

/// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
#[inline]
pub const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// A fast [`std::hash::Hasher`] for in-memory tables (not for routing): the same
/// multiply–rotate fold as [`StableHasher`], fed by the standard `Hash` derive.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableHasher {
    state: u64,
}

impl std::hash::Hasher for TableHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.state = (self.state ^ i).wrapping_mul(MUL).rotate_left(29);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fmix64(self.state)
    }
}

/// `BuildHasher` for [`TableHasher`].
pub type BuildTableHasher = std::hash::BuildHasherDefault<TableHasher>;

/// A `HashMap` using [`TableHasher`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, BuildTableHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    const PINNED: u64 = 0x0f71_1cc2_ed1f_1f80;

    #[test]
    fn fixed_values_never_change() {
        // Pinned outputs: a change here would break routing between processes built at
        // different times, so it must be deliberate.
        let mut h = StableHasher::new();
        h.write_u64(1);
        h.write_bytes(b"flowtide");
        assert_eq!(h.finish(), PINNED);
        assert_eq!(fmix64(0), 0);
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn low_bits_are_mixed() {
        // Sequential keys must spread evenly over 4 workers.
        let mut buckets = [0u32; 4];
        for i in 0..40_000u64 {
            let mut h = StableHasher::new();
            h.write_u64(i << 16);
            buckets[(h.finish() & 3) as usize] += 1;
        }
        for b in buckets {
            assert!((9_000..11_000).contains(&b), "{buckets:?}");
        }
    }
}
