//! Integration tests of `flowtide synth`: reproducibility, exact counts, event-time
//! order, an independent frame validator (lengths and checksums of every layer, and the
//! report's counters), and, when TShark is installed, TShark's verdict.

use std::collections::HashMap;
use std::process::Command;

use flowtide::synth::checksum;
use flowtide::synth::{generate, SynthOptions, SynthReport};

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

fn opts(packets: u64, seed: u64) -> SynthOptions {
    SynthOptions {
        packets,
        seed,
        ..SynthOptions::default()
    }
}

fn run(o: &SynthOptions) -> (Vec<u8>, SynthReport) {
    let mut out = Vec::new();
    let report = generate(o, &mut out).expect("generate into memory");
    (out, report)
}

/// One pcap record.
struct Record<'a> {
    ts_ns: u64,
    data: &'a [u8],
}

/// Parses a little-endian nanosecond classic pcap with Ethernet frames.
fn records(pcap: &[u8]) -> Vec<Record<'_>> {
    assert!(pcap.len() >= 24, "no global header");
    assert_eq!(
        &pcap[0..4],
        &0xa1b2_3c4du32.to_le_bytes(),
        "nanosecond magic"
    );
    assert_eq!(
        u32::from_le_bytes([pcap[20], pcap[21], pcap[22], pcap[23]]),
        1,
        "LINKTYPE_ETHERNET"
    );
    let mut out = Vec::new();
    let mut pos = 24;
    while pos < pcap.len() {
        let h = &pcap[pos..pos + 16];
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (secs, nanos, caplen, origlen) =
            (word(0), word(4), word(8) as usize, word(12) as usize);
        assert!(nanos < 1_000_000_000);
        assert_eq!(caplen, origlen, "frames are captured whole");
        out.push(Record {
            ts_ns: u64::from(secs) * 1_000_000_000 + u64::from(nanos),
            data: &pcap[pos + 16..pos + 16 + caplen],
        });
        pos += 16 + caplen;
    }
    assert_eq!(pos, pcap.len(), "no trailing bytes");
    out
}

/// Counters computed independently of the generator.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    tcp: u64,
    udp: u64,
    icmp: u64,
    ipv6: u64,
    vlan: u64,
    tunnelled: u64,
    fragments: u64,
    gre: u64,
    vxlan: u64,
    gtp: u64,
    qinq: u64,
    out_of_order_fragments: u64,
}

fn be16(b: &[u8], i: usize) -> usize {
    u16::from_be_bytes([b[i], b[i + 1]]) as usize
}

fn verify_transport(proto: u8, pseudo: u64, l4: &[u8]) {
    match proto {
        6 => {
            assert!(l4.len() >= 20);
            let doff = (l4[12] >> 4) as usize * 4;
            assert!(
                (20..=60).contains(&doff) && doff <= l4.len(),
                "TCP data offset"
            );
            assert_eq!(
                checksum::finish(checksum::add(pseudo, l4)),
                0,
                "TCP checksum"
            );
        }
        17 => {
            assert_eq!(be16(l4, 4), l4.len(), "UDP length");
            if be16(l4, 6) != 0 {
                assert_eq!(
                    checksum::finish(checksum::add(pseudo, l4)),
                    0,
                    "UDP checksum"
                );
            }
        }
        1 => assert_eq!(checksum::checksum(l4), 0, "ICMP checksum"),
        58 => assert_eq!(
            checksum::finish(checksum::add(pseudo, l4)),
            0,
            "ICMPv6 checksum"
        ),
        other => panic!("unexpected protocol {other}"),
    }
}

