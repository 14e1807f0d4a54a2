//! Port scans, fast or slow, from finished flows: one source probing many ports of one
//! destination, counted over a long horizon with bounded state.
//!
//! A **probe** is a TCP flow whose initiator sent a SYN and in which neither side sent a
//! byte of payload: a SYN answered by RST (closed port), by SYN-ACK and the prober's RST
//! (open port), or not at all (filtered port). Clients send data on the connections they
//! open. A `port_scan` alert names a (source, destination) pair with probes to at least
//! [`ScanRules::min_ports`] distinct destination ports, none more than
//! [`ScanRules::window_ns`] after the previous one: a slow scan probing a port every half
//! minute reaches 25 ports in about 12 minutes, a fast one in a fraction of a second.
//! (Zeek's scan policy counts 15 ports within 5 minutes; the longer horizon is what sees
//! slow scans.)
//!
//! **Bounded state.** Pairs are kept in [`SHARDS`] shards of at most
//! [`ScanRules::capacity`] / [`SHARDS`] pairs each, chosen by a stable hash of the pair.
//! When a shard is full, a new pair replaces the pair with the fewest ports (the least
//! recent among equals): a spoofed-source SYN flood brings millions of one-port pairs
//! that churn through the shards, while a scanner's pair, once it holds two ports,
//! outlives them. Under such a flood a scanner slower than the churn can lose its first
//! probe before the second arrives: the flood masks it. The connections of a shard are
//! judged on one worker in (end time, key) order, so the outcome, evictions included,
//! does not depend on the number of workers.

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::connections::Connection;
use crate::hash::{FastMap, StableHasher};
use crate::packet::{proto, Addr};
use crate::time::NS_PER_SEC;

/// Shards of the pair table (a power of two; the unit of routing between workers).
pub const SHARDS: usize = 1024;

/// Settings of the port-scan rule (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanRules {
    /// Distinct probed ports that make a `port_scan` alert (0: no port-scan rule).
    pub min_ports: usize,
    /// A pair whose last probe is older than this (ns) starts afresh.
    pub window_ns: u64,
    /// Most (source, destination) pairs followed at once, over all workers.
    pub capacity: usize,
    /// At most one alert per pair this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for ScanRules {
    fn default() -> Self {
        ScanRules {
            min_ports: 25,
            window_ns: 3600 * NS_PER_SEC,
            capacity: 262_144,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl ScanRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.min_ports == 1 || self.min_ports > 65_536 {
            return Err("scan_min_ports must be 0 (off) or 2..=65536".into());
        }
        if self.window_ns == 0 {
            return Err("scan_window must be positive".into());
        }
        if self.capacity < SHARDS {
            return Err(format!("scan_capacity must be at least {SHARDS}"));
        }
        Ok(())
    }

    fn per_shard(&self) -> usize {
        self.capacity / SHARDS
    }
}

/// The pair a connection counts for: (initiator, responder).
pub type Pair = (Addr, Addr);

/// The shard of a pair (stable in every process): connections must be routed to workers
/// by it, so that a shard is judged on one worker.
pub fn shard(src: &Addr, dst: &Addr) -> u64 {
    let mut h = StableHasher::default();
    h.write_addr(src);
    h.write_addr(dst);
    h.finish() % SHARDS as u64
}

/// True when a connection is a probe (see the module docs).
pub fn is_probe(c: &Connection) -> bool {
    c.key.protocol == proto::TCP && c.opened && !c.carried_payload
}

#[derive(Debug, Default)]
struct PairState {
    /// Distinct probed ports, ascending (at most `min_ports`).
    ports: Vec<u16>,
    /// Start of the first probe counted.
    first_ns: u64,
    /// Start of the latest probe.
    newest_ns: u64,
    last_alert: Option<u64>,
}

/// One worker's port-scan state (the shards routed to it), independent of timely.
#[derive(Debug, Default)]
pub struct PortScans {
    rules: ScanRules,
    shards: FastMap<u64, FastMap<Pair, PairState>>,
    evictions: u64,
}

