//! Flow records verified against NFStream 6.6.0, flow by flow.
//!
//! Every capture of `nfstream/tests/pcaps/` and every 4th capture (sorted by name) of
//! nDPI's `tests/cfgs/default/pcap/` is run through `scripts/nfstream-flows` (NFStream
//! with `statistical_analysis=True, accounting_mode=1, n_dissections=0`, default 120 s
//! idle / 1800 s active timeouts) and through `flowtide analyze --no-tcp-teardown`
//! (so that, like NFStream, only the timeouts split flows).
//!
//! Flows are grouped by (protocol, unordered endpoint pair) and matched in order of
//! their first packet; directions are compared as lo→hi / hi→lo of the endpoint pair,
//! so an orientation difference is a relabelling, not a mismatch. Per matched flow:
//! - exact: packets, bytes, min/max packet size, the 8 TCP flag counters (each for
//!   both directions and bidirectional), first/last seen (both floor(ns / 1 ms));
//! - within 1e-6 (relative): mean and stddev of packet sizes;
//! - within 1 ms: durations, min/mean/max inter-arrival times. NFStream's timestamps
//!   are whole milliseconds (floor), so each of its gaps is the true gap plus
//!   e = d_i − d_(i−1) with d ∈ (−1, 0] ms, i.e. |e| < 1 ms;
//! - stddev of inter-arrival times: |Δ| < sqrt(m / (m − 1)) ms for m gaps. By the
//!   triangle inequality for the sample stddev, |sd(g + e) − sd(g)| ≤ sd(e) ≤
//!   sqrt(Σe² / (m − 1)) < sqrt(m / (m − 1)) (≤ √2 ms, → 1 ms for long flows); the
//!   bound is reached when d alternates between 0 and −1.
//!
//! Documented design differences, each an explicit rule below (and counted in the
//! per-capture summary):
//! - direction: flowtide's `src` is the TCP initiator when a SYN/SYN-ACK is seen,
//!   NFStream's the first sender. Allowed only for TCP flows with SYN packets.
//! - VLAN: NFStream's `vlan_id` is the innermost tag, flowtide's the outermost (the
//!   second is `inner_vlan_id`).
//! - late packets: NFStream raises a timestamp that goes back in time to the newest so
//!   far; flowtide sorts within `--max-disorder` (1 s). Captures with late packets are
//!   compared with `--max-disorder 0s`, which does what NFStream does.
//! - ICMP: flowtide keys echo request/reply by the echo identifier (its port fields),
//!   NFStream uses ports 0 for all ICMP: ICMP/ICMPv6 ports are ignored; when flowtide
//!   has several flows (echo ids) for a host pair, their packets and bytes are summed
//!   per direction and compared with NFStream's.
//! - IP fragments: flowtide reassembles (a datagram is one packet of its full size),
//!   NFStream drops non-first fragments. Flows with reassembled fragments: packets
//!   and flags compared, not sizes (flowtide's bytes must be ≥ NFStream's) nor times
//!   (a reassembled datagram has its completing fragment's time).
//!   Datagrams flowtide could not reassemble: NFStream counts their first fragment;
//!   such packets are charged to the host pair's events in flowtide's
//!   `reassembly.jsonl`, which they must not exceed.
//! - malformed packets flowtide rejects (`skipped_by_reason` other than `not_ip`):
//!   NFStream's extra packets are charged to that count, which they must not exceed.
//! - tunnels: flowtide decodes Teredo (UDP/3544), VXLAN (UDP/4789) and GRE/PPTP, NFStream
//!   6.6 does not: per tunnel kind, packets of flowtide's flows in such tunnels =
//!   packets of NFStream's flows of the tunnel (UDP port or IP protocol 47). The
//!   same inner packets seen in several tunnels are several flowtide flows (the tunnel
//!   endpoints are part of the key), one NFStream flow: compared in total.
//!
//! A second flowtide run with default settings (FIN/RST teardown) must give, per flow
//! group and direction, the same packet and byte totals (teardown only splits flows).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A Python interpreter with NFStream 6.6.0, or `None` (with the reason printed).
fn nfstream_python() -> Option<PathBuf> {
    let (python, required) = match std::env::var_os("FLOWTIDE_NFSTREAM_PYTHON") {
        Some(p) => (PathBuf::from(p), true),
        None => (PathBuf::from("python3"), false),
    };
    let probe = Command::new(&python)
        .args(["-c", "import nfstream; print(nfstream.__version__)"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {
            let version = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert_eq!(
                version,
                "6.6.0",
                "{} has NFStream {version}",
                python.display()
            );
            Some(python)
        }
        _ if required => panic!(
            "FLOWTIDE_NFSTREAM_PYTHON={} cannot import nfstream",
            python.display()
        ),
        _ => {
            eprintln!(
                "skipping: NFStream not installed (set FLOWTIDE_NFSTREAM_PYTHON to a python \
                 with `pip install nfstream==6.6.0`; scripts/test does)"
            );
            None
        }
    }
}

/// The captures compared: all of NFStream's test pcaps, every 4th of nDPI's (sorted).
fn captures(corpus: &Path) -> Vec<PathBuf> {
    let list = |dir: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("capture dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| common::is_capture(p))
            .collect();
        v.sort();
        v
    };
    let mut out = list(&corpus.join("nfstream/tests/pcaps"));
    let ndpi: Vec<PathBuf> = list(&corpus.join("ndpi/tests/cfgs/default/pcap"))
        .into_iter()
        .step_by(4)
        .collect();
    assert!(ndpi.len() >= 15, "nDPI sample has {} captures", ndpi.len());
    out.extend(ndpi);
    out
}

fn read_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn run_nfstream(python: &Path, capture: &Path) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/nfstream-flows");
    let o = Command::new(python)
        .arg(script)
        .arg(capture)
        .output()
        .expect("run scripts/nfstream-flows");
    common::assert_ok(&o, &format!("nfstream-flows {}", capture.display()));
    read_jsonl(&String::from_utf8(o.stdout).expect("utf-8"))
}

