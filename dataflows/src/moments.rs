//! [`Moments`]: the exact moments of a set of windows' metrics, in a few bytes — the
//! *difference* type of the trailing baselines.
//!
//! The trailing baseline of a key is a sum of its windows' moments (number of windows,
//! and per metric the number of windows where it was present, the sum and the sum of
//! squares: 28 integers, [`Wide`]). Differential dataflow stores one such value for each
//! key's accumulated baseline and one for every retraction still to come (waiting in the
//! arrangement's batcher until its windows leave the history). As plain integers that is
//! 368 bytes a value; most of them describe one window, or a handful, of small numbers.
//!
//! So a value is stored as a canonical byte encoding, in place up to [`INLINE_BYTES`]
//! bytes (32 bytes in all, no heap allocation) and on the heap beyond:
//! - **empty**: zero;
//! - **`k` copies of one window** (tag 1), whenever the value is exactly that (`windows =
//!   k`, each metric present in all `k` or none, sums `k·x` and `k·x²`): `k`, a bitmap of
//!   the metrics present and each `x`, as zigzag LEB128 (module `varint`). One window's
//!   moments and their retraction take about 20 bytes, in place;
//! - **general** (tag 2): a bitmap of the nonzero fields and their values, zigzag LEB128
//!   (the accumulated baselines: about 100 bytes for a key's day of windows).
//!
//! The encoding is a function of the value (the first form whenever it applies, the
//! shortest integers, no trailing bytes), so equal values have equal bytes and the
//! derived equality, order and hash agree with the values'. Arithmetic decodes to
//! [`Wide`], adds with wrapping (a group: retractions cancel exactly, in any order) and
//! encodes again; it runs once per window and baseline update, never per packet.

use serde::{Deserialize, Serialize};

use crate::baseline::{exact_variance, Metric, MetricBaseline, Summary, Values, METRICS};
use crate::varint::{Reader, Scratch};

/// Encodings of at most this many bytes are stored in place.
pub const INLINE_BYTES: usize = 30;

/// Integers of a [`Wide`] value: windows, then per metric the count, sum and sum of
/// squares.
pub const FIELDS: usize = 1 + 3 * METRICS;

/// Longest encoding: a tag, a 28-bit bitmap (4 bytes) and 28 values of at most 19 bytes.
const ENCODED_MAX: usize = 1 + 4 + FIELDS * 19;

/// Tag of the "`k` copies of one window" form.
const TAG_WINDOWS: u8 = 1;
/// Tag of the general form.
const TAG_GENERAL: u8 = 2;

/// Moments as plain integers, with wrapping arithmetic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wide {
    /// Windows.
    pub windows: i128,
    /// Windows where each metric was present.
    pub n: [i128; METRICS],
    /// Sums (fixed-point, [`Metric::scale`]).
    pub sum: [i128; METRICS],
    /// Sums of squares.
    pub sumsq: [i128; METRICS],
}

impl Wide {
    /// The moments of one window.
    pub fn of(values: &Values) -> Wide {
        let mut w = Wide {
            windows: 1,
            ..Default::default()
        };
        for (i, v) in values.iter().enumerate() {
            if let Some(x) = *v {
                let x = i128::from(x);
                w.n[i] = 1;
                w.sum[i] = x;
                w.sumsq[i] = x.wrapping_mul(x);
            }
        }
        w
    }

    /// Adds `rhs` (wrapping).
    pub fn add(&mut self, rhs: &Wide) {
        self.windows = self.windows.wrapping_add(rhs.windows);
        for i in 0..METRICS {
            self.n[i] = self.n[i].wrapping_add(rhs.n[i]);
            self.sum[i] = self.sum[i].wrapping_add(rhs.sum[i]);
            self.sumsq[i] = self.sumsq[i].wrapping_add(rhs.sumsq[i]);
        }
    }

    /// Negates every field (wrapping).
    pub fn negate(&mut self) {
        self.windows = self.windows.wrapping_neg();
        for i in 0..METRICS {
            self.n[i] = self.n[i].wrapping_neg();
            self.sum[i] = self.sum[i].wrapping_neg();
            self.sumsq[i] = self.sumsq[i].wrapping_neg();
        }
    }

