//! Decoder cross-check against Wireshark on the real-capture corpus.
//!
//! Every pcap/pcapng under `../shared/corpus` (relative to the crate root) is decoded by
//! flowtide and by `tshark` (run once per file, several files in parallel), and the
//! innermost IP packet of each frame is compared where both decoded one: addresses, IP
//! protocol, IP length, fragment fields, ports (ICMP type/code/echo id) and TCP flags.
//! Documented differences are listed in [`ALLOWED`]. The test skips, with a message, when
//! the corpus or tshark is missing.
//!
//! Besides the comparison, the file asserts per link type and encapsulation what flowtide
//! decodes from specific corpus captures (VLAN, QinQ, PPPoE, MPLS, GRE, VXLAN, GTP-U,
//! Teredo, 6in4, 4in6, 6in6, IP-in-IP, SLL, NULL, PPP, raw IP).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use flowtide::capture::pcap_writer::PcapWriter;
use flowtide::capture::Frame;
use flowtide::decode::{DecodeConfig, Decoder, SkipReason};
use flowtide_dataflows::packet::{flags, Addr, Packet, TunnelKind};

/// The corpus, relative to the crate root.
fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

/// The corpus when present, else `None` after printing why the test is skipped.
fn corpus() -> Option<PathBuf> {
    let dir = corpus_dir();
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: corpus not found at {}", dir.display());
        None
    }
}

/// True when tshark runs, else prints why the test is skipped.
fn have_tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("-v")
        .output()
        .map(|o| o.status.success());
    if ok.unwrap_or(false) {
        true
    } else {
        eprintln!("SKIPPED: tshark is not installed");
        false
    }
}

/// Decoded frames of one capture: the decoder's result and record for each frame.
struct Decoded {
    /// Link type of the capture.
    linktype: u32,
    /// One entry per frame, in file order.
    frames: Vec<(Result<(), SkipReason>, Packet)>,
}

/// Reads and decodes every frame of `path` with the default configuration.
fn decode_file(path: &Path) -> Option<Decoded> {
    decode_file_with(path, DecodeConfig::default())
}

/// Reads and decodes every frame of `path`; `None` when libpcap cannot open it.
fn decode_file_with(path: &Path, config: DecodeConfig) -> Option<Decoded> {
    let mut cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano).ok()?;
    let linktype = cap.get_datalink().0 as u32;
    let decoder = Decoder::new(config);
    let mut frames = Vec::new();
    while let Ok(p) = cap.next_packet() {
        let ts = p.header.ts;
        let frame = Frame {
            ts_ns: (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_usec as u64,
            linktype,
            orig_len: p.header.len,
            data: p.data,
        };
        let mut out = Packet::default();
        let index = frames.len() as u64;
        let result = decoder.decode(&frame, 0, index, &mut out);
        frames.push((result, out));
    }
    Some(Decoded { linktype, frames })
}

/// Every pcap/pcapng file under `dir`, sorted.
fn capture_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng" | "cap")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The tshark fields requested, in column order (occurrence=a: all occurrences, comma
/// separated, in protocol-tree order).
const FIELDS: &[&str] = &[
    "frame.number",
    "frame.protocols",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.len",
    "ip.id",
    "ip.flags.mf",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.plen",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.ident",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "udp.srcport",
    "udp.dstport",
    "sctp.srcport",
    "sctp.dstport",
    "icmp.type",
    "icmp.code",
    "icmp.ident",
    "icmpv6.type",
    "icmpv6.code",
    "icmpv6.echo.identifier",
    "vlan.id",
];

/// Column index of a field.
fn col(name: &str) -> usize {
    FIELDS.iter().position(|f| *f == name).expect("known field")
}

/// One tshark output row: columns of [`FIELDS`], each a list of occurrences.
type Row = Vec<Vec<String>>;

/// Runs tshark on `path`; `None` when tshark cannot read it. One row per frame, in order.
fn run_tshark(path: &Path) -> Option<Vec<Row>> {
    run_tshark_with(path, &[], &[])
}

/// [`run_tshark`] with more fields (columns after [`FIELDS`]) and more arguments.
fn run_tshark_with(path: &Path, extra_fields: &[&str], extra_args: &[&str]) -> Option<Vec<Row>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(path);
    // Fragments are compared one by one, as flowtide decodes them (reassembly is a later
    // stage); with defragmentation off tshark still dissects first fragments.
    cmd.args(["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]);
    cmd.args(["-o", "tcp.desegment_tcp_streams:FALSE"]);
    // flowtide also treats the Linux legacy VXLAN port as VXLAN.
    cmd.args(["-d", "udp.port==8472,vxlan"]);
    cmd.args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=/t",
    ]);
    cmd.args(extra_args);
    for f in FIELDS.iter().chain(extra_fields) {
        cmd.args(["-e", f]);
    }
    let output = cmd.output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let split = |c: &str| -> Vec<String> {
        if c.is_empty() {
            Vec::new()
        } else {
            c.split(',').map(str::to_owned).collect()
        }
    };
    Some(
        text.lines()
            .map(|line| line.split('\t').map(split).collect())
            .collect(),
    )
}

/// Runs tshark once over several captures, concatenated with `mergecap -a` (one tshark
/// start per file would dominate the run time), and splits the rows back per file using
/// libpcap's frame counts. `None` when merging fails or the counts disagree; the caller
/// then runs tshark per file. Only frame.protocols' application layers depend on the
/// merge (tshark's conversation state), never the IP and transport fields compared here.
fn run_tshark_merged(paths: &[&Path], counts: &[usize], tmp: &Path) -> Option<Vec<Vec<Row>>> {
    let merged = tmp.join("merged.pcapng");
    let status = Command::new("mergecap")
        .args(["-a", "-F", "pcapng", "-w"])
        .arg(&merged)
        .args(paths)
        .output()
        .ok()?
        .status;
    if !status.success() {
        return None;
    }
    let mut rows = run_tshark(&merged)?.into_iter();
    if rows.len() != counts.iter().sum::<usize>() {
        return None;
    }
    Some(
        counts
            .iter()
            .map(|&n| rows.by_ref().take(n).collect())
            .collect(),
    )
}

/// What tshark shows for the innermost IP packet of a frame (ICMP error quotes excluded).
#[derive(Default, PartialEq, Eq, Clone)]
struct Expect {
    /// Source and destination.
    src: Option<Addr>,
    /// Destination.
    dst: Option<Addr>,
    /// IP protocol, when tshark's layers determine it.
    protocol: Option<u8>,
    /// IP total length.
    ip_len: Option<u32>,
    /// Fragment fields: (id, offset in bytes, more fragments).
    fragment: Option<(u32, u16, bool)>,
    /// Transport ports (or ICMP type/code, echo id), when tshark decoded the transport.
    ports: Option<(u16, u16)>,
    /// TCP flags byte.
    tcp_flags: Option<u8>,
    /// The first two non-zero VLAN ids before the IP layer.
    vlan: [u16; 2],
    /// The innermost tunnel before the IP layer (`None`: not checked, e.g. ERSPAN, whose
    /// type tshark's layer name does not tell).
    tunnel: Option<TunnelKind>,
    /// tshark's innermost upper-layer protocol name.
    upper: String,
    /// frame.protocols.
    layers: String,
}

impl std::fmt::Debug for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |a: Option<Addr>| a.map_or("?".to_owned(), |a| a.to_string());
        write!(
            f,
            "{} -> {} proto {:?} len {:?} frag {:?} ports {:?} tcpflags {:?} vlan {:?} tunnel {:?} [{}]",
            show(self.src),
            show(self.dst),
            self.protocol,
            self.ip_len,
            self.fragment,
            self.ports,
            self.tcp_flags,
            self.vlan,
            self.tunnel,
            self.layers
        )
    }
}

/// IPv6 extension-header layer names tshark puts between IPv6 and the upper layer.
const V6_EXT_LAYERS: &[&str] = &[
    "ipv6.hopopts",
    "ipv6.routing",
    "ipv6.fraghdr",
    "ipv6.dstopts",
    "ipv6.shim6",
    "ipv6.mipv6",
    "ah",
];

/// IP protocol number of a tshark layer name.
fn layer_protocol(name: &str) -> Option<u8> {
    Some(match name {
        "icmp" => 1,
        "igmp" => 2,
        "ip" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "icmpv6" => 58,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        "udplite" => 136,
        _ => return None,
    })
}

/// Parses a tshark integer (decimal or 0x-hex).
fn num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The `i`-th occurrence of field `name` in a row.
fn occ<'a>(row: &'a [Vec<String>], name: &str, i: usize) -> Option<&'a str> {
    row.get(col(name))?.get(i).map(String::as_str)
}

/// Parses an address.
fn addr(s: &str) -> Option<Addr> {
    match s.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(v4) => Some(Addr::from_v4(v4.octets())),
        std::net::IpAddr::V6(v6) => Some(Addr::from_v6(v6.octets())),
    }
}

/// flowtide's VLAN rule applied to tshark's VLAN ids before the IP layer: the first two
/// non-zero ids, outermost first.
fn expected_vlans(row: &[Vec<String>], before_ip: &[&str]) -> [u16; 2] {
    let tags = before_ip.iter().filter(|l| **l == "vlan").count();
    let mut ids = (0..tags)
        .filter_map(|i| occ(row, "vlan.id", i).and_then(num))
        .filter(|&id| id != 0);
    [
        ids.next().unwrap_or(0) as u16,
        ids.next().unwrap_or(0) as u16,
    ]
}

