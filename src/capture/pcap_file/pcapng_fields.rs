//! The fixed fields of pcapng blocks, parsed from a block's body: packet blocks
//! (Enhanced, obsolete and Simple), Interface Description Blocks with their timestamp
//! resolution and offset, and the options list. Never panics: a body too short for its
//! fields parses to `None`.

use super::{read_u16, read_u32};

/// `if_tsresol` option code.
const OPT_TSRESOL: u16 = 9;
/// `if_tsoffset` option code.
const OPT_TSOFFSET: u16 = 14;

/// Fields of an Enhanced Packet Block or an obsolete Packet Block.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimedFields {
    pub(super) interface: u32,
    pub(super) ts: u64,
    pub(super) caplen: u32,
    pub(super) orig_len: u32,
    /// Bytes available for packet data in the block.
    pub(super) room: usize,
}

impl TimedFields {
    /// Parses an Enhanced Packet Block body (without the 8-byte block header).
    #[inline]
    pub(super) fn enhanced(body: &[u8], be: bool) -> Option<TimedFields> {
        let f = body.first_chunk::<20>()?;
        Some(TimedFields {
            interface: read_u32(f, 0, be),
            ..Self::common(f, body.len(), be)
        })
    }

    /// Parses an obsolete Packet Block body: a 16-bit interface id and a drop counter.
    pub(super) fn obsolete(body: &[u8], be: bool) -> Option<TimedFields> {
        let f = body.first_chunk::<20>()?;
        Some(TimedFields {
            interface: u32::from(read_u16(f, 0, be)?),
            ..Self::common(f, body.len(), be)
        })
    }

    /// Timestamp and lengths, common to both packet blocks.
    #[inline(always)]
    fn common(f: &[u8; 20], body_len: usize, be: bool) -> TimedFields {
        TimedFields {
            interface: 0,
            ts: (u64::from(read_u32(f, 4, be)) << 32) | u64::from(read_u32(f, 8, be)),
            caplen: read_u32(f, 12, be),
            orig_len: read_u32(f, 16, be),
            room: body_len - 20,
        }
    }
}

/// Fields of a Simple Packet Block.
#[derive(Clone, Copy, Debug)]
pub(super) struct SimpleFields {
    pub(super) orig_len: u32,
    pub(super) room: usize,
}

/// A pcapng interface: link type, snap length and timestamp conversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Interface {
    pub(super) linktype: u32,
    pub(super) snaplen: u32,
    pub(super) scale: TsScale,
    /// `if_tsoffset`: seconds added to every timestamp.
    pub(super) offset_secs: i64,
}

/// How to turn a pcapng timestamp (in interface units) into nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TsScale {
    /// Units of 10^-n s with n ≤ 9: multiply.
    Mul(u64),
    /// Units of 10^-n s with n > 9: divide by 10^(n-9) (`None`: the quotient is always 0).
    Div(Option<u128>),
    /// Units of 2^-n s.
    Binary(u32),
}

impl TsScale {
    /// The scale for an `if_tsresol` option value.
    fn from_tsresol(resol: u8) -> TsScale {
        let exp = u32::from(resol & 0x7f);
        if resol & 0x80 != 0 {
            TsScale::Binary(exp)
        } else if exp <= 9 {
            TsScale::Mul(10u64.pow(9 - exp))
        } else {
            TsScale::Div(10u128.checked_pow(exp - 9))
        }
    }

    /// `units` converted to nanoseconds (saturating).
    #[inline]
    fn to_ns(self, units: u64) -> u64 {
        match self {
            TsScale::Mul(m) => units.saturating_mul(m),
            TsScale::Div(Some(d)) => saturate(u128::from(units) / d),
            TsScale::Div(None) => 0,
            TsScale::Binary(n) => saturate((u128::from(units) * 1_000_000_000) >> n),
        }
    }
}

