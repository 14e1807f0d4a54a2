//! TCP conversations: handshake, request/response exchanges over HTTP/1.1 or TLS 1.3
//! with slow-start pacing and delayed ACKs, and teardown by FINs, RST or not at all.
//!
//! The capture point sits next to the client: client segments are seen when sent and
//! server segments when they arrive, so a server's reaction to a client segment is seen
//! one round-trip time later, and a client's reaction almost immediately.

use super::path::{Dir, Path};
use super::timeline::Timeline;
use super::{Estimate, Sizing};
use crate::synth::apps::{http, tls};
use crate::synth::frames::{proto, FrameBuf};
use crate::synth::payload::{Content, Tail};
use crate::synth::rng::Rng;
use crate::synth::topology::{App, Os, World};
use flowtide_dataflows::packet::tcp::{ACK, FIN, PSH, RST, SYN};

/// Delayed-ACK timeout of the receivers.
const DELACK_NS: u64 = 40_000_000;
/// Initial congestion window, segments (RFC 6928).
const INITIAL_CWND: u32 = 10;
/// Largest congestion window the model uses, segments (bounds per-flow memory).
const MAX_CWND: u32 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SegKind {
    Syn,
    SynAck,
    Normal,
    Rst,
    /// A delayed ACK, dropped if the receiver has acknowledged the data by then.
    DelayedAck,
}

/// One decided segment.
#[derive(Clone, Copy, Debug)]
struct Seg {
    dir: Dir,
    kind: SegKind,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    /// Offset of the payload in the message of its direction.
    off: u64,
}

/// Per-direction sequence and option state.
#[derive(Clone, Copy, Debug, Default)]
struct Side {
    nxt: u32,
    ts_off: u32,
    last_tsval: u32,
    /// Acknowledgment number of the last segment sent.
    last_ack: u32,
    win: u16,
    syn_win: u16,
    syn_mss: u16,
    wscale: u8,
}

/// The next step of the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    ClientHello,
    ServerFlight,
    Request,
    Response,
    Close,
}

/// How the connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Fin { client_first: bool, four_way: bool },
    Rst { by_client: bool },
    Open,
}

/// How the connection starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Opening {
    Normal,
    Refused,
    Unanswered,
}

/// A message being sent in congestion-window rounds.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    dir: Dir,
    sent: u64,
    len: u64,
    cwnd: u32,
    at: u64,
}

/// Sizes of one request/response exchange.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    request: u64,
    upload: u64,
    response: u64,
    status: u16,
}

/// Parameters of a new TCP conversation.
#[derive(Clone, Debug)]
pub struct TcpSpec {
    /// Addressing.
    pub path: Path,
    /// Client operating system.
    pub os: Os,
    /// Client port.
    pub sport: u16,
    /// Server port.
    pub dport: u16,
    /// Application protocol.
    pub app: App,
    /// Server name (SNI, Host header).
    pub name: String,
    /// Round-trip time between capture point and server.
    pub rtt_ns: u64,
    /// Transfer sizes.
    pub sizing: Sizing,
}

/// A TCP conversation.
#[derive(Debug)]
pub struct TcpFlow {
    rng: Rng,
    plan: Rng,
    path: Path,
    ports: [u16; 2],
    sides: [Side; 2],
    timestamps: bool,
    mss: u32,
    rtt: u64,
    ps_per_byte: u64,
    tl: Timeline<Seg>,
    action: Option<(u64, Stage)>,
    following: Stage,
    transfer: Option<Transfer>,
    contents: [Content; 2],
    app: App,
    name: String,
    session: [u8; 32],
    first_request: bool,
    exchanges_left: u64,
    exchange: Option<Exchange>,
    sizing: Sizing,
    ending: Ending,
}

