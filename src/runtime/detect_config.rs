//! Detection settings: the `--config` TOML file and the command-line flags that override
//! it, turned into [`DetectConfig`].
//!
//! ```toml
//! [baseline]
//! mode = "trailing"      # or "decayed"
//! history = "24h"        # trailing: a window leaves the baseline this long after its end
//! history_steps = 24     # ... rounded up to one of this many steps per history (0: exactly)
//! decay = "10m"          # decayed: time constant (e.g. 1m, 10m, 1h, 1d)
//! learn = "1h"           # no anomaly alert before this much event time after the first window
//! min_windows = 10       # no anomaly alert for a key with fewer windows in its baseline
//! hour_of_day = false    # one baseline per key and UTC hour of day
//! population = true      # keys with < min_windows windows: judged against all keys
//!                        # of their granularity (trailing mode)
//!
//! [score]
//! threshold = 15.0
//! medium = 2.0           # severity medium from 2 x threshold
//! high = 4.0             # severity high from 4 x threshold
//! relative_floor = 0.1   # deviation denominator >= 0.1 x |baseline mean|
//! max_deviation = 30     # one metric's deviation counts at most this much (0: no cap)
//! slide = "10s"          # score hopping windows of the windows' length this often
//!                        # ("0s": score the windows of windows.jsonl)
//! upward = ["packets", "bytes", "flows_started", "syn_packets", "distinct_peers",
//!           "distinct_dst_ports"]   # only an increase of these counts
//! syn_flood_min = 1000   # SYNs in a service window, >= 80% of its packets: syn_flood
//!                        # (0: off; needs no history, like the next two)
//! syn_ack_reflection_min = 1000  # SYN-ACKs received by a host for connections it
//!                                # never opened: syn_ack_reflection (0: off)
//! udp_flood_min_sources = 1000   # distinct sources sending unanswered datagrams to one
//!                                # UDP service: udp_flood (0: off)
//! min_packets = 2        # smaller windows are not scored and stay out of their key's
//!                        # own baseline (population only)
//! [score.weights]        # per metric; 0 disables a metric
//! iat_mean_ms = 0.3
//! pkt_size_mean = 0.4
//! duration_mean_ms = 0.3
//! [score.floors]         # deviation denominator >= this (natural units)
//! packets = 10
//!
//! [reassembly]
//! bucket = "10s"         # reassembly events are aggregated per bucket
//! flood_threshold = 100  # evictions/over-budget drops per destination and bucket
//! unfinished_threshold = 500  # fragments per destination and bucket never reassembled
//!                             # (0: off)
//!
//! [connections]          # patterns in one source's connections to one service
//! beacon_min = 16        # connections before the intervals are judged (0: off)
//! beacon_max_dispersion = 0.5  # interval IQR/median and stddev/mean both at most this
//! beacon_min_interval = "1s"   # median interval at least this
//! beacon_max_interval = "1h"   # a longer gap restarts the channel's history
//! ignore_ports = [53, 67, 68, 123, 137, 138, 546, 547, 1900, 5353]  # periodic by design
//! brute_force_min = 30   # answered TCP connections to one service ... (0: off)
//! brute_force_window = "60s"   # ... within this long
//! realert = "1h"         # at most one alert per channel and pattern this often
//! scan_min_ports = 25    # distinct ports probed (TCP, no payload) on one destination (0: off)
//! sweep_min_hosts = 25   # distinct hosts probed on one port (or pinged) (0: off)
//! scan_window = "1h"     # ... with at most this long between probes
//! scan_burst_ports = 10  # or: new ports probed on one destination in a burst (0: off)
//! sweep_burst_hosts = 10 # or: new hosts probed on one port (or pinged) in a burst (0: off)
//! scan_burst_window = "5s"  # ... within this long of the burst's first probe
//! syn_ack_repeats_min = 8     # SYN-ACKs from one service to a host on flows it never
//!                             # opened: syn_ack_reflection on the channel (0: off)
//! syn_ack_repeats_window = "60s"  # ... each flow at most this long after the previous
//! syn_burst_min = 100    # half-open attempts (SYNs only) to one service: syn_flood (0: off)
//! syn_burst_window = "5s"  # ... within this long of the burst's first attempt
//! scan_capacity = 65536  # keys followed at once per kind of scan (pairs; source, port;
//!                        # reflection victims)
//! reflection_min_sources = 10  # distinct services sending a host unsolicited UDP
//!                              # responses: udp_reflection (0: off)
//! reflection_min_bytes = 512   # ... each a datagram of at least this many IP bytes
//!                              # that opens a flow
//! reflection_window = "60s"    # ... at most this long apart
//! reflection_ports = [17, 19, 53, 69, 111, 123, 137, 161, 389, 520, 1900, 3283, 3702,
//!                     5353, 5683, 11211, 27015, 27960]  # amplifying services' ports
//! ```

