//! Integration tests of the capture layer: every capture of the shared corpus cross-checked
//! against libpcap, synthetic edge cases (byte orders, timestamp resolutions, pcapng
//! interfaces, truncation at every offset, bad inputs), streaming input, BPF filters, and a
//! property test that arbitrary bytes never make the reader panic.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flowtide::capture::filter::BpfFilter;
use flowtide::capture::live::LiveCapture;
use flowtide::capture::pcap_file::CaptureFile;
use flowtide::capture::pcap_writer::PcapWriter;
use flowtide::capture::{linktype, CaptureError, FrameSource, Poll};
use pcap::{Capture, Linktype, Precision};
use proptest::prelude::*;

// ------------------------------------------------------------------------- helpers

/// One frame, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Owned {
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

/// Everything a source yields: its frames, then how it ended (`None`: cleanly).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Owned>,
    error: Option<CaptureError>,
}

/// Reads `source` to the end, checking that it stays finished afterwards.
fn drain(source: &mut dyn FrameSource) -> Outcome {
    let mut frames = Vec::new();
    let error = loop {
        match source.next_frame() {
            Ok(Poll::Frame(f)) => frames.push(Owned {
                ts_ns: f.ts_ns,
                linktype: f.linktype,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            }),
            Ok(Poll::Idle) => panic!("a file source returned Idle"),
            Ok(Poll::End) => break None,
            Err(e) => break Some(e),
        }
    };
    for _ in 0..2 {
        assert!(
            matches!(source.next_frame(), Ok(Poll::End)),
            "a finished source must keep returning End"
        );
    }
    Outcome { frames, error }
}

/// Opens `path` (any link type) and reads it to the end.
fn read_path(path: &Path) -> Result<Outcome, CaptureError> {
    let mut file = CaptureFile::open_any_linktype(path.to_str().expect("utf-8 path"))?;
    Ok(drain(&mut file))
}

/// Writes `bytes` to a fresh temporary file.
fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(bytes).expect("write temp file");
    f.flush().expect("flush temp file");
    f
}

/// Reads `bytes` through the memory-mapped path.
fn read_bytes(bytes: &[u8]) -> Result<Outcome, CaptureError> {
    let f = temp_file(bytes);
    read_path(f.path())
}

/// `bytes` read through the streaming path, `chunk` bytes per `read` call at most.
fn read_streamed(bytes: &[u8], chunk: usize) -> Result<Outcome, CaptureError> {
    let reader = Chunked {
        data: bytes.to_vec(),
        pos: 0,
        chunk: chunk.max(1),
    };
    let mut file = CaptureFile::from_reader("stream", reader)?;
    Ok(drain(&mut file))
}

/// A reader that hands out at most `chunk` bytes per call (exercises buffer refills).
struct Chunked {
    data: Vec<u8>,
    pos: usize,
    chunk: usize,
}

impl std::io::Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.data[self.pos..];
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// The error's path-independent content (temp file names differ between readers).
fn strip_path(e: &CaptureError) -> CaptureError {
    let mut e = e.clone();
    match &mut e {
        CaptureError::Io { path, .. }
        | CaptureError::NotACapture { path }
        | CaptureError::Damaged { path, .. } => path.clear(),
        CaptureError::UnsupportedLinkType { source, .. } => source.clear(),
        _ => {}
    }
    e
}

fn same_outcome(a: &Result<Outcome, CaptureError>, b: &Result<Outcome, CaptureError>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            a.frames == b.frames
                && a.error.as_ref().map(strip_path) == b.error.as_ref().map(strip_path)
        }
        (Err(a), Err(b)) => strip_path(a) == strip_path(b),
        _ => false,
    }
}

fn damaged_index(e: &Option<CaptureError>) -> Option<u64> {
    match e {
        Some(CaptureError::Damaged { packet_index, .. }) => Some(*packet_index),
        _ => None,
    }
}

// ------------------------------------------------------------------- file builders

fn u16b(v: u16, be: bool) -> [u8; 2] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn u32b(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// A classic pcap global header.
fn pcap_header(magic: u32, be: bool, linktype: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(u32b(magic, be));
    h.extend(u16b(2, be));
    h.extend(u16b(4, be));
    h.extend([0; 8]);
    h.extend(u32b(65535, be));
    h.extend(u32b(linktype, be));
    h
}

/// A classic pcap record (16-byte header, or 24 bytes for the modified format).
fn pcap_record(
    be: bool,
    secs: u32,
    frac: u32,
    data: &[u8],
    orig_len: u32,
    modified: bool,
) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(u32b(secs, be));
    r.extend(u32b(frac, be));
    r.extend(u32b(data.len() as u32, be));
    r.extend(u32b(orig_len, be));
    if modified {
        r.extend(u32b(3, be)); // ifindex
        r.extend(u16b(0x0800, be)); // protocol
        r.extend([0, 0]); // packet type, padding
    }
    r.extend(data);
    r
}

