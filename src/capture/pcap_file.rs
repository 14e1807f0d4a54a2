//! Capture files (pcap, pcapng) and standard input.
//!
//! [`CaptureFile`] is flowtide's own reader for both capture formats:
//!
//! - classic pcap in either byte order, with microsecond (`0xa1b2c3d4`) or nanosecond
//!   (`0xa1b23c4d`) timestamps, and the "modified" pcap of Alexey Kuznetzov's patches
//!   (`0xa1b2cd34`, 24-byte record headers);
//! - pcapng in either byte order, with any number of sections (each section starts a new
//!   set of interfaces), Interface Description Blocks (link type, `if_tsresol`,
//!   `if_tsoffset`), Enhanced, Simple and obsolete Packet Blocks. Every other block (name
//!   resolution, interface statistics, decryption secrets, custom, ...) is skipped.
//!
//! Regular files are memory-mapped and frames borrow the mapping (no copy); standard input
//! (path `-`) and files that cannot be mapped are read in large chunks into a buffer.
//! Pages of the mapping that have been read are released every [`RELEASE_STEP`] bytes
//! (`MADV_DONTNEED`: only this process's page-table entries go, the page cache stays), so
//! the resident set stays small whatever the size of the file. A reader whose frames are
//! used after it has moved on (several workers sharing one file) takes that duty over
//! with [`CaptureFile::share_map`].
//!
//! Simple Packet Blocks carry no timestamp: their frames get the timestamp of the previous
//! packet of the same section (0 when they come first), so event time never jumps back to
//! 1970 in the middle of a capture.
//!
//! The reader never panics on malformed input. A file cut short, or a record header that
//! is obviously corrupt, yields every complete packet before the damage and then one
//! [`CaptureError::Damaged`] naming the index of the first packet that could not be read.

use std::io::{self, Read};
use std::sync::Arc;

use super::{linktype, CaptureError, Frame, FrameSource, Poll};

mod input;
mod pcapng_fields;

use input::{prefetch_line, Backing, Input};
pub use input::{FrameRef, SharedMap};
use pcapng_fields::{Interface, SimpleFields, TimedFields};

/// Largest captured length accepted in a record; anything above is a corrupt header.
pub const MAX_CAPLEN: u32 = 256 * 1024 * 1024;

/// Largest pcapng block accepted (a maximal packet plus room for options).
const MAX_BLOCK_LEN: u32 = MAX_CAPLEN + 1024 * 1024;

/// Bytes ahead of the read position of a mapped file that are prefetched into the CPU
/// caches. Walking record headers is a chain of dependent loads (the next header's
/// address depends on this one's length), each a cache miss; prefetching the bytes ahead
/// turns the chain into cache hits.
const PREFETCH_AHEAD: usize = 4096;

/// Consumed bytes of a mapped file are released from the resident set in steps of this
/// size.
pub const RELEASE_STEP: usize = 8 << 20;

/// Classic pcap magic, microsecond timestamps.
const MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// Classic pcap magic, nanosecond timestamps.
const MAGIC_NSEC: u32 = 0xa1b2_3c4d;
/// Kuznetzov's modified pcap (microsecond timestamps, 24-byte record headers).
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;
/// pcapng Section Header Block type (a byte palindrome).
const NG_SHB: u32 = 0x0a0d_0d0a;
/// pcapng byte-order magic inside the Section Header Block.
const NG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

/// pcapng Interface Description Block.
const NG_IDB: u32 = 1;
/// pcapng obsolete Packet Block.
const NG_PB: u32 = 2;
/// pcapng Simple Packet Block.
const NG_SPB: u32 = 3;
/// pcapng Enhanced Packet Block.
const NG_EPB: u32 = 6;

/// Link type reported by [`CaptureFile::linktype`] for a pcapng file without interfaces.
pub const LINKTYPE_UNKNOWN: u32 = u32::MAX;

/// A classic pcap or pcapng capture read from a file or standard input.
///
/// Frames borrow the reader's buffer (the memory map for regular files) until the next
/// call to [`FrameSource::next_frame`].
pub struct CaptureFile {
    path: String,
    input: Input,
    format: Format,
    /// The current pcapng section (unused for classic pcap).
    ng: NgSection,
    /// Packets yielded so far (the index of the next packet).
    packets: u64,
    /// Set after the end or an error: every further call returns [`Poll::End`].
    finished: bool,
    first_linktype: u32,
    total_len: Option<u64>,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("linktype", &self.first_linktype)
            .field("packets", &self.packets)
            .field("position", &self.input.position())
            .field("total_len", &self.total_len)
            .finish_non_exhaustive()
    }
}