fn run_flowtide(out: &Path, capture: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["-r", capture.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    let o = common::analyze(out, &args);
    common::assert_ok(&o, &format!("flowtide {}", capture.display()));
    read_jsonl(&std::fs::read_to_string(out.join("flows.jsonl")).expect("flows.jsonl"))
}

fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not an integer: {v}"))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} is not a string: {v}"))
}

fn ip(v: &Value, k: &str) -> IpAddr {
    s(v, k).parse().expect("an IP address")
}

fn is_icmp(proto: u8) -> bool {
    proto == 1 || proto == 58
}

type Endpoint = (IpAddr, u16);

/// How NFStream sees a tunnel it does not decode: as a flow of the outer packets.
enum Carrier {
    /// UDP to or from this port.
    Udp(u16),
    /// This IP protocol.
    Ip(u8),
}

/// Tunnels flowtide decodes (its `tunnel` name) and NFStream 6.6 does not, with the
/// group they are compared in.
const UNDECODED: &[(&str, Carrier, &str)] = &[
    ("teredo", Carrier::Udp(3544), "teredo"),
    ("vxlan", Carrier::Udp(4789), "vxlan"),
    ("gre", Carrier::Ip(47), "gre/pptp"),
    ("pptp", Carrier::Ip(47), "gre/pptp"),
];

/// What flows are grouped by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    /// Protocol and the endpoint pair, lower endpoint first (ICMP: ports 0).
    Tuple(u8, Endpoint, Endpoint),
    /// Rule "undecoded tunnels": flowtide's flows inside a tunnel NFStream 6.6 does not
    /// decode / NFStream's flows of the tunnel itself.
    Undecoded(&'static str),
}

/// One flow of either tool, with its directions named relative to the group's
/// endpoint order.
struct Flow<'a> {
    v: &'a Value,
    key: GroupKey,
    /// The flow's `src` is the group's lower endpoint.
    src_is_lo: bool,
    src: Endpoint,
}