/// A pcapng block with its lengths, the body padded to 32 bits.
fn ng_block(be: bool, block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut b = Vec::new();
    b.extend(u32b(block_type, be));
    b.extend(u32b(total, be));
    b.extend(body);
    b.resize(8 + padded, 0);
    b.extend(u32b(total, be));
    b
}

/// pcapng options, terminated by opt_endofopt.
fn ng_options(be: bool, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut o = Vec::new();
    for (code, value) in options {
        o.extend(u16b(*code, be));
        o.extend(u16b(value.len() as u16, be));
        o.extend(value);
        o.resize(o.len().div_ceil(4) * 4, 0);
    }
    if !options.is_empty() {
        o.extend([0; 4]);
    }
    o
}

fn shb(be: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(0x1a2b_3c4d, be));
    body.extend(u16b(1, be));
    body.extend(u16b(0, be));
    body.extend([0xff; 8]); // section length unknown
    body.extend(ng_options(be, &[(4, b"flowtide tests".to_vec())]));
    ng_block(be, 0x0a0d_0d0a, &body)
}

fn idb(be: bool, linktype: u16, snaplen: u32, options: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u16b(linktype, be));
    body.extend([0, 0]);
    body.extend(u32b(snaplen, be));
    body.extend(ng_options(be, options));
    ng_block(be, 1, &body)
}

fn epb(be: bool, interface: u32, ts: u64, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(interface, be));
    body.extend(u32b((ts >> 32) as u32, be));
    body.extend(u32b(ts as u32, be));
    body.extend(u32b(data.len() as u32, be));
    body.extend(u32b(orig_len, be));
    body.extend(data);
    body.resize(body.len().div_ceil(4) * 4, 0);
    body.extend(ng_options(be, &[(1, b"comment".to_vec())]));
    ng_block(be, 6, &body)
}

fn obsolete_pb(be: bool, interface: u16, ts: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u16b(interface, be));
    body.extend(u16b(0, be)); // drops
    body.extend(u32b((ts >> 32) as u32, be));
    body.extend(u32b(ts as u32, be));
    body.extend(u32b(data.len() as u32, be));
    body.extend(u32b(data.len() as u32, be));
    body.extend(data);
    ng_block(be, 2, &body)
}

fn spb(be: bool, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(u32b(orig_len, be));
    body.extend(data);
    ng_block(be, 3, &body)
}

/// Some frame bytes of length `n`.
fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A little pcap with `n` frames of varying sizes, and the offsets where records end.
fn sample_pcap(n: usize) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = pcap_header(0xa1b2_c3d4, false, linktype::ETHERNET);
    let mut ends = Vec::new();
    for i in 0..n {
        bytes.extend(pcap_record(
            false,
            1_700_000_000 + i as u32,
            i as u32 * 7,
            &payload(i * 13 + 1, i as u8),
            i as u32 * 13 + 1,
            false,
        ));
        ends.push(bytes.len());
    }
    (bytes, ends)
}

/// A pcapng file with a few frames and non-packet blocks, and the offsets where each
/// packet block ends.
fn sample_pcapng(be: bool) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = shb(be);
    bytes.extend(idb(be, 1, 0, &[(9, vec![9])]));
    let mut ends = Vec::new();
    for i in 0..4u64 {
        bytes.extend(epb(
            be,
            0,
            1_700_000_000_000_000_000 + i,
            &payload(i as usize * 9 + 3, 1),
            200,
        ));
        ends.push(bytes.len());
        // an interface statistics block between packets
        bytes.extend(ng_block(be, 5, &[0; 12]));
    }
    bytes.extend(spb(be, &payload(17, 2), 17));
    ends.push(bytes.len());
    (bytes, ends)
}

// --------------------------------------------------------------- synthetic cases

#[test]
fn classic_pcap_byte_orders_and_resolutions() {
    let data = payload(60, 9);
    for be in [false, true] {
        for (magic, ns_per_unit) in [(0xa1b2_c3d4u32, 1000u64), (0xa1b2_3c4d, 1)] {
            let mut bytes = pcap_header(magic, be, linktype::RAW);
            bytes.extend(pcap_record(be, 1_600_000_000, 123_456, &data, 1500, false));
            bytes.extend(pcap_record(
                be,
                u32::MAX,
                999_999_999,
                &data[..10],
                10,
                false,
            ));
            let out = read_bytes(&bytes).expect("opens");
            assert_eq!(out.error, None);
            assert_eq!(out.frames.len(), 2);
            let f = &out.frames[0];
            assert_eq!(
                f.ts_ns,
                1_600_000_000 * 1_000_000_000 + 123_456 * ns_per_unit
            );
            assert_eq!(
                (f.linktype, f.orig_len, &f.data),
                (linktype::RAW, 1500, &data)
            );
            let g = &out.frames[1];
            assert_eq!(
                g.ts_ns,
                u64::from(u32::MAX) * 1_000_000_000 + 999_999_999 * ns_per_unit
            );
            assert_eq!(g.data, &data[..10]);
        }
    }
}

