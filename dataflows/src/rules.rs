//! Rules that need no history: attacks recognisable from one window's statistics alone.
//!
//! Baselines need a learning phase, so a capture shorter than it (or an attack on a key
//! never seen before, on a network whose population baseline is noisy) raises no
//! anomaly. Some attacks have a shape that normal traffic does not take, whatever the
//! network:
//!
//! - **SYN flood** ([`syn_flood`]): a service window in which at least
//!   [`DetectConfig::syn_flood_min`] packets sent to the service carry SYN and they are
//!   at least [`FLOOD_SHARE`] of all its packets — connection attempts only, no handshake
//!   completing, no data. A flash crowd of real clients completes its handshakes and sends
//!   data (few SYNs per packet); a port scan spreads its SYNs over many services.
//! - **SYN-ACK reflection** ([`syn_ack_reflection`]): a host window in which at least
//!   [`DetectConfig::syn_ack_reflection_min`] packets carry SYN, they are at least
//!   [`FLOOD_SHARE`] of the window's packets, and at least [`FLOOD_SHARE`] of them also
//!   carry ACK: the host receives SYN-ACKs for connections it never opened (a flow's
//!   initiator is the receiver of its SYN-ACK, so these flows are the victim's). A host
//!   that opens connections sends SYNs without ACK and then data; a SYN flooder's SYNs
//!   carry no ACK.
//! - **Distributed UDP flood** ([`udp_flood`]): a UDP service window with at least
//!   [`DetectConfig::udp_flood_min_sources`] distinct sources, each sending about one
//!   datagram that nobody answers (at most [`UDP_FLOOD_PACKETS_PER_FLOW`] packets per
//!   flow): reflection/amplification (responses to requests the victim never sent) or a
//!   spoofed-source flood. Real UDP services answer their clients (two packets or more
//!   per flow), and a thousand distinct clients a minute on one port is rare outside
//!   public resolvers.
//!
//! The rules judge partial windows too (those cut by the start or end of the input):
//! their counts are lower bounds of the whole window's, so a partial window over a
//! minimum is over it in full.

