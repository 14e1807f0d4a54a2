//! Repeated SYN-ACKs for a connection a host never opened: a server answering SYNs that
//! carry the host's address, recognised from finished flows without a baseline.
//!
//! In a TCP reflection attack the attacker sends SYNs with the victim's address as their
//! source to servers, which answer the victim with SYN-ACKs, and retransmit them while no
//! ACK comes (an amplification of up to the server's retry count; attackers that repeat
//! their SYNs, often with the same ports on both sides, keep one server's SYN-ACKs coming
//! for as long as they like). The victim's link sees SYN-ACKs on flows it never opened.
//!
//! An **unsolicited SYN-ACK flow** is a TCP flow in which the responder sent only SYN-ACKs
//! and the initiator (the receiver of the SYN-ACKs) sent no SYN and neither side sent
//! payload: the victim answers with nothing, or with RSTs. A real connection whose SYN the
//! sensor missed (asymmetric mirroring, a capture started mid-handshake) goes on with ACKs
//! and data; a server gives up on one that does not after a few retransmissions (Linux
//! sends at most 1 + `tcp_synack_retries` = 6 SYN-ACKs by default, Windows 3).
//!
//! A `syn_ack_reflection` **channel** alert names a victim (source), the server
//! (destination) and its port when the victim's unsolicited SYN-ACK flows from that
//! service carry at least [`SynAckRules::min`] SYN-ACKs in all, each flow starting at most
//! [`SynAckRules::window_ns`] after the previous one ended: more than any TCP stack
//! retransmits for one connection. The host-window rule `syn_ack_reflection`
//! ([`crate::rules::syn_ack_reflection`]) sees the volume of a reflection from many
//! servers; this one sees a single server's SYN-ACKs at any rate.
//!
//! Flows are judged when they end (the connection-rules operator), in (end time, key)
//! order; state is one small entry per channel that received unsolicited SYN-ACKs,
//! forgotten once its window and the realert interval have passed.

use std::collections::hash_map::Entry;

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::connections::{ChannelKey, Connection, JUDGE_DELAY_NS};
use crate::flow::FlowRecord;
use crate::hash::FastMap;
use crate::packet::proto;
use crate::time::NS_PER_SEC;
use crate::window::flag_index;

/// Settings of the repeated SYN-ACK rule (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynAckRules {
    /// Unsolicited SYN-ACKs from one service to one host that make an alert (0: off).
    pub min: u64,
    /// A channel whose previous unsolicited flow ended this long (ns) before the next one
    /// starts counts afresh.
    pub window_ns: u64,
    /// At most one alert per channel this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for SynAckRules {
    fn default() -> Self {
        SynAckRules {
            min: 8,
            window_ns: 60 * NS_PER_SEC,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl SynAckRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        if self.min == 1 {
            return Err("syn_ack_repeats_min must be 0 (off) or at least 2".into());
        }
        if self.window_ns == 0 {
            return Err("syn_ack_repeats_window must be positive".into());
        }
        Ok(())
    }
}

/// The SYN-ACKs of a flow if it is an unsolicited SYN-ACK flow (see the module docs),
/// else 0.
pub fn unsolicited_syn_acks(f: &FlowRecord) -> u32 {
    let (ours, theirs) = (&f.src2dst, &f.dst2src);
    let only_syn_acks = theirs.packets > 0
        && u64::from(theirs.flags[flag_index::SYN]) == theirs.packets
        && u64::from(theirs.flags[flag_index::ACK]) == theirs.packets;
    if f.key.protocol != proto::TCP
        || !only_syn_acks
        || ours.flags[flag_index::SYN] > 0
        || ours.payload_bytes + theirs.payload_bytes > 0
    {
        return 0;
    }
    u32::try_from(theirs.packets).unwrap_or(u32::MAX)
}

/// One channel's unsolicited SYN-ACKs.
#[derive(Debug, Default)]
struct Run {
    syn_acks: u64,
    first_ns: u64,
    /// End of the latest flow counted (its last packet).
    last_ns: u64,
    last_alert: Option<u64>,
}

/// One worker's repeated SYN-ACK state, independent of timely (unit-testable).
#[derive(Debug, Default)]
pub struct SynAckRepeats {
    rules: SynAckRules,
    runs: FastMap<ChannelKey, Run>,
}