use std::collections::BTreeMap;

use anyhow::{bail, Context as _, Result};
use flowtide_dataflows::baseline::{BaselineMode, DetectConfig, Metric};
use serde::Deserialize;

use crate::cli::{parse_positive_duration_ns, AnalyzeArgs};

/// The `--config` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `[baseline]`.
    pub baseline: BaselineSection,
    /// `[score]`.
    pub score: ScoreSection,
    /// `[reassembly]`.
    pub reassembly: ReassemblySection,
    /// `[connections]`.
    pub connections: ConnectionsSection,
}

/// `[connections]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsSection {
    /// Connections before a channel's intervals are judged (0: no beacon rule).
    pub beacon_min: Option<usize>,
    /// Largest interval dispersion of a beacon.
    pub beacon_max_dispersion: Option<f64>,
    /// Smallest median interval of a beacon (duration).
    pub beacon_min_interval: Option<String>,
    /// Longest interval of a beacon (duration).
    pub beacon_max_interval: Option<String>,
    /// Destination ports not judged as beacons.
    pub ignore_ports: Option<Vec<u16>>,
    /// Answered connections that make a brute-force alert (0: off).
    pub brute_force_min: Option<usize>,
    /// The brute-force window (duration).
    pub brute_force_window: Option<String>,
    /// Least time between two alerts of one channel and pattern (duration).
    pub realert: Option<String>,
    /// Distinct probed ports that make a port-scan alert (0: off).
    pub scan_min_ports: Option<usize>,
    /// Distinct destinations probed on one port that make an address-scan alert (0: off).
    pub sweep_min_hosts: Option<usize>,
    /// Longest time between two probes of one scan (duration).
    pub scan_window: Option<String>,
    /// New probed ports in a burst that make a port-scan alert (0: off).
    pub scan_burst_ports: Option<usize>,
    /// New destinations probed on one port in a burst that make an address-scan alert
    /// (0: off).
    pub sweep_burst_hosts: Option<usize>,
    /// How long a burst of probes lasts from its first (duration).
    pub scan_burst_window: Option<String>,
    /// Unsolicited SYN-ACKs from one service that make a repeated-SYN-ACK alert (0: off).
    pub syn_ack_repeats_min: Option<u64>,
    /// Longest time between two unsolicited SYN-ACK flows of one channel (duration).
    pub syn_ack_repeats_window: Option<String>,
    /// Half-open attempts to one service in a burst that make a `syn_flood` alert (0: off).
    pub syn_burst_min: Option<usize>,
    /// How long a burst of half-open attempts lasts from its first (duration).
    pub syn_burst_window: Option<String>,
    /// Keys followed at once per kind of scan, and reflection victims.
    pub scan_capacity: Option<usize>,
    /// Distinct services with unsolicited responses that make a reflection alert (0: off).
    pub reflection_min_sources: Option<usize>,
    /// IP bytes of the datagram that opens an unsolicited response's flow.
    pub reflection_min_bytes: Option<u32>,
    /// Longest time between two unsolicited responses of one reflection (duration).
    pub reflection_window: Option<String>,
    /// Source ports of amplifying services.
    pub reflection_ports: Option<Vec<u16>>,
}

/// `[baseline]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BaselineSection {
    /// `trailing` or `decayed`.
    pub mode: Option<String>,
    /// Trailing history (duration).
    pub history: Option<String>,
    /// Steps per trailing history in which windows leave it (0: exactly).
    pub history_steps: Option<u64>,
    /// Decay time constant (duration).
    pub decay: Option<String>,
    /// Learning phase (duration; `0s` for none).
    pub learn: Option<String>,
    /// Minimum windows in a key's baseline.
    pub min_windows: Option<u64>,
    /// Hour-of-day profiles.
    pub hour_of_day: Option<bool>,
    /// Population prior.
    pub population: Option<bool>,
}