impl CaptureFile {
    /// Opens a capture file, or standard input when `path` is `-`.
    ///
    /// Fails with [`CaptureError::Io`] when the file cannot be read,
    /// [`CaptureError::NotACapture`] when it is neither pcap nor pcapng, and
    /// [`CaptureError::UnsupportedLinkType`] when the link type of a classic pcap (or of
    /// the first interface of a pcapng file) is not one flowtide decodes.
    pub fn open(path: &str) -> Result<CaptureFile, CaptureError> {
        let file = Self::open_any_linktype(path)?;
        if file.first_linktype != LINKTYPE_UNKNOWN && !linktype::is_supported(file.first_linktype) {
            return Err(CaptureError::UnsupportedLinkType {
                source: file.path,
                linktype: file.first_linktype,
            });
        }
        Ok(file)
    }

    /// Like [`CaptureFile::open`], but accepts captures of any link type (for tools that
    /// only count or copy frames).
    pub fn open_any_linktype(path: &str) -> Result<CaptureFile, CaptureError> {
        let (input, total_len) = Input::open(path)?;
        Self::with_input(path, input, total_len)
    }

    /// Reads a capture from any byte stream (e.g. a decompressor), in large chunks; `name`
    /// is used in error messages. Accepts any link type, like
    /// [`CaptureFile::open_any_linktype`].
    pub fn from_reader(
        name: &str,
        reader: impl Read + Send + 'static,
    ) -> Result<CaptureFile, CaptureError> {
        Self::with_input(name, Input::stream(Box::new(reader)), None)
    }

    fn with_input(
        path: &str,
        input: Input,
        total_len: Option<u64>,
    ) -> Result<CaptureFile, CaptureError> {
        let mut file = CaptureFile {
            path: path.to_owned(),
            input,
            format: Format::Pcap(PcapFormat::default()),
            ng: NgSection::default(),
            packets: 0,
            finished: false,
            first_linktype: LINKTYPE_UNKNOWN,
            total_len,
        };
        file.read_file_header()?;
        Ok(file)
    }

    /// Link type of the global header (classic pcap) or of the first interface (pcapng);
    /// [`LINKTYPE_UNKNOWN`] for a pcapng file that describes no interface before its
    /// first packet.
    pub fn linktype(&self) -> u32 {
        self.first_linktype
    }