    /// The fields in encoding order.
    fn fields(&self) -> [i128; FIELDS] {
        let mut f = [0i128; FIELDS];
        f[0] = self.windows;
        for i in 0..METRICS {
            f[1 + i] = self.n[i];
            f[1 + METRICS + i] = self.sum[i];
            f[1 + 2 * METRICS + i] = self.sumsq[i];
        }
        f
    }

    /// `k` and each present metric's value when the moments are exactly `k` copies of
    /// one window (`k` and the values within `i64`, so that they are unique).
    fn as_copies(&self) -> Option<(i64, [Option<i64>; METRICS])> {
        let k = i64::try_from(self.windows).ok().filter(|k| *k != 0)?;
        let kk = i128::from(k);
        let mut xs = [None; METRICS];
        for (i, out) in xs.iter_mut().enumerate() {
            if self.n[i] == 0 {
                if self.sum[i] != 0 || self.sumsq[i] != 0 {
                    return None;
                }
                continue;
            }
            // Checked: `i128::MIN / −1` overflows.
            if self.n[i] != kk || self.sum[i].checked_rem(kk)? != 0 {
                return None;
            }
            let x = i64::try_from(self.sum[i].checked_div(kk)?).ok()?;
            let x2 = i128::from(x).checked_mul(i128::from(x))?;
            if kk.checked_mul(x2)? != self.sumsq[i] {
                return None;
            }
            *out = Some(x);
        }
        Some((k, xs))
    }
}

/// Exact window moments in compact, canonical form (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Moments(Repr);

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Repr {
    /// An encoding of at most [`INLINE_BYTES`] bytes; the bytes past `len` are zero.
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
    /// A longer encoding.
    Heap(Box<[u8]>),
}

impl Default for Moments {
    fn default() -> Self {
        Moments(Repr::Inline {
            len: 0,
            bytes: [0; INLINE_BYTES],
        })
    }
}

impl Moments {
    /// The moments of one window.
    pub fn of(values: &Values) -> Moments {
        let mut out = Scratch::<ENCODED_MAX>::new();
        write_copies(&mut out, 1, values);
        Moments::from_bytes(out.bytes())
    }

