//! `flowtide defrag` against independent expected outputs: PcapPlusPlus' IPDefragUtil
//! (`Tests/ExamplesTest/expected_output/*.pcap`) and dnscap's fragmented DNS capture.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use flowtide::capture::pcap_file::CaptureFile;
use flowtide::capture::{FrameSource, Poll};
use flowtide::decode::Decoder;
use flowtide_dataflows::packet::Packet;

/// One frame of a capture.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    ts_ns: u64,
    data: Vec<u8>,
}

fn read(path: &Path) -> (u32, Vec<Rec>) {
    let mut f = CaptureFile::open(&path.display().to_string()).expect("open capture");
    let mut linktype = f.linktype();
    let mut out = Vec::new();
    loop {
        match f.next_frame().expect("read capture") {
            Poll::Frame(fr) => {
                linktype = fr.linktype;
                out.push(Rec {
                    ts_ns: fr.ts_ns,
                    data: fr.data.to_vec(),
                });
            }
            Poll::Idle => {}
            Poll::End => break,
        }
    }
    (linktype, out)
}

/// The IP packet of a frame (Ethernet with VLAN tags, or raw IP), without link padding.
fn ip_layer(linktype: u32, frame: &[u8]) -> Vec<u8> {
    let mut at = 0;
    if linktype == 1 {
        at = 12;
        while at + 2 <= frame.len()
            && matches!([frame[at], frame[at + 1]], [0x81, 0] | [0x88, 0xa8])
        {
            at += 4;
        }
        at += 2;
    }
    let ip = &frame[at.min(frame.len())..];
    let len = match ip.first().map(|b| b >> 4) {
        Some(4) if ip.len() >= 4 => u16::from_be_bytes([ip[2], ip[3]]) as usize,
        Some(6) if ip.len() >= 6 => 40 + u16::from_be_bytes([ip[4], ip[5]]) as usize,
        _ => ip.len(),
    };
    ip[..len.min(ip.len())].to_vec()
}

/// Runs `flowtide defrag` and returns the output's link type and frames.
fn defrag(input: &Path, dir: &Path, extra: &[&str]) -> (u32, Vec<Rec>) {
    let out = dir.join(format!(
        "{}.defrag.pcap",
        input.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    defrag_report(input, &out, extra);
    read(&out)
}

/// The frames of `output` that are not the input's non-fragment frames copied through
/// (those come out unchanged and in order): the reassembled datagrams.
fn reassembled_only(input: &[Rec], linktype: u32, output: &[Rec]) -> Vec<Rec> {
    let decoder = Decoder::default();
    let mut p = Packet::default();
    let copied: Vec<&Rec> = input
        .iter()
        .filter(|r| {
            let frame = flowtide::capture::Frame {
                ts_ns: r.ts_ns,
                linktype,
                orig_len: r.data.len() as u32,
                data: &r.data,
            };
            decoder.decode(&frame, 0, 0, &mut p).is_err() || !p.is_fragment()
        })
        .collect();
    let mut next = 0;
    let mut rest = Vec::new();
    for r in output {
        if next < copied.len() && copied[next] == r {
            next += 1;
        } else {
            rest.push(r.clone());
        }
    }
    assert_eq!(next, copied.len(), "every non-fragment is copied, in order");
    rest
}

fn pcpp(root: &Path) -> PathBuf {
    root.join("pcapplusplus/Tests/ExamplesTest")
}

fn assert_same_datagrams(linktype: u32, got: &[Rec], want_lt: u32, want: &[Rec], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of datagrams");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            ip_layer(linktype, &g.data),
            ip_layer(want_lt, &w.data),
            "{what}: datagram {i} differs"
        );
    }
}

#[test]
fn pcapplusplus_ip_frag() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcpp(&root).join("pcap_examples/ip-frag.pcap");
    let (lt_in, frames_in) = read(&input);
    let (lt, out) = defrag(&input, tmp.path(), &[]);
    assert_eq!(lt, lt_in, "output keeps the input's link type");

    // Only the reassembled datagrams (IPDefragUtil without -a): 190 of them.
    let (lt_x, expected) = read(&pcpp(&root).join("expected_output/no-ip-frag.pcap"));
    let got = reassembled_only(&frames_in, lt_in, &out);
    assert_eq!(expected.len(), 190);
    assert_same_datagrams(lt, &got, lt_x, &expected, "no-ip-frag.pcap");

    // Everything (IPDefragUtil -a): non-fragments and datagrams, in the same order.
    let (lt_a, all) = read(&pcpp(&root).join("expected_output/no-ip-frag-all.pcap"));
    assert_eq!(all.len(), 1331);
    assert_same_datagrams(lt, &out, lt_a, &all, "no-ip-frag-all.pcap");
}

#[test]
fn pcapplusplus_http_request() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcpp(&root).join("pcap_examples/frag_http_req.pcap");
    let (lt_in, frames_in) = read(&input);
    let (lt, out) = defrag(&input, tmp.path(), &[]);
    let (lt_x, expected) = read(&pcpp(&root).join("expected_output/http_req.pcap"));
    let got = reassembled_only(&frames_in, lt_in, &out);
    assert_same_datagrams(lt, &got, lt_x, &expected, "http_req.pcap");
    // The whole frame, Ethernet header included, is what PcapPlusPlus wrote.
    assert_eq!(got[0].data, expected[0].data);
}

#[test]
fn pcapplusplus_ipv6() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let input = pcpp(&root).join("pcap_examples/ipv6-frag.pcap");
    let (lt_in, frames_in) = read(&input);
    let (lt, out) = defrag(&input, tmp.path(), &[]);
    assert_eq!(out.len(), 3, "2 other packets and 1 datagram");
    let (lt_x, expected) = read(&pcpp(&root).join("expected_output/no-ipv6-frag.pcap"));
    let got = reassembled_only(&frames_in, lt_in, &out);
    assert_same_datagrams(lt, &got, lt_x, &expected, "no-ipv6-frag.pcap");
}

/// The UDP payloads (DNS messages) of every IPv4 UDP packet of a capture.
fn dns_messages(linktype: u32, frames: &[Rec]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter_map(|r| {
            let ip = ip_layer(linktype, &r.data);
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            (ip.len() >= ihl + 8 && ip[9] == 17).then(|| ip[ihl + 8..].to_vec())
        })
        .collect()
}

#[test]
fn dnscap_fragmented_dns() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = root.join("dnscap/src/test");
    let (lt, out) = defrag(&dir.join("frags.pcap"), tmp.path(), &[]);
    let (lt_x, expected) = read(&dir.join("dns.pcap"));
    let got = dns_messages(lt, &out);
    let want = dns_messages(lt_x, &expected);
    assert_eq!(got.len(), 82);
    assert_eq!(
        got, want,
        "frags.pcap reassembles to dns.pcap's DNS messages"
    );
}
