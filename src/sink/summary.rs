//! `summary.json`: what a run read, decoded, skipped and produced.

use std::collections::BTreeMap;
use std::path::Path;

use flowtide_dataflows::time::iso8601;
use serde::Serialize;

use crate::runtime::stats::{FeedCounters, WorkerReport};

/// The run's settings, as recorded in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct RunSettings {
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// Progress tick (ms of event time).
    pub tick_ms: f64,
    /// Lateness bound (ms).
    pub max_disorder_ms: f64,
    /// Flow idle timeout (s).
    pub idle_timeout_s: f64,
    /// Fragment overlap policy (`default`: bsd for IPv4, rfc5722 for IPv6).
    pub frag_policy: String,
    /// Fragment reassembly timeout (s).
    pub frag_timeout_s: f64,
    /// Fragment reassembly memory budget per worker (bytes).
    pub frag_memory_bytes: u64,
    /// Replay speed, if paced.
    pub speed: Option<f64>,
    /// BPF filter, if any.
    pub filter: Option<String>,
}

/// One feed in the summary (counters of all workers merged).
#[derive(Debug, Serialize)]
pub struct FeedSummary {
    /// Path or interface.
    pub name: String,
    /// `file`, `stdin`, `live`.
    pub kind: String,
    /// The process that read it.
    pub process: u32,
    /// Frames read.
    pub packets_read: u64,
    /// Captured bytes read.
    pub bytes_read: u64,
    /// Frames rejected by the filter.
    pub packets_filtered: u64,
    /// Frames decoded.
    pub packets_decoded: u64,
    /// Frames skipped (total).
    pub packets_skipped: u64,
    /// Frames skipped by reason.
    pub skipped_by_reason: BTreeMap<&'static str, u64>,
    /// Late packets.
    pub packets_late: u64,
    /// First capture time (ISO-8601), if any packet.
    pub first_ts: Option<String>,
    /// Last capture time (ISO-8601).
    pub last_ts: Option<String>,
    /// What ended the feed early.
    pub error: Option<String>,
    /// Kernel/interface drops (live).
    pub dropped: Option<u64>,
}

/// Fragment reassembly, all workers merged.
#[derive(Debug, Default, Serialize)]
pub struct ReassemblySummary {
    /// Fragments given to the reassemblers.
    pub fragments: u64,
    /// Datagrams reassembled (IPv6 atomic fragments included).
    pub reassembled: u64,
    /// Fragments dropped without being stored (malformed, duplicates, too large, ...).
    pub dropped_fragments: u64,
    /// Reassembled datagrams that did not decode (dropped).
    pub undecodable: u64,
    /// Events per kind (`reassembly.jsonl` has one line per event).
    pub events: BTreeMap<String, u64>,
}

/// One worker in the summary.
#[derive(Debug, Serialize)]
pub struct WorkerSummary {
    /// Global worker index.
    pub worker: u32,
    /// Process.
    pub process: u32,
    /// Frames this worker read (its share).
    pub packets_read: u64,
    /// Frames it decoded.
    pub packets_decoded: u64,
    /// Packets its flow table accounted.
    pub flow_packets: u64,
    /// Flows it emitted.
    pub flows: u64,
    /// Most flows open at once.
    pub peak_open_flows: u64,
}

/// The whole summary.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// flowtide version.
    pub flowtide_version: &'static str,
    /// When the run started (wall clock, ISO-8601).
    pub started: String,
    /// Wall-clock seconds.
    pub wall_time_s: f64,
    /// Frames read, all feeds.
    pub packets_read: u64,
    /// Frames decoded.
    pub packets_decoded: u64,
    /// Frames skipped.
    pub packets_skipped: u64,
    /// Frames skipped by reason.
    pub skipped_by_reason: BTreeMap<&'static str, u64>,
    /// Frames rejected by the filter.
    pub packets_filtered: u64,
    /// Late packets.
    pub packets_late: u64,
    /// Frames read per wall-clock second.
    pub packets_per_second: f64,
    /// Flows written.
    pub flows: u64,
    /// Fragment reassembly.
    pub reassembly: ReassemblySummary,
    /// Alerts written, per kind (`alerts.jsonl`).
    pub alerts: BTreeMap<String, u64>,
    /// Feeds.
    pub feeds: Vec<FeedSummary>,
    /// Workers.
    pub workers: Vec<WorkerSummary>,
    /// Settings.
    pub settings: RunSettings,
}

