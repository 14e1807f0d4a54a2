//! Ground truth from other reassemblers: Suricata's Sturges/Novak unit tests and Mark
//! Baggett's reassembler (read from the shared corpus; skipped when it is absent).
//!
//! Suricata works on byte ranges, Baggett on whole fragments; the one rule set of
//! `flowtide_dataflows::reassembly` (see its module docs) reproduces both, byte for byte.
//! Baggett's output differs in one place that is not about overlaps: scapy rebuilds the
//! UDP header with a zero checksum, so the test compares with the UDP checksum zeroed
//! (and checks that ours kept the original one).

mod reassembly_common;

use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::{EventKind, Policy};
use reassembly_common::*;

/// (letter, offset, length, more) rows and (policy, 24 letters) rows of the Novak table.
/// Novak input rows and per-policy expectations.
type NovakTable = (Vec<(u8, u32, u32, bool)>, Vec<(Policy, String)>);

fn novak_table() -> Option<NovakTable> {
    let text = std::fs::read_to_string(corpus()?.join("_derived/suricata_novak_expected.md"))
        .expect("read novak file");
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() == 7 && cells[2].len() == 1 && cells[3].parse::<u32>().is_ok() {
            input.push((
                cells[2].as_bytes()[0],
                cells[3].parse().expect("offset"),
                cells[4].parse().expect("length"),
                cells[5].starts_with('1'),
            ));
        } else if cells.len() == 4 && cells[2].starts_with('`') {
            let name = cells[1].split_whitespace().next().unwrap_or("");
            let policy: Policy = name.parse().expect("policy name");
            expected.push((policy, cells[2].trim_matches('`').to_string()));
        }
    }
    assert_eq!(input.len(), 17, "17 Novak fragments");
    assert_eq!(expected.len(), 6, "6 Suricata policies");
    Some((input, expected))
}

fn novak_packets(input: &[(u8, u32, u32, bool)], v6: bool) -> Vec<Packet> {
    input
        .iter()
        .enumerate()
        .map(|(i, &(c, off, len, more))| {
            let data = vec![c; len as usize];
            if v6 {
                reassembly_common::v6(1, 58, off, more, &data, i as u64, false)
            } else {
                reassembly_common::v4(1, 1, off, more, &data, i as u64)
            }
        })
        .collect()
}

fn novak_case(policy: Policy, want: &str, input: &[(u8, u32, u32, bool)], v6: bool) {
    let ps = novak_packets(input, v6);
    let mut t = table(policy);
    let mut out = Vec::new();
    let mut ev = Vec::new();
    for (i, p) in ps.iter().enumerate() {
        let before = ev.len();
        t.push(p, &mut out, &mut ev);
        let overlap = ev[before..].iter().any(|e| {
            matches!(
                e.kind,
                EventKind::OverlapSame { .. } | EventKind::OverlapDifferent { .. }
            )
        });
        if i < 9 {
            assert!(!overlap, "{policy}: no overlap on fragment {}", i + 1);
        } else if i < 16 {
            assert!(overlap, "{policy}: overlap on fragment {}", i + 1);
        }
        if i < 16 {
            assert!(out.is_empty(), "{policy}: nothing before the last fragment");
        }
    }
    assert_eq!(out.len(), 1, "{policy} v6={v6}: one datagram");
    let r = &out[0];
    let hdr = if v6 { 40 } else { 20 };
    let payload = &r.bytes[hdr..];
    let blocks: String = payload.chunks(8).map(|c| c[0] as char).collect();
    assert_eq!(blocks, want, "{policy} v6={v6}");
    for (k, c) in payload.chunks(8).enumerate() {
        assert!(c.iter().all(|&b| b == c[0]), "block {k} uniform");
    }
    if v6 {
        assert_eq!(u16::from_be_bytes([r.bytes[4], r.bytes[5]]), 192);
        assert_eq!(r.bytes[6], 58);
    } else {
        assert_eq!(u16::from_be_bytes([r.bytes[2], r.bytes[3]]), 20 + 192);
    }
    assert_eq!(r.fragments, 17);
    assert_eq!(r.ts_ns, 16);
    assert!(
        ev.iter()
            .any(|e| matches!(e.kind, EventKind::Ambiguity { .. })),
        "ambiguity reported"
    );
}

