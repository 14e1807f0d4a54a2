//! Baselines of window metrics and the anomaly score: what is measured per window, how a
//! key's history is summarized (exactly, as integer moments that differential dataflow
//! adds and retracts, or as exponentially decayed moments), and how a window is scored
//! against it.
//!
//! ## Metrics
//! Every [`WindowRecord`] yields up to [`METRICS`] values ([`Metric`]). A metric that is
//! undefined for a window (no inter-arrival sample, no packet, no flow ended, or not
//! meaningful at the window's granularity) is *absent*: it neither enters the baseline nor
//! counts in the score. Values are fixed-point integers ([`Metric::scale`] units per
//! natural unit) so that baselines are exact sums, independent of the order in which
//! differential dataflow adds and retracts them (hence of the worker count).
//!
//! ## Score
//! For each metric present in the window and in the baseline, the deviation is
//! `dᵢ = |x − mean| / max(stddev, floorᵢ, relative_floor · |mean|)` (the floors keep an
//! almost constant baseline from turning noise into huge z-scores); for the volume and
//! fan-out counts (`upward`) only an excess counts, `max(x − mean, 0)`. The window's
//! score is `Σ wᵢ·min(dᵢ, max_deviation) / Σ wᵢ` over those metrics: with the cap, a
//! single wild metric (a session's inter-arrival mean jumping from 1 ms to 1 s) cannot
//! alert alone, several metrics must deviate together. A window alerts when its score
//! reaches the threshold, its key's baseline holds at least `min_windows` windows (or,
//! with `population`, its granularity's population baseline does), and the learning
//! phase (`learn` of event time after the end of the first window of the input) is over.
//! Severity: `low` from the threshold, `medium` from `medium` × threshold, `high` from
//! `high` × threshold.

use serde::{Deserialize, Serialize};

use crate::time::NS_PER_SEC;
use crate::window::{flag_index, Granularity, WindowConfig, WindowKey, WindowRecord, WindowStats};

/// Number of metrics per window.
pub const METRICS: usize = 9;

/// A metric of a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Metric {
    /// Packets in the window (both directions of the key's flows).
    Packets,
    /// IP bytes in the window.
    Bytes,
    /// Flows whose first packet fell in the window.
    FlowsStarted,
    /// Mean inter-arrival time within flows (ms); absent without samples.
    IatMeanMs,
    /// Mean packet size (bytes); absent without packets.
    PktSizeMean,
    /// Mean duration of the flows that ended in the window (ms); absent if none did.
    DurationMeanMs,
    /// Packets with SYN set.
    SynPackets,
    /// Distinct peers (responders of a host, initiators of a service); absent for
    /// channels.
    DistinctPeers,
    /// Distinct destination ports; absent for services (they have one).
    DistinctDstPorts,
}

impl Metric {
    /// Every metric, in index order.
    pub const ALL: [Metric; METRICS] = [
        Metric::Packets,
        Metric::Bytes,
        Metric::FlowsStarted,
        Metric::IatMeanMs,
        Metric::PktSizeMean,
        Metric::DurationMeanMs,
        Metric::SynPackets,
        Metric::DistinctPeers,
        Metric::DistinctDstPorts,
    ];

    /// The name used in configuration files and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Packets => "packets",
            Metric::Bytes => "bytes",
            Metric::FlowsStarted => "flows_started",
            Metric::IatMeanMs => "iat_mean_ms",
            Metric::PktSizeMean => "pkt_size_mean",
            Metric::DurationMeanMs => "duration_mean_ms",
            Metric::SynPackets => "syn_packets",
            Metric::DistinctPeers => "distinct_peers",
            Metric::DistinctDstPorts => "distinct_dst_ports",
        }
    }

    /// The metric with this name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Fixed-point units per natural unit (µs for the times in ms, milli-bytes for the
    /// packet size, 1 for counts).
    pub fn scale(self) -> f64 {
        match self {
            Metric::IatMeanMs | Metric::DurationMeanMs | Metric::PktSizeMean => 1000.0,
            _ => 1.0,
        }
    }

    /// Default weight: 0.3 inter-arrival, 0.4 packet size, 0.3 duration (the seed
    /// design's three), 1 for each volume, flag and fan-out metric (the attacks in scope
    /// are volumetric: floods, scans, tunnels; tuned on scenario seeds 201–202).
    pub fn default_weight(self) -> f64 {
        match self {
            Metric::IatMeanMs => 0.3,
            Metric::PktSizeMean => 0.4,
            Metric::DurationMeanMs => 0.3,
            _ => 1.0,
        }
    }

    /// Default absolute floor of the deviation's denominator, in natural units: the
    /// smallest change that is worth a deviation of 1 whatever the baseline's spread.
    pub fn default_floor(self) -> f64 {
        match self {
            Metric::Packets => 10.0,
            Metric::Bytes => 2000.0,
            Metric::FlowsStarted => 3.0,
            Metric::IatMeanMs => 5.0,
            Metric::PktSizeMean => 30.0,
            Metric::DurationMeanMs => 200.0,
            Metric::SynPackets => 3.0,
            Metric::DistinctPeers => 2.0,
            Metric::DistinctDstPorts => 2.0,
        }
    }

    /// Whether only an increase of the metric counts as a deviation by default: the
    /// volume and fan-out counts (packets, bytes, flows, SYNs, peers, ports). The attacks
    /// flowtide looks for add traffic; a quiet window is not suspicious. The means
    /// (inter-arrival, size, duration) deviate in both directions.
    pub fn default_upward(self) -> bool {
        !matches!(
            self,
            Metric::IatMeanMs | Metric::PktSizeMean | Metric::DurationMeanMs
        )
    }
}

