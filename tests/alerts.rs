//! Alerts end to end: corpus attack captures raise the right kind of alert.

mod common;

use std::path::Path;

use common::*;

/// The parsed lines of `alerts.jsonl`.
fn alerts(dir: &Path) -> Vec<serde_json::Value> {
    jsonl_lines(dir, "alerts")
        .iter()
        .map(|l| serde_json::from_str(l).expect("alert line"))
        .collect()
}

/// Capture records: (time in µs, frame bytes).
type Records = Vec<(u64, Vec<u8>)>;

/// Reads a little-endian microsecond pcap: (global header, records).
fn read_pcap(path: &Path) -> Option<(Vec<u8>, Records)> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 24 || b[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= b.len() {
        let ts = u64::from(u32_at(i)) * 1_000_000 + u64::from(u32_at(i + 4));
        let len = u32_at(i + 8) as usize;
        let end = (i + 16 + len).min(b.len());
        out.push((ts, b[i + 16..end].to_vec()));
        i += 16 + len;
    }
    Some((b[..24].to_vec(), out))
}

fn write_pcap(path: &Path, header: &[u8], records: &[(u64, Vec<u8>)]) {
    let mut b = header.to_vec();
    for (ts, data) in records {
        b.extend_from_slice(&((ts / 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&((ts % 1_000_000) as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
    }
    std::fs::write(path, b).expect("write pcap");
}

/// The StopDDoS spoofed SYN flood (23.7 s, ~1.6 kpps towards 10.10.10.10:25565) is
/// attack from its first packet, so it is preceded by its own traffic thinned 100-fold
/// (every 100th packet, 30 s earlier: ~16 SYN/s to the same service) as the normal
/// baseline. With 1 s windows and a 5 s learning phase (short captures need short
/// windows) the service alerts as a high severity anomaly from the flood's first window
/// and in every window of its bursts (alerted windows never enter the baseline).
#[test]
fn syn_flood_raises_anomaly_alerts_on_the_victim_service() {
    let Some(root) = corpus() else { return };
    let src = root.join("stopddos/pkt.TCP.synflood.spoofed.pcap");
    let Some((header, records)) = read_pcap(&src) else {
        panic!("{} is not a little-endian microsecond pcap", src.display());
    };
    let shift = 30_000_000;
    let mut all: Vec<(u64, Vec<u8>)> = records
        .iter()
        .step_by(100)
        .map(|(ts, d)| (ts - shift, d.clone()))
        .collect();
    all.extend(records.iter().cloned());
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("flood.pcap");
    write_pcap(&cap, &header, &all);
    let cap = cap.display().to_string();
    // Threshold 4: this tests the mechanism on 1 s windows, not the default (24, tuned
    // for 60 s windows of an office network).
    let args = [
        "--window",
        "1s",
        "--learn",
        "5s",
        "--alert-threshold",
        "4",
        "-r",
        cap.as_str(),
    ];
    let out = tmp.path().join("w1");
    let o = analyze(&out, &[&["-w", "1"], &args[..]].concat());
    assert_ok(&o, "analyze");
    let got = alerts(&out);
    let service: Vec<&serde_json::Value> = got
        .iter()
        .filter(|a| {
            a["kind"] == "anomaly" && a["granularity"] == "service" && a["dest_ip"] == "10.10.10.10"
        })
        .collect();
    assert!(!service.is_empty(), "no service alert: {:?}", got.first());
    // The history-free rule sees the same flood.
    assert!(got
        .iter()
        .any(|a| a["kind"] == "syn_flood" && a["dest_ip"] == "10.10.10.10"));
    let first_ts = records[0].0 * 1000;
    for a in &service {
        assert_eq!(a["kind"], "anomaly");
        assert_eq!(a["event_type"], "alert");
        assert_eq!(a["dest_port"], 25565);
        assert_eq!(a["proto"], "TCP");
    }
    // Detected in the flood's first (whole) window...
    let first_alert = service[0]["window_start_ns"].as_u64().unwrap_or(0);
    assert!(
        first_alert <= first_ts + 1_000_000_000,
        "first alert at {first_alert}, flood at {first_ts}"
    );
    assert_eq!(service[0]["severity"], "high");
    let syn = service[0]["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "syn_packets"))
        .cloned()
        .unwrap_or_default();
    assert!(syn["value"].as_f64().unwrap_or(0.0) > 1000.0, "{syn}");
    assert!(
        syn["baseline_mean"].as_f64().unwrap_or(f64::MAX) < 50.0,
        "{syn}"
    );
    // ... and in every later window of the bursts (the capture alternates bursts of
    // 2-22 k SYN/s with ~80/s): the bursts never become normal.
    let bursts: Vec<u64> = jsonl_lines(&out, "windows")
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("window"))
        .filter(|w| {
            w["granularity"] == "service"
                && w["dst_ip"] == "10.10.10.10"
                && w["packets"].as_u64().unwrap_or(0) > 1000
        })
        .filter_map(|w| w["window_end_ns"].as_u64())
        .collect();
    let alerted: Vec<u64> = service
        .iter()
        .filter_map(|a| a["window_end_ns"].as_u64())
        .collect();
    assert!(bursts.len() >= 4, "{bursts:?}");
    assert_eq!(alerted, bursts);
    let s = summary(&out);
    assert_eq!(
        s["alerts"]["anomaly"].as_u64(),
        Some(got.iter().filter(|a| a["kind"] == "anomaly").count() as u64)
    );
    // The same alerts with 2 and 4 workers.
    for w in ["2", "4"] {
        let dir = tmp.path().join(format!("w{w}"));
        let o = analyze(&dir, &[&["-w", w], &args[..]].concat());
        assert_ok(&o, "analyze");
        assert_eq!(
            jsonl_lines(&out, "alerts"),
            jsonl_lines(&dir, "alerts"),
            "-w {w}"
        );
    }
}

/// IPv6 fragments overlapping with different data (suricata-verify ipv6-evasion):
/// `frag_overlap` and `frag_ambiguity` alerts naming the pair.
#[test]
fn fragment_overlap_evasion_raises_fragment_alerts() {
    let Some(root) = corpus() else { return };
    for name in ["1__frag-1", "17__frag-17"] {
        let cap = root.join(format!(
            "anomaly/suricata-verify/ipv6-evasion__ipv6-malformed-fragments-{name}.pcap"
        ));
        let tmp = tempfile::tempdir().expect("tmp");
        let o = analyze(tmp.path(), &["-r", &cap.display().to_string()]);
        assert_ok(&o, "analyze");
        let got = alerts(tmp.path());
        let kinds: Vec<&str> = got.iter().filter_map(|a| a["kind"].as_str()).collect();
        assert_eq!(kinds, ["frag_ambiguity", "frag_overlap"], "{name}");
        for a in &got {
            assert_eq!(a["granularity"], "pair");
            assert_eq!(a["src_ip"], "2001:db8:1::2");
            assert_eq!(a["dest_ip"], "2001:db8:1::1");
            assert_eq!(a["severity"], "high");
        }
    }
}

/// The alerts of a corpus capture at default settings, checked to be the same with 1 and
/// 2 workers.
fn same_alerts_with_1_and_2_workers(root: &Path, name: &str) -> Vec<serde_json::Value> {
    let cap = root.join(name).display().to_string();
    let mut runs = Vec::new();
    for workers in ["1", "2"] {
        let tmp = tempfile::tempdir().expect("tmp");
        assert_ok(
            &analyze(tmp.path(), &["-w", workers, "-r", &cap]),
            "analyze",
        );
        runs.push(alerts(tmp.path()));
    }
    assert_eq!(runs[0], runs[1], "{name}: same alerts with 1 and 2 workers");
    runs.swap_remove(0)
}

/// Real SYN floods shorter than the learning phase: the history-free `syn_flood` rule
/// names the victim service at default settings, with every worker count.
#[test]
fn short_real_syn_floods_raise_syn_flood_alerts() {
    let Some(root) = corpus() else { return };
    for (name, victim) in [
        ("stopddos/pkt.TCP.synflood.spoofed.pcap", "10.10.10.10"),
        ("stopddos/pkt.TCP.DOMINATE.syn.ecn.cwr.pcapng", ""),
    ] {
        let found = same_alerts_with_1_and_2_workers(&root, name);
        let floods: Vec<_> = found.iter().filter(|a| a["kind"] == "syn_flood").collect();
        assert!(!floods.is_empty(), "{name}: {:?}", found);
        for a in floods {
            assert_eq!(a["granularity"], "service");
            assert_eq!(a["proto"], "TCP");
            if !victim.is_empty() {
                assert_eq!(a["dest_ip"], victim);
            }
            // The window rule counts SYNs in a minute, the burst rule half-open attempts
            // within 5 s.
            let (name0, min) = match a["metrics"][0]["name"].as_str() {
                Some("syn_packets") => ("syn_packets", 1000.0),
                _ => ("half_open_attempts", 100.0),
            };
            assert_eq!(a["metrics"][0]["name"], name0, "{a}");
            assert!(
                a["metrics"][0]["value"].as_f64().unwrap_or(0.0) >= min,
                "{a}"
            );
        }
    }
}

/// A short real SYN flood (suricata-verify: one host sends 200 SYNs from 200 ports to
/// 198.51.100.5:443 in 0.2 s): under the window rule's 1 000 SYNs, found by the
/// half-open burst rule when its 100th attempt is counted, with every worker count.
#[test]
fn short_real_syn_burst_raises_a_syn_flood_alert() {
    let Some(root) = corpus() else { return };
    let found = same_alerts_with_1_and_2_workers(
        &root,
        "anomaly/suricata-verify/firewall__tcp-session-syn-flood-drop-precedence__input.pcap",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(
        (
            &a["kind"],
            &a["granularity"],
            &a["dest_ip"],
            &a["dest_port"]
        ),
        (
            &serde_json::json!("syn_flood"),
            &serde_json::json!("service"),
            &serde_json::json!("198.51.100.5"),
            &serde_json::json!(443)
        ),
        "{a}"
    );
    let metric = |name: &str| {
        a["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|x| x["name"] == name))
            .and_then(|x| x["value"].as_f64())
    };
    assert_eq!(metric("half_open_attempts"), Some(100.0), "{a}");
    assert_eq!(metric("distinct_sources"), Some(1.0), "{a}");
}

/// Real reflection floods shorter than the learning phase: the history-free rules name
/// the victim (a host receiving SYN-ACKs it never asked for; UDP services receiving
/// unanswered SNMP responses from over a thousand reflectors), with every worker count.
#[test]
fn short_real_reflection_floods_raise_rule_alerts() {
    let Some(root) = corpus() else { return };
    for (name, kind, granularity) in [
        (
            "stopddos/amp.TCP.reflection.SYNACK.pcap",
            "syn_ack_reflection",
            "host",
        ),
        (
            "stopddos/amp.UDP.snmp.src161.pcapng",
            "udp_flood",
            "service",
        ),
    ] {
        let found = same_alerts_with_1_and_2_workers(&root, name);
        assert!(!found.is_empty(), "{name}: no alert");
        for a in &found {
            if a["kind"] == "udp_reflection" {
                // Both captures also hold amplified UDP responses to the same victim
                // (see the next test).
                assert_eq!(a["src_ip"], "10.10.10.10", "{name}: {a}");
                continue;
            }
            assert_eq!(a["kind"], kind, "{name}: {a}");
            assert_eq!(a["granularity"], granularity, "{name}: {a}");
            // The victim: the reflection's target (source of its SYN-ACK flows) or the
            // UDP service the responses flood.
            let victim = if granularity == "host" {
                &a["src_ip"]
            } else {
                &a["dest_ip"]
            };
            assert_eq!(victim, "10.10.10.10", "{name}: {a}");
        }
    }
}

/// Real C2 and brute-force captures, minutes long: the connection-pattern rules name the
/// infected host and its controller (TLS check-ins every 2.2 s and every 3 s), and the
/// guesser and the service it attacks (nmap ssh-brute against port 902), with every
/// worker count. Nothing else in these captures raises an alert.
#[test]
fn real_c2_and_brute_force_raise_connection_pattern_alerts() {
    let Some(root) = corpus() else { return };
    for (name, kind, src, dst, port) in [
        (
            "anomaly/slips/test-cc__test-cc-capture-1.pcap",
            "beacon",
            "147.32.80.37",
            "141.193.213.21",
            443,
        ),
        (
            "anomaly/slips/test-cc__test-cc-capture-2.pcap",
            "beacon",
            "147.32.80.37",
            "141.193.213.20",
            443,
        ),
        (
            "anomaly/slips/test19-malicious-ssh__malicious-ssh-bruteforce.pcap",
            "brute_force",
            "147.32.80.40",
            "147.32.80.37",
            902,
        ),
    ] {
        let found = same_alerts_with_1_and_2_workers(&root, name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        let a = &found[0];
        assert_eq!(a["kind"], kind, "{name}: {a}");
        assert_eq!(a["granularity"], "channel", "{name}: {a}");
        assert_eq!(
            (&a["src_ip"], &a["dest_ip"], &a["dest_port"], &a["proto"]),
            (
                &serde_json::json!(src),
                &serde_json::json!(dst),
                &serde_json::json!(port),
                &serde_json::json!("TCP")
            ),
            "{name}: {a}"
        );
        let connections = a["metrics"][0]["value"].as_f64().unwrap_or(0.0);
        assert!(connections >= 16.0, "{name}: {a}");
    }
    // The benign DNS lookups of the second capture are periodic too (a query every
    // 0.3 s), but DNS is periodic by design and not judged.
}

/// A real IoT botnet host (Hide and Seek, which spreads by scanning for telnet): the
/// address-scan rule names it and the ports it sweeps, with every worker count.
#[test]
fn real_botnet_scanning_raises_address_scan_alerts() {
    let Some(root) = corpus() else { return };
    let found = same_alerts_with_1_and_2_workers(&root, "anomaly/slips/test7-malicious.pcap");
    assert!(!found.is_empty());
    let mut ports = Vec::new();
    for a in &found {
        assert_eq!(a["kind"], "address_scan", "{a}");
        assert_eq!(a["granularity"], "host", "{a}");
        assert_eq!(a["src_ip"], "192.168.2.16", "{a}");
        assert!(
            a["metrics"][0]["value"].as_f64().unwrap_or(0.0) >= 10.0,
            "{a}"
        );
        ports.push(a["dest_port"].as_u64().unwrap_or(0));
    }
    assert!(ports.contains(&23) && ports.contains(&2323), "{ports:?}");
}

/// A real ICMP ping sweep (192.168.1.109 pings 17 addresses of its /24 within 1.6 s, as
/// tshark lists them): one `address_scan` alert by the burst tier, naming the pinger and
/// ICMP, with every worker count. Echo flows are oriented by the request and known as
/// echoes whatever their identifier.
#[test]
fn real_ping_sweep_raises_an_address_scan_alert() {
    let Some(root) = corpus() else { return };
    let found = same_alerts_with_1_and_2_workers(&root, "anomaly/slips/test12-icmp-portscan.pcap");
    assert_eq!(found.len(), 1, "{found:?}");
    let a = &found[0];
    assert_eq!(a["kind"], "address_scan", "{a}");
    assert_eq!(a["granularity"], "host", "{a}");
    assert_eq!(a["src_ip"], "192.168.1.109", "{a}");
    assert_eq!(a["proto"], "ICMP", "{a}");
    assert_eq!(a["metrics"][0]["value"].as_f64(), Some(10.0), "{a}");
    let text = a["explanation"].as_str().unwrap_or_default();
    assert!(
        text.contains("echo requests") && text.contains("10 hosts within 5 s"),
        "{text}"
    );
}

/// A real TCP reflection trickle (StopDDoS `amp.TCP.syn.optionallyACK`): two FTP
/// servers send the victim SYN-ACKs from port 21 to its port 21 every 2 s and every 6 s
/// for 13 minutes (396 and 136 of them, as tshark counts). Each server is named by a
/// `syn_ack_reflection` channel alert with its exact count; the servers that sent a few
/// SYN-ACKs, as a retransmitting stack does, are not.
#[test]
fn real_syn_ack_trickle_raises_channel_alerts_per_server() {
    let Some(root) = corpus() else { return };
    let found = same_alerts_with_1_and_2_workers(
        &root,
        "stopddos/amp.TCP.syn.optionallyACK.optionallysamePort.pcapng",
    );
    let mut servers: Vec<(String, f64)> = found
        .iter()
        .map(|a| {
            assert_eq!(a["kind"], "syn_ack_reflection", "{a}");
            assert_eq!(a["granularity"], "channel", "{a}");
            assert_eq!(
                (&a["src_ip"], &a["dest_port"], &a["proto"]),
                (
                    &serde_json::json!("10.10.10.10"),
                    &serde_json::json!(21),
                    &serde_json::json!("TCP")
                ),
                "{a}"
            );
            (
                a["dest_ip"].as_str().unwrap_or_default().to_string(),
                a["metrics"][0]["value"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    servers.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        servers,
        vec![
            ("75.136.225.254".to_string(), 396.0),
            ("93.114.150.139".to_string(), 136.0)
        ]
    );
}

/// Real reflection attacks (DNSSEC answers, many of them IP-fragmented, and SNMP
/// responses, sent to a victim that never asked): `udp_reflection` names the victim
/// with both worker counts, as the responses arrive (not when their flows end); the
/// fragmented answers count once reassembled.
#[test]
fn real_amplification_attacks_raise_udp_reflection_alerts() {
    let Some(root) = corpus() else { return };
    for (name, port) in [
        ("stopddos/amp.dns.RRSIG.fragmented.pcap", "from port 53)"),
        ("stopddos/amp.UDP.snmp.src161.pcapng", "from port 161)"),
    ] {
        let found = same_alerts_with_1_and_2_workers(&root, name);
        let refl: Vec<_> = found
            .iter()
            .filter(|a| a["kind"] == "udp_reflection")
            .collect();
        assert_eq!(refl.len(), 1, "{name}: {found:?}");
        let a = refl[0];
        assert_eq!(a["granularity"], "host", "{a}");
        assert_eq!(a["src_ip"], "10.10.10.10", "{a}");
        assert_eq!(a["metrics"][0]["value"].as_f64(), Some(10.0), "{a}");
        let text = a["explanation"].as_str().unwrap_or_default();
        assert!(text.contains(port), "{name}: {text}");
        if name.contains("RRSIG") {
            // The capture starts at 15:45:24.4 and lasts 30 s; the tenth resolver's
            // answer comes 5.4 s in.
            assert_eq!(a["ts"], "2021-09-21T15:45:29.831682000Z", "{a}");
        }
    }
}

/// Ordinary traffic with plenty of DNS, NTP and SSDP (answered, or announced to a
/// group) raises no `udp_reflection`.
#[test]
fn ordinary_udp_services_raise_no_reflection_alert() {
    let Some(root) = corpus() else { return };
    let dir = root.join("nfstream/tests/pcaps");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("{} missing", dir.display())
    };
    let mut judged = 0;
    for e in entries.flatten() {
        let path = e.path();
        let tmp = tempfile::tempdir().expect("tmp");
        let o = analyze(tmp.path(), &["-r", &path.display().to_string()]);
        if !o.status.success() {
            continue; // damaged captures are tested elsewhere
        }
        judged += 1;
        for a in alerts(tmp.path()) {
            assert_ne!(a["kind"], "udp_reflection", "{}: {a}", path.display());
        }
    }
    assert!(judged >= 10, "{judged} captures judged");
}

/// A synthetic fragment flood under a small reassembly budget: one `frag_flood` alert
/// per destination and bucket, not one per evicted datagram.
#[test]
fn fragment_flood_raises_one_alert_per_destination_and_bucket() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("flood.pcap");
    let o = flowtide()
        .args(["synth", "--scenario", "frag-flood", "--packets", "20000"])
        .args(["--seed", "3", "--out"])
        .arg(&cap)
        .output()
        .expect("synth");
    assert_ok(&o, "synth");
    let out = tmp.path().join("out");
    let o = analyze(
        &out,
        &["-r", &cap.display().to_string(), "--frag-memory", "64KiB"],
    );
    assert_ok(&o, "analyze");
    let s = summary(&out);
    let evictions = s["reassembly"]["events"]["eviction"].as_u64().unwrap_or(0);
    assert!(evictions > 1000, "{evictions} evictions");
    let got = alerts(&out);
    let floods: Vec<&serde_json::Value> =
        got.iter().filter(|a| a["kind"] == "frag_flood").collect();
    assert!(!floods.is_empty());
    assert!(floods.len() < 100, "{} flood alerts", floods.len());
    let total: f64 = floods.iter().filter_map(|a| a["score"].as_f64()).sum();
    assert!(total > 1000.0, "{total}");
}
