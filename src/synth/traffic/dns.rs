//! DNS lookups over UDP: one query and its response (A, AAAA, HTTPS, NXDOMAIN, CNAME
//! chains), occasionally a retransmitted query, and large EDNS TXT answers that are
//! fragmented.

use super::fragments::Fragmented;
use super::path::{Dir, Path, TunnelChoice};
use super::timeline::Timeline;
use super::Estimate;
use crate::synth::apps::dns::{self, Answer};
use crate::synth::frames::{proto, write_transport, write_udp_header, FrameBuf};
use crate::synth::rng::Rng;
use crate::synth::topology::World;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Query,
    Response,
    Fragment,
}

/// One DNS transaction.
#[derive(Debug)]
pub struct DnsFlow {
    rng: Rng,
    path: Path,
    sport: u16,
    id: u16,
    name: String,
    qtype: u16,
    edns: Option<u16>,
    answer: Answer,
    tl: Timeline<Event>,
    fragments: Option<Fragmented>,
}

impl DnsFlow {
    /// A lookup by a random client starting at `t0`; `big` asks for a large TXT answer.
    pub fn start(
        mut rng: Rng,
        world: &World,
        t0: u64,
        v6: bool,
        big: bool,
        tunnel: Option<TunnelChoice>,
    ) -> (DnsFlow, Estimate) {
        let host = world.host(world.pick_host(&mut rng));
        let (r6, r4, resolver_rtt, ttl) = world.resolver(&host);
        let path = Path::new(&mut rng, &host, r4, Some(r6), v6, ttl, tunnel);
        let server = world.pick_server(&mut rng);
        let mut name = world.server_name(server);
        let target = world.server(server);
        let (qtype, answer, edns) = if big {
            name = format!("_keys.{name}");
            let records = rng.range(2, 5) as usize;
            (
                dns::TXT,
                Answer::Txt {
                    records,
                    strings: rng.range(3, 5) as usize,
                },
                Some(4096),
            )
        } else {
            let edns = rng
                .chance(0.6)
                .then_some(if rng.chance(0.5) { 1232 } else { 4096 });
            let qtype = match rng.f64() {
                x if x < 0.55 => dns::A,
                x if x < 0.85 => dns::AAAA,
                _ => dns::HTTPS,
            };
            let answer = if rng.chance(0.05) {
                name = format!("{:x}.{name}", rng.next_u32());
                Answer::NxDomain
            } else {
                let alias = rng
                    .chance(0.3)
                    .then(|| format!("{}.edgekey.net", name.replace('.', "-")));
                let ttl = *rng.pick(&[30u32, 60, 300, 3600, 86_400]);
                let extra = rng.below(3) as usize;
                match qtype {
                    dns::A => {
                        let mut addrs = vec![target.v4.to_vec()];
                        for _ in 0..extra {
                            let mut a = target.v4;
                            a[3] = a[3].wrapping_add(1 + rng.below(200) as u8);
                            addrs.push(a.to_vec());
                        }
                        Answer::Addresses { alias, addrs, ttl }
                    }
                    dns::AAAA => match target.v6 {
                        Some(a) => Answer::Addresses {
                            alias,
                            addrs: vec![a.to_vec()],
                            ttl,
                        },
                        None => Answer::NoData,
                    },
                    _ => Answer::NoData,
                }
            };
            (qtype, answer, edns)
        };
        let sport = rng.range(1024, 65_535) as u16;
        let id = rng.next_u16();
        let mut tl = Timeline::new();
        tl.push(t0, Event::Query);
        let mut t = t0;
        let mut estimate = 2;
        if rng.chance(0.015) {
            // Lost first query (or answer): the stub resolver retries after a timeout.
            t += *rng.pick(&[1_000_000_000u64, 2_000_000_000, 5_000_000_000]);
            tl.push(t, Event::Query);
            estimate += 1;
        }
        let cached = rng.chance(0.7);
        let delay = resolver_rtt
            + if cached {
                rng.range(20_000, 300_000)
            } else {
                rng.lognormal_in(25e6, 0.9, 2e6, 800e6) as u64
            };
        tl.push(t + delay, Event::Response);
        if big {
            estimate += 3;
        }
        let flow = DnsFlow {
            rng,
            path,
            sport,
            id,
            name,
            qtype,
            edns,
            answer,
            tl,
            fragments: None,
        };
        (flow, estimate)
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, fb: &mut FrameBuf) -> Option<u64> {
        let (_, event) = self.tl.pop()?;
        let ports = [self.sport, 53];
        match event {
            Event::Query => {
                let link = self.path.link(Dir::Up);
                let ip = self.path.ip(Dir::Up, false);
                let (id, name, qtype, edns) = (self.id, &self.name, self.qtype, self.edns);
                fb.packet(&link, &ip, proto::UDP, |b| {
                    write_udp_header(b, ports[0], ports[1]);
                    dns::query(b, id, name, qtype, edns);
                });
            }
            Event::Response => {
                let mut msg = Vec::with_capacity(512);
                dns::response(
                    &mut msg,
                    &mut self.rng,
                    self.id,
                    &self.name,
                    self.qtype,
                    &self.answer,
                    self.edns,
                );
                if Fragmented::needed(&self.path, msg.len() + 8) {
                    let mut datagram = Vec::with_capacity(msg.len() + 8);
                    write_transport(
                        &mut datagram,
                        &self.path.addrs.reversed(),
                        proto::UDP,
                        |b| {
                            write_udp_header(b, ports[1], ports[0]);
                            b.extend_from_slice(&msg);
                        },
                    );
                    let mut frags = Fragmented::new(
                        &mut self.rng,
                        &mut self.path,
                        Dir::Down,
                        proto::UDP,
                        datagram,
                    );
                    frags.emit_next(&mut self.path, fb);
                    let mut t = now;
                    for _ in 1..frags.count() {
                        t += self.rng.range(2_000, 15_000);
                        self.tl.push(t, Event::Fragment);
                    }
                    self.fragments = Some(frags);
                } else {
                    let link = self.path.link(Dir::Down);
                    let ip = self.path.ip(Dir::Down, false);
                    fb.packet(&link, &ip, proto::UDP, |b| {
                        write_udp_header(b, ports[1], ports[0]);
                        b.extend_from_slice(&msg);
                    });
                }
            }
            Event::Fragment => {
                if let Some(f) = self.fragments.as_mut() {
                    f.emit_next(&mut self.path, fb);
                }
            }
        }
        self.tl.next_ts().map(|t| t.max(now))
    }
}