#[test]
fn pcap_writer_output_reads_back() {
    let mut w = PcapWriter::new(Vec::new(), linktype::ETHERNET).expect("vec write");
    w.write(1_234_567_890_123_456_789, &payload(40, 1))
        .expect("vec write");
    w.write_truncated(5, &payload(20, 2), 1000)
        .expect("vec write");
    let bytes = w.finish().expect("vec write");
    let out = read_bytes(&bytes).expect("opens");
    assert_eq!(out.error, None);
    assert_eq!(out.frames[0].ts_ns, 1_234_567_890_123_456_789);
    assert_eq!(out.frames[0].data, payload(40, 1));
    assert_eq!((out.frames[1].ts_ns, out.frames[1].orig_len), (5, 1000));
}

#[test]
fn modified_pcap_has_24_byte_records() {
    for be in [false, true] {
        let mut bytes = pcap_header(0xa1b2_cd34, be, linktype::ETHERNET);
        bytes.extend(pcap_record(be, 10, 20, &payload(30, 1), 30, true));
        bytes.extend(pcap_record(be, 11, 21, &payload(31, 2), 31, true));
        let out = read_bytes(&bytes).expect("opens");
        assert_eq!(out.error, None);
        assert_eq!(out.frames.len(), 2);
        assert_eq!(out.frames[1].ts_ns, 11_000_021_000);
        assert_eq!(out.frames[1].data, payload(31, 2));
    }
}

#[test]
fn fcs_bits_in_the_pcap_linktype_are_ignored() {
    let bytes = pcap_header(0xa1b2_c3d4, false, 0x1400_0000 | linktype::ETHERNET);
    let file = CaptureFile::open(temp_file(&bytes).path().to_str().expect("utf-8")).expect("opens");
    assert_eq!(file.linktype(), linktype::ETHERNET);
}

#[test]
fn pcapng_interfaces_resolutions_and_block_types() {
    for be in [false, true] {
        let mut bytes = shb(be);
        // interface 0: Ethernet, default microseconds
        bytes.extend(idb(be, 1, 0, &[]));
        // a name resolution block and a custom block are skipped
        bytes.extend(ng_block(be, 4, &[0; 8]));
        bytes.extend(ng_block(be, 0x0000_0bad, &[1, 2, 3, 4, 5, 6, 7, 8]));
        // interface 1: raw IP, nanoseconds
        bytes.extend(idb(be, 101, 0, &[(2, b"eth1".to_vec()), (9, vec![9])]));
        // interface 2: Linux SLL, 2^-20 s, offset +100 s
        bytes.extend(idb(
            be,
            113,
            0,
            &[(9, vec![0x80 | 20]), (14, u64b(100, be).to_vec())],
        ));
        // interface 3: 802.11 (unsupported, still returned), 10^-3 s, snaplen 8
        bytes.extend(idb(be, 105, 8, &[(9, vec![3])]));
        bytes.extend(epb(be, 0, 1_500_000_000_123_456, &payload(64, 0), 64));
        bytes.extend(epb(be, 1, 1_500_000_000_123_456_789, &payload(40, 1), 40));
        bytes.extend(epb(be, 2, 3 << 19, &payload(44, 2), 100));
        bytes.extend(obsolete_pb(be, 3, 1_500_000_000_123, &payload(5, 3)));
        bytes.extend(spb(be, &payload(16, 4), 16));
        // a new section resets the interfaces (and may switch byte order)
        bytes.extend(shb(!be));
        bytes.extend(idb(!be, 228, 0, &[(9, vec![0])]));
        bytes.extend(epb(!be, 0, 42, &payload(20, 5), 20));

        let out = read_bytes(&bytes).expect("opens");
        assert_eq!(out.error, None);
        let got: Vec<(u64, u32, u32, usize)> = out
            .frames
            .iter()
            .map(|f| (f.ts_ns, f.linktype, f.orig_len, f.data.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1_500_000_000_123_456_000, 1, 64, 64),
                (1_500_000_000_123_456_789, 101, 40, 40),
                (101_500_000_000, 113, 100, 44),
                (1_500_000_000_123_000_000, 105, 5, 5),
                // simple packet: interface 0, previous packet's timestamp
                (1_500_000_000_123_000_000, 1, 16, 16),
                (42_000_000_000, 228, 20, 20),
            ]
        );
        assert_eq!(out.frames[2].data, payload(44, 2));
        let file =
            CaptureFile::open(temp_file(&bytes).path().to_str().expect("utf-8")).expect("opens");
        assert_eq!(file.linktype(), linktype::ETHERNET);
    }
}

fn u64b(v: u64, be: bool) -> [u8; 8] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

#[test]
fn simple_packet_respects_the_snap_length() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 10, &[]));
    bytes.extend(spb(false, &payload(16, 4), 1500));
    let out = read_bytes(&bytes).expect("opens");
    assert_eq!(out.error, None);
    assert_eq!(
        (out.frames[0].orig_len, out.frames[0].data.len()),
        (1500, 10)
    );
}

