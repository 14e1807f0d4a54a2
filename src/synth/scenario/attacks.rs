//! The injected attacks. Each instance is one [`Attack`] spawner that plans its packets
//! (probes, flood packets, tunnelled queries, fragments, sessions) between its start and
//! its planned end; every packet carries the instance's [`Tag`] so that the ground truth
//! records the span and count of what was actually written.

use super::office::{eph_port, Net};
use super::script::{Body, Data, Ends, Script, Tag, ACK, RST, SYN};
use super::tcp::https;
use super::Spawner;
use crate::synth::apps::dns;
use crate::synth::frames::{proto, write_transport, write_udp_header, Addrs};
use crate::synth::rng::Rng;

/// Kinds of attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Vertical TCP SYN scan of ~1,000 ports in seconds.
    FastScan,
    /// The same, one probe every ~30 s.
    SlowScan,
    /// TCP SYN flood at thousands of packets per second.
    SynFlood,
    /// UDP flood at random ports.
    UdpFlood,
    /// DNS tunnelling: long random subdomains of one domain, TXT answers.
    DnsTunnel,
    /// IPv4 fragments overlapping with different data.
    FragOverlap,
    /// Many fragmented datagrams that never complete.
    FragFlood,
    /// Low-and-slow exfiltration: small HTTPS uploads every few minutes.
    Exfil,
    /// C2 beacon, 10 % jitter.
    Beacon10,
    /// C2 beacon, 40 % jitter.
    Beacon40,
}

impl Kind {
    /// Every kind, in the order of the ground truth.
    pub const ALL: [Kind; 10] = [
        Kind::FastScan,
        Kind::SlowScan,
        Kind::SynFlood,
        Kind::UdpFlood,
        Kind::DnsTunnel,
        Kind::FragOverlap,
        Kind::FragFlood,
        Kind::Exfil,
        Kind::Beacon10,
        Kind::Beacon40,
    ];

    /// The `type` of the instance in truth.json.
    pub fn name(self) -> &'static str {
        match self {
            Kind::FastScan => "fast_scan",
            Kind::SlowScan => "slow_scan",
            Kind::SynFlood => "syn_flood",
            Kind::UdpFlood => "udp_flood",
            Kind::DnsTunnel => "dns_tunnel",
            Kind::FragOverlap => "frag_overlap",
            Kind::FragFlood => "frag_flood",
            Kind::Exfil => "exfil_low_slow",
            Kind::Beacon10 => "beacon_jitter10",
            Kind::Beacon40 => "beacon_jitter40",
        }
    }

    /// True for the attacks of a compromised workstation against the outside (no
    /// victim).
    pub fn is_inside_out(self) -> bool {
        matches!(
            self,
            Kind::DnsTunnel | Kind::Exfil | Kind::Beacon10 | Kind::Beacon40
        )
    }

    /// True for the attacks that last seconds to minutes (placed one after another);
    /// the others run for most of the post-warm-up time, in parallel.
    pub fn is_short(self) -> bool {
        !matches!(
            self,
            Kind::SlowScan | Kind::Exfil | Kind::Beacon10 | Kind::Beacon40
        )
    }
}

/// One attack instance being generated.
pub struct Attack {
    pub kind: Kind,
    pub tag: Tag,
    pub attacker: [u8; 4],
    /// Target (scans, floods, fragments) or remote server (tunnel domain's resolver,
    /// exfiltration and C2 servers).
    pub peer: [u8; 4],
    pub peer_name: String,
    pub attacker_ttl: u8,
    pub peer_ttl: u8,
    pub peer_rtt: u64,
    /// Planned end (no new activity starts after it).
    pub end: u64,
    pub rng: Rng,
    /// Events per second (floods, fast scan, tunnel queries), or mean seconds between
    /// events (slow scan, exfiltration, beacons, fragment overlaps).
    pub rate: f64,
    pub jitter: f64,
    pub ports: Vec<u16>,
    pub open: Vec<u16>,
    pub next_port: usize,
    pub sport: u16,
    pub domain: String,
    pub serial: u32,
}

impl Attack {
    fn script(&mut self, cport: u16, sport: u16, client_is_attacker: bool) -> Script {
        let (client, server, ttl) = if client_is_attacker {
            (self.attacker, self.peer, [self.attacker_ttl, self.peer_ttl])
        } else {
            (self.peer, self.attacker, [self.peer_ttl, self.attacker_ttl])
        };
        let ends = Ends {
            client,
            server,
            cport,
            sport,
        };
        Script::new(
            ends,
            self.tag,
            ttl,
            [self.rng.next_u16(), self.rng.next_u16()],
        )
    }

