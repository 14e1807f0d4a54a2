//! Scans, fast or slow, from finished flows: one source probing many ports of one
//! destination (`port_scan`), or one port of many destinations (`address_scan`),
//! counted over a long horizon with bounded state.
//!
//! A **probe** is a TCP flow whose initiator sent a SYN and in which neither side sent a
//! byte of payload: a SYN answered by RST (closed port), by SYN-ACK and the prober's RST
//! (open port), or not at all (filtered port). Clients send data on the connections they
//! open. For address scans an ICMP or ICMPv6 echo request also probes (a ping sweep).
//! A `port_scan` alert names a (source, destination) pair with probes to at least
//! [`ScanRules::min_ports`] distinct destination ports; an `address_scan` alert names a
//! source with probes of one TCP port (or of echo) to at least [`ScanRules::min_hosts`]
//! distinct destinations; in both, no probe more than [`ScanRules::window_ns`] after the
//! previous one. A slow scan probing a port every half minute reaches 25 ports in about
//! 12 minutes, a fast one in a fraction of a second. (Zeek's scan policy counts 15 ports
//! or 25 hosts within 5 minutes; the longer horizon is what sees slow scans.) A network
//! monitor pinging every host is an address scan by this definition.
//!
//! **Bounded state.** Keys are kept in [`SHARDS`] shards per kind of scan, of at most
//! [`ScanRules::capacity`] / [`SHARDS`] keys each; the shard is a stable hash of the
//! source, and flows are routed to workers by it. When a shard is full, a new key
//! replaces the earliest-come key that holds one value or is past its window (failing
//! that, the key with the fewest values): a spoofed-source SYN flood brings millions of
//! one-port keys that churn through the shards, while a scanner's key, once it holds two
//! values, outlives them. Under such a
//! flood a scanner slower than the churn can lose its first probe before the second
//! arrives: the flood masks it. The connections of a shard are judged on one worker in
//! (end time, key) order, and quiet keys are forgotten at fixed points of that order
//! ([`PortScans::forget`] is called by record time, not by the frontier), so the outcome,
//! evictions included, does not depend on the number of workers.

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::connections::{Connection, JUDGE_DELAY_NS};
use crate::distinct::{check_settings, DistinctTable, Tally, Thresholds};
use crate::packet::{proto, Addr};
use crate::time::NS_PER_SEC;

pub use crate::distinct::{shard, SHARDS};

/// Settings of the scan rules (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanRules {
    /// Distinct probed ports of one destination that make a `port_scan` alert (0: off).
    pub min_ports: usize,
    /// Distinct destinations probed on one port that make an `address_scan` alert (0:
    /// off).
    pub min_hosts: usize,
    /// A key whose last probe is older than this (ns) starts afresh.
    pub window_ns: u64,
    /// New ports of one destination probed in a burst that make a `port_scan` alert (0:
    /// off).
    pub burst_min_ports: usize,
    /// New destinations probed on one port in a burst that make an `address_scan`
    /// alert (0: off).
    pub burst_min_hosts: usize,
    /// The probes within this long (ns) of a burst's first one form the burst.
    pub burst_window_ns: u64,
    /// Most keys followed at once per kind of scan, over all workers.
    pub capacity: usize,
    /// At most one alert per key this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for ScanRules {
    fn default() -> Self {
        ScanRules {
            min_ports: 25,
            min_hosts: 25,
            window_ns: 3600 * NS_PER_SEC,
            burst_min_ports: 10,
            burst_min_hosts: 10,
            burst_window_ns: 5 * NS_PER_SEC,
            capacity: 65_536,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl ScanRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if (self.burst_min_ports > 0 || self.burst_min_hosts > 0) && self.burst_window_ns == 0 {
            return Err("scan_burst_window must be positive".into());
        }
        check_settings(
            &[
                ("scan_min_ports", self.min_ports),
                ("sweep_min_hosts", self.min_hosts),
                ("scan_burst_ports", self.burst_min_ports),
                ("sweep_burst_hosts", self.burst_min_hosts),
            ],
            ("scan_window", self.window_ns),
            self.capacity,
            SHARDS,
        )
    }
}

