//! flowtide's reassembly against Wireshark's on every fragment-bearing corpus capture.
//!
//! `_derived/tshark_reassembly/<capture path with '/' as '_'>.tsv` lists, per capture, the
//! frames where Wireshark 4.0.17 completed an IPv4 or IPv6 reassembly: addresses,
//! identification and reassembled length (the fragmentable payload: after the IPv4 header,
//! after the IPv6 fragment header). Wireshark does not time datagrams out and keeps no
//! per-datagram fragment limit. On overlap it copies the fragments in offset order and
//! keeps the bytes already copied, i.e. the lowest offset wins: that is flowtide's `bsd`,
//! not `first` (checked byte for byte on Baggett's `final_frags.pcap` below, the one
//! capture whose policies differ). So flowtide runs like `flowtide defrag --policy bsd
//! --timeout 1000000s` (the same loop as the CLI: decoder, then one `ReassemblyTable` in
//! capture order), and the CLI itself is run too and must report as many datagrams.
//!
//! For each capture the completed datagrams must match Wireshark's one to one on (IP
//! version, source, destination, identification, reassembled length). Captures where
//! flowtide differs for a documented reason are in [`ALLOWED`], with the number of
//! datagrams flowtide completes there (checked, so the list stays true and short).

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use common::*;
use flowtide::capture::pcap_file::CaptureFile;
use flowtide::capture::{FrameSource, Poll};
use flowtide::decode::Decoder;
use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::parse::parse_fragment;
use flowtide_dataflows::reassembly::{FragKey, Policy, ReassemblyTable};

/// Captures where flowtide and Wireshark differ: (corpus path, datagrams flowtide
/// completes, reason).
const ALLOWED: &[(&str, usize, &str)] = &[
    // Limit: 313 fragments per datagram; flowtide keeps at most 256 (`max_fragments`,
    // default) and evicts the datagram. Wireshark has no such limit.
    (
        "ndpi/tests/cfgs/default/pcap/ip_fragmented_garbage.pcap",
        0,
        "more than 256 fragments per datagram",
    ),
    // Limit: 1024 fragments of 64 bytes (a 65515-byte UDP datagram in GRE/PPP).
    (
        "suricata-verify/tests/defrag/bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data/eth-ip-gre-ppp-max-ip-packet.pcap",
        0,
        "more than 256 fragments per datagram",
    ),
    // IPv6 payload length past 65535 (65543, 66928, 65536): flowtide drops the fragment
    // that would overflow (`too_large`); Wireshark builds the oversized datagram.
    (
        "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-15/frag-15.pcap",
        0,
        "reassembled size above 65535",
    ),
    (
        "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-16/frag-16.pcap",
        0,
        "reassembled size above 65535",
    ),
    (
        "zeek/testing/btest/Traces/ipv6-reassembly-state-leak.pcap",
        0,
        "reassembled size above 65535",
    ),
    // IPv6 in IPv6, outer and inner fragmented: `defrag` reassembles the outer datagrams
    // (4, as Wireshark) but does not decode a reassembled datagram again to reassemble
    // the inner fragments it carries (Wireshark's 5th, frame 28).
    (
        "peafowl/test/pcaps/ip_fragmentation/6in6_both.pcap",
        4,
        "inner fragments of a reassembled tunnel are not reassembled",
    ),
    // Wireshark's frame 10 "reassembly" uses the fragment quoted inside an ICMPv6
    // Parameter Problem message; flowtide never treats quoted packets as fragments.
    // (Frame 7, whose fragments carry different next headers in their fragment headers,
    // is reassembled by both: IPv6 datagrams are keyed without the next header, and the
    // offset-0 fragment's counts, RFC 8200 4.5.)
    (
        "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-35/frag-35.pcap",
        1,
        "ICMPv6-quoted fragment",
    ),
    (
        "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-36/frag-36.pcap",
        1,
        "ICMPv6-quoted fragment",
    ),
];

/// One datagram: IP version, source, destination, identification, reassembled length.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Datagram {
    version: u8,
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    len: usize,
    /// The reassembled payload (not compared with the tsv, which has no bytes).
    payload: Vec<u8>,
}

