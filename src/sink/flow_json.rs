//! The JSON and CSV form of a flow record (`flows.jsonl`, `flows.csv`).
//!
//! Field names and units follow NFStream wherever NFStream has the feature
//! (`src_ip`, `bidirectional_packets`, `src2dst_mean_piat_ms`, `dst2src_syn_packets`, ...;
//! times in milliseconds since the Unix epoch, packet sizes in IP bytes, i.e. NFStream's
//! `accounting_mode=1`), so existing pipelines read flowtide's output unchanged. Where
//! NFStream rounds to whole milliseconds, flowtide keeps nanosecond precision (durations
//! and inter-arrival statistics are fractional milliseconds). Standard deviations are
//! sample standard deviations, as NFStream's. flowtide adds the encapsulation context,
//! frame and payload bytes, fragment counts, exact nanosecond times and the end reason.
//! The CSV has the same columns in the same order as the JSON fields.

use flowtide_dataflows::flow::FlowRecord;
use flowtide_dataflows::packet::AddrText;
use flowtide_dataflows::time::Iso8601;
use serde::Serialize;

const NS_PER_MS: u64 = 1_000_000;

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// One line of `flows.jsonl` (one row of `flows.csv`).
#[derive(Debug, Serialize)]
pub struct FlowLine {
    /// First packet, ISO-8601 UTC.
    pub ts: Iso8601,
    /// Source address (the TCP initiator when seen, else the first sender).
    pub src_ip: AddrText,
    /// Source port (ICMP echo identifier, or 0).
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: AddrText,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// Outer VLAN id (0 = none).
    pub vlan_id: u16,
    /// Inner VLAN id of a QinQ stack (0 = none).
    pub inner_vlan_id: u16,
    /// Innermost tunnel kind (`none`, `gre`, `vxlan`, `gtpu`, ...).
    pub tunnel: &'static str,
    /// Tunnel id (GRE key, VNI, ERSPAN session; 0 for per-direction ids), 0 if none.
    pub tunnel_id: u32,
    /// Digest of the outer layers (distinguishes tunnel endpoints), 0 if untunnelled.
    pub tunnel_outer: u32,
    /// First packet (both directions), ms since the epoch (0 if none).
    pub bidirectional_first_seen_ms: u64,
    /// Last packet (both directions), ms since the epoch (0 if none).
    pub bidirectional_last_seen_ms: u64,
    /// Last minus first packet (both directions), ms (ns precision).
    pub bidirectional_duration_ms: f64,
    /// Packets (both directions); a reassembled datagram counts once.
    pub bidirectional_packets: u64,
    /// IP bytes (both directions).
    pub bidirectional_bytes: u64,
    /// First packet (source → destination), ms since the epoch (0 if none).
    pub src2dst_first_seen_ms: u64,
    /// Last packet (source → destination), ms since the epoch (0 if none).
    pub src2dst_last_seen_ms: u64,
    /// Last minus first packet (source → destination), ms (ns precision).
    pub src2dst_duration_ms: f64,
    /// Packets (source → destination); a reassembled datagram counts once.
    pub src2dst_packets: u64,
    /// IP bytes (source → destination).
    pub src2dst_bytes: u64,
    /// First packet (destination → source), ms since the epoch (0 if none).
    pub dst2src_first_seen_ms: u64,
    /// Last packet (destination → source), ms since the epoch (0 if none).
    pub dst2src_last_seen_ms: u64,
    /// Last minus first packet (destination → source), ms (ns precision).
    pub dst2src_duration_ms: f64,
    /// Packets (destination → source); a reassembled datagram counts once.
    pub dst2src_packets: u64,
    /// IP bytes (destination → source).
    pub dst2src_bytes: u64,
    /// Smallest IP packet size (both directions).
    pub bidirectional_min_ps: u32,
    /// Mean IP packet size (both directions).
    pub bidirectional_mean_ps: f64,
    /// Sample standard deviation of IP packet sizes (both directions).
    pub bidirectional_stddev_ps: f64,
    /// Largest IP packet size (both directions).
    pub bidirectional_max_ps: u32,
    /// Smallest IP packet size (source → destination).
    pub src2dst_min_ps: u32,
    /// Mean IP packet size (source → destination).
    pub src2dst_mean_ps: f64,
    /// Sample standard deviation of IP packet sizes (source → destination).
    pub src2dst_stddev_ps: f64,
    /// Largest IP packet size (source → destination).
    pub src2dst_max_ps: u32,
    /// Smallest IP packet size (destination → source).
    pub dst2src_min_ps: u32,
    /// Mean IP packet size (destination → source).
    pub dst2src_mean_ps: f64,
    /// Sample standard deviation of IP packet sizes (destination → source).
    pub dst2src_stddev_ps: f64,
    /// Largest IP packet size (destination → source).
    pub dst2src_max_ps: u32,
    /// Smallest packet inter-arrival time (both directions), ms.
    pub bidirectional_min_piat_ms: f64,
    /// Mean packet inter-arrival time (both directions), ms.
    pub bidirectional_mean_piat_ms: f64,
    /// Sample standard deviation of inter-arrival times (both directions), ms.
    pub bidirectional_stddev_piat_ms: f64,
    /// Largest packet inter-arrival time (both directions), ms.
    pub bidirectional_max_piat_ms: f64,
    /// Smallest packet inter-arrival time (source → destination), ms.
    pub src2dst_min_piat_ms: f64,
    /// Mean packet inter-arrival time (source → destination), ms.
    pub src2dst_mean_piat_ms: f64,
    /// Sample standard deviation of inter-arrival times (source → destination), ms.
    pub src2dst_stddev_piat_ms: f64,
    /// Largest packet inter-arrival time (source → destination), ms.
    pub src2dst_max_piat_ms: f64,
    /// Smallest packet inter-arrival time (destination → source), ms.
    pub dst2src_min_piat_ms: f64,
    /// Mean packet inter-arrival time (destination → source), ms.
    pub dst2src_mean_piat_ms: f64,
    /// Sample standard deviation of inter-arrival times (destination → source), ms.
    pub dst2src_stddev_piat_ms: f64,
    /// Largest packet inter-arrival time (destination → source), ms.
    pub dst2src_max_piat_ms: f64,
    /// Packets with SYN (both directions).
    pub bidirectional_syn_packets: u64,
    /// Packets with CWR (both directions).
    pub bidirectional_cwr_packets: u64,
    /// Packets with ECE (both directions).
    pub bidirectional_ece_packets: u64,
    /// Packets with URG (both directions).
    pub bidirectional_urg_packets: u64,
    /// Packets with ACK (both directions).
    pub bidirectional_ack_packets: u64,
    /// Packets with PSH (both directions).
    pub bidirectional_psh_packets: u64,
    /// Packets with RST (both directions).
    pub bidirectional_rst_packets: u64,
    /// Packets with FIN (both directions).
    pub bidirectional_fin_packets: u64,
    /// Packets with SYN (source → destination).
    pub src2dst_syn_packets: u64,
    /// Packets with CWR (source → destination).
    pub src2dst_cwr_packets: u64,
    /// Packets with ECE (source → destination).
    pub src2dst_ece_packets: u64,
    /// Packets with URG (source → destination).
    pub src2dst_urg_packets: u64,
    /// Packets with ACK (source → destination).
    pub src2dst_ack_packets: u64,
    /// Packets with PSH (source → destination).
    pub src2dst_psh_packets: u64,
    /// Packets with RST (source → destination).
    pub src2dst_rst_packets: u64,
    /// Packets with FIN (source → destination).
    pub src2dst_fin_packets: u64,
    /// Packets with SYN (destination → source).
    pub dst2src_syn_packets: u64,
    /// Packets with CWR (destination → source).
    pub dst2src_cwr_packets: u64,
    /// Packets with ECE (destination → source).
    pub dst2src_ece_packets: u64,
    /// Packets with URG (destination → source).
    pub dst2src_urg_packets: u64,
    /// Packets with ACK (destination → source).
    pub dst2src_ack_packets: u64,
    /// Packets with PSH (destination → source).
    pub dst2src_psh_packets: u64,
    /// Packets with RST (destination → source).
    pub dst2src_rst_packets: u64,
    /// Packets with FIN (destination → source).
    pub dst2src_fin_packets: u64,
    /// Bytes on the wire (both directions).
    pub bidirectional_frame_bytes: u64,
    /// Transport payload bytes (both directions).
    pub bidirectional_payload_bytes: u64,
    /// IP fragments reassembled into this direction's packets (both directions).
    pub bidirectional_fragments: u32,
    /// Bytes on the wire (source → destination).
    pub src2dst_frame_bytes: u64,
    /// Transport payload bytes (source → destination).
    pub src2dst_payload_bytes: u64,
    /// IP fragments reassembled into this direction's packets (source → destination).
    pub src2dst_fragments: u32,
    /// Bytes on the wire (destination → source).
    pub dst2src_frame_bytes: u64,
    /// Transport payload bytes (destination → source).
    pub dst2src_payload_bytes: u64,
    /// IP fragments reassembled into this direction's packets (destination → source).
    pub dst2src_fragments: u32,
    /// First packet time, ns since the epoch.
    pub first_ns: u64,
    /// Last packet time, ns since the epoch.
    pub last_ns: u64,
    /// When the flow was known to be over (ns; `null` at end of input).
    pub end_ns: Option<u64>,
    /// `idle`, `active`, `fin`, `rst` or `end_of_input`.
    pub end_reason: &'static str,
    /// The flow continues the previous record of its 5-tuple, which ended `active`.
    pub continued: bool,
}