impl<'a> Flow<'a> {
    fn new(v: &'a Value, flowtide: bool) -> Self {
        let proto = u(v, "protocol") as u8;
        let src = (ip(v, "src_ip"), u(v, "src_port") as u16);
        let dst = (ip(v, "dst_ip"), u(v, "dst_port") as u16);
        let (a, b) = if is_icmp(proto) {
            ((src.0, 0), (dst.0, 0))
        } else {
            (src, dst)
        };
        let undecoded = UNDECODED.iter().find(|(kind, carrier, _)| {
            if flowtide {
                s(v, "tunnel") == *kind
            } else {
                match carrier {
                    Carrier::Udp(port) => proto == 17 && (src.1 == *port || dst.1 == *port),
                    Carrier::Ip(p) => proto == *p,
                }
            }
        });
        let key = match undecoded {
            Some((_, _, group)) => GroupKey::Undecoded(group),
            None => GroupKey::Tuple(proto, a.min(b), a.max(b)),
        };
        Flow {
            v,
            key,
            src_is_lo: a <= b,
            src,
        }
    }

    /// The JSON field prefix of a direction: 0 = bidirectional, 1 = lo→hi, 2 = hi→lo.
    fn prefix(&self, dir: usize) -> &'static str {
        match (dir, self.src_is_lo) {
            (0, _) => "bidirectional_",
            (1, true) | (2, false) => "src2dst_",
            _ => "dst2src_",
        }
    }

    fn get(&self, dir: usize, name: &str) -> &Value {
        &self.v[format!("{}{name}", self.prefix(dir))]
    }

    fn u(&self, dir: usize, name: &str) -> u64 {
        self.get(dir, name).as_u64().expect("an integer")
    }

    fn f(&self, dir: usize, name: &str) -> f64 {
        self.get(dir, name).as_f64().expect("a number")
    }

    fn first_ms(&self) -> u64 {
        u(self.v, "bidirectional_first_seen_ms")
    }
}

const DIRS: [&str; 3] = ["bidirectional", "lo2hi", "hi2lo"];
const FLAGS: [&str; 8] = ["syn", "cwr", "ece", "urg", "ack", "psh", "rst", "fin"];

/// Per-capture counts for the summary line.
#[derive(Default)]
struct Tally {
    compared: usize,
    exact: usize,
    reoriented: usize,
    late_rerun: bool,
    /// Largest |NFStream − flowtide| of durations and min/mean/max inter-arrival times
    /// (ms), and of the inter-arrival stddev (ms), over the compared flows.
    max_dt: f64,
    max_dsd: f64,
    excluded: BTreeMap<&'static str, usize>,
    mismatches: Vec<String>,
}

impl Tally {
    fn exclude(&mut self, rule: &'static str, n: usize) {
        *self.excluded.entry(rule).or_default() += n;
    }
}

/// Packets and bytes per direction (lo→hi, hi→lo) summed over flows.
fn totals(flows: &[&Flow]) -> [u64; 4] {
    let mut t = [0; 4];
    for fl in flows {
        t[0] += fl.u(1, "packets");
        t[1] += fl.u(2, "packets");
        t[2] += fl.u(1, "bytes");
        t[3] += fl.u(2, "bytes");
    }
    t
}