    /// A SYN probe of `port` answered by RST (closed) or SYN-ACK then the scanner's RST.
    fn probe(&mut self, now: u64, port: u16, sport: u16) -> Script {
        let mut s = self.script(sport, port, true);
        let seq = self.rng.next_u32();
        let syn = |flags, seq, ack, win| Body::Tcp {
            flags,
            seq,
            ack,
            win,
            data: Data::None,
        };
        s.push(now, true, syn(SYN, seq, 0, 1024));
        let back = now + self.peer_rtt;
        if self.open.contains(&port) {
            s.push(
                back,
                false,
                syn(SYN | ACK, self.rng.next_u32(), seq.wrapping_add(1), 64_240),
            );
            s.push(back + 40_000, true, syn(RST, seq.wrapping_add(1), 0, 0));
        } else {
            s.push(back, false, syn(RST | ACK, 0, seq.wrapping_add(1), 0));
        }
        s.finish()
    }

    fn syn_flood(&mut self, now: u64) -> Script {
        let sport = self.rng.range(1_024, 65_535) as u16;
        let mut s = self.script(sport, 443, true);
        let seq = self.rng.next_u32();
        s.push(
            now,
            true,
            Body::Tcp {
                flags: SYN,
                seq,
                ack: 0,
                win: 512,
                data: Data::None,
            },
        );
        // The backlog answers a quarter of them.
        if self.rng.chance(0.25) {
            s.push(
                now + self.peer_rtt,
                false,
                Body::Tcp {
                    flags: SYN | ACK,
                    seq: self.rng.next_u32(),
                    ack: seq.wrapping_add(1),
                    win: 64_240,
                    data: Data::None,
                },
            );
        }
        s.finish()
    }

    /// A random port in `[lo, 65535]` that no decoder takes for a tunnel (VXLAN,
    /// Geneve, GTP-U, Teredo).
    fn plain_port(&mut self, lo: u64) -> u16 {
        loop {
            let p = self.rng.range(lo, 65_535) as u16;
            if !matches!(p, 2152 | 3544 | 4789 | 6081 | 8472) {
                return p;
            }
        }
    }

    fn udp_flood(&mut self, now: u64) -> Script {
        let sport = self.plain_port(1_024);
        let dport = self.plain_port(1);
        let mut s = self.script(sport, dport, true);
        let len = self.rng.range(64, 512) as u16;
        let off = self.rng.next_u32();
        s.push(
            now,
            true,
            Body::Udp {
                data: Data::Pool { off, len },
            },
        );
        s.finish()
    }

    fn tunnel_query(&mut self, now: u64) -> Script {
        const B32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
        let cport = eph_port(&mut self.rng);
        let mut s = self.script(cport, 53, true);
        let mut name = String::with_capacity(200);
        let chars = self.rng.range(90, 180);
        for i in 0..chars {
            if i > 0 && i % 60 == 0 {
                name.push('.');
            }
            name.push(char::from(B32[self.rng.below(32) as usize]));
        }
        self.serial = self.serial.wrapping_add(1);
        name.push_str(&format!(".{:x}.t.{}", self.serial, self.domain));
        let id = self.rng.next_u16();
        let mut q = Vec::with_capacity(256);
        dns::query(&mut q, id, &name, dns::TXT, Some(1232));
        s.push(
            now,
            true,
            Body::Udp {
                data: Data::Bytes(q),
            },
        );
        let mut r = Vec::with_capacity(600);
        let answer = dns::Answer::Txt {
            records: 1,
            strings: 1,
        };
        dns::response(
            &mut r,
            &mut self.rng,
            id,
            &name,
            dns::TXT,
            &answer,
            Some(1232),
        );
        let delay = self.rng.range(20_000_000, 90_000_000);
        s.push(
            now + delay,
            false,
            Body::Udp {
                data: Data::Bytes(r),
            },
        );
        s.finish()
    }

