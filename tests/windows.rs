//! `windows.jsonl` against independent computations: per-window packet, byte and flow
//! counts recomputed from tshark's dissection of a corpus capture, and hopping windows
//! recomputed from tumbling windows at the slide.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const S: u64 = 1_000_000_000;

/// 11 minutes of IPv4 TCP only (299 connections, each opened by a SYN, no gap over 1 s
/// inside a connection, strictly time-ordered), so the initiator of every flow is the
/// sender of its SYN and no flow is split by the idle timeout.
const CAPTURE: &str = "anomaly/slips/test-cc__test-cc-capture-1.pcap";

/// (granularity, src_ip, dst_ip, dst_port, protocol): the key fields of a line.
type Key = (
    String,
    Option<String>,
    Option<String>,
    Option<u64>,
    Option<u64>,
);

/// (packets, bytes, flows_started).
type Counts = (u64, u64, u64);

/// A window's identity: key and start.
type At = (Key, u64);

fn capture() -> Option<PathBuf> {
    let p = corpus()?.join(CAPTURE);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not in the corpus", p.display());
        None
    }
}

/// `secs.fraction` (as tshark prints `frame.time_epoch`) to integer nanoseconds.
fn epoch_ns(s: &str) -> u64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let secs: u64 = secs.parse().expect("seconds");
    let nanos: u64 = digits.parse().expect("nanoseconds");
    secs * S + nanos
}

/// One packet as tshark dissects it.
struct Pkt {
    ts_ns: u64,
    src: String,
    dst: String,
    sport: u64,
    dport: u64,
    ip_len: u64,
    stream: u64,
}

/// The capture's packets per tshark, or `None` when tshark is not installed.
fn tshark_packets(path: &Path) -> Option<Vec<Pkt>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=\t"])
        .args(["-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst"])
        .args(["-e", "ip.proto", "-e", "tcp.stream", "-e", "tcp.srcport"])
        .args(["-e", "tcp.dstport", "-e", "ip.len"])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        _ => {
            eprintln!("skipping: tshark not available");
            return None;
        }
    };
    let text = String::from_utf8(out.stdout).expect("utf8");
    let packets: Vec<Pkt> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 8, "{line}");
            assert_eq!(f[3], "6", "the capture is TCP only: {line}");
            let n = |s: &str| s.parse::<u64>().expect(line);
            Pkt {
                ts_ns: epoch_ns(f[0]),
                src: f[1].to_string(),
                dst: f[2].to_string(),
                stream: n(f[4]),
                sport: n(f[5]),
                dport: n(f[6]),
                ip_len: n(f[7]),
            }
        })
        .collect();
    assert!(packets.len() > 1000);
    Some(packets)
}

/// Per (key, window start): the counts of tumbling windows of `width`, computed from
/// the packets with each connection oriented from the sender of its first packet.
fn expected_tumbling(packets: &[Pkt], width: u64) -> BTreeMap<At, Counts> {
    let mut initiator: BTreeMap<u64, (String, String, u64)> = BTreeMap::new();
    let mut out: BTreeMap<At, Counts> = BTreeMap::new();
    for p in packets {
        let mut started = 0;
        let (src, dst, dport) = initiator
            .entry(p.stream)
            .or_insert_with(|| {
                started = 1;
                (p.src.clone(), p.dst.clone(), p.dport)
            })
            .clone();
        assert!(
            (p.src == src && p.dport == dport) || (p.dst == src && p.sport == dport),
            "stream {} changes endpoints",
            p.stream
        );
        let start = p.ts_ns - p.ts_ns % width;
        let keys: [Key; 3] = [
            (
                "channel".into(),
                Some(src.clone()),
                Some(dst.clone()),
                None,
                Some(6),
            ),
            ("host".into(), Some(src.clone()), None, None, None),
            (
                "service".into(),
                None,
                Some(dst.clone()),
                Some(dport),
                Some(6),
            ),
        ];
        for key in keys {
            let c = out.entry((key, start)).or_default();
            c.0 += 1;
            c.1 += p.ip_len;
            c.2 += started;
        }
    }
    out
}

/// One parsed line of `windows.jsonl`.
struct Line {
    key: Key,
    start: u64,
    end: u64,
    partial: bool,
    counts: Counts,
    flows_ended: u64,
}

