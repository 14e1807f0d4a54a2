//! What the reassembler reports besides reassembled datagrams: anomaly and lifecycle
//! events, and counters per event kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::policy::Policy;
use crate::packet::{Addr, Context};

/// Identifies the datagram a fragment belongs to: context, IP version, addresses,
/// protocol (IPv6: the fragment header's next header) and identification.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FragKey {
    /// VLAN and tunnel context.
    pub ctx: Context,
    /// 4 or 6.
    pub ip_version: u8,
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// IPv4 protocol; 0 for IPv6, whose fragments of one datagram may carry different
    /// next headers (RFC 8200 §4.5: only the offset-0 fragment's counts).
    pub protocol: u8,
    /// IPv4 identification or IPv6 fragment identification.
    pub id: u32,
}

impl FragKey {
    /// The key of a fragment packet as the reassembly table computes it (its context plus
    /// the parsed IP header), `None` when the packet holds no parsable fragment.
    pub fn of_packet(p: &crate::packet::Packet) -> Option<FragKey> {
        let f = super::parse::parse_fragment(p.bytes.as_deref()?).ok()?;
        Some(FragKey {
            ctx: p.ctx,
            ip_version: f.version,
            src: f.src,
            dst: f.dst,
            protocol: FragKey::keyed_protocol(f.version, f.protocol),
            id: f.id,
        })
    }

    /// The key from a packet's decoded fields (no datagram bytes needed): what a
    /// fragment is filed under when its bytes cannot be parsed, and the key of an atomic
    /// fragment that was decoded through.
    pub fn of_decoded(p: &crate::packet::Packet) -> FragKey {
        FragKey {
            ctx: p.ctx,
            ip_version: p.ip_version,
            src: p.src,
            dst: p.dst,
            protocol: FragKey::keyed_protocol(p.ip_version, p.protocol),
            id: p.ip_id,
        }
    }

    /// The protocol field of a key: the IPv4 protocol, or 0 for IPv6.
    #[inline]
    pub fn keyed_protocol(ip_version: u8, protocol: u8) -> u8 {
        if ip_version == 6 {
            0
        } else {
            protocol
        }
    }
}

/// Why a datagram was evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictReason {
    /// The memory budget would have been exceeded.
    Memory,
    /// The limit on datagrams in flight would have been exceeded.
    Datagrams,
    /// The datagram reached the limit on fragments per datagram.
    Fragments,
}

/// A half-open byte range `[start, end)` of the fragmentable payload.
pub type Range = (u32, u32);

