//! NTP client/server exchanges over UDP/123: a single poll or an initial burst.

use super::path::{Dir, Path};
use super::timeline::Timeline;
use super::Estimate;
use crate::synth::apps::ntp;
use crate::synth::frames::{proto, write_udp_header, FrameBuf};
use crate::synth::rng::Rng;
use crate::synth::topology::World;

/// One NTP association's packets.
#[derive(Debug)]
pub struct NtpFlow {
    path: Path,
    rtt: u64,
    refid: [u8; 4],
    /// `Some(t)`: the next packet is the reply to a request sent at `t`.
    last_request: Option<u64>,
    tl: Timeline<Dir>,
}

impl NtpFlow {
    /// A client polling a server from `t0`.
    pub fn start(mut rng: Rng, world: &World, t0: u64, v6: bool) -> (NtpFlow, Estimate) {
        let host = world.host(world.pick_host(&mut rng));
        let (s6, s4, rtt) = world.ntp_server(&mut rng);
        let path = Path::new(&mut rng, &host, s4, Some(s6), v6, 56, None);
        let polls = if rng.chance(0.25) { 4 } else { 1 };
        let mut tl = Timeline::new();
        let mut t = t0;
        for _ in 0..polls {
            tl.push(t, Dir::Up);
            tl.push(t + rtt + rng.range(20_000, 200_000), Dir::Down);
            t += rng.range(1_900_000_000, 2_100_000_000);
        }
        let refid = *rng.pick(&[
            [0xc0u8, 0x24, 0x8f, 0x96],
            [0x11, 0xfd, 0x22, 0x7b],
            [0x47, 0x50, 0x53, 0x00],
        ]);
        let flow = NtpFlow {
            path,
            rtt,
            refid,
            last_request: None,
            tl,
        };
        (flow, 2 * polls)
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, fb: &mut FrameBuf) -> Option<u64> {
        let (_, dir) = self.tl.pop()?;
        let link = self.path.link(dir);
        let ip = self.path.ip(dir, dir == Dir::Up);
        match dir {
            Dir::Up => {
                self.last_request = Some(now);
                fb.packet(&link, &ip, proto::UDP, |b| {
                    write_udp_header(b, 123, 123);
                    ntp::request(b, now);
                });
            }
            Dir::Down => {
                let sent = self.last_request.unwrap_or(now);
                let rx = sent + self.rtt / 2;
                let refid = self.refid;
                fb.packet(&link, &ip, proto::UDP, |b| {
                    write_udp_header(b, 123, 123);
                    ntp::reply(b, sent, rx, rx + 15_000, refid);
                });
            }
        }
        self.tl.next_ts().map(|t| t.max(now))
    }
}