impl Summary {
    /// Merges the reports of every worker.
    pub fn build(
        mut reports: Vec<WorkerReport>,
        settings: RunSettings,
        started_ns: u64,
        wall_time_s: f64,
    ) -> Summary {
        reports.sort_by_key(|r| r.worker);
        let mut feeds: BTreeMap<(u32, String, String), FeedCounters> = BTreeMap::new();
        for r in &reports {
            for f in &r.feeds {
                feeds
                    .entry((f.process, f.kind.clone(), f.name.clone()))
                    .and_modify(|c| c.merge(f))
                    .or_insert_with(|| f.clone());
            }
        }
        let feeds: Vec<FeedSummary> = feeds.into_values().map(feed_summary).collect();
        let mut skipped_by_reason = BTreeMap::new();
        for f in &feeds {
            for (k, v) in &f.skipped_by_reason {
                *skipped_by_reason.entry(*k).or_insert(0) += v;
            }
        }
        let sum = |g: fn(&FeedSummary) -> u64| feeds.iter().map(g).sum::<u64>();
        let packets_read = sum(|f| f.packets_read);
        let workers: Vec<WorkerSummary> = reports
            .iter()
            .map(|r| WorkerSummary {
                worker: r.worker,
                process: r.process,
                packets_read: r.feeds.iter().map(|f| f.packets_read).sum(),
                packets_decoded: r.feeds.iter().map(|f| f.packets_decoded).sum(),
                flow_packets: r.flow_packets,
                flows: r.flows,
                peak_open_flows: r.peak_open_flows,
            })
            .collect();
        let mut reassembly = ReassemblySummary::default();
        for r in &reports {
            reassembly.fragments += r.reassembly.fragments;
            reassembly.reassembled += r.reassembly.reassembled;
            reassembly.dropped_fragments += r.reassembly.dropped_fragments;
            reassembly.undecodable += r.undecodable_datagrams;
            for (k, v) in &r.reassembly.events {
                *reassembly.events.entry(k.clone()).or_insert(0) += v;
            }
        }
        let mut alerts = BTreeMap::new();
        for r in &reports {
            for (k, v) in &r.alerts {
                *alerts.entry(k.clone()).or_insert(0) += v;
            }
        }
        Summary {
            flowtide_version: env!("CARGO_PKG_VERSION"),
            started: iso8601(started_ns),
            wall_time_s,
            packets_read,
            packets_decoded: sum(|f| f.packets_decoded),
            packets_skipped: sum(|f| f.packets_skipped),
            skipped_by_reason,
            packets_filtered: sum(|f| f.packets_filtered),
            packets_late: sum(|f| f.packets_late),
            packets_per_second: if wall_time_s > 0.0 {
                packets_read as f64 / wall_time_s
            } else {
                0.0
            },
            flows: workers.iter().map(|w| w.flows).sum(),
            reassembly,
            alerts,
            feeds,
            workers,
            settings,
        }
    }

    /// Writes the summary as pretty JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        text.push('\n');
        std::fs::write(path, text)
    }
}

fn feed_summary(c: FeedCounters) -> FeedSummary {
    let skipped_by_reason = c.skipped_by_name();
    FeedSummary {
        packets_skipped: skipped_by_reason.values().sum(),
        skipped_by_reason,
        first_ts: (c.packets_read > 0).then(|| iso8601(c.first_ns)),
        last_ts: (c.packets_read > 0).then(|| iso8601(c.last_ns)),
        name: c.name,
        kind: c.kind,
        process: c.process,
        packets_read: c.packets_read,
        bytes_read: c.bytes_read,
        packets_filtered: c.packets_filtered,
        packets_decoded: c.packets_decoded,
        packets_late: c.packets_late,
        error: c.error,
        dropped: c.dropped,
    }
}