/// A `u128` clamped into a `u64`.
fn saturate(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

impl Interface {
    /// Parses an Interface Description Block body (without the 8-byte block header).
    pub(super) fn parse(body: &[u8], be: bool) -> Option<Interface> {
        let linktype = u32::from(read_u16(body, 0, be)?);
        let snaplen = {
            let b = body.get(4..8)?.first_chunk::<4>()?;
            if be {
                u32::from_be_bytes(*b)
            } else {
                u32::from_le_bytes(*b)
            }
        };
        let mut iface = Interface {
            linktype,
            snaplen,
            scale: TsScale::Mul(1000),
            offset_secs: 0,
        };
        for (code, value) in Options::new(body.get(8..).unwrap_or_default(), be) {
            match (code, value) {
                (OPT_TSRESOL, [resol, ..]) => iface.scale = TsScale::from_tsresol(*resol),
                (OPT_TSOFFSET, v) => {
                    if let Some(b) = v.first_chunk::<8>() {
                        iface.offset_secs = if be {
                            i64::from_be_bytes(*b)
                        } else {
                            i64::from_le_bytes(*b)
                        };
                    }
                }
                _ => {}
            }
        }
        Some(iface)
    }

    /// A timestamp of this interface in nanoseconds since the epoch (saturating).
    #[inline]
    pub(super) fn ts_ns(&self, units: u64) -> u64 {
        let ns = self.scale.to_ns(units);
        if self.offset_secs == 0 {
            return ns;
        }
        let shifted = i128::from(ns) + i128::from(self.offset_secs) * 1_000_000_000;
        u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
    }
}

/// Iterator over pcapng options `(code, value)`; stops at `opt_endofopt` or at the first
/// option that does not fit.
struct Options<'a> {
    rest: &'a [u8],
    be: bool,
}

impl<'a> Options<'a> {
    fn new(rest: &'a [u8], be: bool) -> Self {
        Options { rest, be }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let code = read_u16(self.rest, 0, self.be)?;
        let len = usize::from(read_u16(self.rest, 2, self.be)?);
        if code == 0 {
            return None;
        }
        let value = self.rest.get(4..4 + len)?;
        let padded = 4 + len.div_ceil(4) * 4;
        self.rest = self.rest.get(padded..).unwrap_or_default();
        Some((code, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_scales() {
        assert_eq!(TsScale::from_tsresol(6).to_ns(1_500_000), 1_500_000_000);
        assert_eq!(TsScale::from_tsresol(9).to_ns(42), 42);
        assert_eq!(TsScale::from_tsresol(0).to_ns(3), 3_000_000_000);
        assert_eq!(TsScale::from_tsresol(12).to_ns(5_000), 5);
        assert_eq!(TsScale::from_tsresol(0x80 | 10).to_ns(1024), 1_000_000_000);
        assert_eq!(
            TsScale::from_tsresol(0x80 | 30).to_ns(3 << 29),
            1_500_000_000
        );
        assert_eq!(TsScale::from_tsresol(127).to_ns(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(0).to_ns(u64::MAX), u64::MAX);
        assert_eq!(TsScale::from_tsresol(0xff).to_ns(u64::MAX), 0);
        assert_eq!(TsScale::from_tsresol(0x80).to_ns(u64::MAX), u64::MAX);
    }

    #[test]
    fn tsoffset_saturates() {
        let mut iface = Interface {
            linktype: 1,
            snaplen: 0,
            scale: TsScale::Mul(1),
            offset_secs: -10,
        };
        assert_eq!(iface.ts_ns(5), 0);
        assert_eq!(iface.ts_ns(11_000_000_000), 1_000_000_000);
        iface.offset_secs = i64::MAX;
        assert_eq!(iface.ts_ns(1), u64::MAX);
    }

    #[test]
    fn options_stop_at_garbage() {
        // if_tsresol = 9, then an option whose length runs past the end.
        let body = [9, 0, 1, 0, 9, 0, 0, 0, 2, 0, 200, 0, 1, 2];
        let opts: Vec<_> = Options::new(&body, false).collect();
        assert_eq!(opts, vec![(9u16, &[9u8][..])]);
    }
}
