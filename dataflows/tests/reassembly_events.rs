//! Each reassembly event kind triggered by a minimal crafted case, plus the shape of the
//! reconstructed IPv4 and IPv6 packets, timeouts and limits.

mod reassembly_common;

use flowtide_dataflows::reassembly::datagram::{DATAGRAM_OVERHEAD, FRAGMENT_OVERHEAD};
use flowtide_dataflows::reassembly::parse::ipv4_checksum;
use flowtide_dataflows::reassembly::{
    EventKind, EvictReason, Policy, ReassemblyConfig, ReassemblyEvent, ReassemblyTable,
};
use reassembly_common::*;

const S: u64 = 1_000_000_000;

fn kinds(ev: &[ReassemblyEvent]) -> Vec<&'static str> {
    ev.iter().map(|e| e.kind.name()).collect()
}

#[test]
fn ipv4_header_is_rebuilt_with_a_valid_checksum() {
    let mut t = table(Policy::Bsd);
    let (out, ev) = run(
        &mut t,
        &[
            v4_flags(77, 17, 8, false, false, b"world!!!", 5),
            v4_flags(77, 17, 0, true, false, b"hello, w", 9),
        ],
    );
    assert!(ev.is_empty(), "{ev:?}");
    let r = &out[0];
    assert_eq!(r.ts_ns, 9, "time of the completing fragment");
    assert_eq!(r.first_ns, 5);
    assert_eq!(r.fragments, 2);
    let h = &r.bytes[..20];
    assert_eq!(u16::from_be_bytes([h[2], h[3]]), 36);
    assert_eq!(u16::from_be_bytes([h[6], h[7]]), 0, "MF and offset cleared");
    assert_eq!(ipv4_checksum(h), 0, "checksum verifies");
    assert_ne!(u16::from_be_bytes([h[10], h[11]]), 0);
    assert_eq!(&r.bytes[20..], b"hello, wworld!!!");
    assert_eq!(t.memory_used(), 0);
    assert_eq!(t.counters().reassembled, 1);
}

#[test]
fn df_is_kept_from_the_first_fragment_and_reported() {
    let mut t = table(Policy::Bsd);
    let (out, ev) = run(
        &mut t,
        &[
            v4_flags(1, 17, 0, true, true, b"12345678", 0),
            v4_flags(1, 17, 8, false, false, b"abcdefgh", 1),
        ],
    );
    assert_eq!(kinds(&ev), vec!["forbidden_fragment"]);
    let h = &out[0].bytes[..20];
    assert_eq!(u16::from_be_bytes([h[6], h[7]]), 0x4000);
    assert_eq!(ipv4_checksum(h), 0);
}

#[test]
fn ipv6_fragment_header_is_removed_after_destination_options() {
    let mut t = table(Policy::Rfc5722);
    let (out, ev) = run(
        &mut t,
        &[
            v6(0xdead_beef, 17, 8, false, b"22222222tail", 0, true),
            v6(0xdead_beef, 17, 0, true, b"11111111", 1, true),
        ],
    );
    assert!(ev.is_empty(), "{ev:?}");
    let b = &out[0].bytes;
    assert_eq!(out[0].key.id, 0xdead_beef);
    assert_eq!(
        out[0].key.protocol, 0,
        "IPv6 keys leave the next header out"
    );
    assert_eq!(b[6], 60, "fixed header still names the destination options");
    assert_eq!(u16::from_be_bytes([b[4], b[5]]), 8 + 20, "payload length");
    assert_eq!(
        &b[40..48],
        &[17, 0, 1, 4, 0, 0, 0, 0],
        "dest opts now name UDP"
    );
    assert_eq!(&b[48..], b"1111111122222222tail");
    assert_eq!(b.len(), 40 + 8 + 20);
}

#[test]
fn ipv6_atomic_fragment_passes_through() {
    let mut t = table(Policy::Rfc5722);
    let (out, ev) = run(&mut t, &[v6(5, 58, 0, false, b"ping", 3, false)]);
    assert_eq!(kinds(&ev), vec!["atomic_fragment"]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes[6], 58);
    assert_eq!(&out[0].bytes[40..], b"ping");
    assert_eq!(u16::from_be_bytes([out[0].bytes[4], out[0].bytes[5]]), 4);
    assert!(t.is_empty());
}

