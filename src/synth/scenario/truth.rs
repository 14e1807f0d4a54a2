//! The ground truth of a scenario (`truth.json`).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where the ground truth of the capture `out` goes: the extension replaced by
/// `truth.json` (`office.pcap` → `office.truth.json`).
pub fn truth_path(out: &Path) -> PathBuf {
    out.with_extension("truth.json")
}

/// An IPv4 address as text.
pub fn ip(a: [u8; 4]) -> String {
    Ipv4Addr::from(a).to_string()
}

/// One labeled event: an attack instance, or a benign look-alike (backup, flash crowd).
#[derive(Clone, Debug, Serialize)]
pub struct Instance {
    /// Index in its list.
    pub id: usize,
    /// What it is (`fast_scan`, `syn_flood`, ..., `backup`, `flash_crowd`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Timestamp of its first packet (ns since the Unix epoch; 0 if none was written).
    pub start_ns: u64,
    /// Timestamp of its last packet.
    pub end_ns: u64,
    /// The attacking host (the initiating host of a benign event).
    pub attacker: String,
    /// The attacked host, or `null` when there is none (tunnels, exfiltration, beacons
    /// talk to a server the attacker controls: see `params`).
    pub victim: Option<String>,
    /// Packets written.
    pub packets: u64,
    /// Bytes (frame lengths) written.
    pub bytes: u64,
    /// Kind-specific parameters (rates, ports, jitter, domain, server, ...).
    pub params: serde_json::Value,
}

impl Instance {
    /// Accounts one packet of the instance.
    pub fn count(&mut self, ts: u64, len: usize) {
        if self.packets == 0 {
            self.start_ns = ts;
        }
        self.end_ns = ts;
        self.packets += 1;
        self.bytes += len as u64;
    }
}

/// The office network.
#[derive(Clone, Debug, Serialize)]
pub struct Network {
    /// The office prefix.
    pub subnet: String,
    /// Workstations.
    pub hosts: Vec<String>,
    /// DNS resolver and NTP server (domain controller).
    pub resolver: String,
    /// Intranet web server.
    pub intranet: String,
    /// Mail server.
    pub mail: String,
    /// File server (source of the nightly backup).
    pub fileserver: String,
    /// Off-site backup server.
    pub backup_server: String,
}

/// Contents of `truth.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    /// Scenario name (`office`).
    pub scenario: String,
    /// Format version.
    pub version: u32,
    /// Seed.
    pub seed: u64,
    /// Start of the capture (ns).
    pub start_ns: u64,
    /// End of the capture (ns, exclusive).
    pub end_ns: u64,
    /// End of the benign warm-up (no attack before it).
    pub warmup_end_ns: u64,
    /// Number of internal hosts (workstations and servers), for per-host rates.
    pub internal_hosts: usize,
    /// Addresses.
    pub network: Network,
    /// Injected attacks.
    pub attacks: Vec<Instance>,
    /// Benign look-alikes (not attacks: alerts on them are false positives).
    pub benign: Vec<Instance>,
}