impl From<&FlowRecord> for FlowLine {
    fn from(f: &FlowRecord) -> Self {
        let ctx = f.ctx();
        let b = &f.bidirectional();
        let s = &f.src2dst;
        let d = &f.dst2src;
        FlowLine {
            ts: Iso8601::of(f.first_ns),
            src_ip: f.src.text(),
            src_port: f.sport,
            dst_ip: f.dst.text(),
            dst_port: f.dport,
            protocol: f.key.protocol,
            ip_version: f.ip_version,
            vlan_id: ctx.vlan[0],
            inner_vlan_id: ctx.vlan[1],
            tunnel: ctx.tunnel.name(),
            tunnel_id: ctx.tunnel_id,
            tunnel_outer: ctx.outer,
            bidirectional_first_seen_ms: b.first_ns / NS_PER_MS,
            bidirectional_last_seen_ms: b.last_ns / NS_PER_MS,
            bidirectional_duration_ms: ms(b.duration_ns()),
            bidirectional_packets: b.packets,
            bidirectional_bytes: b.bytes,
            src2dst_first_seen_ms: s.first_ns / NS_PER_MS,
            src2dst_last_seen_ms: s.last_ns / NS_PER_MS,
            src2dst_duration_ms: ms(s.duration_ns()),
            src2dst_packets: s.packets,
            src2dst_bytes: s.bytes,
            dst2src_first_seen_ms: d.first_ns / NS_PER_MS,
            dst2src_last_seen_ms: d.last_ns / NS_PER_MS,
            dst2src_duration_ms: ms(d.duration_ns()),
            dst2src_packets: d.packets,
            dst2src_bytes: d.bytes,
            bidirectional_min_ps: b.size_min,
            bidirectional_mean_ps: b.size_mean(),
            bidirectional_stddev_ps: b.size_stddev(),
            bidirectional_max_ps: b.size_max,
            src2dst_min_ps: s.size_min,
            src2dst_mean_ps: s.size_mean(),
            src2dst_stddev_ps: s.size_stddev(),
            src2dst_max_ps: s.size_max,
            dst2src_min_ps: d.size_min,
            dst2src_mean_ps: d.size_mean(),
            dst2src_stddev_ps: d.size_stddev(),
            dst2src_max_ps: d.size_max,
            bidirectional_min_piat_ms: ms(b.iat_min_ns()),
            bidirectional_mean_piat_ms: b.iat_mean_ns() / 1e6,
            bidirectional_stddev_piat_ms: b.iat_stddev_ns() / 1e6,
            bidirectional_max_piat_ms: ms(b.iat.max_ns),
            src2dst_min_piat_ms: ms(s.iat_min_ns()),
            src2dst_mean_piat_ms: s.iat_mean_ns() / 1e6,
            src2dst_stddev_piat_ms: s.iat_stddev_ns() / 1e6,
            src2dst_max_piat_ms: ms(s.iat.max_ns),
            dst2src_min_piat_ms: ms(d.iat_min_ns()),
            dst2src_mean_piat_ms: d.iat_mean_ns() / 1e6,
            dst2src_stddev_piat_ms: d.iat_stddev_ns() / 1e6,
            dst2src_max_piat_ms: ms(d.iat.max_ns),
            bidirectional_syn_packets: b.flag(0),
            bidirectional_cwr_packets: b.flag(1),
            bidirectional_ece_packets: b.flag(2),
            bidirectional_urg_packets: b.flag(3),
            bidirectional_ack_packets: b.flag(4),
            bidirectional_psh_packets: b.flag(5),
            bidirectional_rst_packets: b.flag(6),
            bidirectional_fin_packets: b.flag(7),
            src2dst_syn_packets: s.flag(0),
            src2dst_cwr_packets: s.flag(1),
            src2dst_ece_packets: s.flag(2),
            src2dst_urg_packets: s.flag(3),
            src2dst_ack_packets: s.flag(4),
            src2dst_psh_packets: s.flag(5),
            src2dst_rst_packets: s.flag(6),
            src2dst_fin_packets: s.flag(7),
            dst2src_syn_packets: d.flag(0),
            dst2src_cwr_packets: d.flag(1),
            dst2src_ece_packets: d.flag(2),
            dst2src_urg_packets: d.flag(3),
            dst2src_ack_packets: d.flag(4),
            dst2src_psh_packets: d.flag(5),
            dst2src_rst_packets: d.flag(6),
            dst2src_fin_packets: d.flag(7),
            bidirectional_frame_bytes: b.frame_bytes,
            bidirectional_payload_bytes: b.payload_bytes,
            bidirectional_fragments: b.fragments,
            src2dst_frame_bytes: s.frame_bytes,
            src2dst_payload_bytes: s.payload_bytes,
            src2dst_fragments: s.fragments,
            dst2src_frame_bytes: d.frame_bytes,
            dst2src_payload_bytes: d.payload_bytes,
            dst2src_fragments: d.fragments,
            first_ns: f.first_ns,
            last_ns: f.last_ns,
            end_ns: (f.end_ns != u64::MAX).then_some(f.end_ns),
            end_reason: f.end_reason.name(),
            continued: f.continued,
        }
    }
}

