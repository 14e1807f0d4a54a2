//! Planning a TCP connection as seen at the office uplink: handshake, optional TLS 1.3
//! handshake, request/response exchanges or bulk uploads in slow-start flights with
//! delayed ACKs every second segment, and a FIN teardown.
//!
//! The capture point is next to the client: a client packet is seen when sent, the
//! server's answer one round trip later.

use super::script::{Body, Data, Ends, Script, Tag, ACK, FIN, PSH, SYN};
use crate::synth::apps::tls;
use crate::synth::rng::Rng;

/// Payload bytes per full segment.
pub const MSS: u64 = 1460;
/// Initial congestion window in segments.
const INIT_CWND: u64 = 10;

/// A TCP connection being planned; `t` is the time of the last planned event.
pub struct TcpPlan {
    script: Script,
    t: u64,
    rtt: u64,
    /// Serialisation time of a full segment (ns).
    ser: u64,
    seq: [u32; 2],
    pool_off: u32,
}

impl TcpPlan {
    /// Plans the three-way handshake starting at `t0`. `rtt` is the round trip time
    /// from the capture point to the server, `bw_bps` the bottleneck bandwidth.
    pub fn open(
        rng: &mut Rng,
        ends: Ends,
        tag: Tag,
        ttl: [u8; 2],
        t0: u64,
        rtt: u64,
        bw_bps: f64,
    ) -> TcpPlan {
        let ip_id = [rng.next_u16(), rng.next_u16()];
        let mut p = TcpPlan {
            script: Script::new(ends, tag, ttl, ip_id),
            t: t0,
            rtt: rtt.max(20_000),
            ser: ((1514.0 * 8.0 / bw_bps.max(1e5)) * 1e9) as u64,
            seq: [rng.next_u32(), rng.next_u32()],
            pool_off: rng.next_u32(),
        };
        p.seg(t0, true, SYN, Data::None);
        p.seq[0] = p.seq[0].wrapping_add(1);
        p.seg_raw(t0 + p.rtt, false, SYN | ACK, p.seq[1], Data::None);
        p.seq[1] = p.seq[1].wrapping_add(1);
        p.t = t0 + p.rtt + 30_000;
        p.seg(p.t, true, ACK, Data::None);
        p
    }

    fn seg_raw(&mut self, ts: u64, up: bool, flags: u8, seq: u32, data: Data) {
        let d = usize::from(!up);
        let ack = if flags & ACK != 0 { self.seq[1 - d] } else { 0 };
        let win = if up { 64_240 } else { 65_160 };
        self.script.push(
            ts,
            up,
            Body::Tcp {
                flags,
                seq,
                ack,
                win,
                data,
            },
        );
    }

    /// Plans a segment from the client (`up`) or the server at the current sequence
    /// number.
    fn seg(&mut self, ts: u64, up: bool, flags: u8, data: Data) {
        let d = usize::from(!up);
        self.seg_raw(ts, up, flags, self.seq[d], data);
    }

    /// Plans `bytes` from the client (`up`) or the server, sent in slow-start flights;
    /// `head` (e.g. a TLS record) goes first, the rest is opaque. The receiver ACKs
    /// every second segment. Returns when the last ACK was seen.
    fn transfer(&mut self, up: bool, head: Vec<u8>, bytes: u64) {
        let d = usize::from(!up);
        // Sender's segments are seen at the tap at `t` (client) or `t + rtt` (server
        // answering what the client sent at `t`).
        let mut at = if up {
            self.t + 20_000
        } else {
            self.t + self.rtt
        };
        let ack_lag = if up { self.rtt } else { 40_000 };
        let mut head = Some(head).filter(|h| !h.is_empty());
        let total = bytes.max(head.as_ref().map_or(0, |h| h.len() as u64));
        let mut sent = 0u64;
        let mut cwnd = INIT_CWND;
        let mut last_ack = at;
        let mut n = 0u64;
        while sent < total {
            let flight_start = at;
            let mut k = 0;
            while k < cwnd && sent < total {
                let data = match head.take() {
                    Some(h) if h.len() as u64 <= MSS => h,
                    Some(mut h) => {
                        h.truncate(MSS as usize);
                        h
                    }
                    None => Vec::new(),
                };
                let len = if data.is_empty() {
                    (total - sent).min(MSS)
                } else {
                    data.len() as u64
                };
                let payload = if data.is_empty() {
                    self.pool_off = self.pool_off.wrapping_add(len as u32 * 7 + 13);
                    Data::Pool {
                        off: self.pool_off,
                        len: len as u16,
                    }
                } else {
                    Data::Bytes(data)
                };
                sent += len;
                let flags = if sent == total { ACK | PSH } else { ACK };
                self.seg(at, up, flags, payload);
                self.seq[d] = self.seq[d].wrapping_add(len as u32);
                n += 1;
                if n.is_multiple_of(2) || sent == total {
                    last_ack = at + ack_lag;
                    self.seg(last_ack, !up, ACK, Data::None);
                }
                at += self.ser.max(1_000);
                k += 1;
            }
            cwnd = (cwnd * 2).min(1_000);
            if sent < total {
                at = at.max(flight_start + self.rtt);
            }
        }
        self.t = last_ack;
    }

