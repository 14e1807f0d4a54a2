//! Flow models and the traffic mix.
//!
//! Every conversation is a small state machine ([`Flow`]) that knows the time of its
//! next packet and builds that packet on request. [`spawn`] draws a new conversation
//! from the mix: TCP (HTTP/TLS), DNS, QUIC, NTP, ping, traceroute and NFS, over IPv4 or
//! IPv6, plain, VLAN-tagged (by host) or tunnelled.

pub mod dns;
pub mod fragments;
pub mod icmp;
pub mod nfs;
pub mod ntp;
pub mod path;
pub mod quic;
pub mod tcp;
pub mod timeline;

use super::frames::FrameBuf;
use super::rng::Rng;
use super::topology::World;
use path::{Path, TunnelChoice};

/// Estimated number of packets a new flow will produce (for rate control).
pub type Estimate = u64;

/// How large the transfers of new flows are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sizing {
    /// Multiplier of transfer sizes (1 for the default mix).
    pub scale: f64,
    /// Upper bound of a single transfer, bytes (keeps any one flow a small part of the
    /// capture so the packet rate stays even).
    pub max_bytes: f64,
    /// Upper bound of a single flow's bandwidth, bits per second (a flow cannot use
    /// much of the link the whole capture shares).
    pub max_bps: f64,
}

impl Sizing {
    /// `bytes` scaled and capped.
    pub fn apply(&self, bytes: f64) -> f64 {
        (bytes * self.scale).min(self.max_bytes)
    }

    /// A flow bottleneck bandwidth drawn from `rng`, bits per second.
    pub fn bandwidth(&self, rng: &mut Rng) -> f64 {
        rng.lognormal(40e6, 1.0).clamp(1e6, self.max_bps.max(2e6))
    }
}

/// The kinds of conversation in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// TCP with HTTP or TLS.
    Web,
    /// A DNS lookup.
    Dns,
    /// A DNS lookup with a large (fragmented) answer.
    BigDns,
    /// QUIC on UDP/443.
    Quic,
    /// NTP polls.
    Ntp,
    /// ICMP echo.
    Ping,
    /// UDP traceroute with ICMP errors.
    Traceroute,
    /// NFS over UDP with fragmented replies.
    Nfs,
}

/// Relative frequency of each kind among new flows (tuned so that the packet mix is
/// roughly: TCP 80 %, UDP 18 %, ICMP 1 %, fragments 1 %).
const MIX: [(Kind, f64); 8] = [
    (Kind::Web, 34.0),
    (Kind::Dns, 56.0),
    (Kind::BigDns, 1.0),
    (Kind::Quic, 3.5),
    (Kind::Ntp, 1.5),
    (Kind::Ping, 4.0),
    (Kind::Traceroute, 0.1),
    (Kind::Nfs, 1.0),
];

/// Share of IPv6 among flows that can use it.
const IPV6_SHARE: f64 = 0.11;
/// Share of tunnelled flows among TCP and DNS flows.
const TUNNEL_SHARE: f64 = 0.04;

/// One conversation in progress.
#[derive(Debug)]
pub enum Flow {
    /// TCP.
    Tcp(Box<tcp::TcpFlow>),
    /// DNS.
    Dns(Box<dns::DnsFlow>),
    /// QUIC.
    Quic(Box<quic::QuicFlow>),
    /// NTP.
    Ntp(Box<ntp::NtpFlow>),
    /// Ping.
    Ping(Box<icmp::PingFlow>),
    /// Traceroute.
    Traceroute(Box<icmp::TracerouteFlow>),
    /// NFS.
    Nfs(Box<nfs::NfsFlow>),
}

impl Flow {
    /// Time of the next packet, `None` when the flow is finished.
    pub fn next_ts(&self) -> Option<u64> {
        match self {
            Flow::Tcp(f) => f.next_ts(),
            Flow::Dns(f) => f.next_ts(),
            Flow::Quic(f) => f.next_ts(),
            Flow::Ntp(f) => f.next_ts(),
            Flow::Ping(f) => f.next_ts(),
            Flow::Traceroute(f) => f.next_ts(),
            Flow::Nfs(f) => f.next_ts(),
        }
    }

