//! Alerts: baseline deviations of windows and reassembly events that signal attacks.

use serde::{Deserialize, Serialize};

use crate::baseline::{MetricScore, Severity};

use crate::packet::Addr;
use crate::window::Granularity;

/// What raised an alert.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A window deviating from its key's baseline.
    #[default]
    Anomaly,
    /// Overlapping fragments reassemble differently under different policies.
    FragAmbiguity,
    /// Overlapping fragments carry different data.
    FragOverlap,
    /// Fragment flood: datagrams evicted, or fragments dropped, for lack of memory.
    FragFlood,
    /// Fragments of a datagram that would exceed 65535 bytes.
    FragTooLarge,
    /// A service flooded with half-open TCP connections (SYNs and hardly anything else).
    SynFlood,
    /// A host receiving SYN-ACKs for connections it never opened.
    SynAckReflection,
    /// A UDP service receiving unanswered datagrams from very many sources.
    UdpFlood,
    /// One source connecting to one service at regular intervals (C2 check-ins).
    Beacon,
    /// One source opening very many answered connections to one service (password
    /// guessing).
    BruteForce,
    /// One source probing many ports of one destination.
    PortScan,
    /// One source probing one port (or echo) of many destinations.
    AddressScan,
    /// A host receiving unsolicited UDP responses from many amplifying services.
    UdpReflection,
}

impl AlertKind {
    /// The name in alerts.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Anomaly => "anomaly",
            AlertKind::FragAmbiguity => "frag_ambiguity",
            AlertKind::FragOverlap => "frag_overlap",
            AlertKind::FragFlood => "frag_flood",
            AlertKind::FragTooLarge => "frag_too_large",
            AlertKind::SynFlood => "syn_flood",
            AlertKind::SynAckReflection => "syn_ack_reflection",
            AlertKind::UdpFlood => "udp_flood",
            AlertKind::Beacon => "beacon",
            AlertKind::BruteForce => "brute_force",
            AlertKind::PortScan => "port_scan",
            AlertKind::AddressScan => "address_scan",
            AlertKind::UdpReflection => "udp_reflection",
        }
    }
}

/// The key an alert is about.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertGranularity {
    /// A window key: (src, dst, protocol); with a destination port, a service channel
    /// (the connection-pattern rules, [`crate::connections`]).
    #[default]
    Channel,
    /// A window key: src.
    Host,
    /// A window key: (dst, dst port, protocol).
    Service,
    /// Reassembly, port scans: a source/destination pair (the source omitted when
    /// several sent).
    Pair,
}

impl AlertGranularity {
    /// The name in alerts.
    pub fn name(self) -> &'static str {
        match self {
            AlertGranularity::Channel => "channel",
            AlertGranularity::Host => "host",
            AlertGranularity::Service => "service",
            AlertGranularity::Pair => "pair",
        }
    }
}

impl From<Granularity> for AlertGranularity {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::Channel => AlertGranularity::Channel,
            Granularity::Host => AlertGranularity::Host,
            Granularity::Service => AlertGranularity::Service,
        }
    }
}

/// One alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Event time of the alert (ns): the end of the window or bucket that raised it, when
    /// it became known.
    pub ts_ns: u64,
    /// What raised it.
    pub kind: AlertKind,
    /// Severity.
    pub severity: Severity,
    /// Score (anomaly: weighted mean deviation; reassembly: event count).
    pub score: f64,
    /// The threshold the score reached.
    pub threshold: f64,
    /// The key's granularity.
    pub granularity: AlertGranularity,
    /// Source address, if the key has one.
    pub src: Option<Addr>,
    /// Destination address, if the key has one.
    pub dst: Option<Addr>,
    /// Destination port, if the key has one.
    pub dst_port: Option<u16>,
    /// IP protocol, if the key has one.
    pub protocol: Option<u8>,
    /// UTC hour of day of the baseline profile, when hour-of-day profiles are on.
    pub hour_of_day: Option<u8>,
    /// Window (or bucket) start (ns).
    pub window_start_ns: u64,
    /// Window (or bucket) end (ns).
    pub window_end_ns: u64,
    /// Per-metric parts of the score.
    pub metrics: Vec<AlertMetric>,
    /// One line for a human.
    pub explanation: String,
}

/// One metric of an alert: observed value, baseline, normalized deviation, weight.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertMetric {
    /// Metric name ([`crate::baseline::Metric::name`], or `<event>_events` for reassembly).
    pub name: String,
    /// Observed value.
    pub value: f64,
    /// Baseline mean (0 for reassembly alerts).
    pub baseline_mean: f64,
    /// Baseline standard deviation (0 for reassembly alerts).
    pub baseline_stddev: f64,
    /// Normalized deviation (reassembly: value / threshold).
    pub deviation: f64,
    /// Weight in the score.
    pub weight: f64,
}

impl AlertMetric {
    /// A value a rule without a baseline observed (baseline, deviation and weight 0).
    pub fn observed(name: &str, value: f64) -> Self {
        AlertMetric {
            name: name.to_string(),
            value,
            ..Default::default()
        }
    }
}

