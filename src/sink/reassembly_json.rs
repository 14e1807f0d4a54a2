//! The JSON form of a reassembly event (`reassembly.jsonl`).
//!
//! A flood of incomplete datagrams raises one event per datagram, so the line is
//! serialized by hand: no `String` per address or timestamp, no `#[serde(flatten)]`
//! (which goes through a map serializer), every field a struct field with a static name.
//! The bytes are exactly those of the derived form (a struct with the fields below and
//! the [`EventKind`] flattened into it); a test checks this for every kind.

use flowtide_dataflows::reassembly::{EventKind, ReassemblyEvent};
use flowtide_dataflows::time::Iso8601;
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// One line of `reassembly.jsonl`: when, which datagram, and the event's own fields
/// (`kind` names it: `overlap_different`, `timeout`, `ambiguity`, ...). Fields, in order:
/// `ts` (ISO-8601 UTC), `ts_ns`, `src_ip`, `dst_ip`, `protocol` (IPv4 protocol, 0 for
/// IPv6), `ip_version`, `ip_id`, `vlan_id`, `inner_vlan_id`, `tunnel`, `tunnel_id`,
/// `tunnel_outer`, `kind` and the fields of the kind.
#[derive(Debug)]
pub struct EventLine(pub ReassemblyEvent);

impl From<&ReassemblyEvent> for EventLine {
    fn from(e: &ReassemblyEvent) -> Self {
        EventLine(e.clone())
    }
}