    /// The moments of a [`Wide`] value.
    pub fn from_wide(w: &Wide) -> Moments {
        let mut out = Scratch::<ENCODED_MAX>::new();
        if let Some((k, xs)) = w.as_copies() {
            write_copies(&mut out, k, &xs);
        } else if *w != Wide::default() {
            let fields = w.fields();
            let present = fields
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0)
                .fold(0u128, |m, (i, _)| m | (1 << i));
            out.byte(TAG_GENERAL);
            out.put(present);
            for v in fields.iter().filter(|v| **v != 0) {
                out.put_signed(*v);
            }
        }
        Moments::from_bytes(out.bytes())
    }

    fn from_bytes(b: &[u8]) -> Moments {
        if b.len() <= INLINE_BYTES {
            let mut bytes = [0u8; INLINE_BYTES];
            bytes[..b.len()].copy_from_slice(b);
            Moments(Repr::Inline {
                len: b.len() as u8,
                bytes,
            })
        } else {
            Moments(Repr::Heap(b.into()))
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len).min(INLINE_BYTES)],
            Repr::Heap(b) => b,
        }
    }

    /// Bytes on the heap (0 for values stored in place).
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Repr::Inline { .. } => 0,
            Repr::Heap(b) => b.len(),
        }
    }

    /// The moments as plain integers.
    pub fn wide(&self) -> Wide {
        let bytes = self.bytes();
        let mut r = Reader::new(bytes);
        let mut w = Wide::default();
        match r.byte() {
            TAG_WINDOWS => {
                let k = r.signed();
                let present = r.varint();
                w.windows = k;
                for i in 0..METRICS {
                    if present & (1 << i) != 0 {
                        let x = r.signed();
                        w.n[i] = k;
                        w.sum[i] = k.wrapping_mul(x);
                        w.sumsq[i] = k.wrapping_mul(x.wrapping_mul(x));
                    }
                }
            }
            TAG_GENERAL => {
                let present = r.varint();
                let mut fields = [0i128; FIELDS];
                for (i, f) in fields.iter_mut().enumerate() {
                    if present & (1 << i) != 0 {
                        *f = r.signed();
                    }
                }
                w.windows = fields[0];
                for i in 0..METRICS {
                    w.n[i] = fields[1 + i];
                    w.sum[i] = fields[1 + METRICS + i];
                    w.sumsq[i] = fields[1 + 2 * METRICS + i];
                }
            }
            _ => {}
        }
        w
    }

    /// The metric values of one window's moments (as made by [`Moments::of`]); for
    /// other moments, the values of the average window, rounded toward zero.
    pub fn one_window_values(&self) -> Values {
        let mut r = Reader::new(self.bytes());
        let mut out = [None; METRICS];
        if r.byte() == TAG_WINDOWS && r.signed() == 1 {
            let present = r.varint();
            for (i, v) in out.iter_mut().enumerate() {
                if present & (1 << i) != 0 {
                    *v = Some(r.signed() as i64);
                }
            }
            return out;
        }
        let w = self.wide();
        for (i, v) in out.iter_mut().enumerate() {
            if w.n[i] != 0 {
                *v = Some(w.sum[i].checked_div(w.n[i]).unwrap_or(0) as i64);
            }
        }
        out
    }

    /// Number of windows (wrapped to `i64`).
    pub fn windows(&self) -> i64 {
        self.wide().windows as i64
    }

    /// The per-metric summaries (natural units).
    pub fn summary(&self) -> Summary {
        let w = self.wide();
        let mut out = [None; METRICS];
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            let n = w.n[i] as i64;
            if n <= 0 {
                continue;
            }
            let scale = m.scale();
            let mean = w.sum[i] as f64 / n as f64 / scale;
            let var = exact_variance(n, w.sum[i], w.sumsq[i]) / (scale * scale);
            out[i] = Some(MetricBaseline {
                n: n as u64,
                mean,
                stddev: var.max(0.0).sqrt(),
            });
        }
        Summary {
            windows: (w.windows as i64).max(0) as u64,
            metrics: out,
        }
    }
}

/// Writes the "`k` copies of one window" form.
fn write_copies<const N: usize>(out: &mut Scratch<N>, k: i64, values: &Values) {
    out.byte(TAG_WINDOWS);
    out.put_signed(i128::from(k));
    let present = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_some())
        .fold(0u128, |m, (i, _)| m | (1 << i));
    out.put(present);
    for x in values.iter().flatten() {
        out.put_signed(i128::from(*x));
    }
}

