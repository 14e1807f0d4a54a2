//! The benign office background: the address plan, each host's web sessions (HTTPS to
//! the intranet, the mail server, popular and rare external servers, each usually
//! preceded by a DNS lookup at the local resolver), periodic NTP, the nightly backup
//! upload and a flash crowd.
//!
//! Rates follow the hour of the day ([`HOUR_PROFILE`]): a host starts sessions as a
//! Poisson process whose rate is its own activity level times the profile.

use super::script::{Body, Data, Ends, Script, Tag};
use super::tcp::{https, TcpPlan};
use super::Spawner;
use crate::synth::apps::{dns, ntp};
use crate::synth::rng::{Rng, Zipf};

/// Relative session rate by hour of the day (UTC): night, morning ramp, lunch dip,
/// afternoon, evening.
pub const HOUR_PROFILE: [f64; 24] = [
    0.04, 0.03, 0.03, 0.03, 0.04, 0.06, 0.15, 0.40, 0.80, 1.00, 1.00, 0.95, 0.60, 0.85, 1.00, 0.95,
    0.85, 0.60, 0.35, 0.20, 0.12, 0.08, 0.06, 0.05,
];

/// Mean seconds between session starts of an average host at the busiest hour.
const PEAK_SESSION_GAP_S: f64 = 60.0;

/// The profile at Unix time `ns`.
pub fn hour_factor(ns: u64) -> f64 {
    HOUR_PROFILE[((ns / 3_600_000_000_000) % 24) as usize]
}

/// A server: address, DNS name, round trip time from the office, TTL of its packets.
#[derive(Clone, Debug)]
pub struct Server {
    pub ip: [u8; 4],
    pub name: String,
    pub rtt: u64,
    pub ttl: u8,
}

const POPULAR: [&str; 24] = [
    "www.google.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "www.youtube.com",
    "slack.com",
    "github.com",
    "www.wikipedia.org",
    "update.microsoft.com",
    "www.linkedin.com",
    "zoom.us",
    "docs.google.com",
    "api.dropboxapi.com",
    "www.amazon.com",
    "cdn.jsdelivr.net",
    "fonts.googleapis.com",
    "www.bbc.co.uk",
    "login.microsoftonline.com",
    "s3.amazonaws.com",
    "www.salesforce.com",
    "stackoverflow.com",
    "www.apple.com",
    "accounts.google.com",
    "www.reddit.com",
    "app.hubspot.com",
];

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ter", "van", "sol", "ri", "dex", "no", "pra", "zu", "qua", "bel", "tor",
    "fin", "ga", "mo", "lex", "si", "ra", "ven", "cor", "ta", "phi",
];
const TLDS: [&str; 8] = ["com", "net", "org", "io", "de", "fr", "info", "co"];

/// A plausible random domain name (`www.` + 2-4 syllables + TLD).
pub fn random_name(rng: &mut Rng) -> String {
    let mut s = String::from(if rng.chance(0.5) { "www." } else { "" });
    for _ in 0..rng.range(2, 4) {
        s.push_str(SYLLABLES[rng.below(SYLLABLES.len() as u64) as usize]);
    }
    s.push('.');
    s.push_str(TLDS[rng.below(TLDS.len() as u64) as usize]);
    s
}

/// A random public unicast IPv4 address (no private, loopback, link-local, CGN or
/// multicast ranges).
pub fn public_ip(rng: &mut Rng) -> [u8; 4] {
    loop {
        let a = rng.range(1, 223) as u8;
        if matches!(a, 10 | 100 | 127 | 169 | 172 | 192) {
            continue;
        }
        return [
            a,
            rng.next_u32() as u8,
            rng.next_u32() as u8,
            rng.range(1, 254) as u8,
        ];
    }
}

/// An external server with a random address.
pub fn external_server(rng: &mut Rng, name: String) -> Server {
    let hops = rng.range(8, 20) as u8;
    Server {
        ip: public_ip(rng),
        name,
        rtt: (rng.lognormal_in(25.0, 0.6, 4.0, 200.0) * 1e6) as u64,
        ttl: if rng.chance(0.7) {
            64 - hops
        } else {
            128 - hops
        },
    }
}