/// Validates an IP packet (and what it tunnels) and counts its innermost layer.
fn validate_ip(b: &[u8], t: &mut Tally, tunnelled: bool) {
    let version = b[0] >> 4;
    let (proto, payload, pseudo, fragment, v6) = match version {
        4 => {
            let ihl = (b[0] & 0x0f) as usize * 4;
            assert_eq!(ihl, 20);
            assert_eq!(be16(b, 2), b.len(), "IPv4 total length");
            assert_eq!(checksum::checksum(&b[..20]), 0, "IPv4 header checksum");
            let frag = be16(b, 6);
            let fragment = frag & 0x3fff != 0;
            let len = (b.len() - 20) as u32;
            let src: [u8; 4] = b[12..16].try_into().expect("4 bytes");
            let dst: [u8; 4] = b[16..20].try_into().expect("4 bytes");
            (
                b[9],
                &b[20..],
                checksum::pseudo_v4(&src, &dst, b[9], len),
                fragment,
                false,
            )
        }
        6 => {
            assert_eq!(be16(b, 4) + 40, b.len(), "IPv6 payload length");
            let src: [u8; 16] = b[8..24].try_into().expect("16 bytes");
            let dst: [u8; 16] = b[24..40].try_into().expect("16 bytes");
            if b[6] == 44 {
                (b[40], &b[48..], 0, true, true)
            } else {
                let len = (b.len() - 40) as u32;
                (
                    b[6],
                    &b[40..],
                    checksum::pseudo_v6(&src, &dst, b[6], len),
                    false,
                    true,
                )
            }
        }
        v => panic!("IP version {v}"),
    };
    if fragment {
        t.fragments += 1;
        count(proto, v6, t);
        return;
    }
    if !tunnelled {
        match proto {
            47 => {
                assert_eq!(be16(payload, 0), 0x2000, "GRE with key");
                t.gre += 1;
                t.tunnelled += 1;
                return validate_ip(&payload[8..], t, true);
            }
            17 if be16(payload, 2) == 4789 => {
                verify_transport(proto, pseudo, payload);
                assert_eq!(payload[8], 0x08, "VXLAN I flag");
                t.vxlan += 1;
                t.tunnelled += 1;
                return validate_ip(&payload[8 + 8 + 14..], t, true);
            }
            17 if be16(payload, 2) == 2152 => {
                verify_transport(proto, pseudo, payload);
                assert_eq!(&payload[8..10], &[0x30, 0xff], "GTP-U G-PDU");
                assert_eq!(be16(payload, 10), payload.len() - 16, "GTP length");
                t.gtp += 1;
                t.tunnelled += 1;
                return validate_ip(&payload[16..], t, true);
            }
            _ => {}
        }
    }
    verify_transport(proto, pseudo, payload);
    count(proto, v6, t);
}

fn count(proto: u8, v6: bool, t: &mut Tally) {
    match proto {
        6 => t.tcp += 1,
        17 => t.udp += 1,
        1 | 58 => t.icmp += 1,
        _ => {}
    }
    t.ipv6 += u64::from(v6);
}

fn validate_frame(f: &[u8], t: &mut Tally) {
    assert!(f.len() >= 60, "padded to the Ethernet minimum");
    let mut pos = 12;
    let mut tags = 0;
    while matches!(be16(f, pos), 0x8100 | 0x88a8) {
        pos += 4;
        tags += 1;
    }
    if tags > 0 {
        t.vlan += 1;
    }
    if tags == 2 {
        t.qinq += 1;
    }
    let ethertype = be16(f, pos);
    assert!(
        matches!(ethertype, 0x0800 | 0x86dd),
        "EtherType {ethertype:#x}"
    );
    let ip = &f[pos + 2..];
    // Trim Ethernet padding using the IP length.
    let len = if ip[0] >> 4 == 4 {
        be16(ip, 2)
    } else {
        be16(ip, 4) + 40
    };
    assert!(len <= ip.len());
    assert!(
        ip.len() == len || f.len() == 60,
        "only minimum-size frames are padded"
    );
    validate_ip(&ip[..len], t, false);
}