impl TcpFlow {
    /// Starts a conversation whose SYN is sent at `t0`; returns it with an estimate of
    /// its packet count.
    pub fn start(mut rng: Rng, spec: TcpSpec, t0: u64) -> (TcpFlow, Estimate) {
        let plan = Rng::new(rng.next_u64());
        let v6 = spec.path.is_v6();
        let ip_overhead = if v6 { 60 } else { 40 };
        let tunnel_overhead = spec.path.tunnel_overhead() as u32;
        let client_mss = (1500 - ip_overhead - tunnel_overhead) as u16;
        let server_mss = if rng.chance(0.15) {
            1400 - ip_overhead + 40
        } else {
            1500 - ip_overhead
        } as u16;
        let timestamps = spec.os.timestamps();
        let mss = u32::from(client_mss.min(server_mss)) - if timestamps { 12 } else { 0 };
        let client = Side {
            nxt: rng.next_u32(),
            ts_off: rng.next_u32(),
            last_tsval: 0,
            last_ack: 0,
            win: rng.range(500, 4000) as u16,
            syn_win: if spec.os == Os::MacOs { 65_535 } else { 64_240 },
            syn_mss: client_mss,
            wscale: spec.os.wscale(),
        };
        let server = Side {
            nxt: rng.next_u32(),
            ts_off: rng.next_u32(),
            last_tsval: 0,
            last_ack: 0,
            win: rng.range(200, 2000) as u16,
            syn_win: *rng.pick(&[65_160u16, 28_960, 65_535, 64_240]),
            syn_mss: server_mss,
            wscale: *rng.pick(&[7u8, 8, 9, 10]),
        };
        let bandwidth = spec.sizing.bandwidth(&mut rng);
        let rtt = ((spec.rtt_ns as f64) * rng.lognormal_in(1.0, 0.15, 0.7, 2.0)) as u64;
        let opening = match rng.f64() {
            x if x < 0.015 => Opening::Refused,
            x if x < 0.03 => Opening::Unanswered,
            _ => Opening::Normal,
        };
        let ending = match rng.f64() {
            x if x < 0.5 => Ending::Fin {
                client_first: true,
                four_way: rng.chance(0.3),
            },
            x if x < 0.75 => Ending::Fin {
                client_first: false,
                four_way: rng.chance(0.3),
            },
            x if x < 0.9 => Ending::Rst {
                by_client: rng.chance(0.8),
            },
            _ => Ending::Open,
        };
        let exchanges = rng.geometric(3.0).min(1000);
        let mut flow = TcpFlow {
            rng,
            plan,
            ports: [spec.sport, spec.dport],
            sides: [client, server],
            timestamps,
            mss: mss.max(200),
            rtt: rtt.max(50_000),
            ps_per_byte: (8e12 / bandwidth) as u64,
            tl: Timeline::new(),
            action: None,
            following: Stage::Close,
            transfer: None,
            contents: [Content::default(), Content::default()],
            app: spec.app,
            name: spec.name,
            session: [0; 32],
            first_request: true,
            exchanges_left: exchanges,
            exchange: None,
            sizing: spec.sizing,
            ending,
            path: spec.path,
        };
        let estimate = flow.open(t0, opening);
        flow.refill(t0);
        (flow, estimate)
    }

    /// Queues the opening handshake (or failed attempt) and returns the estimated packet
    /// count of the whole conversation.
    fn open(&mut self, t0: u64, opening: Opening) -> Estimate {
        let isn = self.sides[0].nxt;
        let syn = Seg {
            dir: Dir::Up,
            kind: SegKind::Syn,
            flags: SYN,
            seq: isn,
            ack: 0,
            len: 0,
            off: 0,
        };
        self.tl.push(t0, syn);
        self.sides[0].nxt = isn.wrapping_add(1);
        match opening {
            Opening::Refused => {
                let rst = Seg {
                    dir: Dir::Down,
                    kind: SegKind::Rst,
                    flags: RST | ACK,
                    seq: 0,
                    ack: self.sides[0].nxt,
                    len: 0,
                    off: 0,
                };
                self.tl.push(t0 + self.rtt, rst);
                return 2;
            }
            Opening::Unanswered => {
                self.tl.push(t0 + 1_000_000_000, syn);
                self.tl.push(t0 + 3_000_000_000, syn);
                return 3;
            }
            Opening::Normal => {}
        }
        let t1 = t0 + self.rtt + self.rng.range(10_000, 200_000);
        let s_isn = self.sides[1].nxt;
        self.tl.push(
            t1,
            Seg {
                dir: Dir::Down,
                kind: SegKind::SynAck,
                flags: SYN | ACK,
                seq: s_isn,
                ack: self.sides[0].nxt,
                len: 0,
                off: 0,
            },
        );
        self.sides[1].nxt = s_isn.wrapping_add(1);
        let t2 = t1 + self.ack_delay();
        self.tl.push(t2, self.pure_ack(Dir::Up));
        let first = if self.app == App::Tls {
            Stage::ClientHello
        } else {
            Stage::Request
        };
        self.action = Some((t2 + self.rng.range(30_000, 800_000), first));
        self.estimate()
    }

