//! Flow records verified against Zeek's `conn.log` baselines (zeek/zeek btest, in the
//! shared corpus), connection by connection.
//!
//! flowtide runs with default settings: Zeek also ends a TCP connection on its close
//! (FIN both ways, RST), and every trace here is shorter than any timeout, so one Zeek
//! connection is one flowtide flow. Connections are matched by 5-tuple, orientation-
//! insensitively (Zeek's originator may be flipped, `^` in the history). Per
//! connection, Zeek's `orig_pkts`/`resp_pkts` and `orig_ip_bytes`/`resp_ip_bytes`
//! (IP-layer bytes) must equal flowtide's packets and bytes of the same direction, and
//! the TCP flags flowtide counted must agree with Zeek's history letters (upper case:
//! originator, lower case: responder): SYN ⇔ `S`/`H`, FIN ⇔ `F`, RST ⇔ `R`; `A` ⇒ an
//! ACK was counted, `D` ⇒ payload bytes were counted.
//!
//! Documented difference: Zeek logs a decoded tunnel's carrier (the outer UDP/2152
//! connection of GTP-U, service `gtpv1`) as a connection of its own; flowtide keys
//! flows by the innermost packet (with the tunnel as context) and has no carrier flow.
//! The carrier's packet counts are checked against the flowtide flows of the
//! connections it carries (its `tunnel_parents` children).

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

/// A conn.log baseline and the trace it was produced from (corpus MANIFEST.md, D and
/// A tables).
const CASES: &[(&str, &str)] = &[
    ("core.conn-size-flip/conn.log.ctu", "tcp/ctu-64702-888.pcap"),
    (
        "core.conn-size-flip/conn.log.one-sided",
        "tcp/one-sided-2745.pcap",
    ),
    ("core.history-flip/conn.log", "tcp/missing-syn.pcap"),
    ("core.tcp.missing-syn/conn.log", "tcp/missing-syn.pcap"),
    (
        "core.tcp.flip-without-syn/conn.log",
        "tcp/http-on-irc-port-missing-syn.pcapng",
    ),
    (
        "core.tunnels.gtp.outer_ip_frag/conn.log",
        "tunnels/gtp/gtp1_gn_normal_incl_fragmentation.pcap",
    ),
];

/// `conn_state-RST-behavior/out` lists only `history, conn_state` (no addresses, no
/// counts), one line per trace; MANIFEST.md names the trace of each history.
const RST_CASES: &[(&str, &str)] = &[
    ("tcp/single-rst.pcap", "R"),
    ("tcp/syn-then-rst.pcap", "SR"),
    ("tcp/syn-then-ack-then-rst.pcap", "SaR"),
    ("tcp/syn-then-stuff-then-rst.pcap", "SaFR"),
];

/// The rows of a Zeek TSV log (`#fields` header, or a plain header line as the
/// btest-diff'ed `conn.log.*` files have), as field → value maps.
fn read_zeek_log(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).expect("conn.log");
    let mut fields: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#fields\t") {
            fields = Some(rest.split('\t').map(str::to_string).collect());
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else if fields.is_none() {
            fields = Some(line.split('\t').map(str::to_string).collect());
        } else {
            let names = fields.as_ref().expect("header");
            let values: Vec<&str> = line.split('\t').collect();
            assert_eq!(values.len(), names.len(), "{}: {line}", path.display());
            rows.push(
                names
                    .iter()
                    .cloned()
                    .zip(values.iter().map(|v| v.to_string()))
                    .collect(),
            );
        }
    }
    assert!(!rows.is_empty(), "{}: no connections", path.display());
    rows
}

fn flows(out: &Path, trace: &Path) -> Vec<Value> {
    let o = common::analyze(out, &["-r", trace.to_str().expect("utf-8 path")]);
    common::assert_ok(&o, &format!("flowtide {}", trace.display()));
    std::fs::read_to_string(out.join("flows.jsonl"))
        .expect("flows.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"))
}

fn endpoint(v: &Value, ip: &str, port: &str) -> (IpAddr, u64) {
    (
        v[ip].as_str().expect("ip").parse().expect("an IP address"),
        num(v, port),
    )
}

/// flowtide's counters of one direction (`src2dst` or `dst2src`).
struct Side {
    packets: u64,
    bytes: u64,
    syn: u64,
    ack: u64,
    fin: u64,
    rst: u64,
    payload: u64,
}

fn side(v: &Value, prefix: &str) -> Side {
    let n = |k: &str| num(v, &format!("{prefix}_{k}"));
    Side {
        packets: n("packets"),
        bytes: n("bytes"),
        syn: n("syn_packets"),
        ack: n("ack_packets"),
        fin: n("fin_packets"),
        rst: n("rst_packets"),
        payload: n("payload_bytes"),
    }
}