/// Compares one NFStream flow with its flowtide flow; returns the differences.
/// `fragmented`: flowtide reassembled fragments of this flow: bytes and sizes are not
/// compared (only flowtide ≥ NFStream), nor times (a reassembled datagram has the
/// time of its completing fragment, NFStream's packet the first fragment's).
fn compare(nf: &Flow, ft: &Flow, fragmented: bool) -> Vec<String> {
    let sizes = !fragmented;
    let mut diffs = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            diffs.push(what);
        }
    };
    let proto = u(nf.v, "protocol") as u8;
    {
        check(
            ft.src_is_lo == nf.src_is_lo
                || (proto == 6 && u(ft.v, "bidirectional_syn_packets") > 0),
            format!(
                "orientation: NFStream src {:?}, flowtide src {:?} without a TCP SYN",
                nf.src, ft.src
            ),
        );
    }
    // Rule "vlan": NFStream's vlan_id is the innermost 802.1Q tag, flowtide's the
    // outermost (with the second in inner_vlan_id).
    let ft_vlan = match u(ft.v, "inner_vlan_id") {
        0 => u(ft.v, "vlan_id"),
        inner => inner,
    };
    check(
        u(nf.v, "vlan_id") == ft_vlan,
        format!("vlan_id {} vs {ft_vlan}", nf.v["vlan_id"]),
    );
    for (d, dn) in DIRS.iter().enumerate() {
        let mut exact: Vec<String> = FLAGS.iter().map(|fl| format!("{fl}_packets")).collect();
        exact.push("packets".into());
        if sizes {
            exact.extend(
                ["bytes", "min_ps", "max_ps", "first_seen_ms", "last_seen_ms"].map(String::from),
            );
        } else {
            check(
                ft.u(d, "bytes") >= nf.u(d, "bytes"),
                format!(
                    "{dn} bytes {} (NFStream) > {} (reassembled)",
                    nf.u(d, "bytes"),
                    ft.u(d, "bytes")
                ),
            );
        }
        for name in &exact {
            let (a, b) = (nf.u(d, name), ft.u(d, name));
            check(a == b, format!("{dn}_{name} {a} vs {b}"));
        }
        if sizes {
            for name in ["mean_ps", "stddev_ps"] {
                let (a, b) = (nf.f(d, name), ft.f(d, name));
                check(
                    (a - b).abs() <= 1e-6 * a.abs().max(1.0),
                    format!("{dn}_{name} {a} vs {b}"),
                );
            }
        }
        if fragmented {
            continue;
        }
        for name in ["duration_ms", "min_piat_ms", "mean_piat_ms", "max_piat_ms"] {
            let (a, b) = (nf.f(d, name), ft.f(d, name));
            check(
                (a - b).abs() < 1.0,
                format!("{dn}_{name} {a} vs {b} (> 1 ms)"),
            );
        }
        let gaps = nf.u(d, "packets").saturating_sub(1) as f64;
        let (a, b) = (nf.f(d, "stddev_piat_ms"), ft.f(d, "stddev_piat_ms"));
        let tol = if gaps >= 2.0 {
            (gaps / (gaps - 1.0)).sqrt()
        } else {
            1e-9
        };
        check(
            (a - b).abs() < tol,
            format!("{dn}_stddev_piat_ms {a} vs {b} (tolerance {tol:.3} ms)"),
        );
    }
    diffs
}

/// Per host pair (protocol, lower address, higher address), the number of events of
/// flowtide's `reassembly.jsonl`: fragments it dropped or could not (yet) reassemble.
/// Every datagram flowtide did not make a packet of has at least one event.
fn unreassembled_pairs(out: &Path) -> BTreeMap<(u8, IpAddr, IpAddr), u64> {
    let text = std::fs::read_to_string(out.join("reassembly.jsonl")).unwrap_or_default();
    let mut m = BTreeMap::new();
    for e in read_jsonl(&text) {
        let (a, b) = (ip(&e, "src_ip"), ip(&e, "dst_ip"));
        *m.entry((u(&e, "protocol") as u8, a.min(b), a.max(b)))
            .or_default() += 1;
    }
    m
}

fn group<'a>(flows: &'a [Value], flowtide: bool) -> BTreeMap<GroupKey, Vec<Flow<'a>>> {
    let mut m: BTreeMap<GroupKey, Vec<Flow>> = BTreeMap::new();
    for v in flows {
        let fl = Flow::new(v, flowtide);
        m.entry(fl.key.clone()).or_default().push(fl);
    }
    for g in m.values_mut() {
        g.sort_by_key(|fl| (fl.first_ms(), fl.v.get("first_ns").and_then(Value::as_u64)));
    }
    m
}