fn validate(pcap: &[u8], o: &SynthOptions, report: &SynthReport) -> Tally {
    let recs = records(pcap);
    assert_eq!(recs.len() as u64, o.packets, "exact packet count");
    assert_eq!(report.packets, o.packets);
    let mut tally = Tally::default();
    let mut bytes = 0;
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            assert!(
                r.ts_ns >= recs[i - 1].ts_ns,
                "timestamps non-decreasing at {i}"
            );
        }
        bytes += r.data.len() as u64;
        validate_frame(r.data, &mut tally);
    }
    if let (Some(first), Some(last)) = (recs.first(), recs.last()) {
        assert_eq!(first.ts_ns, o.start_ns, "first packet at start_ns");
        assert_eq!(report.first_ts_ns, first.ts_ns);
        assert_eq!(report.last_ts_ns, last.ts_ns);
    }
    assert_eq!(report.bytes, bytes);
    assert_eq!(report.tcp + report.udp + report.icmp, report.packets);
    assert!(report.flows <= report.packets && (report.flows >= 1 || report.packets == 0));
    let expected = (
        report.tcp,
        report.udp,
        report.icmp,
        report.ipv6,
        report.vlan,
        report.tunnelled,
        report.fragments,
    );
    let seen = (
        tally.tcp,
        tally.udp,
        tally.icmp,
        tally.ipv6,
        tally.vlan,
        tally.tunnelled,
        tally.fragments,
    );
    assert_eq!(
        expected, seen,
        "report counters (tcp, udp, icmp, ipv6, vlan, tunnelled, fragments)"
    );
    tally
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let (a, ra) = run(&opts(20_000, 42));
    let (b, rb) = run(&opts(20_000, 42));
    let (c, _) = run(&opts(20_000, 43));
    assert!(a == b, "same seed must give identical bytes");
    assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
    assert!(a != c, "different seeds must differ");
}

#[test]
fn exact_counts_for_all_sizes() {
    for packets in [0u64, 1, 2, 10, 137, 5_000] {
        let o = opts(packets, packets + 7);
        let (pcap, report) = run(&o);
        validate(&pcap, &o, &report);
    }
}

#[test]
fn frames_are_valid_and_the_mix_is_present() {
    let o = opts(150_000, 1);
    let (pcap, report) = run(&o);
    let t = validate(&pcap, &o, &report);
    let share = |n: u64| n as f64 / report.packets as f64;
    assert!(share(report.tcp) > 0.6, "{report:?}");
    assert!(share(report.udp) > 0.08, "{report:?}");
    assert!(report.icmp > 0 && report.fragments > 0, "{report:?}");
    assert!((0.04..0.2).contains(&share(report.ipv6)), "{report:?}");
    assert!((0.04..0.2).contains(&share(report.vlan)), "{report:?}");
    assert!(
        (0.01..0.08).contains(&share(report.tunnelled)),
        "{report:?}"
    );
    assert!(
        (0.002..0.03).contains(&share(report.fragments)),
        "{report:?}"
    );
    assert!(t.gre > 0 && t.vxlan > 0 && t.gtp > 0 && t.qinq > 0, "{t:?}");
    assert!(report.flows > 1_000, "{report:?}");
}

#[test]
fn event_time_rate_follows_the_option() {
    for rate in [2_000.0, 20_000.0] {
        let o = SynthOptions {
            packets: 100_000,
            rate_pps: rate,
            seed: 5,
            ..SynthOptions::default()
        };
        let (_, r) = run(&o);
        let secs = (r.last_ts_ns - r.first_ts_ns) as f64 * 1e-9;
        let achieved = r.packets as f64 / secs;
        assert!(
            (achieved / rate - 1.0).abs() < 0.2,
            "rate {achieved} for {rate}"
        );
    }
}

#[test]
fn flows_hint_is_approximately_honoured() {
    for hint in [300u64, 3_000] {
        let o = SynthOptions {
            packets: 60_000,
            flows_hint: Some(hint),
            seed: 9,
            ..SynthOptions::default()
        };
        let (_, r) = run(&o);
        let ratio = r.flows as f64 / hint as f64;
        assert!(
            (0.5..2.0).contains(&ratio),
            "{} flows for a hint of {hint}",
            r.flows
        );
    }
}

