//! Patterns in the sequence of connections one source opens to one service: C2 beacons
//! and brute-force logins, recognised from finished flows without a learned baseline.
//!
//! A *connection* is a flow record of at least two packets (a single unanswered packet
//! is not judged: a spoofed-source flood brings millions of them, each on a channel of
//! its own, and the state they would take is the point of the flood): for TCP one whose
//! initiator sent a SYN, and never a record that continues one cut by the active timeout
//! ([`FlowRecord::continued`], set by the flow table). The
//! connections of a **service channel** (source, destination, destination port,
//! protocol) are judged in the order of their records' end times:
//!
//! - **Beacon** ([`ConnectionRules::beacon_min`] and following): malware checking in
//!   with its controller opens a connection every *p* seconds, *p* often jittered by a
//!   fixed fraction. Among the last [`BEACON_HISTORY`] connection starts of a channel,
//!   with at least `beacon_min` of them, the intervals between consecutive starts must
//!   be regular by two measures at once: the interquartile range over the median (robust
//!   to a missed or doubled check-in) and the coefficient of variation (robust to a few
//!   equal intervals among random ones), both at most `beacon_max_dispersion`. A person
//!   opening connections does so at random times: for exponentially distributed
//!   intervals (Poisson arrivals) the two measures are about 1.6 and 1, and fifteen such
//!   intervals pass both bounds of 0.5 less than once in a thousand draws, while a
//!   uniform jitter of ±40% (dispersions 0.4 and 0.23) passes nine times in ten. The
//!   median interval must be at least `beacon_min_interval` (a faster train is a burst,
//!   not a check-in), and an interval over `beacon_max_interval` starts the channel's
//!   history afresh. Services that are periodic by design are not judged: destination
//!   ports in `ignore_ports` (DNS, NTP, DHCP, NetBIOS, mDNS, SSDP by default),
//!   multicast and broadcast destinations, and protocols other than TCP and UDP.
//! - **Brute force** ([`ConnectionRules::brute_force_min`]): at least that many TCP
//!   *sessions* (connections the service answered and in which payload was sent), started
//!   by one source towards one service within `brute_force_window` — a password guesser
//!   opens a connection per guess or per few guesses and exchanges an authentication in
//!   each; a client reuses its connection (Zeek's SSH guesser threshold is 30). Half-open
//!   connections (a SYN flood's) and bare probes are no sessions.
//!
//! One alert per channel and pattern at most every `realert` of event time.

use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::flow::FlowRecord;
use crate::hash::FastMap;
use crate::packet::{proto, Addr};
use crate::time::NS_PER_SEC;
use crate::window::flag_index;

/// Connection starts kept per channel (the beacon rule judges at most this many).
pub const BEACON_HISTORY: usize = 32;

/// Most session starts kept per channel whatever the configuration (bounds memory).
pub const MAX_HISTORY: usize = 4096;

/// How long after its packets a flow may reach the rules (its idle timeout, 120 s by
/// default; the active timeout cuts a long flow at its latest packets): rules whose
/// windows are shorter keep their state this much longer, so that `forget`, called by
/// record time, does not drop what a flow still to come needs.
pub const JUDGE_DELAY_NS: u64 = 3600 * NS_PER_SEC;