    /// Packets the conversation is expected to produce (replays the size plan).
    fn estimate(&self) -> Estimate {
        let mut plan = self.plan.clone();
        let mss = u64::from(self.mss);
        let msg = |bytes: u64| {
            let segs = bytes.div_ceil(mss).max(1);
            segs + segs.div_ceil(2)
        };
        let mut total = 3 + if self.ending == Ending::Open { 0 } else { 3 };
        if self.app == App::Tls {
            total += msg(517) + msg(4000);
        }
        for _ in 0..self.exchanges_left {
            let x = Self::draw_exchange(&mut plan, self.sizing);
            total += msg(x.request + x.upload + 40) + msg(x.response + 40);
        }
        total
    }

    fn draw_exchange(plan: &mut Rng, sizing: Sizing) -> Exchange {
        let request = plan.lognormal_in(420.0, 0.45, 90.0, 6000.0) as u64;
        let upload = if plan.chance(0.05) {
            sizing.apply(plan.lognormal_in(30_000.0, 1.8, 200.0, 50e6)) as u64
        } else {
            0
        };
        let (status, response) = match plan.f64() {
            x if x < 0.07 => (304, 0),
            x if x < 0.09 => (404, plan.range(100, 2000)),
            _ => (
                200,
                sizing.apply(plan.lognormal_in(5_000.0, 1.8, 50.0, 200e6)) as u64,
            ),
        };
        Exchange {
            request,
            upload,
            response,
            status,
        }
    }

    /// Delay of a client reaction at the capture point (ACK generation).
    fn ack_delay(&mut self) -> u64 {
        self.rng.lognormal_in(60_000.0, 0.6, 8_000.0, 2_000_000.0) as u64
    }

    /// Serialisation time of a segment with `len` payload bytes at the bottleneck.
    fn serialise(&self, len: u32) -> u64 {
        (u64::from(len) + 66) * self.ps_per_byte / 1000
    }

    /// A pure ACK from the sender of direction `dir`.
    fn pure_ack(&self, dir: Dir) -> Seg {
        let d = dir.index();
        Seg {
            dir,
            kind: SegKind::Normal,
            flags: ACK,
            seq: self.sides[d].nxt,
            ack: self.sides[1 - d].nxt,
            len: 0,
            off: 0,
        }
    }

    /// Time of the next packet, if any.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// Emits the packet due at `now` into `fb` and returns the time of the next one.
    pub fn step(&mut self, now: u64, world: &World, fb: &mut FrameBuf) -> Option<u64> {
        if let Some((ts, seg)) = self.tl.pop() {
            self.emit(ts.max(now), &seg, world, fb);
        }
        self.refill(now);
        self.tl.next_ts().map(|t| t.max(now))
    }

    /// Runs every decision due before the next queued packet.
    fn refill(&mut self, now: u64) {
        loop {
            let front = self.tl.next_ts();
            if let Some(tr) = self.transfer {
                if front.is_none_or(|f| tr.at <= f) {
                    self.round(tr);
                    continue;
                }
                return;
            }
            match self.action {
                Some((at, stage)) if front.is_none_or(|f| at <= f) => {
                    self.action = None;
                    self.run(at.max(now), stage);
                }
                _ => return,
            }
        }
    }

