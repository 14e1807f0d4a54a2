//! Target-based overlap policies, the byte painter that applies them, and the per
//! destination policy map.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::packet::Addr;

/// How a reassembler resolves bytes claimed by more than one fragment.
///
/// Every policy is defined by one rule, applied byte by byte while fragments are painted
/// in arrival order: the byte keeps the data of the fragment that currently owns it
/// unless the new fragment *beats* the owner, comparing the fragments' original
/// (untrimmed) offsets and ends. See the [module documentation](super) for the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Policy {
    /// The earliest-arriving fragment wins (old Solaris, HP-UX 11, macOS per Snort/Suricata).
    #[serde(rename = "first")]
    First,
    /// The latest-arriving fragment wins (RFC 791 as written; Cisco per Baggett).
    #[serde(rename = "last")]
    Last,
    /// The lowest offset wins; on equal offsets the earlier fragment (FreeBSD, AIX, HP-UX 10).
    #[serde(rename = "bsd")]
    Bsd,
    /// The highest offset wins; on equal offsets the later fragment (HP JetDirect).
    #[serde(rename = "bsd-right")]
    BsdRight,
    /// The lowest offset wins; on equal offsets the later fragment (Linux before 4.19/5.8).
    #[serde(rename = "linux")]
    Linux,
    /// First wins, except that a later fragment that starts strictly before and ends
    /// strictly after an earlier one replaces it (Windows).
    #[serde(rename = "windows")]
    Windows,
    /// First wins, except that a later fragment that starts strictly before and ends at or
    /// after an earlier one replaces it (Solaris).
    #[serde(rename = "solaris")]
    Solaris,
    /// RFC 5722: an overlap with different data discards the whole datagram (modern Linux
    /// for IPv6, and for IPv4 since 4.19); exact duplicates are ignored.
    #[serde(rename = "rfc5722")]
    Rfc5722,
}

impl Policy {
    /// Every policy, in a fixed order.
    pub const ALL: [Policy; 8] = [
        Policy::First,
        Policy::Last,
        Policy::Bsd,
        Policy::BsdRight,
        Policy::Linux,
        Policy::Windows,
        Policy::Solaris,
        Policy::Rfc5722,
    ];

    /// The policy's name as written in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            Policy::First => "first",
            Policy::Last => "last",
            Policy::Bsd => "bsd",
            Policy::BsdRight => "bsd-right",
            Policy::Linux => "linux",
            Policy::Windows => "windows",
            Policy::Solaris => "solaris",
            Policy::Rfc5722 => "rfc5722",
        }
    }

    /// True when a newly arrived fragment `[new_off, new_end)` replaces, on the bytes they
    /// share, the data of the fragment `[own_off, own_end)` that currently owns them.
    /// Offsets and ends are the fragments' original claims.
    #[inline]
    pub fn beats(self, new_off: u32, new_end: u32, own_off: u32, own_end: u32) -> bool {
        match self {
            Policy::First | Policy::Rfc5722 => false,
            Policy::Last => true,
            Policy::Bsd => new_off < own_off,
            Policy::Linux => new_off <= own_off,
            Policy::BsdRight => new_off >= own_off,
            Policy::Windows => new_off < own_off && new_end > own_end,
            Policy::Solaris => new_off < own_off && new_end >= own_end,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown policy name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownPolicy(pub String);

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown reassembly policy {:?} (expected one of first, last, bsd, bsd-right, \
             linux, windows, solaris, rfc5722)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPolicy {}

impl FromStr for Policy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_string()))
    }
}

/// One stored fragment as the painter sees it: its original claim and its data.
#[derive(Clone, Copy, Debug)]
pub struct FragmentView<'a> {
    /// Offset of the first byte in the fragmentable payload.
    pub offset: u32,
    /// The fragment's data (its claim ends at `offset + data.len()`).
    pub data: &'a [u8],
}

impl FragmentView<'_> {
    /// One past the last byte claimed.
    #[inline]
    pub fn end(&self) -> u32 {
        self.offset + self.data.len() as u32
    }
}

/// Paints `fragments` (in arrival order) into a payload of `len` bytes under `policy`;
/// bytes at or past `len` are ignored and bytes no fragment covers stay 0. Returns the
/// payload and, per byte, the index of the fragment that supplied it (`u32::MAX` if none).
///
/// [`Policy::Rfc5722`] paints like [`Policy::First`]: the discard decision is the
/// table's, taken when the differing overlap arrives.
pub fn paint(policy: Policy, fragments: &[FragmentView<'_>], len: usize) -> (Vec<u8>, Vec<u32>) {
    let mut out = vec![0u8; len];
    let mut owner = vec![u32::MAX; len];
    for (i, f) in fragments.iter().enumerate() {
        let (off, end) = (f.offset, f.end());
        let start = (off as usize).min(len);
        let stop = (end as usize).min(len);
        for j in start..stop {
            let o = owner[j];
            let take = o == u32::MAX || {
                let g = &fragments[o as usize];
                policy.beats(off, end, g.offset, g.end())
            };
            if take {
                out[j] = f.data[j - off as usize];
                owner[j] = i as u32;
            }
        }
    }
    (out, owner)
}

/// An IPv4 or IPv6 network in CIDR notation (IPv4 held as IPv4-mapped IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    /// Network address (host bits cleared).
    pub addr: Addr,
    /// Prefix length in the 128-bit space (an IPv4 `/n` is stored as `/96+n`).
    pub prefix: u8,
}

