//! Counters gathered by every worker and merged into `summary.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use flowtide_dataflows::reassembly::Counters;

use crate::decode::{SkipCounts, SkipReason};

/// What one worker saw of one feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedCounters {
    /// Feed name (path or interface).
    pub name: String,
    /// `file`, `stdin` or `live`.
    pub kind: String,
    /// The process that read it.
    pub process: u32,
    /// Frames read (by the workers that own them).
    pub packets_read: u64,
    /// Frame bytes read (captured length).
    pub bytes_read: u64,
    /// Frames rejected by the BPF filter.
    pub packets_filtered: u64,
    /// Frames decoded into packets.
    pub packets_decoded: u64,
    /// Frames skipped, by reason (index = [`SkipReason`] discriminant).
    pub skipped: Vec<u64>,
    /// Packets older than the feed's watermark (their time was raised to it).
    pub packets_late: u64,
    /// First capture time seen (ns), 0 if none.
    pub first_ns: u64,
    /// Last (largest) capture time seen (ns).
    pub last_ns: u64,
    /// The error that ended the feed early, if any.
    pub error: Option<String>,
    /// Live capture: packets dropped by the kernel / interface, when known.
    pub dropped: Option<u64>,
}

impl FeedCounters {
    /// Counters for a feed.
    pub fn new(name: &str, kind: &str, process: u32) -> Self {
        FeedCounters {
            name: name.to_string(),
            kind: kind.to_string(),
            process,
            skipped: vec![0; SkipReason::COUNT],
            ..Default::default()
        }
    }

    /// Adds skip counters.
    pub fn add_skips(&mut self, skips: &SkipCounts) {
        self.skipped.resize(SkipReason::COUNT, 0);
        for (a, b) in self.skipped.iter_mut().zip(skips.0.iter()) {
            *a += b;
        }
    }

    /// Merges another worker's counters of the same feed.
    pub fn merge(&mut self, other: &FeedCounters) {
        self.packets_read += other.packets_read;
        self.bytes_read += other.bytes_read;
        self.packets_filtered += other.packets_filtered;
        self.packets_decoded += other.packets_decoded;
        self.skipped.resize(SkipReason::COUNT, 0);
        for (a, b) in self.skipped.iter_mut().zip(other.skipped.iter()) {
            *a += b;
        }
        self.packets_late += other.packets_late;
        if other.first_ns != 0 && (self.first_ns == 0 || other.first_ns < self.first_ns) {
            self.first_ns = other.first_ns;
        }
        self.last_ns = self.last_ns.max(other.last_ns);
        if self.error.is_none() {
            self.error.clone_from(&other.error);
        }
        if let Some(d) = other.dropped {
            self.dropped = Some(self.dropped.unwrap_or(0).max(d));
        }
    }

    /// Skip counts by reason name (non-zero only).
    pub fn skipped_by_name(&self) -> BTreeMap<&'static str, u64> {
        SkipReason::ALL
            .iter()
            .zip(self.skipped.iter())
            .filter(|(_, &n)| n > 0)
            .map(|(r, &n)| (r.name(), n))
            .collect()
    }
}

/// Everything one worker reports at the end of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Global worker index.
    pub worker: u32,
    /// Process index.
    pub process: u32,
    /// Per-feed counters for the frames this worker read.
    pub feeds: Vec<FeedCounters>,
    /// Packets this worker's flow table accounted.
    pub flow_packets: u64,
    /// Flows this worker's flow table emitted.
    pub flows: u64,
    /// Most flows open at once in this worker's flow table.
    pub peak_open_flows: u64,
    /// This worker's fragment reassembly counters.
    pub reassembly: Counters,
    /// Reassembled datagrams this worker could not decode.
    pub undecodable_datagrams: u64,
    /// Wall-clock seconds the worker ran.
    pub wall_seconds: f64,
    /// Alerts this worker raised, per kind.
    pub alerts: std::collections::BTreeMap<String, u64>,
}