/// The innermost tunnel that tshark's layers (up to and including the compared IP
/// layer) show.
fn expected_tunnel(layers: &[&str]) -> Option<TunnelKind> {
    let mut kind = Some(TunnelKind::None);
    let mut last_ip: Option<&str> = None;
    for layer in layers {
        kind = match *layer {
            "gre" => Some(TunnelKind::Gre),
            "erspan" => None,
            "vxlan" => Some(TunnelKind::Vxlan),
            "geneve" => Some(TunnelKind::Geneve),
            "gtp" => Some(TunnelKind::GtpU),
            "teredo" => Some(TunnelKind::Teredo),
            "ip" | "ipv6" => match (last_ip, *layer) {
                (Some("ip"), "ip") => Some(TunnelKind::IpInIp),
                (Some("ip"), _) => Some(TunnelKind::SixInFour),
                (Some(_), "ip") => Some(TunnelKind::FourInSix),
                (Some(_), _) => Some(TunnelKind::SixInSix),
                (None, _) => kind,
            },
            _ => kind,
        };
        // IP directly inside IP (IPv6 extension headers may sit between them).
        last_ip = match *layer {
            "ip" | "ipv6" => Some(layer),
            l if V6_EXT_LAYERS.contains(&l) => last_ip,
            _ => None,
        };
    }
    kind
}

/// One IP layer in tshark's layer list.
struct IpLayer {
    /// Position in the layer list.
    pos: usize,
    /// IPv6 (else IPv4).
    v6: bool,
    /// Occurrence index among the layers of the same version.
    k: usize,
    /// Fragment fields (id, offset in bytes, more fragments) of this layer, when shown.
    fragment: Option<(u32, u16, bool)>,
}

impl IpLayer {
    /// A real fragment (not an IPv6 atomic fragment): flowtide stops decoding there.
    fn is_real_fragment(&self) -> bool {
        self.fragment
            .is_some_and(|(_, offset, more)| offset != 0 || more)
    }
}

/// The IP layers of a frame (up to the cut), outermost first.
fn ip_layers(row: &[Vec<String>], layers: &[&str]) -> Vec<IpLayer> {
    let mut out = Vec::new();
    let (mut k4, mut k6, mut fraghdrs) = (0, 0, 0);
    for (pos, name) in layers.iter().enumerate() {
        match *name {
            "ip" => {
                let id = occ(row, "ip.id", k4).and_then(num);
                let mf = occ(row, "ip.flags.mf", k4).and_then(num);
                let off = occ(row, "ip.frag_offset", k4).and_then(num);
                // tshark shows the IPv4 fragment offset in 8-byte units.
                let fragment = match (id, mf, off) {
                    (Some(id), Some(mf), Some(off)) => Some((id as u32, (off * 8) as u16, mf != 0)),
                    _ => None,
                };
                out.push(IpLayer {
                    pos,
                    v6: false,
                    k: k4,
                    fragment,
                });
                k4 += 1;
            }
            "ipv6" => {
                out.push(IpLayer {
                    pos,
                    v6: true,
                    k: k6,
                    fragment: None,
                });
                k6 += 1;
            }
            "ipv6.fraghdr" => {
                let offset = occ(row, "ipv6.fraghdr.offset", fraghdrs).and_then(num);
                let more = occ(row, "ipv6.fraghdr.more", fraghdrs).and_then(num);
                let id = occ(row, "ipv6.fraghdr.ident", fraghdrs).and_then(num);
                fraghdrs += 1;
                // The first fragment header of an IPv6 layer describes it.
                if let Some(last) = out.last_mut().filter(|l| l.v6 && l.fragment.is_none()) {
                    if let (Some(o), Some(m), Some(id)) = (offset, more, id) {
                        last.fragment = Some((id as u32, (o * 8) as u16, m != 0));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// tshark's view of the IP packet flowtide records for a frame, `None` when tshark
/// decoded no IP packet (no IP layer, or one without addresses, e.g. a bogus version).
///
/// That packet is the innermost IP layer, except that layers quoted by ICMP/ICMPv6 error
/// messages are ignored, and decoding stops at the outermost real fragment (flowtide
/// follows tunnels inside fragments only after reassembly, while tshark with
/// defragmentation off still dissects the contents of first fragments).
fn expect_from(row: &[Vec<String>]) -> Option<Expect> {
    let layers_text = row.get(col("frame.protocols"))?.join(",");
    let layers: Vec<&str> = layers_text.split(':').collect();
    // Everything after the first ICMP/ICMPv6 layer is a quoted packet.
    let cut = layers
        .iter()
        .position(|l| *l == "icmp" || *l == "icmpv6")
        .map_or(layers.len(), |i| i + 1);
    let layers = &layers[..cut];
    let ips = ip_layers(row, layers);
    let ip = ips.iter().find(|l| l.is_real_fragment()).or(ips.last())?;
    let (ip_pos, v6, k) = (ip.pos, ip.v6, ip.k);
    let mut e = Expect {
        layers: layers_text.clone(),
        fragment: ip.fragment,
        ..Expect::default()
    };
    let next_ip = ips
        .iter()
        .map(|l| l.pos)
        .find(|&p| p > ip_pos)
        .unwrap_or(layers.len());
    e.vlan = expected_vlans(row, &layers[..ip_pos]);
    e.tunnel = expected_tunnel(&layers[..=ip_pos]);
    let upper_pos = (ip_pos + 1..layers.len()).find(|&i| !V6_EXT_LAYERS.contains(&layers[i]));
    e.upper = upper_pos.map_or(String::new(), |i| layers[i].to_owned());
    let (src, dst) = if v6 {
        ("ipv6.src", "ipv6.dst")
    } else {
        ("ip.src", "ip.dst")
    };
    e.src = Some(occ(row, src, k).and_then(addr)?);
    e.dst = occ(row, dst, k).and_then(addr);
    let has_ext = layers[ip_pos + 1..next_ip]
        .iter()
        .any(|l| V6_EXT_LAYERS.contains(l));
    e.protocol = if !v6 {
        occ(row, "ip.proto", k).and_then(num).map(|p| p as u8)
    } else if !has_ext {
        occ(row, "ipv6.nxt", k).and_then(num).map(|p| p as u8)
    } else {
        upper_pos.and_then(|i| layer_protocol(layers[i]))
    };
    e.ip_len = if v6 {
        occ(row, "ipv6.plen", k)
            .and_then(num)
            .map(|p| p as u32 + 40)
    } else {
        occ(row, "ip.len", k).and_then(num).map(|l| l as u32)
    };
    // Non-first fragments carry no transport header.
    let non_first = e.fragment.is_some_and(|(_, offset, _)| offset != 0);
    if let Some(upper_pos) = upper_pos.filter(|_| !non_first) {
        let name = layers[upper_pos];
        let j = layers[..upper_pos].iter().filter(|l| **l == name).count();
        let pair = |a: &str, b: &str| -> Option<(u16, u16)> {
            Some((num(occ(row, a, j)?)? as u16, num(occ(row, b, j)?)? as u16))
        };
        match name {
            "tcp" => {
                e.ports = pair("tcp.srcport", "tcp.dstport");
                e.tcp_flags = occ(row, "tcp.flags", j).and_then(num).map(|f| f as u8);
            }
            "udp" => e.ports = pair("udp.srcport", "udp.dstport"),
            "sctp" => e.ports = pair("sctp.srcport", "sctp.dstport"),
            "icmp" | "icmpv6" => {
                // The first ICMP layer is this one (quotes come after it).
                let (t, c, id, echo) = if name == "icmp" {
                    ("icmp.type", "icmp.code", "icmp.ident", [0, 8])
                } else {
                    (
                        "icmpv6.type",
                        "icmpv6.code",
                        "icmpv6.echo.identifier",
                        [128, 129],
                    )
                };
                let ty = occ(row, t, 0).and_then(num);
                let code = occ(row, c, 0).and_then(num);
                if let (Some(ty), Some(code)) = (ty, code) {
                    let ident = if echo.contains(&ty) {
                        occ(row, id, 0).and_then(num)
                    } else {
                        None
                    };
                    e.ports = Some(((ty << 8 | code) as u16, ident.unwrap_or(0) as u16));
                }
            }
            _ => {}
        }
    }
    Some(e)
}

/// A field that differs between flowtide and tshark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Field {
    /// Source or destination address.
    Addresses,
    /// IP protocol.
    Protocol,
    /// IP total length.
    IpLen,
    /// Fragment id/offset/MF.
    Fragment,
    /// Ports / ICMP type, code, id.
    Ports,
    /// TCP flags.
    TcpFlags,
    /// VLAN ids.
    Vlan,
    /// Innermost tunnel kind.
    Tunnel,
    /// tshark decoded an IP packet, flowtide skipped the frame for this reason.
    OnlyTshark(SkipReason),
    /// flowtide decoded an IP packet, tshark showed none.
    OnlyFlowtide,
}

/// A documented, expected difference between flowtide and tshark.
struct Allowed {
    /// The differing field.
    field: Field,
    /// The captures (corpus-relative) and frame numbers (1-based) where it occurs.
    cases: &'static [(&'static str, &'static [u64])],
    /// Why the difference is expected (kept for the reader and printed in the summary).
    why: &'static str,
}

/// Documented differences. Each entry names the exact frames, so a new difference in the
/// same file is still reported.
const ALLOWED: &[Allowed] = &[
    Allowed {
        field: Field::OnlyTshark(SkipReason::TruncatedTransport),
        cases: &[
            (
                "baggett-reassembler/sample_packets/fragments2.pcap",
                &[3, 6],
            ),
            (
                "baggett-reassembler/sample_packets/fragments3.pcap",
                &[2, 6],
            ),
            (
                "ndpi/tests/cfgs/default/pcap/fuzz-2006-06-26-2594.pcap",
                &[86],
            ),
            (
                "suricata-verify/tests/drop-protocol-change/input.pcap",
                &[7],
            ),
        ],
        why: "TCP data offset below 5 (tshark: 'Bogus TCP header length'): flowtide skips \
              the malformed segment, tshark still shows its ports",
    },
    Allowed {
        field: Field::OnlyTshark(SkipReason::TruncatedTransport),
        cases: &[
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-25/frag-25.pcap",
                &[8],
            ),
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-26/frag-26.pcap",
                &[6],
            ),
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-27/frag-27.pcap",
                &[8],
            ),
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-28/frag-28.pcap",
                &[11],
            ),
        ],
        why: "IPv6 atomic fragment whose payload length leaves 0-1 bytes for the TCP/ICMPv6 \
              header: flowtide skips the malformed packet, tshark shows an empty transport layer",
    },
    Allowed {
        field: Field::OnlyTshark(SkipReason::BadIpv4Header),
        cases: &[(
            "pcapplusplus/Tests/Pcap++Test/PcapExamples/ip4_bad_fragment.pcap",
            &[1],
        )],
        why: "IHL 15 (60-byte header) in a frame with 42 bytes of IP: flowtide requires the \
              whole IPv4 header, tshark shows the fields of the partial header",
    },
    Allowed {
        field: Field::OnlyTshark(SkipReason::BadIpVersion),
        cases: &[(
            "ndpi/tests/cfgs/default/pcap/fuzz-2006-06-26-2594.pcap",
            &[669],
        )],
        why: "Ethernet type IPv4 carrying a version-6 header (fuzzed): flowtide requires the \
              version to match the Ethernet type, tshark hands the packet to its IPv6 dissector",
    },
    Allowed {
        field: Field::OnlyTshark(SkipReason::BadIpv6Header),
        cases: &[("tcpdump/tests/ipv6_frag6_negative_len.pcap", &[1])],
        why: "IPv6 payload length 0 followed by a fragment header: the extension header overruns \
              the payload length, which flowtide treats as malformed; tshark decodes it anyway",
    },
    Allowed {
        field: Field::Protocol,
        cases: &[
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-35/frag-35.pcap",
                &[6],
            ),
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-36/frag-36.pcap",
                &[6],
            ),
        ],
        why: "IPv6 first fragment whose fragment header is followed by a second fragment \
              header: flowtide's rule makes the first fragment header's next header (44) the \
              protocol, tshark walks on to ICMPv6",
    },
    Allowed {
        field: Field::Ports,
        cases: &[
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-35/frag-35.pcap",
                &[6],
            ),
            (
                "suricata-verify/tests/ipv6-evasion/ipv6-malformed-fragments-36/frag-36.pcap",
                &[6],
            ),
        ],
        why: "same frames: no transport header right after the fragment header, so flowtide \
              records no ICMPv6 type/code (NO_TRANSPORT is not set because 44 has no ports)",
    },
];

