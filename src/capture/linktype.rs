//! LINKTYPE_* values (tcpdump.org/linktypes.html) that flowtide decodes.

/// BSD loopback / NULL: 4-byte address family in host byte order.
pub const NULL: u32 = 0;
/// Ethernet (DLT_EN10MB).
pub const ETHERNET: u32 = 1;
/// PPP (RFC 1661 protocol field, optionally with HDLC address/control).
pub const PPP: u32 = 9;
/// PPP in HDLC-like framing (RFC 1662).
pub const PPP_HDLC: u32 = 50;
/// Raw IP (DLT_RAW on most platforms).
pub const RAW: u32 = 101;
/// Raw IP, OpenBSD's DLT_RAW value seen in some files.
pub const RAW_OPENBSD: u32 = 14;
/// Raw IP, DLT_RAW value 12 used by some platforms.
pub const RAW_12: u32 = 12;
/// OpenBSD loopback: 4-byte address family in network byte order.
pub const LOOP: u32 = 108;
/// Linux cooked capture v1.
pub const LINUX_SLL: u32 = 113;
/// Raw IPv4.
pub const IPV4: u32 = 228;
/// Raw IPv6.
pub const IPV6: u32 = 229;
/// Linux cooked capture v2.
pub const LINUX_SLL2: u32 = 276;

/// True when flowtide's decoder handles this link type.
pub fn is_supported(linktype: u32) -> bool {
    matches!(
        linktype,
        NULL | ETHERNET
            | PPP
            | PPP_HDLC
            | RAW
            | RAW_OPENBSD
            | RAW_12
            | LOOP
            | LINUX_SLL
            | IPV4
            | IPV6
            | LINUX_SLL2
    )
}

/// A human-readable name for a link type.
pub fn name(linktype: u32) -> &'static str {
    match linktype {
        NULL => "BSD loopback",
        ETHERNET => "Ethernet",
        PPP => "PPP",
        PPP_HDLC => "PPP in HDLC framing",
        RAW | RAW_OPENBSD | RAW_12 => "raw IP",
        LOOP => "OpenBSD loopback",
        LINUX_SLL => "Linux cooked v1",
        IPV4 => "raw IPv4",
        IPV6 => "raw IPv6",
        LINUX_SLL2 => "Linux cooked v2",
        105 => "IEEE 802.11",
        127 => "IEEE 802.11 radiotap",
        147..=162 => "user-defined",
        _ => "unknown",
    }
}