impl From<&MetricScore> for AlertMetric {
    fn from(m: &MetricScore) -> Self {
        AlertMetric {
            name: m.metric.name().to_string(),
            value: m.value,
            baseline_mean: m.mean,
            baseline_stddev: m.stddev,
            deviation: m.deviation,
            weight: m.weight,
        }
    }
}

/// The key of an alert in the canonical order (unique per alert).
pub type AlertOrder = (u64, AlertKind, AlertGranularity, Addr, Addr, u16, u8, u8);

impl Alert {
    /// An alert of a rule without a baseline: `score` against a threshold of 1 over
    /// `window_start_ns..ts_ns`, with the severity `config` gives that score. The key
    /// (granularity, addresses, port, protocol), the metrics and the explanation are the
    /// caller's to fill in.
    pub fn of_rule(
        kind: AlertKind,
        (window_start_ns, ts_ns): (u64, u64),
        score: f64,
        config: &crate::baseline::DetectConfig,
    ) -> Alert {
        let severity = config.severity(score, 1.0);
        Alert {
            ts_ns,
            kind,
            severity,
            score,
            threshold: 1.0,
            granularity: AlertGranularity::default(),
            src: None,
            dst: None,
            dst_port: None,
            protocol: None,
            hour_of_day: None,
            window_start_ns,
            window_end_ns: ts_ns,
            metrics: Vec::new(),
            explanation: String::new(),
        }
    }

    /// The canonical output order: time, kind, then key.
    pub fn order_key(&self) -> AlertOrder {
        (
            self.ts_ns,
            self.kind,
            self.granularity,
            self.src.unwrap_or(Addr::UNSPECIFIED),
            self.dst.unwrap_or(Addr::UNSPECIFIED),
            self.dst_port.unwrap_or(0),
            self.protocol.unwrap_or(0),
            self.hour_of_day.unwrap_or(u8::MAX),
        )
    }

    /// A short description of the key: `host 10.0.0.5`, `service 10.0.0.5:80/6`,
    /// `channel 10.0.0.1 -> 10.0.0.5/17` (`channel 10.0.0.1 -> 10.0.0.5:443/6` with a
    /// port), `pair 10.0.0.1 -> 10.0.0.5`.
    pub fn describe_key(&self) -> String {
        let a = |x: Option<Addr>| x.map_or_else(|| "*".to_string(), |a| a.to_string());
        match self.granularity {
            AlertGranularity::Host => format!("host {}", a(self.src)),
            AlertGranularity::Service => format!(
                "service {}:{}/{}",
                a(self.dst),
                self.dst_port.unwrap_or(0),
                self.protocol.unwrap_or(0)
            ),
            AlertGranularity::Channel => match self.dst_port {
                Some(port) => format!(
                    "channel {} -> {}:{}/{}",
                    a(self.src),
                    a(self.dst),
                    port,
                    self.protocol.unwrap_or(0)
                ),
                None => format!(
                    "channel {} -> {}/{}",
                    a(self.src),
                    a(self.dst),
                    self.protocol.unwrap_or(0)
                ),
            },
            AlertGranularity::Pair => format!("pair {} -> {}", a(self.src), a(self.dst)),
        }
    }
}

/// Formats a number for explanations: integers as such, others with 3 significant
/// decimals at most.
pub fn short_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The explanation of an anomaly: the key, then the metrics that weigh most in the score
/// (at most three), e.g. `host 10.0.0.5: syn_packets 4200 vs baseline 12 ± 3 (d=1396)`.
pub fn explain_anomaly(key: &str, parts: &[MetricScore], windows: u64) -> String {
    let mut order: Vec<&MetricScore> = parts.iter().collect();
    order.sort_by(|a, b| {
        (b.weight * b.deviation)
            .total_cmp(&(a.weight * a.deviation))
            .then(a.metric.cmp(&b.metric))
    });
    let mut s = format!("{key}:");
    for (i, p) in order.iter().take(3).enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(&format!(
            " {} {} vs baseline {} ± {} (d={})",
            p.metric.name(),
            short_number(p.value),
            short_number(p.mean),
            short_number(p.stddev),
            short_number(p.deviation)
        ));
    }
    s.push_str(&format!(" [{windows} windows]"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Metric;

    #[test]
    fn explanations() {
        let parts = vec![
            MetricScore {
                metric: Metric::Packets,
                value: 50.0,
                mean: 40.0,
                stddev: 5.0,
                deviation: 2.0,
                weight: 0.2,
            },
            MetricScore {
                metric: Metric::SynPackets,
                value: 4200.0,
                mean: 12.0,
                stddev: 3.0,
                deviation: 1396.0,
                weight: 0.2,
            },
        ];
        assert_eq!(
            explain_anomaly("host 10.0.0.5", &parts, 12),
            "host 10.0.0.5: syn_packets 4200 vs baseline 12 ± 3 (d=1396); \
             packets 50 vs baseline 40 ± 5 (d=2) [12 windows]"
        );
        assert_eq!(short_number(0.12345), "0.123");
        assert_eq!(short_number(2.5), "2.5");
    }
}
