//! Helpers shared by the integration tests: the corpus, running the binary, reading
//! outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared test corpus (`../shared/corpus` beside the checkout), if present.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.join("MANIFEST.md").exists() {
        Some(p)
    } else {
        eprintln!("skipping: corpus not found at {}", p.display());
        None
    }
}

/// Every pcap/pcapng capture in the corpus (by content, not by name: some `.pcap`
/// files upstream are CSV), sorted.
pub fn corpus_captures(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if is_capture(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// True when the file starts with a pcap or pcapng magic number.
pub fn is_capture(p: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let ok = std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok();
    ok && matches!(
        u32::from_le_bytes(magic),
        0xa1b2_c3d4
            | 0xd4c3_b2a1
            | 0xa1b2_3c4d
            | 0x4d3c_b2a1
            | 0x0a0d_0d0a
            | 0xa1b2_cd34
            | 0x34cd_b2a1
    )
}

/// The flowtide binary built for these tests.
pub fn flowtide() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowtide"))
}

/// Runs `flowtide analyze -q --out OUT ARGS...` and returns its output.
pub fn analyze(out: &Path, args: &[&str]) -> Output {
    let mut cmd = flowtide();
    cmd.arg("analyze")
        .arg("-q")
        .arg("--out")
        .arg(out)
        .args(args);
    cmd.output().expect("run flowtide")
}

/// Runs `flowtide defrag -r INPUT -w OUTPUT EXTRA...`, asserts it succeeded and returns
/// its JSON report.
pub fn defrag_report(input: &Path, output: &Path, extra: &[&str]) -> serde_json::Value {
    let o = flowtide()
        .arg("defrag")
        .arg("-r")
        .arg(input)
        .arg("-w")
        .arg(output)
        .args(extra)
        .output()
        .expect("run flowtide");
    assert_ok(&o, &format!("defrag {}", input.display()));
    serde_json::from_slice(&o.stdout).expect("defrag report is JSON")
}

/// Asserts a run succeeded, showing its stderr otherwise.
pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// All lines of every `flows*.jsonl` file in `dir`, sorted: the set of flow records.
pub fn flow_lines(dir: &Path) -> Vec<String> {
    jsonl_lines(dir, "flows")
}

/// All lines of every `STEM*.jsonl` in `dir`, sorted.
pub fn jsonl_lines(dir: &Path, stem: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("out dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(stem) && n.ends_with(".jsonl")
        })
        .collect();
    names.sort();
    for n in names {
        let text = std::fs::read_to_string(&n).expect("read jsonl");
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

/// The parsed `summary.json` in `dir`.
pub fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json parses")
}

/// A free TCP port base for a cluster of `n` processes on loopback.
pub fn free_port_base(n: u16) -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = listener.local_addr().expect("addr").port();
        drop(listener);
        if base < 65_000 - n
            && (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok())
        {
            return base;
        }
    }
}

/// Runs a cluster of `processes` local processes with `workers` threads each, all
/// given the same extra arguments for process 0 and `others` for the rest; returns
/// when every process has finished.
pub fn analyze_cluster(out: &Path, processes: u16, workers: u16, first: &[&str], others: &[&str]) {
    let base = free_port_base(processes);
    let hostfile = out.join("hosts.txt");
    std::fs::create_dir_all(out).expect("out dir");
    let hosts: String = (0..processes)
        .map(|i| format!("127.0.0.1:{}\n", base + i))
        .collect();
    std::fs::write(&hostfile, hosts).expect("hostfile");
    let children: Vec<_> = (0..processes)
        .map(|p| {
            let mut cmd = flowtide();
            cmd.arg("analyze")
                .arg("-q")
                .arg("--out")
                .arg(out)
                .args(["-w", &workers.to_string()])
                .args([
                    "--processes",
                    &processes.to_string(),
                    "--process",
                    &p.to_string(),
                ])
                .arg("--hostfile")
                .arg(&hostfile)
                .args(if p == 0 { first } else { others })
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn cluster process")
        })
        .collect();
    for (p, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().expect("wait");
        assert_ok(&o, &format!("cluster process {p}"));
    }
}