#[test]
fn malformed_fragments_are_dropped_without_panicking() {
    let mut t = table(Policy::Bsd);
    let mut truncated = v4(1, 17, 0, true, b"12345678", 0);
    let mut b = truncated.bytes.take().expect("bytes").into_vec();
    b.truncate(24);
    truncated.bytes = Some(b.into_boxed_slice());
    let mut none = v4(1, 17, 0, true, b"12345678", 0);
    none.bytes = None;
    let mut v6_no_frag = v6(1, 17, 8, true, b"12345678", 0, false);
    if let Some(b) = v6_no_frag.bytes.as_mut() {
        b[6] = 17; // no fragment header any more
    }
    let (out, ev) = run(&mut t, &[truncated, none, v6_no_frag]);
    assert!(out.is_empty());
    assert_eq!(kinds(&ev), vec!["malformed"; 3]);
    assert_eq!(t.counters().dropped_fragments, 3);
    assert!(t.is_empty());
}

#[test]
fn negative_length_is_a_teardrop() {
    let mut p = v4(1, 17, 8, true, b"12345678", 0);
    if let Some(b) = p.bytes.as_mut() {
        b[2] = 0;
        b[3] = 12; // total length below the 20-byte header
    }
    let mut t = table(Policy::Bsd);
    let (_, ev) = run(&mut t, &[p]);
    assert_eq!(kinds(&ev), vec!["teardrop", "malformed"]);
}

#[test]
fn teardrop_shrink_inside_an_earlier_fragment() {
    let mut t = table(Policy::Bsd);
    let (_, ev) = run(
        &mut t,
        &[
            v4(1, 17, 0, true, &[b'a'; 32], 0),
            v4(1, 17, 24, true, &[b'a'; 4], 1),
        ],
    );
    assert!(ev.iter().any(|e| e.kind
        == EventKind::Teardrop {
            range: (24, 28),
            earlier: (0, 32)
        }));
    assert!(kinds(&ev).contains(&"overlap_same"));
    assert!(kinds(&ev).contains(&"misaligned"));
}

#[test]
fn overlaps_same_duplicate_and_different() {
    let mut t = table(Policy::First);
    let (_, ev) = run(
        &mut t,
        &[
            v4(1, 17, 0, true, b"AAAAAAAABBBBBBBB", 0),
            v4(1, 17, 0, true, b"AAAAAAAABBBBBBBB", 1),
            v4(1, 17, 8, true, b"BBBBBBBB", 2),
            v4(1, 17, 8, true, b"BBBxBBBBCCCCCCCC", 3),
        ],
    );
    let k: Vec<&EventKind> = ev.iter().map(|e| &e.kind).collect();
    assert_eq!(
        k,
        vec![
            &EventKind::OverlapSame {
                range: (0, 16),
                duplicate: true
            },
            &EventKind::OverlapSame {
                range: (8, 16),
                duplicate: false
            },
            &EventKind::OverlapDifferent {
                range: (8, 16),
                differing: vec![(11, 12)]
            },
        ]
    );
    assert_eq!(ev[0].ts_ns, 1);
    assert_eq!(ev[0].key.id, 1);
    assert_eq!(t.counters().event("overlap_same"), 2);
    assert_eq!(t.counters().event("overlap_different"), 1);
}

#[test]
fn rfc5722_ignores_duplicates_and_discards_on_different_data() {
    let mut t = table(Policy::Rfc5722);
    let (out, ev) = run(
        &mut t,
        &[
            v4(1, 17, 0, true, b"AAAAAAAA", 0),
            v4(1, 17, 0, true, b"AAAAAAAA", 1),
            v4(1, 17, 8, false, b"BBBBBBBB", 2),
        ],
    );
    assert_eq!(out.len(), 1, "exact duplicates are not an overlap");
    assert_eq!(kinds(&ev), vec!["overlap_same"]);

    let (out, ev) = run(
        &mut t,
        &[
            v4(2, 17, 0, true, b"AAAAAAAA", 3),
            v4(2, 17, 0, true, b"AAAAxAAA", 4),
            v4(2, 17, 8, false, b"BBBBBBBB", 5),
        ],
    );
    assert!(out.is_empty());
    assert_eq!(
        kinds(&ev),
        vec!["overlap_different", "discarded", "ambiguity"]
    );
    match &ev[2].kind {
        EventKind::Ambiguity {
            groups,
            discarded_by,
            ranges,
        } => {
            assert_eq!(discarded_by, &vec![Policy::Rfc5722]);
            assert_eq!(ranges, &vec![(4, 5)]);
            let first_group = groups
                .iter()
                .find(|g| g.contains(&Policy::First))
                .expect("first");
            assert!(first_group.contains(&Policy::Bsd) && first_group.contains(&Policy::Windows));
            let last_group = groups
                .iter()
                .find(|g| g.contains(&Policy::Last))
                .expect("last");
            assert!(last_group.contains(&Policy::Linux) && last_group.contains(&Policy::BsdRight));
            assert_eq!(groups.len(), 2);
        }
        k => panic!("{k:?}"),
    }
    assert!(t.is_empty());
}