/// Settings of the connection-pattern rules (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRules {
    /// Connections a channel needs before its intervals are judged (0: no beacon rule).
    pub beacon_min: usize,
    /// Largest interquartile-range-over-median and coefficient of variation of the
    /// intervals of a beacon.
    pub beacon_max_dispersion: f64,
    /// Smallest median interval of a beacon (ns).
    pub beacon_min_interval_ns: u64,
    /// An interval longer than this (ns) starts a channel's history afresh; a channel
    /// without a connection for this long is forgotten.
    pub beacon_max_interval_ns: u64,
    /// Destination ports of services that are periodic by design (not judged as beacons).
    pub ignore_ports: Vec<u16>,
    /// Answered TCP connections from one source to one service within
    /// `brute_force_window_ns` that make a brute-force alert (0: no brute-force rule).
    pub brute_force_min: usize,
    /// The brute-force window (ns).
    pub brute_force_window_ns: u64,
    /// At most one alert per channel and pattern this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for ConnectionRules {
    fn default() -> Self {
        ConnectionRules {
            beacon_min: 16,
            beacon_max_dispersion: 0.5,
            beacon_min_interval_ns: NS_PER_SEC,
            beacon_max_interval_ns: 3600 * NS_PER_SEC,
            ignore_ports: vec![53, 67, 68, 123, 137, 138, 546, 547, 1900, 5353],
            brute_force_min: 30,
            brute_force_window_ns: 60 * NS_PER_SEC,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl ConnectionRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.beacon_max_dispersion >= 0.0 && self.beacon_max_dispersion.is_finite()) {
            return Err("beacon_max_dispersion must be a finite number >= 0".into());
        }
        if self.beacon_min == 1 {
            return Err("beacon_min must be 0 (off) or at least 2".into());
        }
        if self.beacon_min > BEACON_HISTORY {
            return Err(format!("beacon_min must be at most {BEACON_HISTORY}"));
        }
        if self.brute_force_min > MAX_HISTORY {
            return Err(format!("brute_force_min must be at most {MAX_HISTORY}"));
        }
        if self.beacon_max_interval_ns == 0 {
            return Err("beacon_max_interval must be positive".into());
        }
        Ok(())
    }

    /// The longest interval between two connection starts that a channel's history
    /// spans.
    fn horizon_ns(&self) -> u64 {
        self.beacon_max_interval_ns.max(self.brute_force_window_ns)
    }
}

/// A service channel: source, destination, destination port, protocol.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct ChannelKey {
    /// Initiator.
    pub src: Addr,
    /// Responder.
    pub dst: Addr,
    /// Responder's port.
    pub dport: u16,
    /// IP protocol.
    pub protocol: u8,
}

/// A rule's state over connection records, judged one at a time in (end time, key)
/// order: every table of the connection-rules operator
/// ([`crate::operators::ConnectionAlerts`]).
pub trait ConnectionRule {
    /// Judges one more record; alerts go to `out` with time `ts_ns` (when the record was
    /// known to have ended: its end, or the end of input).
    fn observe(&mut self, c: &Connection, ts_ns: u64, config: &DetectConfig, out: &mut Vec<Alert>);

    /// Forgets quiet state as of `now_ns`, a record time no later than that of the next
    /// record observed (called at points that do not depend on the worker count).
    fn forget(&mut self, now_ns: u64);

    /// How long the rule keeps quiet state (its windows plus [`JUDGE_DELAY_NS`]): the
    /// operator calls [`Self::forget`] every eighth of it.
    fn memory_ns(&self) -> u64;
}

/// Implements [`ConnectionRule`] by the types' own `observe` and `forget`.
macro_rules! connection_rules {
    ($($t:ty),+ $(,)?) => {
        $(impl ConnectionRule for $t {
            fn observe(
                &mut self,
                c: &Connection,
                ts_ns: u64,
                config: &DetectConfig,
                out: &mut Vec<Alert>,
            ) {
                <$t>::observe(self, c, ts_ns, config, out)
            }

            fn forget(&mut self, now_ns: u64) {
                <$t>::forget(self, now_ns)
            }

            fn memory_ns(&self) -> u64 {
                <$t>::memory_ns(self)
            }
        })+
    };
}

connection_rules!(
    ConnectionPatterns,
    crate::scans::PortScans,
    crate::reflection::Reflections,
    crate::syn_acks::SynAckRepeats,
    crate::half_open::HalfOpenBursts,
);

