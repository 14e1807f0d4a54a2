//! flowtide's reassembly against the fragment-related suricata-verify cases in the corpus
//! (`suricata-verify/tests/{defrag/*, exception-policy-defrag-01, ipv6-evasion/*,
//! firewall/tcp-session-ipv6-decode-malformed, security-8510, security-8550,
//! drop-protocol-change}`).
//!
//! Suricata's checks are alerts and counters; each is translated into what flowtide
//! produces for the same input:
//! * an alert that quotes the reassembled packet (`alert.packet`, base64) -> the frame
//!   `flowtide defrag` writes, byte for byte, with the same link type;
//! * a decoder event on fragments (`ipv6.frag_overlap`, `frag_pkt_too_large`,
//!   `frag_invalid_length`, `exthdr_useless_fh`, `trunc_exthdr`) -> the number of
//!   matching events in `reassembly.jsonl` (`overlap_*`, `too_large`, `misaligned`,
//!   `atomic_fragment`) or of truncated packets in `summary.json`;
//! * a rule on the reassembled content (`dsize`, `tcp.flags`, `itype`) -> the same test on
//!   the datagram flowtide reassembles;
//! * an alert on a packet the target sent back (ICMPv6 errors) -> that packet passes
//!   unchanged, and the fragments it complains about do not complete.
//!
//! Suricata's default overlap policy is `bsd` (its config uses no other here).
//! Not modelled by flowtide, so not checked: Suricata's duplicated-fragment-header event
//! (`exthdr_dupl_fh`, cases 10-12; flowtide reports the atomic fragment) and its IPS
//! exception policies (exception-policy-defrag-01 is checked as a memory-budget refusal).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use flowtide::capture::pcap_file::CaptureFile;
use flowtide::capture::{FrameSource, Poll};
use flowtide::decode::Decoder;
use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::{ReassemblyConfig, ReassemblyTable};
use serde_json::Value;

fn sv(root: &Path, case: &str) -> PathBuf {
    root.join("suricata-verify/tests").join(case)
}

/// The one capture of a case directory.
fn pcap_of(dir: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("case dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    assert_eq!(v.len(), 1, "{}: one pcap", dir.display());
    v.remove(0)
}

/// (link type, frames) of a capture.
fn read(path: &Path) -> (u32, Vec<Vec<u8>>) {
    let mut f = CaptureFile::open(&path.display().to_string()).expect("open capture");
    let mut linktype = f.linktype();
    let mut out = Vec::new();
    loop {
        match f.next_frame().expect("read capture") {
            Poll::Frame(fr) => {
                linktype = fr.linktype;
                out.push(fr.data.to_vec());
            }
            Poll::Idle => {}
            Poll::End => break,
        }
    }
    (linktype, out)
}

/// Runs `flowtide defrag`: its JSON report and the output's link type and frames.
fn defrag(input: &Path, dir: &Path, extra: &[&str]) -> (Value, u32, Vec<Vec<u8>>) {
    let out = dir.join("defrag.pcap");
    let report = defrag_report(input, &out, extra);
    let (lt, frames) = read(&out);
    (report, lt, frames)
}

/// Runs `flowtide analyze`: reassembly events (parsed) and the summary.
fn analyze_events(input: &Path, dir: &Path, extra: &[&str]) -> (Vec<Value>, Value) {
    let out = dir.join("analyze");
    let _ = std::fs::remove_dir_all(&out);
    let input = input.display().to_string();
    let mut args = vec!["-r", &input];
    args.extend_from_slice(extra);
    assert_ok(&analyze(&out, &args), &format!("analyze {input}"));
    let events = jsonl_lines(&out, "reassembly")
        .iter()
        .map(|l| serde_json::from_str(l).expect("event json"))
        .collect();
    (events, summary(&out))
}

fn count(events: &[Value], kinds: &[&str]) -> usize {
    events
        .iter()
        .filter(|e| kinds.contains(&e["kind"].as_str().unwrap_or("")))
        .count()
}

/// Standard base64 (the `packet` fields of suricata-verify's test.yaml).
fn base64(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The `packet:` values and the `packet_info.linktype:` of a test.yaml.
fn yaml_packets(text: &str) -> (Vec<Vec<u8>>, Option<u32>) {
    let mut packets = Vec::new();
    let mut linktype = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("packet:") {
            packets.push(base64(v.trim().trim_matches('"')));
        } else if let Some(v) = line.strip_prefix("packet_info.linktype:") {
            let n = v.split('#').next().unwrap_or("").trim();
            linktype = Some(n.parse().expect("linktype"));
        }
    }
    (packets, linktype)
}

/// The IP packet in an Ethernet (VLAN) frame, without padding.
fn eth_ip(frame: &[u8]) -> &[u8] {
    let mut at = 12;
    while matches!(frame.get(at..at + 2), Some([0x81, 0]) | Some([0x88, 0xa8])) {
        at += 4;
    }
    let ip = &frame[at + 2..];
    let len = match ip[0] >> 4 {
        4 => usize::from(u16::from_be_bytes([ip[2], ip[3]])),
        _ => 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])),
    };
    &ip[..len.min(ip.len())]
}

