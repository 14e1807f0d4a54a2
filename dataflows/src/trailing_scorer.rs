//! [`TrailingScorer`]: one worker's index of trailing baselines, as of the time being
//! scored, and the scoring of windows against it (independent of timely; the operator is
//! [`crate::operators::Detect`] with [`crate::baseline::BaselineMode::Trailing`]).
//!
//! Differential dataflow maintains the baselines (`count_total` over the windows'
//! [`Moments`]) and reports each change of a key's baseline at a time `t` as a
//! retraction of the old total and an insertion of the new one. The scorer applies the
//! changes of each time, in time order, to an index by key ([`SlabMap`]: 72 bytes and a
//! 4-byte index entry per key whose history is not empty) and scores the windows of that
//! time against it, so each window meets exactly the baseline of the windows that ended
//! strictly before it, as a join of the window with the arranged baselines would give,
//! without arranging the windows or materializing a match per window.

use crate::alert::Alert;
use crate::baseline::{BaselineKey, DetectConfig, Moments};
use crate::operators::baseline::{judge, population_of, Probe};
use crate::slab_map::SlabMap;

/// One worker's trailing baselines and scorer (see the module documentation).
#[derive(Debug)]
pub struct TrailingScorer {
    config: DetectConfig,
    baselines: SlabMap<BaselineKey, Moments>,
}

impl TrailingScorer {
    /// No baselines yet.
    pub fn new(config: DetectConfig) -> Self {
        TrailingScorer {
            config,
            baselines: SlabMap::new(),
        }
    }

    /// Applies the baseline changes of one time: `(key, total, +1)` sets a key's
    /// baseline, `(key, total, −1)` withdraws that total (retractions first, so the
    /// order of the changes does not matter).
    pub fn apply(&mut self, changes: &mut [(BaselineKey, Moments, isize)]) {
        changes.sort_unstable_by_key(|(_, _, r)| *r);
        for (k, m, r) in changes.iter() {
            if *r < 0 {
                if self.baselines.get(k) == Some(m) {
                    self.baselines.remove(k);
                }
            } else if *r > 0 {
                self.baselines.insert(*k, m.clone());
            }
        }
    }

    /// Judges each window of one time against its own key's baseline once that holds
    /// `min_windows` windows, else against its population's (when the population prior
    /// is on); pushes `(key, window, alert)` for each that alerts.
    pub fn score(
        &self,
        windows: &[(BaselineKey, Probe)],
        first_end_ns: u64,
        out: &mut Vec<(BaselineKey, Probe, Alert)>,
    ) {
        let min = self.config.min_windows.max(1);
        for (k, p) in windows {
            let own = self.baselines.get(k).map(Moments::summary);
            let (summary, population) = match own {
                Some(s) if s.windows >= min => (s, false),
                _ => match self.baselines.get(&population_of(k)) {
                    Some(m) => (m.summary(), true),
                    None => continue,
                },
            };
            if let Some(mut alert) = judge(&self.config, k, p, &summary, first_end_ns) {
                if population {
                    alert.explanation.push_str(
                        " (too little history of its own: judged against all keys of its granularity)",
                    );
                }
                out.push((*k, p.clone(), alert));
            }
        }
    }

    /// Keys with a baseline (population keys included).
    pub fn keys(&self) -> usize {
        self.baselines.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Values;
    use crate::packet::Addr;
    use crate::window::{Granularity, WindowKey};

    fn key(host: u8) -> BaselineKey {
        BaselineKey {
            key: WindowKey {
                granularity: Granularity::Host,
                src: Addr::from_v4([10, 0, 0, host]),
                ..Default::default()
            },
            hour: crate::baseline::NO_HOUR,
        }
    }

    fn moments(packets: i64, n: usize) -> Moments {
        let mut v: Values = Default::default();
        v[0] = Some(packets);
        let one = Moments::of(&v);
        let mut m = Moments::default();
        for _ in 0..n {
            differential_dataflow::difference::Semigroup::plus_equals(&mut m, &one);
        }
        m
    }

    #[test]
    fn changes_apply_in_any_order_and_totals_that_reach_zero_leave() {
        let mut s = TrailingScorer::new(DetectConfig::default());
        s.apply(&mut [(key(1), moments(10, 2), 1), (key(2), moments(5, 1), 1)]);
        assert_eq!(s.keys(), 2);
        // The new total comes before the retraction of the old one.
        s.apply(&mut [(key(1), moments(10, 3), 1), (key(1), moments(10, 2), -1)]);
        assert_eq!(s.baselines.get(&key(1)), Some(&moments(10, 3)));
        // Key 2's last window leaves its history.
        s.apply(&mut [(key(2), moments(5, 1), -1)]);
        assert_eq!(s.keys(), 1);
        assert!(s.baselines.get(&key(2)).is_none());
    }
}