fn compare_capture(python: &Path, capture: &Path, tmp: &Path) -> Tally {
    let nf_flows = run_nfstream(python, capture);
    let out_nt = tmp.join("no-teardown");
    let out_def = tmp.join("default");
    let mut ft_flows = run_flowtide(&out_nt, capture, &["--no-tcp-teardown"]);
    let def_flows = run_flowtide(&out_def, capture, &[]);
    let mut unreassembled = unreassembled_pairs(&out_nt);
    let mut t = Tally::default();
    let summary = common::summary(&out_nt);
    let mut malformed_budget: u64 = summary["skipped_by_reason"]
        .as_object()
        .expect("skipped_by_reason")
        .iter()
        .filter(|(reason, _)| *reason != "not_ip")
        .map(|(_, n)| n.as_u64().expect("a count"))
        .sum();
    if u(&summary, "packets_late") > 0 {
        // Rule "late packets": timestamps that go back in time. NFStream handles the
        // packets in file order and raises such a timestamp to the newest seen so far;
        // flowtide sorts packets within --max-disorder (1 s) and raises later ones to
        // the newest minus 1 s. With --max-disorder 0s, flowtide does what NFStream
        // does, so the flow-by-flow comparison uses that run.
        t.late_rerun = true;
        ft_flows = run_flowtide(
            &tmp.join("no-disorder"),
            capture,
            &["--no-tcp-teardown", "--max-disorder", "0s"],
        );
    }

    let nf = group(&nf_flows, false);
    let ft = group(&ft_flows, true);
    let def = group(&def_flows, true);
    let keys: BTreeSet<&GroupKey> = nf.keys().chain(ft.keys()).chain(def.keys()).collect();
    let empty = Vec::new();
    for key in keys {
        let a = nf.get(key).unwrap_or(&empty);
        let b = ft.get(key).unwrap_or(&empty);
        let c = def.get(key).unwrap_or(&empty);
        let (ra, rb, rc): (Vec<&Flow>, Vec<&Flow>, Vec<&Flow>) =
            (a.iter().collect(), b.iter().collect(), c.iter().collect());
        // Teardown only splits: the default run has the no-teardown run's totals.
        if totals(&rb) != totals(&rc) || rc.len() < rb.len() {
            t.mismatches.push(format!(
                "{key:?}: default run {} flows {:?} vs --no-tcp-teardown {} flows {:?}",
                rc.len(),
                totals(&rc),
                rb.len(),
                totals(&rb)
            ));
        }
        if let GroupKey::Undecoded(kind) = key {
            // Rule "undecoded tunnels": flowtide keys the inner flows, NFStream has the
            // tunnel's outer flows: compare the packet totals.
            let (pa, pb) = (totals(&ra), totals(&rb));
            if pa[0] + pa[1] != pb[0] + pb[1] {
                t.mismatches.push(format!(
                    "{kind}: NFStream tunnel packets {} vs flowtide inner packets {}",
                    pa[0] + pa[1],
                    pb[0] + pb[1]
                ));
            }
            t.exclude("undecoded tunnel (packet totals only)", a.len());
            continue;
        }
        let GroupKey::Tuple(proto, lo, hi) = key else {
            unreachable!()
        };
        let fragmented = b.iter().any(|fl| u(fl.v, "bidirectional_fragments") > 0);
        let contexts: BTreeSet<(&str, u64)> = b
            .iter()
            .map(|fl| (s(fl.v, "tunnel"), u(fl.v, "tunnel_outer")))
            .collect();
        if a.len() < b.len() && contexts.len() > 1 && !contexts.contains(&("none", 0)) {
            // Rule "tunnel context": the same inner packets seen in several tunnels
            // (e.g. entering one 6in4 tunnel and leaving another): flowtide keys flows
            // by the innermost packet plus the tunnel (its endpoints), NFStream by the
            // innermost packet only, so it merges them. Compare the totals.
            if totals(&ra) != totals(&rb) {
                t.mismatches.push(format!(
                    "{key:?}: totals NFStream {:?} vs flowtide (several tunnels) {:?}",
                    totals(&ra),
                    totals(&rb)
                ));
            }
            t.exclude("several tunnel contexts (totals only)", a.len());
            continue;
        }
        if a.len() != b.len() && is_icmp(*proto) && !a.is_empty() && !b.is_empty() {
            // Rule "icmp": flowtide splits a host pair's ICMP by echo identifier;
            // compare the per-direction totals.
            if totals(&ra) != totals(&rb) {
                t.mismatches.push(format!(
                    "{key:?}: ICMP totals NFStream {:?} vs flowtide {:?}",
                    totals(&ra),
                    totals(&rb)
                ));
            }
            t.exclude("icmp by echo id (totals only)", a.len());
            continue;
        }
        let mut problems = Vec::new();
        if a.len() != b.len() {
            problems.push(format!(
                "{key:?}: {} NFStream flows {:?} vs {} flowtide flows {:?}",
                a.len(),
                totals(&ra),
                b.len(),
                totals(&rb)
            ));
        } else {
            for (x, y) in a.iter().zip(b) {
                let diffs = compare(x, y, fragmented);
                if !diffs.is_empty() {
                    problems.push(format!(
                        "flow {:?} -> {key:?} at {} ms: {}",
                        x.src,
                        x.first_ms(),
                        diffs.join("; ")
                    ));
                }
            }
        }
        let (pa, pb) = (totals(&ra), totals(&rb));
        let missing = (pa[0] + pa[1]).saturating_sub(pb[0] + pb[1]);
        let events = unreassembled.entry((*proto, lo.0, hi.0)).or_default();
        if !problems.is_empty() && missing > 0 && missing <= *events {
            // Rule "unreassembled fragments": NFStream counts the first fragment of
            // every datagram, also of those flowtide could not reassemble (missing,
            // overlapping or malformed fragments) and so never made packets of. A flow
            // group that differs is compared in total: its missing packets are charged
            // to the host pair's reassembly events in flowtide's reassembly.jsonl
            // (every such datagram has at least one), which they must not exceed.
            *events -= missing;
            t.exclude("unreassembled fragments (packet totals only)", a.len());
            continue;
        }
        if !problems.is_empty() && missing > 0 && missing <= malformed_budget {
            // Rule "malformed": flowtide rejects malformed IP packets (bad version or
            // header length, transport header beyond the capture: `skipped_by_reason`
            // in summary.json) that NFStream counts. A host pair with fewer flowtide
            // packets is compared in total, and the missing packets are charged to the
            // capture's count of rejected packets (which they must not exceed).
            malformed_budget -= missing;
            t.exclude("malformed packets (packet totals only)", a.len());
            continue;
        }
        t.mismatches.extend(problems);
        if a.len() != b.len() {
            continue;
        }
        if !fragmented && totals(&ra) != totals(&rc) {
            t.mismatches.push(format!(
                "{key:?}: default run totals {:?} vs NFStream {:?}",
                totals(&rc),
                totals(&ra)
            ));
        }
        for (x, y) in a.iter().zip(b) {
            if x.src_is_lo != y.src_is_lo {
                t.reoriented += 1;
            }
            if fragmented {
                t.exclude("fragments (sizes, times not compared)", 1);
            } else {
                t.compared += 1;
                if compare(x, y, false).is_empty() {
                    t.exact += 1;
                }
                for d in 0..3 {
                    for name in ["duration_ms", "min_piat_ms", "mean_piat_ms", "max_piat_ms"] {
                        t.max_dt = t.max_dt.max((x.f(d, name) - y.f(d, name)).abs());
                    }
                    let dsd = (x.f(d, "stddev_piat_ms") - y.f(d, "stddev_piat_ms")).abs();
                    t.max_dsd = t.max_dsd.max(dsd);
                }
            }
        }
    }
    t
}

