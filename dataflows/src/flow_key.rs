//! Canonical bidirectional flow keys and the routes derived from them.

use serde::{Deserialize, Serialize};

use crate::hash::StableHasher;
use crate::packet::{proto, Addr, Context, Packet};

/// One endpoint of a flow.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Endpoint {
    /// Address.
    pub addr: Addr,
    /// Port (or ICMP echo identifier, or 0).
    pub port: u16,
}

/// A direction-free flow key: context, protocol and the two endpoints in canonical
/// (ascending) order, so both directions of a conversation map to the same key.
///
/// ```
/// use flowtide_dataflows::flow_key::FlowKey;
/// use flowtide_dataflows::packet::{Addr, Packet};
/// let mut p = Packet { protocol: 6, src: Addr::from_v4([10, 0, 0, 2]), dst: Addr::from_v4([10, 0, 0, 1]),
///                      sport: 40000, dport: 80, ..Default::default() };
/// let (k1, fwd1) = FlowKey::of(&p);
/// std::mem::swap(&mut p.src, &mut p.dst);
/// std::mem::swap(&mut p.sport, &mut p.dport);
/// let (k2, fwd2) = FlowKey::of(&p);
/// assert_eq!(k1, k2);
/// assert_ne!(fwd1, fwd2);
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct FlowKey {
    /// VLAN and tunnel context.
    pub ctx: Context,
    /// IP protocol.
    pub protocol: u8,
    /// The lesser endpoint.
    pub lo: Endpoint,
    /// The greater endpoint.
    pub hi: Endpoint,
}

impl FlowKey {
    /// The canonical key of a packet, and whether the packet travels `lo -> hi`.
    ///
    /// The context is part of the key, except for tunnel ids that differ between the two
    /// directions of one conversation (GTP-U TEIDs and PPTP call ids are chosen by each
    /// receiving end): for those the symmetric digest of the outer endpoints identifies
    /// the tunnel.
    #[inline]
    pub fn of(p: &Packet) -> (FlowKey, bool) {
        let (sport, dport) = flow_ports(p);
        let mut ctx = p.ctx;
        if ctx.tunnel.id_is_per_direction() {
            ctx.tunnel_id = 0;
        }
        let a = Endpoint {
            addr: p.src,
            port: sport,
        };
        let b = Endpoint {
            addr: p.dst,
            port: dport,
        };
        let forward = a <= b;
        let (lo, hi) = if forward { (a, b) } else { (b, a) };
        (
            FlowKey {
                ctx,
                protocol: p.protocol,
                lo,
                hi,
            },
            forward,
        )
    }

    /// The stable route of this key (same in every process and build).
    #[inline]
    pub fn route(&self) -> u64 {
        let mut h = StableHasher::new();
        self.ctx.hash_into(&mut h);
        h.write_addr(&self.lo.addr);
        h.write_addr(&self.hi.addr);
        h.write_u64(
            (self.lo.port as u64) | (self.hi.port as u64) << 16 | (self.protocol as u64) << 32,
        );
        h.finish()
    }
}

/// The ports a packet contributes to its flow key. ICMP echo request and reply share the
/// identifier; other ICMP messages have no ports, so they form one flow per host pair.
#[inline]
fn flow_ports(p: &Packet) -> (u16, u16) {
    match p.protocol {
        proto::ICMP | proto::ICMPV6 => {
            let ty = (p.sport >> 8) as u8;
            let echo = matches!(
                (p.protocol, ty),
                (proto::ICMP, 0 | 8) | (proto::ICMPV6, 128 | 129)
            );
            if echo {
                (p.dport, p.dport)
            } else {
                (0, 0)
            }
        }
        _ => (p.sport, p.dport),
    }
}

/// The stable route of an IP fragment: encapsulation context, source, destination,
/// protocol (IPv4 only: an IPv6 datagram's fragments may name different next headers,
/// RFC 8200 §4.5) and IP identification, so every fragment of one datagram meets on one
/// worker.
#[inline]
pub fn fragment_route(p: &Packet) -> u64 {
    let mut h = StableHasher::new();
    p.ctx.hash_into(&mut h);
    h.write_addr(&p.src);
    h.write_addr(&p.dst);
    let protocol = crate::reassembly::FragKey::keyed_protocol(p.ip_version, p.protocol);
    h.write_u64((p.ip_id as u64) | (protocol as u64) << 32 | (p.ip_version as u64) << 40);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TunnelKind;

    fn tunnelled(kind: TunnelKind, id: u32, forward: bool) -> Packet {
        let (a, b) = (Addr::from_v4([10, 0, 0, 1]), Addr::from_v4([10, 0, 0, 2]));
        let (src, dst, sport, dport) = if forward {
            (a, b, 5060, 5061)
        } else {
            (b, a, 5061, 5060)
        };
        let ctx = Context {
            tunnel: kind,
            tunnel_id: id,
            outer: 77,
            ..Context::default()
        };
        Packet {
            protocol: 17,
            src,
            dst,
            sport,
            dport,
            ctx,
            ..Packet::default()
        }
    }

    #[test]
    fn per_direction_tunnel_ids_do_not_split_a_flow() {
        for kind in [TunnelKind::GtpU, TunnelKind::Pptp] {
            let (k1, _) = FlowKey::of(&tunnelled(kind, 1111, true));
            let (k2, _) = FlowKey::of(&tunnelled(kind, 2222, false));
            assert_eq!(k1, k2, "{kind:?}");
        }
        // A GRE key names the tunnel: different keys are different tunnels.
        let (k1, _) = FlowKey::of(&tunnelled(TunnelKind::Gre, 1111, true));
        let (k2, _) = FlowKey::of(&tunnelled(TunnelKind::Gre, 2222, false));
        assert_ne!(k1, k2);
    }
}
