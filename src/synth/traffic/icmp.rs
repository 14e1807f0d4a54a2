//! ICMP and ICMPv6: ping sessions (echo request/reply) and UDP traceroutes answered
//! by time-exceeded and port-unreachable errors quoting the probe.

use super::path::{Dir, Path};
use super::timeline::Timeline;
use super::Estimate;
use crate::synth::frames::{proto, write_ip_packet, write_udp_header, Addrs, FrameBuf, IpHeader};
use crate::synth::rng::Rng;
use crate::synth::topology::{Os, World};

/// A ping session: `count` echo requests one second apart and their replies.
#[derive(Debug)]
pub struct PingFlow {
    path: Path,
    ident: u16,
    os: Os,
    /// (sequence number, request time) of each echo, by packet.
    tl: Timeline<(Dir, u16, u64)>,
}

impl PingFlow {
    /// A session towards a popular server from `t0`.
    pub fn start(mut rng: Rng, world: &World, t0: u64, v6: bool) -> (PingFlow, Estimate) {
        let host = world.host(world.pick_host(&mut rng));
        let server_index = world.pick_server(&mut rng);
        let server = *world.server(server_index);
        let path = Path::new(&mut rng, &host, server.v4, server.v6, v6, server.ttl, None);
        let count = *rng.pick(&[1u16, 3, 4, 4, 5, 10]);
        let mut tl = Timeline::new();
        let mut t = t0;
        let mut estimate = 0;
        for seq in 1..=count {
            tl.push(t, (Dir::Up, seq, t));
            estimate += 1;
            if !rng.chance(0.02) {
                let rtt = (server.rtt_ns as f64 * rng.lognormal_in(1.0, 0.1, 0.8, 3.0)) as u64;
                tl.push(t + rtt, (Dir::Down, seq, t));
                estimate += 1;
            }
            t += rng.range(999_000_000, 1_003_000_000);
        }
        let ident = rng.next_u16();
        (
            PingFlow {
                path,
                ident,
                os: host.os,
                tl,
            },
            estimate,
        )
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, fb: &mut FrameBuf) -> Option<u64> {
        let (_, (dir, seq, sent)) = self.tl.pop()?;
        let link = self.path.link(dir);
        let ip = self.path.ip(dir, !self.path.is_v6());
        let v6 = self.path.is_v6();
        let kind = match (v6, dir) {
            (false, Dir::Up) => 8,
            (false, Dir::Down) => 0,
            (true, Dir::Up) => 128,
            (true, Dir::Down) => 129,
        };
        let (ident, os) = (self.ident, self.os);
        fb.packet(
            &link,
            &ip,
            if v6 { proto::ICMPV6 } else { proto::ICMP },
            |b| {
                b.extend_from_slice(&[kind, 0, 0, 0]);
                b.extend_from_slice(&ident.to_be_bytes());
                b.extend_from_slice(&seq.to_be_bytes());
                if os == Os::Windows {
                    b.extend_from_slice(b"abcdefghijklmnopqrstuvwabcdefghi");
                } else {
                    // struct timeval of the request, then the iputils fill pattern.
                    b.extend_from_slice(&(sent / 1_000_000_000).to_le_bytes());
                    b.extend_from_slice(&(sent % 1_000_000_000 / 1000).to_le_bytes());
                    b.extend(0x10u8..0x38);
                }
            },
        );
        self.tl.next_ts().map(|t| t.max(now))
    }
}

#[derive(Clone, Copy, Debug)]
enum Probe {
    /// Probe with this TTL and destination port.
    Send { ttl: u8, dport: u16 },
    /// The answer to such a probe from hop `ttl` (or the destination).
    Answer { ttl: u8, dport: u16 },
}

/// A UDP traceroute (Linux `traceroute` defaults: ports from 33434, 3 probes per hop).
#[derive(Debug)]
pub struct TracerouteFlow {
    path: Path,
    sport: u16,
    hops: u8,
    tl: Timeline<Probe>,
}

