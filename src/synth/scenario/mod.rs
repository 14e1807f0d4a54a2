//! `flowtide synth --scenario office`: a labeled office network for evaluating the
//! detector.
//!
//! The capture (untagged Ethernet, IPv4, as seen at the office uplink) covers
//! `hours` of event time from `start_hour` o'clock (UTC). Background (`office`): tens
//! of workstations in one 10.a.b.0/24 whose session rate follows the hour of the day;
//! DNS at the local resolver, NTP polls every 64-1024 s, HTTPS to the intranet, the mail
//! server (IMAPS), popular and rare external servers; after the warm-up, a nightly
//! backup upload (tens of MB to a fixed off-site server) and a flash crowd (most hosts to
//! one new server within minutes). Attacks (`attacks`) start after the benign
//! warm-up: the short ones (fast scan, SYN flood, UDP flood, DNS tunnel, fragment
//! overlap, fragment flood) one after another in random order with random gaps, the long
//! ones (slow scan, low-and-slow exfiltration, C2 beacons with 10 % and 40 % jitter) in
//! parallel over most of the remaining time.
//!
//! The ground truth ([`truth::Truth`], written as `truth.json`) lists every attack
//! instance with its type, the timestamps of its first and last packet, attacker,
//! victim, packet and byte counts and parameters. Everything depends only on the
//! options: the seed chooses addresses, rates, timings and the placement of attacks.

mod attacks;
mod office;
mod script;
mod tcp;
pub mod truth;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, BufWriter, Write};

use serde_json::json;

use self::attacks::{Attack, Kind};
use self::office::{external_server, public_ip, random_name, Net};
use self::script::{Script, Tag, POOL_LEN};
use self::truth::{ip, Instance, Network, Truth};
use super::frames::FrameBuf;
use super::rng::Rng;
use super::SynthReport;
use crate::capture::linktype;
use crate::capture::pcap_writer::PcapWriter;

pub use self::office::HOUR_PROFILE;
pub use self::truth::truth_path;

/// Options of the office scenario.
#[derive(Clone, Debug)]
pub struct OfficeOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Any Unix time (s) on the day the capture starts.
    pub day: u64,
    /// Hour of the day (UTC) of the first packet.
    pub start_hour: u8,
    /// Event time covered, in hours.
    pub hours: f64,
    /// Benign time before the first attack (ns).
    pub warmup_ns: u64,
    /// Number of workstations (1-231).
    pub hosts: u32,
    /// Inject the attacks.
    pub attacks: bool,
}

impl Default for OfficeOptions {
    fn default() -> Self {
        OfficeOptions {
            seed: 1,
            day: 1_700_000_000,
            start_hour: 3,
            hours: 6.0,
            warmup_ns: 90 * 60 * 1_000_000_000,
            hosts: 40,
            attacks: true,
        }
    }
}

const MIN: u64 = 60_000_000_000;
const SEC: u64 = 1_000_000_000;

/// Post-warm-up time the attacks need.
const MIN_ATTACK_TIME: u64 = 20 * MIN;

impl OfficeOptions {
    /// Timestamp of the first packet (ns).
    pub fn start_ns(&self) -> u64 {
        (self.day / 86_400 * 86_400 + u64::from(self.start_hour % 24) * 3_600) * SEC
    }

    /// End of the capture (ns, exclusive).
    pub fn end_ns(&self) -> u64 {
        self.start_ns() + (self.hours * 3_600.0 * 1e9) as u64
    }

    /// Checks that the options make sense.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.hours.is_finite() && self.hours > 0.0 && self.hours <= 24.0 * 14.0) {
            return Err("--hours must be positive (at most two weeks)".into());
        }
        // The capture's timestamps must fit the pcap format's 32-bit seconds.
        if self.day / 86_400 * 86_400 + 86_400 + (self.hours * 3_600.0) as u64 > u64::from(u32::MAX)
        {
            return Err("--start is too far in the future for pcap timestamps".into());
        }
        let span = self.end_ns() - self.start_ns();
        if self.attacks && span < self.warmup_ns + MIN_ATTACK_TIME {
            return Err(format!(
                "--hours must leave at least {} min after the {} min warm-up for the attacks",
                MIN_ATTACK_TIME / MIN,
                self.warmup_ns / MIN
            ));
        }
        Ok(())
    }
}