/// (type, code, body) of the ICMPv6 message of an Ethernet frame, if it is one directly
/// after the IPv6 header.
fn icmpv6(frame: &[u8]) -> Option<(u8, u8, &[u8])> {
    let ip = eth_ip(frame);
    (ip.first()? >> 4 == 6 && *ip.get(6)? == 58 && ip.len() >= 48)
        .then(|| (ip[40], ip[41], &ip[44..]))
}

/// bug-6887 (six link types / encapsulations): Suricata logs the reassembled packet of
/// its alert; `flowtide defrag` must write exactly that frame.
#[test]
fn bug_6887_reassembled_packets_are_byte_exact() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let cases = [
        "defrag/bug-6887-defrag-eth-vlan-ipv4-tcp-syn",
        "defrag/bug-6887-defrag-eth-vlan-ipv6-tcp",
        "defrag/bug-6887-defrag-ipv4-tcp-syn",
        "defrag/bug-6887-defrag-ipv6-tcp",
        "defrag/bug-6887-defrag-ppp-ipv4-tcp-syn",
        "defrag/bug-6887-defrag-ppp-ipv6-tcp",
    ];
    for case in cases {
        let dir = sv(&root, case);
        let yaml = std::fs::read_to_string(dir.join("test.yaml")).expect("test.yaml");
        let (packets, linktype) = yaml_packets(&yaml);
        assert!(!packets.is_empty(), "{case}: expected packet");
        let (report, lt, frames) = defrag(&pcap_of(&dir), tmp.path(), &["--policy", "bsd"]);
        assert_eq!(report["fragments"], 3, "{case}");
        assert_eq!(Some(lt), linktype, "{case}: link type");
        assert_eq!(
            frames.len(),
            1,
            "{case}: one reassembled frame and nothing else"
        );
        for p in &packets {
            assert_eq!(
                &frames[0], p,
                "{case}: reassembled packet differs from Suricata's"
            );
        }
        // The rule: `tcp.flags:S` (IPv4 cases) or `dsize:1000` (IPv6 cases).
        let rules = std::fs::read_to_string(dir.join("test.rules")).expect("rules");
        if rules.contains("dsize:1000") {
            assert!(
                frames[0].ends_with(&[b'A'; 1000]),
                "{case}: 1000-byte TCP payload at the end"
            );
        } else {
            assert!(rules.contains("tcp.flags:S"));
            // TCP flags byte: 13 bytes into the TCP header, which ends the packet
            // (SYN without payload, options included: data offset says where it starts).
            let f = &frames[0];
            let tcp_at = (0..f.len().saturating_sub(20))
                .find(|&i| {
                    f[i] == 0x45
                        && usize::from(u16::from_be_bytes([f[i + 2], f[i + 3]])) == f.len() - i
                })
                .map(|i| i + 20)
                .expect("IPv4 header");
            assert_eq!(f[tcp_at + 13] & 0x02, 0x02, "{case}: SYN set");
        }
    }
}