    /// Starts stage `stage` at `at`.
    fn run(&mut self, at: u64, stage: Stage) {
        match stage {
            Stage::ClientHello => {
                let mut head = Vec::with_capacity(600);
                let alpn: &[&str] = if self.ports[1] == 443 {
                    &["h2", "http/1.1"]
                } else {
                    &[]
                };
                self.session = tls::client_hello(&mut self.rng, &self.name, alpn, &mut head);
                self.send(Dir::Up, Content::bytes(head), at, Stage::ServerFlight);
            }
            Stage::ServerFlight => {
                let mut head = Vec::with_capacity(200);
                tls::server_hello(&mut self.rng, &self.session, &mut head);
                head.extend_from_slice(&tls::CHANGE_CIPHER_SPEC);
                let plain = self.rng.lognormal_in(3_500.0, 0.35, 1_200.0, 12_000.0) as u64;
                let tail = Tail::TlsRecords {
                    plain,
                    key: self.rng.next_u64(),
                };
                self.send(Dir::Down, Content { head, tail }, at, Stage::Request);
            }
            Stage::Request => {
                let x = Self::draw_exchange(&mut self.plan, self.sizing);
                self.exchange = Some(x);
                let key = self.rng.next_u64();
                let content = match self.app {
                    App::Tls => {
                        let mut head = Vec::new();
                        if self.first_request {
                            head.extend_from_slice(&tls::CHANGE_CIPHER_SPEC);
                            tls::app_record(&mut self.rng, 36, &mut head);
                        }
                        Content {
                            head,
                            tail: Tail::TlsRecords {
                                plain: x.request + x.upload,
                                key,
                            },
                        }
                    }
                    App::Http => Content {
                        head: http::request(&mut self.rng, &self.name, x.upload),
                        tail: Tail::Opaque { len: x.upload, key },
                    },
                };
                self.first_request = false;
                self.send(Dir::Up, content, at, Stage::Response);
            }
            Stage::Response => {
                let x = self.exchange.take().unwrap_or(Exchange {
                    request: 0,
                    upload: 0,
                    response: 100,
                    status: 200,
                });
                let key = self.rng.next_u64();
                let content = match self.app {
                    App::Tls => Content {
                        head: Vec::new(),
                        tail: Tail::TlsRecords {
                            plain: x.response.max(40),
                            key,
                        },
                    },
                    App::Http => Content {
                        head: http::response(
                            &mut self.rng,
                            x.status,
                            x.response,
                            at / 1_000_000_000,
                        ),
                        tail: Tail::Opaque {
                            len: x.response,
                            key,
                        },
                    },
                };
                self.exchanges_left = self.exchanges_left.saturating_sub(1);
                let next = if self.exchanges_left > 0 {
                    Stage::Request
                } else {
                    Stage::Close
                };
                self.send(Dir::Down, content, at, next);
            }
            Stage::Close => self.close(at),
        }
    }

    /// Starts sending `content` in direction `dir` at `at`; `next` follows it.
    fn send(&mut self, dir: Dir, content: Content, at: u64, next: Stage) {
        let len = content.len();
        self.contents[dir.index()] = content;
        self.following = next;
        self.transfer = Some(Transfer {
            dir,
            sent: 0,
            len,
            cwnd: INITIAL_CWND,
            at,
        });
    }