/// The fields where flowtide's record differs from tshark's view.
fn compare(ours: &(Result<(), SkipReason>, Packet), theirs: Option<&Expect>) -> Vec<Field> {
    let (result, p) = ours;
    let Some(e) = theirs else {
        return if result.is_ok() {
            vec![Field::OnlyFlowtide]
        } else {
            Vec::new()
        };
    };
    if let Err(reason) = result {
        return vec![Field::OnlyTshark(*reason)];
    }
    let mut diffs = Vec::new();
    if e.src != Some(p.src) || e.dst != Some(p.dst) {
        diffs.push(Field::Addresses);
    }
    if e.protocol.is_some_and(|proto| proto != p.protocol) {
        diffs.push(Field::Protocol);
    }
    if e.ip_len.is_some_and(|len| len != p.ip_len) {
        diffs.push(Field::IpLen);
    }
    let ours_fragment =
        p.is_fragment()
            .then_some((p.ip_id, p.frag_offset, p.flags & flags::MORE_FRAGMENTS != 0));
    // IPv4 fields of a non-fragment are not compared; an IPv6 atomic fragment is.
    let theirs_fragment = e.fragment.filter(|f| f.1 != 0 || f.2 || p.ip_version == 6);
    let fragment_shown = p.ip_version == 6 || ours_fragment.is_some() || theirs_fragment.is_some();
    if fragment_shown && ours_fragment != theirs_fragment {
        diffs.push(Field::Fragment);
    }
    let transport = p.flags & flags::NO_TRANSPORT == 0;
    match e.ports {
        Some(ports) if transport && ports != (p.sport, p.dport) => diffs.push(Field::Ports),
        None if transport && (p.sport, p.dport) != (0, 0) => diffs.push(Field::Ports),
        _ => {}
    }
    if transport && p.protocol == 6 && e.tcp_flags.is_some_and(|f| f != p.tcp_flags) {
        diffs.push(Field::TcpFlags);
    }
    if e.vlan != p.ctx.vlan {
        diffs.push(Field::Vlan);
    }
    // tshark names both GRE versions "gre"; flowtide calls version 1 (PPTP) `Pptp`.
    let ours = match p.ctx.tunnel {
        TunnelKind::Pptp => TunnelKind::Gre,
        other => other,
    };
    if e.tunnel.is_some_and(|kind| kind != ours) {
        diffs.push(Field::Tunnel);
    }
    diffs
}

/// Comparison totals of one file.
#[derive(Default)]
struct FileReport {
    /// Corpus-relative path.
    name: String,
    /// Frames in the file.
    frames: usize,
    /// Frames where both decoded an IP packet.
    compared: usize,
    /// Compared frames that agree on every field.
    agree: usize,
    /// Differences covered by [`ALLOWED`].
    allowed: usize,
    /// Differences covered, by index into [`ALLOWED`].
    allowed_hits: HashMap<usize, usize>,
    /// Unexplained differences: (frame number, field, detail).
    unexplained: Vec<(u64, Field, String)>,
    /// Frames flowtide skipped, by reason.
    skipped: HashMap<&'static str, usize>,
    /// Frames without an IP packet on either side.
    neither: usize,
    /// Set when the file was not compared (and why).
    not_compared: Option<&'static str>,
}

/// Compares one capture, decoded by flowtide, with tshark's rows for it.
fn compare_file(name: String, decoded: &Decoded, rows: &[Row]) -> FileReport {
    let mut report = FileReport {
        name,
        frames: decoded.frames.len(),
        ..FileReport::default()
    };
    for (i, ours) in decoded.frames.iter().enumerate() {
        let number = i as u64 + 1;
        if let Err(reason) = ours.0 {
            *report.skipped.entry(reason.name()).or_default() += 1;
        }
        let theirs = rows.get(i).and_then(|row| expect_from(row));
        if ours.0.is_err() && theirs.is_none() {
            report.neither += 1;
            continue;
        }
        if ours.0.is_ok() && theirs.is_some() {
            report.compared += 1;
        }
        let diffs = compare(ours, theirs.as_ref());
        if diffs.is_empty() {
            report.agree += 1;
            continue;
        }
        for field in diffs {
            let allowed = ALLOWED.iter().position(|a| {
                a.field == field
                    && a.cases
                        .iter()
                        .any(|(file, frames)| report.name == *file && frames.contains(&number))
            });
            if let Some(entry) = allowed {
                report.allowed += 1;
                *report.allowed_hits.entry(entry).or_default() += 1;
            } else {
                let p = &ours.1;
                let detail = format!(
                    "flowtide {:?} {} -> {} proto {} ports {}/{} tcpflags {:#04x} len {} frag ({},{},{}) flags {:#04x} ctx {:?} | tshark {theirs:?}",
                    ours.0, p.src, p.dst, p.protocol, p.sport, p.dport, p.tcp_flags, p.ip_len,
                    p.ip_id, p.frag_offset, p.flags & flags::MORE_FRAGMENTS != 0, p.flags, p.ctx
                );
                report.unexplained.push((number, field, detail));
            }
        }
    }
    report
}

/// A unit of work: captures compared with one tshark run.
struct Chunk {
    /// Corpus-relative names, paths and flowtide's decoding of each capture.
    files: Vec<(String, PathBuf, Decoded)>,
}

/// Runs tshark for a chunk and compares every capture in it.
fn compare_chunk(chunk: &Chunk) -> Vec<FileReport> {
    let paths: Vec<&Path> = chunk.files.iter().map(|(_, p, _)| p.as_path()).collect();
    let counts: Vec<usize> = chunk.files.iter().map(|(_, _, d)| d.frames.len()).collect();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let merged = run_tshark_merged(&paths, &counts, tmp.path());
    chunk
        .files
        .iter()
        .enumerate()
        .map(|(i, (name, path, decoded))| {
            let rows = match &merged {
                Some(rows) => Some(rows[i].clone()),
                None => run_tshark(path),
            };
            match rows {
                Some(rows) => compare_file(name.clone(), decoded, &rows),
                None => FileReport {
                    name: name.clone(),
                    not_compared: Some("tshark cannot read it"),
                    ..FileReport::default()
                },
            }
        })
        .collect()
}