/// Judges `conns` in their canonical order at their end times, with default settings.
#[cfg(test)]
pub(crate) fn judge_in_order(rule: &mut impl ConnectionRule, conns: &[Connection]) -> Vec<Alert> {
    let mut sorted = conns.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    for c in &sorted {
        rule.observe(c, c.end_ns, &DetectConfig::default(), &mut out);
    }
    out
}

/// Which rules judge a [`Connection`] record.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Role {
    /// A finished flow, routed by its source: the connection-pattern, scan and repeated
    /// SYN-ACK rules.
    #[default]
    Flow,
    /// An unsolicited response that opened a UDP flow
    /// ([`crate::reflection::ReflectionRules::is_unsolicited`], [`Connection::of_opening`]):
    /// routed by its destination (the victim), judged by the reflection rule only.
    Reflected,
    /// A copy of a half-open TCP flow ([`Connection::half_open`]): routed by its
    /// destination (the service), judged by the half-open burst rule only.
    HalfOpen,
}

impl Role {
    /// True when the record is routed by its destination.
    pub fn by_destination(self) -> bool {
        self != Role::Flow
    }
}

/// What the rules need of one finished flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Connection {
    /// When the flow was known to have ended (ns; `u64::MAX` at the end of input): the
    /// order in which a channel's connections are judged.
    pub end_ns: u64,
    /// The channel.
    pub key: ChannelKey,
    /// Capture time of its first packet.
    pub start_ns: u64,
    /// Capture time of its last packet.
    pub last_ns: u64,
    /// Initiator's port.
    pub sport: u16,
    /// The responder sent at least one packet.
    pub answered: bool,
    /// A TCP connection attempt (the initiator sent a SYN); true for other protocols.
    pub opened: bool,
    /// The flow continues a record cut by the active timeout: no new connection.
    pub continued: bool,
    /// The flow is one unanswered packet.
    pub lone: bool,
    /// Either side sent payload bytes.
    pub carried_payload: bool,
    /// An ICMP or ICMPv6 echo exchange started by the source ([`FlowRecord::icmp_echo`]).
    pub echo: bool,
    /// SYN-ACKs of a flow the source never opened
    /// ([`crate::syn_acks::unsolicited_syn_acks`]).
    pub syn_acks: u32,
    /// A TCP connection attempt that went no further: the initiator sent SYNs only (no
    /// ACK, nothing else) and nobody sent payload.
    pub half_open: bool,
    /// Which rules judge this record, and by which address it is routed.
    pub role: Role,
}

impl Connection {
    /// The connection of a finished flow.
    pub fn of_flow(f: &FlowRecord) -> Connection {
        Connection {
            end_ns: f.end_ns,
            key: ChannelKey {
                src: f.src,
                dst: f.dst,
                dport: f.dport,
                protocol: f.key.protocol,
            },
            start_ns: f.first_ns,
            last_ns: f.last_ns,
            sport: f.sport,
            answered: f.dst2src.packets > 0,
            opened: f.key.protocol != proto::TCP || f.src2dst.flags[flag_index::SYN] > 0,
            continued: f.continued,
            lone: f.src2dst.packets + f.dst2src.packets <= 1,
            carried_payload: f.src2dst.payload_bytes + f.dst2src.payload_bytes > 0,
            echo: f.icmp_echo,
            syn_acks: crate::syn_acks::unsolicited_syn_acks(f),
            half_open: is_half_open(f),
            role: Role::Flow,
        }
    }

    /// The record of an unsolicited response that opened a UDP flow: judged at the
    /// packet's time, routed by its destination (the victim), by the reflection rule
    /// only.
    pub fn of_opening(o: &crate::flow::FlowOpening) -> Connection {
        Connection {
            end_ns: o.ts_ns,
            key: ChannelKey {
                src: o.src,
                dst: o.dst,
                dport: o.dport,
                protocol: proto::UDP,
            },
            start_ns: o.ts_ns,
            last_ns: o.ts_ns,
            sport: o.sport,
            answered: false,
            opened: true,
            continued: false,
            lone: true,
            carried_payload: true,
            echo: false,
            syn_acks: 0,
            half_open: false,
            role: Role::Reflected,
        }
    }
}

