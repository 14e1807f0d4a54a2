//! Checked big-endian readers over byte slices.
//!
//! Every reader returns `None` instead of panicking when the requested bytes are not all
//! present, so header parsers can use `?` and never index out of bounds.

/// The byte at `off`.
#[inline]
pub(super) fn u8_at(data: &[u8], off: usize) -> Option<u8> {
    data.get(off).copied()
}

/// The `N` bytes starting at `off`.
#[inline]
pub(super) fn array<const N: usize>(data: &[u8], off: usize) -> Option<[u8; N]> {
    let end = off.checked_add(N)?;
    let bytes = data.get(off..end)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Some(out)
}

/// The big-endian 16-bit word at `off`.
#[inline]
pub(super) fn be16(data: &[u8], off: usize) -> Option<u16> {
    array::<2>(data, off).map(u16::from_be_bytes)
}

/// The big-endian 32-bit word at `off`.
#[inline]
pub(super) fn be32(data: &[u8], off: usize) -> Option<u32> {
    array::<4>(data, off).map(u32::from_be_bytes)
}

/// The little-endian 32-bit word at `off`.
#[inline]
pub(super) fn le32(data: &[u8], off: usize) -> Option<u32> {
    array::<4>(data, off).map(u32::from_le_bytes)
}

/// The bytes from `off` on (empty when `off` is past the end).
#[inline]
pub(super) fn rest(data: &[u8], off: usize) -> &[u8] {
    data.get(off..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_bounds_checked() {
        let d = [0x12, 0x34, 0x56, 0x78, 0x9a];
        assert_eq!(u8_at(&d, 4), Some(0x9a));
        assert_eq!(u8_at(&d, 5), None);
        assert_eq!(be16(&d, 0), Some(0x1234));
        assert_eq!(be16(&d, 4), None);
        assert_eq!(be32(&d, 1), Some(0x3456_789a));
        assert_eq!(be32(&d, 2), None);
        assert_eq!(le32(&d, 0), Some(0x7856_3412));
        assert_eq!(be32(&d, usize::MAX), None);
        assert_eq!(rest(&d, 3), &[0x78, 0x9a]);
        assert!(rest(&d, 9).is_empty());
    }
}