/// The office's address plan.
#[derive(Clone, Debug)]
pub struct Net {
    /// First three bytes of the office /24 (10.a.b.0/24).
    pub subnet: [u8; 3],
    /// Workstations.
    pub hosts: Vec<[u8; 4]>,
    /// TTL of each workstation's packets (128: Windows, 64: others).
    pub host_ttl: Vec<u8>,
    /// Relative activity of each workstation.
    pub activity: Vec<f64>,
    /// NTP poll interval of each workstation (ns).
    pub ntp_poll: Vec<u64>,
    /// Domain controller: DNS resolver and NTP server.
    pub resolver: [u8; 4],
    /// Intranet web server (HTTPS).
    pub intranet: Server,
    /// Mail server (IMAPS).
    pub mail: Server,
    /// File server: the source of the nightly backup.
    pub fileserver: [u8; 4],
    /// Popular external servers (Zipf popularity).
    pub popular: Vec<Server>,
    /// The off-site backup server.
    pub backup: Server,
    popularity: Zipf,
}

impl Net {
    /// The address plan of `hosts` workstations for `seed`.
    pub fn new(rng: &mut Rng, hosts: u32) -> Net {
        let subnet = [10, rng.range(1, 250) as u8, rng.range(0, 255) as u8];
        let ip = |last: u8| [subnet[0], subnet[1], subnet[2], last];
        // Servers at .2-.5, workstations anywhere in .20-.250 (at most 231 of them).
        let n = hosts.clamp(1, 231) as usize;
        let mut lasts: Vec<u8> = (20..=250).collect();
        for i in 0..n {
            let j = i + rng.below((lasts.len() - i) as u64) as usize;
            lasts.swap(i, j);
        }
        let mut chosen: Vec<u8> = lasts[..n].to_vec();
        chosen.sort_unstable();
        let hosts: Vec<[u8; 4]> = chosen.iter().map(|&l| ip(l)).collect();
        let host_ttl = hosts
            .iter()
            .map(|_| if rng.chance(0.75) { 128 } else { 64 })
            .collect();
        let activity = hosts
            .iter()
            .map(|_| rng.lognormal_in(1.0, 0.5, 0.2, 4.0))
            .collect();
        let ntp_poll = hosts
            .iter()
            .map(|_| (1u64 << rng.range(6, 10)) * 1_000_000_000)
            .collect();
        let popular = POPULAR
            .iter()
            .map(|n| external_server(rng, (*n).to_string()))
            .collect::<Vec<_>>();
        let local = |last: u8, name: &str| Server {
            ip: ip(last),
            name: name.to_string(),
            rtt: 400_000,
            ttl: 64,
        };
        Net {
            subnet,
            hosts,
            host_ttl,
            activity,
            ntp_poll,
            resolver: ip(2),
            intranet: local(3, "intranet.corp.example"),
            mail: local(4, "mail.corp.example"),
            fileserver: ip(5),
            popularity: Zipf::new(popular.len(), 1.1),
            popular,
            backup: external_server(rng, "vault.backupcloud.example".to_string()),
        }
    }

    /// All internal servers.
    pub fn servers(&self) -> [[u8; 4]; 4] {
        [
            self.resolver,
            self.intranet.ip,
            self.mail.ip,
            self.fileserver,
        ]
    }

    /// Draws a popular server.
    pub fn popular(&self, rng: &mut Rng) -> &Server {
        let i = self.popularity.sample(rng).min(self.popular.len() - 1);
        &self.popular[i]
    }
}

/// An ephemeral client port.
pub fn eph_port(rng: &mut Rng) -> u16 {
    rng.range(49_152, 65_535) as u16
}

