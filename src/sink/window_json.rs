//! The JSON form of a window record (`windows.jsonl`).
//!
//! One line per (granularity, key, window) with data. Key fields a granularity does not
//! use are left out (a host line has no `dst_ip`), and so are the distinct counts that do
//! not apply (`distinct_peers` for channels, `distinct_dst_ports` for services). Times are
//! nanoseconds since the Unix epoch, durations milliseconds, sizes bytes; means and
//! standard deviations are computed from exact integer sums, so they are identical
//! whatever the worker count.

use flowtide_dataflows::time::iso8601;
use flowtide_dataflows::window::{Granularity, WindowRecord};
use serde::Serialize;

/// Nanoseconds per millisecond, as a float.
const NS_PER_MS: f64 = 1e6;

/// One line of `windows.jsonl`.
#[derive(Debug, Serialize)]
pub struct WindowLine {
    /// `channel`, `host` or `service`.
    pub granularity: Granularity,
    /// Initiator address (channels, hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Responder address (channels, services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<String>,
    /// Responder port (services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// IP protocol number (channels, services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// Window start, ISO-8601 UTC.
    pub window_start: String,
    /// Window start (inclusive), ns since the epoch.
    pub window_start_ns: u64,
    /// Window end (exclusive), ns since the epoch.
    pub window_end_ns: u64,
    /// True when the input ended before the window did.
    pub partial: bool,
    /// Packets (both directions of the key's flows).
    pub packets: u64,
    /// IP bytes.
    pub bytes: u64,
    /// Flows whose first packet fell in the window.
    pub flows_started: u64,
    /// Flows that ended in the window (FIN/RST, idle or active timeout).
    pub flows_ended: u64,
    /// Mean inter-arrival time within flows (ms).
    pub mean_iat_ms: f64,
    /// Sample standard deviation of inter-arrival times within flows (ms).
    pub stddev_iat_ms: f64,
    /// Mean packet size (bytes).
    pub mean_ps: f64,
    /// Sample standard deviation of packet sizes (bytes).
    pub stddev_ps: f64,
    /// Mean duration of the flows that ended in the window (ms).
    pub mean_ended_duration_ms: f64,
    /// Packets with SYN.
    pub syn_packets: u64,
    /// Packets with CWR.
    pub cwr_packets: u64,
    /// Packets with ECE.
    pub ece_packets: u64,
    /// Packets with URG.
    pub urg_packets: u64,
    /// Packets with ACK.
    pub ack_packets: u64,
    /// Packets with PSH.
    pub psh_packets: u64,
    /// Packets with RST.
    pub rst_packets: u64,
    /// Packets with FIN.
    pub fin_packets: u64,
    /// Distinct peers: responders of a host, initiators of a service (not for channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_peers: Option<u64>,
    /// Distinct destination ports (not for services, which have one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_dst_ports: Option<u64>,
}