#[test]
fn pcapng_unsupported_first_interface_fails_at_open() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 105, 0, &[]));
    bytes.extend(idb(false, 1, 0, &[]));
    bytes.extend(epb(false, 1, 7, &payload(20, 0), 20));
    let f = temp_file(&bytes);
    let path = f.path().to_str().expect("utf-8");
    match CaptureFile::open(path) {
        Err(CaptureError::UnsupportedLinkType {
            linktype: 105,
            source,
        }) => assert_eq!(source, path),
        other => panic!("unexpected {other:?}"),
    }
    let out = read_path(f.path()).expect("opens with any link type");
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0].linktype, 1);
}

#[test]
fn pcapng_packet_on_unknown_interface_is_damage() {
    let mut bytes = shb(false);
    bytes.extend(idb(false, 1, 0, &[]));
    bytes.extend(epb(false, 0, 7, &payload(20, 0), 20));
    bytes.extend(epb(false, 1, 8, &payload(20, 0), 20));
    let out = read_bytes(&bytes).expect("opens");
    assert_eq!(out.frames.len(), 1);
    assert_eq!(damaged_index(&out.error), Some(1));
}

#[test]
fn truncated_pcap_yields_complete_packets_then_one_error() {
    let (bytes, ends) = sample_pcap(6);
    for cut in 0..bytes.len() {
        let result = read_bytes(&bytes[..cut]);
        if cut < 4 {
            assert!(
                matches!(result, Err(CaptureError::NotACapture { .. })),
                "cut {cut}"
            );
            continue;
        }
        if cut < 24 {
            match result {
                Err(CaptureError::Damaged {
                    packet_index: 0,
                    detail,
                    ..
                }) => {
                    assert!(detail.contains("file header"), "{detail}")
                }
                other => panic!("cut {cut}: unexpected {other:?}"),
            }
            continue;
        }
        let out = result.expect("opens");
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        assert_eq!(out.frames.len(), complete, "cut at {cut}");
        if cut == 24 || ends.contains(&cut) {
            assert_eq!(out.error, None, "cut at a record boundary {cut}");
        } else {
            assert_eq!(
                damaged_index(&out.error),
                Some(complete as u64),
                "cut at {cut}"
            );
        }
    }
}

