//! Flow records: what the flow table emits for every finished flow.

use serde::{Deserialize, Serialize};

use crate::flow_key::FlowKey;
use crate::packet::{Addr, Context, Packet};

/// Why a flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// No packet for the idle timeout (event time).
    Idle,
    /// The input ended (end of the capture, or capture stopped) with the flow still open.
    EndOfInput,
}

/// Per-direction counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionCounters {
    /// Packets.
    pub packets: u64,
    /// Bytes at the IP layer (IP total length).
    pub bytes: u64,
    /// Bytes on the wire (frame length).
    pub frame_bytes: u64,
    /// Transport payload bytes.
    pub payload_bytes: u64,
}

impl DirectionCounters {
    /// Counts one packet.
    #[inline]
    pub fn add(&mut self, p: &Packet) {
        self.packets += 1;
        self.bytes += u64::from(p.ip_len);
        self.frame_bytes += u64::from(p.frame_len);
        self.payload_bytes += u64::from(p.payload_len);
    }
}

/// A finished flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The canonical key (for ordering and routing).
    pub key: FlowKey,
    /// Source address: the sender of the first packet.
    pub src: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Addr,
    /// Destination port.
    pub dport: u16,
    /// IP version of the first packet.
    pub ip_version: u8,
    /// Capture time of the first packet (ns).
    pub first_ns: u64,
    /// Capture time of the last packet (ns).
    pub last_ns: u64,
    /// Event time at which the flow was known to have ended (ns): last packet + idle
    /// timeout, or `u64::MAX` at the end of input. Output files are ordered by it.
    pub end_ns: u64,
    /// Why it ended.
    pub end_reason: EndReason,
    /// Source → destination counters.
    pub src2dst: DirectionCounters,
    /// Destination → source counters.
    pub dst2src: DirectionCounters,
}

impl FlowRecord {
    /// The flow's context.
    pub fn ctx(&self) -> &Context {
        &self.key.ctx
    }

    /// The canonical output order: end time, then key, then start.
    pub fn order_key(&self) -> (u64, FlowKey, u64) {
        (self.end_ns, self.key, self.first_ns)
    }
}