impl From<&WindowRecord> for WindowLine {
    fn from(w: &WindowRecord) -> Self {
        use flowtide_dataflows::window::flag_index as f;
        let k = &w.key;
        let s = &w.stats;
        let (src, dst, port_and_protocol) = match k.granularity {
            Granularity::Channel => (true, true, (None, Some(k.protocol))),
            Granularity::Host => (true, false, (None, None)),
            Granularity::Service => (false, true, (Some(k.dport), Some(k.protocol))),
        };
        WindowLine {
            granularity: k.granularity,
            src_ip: src.then(|| k.src.to_string()),
            dst_ip: dst.then(|| k.dst.to_string()),
            dst_port: port_and_protocol.0,
            protocol: port_and_protocol.1,
            window_start: iso8601(w.start_ns),
            window_start_ns: w.start_ns,
            window_end_ns: w.end_ns,
            partial: w.partial,
            packets: s.packets,
            bytes: s.bytes,
            flows_started: s.flows_started,
            flows_ended: s.flows_ended,
            mean_iat_ms: s.iat_mean_ns() / NS_PER_MS,
            stddev_iat_ms: s.iat_stddev_ns() / NS_PER_MS,
            mean_ps: s.size_mean(),
            stddev_ps: s.size_stddev(),
            mean_ended_duration_ms: s.ended_duration_mean_ns() / NS_PER_MS,
            syn_packets: s.flags[f::SYN],
            cwr_packets: s.flags[f::CWR],
            ece_packets: s.flags[f::ECE],
            urg_packets: s.flags[f::URG],
            ack_packets: s.flags[f::ACK],
            psh_packets: s.flags[f::PSH],
            rst_packets: s.flags[f::RST],
            fin_packets: s.flags[f::FIN],
            distinct_peers: (k.granularity != Granularity::Channel).then_some(s.peers.len() as u64),
            distinct_dst_ports: (k.granularity != Granularity::Service)
                .then_some(s.dst_ports.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtide_dataflows::packet::Addr;
    use flowtide_dataflows::window::{flag_index, WindowKey, WindowStats};

    fn record(granularity: Granularity) -> WindowRecord {
        let mut flags = [0u64; 8];
        for (i, f) in flags.iter_mut().enumerate() {
            *f = 10 + i as u64;
        }
        WindowRecord {
            key: WindowKey::of_flow(
                granularity,
                Addr::from_v4([10, 0, 0, 1]),
                Addr::from_v4([192, 0, 2, 7]),
                443,
                6,
            ),
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_060_000_000_000,
            partial: true,
            stats: WindowStats {
                packets: 3,
                bytes: 300,
                size_sumsq: 99 * 99 + 100 * 100 + 101 * 101,
                iat_count: 2,
                iat_sum_ns: 4_000_000,
                iat_sumsq: 1_000_000u128.pow(2) + 3_000_000u128.pow(2),
                flags,
                flows_started: 1,
                flows_ended: 2,
                ended_duration_sum_ns: 5_000_000,
                peers: vec![Addr::from_v4([192, 0, 2, 7])],
                dst_ports: vec![443],
            },
        }
    }

    fn json(g: Granularity) -> serde_json::Value {
        serde_json::to_value(WindowLine::from(&record(g))).expect("serializes")
    }

    #[test]
    fn key_fields_per_granularity() {
        let keys = |v: &serde_json::Value| -> Vec<&str> {
            ["src_ip", "dst_ip", "dst_port", "protocol"]
                .into_iter()
                .filter(|k| v.get(k).is_some())
                .collect()
        };
        let channel = json(Granularity::Channel);
        let host = json(Granularity::Host);
        let service = json(Granularity::Service);
        assert_eq!(keys(&channel), ["src_ip", "dst_ip", "protocol"]);
        assert_eq!(keys(&host), ["src_ip"]);
        assert_eq!(keys(&service), ["dst_ip", "dst_port", "protocol"]);
        assert_eq!(channel["granularity"], "channel");
        assert_eq!(host["src_ip"], "10.0.0.1");
        assert_eq!(service["dst_ip"], "192.0.2.7");
        assert_eq!(service["dst_port"], 443);
        assert_eq!(channel["protocol"], 6);
        assert!(channel.get("distinct_peers").is_none());
        assert_eq!(channel["distinct_dst_ports"], 1);
        assert_eq!(host["distinct_peers"], 1);
        assert!(service.get("distinct_dst_ports").is_none());
    }

    #[test]
    fn statistics_and_times() {
        let v = json(Granularity::Host);
        assert_eq!(v["window_start"], "2023-11-14T22:13:20.000000000Z");
        assert_eq!(v["window_start_ns"], 1_700_000_000_000_000_000u64);
        assert_eq!(v["window_end_ns"], 1_700_000_060_000_000_000u64);
        assert_eq!(v["partial"], true);
        assert_eq!(
            (v["packets"].as_u64(), v["bytes"].as_u64()),
            (Some(3), Some(300))
        );
        assert_eq!(
            (v["flows_started"].as_u64(), v["flows_ended"].as_u64()),
            (Some(1), Some(2))
        );
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        assert_eq!(f("mean_ps"), 100.0);
        assert!((f("stddev_ps") - 1.0).abs() < 1e-12);
        assert_eq!(f("mean_iat_ms"), 2.0);
        assert!((f("stddev_iat_ms") - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(f("mean_ended_duration_ms"), 2.5);
    }

    #[test]
    fn flag_fields_follow_the_model_names() {
        let v = json(Granularity::Channel);
        for (i, name) in flag_index::NAMES.iter().enumerate() {
            assert_eq!(
                v[format!("{name}_packets")].as_u64(),
                Some(10 + i as u64),
                "{name}"
            );
        }
        let fields = v.as_object().map_or(0, |o| o.len());
        assert_eq!(fields, 1 + 3 + 4 + 4 + 5 + 8 + 1, "{v}");
    }
}
