//! The reassembly table must never panic and never hold more than its memory budget.
//!
//! The input is read as a sequence of fragment descriptions (see `next_fragment`); each
//! becomes an IPv4 or IPv6 fragment among a few datagram keys, pushed with a
//! non-decreasing time, with an occasional `expire`. After every step
//! `memory_used() <= budget`; at the end `drain` must leave the table empty.
#![no_main]

use flowtide_dataflows::packet::{flags, Addr, Packet};
use flowtide_dataflows::reassembly::{Policy, PolicyMap, ReassemblyConfig, ReassemblyTable};
use libfuzzer_sys::fuzz_target;

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
}

/// One fragment: its packet and whether to call `expire` before it.
fn next_fragment(inp: &mut Input<'_>, ts: &mut u64) -> Option<(Packet, bool)> {
    let ctl = inp.byte()?;
    let key = inp.byte()?;
    let off_units = inp.u16()? & 0x1fff;
    let len_sel = inp.byte()?;
    let fill = inp.byte()?;
    *ts += u64::from(ctl >> 5) * 250_000_000; // 0..1.75 s steps
    let v6 = ctl & 1 != 0;
    let more = ctl & 2 != 0;
    let expire = ctl & 4 != 0;
    let raw_garbage = ctl & 8 != 0 && ctl & 16 != 0;
    // Data length: mostly small multiples of 8, sometimes odd, sometimes large.
    let len = match len_sel >> 6 {
        0 => usize::from(len_sel & 0x3f),
        1 => usize::from(len_sel & 0x3f) * 8,
        2 => usize::from(len_sel & 0x3f) * 64,
        _ => usize::from(len_sel & 0x3f) * 1000 + 1,
    };
    let mut data = vec![fill; len];
    // A few differing bytes, so that overlaps can disagree.
    if let Some(b) = data.get_mut(usize::from(fill) % len.max(1)) {
        *b = key;
    }
    let id = u32::from(key & 0x07);
    let src = [10, 0, 0, 1 + ((key >> 3) & 1)];
    let dst = [10, 0, 0, 9];
    let mut bytes: Vec<u8>;
    if raw_garbage {
        // Arbitrary bytes of the input as the datagram.
        let n = usize::from(len_sel).min(inp.0.len());
        bytes = inp.0[..n].to_vec();
        inp.0 = &inp.0[n..];
    } else if v6 {
        let plen = (8 + len).min(0xffff) as u16;
        bytes = vec![0x60, 0, 0, 0];
        bytes.extend_from_slice(&plen.to_be_bytes());
        bytes.extend_from_slice(&[44, 64]);
        bytes.extend_from_slice(&Addr::from_v4(src).0);
        bytes.extend_from_slice(&Addr::from_v4(dst).0);
        let fo = (off_units << 3) | u16::from(more);
        bytes.extend_from_slice(&[17, 0]);
        bytes.extend_from_slice(&fo.to_be_bytes());
        bytes.extend_from_slice(&id.to_be_bytes());
        bytes.extend_from_slice(&data[..usize::from(plen) - 8]);
    } else {
        let total = (20 + len).min(0xffff) as u16;
        let dfb = if ctl & 16 != 0 { 0x4000 } else { 0 };
        let fo = off_units | if more { 0x2000 } else { 0 } | dfb;
        bytes = vec![0x45, 0];
        bytes.extend_from_slice(&total.to_be_bytes());
        bytes.extend_from_slice(&(id as u16).to_be_bytes());
        bytes.extend_from_slice(&fo.to_be_bytes());
        bytes.extend_from_slice(&[64, 17, 0, 0]);
        bytes.extend_from_slice(&src);
        bytes.extend_from_slice(&dst);
        bytes.extend_from_slice(&data[..usize::from(total) - 20]);
    }
    let p = Packet {
        ts_ns: *ts,
        ip_version: if v6 { 6 } else { 4 },
        protocol: 17,
        src: Addr::from_v4(src),
        dst: Addr::from_v4(dst),
        ip_id: id,
        frag_offset: off_units.wrapping_mul(8),
        flags: if more { flags::MORE_FRAGMENTS } else { 0 }
            | if v6 { flags::V6_FRAGMENT_HEADER } else { 0 },
        frame_len: bytes.len() as u32 + 14,
        bytes: Some(bytes.into_boxed_slice()),
        ..Packet::default()
    };
    Some((p, expire))
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let Some(head) = inp.u16() else { return };
    // Budget 0..16 KiB (so that one large fragment can exceed it), few datagrams.
    let budget = usize::from(head & 0x3fff);
    let policy = Policy::ALL[usize::from(head >> 14) % Policy::ALL.len()];
    let Some(limits) = inp.byte() else { return };
    let config = ReassemblyConfig {
        timeout_v4_ns: 1_000_000_000,
        timeout_v6_ns: 2_000_000_000,
        memory_budget: budget,
        max_fragments: usize::from(limits & 0x0f),
        max_datagrams: usize::from(limits >> 4),
        policies: PolicyMap::uniform(policy),
        ..ReassemblyConfig::default()
    };
    let mut table = ReassemblyTable::new(config);
    let (mut out, mut events) = (Vec::new(), Vec::new());
    let mut ts = 1_000_000_000u64;
    while let Some((p, expire)) = next_fragment(&mut inp, &mut ts) {
        if expire {
            table.expire(ts, &mut events);
            assert!(table.memory_used() <= budget);
        }
        table.push(&p, &mut out, &mut events);
        assert!(
            table.memory_used() <= budget,
            "memory {} over budget {budget}",
            table.memory_used()
        );
        out.clear();
        events.clear();
    }
    table.drain(ts, &mut events);
    assert_eq!(table.memory_used(), 0);
    assert!(table.is_empty());
});
