//! UDP reflection and amplification: a victim receiving responses it never asked for
//! from many amplifying services, recognised as the responses arrive, without a
//! baseline.
//!
//! An attacker sends small requests with the victim's address as their source to open
//! services whose response is much larger than the request (DNS `ANY` or DNSSEC
//! answers, NTP `monlist`, SNMP `GetBulk`, SSDP, CLDAP, memcached, chargen: the
//! amplification vectors of US-CERT TA14-017A and their successors). The victim's link
//! sees datagrams *from* those services' ports that open flows it never asked for.
//!
//! An **unsolicited response** is a datagram that *opens* a UDP flow (no packet of its
//! 5-tuple came before it within the idle timeout, and it does not continue a flow cut by
//! the active timeout) from a port in [`ReflectionRules::ports`], to a unicast address,
//! with at least [`ReflectionRules::min_bytes`] IP bytes (an amplified answer: of the
//! reassembled datagram when it came in fragments). A response to a question the host
//! asked never opens a flow: the question did. A `udp_reflection` alert names a victim
//! that received unsolicited responses from at least [`ReflectionRules::min_sources`]
//! distinct services, each at most [`ReflectionRules::window_ns`] after the previous
//! one. A host asks a handful of resolvers and time servers; responses whose questions
//! went out before the capture started, or under asymmetric mirroring, come from those
//! few, not from ten unrelated services a minute.
//!
//! Responses are judged when they arrive (the flow table announces the openings of
//! large UDP flows: [`crate::operators::FlowTable::flow_table_with_openings`]), not when
//! their flows end an idle timeout later, so the alert comes seconds into an attack.
//!
//! A large flood of this kind is also a `udp_flood` when it targets one port with a
//! thousand sources; this rule sees the reflection at any rate and whatever the victim's
//! ports. State is bounded as for the scan rules (`distinct` module): victims are
//! sharded by a stable hash of their address, and the records of unsolicited responses
//! are routed to workers by it.

use serde::{Deserialize, Serialize};

use crate::alert::{short_number, Alert, AlertGranularity, AlertKind, AlertMetric};
use crate::baseline::DetectConfig;
use crate::connections::{is_group, Connection};
use crate::distinct::{check_settings, DistinctTable, Thresholds};
use crate::flow::FlowOpening;
use crate::packet::{proto, Addr};
use crate::scans::{shard, SHARDS};
use crate::time::NS_PER_SEC;

/// Settings of the reflection rule (`[connections]` in the config file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReflectionRules {
    /// Distinct amplifying services that make a `udp_reflection` alert (0: off).
    pub min_sources: usize,
    /// IP bytes of the datagram that opens the flow.
    pub min_bytes: u32,
    /// Source ports of amplifying services.
    pub ports: Vec<u16>,
    /// A victim without an unsolicited response for this long (ns) starts afresh.
    pub window_ns: u64,
    /// Most victims followed at once, over all workers.
    pub capacity: usize,
    /// At most one alert per victim this often (ns of event time).
    pub realert_ns: u64,
}

impl Default for ReflectionRules {
    fn default() -> Self {
        ReflectionRules {
            min_sources: 10,
            min_bytes: 512,
            // QOTD, chargen, DNS, TFTP, portmap, NTP, NetBIOS, SNMP, CLDAP, RIP, SSDP,
            // Apple Remote Desktop, WS-Discovery, mDNS, CoAP, memcached, Steam, Quake.
            ports: vec![
                17, 19, 53, 69, 111, 123, 137, 161, 389, 520, 1900, 3283, 3702, 5353, 5683, 11211,
                27015, 27960,
            ],
            window_ns: 60 * NS_PER_SEC,
            capacity: 65_536,
            realert_ns: 3600 * NS_PER_SEC,
        }
    }
}

impl ReflectionRules {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), String> {
        check_settings(
            &[("reflection_min_sources", self.min_sources)],
            ("reflection_window", self.window_ns),
            self.capacity,
            SHARDS,
        )
    }

    /// True when `o`, the opening of a UDP flow, is an unsolicited response (see the
    /// module docs).
    pub fn is_unsolicited(&self, o: &FlowOpening) -> bool {
        self.min_sources > 0
            && o.ip_len >= self.min_bytes
            && !is_group(&o.dst)
            && self.ports.contains(&o.sport)
    }
}

/// One worker's reflection state (the victims' shards routed to it), independent of
/// timely.
#[derive(Debug)]
pub struct Reflections {
    rules: ReflectionRules,
    victims: DistinctTable<Addr, Addr>,
}

impl Default for Reflections {
    fn default() -> Self {
        Reflections::new(ReflectionRules::default())
    }
}

impl Reflections {
    /// Empty state.
    pub fn new(rules: ReflectionRules) -> Self {
        Reflections {
            // Judged at their own time: no delay.
            victims: DistinctTable::new(rules.capacity, rules.window_ns, 0),
            rules,
        }
    }

    /// Victims followed.
    pub fn len(&self) -> usize {
        self.victims.len()
    }

    /// True when no victim is followed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long a victim is kept after its latest unsolicited response (its window: the
    /// responses are judged at their own time).
    pub fn memory_ns(&self) -> u64 {
        self.victims.memory_ns()
    }