#[test]
fn novak_17_fragments_every_suricata_policy_ipv4_and_ipv6() {
    let Some((input, expected)) = novak_table() else {
        return;
    };
    for v6 in [false, true] {
        for (policy, want) in &expected {
            novak_case(*policy, want, &input, v6);
        }
    }
}

#[test]
fn novak_rfc5722_discards_and_reports_every_other_policy() {
    let Some((input, expected)) = novak_table() else {
        return;
    };
    for v6 in [false, true] {
        let mut t = table(Policy::Rfc5722);
        let (out, ev) = run(&mut t, &novak_packets(&input, v6));
        assert!(out.is_empty());
        assert_eq!(t.counters().event("discarded"), 1);
        assert!(t.is_empty());
        let amb = ev
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Ambiguity {
                    groups,
                    discarded_by,
                    ranges,
                } => Some((groups.clone(), discarded_by.clone(), ranges.clone())),
                _ => None,
            })
            .expect("ambiguity");
        assert_eq!(amb.1, vec![Policy::Rfc5722]);
        // Every Suricata policy gives a different payload here, and bsd-right a 7th.
        assert_eq!(amb.0.len(), 7);
        for (p, _) in &expected {
            assert!(amb.0.iter().any(|g| g == &vec![*p]));
        }
        // Block 5 (bytes 40..48) is B under every policy; block 3 (24..32) is J.
        assert!(amb.2.iter().all(|&(s, e)| e <= 40 || s >= 48));
        assert!(amb.2.iter().all(|&(s, e)| e <= 24 || s >= 32));
        assert!(amb.2.contains(&(8, 24)) || amb.2.iter().any(|&(s, e)| s <= 8 && e >= 24));
    }
}

fn one(policy: Policy, frags: &[(u8, usize, u32, bool)], v6: bool) -> Vec<u8> {
    let ps: Vec<Packet> = frags
        .iter()
        .enumerate()
        .map(|(i, &(c, len, off, more))| {
            let data = vec![c; len];
            if v6 {
                reassembly_common::v6(7, 17, off, more, &data, i as u64, false)
            } else {
                reassembly_common::v4(7, 17, off, more, &data, i as u64)
            }
        })
        .collect();
    let mut t = table(policy);
    let (out, _) = run(&mut t, &ps);
    assert_eq!(out.len(), 1, "{policy}: one datagram");
    out[0].bytes[if v6 { 40 } else { 20 }..].to_vec()
}

fn letters(spec: &[(u8, usize)]) -> Vec<u8> {
    spec.iter()
        .flat_map(|&(c, n)| std::iter::repeat_n(c, n))
        .collect()
}

#[test]
fn suricata_jeremy_linux() {
    let got = one(
        Policy::Linux,
        &[
            (b'A', 24, 0, true),
            (b'B', 48, 40, true),
            (b'C', 48, 24, true),
            (b'D', 14, 88, false),
        ],
        false,
    );
    assert_eq!(
        got,
        letters(&[(b'A', 24), (b'C', 48), (b'B', 16), (b'D', 14)])
    );
}

#[test]
fn suricata_bsd_fragment_after_no_mf() {
    for v6 in [false, true] {
        let got = one(
            Policy::Bsd,
            &[
                (b'A', 16, 24, false),
                (b'B', 16, 8, true),
                (b'C', 16, 16, true),
                (b'D', 8, 0, true),
            ],
            v6,
        );
        assert_eq!(got, letters(&[(b'D', 8), (b'B', 16), (b'C', 8), (b'A', 8)]));
    }
}

#[test]
fn suricata_bsd_subsequent_overlaps_start_of_original() {
    let got = one(
        Policy::Bsd,
        &[(b'E', 24, 8, false), (b'M', 24, 0, true)],
        false,
    );
    assert_eq!(got, letters(&[(b'M', 24), (b'E', 8)]));

    let ps = vec![
        v4(9, 17, 16, true, b"AABBCCDDAABBDDCC", 0),
        v4(9, 17, 8, true, b"AACCBBDDAACCDDBB", 1),
        v4(9, 17, 0, true, b"ZZZZZZZZ", 2),
        v4(9, 17, 32, false, b"DDCCBBAA", 3),
    ];
    let mut t = table(Policy::Bsd);
    let (out, _) = run(&mut t, &ps);
    assert_eq!(out.len(), 1);
    assert_eq!(
        &out[0].bytes[28..],
        b"AACCBBDDAACCDDBBAABBDDCCDDCCBBAA".as_slice()
    );
}

