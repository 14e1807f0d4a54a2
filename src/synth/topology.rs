//! The simulated network: internal client hosts, external and internal servers with
//! their names and services, resolvers, NTP and NFS servers, and tunnel endpoints.
//!
//! Client hosts are computed from their index on demand (no per-host memory), so any
//! number of hosts costs nothing; the server table has a fixed size.

use super::frames::{Mac, Vlan};
use super::payload::Pool;
use super::rng::{mix64, Rng, Zipf};

/// Number of servers in the popularity table.
pub const SERVERS: usize = 4096;

/// The operating system of a client host: TCP options, TTL and ephemeral ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// Linux: timestamps, window scale 7, TTL 64.
    Linux,
    /// Windows: no timestamps, window scale 8, TTL 128.
    Windows,
    /// macOS: timestamps, window scale 6, TTL 64.
    MacOs,
}

impl Os {
    /// Initial TTL.
    pub fn ttl(self) -> u8 {
        match self {
            Os::Windows => 128,
            _ => 64,
        }
    }

    /// Whether the TCP stack sends RFC 7323 timestamps.
    pub fn timestamps(self) -> bool {
        self != Os::Windows
    }

    /// TCP window scale shift.
    pub fn wscale(self) -> u8 {
        match self {
            Os::Linux => 7,
            Os::Windows => 8,
            Os::MacOs => 6,
        }
    }

    /// Ephemeral port range.
    pub fn ephemeral(self) -> (u16, u16) {
        match self {
            Os::Linux => (32_768, 60_999),
            _ => (49_152, 65_535),
        }
    }
}

/// One internal client host.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    /// IPv4 address (10.x or 192.168.x).
    pub v4: [u8; 4],
    /// IPv6 address (2001:db8::/32, SLAAC-style interface id).
    pub v6: [u8; 16],
    /// MAC address.
    pub mac: Mac,
    /// Operating system.
    pub os: Os,
    /// VLAN the host's traffic is tagged with on the capture link.
    pub vlan: Vlan,
}

/// The application protocol a server speaks over TCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum App {
    /// TLS 1.3 (HTTPS, IMAPS, ...).
    Tls,
    /// Plain HTTP/1.1.
    Http,
}

/// One server.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// IPv4 address.
    pub v4: [u8; 4],
    /// IPv6 address, for dual-stack servers.
    pub v6: Option<[u8; 16]>,
    /// TCP service port.
    pub port: u16,
    /// Protocol on that port.
    pub app: App,
    /// Base round-trip time from the capture point, nanoseconds.
    pub rtt_ns: u64,
    /// TTL of its packets as seen at the capture point.
    pub ttl: u8,
    /// Also offers QUIC on UDP/443.
    pub quic: bool,
}

/// Service ports by popularity (Zipf over this order) and their protocol.
const SERVICES: [(u16, App); 8] = [
    (443, App::Tls),
    (80, App::Http),
    (8443, App::Tls),
    (993, App::Tls),
    (8080, App::Http),
    (853, App::Tls),
    (995, App::Tls),
    (465, App::Tls),
];

const LABELS: [&str; 24] = [
    "www",
    "api",
    "cdn",
    "static",
    "img",
    "media",
    "login",
    "edge",
    "assets",
    "app",
    "update",
    "telemetry",
    "push",
    "video",
    "store",
    "docs",
    "news",
    "mail",
    "auth",
    "files",
    "s3",
    "ws",
    "metrics",
    "download",
];
const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ra", "ne", "to", "vi", "zu", "be", "qua", "sen", "dor", "fa", "li", "mon",
    "tek", "ar", "co", "nex", "pi", "sol", "ver", "ta", "go",
];
const TLDS: [&str; 10] = [
    "com", "net", "org", "io", "de", "co.uk", "fr", "jp", "example", "cloud",
];

/// The gateway (default router) MAC address all client traffic goes through.
pub const GATEWAY_MAC: Mac = [0x00, 0x1b, 0x54, 0x3a, 0x9c, 0x01];

/// The simulated network, shared by all flows.
#[derive(Debug)]
pub struct World {
    seed: u64,
    hosts: u32,
    servers: Vec<Server>,
    server_zipf: Zipf,
    /// Random bytes for opaque payloads.
    pub pool: Pool,
}