/// True for a TCP flow whose initiator sent SYNs and nothing else, without payload on
/// either side (see [`Connection::half_open`]).
fn is_half_open(f: &FlowRecord) -> bool {
    let ours = &f.src2dst;
    f.key.protocol == proto::TCP
        && ours.packets > 0
        && u64::from(ours.flags[flag_index::SYN]) == ours.packets
        && ours.flags[flag_index::ACK] == 0
        && ours.payload_bytes + f.dst2src.payload_bytes == 0
}

/// True for multicast and broadcast destinations (IPv4 limited broadcast, class D,
/// IPv6 ff00::/8) — announcements, not check-ins.
pub(crate) fn is_group(a: &Addr) -> bool {
    match a.as_v4() {
        Some(v4) => v4 == [255; 4] || (224..=239).contains(&v4[0]),
        None => a.0[0] == 0xff,
    }
}

/// One channel's recent connections.
#[derive(Debug, Default)]
struct Channel {
    /// The last [`BEACON_HISTORY`] connection starts, ascending (beacon rule).
    starts: Vec<u64>,
    /// The last `brute_force_min` starts of sessions (answered, with payload), ascending
    /// (brute-force rule).
    sessions: Vec<u64>,
    /// Start of the last connection judged.
    newest_ns: u64,
    /// Time of the last beacon and brute-force alerts.
    last_beacon: Option<u64>,
    last_brute_force: Option<u64>,
}

/// The regularity of a train of connection starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularity {
    /// Intervals judged.
    pub intervals: usize,
    /// Median interval (ns).
    pub median_ns: f64,
    /// Mean interval (ns).
    pub mean_ns: f64,
    /// Interquartile range over median.
    pub iqr_ratio: f64,
    /// Standard deviation over mean.
    pub cv: f64,
}

impl Regularity {
    /// The larger of the two dispersions.
    pub fn dispersion(&self) -> f64 {
        self.iqr_ratio.max(self.cv)
    }
}

/// Quantile `q` of sorted values, linearly interpolated between order statistics
/// (the "inclusive" definition).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The regularity of the intervals between consecutive `starts` (ascending; a start
/// before its predecessor counts as a zero interval); `None` for fewer than two
/// intervals. Up to [`BEACON_HISTORY`] intervals are kept on the stack.
pub fn regularity(starts: impl IntoIterator<Item = u64>) -> Option<Regularity> {
    let mut stack = [0f64; BEACON_HISTORY];
    let mut heap: Vec<f64> = Vec::new();
    let (mut count, mut prev) = (0usize, None);
    for t in starts {
        if let Some(p) = prev {
            let d = t.saturating_sub(p) as f64;
            if count < stack.len() {
                stack[count] = d;
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&stack);
                }
                heap.push(d);
            }
            count += 1;
        }
        prev = Some(t);
    }
    if count < 2 {
        return None;
    }
    let iv: &mut [f64] = if heap.is_empty() {
        &mut stack[..count]
    } else {
        &mut heap
    };
    iv.sort_by(f64::total_cmp);
    let iv: &[f64] = iv;
    let n = iv.len() as f64;
    let mean = iv.iter().sum::<f64>() / n;
    let var = iv.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let median = quantile(iv, 0.5);
    let iqr = quantile(iv, 0.75) - quantile(iv, 0.25);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::INFINITY };
    Some(Regularity {
        intervals: iv.len(),
        median_ns: median,
        mean_ns: mean,
        iqr_ratio: ratio(iqr, median),
        cv: ratio(var.sqrt(), mean),
    })
}

/// One worker's connection-pattern state, independent of timely (unit-testable).
///
/// Feed connections in (end time, key, start) order with [`Self::observe`]; call
/// [`Self::forget`] now and then, between connections, to drop quiet channels.
#[derive(Debug, Default)]
pub struct ConnectionPatterns {
    rules: ConnectionRules,
    channels: FastMap<ChannelKey, Channel>,
}