fn parse(line: &str) -> Line {
    let v: Value = serde_json::from_str(line).expect("json line");
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let num = |k: &str| n(k).unwrap_or_else(|| panic!("{k} missing in {line}"));
    Line {
        key: (
            s("granularity").expect("granularity"),
            s("src_ip"),
            s("dst_ip"),
            n("dst_port"),
            n("protocol"),
        ),
        start: num("window_start_ns"),
        end: num("window_end_ns"),
        partial: v["partial"].as_bool().expect("partial"),
        counts: (num("packets"), num("bytes"), num("flows_started")),
        flows_ended: num("flows_ended"),
    }
}

/// Runs flowtide on the capture and returns the lines of `windows.jsonl`, checking that
/// the file is in canonical order (by window end).
fn windows(out: &Path, cap: &Path, extra: &[&str]) -> Vec<Line> {
    let mut args = vec!["-r", cap.to_str().expect("utf8 path")];
    args.extend_from_slice(extra);
    let o = analyze(out, &args);
    assert_ok(&o, &format!("analyze {extra:?}"));
    let text = std::fs::read_to_string(out.join("windows.jsonl")).expect("windows.jsonl");
    let lines: Vec<Line> = text.lines().map(parse).collect();
    assert!(
        lines.windows(2).all(|w| w[0].end <= w[1].end),
        "windows.jsonl is not ordered by window end"
    );
    lines
}

fn by_window(lines: &[Line]) -> BTreeMap<At, Counts> {
    let mut m = BTreeMap::new();
    for l in lines {
        let old = m.insert((l.key.clone(), l.start), l.counts);
        assert!(old.is_none(), "window {:?} at {} twice", l.key, l.start);
    }
    m
}

/// Tumbling windows of 60 s (the default) and 7 s agree exactly with tshark's packets.
#[test]
fn tumbling_windows_match_tshark() {
    let Some(cap) = capture() else { return };
    let Some(packets) = tshark_packets(&cap) else {
        return;
    };
    let last_ns = packets.iter().map(|p| p.ts_ns).max().unwrap_or(0);
    let tmp = tempfile::tempdir().expect("tmp");
    for (name, width, extra) in [
        ("default", 60 * S, vec!["-w", "2"]),
        ("7s", 7 * S, vec!["-w", "3", "--window", "7s"]),
    ] {
        let lines = windows(&tmp.path().join(name), &cap, &extra);
        for l in &lines {
            assert_eq!(l.end - l.start, width, "{name}: window length");
            assert_eq!(
                l.partial,
                l.end > last_ns,
                "{name}: partial flag at {}",
                l.end
            );
        }
        // A window without packets exists only for a flow that ended in it (after its
        // last packet: TCP linger, idle timeout); tshark's packets say nothing of those.
        let (with_packets, ended_only): (Vec<Line>, Vec<Line>) =
            lines.into_iter().partition(|l| l.counts.0 > 0);
        for l in &ended_only {
            assert!(l.flows_ended > 0, "{name}: empty window {:?}", l.key);
            assert_eq!((l.counts.1, l.counts.2), (0, 0), "{name}: {:?}", l.key);
        }
        let lines = with_packets;
        let got = by_window(&lines);
        let want = expected_tumbling(&packets, width);
        assert_eq!(got.len(), want.len(), "{name}: number of windows");
        for (at, counts) in &want {
            assert_eq!(got.get(at), Some(counts), "{name}: window {at:?}");
        }
        let flows: u64 = lines
            .iter()
            .filter(|l| l.key.0 == "host")
            .map(|l| l.counts.2)
            .sum();
        assert_eq!(flows, 299, "{name}: flows started");
    }
}

/// Hopping windows (60 s every 20 s) are the sums of the tumbling 20 s windows they
/// cover, exist exactly where one of those has data, and are partial exactly when they
/// end after the input.
#[test]
fn hopping_windows_are_sums_of_tumbling_panes() {
    let Some(cap) = capture() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let panes = windows(
        &tmp.path().join("tumbling"),
        &cap,
        &["-w", "2", "--window", "20s"],
    );
    let hops = windows(
        &tmp.path().join("hopping"),
        &cap,
        &["-w", "2", "--window", "60s", "--window-slide", "20s"],
    );
    let panes = by_window(&panes);
    let mut want: BTreeMap<At, Counts> = BTreeMap::new();
    for ((key, start), c) in &panes {
        for k in 0..3 {
            let w = want
                .entry((key.clone(), start + 20 * S * k - 40 * S))
                .or_default();
            w.0 += c.0;
            w.1 += c.1;
            w.2 += c.2;
        }
    }
    // The input ends inside the last pane with data, so a window is partial exactly
    // when it ends at or after that pane's end.
    let last_end = panes.keys().map(|(_, s)| s + 20 * S).max().unwrap_or(0);
    for l in &hops {
        assert_eq!(l.end - l.start, 60 * S);
        assert_eq!(l.partial, l.end >= last_end, "partial flag at {}", l.end);
    }
    let partial: BTreeSet<u64> = hops.iter().filter(|l| l.partial).map(|l| l.end).collect();
    assert_eq!(partial.len(), 3, "the last three window ends are partial");
    assert_eq!(by_window(&hops), want);
}