/// A DNS lookup of `name` (answer `addr`) from `client` at the resolver, at `t`.
#[allow(clippy::too_many_arguments)]
pub fn dns_lookup(
    rng: &mut Rng,
    net: &Net,
    client: [u8; 4],
    ttl: u8,
    t: u64,
    name: &str,
    addr: [u8; 4],
    tag: Tag,
) -> (Script, u64) {
    let ends = Ends {
        client,
        server: net.resolver,
        cport: eph_port(rng),
        sport: 53,
    };
    let mut s = Script::new(ends, tag, [ttl, 128], [rng.next_u16(), rng.next_u16()]);
    let id = rng.next_u16();
    let mut q = Vec::with_capacity(64);
    dns::query(&mut q, id, name, dns::A, None);
    s.push(
        t,
        true,
        Body::Udp {
            data: Data::Bytes(q),
        },
    );
    // Cached at the resolver, or resolved upstream.
    let delay = if rng.chance(0.6) {
        rng.range(150_000, 900_000)
    } else {
        rng.range(8_000_000, 60_000_000)
    };
    let mut r = Vec::with_capacity(96);
    let answer = dns::Answer::Addresses {
        alias: None,
        addrs: vec![addr.to_vec()],
        ttl: 300,
    };
    dns::response(&mut r, rng, id, name, dns::A, &answer, None);
    s.push(
        t + delay,
        false,
        Body::Udp {
            data: Data::Bytes(r),
        },
    );
    (s.finish(), t + delay)
}

/// One web session of host `h` starting at `t`.
pub fn web_session(rng: &mut Rng, net: &Net, h: usize, t: u64, out: &mut Vec<Script>) {
    let client = net.hosts[h];
    let ttl = net.host_ttl[h];
    let rare;
    let (server, port, lookup_p) = match rng.weighted(&[0.18, 0.10, 0.57, 0.15]) {
        0 => (&net.intranet, 443, 0.15),
        1 => (&net.mail, 993, 0.1),
        2 => (net.popular(rng), 443, 0.45),
        _ => {
            let name = random_name(rng);
            rare = external_server(rng, name);
            (&rare, 443, 1.0)
        }
    };
    let mut t0 = t;
    if rng.chance(lookup_p) {
        let (s, done) = dns_lookup(
            rng,
            net,
            client,
            ttl,
            t,
            &server.name,
            server.ip,
            Tag::Background,
        );
        out.push(s);
        t0 = done + rng.range(100_000, 2_000_000);
    }
    let ends = Ends {
        client,
        server: server.ip,
        cport: eph_port(rng),
        sport: port,
    };
    let n = rng.geometric(2.5).min(12);
    let exchanges: Vec<(u64, u64, u64)> = (0..n)
        .map(|i| {
            let think = if i == 0 {
                0
            } else {
                (rng.exp(4.0) * 1e9) as u64
            };
            let req = rng.lognormal_in(500.0, 0.5, 80.0, 20_000.0) as u64;
            let resp = rng.lognormal_in(3_000.0, 1.4, 100.0, 3_000_000.0) as u64;
            (req, resp, think)
        })
        .collect();
    let bw = if crate::synth::scenario::script::is_internal(server.ip) {
        200e6
    } else {
        rng.lognormal_in(30e6, 0.5, 5e6, 100e6)
    };
    out.push(https(
        rng,
        ends,
        Tag::Background,
        [ttl, server.ttl],
        t0,
        server.rtt,
        bw,
        &server.name,
        &exchanges,
    ));
}

/// Web sessions of one workstation.
pub struct HostSessions {
    pub host: usize,
    pub rng: Rng,
}

impl Spawner for HostSessions {
    fn step(&mut self, now: u64, net: &Net, out: &mut Vec<Script>) -> Option<u64> {
        if self.rng.chance(hour_factor(now)) {
            web_session(&mut self.rng, net, self.host, now, out);
        }
        // Thinning: candidates at the peak rate, accepted with the hour's factor.
        let gap = self.rng.exp(PEAK_SESSION_GAP_S / net.activity[self.host]);
        Some(now + (gap * 1e9) as u64 + 1)
    }
}

/// Periodic NTP polls of one workstation at the domain controller.
pub struct NtpPoller {
    pub host: usize,
    pub rng: Rng,
    pub port: u16,
}

