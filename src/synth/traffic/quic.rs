//! QUIC-like conversations on UDP/443: a handshake of padded long-header packets,
//! then request/response exchanges of short-header packets sent in slow-start rounds
//! with the client acknowledging every second packet. Payloads are random (protected).

use super::path::{Dir, Path};
use super::timeline::Timeline;
use super::{Estimate, Sizing};
use crate::synth::apps::quic;
use crate::synth::frames::{proto, write_udp_header, FrameBuf};
use crate::synth::rng::Rng;
use crate::synth::topology::World;

/// UDP payload of a full QUIC datagram.
const FULL: u16 = 1252;

#[derive(Clone, Copy, Debug)]
enum Packet {
    /// Client Initial (padded).
    ClientInitial,
    /// Server Initial + Handshake, or Handshake only, padded to `len`.
    ServerHandshake { initial: bool, len: u16 },
    /// Short-header packet with `len` protected bytes.
    Short { dir: Dir, len: u16 },
}

/// One QUIC connection.
#[derive(Debug)]
pub struct QuicFlow {
    rng: Rng,
    path: Path,
    sport: u16,
    dcid: [u8; 8],
    scid: [u8; 8],
    rtt: u64,
    ns_per_packet: u64,
    tl: Timeline<Packet>,
    /// Next response round: (time, packets left, congestion window).
    round: Option<(u64, u64, u64)>,
    exchanges_left: u64,
    sizing: Sizing,
}

impl QuicFlow {
    /// A connection to a popular QUIC-capable server from `t0`.
    pub fn start(
        mut rng: Rng,
        world: &World,
        t0: u64,
        v6: bool,
        sizing: Sizing,
    ) -> (QuicFlow, Estimate) {
        let mut index = world.pick_server(&mut rng);
        for _ in 0..8 {
            if world.server(index).quic {
                break;
            }
            index = world.pick_server(&mut rng);
        }
        let server = *world.server(index);
        let host = world.host(world.pick_host(&mut rng));
        let path = Path::new(&mut rng, &host, server.v4, server.v6, v6, server.ttl, None);
        let rtt = (server.rtt_ns as f64 * rng.lognormal_in(1.0, 0.15, 0.7, 2.0)) as u64;
        let bandwidth = sizing.bandwidth(&mut rng);
        let mut dcid = [0u8; 8];
        let mut scid = [0u8; 8];
        rng.fill(&mut dcid);
        rng.fill(&mut scid);
        let mut tl = Timeline::new();
        tl.push(t0, Packet::ClientInitial);
        let t1 = t0 + rtt + rng.range(100_000, 2_000_000);
        let gap = (f64::from(FULL + 42) * 8e9 / bandwidth) as u64;
        tl.push(
            t1,
            Packet::ServerHandshake {
                initial: true,
                len: FULL,
            },
        );
        tl.push(
            t1 + gap,
            Packet::ServerHandshake {
                initial: false,
                len: FULL,
            },
        );
        tl.push(
            t1 + 2 * gap,
            Packet::ServerHandshake {
                initial: false,
                len: rng.range(300, 1100) as u16,
            },
        );
        let t2 = t1 + 2 * gap + rng.range(200_000, 2_000_000);
        let exchanges = rng.geometric(2.5).min(500);
        let mut flow = QuicFlow {
            rng,
            path,
            sport: 0,
            dcid,
            scid,
            rtt,
            ns_per_packet: gap.max(1),
            tl,
            round: None,
            exchanges_left: exchanges,
            sizing,
        };
        flow.sport = flow.rng.range(32_768, 65_535) as u16;
        let packets = flow.exchange(t2);
        // The remaining exchanges are estimated from the mean response size.
        let estimate =
            6 + packets + (exchanges - 1) * ((sizing.apply(35_000.0) / 1200.0) as u64 * 3 / 2 + 2);
        (flow, estimate)
    }