impl FlowLine {
    /// The CSV header: the field names, in order.
    pub fn csv_header() -> String {
        FIELDS.join(",")
    }

    /// One CSV row (RFC 4180 quoting where needed), without the line end.
    pub fn csv_row(&self) -> Result<Vec<u8>, String> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::with_capacity(1024));
        w.serialize(self).map_err(|e| e.to_string())?;
        let mut bytes = w.into_inner().map_err(|e| e.to_string())?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        Ok(bytes)
    }
}

/// The field names of [`FlowLine`], in declaration order.
pub const FIELDS: &[&str] = &[
    "ts",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "ip_version",
    "vlan_id",
    "inner_vlan_id",
    "tunnel",
    "tunnel_id",
    "tunnel_outer",
    "bidirectional_first_seen_ms",
    "bidirectional_last_seen_ms",
    "bidirectional_duration_ms",
    "bidirectional_packets",
    "bidirectional_bytes",
    "src2dst_first_seen_ms",
    "src2dst_last_seen_ms",
    "src2dst_duration_ms",
    "src2dst_packets",
    "src2dst_bytes",
    "dst2src_first_seen_ms",
    "dst2src_last_seen_ms",
    "dst2src_duration_ms",
    "dst2src_packets",
    "dst2src_bytes",
    "bidirectional_min_ps",
    "bidirectional_mean_ps",
    "bidirectional_stddev_ps",
    "bidirectional_max_ps",
    "src2dst_min_ps",
    "src2dst_mean_ps",
    "src2dst_stddev_ps",
    "src2dst_max_ps",
    "dst2src_min_ps",
    "dst2src_mean_ps",
    "dst2src_stddev_ps",
    "dst2src_max_ps",
    "bidirectional_min_piat_ms",
    "bidirectional_mean_piat_ms",
    "bidirectional_stddev_piat_ms",
    "bidirectional_max_piat_ms",
    "src2dst_min_piat_ms",
    "src2dst_mean_piat_ms",
    "src2dst_stddev_piat_ms",
    "src2dst_max_piat_ms",
    "dst2src_min_piat_ms",
    "dst2src_mean_piat_ms",
    "dst2src_stddev_piat_ms",
    "dst2src_max_piat_ms",
    "bidirectional_syn_packets",
    "bidirectional_cwr_packets",
    "bidirectional_ece_packets",
    "bidirectional_urg_packets",
    "bidirectional_ack_packets",
    "bidirectional_psh_packets",
    "bidirectional_rst_packets",
    "bidirectional_fin_packets",
    "src2dst_syn_packets",
    "src2dst_cwr_packets",
    "src2dst_ece_packets",
    "src2dst_urg_packets",
    "src2dst_ack_packets",
    "src2dst_psh_packets",
    "src2dst_rst_packets",
    "src2dst_fin_packets",
    "dst2src_syn_packets",
    "dst2src_cwr_packets",
    "dst2src_ece_packets",
    "dst2src_urg_packets",
    "dst2src_ack_packets",
    "dst2src_psh_packets",
    "dst2src_rst_packets",
    "dst2src_fin_packets",
    "bidirectional_frame_bytes",
    "bidirectional_payload_bytes",
    "bidirectional_fragments",
    "src2dst_frame_bytes",
    "src2dst_payload_bytes",
    "src2dst_fragments",
    "dst2src_frame_bytes",
    "dst2src_payload_bytes",
    "dst2src_fragments",
    "first_ns",
    "last_ns",
    "end_ns",
    "end_reason",
    "continued",
];