    /// The path this capture was opened from (`-` for standard input).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Number of frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.packets
    }

    /// Reads up to `max` more frames of a memory-mapped file (see
    /// [`CaptureFile::share_map`]), appending where each one is in the map to `out`.
    /// Returns `Ok(false)` once the input is exhausted (then fewer frames may have been
    /// appended), and after the frames before it, the error that ends a damaged file,
    /// exactly as [`FrameSource::next_frame`] would. Appends nothing for a stream.
    ///
    /// Classic pcap records are walked in a tight loop; pcapng blocks and anything
    /// unusual take the general path.
    pub fn next_frame_refs(
        &mut self,
        max: usize,
        out: &mut Vec<FrameRef>,
    ) -> Result<bool, CaptureError> {
        let Backing::Mapped(map) = &self.input.backing else {
            return Ok(false);
        };
        let map = Arc::clone(map);
        let goal = out.len() + max;
        if let (Format::Pcap(f), false) = (self.format, self.finished) {
            let bytes: &[u8] = &map;
            let header_len = f.record_len;
            let mut pos = self.input.pos;
            let mut prefetched = self.input.prefetched;
            while out.len() < goal {
                let end = pos.saturating_add(PREFETCH_AHEAD).min(bytes.len());
                let mut line = prefetched.max(pos & !63);
                while line < end {
                    prefetch_line(bytes.as_ptr().wrapping_add(line));
                    line += 64;
                }
                prefetched = line;
                let Some(h) = bytes.get(pos..).and_then(|rest| rest.first_chunk::<16>()) else {
                    break;
                };
                let caplen = read_u32(h, 8, f.big_endian);
                let data = pos + header_len;
                if caplen > MAX_CAPLEN || data + caplen as usize > bytes.len() {
                    break; // the general path reports it
                }
                let secs = u64::from(read_u32(h, 0, f.big_endian));
                let frac = u64::from(read_u32(h, 4, f.big_endian));
                let frac_ns = if f.nanos {
                    frac
                } else {
                    frac.saturating_mul(1000)
                };
                out.push(FrameRef {
                    ts_ns: secs.saturating_mul(1_000_000_000).saturating_add(frac_ns),
                    offset: data,
                    caplen,
                    orig_len: read_u32(h, 12, f.big_endian),
                    linktype: f.linktype,
                });
                pos = data + caplen as usize;
                self.packets += 1;
            }
            self.input.pos = pos;
            self.input.prefetched = prefetched;
        }
        while out.len() < goal {
            match self.next_frame()? {
                Poll::Frame(frame) => out.push(FrameRef {
                    ts_ns: frame.ts_ns,
                    offset: (frame.data.as_ptr() as usize).wrapping_sub(map.as_ptr() as usize),
                    caplen: frame.data.len() as u32,
                    orig_len: frame.orig_len,
                    linktype: frame.linktype,
                }),
                Poll::Idle | Poll::End => return Ok(false),
            }
        }
        Ok(true)
    }

    /// A handle on the memory map of a mapped file (`None` for streams): frames returned
    /// by this reader are slices of [`SharedMap::bytes`] and stay valid after the next
    /// call. The reader stops releasing consumed pages; the caller releases them with
    /// [`SharedMap::release`] once no frame there is in use any more.
    pub fn share_map(&mut self) -> Option<SharedMap> {
        match &self.input.backing {
            Backing::Mapped(map) => {
                self.input.released = usize::MAX / 2;
                Some(SharedMap(Arc::clone(map)))
            }
            Backing::Stream(_) => None,
        }
    }

    /// Reads the pcap global header or the first pcapng section header, and for pcapng
    /// the blocks up to the first interface description.
    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let head = self.fill(24)?;
        let Some(magic) = head.first_chunk::<4>().copied() else {
            return Err(self.not_a_capture());
        };
        if u32::from_le_bytes(magic) == NG_SHB {
            self.format = Format::PcapNg;
            self.start_section()?;
            self.prime_pcapng();
            return Ok(());
        }
        let (big_endian, magic) = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
            (m, _) if is_pcap_magic(m) => (false, m),
            (_, m) if is_pcap_magic(m) => (true, m),
            _ => return Err(self.not_a_capture()),
        };
        let Some(header) = head.first_chunk::<24>() else {
            return Err(self.damaged("the file ends inside the 24-byte pcap file header"));
        };
        let raw_linktype = read_u32(header, 20, big_endian);
        self.format = Format::Pcap(PcapFormat {
            big_endian,
            nanos: magic == MAGIC_NSEC,
            record_len: if magic == MAGIC_MODIFIED { 24 } else { 16 },
            // The upper bits carry FCS-length flags (LT_LINKTYPE in libpcap).
            linktype: raw_linktype & 0xffff,
        });
        self.first_linktype = raw_linktype & 0xffff;
        self.input.advance(24);
        Ok(())
    }

    /// Makes at least `n` bytes available from the current position (fewer at the end of
    /// the input) and returns everything available.
    #[inline]
    fn fill(&mut self, n: usize) -> Result<&[u8], CaptureError> {
        if self.input.window().len() < n {
            if let Err(e) = self.input.refill(n) {
                self.finished = true;
                return Err(CaptureError::Io {
                    path: self.path.clone(),
                    message: io_message(&e),
                });
            }
        }
        Ok(self.input.window())
    }

    /// A [`CaptureError::NotACapture`] for this file.
    fn not_a_capture(&self) -> CaptureError {
        CaptureError::NotACapture {
            path: self.path.clone(),
        }
    }

    /// A [`CaptureError::Damaged`] at the next packet; the source is finished afterwards.
    #[cold]
    fn damaged(&mut self, detail: impl Into<String>) -> CaptureError {
        self.finished = true;
        CaptureError::Damaged {
            path: self.path.clone(),
            packet_index: self.packets,
            detail: detail.into(),
        }
    }

    /// Returns the frame whose record starts at the current position: `header_len` bytes
    /// of record header followed by `caplen` bytes of data, padded to `record_len`.
    #[inline]
    fn emit(
        &mut self,
        header_len: usize,
        caplen: usize,
        record_len: usize,
        frame: Meta,
    ) -> Poll<'_> {
        let start = self.input.pos + header_len;
        self.input.advance(record_len);
        self.packets += 1;
        let data = self.input.bytes(start, caplen);
        Poll::Frame(Frame {
            ts_ns: frame.ts_ns,
            linktype: frame.linktype,
            orig_len: frame.orig_len,
            data,
        })
    }

    // ---------------------------------------------------------------- classic pcap

    /// The next record of a classic pcap file.
    #[inline]
    fn next_pcap(&mut self, f: PcapFormat) -> Result<Poll<'_>, CaptureError> {
        let header_len = f.record_len;
        let window = self.fill(header_len)?;
        let have = window.len();
        let Some(h) = window.first_chunk::<16>().copied() else {
            if have == 0 {
                self.finished = true;
                return Ok(Poll::End);
            }
            return Err(self.truncated_header(have, header_len));
        };
        if have < header_len {
            return Err(self.truncated_header(have, header_len));
        }
        let h = &h;
        let secs = u64::from(read_u32(h, 0, f.big_endian));
        let frac = u64::from(read_u32(h, 4, f.big_endian));
        let caplen = read_u32(h, 8, f.big_endian);
        let orig_len = read_u32(h, 12, f.big_endian);
        if caplen > MAX_CAPLEN {
            return Err(self.absurd_caplen(caplen));
        }
        let frac_ns = if f.nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        let meta = Meta {
            ts_ns: secs.saturating_mul(1_000_000_000).saturating_add(frac_ns),
            linktype: f.linktype,
            orig_len,
        };
        let caplen = caplen as usize;
        let record_len = header_len + caplen;
        let available = self.fill(record_len)?.len();
        if available < record_len {
            return Err(self.truncated_data(caplen, available.saturating_sub(header_len)));
        }
        Ok(self.emit(header_len, caplen, record_len, meta))
    }

    #[cold]
    fn truncated_header(&mut self, have: usize, need: usize) -> CaptureError {
        let msg =
            format!("the file ends inside a packet record header ({have} of {need} bytes present)");
        self.damaged(msg)
    }

    #[cold]
    fn truncated_data(&mut self, caplen: usize, have: usize) -> CaptureError {
        let msg = format!(
            "the file ends inside the packet data ({have} of {caplen} captured bytes present)"
        );
        self.damaged(msg)
    }

    #[cold]
    fn absurd_caplen(&mut self, caplen: u32) -> CaptureError {
        let msg = format!(
            "the record header claims {caplen} captured bytes, more than the 256 MiB limit, \
             so the header is corrupt"
        );
        self.damaged(msg)
    }

    // ---------------------------------------------------------------- pcapng

    /// Reads the Section Header Block at the current position: byte order, version, and a
    /// fresh interface table.
    fn start_section(&mut self) -> Result<(), CaptureError> {
        let at_start = self.input.position() == 0;
        let window = self.fill(28)?;
        let Some(h) = window.first_chunk::<12>() else {
            return Err(if at_start {
                self.not_a_capture()
            } else {
                self.damaged("the file ends inside a pcapng section header")
            });
        };
        let big_endian = match (read_u32(h, 8, false), read_u32(h, 8, true)) {
            (NG_BYTE_ORDER, _) => false,
            (_, NG_BYTE_ORDER) => true,
            _ if at_start => return Err(self.not_a_capture()),
            _ => return Err(self.damaged("a pcapng section header has no valid byte-order magic")),
        };
        let block_len = read_u32(h, 4, big_endian);
        if block_len < 28 || block_len % 4 != 0 {
            return Err(self.damaged(format!(
                "a pcapng section header block has an invalid length of {block_len} bytes"
            )));
        }
        let block = self.block(block_len)?;
        let major = read_u16(block, 12, big_endian).unwrap_or(0);
        let minor = read_u16(block, 14, big_endian).unwrap_or(0);
        if major != 1 {
            return Err(self.damaged(format!("unsupported pcapng version {major}.{minor}")));
        }
        self.ng = NgSection {
            big_endian,
            interfaces: Vec::new(),
            last_ts_ns: 0,
        };
        self.input.advance(block_len as usize);
        Ok(())
    }

    /// Consumes the blocks that precede the first packet of the file, until the first
    /// interface is known, so that [`CaptureFile::linktype`] can report it. Stops quietly
    /// at anything unusual; [`FrameSource::next_frame`] then reports it.
    fn prime_pcapng(&mut self) {
        while self.first_linktype == LINKTYPE_UNKNOWN {
            let be = self.ng.big_endian;
            let Ok(window) = self.fill(8) else { return };
            let Some(h) = window.first_chunk::<8>() else {
                return;
            };
            if matches!(read_u32(h, 0, be), NG_PB | NG_SPB | NG_EPB) {
                return;
            }
            if self.next_pcapng_block().is_err() {
                // Nothing was consumed: next_frame meets (and reports) the damage again.
                self.finished = false;
                return;
            }
        }
    }

    /// Makes the whole `block_len`-byte block at the current position available and
    /// returns it (the block header is checked by the caller).
    #[inline]
    fn block(&mut self, block_len: u32) -> Result<&[u8], CaptureError> {
        if block_len > MAX_BLOCK_LEN {
            let msg = format!(
                "a pcapng block claims to be {block_len} bytes long, more than the 257 MiB \
                 limit, so its header is corrupt"
            );
            return Err(self.damaged(msg));
        }
        let len = block_len as usize;
        let available = self.fill(len)?.len();
        if available < len {
            let msg =
                format!("the file ends inside a pcapng block ({available} of {len} bytes present)");
            return Err(self.damaged(msg));
        }
        let window = self.input.window();
        Ok(window.get(..len).unwrap_or(window))
    }

    /// The next frame of a pcapng file, skipping non-packet blocks.
    #[inline]
    fn next_pcapng(&mut self) -> Result<Poll<'_>, CaptureError> {
        loop {
            match self.next_pcapng_block()? {
                NgStep::Packet(p) => {
                    return Ok(self.emit(p.header_len, p.caplen, p.block_len, p.meta))
                }
                NgStep::End => {
                    self.finished = true;
                    return Ok(Poll::End);
                }
                NgStep::Skipped => {}
            }
        }
    }

    /// Processes one pcapng block. Non-packet blocks are consumed; a packet block is left
    /// in place and described for [`CaptureFile::emit`].
    fn next_pcapng_block(&mut self) -> Result<NgStep, CaptureError> {
        let be = self.ng.big_endian;
        let window = self.fill(8)?;
        let Some(h) = window.first_chunk::<8>() else {
            if window.is_empty() {
                return Ok(NgStep::End);
            }
            let have = window.len();
            return Err(self.damaged(format!(
                "the file ends inside a pcapng block header ({have} of 8 bytes present)"
            )));
        };
        let block_type = read_u32(h, 0, be);
        if block_type == NG_SHB {
            self.start_section()?;
            return Ok(NgStep::Skipped);
        }
        let block_len = read_u32(h, 4, be);
        if block_len < 12 || block_len % 4 != 0 {
            return Err(self.damaged(format!(
                "a pcapng block of type {block_type:#x} has an invalid length of {block_len} bytes"
            )));
        }
        let block = self.block(block_len)?;
        let body = block
            .get(8..block.len().saturating_sub(4))
            .unwrap_or_default();
        let parsed = match block_type {
            NG_EPB => Parsed::Timed(TimedFields::enhanced(body, be)),
            NG_PB => Parsed::Timed(TimedFields::obsolete(body, be)),
            NG_SPB => Parsed::Simple(body.first_chunk::<4>().map(|b| SimpleFields {
                orig_len: read_u32(b, 0, be),
                room: body.len() - 4,
            })),
            NG_IDB => Parsed::Interface(Interface::parse(body, be)),
            _ => Parsed::Other,
        };
        let block_len = block_len as usize;
        match parsed {
            Parsed::Timed(Some(t)) => self.timed_packet(t, block_len),
            Parsed::Simple(Some(s)) => self.simple_packet(s, block_len),
            Parsed::Interface(Some(iface)) => {
                if self.first_linktype == LINKTYPE_UNKNOWN {
                    self.first_linktype = iface.linktype;
                }
                self.ng.interfaces.push(iface);
                self.input.advance(block_len);
                Ok(NgStep::Skipped)
            }
            Parsed::Other => {
                self.input.advance(block_len);
                Ok(NgStep::Skipped)
            }
            Parsed::Timed(None) | Parsed::Simple(None) | Parsed::Interface(None) => Err(self
                .damaged(format!(
                    "a pcapng block of type {block_type} is too short for its fixed fields"
                ))),
        }
    }

    /// The interface a packet block refers to.
    #[inline]
    fn interface(&mut self, id: u32) -> Result<Interface, CaptureError> {
        if let Some(iface) = self.ng.interfaces.get(id as usize) {
            return Ok(*iface);
        }
        let count = self.ng.interfaces.len();
        Err(self.damaged(format!(
            "a packet refers to interface {id}, but its section describes only {count} \
             interface(s)"
        )))
    }

    /// An enhanced or obsolete packet block.
    #[inline]
    fn timed_packet(&mut self, t: TimedFields, block_len: usize) -> Result<NgStep, CaptureError> {
        let iface = self.interface(t.interface)?;
        if t.caplen as usize > t.room {
            let (caplen, room) = (t.caplen, t.room);
            return Err(self.damaged(format!(
                "a packet block claims {caplen} captured bytes but has room for only {room}"
            )));
        }
        let ts_ns = iface.ts_ns(t.ts);
        self.ng.last_ts_ns = ts_ns;
        Ok(NgStep::Packet(NgPacket {
            header_len: 28,
            caplen: t.caplen as usize,
            block_len,
            meta: Meta {
                ts_ns,
                linktype: iface.linktype,
                orig_len: t.orig_len,
            },
        }))
    }

    /// A Simple Packet Block: interface 0, no timestamp (the previous packet's is used).
    fn simple_packet(&mut self, s: SimpleFields, block_len: usize) -> Result<NgStep, CaptureError> {
        let iface = self.interface(0)?;
        let mut caplen = (s.orig_len as usize).min(s.room);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(NgStep::Packet(NgPacket {
            header_len: 12,
            caplen,
            block_len,
            meta: Meta {
                ts_ns: self.ng.last_ts_ns,
                linktype: iface.linktype,
                orig_len: s.orig_len,
            },
        }))
    }
}

