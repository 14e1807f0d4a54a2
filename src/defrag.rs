//! `flowtide defrag`: a capture in, the same capture with its IP fragments reassembled out.
//!
//! A single-threaded loop over the capture (no dataflow): every frame is decoded; frames
//! that are not IP fragments — including frames that do not decode at all — are written
//! byte for byte, in their original order; fragments go to a
//! [`ReassemblyTable`] in capture order, and each completed datagram is written once, at
//! the position and with the capture time of the fragment that completed it. Fragments of
//! datagrams that never complete are dropped.
//!
//! A reassembled datagram needs a link-layer header: it gets the bytes that preceded the
//! IP header in the frame of its first offset-0 fragment (the one whose IP header the
//! reassembler keeps), or of the completing fragment when no offset-0 fragment was seen.
//! The IP header is located by finding the fragment's IP bytes in its frame. Ethernet
//! (with VLAN tags), Linux SLL/SLL2, BSD loopback, PPP and raw IP headers carry no length,
//! so the prefix is copied unchanged and the output keeps the input's link type. Known
//! limitation: when the fragmented packet was itself inside a tunnel or a PPPoE session,
//! the outer headers' length fields are copied unchanged (not fixed).

use std::io::BufWriter;

use anyhow::{anyhow, bail, Context as _, Result};
use flowtide_dataflows::hash::FastMap;
use flowtide_dataflows::packet::Packet;
use flowtide_dataflows::reassembly::{
    EventKind, FragKey, Policy, PolicyMap, ReassemblyConfig, ReassemblyTable,
};

use crate::capture::pcap_file::CaptureFile;
use crate::capture::pcap_writer::PcapWriter;
use crate::capture::{FrameSource, Poll};
use crate::cli::DefragArgs;
use crate::decode::Decoder;

/// The reassembly settings of `--frag-policy` / `--policy` (absent: bsd for IPv4 and
/// rfc5722 for IPv6), a timeout for both IP versions and a memory budget.
pub fn reassembly_config(policy: Option<Policy>, timeout_ns: u64, memory: u64) -> ReassemblyConfig {
    ReassemblyConfig {
        timeout_v4_ns: timeout_ns,
        timeout_v6_ns: timeout_ns,
        memory_budget: usize::try_from(memory).unwrap_or(usize::MAX),
        policies: policy.map_or_else(PolicyMap::default, PolicyMap::uniform),
        ..ReassemblyConfig::default()
    }
}

/// What `defrag` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct DefragReport {
    /// Frames read.
    pub frames_read: u64,
    /// Frames written unchanged (not fragments).
    pub frames_copied: u64,
    /// Fragments read.
    pub fragments: u64,
    /// Reassembled datagrams written.
    pub reassembled: u64,
    /// Events per kind.
    pub events: std::collections::BTreeMap<String, u64>,
}

/// The bytes before the IP packet `ip` in `frame`, when `ip` occurs in it.
fn link_prefix<'a>(frame: &'a [u8], ip: &[u8]) -> Option<&'a [u8]> {
    if ip.is_empty() || ip.len() > frame.len() {
        return None;
    }
    (0..=frame.len() - ip.len())
        .find(|&at| frame[at..at + ip.len()] == *ip)
        .map(|at| &frame[..at])
}