/// bug-6942: a 65515-byte UDP datagram (1024 fragments of 64 bytes) in IPv4/GRE/PPP;
/// Suricata alerts on `dsize:>65000`. flowtide keeps at most 256 fragments per datagram
/// by default, so `defrag` evicts it; with the limit raised the table reassembles it
/// and the UDP payload is the 65507 bytes the rule sees.
#[test]
fn bug_6942_max_size_datagram_in_gre_ppp() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcap_of(&sv(
        &root,
        "defrag/bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data",
    ));
    let (report, _, frames) = defrag(&input, tmp.path(), &[]);
    assert_eq!(report["fragments"], 1024);
    assert_eq!(report["reassembled"], 0);
    assert_eq!(
        report["events"]["eviction"], 3,
        "evicted at 256 fragments, 3 times"
    );
    assert!(frames.is_empty());

    let (_, frames_in) = read(&input);
    let decoder = Decoder::default();
    let mut table = ReassemblyTable::new(ReassemblyConfig {
        max_fragments: 1024,
        ..ReassemblyConfig::default()
    });
    let (mut done, mut events) = (Vec::new(), Vec::new());
    let mut p = Packet::default();
    for (i, data) in frames_in.iter().enumerate() {
        let frame = flowtide::capture::Frame {
            ts_ns: i as u64,
            linktype: 1,
            orig_len: data.len() as u32,
            data,
        };
        decoder
            .decode(&frame, 0, i as u64, &mut p)
            .expect("decodes");
        assert!(p.is_fragment());
        table.push(&p, &mut done, &mut events);
    }
    assert_eq!(done.len(), 1);
    let ip = &done[0].bytes;
    assert_eq!(&ip[12..20], &[1, 1, 1, 1, 2, 2, 2, 2], "the inner datagram");
    assert_eq!((ip.len(), ip[9]), (20 + 65515, 17));
    let udp_len = usize::from(u16::from_be_bytes([ip[24], ip[25]]));
    assert_eq!(
        udp_len, 65515,
        "the UDP header agrees with the reassembled length"
    );
    assert!(udp_len - 8 > 65000, "dsize:>65000");
}

/// exception-policy-defrag-01: Suricata simulates a defrag memcap failure on the first
/// fragment of an ICMP echo request: the request is dropped (no `itype:8` alert) and
/// one ICMP flow remains. flowtide's equivalent is a memory budget too small for that
/// fragment: `over_budget`, no datagram, one ICMP flow (the echo reply). Without the
/// limit the request is reassembled and is an echo request.
#[test]
fn exception_policy_defrag_memcap() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcap_of(&sv(&root, "exception-policy-defrag-01"));
    // 1500 bytes: the second fragment (432 data bytes plus the per-datagram and
    // per-fragment charges) fits, the first (976 bytes of data) does not.
    let (events, summary) = analyze_events(&input, tmp.path(), &["--frag-memory", "1500"]);
    assert_eq!(count(&events, &["over_budget"]), 1);
    assert_eq!(summary["reassembly"]["reassembled"], 0);
    let flows = flow_lines(&tmp.path().join("analyze"));
    assert_eq!(flows.len(), 1, "one ICMP flow");
    let flow: Value = serde_json::from_str(&flows[0]).expect("flow");
    assert_eq!(
        (
            flow["protocol"].as_u64(),
            flow["bidirectional_packets"].as_u64()
        ),
        (Some(1), Some(1))
    );

    let (report, _, frames) = defrag(&input, tmp.path(), &["--policy", "bsd"]);
    assert_eq!(
        (report["fragments"].as_u64(), report["reassembled"].as_u64()),
        (Some(2), Some(1))
    );
    // The reassembled request is the one new frame (the reply is copied).
    let (_, frames_in) = read(&input);
    let new: Vec<&Vec<u8>> = frames.iter().filter(|f| !frames_in.contains(f)).collect();
    assert_eq!((frames.len(), new.len()), (2, 1));
    let ip = eth_ip(new[0]);
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!((ip[9], ip[ihl]), (1, 8), "ICMP echo request (itype:8)");
    assert_eq!(ip.len(), usize::from(u16::from_be_bytes([ip[2], ip[3]])));
}

/// security-8550: an IPv4/GRE datagram in 2 fragments whose payload is itself an IPv4
/// fragment with the same key. Suricata: 1 reassembled datagram (and no hang). flowtide
/// reassembles the outer datagram once; it does not feed reassembled datagrams back to
/// reassembly, so the inner fragment is not counted as a fragment (Suricata counts 3).
#[test]
fn security_8550_nested_fragment() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcap_of(&sv(&root, "security-8550"));
    let (report, _, frames) = defrag(&input, tmp.path(), &[]);
    assert_eq!(
        (report["fragments"].as_u64(), report["reassembled"].as_u64()),
        (Some(2), Some(1))
    );
    let outer = eth_ip(&frames[0]);
    assert_eq!(outer[9], 47, "GRE");
    let inner = &outer[20 + 4..];
    assert_eq!(inner[0] >> 4, 4);
    let frag = u16::from_be_bytes([inner[6], inner[7]]);
    assert!(frag & 0x3fff != 0, "the payload is an IPv4 fragment");
    assert_eq!(
        (&inner[4..6], &inner[12..20], inner[9]),
        (&outer[4..6], &outer[12..20], 47)
    );
    let (_, summary) = analyze_events(&input, tmp.path(), &[]);
    assert_eq!(summary["reassembly"]["reassembled"], 1);
    assert_eq!(summary["reassembly"]["fragments"], 2);
}