/// `--no-windows`: the same flows, no windows file, no anomaly scoring.
#[test]
fn no_windows_gives_the_same_flows_and_no_windows() {
    let Some(cap) = capture() else { return };
    let cap = cap.display().to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let with = tmp.path().join("with");
    let without = tmp.path().join("without");
    assert_ok(&analyze(&with, &["-w", "2", "-r", cap.as_str()]), "analyze");
    assert_ok(
        &analyze(&without, &["-w", "2", "--no-windows", "-r", cap.as_str()]),
        "analyze --no-windows",
    );
    assert!(with.join("windows.jsonl").exists());
    assert!(!without.join("windows.jsonl").exists());
    assert_eq!(flow_lines(&with), flow_lines(&without));
    assert!(!flow_lines(&without).is_empty());
}

/// A pcap (raw IPv4 link type) of `n` TCP SYNs from distinct sources to 192.0.2.1:80,
/// 10 000 a second: a spoofed-source SYN flood.
fn spoofed_syn_flood(path: &Path, n: u32) {
    let mut b: Vec<u8> = Vec::with_capacity(24 + n as usize * 56);
    for x in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
    ] {
        b.extend_from_slice(x);
    }
    for x in [0u32, 0, 65_535, 101] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    for i in 0..n {
        let us = u64::from(i) * 100;
        b.extend_from_slice(&(1_700_000_000 + (us / 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&40u32.to_le_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&(0x0b00_0000 + i).to_be_bytes());
        ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&(1024 + (i % 60_000) as u16).to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&i.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x02;
        tcp[14..16].copy_from_slice(&65_535u16.to_be_bytes());
        b.extend_from_slice(&ip);
        b.extend_from_slice(&tcp);
    }
    std::fs::write(path, b).expect("write pcap");
}

/// A spoofed-source flood puts over 65 536 window keys in one pane on one worker, which
/// the pane combiner flushes as partial aggregates: the windows are the same with one
/// worker (flushes) and two (fewer or none), and count every source exactly.
#[test]
fn spoofed_flood_windows_are_exact_whatever_the_flushes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("flood.pcap");
    let n = 50_000u32; // 5 s: 100 000 host and channel keys in the first 10 s pane
    spoofed_syn_flood(&cap, n);
    let cap = cap.display().to_string();
    let mut runs = Vec::new();
    for workers in ["1", "2"] {
        let out = tmp.path().join(format!("w{workers}"));
        assert_ok(&analyze(&out, &["-w", workers, "-r", &cap]), "analyze");
        runs.push((jsonl_lines(&out, "windows"), jsonl_lines(&out, "alerts")));
    }
    assert_eq!(
        runs[0], runs[1],
        "same windows and alerts with 1 and 2 workers"
    );
    let lines: Vec<Value> = runs[0]
        .0
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let hosts: Vec<&Value> = lines
        .iter()
        .filter(|w| w["granularity"] == "host")
        .collect();
    assert_eq!(hosts.len(), n as usize, "one window per spoofed source");
    assert!(hosts
        .iter()
        .all(|w| w["packets"] == 1 && w["syn_packets"] == 1));
    let services: Vec<&Value> = lines
        .iter()
        .filter(|w| w["granularity"] == "service")
        .collect();
    assert_eq!(services.len(), 1);
    let s = services[0];
    assert_eq!(
        (
            &s["packets"],
            &s["syn_packets"],
            &s["distinct_peers"],
            &s["flows_started"]
        ),
        (&n.into(), &n.into(), &n.into(), &n.into())
    );
    let alerts = &runs[0].1;
    assert!(!alerts.is_empty() && alerts.iter().all(|a| a.contains("\"syn_flood\"")));
}