impl SynAckRepeats {
    /// Empty state.
    pub fn new(rules: SynAckRules) -> Self {
        SynAckRepeats {
            rules,
            runs: FastMap::default(),
        }
    }

    /// Channels remembered.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// True when no channel is remembered.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// How long a channel is remembered after its latest SYN-ACK (its window, plus the
    /// time a flow may take to reach the rules: [`JUDGE_DELAY_NS`]).
    pub fn memory_ns(&self) -> u64 {
        self.rules.window_ns.saturating_add(JUDGE_DELAY_NS)
    }

    /// Forgets the channels whose latest SYN-ACK is [`Self::memory_ns`] before `now_ns`
    /// (a time no later than that of the next connection observed) and that may alert
    /// again.
    pub fn forget(&mut self, now_ns: u64) {
        let memory = self.memory_ns();
        let r = &self.rules;
        self.runs.retain(|_, run| {
            run.last_ns.saturating_add(memory) > now_ns
                || run
                    .last_alert
                    .is_some_and(|t| t.saturating_add(r.realert_ns) > now_ns)
        });
    }

    /// Judges one more connection (in (end time, key) order); an alert goes to `out` with
    /// time `ts_ns`.
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        if rules.min == 0 || c.syn_acks == 0 {
            return;
        }
        let run = match self.runs.entry(c.key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(Run::default()),
        };
        if run.syn_acks == 0 || c.start_ns > run.last_ns.saturating_add(rules.window_ns) {
            run.syn_acks = 0;
            run.first_ns = c.start_ns;
        }
        run.first_ns = run.first_ns.min(c.start_ns);
        run.last_ns = run.last_ns.max(c.last_ns);
        run.syn_acks += u64::from(c.syn_acks);
        let due = run
            .last_alert
            .is_none_or(|t| ts_ns >= t.saturating_add(rules.realert_ns));
        if run.syn_acks < rules.min || !due {
            return;
        }
        run.last_alert = Some(ts_ns);
        let k = c.key;
        let score = run.syn_acks as f64 / rules.min as f64;
        let span_s = run.last_ns.saturating_sub(run.first_ns) as f64 / 1e9;
        let mut a = Alert {
            granularity: AlertGranularity::Channel,
            src: Some(k.src),
            dst: Some(k.dst),
            dst_port: Some(k.dport),
            protocol: Some(proto::TCP),
            metrics: vec![
                AlertMetric::observed("syn_ack_packets", run.syn_acks as f64),
                AlertMetric::observed("span_s", span_s),
            ],
            ..Alert::of_rule(
                AlertKind::SynAckReflection,
                (run.first_ns, ts_ns),
                score,
                config,
            )
        };
        a.explanation = format!(
            "{}: {} SYN-ACKs from the server in {} s on flows the host never opened (the \
             server sent nothing else; the host no SYN and no data): a server answering \
             SYNs spoofed with the host's address (threshold {}, more SYN-ACKs than a TCP \
             stack retransmits for one connection)",
            a.describe_key(),
            run.syn_acks,
            short_number(span_s),
            rules.min,
        );
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;

    /// A flow from the server 198.51.100.9:21 to the victim 10.10.10.10:21 with
    /// `syn_acks` SYN-ACKs, the victim sending `rsts` RSTs.
    fn flow(start_s: u64, syn_acks: u64, rsts: u64) -> FlowRecord {
        let mut f = FlowRecord::default();
        f.key.protocol = proto::TCP;
        f.src = Addr::from_v4([10, 10, 10, 10]);
        f.dst = Addr::from_v4([198, 51, 100, 9]);
        (f.sport, f.dport) = (21, 21);
        f.first_ns = start_s * NS_PER_SEC;
        f.last_ns = f.first_ns + syn_acks.saturating_sub(1) * 2 * NS_PER_SEC;
        f.end_ns = f.last_ns + 120 * NS_PER_SEC;
        f.dst2src.packets = syn_acks;
        f.dst2src.flags[flag_index::SYN] = syn_acks as u32;
        f.dst2src.flags[flag_index::ACK] = syn_acks as u32;
        f.src2dst.packets = rsts;
        f.src2dst.flags[flag_index::RST] = rsts as u32;
        f
    }

