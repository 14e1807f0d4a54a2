//! Property tests of the reassembly table against a small reference model: random
//! datagrams cut into 8-byte-aligned pieces, shuffled, with exact duplicates, overlaps
//! carrying different data and losses; plus the memory bound and no panics on garbage.

mod reassembly_common;

use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::{Policy, ReassemblyConfig, ReassemblyTable};
use proptest::prelude::*;
use reassembly_common::*;

/// The reference rule of each policy, written independently of the library: does a new
/// fragment `[no, ne)` take a byte owned by `[oo, oe)`?
fn reference_beats(p: Policy, no: u32, ne: u32, oo: u32, oe: u32) -> bool {
    match p {
        Policy::First | Policy::Rfc5722 => false,
        Policy::Last => true,
        Policy::Bsd => no < oo,
        Policy::Linux => no <= oo,
        Policy::BsdRight => no >= oo,
        Policy::Windows => no < oo && ne > oe,
        Policy::Solaris => no < oo && ne >= oe,
    }
}

/// Paints pieces `(offset, data)` in arrival order; returns the payload of `len` bytes and
/// whether two overlapping pieces ever differed on a byte below `len`.
fn reference(p: Policy, pieces: &[(u32, Vec<u8>)], len: usize) -> (Vec<u8>, bool) {
    let mut buf = vec![0u8; len];
    let mut own: Vec<Option<(u32, u32)>> = vec![None; len];
    let mut differ = false;
    let mut seen: Vec<Option<u8>> = vec![None; len];
    for (off, data) in pieces {
        let end = off + data.len() as u32;
        for (k, &b) in data.iter().enumerate() {
            let j = *off as usize + k;
            if j >= len {
                break;
            }
            if let Some(prev) = seen[j] {
                differ |= prev != b;
            }
            seen[j] = Some(b);
            let take = match own[j] {
                None => true,
                Some((oo, oe)) => reference_beats(p, *off, end, oo, oe),
            };
            if take {
                buf[j] = b;
                own[j] = Some((*off, end));
            }
        }
    }
    (buf, differ)
}

#[derive(Clone, Debug)]
struct Case {
    payload: Vec<u8>,
    /// (offset, data, more) in arrival order.
    pieces: Vec<(u32, Vec<u8>, bool)>,
    final_sent: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        9usize..=96,
        any::<u64>(),
        prop::collection::vec(any::<bool>(), 12),
        prop::collection::vec((0u32..12, 1u32..4, any::<u8>(), 0u8..4), 0..6),
        prop::collection::vec(any::<bool>(), 12),
        0usize..3,
        any::<u64>(),
    )
        .prop_map(|(n, seed, cuts, extras, lose, dups, order)| {
            let mut x = seed | 1;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let payload: Vec<u8> = (0..n).map(|_| (rnd() % 3) as u8 + b'a').collect();
            // Cut points at multiples of 8.
            let mut pieces = Vec::new();
            let mut start = 0usize;
            for (i, c) in cuts.iter().enumerate() {
                let at = (i + 1) * 8;
                if at >= n {
                    break;
                }
                if *c {
                    pieces.push((start, at));
                    start = at;
                }
            }
            if pieces.is_empty() {
                // The final piece never starts at 0: offset 0 with MF=0 is no fragment.
                pieces.push((0, 8));
                start = 8;
            }
            pieces.push((start, n));
            let mut sent: Vec<(u32, Vec<u8>, bool)> = Vec::new();
            let mut final_sent = false;
            for (i, &(s, e)) in pieces.iter().enumerate() {
                if lose[i % lose.len()] && pieces.len() > 1 && (rnd() % 3 == 0) {
                    continue;
                }
                let last = e == n;
                final_sent |= last;
                sent.push((s as u32, payload[s..e].to_vec(), !last));
            }
            // Overlaps with different data (MF=1, inside the datagram).
            for (blk, nblk, fill, mode) in extras {
                let s = (blk as usize * 8).min(n.saturating_sub(1) / 8 * 8);
                let e = (s + nblk as usize * 8).min(n);
                if e <= s {
                    continue;
                }
                let data: Vec<u8> = (s..e)
                    .map(|j| {
                        if mode == 0 {
                            payload[j]
                        } else {
                            fill % 4 + b'w'
                        }
                    })
                    .collect();
                sent.push((s as u32, data, true));
            }
            // Exact duplicates.
            for _ in 0..dups {
                if !sent.is_empty() {
                    let k = (rnd() % sent.len() as u64) as usize;
                    let d = sent[k].clone();
                    sent.push(d);
                }
            }
            // Arrival order.
            let mut y = order | 1;
            for i in (1..sent.len()).rev() {
                y ^= y << 13;
                y ^= y >> 7;
                y ^= y << 17;
                sent.swap(i, (y % (i as u64 + 1)) as usize);
            }
            Case {
                payload,
                pieces: sent,
                final_sent,
            }
        })
}