/// The span of the probes behind an alert: the burst's, or the whole tally's.
fn scan_span<V>(t: &Tally<V>, th: &Thresholds) -> (u64, u64) {
    if t.by_burst(th) {
        (t.burst_first_ns, t.newest_ns)
    } else {
        (t.first_ns, t.newest_ns)
    }
}

/// The distinct values behind an alert: the burst's new ones, or all.
fn counted<V>(t: &Tally<V>, th: &Thresholds) -> usize {
    if t.by_burst(th) {
        t.burst_values as usize
    } else {
        t.values.len()
    }
}

/// True when a connection is a TCP probe (see the module docs).
pub fn is_probe(c: &Connection) -> bool {
    c.key.protocol == proto::TCP && c.opened && !c.carried_payload
}

/// True when a connection is an ICMP or ICMPv6 echo exchange started by its source.
pub fn is_echo(c: &Connection) -> bool {
    c.echo && matches!(c.key.protocol, proto::ICMP | proto::ICMPV6)
}

/// The key of an address scan: source, protocol, probed port (0 for echo).
type SweepKey = (Addr, u8, u16);

/// One worker's scan state (the shards routed to it), independent of timely.
#[derive(Debug)]
pub struct PortScans {
    rules: ScanRules,
    ports: DistinctTable<(Addr, Addr), u16>,
    hosts: DistinctTable<SweepKey, Addr>,
}

impl Default for PortScans {
    fn default() -> Self {
        PortScans::new(ScanRules::default())
    }
}

impl PortScans {
    /// Empty state.
    pub fn new(rules: ScanRules) -> Self {
        PortScans {
            ports: DistinctTable::new(rules.capacity, rules.window_ns, JUDGE_DELAY_NS),
            hosts: DistinctTable::new(rules.capacity, rules.window_ns, JUDGE_DELAY_NS),
            rules,
        }
    }

    /// Keys followed (pairs and sweeps).
    pub fn len(&self) -> usize {
        self.ports.len() + self.hosts.len()
    }

    /// True when no key is followed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys replaced in a full shard so far.
    pub fn evictions(&self) -> u64 {
        self.ports.evictions + self.hosts.evictions
    }

    /// How long a key is kept after its latest probe: the scan window plus the time a
    /// probe may take to reach the rules ([`JUDGE_DELAY_NS`]).
    pub fn memory_ns(&self) -> u64 {
        self.ports.memory_ns()
    }

    /// Forgets the keys whose last probe is [`Self::memory_ns`] or more before `now_ns`. Call it
    /// between connections, with a time no later than the next one's, at points that do
    /// not depend on the worker count (the shards' evictions depend on what they hold).
    pub fn forget(&mut self, now_ns: u64) {
        self.ports.forget(now_ns);
        self.hosts.forget(now_ns);
    }

