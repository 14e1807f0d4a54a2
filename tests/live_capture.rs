//! Live capture in a pair of network namespaces joined by a veth pair: flowtide captures
//! on one end while the other end sends traffic, then SIGINT/SIGTERM stops it cleanly
//! with every open flow flushed. Needs root and iproute2; skipped otherwise.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Two namespaces with a veth pair, removed on drop.
struct Netns {
    a: String,
    b: String,
}

impl Netns {
    fn create(tag: &str) -> Option<Netns> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let ip = Command::new("ip").arg("-V").output().is_ok();
        if !root || !ip {
            eprintln!("skipping: live capture test needs root and iproute2");
            return None;
        }
        let id = std::process::id() % 100_000;
        let ns = Netns {
            a: format!("ftA{tag}{id}"),
            b: format!("ftB{tag}{id}"),
        };
        let (va, vb) = (format!("fa{tag}{id}"), format!("fb{tag}{id}"));
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.a.clone()],
            vec!["netns".into(), "add".into(), ns.b.clone()],
            vec![
                "link".into(),
                "add".into(),
                va.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                vb.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                va.clone(),
                "netns".into(),
                ns.a.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                vb.clone(),
                "netns".into(),
                ns.b.clone(),
            ],
            vec![
                "-n".into(),
                ns.a.clone(),
                "addr".into(),
                "add".into(),
                "10.200.0.1/24".into(),
                "dev".into(),
                va.clone(),
            ],
            vec![
                "-n".into(),
                ns.b.clone(),
                "addr".into(),
                "add".into(),
                "10.200.0.2/24".into(),
                "dev".into(),
                vb.clone(),
            ],
            vec![
                "-n".into(),
                ns.a.clone(),
                "link".into(),
                "set".into(),
                va.clone(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.b.clone(),
                "link".into(),
                "set".into(),
                vb.clone(),
                "up".into(),
            ],
        ];
        for s in steps {
            let ok = Command::new("ip")
                .args(&s)
                .status()
                .map(|st| st.success())
                .unwrap_or(false);
            if !ok {
                eprintln!("skipping: cannot set up namespaces (ip {})", s.join(" "));
                return None;
            }
        }
        Some(ns)
    }

    fn iface_a(&self) -> String {
        format!("fa{}", &self.a[3..])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.a]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.b]).status();
    }
}

fn live_run(signal: &str, tag: &str) {
    let Some(ns) = Netns::create(tag) else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            env!("CARGO_BIN_EXE_flowtide"),
            "analyze",
            "-q",
            "-i",
            &ns.iface_a(),
        ])
        .arg("--out")
        .arg(&out)
        .args(["--idle-timeout", "600s"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowtide");
    // Give libpcap time to open the interface (the output directory appears first).
    let t0 = Instant::now();
    while !out.join("flows.jsonl").exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    // 20 UDP datagrams 10.200.0.2:40001 -> 10.200.0.1:9999, and their ICMP port-unreachable replies.
    let send = Command::new("ip")
        .args(["netns", "exec", &ns.b, "python3", "-c"])
        .arg(
            "import socket,time\n\
             s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             s.bind(('10.200.0.2',40001))\n\
             for i in range(20):\n    s.sendto(b'flowtide live test',( '10.200.0.1',9999)); time.sleep(0.02)\n",
        )
        .status()
        .expect("send traffic");
    assert!(send.success());
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    let o = child.wait_with_output().expect("wait");
    assert!(
        o.status.success(),
        "flowtide after {signal}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let flows = flow_lines(&out);
    let udp: Vec<&String> = flows
        .iter()
        .filter(|l| l.contains("\"src_ip\":\"10.200.0.2\"") && l.contains("\"dst_port\":9999"))
        .collect();
    assert_eq!(udp.len(), 1, "flows: {flows:#?}");
    let f: serde_json::Value = serde_json::from_str(udp[0]).expect("json");
    assert_eq!(f["src2dst_packets"], 20, "{f}");
    assert_eq!(f["end_reason"], "end_of_input");
    let s = summary(&out);
    assert!(s["packets_read"].as_u64().unwrap_or(0) >= 20, "{s}");
    assert_eq!(s["feeds"][0]["kind"], "live");
}

#[test]
fn live_capture_stops_cleanly_on_sigint() {
    live_run("-INT", "i");
}

#[test]
fn live_capture_stops_cleanly_on_sigterm() {
    live_run("-TERM", "t");
}