impl PortScans {
    /// Empty state.
    pub fn new(rules: ScanRules) -> Self {
        PortScans {
            rules,
            ..Default::default()
        }
    }

    /// Pairs followed.
    pub fn len(&self) -> usize {
        self.shards.values().map(FastMap::len).sum()
    }

    /// True when no pair is followed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pairs replaced in a full shard so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Forgets the pairs whose last probe is a window or more before `frontier_ns`.
    pub fn forget(&mut self, frontier_ns: u64) {
        let window = self.rules.window_ns;
        for s in self.shards.values_mut() {
            s.retain(|_, p| p.newest_ns.saturating_add(window) > frontier_ns);
        }
        self.shards.retain(|_, s| !s.is_empty());
    }

    /// Counts one more connection (in (end time, key) order); an alert goes to `out` with
    /// time `ts_ns`.
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        if rules.min_ports == 0 || !is_probe(c) {
            return;
        }
        let pair = (c.key.src, c.key.dst);
        let window = rules.window_ns;
        let per_shard = rules.per_shard();
        let shard = self.shards.entry(shard(&pair.0, &pair.1)).or_default();
        if !shard.contains_key(&pair) && shard.len() >= per_shard {
            // Replace the pair with the fewest ports, the least recent among equals;
            // pairs past their window go first (whatever their ports).
            let victim = shard
                .iter()
                .min_by_key(|(k, p)| {
                    let live = p.newest_ns.saturating_add(window) > ts_ns;
                    (live, p.ports.len(), p.newest_ns, **k)
                })
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                shard.remove(&k);
                self.evictions += 1;
            }
        }
        let p = shard.entry(pair).or_default();
        // A pair quiet for a window starts afresh here, as `forget` would have dropped
        // it: the outcome does not depend on when `forget` runs.
        if p.newest_ns.saturating_add(window) <= ts_ns {
            *p = PairState::default();
        }
        if p.ports.is_empty() {
            p.first_ns = c.start_ns;
        }
        p.newest_ns = p.newest_ns.max(c.start_ns);
        if p.ports.len() >= rules.min_ports {
            return; // already counted enough (and alerted, or waiting to realert)
        }
        if let Err(at) = p.ports.binary_search(&c.key.dport) {
            p.ports.insert(at, c.key.dport);
        }
        let due = p
            .last_alert
            .is_none_or(|t| ts_ns >= t.saturating_add(rules.realert_ns));
        if p.ports.len() < rules.min_ports || !due {
            return;
        }
        p.last_alert = Some(ts_ns);
        let n = p.ports.len();
        let span = p.newest_ns.saturating_sub(p.first_ns);
        let score = 1.0;
        let mut a = Alert {
            ts_ns,
            kind: AlertKind::PortScan,
            severity: config.severity(score, 1.0),
            score,
            threshold: 1.0,
            granularity: AlertGranularity::Pair,
            src: Some(pair.0),
            dst: Some(pair.1),
            dst_port: None,
            protocol: Some(proto::TCP),
            hour_of_day: None,
            window_start_ns: p.first_ns,
            window_end_ns: ts_ns,
            metrics: vec![
                AlertMetric {
                    name: "distinct_ports".into(),
                    value: n as f64,
                    ..Default::default()
                },
                AlertMetric {
                    name: "span_s".into(),
                    value: span as f64 / 1e9,
                    ..Default::default()
                },
            ],
            explanation: String::new(),
        };
        // Probes are ports p.ports; name a few.
        let sample: Vec<String> = p.ports.iter().take(5).map(u16::to_string).collect();
        a.explanation = format!(
            "{}: TCP probes without data to {} distinct ports ({}, ...) in {} s: a port \
             scan (threshold {} ports, at most {} s between probes)",
            a.describe_key(),
            n,
            sample.join(", "),
            short_number(span as f64 / 1e9),
            rules.min_ports,
            short_number(window as f64 / 1e9),
        );
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::ChannelKey;

    fn probe(src: u8, dst: u8, port: u16, start_s: f64) -> Connection {
        let start_ns = (start_s * 1e9) as u64;
        Connection {
            end_ns: start_ns + 2 * NS_PER_SEC,
            key: ChannelKey {
                src: Addr::from_v4([10, 0, 0, src]),
                dst: Addr::from_v4([10, 0, 1, dst]),
                dport: port,
                protocol: proto::TCP,
            },
            start_ns,
            sport: 40_000,
            answered: true,
            opened: true,
            split: false,
            lone: false,
            carried_payload: false,
        }
    }

    fn feed(s: &mut PortScans, conns: &[Connection]) -> Vec<Alert> {
        let mut sorted = conns.to_vec();
        sorted.sort();
        let mut out = Vec::new();
        for c in &sorted {
            s.observe(c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        out
    }

    #[test]
    fn slow_scan_alerts_once_at_the_threshold() {
        let mut s = PortScans::new(ScanRules::default());
        // A probe every 30 s to a new port, 100 ports.
        let conns: Vec<_> = (0..100u16)
            .map(|i| probe(1, 1, 1000 + i, f64::from(i) * 30.0))
            .collect();
        let alerts = feed(&mut s, &conns);
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.kind, AlertKind::PortScan);
        assert_eq!(a.metrics[0].value, 25.0);
        assert_eq!(a.metrics[1].value, 24.0 * 30.0);
        assert_eq!(a.granularity, AlertGranularity::Pair);
    }

    #[test]
    fn the_same_port_data_or_long_gaps_make_no_scan() {
        let mut s = PortScans::new(ScanRules::default());
        let same: Vec<_> = (0..100).map(|i| probe(1, 1, 22, f64::from(i))).collect();
        assert!(feed(&mut s, &same).is_empty(), "one port");
        let mut data: Vec<_> = (0..100u16)
            .map(|i| probe(2, 1, 1000 + i, f64::from(i)))
            .collect();
        for c in &mut data {
            c.carried_payload = true;
        }
        assert!(feed(&mut s, &data).is_empty(), "real connections");
        let sparse: Vec<_> = (0..100u16)
            .map(|i| probe(3, 1, 1000 + i, f64::from(i) * 3601.0))
            .collect();
        assert!(feed(&mut s, &sparse).is_empty(), "over an hour apart");
    }

    #[test]
    fn a_flood_of_one_port_pairs_does_not_push_out_a_scanner() {
        let rules = ScanRules {
            capacity: SHARDS * 4,
            ..Default::default()
        };
        let mut s = PortScans::new(rules);
        let mut conns = Vec::new();
        // The scanner: a port every second, two before the flood starts.
        for i in 0..30u16 {
            conns.push(probe(1, 1, 2000 + i, f64::from(i)));
        }
        // 200 000 spoofed sources, one SYN-ACKed probe each, over the next 30 s.
        for i in 0..200_000u32 {
            let mut c = probe(0, 2, 443, 1.5 + f64::from(i) * 30.0 / 200_000.0);
            c.key.src = Addr::from_v4([100, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            conns.push(c);
        }
        let alerts = feed(&mut s, &conns);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].src, Some(Addr::from_v4([10, 0, 0, 1])));
        assert!(s.len() <= SHARDS * 4);
        assert!(s.evictions() > 190_000);
    }

    #[test]
    fn quiet_pairs_are_forgotten() {
        let mut s = PortScans::new(ScanRules::default());
        feed(&mut s, &[probe(1, 1, 80, 10.0)]);
        assert_eq!(s.len(), 1);
        s.forget(3600 * NS_PER_SEC);
        assert_eq!(s.len(), 1);
        s.forget(3610 * NS_PER_SEC);
        assert!(s.is_empty());
    }
}