/// Something that starts conversations over time.
trait Spawner {
    /// Called at `now`: appends the conversations starting now (or later) to `out`,
    /// returns when to be called next.
    fn step(&mut self, now: u64, net: &Net, out: &mut Vec<Script>) -> Option<u64>;
}

enum Actor {
    Script(Box<Script>),
    Spawner(Box<dyn Spawner>),
}

struct Entry {
    ts: u64,
    seq: u64,
    actor: Actor,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.seq) == (other.ts, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.ts, other.seq).cmp(&(self.ts, self.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Queue {
    fn push(&mut self, ts: u64, actor: Actor) {
        self.seq += 1;
        self.heap.push(Entry {
            ts,
            seq: self.seq,
            actor,
        });
    }
}

/// Stream ids of the seed's random generators.
const NET_STREAM: u64 = 0x0ff1ce;
const PLAN_STREAM: u64 = 0x91a4;
const POOL_STREAM: u64 = 0x9001;

fn instance(id: usize, kind: &str, attacker: [u8; 4], victim: Option<[u8; 4]>) -> Instance {
    Instance {
        id,
        kind: kind.to_string(),
        start_ns: 0,
        end_ns: 0,
        attacker: ip(attacker),
        victim: victim.map(ip),
        packets: 0,
        bytes: 0,
        params: json!({}),
    }
}

fn ns(t: f64) -> u64 {
    (t * 1e9) as u64
}

/// Uniform value in `[lo, hi)`.
fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.f64()
}

/// Open TCP ports of an internal address.
fn open_ports(net: &Net, a: [u8; 4]) -> Vec<u16> {
    if a == net.resolver {
        vec![53, 88, 135, 389, 445, 636]
    } else if a == net.intranet.ip {
        vec![22, 80, 443]
    } else if a == net.mail.ip {
        vec![22, 25, 143, 443, 587, 993]
    } else if a == net.fileserver {
        vec![22, 139, 445]
    } else {
        vec![135, 139, 445, 3389]
    }
}

/// Plans the attacks: their spawners (with start times) and truth records.
fn plan_attacks(
    opts: &OfficeOptions,
    net: &Net,
    rng: &mut Rng,
) -> (Vec<(u64, Attack)>, Vec<Instance>) {
    let warm = opts.start_ns() + opts.warmup_ns;
    let span = opts.end_ns().saturating_sub(warm);
    // Distinct compromised workstations for the inside-out attacks.
    let mut inside: Vec<usize> = (0..net.hosts.len()).collect();
    for i in 0..inside.len() {
        let j = i + rng.below((inside.len() - i) as u64) as usize;
        inside.swap(i, j);
    }
    let mut next_inside = 0usize;
    let mut take_inside = || {
        let h = inside[next_inside % inside.len()];
        next_inside += 1;
        h
    };
    // Victims: the servers and four workstations (not among the compromised ones),
    // each attacked by at most one external attacker while the pool lasts.
    let mut victims: Vec<[u8; 4]> = net.servers().to_vec();
    for k in 0..4 {
        let h = inside[(inside.len() - 1 - k % inside.len()) % inside.len()];
        if !victims.contains(&net.hosts[h]) {
            victims.push(net.hosts[h]);
        }
    }
    for i in 0..victims.len() {
        let j = i + rng.below((victims.len() - i) as u64) as usize;
        victims.swap(i, j);
    }
    // The SYN flood hits a web server.
    let web = *rng.pick(&[net.intranet.ip, net.mail.ip]);
    victims.retain(|v| *v != web);
    victims.insert(0, web);
    let mut next_victim = 1usize;
    let mut take_victim = |kind: Kind| {
        if kind == Kind::SynFlood {
            return web;
        }
        let v = victims[next_victim % victims.len()];
        next_victim += 1;
        v
    };

    // Durations of the short attacks and random gaps between them.
    let mut short: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| k.is_short()).collect();
    for i in 0..short.len() {
        let j = i + rng.below((short.len() - i) as u64) as usize;
        short.swap(i, j);
    }
    let durations: Vec<u64> = short
        .iter()
        .map(|k| match k {
            Kind::FastScan => 60 * SEC,
            Kind::SynFlood => ns(uniform(rng, 60.0, 90.0)),
            Kind::UdpFlood => ns(uniform(rng, 45.0, 75.0)),
            Kind::DnsTunnel => ns(uniform(rng, 180.0, 300.0)),
            Kind::FragOverlap => ns(uniform(rng, 60.0, 120.0)),
            _ => 60 * SEC,
        })
        .collect();
    let busy: u64 = durations.iter().sum();
    let free = span.saturating_sub(busy + 2 * MIN);
    let weights: Vec<f64> = (0..=short.len()).map(|_| uniform(rng, 0.3, 1.7)).collect();
    let wsum: f64 = weights.iter().sum();
    let mut starts = Vec::new();
    let mut t = warm;
    for (i, d) in durations.iter().enumerate() {
        t += (free as f64 * weights[i] / wsum) as u64;
        starts.push(t);
        t += d;
    }

    let mut spawners = Vec::new();
    let mut truth = Vec::new();
    let mut plan = |kind: Kind, start: u64, dur: u64, rng: &mut Rng| {
        let id = truth.len();
        let mut a = Attack {
            kind,
            tag: Tag::Attack(id as u16),
            attacker: public_ip(rng),
            peer: if kind.is_inside_out() {
                net.resolver
            } else {
                take_victim(kind)
            },
            peer_name: String::new(),
            attacker_ttl: 64 - rng.range(6, 20) as u8,
            peer_ttl: 64,
            peer_rtt: rng.range(200_000, 900_000),
            end: start + dur,
            rng: Rng::stream(opts.seed, 0xa77ac4 + id as u64),
            rate: 1.0,
            jitter: 0.0,
            ports: Vec::new(),
            open: Vec::new(),
            next_port: 0,
            sport: rng.range(30_000, 65_000) as u16,
            domain: String::new(),
            serial: 0,
        };
        let mut victim = Some(a.peer);
        let params;
        match kind {
            Kind::FastScan | Kind::SlowScan => {
                a.open = open_ports(net, a.peer);
                let mut ports: Vec<u16> = (1..=1024).collect();
                for i in 0..ports.len() {
                    let j = i + rng.below((ports.len() - i) as u64) as usize;
                    ports.swap(i, j);
                }
                if kind == Kind::FastScan {
                    a.rate = uniform(rng, 150.0, 400.0);
                    ports.truncate(1000);
                    params = json!({"ports": ports.len(), "probes_per_s": a.rate,
                        "open_ports": a.open, "tcp_flags": "S"});
                } else {
                    a.rate = uniform(rng, 20.0, 40.0);
                    a.jitter = 0.5;
                    a.end = start + dur;
                    let n = ((dur as f64 / 1e9) / a.rate).floor().max(2.0) as usize;
                    ports.truncate(n.min(300));
                    params = json!({"ports": ports.len(), "mean_interval_s": a.rate,
                        "jitter": a.jitter, "open_ports": a.open, "tcp_flags": "S"});
                }
                a.ports = ports;
            }
            Kind::SynFlood => {
                a.rate = uniform(rng, 1_500.0, 3_000.0);
                params = json!({"packets_per_s": a.rate, "dest_port": 443,
                    "synack_fraction": 0.25, "spoofed": false});
            }
            Kind::UdpFlood => {
                a.rate = uniform(rng, 800.0, 1_500.0);
                params = json!({"packets_per_s": a.rate, "dest_ports": "random",
                    "payload_bytes": [64, 512]});
            }
            Kind::DnsTunnel => {
                let h = take_inside();
                a.attacker = net.hosts[h];
                a.attacker_ttl = net.host_ttl[h];
                a.peer = net.resolver;
                a.peer_ttl = 128;
                victim = None;
                let name = random_name(rng);
                a.domain = name.trim_start_matches("www.").to_string();
                a.rate = uniform(rng, 4.0, 12.0);
                params = json!({"domain": a.domain, "resolver": ip(net.resolver),
                    "queries_per_s": a.rate, "qtype": "TXT", "qname_chars": [90, 180]});
            }
            Kind::FragOverlap => {
                a.rate = uniform(rng, 1.0, 3.0);
                a.jitter = 0.7;
                params = json!({"mean_interval_s": a.rate, "fragments_per_datagram": 3,
                    "overlap": "bytes 16-24 sent twice with different data", "proto": "udp"});
            }
            Kind::FragFlood => {
                a.rate = uniform(rng, 600.0, 1_000.0);
                a.serial = rng.next_u32();
                params = json!({"datagrams_per_s": a.rate, "fragments_per_datagram": [1, 2],
                    "complete": false, "proto": "udp"});
            }
            Kind::Exfil | Kind::Beacon10 | Kind::Beacon40 => {
                let h = take_inside();
                a.attacker = net.hosts[h];
                a.attacker_ttl = net.host_ttl[h];
                let name = random_name(rng);
                let server = external_server(rng, name);
                a.peer = server.ip;
                a.peer_ttl = server.ttl;
                a.peer_rtt = server.rtt;
                a.peer_name = server.name.clone();
                victim = None;
                let (interval, jitter) = match kind {
                    Kind::Exfil => (uniform(rng, 180.0, 420.0), 0.5),
                    Kind::Beacon10 => (uniform(rng, 45.0, 90.0), 0.1),
                    _ => (uniform(rng, 60.0, 120.0), 0.4),
                };
                a.rate = interval;
                a.jitter = jitter;
                params = if kind == Kind::Exfil {
                    json!({"server": ip(server.ip), "server_name": server.name,
                        "mean_interval_s": interval, "jitter": jitter,
                        "upload_bytes_per_session": [50_000, 200_000], "dest_port": 443})
                } else {
                    json!({"server": ip(server.ip), "server_name": server.name,
                        "interval_s": interval, "jitter": jitter, "dest_port": 443})
                };
            }
        }
        let mut inst = instance(id, kind.name(), a.attacker, victim);
        inst.params = params;
        truth.push(inst);
        spawners.push((start, a));
    };
    for (i, &kind) in short.iter().enumerate() {
        plan(kind, starts[i], durations[i], rng);
    }
    for kind in [Kind::SlowScan, Kind::Exfil, Kind::Beacon10, Kind::Beacon40] {
        let nominal = match kind {
            Kind::SlowScan => 75 * MIN,
            Kind::Exfil => 90 * MIN,
            _ => 120 * MIN,
        };
        let dur = nominal.min(span * 8 / 10);
        let start = warm + rng.below(span.saturating_sub(dur + MIN).max(1));
        plan(kind, start, dur, rng);
    }
    (spawners, truth)
}

