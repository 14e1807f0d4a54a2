//! The JSON form of a flow record (`flows.jsonl`).
//!
//! Field names follow NFStream where NFStream has the feature (`src_ip`,
//! `bidirectional_packets`, `src2dst_bytes`, ...; times in milliseconds since the Unix
//! epoch), so existing pipelines read flowtide's output unchanged; flowtide adds exact
//! nanosecond times, the encapsulation context and the end reason.

use flowtide_dataflows::flow::{EndReason, FlowRecord};
use flowtide_dataflows::time::iso8601;
use serde::Serialize;

/// One line of `flows.jsonl`.
#[derive(Debug, Serialize)]
pub struct FlowLine {
    /// First packet, ISO-8601 UTC.
    pub ts: String,
    /// Source address (sender of the first packet).
    pub src_ip: String,
    /// Source port (ICMP echo identifier, or 0).
    pub src_port: u16,
    /// Destination address.
    pub dst_ip: String,
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
    /// Tunnel id (GRE key, VNI, TEID, ERSPAN session), 0 if none.
    pub tunnel_id: u32,
    /// Digest of the outer layers (distinguishes tunnel endpoints), 0 if untunnelled.
    pub tunnel_outer: u32,
    /// First packet time, ms since the epoch.
    pub bidirectional_first_seen_ms: u64,
    /// Last packet time, ms since the epoch.
    pub bidirectional_last_seen_ms: u64,
    /// Last minus first, ms.
    pub bidirectional_duration_ms: u64,
    /// Packets, both directions.
    pub bidirectional_packets: u64,
    /// IP bytes, both directions.
    pub bidirectional_bytes: u64,
    /// Frame bytes, both directions.
    pub bidirectional_frame_bytes: u64,
    /// Transport payload bytes, both directions.
    pub bidirectional_payload_bytes: u64,
    /// Packets source → destination.
    pub src2dst_packets: u64,
    /// IP bytes source → destination.
    pub src2dst_bytes: u64,
    /// Packets destination → source.
    pub dst2src_packets: u64,
    /// IP bytes destination → source.
    pub dst2src_bytes: u64,
    /// First packet time, ns since the epoch.
    pub first_ns: u64,
    /// Last packet time, ns since the epoch.
    pub last_ns: u64,
    /// When the flow was known to be over (ns; `null` at end of input).
    pub end_ns: Option<u64>,
    /// `idle` or `end_of_input`.
    pub end_reason: EndReason,
}

impl From<&FlowRecord> for FlowLine {
    fn from(f: &FlowRecord) -> Self {
        let ctx = f.ctx();
        let first_ms = f.first_ns / 1_000_000;
        let last_ms = f.last_ns / 1_000_000;
        let s = &f.src2dst;
        let d = &f.dst2src;
        FlowLine {
            ts: iso8601(f.first_ns),
            src_ip: f.src.to_string(),
            src_port: f.sport,
            dst_ip: f.dst.to_string(),
            dst_port: f.dport,
            protocol: f.key.protocol,
            ip_version: f.ip_version,
            vlan_id: ctx.vlan[0],
            inner_vlan_id: ctx.vlan[1],
            tunnel: ctx.tunnel.name(),
            tunnel_id: ctx.tunnel_id,
            tunnel_outer: ctx.outer,
            bidirectional_first_seen_ms: first_ms,
            bidirectional_last_seen_ms: last_ms,
            bidirectional_duration_ms: last_ms - first_ms,
            bidirectional_packets: s.packets + d.packets,
            bidirectional_bytes: s.bytes + d.bytes,
            bidirectional_frame_bytes: s.frame_bytes + d.frame_bytes,
            bidirectional_payload_bytes: s.payload_bytes + d.payload_bytes,
            src2dst_packets: s.packets,
            src2dst_bytes: s.bytes,
            dst2src_packets: d.packets,
            dst2src_bytes: d.bytes,
            first_ns: f.first_ns,
            last_ns: f.last_ns,
            end_ns: (f.end_ns != u64::MAX).then_some(f.end_ns),
            end_reason: f.end_reason,
        }
    }
}