#[test]
fn suricata_mf_handling_ignores_data_past_the_final_fragment() {
    for v6 in [false, true] {
        let got = one(
            Policy::Bsd,
            &[(b'C', 8, 16, true), (b'A', 8, 0, true), (b'B', 8, 8, false)],
            v6,
        );
        assert_eq!(got, letters(&[(b'A', 8), (b'B', 8)]));
    }
}

#[test]
fn suricata_too_large_and_no_data() {
    let mut t = table(Policy::Bsd);
    let (out, ev) = run(&mut t, &[v4(1, 1, 8183 * 8, true, &[b'A'; 71], 0)]);
    assert!(out.is_empty());
    assert!(matches!(ev[..], [ref e] if matches!(e.kind, EventKind::TooLarge { size: 65555 })));
    assert!(t.is_empty());
    assert_eq!(t.memory_used(), 0);

    let (out, ev) = run(&mut t, &[v4(1, 1, 8, false, &[], 1)]);
    assert!(out.is_empty());
    assert_eq!(ev.len(), 1);
    assert!(t.is_empty(), "nothing allocated");
    assert_eq!(t.memory_used(), 0);
}

#[test]
fn suricata_vlan_separation() {
    let mut a = v4(3, 17, 0, true, &[b'A'; 8], 0);
    let mut b = v4(3, 17, 8, false, &[b'B'; 8], 1);
    a.ctx.vlan = [1, 0];
    b.ctx.vlan = [2, 0];
    let mut t = table(Policy::Bsd);
    let (out, _) = run(&mut t, &[a.clone(), b.clone()]);
    assert!(out.is_empty(), "different VLANs never reassemble together");
    assert_eq!(t.len(), 2);
    b.ctx.vlan = [1, 0];
    b.ts_ns = 2;
    let (out, _) = run(&mut t, &[b]);
    assert_eq!(out.len(), 1);
    // QinQ: the inner tag separates too.
    let mut c = a.clone();
    c.ctx.vlan = [1, 5];
    c.ts_ns = 3;
    let mut d = v4(3, 17, 8, false, &[b'B'; 8], 4);
    d.ctx.vlan = [1, 6];
    let (out, _) = run(&mut t, &[c, d]);
    assert!(out.is_empty());
}

// ---------------------------------------------------------------- Baggett

