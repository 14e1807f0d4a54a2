//! Bursts of half-open connection attempts to one service: a SYN flood judged by its
//! rate over seconds, from finished flows, without a baseline.
//!
//! The window rule `syn_flood` ([`crate::rules::syn_flood`]) counts SYNs in a service's
//! window (1 000 a minute by default): a short, fast flood that ends within a window
//! stays under its count. A **half-open attempt** is a TCP flow whose initiator sent
//! SYNs and nothing else (no ACK, so the handshake never completed) and in which nobody
//! sent payload; retransmitted SYNs are one attempt. A `syn_flood` **service** alert
//! names a service (destination, port) that received at least
//! [`HalfOpenRules::burst_min`] distinct attempts (initiator address and port) within
//! [`HalfOpenRules::window_ns`] of the burst's first one, a later attempt starting the
//! next burst: 100 in 5 s by default, 20 a second, about the rate of the window rule's
//! 1 000 a minute, with enough attempts to mean it. Real clients complete their
//! handshakes; a port scan spreads its attempts over many services. A service that is
//! down while many clients retry looks the same, and is worth knowing about.
//!
//! State is one `distinct` table keyed by service, bounded like the scan
//! tables; the half-open flows are routed to workers by a stable hash of their
//! destination ([`crate::connections::Role::HalfOpen`]). A key holds the attempts of its
//! current burst only, so a spoofed-source flood takes at most
//! [`HalfOpenRules::burst_min`] values per attacked service.

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::connections::{Connection, Role, JUDGE_DELAY_NS};
use crate::distinct::{check_settings, DistinctTable, Thresholds};
use crate::packet::{proto, Addr};
use crate::scans::{shard, SHARDS};
use crate::time::NS_PER_SEC;

/// Settings of the half-open burst rule (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HalfOpenRules {
    /// Distinct half-open attempts to one service within a burst that make a
    /// `syn_flood` alert (0: off).
    pub burst_min: usize,
    /// How long a burst lasts from its first attempt (ns).
    pub window_ns: u64,
    /// Most services followed at once, over all workers.
    pub capacity: usize,
    /// At most one alert per service this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for HalfOpenRules {
    fn default() -> Self {
        HalfOpenRules {
            burst_min: 100,
            window_ns: 5 * NS_PER_SEC,
            capacity: 65_536,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl HalfOpenRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        check_settings(
            &[("syn_burst_min", self.burst_min)],
            ("syn_burst_window", self.window_ns),
            self.capacity,
            SHARDS,
        )
    }
}

/// One worker's half-open burst state, independent of timely (unit-testable).
#[derive(Debug)]
pub struct HalfOpenBursts {
    rules: HalfOpenRules,
    services: DistinctTable<(Addr, u16), (Addr, u16)>,
}

impl Default for HalfOpenBursts {
    fn default() -> Self {
        HalfOpenBursts::new(HalfOpenRules::default())
    }
}

impl HalfOpenBursts {
    /// Empty state.
    pub fn new(rules: HalfOpenRules) -> Self {
        HalfOpenBursts {
            services: DistinctTable::new(rules.capacity, rules.window_ns, JUDGE_DELAY_NS),
            rules,
        }
    }

    /// How long a service is remembered after its latest attempt: a burst's window plus
    /// the time a flow may take to reach the rules ([`JUDGE_DELAY_NS`]).
    pub fn memory_ns(&self) -> u64 {
        self.services.memory_ns()
    }

    /// Services followed.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// True when no service is followed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets the services without an attempt for [`Self::memory_ns`] before `now_ns` (see
    /// [`crate::scans::PortScans::forget`] for when to call it).
    pub fn forget(&mut self, now_ns: u64) {
        self.services.forget(now_ns);
    }