impl TracerouteFlow {
    /// A traceroute towards a server from `t0`.
    pub fn start(mut rng: Rng, world: &World, t0: u64, v6: bool) -> (TracerouteFlow, Estimate) {
        let host = world.host(world.pick_host(&mut rng));
        let server = *world.server(world.pick_server(&mut rng));
        let path = Path::new(&mut rng, &host, server.v4, server.v6, v6, server.ttl, None);
        let hops = rng.range(4, 12) as u8;
        let per_hop = server.rtt_ns / u64::from(hops);
        let mut tl = Timeline::new();
        let mut t = t0;
        let mut dport = 33_434u16;
        let mut estimate = 0;
        for ttl in 1..=hops {
            let silent = ttl > 1 && ttl < hops && rng.chance(0.1);
            for _ in 0..3 {
                tl.push(t, Probe::Send { ttl, dport });
                estimate += 1;
                if silent {
                    t += 300_000_000;
                } else {
                    let rtt = per_hop * u64::from(ttl) + rng.range(100_000, 2_000_000);
                    tl.push(t + rtt, Probe::Answer { ttl, dport });
                    estimate += 1;
                    t += rtt + rng.range(20_000, 200_000);
                }
                dport += 1;
            }
        }
        // Linux traceroute uses a source port of (pid | 0x8000); this range is free of
        // well-known UDP services.
        let sport = rng.range(33_000, 34_900) as u16;
        (
            TracerouteFlow {
                path,
                sport,
                hops,
                tl,
            },
            estimate,
        )
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// The probe datagram with destination port `dport` as the node answering it
    /// received it: its TTL decremented to 1 (it was sent with TTL equal to the hop
    /// count of that node).
    fn probe(&self, dport: u16, out: &mut Vec<u8>) {
        let ip = IpHeader {
            addrs: self.path.addrs,
            ttl: 1,
            tos: 0,
            id: u32::from(dport),
            df: false,
        };
        let sport = self.sport;
        write_ip_packet(out, &ip, proto::UDP, |b| {
            write_udp_header(b, sport, dport);
            b.extend(0x40u8..0x60);
        });
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, world: &World, fb: &mut FrameBuf) -> Option<u64> {
        let (_, probe) = self.tl.pop()?;
        match probe {
            Probe::Send { ttl, dport } => {
                let link = self.path.link(Dir::Up);
                let mut ip = self.path.ip(Dir::Up, false);
                ip.ttl = ttl;
                ip.id = u32::from(dport);
                let sport = self.sport;
                fb.packet(&link, &ip, proto::UDP, |b| {
                    write_udp_header(b, sport, dport);
                    b.extend(0x40u8..0x60);
                });
            }
            Probe::Answer { ttl, dport } => {
                let last = ttl == self.hops;
                let mut quoted = Vec::with_capacity(80);
                self.probe(dport, &mut quoted);
                let link = self.path.link(Dir::Down);
                let mut ip = self.path.ip(Dir::Down, false);
                let v6 = self.path.is_v6();
                if !last {
                    let (r4, r6) = match self.path.addrs {
                        Addrs::V4 { dst, .. } => world.router(&dst, ttl),
                        Addrs::V6 { dst, .. } => world.router(&dst, ttl),
                    };
                    ip.addrs = match ip.addrs {
                        Addrs::V4 { dst, .. } => Addrs::V4 { src: r4, dst },
                        Addrs::V6 { dst, .. } => Addrs::V6 { src: r6, dst },
                    };
                    ip.ttl = if v6 { 64u8 } else { 255 }.saturating_sub(ttl - 1);
                }
                let (kind, code) = match (v6, last) {
                    (false, false) => (11, 0),
                    (false, true) => (3, 3),
                    (true, false) => (3, 0),
                    (true, true) => (1, 4),
                };
                // ICMPv4 quotes may be capped at 576 bytes in total; ours are short.
                fb.packet(
                    &link,
                    &ip,
                    if v6 { proto::ICMPV6 } else { proto::ICMP },
                    |b| {
                        b.extend_from_slice(&[kind, code, 0, 0, 0, 0, 0, 0]);
                        b.extend_from_slice(&quoted);
                    },
                );
            }
        }
        self.tl.next_ts().map(|t| t.max(now))
    }
}