    /// Builds the packet due at `now` into `fb`; returns the time of the next packet.
    pub fn step(&mut self, now: u64, world: &World, fb: &mut FrameBuf) -> Option<u64> {
        match self {
            Flow::Tcp(f) => f.step(now, world, fb),
            Flow::Dns(f) => f.step(now, fb),
            Flow::Quic(f) => f.step(now, fb),
            Flow::Ntp(f) => f.step(now, fb),
            Flow::Ping(f) => f.step(now, fb),
            Flow::Traceroute(f) => f.step(now, world, fb),
            Flow::Nfs(f) => f.step(now, world, fb),
        }
    }
}

/// Draws a tunnel for a flow, or none.
fn tunnel(rng: &mut Rng) -> Option<TunnelChoice> {
    if rng.chance(TUNNEL_SHARE) {
        Some(*rng.pick(&[TunnelChoice::Gre, TunnelChoice::Vxlan, TunnelChoice::GtpU]))
    } else {
        None
    }
}

/// Starts a new conversation of a kind drawn from the mix at `t0`, with transfer sizes
/// set by `sizing`. `rng` becomes the flow's own generator.
pub fn spawn(mut rng: Rng, world: &World, t0: u64, sizing: Sizing) -> (Flow, Estimate) {
    let weights: [f64; MIX.len()] = std::array::from_fn(|i| MIX[i].1);
    let kind = MIX[rng.weighted(&weights)].0;
    let v6 = rng.chance(IPV6_SHARE);
    match kind {
        Kind::Web => {
            let tunnel = tunnel(&mut rng);
            let mut index = world.pick_server(&mut rng);
            if v6 && tunnel.is_none() {
                for _ in 0..16 {
                    if world.server(index).v6.is_some() {
                        break;
                    }
                    index = world.pick_server(&mut rng);
                }
            }
            let server = *world.server(index);
            let host = world.host(world.pick_host(&mut rng));
            let path = Path::new(
                &mut rng, &host, server.v4, server.v6, v6, server.ttl, tunnel,
            );
            let (lo, hi) = host.os.ephemeral();
            let spec = tcp::TcpSpec {
                path,
                os: host.os,
                sport: rng.range(u64::from(lo), u64::from(hi)) as u16,
                dport: server.port,
                app: server.app,
                name: world.server_name(index),
                rtt_ns: server.rtt_ns,
                sizing,
            };
            let (f, e) = tcp::TcpFlow::start(rng, spec, t0);
            (Flow::Tcp(Box::new(f)), e)
        }
        Kind::Dns | Kind::BigDns => {
            let tunnel = if kind == Kind::Dns {
                tunnel(&mut rng)
            } else {
                None
            };
            let (f, e) = dns::DnsFlow::start(rng, world, t0, v6, kind == Kind::BigDns, tunnel);
            (Flow::Dns(Box::new(f)), e)
        }
        Kind::Quic => {
            let (f, e) = quic::QuicFlow::start(rng, world, t0, v6, sizing);
            (Flow::Quic(Box::new(f)), e)
        }
        Kind::Ntp => {
            let (f, e) = ntp::NtpFlow::start(rng, world, t0, v6);
            (Flow::Ntp(Box::new(f)), e)
        }
        Kind::Ping => {
            let (f, e) = icmp::PingFlow::start(rng, world, t0, v6);
            (Flow::Ping(Box::new(f)), e)
        }
        Kind::Traceroute => {
            let (f, e) = icmp::TracerouteFlow::start(rng, world, t0, v6);
            (Flow::Traceroute(Box::new(f)), e)
        }
        Kind::Nfs => {
            let v6 = rng.chance(0.25);
            let (f, e) = nfs::NfsFlow::start(rng, world, t0, v6, sizing);
            (Flow::Nfs(Box::new(f)), e)
        }
    }
}