/// Largest fixed-point value kept (2⁵⁰): sums of squares over a day of windows stay far
/// inside `i128`.
const MAX_VALUE: u128 = 1 << 50;

fn clamp(v: u128) -> i64 {
    v.min(MAX_VALUE) as i64
}

/// `round(num / den)` in integers (`den > 0`).
fn div_round(num: u128, den: u128) -> u128 {
    num.saturating_add(den / 2) / den
}

/// A window's metric values, fixed-point ([`Metric::scale`]); `None` = absent.
pub type Values = [Option<i64>; METRICS];

/// The metric values of a window's statistics at a granularity.
pub fn observe(granularity: Granularity, s: &WindowStats) -> Values {
    let mut v: Values = [None; METRICS];
    v[Metric::Packets as usize] = Some(clamp(u128::from(s.packets)));
    v[Metric::Bytes as usize] = Some(clamp(u128::from(s.bytes)));
    v[Metric::FlowsStarted as usize] = Some(clamp(u128::from(s.flows_started)));
    if s.iat_count > 0 {
        v[Metric::IatMeanMs as usize] = Some(clamp(div_round(
            s.iat_sum_ns,
            u128::from(s.iat_count) * 1000,
        )));
    }
    if s.packets > 0 {
        v[Metric::PktSizeMean as usize] = Some(clamp(div_round(
            u128::from(s.bytes) * 1000,
            u128::from(s.packets),
        )));
    }
    if s.flows_ended > 0 {
        v[Metric::DurationMeanMs as usize] = Some(clamp(div_round(
            s.ended_duration_sum_ns,
            u128::from(s.flows_ended) * 1000,
        )));
    }
    v[Metric::SynPackets as usize] = Some(clamp(u128::from(s.flags[flag_index::SYN])));
    if granularity != Granularity::Channel {
        v[Metric::DistinctPeers as usize] = Some(clamp(s.peers.len() as u128));
    }
    if granularity != Granularity::Service {
        v[Metric::DistinctDstPorts as usize] = Some(clamp(s.dst_ports.len() as u128));
    }
    v
}

/// The key of a baseline: the window's key, plus the UTC hour of day of the window's
/// start when hour-of-day profiles are on (otherwise [`NO_HOUR`]).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct BaselineKey {
    /// The window key.
    pub key: WindowKey,
    /// Hour of day (0–23) or [`NO_HOUR`].
    pub hour: u8,
}

/// [`BaselineKey::hour`] when profiles are off.
pub const NO_HOUR: u8 = u8::MAX;

impl BaselineKey {
    /// The baseline key of a window.
    pub fn of(w: &WindowRecord, hour_of_day: bool) -> BaselineKey {
        BaselineKey {
            key: w.key,
            hour: if hour_of_day {
                ((w.start_ns / NS_PER_SEC / 3600) % 24) as u8
            } else {
                NO_HOUR
            },
        }
    }
}

pub use crate::moments::Moments;