/// Runs tshark with `args` on `path`; `None` when it cannot be run.
fn tshark(path: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("tshark")
        .arg("-n")
        .arg("-r")
        .arg(path)
        .args(args)
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn tshark_accepts_the_capture() {
    if Command::new("tshark").arg("--version").output().is_err() {
        println!("tshark not found: skipping the TShark checks");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synth.pcap");
    let o = opts(env("SYNTH_TSHARK_PACKETS").unwrap_or(80_000), 3);
    let report = generate(&o, std::fs::File::create(&path).expect("create")).expect("generate");

    // No malformed packets, no checksum errors, no error-level expert info.
    let bad = tshark(
        &path,
        &[
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-o",
            "ip.check_checksum:TRUE",
            "-Y",
            "ip.checksum.status==2 || tcp.checksum.status==2 || udp.checksum.status==2 || \
             icmp.checksum.status==2 || icmpv6.checksum.status==2 || _ws.malformed || \
             _ws.expert.severity==error",
        ],
    )
    .unwrap_or_default();
    assert!(
        bad.trim().is_empty(),
        "tshark complaints:\n{}",
        bad.lines().take(20).collect::<Vec<_>>().join("\n")
    );

    // Every protocol of the mix is present, and many conversations.
    let stats = tshark(&path, &["-q", "-z", "io,phs", "-z", "conv,ip"]).unwrap_or_default();
    let mut frames: HashMap<String, u64> = HashMap::new();
    for line in stats.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(count)) = (parts.next(), parts.next()) {
            if let Some(n) = count
                .strip_prefix("frames:")
                .and_then(|n| n.parse::<u64>().ok())
            {
                *frames.entry(name.to_string()).or_default() += n;
            }
        }
    }
    let protocols = [
        "eth",
        "ip",
        "ipv6",
        "tcp",
        "udp",
        "icmp",
        "icmpv6",
        "vlan",
        "ieee8021ad",
        "gre",
        "vxlan",
        "gtp",
        "dns",
        "tls",
        "http",
        "ntp",
        "nfs",
        "quic",
    ];
    for proto in protocols {
        assert!(
            frames.get(proto).copied().unwrap_or(0) > 0,
            "{proto} missing from\n{stats}"
        );
    }
    let vxlan = frames.get("vxlan").copied().unwrap_or(0);
    assert_eq!(
        frames.get("eth").copied(),
        Some(report.packets + vxlan),
        "outer plus VXLAN-inner Ethernet"
    );
    let conversations = stats.lines().filter(|l| l.contains("<->")).count();
    assert!(conversations > 500, "{conversations} IP conversations");

    // Fragments: every datagram whose last fragment is in the capture is reassembled.
    let fields = tshark(
        &path,
        &[
            "-Y",
            "ip.flags.mf==1 || ip.frag_offset>0 || ipv6.fraghdr",
            "-T",
            "fields",
            "-E",
            "separator=;",
            "-e",
            "ip.flags.mf",
            "-e",
            "ip.frag_offset",
            "-e",
            "ip.fragment.count",
            "-e",
            "ipv6.fraghdr.more",
            "-e",
            "ipv6.fraghdr.offset",
            "-e",
            "ipv6.fragment.count",
        ],
    )
    .unwrap_or_default();
    let (mut last_v4, mut reassembled_v4, mut last_v6, mut reassembled_v6) = (0, 0, 0, 0);
    for line in fields.lines() {
        let f: Vec<&str> = line.split(';').collect();
        if f.len() < 6 {
            continue;
        }
        let set = |s: &str| !s.is_empty() && s != "0" && s != "False";
        // Values may be listed for outer and inner headers; the first is the outer one.
        let first = |s: &str| s.split(',').next().unwrap_or("").to_string();
        last_v4 += usize::from(!set(&first(f[0])) && set(&first(f[1])) && !f[0].is_empty());
        reassembled_v4 += usize::from(!f[2].is_empty());
        last_v6 += usize::from(!set(&first(f[3])) && set(&first(f[4])) && !f[3].is_empty());
        reassembled_v6 += usize::from(!f[5].is_empty());
    }
    println!("fragments: v4 last {last_v4} reassembled {reassembled_v4}; v6 last {last_v6} reassembled {reassembled_v6}");
    assert!(
        last_v4 > 10 && last_v6 > 0,
        "fragments: v4 {last_v4}, v6 {last_v6}"
    );
    assert_eq!(
        report.fragments as usize,
        fields.lines().count(),
        "fragment count"
    );
    // A datagram cut by the end of the capture may lack a fragment.
    assert!(
        reassembled_v4 + 1 >= last_v4 && reassembled_v4 <= last_v4,
        "v4 {reassembled_v4}/{last_v4}"
    );
    assert!(
        reassembled_v6 + 1 >= last_v6 && reassembled_v6 <= last_v6,
        "v6 {reassembled_v6}/{last_v6}"
    );
}
