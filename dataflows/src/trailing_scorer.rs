//! [`TrailingScorer`]: the judging of windows against trailing baselines, and the
//! population baselines every worker keeps (independent of timely; the operator is
//! [`crate::operators::Detect`] with [`crate::baseline::BaselineMode::Trailing`]).
//!
//! A key's own baseline is read from differential's arrangement of the baselines (the
//! operator looks the key up in it as of the window's time and passes the moments in).
//! The population baselines, one per granularity (and hour), are needed by every worker,
//! so their updates reach every worker and each keeps their sums here, applying the
//! updates of each time before the windows of that time are judged.

use std::collections::BTreeMap;

use differential_dataflow::difference::{IsZero, Semigroup};

use crate::alert::Alert;
use crate::baseline::{BaselineKey, DetectConfig, Moments};
use crate::operators::baseline::{judge, population_of, Probe};

/// The trailing scorer of one worker (see the module documentation).
#[derive(Debug)]
pub struct TrailingScorer {
    config: DetectConfig,
    /// The population baselines as of the time being judged.
    population: BTreeMap<BaselineKey, Moments>,
}

impl TrailingScorer {
    /// No baselines yet.
    pub fn new(config: DetectConfig) -> Self {
        TrailingScorer {
            config,
            population: BTreeMap::new(),
        }
    }

    /// Adds updates of the population baselines (a window's moments entering, or their
    /// negation leaving).
    pub fn update_population(&mut self, updates: impl IntoIterator<Item = (BaselineKey, Moments)>) {
        for (k, m) in updates {
            let total = self.population.entry(k).or_default();
            total.plus_equals(&m);
            if total.is_zero() {
                self.population.remove(&k);
            }
        }
    }

    /// Judges window `p` of key `k`, whose own baseline is `own` (`None`: empty), against
    /// its own baseline once that holds `min_windows` windows, else against its
    /// population's (when the population prior is on).
    pub fn judge(
        &self,
        k: &BaselineKey,
        p: &Probe,
        own: Option<&Moments>,
        first_end_ns: u64,
    ) -> Option<Alert> {
        let min = self.config.min_windows.max(1);
        let own = own.filter(|m| !m.is_zero()).map(Moments::summary);
        let (summary, population) = match own {
            Some(s) if s.windows >= min => (s, false),
            _ => (self.population.get(&population_of(k))?.summary(), true),
        };
        let mut alert = judge(&self.config, k, p, &summary, first_end_ns)?;
        if population {
            alert.explanation.push_str(
                " (too little history of its own: judged against all keys of its granularity)",
            );
        }
        Some(alert)
    }

    /// Population keys with a baseline.
    pub fn population_keys(&self) -> usize {
        self.population.len()
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
    fn population_sums_cancel_and_own_history_comes_first() {
        let config = DetectConfig {
            learn_ns: 0,
            ..DetectConfig::default()
        };
        let mut s = TrailingScorer::new(config);
        let pop = population_of(&key(1));
        s.update_population([(pop, moments(10, 20)), (pop, moments(12, 1))]);
        let mut gone = moments(12, 1);
        differential_dataflow::difference::Abelian::negate(&mut gone);
        s.update_population([(pop, gone)]);
        assert_eq!(s.population.get(&pop), Some(&moments(10, 20)));
        // A flood window of a host without history: judged against the population.
        let w = crate::window::WindowRecord {
            key: key(1).key,
            start_ns: 0,
            end_ns: 60_000_000_000,
            partial: false,
            stats: crate::window::WindowStats {
                packets: 100_000,
                bytes: 6_000_000,
                flows_started: 50_000,
                flags: [50_000, 0, 0, 0, 0, 0, 0, 0],
                ..Default::default()
            },
        };
        let p = Probe::of(&w, w.end_ns - 1);
        let a = s.judge(&key(1), &p, None, 0).expect("alert");
        assert!(
            a.explanation.ends_with("of its granularity)"),
            "{}",
            a.explanation
        );
        // With a history of its own that is just as large, it is not anomalous.
        let own = Moments::of(&p.values());
        let mut own20 = Moments::default();
        for _ in 0..20 {
            own20.plus_equals(&own);
        }
        assert!(s.judge(&key(1), &p, Some(&own20), 0).is_none());
        s.update_population([(pop, {
            let mut m = moments(10, 20);
            differential_dataflow::difference::Abelian::negate(&mut m);
            m
        })]);
        assert_eq!(s.population_keys(), 0);
        assert!(s.judge(&key(1), &p, None, 0).is_none());
    }
}