#[test]
fn flows_match_nfstream() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let Some(python) = nfstream_python() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let (mut compared, mut exact, mut max_dt, mut max_dsd) = (0, 0, 0f64, 0f64);
    for (i, capture) in captures(&corpus).iter().enumerate() {
        let dir = tmp.path().join(i.to_string());
        let t = compare_capture(&python, capture, &dir);
        let name = capture.strip_prefix(&corpus).unwrap_or(capture).display();
        eprintln!(
            "{name}: compared {}, exact {}, reoriented by SYN {}{}, excluded by rule {:?}, \
             mismatches {}",
            t.compared,
            t.exact,
            t.reoriented,
            if t.late_rerun {
                ", late packets: compared with --max-disorder 0s"
            } else {
                ""
            },
            t.excluded,
            t.mismatches.len()
        );
        compared += t.compared;
        exact += t.exact;
        max_dt = max_dt.max(t.max_dt);
        max_dsd = max_dsd.max(t.max_dsd);
        failures.extend(t.mismatches.into_iter().map(|m| format!("{name}: {m}")));
    }
    eprintln!(
        "total: {compared} flows compared, {exact} exact; largest time differences: \
         {max_dt:.3} ms (durations, min/mean/max piat), {max_dsd:.3} ms (piat stddev)"
    );
    assert!(compared > 0);
    assert!(
        failures.is_empty(),
        "{} differences from NFStream:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