    /// Queues a request at `at` and schedules its response; returns its packet count.
    fn exchange(&mut self, at: u64) -> u64 {
        let request = self.rng.range(60, 900) as u16;
        self.tl.push(
            at,
            Packet::Short {
                dir: Dir::Up,
                len: request,
            },
        );
        let bytes = self
            .sizing
            .apply(self.rng.lognormal_in(12_000.0, 1.8, 200.0, 100e6));
        let packets = (bytes / f64::from(FULL - 30)).ceil().max(1.0) as u64;
        let start = at + self.rtt + self.rng.lognormal_in(3e6, 1.0, 100e3, 2e9) as u64;
        self.round = Some((start, packets, 10));
        self.exchanges_left = self.exchanges_left.saturating_sub(1);
        1 + packets + packets / 2
    }

    /// Queues the next round of the response in flight.
    fn send_round(&mut self) {
        let Some((at, left, cwnd)) = self.round.take() else {
            return;
        };
        let n = left.min(cwnd);
        let mut t = at;
        for i in 0..n {
            let last = i + 1 == n && n == left;
            let len = if last {
                self.rng.range(100, u64::from(FULL - 9)) as u16
            } else {
                FULL - 9
            };
            self.tl.push(
                t,
                Packet::Short {
                    dir: Dir::Down,
                    len,
                },
            );
            if i % 2 == 1 || last {
                let ack_at = t + self.rng.range(20_000, 400_000);
                let ack_len = self.rng.range(24, 40) as u16;
                self.tl.push(
                    ack_at,
                    Packet::Short {
                        dir: Dir::Up,
                        len: ack_len,
                    },
                );
            }
            t += self.ns_per_packet;
        }
        if n < left {
            self.round = Some(((at + self.rtt).max(t), left - n, (cwnd * 2).min(128)));
        } else if self.exchanges_left > 0 {
            let think = self.rng.lognormal_in(200e6, 1.8, 1e6, 30e9) as u64;
            self.exchange(t + think);
        }
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    fn refill(&mut self) {
        while let Some((at, _, _)) = self.round {
            if self.tl.next_ts().is_some_and(|f| f < at) {
                return;
            }
            self.send_round();
        }
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, fb: &mut FrameBuf) -> Option<u64> {
        self.refill();
        let (_, packet) = self.tl.pop()?;
        let dir = match packet {
            Packet::ClientInitial => Dir::Up,
            Packet::ServerHandshake { .. } => Dir::Down,
            Packet::Short { dir, .. } => dir,
        };
        let link = self.path.link(dir);
        let ip = self.path.ip(dir, !self.path.is_v6());
        let ports = if dir == Dir::Up {
            [self.sport, 443]
        } else {
            [443, self.sport]
        };
        let (dcid, scid) = (self.dcid, self.scid);
        let rng = &mut self.rng;
        fb.packet(&link, &ip, proto::UDP, |b| {
            write_udp_header(b, ports[0], ports[1]);
            let start = b.len();
            match packet {
                Packet::ClientInitial => {
                    quic::long_packet(b, rng, 0, &dcid, &[], FULL - 1 - 4 - 1 - 8 - 1 - 1 - 2);
                }
                Packet::ServerHandshake { initial, len } => {
                    if initial {
                        quic::long_packet(b, rng, 0, &[], &scid, 120);
                    }
                    let used = (b.len() - start) as u16;
                    let room = len.saturating_sub(used + 1 + 4 + 1 + 1 + 8 + 2).max(40);
                    quic::long_packet(b, rng, 2, &[], &scid, room);
                }
                Packet::Short { dir: Dir::Up, len } => {
                    quic::short_packet(b, rng, &scid, usize::from(len))
                }
                Packet::Short {
                    dir: Dir::Down,
                    len,
                } => quic::short_packet(b, rng, &[], usize::from(len)),
            }
        });
        self.refill();
        self.tl.next_ts().map(|t| t.max(now))
    }
}
