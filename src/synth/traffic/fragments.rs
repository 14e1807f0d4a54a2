//! Emitting one large transport datagram as IP fragments: IPv4 fragments (same
//! identification, MF flag, offsets in 8-byte units) or IPv6 fragment headers, mostly
//! in order and sometimes reversed or with two fragments swapped.

use super::path::{Dir, Path};
use crate::synth::frames::{Fragment, FrameBuf, IpHeader};
use crate::synth::rng::Rng;

/// Link MTU assumed for fragmentation.
pub const MTU: usize = 1500;

/// A datagram being sent as fragments.
#[derive(Clone, Debug)]
pub struct Fragmented {
    dir: Dir,
    ip: IpHeader,
    proto: u8,
    ident: u32,
    data: Vec<u8>,
    /// Fragment size for all but the last fragment.
    piece: usize,
    /// Emission order (fragment indices).
    order: Vec<u16>,
    next: usize,
}

impl Fragmented {
    /// True when a transport datagram of `len` bytes does not fit the MTU on `path`.
    pub fn needed(path: &Path, len: usize) -> bool {
        len + path.addrs.header_len() > MTU
    }

    /// Prepares the fragments of transport datagram `data` (protocol `proto`) sent in
    /// direction `dir`.
    pub fn new(rng: &mut Rng, path: &mut Path, dir: Dir, proto: u8, data: Vec<u8>) -> Fragmented {
        let ip = path.ip(dir, false);
        let piece = if path.is_v6() {
            (MTU - 40 - 8) / 8 * 8
        } else {
            (MTU - 20) / 8 * 8
        };
        let count = data.len().div_ceil(piece).max(1);
        let mut order: Vec<u16> = (0..count as u16).collect();
        match rng.f64() {
            x if x < 0.12 => order.reverse(),
            x if x < 0.2 && count >= 2 => {
                let i = rng.below(count as u64 - 1) as usize;
                order.swap(i, i + 1);
            }
            _ => {}
        }
        Fragmented {
            dir,
            ip,
            proto,
            ident: rng.next_u32(),
            data,
            piece,
            order,
            next: 0,
        }
    }

    /// Number of fragments.
    pub fn count(&self) -> usize {
        self.order.len()
    }

    /// True when every fragment has been emitted.
    pub fn done(&self) -> bool {
        self.next >= self.order.len()
    }

    /// Builds the next fragment in emission order; returns false when none was left.
    pub fn emit_next(&mut self, path: &mut Path, fb: &mut FrameBuf) -> bool {
        let Some(&index) = self.order.get(self.next) else {
            return false;
        };
        self.next += 1;
        let start = usize::from(index) * self.piece;
        let end = (start + self.piece).min(self.data.len());
        let frag = Fragment {
            offset: start as u32,
            more: end < self.data.len(),
            ident: self.ident,
            proto: self.proto,
        };
        let link = path.link(self.dir);
        fb.fragment(&link, &self.ip, &frag, &self.data[start.min(end)..end]);
        true
    }

    /// Gives the datagram buffer back for reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.data
    }
}
