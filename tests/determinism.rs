//! The determinism bar: the same input and settings give the same set of output records
//! whatever the worker count, process count, tick or replay speed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn run(out: &Path, inputs: &[PathBuf], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    for i in inputs {
        args.push("-r".into());
        args.push(i.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = analyze(out, &args);
    assert_ok(&o, &format!("analyze {extra:?}"));
    outputs(out)
}

/// Flows, then reassembly events, then windows, then alerts: all must be independent
/// of the configuration.
fn outputs(dir: &Path) -> Vec<String> {
    let mut lines = flow_lines(dir);
    lines.extend(jsonl_lines(dir, "reassembly"));
    lines.extend(jsonl_lines(dir, "windows"));
    lines.extend(jsonl_lines(dir, "alerts"));
    lines
}

/// The lines of every `windows*.jsonl` in `dir` (sorted).
fn window_lines(dir: &Path) -> Vec<String> {
    jsonl_lines(dir, "windows")
}

fn totals(dir: &Path) -> (u64, u64, u64, u64) {
    let s = summary(dir);
    let n = |k: &str| s[k].as_u64().unwrap_or(u64::MAX);
    (
        n("packets_read"),
        n("packets_decoded"),
        n("packets_skipped"),
        n("flows"),
    )
}

/// Every corpus capture on its own: one worker and four workers agree exactly.
#[test]
fn every_corpus_capture_same_flows_with_1_and_4_workers() {
    let Some(root) = corpus() else { return };
    let captures = corpus_captures(&root);
    assert!(
        captures.len() > 150,
        "corpus has {} captures",
        captures.len()
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let mut checked = 0;
    for (i, cap) in captures.iter().enumerate() {
        let a = tmp.path().join(format!("{i}-w1"));
        let b = tmp.path().join(format!("{i}-w4"));
        let one = run(&a, std::slice::from_ref(cap), &["-w", "1"]);
        let four = run(&b, std::slice::from_ref(cap), &["-w", "4"]);
        assert_eq!(
            one,
            four,
            "flows differ between -w 1 and -w 4 on {}",
            cap.display()
        );
        assert_eq!(
            totals(&a),
            totals(&b),
            "summary totals differ on {}",
            cap.display()
        );
        checked += 1;
    }
    eprintln!("{checked} captures: identical flows with -w 1 and -w 4");
}

/// All corpus captures as simultaneous feeds (merged by event time): 1 worker, 2
/// workers, and 2 processes x 2 workers, with the feeds split between the processes.
#[test]
fn all_corpus_feeds_at_once_single_and_cluster() {
    let Some(root) = corpus() else { return };
    let captures = corpus_captures(&root);
    let tmp = tempfile::tempdir().expect("tmp");
    let w1 = run(&tmp.path().join("w1"), &captures, &["-w", "1"]);
    let w2 = run(&tmp.path().join("w2"), &captures, &["-w", "2"]);
    assert!(w1.len() > 1000, "expected many flows, got {}", w1.len());
    assert!(!window_lines(&tmp.path().join("w1")).is_empty());
    assert_eq!(w1, w2, "-w 1 and -w 2 differ on the merged corpus");

    let (first, second) = captures.split_at(captures.len() / 2);
    let to_args = |v: &[PathBuf]| -> Vec<String> {
        v.iter()
            .flat_map(|p| ["-r".to_string(), p.display().to_string()])
            .collect()
    };
    let (a, b) = (to_args(first), to_args(second));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    let cluster = tmp.path().join("cluster");
    analyze_cluster(&cluster, 2, 2, &a, &b);
    assert_eq!(
        w1,
        outputs(&cluster),
        "2 processes x 2 workers differ from -w 1"
    );
    assert_eq!(totals(&tmp.path().join("w1")), totals(&cluster));
}

/// A large synthetic capture: 1, 2, 4 workers, 2x2 processes, coarse and fine ticks and
/// a tight lateness bound all give the same flows.
#[test]
fn synthetic_capture_every_configuration() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("synth.pcap");
    let o = flowtide()
        .args(["synth", "--packets", "300000", "--seed", "7", "--out"])
        .arg(&cap)
        .output()
        .expect("synth");
    assert_ok(&o, "synth");
    let caps = [cap.clone()];
    let base = run(&tmp.path().join("w1"), &caps, &["-w", "1"]);
    assert!(base.len() > 1000, "expected many flows, got {}", base.len());
    let windows = window_lines(&tmp.path().join("w1"));
    assert!(
        windows.len() > 100,
        "expected many windows, got {}",
        windows.len()
    );
    for (name, extra) in [
        ("w2", vec!["-w", "2"]),
        ("w4", vec!["-w", "4"]),
        ("tick1ms", vec!["-w", "2", "--tick", "1ms"]),
        ("tick10s", vec!["-w", "1", "--tick", "10s"]),
    ] {
        let got = run(&tmp.path().join(name), &caps, &extra);
        assert_eq!(base, got, "synthetic flows differ for {name}");
    }
    let cluster = tmp.path().join("cluster");
    let r = ["-r".to_string(), cap.display().to_string()];
    let r: Vec<&str> = r.iter().map(String::as_str).collect();
    analyze_cluster(&cluster, 2, 2, &r, &[]);
    assert_eq!(base, outputs(&cluster), "2 processes x 2 workers differ");
}

