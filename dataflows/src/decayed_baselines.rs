//! [`DecayedBaselines`]: the exponentially decayed baselines of one worker's keys, and
//! the scoring of windows against them (independent of timely; the operator is
//! [`crate::operators::Detect`] with [`crate::baseline::BaselineMode::Decayed`]).
//!
//! A key's state is its [`Decayed`] moments, in a [`SlabMap`] (no moment when an old and a
//! new table of a million keys coexist, as when a hash map doubles): 272 bytes a key and
//! a 4-byte index entry.
//!
//! A key idle for 10 time constants (its weights below e⁻¹⁰) is forgotten: when its next
//! window comes it starts afresh, whenever the memory of idle keys was last reclaimed, so
//! results do not depend on how windows were batched (hence on the worker count).

use crate::alert::Alert;
use crate::baseline::{BaselineKey, Decayed, DetectConfig};
use crate::operators::baseline::{judge, Probe};
use crate::slab_map::SlabMap;

/// The decayed baselines of one worker's keys (see the module documentation).
#[derive(Debug)]
pub struct DecayedBaselines {
    config: DetectConfig,
    keys: SlabMap<BaselineKey, Decayed>,
    /// Event time of the last reclaiming of idle keys.
    last_sweep_ns: u64,
}

impl DecayedBaselines {
    /// No baselines yet.
    pub fn new(config: DetectConfig) -> Self {
        DecayedBaselines {
            config,
            keys: SlabMap::new(),
            last_sweep_ns: 0,
        }
    }

    /// Scores the windows of one instant (any order: they are sorted by end, key and
    /// start) and adds to its key's moments each one that tiles time and did not alert;
    /// alerts go to `out`.
    pub fn process(
        &mut self,
        windows: &mut [(BaselineKey, Probe)],
        first_end_ns: u64,
        out: &mut Vec<Alert>,
    ) {
        let tau = self.config.decay_ns;
        let idle = tau.saturating_mul(10);
        windows.sort_unstable_by(|(ka, a), (kb, b)| {
            (a.end_ns, ka, a.start_ns).cmp(&(b.end_ns, kb, b.start_ns))
        });
        let mut now = 0;
        for (key, probe) in windows.iter() {
            let state = self.keys.get_or_insert_with(*key, Decayed::default);
            if state.windows > 0 && probe.end_ns.saturating_sub(state.last_end_ns) > idle {
                *state = Decayed::default();
            }
            state.decay_to(probe.end_ns, tau);
            match judge(&self.config, key, probe, &state.summary(), first_end_ns) {
                Some(a) => out.push(a),
                None if probe.tiles() => state.add(probe.end_ns, &probe.values()),
                None => {}
            }
            now = now.max(probe.end_ns);
        }
        if now.saturating_sub(self.last_sweep_ns) > tau {
            self.keys
                .retain(|_, s| now.saturating_sub(s.last_end_ns) <= idle);
            self.last_sweep_ns = now;
        }
    }

    /// Keys held.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// The moments of `key`, if it has any.
    pub fn get(&self, key: &BaselineKey) -> Option<&Decayed> {
        self.keys.get(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::BaselineMode;
    use crate::packet::Addr;
    use crate::time::NS_PER_SEC;
    use crate::window::{Granularity, WindowKey, WindowRecord, WindowStats};

    fn window(host: u8, end_s: u64, packets: u64) -> (BaselineKey, Probe) {
        let w = WindowRecord {
            key: WindowKey {
                granularity: Granularity::Host,
                src: Addr::from_v4([10, 0, 0, host]),
                ..Default::default()
            },
            start_ns: (end_s - 60) * NS_PER_SEC,
            end_ns: end_s * NS_PER_SEC,
            partial: false,
            stats: WindowStats {
                packets,
                bytes: packets * 100,
                ..Default::default()
            },
        };
        (BaselineKey::of(&w, false), Probe::of(&w, w.end_ns - 1))
    }

    fn config() -> DetectConfig {
        DetectConfig {
            mode: BaselineMode::Decayed,
            decay_ns: 60 * NS_PER_SEC,
            ..DetectConfig::default()
        }
    }

    #[test]
    fn idle_keys_are_forgotten_whenever_memory_is_reclaimed() {
        // Key 1 is seen at 60 s and comes back 11 time constants later; key 2 keeps
        // going. Fed in one batch or minute by minute (sweeping in between), key 1 starts
        // afresh either way.
        let mut batched = DecayedBaselines::new(config());
        let mut stepped = DecayedBaselines::new(config());
        let mut all = vec![window(1, 60, 10)];
        for m in 1..=12 {
            all.push(window(2, 60 + m * 60, 10));
        }
        all.push(window(1, 60 + 11 * 60 + 60, 10));
        let mut out = Vec::new();
        for w in &all {
            stepped.process(&mut [w.clone()], 0, &mut out);
        }
        batched.process(&mut all.clone(), 0, &mut out);
        let key1 = all[0].0;
        assert_eq!(batched.get(&key1).map(|d| d.windows), Some(1));
        assert_eq!(stepped.get(&key1).map(|d| d.windows), Some(1));
        assert_eq!(batched.get(&key1), stepped.get(&key1));
        assert_eq!(stepped.keys(), 2);
    }

    #[test]
    fn reclaiming_keeps_every_other_key_findable() {
        let mut b = DecayedBaselines::new(config());
        let mut out = Vec::new();
        // 200 keys at 60 s, then the odd ones keep going for 20 minutes.
        let mut first: Vec<_> = (0..200u8).map(|h| window(h, 60, 5)).collect();
        b.process(&mut first, 0, &mut out);
        for m in 2..=20u64 {
            let mut batch: Vec<_> = (0..200u8)
                .filter(|h| h % 2 == 1)
                .map(|h| window(h, m * 60, 5))
                .collect();
            b.process(&mut batch, 0, &mut out);
        }
        assert_eq!(b.keys(), 100);
        for h in 0..200u8 {
            let k = window(h, 60, 5).0;
            match h % 2 {
                1 => assert_eq!(b.get(&k).map(|d| d.windows), Some(20)),
                _ => assert!(b.get(&k).is_none()),
            }
        }
    }
}