#[test]
fn truncated_pcapng_yields_complete_packets_then_one_error() {
    for be in [false, true] {
        let (bytes, ends) = sample_pcapng(be);
        let header_end = shb(be).len() + idb(be, 1, 0, &[(9, vec![9])]).len();
        let stats_len = ng_block(be, 5, &[0; 12]).len();
        for cut in shb(be).len()..bytes.len() {
            let out = read_bytes(&bytes[..cut]).expect("opens");
            let complete = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(out.frames.len(), complete, "cut at {cut}");
            let boundary = cut == shb(be).len()
                || cut == header_end
                || ends.contains(&cut)
                || ends.iter().any(|&e| e + stats_len == cut);
            if boundary {
                assert_eq!(out.error, None, "cut at a block boundary {cut}");
            } else {
                assert_eq!(
                    damaged_index(&out.error),
                    Some(complete as u64),
                    "cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn absurd_caplen_is_damage() {
    let (mut bytes, _) = sample_pcap(2);
    let mut record = pcap_record(false, 1, 2, &[], 0, false);
    record[8..12].copy_from_slice(&(300u32 << 20).to_le_bytes());
    bytes.extend(record);
    bytes.extend([0; 64]);
    let out = read_bytes(&bytes).expect("opens");
    assert_eq!(out.frames.len(), 2);
    match out.error {
        Some(CaptureError::Damaged {
            packet_index: 2,
            detail,
            ..
        }) => {
            assert!(detail.contains("256 MiB"), "{detail}")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bad_inputs_give_clear_errors() {
    match read_bytes(b"") {
        Err(CaptureError::NotACapture { .. }) => {}
        other => panic!("empty file: {other:?}"),
    }
    match read_bytes(b"id,bidirectional_packets,bidirectional_bytes\n1,2,3\n") {
        Err(CaptureError::NotACapture { .. }) => {}
        other => panic!("text file: {other:?}"),
    }
    match CaptureFile::open("/nonexistent/flowtide/missing.pcap") {
        Err(CaptureError::Io { path, message }) => {
            assert_eq!(path, "/nonexistent/flowtide/missing.pcap");
            assert_eq!(message, "No such file or directory");
        }
        other => panic!("missing file: {other:?}"),
    }
    let dir = tempfile::tempdir().expect("temp dir");
    match CaptureFile::open(dir.path().to_str().expect("utf-8")) {
        Err(CaptureError::Io { message, .. }) => assert_eq!(message, "Is a directory"),
        other => panic!("directory: {other:?}"),
    }
    let e = CaptureError::NotACapture {
        path: "x.txt".into(),
    };
    assert_eq!(e.to_string(), "x.txt is not a pcap or pcapng capture file");
}

#[test]
fn unsupported_classic_linktype_fails_at_open() {
    let mut bytes = pcap_header(0xa1b2_c3d4, false, 105);
    bytes.extend(pcap_record(false, 1, 2, &payload(30, 0), 30, false));
    let f = temp_file(&bytes);
    let path = f.path().to_str().expect("utf-8");
    match CaptureFile::open(path) {
        Err(CaptureError::UnsupportedLinkType {
            source,
            linktype: 105,
        }) => assert_eq!(source, path),
        other => panic!("unexpected {other:?}"),
    }
    let out = read_path(f.path()).expect("any link type");
    assert_eq!(out.frames.len(), 1);
    assert_eq!(out.frames[0].linktype, 105);
}

#[test]
fn position_reaches_total_len() {
    let (bytes, _) = sample_pcap(5);
    let f = temp_file(&bytes);
    let mut file = CaptureFile::open(f.path().to_str().expect("utf-8")).expect("opens");
    assert_eq!(file.total_len(), Some(bytes.len() as u64));
    assert_eq!(file.position(), 24);
    let _ = drain(&mut file);
    assert_eq!(file.position(), bytes.len() as u64);
    assert_eq!(file.frames_read(), 5);
}

#[test]
fn streaming_matches_memory_map() {
    let (pcap, _) = sample_pcap(40);
    let (ng, _) = sample_pcapng(true);
    for bytes in [&pcap, &ng] {
        let mapped = read_bytes(bytes);
        for chunk in [1, 3, 7, 64, 1 << 20] {
            assert!(
                same_outcome(&mapped, &read_streamed(bytes, chunk)),
                "chunk {chunk}"
            );
            let cut = &bytes[..bytes.len() - 5];
            assert!(
                same_outcome(&read_bytes(cut), &read_streamed(cut, chunk)),
                "chunk {chunk}"
            );
        }
    }
}

#[cfg(unix)]
#[test]
fn fifo_is_read_as_a_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("capture.fifo");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !matches!(status, Ok(s) if s.success()) {
        println!("skipping: mkfifo is not available");
        return;
    }
    let (bytes, _) = sample_pcap(30);
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(fifo)
                .expect("open fifo");
            for piece in bytes.chunks(100) {
                f.write_all(piece).expect("write fifo");
            }
        })
    };
    let mut file = CaptureFile::open(fifo.to_str().expect("utf-8")).expect("opens");
    assert_eq!(file.total_len(), None);
    let out = drain(&mut file);
    writer.join().expect("writer thread");
    assert!(same_outcome(&Ok(out), &read_bytes(&bytes)));
}

/// Reads standard input in a child process (this test binary, re-run with an
/// environment variable), fed a capture through a pipe.
#[test]
fn stdin_is_read_as_a_stream() {
    if std::env::var_os("FLOWTIDE_STDIN_CHILD").is_some() {
        let mut file = CaptureFile::open("-").expect("stdin opens");
        let out = drain(&mut file);
        println!(
            "STDIN-RESULT frames={} error={:?}",
            out.frames.len(),
            out.error.is_some()
        );
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let (bytes, _) = sample_pcap(25);
    let mut child = std::process::Command::new(exe)
        .args([
            "--exact",
            "stdin_is_read_as_a_stream",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLOWTIDE_STDIN_CHILD", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut stdin = child.stdin.take().expect("child stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(&bytes).expect("feed child"));
    let output = child.wait_with_output().expect("child runs");
    feeder.join().expect("feeder thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("STDIN-RESULT frames=25 error=false"),
        "{stdout}"
    );
}

// ------------------------------------------------------------------------ property

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mapped = read_bytes(&bytes);
        prop_assert!(same_outcome(&mapped, &read_streamed(&bytes, 5)));
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_header_never_panic(
        ng in any::<bool>(),
        be in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = if ng { shb(be) } else { pcap_header(0xa1b2_3c4d, be, 1) };
        bytes.extend(tail);
        let mapped = read_bytes(&bytes);
        prop_assert!(same_outcome(&mapped, &read_streamed(&bytes, 13)));
    }

    #[test]
    fn mutated_valid_files_never_panic(
        ng in any::<bool>(),
        be in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        chunk in 1usize..100,
    ) {
        let mut bytes = if ng { sample_pcapng(be).0 } else { sample_pcap(8).0 };
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let mapped = read_bytes(&bytes);
        if let Ok(out) = &mapped {
            if let Some(CaptureError::Damaged { packet_index, .. }) = &out.error {
                prop_assert_eq!(*packet_index, out.frames.len() as u64);
            }
        }
        prop_assert!(same_outcome(&mapped, &read_streamed(&bytes, chunk)));
    }
}

// ------------------------------------------------------------------------- corpus

/// The shared corpus, or `None` (with a message) when it is not there.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: test corpus not found at {}", dir.display());
        None
    }
}

/// Every `.pcap`/`.pcapng` file under `dir`, sorted.
fn captures_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `corpus_path` → `pkts` from `files.tsv`.
fn expected_counts(corpus: &Path) -> HashMap<String, u64> {
    let Ok(text) = fs::read_to_string(corpus.join("files.tsv")) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(path_col), Some(pkts_col)) = (col("corpus_path"), col("pkts")) else {
        return HashMap::new();
    };
    lines
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let pkts = fields.get(pkts_col)?.replace(',', "").parse().ok()?;
            Some((fields.get(path_col)?.to_string(), pkts))
        })
        .collect()
}