/// Sample variance `(n·Σx² − (Σx)²) / (n(n−1))` from exact sums (the numerator in
/// integers when it fits, so no cancellation); 0 for `n < 2`.
pub(crate) fn exact_variance(n: i64, sum: i128, sumsq: i128) -> f64 {
    if n < 2 {
        return 0.0;
    }
    let nn = i128::from(n);
    let num = nn
        .checked_mul(sumsq)
        .and_then(|a| sum.checked_mul(sum).and_then(|b| a.checked_sub(b)));
    let num = match num {
        Some(x) => x as f64,
        None => nn as f64 * sumsq as f64 - (sum as f64) * (sum as f64),
    };
    num / (n as f64) / ((n - 1) as f64)
}

/// One metric's baseline: windows where it was present, mean and standard deviation
/// (natural units).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricBaseline {
    /// Windows.
    pub n: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stddev: f64,
}

/// A key's baseline, summarized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Windows in the baseline.
    pub windows: u64,
    /// Per metric (absent when no window had it).
    pub metrics: [Option<MetricBaseline>; METRICS],
}

/// How baselines are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineMode {
    /// Exact moments over a trailing history, maintained by differential dataflow.
    #[default]
    Trailing,
    /// Exponentially decayed moments with one time constant.
    Decayed,
}

/// Detection settings (baselines, score, alerts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectConfig {
    /// Trailing or decayed baselines.
    pub mode: BaselineMode,
    /// Trailing history (ns): a window leaves the baseline this long after its end.
    pub history_ns: u64,
    /// Windows leave the trailing baseline in this many steps per history
    /// ([`DetectConfig::history_step_ns`]): a window ending at `E` leaves at `E` rounded
    /// up to a multiple of the step, plus the history, so a baseline holds the windows
    /// that ended in the last `history` to `history + step`, and a key's windows of one
    /// step leave as one update (0: each window leaves exactly `history` after its end,
    /// at the cost of one pending update per window).
    pub history_steps: u64,
    /// Decay time constant (ns) of the decayed baseline.
    pub decay_ns: u64,
    /// No anomaly alert for windows ending less than this long after the first window's
    /// end (ns).
    pub learn_ns: u64,
    /// No anomaly alert for a key with fewer windows in its baseline.
    pub min_windows: u64,
    /// Separate baselines per UTC hour of day.
    pub hour_of_day: bool,
    /// Score threshold.
    pub threshold: f64,
    /// `medium` severity from this multiple of the threshold.
    pub medium: f64,
    /// `high` severity from this multiple of the threshold.
    pub high: f64,
    /// Relative floor of the deviation's denominator (fraction of |mean|).
    pub relative_floor: f64,
    /// Weights per metric ([`Metric`] order).
    pub weights: [f64; METRICS],
    /// Absolute floors per metric (natural units).
    pub floors: [f64; METRICS],
    /// Metrics whose deviation counts only when the window is above the baseline mean.
    pub upward: [bool; METRICS],
    /// Each metric's deviation counts at most this much in the score (0: no cap), so
    /// that one metric alone cannot make an alert: the score measures how many metrics
    /// deviate strongly, not how extreme the most extreme one is.
    pub max_deviation: f64,
    /// Keys with fewer than `min_windows` windows of their own are judged against the
    /// population baseline of their granularity (every key's windows) instead of not at
    /// all (trailing mode).
    pub population: bool,
    /// Windows are scored every `slide_ns` (hopping windows of the `windows.jsonl` length;
    /// 0: the windows of `windows.jsonl` themselves). Only windows that tile time (start
    /// a multiple of their length) enter the baselines.
    pub slide_ns: u64,
    /// Reassembly alerts aggregate events over buckets of this length (ns).
    pub frag_bucket_ns: u64,
    /// A fragment flood alert needs this many evictions/over-budget drops towards one
    /// destination in one bucket.
    pub frag_flood_threshold: u64,
    /// A fragment flood alert also when this many fragments towards one destination in
    /// one bucket did not become part of a reassembled datagram (0: off).
    pub frag_unfinished_threshold: u64,
    /// A `syn_flood` alert for a service window with at least this many SYNs that are at
    /// least [`crate::rules::FLOOD_SHARE`] of the packets sent to it (0: off). A rule that
    /// needs no history ([`crate::rules`]), so it also works on captures shorter than the
    /// learning phase.
    pub syn_flood_min: u64,
    /// A `syn_ack_reflection` alert for a host window with at least this many SYN-ACKs
    /// making up its traffic (0: off; [`crate::rules::syn_ack_reflection`]).
    pub syn_ack_reflection_min: u64,
    /// A `udp_flood` alert for a UDP service window with unanswered datagrams from at least
    /// this many distinct sources (0: off; [`crate::rules::udp_flood`]).
    pub udp_flood_min_sources: u64,
    /// A window with fewer packets is too small to judge: it is not scored and does not
    /// enter its key's own baseline (it still enters its population's, in trailing mode).
    /// Keeps per-key state for the keys that have traffic to speak of: a spoofed-source
    /// flood brings millions of keys of one packet each.
    pub min_packets: u64,
    /// The connection-pattern rules (beacons, brute force; [`crate::connections`]).
    pub connections: crate::connections::ConnectionRules,
    /// The port-scan rule ([`crate::scans`]).
    pub scans: crate::scans::ScanRules,
    /// The UDP reflection rule ([`crate::reflection`]).
    pub reflection: crate::reflection::ReflectionRules,
    /// The repeated SYN-ACK rule ([`crate::syn_acks`]).
    pub syn_acks: crate::syn_acks::SynAckRules,
    /// The half-open burst rule ([`crate::half_open`]).
    pub half_open: crate::half_open::HalfOpenRules,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            mode: BaselineMode::Trailing,
            history_ns: 24 * 3600 * NS_PER_SEC,
            history_steps: 24,
            decay_ns: 600 * NS_PER_SEC,
            learn_ns: 3600 * NS_PER_SEC,
            min_windows: 10,
            hour_of_day: false,
            threshold: 15.0,
            medium: 2.0,
            high: 4.0,
            relative_floor: 0.1,
            weights: Metric::ALL.map(Metric::default_weight),
            floors: Metric::ALL.map(Metric::default_floor),
            upward: Metric::ALL.map(Metric::default_upward),
            max_deviation: 30.0,
            population: true,
            slide_ns: 10 * NS_PER_SEC,
            frag_bucket_ns: 10 * NS_PER_SEC,
            frag_flood_threshold: 100,
            frag_unfinished_threshold: 500,
            syn_flood_min: 1000,
            syn_ack_reflection_min: 1000,
            udp_flood_min_sources: 1000,
            min_packets: 2,
            connections: Default::default(),
            scans: Default::default(),
            reflection: Default::default(),
            syn_acks: Default::default(),
            half_open: Default::default(),
        }
    }
}