/// Runs `flowtide defrag`.
pub fn run(args: &DefragArgs) -> Result<()> {
    let mut input = CaptureFile::open(&args.read).map_err(|e| anyhow!("{e}"))?;
    let file = std::fs::File::create(&args.write)
        .with_context(|| format!("cannot create {}", args.write.display()))?;
    let report = defrag(&mut input, BufWriter::with_capacity(1 << 20, file), args)
        .with_context(|| format!("cannot write {}", args.write.display()))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn defrag(
    input: &mut CaptureFile,
    out: BufWriter<std::fs::File>,
    args: &DefragArgs,
) -> Result<DefragReport> {
    let decoder = Decoder::default();
    let mut table = ReassemblyTable::new(reassembly_config(args.policy, args.timeout, 64 << 20));
    let mut writer: Option<PcapWriter<BufWriter<std::fs::File>>> = None;
    let mut out = Some(out);
    let mut linktype = input.linktype();
    let mut report = DefragReport::default();
    // Link-layer prefix per datagram in flight (from its first offset-0 fragment).
    let mut prefixes: FastMap<FragKey, (bool, Vec<u8>)> = FastMap::default();
    let (mut done, mut events) = (Vec::new(), Vec::new());
    let mut packet = Packet::default();
    let mut last_ns = 0u64;
    loop {
        let frame = match input.next_frame().map_err(|e| anyhow!("{e}"))? {
            Poll::Frame(f) => f,
            Poll::Idle => continue,
            Poll::End => break,
        };
        if writer.is_none() {
            if linktype == crate::capture::pcap_file::LINKTYPE_UNKNOWN {
                linktype = frame.linktype;
            }
            let w = out.take().expect("writer created once");
            writer = Some(PcapWriter::new(w, linktype)?);
        }
        let w = writer.as_mut().expect("writer");
        if frame.linktype != linktype {
            bail!(
                "{}: frames of several link types ({linktype} and {}) cannot go to one pcap",
                args.read,
                frame.linktype
            );
        }
        report.frames_read += 1;
        last_ns = last_ns.max(frame.ts_ns);
        let fragment = decoder
            .decode(&frame, 0, report.frames_read - 1, &mut packet)
            .is_ok()
            && packet.is_fragment()
            && packet.bytes.is_some();
        if !fragment {
            report.frames_copied += 1;
            w.write_truncated(frame.ts_ns, frame.data, frame.orig_len)?;
            continue;
        }
        report.fragments += 1;
        let ip = packet.bytes.as_deref().unwrap_or_default();
        let prefix = link_prefix(frame.data, ip).unwrap_or_default();
        if let Some(key) = FragKey::of_packet(&packet) {
            let first = packet.frag_offset == 0;
            let e = prefixes
                .entry(key)
                .or_insert_with(|| (first, prefix.to_vec()));
            if first && !e.0 {
                *e = (true, prefix.to_vec());
            }
        }
        table.push(&packet, &mut done, &mut events);
        for r in done.drain(..) {
            let mut bytes = prefixes
                .remove(&r.key)
                .map_or_else(|| prefix.to_vec(), |(_, p)| p);
            bytes.extend_from_slice(&r.bytes);
            w.write(r.ts_ns, &bytes)?;
            report.reassembled += 1;
        }
        forget(&mut prefixes, &mut events);
    }
    table.drain(last_ns, &mut events);
    events.clear();
    let w = match writer {
        Some(w) => w,
        None => PcapWriter::new(out.take().expect("unused writer"), linktype)?,
    };
    w.finish()?;
    report.events = table.counters().events.clone();
    Ok(report)
}

/// Forgets the prefixes of datagrams that ended without completing.
fn forget(
    prefixes: &mut FastMap<FragKey, (bool, Vec<u8>)>,
    events: &mut Vec<flowtide_dataflows::reassembly::ReassemblyEvent>,
) {
    for e in events.drain(..) {
        if matches!(
            e.kind,
            EventKind::Timeout { .. }
                | EventKind::Eviction { .. }
                | EventKind::IncompleteAtEnd { .. }
        ) {
            prefixes.remove(&e.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_what_precedes_the_ip_bytes() {
        let frame = [1u8, 2, 3, 0x45, 9, 9, 0];
        assert_eq!(link_prefix(&frame, &[0x45, 9, 9]), Some(&frame[..3]));
        assert_eq!(link_prefix(&frame, &frame), Some(&frame[..0]));
        assert_eq!(link_prefix(&frame, &[7]), None);
    }
}