/// security-8510: 16384 interleaved IPv4/IPv6 fragments built for hash collisions; the
/// check is that every packet is processed (Suricata: decoder.pkts 16384, no crash).
#[test]
fn security_8510_spray_is_processed() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcap_of(&sv(&root, "security-8510"));
    let (report, _, _) = defrag(&input, tmp.path(), &[]);
    assert_eq!(report["frames_read"], 16384);
    let (_, summary) = analyze_events(&input, tmp.path(), &[]);
    assert_eq!(summary["packets_read"], 16384);
    assert_eq!(summary["reassembly"]["fragments"], 16384);
}

/// drop-protocol-change: one orphan non-first fragment among an HTTP/2 session: it never
/// completes, everything else passes unchanged.
#[test]
fn drop_protocol_change_orphan_fragment() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcap_of(&sv(&root, "drop-protocol-change"));
    let (_, frames_in) = read(&input);
    let (report, _, frames) = defrag(&input, tmp.path(), &[]);
    assert_eq!(
        (report["fragments"].as_u64(), report["reassembled"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(frames.len(), 6);
    assert!(frames.iter().all(|f| frames_in.contains(f)));
    let (events, _) = analyze_events(&input, tmp.path(), &[]);
    assert_eq!(count(&events, &["incomplete_at_end"]), 1);
}

/// Useless (atomic) fragment headers: Suricata's `ipv6.exthdr_useless_fh` once per case
/// -> one `atomic_fragment` event, no `malformed`, and the packet reaches the flow table
/// (firewall case: all 8 packets in the one TCP flow).
#[test]
fn ipv6_atomic_fragments() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    for case in [
        "ipv6-evasion/ipv6-malformed-fragments-9",
        "ipv6-evasion/ipv6-malformed-fragments-10",
        "ipv6-evasion/ipv6-malformed-fragments-11",
        "ipv6-evasion/ipv6-malformed-fragments-12",
        "firewall/tcp-session-ipv6-decode-malformed",
    ] {
        let input = pcap_of(&sv(&root, case));
        let (events, summary) = analyze_events(&input, tmp.path(), &[]);
        assert_eq!(
            count(&events, &["atomic_fragment"]),
            1,
            "{case}: {events:?}"
        );
        assert_eq!(count(&events, &["malformed"]), 0, "{case}: {events:?}");
        assert_eq!(summary["reassembly"]["reassembled"], 1, "{case}");
        // `defrag` leaves an atomic fragment as it is (nothing to reassemble).
        let (_, frames_in) = read(&input);
        let (report, _, frames) = defrag(&input, tmp.path(), &[]);
        assert_eq!(report["fragments"], 0, "{case}");
        assert_eq!(frames, frames_in, "{case}");
    }
    let out = tmp.path().join("analyze");
    let flows = flow_lines(&out);
    assert_eq!(flows.len(), 1);
    let flow: Value = serde_json::from_str(&flows[0]).expect("flow");
    assert_eq!(flow["protocol"], 6);
    assert_eq!(
        flow["bidirectional_packets"], 8,
        "the atomic fragment is counted"
    );
}

/// Useless fragment header on a truncated packet (`exthdr_useless_fh` +
/// `trunc_exthdr`): the fragment header ends the packet, so the decoder skips it as
/// truncated (once) and nothing is reassembled from it; in 27/28 the real fragments
/// sharing its identification stay incomplete.
#[test]
fn ipv6_truncated_atomic_fragments() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    for (n, incomplete) in [(25, 0), (26, 0), (27, 1), (28, 1)] {
        let case = format!("ipv6-evasion/ipv6-malformed-fragments-{n}");
        let input = pcap_of(&sv(&root, &case));
        let (events, summary) = analyze_events(&input, tmp.path(), &[]);
        assert_eq!(
            summary["skipped_by_reason"]["truncated_transport"], 1,
            "{case}"
        );
        assert_eq!(summary["reassembly"]["reassembled"], 0, "{case}");
        assert_eq!(count(&events, &["incomplete_at_end"]), incomplete, "{case}");
        assert_eq!(events.len(), incomplete, "{case}: {events:?}");
    }
}