    /// Counts one more connection (in (end time, key) order); alerts go to `out` with
    /// time `ts_ns`.
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        let (tcp, echo) = (is_probe(c), is_echo(c));
        if !(tcp || echo) {
            return;
        }
        let k = c.key;
        let shard = shard(&k.src);
        let times = (c.start_ns, c.start_ns, ts_ns);
        let alert =
            |kind, granularity, dst: Option<Addr>, port, (first, newest): (u64, u64), n: usize| {
                let what = if dst.is_some() {
                    "distinct_ports"
                } else {
                    "distinct_hosts"
                };
                Alert {
                    granularity,
                    src: Some(k.src),
                    dst,
                    dst_port: port,
                    protocol: Some(k.protocol),
                    metrics: vec![
                        AlertMetric::observed(what, n as f64),
                        AlertMetric::observed("span_s", newest.saturating_sub(first) as f64 / 1e9),
                    ],
                    ..Alert::of_rule(kind, (first, ts_ns), 1.0, config)
                }
            };
        let window = short_number(rules.window_ns as f64 / 1e9);
        let burst_window = short_number(rules.burst_window_ns as f64 / 1e9);
        // How the tally reached its alert, for the explanation.
        let tier = |burst: bool, th: &Thresholds, unit: &str| {
            if burst {
                format!("{} {unit} within {burst_window} s", th.burst_min)
            } else {
                format!("{} {unit}, at most {window} s between probes", th.min)
            }
        };
        let ports_th = Thresholds {
            min: rules.min_ports,
            burst_min: rules.burst_min_ports,
            burst_window_ns: rules.burst_window_ns,
            realert_ns: rules.realert_ns,
        };
        if tcp && (ports_th.min > 0 || ports_th.burst_min > 0) {
            let key = (shard, (k.src, k.dst));
            if let Some(t) = self.ports.add(key, k.dport, times, &ports_th) {
                let span = scan_span(t, &ports_th);
                let sample: Vec<String> = t.values.iter().take(5).map(u16::to_string).collect();
                let n = counted(t, &ports_th);
                let mut a = alert(
                    AlertKind::PortScan,
                    AlertGranularity::Pair,
                    Some(k.dst),
                    None,
                    span,
                    n,
                );
                a.explanation = format!(
                    "{}: TCP probes without data to {n} distinct ports ({}, ...) in {} s: a \
                     port scan (threshold {})",
                    a.describe_key(),
                    sample.join(", "),
                    short_number(a.metrics[1].value),
                    tier(t.by_burst(&ports_th), &ports_th, "ports"),
                );
                out.push(a);
            }
        }
        let hosts_th = Thresholds {
            min: rules.min_hosts,
            burst_min: rules.burst_min_hosts,
            burst_window_ns: rules.burst_window_ns,
            realert_ns: rules.realert_ns,
        };
        if hosts_th.min > 0 || hosts_th.burst_min > 0 {
            let port = if tcp { k.dport } else { 0 };
            let key = (shard, (k.src, k.protocol, port));
            if let Some(t) = self.hosts.add(key, k.dst, times, &hosts_th) {
                let span = scan_span(t, &hosts_th);
                let n = counted(t, &hosts_th);
                let what = if tcp {
                    format!("TCP probes without data to port {port}")
                } else {
                    "echo requests".to_string()
                };
                let mut a = alert(
                    AlertKind::AddressScan,
                    AlertGranularity::Host,
                    None,
                    tcp.then_some(port),
                    span,
                    n,
                );
                a.explanation = format!(
                    "{}: {what} of {n} distinct hosts in {} s: an address scan (threshold \
                     {})",
                    a.describe_key(),
                    short_number(a.metrics[1].value),
                    tier(t.by_burst(&hosts_th), &hosts_th, "hosts"),
                );
                out.push(a);
            }
        }
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
            last_ns: start_ns,
            sport: 40_000,
            answered: true,
            opened: true,
            continued: false,
            lone: false,
            carried_payload: false,
            echo: false,
            syn_acks: 0,
            half_open: false,
            role: crate::connections::Role::Flow,
        }
    }

    use crate::connections::judge_in_order as feed;

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
        assert!(
            s.len() <= 2 * SHARDS * 4,
            "both tables stay within their capacity"
        );
        assert!(s.evictions() > 190_000);
    }

    #[test]
    fn ping_and_port_sweeps_are_address_scans() {
        let mut s = PortScans::new(ScanRules::default());
        let echo = |dst: u8, t: f64, icmp_type: u16| {
            let mut c = probe(7, dst, 4242, t);
            c.key.protocol = proto::ICMP;
            c.echo = icmp_type == 8;
            c
        };
        let pings: Vec<_> = (0..40).map(|i| echo(i, f64::from(i) * 0.05, 8)).collect();
        let alerts = feed(&mut s, &pings);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(
            (a.kind, a.granularity),
            (AlertKind::AddressScan, AlertGranularity::Host)
        );
        assert_eq!(
            (a.dst, a.dst_port, a.protocol),
            (None, None, Some(proto::ICMP))
        );
        assert_eq!(
            a.metrics[0].value, 10.0,
            "the burst tier: 10 hosts in 0.45 s"
        );
        assert!(
            a.explanation.contains("10 hosts within 5 s"),
            "{}",
            a.explanation
        );
        // Port 445 of 30 hosts, a probe a minute: a slow worm-like sweep.
        let smb: Vec<_> = (0..30)
            .map(|i| probe(8, i, 445, f64::from(i) * 60.0))
            .collect();
        let alerts = feed(&mut s, &smb);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].dst_port, Some(445));
        // Unreachables a router sends to many hosts are no sweep.
        let errors: Vec<_> = (0..40).map(|i| echo(i, 5000.0 + f64::from(i), 3)).collect();
        assert!(feed(&mut s, &errors).is_empty());
    }

    /// The burst tier counts the new values within the burst window of the burst's
    /// first probe; the long tier counts all values within the window.
    #[test]
    fn bursts_and_long_runs_alert_by_their_own_thresholds() {
        let rules = ScanRules::default();
        // Nine ports within a second, nine more 7 s later: two bursts of nine, and 18
        // ports in all: no alert.
        let mut s = PortScans::new(rules.clone());
        let two: Vec<_> = (0..18u16)
            .map(|i| {
                probe(
                    1,
                    1,
                    100 + i,
                    f64::from(i % 9) * 0.1 + f64::from(i / 9) * 7.0,
                )
            })
            .collect();
        assert!(feed(&mut s, &two).is_empty());
        // Repeating ports already seen does not make a burst new.
        let again: Vec<_> = (0..18u16)
            .map(|i| probe(1, 1, 100 + i, 100.0 + f64::from(i) * 0.1))
            .collect();
        assert!(feed(&mut s, &again).is_empty());
        // Seven more new ports join the long run: 25 in all, at the long threshold.
        let more: Vec<_> = (0..7u16)
            .map(|i| probe(1, 1, 200 + i, 200.0 + f64::from(i) * 10.0))
            .collect();
        let alerts = feed(&mut s, &more);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].metrics[0].value, 25.0);
        assert_eq!(alerts[0].metrics[1].value, 260.0, "from the first probe");
        assert!(alerts[0].explanation.contains("at most 3600 s"));
        // Ten new ports 0.4 s apart: a burst (span 3.6 s); 4 s apart they are not, a
        // new burst starting every 5 s.
        let mut s = PortScans::new(rules.clone());
        let slower: Vec<_> = (0..20u16)
            .map(|i| probe(3, 1, 300 + i, 50.0 + f64::from(i) * 4.0))
            .collect();
        assert!(feed(&mut s, &slower).is_empty());
        let paced: Vec<_> = (0..10u16)
            .map(|i| probe(2, 1, 300 + i, 50.0 + f64::from(i) * 0.4))
            .collect();
        let alerts = feed(&mut s, &paced);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].metrics[1].value, 3.6);
        assert!(
            alerts[0].explanation.contains("10 ports within 5 s"),
            "{}",
            alerts[0].explanation
        );
        // Burst tier off: the same probes make no alert; long tier off: the burst still
        // alerts.
        for (rules, expect) in [
            (
                ScanRules {
                    burst_min_ports: 0,
                    ..rules.clone()
                },
                0,
            ),
            (
                ScanRules {
                    min_ports: 0,
                    ..rules.clone()
                },
                1,
            ),
        ] {
            let mut s = PortScans::new(rules);
            assert_eq!(feed(&mut s, &paced).len(), expect);
        }
        let bad = ScanRules {
            burst_window_ns: 0,
            ..ScanRules::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn quiet_pairs_are_forgotten() {
        let mut s = PortScans::new(ScanRules::default());
        feed(&mut s, &[probe(1, 1, 80, 10.0)]);
        assert_eq!(s.len(), 2, "a pair and a sweep key");
        let memory = s.memory_ns();
        assert_eq!(memory, 7200 * NS_PER_SEC, "window plus judging delay");
        s.forget(10 * NS_PER_SEC + memory - 1);
        assert_eq!(s.len(), 2);
        s.forget(10 * NS_PER_SEC + memory);
        assert!(s.is_empty());
    }

    /// Unanswered probes reach the rule an idle timeout (120 s) after they start: with
    /// a window shorter than that, the probes still count while they start within the
    /// window of each other (start time against start time), and forgetting at the
    /// records' times keeps them.
    #[test]
    fn probes_judged_after_the_window_still_count() {
        let rules = ScanRules {
            window_ns: 60 * NS_PER_SEC,
            burst_min_ports: 0,
            ..ScanRules::default()
        };
        let mut s = PortScans::new(rules);
        let config = DetectConfig::default();
        let mut out = Vec::new();
        for i in 0..30u16 {
            let mut c = probe(1, 1, 1000 + i, f64::from(i) * 10.0);
            c.end_ns = c.start_ns + 120 * NS_PER_SEC;
            s.forget(c.end_ns);
            s.observe(&c, c.end_ns, &config, &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].metrics[0].value, 25.0);
    }
}