impl Cidr {
    /// True when `a` lies in this network.
    pub fn contains(&self, a: &Addr) -> bool {
        let bits = self.prefix as usize;
        let full = bits / 8;
        if a.0[..full] != self.addr.0[..full] {
            return false;
        }
        let rest = bits % 8;
        if rest == 0 {
            return true;
        }
        let mask = 0xffu8 << (8 - rest);
        a.0[full] & mask == self.addr.0[full] & mask
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: std::net::IpAddr = ip.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let (mut addr, max, base) = match ip {
            std::net::IpAddr::V4(v4) => (Addr::from_v4(v4.octets()), 32u8, 96u8),
            std::net::IpAddr::V6(v6) => (Addr::from_v6(v6.octets()), 128u8, 0u8),
        };
        let len = match len {
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|&l| l <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
            None => max,
        };
        let prefix = base + len;
        for bit in prefix as usize..128 {
            addr.0[bit / 8] &= !(0x80u8 >> (bit % 8));
        }
        Ok(Cidr { addr, prefix })
    }
}

/// Which policy applies to a datagram, chosen by its destination: the longest matching
/// CIDR entry, else the default of the datagram's IP version.
///
/// The defaults are [`Policy::Bsd`] for IPv4 and [`Policy::Rfc5722`] for IPv6. For a
/// monitor the reconstruction should be the one a target most plausibly *accepts*:
/// modern Linux and Windows drop overlapping IPv4 datagrams altogether, so the stacks
/// that still act on overlapping IPv4 data are mainly the BSD family (FreeBSD, macOS),
/// which is also Suricata's default; reconstructing with `bsd` keeps the content visible
/// rather than blind. For IPv6 every mainstream stack implements RFC 5722, so a datagram
/// with conflicting overlaps reaches no modern host and is reported (discard event) rather
/// than reconstructed. Ambiguity events report what the other policies would have seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMap {
    /// Policy for IPv4 destinations matching no entry.
    pub default_v4: Policy,
    /// Policy for IPv6 destinations matching no entry.
    pub default_v6: Policy,
    entries: Vec<(Cidr, Policy)>,
}

impl Default for PolicyMap {
    fn default() -> Self {
        PolicyMap {
            default_v4: Policy::Bsd,
            default_v6: Policy::Rfc5722,
            entries: Vec::new(),
        }
    }
}

impl PolicyMap {
    /// A map with one default for both IP versions and no entries.
    pub fn uniform(policy: Policy) -> Self {
        PolicyMap {
            default_v4: policy,
            default_v6: policy,
            entries: Vec::new(),
        }
    }

    /// Adds (or replaces) the policy of a network.
    pub fn insert(&mut self, net: Cidr, policy: Policy) {
        if let Some(e) = self.entries.iter_mut().find(|(n, _)| *n == net) {
            e.1 = policy;
        } else {
            self.entries.push((net, policy));
        }
    }

    /// The policy for a destination: the longest matching prefix, else the default.
    pub fn lookup(&self, dst: &Addr) -> Policy {
        self.entries
            .iter()
            .filter(|(n, _)| n.contains(dst))
            .max_by_key(|(n, _)| n.prefix)
            .map(|(_, p)| *p)
            .unwrap_or(if dst.as_v4().is_some() {
                self.default_v4
            } else {
                self.default_v6
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.to_string().parse::<Policy>(), Ok(p));
        }
        assert!("bsdright".parse::<Policy>().is_err());
    }

    #[test]
    fn longest_prefix_wins() {
        let mut m = PolicyMap::default();
        m.insert("10.0.0.0/8".parse().expect("cidr"), Policy::Linux);
        m.insert("10.1.0.0/16".parse().expect("cidr"), Policy::Windows);
        m.insert("2001:db8::/32".parse().expect("cidr"), Policy::First);
        m.insert("10.1.2.3".parse().expect("cidr"), Policy::Solaris);
        let v4 = |a, b, c, d| Addr::from_v4([a, b, c, d]);
        assert_eq!(m.lookup(&v4(10, 2, 0, 1)), Policy::Linux);
        assert_eq!(m.lookup(&v4(10, 1, 9, 1)), Policy::Windows);
        assert_eq!(m.lookup(&v4(10, 1, 2, 3)), Policy::Solaris);
        assert_eq!(m.lookup(&v4(192, 0, 2, 1)), Policy::Bsd);
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(m.lookup(&Addr::from_v6(a)), Policy::First);
        a[3] = 0xb9;
        assert_eq!(m.lookup(&Addr::from_v6(a)), Policy::Rfc5722);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("::/129".parse::<Cidr>().is_err());
        assert_eq!(
            "10.1.2.255/24".parse::<Cidr>().expect("cidr"),
            "10.1.2.0/24".parse::<Cidr>().expect("cidr")
        );
    }
}