#[test]
fn ambiguity_respects_the_configured_set() {
    let cfg = ReassemblyConfig {
        ambiguity: vec![Policy::Bsd, Policy::Windows],
        ..config(Policy::Bsd)
    };
    let mut t = ReassemblyTable::new(cfg);
    let ps = [
        v4(1, 17, 0, true, b"AAAAAAAA", 0),
        v4(1, 17, 0, true, b"AAAAxAAA", 1),
        v4(1, 17, 8, false, b"BBBBBBBB", 2),
    ];
    let (out, ev) = run(&mut t, &ps);
    assert_eq!(out.len(), 1);
    assert_eq!(
        kinds(&ev),
        vec!["overlap_different"],
        "bsd and windows agree"
    );
    let cfg = ReassemblyConfig {
        ambiguity: vec![Policy::Bsd, Policy::Linux],
        ..config(Policy::Bsd)
    };
    let mut t = ReassemblyTable::new(cfg);
    let (_, ev) = run(&mut t, &ps);
    assert_eq!(kinds(&ev), vec!["overlap_different", "ambiguity"]);
}

#[test]
fn tiny_first_fragment_per_protocol() {
    let mut t = table(Policy::Bsd);
    let (_, ev) = run(
        &mut t,
        &[
            v4(1, 6, 0, true, &[0; 16], 0), // TCP: 16 < 20
            v4(2, 6, 0, true, &[0; 24], 0), // TCP: fine
            v4(3, 17, 0, true, &[0; 8], 0), // UDP: fine
            v4(4, 99, 0, true, &[0; 8], 0), // other: fine
            v6(5, 58, 0, true, &[0; 8], 0, false),
        ],
    );
    assert_eq!(
        ev.iter().map(|e| &e.kind).collect::<Vec<_>>(),
        vec![&EventKind::TinyFirstFragment {
            len: 16,
            required: 20
        }]
    );
}

#[test]
fn data_past_final_and_conflicting_final() {
    let mut t = table(Policy::Bsd);
    let (out, ev) = run(
        &mut t,
        &[
            v4(1, 17, 16, true, &[b'c'; 8], 0),
            v4(1, 17, 8, false, &[b'b'; 8], 1),
            v4(1, 17, 8, false, &[b'x'; 16], 2),
            v4(1, 17, 8, true, b"bbbbbbbbcccccccc", 3),
            v4(1, 17, 0, true, &[b'a'; 8], 4),
        ],
    );
    assert_eq!(
        ev.iter().map(|e| &e.kind).collect::<Vec<_>>(),
        vec![
            &EventKind::DataPastFinal {
                final_end: 16,
                end: 24
            },
            &EventKind::ConflictingFinal {
                final_end: 16,
                end: 24
            },
            &EventKind::OverlapSame {
                range: (8, 24),
                duplicate: false
            },
            &EventKind::DataPastFinal {
                final_end: 16,
                end: 24
            },
        ]
    );
    assert_eq!(&out[0].bytes[20..], b"aaaaaaaabbbbbbbb");
}

#[test]
fn too_large_ipv6() {
    let mut t = table(Policy::Bsd);
    let (_, ev) = run(&mut t, &[v6(1, 17, 65528, true, &[0; 16], 0, true)]);
    assert_eq!(
        ev.iter().map(|e| &e.kind).collect::<Vec<_>>(),
        vec![&EventKind::TooLarge {
            size: 8 + 65528 + 16
        }]
    );
}

#[test]
fn timeout_in_event_time_from_the_first_fragment() {
    let cfg = ReassemblyConfig {
        timeout_v4_ns: 10 * S,
        timeout_v6_ns: 30 * S,
        ..config(Policy::Bsd)
    };
    let mut t = ReassemblyTable::new(cfg);
    let mut ev = Vec::new();
    let mut out = Vec::new();
    t.push(&v4(1, 17, 0, true, &[0; 8], S), &mut out, &mut ev);
    t.push(&v4(1, 17, 16, true, &[0; 8], 9 * S), &mut out, &mut ev);
    t.push(
        &v6(1, 17, 0, true, &[0; 8], 2 * S, false),
        &mut out,
        &mut ev,
    );
    t.expire(11 * S - 1, &mut ev);
    assert!(
        ev.is_empty(),
        "not yet: the deadline counts from the first fragment"
    );
    t.expire(11 * S, &mut ev);
    assert_eq!(
        ev.iter().map(|e| (e.ts_ns, &e.kind)).collect::<Vec<_>>(),
        vec![(
            11 * S,
            &EventKind::Timeout {
                first_ns: S,
                fragments: 2
            }
        )]
    );
    assert_eq!(t.len(), 1, "the IPv6 datagram has a longer timeout");
    // A fragment at or past a deadline never joins the expired datagram.
    ev.clear();
    t.push(
        &v6(1, 17, 8, false, &[0; 8], 32 * S, false),
        &mut out,
        &mut ev,
    );
    assert!(out.is_empty());
    assert_eq!(kinds(&ev), vec!["timeout"]);
    assert_eq!(ev[0].ts_ns, 32 * S);
    assert_eq!(t.len(), 1);
}