    fn judge(r: &mut SynAckRepeats, flows: &[FlowRecord]) -> Vec<Alert> {
        let conns: Vec<Connection> = flows.iter().map(Connection::of_flow).collect();
        crate::connections::judge_in_order(r, &conns)
    }

    #[test]
    fn only_syn_acks_on_a_flow_the_host_never_opened_count() {
        assert_eq!(unsolicited_syn_acks(&flow(0, 5, 0)), 5);
        assert_eq!(unsolicited_syn_acks(&flow(0, 1, 1)), 1, "the victim's RST");
        let mut opened = flow(0, 5, 1);
        opened.src2dst.flags[flag_index::SYN] = 1;
        assert_eq!(unsolicited_syn_acks(&opened), 0, "the host sent a SYN");
        let mut data = flow(0, 5, 0);
        data.dst2src.packets += 3;
        data.dst2src.flags[flag_index::ACK] += 3;
        data.dst2src.payload_bytes = 1200;
        assert_eq!(
            unsolicited_syn_acks(&data),
            0,
            "missed SYN of a real session"
        );
        let mut udp = flow(0, 5, 0);
        udp.key.protocol = proto::UDP;
        assert_eq!(unsolicited_syn_acks(&udp), 0);
    }

    #[test]
    fn one_flow_of_many_syn_acks_alerts_once() {
        let mut r = SynAckRepeats::new(SynAckRules::default());
        let alerts = judge(&mut r, &[flow(0, 396, 0)]);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind, AlertKind::SynAckReflection);
        assert_eq!(a.granularity, AlertGranularity::Channel);
        assert_eq!(
            (a.src, a.dst, a.dst_port),
            (
                Some(Addr::from_v4([10, 10, 10, 10])),
                Some(Addr::from_v4([198, 51, 100, 9])),
                Some(21)
            )
        );
        assert_eq!(a.metrics[0].value, 396.0);
        assert_eq!(a.metrics[1].value, 790.0);
        // A retransmitting server: six SYN-ACKs for one connection, no alert.
        let mut r = SynAckRepeats::new(SynAckRules::default());
        assert!(judge(&mut r, &[flow(0, 6, 0)]).is_empty());
    }

    /// A victim that answers each SYN-ACK with a RST ends a flow per SYN-ACK: the
    /// channel's flows add up while they come within the window of each other.
    #[test]
    fn answered_syn_acks_add_up_across_flows() {
        let mut r = SynAckRepeats::new(SynAckRules::default());
        let every_2s: Vec<_> = (0..20).map(|i| flow(i * 2, 1, 1)).collect();
        let alerts = judge(&mut r, &every_2s);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].metrics[0].value, 8.0);
        // One every 90 s: over the window, each counts alone.
        let mut r = SynAckRepeats::new(SynAckRules::default());
        let sparse: Vec<_> = (0..20).map(|i| flow(i * 90, 1, 1)).collect();
        assert!(judge(&mut r, &sparse).is_empty());
        let last = 19 * 90 * NS_PER_SEC;
        r.forget(last + r.memory_ns() - 1);
        assert_eq!(r.len(), 1);
        r.forget(last + r.memory_ns());
        assert!(r.is_empty());
    }

    /// Flows reach the rule when they end (an idle timeout after their last packet):
    /// forgetting, by record time, keeps what the next flow of a run needs.
    #[test]
    fn forgetting_by_record_time_keeps_runs_whose_flows_are_still_coming() {
        let mut r = SynAckRepeats::new(SynAckRules::default());
        let config = DetectConfig::default();
        let mut out = Vec::new();
        let a = Connection::of_flow(&flow(0, 5, 0)); // SYN-ACKs 0..8 s, ends at 128 s
        let b = Connection::of_flow(&flow(12, 5, 0)); // 12..20 s, ends at 140 s
        r.observe(&a, a.end_ns, &config, &mut out);
        r.forget(135 * NS_PER_SEC);
        r.observe(&b, b.end_ns, &config, &mut out);
        assert_eq!(out.len(), 1, "5 + 5 SYN-ACKs within the window: {out:?}");
        assert_eq!(out[0].metrics[0].value, 10.0);
    }
}