/// Decodes a Python bytes literal `b'...'`.
fn py_bytes(lit: &str) -> Vec<u8> {
    let inner = lit
        .strip_prefix("b'")
        .and_then(|s| s.strip_suffix('\''))
        .expect("bytes literal");
    let b = inner.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'x' => {
                    let h = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex");
                    out.push(u8::from_str_radix(h, 16).expect("hex"));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Baggett's policy names mapped to ours (`other` has no counterpart; see module docs).
fn baggett_policy(name: &str) -> Option<Policy> {
    match name {
        "first" => Some(Policy::First),
        "rfc791" => Some(Policy::Last),
        "linux" => Some(Policy::Linux),
        "bsd" => Some(Policy::Bsd),
        "bsdright" => Some(Policy::BsdRight),
        _ => None,
    }
}

/// (name, final_frags payload) and (name, judy ICMP payload, checksum) rows.
type Expectations = (Vec<(String, Vec<u8>)>, Vec<(String, String, u16)>);

fn baggett_expected() -> Option<Expectations> {
    let text = std::fs::read_to_string(corpus()?.join("_derived/baggett_final_frags_expected.txt"))
        .expect("read baggett file");
    let mut frags = Vec::new();
    let mut judy = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cells: Vec<&str> = line.split('\t').collect();
        match cells[..] {
            [name, lit] => frags.push((name.to_string(), py_bytes(lit))),
            [name, digits, ck] => judy.push((
                name.to_string(),
                digits.to_string(),
                ck.trim_start_matches("chksum=").parse().expect("checksum"),
            )),
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert_eq!(frags.len(), 6);
    assert_eq!(judy.len(), 6);
    Some((frags, judy))
}

/// A tiny classic-pcap reader (little-endian, microseconds, Ethernet).
fn read_pcap(path: &std::path::Path) -> Vec<Packet> {
    let d = std::fs::read(path).expect("read pcap");
    assert_eq!(
        &d[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian classic pcap"
    );
    assert_eq!(
        u32::from_le_bytes([d[20], d[21], d[22], d[23]]),
        1,
        "Ethernet"
    );
    let le = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    let mut o = 24;
    let mut out = Vec::new();
    while o + 16 <= d.len() {
        let ts = le(o) as u64 * 1_000_000_000 + le(o + 4) as u64 * 1000;
        let caplen = le(o + 8) as usize;
        let frame = &d[o + 16..o + 16 + caplen];
        assert_eq!(&frame[12..14], &[0x08, 0x00], "IPv4");
        let mut p = packet_of(frame[14..].to_vec(), ts);
        p.index = out.len() as u64;
        out.push(p);
        o += 16 + caplen;
    }
    out
}

fn reassemble_with(policy: Policy, ps: &[Packet]) -> Vec<u8> {
    let mut t = table(policy);
    let (out, ev) = run(&mut t, ps);
    assert_eq!(out.len(), 1, "{policy}: one datagram; events {ev:?}");
    assert!(t.is_empty());
    out[0].bytes[20..].to_vec()
}

#[test]
fn baggett_final_frags_every_policy() {
    let Some((expected, _)) = baggett_expected() else {
        return;
    };
    let Some(dir) = corpus() else { return };
    let ps = read_pcap(&dir.join("baggett-reassembler/sample_packets/final_frags.pcap"));
    assert_eq!(ps.len(), 9);
    let by_name = |n: &str| {
        expected
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, b)| b.clone())
            .expect("expected row")
    };
    for (name, want) in &expected {
        let Some(policy) = baggett_policy(name) else {
            continue;
        };
        let mut got = reassemble_with(policy, &ps);
        assert_eq!(&got[6..8], b"C#", "original UDP checksum kept");
        got[6] = 0;
        got[7] = 0; // Baggett's scapy output zeroes the UDP checksum.
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(want),
            "{policy} (Baggett {name})"
        );
    }
    // Windows and Solaris, which Baggett does not model separately: windows sees what
    // Baggett's "first" sees, solaris what his "bsd" sees; neither is his "other".
    let zero = |mut v: Vec<u8>| {
        v[6] = 0;
        v[7] = 0;
        v
    };
    assert_eq!(
        zero(reassemble_with(Policy::Windows, &ps)),
        by_name("first")
    );
    assert_eq!(zero(reassemble_with(Policy::Solaris, &ps)), by_name("bsd"));
    let other = by_name("other");
    for p in Policy::ALL {
        if p != Policy::Rfc5722 {
            assert_ne!(
                zero(reassemble_with(p, &ps)),
                other,
                "{p} is not Baggett's other"
            );
        }
    }
}

fn icmp_checksum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[test]
fn baggett_judy_pattern_every_policy() {
    let Some((_, expected)) = baggett_expected() else {
        return;
    };
    let mut first = vec![8u8, 0, 0, 0, 0, 0, 0, 0];
    first.extend_from_slice(&[b'1'; 24]);
    let frags: Vec<(u32, Vec<u8>, bool)> = vec![
        (0, first, true),
        (40, vec![b'2'; 16], true),
        (56, vec![b'3'; 24], true),
        (16, vec![b'4'; 32], true),
        (56, vec![b'5'; 24], true),
        (80, vec![b'6'; 24], false),
    ];
    let ps: Vec<Packet> = frags
        .iter()
        .enumerate()
        .map(|(i, (off, d, more))| v4(0, 1, *off, *more, d, i as u64))
        .collect();
    for (name, digits, ck) in &expected {
        let Some(policy) = baggett_policy(name) else {
            continue;
        };
        let got = reassemble_with(policy, &ps);
        assert_eq!(
            std::str::from_utf8(&got[8..]).expect("digits"),
            digits,
            "{policy} (Baggett {name})"
        );
        assert_eq!(icmp_checksum(&got), *ck, "{policy} ICMP checksum");
    }
    // The "other" row again matches none of our policies.
    let other = &expected.iter().find(|r| r.0 == "other").expect("other").1;
    for p in Policy::ALL {
        if p != Policy::Rfc5722 {
            assert_ne!(
                &String::from_utf8_lossy(&reassemble_with(p, &ps)[8..]),
                other
            );
        }
    }
}
