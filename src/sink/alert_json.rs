//! The JSON form of an alert (`alerts.jsonl`), following Suricata EVE's field names
//! where EVE has one (`timestamp` aside: flowtide's `ts`/`ts_ns` as in its other files).

use flowtide_dataflows::alert::{Alert, AlertMetric};
use flowtide_dataflows::time::iso8601;
use serde::Serialize;

/// One line of `alerts.jsonl`.
#[derive(Debug, Serialize)]
pub struct AlertLine {
    /// Event time of the alert (the end of the window or bucket that raised it),
    /// ISO-8601 UTC.
    pub ts: String,
    /// The same, ns since the epoch.
    pub ts_ns: u64,
    /// Always `alert` (EVE).
    pub event_type: &'static str,
    /// `anomaly`, `frag_ambiguity`, `frag_overlap`, `frag_flood`, `frag_too_large`.
    pub kind: &'static str,
    /// `low`, `medium`, `high`.
    pub severity: &'static str,
    /// The score.
    pub score: f64,
    /// The threshold it reached.
    pub threshold: f64,
    /// `channel`, `host`, `service` or `pair`.
    pub granularity: &'static str,
    /// Source address (EVE `src_ip`), when the key has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<String>,
    /// Destination address (EVE `dest_ip`), when the key has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_ip: Option<String>,
    /// Destination port (EVE `dest_port`), for services.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// Protocol name as EVE writes it (`TCP`, `UDP`, `ICMP`, `IPv6-ICMP`, else the number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proto: Option<String>,
    /// IP protocol number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    /// UTC hour of the baseline profile (hour-of-day profiles only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hour_of_day: Option<u8>,
    /// Window (or bucket) start, ns.
    pub window_start_ns: u64,
    /// Window (or bucket) end, ns.
    pub window_end_ns: u64,
    /// Per metric: value, baseline mean and stddev, deviation, weight.
    pub metrics: Vec<AlertMetric>,
    /// One line for a human.
    pub explanation: String,
}

/// The EVE name of an IP protocol.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "ICMP".to_string(),
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        58 => "IPv6-ICMP".to_string(),
        132 => "SCTP".to_string(),
        n => n.to_string(),
    }
}

impl From<&Alert> for AlertLine {
    fn from(a: &Alert) -> Self {
        AlertLine {
            ts: iso8601(a.ts_ns),
            ts_ns: a.ts_ns,
            event_type: "alert",
            kind: a.kind.name(),
            severity: a.severity.name(),
            score: a.score,
            threshold: a.threshold,
            granularity: a.granularity.name(),
            src_ip: a.src.map(|s| s.to_string()),
            dest_ip: a.dst.map(|s| s.to_string()),
            dest_port: a.dst_port,
            proto: a.protocol.map(proto_name),
            protocol: a.protocol,
            hour_of_day: a.hour_of_day,
            window_start_ns: a.window_start_ns,
            window_end_ns: a.window_end_ns,
            metrics: a.metrics.clone(),
            explanation: a.explanation.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtide_dataflows::alert::{AlertGranularity, AlertKind};
    use flowtide_dataflows::baseline::Severity;
    use flowtide_dataflows::packet::Addr;

    #[test]
    fn eve_field_names() {
        let a = Alert {
            ts_ns: 1_700_000_060_000_000_000,
            kind: AlertKind::Anomaly,
            severity: Severity::High,
            score: 42.5,
            threshold: 4.0,
            granularity: AlertGranularity::Service,
            src: None,
            dst: Some(Addr::from_v4([10, 0, 0, 5])),
            dst_port: Some(80),
            protocol: Some(6),
            hour_of_day: None,
            window_start_ns: 1_700_000_000_000_000_000,
            window_end_ns: 1_700_000_060_000_000_000,
            metrics: vec![AlertMetric {
                name: "syn_packets".into(),
                value: 4200.0,
                baseline_mean: 12.0,
                baseline_stddev: 3.0,
                deviation: 1396.0,
                weight: 0.2,
            }],
            explanation: "service 10.0.0.5:80/6: ...".into(),
        };
        let v = serde_json::to_value(AlertLine::from(&a)).expect("json");
        assert_eq!(v["ts"], "2023-11-14T22:14:20.000000000Z");
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["kind"], "anomaly");
        assert_eq!(v["severity"], "high");
        assert_eq!(v["granularity"], "service");
        assert!(v.get("src_ip").is_none());
        assert_eq!(v["dest_ip"], "10.0.0.5");
        assert_eq!(v["dest_port"], 80);
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["protocol"], 6);
        assert_eq!(v["metrics"][0]["name"], "syn_packets");
        assert_eq!(v["metrics"][0]["baseline_stddev"], 3.0);
        assert_eq!(v["window_end_ns"], 1_700_000_060_000_000_000u64);
    }
}