#[test]
fn corpus_agrees_with_tshark() {
    let Some(root) = corpus() else { return };
    if !have_tshark() {
        return;
    }
    let files = capture_files(&root);
    assert!(!files.is_empty(), "no captures under {}", root.display());
    let mut reports = Vec::new();
    let mut decoded = Vec::new();
    for path in files {
        let name = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        match decode_file(&path) {
            Some(d) => decoded.push((name, path, d)),
            // e.g. nfstream/tests/results/*.pcap, which are CSV files.
            None => reports.push(FileReport {
                name,
                not_compared: Some("libpcap cannot read it"),
                ..FileReport::default()
            }),
        }
    }
    // Chunks of similar frame counts, a few per thread so that threads stay busy.
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let total: usize = decoded.iter().map(|(_, _, d)| d.frames.len()).sum();
    let per_chunk = total / (threads * 2) + 1;
    let mut chunks = vec![Chunk { files: Vec::new() }];
    let mut in_chunk = 0;
    for file in decoded {
        if in_chunk >= per_chunk {
            chunks.push(Chunk { files: Vec::new() });
            in_chunk = 0;
        }
        in_chunk += file.2.frames.len();
        chunks.last_mut().expect("one chunk").files.push(file);
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(reports);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else { break };
                let chunk_reports = compare_chunk(chunk);
                results
                    .lock()
                    .expect("no panics while locked")
                    .extend(chunk_reports);
            });
        }
    });
    let reports = results;
    let mut reports = reports.into_inner().expect("no panics while locked");
    reports.sort_by(|a, b| a.name.cmp(&b.name));

    let (mut frames, mut compared, mut agree, mut allowed, mut unexplained) = (0, 0, 0, 0, 0);
    let mut skipped: HashMap<&str, usize> = HashMap::new();
    for r in &reports {
        if let Some(why) = r.not_compared {
            println!("{:<100} not compared: {why}", r.name);
            continue;
        }
        let mut skips: Vec<_> = r.skipped.iter().collect();
        skips.sort();
        println!(
            "{:<100} frames {:>6} compared {:>6} agree {:>6} allowed {:>4} unexplained {:>4} skipped {skips:?}",
            r.name,
            r.frames,
            r.compared,
            r.agree,
            r.allowed,
            r.unexplained.len()
        );
        for (number, field, detail) in r.unexplained.iter().take(5) {
            println!("    frame {number}: {field:?}: {detail}");
        }
        frames += r.frames;
        compared += r.compared;
        agree += r.agree;
        allowed += r.allowed;
        unexplained += r.unexplained.len();
        for (k, v) in &r.skipped {
            *skipped.entry(k).or_default() += v;
        }
    }
    let mut hits = vec![0; ALLOWED.len()];
    for r in &reports {
        for (&entry, &n) in &r.allowed_hits {
            hits[entry] += n;
        }
    }
    println!("Allow-listed differences:");
    for (a, n) in ALLOWED.iter().zip(&hits) {
        println!("  {n:>3} x {:?}: {}", a.field, a.why);
    }
    let files_compared = reports.iter().filter(|r| r.not_compared.is_none()).count();
    println!(
        "TOTAL: {files_compared} files, {frames} frames, {compared} compared, {agree} agree ({:.3}%), {allowed} allow-listed differences, {unexplained} unexplained; flowtide skipped {skipped:?}",
        100.0 * agree as f64 / compared.max(1) as f64
    );
    assert!(
        files_compared > 100,
        "only {files_compared} captures compared"
    );
    // Agreement on every compared field, before the allow-list.
    assert!(
        agree as f64 >= 0.999 * compared as f64,
        "only {agree} of {compared} frames agree"
    );
    assert_eq!(
        unexplained, 0,
        "unexplained differences with tshark (see output above)"
    );
    let unused: Vec<_> = ALLOWED
        .iter()
        .zip(&hits)
        .filter(|(_, n)| **n == 0)
        .map(|(a, _)| a.why)
        .collect();
    assert!(unused.is_empty(), "stale allow-list entries: {unused:?}");
}

// ---------------------------------------------------------------------------------------
// Per link type and encapsulation: what flowtide decodes from specific corpus captures.
// Expected values were read independently with tshark 4.0 (command in each comment).
// ---------------------------------------------------------------------------------------

/// Decodes a corpus capture; `None` (test skipped, with a message) when the corpus is
/// missing.
fn corpus_capture(rel: &str) -> Option<Decoded> {
    let root = corpus()?;
    let path = root.join(rel);
    Some(decode_file(&path).unwrap_or_else(|| panic!("cannot read {}", path.display())))
}

/// Parses an address literal.
fn a(s: &str) -> Addr {
    addr(s).unwrap_or_else(|| panic!("bad address {s}"))
}

/// The decoded record of frame `number` (1-based), which must have decoded.
fn frame(d: &Decoded, number: usize) -> &Packet {
    let (result, packet) = &d.frames[number - 1];
    assert_eq!(*result, Ok(()), "frame {number} should decode");
    packet
}

/// Asserts the 5-tuple of a record.
#[track_caller]
fn assert_tuple(p: &Packet, src: &str, dst: &str, protocol: u8, sport: u16, dport: u16) {
    assert_eq!(
        (p.src, p.dst, p.protocol, p.sport, p.dport),
        (a(src), a(dst), protocol, sport, dport),
        "5-tuple of {p:?}"
    );
}

#[test]
fn corpus_ethernet_vlan_ipv4_fragments() {
    // tshark -r FILE -o ip.defragment:FALSE -T fields -e vlan.id -e ip.src -e ip.dst
    //   -e ip.id -e ip.flags.mf -e ip.frag_offset -e ip.len -e tcp.srcport -e tcp.dstport
    // -> vlan 6, 1.1.1.1 -> 2.2.2.2, id 1, offsets 0/8/16 bytes, MF 1/1/0, len 28,
    //    first fragment 12345 -> 8080 (only 8 bytes of TCP header).
    let rel = "suricata-verify/tests/defrag/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap";
    let Some(d) = corpus_capture(rel) else { return };
    assert_eq!(d.linktype, 1);
    for (i, (offset, more)) in [(0, true), (8, true), (16, false)].into_iter().enumerate() {
        let p = frame(&d, i + 1);
        assert_eq!(p.ctx.vlan, [6, 0]);
        assert_eq!(p.ctx.outer, 0, "a single VLAN tag is not an outer layer");
        assert_tuple(p, "1.1.1.1", "2.2.2.2", 6, 0, 0);
        assert_eq!(
            (p.ip_id, p.frag_offset, p.flags & flags::MORE_FRAGMENTS != 0),
            (1, offset, more)
        );
        assert_eq!(p.ip_len, 28);
        // 8 bytes of TCP are not a whole TCP header: no ports, NO_TRANSPORT.
        assert_ne!(p.flags & flags::NO_TRANSPORT, 0);
        assert_eq!(
            p.bytes.as_deref().map(<[u8]>::len),
            Some(28),
            "fragment bytes kept"
        );
    }
}

#[test]
fn corpus_ethernet_vlan_ipv6_fragments() {
    // tshark ... -e vlan.id -e ipv6.src -e ipv6.plen -e ipv6.fraghdr.ident
    //   -e ipv6.fraghdr.offset -e ipv6.fraghdr.more -e tcp.srcport -e tcp.dstport
    // -> vlan 6, ::1 -> ::1, plen 448/448/148, id 0xa5d33a2d, offsets 0/55/110 (x8),
    //    M 1/1/0, first fragment TCP 12345 -> 8080 flags 0x10.
    let rel = "suricata-verify/tests/defrag/bug-6887-defrag-eth-vlan-ipv6-tcp/frag-eth-vlan-ipv6-tcp.pcap";
    let Some(d) = corpus_capture(rel) else { return };
    let expected = [(0, true, 448), (55 * 8, true, 448), (110 * 8, false, 148)];
    for (i, (offset, more, plen)) in expected.into_iter().enumerate() {
        let p = frame(&d, i + 1);
        assert_eq!(p.ctx.vlan, [6, 0]);
        assert_eq!(p.ip_version, 6);
        assert_eq!(p.ip_len, 40 + plen);
        assert_eq!((p.ip_id, p.frag_offset), (0xa5d3_3a2d, offset));
        assert_eq!(p.flags & flags::MORE_FRAGMENTS != 0, more);
        assert_ne!(p.flags & flags::V6_FRAGMENT_HEADER, 0);
        assert_eq!(
            p.bytes.as_deref().map(<[u8]>::len),
            Some(40 + plen as usize)
        );
        if i == 0 {
            assert_tuple(p, "::1", "::1", 6, 12345, 8080);
            assert_eq!(p.tcp_flags, 0x10);
        } else {
            assert_tuple(p, "::1", "::1", 6, 0, 0);
            assert_ne!(p.flags & flags::NO_TRANSPORT, 0);
        }
    }
}