/// Paced replay gives the same records as replay at full speed.
#[test]
fn paced_replay_same_flows() {
    let Some(root) = corpus() else { return };
    let cap = root.join("nfstream/tests/pcaps/google_ssl.pcap"); // 6.7 s of capture
    let tmp = tempfile::tempdir().expect("tmp");
    let fast = run(&tmp.path().join("fast"), std::slice::from_ref(&cap), &[]);
    let started = std::time::Instant::now();
    let paced = run(
        &tmp.path().join("paced"),
        std::slice::from_ref(&cap),
        &["--speed", "10"],
    );
    assert_eq!(fast, paced);
    // 6.7 s of capture at 10x takes at least 0.6 s: pacing really happened.
    assert!(started.elapsed() >= std::time::Duration::from_millis(600));
}

/// `--no-reassembly`: fragments are ordinary packets (every decoded packet lands in a
/// flow, none reaches the reassembler), still the same with 1 and 2 workers; and a
/// synthetic fragment flood under a tiny budget is evicted, never reassembled.
#[test]
fn no_reassembly_and_fragment_flood() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("flood.pcap");
    let o = flowtide()
        .args(["synth", "--scenario", "frag-flood", "--packets", "3000"])
        .args(["--seed", "5", "--out"])
        .arg(&cap)
        .output()
        .expect("synth");
    assert_ok(&o, "synth --scenario frag-flood");
    let caps = [cap.clone()];
    let on = tmp.path().join("on");
    run(&on, &caps, &["-w", "1", "--frag-memory", "64KiB"]);
    let s = summary(&on);
    assert_eq!(s["reassembly"]["fragments"], 3000);
    assert_eq!(s["reassembly"]["reassembled"], 0);
    assert!(s["reassembly"]["events"]["eviction"].as_u64().unwrap_or(0) > 100);
    assert!(flow_lines(&on).is_empty());

    let mut inputs = caps.to_vec();
    if let Some(root) = corpus() {
        inputs.push(root.join("pcapplusplus/Tests/ExamplesTest/pcap_examples/ip-frag.pcap"));
    }
    let off1 = run(
        &tmp.path().join("off1"),
        &inputs,
        &["-w", "1", "--no-reassembly"],
    );
    let off2 = run(
        &tmp.path().join("off2"),
        &inputs,
        &["-w", "2", "--no-reassembly"],
    );
    assert_eq!(off1, off2, "--no-reassembly: 1 and 2 workers differ");
    let s = summary(&tmp.path().join("off1"));
    assert_eq!(s["reassembly"]["fragments"], 0);
    assert_eq!(s["settings"]["frag_policy"], "off");
    let in_flows: u64 = flow_lines(&tmp.path().join("off1"))
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("flow line");
            v["bidirectional_packets"].as_u64().unwrap_or(0)
        })
        .sum();
    assert_eq!(Some(in_flows), s["packets_decoded"].as_u64());
}

/// Anomaly alerts (short windows and learning phase, a low threshold, so a 15 s
/// synthetic capture raises some; 2 s windows scored every second, so the hopping
/// windows and, on so short a history, the population prior are exercised) are the
/// same with 1, 2 and 4 workers and with 2 processes x 2 workers.
#[test]
fn synthetic_capture_same_alerts_every_configuration() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cap = tmp.path().join("synth.pcap");
    let o = flowtide()
        .args(["synth", "--packets", "300000", "--seed", "7", "--out"])
        .arg(&cap)
        .output()
        .expect("synth");
    assert_ok(&o, "synth");
    let caps = [cap.clone()];
    let config = tmp.path().join("detect.toml");
    std::fs::write(&config, "[score]\nthreshold = 4\nslide = \"1s\"\n").expect("config");
    let config = config.display().to_string();
    let short = [
        "--window",
        "2s",
        "--learn",
        "2s",
        "--config",
        config.as_str(),
    ];
    let alerts = |name: &str, workers: &str| {
        let dir = tmp.path().join(name);
        run(&dir, &caps, &[&["-w", workers], &short[..]].concat());
        jsonl_lines(&dir, "alerts")
    };
    let base = alerts("w1", "1");
    assert!(base.len() > 10, "expected alerts, got {}", base.len());
    assert!(base.iter().any(|l| l.contains("\"kind\":\"anomaly\"")));
    assert!(base.iter().any(|l| l.contains("judged against all keys")));
    assert_eq!(base, alerts("w2", "2"), "-w 2");
    assert_eq!(base, alerts("w4", "4"), "-w 4");
    let cluster = tmp.path().join("cluster");
    let mut first = vec!["-r".to_string(), cap.display().to_string()];
    first.extend(short.iter().map(|s| s.to_string()));
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    analyze_cluster(&cluster, 2, 2, &first, &short);
    assert_eq!(
        base,
        jsonl_lines(&cluster, "alerts"),
        "2 processes x 2 workers"
    );
}