/// `[score]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreSection {
    /// Threshold.
    pub threshold: Option<f64>,
    /// Medium severity multiple.
    pub medium: Option<f64>,
    /// High severity multiple.
    pub high: Option<f64>,
    /// Relative floor.
    pub relative_floor: Option<f64>,
    /// Cap of one metric's deviation in the score.
    pub max_deviation: Option<f64>,
    /// Slide of the scored windows (duration; `0s`: the windows of windows.jsonl).
    pub slide: Option<String>,
    /// Metrics of which only an increase counts.
    pub upward: Option<Vec<String>>,
    /// SYNs in a service window that make a `syn_flood` alert (0: off).
    pub syn_flood_min: Option<u64>,
    /// SYN-ACKs in a host window that make a `syn_ack_reflection` alert (0: off).
    pub syn_ack_reflection_min: Option<u64>,
    /// Distinct sources in a UDP service window that make a `udp_flood` alert (0: off).
    pub udp_flood_min_sources: Option<u64>,
    /// Packets a window needs to be scored and to enter its key's own baseline.
    pub min_packets: Option<u64>,
    /// Weights by metric name.
    pub weights: BTreeMap<String, f64>,
    /// Absolute floors by metric name.
    pub floors: BTreeMap<String, f64>,
}

/// `[reassembly]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReassemblySection {
    /// Aggregation bucket (duration).
    pub bucket: Option<String>,
    /// Fragment-flood threshold.
    pub flood_threshold: Option<u64>,
    /// Unfinished-fragment threshold (0: off).
    pub unfinished_threshold: Option<u64>,
}

