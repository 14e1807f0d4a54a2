//! The `frag-flood` scenario: a flood of IP fragments of datagrams that never complete,
//! for benchmarking the reassembler under memory pressure.
//!
//! Every datagram (80 % IPv4, 20 % IPv6, UDP, from one of 65,536 spoofed sources to one
//! target) gets one to four non-final fragments (offsets 0, n, 2n, ...; more-fragments
//! always set) of 64 to 256 bytes, a multiple of 8: no datagram ever completes, so each
//! one lives until it times out or is evicted. Fragments of up to 64 datagrams are
//! interleaved. Timestamps are evenly spaced at `rate_pps`. The output depends only on
//! the options.

use std::io::{self, BufWriter, Write};

use super::frames::{Addrs, FrameBuf, IpHeader, Link, Vlan};
use super::rng::Rng;
use super::{SynthOptions, SynthReport};
use crate::capture::linktype;
use crate::capture::pcap_writer::PcapWriter;
use flowtide_dataflows::packet::proto;

/// Datagrams whose fragments are interleaved.
const ACTIVE: usize = 64;

/// A datagram being emitted.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    addrs: Addrs,
    id: u32,
    size: u32,
    next: u32,
    count: u32,
}

fn new_datagram(rng: &mut Rng, serial: &mut u32) -> Datagram {
    *serial = serial.wrapping_add(1);
    let host = rng.next_u16();
    let [hi, lo] = host.to_be_bytes();
    let addrs = if rng.chance(0.2) {
        let src = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0x66, 0, 0, 0, 0, 0, 0, 0, 0, hi, lo,
        ];
        let dst = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
        ];
        Addrs::V6 { src, dst }
    } else {
        Addrs::V4 {
            src: [10, 66, hi, lo],
            dst: [192, 0, 2, 10],
        }
    };
    Datagram {
        addrs,
        id: *serial,
        size: 8 * rng.range(8, 32) as u32,
        next: 0,
        count: rng.range(1, 4) as u32,
    }
}

/// Writes `opts.packets` flood fragments to `out` as a classic pcap stream
/// (LINKTYPE_ETHERNET, nanosecond timestamps) and reports what was written.
pub fn generate<W: Write>(opts: &SynthOptions, out: W) -> io::Result<SynthReport> {
    let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 20, out), linktype::ETHERNET)?;
    let mut rng = Rng::stream(opts.seed, 0xf100d);
    let mut serial = 0u32;
    let mut active: Vec<Datagram> = (0..ACTIVE)
        .map(|_| new_datagram(&mut rng, &mut serial))
        .collect();
    let link = Link {
        src: [2, 0, 0, 0, 0x66, 1],
        dst: [2, 0, 0, 0, 0, 2],
        vlan: Vlan::Untagged,
        encap: None,
    };
    let gap_ns = (1e9 / opts.rate_pps).max(1.0);
    let mut data = vec![0u8; 256];
    let mut fb = FrameBuf::new();
    let mut report = SynthReport::default();
    while report.packets < opts.packets {
        let slot = rng.below(ACTIVE as u64) as usize;
        let d = &mut active[slot];
        let ip = IpHeader {
            addrs: d.addrs,
            ttl: 64,
            tos: 0,
            id: d.id & 0xffff,
            df: false,
        };
        let frag = super::frames::Fragment {
            offset: d.next * d.size,
            more: true,
            ident: d.id,
            proto: proto::UDP,
        };
        let len = d.size as usize;
        rng.fill(&mut data[..len]);
        fb.fragment(&link, &ip, &frag, &data[..len]);
        d.next += 1;
        if d.next == d.count {
            *d = new_datagram(&mut rng, &mut serial);
        }
        let ts_ns = opts.start_ns + (report.packets as f64 * gap_ns) as u64;
        writer.write(ts_ns, fb.bytes())?;
        report.count(ts_ns, fb.info(), fb.bytes().len());
        report.flows += u64::from(frag.offset == 0);
    }
    writer.finish()?.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_is_reproducible_and_all_fragments() {
        let opts = SynthOptions {
            packets: 500,
            seed: 3,
            ..SynthOptions::default()
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ra = generate(&opts, &mut a).expect("in memory");
        generate(&opts, &mut b).expect("in memory");
        assert_eq!(a, b);
        assert_eq!((ra.packets, ra.fragments, ra.udp), (500, 500, 500));
        assert!(ra.ipv6 > 50 && ra.ipv6 < 200, "{}", ra.ipv6);
        assert!(ra.flows > 100 && ra.flows < 500, "{}", ra.flows);
    }
}