impl ConnectionPatterns {
    /// Empty state.
    pub fn new(rules: ConnectionRules) -> Self {
        ConnectionPatterns {
            rules,
            channels: FastMap::default(),
        }
    }

    /// Channels remembered.
    pub fn len(&self) -> usize {
        self.channels.len()
    }

    /// True when no channel is remembered.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// How long a channel is kept after its newest connection start: the longest
    /// interval its history spans, plus the time a connection may take to reach the rules
    /// ([`JUDGE_DELAY_NS`]).
    pub fn memory_ns(&self) -> u64 {
        self.rules.horizon_ns().saturating_add(JUDGE_DELAY_NS)
    }

    /// Forgets the channels whose newest connection started [`Self::memory_ns`] or more
    /// before `now_ns` (a time no later than that of the next connection observed, which
    /// then started a horizon or more after them and would start them afresh anyway).
    pub fn forget(&mut self, now_ns: u64) {
        let keep = self.memory_ns();
        self.channels
            .retain(|_, c| c.newest_ns.saturating_add(keep) > now_ns);
    }

    /// Judges one more connection; alerts go to `out` with time `ts_ns` (when the
    /// connection was known to have ended: its end, or the end of input).
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        let k = c.key;
        let beacon = rules.beacon_min > 0
            && (k.protocol == proto::TCP || k.protocol == proto::UDP)
            && !rules.ignore_ports.contains(&k.dport)
            && !is_group(&k.dst);
        let brute = rules.brute_force_min > 0 && k.protocol == proto::TCP;
        if !(beacon || brute) || !c.opened || c.lone || c.continued {
            return;
        }
        let ch = match self.channels.entry(k) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(Channel::default()),
        };
        // A channel whose newest start is a horizon or more before this one's starts
        // afresh here (start time against start time: a connection reaches the rules
        // when it ends), whether or not `forget` has dropped it: the outcome does not
        // depend on when `forget` runs.
        if ch.newest_ns.saturating_add(rules.horizon_ns()) <= c.start_ns {
            *ch = Channel::default();
        }
        ch.newest_ns = ch.newest_ns.max(c.start_ns);
        if beacon {
            // A gap longer than a beacon's longest interval starts the history afresh.
            if ch
                .starts
                .last()
                .is_some_and(|&t| c.start_ns > t.saturating_add(rules.beacon_max_interval_ns))
            {
                ch.starts.clear();
            }
            insert_bounded(&mut ch.starts, c.start_ns, BEACON_HISTORY);
            judge_beacon(rules, config, k, ch, ts_ns, out);
        }
        if brute && c.answered && c.carried_payload {
            insert_bounded(&mut ch.sessions, c.start_ns, rules.brute_force_min);
            judge_brute_force(rules, config, k, ch, ts_ns, out);
        }
    }
}

/// Inserts `t` into ascending `v`, dropping the oldest beyond `cap`.
fn insert_bounded(v: &mut Vec<u64>, t: u64, cap: usize) {
    let at = v.partition_point(|&x| x <= t);
    v.insert(at, t);
    if v.len() > cap {
        v.remove(0);
    }
}

fn due(last: Option<u64>, ts_ns: u64, realert_ns: u64) -> bool {
    last.is_none_or(|t| ts_ns >= t.saturating_add(realert_ns))
}

/// A channel alert over `[from_ns, ts_ns]` with its score (threshold 1).
fn channel_alert(
    k: ChannelKey,
    kind: AlertKind,
    span: (u64, u64),
    score: f64,
    config: &DetectConfig,
) -> Alert {
    Alert {
        granularity: AlertGranularity::Channel,
        src: Some(k.src),
        dst: Some(k.dst),
        dst_port: Some(k.dport),
        protocol: Some(k.protocol),
        ..Alert::of_rule(kind, span, score, config)
    }
}