/// Alert severity.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// At or above the threshold.
    #[default]
    Low,
    /// At or above `medium` × threshold.
    Medium,
    /// At or above `high` × threshold.
    High,
}

impl Severity {
    /// The name in alerts.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

impl DetectConfig {
    /// The length of a history step (ns; 0 when windows leave exactly).
    pub fn history_step_ns(&self) -> u64 {
        match self.history_steps {
            0 => 0,
            n => (self.history_ns / n).max(1),
        }
    }

    /// The severity of a score at or above `threshold`.
    pub fn severity(&self, score: f64, threshold: f64) -> Severity {
        if score >= self.high * threshold {
            Severity::High
        } else if score >= self.medium * threshold {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// The windows the detector scores, given those of `windows.jsonl`: the same length,
    /// every `slide_ns` when that is shorter than their slide and divides their length,
    /// else the same windows.
    pub fn scored_windows(&self, w: WindowConfig) -> WindowConfig {
        let s = self.slide_ns;
        if s == 0 || s >= w.slide_ns || !w.size_ns.is_multiple_of(s) {
            w
        } else {
            WindowConfig {
                size_ns: w.size_ns,
                slide_ns: s,
            }
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.threshold.is_finite() && self.threshold > 0.0) {
            return Err("the alert threshold must be a positive number".into());
        }
        if !(self.medium >= 1.0 && self.high >= self.medium && self.high.is_finite()) {
            return Err("severity multiples must satisfy 1 <= medium <= high".into());
        }
        if !(self.relative_floor.is_finite() && self.relative_floor >= 0.0) {
            return Err("relative_floor must be a non-negative number".into());
        }
        for (m, (w, f)) in Metric::ALL
            .iter()
            .zip(self.weights.iter().zip(self.floors.iter()))
        {
            if !(w.is_finite() && *w >= 0.0) {
                return Err(format!("weight of {} must be >= 0", m.name()));
            }
            if !(f.is_finite() && *f > 0.0) {
                return Err(format!("floor of {} must be > 0", m.name()));
            }
        }
        if !(self.max_deviation.is_finite() && self.max_deviation >= 0.0) {
            return Err("max_deviation must be a non-negative number".into());
        }
        if self.weights.iter().all(|w| *w == 0.0) {
            return Err("at least one metric weight must be positive".into());
        }
        if self.history_ns == 0 || self.decay_ns == 0 || self.frag_bucket_ns == 0 {
            return Err("history, decay and the reassembly bucket must be positive".into());
        }
        self.connections
            .validate()
            .and_then(|()| self.scans.validate())
            .and_then(|()| self.reflection.validate())
            .and_then(|()| self.syn_acks.validate())
            .and_then(|()| self.half_open.validate())
            .map_err(|e| format!("[connections] {e}"))
    }
}

/// One metric's part in a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricScore {
    /// The metric.
    pub metric: Metric,
    /// Observed value (natural units).
    pub value: f64,
    /// Baseline mean.
    pub mean: f64,
    /// Baseline standard deviation.
    pub stddev: f64,
    /// Normalized deviation dᵢ.
    pub deviation: f64,
    /// Weight wᵢ.
    pub weight: f64,
}

/// Scores a window's values against a baseline: `(score, per-metric parts)`. Metrics
/// absent from the window or the baseline, or with weight 0, take no part; without any
/// part the score is 0.
pub fn score(
    config: &DetectConfig,
    values: &Values,
    baseline: &Summary,
) -> (f64, Vec<MetricScore>) {
    let mut parts = Vec::new();
    let (mut num, mut den) = (0.0, 0.0);
    for (i, m) in Metric::ALL.into_iter().enumerate() {
        let (Some(x), Some(b)) = (values[i], baseline.metrics[i]) else {
            continue;
        };
        let w = config.weights[i];
        if w <= 0.0 {
            continue;
        }
        let x = x as f64 / m.scale();
        let scale = b
            .stddev
            .max(config.floors[i])
            .max(config.relative_floor * b.mean.abs());
        let diff = if config.upward[i] {
            (x - b.mean).max(0.0)
        } else {
            (x - b.mean).abs()
        };
        let d = diff / scale;
        let capped = if config.max_deviation > 0.0 {
            d.min(config.max_deviation)
        } else {
            d
        };
        num += w * capped;
        den += w;
        parts.push(MetricScore {
            metric: m,
            value: x,
            mean: b.mean,
            stddev: b.stddev,
            deviation: d,
            weight: w,
        });
    }
    if den > 0.0 {
        (num / den, parts)
    } else {
        (0.0, parts)
    }
}

/// Exponentially decayed moments of one key (the decayed baseline): per metric the decayed
/// weight, sum and sum of squares (natural units), and the number of windows that entered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decayed {
    /// End of the last window that entered (ns).
    pub last_end_ns: u64,
    /// Windows that entered (undecayed: the `min_windows` rule counts windows).
    pub windows: u64,
    /// Decayed weights.
    pub w: [f64; METRICS],
    /// Decayed sums.
    pub s1: [f64; METRICS],
    /// Decayed sums of squares.
    pub s2: [f64; METRICS],
}

impl Decayed {
    /// Decays the moments to time `now_ns` with time constant `tau_ns` (factor
    /// `exp(−Δt/τ)`).
    pub fn decay_to(&mut self, now_ns: u64, tau_ns: u64) {
        if now_ns <= self.last_end_ns {
            return;
        }
        let f = (-((now_ns - self.last_end_ns) as f64) / tau_ns.max(1) as f64).exp();
        for i in 0..METRICS {
            self.w[i] *= f;
            self.s1[i] *= f;
            self.s2[i] *= f;
        }
        self.last_end_ns = now_ns;
    }