#[cfg(test)]
mod tests {
    use super::*;
    use flowtide_dataflows::flow::{EndReason, IatStats};
    use flowtide_dataflows::flow_acc::DirAcc;
    use flowtide_dataflows::flow_key::FlowKey;
    use flowtide_dataflows::packet::{Addr, Packet};

    fn record() -> FlowRecord {
        let mut s = DirAcc::default();
        let mut d = DirAcc::default();
        for (i, ts) in [1_000_000_000u64, 1_002_500_000, 1_010_000_000]
            .iter()
            .enumerate()
        {
            s.add(&Packet {
                ts_ns: *ts,
                ip_len: 60 + i as u32 * 10,
                tcp_flags: 0x10,
                ..Default::default()
            });
        }
        d.add(&Packet {
            ts_ns: 1_001_000_000,
            ip_len: 1500,
            tcp_flags: 0x12,
            ..Default::default()
        });
        let mut iat = IatStats::default();
        for g in [1_000_000u64, 1_500_000, 7_500_000] {
            iat.add(g);
        }
        FlowRecord {
            key: FlowKey::default(),
            src: Addr::from_v4([10, 0, 0, 1]),
            sport: 40000,
            dst: Addr::from_v4([10, 0, 0, 2]),
            dport: 443,
            ip_version: 4,
            first_ns: 1_000_000_000,
            last_ns: 1_010_000_000,
            end_ns: u64::MAX,
            end_reason: EndReason::EndOfInput,
            continued: false,
            icmp_echo: false,
            src2dst: s.stats(),
            dst2src: d.stats(),
            bidirectional_iat: iat,
        }
    }