/// The details of a [`ReassemblyEvent`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The fragment could not be parsed (or is empty); it was dropped.
    Malformed {
        /// What was wrong.
        reason: String,
    },
    /// The fragment overlaps stored data, with identical bytes on every shared byte.
    OverlapSame {
        /// Extent of the overlap with stored data.
        range: Range,
        /// The fragment exactly duplicates a stored one (offset, length and data); it was
        /// not stored.
        duplicate: bool,
    },
    /// The fragment overlaps stored data with different bytes.
    OverlapDifferent {
        /// Extent of the overlap with stored data.
        range: Range,
        /// The byte ranges whose data differ from some stored fragment's.
        differing: Vec<Range>,
    },
    /// The datagram's policy is [`Policy::Rfc5722`] and an overlap carried different data:
    /// the datagram will produce no output.
    Discarded,
    /// Policies of the configured set disagree on a completed datagram.
    Ambiguity {
        /// Groups of policies producing identical payloads (policies that discarded the
        /// datagram are in `discarded_by` instead).
        groups: Vec<Vec<Policy>>,
        /// Policies that discard the datagram (rfc5722).
        discarded_by: Vec<Policy>,
        /// Byte ranges of the reassembled payload where the groups' results differ.
        ranges: Vec<Range>,
    },
    /// Teardrop-style shrink: the fragment starts inside a stored fragment and ends
    /// before it, or its IPv4 total length is below its header length.
    Teardrop {
        /// The fragment's range.
        range: Range,
        /// The stored fragment it shrinks (`(0, 0)` for a negative-length header).
        earlier: Range,
    },
    /// A first fragment too short to hold the transport header.
    TinyFirstFragment {
        /// Bytes the first fragment holds.
        len: u32,
        /// Bytes the transport header needs.
        required: u32,
    },
    /// The reassembled datagram would exceed 65535 bytes; the fragment was dropped.
    TooLarge {
        /// The size the datagram would reach (IPv4 total length / IPv6 payload length).
        size: u32,
    },
    /// Data lies past the end given by the final fragment; it is ignored.
    DataPastFinal {
        /// End of the datagram per its final fragment.
        final_end: u32,
        /// End of the data past it.
        end: u32,
    },
    /// A second final fragment (MF=0) with a different end; it was dropped.
    ConflictingFinal {
        /// End given by the first final fragment.
        final_end: u32,
        /// End claimed by the dropped one.
        end: u32,
    },
    /// An IPv6 atomic fragment (offset 0, M=0); passed through without the fragment header.
    AtomicFragment,
    /// An IPv4 fragment with "don't fragment" set.
    ForbiddenFragment,
    /// A non-final fragment whose length is not a multiple of 8.
    Misaligned {
        /// The fragment's data length.
        len: u32,
    },
    /// A fragment alone exceeds the memory budget; it was dropped.
    OverBudget {
        /// What storing it would cost.
        cost: u64,
    },
    /// The datagram's deadline passed before it completed.
    Timeout {
        /// Capture time of its first fragment.
        first_ns: u64,
        /// Fragments stored.
        fragments: u32,
    },
    /// The datagram was evicted to respect a limit.
    Eviction {
        /// Which limit.
        reason: EvictReason,
        /// Capture time of its first fragment.
        first_ns: u64,
        /// Fragments stored.
        fragments: u32,
    },
    /// The input ended before the datagram completed or reached its deadline.
    IncompleteAtEnd {
        /// Capture time of its first fragment.
        first_ns: u64,
        /// Fragments stored.
        fragments: u32,
    },
}

impl EventKind {
    /// The event's kind as a short name (the serialized `kind` tag).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Malformed { .. } => "malformed",
            EventKind::OverlapSame { .. } => "overlap_same",
            EventKind::OverlapDifferent { .. } => "overlap_different",
            EventKind::Discarded => "discarded",
            EventKind::Ambiguity { .. } => "ambiguity",
            EventKind::Teardrop { .. } => "teardrop",
            EventKind::TinyFirstFragment { .. } => "tiny_first_fragment",
            EventKind::TooLarge { .. } => "too_large",
            EventKind::DataPastFinal { .. } => "data_past_final",
            EventKind::ConflictingFinal { .. } => "conflicting_final",
            EventKind::AtomicFragment => "atomic_fragment",
            EventKind::ForbiddenFragment => "forbidden_fragment",
            EventKind::Misaligned { .. } => "misaligned",
            EventKind::OverBudget { .. } => "over_budget",
            EventKind::Timeout { .. } => "timeout",
            EventKind::Eviction { .. } => "eviction",
            EventKind::IncompleteAtEnd { .. } => "incomplete_at_end",
        }
    }
}

/// One reassembly event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReassemblyEvent {
    /// Event time (ns): the capture time of the fragment that caused it, the deadline for
    /// a timeout, the end of input for an incomplete datagram.
    pub ts_ns: u64,
    /// The datagram concerned.
    pub key: FragKey,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Counters of one reassembly table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Fragments given to the table.
    pub fragments: u64,
    /// Datagrams reassembled and output (atomic fragments included).
    pub reassembled: u64,
    /// Fragments dropped without being stored (malformed, duplicates, too large, ...).
    pub dropped_fragments: u64,
    /// Events per kind name ([`EventKind::name`]).
    pub events: BTreeMap<String, u64>,
}

impl Counters {
    /// The number of events of one kind.
    pub fn event(&self, kind: &str) -> u64 {
        self.events.get(kind).copied().unwrap_or(0)
    }

    pub(crate) fn count(&mut self, kind: &EventKind) {
        // No allocation once the kind has been seen (floods raise millions of events).
        match self.events.get_mut(kind.name()) {
            Some(n) => *n += 1,
            None => {
                self.events.insert(kind.name().to_string(), 1);
            }
        }
    }
}