impl FrameSource for CaptureFile {
    #[inline]
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError> {
        if self.finished {
            return Ok(Poll::End);
        }
        if self.input.pos.saturating_sub(self.input.released) >= RELEASE_STEP {
            self.input.release_consumed();
        }
        self.input.prefetch_ahead();
        match self.format {
            Format::Pcap(f) => self.next_pcap(f),
            Format::PcapNg => self.next_pcapng(),
        }
    }

    fn position(&self) -> u64 {
        self.input.position()
    }

    fn total_len(&self) -> Option<u64> {
        self.total_len
    }
}

/// True for the classic pcap magics (read in the file's byte order).
fn is_pcap_magic(magic: u32) -> bool {
    matches!(magic, MAGIC_USEC | MAGIC_NSEC | MAGIC_MODIFIED)
}

/// A `u32` at `offset` of a fixed-size header (the offset is a constant in every caller,
/// so the bounds check disappears; out of range reads as 0 instead of panicking).
#[inline(always)]
fn read_u32<const N: usize>(bytes: &[u8; N], offset: usize, big_endian: bool) -> u32 {
    let Some(b) = bytes
        .get(offset..offset + 4)
        .and_then(|s| s.first_chunk::<4>())
    else {
        return 0;
    };
    if big_endian {
        u32::from_be_bytes(*b)
    } else {
        u32::from_le_bytes(*b)
    }
}