#[test]
fn corpus_raw_ipv4_ipv6_and_ppp() {
    // Link types 228 (raw IPv4), 229 (raw IPv6) and 9 (PPP) carry the same datagrams as
    // the Ethernet/VLAN captures above (tshark shows identical IP fields).
    let cases = [
        ("suricata-verify/tests/defrag/bug-6887-defrag-ipv4-tcp-syn/frag-ip-tcp-syn.pcap", 228, 4),
        ("suricata-verify/tests/defrag/bug-6887-defrag-ipv6-tcp/frag-ip-tcp.pcap", 229, 6),
        ("suricata-verify/tests/defrag/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap", 9, 4),
        ("suricata-verify/tests/defrag/bug-6887-defrag-ppp-ipv6-tcp/frag-ppp-ipv6-tcp.pcap", 9, 6),
    ];
    for (rel, linktype, version) in cases {
        let Some(d) = corpus_capture(rel) else { return };
        assert_eq!(d.linktype, linktype, "{rel}");
        assert_eq!(d.frames.len(), 3);
        for n in 1..=3 {
            let p = frame(&d, n);
            assert_eq!(p.ip_version, version, "{rel}");
            assert!(p.is_fragment());
            assert!(p.ctx.is_plain());
        }
        let first = frame(&d, 1);
        if version == 4 {
            assert_tuple(first, "1.1.1.1", "2.2.2.2", 6, 0, 0);
        } else {
            assert_tuple(first, "::1", "::1", 6, 12345, 8080);
        }
    }
    // dnscap's raw IPv4 capture: 495 fragments, all decoded.
    let Some(d) = corpus_capture("dnscap/src/test/frags.pcap") else {
        return;
    };
    assert_eq!(d.linktype, 228);
    assert!(d.frames.iter().all(|(r, p)| r.is_ok() && p.is_fragment()));
}

#[test]
fn corpus_linux_sll() {
    // tshark -r log4j-webapp-exploit.pcap -T fields -e sll.pkttype -e ip.src -e ip.dst
    //   -e tcp.srcport -e tcp.dstport -e tcp.flags -c 2
    // -> 172.16.238.1:1984 -> 172.16.238.10:8080 SYN; reply SYN/ACK.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/log4j-webapp-exploit.pcap") else {
        return;
    };
    assert_eq!(d.linktype, 113);
    let p = frame(&d, 1);
    assert_tuple(p, "172.16.238.1", "172.16.238.10", 6, 1984, 8080);
    assert_eq!(p.tcp_flags, 0x02);
    let p = frame(&d, 2);
    assert_tuple(p, "172.16.238.10", "172.16.238.1", 6, 8080, 1984);
    assert_eq!(p.tcp_flags, 0x12);
    // tshark -T fields -e frame.protocols: 4 x sll:ethertype:arp, 422 IPv4/TCP.
    let not_ip = d
        .frames
        .iter()
        .filter(|(r, _)| *r == Err(SkipReason::NotIp))
        .count();
    let ok = d.frames.iter().filter(|(r, _)| r.is_ok()).count();
    assert_eq!((not_ip, ok), (4, 422));
}

#[test]
fn corpus_null_loopback() {
    // tshark -r rdp.pcap -T fields -e null.family -e ip.src -e ip.dst -e tcp.srcport
    //   -e tcp.dstport -c 1 -> family 2, 172.16.2.185:52494 -> 192.168.2.142:3389.
    for rel in [
        "ndpi/tests/cfgs/default/pcap/rdp.pcap",
        "nfstream/tests/pcaps/rdp.pcap",
    ] {
        let Some(d) = corpus_capture(rel) else { return };
        assert_eq!(d.linktype, 0);
        assert!(d.frames.iter().all(|(r, _)| r.is_ok()), "{rel}");
    }
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/rdp.pcap") else {
        return;
    };
    assert_tuple(
        frame(&d, 1),
        "172.16.2.185",
        "192.168.2.142",
        6,
        52494,
        3389,
    );
}

#[test]
fn corpus_pppoe_vlan_and_6in4() {
    // tshark -r syslog.pcap -T fields -e frame.number -e frame.protocols -e ip.src
    //   -e ip.dst -e udp.srcport -e vlan.id -e ipv6.src -e ipv6.dst
    // frame 1: eth:ethertype:pppoes:ppp:ip:udp:syslog 95.136.242.54 -> 93.20.126.110, 514
    // frame 20: vlan 121; frame 26: 6in4 193.24.227.10 -> 216.66.86.114 carrying
    //   2001:470:6c:a1::2 -> 2001:470:765b::b15:22.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/syslog.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_eq!(
        (p.src, p.dst, p.protocol, p.sport),
        (a("95.136.242.54"), a("93.20.126.110"), 17, 514)
    );
    assert!(p.ctx.is_plain());
    assert_eq!(frame(&d, 20).ctx.vlan, [121, 0]);
    let p = frame(&d, 26);
    assert_eq!(
        (p.src, p.dst),
        (a("2001:470:6c:a1::2"), a("2001:470:765b::b15:22"))
    );
    assert_eq!(p.ctx.tunnel, TunnelKind::SixInFour);
    assert_ne!(p.ctx.outer, 0);
    // Frame 27 is the same inner flow through another relay: a different outer digest.
    let q = frame(&d, 27);
    assert_eq!(q.ctx.tunnel, TunnelKind::SixInFour);
    assert_ne!(q.ctx.outer, p.ctx.outer);
}

#[test]
fn corpus_llc_is_not_ip() {
    // tshark: dos_win98_smb_netbeui.pcap has 158 frames eth:llc (NetBIOS, IPX, ...) and
    // 62 IP frames; tor.pcap starts with eth:llc:stp.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/dos_win98_smb_netbeui.pcap") else {
        return;
    };
    let not_ip = d
        .frames
        .iter()
        .filter(|(r, _)| *r == Err(SkipReason::NotIp))
        .count();
    let ok = d.frames.iter().filter(|(r, _)| r.is_ok()).count();
    assert_eq!((not_ip, ok), (158, 62));
    let Some(d) = corpus_capture("nfstream/tests/pcaps/tor.pcap") else {
        return;
    };
    assert_eq!(d.frames[0].0, Err(SkipReason::NotIp));
}

#[test]
fn corpus_gre_pptp_ppp_in_vlan() {
    // tshark -r gre.pcapng -T fields -e vlan.id -e gre.flags.version -e gre.key.call_id
    //   -e ip.src -e ip.dst -e udp.srcport -e udp.dstport
    // -> vlan 142, enhanced GRE (version 1) call id 38992, outer 109.105.228.253 ->
    //    10.177.98.84, inner 192.168.10.210:5060 -> 192.168.103.40:5060. The call id
    //    differs per direction: kept in the packet, left out of flow keys.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/gre.pcapng") else {
        return;
    };
    let p = frame(&d, 1);
    assert_tuple(p, "192.168.10.210", "192.168.103.40", 17, 5060, 5060);
    assert_eq!(p.ctx.vlan, [142, 0]);
    assert_eq!((p.ctx.tunnel, p.ctx.tunnel_id), (TunnelKind::Pptp, 38992));
    assert_ne!(p.ctx.outer, 0);
    // Without decapsulation the GRE packet itself is the record.
    let path = corpus_dir().join("ndpi/tests/cfgs/default/pcap/gre.pcapng");
    let config = DecodeConfig {
        decapsulate: false,
        ..DecodeConfig::default()
    };
    let d = decode_file_with(&path, config).expect("readable");
    let p = frame(&d, 1);
    assert_tuple(p, "109.105.228.253", "10.177.98.84", 47, 0, 0);
    assert_eq!((p.ctx.tunnel, p.ctx.outer), (TunnelKind::None, 0));
}

#[test]
fn corpus_gre_ipv4_and_gre_ppp_fragments() {
    // tshark -r amp.dns.RRSIG.fragmented.pcap -Y gre -T fields -e frame.number
    //   -e gre.flags_and_version -e gre.proto -e ip.src -e ip.dst -e udp.srcport
    // -> frame 4194: GRE v0 without key, 0x0800, 74.102.131.16 -> 10.10.10.10 carrying
    //    51.22.26.212:61981 -> 212.172.145.36:12548.
    let Some(d) = corpus_capture("stopddos/amp.dns.RRSIG.fragmented.pcap") else {
        return;
    };
    let p = frame(&d, 4194);
    assert_tuple(p, "51.22.26.212", "212.172.145.36", 17, 61981, 12548);
    assert_eq!((p.ctx.tunnel, p.ctx.tunnel_id), (TunnelKind::Gre, 0));
    // eth-ip-gre-ppp-max-ip-packet.pcap: outer 7.7.7.7 -> 9.9.9.9 GRE (0x880b) PPP,
    // inner 1.1.1.1 -> 2.2.2.2: 1024 fragments of 64 bytes (tshark offsets 0, 8, ..., 8184
    // in 8-byte units), the last without MF.
    let rel = "suricata-verify/tests/defrag/bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data/eth-ip-gre-ppp-max-ip-packet.pcap";
    let Some(d) = corpus_capture(rel) else { return };
    for n in 1..=d.frames.len() {
        let p = frame(&d, n);
        assert_eq!((p.src, p.dst), (a("1.1.1.1"), a("2.2.2.2")));
        assert_eq!(p.ctx.tunnel, TunnelKind::Gre);
        assert!(p.is_fragment());
        assert_eq!(p.frag_offset as usize, (n - 1) * 64);
        assert_eq!(p.flags & flags::MORE_FRAGMENTS != 0, n < 1024);
    }
    // security-8550: the outer IPv4 packet is itself a fragment (MF set): its GRE payload
    // is not decapsulated before reassembly, the record is the outer fragment.
    let Some(d) = corpus_capture("suricata-verify/tests/security-8550/input.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_tuple(p, "10.85.50.1", "10.85.50.2", 47, 0, 0);
    assert!(p.is_fragment() && p.ctx.is_plain() && p.bytes.is_some());
}

#[test]
fn corpus_vxlan() {
    // tshark -r vxlan.pcap -T fields -e vlan.id -e vxlan.vni -e ip.src -e ip.dst
    // -> every frame: vlan 5, VNI 1111, outer 192.168.22.4 <-> 192.168.22.5, inner
    //    10.10.20.4 <-> 157.240.224.35 / 8.8.8.8.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/vxlan.pcap") else {
        return;
    };
    assert_eq!(d.frames.len(), 127);
    let mut outers = std::collections::HashSet::new();
    for n in 1..=d.frames.len() {
        let p = frame(&d, n);
        assert_eq!(p.ctx.vlan, [5, 0]);
        assert_eq!((p.ctx.tunnel, p.ctx.tunnel_id), (TunnelKind::Vxlan, 1111));
        assert!(p.src == a("10.10.20.4") || p.dst == a("10.10.20.4"));
        outers.insert(p.ctx.outer);
    }
    // Both directions between the same two VTEPs share one outer digest.
    assert_eq!(outers.len(), 1);
    assert!(!outers.contains(&0));
}