/// libpcap's DLT for a link type, as it reports it for a file.
fn dlt_of(linktype: u32) -> i32 {
    match linktype {
        101 => Linktype::from_name("RAW").map(|l| l.0).unwrap_or(12),
        108 => Linktype::from_name("LOOP").map(|l| l.0).unwrap_or(108),
        other => other as i32,
    }
}

/// Our frames of `path` against libpcap's reading of it. Returns a note about the file
/// when libpcap cannot open it or truncates frames, `Err` on disagreement.
fn cross_check(path: &Path, ours: &Outcome) -> Result<Option<String>, String> {
    let mut theirs = match Capture::from_file_with_precision(path, Precision::Nano) {
        Ok(c) => c,
        Err(e) => return Ok(Some(format!("libpcap cannot open it ({e})"))),
    };
    let dlt = theirs.get_datalink().0;
    let mut note = None;
    for (i, f) in ours.frames.iter().enumerate() {
        let p = match theirs.next_packet() {
            Ok(p) => p,
            Err(e) => return Err(format!("libpcap stops at packet {i} ({e}), we go on")),
        };
        let h = p.header;
        let secs = if h.ts.tv_sec < 0 {
            // libpcap reads classic pcap seconds as signed 32-bit
            i128::from(h.ts.tv_sec as i32 as u32)
        } else {
            i128::from(h.ts.tv_sec)
        };
        let ts = secs * 1_000_000_000 + i128::from(h.ts.tv_usec);
        if i128::from(f.ts_ns) != ts {
            return Err(format!("packet {i}: timestamp {} vs libpcap {ts}", f.ts_ns));
        }
        if f.orig_len != h.len {
            return Err(format!(
                "packet {i}: length {} vs libpcap {}",
                f.orig_len, h.len
            ));
        }
        if f.data != p.data {
            let prefix = p.data.len() < f.data.len() && f.data.starts_with(p.data);
            if !prefix {
                return Err(format!("packet {i}: captured bytes differ from libpcap's"));
            }
            note = Some(format!("libpcap cuts packet {i} to the snap length"));
        }
        if dlt_of(f.linktype) != dlt {
            return Err(format!(
                "packet {i}: link type {} vs libpcap DLT {dlt}",
                f.linktype
            ));
        }
    }
    match (theirs.next_packet(), &ours.error) {
        (Err(pcap::Error::NoMorePackets), None) => Ok(note),
        (Err(pcap::Error::NoMorePackets), Some(e)) => {
            Err(format!("we fail ({e}), libpcap ends cleanly"))
        }
        (Err(e), Some(_)) => Ok(Some(format!("damaged; libpcap agrees: {e}"))),
        (Err(e), None) => Err(format!("libpcap fails ({e}) where we end cleanly")),
        (Ok(_), _) => Err(format!(
            "libpcap has more than our {} packets",
            ours.frames.len()
        )),
    }
}

#[test]
fn corpus_matches_files_tsv_and_libpcap() {
    let Some(corpus) = corpus() else { return };
    let counts = expected_counts(&corpus);
    let files = captures_under(&corpus);
    let mut failures = Vec::new();
    let (mut read, mut csv, mut counted, mut libpcap_checked, mut packets) = (0, 0, 0, 0, 0u64);
    for path in &files {
        let rel = path
            .strip_prefix(&corpus)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with("nfstream/tests/results/") {
            // CSV files despite the extension.
            match read_path(path) {
                Err(CaptureError::NotACapture { .. }) => csv += 1,
                other => failures.push(format!(
                    "{rel}: CSV file gave {:?}",
                    other.map(|o| o.frames.len())
                )),
            }
            continue;
        }
        let ours = match read_path(path) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{rel}: cannot open: {e}"));
                continue;
            }
        };
        read += 1;
        packets += ours.frames.len() as u64;
        if let Some(&expected) = counts.get(&rel) {
            counted += 1;
            if expected != ours.frames.len() as u64 {
                failures.push(format!(
                    "{rel}: {} packets, files.tsv says {expected}",
                    ours.frames.len()
                ));
            }
        }
        match cross_check(path, &ours) {
            Ok(note) => {
                if !matches!(&note, Some(n) if n.starts_with("libpcap cannot open")) {
                    libpcap_checked += 1;
                }
                if let Some(note) = note {
                    println!("note: {rel}: {note}");
                }
            }
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
        // The checked constructor agrees with the link type check.
        let checked = CaptureFile::open(path.to_str().expect("utf-8"));
        let first = ours.frames.first().map(|f| f.linktype);
        match (checked, first) {
            (Ok(f), _) if linktype::is_supported(f.linktype()) => {}
            (Err(CaptureError::UnsupportedLinkType { linktype: lt, .. }), _)
                if !linktype::is_supported(lt) => {}
            (other, _) => failures.push(format!("{rel}: open() gave {other:?}")),
        }
    }
    println!(
        "corpus: {} capture-named files, {read} read, {csv} CSV rejected, {counted} counts checked \
         against files.tsv, {libpcap_checked} cross-checked frame by frame with libpcap, {packets} packets",
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        read > 100 && counted > 100 && libpcap_checked > 100,
        "too few corpus files checked"
    );
}