impl World {
    /// Builds the network for `seed` with `hosts` client hosts (at least one).
    pub fn new(seed: u64, hosts: u32) -> World {
        let mut rng = Rng::stream(seed, 0x7090);
        let service_zipf = Zipf::new(SERVICES.len(), 1.6);
        let servers = (0..SERVERS)
            .map(|i| {
                let internal = i % 23 == 7;
                let (port, app) = if i < 8 {
                    SERVICES[if i == 3 { 1 } else { 0 }]
                } else {
                    SERVICES[service_zipf.sample(&mut rng)]
                };
                let v4 = if internal {
                    [10, 0, 1 + (i / 250) as u8, (i % 250) as u8 + 2]
                } else {
                    public_v4(&mut rng)
                };
                let v6 = if rng.chance(0.4) || i < 16 {
                    let mut a = [0u8; 16];
                    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
                    let h = rng.next_u64().to_be_bytes();
                    a[4] = 0x80 | (h[0] & 0x7f);
                    a[5..8].copy_from_slice(&h[1..4]);
                    a[14..16].copy_from_slice(&(1 + (i as u16 % 0x300)).to_be_bytes());
                    Some(a)
                } else {
                    None
                };
                let (rtt_ns, hops) = if internal {
                    (rng.lognormal_in(400_000.0, 0.4, 100_000.0, 3_000_000.0), 1)
                } else {
                    (
                        rng.lognormal_in(28_000_000.0, 0.8, 2_000_000.0, 400_000_000.0),
                        rng.range(6, 22) as u8,
                    )
                };
                let initial = *rng.pick(&[64u8, 64, 64, 128, 255]);
                Server {
                    v4,
                    v6,
                    port,
                    app,
                    rtt_ns: rtt_ns as u64,
                    ttl: initial - hops,
                    quic: port == 443 && !internal && rng.chance(0.5),
                }
            })
            .collect();
        World {
            seed,
            hosts: hosts.max(1),
            servers,
            server_zipf: Zipf::new(SERVERS, 1.05),
            pool: Pool::new(&mut rng),
        }
    }

    /// Number of client hosts.
    pub fn host_count(&self) -> u32 {
        self.hosts
    }

    /// Draws a client host index (mildly skewed: some hosts are busier).
    pub fn pick_host(&self, rng: &mut Rng) -> u32 {
        let u = rng.f64();
        ((u * u * 0.5 + u * 0.5) * self.hosts as f64) as u32 % self.hosts
    }

    /// Client host `i`, derived from the seed and the index.
    pub fn host(&self, i: u32) -> Host {
        let h = mix64(self.seed ^ 0x4057_0000_0000 ^ u64::from(i));
        let os = match h % 10 {
            0..=4 => Os::Windows,
            5..=7 => Os::Linux,
            _ => Os::MacOs,
        };
        let v4 = if i % 5 == 4 {
            let k = i / 5;
            [192, 168, 1 + ((k / 250) % 250) as u8, (k % 250) as u8 + 2]
        } else {
            let k = i - i / 5;
            [
                10,
                1 + ((k / 62_500) % 250) as u8,
                ((k / 250) % 250) as u8,
                (k % 250) as u8 + 2,
            ]
        };
        let oui: [u8; 3] = match (os, h >> 8 & 1) {
            (Os::Windows, 0) => [0xd4, 0x81, 0xd7],
            (Os::Windows, _) => [0x54, 0xee, 0x75],
            (Os::Linux, 0) => [0x0c, 0xc4, 0x7a],
            (Os::Linux, _) => [0x00, 0x50, 0x56],
            (Os::MacOs, 0) => [0x3c, 0x22, 0xfb],
            (Os::MacOs, _) => [0xa4, 0x83, 0xe7],
        };
        let low = (i.wrapping_mul(0x9e37) ^ (h >> 16) as u32).to_be_bytes();
        let mac = [oui[0], oui[1], oui[2], low[1], low[2], low[3]];
        let vlan = if i % 10 == 5 {
            let group = i / 10;
            let id = [10u16, 20, 30, 110][(group % 4) as usize];
            if group % 5 == 3 {
                Vlan::QinQ {
                    service: 100 + (group % 2) as u16 * 100,
                    customer: id,
                }
            } else {
                Vlan::Tag {
                    pcp: if group % 7 == 6 { 5 } else { 0 },
                    id,
                }
            }
        } else {
            Vlan::Untagged
        };
        let subnet = match vlan {
            Vlan::Untagged => 1,
            Vlan::Tag { id, .. } => id,
            Vlan::QinQ { customer, .. } => customer,
        };
        Host {
            v4,
            v6: slaac([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0], subnet, &mac),
            mac,
            os,
            vlan,
        }
    }

    /// Draws a server by popularity; returns its index.
    pub fn pick_server(&self, rng: &mut Rng) -> usize {
        self.server_zipf.sample(rng)
    }

    /// Server `i` (indices wrap around the table).
    pub fn server(&self, i: usize) -> &Server {
        &self.servers[i % self.servers.len()]
    }

    /// The DNS name of server `i` (e.g. `cdn.kalomi.com`).
    pub fn server_name(&self, i: usize) -> String {
        let h = mix64(self.seed ^ 0x6e61_6d65 ^ i as u64);
        let label = LABELS[(h % LABELS.len() as u64) as usize];
        let n = 2 + (h >> 8) % 2;
        let mut word = String::new();
        for k in 0..n {
            word.push_str(SYLLABLES[((h >> (16 + 6 * k)) % SYLLABLES.len() as u64) as usize]);
        }
        let tld = TLDS[((h >> 48) % TLDS.len() as u64) as usize];
        if i % 97 == 13 {
            // A few names live under a CDN-style deeper hierarchy.
            format!("{label}{}.{word}-edge.{tld}", i % 10)
        } else {
            format!("{label}.{word}.{tld}")
        }
    }

