//! The JSON form of a reassembly event (`reassembly.jsonl`).

use flowtide_dataflows::reassembly::{EventKind, ReassemblyEvent};
use flowtide_dataflows::time::iso8601;
use serde::Serialize;

/// One line of `reassembly.jsonl`: when, which datagram, and the event's own fields
/// (`kind` names it: `overlap_different`, `timeout`, `ambiguity`, ...).
#[derive(Debug, Serialize)]
pub struct EventLine {
    /// Event time, ISO-8601 UTC.
    pub ts: String,
    /// Event time, ns since the epoch.
    pub ts_ns: u64,
    /// Source address of the datagram.
    pub src_ip: String,
    /// Destination address.
    pub dst_ip: String,
    /// IPv4 protocol or IPv6 fragment-header next header.
    pub protocol: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// IP identification.
    pub ip_id: u32,
    /// Outer VLAN id (0 = none).
    pub vlan_id: u16,
    /// Inner VLAN id (0 = none).
    pub inner_vlan_id: u16,
    /// Innermost tunnel kind.
    pub tunnel: &'static str,
    /// Tunnel id, 0 if none.
    pub tunnel_id: u32,
    /// Digest of the outer layers, 0 if untunnelled.
    pub tunnel_outer: u32,
    /// The event.
    #[serde(flatten)]
    pub event: EventKind,
}

impl From<&ReassemblyEvent> for EventLine {
    fn from(e: &ReassemblyEvent) -> Self {
        let k = &e.key;
        EventLine {
            ts: iso8601(e.ts_ns),
            ts_ns: e.ts_ns,
            src_ip: k.src.to_string(),
            dst_ip: k.dst.to_string(),
            protocol: k.protocol,
            ip_version: k.ip_version,
            ip_id: k.id,
            vlan_id: k.ctx.vlan[0],
            inner_vlan_id: k.ctx.vlan[1],
            tunnel: k.ctx.tunnel.name(),
            tunnel_id: k.ctx.tunnel_id,
            tunnel_outer: k.ctx.outer,
            event: e.kind.clone(),
        }
    }
}