/// Counts frames of `path` passing `expression`, with our filter and with libpcap's.
fn filter_counts(path: &Path, expression: &str) -> (u64, u64) {
    let mut file = CaptureFile::open_any_linktype(path.to_str().expect("utf-8")).expect("opens");
    let mut filter = BpfFilter::new(expression);
    let mut ours = 0;
    while let Ok(Poll::Frame(f)) = file.next_frame() {
        if filter.matches(&f).expect("filter compiles") {
            ours += 1;
        }
    }
    let mut cap = Capture::from_file(path).expect("libpcap opens");
    cap.filter(expression, true).expect("libpcap compiles");
    let mut theirs = 0;
    while cap.next_packet().is_ok() {
        theirs += 1;
    }
    (ours, theirs)
}

#[test]
fn bpf_filter_agrees_with_libpcap_on_the_corpus() {
    let Some(corpus) = corpus() else { return };
    let mut checked = 0;
    let mut matched_total = 0;
    for path in captures_under(&corpus) {
        if path.to_string_lossy().contains("nfstream/tests/results/")
            || Capture::from_file(&path).is_err()
        {
            continue;
        }
        for expression in [
            "tcp",
            "udp and greater 200",
            "ip6 or (ip[6:2] & 0x3fff != 0)",
        ] {
            let (ours, theirs) = filter_counts(&path, expression);
            assert_eq!(ours, theirs, "{} with {expression:?}", path.display());
            matched_total += ours;
        }
        checked += 1;
    }
    println!("bpf: {checked} corpus files, 3 expressions each, {matched_total} matches in total");
    assert!(checked > 100);
}

#[test]
fn bpf_filter_tcp_on_a_known_capture() {
    let Some(corpus) = corpus() else { return };
    let path = corpus.join("pcapplusplus/Tests/ExamplesTest/pcap_examples/ip-frag.pcap");
    if !path.exists() {
        println!("skipping: {} missing", path.display());
        return;
    }
    let (ours, theirs) = filter_counts(&path, "tcp");
    assert_eq!(ours, theirs);
    assert!(ours > 0);
}