impl differential_dataflow::difference::IsZero for Moments {
    fn is_zero(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl differential_dataflow::difference::Semigroup for Moments {
    fn plus_equals(&mut self, rhs: &Self) {
        if rhs.bytes().is_empty() {
            return;
        }
        if self.bytes().is_empty() {
            *self = rhs.clone();
            return;
        }
        let mut w = self.wide();
        w.add(&rhs.wide());
        *self = Moments::from_wide(&w);
    }
}

impl differential_dataflow::difference::Monoid for Moments {
    fn zero() -> Self {
        Moments::default()
    }
}

impl differential_dataflow::difference::Abelian for Moments {
    fn negate(&mut self) {
        let mut w = self.wide();
        w.negate();
        *self = Moments::from_wide(&w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::difference::{Abelian, IsZero, Semigroup};
    use proptest::prelude::*;

    use crate::baseline::test_values as values;

    #[test]
    fn a_value_is_32_bytes_and_one_window_is_in_place() {
        assert_eq!(std::mem::size_of::<Moments>(), 32);
        // A DNS exchange seen by a host: 2 packets, 150 bytes, 1 flow, ...
        let v = [
            Some(2),
            Some(150),
            Some(1),
            Some(1000),
            Some(75_000),
            None,
            Some(0),
            Some(1),
            Some(1),
        ];
        let m = Moments::of(&v);
        assert_eq!(m.heap_bytes(), 0);
        let mut neg = m.clone();
        neg.negate();
        assert_eq!(neg.heap_bytes(), 0);
        assert_eq!(m.wide(), Wide::of(&v));
        assert_eq!(Moments::from_wide(&Wide::of(&v)), m);
    }

    #[test]
    fn extreme_sums_of_a_retraction_do_not_overflow() {
        let mut w = Wide {
            windows: -1,
            ..Default::default()
        };
        w.n[0] = -1;
        w.sum[0] = i128::MIN;
        let m = Moments::from_wide(&w);
        assert_eq!(m.wide(), w);
    }

    #[test]
    fn retractions_cancel_to_the_zero_encoding() {
        let a = Moments::of(&values(&[5, 700, 1]));
        let b = Moments::of(&values(&[9, 10_000]));
        let mut m = a.clone();
        m.plus_equals(&b);
        let mut neg = a.clone();
        neg.negate();
        m.plus_equals(&neg);
        // What is left is b, in b's own encoding.
        assert_eq!(m, b);
        let mut negb = b.clone();
        negb.negate();
        m.plus_equals(&negb);
        assert!(m.is_zero());
        assert_eq!(m, Moments::default());
    }

    #[test]
    fn copies_of_a_window_stay_compact_and_sums_go_general() {
        let a = Moments::of(&values(&[5, 700, 1]));
        let mut m = a.clone();
        m.plus_equals(&a);
        m.plus_equals(&a);
        assert_eq!(m.windows(), 3);
        assert_eq!(m.bytes()[0], TAG_WINDOWS);
        m.plus_equals(&Moments::of(&values(&[6, 700, 1])));
        assert_eq!(m.bytes()[0], TAG_GENERAL);
        let s = m.summary();
        assert_eq!(s.windows, 4);
        let p = s.metrics[0].expect("present");
        assert!((p.mean - 5.25).abs() < 1e-12, "{}", p.mean);
    }

    fn window() -> impl Strategy<Value = Values> {
        proptest::collection::vec(proptest::option::of(-(1i64 << 50)..(1i64 << 50)), METRICS)
            .prop_map(|v| {
                let mut out = [None; METRICS];
                out.copy_from_slice(&v);
                out
            })
    }

    proptest! {
        /// Any sequence of additions and retractions gives the wide sum, in the
        /// canonical encoding of that sum whatever the order.
        #[test]
        fn sums_are_exact_and_canonical(
            ws in proptest::collection::vec((window(), any::<bool>()), 0..12),
        ) {
            let mut m = Moments::default();
            let mut wide = Wide::default();
            for (v, retract) in &ws {
                let mut one = Moments::of(v);
                let mut w = Wide::of(v);
                if *retract {
                    one.negate();
                    w.negate();
                }
                m.plus_equals(&one);
                wide.add(&w);
                prop_assert_eq!(m.wide(), wide);
            }
            prop_assert_eq!(&m, &Moments::from_wide(&wide));
            let mut rev = Moments::default();
            for (v, retract) in ws.iter().rev() {
                let mut one = Moments::of(v);
                if *retract {
                    one.negate();
                }
                rev.plus_equals(&one);
            }
            prop_assert_eq!(&rev, &m);
        }

        /// Every wide value, however large, round-trips.
        #[test]
        fn wide_values_round_trip(fields in proptest::collection::vec(any::<i128>(), FIELDS)) {
            let mut w = Wide { windows: fields[0], ..Default::default() };
            for i in 0..METRICS {
                w.n[i] = fields[1 + i];
                w.sum[i] = fields[1 + METRICS + i];
                w.sumsq[i] = fields[1 + 2 * METRICS + i];
            }
            let m = Moments::from_wide(&w);
            prop_assert_eq!(m.wide(), w);
            prop_assert_eq!(Moments::from_wide(&m.wide()), m);
        }
    }
}