fn judge_beacon(
    rules: &ConnectionRules,
    config: &DetectConfig,
    k: ChannelKey,
    ch: &mut Channel,
    ts_ns: u64,
    out: &mut Vec<Alert>,
) {
    let n = ch.starts.len().min(BEACON_HISTORY);
    if n < rules.beacon_min || !due(ch.last_beacon, ts_ns, rules.realert_ns) {
        return;
    }
    let judged = &ch.starts[ch.starts.len() - n..];
    let Some(r) = regularity(judged.iter().copied()) else {
        return;
    };
    let max = rules.beacon_max_dispersion;
    if r.median_ns < rules.beacon_min_interval_ns as f64 || r.dispersion() > max {
        return;
    }
    ch.last_beacon = Some(ts_ns);
    let score = if r.dispersion() > 0.0 {
        max / r.dispersion()
    } else {
        f64::from(u16::MAX)
    };
    let mut a = channel_alert(k, AlertKind::Beacon, (judged[0], ts_ns), score, config);
    a.metrics = vec![
        AlertMetric::observed("connections", n as f64),
        AlertMetric::observed("median_interval_s", r.median_ns / 1e9),
        AlertMetric::observed("mean_interval_s", r.mean_ns / 1e9),
        AlertMetric::observed("interval_iqr_ratio", r.iqr_ratio),
        AlertMetric::observed("interval_cv", r.cv),
    ];
    a.explanation = format!(
        "{}: {} connections {} s apart (interquartile range {}% and standard deviation \
         {}% of the interval): a regular check-in, as a C2 beacon makes (dispersion at \
         most {}%)",
        a.describe_key(),
        n,
        short_number(r.median_ns / 1e9),
        (r.iqr_ratio * 100.0).round(),
        (r.cv * 100.0).round(),
        (max * 100.0).round(),
    );
    out.push(a);
}