    /// A TLS 1.3 handshake for `sni`: ClientHello, the server's flight (ServerHello,
    /// ChangeCipherSpec, encrypted certificate), the client's Finished.
    pub fn tls_handshake(&mut self, rng: &mut Rng, sni: &str) {
        let mut hello = Vec::with_capacity(600);
        let session = tls::client_hello(rng, sni, &["h2", "http/1.1"], &mut hello);
        self.transfer(true, hello, 0);
        let mut flight = Vec::with_capacity(200);
        tls::server_hello(rng, &session, &mut flight);
        flight.extend_from_slice(&tls::CHANGE_CIPHER_SPEC);
        let cert = rng.range(2_500, 4_500);
        self.transfer(false, flight, cert);
        let mut fin = tls::CHANGE_CIPHER_SPEC.to_vec();
        tls::app_record(rng, 36, &mut fin);
        self.transfer(true, fin, 0);
    }

    /// A request of `req` bytes answered by `resp` bytes.
    pub fn exchange(&mut self, req: u64, resp: u64) {
        self.transfer(true, Vec::new(), req.max(1));
        self.transfer(false, Vec::new(), resp.max(1));
    }

    /// An upload of `bytes` from the client, acknowledged by a short server answer.
    pub fn upload(&mut self, bytes: u64) {
        self.transfer(true, Vec::new(), bytes.max(1));
        self.transfer(false, Vec::new(), 64);
    }

    /// Idle time between exchanges.
    pub fn think(&mut self, ns: u64) {
        self.t += ns;
    }

    /// FIN teardown initiated by the client (`client_first`) or the server, and returns
    /// the finished script.
    pub fn close(mut self, client_first: bool) -> Script {
        let t = self.t + 50_000;
        let first = client_first;
        let (d1, d2) = (usize::from(!first), usize::from(first));
        let lag1 = if first { self.rtt } else { 30_000 };
        self.seg(t, first, FIN | ACK, Data::None);
        self.seq[d1] = self.seq[d1].wrapping_add(1);
        let t2 = t + lag1;
        self.seg(t2, !first, FIN | ACK, Data::None);
        self.seq[d2] = self.seq[d2].wrapping_add(1);
        let lag2 = if first { 30_000 } else { self.rtt };
        self.seg(t2 + lag2, first, ACK, Data::None);
        self.script.finish()
    }
}

/// A complete HTTPS connection: handshake, TLS, `exchanges` (request, response, think
/// time before it) and a client-initiated FIN teardown.
#[allow(clippy::too_many_arguments)]
pub fn https(
    rng: &mut Rng,
    ends: Ends,
    tag: Tag,
    ttl: [u8; 2],
    t0: u64,
    rtt: u64,
    bw_bps: f64,
    sni: &str,
    exchanges: &[(u64, u64, u64)],
) -> Script {
    let mut p = TcpPlan::open(rng, ends, tag, ttl, t0, rtt, bw_bps);
    p.tls_handshake(rng, sni);
    for &(req, resp, think) in exchanges {
        p.think(think);
        p.exchange(req, resp);
    }
    let client_first = rng.chance(0.7);
    p.close(client_first)
}