/// One reassembly Wireshark reports. In tunnels a frame lists every IP layer's
/// addresses (and every IPv4 layer's id, every IPv6 fragment header's id), so a row gives
/// the candidate (source, destination, id) triples of the reassembled layer.
#[derive(Clone, Debug)]
struct Reported {
    frame: u64,
    version: u8,
    candidates: Vec<(IpAddr, IpAddr, u32)>,
    len: usize,
}

impl Reported {
    fn matches(&self, d: &Datagram) -> bool {
        self.version == d.version
            && self.len == d.len
            && self.candidates.contains(&(d.src, d.dst, d.id))
    }
}

fn list(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(',').collect()
    }
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex id")
}

/// Wireshark's reassemblies in one tsv file.
fn parse_tsv(text: &str) -> Vec<Reported> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header row").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let cells: Vec<&str> = line.split('\t').collect();
        let cell = |name: &str| cells.get(col(name)).copied().unwrap_or("");
        let frame: u64 = cell("frame").parse().expect("frame number");
        for (version, p) in [(4u8, "ip"), (6u8, "ipv6")] {
            let lens = list(cell(&format!("{p}.reassembled.length")));
            if lens.is_empty() {
                continue;
            }
            let srcs = list(cell(&format!("{p}.src")));
            let dsts = list(cell(&format!("{p}.dst")));
            let id_field = if version == 4 {
                "ip.id"
            } else {
                "ipv6.fraghdr.ident"
            };
            let ids: Vec<u32> = list(cell(id_field)).into_iter().map(hex).collect();
            let mut candidates = Vec::new();
            for (s, d) in srcs.iter().zip(&dsts) {
                for &id in &ids {
                    candidates.push((s.parse().expect("src"), d.parse().expect("dst"), id));
                }
            }
            for len in lens {
                out.push(Reported {
                    frame,
                    version,
                    candidates: candidates.clone(),
                    len: len.parse().expect("length"),
                });
            }
        }
    }
    out
}

/// The datagrams `flowtide defrag --policy P` completes, in order (the CLI's loop).
fn flowtide_datagrams(path: &Path, policy: Policy) -> Vec<Datagram> {
    let mut f = CaptureFile::open(&path.display().to_string()).expect("open capture");
    let decoder = Decoder::default();
    let config = flowtide::defrag::reassembly_config(Some(policy), 1_000_000 * NS, 64 << 20);
    let mut table = ReassemblyTable::new(config);
    let (mut done, mut events) = (Vec::new(), Vec::new());
    let mut p = Packet::default();
    // Header length of each datagram's first offset-0 fragment (what the output keeps).
    let mut headers: HashMap<FragKey, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut index = 0;
    loop {
        let frame = match f.next_frame().expect("read capture") {
            Poll::Frame(fr) => fr,
            Poll::Idle => continue,
            Poll::End => break,
        };
        index += 1;
        let ok = decoder.decode(&frame, 0, index - 1, &mut p).is_ok();
        if !(ok && p.is_fragment() && p.bytes.is_some()) {
            continue;
        }
        if let (Some(key), Some(Ok(parsed))) = (
            FragKey::of_packet(&p),
            p.bytes.as_deref().map(parse_fragment),
        ) {
            if parsed.offset == 0 {
                headers.entry(key).or_insert(parsed.header.len());
            }
        }
        table.push(&p, &mut done, &mut events);
        for r in done.drain(..) {
            let header = headers.remove(&r.key).expect("offset-0 header");
            out.push(Datagram {
                version: r.key.ip_version,
                src: r.key.src.to_ip(),
                dst: r.key.dst.to_ip(),
                id: r.key.id,
                len: r.bytes.len() - header,
                payload: r.bytes[header..].to_vec(),
            });
        }
        events.clear();
    }
    out
}

const NS: u64 = 1_000_000_000;