    /// A UDP datagram cut into three fragments where the second overlaps the first with
    /// different bytes (the Ptacek-Newsham evasion): what the victim reassembles depends
    /// on its overlap policy.
    fn overlap(&mut self, now: u64) -> Script {
        let sport = eph_port(&mut self.rng);
        let dport = *self.rng.pick(&[53u16, 80, 123, 161, 445, 514]);
        let mut s = self.script(sport, dport, true);
        s.set_df(false);
        let addrs = Addrs::V4 {
            src: self.attacker,
            dst: self.peer,
        };
        let mut dgram = Vec::with_capacity(64);
        let mut data = [0u8; 48];
        self.rng.fill(&mut data);
        write_transport(&mut dgram, &addrs, proto::UDP, |b| {
            write_udp_header(b, sport, dport);
            b.extend_from_slice(&data);
        });
        let ident = self.rng.next_u16();
        // [0, 24) ; [16, 40) with [16, 24) rewritten ; [40, 56) final.
        let first = dgram[0..24].to_vec();
        let mut second = dgram[16..40].to_vec();
        for b in &mut second[..8] {
            *b ^= 0x5a;
        }
        let last = dgram[40..].to_vec();
        let mut frags = vec![(0u32, true, first), (16, true, second), (40, false, last)];
        if self.rng.chance(0.5) {
            frags.swap(0, 1);
        }
        let mut t = now;
        for (offset, more, data) in frags {
            s.push(
                t,
                true,
                Body::Frag {
                    ident,
                    offset,
                    more,
                    proto: proto::UDP,
                    data,
                },
            );
            t += self.rng.range(20_000, 400_000);
        }
        s.finish()
    }

    /// One to two non-final fragments of a datagram that never completes. Identifiers
    /// are sequential, so no two datagrams within the reassembly timeout share one at
    /// the planned rates (at most 1,000 per second).
    fn flood_datagram(&mut self, now: u64) -> Script {
        let sport = eph_port(&mut self.rng);
        let mut s = self.script(sport, 0, true);
        s.set_df(false);
        self.serial = self.serial.wrapping_add(1);
        let ident = self.serial as u16;
        let size = 8 * self.rng.range(8, 24) as u32;
        let mut t = now;
        for k in 0..self.rng.range(1, 2) as u32 {
            let mut data = vec![0u8; size as usize];
            self.rng.fill(&mut data);
            s.push(
                t,
                true,
                Body::Frag {
                    ident,
                    offset: k * size,
                    more: true,
                    proto: proto::UDP,
                    data,
                },
            );
            t += self.rng.range(5_000, 50_000);
        }
        s.finish()
    }

    fn session(&mut self, now: u64, upload: bool) -> Script {
        let ends = Ends {
            client: self.attacker,
            server: self.peer,
            cport: eph_port(&mut self.rng),
            sport: 443,
        };
        let exchanges = if upload {
            let bytes = self.rng.range(50_000, 200_000);
            vec![(400, 300, 0), (bytes, 200, 200_000_000)]
        } else {
            let req = self.rng.range(180, 420);
            let resp = self.rng.range(90, 600);
            vec![(req, resp, 0)]
        };
        let name = self.peer_name.clone();
        https(
            &mut self.rng,
            ends,
            self.tag,
            [self.attacker_ttl, self.peer_ttl],
            now,
            self.peer_rtt,
            20e6,
            &name,
            &exchanges,
        )
    }

    fn spaced(&mut self, now: u64) -> u64 {
        let f = 1.0 + self.jitter * (2.0 * self.rng.f64() - 1.0);
        now + (self.rate * f * 1e9) as u64
    }

    fn poisson(&mut self, now: u64) -> u64 {
        now + (self.rng.exp(1.0 / self.rate) * 1e9) as u64 + 1
    }
}

impl Spawner for Attack {
    fn step(&mut self, now: u64, _net: &Net, out: &mut Vec<Script>) -> Option<u64> {
        if now > self.end {
            return None;
        }
        let next = match self.kind {
            Kind::FastScan | Kind::SlowScan => {
                let port = *self.ports.get(self.next_port)?;
                self.next_port += 1;
                let sport = if self.kind == Kind::FastScan {
                    self.sport
                } else {
                    eph_port(&mut self.rng)
                };
                out.push(self.probe(now, port, sport));
                if self.next_port >= self.ports.len() {
                    return None;
                }
                if self.kind == Kind::FastScan {
                    self.poisson(now)
                } else {
                    self.spaced(now)
                }
            }
            Kind::SynFlood => {
                out.push(self.syn_flood(now));
                self.poisson(now)
            }
            Kind::UdpFlood => {
                out.push(self.udp_flood(now));
                self.poisson(now)
            }
            Kind::DnsTunnel => {
                out.push(self.tunnel_query(now));
                self.poisson(now)
            }
            Kind::FragOverlap => {
                out.push(self.overlap(now));
                self.spaced(now)
            }
            Kind::FragFlood => {
                out.push(self.flood_datagram(now));
                self.poisson(now)
            }
            Kind::Exfil => {
                out.push(self.session(now, true));
                self.spaced(now)
            }
            Kind::Beacon10 | Kind::Beacon40 => {
                out.push(self.session(now, false));
                self.spaced(now)
            }
        };
        (next <= self.end).then_some(next)
    }
}