fn judge_brute_force(
    rules: &ConnectionRules,
    config: &DetectConfig,
    k: ChannelKey,
    ch: &mut Channel,
    ts_ns: u64,
    out: &mut Vec<Alert>,
) {
    if !due(ch.last_brute_force, ts_ns, rules.realert_ns) {
        return;
    }
    let min = rules.brute_force_min;
    let window = rules.brute_force_window_ns;
    // The densest run of sessions within the window, ending at each session.
    let s = &ch.sessions;
    let mut best = (0usize, 0u64, 0u64);
    let mut lo = 0;
    for (hi, &t) in s.iter().enumerate() {
        while t - s[lo] >= window {
            lo += 1;
        }
        if hi + 1 - lo > best.0 {
            best = (hi + 1 - lo, s[lo], t);
        }
    }
    let (count, from, to) = best;
    if count < min {
        return;
    }
    ch.last_brute_force = Some(ts_ns);
    let score = count as f64 / min as f64;
    let mut a = channel_alert(k, AlertKind::BruteForce, (from, ts_ns), score, config);
    a.metrics = vec![
        AlertMetric::observed("connections", count as f64),
        AlertMetric::observed("span_s", (to - from) as f64 / 1e9),
    ];
    a.explanation = format!(
        "{}: {} sessions in {} s from one source to one service: repeated \
         logins, as a password guesser makes (threshold {} within {} s)",
        a.describe_key(),
        count,
        short_number((to - from) as f64 / 1e9),
        min,
        short_number(window as f64 / 1e9),
    );
    out.push(a);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(start_s: f64, answered: bool) -> Connection {
        let start_ns = (start_s * 1e9) as u64;
        Connection {
            end_ns: start_ns + 1_000_000,
            key: ChannelKey {
                src: Addr::from_v4([10, 0, 0, 5]),
                dst: Addr::from_v4([198, 51, 100, 7]),
                dport: 443,
                protocol: proto::TCP,
            },
            start_ns,
            last_ns: start_ns,
            sport: 40000,
            answered,
            opened: true,
            continued: false,
            lone: false,
            carried_payload: true,
            echo: false,
            syn_acks: 0,
            half_open: false,
            role: Role::Flow,
        }
    }

    fn run(starts: &[f64], rules: ConnectionRules) -> Vec<Alert> {
        let mut p = ConnectionPatterns::new(rules);
        let mut out = Vec::new();
        for &s in starts {
            let c = conn(s, true);
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        out
    }

    fn beacons_only() -> ConnectionRules {
        ConnectionRules {
            brute_force_min: 0,
            ..Default::default()
        }
    }

    /// A deterministic pseudo-random stream in [0, 1).
    fn uniform(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn regularity_of_a_plain_train() {
        let r = regularity([0, 10, 20, 30, 40]).expect("4 intervals");
        assert_eq!(
            (r.intervals, r.median_ns, r.iqr_ratio, r.cv),
            (4, 10.0, 0.0, 0.0)
        );
        assert!(regularity([0, 10]).is_none());
        // Quartiles interpolate: intervals 1, 2, 3, 4 → Q1 1.75, median 2.5, Q3 3.25.
        let r = regularity([0, 1, 3, 6, 10]).expect("4 intervals");
        assert!((r.iqr_ratio - 1.5 / 2.5).abs() < 1e-12);
        // More intervals than the stack holds, and starts out of order: no panic.
        let long = regularity((0..100u64).map(|i| i * 60)).expect("99 intervals");
        assert_eq!((long.intervals, long.cv), (99, 0.0));
        assert!(regularity([50, 10, 20]).is_some());
    }

    #[test]
    fn jittered_beacon_alerts_once_per_realert() {
        let mut seed = 7;
        let mut t = 0.0;
        let starts: Vec<f64> = (0..100)
            .map(|_| {
                t += 60.0 * (1.0 + 0.4 * (2.0 * uniform(&mut seed) - 1.0));
                t
            })
            .collect();
        let alerts = run(&starts, beacons_only());
        // ~100 minutes of check-ins: the first alert, then one an hour later.
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind, AlertKind::Beacon);
        assert_eq!(a.dst_port, Some(443));
        assert!(a.score >= 1.0);
        let median = a.metrics[1].value;
        assert!((50.0..70.0).contains(&median), "{median}");
        assert!(alerts[1].ts_ns - a.ts_ns >= 3600 * NS_PER_SEC);
    }

    #[test]
    fn random_connections_are_no_beacon() {
        // Poisson arrivals (exponential intervals, mean 60 s) over a day.
        let mut seed = 11;
        let mut t = 0.0;
        let starts: Vec<f64> = (0..1440)
            .map(|_| {
                t += -60.0 * (1.0 - uniform(&mut seed)).ln();
                t
            })
            .collect();
        assert!(run(&starts, beacons_only()).is_empty());
    }

    #[test]
    fn too_few_too_fast_or_ignored_make_no_beacon() {
        let regular: Vec<f64> = (1..=15).map(|i| f64::from(i) * 30.0).collect();
        assert!(run(&regular, beacons_only()).is_empty(), "15 < beacon_min");
        let fast: Vec<f64> = (1..=40).map(|i| f64::from(i) * 0.5).collect();
        assert!(
            run(&fast, beacons_only()).is_empty(),
            "0.5 s apart: a burst"
        );
        let mut p = ConnectionPatterns::new(beacons_only());
        let mut out = Vec::new();
        for i in 1..=40 {
            let mut c = conn(f64::from(i) * 64.0, true);
            c.key.protocol = proto::UDP;
            c.key.dport = 123;
            c.sport = i as u16;
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert!(out.is_empty(), "NTP polls are periodic by design");
        assert!(p.is_empty());
        for i in 1..=40 {
            let mut c = conn(f64::from(i) * 60.0, false);
            c.lone = true;
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert!(
            out.is_empty() && p.is_empty(),
            "single packets take no state"
        );
    }

    #[test]
    fn a_long_gap_restarts_the_history() {
        let mut starts: Vec<f64> = (1..=10).map(|i| f64::from(i) * 60.0).collect();
        starts.extend((1..=10).map(|i| 10_000.0 + f64::from(i) * 60.0));
        assert!(run(&starts, beacons_only()).is_empty());
    }

    #[test]
    fn brute_force_needs_answered_connections_in_the_window() {
        let rules = ConnectionRules {
            beacon_min: 0,
            ..Default::default()
        };
        let burst: Vec<f64> = (0..40).map(|i| f64::from(i) * 0.25).collect();
        let alerts = run(&burst, rules.clone());
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].kind, AlertKind::BruteForce);
        assert_eq!(
            alerts[0].metrics[0].value, 30.0,
            "alerts at the 30th connection"
        );
        // The same connections spread over ten minutes, or never answered: nothing.
        let slow: Vec<f64> = (0..40).map(|i| f64::from(i) * 15.0).collect();
        assert!(run(&slow, rules.clone()).is_empty());
        let mut p = ConnectionPatterns::new(rules);
        let mut out = Vec::new();
        for &s in &burst {
            let c = conn(s, false);
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert!(out.is_empty());
        for &s in &burst {
            let mut c = conn(s + 100.0, true);
            c.carried_payload = false; // half-open or bare handshakes: no logins
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert!(out.is_empty());
        // Sessions between bare handshakes: only the sessions count.
        for i in 0..60u32 {
            let mut c = conn(1000.0 + f64::from(i) * 0.25, true);
            c.carried_payload = i % 2 == 0;
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].metrics[0].value, 30.0);
        assert_eq!(out[0].metrics[1].value, 29.0 * 0.5, "first to 30th session");
    }

    #[test]
    fn split_udp_flows_are_one_connection() {
        let mut p = ConnectionPatterns::new(beacons_only());
        let mut out = Vec::new();
        // One UDP flow to port 4444 split by the active timeout every 1800 s, for a day:
        // every record after the first continues the one before.
        for i in 0..48u64 {
            let mut c = conn(i as f64 * 1800.0, true);
            c.key.protocol = proto::UDP;
            c.key.dport = 4444;
            c.continued = i > 0;
            p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        }
        assert!(out.is_empty());
    }

    /// The rules' operator holds one record per finished flow until the frontier passes
    /// it (every flow open at the end of input at once): README's memory figures count
    /// 80 bytes a record.
    #[test]
    fn a_connection_record_is_80_bytes() {
        assert_eq!(std::mem::size_of::<Connection>(), 80);
    }

    #[test]
    fn quiet_channels_are_forgotten() {
        let mut p = ConnectionPatterns::new(ConnectionRules::default());
        let mut out = Vec::new();
        let c = conn(10.0, true);
        p.observe(&c, c.end_ns, &DetectConfig::default(), &mut out);
        // Kept for the horizon (1 h) plus the time a connection may take to arrive.
        let memory = p.memory_ns();
        assert_eq!(memory, 7200 * NS_PER_SEC);
        p.forget(10 * NS_PER_SEC + memory - 1);
        assert_eq!(p.len(), 1);
        p.forget(10 * NS_PER_SEC + memory);
        assert!(p.is_empty());
    }

    #[test]
    fn group_destinations_and_validation() {
        assert!(is_group(&Addr::from_v4([239, 255, 255, 250])));
        assert!(is_group(&Addr::from_v4([255, 255, 255, 255])));
        assert!(!is_group(&Addr::from_v4([10, 0, 0, 1])));
        let mut v6 = [0u8; 16];
        v6[0] = 0xff;
        assert!(is_group(&Addr::from_v6(v6)));
        assert!(ConnectionRules::default().validate().is_ok());
        let bad = ConnectionRules {
            beacon_min: 1,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