/// The CLI's count of reassembled datagrams with the same settings.
fn cli_count(path: &Path, dir: &Path) -> u64 {
    let report = defrag_report(
        path,
        &dir.join("out.pcap"),
        &["--policy", "bsd", "--timeout", "1000000s"],
    );
    report["reassembled"].as_u64().expect("reassembled count")
}

/// Pairs flowtide's datagrams with Wireshark's; the description of every difference.
fn compare(got: &[Datagram], want: &[Reported]) -> Vec<String> {
    let mut left: Vec<&Reported> = want.iter().collect();
    let mut diffs = Vec::new();
    for d in got {
        match left.iter().position(|r| r.matches(d)) {
            Some(i) => {
                left.remove(i);
            }
            None => diffs.push(format!("flowtide only: {d:?}")),
        }
    }
    for r in left {
        diffs.push(format!(
            "Wireshark only: frame {} v{} len {} {:?}",
            r.frame, r.version, r.len, r.candidates
        ));
    }
    diffs
}

#[test]
fn reassembly_matches_wireshark() {
    let Some(root) = corpus() else { return };
    let tsv_dir = root.join("_derived/tshark_reassembly");
    let tmp = tempfile::tempdir().expect("tmp");
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut seen_allowed = Vec::new();
    for capture in corpus_captures(&root) {
        let rel = capture
            .strip_prefix(&root)
            .expect("under the corpus")
            .to_string_lossy()
            .into_owned();
        let tsv = tsv_dir.join(format!("{}.tsv", rel.replace('/', "_")));
        let Ok(text) = std::fs::read_to_string(&tsv) else {
            continue;
        };
        checked += 1;
        let want = parse_tsv(&text);
        let got = flowtide_datagrams(&capture, Policy::Bsd);
        assert_eq!(
            cli_count(&capture, tmp.path()),
            got.len() as u64,
            "{rel}: the CLI completes as many datagrams"
        );
        let diffs = compare(&got, &want);
        match ALLOWED.iter().find(|(p, _, _)| *p == rel) {
            Some((_, n, why)) => {
                seen_allowed.push(rel.clone());
                if diffs.is_empty() {
                    failures.push(format!("{rel}: allow-listed ({why}) but agrees: remove it"));
                } else if got.len() != *n {
                    failures.push(format!(
                        "{rel}: allow-listed with {n} datagrams, flowtide completes {}: {diffs:#?}",
                        got.len()
                    ));
                }
            }
            None => {
                if !diffs.is_empty() {
                    failures.push(format!(
                        "{rel}: flowtide {} vs Wireshark {} datagrams: {diffs:#?}",
                        got.len(),
                        want.len()
                    ));
                }
            }
        }
    }
    assert_eq!(checked, 86, "one tsv per fragment-bearing capture");
    for (p, _, _) in ALLOWED {
        assert!(
            seen_allowed.iter().any(|s| s == p),
            "{p}: not in the corpus"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Which policy Wireshark's reassembly is: on `final_frags.pcap` (overlapping fragments
/// with different data) `tshark -x` shows this reassembled UDP datagram for frame 9
/// (Wireshark 4.0.17; transcribed here): flowtide's `bsd` gives the same bytes, `first`
/// does not.
#[test]
fn wireshark_overlap_policy_is_bsd() {
    let Some(root) = corpus() else { return };
    let input = root.join("baggett-reassembler/sample_packets/final_frags.pcap");
    let mut wireshark = vec![0x04, 0x01, 0x1f, 0x40, 0x00, 0x49, 0x43, 0x23];
    wireshark
        .extend_from_slice(b"GET /etc/passwd\nHost:www.supersecret.net\nUser-Agent:good-browser\n");
    assert_eq!(wireshark.len(), 73);
    let bsd = flowtide_datagrams(&input, Policy::Bsd);
    assert_eq!(bsd.len(), 1);
    assert_eq!(bsd[0].payload, wireshark);
    let first = flowtide_datagrams(&input, Policy::First);
    assert_eq!(first.len(), 1);
    assert_ne!(first[0].payload, wireshark);
    assert!(first[0].payload.ends_with(b"User-Agent:evil-browser\n"));
}