#[test]
fn drain_distinguishes_timeout_and_incomplete() {
    let mut t = table(Policy::Bsd);
    let mut ev = Vec::new();
    let mut out = Vec::new();
    t.push(&v4(1, 17, 0, true, &[0; 8], 0), &mut out, &mut ev);
    t.push(&v4(2, 17, 0, true, &[0; 8], 50 * S), &mut out, &mut ev);
    t.drain(70 * S, &mut ev);
    assert_eq!(kinds(&ev), vec!["timeout", "incomplete_at_end"]);
    assert_eq!((ev[0].ts_ns, ev[1].ts_ns), (60 * S, 70 * S));
    assert!(t.is_empty());
    assert_eq!(t.memory_used(), 0);
}

fn evictions(ev: &[ReassemblyEvent]) -> Vec<(EvictReason, u32)> {
    ev.iter()
        .filter_map(|e| match e.kind {
            EventKind::Eviction { reason, .. } => Some((reason, e.key.id)),
            _ => None,
        })
        .collect()
}

#[test]
fn memory_budget_evicts_the_oldest_and_rejects_oversized_fragments() {
    let per = DATAGRAM_OVERHEAD + FRAGMENT_OVERHEAD + 20 + 64;
    let cfg = ReassemblyConfig {
        memory_budget: 2 * per + 10,
        ..config(Policy::Bsd)
    };
    let mut t = ReassemblyTable::new(cfg);
    let (_, ev) = run(
        &mut t,
        &[
            v4(1, 17, 0, true, &[0; 64], 0),
            v4(2, 17, 0, true, &[0; 64], 0),
            v4(3, 17, 0, true, &[0; 64], 1),
        ],
    );
    assert_eq!(evictions(&ev), vec![(EvictReason::Memory, 1)]);
    assert_eq!(t.memory_used(), 2 * per);
    let (_, ev) = run(&mut t, &[v4(4, 17, 0, true, &vec![0; 2 * per], 2)]);
    assert_eq!(kinds(&ev), vec!["over_budget"]);
    assert_eq!(t.len(), 2);
}

#[test]
fn datagram_and_fragment_limits() {
    let cfg = ReassemblyConfig {
        max_datagrams: 2,
        max_fragments: 2,
        ..config(Policy::Bsd)
    };
    let mut t = ReassemblyTable::new(cfg);
    let (_, ev) = run(
        &mut t,
        &[
            v4(9, 17, 0, true, &[0; 8], 5),
            v4(8, 17, 0, true, &[0; 8], 5),
            v4(7, 17, 0, true, &[0; 8], 6),
        ],
    );
    // Same first time: ties broken by key, so id 8 goes before id 9.
    assert_eq!(evictions(&ev), vec![(EvictReason::Datagrams, 8)]);
    let (_, ev) = run(
        &mut t,
        &[
            v4(7, 17, 8, true, &[0; 8], 7),
            v4(7, 17, 16, true, &[0; 8], 8),
        ],
    );
    assert_eq!(evictions(&ev), vec![(EvictReason::Fragments, 7)]);
    assert_eq!(t.len(), 1);
    assert_eq!(t.counters().event("eviction"), 2);
}

#[test]
fn ipv6_fragments_with_different_next_headers_form_one_datagram() {
    // RFC 8200 4.5: the next header of non-first fragments may differ; the offset-0
    // fragment's value is the one that counts.
    let mut t = table(Policy::Rfc5722);
    let (out, _) = run(
        &mut t,
        &[
            v6(0x77, 58, 8, false, b"22222222", 0, false),
            v6(0x77, 17, 0, true, b"11111111", 1, false),
        ],
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].bytes[6], 17, "the offset-0 fragment names UDP");
    assert_eq!(&out[0].bytes[40..], b"1111111122222222");
}