/// Checks one side's flags against the history letters of that side.
fn check_history(history: &str, orig: bool, s: &Side, what: &str, errors: &mut Vec<String>) {
    let has = |c: char| {
        let c = if orig {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        history.contains(c)
    };
    let who = if orig { "orig" } else { "resp" };
    let mut check = |ok: bool, msg: &str| {
        if !ok {
            errors.push(format!("{what}: {who} {msg} (history {history})"));
        }
    };
    check((s.syn > 0) == (has('S') || has('H')), "SYN count vs S/H");
    check((s.fin > 0) == has('F'), "FIN count vs F");
    check((s.rst > 0) == has('R'), "RST count vs R");
    check(!has('A') || s.ack > 0, "A without a counted ACK");
    check(!has('D') || s.payload > 0, "D without payload bytes");
}

#[test]
fn flows_match_zeek_conn_logs() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let zeek = corpus.join("zeek/testing/btest");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut errors = Vec::new();
    let mut checked = 0;
    for (i, (baseline, trace)) in CASES.iter().enumerate() {
        let conns = read_zeek_log(&zeek.join("Baseline").join(baseline));
        let ft = flows(
            &tmp.path().join(i.to_string()),
            &zeek.join("Traces").join(trace),
        );
        // Each connection's flowtide flow and whether Zeek's originator is its src.
        let mut matched: BTreeMap<String, (usize, bool)> = BTreeMap::new();
        let mut carriers = Vec::new();
        for c in &conns {
            let what = format!("{baseline} {}", c["uid"]);
            if c.get("service").map(String::as_str) == Some("gtpv1") {
                carriers.push(c);
                continue;
            }
            let orig: (IpAddr, u64) = (
                c["id.orig_h"].parse().expect("orig_h"),
                c["id.orig_p"].parse().expect("orig_p"),
            );
            let resp: (IpAddr, u64) = (
                c["id.resp_h"].parse().expect("resp_h"),
                c["id.resp_p"].parse().expect("resp_p"),
            );
            let found: Vec<(usize, bool)> = ft
                .iter()
                .enumerate()
                .filter_map(|(j, f)| {
                    let src = endpoint(f, "src_ip", "src_port");
                    let dst = endpoint(f, "dst_ip", "dst_port");
                    if (src, dst) == (orig, resp) {
                        Some((j, true))
                    } else if (src, dst) == (resp, orig) {
                        Some((j, false))
                    } else {
                        None
                    }
                })
                .collect();
            let [(j, orig_is_src)] = found[..] else {
                errors.push(format!(
                    "{what}: {} flowtide flows for {orig:?} <-> {resp:?}",
                    found.len()
                ));
                continue;
            };
            matched.insert(c["uid"].clone(), (j, orig_is_src));
            let (o, r) = if orig_is_src {
                (side(&ft[j], "src2dst"), side(&ft[j], "dst2src"))
            } else {
                (side(&ft[j], "dst2src"), side(&ft[j], "src2dst"))
            };
            let zeek_counts = ["orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"]
                .map(|k| c[k].parse::<u64>().expect("a count"));
            let ours = [o.packets, o.bytes, r.packets, r.bytes];
            if zeek_counts != ours {
                errors.push(format!(
                    "{what}: Zeek orig pkts/bytes, resp pkts/bytes {zeek_counts:?}, \
                     flowtide {ours:?}"
                ));
            }
            check_history(&c["history"], true, &o, &what, &mut errors);
            check_history(&c["history"], false, &r, &what, &mut errors);
            checked += 1;
        }
        // Documented difference: the tunnel carrier has no flowtide flow; its packets
        // are those of the connections it carries.
        for c in carriers {
            let (mut op, mut rp) = (0, 0);
            for child in conns.iter().filter(|x| {
                x.get("tunnel_parents")
                    .is_some_and(|p| p.split(',').any(|u| u == c["uid"]))
            }) {
                let Some(&(j, orig_is_src)) = matched.get(&child["uid"]) else {
                    continue;
                };
                let (o, r) = if orig_is_src {
                    (side(&ft[j], "src2dst"), side(&ft[j], "dst2src"))
                } else {
                    (side(&ft[j], "dst2src"), side(&ft[j], "src2dst"))
                };
                op += o.packets;
                rp += r.packets;
            }
            let zeek_pkts =
                [&c["orig_pkts"], &c["resp_pkts"]].map(|v| v.parse::<u64>().expect("a count"));
            if zeek_pkts != [op, rp] {
                errors.push(format!(
                    "{baseline} {} (tunnel carrier): Zeek pkts {zeek_pkts:?}, flowtide inner \
                     flows {:?}",
                    c["uid"],
                    [op, rp]
                ));
            }
            checked += 1;
        }
        // Every flowtide flow is one of Zeek's connections.
        if matched.len() != ft.len() {
            errors.push(format!(
                "{baseline}: {} flowtide flows, {} matched Zeek connections",
                ft.len(),
                matched.len()
            ));
        }
        eprintln!(
            "{baseline} ({trace}): {} connections, {} flowtide flows",
            conns.len(),
            ft.len()
        );
    }
    // RST behaviour: no addresses in the baseline; Zeek's originator is flowtide's src
    // (the SYN sender, or the only sender).
    let out = std::fs::read_to_string(
        zeek.join("Baseline/scripts.base.protocols.conn.conn_state-RST-behavior/out"),
    )
    .expect("RST-behavior out");
    for (i, (trace, history)) in RST_CASES.iter().enumerate() {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{history}, "))),
            "{history} not in the RST-behavior baseline"
        );
        let ft = flows(
            &tmp.path().join(format!("rst{i}")),
            &zeek.join("Traces").join(trace),
        );
        if ft.len() != 1 {
            errors.push(format!("{trace}: {} flowtide flows, Zeek 1", ft.len()));
            continue;
        }
        check_history(history, true, &side(&ft[0], "src2dst"), trace, &mut errors);
        check_history(history, false, &side(&ft[0], "dst2src"), trace, &mut errors);
        eprintln!("RST-behavior {trace}: history {history}, flags agree");
        checked += 1;
    }
    assert!(checked > 0);
    assert!(
        errors.is_empty(),
        "{} differences from Zeek:\n{}",
        errors.len(),
        errors.join("\n")
    );
}