#[test]
fn corpus_gtp_u() {
    // tshark -r ipv6_in_gtp.pcap -T fields -e vlan.id -e gtp.teid -e ip.src -e ip.dst
    //   -e ipv6.src -e ipv6.dst -e ipv6.nxt -e udp.srcport -e udp.dstport
    // frame 1: vlans 3233,5, TEID 0x12808fb8, 2607:fc20:4052:39e:490a:ea4d:17fe:e09c:49120
    //   -> fd00:976a:bc67:193e::7:25658 UDP; frame 2: vlans 3231,2, TEID 0x074c15b0, ESP.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/ipv6_in_gtp.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_eq!(p.ctx.vlan, [3233, 5]);
    assert_eq!(
        (p.ctx.tunnel, p.ctx.tunnel_id),
        (TunnelKind::GtpU, 0x1280_8fb8)
    );
    assert_tuple(
        p,
        "2607:fc20:4052:39e:490a:ea4d:17fe:e09c",
        "fd00:976a:bc67:193e::7",
        17,
        49120,
        25658,
    );
    let p = frame(&d, 2);
    assert_eq!(p.ctx.vlan, [3231, 2]);
    assert_eq!(
        (p.ctx.tunnel, p.ctx.tunnel_id),
        (TunnelKind::GtpU, 0x074c_15b0)
    );
    assert_tuple(
        p,
        "2a01:4c8:c014:144e:1:2:945b:6761",
        "2a01:4c8:f000:f49::4",
        50,
        0,
        0,
    );
    // tshark -r gtp-u.pcap -T fields -e gtp.teid -e ip.src -e ip.dst -e icmp.type
    //   -e icmp.ident -> TEID 1, 202.11.40.158 -> 192.168.40.178 echo request id 0.
    let Some(d) = corpus_capture("nfstream/tests/pcaps/gtp-u.pcap") else {
        return;
    };
    assert_eq!(d.frames.len(), 102);
    let p = frame(&d, 1);
    assert_tuple(p, "202.11.40.158", "192.168.40.178", 1, 8 << 8, 0);
    assert_eq!((p.ctx.tunnel, p.ctx.tunnel_id), (TunnelKind::GtpU, 1));
    assert!(d
        .frames
        .iter()
        .all(|(r, p)| r.is_ok() && p.ctx.tunnel == TunnelKind::GtpU));
}

#[test]
fn corpus_teredo() {
    // tshark -r teredo.pcap -T fields -e ip.src -e ip.dst -e udp.srcport -e udp.dstport
    //   -e ipv6.src -e ipv6.dst -e icmpv6.type -e teredo.orig.port
    // frame 1: 10.112.16.106:52513 -> 194.136.28.76:3544, fe80::ffff:ffff:fffe -> ff02::2
    //   router solicitation (133); frame 2: with an origin indication, router
    //   advertisement (134) fe80::8000:f227:3d77:e3b3 -> fe80::ffff:ffff:fffe.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/teredo.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_tuple(p, "fe80::ffff:ffff:fffe", "ff02::2", 58, 133 << 8, 0);
    assert_eq!(p.ctx.tunnel, TunnelKind::Teredo);
    let p = frame(&d, 2);
    assert_tuple(
        p,
        "fe80::8000:f227:3d77:e3b3",
        "fe80::ffff:ffff:fffe",
        58,
        134 << 8,
        0,
    );
    assert_eq!(p.ctx.tunnel, TunnelKind::Teredo);
}

#[test]
fn corpus_6in4_4in6_6in6() {
    // tshark -r 6in4tunnel.pcap -c 1: 174.3.73.24 -> 184.105.255.26 carrying
    //   2001:470:1f17:13f:3e97:eff:fe73:4dec -> 2604:a880:1:20::224:b001.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/6in4tunnel.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_eq!(
        (p.src, p.dst),
        (
            a("2001:470:1f17:13f:3e97:eff:fe73:4dec"),
            a("2604:a880:1:20::224:b001")
        )
    );
    assert_eq!(p.ctx.tunnel, TunnelKind::SixInFour);
    assert!(d
        .frames
        .iter()
        .all(|(r, p)| r.is_ok() && p.ctx.tunnel == TunnelKind::SixInFour));
    // tshark -r 4in6tunnel.pcap -c 1: 22e0:1685:... -> 344a:ba94:152a:ac34::2a carrying
    //   192.168.0.1:64455 -> 10.10.10.1:443.
    let Some(d) = corpus_capture("ndpi/tests/cfgs/default/pcap/4in6tunnel.pcap") else {
        return;
    };
    let p = frame(&d, 1);
    assert_tuple(p, "192.168.0.1", "10.10.10.1", 6, 64455, 443);
    assert_eq!(p.ctx.tunnel, TunnelKind::FourInSix);
    // tshark -r 6in6_inner.pcap: outer 222::2 -> 333::3 (no fragment header), inner
    //   ::172.16.199.2 -> ::224.0.0.2 fragments id 0, offsets 0..3 (x8), M 1,1,1,0.
    let Some(d) = corpus_capture("peafowl/test/pcaps/ip_fragmentation/6in6_inner.pcap") else {
        return;
    };
    for n in 1..=4 {
        let p = frame(&d, n);
        assert_eq!((p.src, p.dst), (a("::172.16.199.2"), a("::224.0.0.2")));
        assert_eq!(p.ctx.tunnel, TunnelKind::SixInSix);
        assert_eq!(p.frag_offset as usize, (n - 1) * 8);
        assert_eq!(p.flags & flags::MORE_FRAGMENTS != 0, n < 4);
        // The kept bytes are the inner datagram's, from its IPv6 header.
        assert_eq!(
            p.bytes.as_deref().and_then(|b| b.first()).map(|b| b >> 4),
            Some(6)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Hand-built frames for encapsulations the corpus lacks (ERSPAN I/II/III, Geneve, SLL2,
// 802.1ad QinQ with a third tag, MPLS, MPLS pseudowire, LOOP, big-endian NULL, PPP in
// HDLC framing, raw IP 101, GRE with checksum/key/sequence, GRE TEB, IP-in-IP, 6in6,
// GTP-U extension headers, 802.3 LLC/SNAP, IPv4 options with padding, IPv6 extension
// headers). Each frame is also written to a pcap and decoded by tshark, so the expected
// values are checked independently of flowtide's reading of the specifications.
// ---------------------------------------------------------------------------------------

/// Frame builders. Checksums are left 0 (tshark does not validate them by default).
mod build {
    /// Ethernet II: destination MAC, source MAC, then `tags` (TPID, VLAN id) and the
    /// Ethernet type.
    pub fn eth_tagged(tags: &[(u16, u16)], ether_type: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02];
        for &(tpid, vid) in tags {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&vid.to_be_bytes()); // PCP 0, DEI 0, VLAN id
        }
        f.extend_from_slice(&ether_type.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Untagged Ethernet II.
    pub fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
        eth_tagged(&[], ether_type, payload)
    }

    /// IPv4 with `options` (a multiple of 4 bytes), id 0x1234, DF, TTL 64.
    pub fn ipv4_opts(
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let header_len = 20 + options.len();
        let total = (header_len + payload.len()) as u16;
        let mut p = vec![0x40 | (header_len / 4) as u8, 0]; // version 4, IHL; DSCP/ECN
        p.extend_from_slice(&total.to_be_bytes()); // total length
        p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00]); // id, flags DF, offset 0
        p.extend_from_slice(&[64, proto, 0, 0]); // TTL, protocol, checksum
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(options);
        p.extend_from_slice(payload);
        p
    }

    /// IPv4 without options.
    pub fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        ipv4_opts(src, dst, proto, &[], payload)
    }

    /// IPv6 with next header `next`, hop limit 64.
    pub fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0]; // version 6, traffic class, flow label
        p.extend_from_slice(&(payload.len() as u16).to_be_bytes()); // payload length
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        p
    }

    /// UDP with the length field set.
    pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]); // checksum (none)
        p.extend_from_slice(payload);
        p
    }

    /// TCP with data offset 5, sequence 1, ack 0, window 1024.
    pub fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0]); // sequence, acknowledgment
        p.extend_from_slice(&[0x50, flags, 0x04, 0x00, 0, 0, 0, 0]); // offset, flags, window, checksum, urgent
        p.extend_from_slice(payload);
        p
    }

    /// ICMP / ICMPv6 echo with `kind` (8/0 or 128/129), identifier and sequence 1.
    pub fn echo(kind: u8, id: u16) -> Vec<u8> {
        let mut p = vec![kind, 0, 0, 0];
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0, 1, b'p', b'i', b'n', b'g']);
        p
    }

    /// An IPv6 address `2001:db8::<last>`.
    pub fn v6(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        a[15] = last;
        a
    }
}