impl Spawner for NtpPoller {
    fn step(&mut self, now: u64, net: &Net, out: &mut Vec<Script>) -> Option<u64> {
        let ends = Ends {
            client: net.hosts[self.host],
            server: net.resolver,
            cport: self.port,
            sport: 123,
        };
        let ttl = net.host_ttl[self.host];
        let mut s = Script::new(
            ends,
            Tag::Background,
            [ttl, 128],
            [self.rng.next_u16(), self.rng.next_u16()],
        );
        let mut q = Vec::with_capacity(48);
        ntp::request(&mut q, now);
        s.push(
            now,
            true,
            Body::Udp {
                data: Data::Bytes(q),
            },
        );
        let rx = now + self.rng.range(150_000, 600_000);
        let mut r = Vec::with_capacity(48);
        ntp::reply(&mut r, now, rx - 100_000, rx - 50_000, [127, 127, 1, 0]);
        s.push(
            rx,
            false,
            Body::Udp {
                data: Data::Bytes(r),
            },
        );
        out.push(s.finish());
        let poll = net.ntp_poll[self.host] as f64;
        Some(now + (poll * (0.98 + 0.04 * self.rng.f64())) as u64)
    }
}

/// The nightly backup: the file server uploads `bytes` to the off-site backup server
/// in one TLS connection, throttled to `bandwidth` bit/s.
pub struct Backup {
    pub rng: Rng,
    pub bytes: u64,
    pub bandwidth: f64,
    pub tag: Tag,
}

impl Spawner for Backup {
    fn step(&mut self, now: u64, net: &Net, out: &mut Vec<Script>) -> Option<u64> {
        let rng = &mut self.rng;
        let ends = Ends {
            client: net.fileserver,
            server: net.backup.ip,
            cport: eph_port(rng),
            sport: 443,
        };
        let (lookup, t0) = dns_lookup(
            rng,
            net,
            net.fileserver,
            64,
            now,
            &net.backup.name,
            net.backup.ip,
            self.tag,
        );
        out.push(lookup);
        let mut p = TcpPlan::open(
            rng,
            ends,
            self.tag,
            [64, net.backup.ttl],
            t0 + 200_000,
            net.backup.rtt,
            self.bandwidth,
        );
        p.tls_handshake(rng, &net.backup.name);
        p.exchange(400, 300);
        p.upload(self.bytes);
        out.push(p.close(true));
        None
    }
}

/// A flash crowd: `hosts` workstations each open one to three HTTPS sessions to
/// `server` within `span` ns (an all-hands video, a software release).
pub struct FlashCrowd {
    pub rng: Rng,
    pub server: Server,
    pub hosts: Vec<usize>,
    pub span: u64,
    pub tag: Tag,
}

impl Spawner for FlashCrowd {
    fn step(&mut self, now: u64, net: &Net, out: &mut Vec<Script>) -> Option<u64> {
        let rng = &mut self.rng;
        for &h in &self.hosts {
            for _ in 0..rng.range(1, 3) {
                let t = now + rng.below(self.span.max(1));
                let client = net.hosts[h];
                let ttl = net.host_ttl[h];
                let (lookup, t0) = dns_lookup(
                    rng,
                    net,
                    client,
                    ttl,
                    t,
                    &self.server.name,
                    self.server.ip,
                    self.tag,
                );
                out.push(lookup);
                let ends = Ends {
                    client,
                    server: self.server.ip,
                    cport: eph_port(rng),
                    sport: 443,
                };
                let resp = rng.lognormal_in(150_000.0, 0.8, 20_000.0, 2_000_000.0) as u64;
                let bw = rng.lognormal_in(20e6, 0.4, 5e6, 60e6);
                out.push(https(
                    rng,
                    ends,
                    self.tag,
                    [ttl, self.server.ttl],
                    t0 + 300_000,
                    self.server.rtt,
                    bw,
                    &self.server.name,
                    &[(600, 4_000, 0), (400, resp, 500_000_000)],
                ));
            }
        }
        None
    }
}