/// Writes the office scenario to `out` as a classic pcap stream (LINKTYPE_ETHERNET,
/// nanosecond timestamps); returns what was written and the ground truth.
pub fn generate<W: Write>(opts: &OfficeOptions, out: W) -> io::Result<(SynthReport, Truth)> {
    opts.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let start = opts.start_ns();
    let end = opts.end_ns();
    let warm = start + opts.warmup_ns;
    let mut rng = Rng::stream(opts.seed, NET_STREAM);
    let net = Net::new(&mut rng, opts.hosts);
    let mut plan_rng = Rng::stream(opts.seed, PLAN_STREAM);
    let mut pool = vec![0u8; POOL_LEN];
    Rng::stream(opts.seed, POOL_STREAM).fill(&mut pool);

    let mut q = Queue::default();
    for h in 0..net.hosts.len() {
        let mut r = Rng::stream(opts.seed, 0x1000 + h as u64);
        let first = start + r.below(60 * SEC);
        q.push(
            first,
            Actor::Spawner(Box::new(office::HostSessions { host: h, rng: r })),
        );
        let mut r = Rng::stream(opts.seed, 0x2000 + h as u64);
        let first = start + r.below(net.ntp_poll[h]);
        let port = if r.chance(0.5) {
            123
        } else {
            office::eph_port(&mut r)
        };
        q.push(
            first,
            Actor::Spawner(Box::new(office::NtpPoller {
                host: h,
                rng: r,
                port,
            })),
        );
    }

    // Benign look-alikes after the warm-up.
    let span = end.saturating_sub(warm);
    let mut benign = Vec::new();
    let backup_at = warm + plan_rng.below((span * 4 / 10).max(1));
    let backup_bytes = plan_rng.range(30_000_000, 50_000_000);
    let backup_bw = uniform(&mut plan_rng, 1.5e6, 3e6);
    let mut b = instance(0, "backup", net.fileserver, None);
    b.params = json!({"server": ip(net.backup.ip), "server_name": net.backup.name,
        "upload_bytes": backup_bytes, "throttle_bps": backup_bw, "dest_port": 443});
    benign.push(b);
    q.push(
        backup_at,
        Actor::Spawner(Box::new(office::Backup {
            rng: Rng::stream(opts.seed, 0xbac0),
            bytes: backup_bytes,
            bandwidth: backup_bw,
            tag: Tag::Benign(0),
        })),
    );
    let crowd_at = warm + plan_rng.below(span.saturating_sub(10 * MIN).max(1));
    let crowd_span = plan_rng.range(3 * MIN, 6 * MIN);
    let server = external_server(&mut plan_rng, "live.allhands-stream.example".to_string());
    let mut crowd: Vec<usize> = (0..net.hosts.len())
        .filter(|_| plan_rng.chance(0.75))
        .collect();
    if crowd.is_empty() {
        crowd.push(0);
    }
    let mut c = instance(1, "flash_crowd", net.hosts[crowd[0]], None);
    c.params = json!({"server": ip(server.ip), "server_name": server.name,
        "hosts": crowd.len(), "span_s": crowd_span / SEC, "dest_port": 443});
    benign.push(c);
    q.push(
        crowd_at,
        Actor::Spawner(Box::new(office::FlashCrowd {
            rng: Rng::stream(opts.seed, 0xc40d),
            server,
            hosts: crowd,
            span: crowd_span,
            tag: Tag::Benign(1),
        })),
    );

    let mut attacks = Vec::new();
    if opts.attacks {
        let (spawners, truth) = plan_attacks(opts, &net, &mut plan_rng);
        for (at, a) in spawners {
            q.push(at, Actor::Spawner(Box::new(a)));
        }
        attacks = truth;
    }

    let mut writer = PcapWriter::new(BufWriter::with_capacity(1 << 20, out), linktype::ETHERNET)?;
    let mut fb = FrameBuf::new();
    let mut report = SynthReport::default();
    let mut spawned = Vec::new();
    while let Some(Entry { ts, actor, .. }) = q.heap.pop() {
        if ts >= end {
            break;
        }
        match actor {
            Actor::Script(mut s) => {
                let Some(at) = s.emit(&pool, &mut fb) else {
                    continue;
                };
                let at = at.max(ts);
                let len = fb.bytes().len();
                writer.write(at, fb.bytes())?;
                report.count(at, fb.info(), len);
                match s.tag {
                    Tag::Background => {}
                    Tag::Attack(i) => {
                        if let Some(inst) = attacks.get_mut(usize::from(i)) {
                            inst.count(at, len);
                        }
                    }
                    Tag::Benign(i) => {
                        if let Some(inst) = benign.get_mut(usize::from(i)) {
                            inst.count(at, len);
                        }
                    }
                }
                if let Some(next) = s.next_ts() {
                    q.push(next.max(ts), Actor::Script(s));
                }
            }
            Actor::Spawner(mut sp) => {
                let next = sp.step(ts, &net, &mut spawned);
                for s in spawned.drain(..) {
                    if let Some(first) = s.next_ts() {
                        report.flows += 1;
                        q.push(first.max(ts), Actor::Script(Box::new(s)));
                    }
                }
                if let Some(next) = next {
                    q.push(next.max(ts), Actor::Spawner(sp));
                }
            }
        }
    }
    writer.finish()?.flush()?;

    let mut internal = net.hosts.clone();
    internal.extend_from_slice(&net.servers());
    let truth = Truth {
        scenario: "office".to_string(),
        version: 1,
        seed: opts.seed,
        start_ns: start,
        end_ns: end,
        warmup_end_ns: warm,
        internal_hosts: internal.len(),
        network: Network {
            subnet: format!("{}.{}.{}.0/24", net.subnet[0], net.subnet[1], net.subnet[2]),
            hosts: net.hosts.iter().map(|&h| ip(h)).collect(),
            resolver: ip(net.resolver),
            intranet: ip(net.intranet.ip),
            mail: ip(net.mail.ip),
            fileserver: ip(net.fileserver),
            backup_server: ip(net.backup.ip),
        },
        attacks,
        benign,
    };
    Ok((report, truth))
}
