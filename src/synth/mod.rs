//! `flowtide synth`: reproducible synthetic captures.
//!
//! [`generate`] writes a classic pcap (Ethernet, nanosecond timestamps) of realistic
//! mixed traffic: many concurrent TCP conversations (handshakes, HTTP/1.1 and TLS 1.3
//! exchanges, FIN/RST teardowns), DNS, QUIC, NTP, ICMP echo and errors, NFS over UDP
//! with IP fragments, some IPv6, 802.1Q/QinQ tags and GRE, VXLAN and GTP-U tunnels.
//! Every header length and checksum is correct. The output depends only on the
//! [`SynthOptions`], so a seed reproduces a capture byte for byte, and memory does not
//! grow with the number of packets.
//!
//! With the default options the packet mix is roughly: TCP 80 %, UDP 18 % (QUIC, DNS,
//! NFS, NTP, traceroute probes), ICMP/ICMPv6 1 %; IPv6 11 %, VLAN-tagged 10 % (a fifth
//! of it QinQ), tunnelled 3 %, IP fragments 1 %. Transfer sizes are heavy-tailed, so
//! the rate over short windows varies by about ±20 % around `rate_pps` while the
//! long-run rate follows it closely. Memory grows with the number of concurrent flows,
//! i.e. with `rate_pps`, never with `packets`.
//!
//! `--scenario frag-flood` writes a fragment flood instead (see [`flood`]);
//! `--scenario office` a labeled office network with injected attacks and its ground
//! truth (see [`scenario`]).
//!
//! Layout: [`rng`] (PRNG and distributions), [`checksum`], [`frames`] (header
//! builders), [`payload`] and [`apps`] (application bytes), [`topology`] (hosts and
//! servers), [`traffic`] (flow models) and [`scheduler`] (the event loop).

pub mod apps;
pub mod checksum;
pub mod flood;
pub mod frames;
pub mod payload;
pub mod rng;
pub mod scenario;
pub mod scheduler;
pub mod topology;
pub mod traffic;

use std::io::{self, BufWriter, Write};

use crate::capture::linktype;
use crate::capture::pcap_writer::PcapWriter;
use flowtide_dataflows::packet::proto;

/// Options of `flowtide synth`.
#[derive(Clone, Debug)]
pub struct SynthOptions {
    /// Total packets to write (exactly this many).
    pub packets: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Timestamp of the first packet, nanoseconds since the Unix epoch (at most
    /// [`scheduler::MAX_START_NS`], the pcap format's limit less 100 days).
    pub start_ns: u64,
    /// Mean event-time packet rate, packets per second.
    pub rate_pps: f64,
    /// Number of internal client hosts.
    pub hosts: u32,
    /// Approximate number of flows; derived from the traffic mix when absent.
    pub flows_hint: Option<u64>,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            packets: 10_000,
            seed: 1,
            start_ns: 1_700_000_000_000_000_000,
            rate_pps: 20_000.0,
            hosts: 200,
            flows_hint: None,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct SynthReport {
    /// Packets written.
    pub packets: u64,
    /// Sum of the frame lengths.
    pub bytes: u64,
    /// Flows (conversations) with at least one packet in the capture.
    pub flows: u64,
    /// Packets that are IP fragments (IPv4 or IPv6 fragment header).
    pub fragments: u64,
    /// Packets whose innermost protocol is TCP.
    pub tcp: u64,
    /// Packets whose innermost protocol is UDP (including fragments of UDP datagrams).
    pub udp: u64,
    /// ICMP and ICMPv6 packets.
    pub icmp: u64,
    /// Packets whose innermost IP packet is IPv6.
    pub ipv6: u64,
    /// Packets with an 802.1Q or 802.1ad tag.
    pub vlan: u64,
    /// Packets carried in a GRE, VXLAN or GTP-U tunnel.
    pub tunnelled: u64,
    /// Timestamp of the first packet.
    pub first_ts_ns: u64,
    /// Timestamp of the last packet.
    pub last_ts_ns: u64,
}

impl SynthReport {
    fn count(&mut self, ts_ns: u64, info: frames::FrameInfo, len: usize) {
        if self.packets == 0 {
            self.first_ts_ns = ts_ns;
        }
        self.last_ts_ns = ts_ns;
        self.packets += 1;
        self.bytes += len as u64;
        match info.proto {
            proto::TCP => self.tcp += 1,
            proto::UDP => self.udp += 1,
            proto::ICMP | proto::ICMPV6 => self.icmp += 1,
            _ => {}
        }
        self.fragments += u64::from(info.fragment);
        self.ipv6 += u64::from(info.ipv6);
        self.vlan += u64::from(info.vlan);
        self.tunnelled += u64::from(info.tunnelled);
    }
}

/// Writes `opts.packets` synthetic packets to `out` as a classic pcap stream
/// (LINKTYPE_ETHERNET, nanosecond timestamps) and reports what was written.
pub fn generate<W: Write>(opts: &SynthOptions, out: W) -> io::Result<SynthReport> {
    let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 20, out), linktype::ETHERNET)?;
    let mut scheduler = scheduler::Scheduler::new(opts);
    let mut fb = frames::FrameBuf::new();
    let mut report = SynthReport::default();
    while report.packets < opts.packets {
        let emitted = scheduler.next(&mut fb);
        writer.write(emitted.ts_ns, fb.bytes())?;
        report.count(emitted.ts_ns, fb.info(), fb.bytes().len());
        report.flows += u64::from(emitted.first_of_flow);
    }
    writer.finish()?.flush()?;
    Ok(report)
}

/// Runs `flowtide synth`: writes the capture and prints its report as JSON on stdout.
pub fn run_cli(args: &crate::cli::SynthArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!("--rate must be a positive number of packets per second");
    }
    let opts = SynthOptions {
        packets: args.packets,
        seed: args.seed,
        start_ns: args.start.saturating_mul(1_000_000_000),
        rate_pps: args.rate,
        hosts: args.hosts.unwrap_or(200).max(1),
        flows_hint: None,
    };
    if args.scenario == crate::cli::Scenario::Office {
        return run_office(args);
    }
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let out = std::io::BufWriter::with_capacity(1 << 20, file);
    let report = match args.scenario {
        crate::cli::Scenario::Mix => generate(&opts, out),
        crate::cli::Scenario::FragFlood | crate::cli::Scenario::Office => {
            flood::generate(&opts, out)
        }
    }
    .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// `flowtide synth --scenario office`: writes the capture and `<stem>.truth.json`, prints
/// the report (with the truth file's path) as JSON on stdout.
fn run_office(args: &crate::cli::SynthArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let opts = scenario::OfficeOptions {
        seed: args.seed,
        day: args.start,
        start_hour: args.start_hour,
        hours: args.hours,
        warmup_ns: args.warmup,
        hosts: args.hosts.unwrap_or(40).clamp(1, 231),
        attacks: !args.no_attacks,
    };
    opts.validate().map_err(anyhow::Error::msg)?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (report, truth) = scenario::generate(&opts, file)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let truth_path = scenario::truth_path(&args.out);
    let text = serde_json::to_string_pretty(&truth)?;
    std::fs::write(&truth_path, text + "\n")
        .with_context(|| format!("cannot write {}", truth_path.display()))?;
    let mut value = serde_json::to_value(&report)?;
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "truth".to_string(),
            serde_json::Value::String(truth_path.display().to_string()),
        );
        obj.insert("attacks".to_string(), truth.attacks.len().into());
    }
    println!("{value}");
    Ok(())
}