    /// The DNS resolver a host uses: its IPv6 and IPv4 addresses, round-trip time and
    /// the TTL of its packets at the capture point (the local one of the host's subnet
    /// or a public one).
    pub fn resolver(&self, host: &Host) -> ([u8; 16], [u8; 4], u64, u8) {
        let h = mix64(
            self.seed
                ^ u64::from_be_bytes([0, 0, 0, 0, host.v4[0], host.v4[1], host.v4[2], host.v4[3]]),
        );
        let mut v6addr = [0u8; 16];
        v6addr[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        match h % 8 {
            0 => {
                v6addr[4..8].copy_from_slice(&[0x80, 0x53, 0, 0]);
                v6addr[15] = 0x88;
                (v6addr, [8, 8, 8, 8], 9_000_000, 119)
            }
            1 => {
                v6addr[4..8].copy_from_slice(&[0x80, 0x53, 0, 1]);
                v6addr[15] = 0x11;
                (v6addr, [1, 1, 1, 1], 6_000_000, 57)
            }
            _ => {
                v6addr[15] = 0x53;
                let v4 = if host.v4[0] == 192 {
                    [192, 168, 1, 1]
                } else {
                    [10, 0, 0, 53]
                };
                (v6addr, v4, 350_000, 64)
            }
        }
    }

    /// An NTP server (address pair) and its round-trip time.
    pub fn ntp_server(&self, rng: &mut Rng) -> ([u8; 16], [u8; 4], u64) {
        let k = rng.below(5) as u8;
        let mut v6 = [0u8; 16];
        v6[..8].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0x80, 0x7b, 0, k]);
        v6[15] = 0x7b;
        if k == 0 {
            (v6, [10, 0, 0, 123], 300_000)
        } else {
            let v4 = [
                [162, 159, 200, 1],
                [216, 239, 35, 0],
                [129, 6, 15, 28],
                [194, 58, 202, 148],
            ][(k - 1) as usize];
            (v6, v4, 10_000_000 + u64::from(k) * 7_000_000)
        }
    }

    /// An NFS server on the LAN.
    pub fn nfs_server(&self, rng: &mut Rng) -> ([u8; 16], [u8; 4]) {
        let k = rng.below(2) as u8;
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[15] = 0x20 + k;
        (v6, [10, 0, 0, 20 + k])
    }

    /// A router on the path to a destination, `hop` hops away (1-based), for ICMP
    /// time-exceeded messages.
    pub fn router(&self, dst: &[u8], hop: u8) -> ([u8; 4], [u8; 16]) {
        let mut key = 0u64;
        for b in dst {
            key = key.rotate_left(8) ^ u64::from(*b);
        }
        let h = mix64(self.seed ^ key ^ (u64::from(hop) << 56));
        let mut v6 = [0u8; 16];
        v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v6[4] = 0xff;
        v6[5] = hop;
        v6[8..16].copy_from_slice(&h.to_be_bytes());
        let v4 = match hop {
            1 => [10, 0, 0, 1],
            2 => [100, 64, (h >> 8) as u8, (h >> 16) as u8 | 1],
            _ => {
                let mut r = Rng::new(h);
                public_v4(&mut r)
            }
        };
        (v4, v6)
    }
}

/// A random public-looking unicast IPv4 address (no private, shared, loopback,
/// link-local, multicast or reserved ranges).
pub fn public_v4(rng: &mut Rng) -> [u8; 4] {
    loop {
        let a = rng.next_u32().to_be_bytes();
        let reserved = matches!(a[0], 0 | 10 | 127 | 224..=255)
            || (a[0] == 100 && (64..128).contains(&a[1]))
            || (a[0] == 169 && a[1] == 254)
            || (a[0] == 172 && (16..32).contains(&a[1]))
            || (a[0] == 192 && a[1] == 168)
            || (a[0] == 192 && a[1] == 0)
            || (a[0] == 198 && (18..20).contains(&a[1]))
            || a[3] == 0
            || a[3] == 255;
        if !reserved {
            return a;
        }
    }
}

/// An IPv6 address in `prefix` (first 6 bytes) + `subnet` with an EUI-64 interface id
/// derived from `mac`.
pub fn slaac(prefix: [u8; 8], subnet: u16, mac: &Mac) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&prefix[..6]);
    a[6..8].copy_from_slice(&subnet.to_be_bytes());
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13..16].copy_from_slice(&mac[3..6]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_deterministic_and_distinct() {
        let w = World::new(1, 1000);
        let a = w.host(17);
        let b = w.host(17);
        assert_eq!(a.v4, b.v4);
        assert_eq!(a.mac, b.mac);
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000 {
            assert!(seen.insert(w.host(i).v4), "duplicate address for host {i}");
        }
        let tagged = (0..1000)
            .filter(|&i| w.host(i).vlan != Vlan::Untagged)
            .count();
        assert_eq!(tagged, 100);
    }

    #[test]
    fn names_look_like_names() {
        let w = World::new(3, 10);
        for i in 0..200 {
            let n = w.server_name(i);
            assert!(n.split('.').all(|l| !l.is_empty() && l.len() < 64), "{n}");
        }
    }
}