    /// Queues one congestion-window round of the current transfer.
    fn round(&mut self, mut tr: Transfer) {
        self.transfer = None;
        let dir = tr.dir;
        let (si, ri) = (dir.index(), 1 - dir.index());
        let near_sender = dir == Dir::Up;
        let mut t = tr.at;
        let mut first_ack = None;
        let mut unacked = 0u32;
        let mut sent_now = 0u32;
        let mut last_seen = t;
        let mut last_data = t;
        while sent_now < tr.cwnd && tr.sent < tr.len {
            let len = (tr.len - tr.sent).min(u64::from(self.mss)) as u32;
            let last = tr.sent + u64::from(len) == tr.len;
            let seg = Seg {
                dir,
                kind: SegKind::Normal,
                flags: ACK | if last { PSH } else { 0 },
                seq: self.sides[si].nxt,
                ack: self.sides[ri].nxt,
                len,
                off: tr.sent,
            };
            self.tl.push(t, seg);
            last_data = t;
            self.sides[si].nxt = self.sides[si].nxt.wrapping_add(len);
            tr.sent += u64::from(len);
            sent_now += 1;
            unacked += 1;
            let seen = if near_sender { t + self.rtt } else { t };
            last_seen = seen;
            if unacked == 2 {
                let at = seen + self.ack_delay();
                let ack = self.pure_ack(dir.flip());
                self.tl.push(at, ack);
                first_ack.get_or_insert(at);
                unacked = 0;
            }
            t += self.serialise(len);
        }
        if tr.sent < tr.len {
            let ack = first_ack.unwrap_or(last_seen + DELACK_NS);
            let reaction = if near_sender {
                ack + self.rng.range(5_000, 50_000)
            } else {
                ack + self.rtt
            };
            tr.at = reaction.max(t);
            let bdp = (self.rtt * 1000 / self.ps_per_byte.max(1)) / u64::from(self.mss).max(1);
            let cap = (2 * bdp).clamp(u64::from(INITIAL_CWND), u64::from(MAX_CWND)) as u32;
            tr.cwnd = (tr.cwnd * 2).min(cap);
            self.transfer = Some(tr);
            return;
        }
        // Message complete: a trailing odd segment is acknowledged after the delayed-ACK
        // timeout unless the receiver's next segment carries the acknowledgment first.
        if unacked > 0 {
            let mut ack = self.pure_ack(dir.flip());
            ack.kind = SegKind::DelayedAck;
            self.tl.push(last_seen + DELACK_NS, ack);
        }
        let at = match self.following {
            Stage::Close => last_seen + self.rng.lognormal_in(400e6, 1.6, 1e6, 60e9) as u64,
            _ if near_sender => {
                last_data + self.rtt + self.rng.lognormal_in(2.5e6, 1.0, 50e3, 2e9) as u64
            }
            Stage::Request if !self.first_request => {
                last_data + self.rng.lognormal_in(150e6, 1.8, 200e3, 30e9) as u64
            }
            _ => last_data + self.rng.lognormal_in(1.2e6, 0.6, 100e3, 50e6) as u64,
        };
        self.action = Some((at, self.following));
    }

    /// Queues the teardown.
    fn close(&mut self, at: u64) {
        match self.ending {
            Ending::Open => {}
            Ending::Rst { by_client } => {
                let dir = if by_client { Dir::Up } else { Dir::Down };
                let mut rst = self.pure_ack(dir);
                rst.kind = SegKind::Rst;
                rst.flags = RST | ACK;
                self.tl.push(at, rst);
            }
            Ending::Fin {
                client_first,
                four_way,
            } => {
                let a = if client_first { Dir::Up } else { Dir::Down };
                let b = a.flip();
                let mut fin = self.pure_ack(a);
                fin.flags = FIN | ACK;
                self.tl.push(at, fin);
                self.sides[a.index()].nxt = fin.seq.wrapping_add(1);
                // When the other side's reaction is seen at the capture point.
                let mut t = if a == Dir::Up {
                    at + self.rtt
                } else {
                    at + self.ack_delay()
                };
                if four_way {
                    let ack = self.pure_ack(b);
                    self.tl.push(t, ack);
                    t += if b == Dir::Up {
                        self.rng.lognormal_in(2e6, 1.0, 50e3, 1e9) as u64
                    } else {
                        self.rng.lognormal_in(300e3, 0.8, 20e3, 50e6) as u64
                    };
                }
                let mut fin_b = self.pure_ack(b);
                fin_b.flags = FIN | ACK;
                self.tl.push(t, fin_b);
                self.sides[b.index()].nxt = fin_b.seq.wrapping_add(1);
                let last = if a == Dir::Up {
                    t + self.ack_delay()
                } else {
                    t + self.rtt
                };
                let ack = self.pure_ack(a);
                self.tl.push(last, ack);
            }
        }
    }