/// A hand-built frame and what both flowtide and tshark must find in it.
struct Handmade {
    /// Short name.
    name: &'static str,
    /// Link type.
    linktype: u32,
    /// The frame.
    bytes: Vec<u8>,
    /// Innermost (src, dst, protocol, sport, dport).
    tuple: (&'static str, &'static str, u8, u16, u16),
    /// Tunnel kind and id.
    tunnel: (TunnelKind, u32),
    /// VLAN ids.
    vlan: [u16; 2],
    /// Whether some outer layer (tunnel, third VLAN tag, MPLS) was folded into ctx.outer.
    outer: bool,
    /// Extra tshark fields and the values (last occurrence) tshark must show.
    tshark: &'static [(&'static str, &'static str)],
}

/// The hand-built frames.
fn handmade() -> Vec<Handmade> {
    use build::*;
    const C: [u8; 4] = [192, 0, 2, 1];
    const S: [u8; 4] = [192, 0, 2, 2];
    const O1: [u8; 4] = [198, 51, 100, 1];
    const O2: [u8; 4] = [198, 51, 100, 2];
    let inner_tcp = ipv4(C, S, 6, &tcp(40000, 80, 0x02, b"GET"));
    let inner_udp = ipv4(C, S, 17, &udp(5353, 53, b"query"));
    let inner_v6_udp = ipv6(v6(1), v6(2), 17, &udp(1000, 2000, b"data"));
    let v4_tuple_tcp = ("192.0.2.1", "192.0.2.2", 6, 40000, 80);
    let v4_tuple_udp = ("192.0.2.1", "192.0.2.2", 17, 5353, 53);
    let v6_tuple_udp = ("2001:db8::1", "2001:db8::2", 17, 1000, 2000);
    let mut cases = Vec::new();
    let mut push = |name, linktype, bytes, tuple, tunnel, vlan, outer, tshark| {
        cases.push(Handmade {
            name,
            linktype,
            bytes,
            tuple,
            tunnel,
            vlan,
            outer,
            tshark,
        });
    };
    let none = (TunnelKind::None, 0);

    // ERSPAN type II: GRE with S (0x1000), protocol 0x88BE, sequence 7; ERSPAN header
    // word 1: version 1 (bits 31-28), VLAN 100 (27-16); COS 0, En 0, T 0, session id 341
    // (9-0); word 2: reserved, index 0. Then the mirrored Ethernet frame.
    let mut gre = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 7];
    gre.extend_from_slice(&[0x10, 0x64, 0x01, 0x55, 0, 0, 0, 0]);
    gre.extend_from_slice(&eth(0x0800, &inner_tcp));
    push(
        "erspan-ii",
        1,
        eth(0x0800, &ipv4(O1, O2, 47, &gre)),
        v4_tuple_tcp,
        (TunnelKind::ErspanII, 341),
        [0, 0],
        true,
        &[("erspan.spanid", "341")],
    );

    // ERSPAN type I: GRE without S, protocol 0x88BE, the mirrored frame right away.
    let mut gre = vec![0x00, 0x00, 0x88, 0xbe];
    gre.extend_from_slice(&eth(0x0800, &inner_tcp));
    push(
        "erspan-i",
        1,
        eth(0x0800, &ipv4(O1, O2, 47, &gre)),
        v4_tuple_tcp,
        (TunnelKind::ErspanII, 0),
        [0, 0],
        true,
        &[],
    );

    // ERSPAN type III: GRE with S, protocol 0x22EB, sequence 9; header word 1: version 2,
    // VLAN 200; word 2: COS/BSO/T 0, session id 777 (0x309); word 3: timestamp; word 4:
    // SGT 0, P 0, FT 0 (Ethernet), HW id 0, D 0, Gra 0, O 1; then the 8-byte platform
    // subheader (platform id 3 in the top 6 bits), then Ethernet carrying IPv6/UDP.
    let mut gre = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 9];
    gre.extend_from_slice(&[0x20, 0xc8, 0x03, 0x09]);
    gre.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
    gre.extend_from_slice(&[0x00, 0x00, 0x00, 0x01]);
    gre.extend_from_slice(&[0x0c, 0, 0, 0x05, 0, 0, 0, 0x10]);
    gre.extend_from_slice(&eth(0x86dd, &inner_v6_udp));
    push(
        "erspan-iii",
        1,
        eth(0x0800, &ipv4(O1, O2, 47, &gre)),
        v6_tuple_udp,
        (TunnelKind::ErspanIII, 777),
        [0, 0],
        true,
        &[("erspan.spanid", "777")],
    );

    // Geneve: version 0, options length 2 (8 bytes); O 0, C 0; protocol 0x6558; VNI
    // 0xABCDE; one option: class 0x0102, type 0x80, length 1 (4 data bytes).
    let mut gen = vec![0x02, 0x00, 0x65, 0x58, 0x0a, 0xbc, 0xde, 0x00];
    gen.extend_from_slice(&[0x01, 0x02, 0x80, 0x01, 0xde, 0xad, 0xbe, 0xef]);
    gen.extend_from_slice(&eth(0x0800, &inner_udp));
    push(
        "geneve",
        1,
        eth(0x0800, &ipv4(O1, O2, 17, &udp(49152, 6081, &gen))),
        v4_tuple_udp,
        (TunnelKind::Geneve, 0xabcde),
        [0, 0],
        true,
        &[("geneve.vni", "0xabcde")],
    );

    // Linux SLL2: protocol 0x0800, reserved, interface index 3, ARPHRD_ETHER (1), packet
    // type 0 (to us), address length 6, address (padded to 8).
    let mut sll2 = vec![0x08, 0x00, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0, 6];
    sll2.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0, 0]);
    sll2.extend_from_slice(&inner_tcp);
    push(
        "sll2",
        276,
        sll2,
        v4_tuple_tcp,
        none,
        [0, 0],
        false,
        &[("sll.ifindex", "3")],
    );

    // 802.1ad S-tag 10, 802.1Q C-tag 20, a third 802.1Q tag 30 (folded into outer).
    let tags = [(0x88a8, 10), (0x8100, 20), (0x8100, 30)];
    push(
        "qinq-3-tags",
        1,
        eth_tagged(&tags, 0x0800, &inner_udp),
        v4_tuple_udp,
        none,
        [10, 20],
        true,
        &[("vlan.id", "30")],
    );

    // MPLS: label 1000 (TC 0, S 0, TTL 64), label 2000 (S 1), then IPv4 (first nibble 4).
    let mut mpls = vec![0x00, 0x3e, 0x80, 0x40, 0x00, 0x7d, 0x01, 0x40];
    mpls.extend_from_slice(&inner_udp);
    push(
        "mpls",
        1,
        eth(0x8847, &mpls),
        v4_tuple_udp,
        none,
        [0, 0],
        true,
        &[("mpls.label", "2000")],
    );

    // MPLS Ethernet pseudowire: label 3000 (S 1), control word 0, Ethernet, IPv4/TCP.
    let mut pw = vec![0x00, 0xbb, 0x81, 0x40, 0, 0, 0, 0];
    pw.extend_from_slice(&eth(0x0800, &inner_tcp));
    push(
        "mpls-pw",
        1,
        eth(0x8847, &pw),
        v4_tuple_tcp,
        none,
        [0, 0],
        true,
        &[("mpls.label", "3000")],
    );

    // OpenBSD LOOP: family 24 (AF_INET6) in network byte order, ICMPv6 echo request.
    let mut lp = vec![0, 0, 0, 24];
    lp.extend_from_slice(&ipv6(v6(1), v6(2), 58, &echo(128, 0x1234)));
    push(
        "loop",
        108,
        lp,
        ("2001:db8::1", "2001:db8::2", 58, 128 << 8, 0x1234),
        none,
        [0, 0],
        false,
        &[],
    );

    // BSD NULL written by a big-endian host: family 2 as 00 00 00 02; ICMP echo reply.
    let mut null = vec![0, 0, 0, 2];
    null.extend_from_slice(&ipv4(C, S, 1, &echo(0, 77)));
    push(
        "null-be",
        0,
        null,
        ("192.0.2.1", "192.0.2.2", 1, 0, 77),
        none,
        [0, 0],
        false,
        &[],
    );

    // PPP in HDLC-like framing: address 0xFF, control 0x03, protocol 0x0021.
    let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
    ppp.extend_from_slice(&inner_udp);
    push("ppp-hdlc", 50, ppp, v4_tuple_udp, none, [0, 0], false, &[]);

    // PPP with protocol field compression (1-byte protocol 0x21), no address/control.
    let mut ppp = vec![0x21];
    ppp.extend_from_slice(&inner_udp);
    push("ppp-pfc", 9, ppp, v4_tuple_udp, none, [0, 0], false, &[]);

    // Cisco HDLC in link type 50: address 0x0F (unicast), control 0, Ethernet type.
    let mut chdlc = vec![0x0f, 0x00, 0x08, 0x00];
    chdlc.extend_from_slice(&inner_tcp);
    push(
        "cisco-hdlc",
        50,
        chdlc,
        v4_tuple_tcp,
        none,
        [0, 0],
        false,
        &[],
    );

    // Raw IP (101) carrying IPv6.
    push(
        "raw-101-ipv6",
        101,
        inner_v6_udp.clone(),
        v6_tuple_udp,
        none,
        [0, 0],
        false,
        &[],
    );

    // GRE with C, K, S (0xB000): checksum + reserved, key 0xDEADBEEF, sequence 5; IPv4.
    let mut gre = vec![
        0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 5,
    ];
    gre.extend_from_slice(&inner_udp);
    push(
        "gre-csum-key-seq",
        1,
        eth(0x0800, &ipv4(O1, O2, 47, &gre)),
        v4_tuple_udp,
        (TunnelKind::Gre, 0xdead_beef),
        [0, 0],
        true,
        &[("gre.key", "0xdeadbeef")],
    );

    // GRE with K (key 42), transparent Ethernet bridging (0x6558), inner VLAN 7.
    let mut gre = vec![0x20, 0x00, 0x65, 0x58, 0, 0, 0, 42];
    gre.extend_from_slice(&eth_tagged(&[(0x8100, 7)], 0x0800, &inner_tcp));
    push(
        "gre-teb",
        1,
        eth(0x0800, &ipv4(O1, O2, 47, &gre)),
        v4_tuple_tcp,
        (TunnelKind::Gre, 42),
        [7, 0],
        true,
        &[("gre.key", "0x0000002a")],
    );

    // IPv4-in-IPv4 (protocol 4).
    push(
        "ipip",
        1,
        eth(0x0800, &ipv4(O1, O2, 4, &inner_tcp)),
        v4_tuple_tcp,
        (TunnelKind::IpInIp, 0),
        [0, 0],
        true,
        &[],
    );

    // IPv6-in-IPv6 (next header 41).
    push(
        "6in6",
        1,
        eth(0x86dd, &ipv6(v6(0xa), v6(0xb), 41, &inner_v6_udp)),
        v6_tuple_udp,
        (TunnelKind::SixInSix, 0),
        [0, 0],
        true,
        &[],
    );

    // GTP-U: flags 0x34 (version 1, PT 1, E 1), G-PDU (0xFF), length, TEID 0x01020304;
    // sequence 0, N-PDU 0, next extension 0x85 (PDU session container); the extension:
    // length 1 (4 bytes), PDU type/QFI bytes, next extension 0; then IPv4.
    let mut gtp = vec![0x34, 0xff];
    gtp.extend_from_slice(&((8 + inner_udp.len()) as u16).to_be_bytes());
    gtp.extend_from_slice(&[0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0x85]);
    gtp.extend_from_slice(&[0x01, 0x10, 0x09, 0x00]);
    gtp.extend_from_slice(&inner_udp);
    push(
        "gtpu-ext",
        1,
        eth(0x0800, &ipv4(O1, O2, 17, &udp(2152, 2152, &gtp))),
        v4_tuple_udp,
        (TunnelKind::GtpU, 0x0102_0304),
        [0, 0],
        true,
        &[("gtp.teid", "0x01020304")],
    );

    // VXLAN on the Linux legacy port 8472: flags 0x08 (I), VNI 4242.
    let mut vx = vec![0x08, 0, 0, 0, 0x00, 0x10, 0x92, 0x00];
    vx.extend_from_slice(&eth(0x0800, &inner_tcp));
    push(
        "vxlan-8472",
        1,
        eth(0x0800, &ipv4(O1, O2, 17, &udp(40000, 8472, &vx))),
        v4_tuple_tcp,
        (TunnelKind::Vxlan, 4242),
        [0, 0],
        true,
        &[("vxlan.vni", "4242")],
    );

    // 802.3 length field + LLC (AA AA 03) + SNAP (OUI 00-00-00, type 0x0800).
    let mut llc = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
    llc.extend_from_slice(&inner_udp);
    let len = llc.len() as u16;
    push(
        "llc-snap",
        1,
        eth(len, &llc),
        v4_tuple_udp,
        none,
        [0, 0],
        false,
        &[],
    );

    // IPv4 with 4 bytes of options (NOP, NOP, NOP, EOL) and Ethernet padding after the
    // total length.
    let mut padded = ipv4_opts(C, S, 6, &[1, 1, 1, 0], &tcp(40000, 80, 0xc2, b""));
    padded.extend_from_slice(&[0xee; 6]);
    push(
        "ipv4-options-padding",
        1,
        eth(0x0800, &padded),
        (v4_tuple_tcp.0, v4_tuple_tcp.1, 6, 40000, 80),
        none,
        [0, 0],
        false,
        &[("ip.hdr_len", "24")],
    );

    // IPv6 hop-by-hop (PadN), routing (type 0, segments left 0, one address) and
    // destination options (PadN) headers before TCP.
    let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0]; // HBH: next 43, len 0, PadN(4)
    ext.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 0]); // routing: next 60, len 2, type 0, left 0
    ext.extend_from_slice(&v6(9));
    ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // dest options: next TCP, PadN(4)
    ext.extend_from_slice(&tcp(40000, 443, 0x18, b"x"));
    push(
        "ipv6-ext-headers",
        1,
        eth(0x86dd, &ipv6(v6(1), v6(2), 0, &ext)),
        ("2001:db8::1", "2001:db8::2", 6, 40000, 443),
        none,
        [0, 0],
        false,
        &[],
    );
    cases
}