fn packets(c: &Case, v6: bool) -> Vec<Packet> {
    c.pieces
        .iter()
        .enumerate()
        .map(|(i, (off, d, more))| {
            if v6 {
                reassembly_common::v6(42, 17, *off, *more, d, i as u64, i % 2 == 0)
            } else {
                reassembly_common::v4(42, 17, *off, *more, d, i as u64)
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn matches_the_reference_model(c in case(), v6 in any::<bool>()) {
        let n = c.payload.len();
        // Coverage of what was sent, up to the datagram's end.
        let mut covered = vec![false; n];
        for (off, d, _) in &c.pieces {
            for k in 0..d.len() {
                covered[*off as usize + k] = true;
            }
        }
        let all_bytes = covered.iter().all(|&b| b);
        for policy in Policy::ALL {
            let mut t = ReassemblyTable::new(config(policy));
            let ps = packets(&c, v6);
            let mut out = Vec::new();
            let mut ev = Vec::new();
            for p in &ps {
                t.push(p, &mut out, &mut ev);
                prop_assert!(t.memory_used() <= t.config().memory_budget);
            }
            // Fragments that arrive after completion start a new datagram; compare the
            // first completion with the reference on the pieces up to it.
            let complete_expected = c.final_sent && all_bytes;
            if !complete_expected {
                prop_assert!(out.is_empty(), "{policy}: completed without all data");
                continue;
            }
            // Find the prefix of arrivals that completes the datagram.
            let mut cov = vec![false; n];
            let mut fin = false;
            let mut upto = 0;
            for (i, (off, d, more)) in c.pieces.iter().enumerate() {
                for k in 0..d.len() {
                    cov[*off as usize + k] = true;
                }
                fin |= !more;
                if fin && cov.iter().all(|&b| b) {
                    upto = i + 1;
                    break;
                }
            }
            let prefix: Vec<(u32, Vec<u8>)> =
                c.pieces[..upto].iter().map(|(o, d, _)| (*o, d.clone())).collect();
            let (want, differ) = reference(policy, &prefix, n);
            if policy == Policy::Rfc5722 && differ {
                prop_assert!(out.iter().all(|r| r.ts_ns >= upto as u64), "{policy}: discarded");
                continue;
            }
            prop_assert!(!out.is_empty(), "{policy}: complete");
            let r = &out[0];
            prop_assert_eq!(r.ts_ns, (upto - 1) as u64);
            let hdr = match (v6, r.bytes[6]) {
                (false, _) => 20,
                (true, 60) => 48,
                (true, _) => 40,
            };
            prop_assert_eq!(&r.bytes[hdr..], &want[..], "{} payload", policy);
            let faithful = prefix
                .iter()
                .all(|(o, d)| d[..] == c.payload[*o as usize..*o as usize + d.len()]);
            if faithful {
                prop_assert_eq!(&r.bytes[hdr..], &c.payload[..]);
            }
        }
    }

    #[test]
    fn memory_never_exceeds_the_budget(
        frags in prop::collection::vec((0u16..40, 0u32..64, 0usize..200, any::<bool>(), 0u64..5), 1..300),
        budget in 0usize..4000,
        max_fragments in 0usize..6,
        max_datagrams in 0usize..6,
    ) {
        let cfg = ReassemblyConfig {
            memory_budget: budget,
            max_fragments,
            max_datagrams,
            ..config(Policy::Linux)
        };
        let mut t = ReassemblyTable::new(cfg);
        let mut out = Vec::new();
        let mut ev = Vec::new();
        let mut ts = 0u64;
        for (id, blk, len, more, dt) in frags {
            ts += dt * 7_000_000_000;
            let data = vec![id as u8; len];
            let p = if id % 2 == 0 {
                v4(id, 17, blk * 8, more, &data, ts)
            } else {
                v6(id as u32, 17, blk * 8, more, &data, ts, id % 3 == 0)
            };
            t.push(&p, &mut out, &mut ev);
            prop_assert!(t.memory_used() <= budget);
            prop_assert!(t.len() <= max_datagrams.max(1));
        }
        t.drain(ts, &mut ev);
        prop_assert_eq!(t.memory_used(), 0);
        let evictions = t.counters().event("eviction");
        prop_assert!(evictions <= t.counters().fragments);
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120), v in 0u8..3) {
        let mut b = bytes;
        if let Some(x) = b.first_mut() {
            *x = match v { 0 => (*x & 0x0f) | 0x40, 1 => (*x & 0x0f) | 0x60, _ => *x };
        }
        let p = packet_of(b, 0);
        let mut t = ReassemblyTable::new(ReassemblyConfig::default());
        let mut out = Vec::new();
        let mut ev = Vec::new();
        t.push(&p, &mut out, &mut ev);
        t.drain(0, &mut ev);
        prop_assert_eq!(t.memory_used(), 0);
    }
}
