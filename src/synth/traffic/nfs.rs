//! NFSv3 over UDP: sequential READ calls answered by 4–16 KB replies, which do not fit
//! the MTU and travel as IP fragments (IPv4, or IPv6 fragment headers).

use super::fragments::Fragmented;
use super::path::{Dir, Path};
use super::timeline::Timeline;
use super::{Estimate, Sizing};
use crate::synth::apps::rpc;
use crate::synth::frames::{proto, write_transport, write_udp_header, FrameBuf};
use crate::synth::rng::Rng;
use crate::synth::topology::World;

const NFS_PORT: u16 = 2049;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    Call,
    Fragment,
}

/// A client reading a file from an NFS server.
#[derive(Debug)]
pub struct NfsFlow {
    rng: Rng,
    path: Path,
    sport: u16,
    xid: u32,
    uid: u32,
    machine: String,
    fh: [u8; 32],
    offset: u64,
    count: u32,
    reads_left: u64,
    key: u64,
    tl: Timeline<Event>,
    fragments: Option<Fragmented>,
    spare: Vec<u8>,
}

/// A privileged client port as Linux NFS clients use (665–1023), avoiding ports that
/// analyzers associate with other protocols.
fn reserved_port(rng: &mut Rng) -> u16 {
    const TAKEN: [u16; 9] = [698, 699, 701, 750, 853, 854, 910, 921, 925];
    loop {
        let port = rng.range(665, 1023) as u16;
        if !TAKEN.contains(&port) {
            return port;
        }
    }
}

impl NfsFlow {
    /// A sequential read whose length depends on `sizing`, starting at `t0`.
    pub fn start(
        mut rng: Rng,
        world: &World,
        t0: u64,
        v6: bool,
        sizing: Sizing,
    ) -> (NfsFlow, Estimate) {
        let host_index = world.pick_host(&mut rng);
        let host = world.host(host_index);
        let (s6, s4) = world.nfs_server(&mut rng);
        let mut path = Path::new(&mut rng, &host, s4, Some(s6), v6, 64, None);
        path.set_server_mac([0x00, 0x25, 0x90, 0x4e, 0x11, s4[3]]);
        let count = *rng.pick(&[8192u32, 8192, 8192, 4096, 16_384]);
        let bytes = sizing.apply(rng.geometric(6.0) as f64 * f64::from(count));
        let reads = (bytes / f64::from(count)).ceil().clamp(1.0, 5000.0) as u64;
        let mut fh = [0u8; 32];
        rng.fill(&mut fh);
        let per_read = 1 + (count as usize + 200).div_ceil(1448) as u64;
        let mut tl = Timeline::new();
        tl.push(t0, Event::Call);
        let flow = NfsFlow {
            sport: reserved_port(&mut rng),
            xid: rng.next_u32(),
            uid: 1000 + rng.below(50) as u32,
            machine: format!("ws{host_index:04}"),
            fh,
            offset: rng.below(64) * 1_048_576,
            count,
            reads_left: reads,
            key: rng.next_u64(),
            tl,
            fragments: None,
            spare: Vec::new(),
            rng,
            path,
        };
        (flow, reads * per_read)
    }

    /// Time of the next packet.
    pub fn next_ts(&self) -> Option<u64> {
        self.tl.next_ts()
    }

    /// Emits the packet due at `now`; returns the time of the next one.
    pub fn step(&mut self, now: u64, world: &World, fb: &mut FrameBuf) -> Option<u64> {
        let (_, event) = self.tl.pop()?;
        match event {
            Event::Call => {
                let link = self.path.link(Dir::Up);
                let ip = self.path.ip(Dir::Up, !self.path.is_v6());
                let (xid, uid, offset, count, sport) =
                    (self.xid, self.uid, self.offset, self.count, self.sport);
                let (machine, fh) = (&self.machine, &self.fh);
                fb.packet(&link, &ip, proto::UDP, |b| {
                    write_udp_header(b, sport, NFS_PORT);
                    rpc::read_call(b, xid, machine, uid, fh, offset, count);
                });
                self.build_reply(world);
                let mut t = now + self.rng.lognormal_in(400e3, 0.8, 80e3, 30e6) as u64;
                let n = self.fragments.as_ref().map_or(0, |f| f.count());
                for _ in 0..n {
                    self.tl.push(t, Event::Fragment);
                    t += self.rng.range(12_000, 14_000);
                }
            }
            Event::Fragment => {
                if let Some(f) = self.fragments.as_mut() {
                    f.emit_next(&mut self.path, fb);
                    if f.done() {
                        self.reads_left = self.reads_left.saturating_sub(1);
                        self.xid = self.xid.wrapping_add(1);
                        self.offset += u64::from(self.count);
                        if self.reads_left > 0 {
                            let gap = self.rng.lognormal_in(150e3, 1.0, 20e3, 500e6) as u64;
                            self.tl.push(now + gap, Event::Call);
                        }
                    }
                }
            }
        }
        self.tl.next_ts().map(|t| t.max(now))
    }

    /// Prepares the fragments of the reply to the current call.
    fn build_reply(&mut self, world: &World) {
        let mut datagram = match self.fragments.take() {
            Some(f) => f.into_buffer(),
            None => std::mem::take(&mut self.spare),
        };
        datagram.clear();
        let (xid, count, eof) = (self.xid, self.count, self.reads_left == 1);
        let (key, offset) = (self.key, self.offset);
        write_transport(
            &mut datagram,
            &self.path.addrs.reversed(),
            proto::UDP,
            |b| {
                write_udp_header(b, NFS_PORT, self.sport);
                rpc::read_reply_head(b, xid, count, eof);
                world
                    .pool
                    .extend(key, offset, rpc::read_reply_data_len(count), b);
            },
        );
        self.fragments = Some(Fragmented::new(
            &mut self.rng,
            &mut self.path,
            Dir::Down,
            proto::UDP,
            datagram,
        ));
    }
}