/// A `u16` at `offset` of a slice, if present.
#[inline]
fn read_u16(bytes: &[u8], offset: usize, big_endian: bool) -> Option<u16> {
    let b = bytes.get(offset..)?.first_chunk::<2>()?;
    Some(if big_endian {
        u16::from_be_bytes(*b)
    } else {
        u16::from_le_bytes(*b)
    })
}

/// An operating-system error message without Rust's " (os error N)" suffix.
fn io_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// The container format.
#[derive(Clone, Copy, Debug)]
enum Format {
    Pcap(PcapFormat),
    PcapNg,
}

/// Classic pcap parameters from the global header.
#[derive(Clone, Copy, Debug, Default)]
struct PcapFormat {
    big_endian: bool,
    nanos: bool,
    record_len: usize,
    linktype: u32,
}

/// State of the current pcapng section.
#[derive(Clone, Debug, Default)]
struct NgSection {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Timestamp of the previous packet, used for Simple Packet Blocks.
    last_ts_ns: u64,
}

/// Frame metadata decoded from a record header.
#[derive(Clone, Copy, Debug)]
struct Meta {
    ts_ns: u64,
    linktype: u32,
    orig_len: u32,
}

/// Outcome of one pcapng block.
enum NgStep {
    Packet(NgPacket),
    Skipped,
    End,
}

/// Fixed fields of a block, parsed before the block's bytes are released.
enum Parsed {
    Timed(Option<TimedFields>),
    Simple(Option<SimpleFields>),
    Interface(Option<Interface>),
    Other,
}

/// A packet block at the current position.
struct NgPacket {
    header_len: usize,
    caplen: usize,
    block_len: usize,
    meta: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_message_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }
}