fn duration(what: &str, s: &str, allow_zero: bool) -> Result<u64> {
    if allow_zero {
        crate::cli::parse_duration_ns(s)
    } else {
        parse_positive_duration_ns(s)
    }
    .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn metric(section: &str, name: &str) -> Result<Metric> {
    Metric::from_name(name).with_context(|| {
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        format!(
            "[score.{section}]: unknown metric {name:?} (metrics: {})",
            names.join(", ")
        )
    })
}

/// Sets `to` when the file gives a value.
fn set<T: Copy>(from: Option<T>, to: &mut T) {
    if let Some(v) = from {
        *to = v;
    }
}

impl FileConfig {
    /// Parses a TOML text.
    pub fn parse(text: &str) -> Result<FileConfig> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }

    /// Applies the file's settings to `c`.
    pub fn apply(&self, c: &mut DetectConfig) -> Result<()> {
        let b = &self.baseline;
        if let Some(m) = &b.mode {
            c.mode = match m.as_str() {
                "trailing" => BaselineMode::Trailing,
                "decayed" => BaselineMode::Decayed,
                _ => bail!("[baseline] mode must be \"trailing\" or \"decayed\", not {m:?}"),
            };
        }
        if let Some(s) = &b.history {
            c.history_ns = duration("[baseline] history", s, false)?;
        }
        if let Some(n) = b.history_steps {
            c.history_steps = n;
        }
        if let Some(s) = &b.decay {
            c.decay_ns = duration("[baseline] decay", s, false)?;
        }
        if let Some(s) = &b.learn {
            c.learn_ns = duration("[baseline] learn", s, true)?;
        }
        set(b.min_windows, &mut c.min_windows);
        set(b.hour_of_day, &mut c.hour_of_day);
        set(b.population, &mut c.population);
        let s = &self.score;
        set(s.threshold, &mut c.threshold);
        set(s.medium, &mut c.medium);
        set(s.high, &mut c.high);
        set(s.relative_floor, &mut c.relative_floor);
        set(s.syn_flood_min, &mut c.syn_flood_min);
        set(s.syn_ack_reflection_min, &mut c.syn_ack_reflection_min);
        set(s.udp_flood_min_sources, &mut c.udp_flood_min_sources);
        set(s.min_packets, &mut c.min_packets);
        set(s.max_deviation, &mut c.max_deviation);
        if let Some(d) = &s.slide {
            c.slide_ns = duration("[score] slide", d, true)?;
        }
        if let Some(names) = &s.upward {
            c.upward = [false; flowtide_dataflows::baseline::METRICS];
            for name in names {
                c.upward[metric("upward", name)? as usize] = true;
            }
        }
        for (name, w) in &s.weights {
            c.weights[metric("weights", name)? as usize] = *w;
        }
        for (name, f) in &s.floors {
            c.floors[metric("floors", name)? as usize] = *f;
        }
        let r = &self.reassembly;
        if let Some(s) = &r.bucket {
            c.frag_bucket_ns = duration("[reassembly] bucket", s, false)?;
        }
        set(r.flood_threshold, &mut c.frag_flood_threshold);
        set(r.unfinished_threshold, &mut c.frag_unfinished_threshold);
        let k = &self.connections;
        let rules = &mut c.connections;
        set(k.beacon_min, &mut rules.beacon_min);
        set(k.beacon_max_dispersion, &mut rules.beacon_max_dispersion);
        set(k.brute_force_min, &mut rules.brute_force_min);
        if let Some(ports) = &k.ignore_ports {
            rules.ignore_ports.clone_from(ports);
        }
        if let Some(s) = &k.beacon_min_interval {
            rules.beacon_min_interval_ns = duration("[connections] beacon_min_interval", s, true)?;
        }
        if let Some(s) = &k.beacon_max_interval {
            rules.beacon_max_interval_ns = duration("[connections] beacon_max_interval", s, false)?;
        }
        if let Some(s) = &k.brute_force_window {
            rules.brute_force_window_ns = duration("[connections] brute_force_window", s, false)?;
        }
        if let Some(s) = &k.realert {
            rules.realert_ns = duration("[connections] realert", s, true)?;
            c.scans.realert_ns = rules.realert_ns;
            c.reflection.realert_ns = rules.realert_ns;
            c.syn_acks.realert_ns = rules.realert_ns;
            c.half_open.realert_ns = rules.realert_ns;
        }
        set(k.scan_min_ports, &mut c.scans.min_ports);
        set(k.sweep_min_hosts, &mut c.scans.min_hosts);
        set(k.scan_capacity, &mut c.scans.capacity);
        set(k.scan_capacity, &mut c.reflection.capacity);
        set(k.scan_capacity, &mut c.half_open.capacity);
        set(k.syn_burst_min, &mut c.half_open.burst_min);
        if let Some(s) = &k.syn_burst_window {
            c.half_open.window_ns = duration("[connections] syn_burst_window", s, false)?;
        }
        if let Some(s) = &k.scan_window {
            c.scans.window_ns = duration("[connections] scan_window", s, false)?;
        }
        set(k.syn_ack_repeats_min, &mut c.syn_acks.min);
        if let Some(s) = &k.syn_ack_repeats_window {
            c.syn_acks.window_ns = duration("[connections] syn_ack_repeats_window", s, false)?;
        }
        set(k.scan_burst_ports, &mut c.scans.burst_min_ports);
        set(k.sweep_burst_hosts, &mut c.scans.burst_min_hosts);
        if let Some(s) = &k.scan_burst_window {
            c.scans.burst_window_ns = duration("[connections] scan_burst_window", s, false)?;
        }
        set(k.reflection_min_sources, &mut c.reflection.min_sources);
        set(k.reflection_min_bytes, &mut c.reflection.min_bytes);
        if let Some(s) = &k.reflection_window {
            c.reflection.window_ns = duration("[connections] reflection_window", s, false)?;
        }
        if let Some(ports) = &k.reflection_ports {
            c.reflection.ports.clone_from(ports);
        }
        Ok(())
    }
}