/// `ipv6.frag_overlap` once per case -> exactly one overlapping fragment
/// (`overlap_same` or `overlap_different`); under `bsd` (Suricata's default) the datagram
/// is reassembled.
#[test]
fn ipv6_overlaps() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    for n in [1, 2, 3, 4, 6, 7, 8, 17, 18, 29] {
        let case = format!("ipv6-evasion/ipv6-malformed-fragments-{n}");
        let input = pcap_of(&sv(&root, &case));
        let (events, _) = analyze_events(&input, tmp.path(), &["--frag-policy", "bsd"]);
        assert_eq!(
            count(&events, &["overlap_same", "overlap_different"]),
            1,
            "{case}: {events:?}"
        );
        let (report, _, _) = defrag(&input, tmp.path(), &["--policy", "bsd"]);
        assert_eq!(report["reassembled"], 1, "{case}");
    }
}

/// `frag_pkt_too_large` (15, 16, 31) and with `frag_invalid_length` (32, 33), and
/// `frag_invalid_length` alone (22-24, and 39812 times in the DoS capture).
#[test]
fn ipv6_too_large_and_invalid_length() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let cases: [(&str, usize, usize); 9] = [
        ("ipv6-malformed-fragments-15", 1, 0),
        ("ipv6-malformed-fragments-16", 1, 0),
        ("ipv6-malformed-fragments-31", 1, 0),
        ("ipv6-malformed-fragments-32", 1, 1),
        ("ipv6-malformed-fragments-33", 1, 1),
        ("ipv6-malformed-fragments-22", 0, 1),
        ("ipv6-malformed-fragments-23", 0, 1),
        ("ipv6-malformed-fragments-24", 0, 1),
        ("ipv6-dos-with-ext-headers-6", 0, 39812),
    ];
    for (case, too_large, invalid) in cases {
        let input = pcap_of(&sv(&root, &format!("ipv6-evasion/{case}")));
        let (events, summary) = analyze_events(&input, tmp.path(), &[]);
        assert_eq!(count(&events, &["too_large"]), too_large, "{case}");
        assert_eq!(count(&events, &["misaligned"]), invalid, "{case}");
        assert_eq!(summary["reassembly"]["reassembled"], 0, "{case}");
    }
}

/// Alerts on what the target answered: ICMPv6 Time Exceeded code 1 (30: the datagram
/// never completed), Parameter Problem code 0 (35, 36: the target rejected what it
/// reassembled), Packet Too Big with MTU < 1280 (toobig: no fragments at all). The
/// answer passes unchanged, exactly once. In 35 and 36 the fragments of the rejected
/// datagram name different next headers; only the offset-0 fragment's counts (RFC 8200
/// 4.5), so the datagram is reassembled once, as Wireshark does.
#[test]
fn ipv6_target_answers() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    for (case, itype, icode, reassembled) in [
        ("ipv6-malformed-fragments-30", 3, 1, 0),
        ("ipv6-malformed-fragments-35", 4, 0, 1),
        ("ipv6-malformed-fragments-36", 4, 0, 1),
        ("ipv6-atomic-fragments-toobig", 2, 0, 0),
    ] {
        let input = pcap_of(&sv(&root, &format!("ipv6-evasion/{case}")));
        let (_, frames_in) = read(&input);
        let (report, _, frames) = defrag(&input, tmp.path(), &[]);
        assert_eq!(report["reassembled"], reassembled, "{case}");
        let answers: Vec<&Vec<u8>> = frames
            .iter()
            .filter(|f| icmpv6(f).is_some_and(|(t, c, _)| (t, c) == (itype, icode)))
            .collect();
        assert_eq!(answers.len(), 1, "{case}");
        assert!(frames_in.contains(answers[0]), "{case}: unchanged");
        if itype == 2 {
            let (_, _, body) = icmpv6(answers[0]).expect("icmpv6");
            let mtu = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            assert!(mtu < 1280, "icmpv6.mtu:<1280");
            assert_eq!(report["fragments"], 0);
        }
    }
    // 30: the datagram the target timed out is incomplete for flowtide too.
    let input = pcap_of(&sv(&root, "ipv6-evasion/ipv6-malformed-fragments-30"));
    let (events, _) = analyze_events(&input, tmp.path(), &[]);
    assert_eq!(count(&events, &["incomplete_at_end", "timeout"]), 1);
}