use crate::alert::{short_number, Alert, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::packet::proto;
use crate::window::{flag_index, Granularity, WindowRecord};

/// The share of SYN among a window's packets (and of ACK among its SYNs, for SYN-ACK
/// reflection) that a flood rule requires.
pub const FLOOD_SHARE: f64 = 0.8;

/// At most this many packets per flow in a distributed UDP flood: one datagram per source,
/// with room for a few repeats, and no answers.
pub const UDP_FLOOD_PACKETS_PER_FLOW: f64 = 1.5;

/// Every rule's alert for one window.
pub fn rule_alerts(config: &DetectConfig, w: &WindowRecord) -> impl Iterator<Item = Alert> {
    [
        syn_flood(config, w),
        syn_ack_reflection(config, w),
        udp_flood(config, w),
    ]
    .into_iter()
    .flatten()
}

/// A `syn_flood` alert, if the TCP service window shows one.
pub fn syn_flood(config: &DetectConfig, w: &WindowRecord) -> Option<Alert> {
    let min = config.syn_flood_min;
    if min == 0 || w.key.granularity != Granularity::Service || w.key.protocol != proto::TCP {
        return None;
    }
    let syn = w.stats.flags[flag_index::SYN];
    let packets = w.stats.packets;
    if syn < min || (syn as f64) < FLOOD_SHARE * packets as f64 {
        return None;
    }
    let mut alert = rule_alert(w, AlertKind::SynFlood, syn as f64 / min as f64, config);
    alert.metrics = vec![
        observed("syn_packets", syn),
        observed("packets", packets),
        observed("flows_started", w.stats.flows_started),
        observed("distinct_peers", w.stats.peers.len() as u64),
    ];
    alert.explanation = format!(
        "{}: {} SYNs in {} s, {}% of the {} packets sent to it, from {} sources: \
         half-open connections (threshold {} SYNs)",
        alert.describe_key(),
        syn,
        seconds(w),
        percent(syn, packets),
        packets,
        w.stats.peers.len(),
        min
    );
    Some(alert)
}

/// A `syn_ack_reflection` alert, if the host window shows one.
pub fn syn_ack_reflection(config: &DetectConfig, w: &WindowRecord) -> Option<Alert> {
    let min = config.syn_ack_reflection_min;
    if min == 0 || w.key.granularity != Granularity::Host {
        return None;
    }
    let syn = w.stats.flags[flag_index::SYN];
    let ack = w.stats.flags[flag_index::ACK];
    let packets = w.stats.packets;
    if syn < min
        || (syn as f64) < FLOOD_SHARE * packets as f64
        || (ack as f64) < FLOOD_SHARE * syn as f64
    {
        return None;
    }
    let score = syn as f64 / min as f64;
    let mut alert = rule_alert(w, AlertKind::SynAckReflection, score, config);
    alert.metrics = vec![
        observed("syn_packets", syn),
        observed("ack_packets", ack),
        observed("packets", packets),
        observed("flows_started", w.stats.flows_started),
        observed("distinct_peers", w.stats.peers.len() as u64),
    ];
    alert.explanation = format!(
        "{}: received {} SYN-ACKs in {} s ({}% of its {} packets) from {} sources for \
         connections it never opened: reflected SYN-ACK flood (threshold {})",
        alert.describe_key(),
        syn.min(ack),
        seconds(w),
        percent(syn, packets),
        packets,
        w.stats.peers.len(),
        min
    );
    Some(alert)
}

/// A `udp_flood` alert, if the UDP service window shows a distributed flood.
pub fn udp_flood(config: &DetectConfig, w: &WindowRecord) -> Option<Alert> {
    let min = config.udp_flood_min_sources;
    if min == 0 || w.key.granularity != Granularity::Service || w.key.protocol != proto::UDP {
        return None;
    }
    let sources = w.stats.peers.len() as u64;
    let flows = w.stats.flows_started;
    let packets = w.stats.packets;
    if sources < min || flows < min || packets as f64 > UDP_FLOOD_PACKETS_PER_FLOW * flows as f64 {
        return None;
    }
    let mut alert = rule_alert(w, AlertKind::UdpFlood, sources as f64 / min as f64, config);
    alert.metrics = vec![
        observed("distinct_peers", sources),
        observed("flows_started", flows),
        observed("packets", packets),
        observed("bytes", w.stats.bytes),
    ];
    alert.explanation = format!(
        "{}: {} datagrams ({} bytes) in {} s from {} distinct sources, {} per flow and \
         unanswered: reflected or spoofed-source UDP flood (threshold {} sources)",
        alert.describe_key(),
        packets,
        w.stats.bytes,
        seconds(w),
        sources,
        short_number((packets as f64 / flows.max(1) as f64 * 100.0).round() / 100.0),
        min
    );
    Some(alert)
}

/// An alert about the window's key, without metrics or explanation yet.
fn rule_alert(w: &WindowRecord, kind: AlertKind, score: f64, config: &DetectConfig) -> Alert {
    let (src, dst, dst_port, protocol) = match w.key.granularity {
        Granularity::Host => (Some(w.key.src), None, None, None),
        Granularity::Service => (
            None,
            Some(w.key.dst),
            Some(w.key.dport),
            Some(w.key.protocol),
        ),
        Granularity::Channel => (Some(w.key.src), Some(w.key.dst), None, Some(w.key.protocol)),
    };
    Alert {
        granularity: w.key.granularity.into(),
        src,
        dst,
        dst_port,
        protocol,
        ..Alert::of_rule(kind, (w.start_ns, w.end_ns), score, config)
    }
}

/// A count observed in the window (rules have no baseline).
fn observed(name: &str, value: u64) -> AlertMetric {
    AlertMetric::observed(name, value as f64)
}

fn seconds(w: &WindowRecord) -> String {
    short_number(w.end_ns.saturating_sub(w.start_ns) as f64 / 1e9)
}

fn percent(part: u64, whole: u64) -> String {
    short_number((100.0 * part as f64 / whole.max(1) as f64).round())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;
    use crate::window::{WindowKey, WindowStats};

    fn window(g: Granularity, protocol: u8, stats: WindowStats) -> WindowRecord {
        WindowRecord {
            key: WindowKey {
                granularity: g,
                src: Addr::from_v4([10, 0, 0, 7]),
                dst: Addr::from_v4([10, 0, 0, 9]),
                dport: 443,
                protocol,
            },
            start_ns: 0,
            end_ns: 60_000_000_000,
            partial: false,
            stats,
        }
    }

    fn flags(syn: u64, ack: u64, packets: u64) -> WindowStats {
        let mut f = [0; 8];
        f[flag_index::SYN] = syn;
        f[flag_index::ACK] = ack;
        WindowStats {
            packets,
            flags: f,
            ..Default::default()
        }
    }

    fn sources(n: u32, flows: u64, packets: u64) -> WindowStats {
        WindowStats {
            packets,
            flows_started: flows,
            peers: (0..n).map(|i| Addr::from_v4(i.to_be_bytes())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn syn_flood_needs_syn_dominated_tcp_service_windows_over_the_minimum() {
        let c = DetectConfig::default();
        let s = |syn, packets| flags(syn, 0, packets);
        let alert = syn_flood(&c, &window(Granularity::Service, 6, s(1000, 1250)));
        let alert = alert.expect("1000 SYNs, 80% of the packets");
        assert!(alert
            .explanation
            .starts_with("service 10.0.0.9:443/6: 1000 SYNs in 60 s, 80% "));
        assert_eq!(alert.dst_port, Some(443));
        for (w, why) in [
            (
                window(Granularity::Service, 6, s(999, 999)),
                "below the minimum",
            ),
            (
                window(Granularity::Service, 6, s(1000, 1251)),
                "under 80% SYN",
            ),
            (window(Granularity::Host, 6, s(5000, 5000)), "not a service"),
            (window(Granularity::Service, 17, s(5000, 5000)), "not TCP"),
        ] {
            assert!(syn_flood(&c, &w).is_none(), "{why}");
        }
        let mut partial = window(Granularity::Service, 6, s(5000, 5000));
        partial.partial = true;
        assert!(
            syn_flood(&c, &partial).is_some(),
            "a lower bound over the minimum"
        );
        let off = DetectConfig {
            syn_flood_min: 0,
            ..DetectConfig::default()
        };
        assert!(syn_flood(&off, &window(Granularity::Service, 6, s(5000, 5000))).is_none());
    }

    #[test]
    fn syn_ack_reflection_needs_syn_acks_only() {
        let c = DetectConfig::default();
        let host = |syn, ack, packets| window(Granularity::Host, 0, flags(syn, ack, packets));
        let alert = syn_ack_reflection(&c, &host(6651, 6651, 6651)).expect("reflection");
        assert_eq!(
            (alert.src, alert.dst),
            (Some(Addr::from_v4([10, 0, 0, 7])), None)
        );
        assert_eq!(alert.kind.name(), "syn_ack_reflection");
        assert!(alert.explanation.contains("received 6651 SYN-ACKs"));
        for (w, why) in [
            (host(999, 999, 999), "below the minimum"),
            // A SYN flooder: SYNs without ACK (and the victim's SYN-ACKs in its flows).
            (host(5000, 2500, 5000), "SYNs without ACK"),
            // A busy client: a SYN and SYN-ACK per connection among its data.
            (host(2000, 20_000, 20_000), "handshakes among data"),
            (
                window(Granularity::Service, 6, flags(5000, 5000, 5000)),
                "not a host",
            ),
        ] {
            assert!(syn_ack_reflection(&c, &w).is_none(), "{why}");
        }
    }

    #[test]
    fn udp_flood_needs_many_unanswered_sources() {
        let c = DetectConfig::default();
        let udp = |n, flows, packets| window(Granularity::Service, 17, sources(n, flows, packets));
        let alert = udp_flood(&c, &udp(1397, 1397, 1397)).expect("1397 sources, 1 datagram each");
        assert_eq!(
            (alert.src, alert.dst, alert.dst_port),
            (None, Some(Addr::from_v4([10, 0, 0, 9])), Some(443))
        );
        assert!(alert
            .explanation
            .contains("from 1397 distinct sources, 1 per flow"));
        for (w, why) in [
            (udp(999, 999, 999), "below the minimum"),
            // A busy resolver: every query answered.
            (udp(5000, 5000, 10_000), "answered"),
            (
                window(Granularity::Service, 6, sources(5000, 5000, 5000)),
                "not UDP",
            ),
            (
                window(Granularity::Host, 17, sources(5000, 5000, 5000)),
                "not a service",
            ),
        ] {
            assert!(udp_flood(&c, &w).is_none(), "{why}");
        }
        assert_eq!(rule_alerts(&c, &udp(1397, 1397, 1397)).count(), 1);
    }
}
