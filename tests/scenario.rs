//! Integration tests of `flowtide synth --scenario office`: reproducibility by seed,
//! the ground truth against the capture itself, `flowtide analyze` on it, and the
//! day/night rhythm of the background. Scenarios are short (2-4 h) to stay fast.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hasher;
use std::io::{BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::Path;

use flowtide::synth::scenario::{generate, OfficeOptions};
use serde_json::Value;

const SEC: u64 = 1_000_000_000;

/// A writer that only hashes what it is given.
struct HashWriter(std::collections::hash_map::DefaultHasher, u64);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn small(seed: u64) -> OfficeOptions {
    OfficeOptions {
        seed,
        hours: 2.0,
        hosts: 20,
        ..OfficeOptions::default()
    }
}

fn digest(o: &OfficeOptions) -> (u64, u64, String) {
    let mut w = HashWriter(Default::default(), 0);
    let (_, truth) = generate(o, &mut w).expect("generate");
    let truth = serde_json::to_string(&truth).expect("truth serializes");
    (w.0.finish(), w.1, truth)
}

#[test]
fn same_seed_same_bytes_other_seed_other_capture() {
    let a = digest(&small(7));
    let b = digest(&small(7));
    assert_eq!(a, b, "same seed, same capture and truth");
    let c = digest(&small(8));
    assert_ne!(a.0, c.0, "another seed, another capture");
    let (ta, tc): (Value, Value) = (
        serde_json::from_str(&a.2).expect("json"),
        serde_json::from_str(&c.2).expect("json"),
    );
    assert_ne!(
        ta["network"]["hosts"], tc["network"]["hosts"],
        "addresses differ"
    );
    let starts = |t: &Value| -> Vec<u64> {
        t["attacks"]
            .as_array()
            .expect("attacks")
            .iter()
            .map(|a| a["start_ns"].as_u64().expect("start_ns"))
            .collect()
    };
    assert_ne!(starts(&ta), starts(&tc), "attack placement differs");
}

/// One pcap record's IPv4 view.
struct Pkt {
    ts: u64,
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    fragment: bool,
    syn_only: bool,
    dport: u16,
}

/// Reads a little-endian nanosecond pcap of untagged Ethernet/IPv4 frames.
fn read_pcap(path: &Path) -> Vec<Pkt> {
    let mut r = BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open"));
    let mut gh = [0u8; 24];
    r.read_exact(&mut gh).expect("global header");
    assert_eq!(&gh[0..4], &0xa1b2_3c4du32.to_le_bytes(), "nanosecond pcap");
    let mut out = Vec::new();
    let mut h = [0u8; 16];
    let mut buf = vec![0u8; 65_536];
    while r.read_exact(&mut h).is_ok() {
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let len = word(8) as usize;
        r.read_exact(&mut buf[..len]).expect("record");
        let f = &buf[..len];
        assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 over untagged Ethernet");
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        let fragment = frag & 0x3fff != 0;
        let l4 = &ip[ihl..];
        let (syn_only, dport) = if !fragment && (ip[9] == 6 || ip[9] == 17) {
            (
                ip[9] == 6 && l4[13] & 0x12 == 0x02,
                u16::from_be_bytes([l4[2], l4[3]]),
            )
        } else {
            (false, 0)
        };
        out.push(Pkt {
            ts: u64::from(word(0)) * SEC + u64::from(word(4)),
            src: [ip[12], ip[13], ip[14], ip[15]],
            dst: [ip[16], ip[17], ip[18], ip[19]],
            proto: ip[9],
            fragment,
            syn_only,
            dport,
        });
    }
    out
}

fn ip(v: &Value) -> Option<[u8; 4]> {
    v.as_str()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
        .map(|a| a.octets())
}

#[test]
fn truth_matches_capture_and_analyze_reads_it_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("office.pcap");
    let o = common::flowtide()
        .args([
            "synth",
            "--scenario",
            "office",
            "--seed",
            "5",
            "--hours",
            "2",
        ])
        .args(["--hosts", "20", "--out"])
        .arg(&pcap)
        .output()
        .expect("run synth");
    common::assert_ok(&o, "synth");
    let report: Value = serde_json::from_slice(&o.stdout).expect("report");
    let truth_path = dir.path().join("office.truth.json");
    assert_eq!(report["truth"].as_str(), truth_path.to_str());
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(&truth_path).expect("truth.json"))
            .expect("truth.json parses");
    let (start, end, warm) = (
        truth["start_ns"].as_u64().expect("start"),
        truth["end_ns"].as_u64().expect("end"),
        truth["warmup_end_ns"].as_u64().expect("warmup"),
    );
    assert_eq!(end - start, 2 * 3_600 * SEC);
    assert_eq!(warm - start, 90 * 60 * SEC);
    assert_eq!(truth["network"]["hosts"].as_array().map(Vec::len), Some(20));

    let pkts = read_pcap(&pcap);
    assert_eq!(
        pkts.len() as u64,
        report["packets"].as_u64().expect("packets")
    );
    assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts), "time order");
    assert!(pkts.iter().all(|p| p.ts >= start && p.ts < end));

    let attacks = truth["attacks"].as_array().expect("attacks");
    let types: HashSet<&str> = attacks.iter().filter_map(|a| a["type"].as_str()).collect();
    for t in [
        "fast_scan",
        "slow_scan",
        "syn_flood",
        "udp_flood",
        "dns_tunnel",
        "frag_overlap",
        "frag_flood",
        "exfil_low_slow",
        "beacon_jitter10",
        "beacon_jitter40",
    ] {
        assert!(types.contains(t), "{t} missing from truth.json");
    }
    for a in attacks {
        let what = a["type"].as_str().expect("type");
        let (s, e) = (
            a["start_ns"].as_u64().expect("start_ns"),
            a["end_ns"].as_u64().expect("end_ns"),
        );
        assert!(
            warm <= s && s <= e && e < end,
            "{what}: span inside the capture"
        );
        let attacker = ip(&a["attacker"]).expect("attacker is an IPv4 address");
        let victim = ip(&a["victim"]);
        assert!(a["victim"].is_null() || victim.is_some(), "{what}: victim");
        let expected = a["packets"].as_u64().expect("packets");
        assert!(expected > 0, "{what}: packets");
        let in_span: Vec<&Pkt> = pkts
            .iter()
            .filter(|p| p.ts >= s && p.ts <= e && (p.src == attacker || p.dst == attacker))
            .collect();
        let outside = pkts
            .iter()
            .filter(|p| (p.ts < s || p.ts > e) && (p.src == attacker || p.dst == attacker))
            .count();
        if attacker[0] == 10 {
            // A compromised workstation also does its usual work.
            assert!(in_span.len() as u64 >= expected, "{what}: packets in span");
        } else {
            assert_eq!(in_span.len() as u64, expected, "{what}: packets in span");
            assert_eq!(outside, 0, "{what}: external attacker outside its span");
        }
        if let Some(v) = victim {
            assert!(
                in_span.iter().any(|p| p.src == attacker && p.dst == v),
                "{what}: attacker reaches the victim"
            );
        }
        let frags = in_span.iter().filter(|p| p.fragment).count() as u64;
        match what {
            "frag_overlap" | "frag_flood" => assert_eq!(frags, expected, "{what}: fragments"),
            "fast_scan" => {
                let ports: HashSet<u16> = in_span
                    .iter()
                    .filter(|p| p.syn_only)
                    .map(|p| p.dport)
                    .collect();
                assert!(ports.len() >= 900, "fast scan probes {} ports", ports.len());
                assert!(e - s < 30 * SEC, "fast scan is fast");
            }
            "syn_flood" => {
                let syns = in_span.iter().filter(|p| p.syn_only).count() as f64;
                assert!(syns / ((e - s) as f64 / 1e9) > 1_000.0, "SYN rate");
            }
            "dns_tunnel" => assert!(in_span
                .iter()
                .any(|p| p.proto == 17 && p.dport == 53 && p.src == attacker)),
            _ => {}
        }
    }

    // flowtide analyze reads every packet, skips none, sees the fragment attacks.
    let out = dir.path().join("out");
    let o = common::analyze(&out, &["-r", pcap.to_str().expect("utf-8 path")]);
    common::assert_ok(&o, "analyze");
    let summary = common::summary(&out);
    assert_eq!(summary["packets_read"].as_u64(), Some(pkts.len() as u64));
    assert_eq!(summary["packets_skipped"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["packets_late"].as_u64(), Some(0), "{summary}");
    let events = &summary["reassembly"]["events"];
    assert!(
        events["overlap_different"].as_u64().unwrap_or(0) > 0,
        "{events}"
    );
    assert!(events["timeout"].as_u64().unwrap_or(0) > 10_000, "{events}");
    // Every external attacker shows up as the source of flows.
    let mut sources = HashSet::new();
    for line in common::flow_lines(&out) {
        let v: Value = serde_json::from_str(&line).expect("flow json");
        if let Some(s) = v["src_ip"].as_str() {
            sources.insert(s.to_string());
        }
    }
    for a in attacks {
        let who = a["attacker"].as_str().expect("attacker");
        if a["type"] != "frag_flood" && a["type"] != "frag_overlap" {
            assert!(sources.contains(who), "{}: no flow from {who}", a["type"]);
        }
    }
    // The port-scan rule names the attacker and the victim of the fast and the slow scan,
    // with no learning phase.
    let alerts = std::fs::read_to_string(out.join("alerts.jsonl")).expect("alerts");
    let scans: Vec<Value> = alerts
        .lines()
        .map(|l| serde_json::from_str(l).expect("alert json"))
        .filter(|a: &Value| a["kind"] == "port_scan")
        .collect();
    for a in attacks {
        if a["type"] == "fast_scan" || a["type"] == "slow_scan" {
            assert!(
                scans.iter().any(|s| s["src_ip"] == a["attacker"]
                    && s["dest_ip"] == a["victim"]
                    && s["granularity"] == "pair"),
                "{}: no port_scan alert for {} -> {}: {scans:?}",
                a["type"],
                a["attacker"],
                a["victim"]
            );
        }
    }
}

