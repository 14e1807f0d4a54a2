//! How the packets of one conversation travel: addresses, MACs, VLAN tags, TTLs, IP
//! identification counters and an optional tunnel, for both directions.

use super::super::frames::{Addrs, Encap, IpHeader, Link, Mac, Tunnel, Vlan};
use super::super::rng::Rng;
use super::super::topology::{Host, World, GATEWAY_MAC};

/// Direction of a packet within a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the client (near the capture point) to the server.
    Up = 0,
    /// From the server to the client.
    Down = 1,
}

impl Dir {
    /// The opposite direction.
    #[inline]
    pub fn flip(self) -> Dir {
        match self {
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }

    /// 0 for [`Dir::Up`], 1 for [`Dir::Down`].
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The kinds of tunnel a conversation can be carried in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelChoice {
    /// Site-to-site GRE with a key.
    Gre,
    /// VXLAN overlay.
    Vxlan,
    /// Mobile user plane (GTP-U).
    GtpU,
}

/// Per-conversation tunnel state.
#[derive(Clone, Debug)]
struct TunnelPath {
    /// Outer endpoints: client side, server side.
    ends: [[u8; 4]; 2],
    /// Tunnel headers by direction of the inner packet.
    tunnel: [Tunnel; 2],
    /// Outer IPv4 identification counters by direction.
    ids: [u16; 2],
    /// Outer TTL by direction, as seen at the capture point.
    ttl: [u8; 2],
}

/// Addressing and per-packet counters of one conversation.
#[derive(Clone, Debug)]
pub struct Path {
    /// Client-to-server addresses of the (inner) IP packets.
    pub addrs: Addrs,
    macs: [Mac; 2],
    vlan: Vlan,
    tunnel: Option<Box<TunnelPath>>,
    ttl: [u8; 2],
    ids: [u16; 2],
    /// IPv6 flow label used in both directions.
    flow_label: u32,
    /// DSCP/ECN byte.
    pub tos: u8,
}

impl Path {
    /// A conversation between client `host` and a server, plain or in a tunnel. The
    /// server's IPv6 address is used when `v6` is set and it has one.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        rng: &mut Rng,
        host: &Host,
        server_v4: [u8; 4],
        server_v6: Option<[u8; 16]>,
        v6: bool,
        server_ttl: u8,
        tunnel: Option<TunnelChoice>,
    ) -> Path {
        let client_ttl = host.os.ttl();
        let mut path = Path {
            addrs: match (v6, server_v6) {
                (true, Some(dst)) if tunnel.is_none() => Addrs::V6 { src: host.v6, dst },
                _ => Addrs::V4 {
                    src: host.v4,
                    dst: server_v4,
                },
            },
            macs: [host.mac, GATEWAY_MAC],
            vlan: host.vlan,
            tunnel: None,
            ttl: [client_ttl, server_ttl],
            ids: [rng.next_u16(), rng.next_u16()],
            flow_label: rng.next_u32() & 0x000f_ffff,
            tos: 0,
        };
        if let Some(kind) = tunnel {
            path.enter_tunnel(rng, kind, server_v4);
        }
        path
    }

    /// Moves the conversation into a tunnel: the client becomes a host behind the
    /// tunnel and the frame gets outer headers.
    fn enter_tunnel(&mut self, rng: &mut Rng, kind: TunnelChoice, server_v4: [u8; 4]) {
        self.vlan = Vlan::Untagged;
        let site = rng.below(4) as u8;
        let client = |net: [u8; 2], rng: &mut Rng| [net[0], net[1], site, 2 + rng.below(200) as u8];
        let (ends, tunnel, inner_client) = match kind {
            TunnelChoice::Gre => {
                let key = 1000 + u32::from(site);
                (
                    [[203, 0, 113, 10 + 10 * site], [198, 51, 100, 1]],
                    [Tunnel::Gre { key }, Tunnel::Gre { key }],
                    client([172, 20], rng),
                )
            }
            TunnelChoice::Vxlan => {
                let vni = 5000 + u32::from(site % 3);
                let vm: Mac = [0x02, 0x42, 0xac, 0x11, site, 2 + rng.below(200) as u8];
                let gw: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
                let sport = 49_152 + rng.below(16_384) as u16;
                (
                    [[10, 255, 0, 1 + site], [10, 255, 0, 254]],
                    [
                        Tunnel::Vxlan {
                            vni,
                            sport,
                            inner_src: vm,
                            inner_dst: gw,
                        },
                        Tunnel::Vxlan {
                            vni,
                            sport,
                            inner_src: gw,
                            inner_dst: vm,
                        },
                    ],
                    [192, 168, 100 + site % 3, vm[5]],
                )
            }
            TunnelChoice::GtpU => {
                let up = rng.next_u32() | 1;
                let down = rng.next_u32() | 2;
                (
                    [[10, 200, 0, 1 + site], [10, 201, 0, 1]],
                    [Tunnel::GtpU { teid: up }, Tunnel::GtpU { teid: down }],
                    client([100, 64 + site], rng),
                )
            }
        };
        self.addrs = Addrs::V4 {
            src: inner_client,
            dst: server_v4,
        };
        let endpoint_mac = |end: [u8; 4]| -> Mac { [0x00, 0x1c, 0x73, end[1], end[2], end[3]] };
        self.macs = [endpoint_mac(ends[0]), endpoint_mac(ends[1])];
        self.ttl[0] = 63;
        self.tunnel = Some(Box::new(TunnelPath {
            ends,
            tunnel,
            ids: [rng.next_u16(), rng.next_u16()],
            ttl: [62, 60],
        }));
    }

    /// True for IPv6 conversations.
    pub fn is_v6(&self) -> bool {
        self.addrs.is_v6()
    }

    /// True when the conversation is tunnelled.
    pub fn is_tunnelled(&self) -> bool {
        self.tunnel.is_some()
    }

    /// Bytes the tunnel adds in front of the inner IP packet (0 when not tunnelled),
    /// which reduce the MTU available to it.
    pub fn tunnel_overhead(&self) -> usize {
        if self.tunnel.is_some() {
            self.link_overhead() - 14
        } else {
            0
        }
    }

    /// Bytes of link and tunnel overhead in front of the IP packet.
    pub fn link_overhead(&self) -> usize {
        let encap = self.tunnel.as_ref().map(|t| Encap {
            src: t.ends[0],
            dst: t.ends[1],
            ttl: t.ttl[0],
            id: 0,
            tunnel: t.tunnel[0],
        });
        Link {
            src: self.macs[0],
            dst: self.macs[1],
            vlan: self.vlan,
            encap,
        }
        .overhead()
    }

    /// The link layers of the next packet in direction `dir` (advances the outer IPv4
    /// identification of tunnels).
    pub fn link(&mut self, dir: Dir) -> Link {
        let d = dir.index();
        let (src, dst) = (self.macs[d], self.macs[1 - d]);
        let encap = self.tunnel.as_mut().map(|t| {
            let id = t.ids[d];
            t.ids[d] = id.wrapping_add(1);
            Encap {
                src: t.ends[d],
                dst: t.ends[1 - d],
                ttl: t.ttl[d],
                id,
                tunnel: t.tunnel[d],
            }
        });
        Link {
            src,
            dst,
            vlan: self.vlan,
            encap,
        }
    }

    /// The IP header of the next packet in direction `dir` (advances its IPv4
    /// identification).
    pub fn ip(&mut self, dir: Dir, df: bool) -> IpHeader {
        let d = dir.index();
        let id = self.ids[d];
        self.ids[d] = id.wrapping_add(1);
        IpHeader {
            addrs: if dir == Dir::Up {
                self.addrs
            } else {
                self.addrs.reversed()
            },
            ttl: self.ttl[d],
            tos: self.tos,
            id: if self.is_v6() {
                self.flow_label
            } else {
                u32::from(id)
            },
            df,
        }
    }

    /// Overrides the TTL of packets in direction `dir` (traceroute probes).
    pub fn set_ttl(&mut self, dir: Dir, ttl: u8) {
        self.ttl[dir.index()] = ttl;
    }

    /// Uses `mac` as the Ethernet address of the server side (e.g. a LAN server).
    pub fn set_server_mac(&mut self, mac: Mac) {
        if self.tunnel.is_none() {
            self.macs[1] = mac;
        }
    }
}

/// Convenience: a plain or tunnelled path from a freshly picked client host.
pub fn client_path(
    world: &World,
    rng: &mut Rng,
    server_v4: [u8; 4],
    server_v6: Option<[u8; 16]>,
    v6: bool,
    server_ttl: u8,
    tunnel: Option<TunnelChoice>,
) -> (Host, Path) {
    let host = world.host(world.pick_host(rng));
    let path = Path::new(rng, &host, server_v4, server_v6, v6, server_ttl, tunnel);
    (host, path)
}