#[test]
fn invalid_bpf_expression_is_a_filter_error() {
    let (bytes, _) = sample_pcap(1);
    let f = temp_file(&bytes);
    let mut file = CaptureFile::open(f.path().to_str().expect("utf-8")).expect("opens");
    let Ok(Poll::Frame(frame)) = file.next_frame() else {
        panic!("no frame")
    };
    let mut filter = BpfFilter::new("tcp port http-ish and");
    match filter.matches(&frame) {
        Err(CaptureError::Filter {
            expression,
            message,
        }) => {
            assert_eq!(expression, "tcp port http-ish and");
            assert!(!message.is_empty() && !message.contains('\n'), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(flowtide::capture::filter::validate("tcp and", linktype::ETHERNET).is_err());
    assert!(flowtide::capture::filter::validate("tcp", linktype::ETHERNET).is_ok());
}

// --------------------------------------------------------------------------- live

#[test]
fn live_capture_on_a_nonexistent_interface_is_a_clear_error() {
    match LiveCapture::open("ftnosuchif9", Some("tcp"), 65535, true) {
        Err(CaptureError::Live { interface, message }) => {
            println!("message: {message}");
            assert_eq!(interface, "ftnosuchif9");
            assert!(message.contains("does not exist"), "{message}");
        }
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("opened a nonexistent interface"),
    }
}

/// Opens the loopback interface; `None` (with a message) when this environment cannot
/// capture there.
fn open_loopback(filter: &str) -> Option<LiveCapture> {
    match LiveCapture::open("lo", Some(filter), 65535, false) {
        Ok(c) => Some(c),
        Err(e) => {
            println!("skipping: cannot capture on lo here: {e}");
            None
        }
    }
}

#[test]
fn live_capture_on_loopback_sees_our_datagram() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("local addr").port();
    let Some(mut live) = open_loopback(&format!("udp dst port {port}")) else {
        return;
    };
    assert!(live.is_live());
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64;
    let marker = b"flowtide-live-test-marker";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = None;
    while seen.is_none() && std::time::Instant::now() < deadline {
        socket.send_to(marker, ("127.0.0.1", port)).expect("send");
        loop {
            match live.next_frame().expect("live read") {
                Poll::Frame(f) => {
                    if f.data.windows(marker.len()).any(|w| w == marker) {
                        seen = Some((f.ts_ns, f.linktype, f.orig_len, f.data.len()));
                        break;
                    }
                }
                Poll::Idle => break,
                Poll::End => panic!("live capture ended by itself"),
            }
        }
    }
    let (ts_ns, lt, orig_len, caplen) = seen.expect("our datagram was captured");
    assert_eq!(lt, live.linktype());
    assert!(linktype::is_supported(lt));
    assert_eq!(orig_len as usize, caplen);
    assert!(
        ts_ns.abs_diff(now_ns) < 60_000_000_000,
        "timestamp {ts_ns} vs now {now_ns}"
    );
    let (received, _dropped, _if_dropped) = live.stats().expect("stats on Linux");
    assert!(received >= 1);
    let handle = live.stop_handle();
    handle.stop();
    assert!(matches!(live.next_frame(), Ok(Poll::End)));
    assert!(live.stats().is_none());
}

#[test]
fn live_capture_invalid_filter_is_a_filter_error() {
    match LiveCapture::open("lo", Some("udp port"), 65535, false) {
        Err(CaptureError::Filter { expression, .. }) => assert_eq!(expression, "udp port"),
        Err(e) => println!("skipping: cannot capture on lo here: {e}"),
        Ok(_) => panic!("an invalid filter was accepted"),
    }
}

/// Without the capture capabilities, opening an interface explains what is needed. When
/// run as root, the check runs in a child process that drops privileges with `setpriv`.
#[test]
fn live_capture_without_permission_explains_capabilities() {
    let in_child = std::env::var_os("FLOWTIDE_NOPERM_CHILD").is_some();
    let is_root = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if in_child || !is_root {
        match LiveCapture::open("lo", None, 65535, true) {
            Err(CaptureError::Live { message, .. }) => {
                assert!(message.contains("CAP_NET_RAW"), "{message}");
                println!("NOPERM-RESULT ok: {message}");
            }
            other => println!("skipping: opening lo without privileges gave {other:?}"),
        }
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let output = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(exe)
        .args([
            "--exact",
            "live_capture_without_permission_explains_capabilities",
            "--nocapture",
        ])
        .env("FLOWTIDE_NOPERM_CHILD", "1")
        .output();
    match output {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "child failed: {stdout}");
            if !stdout.contains("NOPERM-RESULT ok") {
                println!("skipping: unprivileged child could not check: {stdout}");
            }
        }
        Err(e) => println!("skipping: setpriv is not available: {e}"),
    }
}

#[test]
fn sources_and_filters_can_move_to_worker_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<CaptureFile>();
    assert_send::<LiveCapture>();
    assert_send::<BpfFilter>();
    assert_send::<flowtide::capture::live::StopHandle>();
}

// ------------------------------------------------------------- shared frame references

/// Reads `path` through [`CaptureFile::next_frame_refs`] (the shared-file path), `step`
/// frames per call.
fn read_refs(path: &Path, step: usize) -> Result<Outcome, CaptureError> {
    let mut file = CaptureFile::open_any_linktype(path.to_str().expect("utf-8 path"))?;
    let map = file.share_map().expect("a regular file is mapped");
    let mut refs = Vec::new();
    let error = loop {
        match file.next_frame_refs(step, &mut refs) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(e),
        }
    };
    assert!(matches!(file.next_frame_refs(step, &mut refs), Ok(false)));
    let frames = refs
        .iter()
        .map(|r| {
            let f = map.frame(r);
            Owned {
                ts_ns: f.ts_ns,
                linktype: f.linktype,
                orig_len: f.orig_len,
                data: f.data.to_vec(),
            }
        })
        .collect();
    Ok(Outcome { frames, error })
}

#[test]
fn frame_refs_match_next_frame() {
    let (pcap, _) = sample_pcap(40);
    let (ng, _) = sample_pcapng(true);
    for bytes in [&pcap, &ng] {
        for cut in [0, 1, 5, 17, 100] {
            let f = temp_file(&bytes[..bytes.len().saturating_sub(cut)]);
            let whole = read_path(f.path());
            for step in [1, 7, 1024] {
                assert!(
                    same_outcome(&whole, &read_refs(f.path(), step)),
                    "cut {cut}, step {step}"
                );
            }
        }
    }
    let Some(root) = corpus() else { return };
    for path in captures_under(&root) {
        let whole = read_path(&path);
        if whole.is_err() {
            continue;
        }
        assert!(
            same_outcome(&whole, &read_refs(&path, 1024)),
            "{}",
            path.display()
        );
    }
}