#[test]
fn background_follows_the_hour_of_day() {
    // 05:00-09:00 without attacks: the morning ramp.
    let o = OfficeOptions {
        seed: 3,
        start_hour: 5,
        hours: 4.0,
        attacks: false,
        ..OfficeOptions::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bg.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let (_, truth) = generate(&o, file).expect("generate");
    assert!(truth.attacks.is_empty());
    let lookalikes: HashMap<&str, &Value> = truth
        .benign
        .iter()
        .map(|b| (b.kind.as_str(), &b.params))
        .collect();
    assert!(lookalikes.contains_key("backup") && lookalikes.contains_key("flash_crowd"));
    let crowd: [u8; 4] = ip(&lookalikes["flash_crowd"]["server"]).expect("crowd server");
    let backup: [u8; 4] = ip(&lookalikes["backup"]["server"]).expect("backup server");
    // Connections opened by workstations per hour, without the two look-alikes.
    let mut per_hour: BTreeMap<u64, u64> = BTreeMap::new();
    let mut ntp = 0u64;
    for p in read_pcap(&path) {
        if p.syn_only && p.src[0] == 10 && p.dst != crowd && p.dst != backup {
            *per_hour
                .entry((p.ts - truth.start_ns) / (3_600 * SEC))
                .or_default() += 1;
        }
        ntp += u64::from(p.proto == 17 && p.dport == 123);
    }
    let counts: Vec<u64> = per_hour.values().copied().collect();
    assert_eq!(counts.len(), 4, "{per_hour:?}");
    assert!(
        counts.windows(2).all(|w| w[1] as f64 > 1.5 * w[0] as f64),
        "sessions per hour should ramp up in the morning: {counts:?}"
    );
    assert!(ntp > 100, "NTP polls: {ntp}");
}
