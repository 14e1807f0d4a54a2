//! A rule that needs no history: services flooded with half-open TCP connections.
//!
//! Baselines need a learning phase, so a capture shorter than it (or a flood against a
//! service never seen before, on a network whose population baseline is noisy) raises
//! no anomaly. A SYN flood is recognisable without history: a service window in which
//! at least `syn_flood_min` packets sent to the service carry SYN and they are at least
//! [`SYN_FLOOD_SHARE`] of all packets sent to it — connection attempts only, no
//! handshake completing, no data. A flash crowd of real clients completes its
//! handshakes and sends data (few SYNs per packet); a port scan spreads its SYNs over
//! many services.

use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

use crate::alert::{short_number, Alert, AlertKind, AlertMetric};
use crate::baseline::{DetectConfig, SYN_FLOOD_SHARE};
use crate::window::{flag_index, Granularity, WindowRecord};

/// The alert for one window, if it shows a SYN flood.
pub fn syn_flood_alert(config: &DetectConfig, w: &WindowRecord) -> Option<Alert> {
    let min = config.syn_flood_min;
    if min == 0 || w.partial || w.key.granularity != Granularity::Service || w.key.protocol != 6 {
        return None;
    }
    let syn = w.stats.flags[flag_index::SYN];
    let packets = w.stats.packets;
    if syn < min || (syn as f64) < SYN_FLOOD_SHARE * packets as f64 {
        return None;
    }
    let score = syn as f64 / min as f64;
    let observed = |name: &str, value: u64| AlertMetric {
        name: name.to_string(),
        value: value as f64,
        baseline_mean: 0.0,
        baseline_stddev: 0.0,
        deviation: 0.0,
        weight: 0.0,
    };
    let mut alert = Alert {
        ts_ns: w.end_ns,
        kind: AlertKind::SynFlood,
        severity: config.severity(score, 1.0),
        score,
        threshold: 1.0,
        granularity: w.key.granularity.into(),
        src: None,
        dst: Some(w.key.dst),
        dst_port: Some(w.key.dport),
        protocol: Some(w.key.protocol),
        hour_of_day: None,
        window_start_ns: w.start_ns,
        window_end_ns: w.end_ns,
        metrics: vec![
            observed("syn_packets", syn),
            observed("packets", packets),
            observed("flows_started", w.stats.flows_started),
            observed("distinct_peers", w.stats.peers.len() as u64),
        ],
        explanation: String::new(),
    };
    alert.explanation = format!(
        "{}: {} SYNs in {} s, {}% of the {} packets sent to it, from {} sources: \
         half-open connections (threshold {} SYNs)",
        alert.describe_key(),
        syn,
        short_number(w.end_ns.saturating_sub(w.start_ns) as f64 / 1e9),
        short_number((100.0 * syn as f64 / packets.max(1) as f64).round()),
        packets,
        w.stats.peers.len(),
        min
    );
    Some(alert)
}

/// SYN-flood alerts from finished windows.
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::operators::SynFloodAlerts;
/// use flowtide_dataflows::packet::Addr;
/// use flowtide_dataflows::window::{Granularity, WindowKey, WindowRecord, WindowStats};
/// use timely::dataflow::operators::{Inspect, ToStream};
///
/// let key = WindowKey { granularity: Granularity::Service, dst: Addr::from_v4([10, 0, 0, 9]),
///     dport: 80, protocol: 6, ..Default::default() };
/// let window = move |syn: u64, packets: u64| {
///     let mut flags = [0; 8];
///     flags[0] = syn;
///     WindowRecord { key, start_ns: 0, end_ns: 60_000_000_000, partial: false,
///         stats: WindowStats { packets, flags, ..Default::default() } }
/// };
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::example(move |scope| {
///     // A flood (5000 SYNs, nothing else) and a busy service (5000 SYNs among 50 000
///     // packets of completed connections).
///     vec![window(5000, 5000), window(5000, 50_000)]
///         .to_stream(scope)
///         .syn_flood_alerts(&DetectConfig::default())
///         .inspect(move |a| sink.lock().unwrap().push(a.clone()));
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].kind.name(), "syn_flood");
/// assert_eq!(alerts[0].metrics[0].value, 5000.0);
/// ```
pub trait SynFloodAlerts<'scope> {
    /// One `syn_flood` alert per finished TCP service window that shows a SYN flood, at
    /// the window's record time.
    fn syn_flood_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert>;
}

impl<'scope> SynFloodAlerts<'scope> for StreamVec<'scope, u64, WindowRecord> {
    fn syn_flood_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert> {
        let config = config.clone();
        self.flat_map(move |w| syn_flood_alert(&config, &w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;
    use crate::window::{WindowKey, WindowStats};

    fn window(g: Granularity, protocol: u8, syn: u64, packets: u64) -> WindowRecord {
        let mut flags = [0; 8];
        flags[flag_index::SYN] = syn;
        WindowRecord {
            key: WindowKey {
                granularity: g,
                dst: Addr::from_v4([10, 0, 0, 9]),
                dport: 443,
                protocol,
                ..Default::default()
            },
            start_ns: 0,
            end_ns: 60_000_000_000,
            partial: false,
            stats: WindowStats {
                packets,
                flags,
                ..Default::default()
            },
        }
    }

    #[test]
    fn only_syn_dominated_tcp_service_windows_over_the_minimum() {
        let c = DetectConfig::default();
        let alert = syn_flood_alert(&c, &window(Granularity::Service, 6, 1000, 1250));
        let alert = alert.expect("1000 SYNs, 80% of the packets");
        assert!(alert
            .explanation
            .starts_with("service 10.0.0.9:443/6: 1000 SYNs in 60 s, 80% "));
        assert_eq!(alert.dst_port, Some(443));
        for (w, why) in [
            (
                window(Granularity::Service, 6, 999, 999),
                "below the minimum",
            ),
            (window(Granularity::Service, 6, 1000, 1251), "under 80% SYN"),
            (window(Granularity::Host, 6, 5000, 5000), "not a service"),
            (window(Granularity::Service, 17, 5000, 5000), "not TCP"),
        ] {
            assert!(syn_flood_alert(&c, &w).is_none(), "{why}");
        }
        let mut partial = window(Granularity::Service, 6, 5000, 5000);
        partial.partial = true;
        assert!(syn_flood_alert(&c, &partial).is_none());
        let off = DetectConfig {
            syn_flood_min: 0,
            ..DetectConfig::default()
        };
        assert!(syn_flood_alert(&off, &window(Granularity::Service, 6, 5000, 5000)).is_none());
    }
}