    /// Adds a window ending at `end_ns` (after [`Decayed::decay_to`] that time).
    pub fn add(&mut self, end_ns: u64, values: &Values) {
        self.last_end_ns = self.last_end_ns.max(end_ns);
        self.windows += 1;
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            if let Some(x) = values[i] {
                let x = x as f64 / m.scale();
                self.w[i] += 1.0;
                self.s1[i] += x;
                self.s2[i] += x * x;
            }
        }
    }

    /// The weighted mean and standard deviation per metric.
    pub fn summary(&self) -> Summary {
        let mut metrics = [None; METRICS];
        for (i, out) in metrics.iter_mut().enumerate() {
            let w = self.w[i];
            if w <= 1e-12 {
                continue;
            }
            let mean = self.s1[i] / w;
            let var = (self.s2[i] / w - mean * mean).max(0.0);
            *out = Some(MetricBaseline {
                n: self.windows,
                mean,
                stddev: var.sqrt(),
            });
        }
        Summary {
            windows: self.windows,
            metrics,
        }
    }
}

/// Values with the first metrics present (`xs`) and the others absent (tests).
#[cfg(test)]
pub(crate) fn test_values(xs: &[i64]) -> Values {
    let mut v = [None; METRICS];
    for (slot, x) in v.iter_mut().zip(xs) {
        *slot = Some(*x);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::difference::{Abelian, IsZero, Semigroup};

    use test_values as values;

    #[test]
    fn moments_match_a_direct_computation() {
        let data: Vec<Values> = (0..50)
            .map(|i| values(&[100 + (i * 7) % 13, 1_000_000 + i * i, 3]))
            .collect();
        let mut m = Moments::default();
        for v in &data {
            m.plus_equals(&Moments::of(v));
        }
        let s = m.summary();
        assert_eq!(s.windows, 50);
        for k in 0..3 {
            let xs: Vec<f64> = data.iter().map(|v| v[k].unwrap_or(0) as f64).collect();
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let b = s.metrics[k].expect("present");
            assert_eq!(b.n, 50);
            assert!((b.mean - mean).abs() < 1e-9 * mean.abs().max(1.0));
            assert!((b.stddev - var.sqrt()).abs() < 1e-9 * var.sqrt().max(1.0));
        }
        assert!(s.metrics[5].is_none());
        // Retracting every window gives zero exactly.
        for v in &data {
            let mut neg = Moments::of(v);
            neg.negate();
            m.plus_equals(&neg);
        }
        assert!(m.is_zero());
    }

    #[test]
    fn observed_values_are_fixed_point() {
        let s = WindowStats {
            packets: 3,
            bytes: 301,
            iat_count: 2,
            iat_sum_ns: 3_000_001,
            flows_ended: 1,
            ended_duration_sum_ns: 2_500_000_000,
            ..Default::default()
        };
        let v = observe(Granularity::Channel, &s);
        assert_eq!(v[Metric::PktSizeMean as usize], Some(100_333));
        assert_eq!(v[Metric::IatMeanMs as usize], Some(1500));
        assert_eq!(v[Metric::DurationMeanMs as usize], Some(2_500_000));
        assert_eq!(v[Metric::DistinctPeers as usize], None);
        assert_eq!(v[Metric::DistinctDstPorts as usize], Some(0));
        let v = observe(Granularity::Service, &WindowStats::default());
        assert_eq!(v[Metric::PktSizeMean as usize], None);
        assert_eq!(v[Metric::DistinctDstPorts as usize], None);
        assert_eq!(v[Metric::DistinctPeers as usize], Some(0));
    }

    #[test]
    fn score_uses_floors_and_weights() {
        let config = DetectConfig::default();
        let mut m = Moments::default();
        for _ in 0..20 {
            m.plus_equals(&Moments::of(&values(&[100, 10_000])));
        }
        let b = m.summary();
        // Constant baseline: the floors decide. packets: max(0, 10, 0.1*100) = 10.
        let (s, parts) = score(&config, &values(&[130, 10_000]), &b);
        assert_eq!(parts.len(), 2);
        assert!((parts[0].deviation - 3.0).abs() < 1e-12);
        // bytes: max(0, 2000, 1000) = 2000 -> 0.
        assert_eq!(parts[1].deviation, 0.0);
        assert!((s - 1.5).abs() < 1e-12, "{s}");
        assert_eq!(config.severity(8.0, 4.0), Severity::Medium);
        assert_eq!(config.severity(16.0, 4.0), Severity::High);
        assert_eq!(config.severity(4.0, 4.0), Severity::Low);
    }

    #[test]
    fn decayed_moments_forget() {
        let tau = 60 * NS_PER_SEC;
        let mut d = Decayed::default();
        for i in 1..=100u64 {
            d.decay_to(i * NS_PER_SEC, tau);
            d.add(i * NS_PER_SEC, &values(&[10]));
        }
        let b = d.summary().metrics[0].expect("present");
        assert!((b.mean - 10.0).abs() < 1e-9 && b.stddev < 1e-6);
        // A level shift: after 10 time constants the old level is forgotten.
        for i in 101..=700u64 {
            d.decay_to(i * NS_PER_SEC, tau);
            d.add(i * NS_PER_SEC, &values(&[50]));
        }
        let b = d.summary().metrics[0].expect("present");
        assert!((b.mean - 50.0).abs() < 0.01, "{}", b.mean);
        assert_eq!(d.windows, 700);
        // One time constant weighs e^-1.
        let mut e = Decayed::default();
        e.add(0, &values(&[1]));
        e.decay_to(tau, tau);
        assert!((e.w[0] - (-1f64).exp()).abs() < 1e-12);
    }
}