/// The detection settings of a run: defaults, then `--config`, then the flags.
pub fn detect_config(args: &AnalyzeArgs) -> Result<DetectConfig> {
    let mut c = DetectConfig::default();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        FileConfig::parse(&text)
            .and_then(|f| f.apply(&mut c))
            .with_context(|| format!("config file {}", path.display()))?;
    }
    set(args.learn, &mut c.learn_ns);
    set(args.baseline_history, &mut c.history_ns);
    set(args.alert_threshold, &mut c.threshold);
    if let Some(path) = &args.config {
        c.validate()
            .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    } else {
        c.validate().map_err(anyhow::Error::msg)?;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtide_dataflows::time::NS_PER_SEC;

    #[test]
    fn file_settings() {
        let f = FileConfig::parse(
            r#"
            [baseline]
            mode = "decayed"
            history = "2h"
            history_steps = 8
            decay = "1h"
            learn = "0s"
            hour_of_day = true
            [score]
            threshold = 6
            syn_ack_reflection_min = 500
            udp_flood_min_sources = 0
            min_packets = 5
            [score.weights]
            syn_packets = 1.5
            [score.floors]
            packets = 50
            [reassembly]
            bucket = "5s"
            [connections]
            beacon_min = 10
            beacon_max_interval = "4h"
            ignore_ports = [123]
            brute_force_min = 0
            scan_min_ports = 15
            sweep_min_hosts = 0
            scan_window = "5m"
            scan_burst_ports = 0
            sweep_burst_hosts = 12
            scan_burst_window = "2s"
            syn_ack_repeats_min = 20
            syn_ack_repeats_window = "10m"
            syn_burst_min = 50
            syn_burst_window = "1s"
            reflection_min_sources = 20
            reflection_window = "2m"
            reflection_ports = [53]
            "#,
        )
        .expect("parses");
        let mut c = DetectConfig::default();
        f.apply(&mut c).expect("applies");
        assert_eq!(c.mode, BaselineMode::Decayed);
        assert_eq!(c.decay_ns, 3600 * NS_PER_SEC);
        assert_eq!(c.history_step_ns(), 900 * NS_PER_SEC);
        assert_eq!(c.learn_ns, 0);
        assert!(c.hour_of_day);
        assert_eq!(c.threshold, 6.0);
        assert_eq!(c.weights[Metric::SynPackets as usize], 1.5);
        assert_eq!(c.weights[Metric::PktSizeMean as usize], 0.4);
        assert_eq!(c.floors[Metric::Packets as usize], 50.0);
        assert_eq!(c.frag_bucket_ns, 5 * NS_PER_SEC);
        assert_eq!(
            (c.syn_ack_reflection_min, c.udp_flood_min_sources),
            (500, 0)
        );
        assert_eq!(c.syn_flood_min, 1000);
        assert_eq!(c.min_packets, 5);
        assert_eq!(c.connections.beacon_min, 10);
        assert_eq!(c.connections.beacon_max_interval_ns, 4 * 3600 * NS_PER_SEC);
        assert_eq!(c.connections.ignore_ports, vec![123]);
        assert_eq!(c.connections.brute_force_min, 0);
        assert_eq!(c.connections.brute_force_window_ns, 60 * NS_PER_SEC);
        assert_eq!(
            (
                c.reflection.min_sources,
                c.reflection.window_ns,
                c.reflection.ports.clone(),
                c.reflection.min_bytes
            ),
            (20, 120 * NS_PER_SEC, vec![53], 512)
        );
        assert_eq!(
            (c.scans.min_ports, c.scans.window_ns),
            (15, 300 * NS_PER_SEC)
        );
        assert_eq!(c.scans.min_hosts, 0);
        assert_eq!(
            (
                c.scans.burst_min_ports,
                c.scans.burst_min_hosts,
                c.scans.burst_window_ns
            ),
            (0, 12, 2 * NS_PER_SEC)
        );
        assert_eq!(
            (c.syn_acks.min, c.syn_acks.window_ns),
            (20, 600 * NS_PER_SEC)
        );
        assert_eq!(
            (c.half_open.burst_min, c.half_open.window_ns),
            (50, NS_PER_SEC)
        );
        c.validate().expect("valid");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = FileConfig::parse("[score.weights]\nsyn = 1\n")
            .and_then(|f| f.apply(&mut DetectConfig::default()))
            .expect_err("unknown metric");
        assert!(e.to_string().contains("unknown metric \"syn\""), "{e}");
        let e = FileConfig::parse("[baseline]\nhistroy = \"1h\"\n").expect_err("typo");
        assert!(e.to_string().contains("histroy"), "{e}");
        let e = FileConfig::parse("[baseline]\nmode = \"fast\"\n")
            .and_then(|f| f.apply(&mut DetectConfig::default()))
            .expect_err("mode");
        assert!(e.to_string().contains("trailing"), "{e}");
    }
}
