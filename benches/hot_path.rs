//! Per-packet costs of the hot path: reading a capture file, decoding a frame,
//! updating the flow table, and feeding a fragment flood to the reassembly table.
//! `cargo bench --bench hot_path`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flowtide::capture::pcap_file::CaptureFile;
use flowtide::capture::pcap_writer::PcapWriter;
use flowtide::capture::{Frame, FrameSource, Poll};
use flowtide::decode::Decoder;
use flowtide_dataflows::operators::flow_table::{FlowTableConfig, FlowTableState};
use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::{ReassemblyConfig, ReassemblyTable};
use flowtide_dataflows::window::WindowConfig;

/// An Ethernet/IPv4/TCP frame from 10.0.x.y:port to 192.0.2.1:443.
fn tcp_frame(i: u32) -> Vec<u8> {
    let mut f = vec![0u8; 74];
    f[12] = 0x08; // IPv4
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&60u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&(1024 + (i % 50_000) as u16).to_be_bytes());
    tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
    tcp[12] = 0x50;
    tcp[13] = 0x18;
    f
}

fn benches(c: &mut Criterion) {
    const N: u32 = 100_000;
    let frames: Vec<Vec<u8>> = (0..N).map(|i| tcp_frame(i % 10_000)).collect();
    let decoder = Decoder::default();

    let mut g = c.benchmark_group("hot_path");
    g.throughput(Throughput::Elements(u64::from(N)));

    g.bench_function("decode_eth_ipv4_tcp", |b| {
        let mut p = Packet::default();
        b.iter(|| {
            for (i, f) in frames.iter().enumerate() {
                let frame = Frame {
                    ts_ns: i as u64,
                    linktype: 1,
                    orig_len: f.len() as u32,
                    data: f,
                };
                let _ = black_box(decoder.decode(&frame, 0, i as u64, &mut p));
            }
        })
    });

    let packets: Vec<Packet> = frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let mut p = Packet::default();
            let frame = Frame {
                ts_ns: i as u64 * 1000,
                linktype: 1,
                orig_len: f.len() as u32,
                data: f,
            };
            decoder.decode(&frame, 0, i as u64, &mut p).ok().map(|()| p)
        })
        .collect();
    for (name, window) in [
        ("flow_table_update_10k_flows", None),
        (
            "flow_table_update_10k_flows_with_panes",
            Some(WindowConfig::default()),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let config = FlowTableConfig {
                    window,
                    ..Default::default()
                };
                let mut t = FlowTableState::new(config);
                let (mut out, mut panes) = (Vec::new(), Vec::new());
                for p in &packets {
                    t.update(p, &mut out);
                }
                t.drain(u64::MAX, &mut out, &mut panes);
                black_box((out.len(), panes.len()))
            })
        });
    }

    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("bench.pcap");
    let file = std::fs::File::create(&path).expect("create");
    let mut w = PcapWriter::new(std::io::BufWriter::new(file), 1).expect("writer");
    for (i, f) in frames.iter().enumerate() {
        w.write(i as u64 * 1000, f).expect("write");
    }
    w.finish().expect("flush");
    let path = path.to_string_lossy().into_owned();
    g.bench_function("read_pcap_mmap", |b| {
        b.iter(|| {
            let mut src = CaptureFile::open(&path).expect("open");
            let mut n = 0u64;
            while let Ok(Poll::Frame(f)) = src.next_frame() {
                n += f.data.len() as u64;
            }
            black_box(n)
        })
    });
    g.bench_function("read_pcap_libpcap", |b| {
        b.iter(|| {
            let Ok(mut cap) = pcap::Capture::from_file(&path) else {
                return 0;
            };
            let mut n = 0u64;
            while let Ok(p) = cap.next_packet() {
                n += u64::from(p.header.caplen);
            }
            black_box(n)
        })
    });

    // 100k fragments of `flowtide synth --scenario frag-flood` (datagrams that never
    // complete), decoded, into one table with the default limits (64 MiB, 65,536
    // datagrams): creation, eviction and the events, without the dataflow around it.
    let flood = dir.path().join("flood.pcap");
    let opts = flowtide::synth::SynthOptions {
        packets: u64::from(N),
        seed: 42,
        rate_pps: 1e6,
        ..Default::default()
    };
    let file = std::fs::File::create(&flood).expect("create");
    flowtide::synth::flood::generate(&opts, file).expect("flood");
    let mut src = CaptureFile::open(&flood.to_string_lossy()).expect("open");
    let mut fragments = Vec::new();
    while let Ok(Poll::Frame(f)) = src.next_frame() {
        let mut p = Packet::default();
        if decoder
            .decode(&f, 0, fragments.len() as u64, &mut p)
            .is_ok()
        {
            fragments.push(p);
        }
    }
    g.bench_function("reassembly_flood_incomplete_datagrams", |b| {
        b.iter(|| {
            let mut t = ReassemblyTable::new(ReassemblyConfig::default());
            let (mut out, mut events) = (Vec::new(), Vec::new());
            for p in &fragments {
                t.push(p, &mut out, &mut events);
                events.clear();
            }
            black_box(t.len())
        })
    });
    g.finish();
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