    /// Builds the frame of `seg` at `ts`.
    fn emit(&mut self, ts: u64, seg: &Seg, world: &World, fb: &mut FrameBuf) {
        let d = seg.dir.index();
        if seg.kind == SegKind::DelayedAck
            && (self.sides[d].last_ack.wrapping_sub(seg.ack) as i32) >= 0
        {
            return;
        }
        if seg.flags & ACK != 0 {
            self.sides[d].last_ack = seg.ack;
        }
        let link = self.path.link(seg.dir);
        let ip = self.path.ip(seg.dir, true);
        let tsval = ((ts / 1_000_000) as u32).wrapping_add(self.sides[d].ts_off);
        let tsecr = if seg.kind == SegKind::Syn {
            0
        } else {
            self.sides[1 - d].last_tsval
        };
        self.sides[d].last_tsval = tsval;
        let side = self.sides[d];
        let window = match seg.kind {
            SegKind::Syn | SegKind::SynAck => side.syn_win,
            SegKind::Rst => 0,
            SegKind::Normal | SegKind::DelayedAck => side.win,
        };
        let ports = if seg.dir == Dir::Up {
            self.ports
        } else {
            [self.ports[1], self.ports[0]]
        };
        let timestamps = self.timestamps;
        let content = &self.contents[d];
        fb.packet(&link, &ip, proto::TCP, |b| {
            let start = b.len();
            b.extend_from_slice(&ports[0].to_be_bytes());
            b.extend_from_slice(&ports[1].to_be_bytes());
            b.extend_from_slice(&seg.seq.to_be_bytes());
            b.extend_from_slice(&seg.ack.to_be_bytes());
            b.extend_from_slice(&[0, seg.flags]);
            b.extend_from_slice(&window.to_be_bytes());
            b.extend_from_slice(&[0, 0, 0, 0]);
            let ts_opt = |b: &mut Vec<u8>| {
                b.extend_from_slice(&[8, 10]);
                b.extend_from_slice(&tsval.to_be_bytes());
                b.extend_from_slice(&tsecr.to_be_bytes());
            };
            let mss = |b: &mut Vec<u8>| {
                b.extend_from_slice(&[2, 4]);
                b.extend_from_slice(&side.syn_mss.to_be_bytes());
            };
            match seg.kind {
                SegKind::Syn | SegKind::SynAck if timestamps => {
                    mss(b);
                    b.extend_from_slice(&[4, 2]);
                    ts_opt(b);
                    b.extend_from_slice(&[1, 3, 3, side.wscale]);
                }
                SegKind::Syn => {
                    mss(b);
                    b.extend_from_slice(&[1, 3, 3, side.wscale, 1, 1, 4, 2]);
                }
                SegKind::SynAck => {
                    mss(b);
                    b.extend_from_slice(&[1, 3, 3, side.wscale, 4, 2, 1, 1]);
                }
                SegKind::Normal | SegKind::DelayedAck if timestamps => {
                    b.extend_from_slice(&[1, 1]);
                    ts_opt(b);
                }
                SegKind::Normal | SegKind::DelayedAck | SegKind::Rst => {}
            }
            let header = b.len() - start;
            b[start + 12] = ((header / 4) as u8) << 4;
            if seg.len > 0 {
                content.extend(&world.pool, seg.off, seg.len as usize, b);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::traffic::path::Path;

    fn flow(seed: u64, app: App) -> (TcpFlow, u64, World) {
        let world = World::new(seed, 10);
        let host = world.host(1);
        let mut rng = Rng::new(seed);
        let path = Path::new(&mut rng, &host, [192, 0, 2, 1], None, false, 50, None);
        let spec = TcpSpec {
            path,
            os: host.os,
            sport: 50_000,
            dport: if app == App::Tls { 443 } else { 80 },
            app,
            name: "www.example.com".into(),
            rtt_ns: 20_000_000,
            sizing: Sizing {
                scale: 1.0,
                max_bytes: 1e9,
                max_bps: 1e9,
            },
        };
        let (f, est) = TcpFlow::start(rng, spec, 1_000);
        (f, est, world)
    }

    #[test]
    fn conversation_is_ordered_and_terminates() {
        for seed in 0..40 {
            for app in [App::Tls, App::Http] {
                let (mut f, _est, world) = flow(seed, app);
                let mut fb = FrameBuf::new();
                let mut now = f.next_ts().unwrap_or(0);
                let mut n = 0;
                loop {
                    let next = f.step(now, &world, &mut fb);
                    n += 1;
                    assert!(fb.bytes().len() >= 60);
                    match next {
                        Some(t) => {
                            assert!(t >= now);
                            now = t;
                        }
                        None => break,
                    }
                    assert!(n < 10_000_000);
                }
                assert!(n >= 2);
            }
        }
    }
}