impl Serialize for EventLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let e = &self.0;
        let k = &e.key;
        let extra = match &e.kind {
            EventKind::Discarded | EventKind::AtomicFragment | EventKind::ForbiddenFragment => 0,
            EventKind::Malformed { .. }
            | EventKind::TooLarge { .. }
            | EventKind::Misaligned { .. }
            | EventKind::OverBudget { .. } => 1,
            EventKind::Ambiguity { .. } | EventKind::Eviction { .. } => 3,
            _ => 2,
        };
        let mut s = serializer.serialize_struct("EventLine", 13 + extra)?;
        s.serialize_field("ts", Iso8601::of(e.ts_ns).as_str())?;
        s.serialize_field("ts_ns", &e.ts_ns)?;
        s.serialize_field("src_ip", k.src.text().as_str())?;
        s.serialize_field("dst_ip", k.dst.text().as_str())?;
        s.serialize_field("protocol", &k.protocol)?;
        s.serialize_field("ip_version", &k.ip_version)?;
        s.serialize_field("ip_id", &k.id)?;
        s.serialize_field("vlan_id", &k.ctx.vlan[0])?;
        s.serialize_field("inner_vlan_id", &k.ctx.vlan[1])?;
        s.serialize_field("tunnel", k.ctx.tunnel.name())?;
        s.serialize_field("tunnel_id", &k.ctx.tunnel_id)?;
        s.serialize_field("tunnel_outer", &k.ctx.outer)?;
        s.serialize_field("kind", e.kind.name())?;
        match &e.kind {
            EventKind::Malformed { reason } => s.serialize_field("reason", reason)?,
            EventKind::OverlapSame { range, duplicate } => {
                s.serialize_field("range", range)?;
                s.serialize_field("duplicate", duplicate)?;
            }
            EventKind::OverlapDifferent { range, differing } => {
                s.serialize_field("range", range)?;
                s.serialize_field("differing", differing)?;
            }
            EventKind::Discarded | EventKind::AtomicFragment | EventKind::ForbiddenFragment => {}
            EventKind::Ambiguity {
                groups,
                discarded_by,
                ranges,
            } => {
                s.serialize_field("groups", groups)?;
                s.serialize_field("discarded_by", discarded_by)?;
                s.serialize_field("ranges", ranges)?;
            }
            EventKind::Teardrop { range, earlier } => {
                s.serialize_field("range", range)?;
                s.serialize_field("earlier", earlier)?;
            }
            EventKind::TinyFirstFragment { len, required } => {
                s.serialize_field("len", len)?;
                s.serialize_field("required", required)?;
            }
            EventKind::TooLarge { size } => s.serialize_field("size", size)?,
            EventKind::DataPastFinal { final_end, end }
            | EventKind::ConflictingFinal { final_end, end } => {
                s.serialize_field("final_end", final_end)?;
                s.serialize_field("end", end)?;
            }
            EventKind::Misaligned { len } => s.serialize_field("len", len)?,
            EventKind::OverBudget { cost } => s.serialize_field("cost", cost)?,
            EventKind::Timeout {
                first_ns,
                fragments,
            }
            | EventKind::IncompleteAtEnd {
                first_ns,
                fragments,
            } => {
                s.serialize_field("first_ns", first_ns)?;
                s.serialize_field("fragments", fragments)?;
            }
            EventKind::Eviction {
                reason,
                first_ns,
                fragments,
            } => {
                s.serialize_field("reason", reason)?;
                s.serialize_field("first_ns", first_ns)?;
                s.serialize_field("fragments", fragments)?;
            }
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtide_dataflows::packet::{Addr, Context, TunnelKind};
    use flowtide_dataflows::reassembly::{EvictReason, FragKey, Policy};
    use flowtide_dataflows::time::{iso8601, NS_PER_SEC};
    use serde::Serialize;

    /// The line as it was derived before the hand-written form.
    #[derive(Serialize)]
    struct DerivedLine {
        ts: String,
        ts_ns: u64,
        src_ip: String,
        dst_ip: String,
        protocol: u8,
        ip_version: u8,
        ip_id: u32,
        vlan_id: u16,
        inner_vlan_id: u16,
        tunnel: &'static str,
        tunnel_id: u32,
        tunnel_outer: u32,
        #[serde(flatten)]
        event: EventKind,
    }

    fn derived(e: &ReassemblyEvent) -> DerivedLine {
        let k = &e.key;
        DerivedLine {
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

    fn line<T: Serialize>(v: &T) -> String {
        let mut out = Vec::new();
        crate::sink::json_line::write(v, &mut out).expect("a JSON line");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn hand_written_line_equals_the_derived_one() {
        let kinds = vec![
            EventKind::Malformed {
                reason: "a \"quoted\" reason\n".into(),
            },
            EventKind::OverlapSame {
                range: (8, 16),
                duplicate: true,
            },
            EventKind::OverlapDifferent {
                range: (0, 24),
                differing: vec![(1, 2), (8, 9)],
            },
            EventKind::Discarded,
            EventKind::Ambiguity {
                groups: vec![vec![Policy::First, Policy::Bsd], vec![Policy::Last]],
                discarded_by: vec![Policy::Rfc5722],
                ranges: vec![(0, 8)],
            },
            EventKind::Ambiguity {
                groups: vec![],
                discarded_by: vec![],
                ranges: vec![],
            },
            EventKind::Teardrop {
                range: (3, 4),
                earlier: (0, 0),
            },
            EventKind::TinyFirstFragment {
                len: 8,
                required: 20,
            },
            EventKind::TooLarge { size: 70_000 },
            EventKind::DataPastFinal {
                final_end: 16,
                end: 24,
            },
            EventKind::ConflictingFinal {
                final_end: 16,
                end: 32,
            },
            EventKind::AtomicFragment,
            EventKind::ForbiddenFragment,
            EventKind::Misaligned { len: 7 },
            EventKind::OverBudget { cost: u64::MAX },
            EventKind::Timeout {
                first_ns: 1,
                fragments: 2,
            },
            EventKind::Eviction {
                reason: EvictReason::Memory,
                first_ns: 5,
                fragments: 0,
            },
            EventKind::Eviction {
                reason: EvictReason::Datagrams,
                first_ns: 5,
                fragments: u32::MAX,
            },
            EventKind::Eviction {
                reason: EvictReason::Fragments,
                first_ns: 5,
                fragments: 256,
            },
            EventKind::IncompleteAtEnd {
                first_ns: 0,
                fragments: 1,
            },
        ];
        let mut addrs = vec![
            Addr::UNSPECIFIED,
            Addr::from_v4([0, 0, 0, 0]),
            Addr::from_v4([255, 255, 255, 255]),
            Addr::from_v4([10, 0, 99, 100]),
            Addr::from_v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Addr::from_v6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1]),
            Addr::from_v6([0xff; 16]),
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200 {
            let mut a = [0u8; 16];
            for c in a.chunks_mut(8) {
                c.copy_from_slice(&next().to_le_bytes());
            }
            // Runs of zero groups, to exercise "::" compression.
            let z = (next() % 16) as usize;
            let n = (next() % 8) as usize;
            for b in a.iter_mut().skip(z).take(2 * n) {
                *b = 0;
            }
            addrs.push(Addr::from_v6(a));
            addrs.push(Addr::from_v4([a[0], a[1], a[2], a[3]]));
        }
        let mut stamps = vec![0, 1, 999_999_999, u64::MAX, 951_782_400 * NS_PER_SEC];
        for _ in 0..2000 {
            stamps.push(next());
            stamps.push(next() % (4_102_444_800 * NS_PER_SEC));
        }
        for (n, &ts_ns) in stamps.iter().enumerate() {
            let kind = kinds[n % kinds.len()].clone();
            let key = FragKey {
                ctx: Context {
                    vlan: [(n % 3) as u16 * 100, (n % 5) as u16],
                    tunnel: if n % 2 == 0 {
                        TunnelKind::None
                    } else {
                        TunnelKind::Gre
                    },
                    tunnel_id: n as u32,
                    outer: (n as u32).wrapping_mul(2_654_435_761),
                },
                ip_version: if n % 2 == 0 { 4 } else { 6 },
                src: addrs[n % addrs.len()],
                dst: addrs[(n + 1) % addrs.len()],
                protocol: (n % 256) as u8,
                id: (n as u32).wrapping_mul(40_503),
            };
            let e = ReassemblyEvent { ts_ns, key, kind };
            assert_eq!(line(&EventLine::from(&e)), line(&derived(&e)), "{e:?}");
        }
    }
}