    #[test]
    fn json_and_csv_agree_on_fields_and_order() {
        let line = FlowLine::from(&record());
        let json = serde_json::to_value(&line).expect("serializes");
        let obj = json.as_object().expect("an object");
        assert_eq!(obj.len(), FIELDS.len());
        for name in FIELDS {
            assert!(obj.contains_key(*name), "{name}");
        }
        let row = String::from_utf8(line.csv_row().expect("a row")).expect("UTF-8");
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), FIELDS.len());
        let at = |name: &str| FIELDS.iter().position(|f| *f == name).expect("a field");
        assert_eq!(cells[at("bidirectional_packets")], "4");
        assert_eq!(cells[at("end_ns")], "");
        assert_eq!(cells[at("end_reason")], "end_of_input");
        assert_eq!(cells[at("src2dst_max_piat_ms")], "7.5");
        assert_eq!(obj["bidirectional_syn_packets"], 1);
        assert_eq!(obj["bidirectional_ack_packets"], 4);
        assert_eq!(obj["bidirectional_min_piat_ms"], 1.0);
        assert_eq!(obj["src2dst_min_ps"], 60);
        assert_eq!(obj["bidirectional_max_ps"], 1500);
        assert_eq!(obj["dst2src_duration_ms"], 0.0);
        assert_eq!(obj["bidirectional_duration_ms"], 10.0);
    }
}