    /// Forgets victims quiet for a window before `now_ns` (as
    /// [`crate::scans::PortScans::forget`]: between records, at points of record time).
    pub fn forget(&mut self, now_ns: u64) {
        self.victims.forget(now_ns);
    }

    /// Counts one unsolicited response ([`Connection::of_opening`]: its source is the
    /// service, its destination the victim), in (time, key) order; an alert goes to
    /// `out` with time `ts_ns`.
    pub fn observe(
        &mut self,
        c: &Connection,
        ts_ns: u64,
        config: &DetectConfig,
        out: &mut Vec<Alert>,
    ) {
        let rules = &self.rules;
        if rules.min_sources == 0 {
            return;
        }
        let k = c.key;
        let Some(t) = self.victims.add(
            (shard(&k.dst), k.dst),
            k.src,
            (c.start_ns, ts_ns, ts_ns),
            &Thresholds {
                min: rules.min_sources,
                burst_min: 0,
                burst_window_ns: 0,
                realert_ns: rules.realert_ns,
            },
        ) else {
            return;
        };
        let n = t.values.len();
        let span_s = t.newest_ns.saturating_sub(t.first_ns) as f64 / 1e9;
        let sample: Vec<String> = t.values.iter().take(3).map(Addr::to_string).collect();
        let mut alert = Alert {
            granularity: AlertGranularity::Host,
            src: Some(k.dst),
            protocol: Some(proto::UDP),
            metrics: vec![
                AlertMetric::observed("distinct_reflectors", n as f64),
                AlertMetric::observed("span_s", span_s),
            ],
            ..Alert::of_rule(AlertKind::UdpReflection, (t.first_ns, ts_ns), 1.0, config)
        };
        alert.explanation = format!(
            "{}: UDP responses of {} bytes or more that nobody asked for from {n} \
             distinct services ({}, ...; the latest from port {}) in {} s: \
             reflection/amplification attack on it (threshold {} services, at most {} s \
             apart)",
            alert.describe_key(),
            rules.min_bytes,
            sample.join(", "),
            c.sport,
            short_number(span_s),
            rules.min_sources,
            short_number(rules.window_ns as f64 / 1e9),
        );
        out.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(service: u8, sport: u16, bytes: u32, start_s: u64) -> FlowOpening {
        FlowOpening {
            ts_ns: start_s * NS_PER_SEC,
            src: Addr::from_v4([198, 51, 100, service]),
            sport,
            dst: Addr::from_v4([10, 10, 10, 10]),
            dport: 4444,
            ip_len: bytes,
        }
    }

    fn judge(r: &mut Reflections, openings: &[FlowOpening]) -> Vec<Alert> {
        let rules = ReflectionRules::default();
        let conns: Vec<Connection> = openings
            .iter()
            .filter(|o| rules.is_unsolicited(o))
            .map(Connection::of_opening)
            .collect();
        crate::connections::judge_in_order(r, &conns)
    }

    #[test]
    fn unsolicited_means_large_from_an_amplifier_port_to_one_host() {
        let rules = ReflectionRules::default();
        assert!(rules.is_unsolicited(&response(1, 53, 1500, 0)));
        assert!(!rules.is_unsolicited(&response(1, 53, 200, 0)), "small");
        assert!(
            !rules.is_unsolicited(&response(1, 5000, 1500, 0)),
            "not a service"
        );
        let mut group = response(1, 1900, 1500, 0);
        group.dst = Addr::from_v4([239, 255, 255, 250]);
        assert!(
            !rules.is_unsolicited(&group),
            "SSDP announcement to a group"
        );
    }

    #[test]
    fn ten_services_within_the_window_alert_once() {
        let mut r = Reflections::default();
        // 30 DNS and NTP responses, one every 5 s, from 15 services.
        let flows: Vec<_> = (0..30u64)
            .map(|i| response((i % 15) as u8, [53, 123][(i % 2) as usize], 3000, i * 5))
            .collect();
        let alerts = judge(&mut r, &flows);
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(a.kind.name(), "udp_reflection");
        assert_eq!(a.src, Some(Addr::from_v4([10, 10, 10, 10])));
        assert_eq!(a.metrics[0].value, 10.0);
        assert!(
            a.explanation.contains("10 distinct services"),
            "{}",
            a.explanation
        );
    }

    #[test]
    fn a_few_services_or_a_slow_trickle_do_not_alert() {
        // Nine services, many responses each.
        let mut r = Reflections::default();
        let flows: Vec<_> = (0..90u64)
            .map(|i| response((i % 9) as u8, 53, 3000, i))
            .collect();
        assert!(judge(&mut r, &flows).is_empty());
        // Twenty services, one every two minutes: each starts afresh.
        let mut r = Reflections::default();
        let flows: Vec<_> = (0..20u64)
            .map(|i| response(i as u8, 53, 3000, i * 120))
            .collect();
        assert!(judge(&mut r, &flows).is_empty());
        assert!(r.len() <= 1);
    }

    #[test]
    fn settings_are_checked() {
        let mut rules = ReflectionRules::default();
        assert!(rules.validate().is_ok());
        rules.min_sources = 1;
        assert!(rules.validate().is_err());
        rules.min_sources = 0;
        assert!(rules.validate().is_ok());
        rules.window_ns = 0;
        assert!(rules.validate().is_err());
    }
}
