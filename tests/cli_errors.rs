//! Bad input gives one clear sentence and a non-zero exit; damaged captures are
//! processed up to the damage and reported.

mod common;

use std::path::Path;

use common::*;

fn stderr_of(args: &[&str], out: &Path) -> (bool, String) {
    let o = analyze(out, args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn one_sentence(msg: &str) {
    let lines: Vec<&str> = msg.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {msg}");
    assert!(lines[0].starts_with("flowtide: "), "{msg}");
}

#[test]
fn missing_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, err) = stderr_of(&["-r", "/nonexistent/x.pcap"], tmp.path());
    assert!(!ok);
    one_sentence(&err);
    assert!(
        err.contains("/nonexistent/x.pcap") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn not_a_capture() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = tmp.path().join("notes.txt");
    std::fs::write(&p, "this is not a capture, just some text\n").expect("write");
    let (ok, err) = stderr_of(&["-r", p.to_str().expect("utf8")], tmp.path());
    assert!(!ok);
    one_sentence(&err);
    assert!(
        err.contains("is not a pcap or pcapng capture file"),
        "{err}"
    );
}

#[test]
fn empty_file_is_not_a_capture() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = tmp.path().join("empty.pcap");
    std::fs::write(&p, b"").expect("write");
    let (ok, err) = stderr_of(&["-r", p.to_str().expect("utf8")], tmp.path());
    assert!(!ok);
    one_sentence(&err);
}

#[test]
fn unknown_link_type() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = tmp.path().join("wifi.pcap");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&4u16.to_le_bytes());
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&65535u32.to_le_bytes());
    bytes.extend_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    std::fs::write(&p, bytes).expect("write");
    let (ok, err) = stderr_of(&["-r", p.to_str().expect("utf8")], tmp.path());
    assert!(!ok);
    one_sentence(&err);
    assert!(err.contains("link type 105"), "{err}");
}

#[test]
fn truncated_capture_processed_up_to_the_damage() {
    let Some(root) = corpus() else { return };
    let src = root.join("nfstream/tests/pcaps/google_ssl.pcap");
    let bytes = std::fs::read(&src).expect("read");
    let tmp = tempfile::tempdir().expect("tmp");
    let cut = tmp.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).expect("write"); // cuts the last packet
    let out = tmp.path().join("out");
    let o = analyze(&out, &["-r", cut.to_str().expect("utf8")]);
    assert_ok(&o, "truncated capture");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("damaged at packet 27"), "{err}");
    let s = summary(&out);
    assert_eq!(s["packets_read"], 27);
    assert!(s["feeds"][0]["error"]
        .as_str()
        .unwrap_or("")
        .contains("packet 27"));
    let flows = flow_lines(&out);
    assert_eq!(flows.len(), 1);
    assert!(
        flows[0].contains("\"bidirectional_packets\":27"),
        "{}",
        flows[0]
    );
}

#[test]
fn nonexistent_interface() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, err) = stderr_of(&["-i", "nosuchif0"], tmp.path());
    assert!(!ok);
    one_sentence(&err);
    assert!(err.contains("nosuchif0"), "{err}");
}

#[test]
fn live_capture_without_permission_names_the_capability() {
    // Needs root to drop to an unprivileged user; skipped otherwise.
    let is_root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let runuser = Path::new("/usr/sbin/runuser").exists() || Path::new("/sbin/runuser").exists();
    if !is_root || !runuser {
        eprintln!("skipping: needs root and runuser");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let _ = std::process::Command::new("chmod")
        .args([
            "777",
            out.to_str().expect("utf8"),
            tmp.path().to_str().expect("utf8"),
        ])
        .status();
    let o = std::process::Command::new("runuser")
        .args([
            "-u",
            "nobody",
            "--",
            env!("CARGO_BIN_EXE_flowtide"),
            "analyze",
            "-q",
            "-i",
            "lo",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("runuser");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    one_sentence(&err);
    assert!(err.contains("CAP_NET_RAW"), "{err}");
}

#[test]
fn invalid_filter() {
    let Some(root) = corpus() else { return };
    let src = root.join("nfstream/tests/pcaps/google_ssl.pcap");
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, err) = stderr_of(
        &["-r", src.to_str().expect("utf8"), "-f", "tcp port banana"],
        tmp.path(),
    );
    assert!(!ok);
    one_sentence(&err);
    assert!(err.contains("banana"), "{err}");
}

#[test]
fn nothing_to_read_and_bad_cluster_flags() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, err) = stderr_of(&[], tmp.path());
    assert!(!ok);
    one_sentence(&err);
    let (ok, err) = stderr_of(
        &["-r", "x.pcap", "--processes", "2", "--process", "2"],
        tmp.path(),
    );
    assert!(!ok);
    one_sentence(&err);
    assert!(err.contains("--process 2"), "{err}");
}

#[test]
fn window_not_a_multiple_of_the_slide() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (ok, err) = stderr_of(
        &["-r", "x.pcap", "--window", "90s", "--window-slide", "1m"],
        tmp.path(),
    );
    assert!(!ok);
    one_sentence(&err);
    assert!(
        err.contains("--window (90s) must be a multiple of --window-slide (1m)"),
        "{err}"
    );
}

#[test]
fn filter_selects_packets() {
    let Some(root) = corpus() else { return };
    let src = root.join("ndpi/tests/cfgs/default/pcap/dns_fragmented.pcap");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("o");
    let o = analyze(&out, &["-r", src.to_str().expect("utf8"), "-f", "ip6"]);
    assert_ok(&o, "filtered run");
    let s = summary(&out);
    let read = s["packets_read"].as_u64().expect("read");
    let filtered = s["packets_filtered"].as_u64().expect("filtered");
    assert!(filtered > 0 && filtered < read, "{s}");
    for line in flow_lines(&out) {
        assert!(line.contains("\"ip_version\":6"), "{line}");
    }
}