#[test]
fn handmade_frames_decode_and_agree_with_tshark() {
    let decoder = Decoder::default();
    let cases = handmade();
    for case in &cases {
        let frame = Frame {
            ts_ns: 0,
            linktype: case.linktype,
            orig_len: case.bytes.len() as u32,
            data: &case.bytes,
        };
        let mut p = Packet::default();
        assert_eq!(
            decoder.decode(&frame, 0, 0, &mut p),
            Ok(()),
            "{}",
            case.name
        );
        let (src, dst, proto, sport, dport) = case.tuple;
        assert_tuple(&p, src, dst, proto, sport, dport);
        assert_eq!(
            (p.ctx.tunnel, p.ctx.tunnel_id),
            case.tunnel,
            "{}",
            case.name
        );
        assert_eq!(p.ctx.vlan, case.vlan, "{}", case.name);
        assert_eq!(
            p.ctx.outer != 0,
            case.outer,
            "{}: outer {:#x}",
            case.name,
            p.ctx.outer
        );
    }
    if !have_tshark() {
        return;
    }
    // One pcap per link type, one tshark run per pcap, several in parallel.
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut linktypes: Vec<u32> = cases.iter().map(|c| c.linktype).collect();
    linktypes.sort_unstable();
    linktypes.dedup();
    let mut extra: Vec<&str> = cases
        .iter()
        .flat_map(|c| c.tshark.iter().map(|(f, _)| *f))
        .collect();
    extra.sort_unstable();
    extra.dedup();
    std::thread::scope(|s| {
        for &linktype in &linktypes {
            let (tmp, cases, extra) = (tmp.path(), &cases, &extra);
            s.spawn(move || {
                let group: Vec<&Handmade> =
                    cases.iter().filter(|c| c.linktype == linktype).collect();
                let path = tmp.join(format!("linktype-{linktype}.pcap"));
                let file = std::fs::File::create(&path).expect("create pcap");
                let mut w = PcapWriter::new(file, linktype).expect("pcap header");
                for case in &group {
                    w.write(1_000_000_000, &case.bytes).expect("write frame");
                }
                w.finish().expect("flush");
                // tshark needs to be told that label 3000 carries an Ethernet pseudowire
                // with a control word.
                let args = ["-d", "mpls.label==3000,pwethcw"];
                let rows = run_tshark_with(&path, extra, &args).expect("tshark runs");
                assert_eq!(rows.len(), group.len());
                for (case, row) in group.iter().zip(&rows) {
                    check_tshark_view(case, row, extra);
                }
            });
        }
    });
}

/// Asserts that tshark's view of a hand-built frame matches its expectation.
fn check_tshark_view(case: &Handmade, row: &[Vec<String>], extra: &[&str]) {
    let e = expect_from(row).unwrap_or_else(|| panic!("{}: tshark decoded no IP", case.name));
    let (src, dst, proto, sport, dport) = case.tuple;
    assert_eq!(
        (e.src, e.dst, e.protocol, e.ports),
        (
            Some(a(src)),
            Some(a(dst)),
            Some(proto),
            Some((sport, dport))
        ),
        "{}: tshark sees {e:?}",
        case.name
    );
    for (field, value) in case.tshark {
        let column = FIELDS.len() + extra.iter().position(|f| f == field).expect("requested");
        let shown = row
            .get(column)
            .and_then(|occ| occ.last())
            .and_then(|v| num(v));
        assert_eq!(shown, num(value), "{}: tshark {field}", case.name);
    }
}