    /// Counts one more half-open attempt ([`Role::HalfOpen`] records; others are
    /// ignored), in (end time, key) order; an alert goes to `out` with time `ts_ns`.
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        if rules.burst_min == 0 || c.role != Role::HalfOpen {
            return;
        }
        let k = c.key;
        let th = Thresholds {
            min: 0,
            burst_min: rules.burst_min,
            burst_window_ns: rules.window_ns,
            realert_ns: rules.realert_ns,
        };
        let Some(t) = self.services.add(
            (shard(&k.dst), (k.dst, k.dport)),
            (k.src, c.sport),
            (c.start_ns, c.start_ns, ts_ns),
            &th,
        ) else {
            return;
        };
        let n = t.values.len();
        let mut sources: Vec<Addr> = t.values.iter().map(|v| v.0).collect();
        sources.dedup(); // values are sorted by address first
        let span_s = t.newest_ns.saturating_sub(t.burst_first_ns) as f64 / 1e9;
        let score = n as f64 / rules.burst_min as f64;
        let mut a = Alert {
            granularity: AlertGranularity::Service,
            dst: Some(k.dst),
            dst_port: Some(k.dport),
            protocol: Some(proto::TCP),
            metrics: vec![
                AlertMetric::observed("half_open_attempts", n as f64),
                AlertMetric::observed("distinct_sources", sources.len() as f64),
                AlertMetric::observed("span_s", span_s),
            ],
            ..Alert::of_rule(
                AlertKind::SynFlood,
                (t.burst_first_ns, ts_ns),
                score,
                config,
            )
        };
        a.explanation = format!(
            "{}: {n} connection attempts that went no further than a SYN, from {} \
             source(s), in {} s: a SYN flood (threshold {} within {} s)",
            a.describe_key(),
            sources.len(),
            short_number(span_s),
            rules.burst_min,
            short_number(rules.window_ns as f64 / 1e9),
        );
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::ChannelKey;

    /// A half-open attempt from `src`:`sport` to 198.51.100.5:443 at `start_s`.
    fn attempt(src: u8, sport: u16, start_s: f64) -> Connection {
        let start_ns = (start_s * 1e9) as u64;
        Connection {
            end_ns: start_ns + 120 * NS_PER_SEC,
            key: ChannelKey {
                src: Addr::from_v4([192, 0, 2, src]),
                dst: Addr::from_v4([198, 51, 100, 5]),
                dport: 443,
                protocol: proto::TCP,
            },
            start_ns,
            last_ns: start_ns,
            sport,
            opened: true,
            lone: true,
            half_open: true,
            role: Role::HalfOpen,
            ..Default::default()
        }
    }

    use crate::connections::judge_in_order as judge;

    #[test]
    fn a_fast_burst_from_one_source_alerts_once() {
        let mut h = HalfOpenBursts::default();
        // 200 attempts from one host, 1 ms apart, each from a new port.
        let burst: Vec<_> = (0..200u16)
            .map(|i| attempt(10, 1024 + i, f64::from(i) * 0.001))
            .collect();
        let alerts = judge(&mut h, &burst);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(
            (a.kind, a.granularity),
            (AlertKind::SynFlood, AlertGranularity::Service)
        );
        assert_eq!(a.dst_port, Some(443));
        assert_eq!(a.metrics[0].value, 100.0);
        assert_eq!(a.metrics[1].value, 1.0);
        assert!(
            (a.metrics[2].value - 0.099).abs() < 1e-9,
            "{}",
            a.metrics[2].value
        );
    }

    #[test]
    fn slow_attempts_retransmissions_and_other_records_do_not_alert() {
        let mut h = HalfOpenBursts::default();
        // 300 attempts, 10 a second: 50 per burst window.
        let slow: Vec<_> = (0..300u16)
            .map(|i| attempt((i % 50) as u8, 2000 + i, f64::from(i) * 0.1))
            .collect();
        assert!(judge(&mut h, &slow).is_empty());
        // One attempt retransmitted: the same source port, one value.
        let mut h = HalfOpenBursts::default();
        let again: Vec<_> = (0..300)
            .map(|i| attempt(7, 5555, f64::from(i) * 0.01))
            .collect();
        assert!(judge(&mut h, &again).is_empty());
        // The same flows as ordinary records (routed by source) are not this rule's.
        let mut h = HalfOpenBursts::default();
        let flows: Vec<_> = (0..200u16)
            .map(|i| Connection {
                role: Role::Flow,
                ..attempt(10, 1024 + i, f64::from(i) * 0.001)
            })
            .collect();
        assert!(judge(&mut h, &flows).is_empty());
        assert!(h.is_empty());
    }
}
