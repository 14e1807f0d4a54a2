//! The bytes of a capture file: a read-only memory map shared by the workers that read
//! it (released from the resident set as it is consumed, prefetched ahead of the
//! reader), or a buffer refilled from a stream (standard input, files that cannot be
//! mapped).

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use memmap2::Mmap;

use super::{io_message, PREFETCH_AHEAD};
use crate::capture::{CaptureError, Frame};

/// Size of the chunks read from standard input or unmappable files.
const CHUNK: usize = 1 << 20;

/// Step of [`SharedMap::prefault`]: one read per 64 KiB, the span that Linux maps around
/// a faulting address of a file mapping ("fault-around"; pages it leaves out are simply
/// faulted in later by whoever reads them).
const PAGE_STEP: usize = 64 << 10;

/// Where a frame of a memory-mapped capture is, and what its record header says (see
/// [`super::CaptureFile::next_frame_refs`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameRef {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Offset of the captured bytes in [`SharedMap::bytes`].
    pub offset: usize,
    /// Captured length.
    pub caplen: u32,
    /// Length on the wire.
    pub orig_len: u32,
    /// Link-layer header type.
    pub linktype: u32,
}

/// A read-only memory map of a capture file, shared between threads.
#[derive(Clone)]
pub struct SharedMap(pub(super) Arc<Mmap>);

impl std::fmt::Debug for SharedMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMap")
            .field("len", &self.0.len())
            .finish()
    }
}

impl SharedMap {
    /// The whole file.
    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The frame `r` stands for.
    #[inline(always)]
    pub fn frame(&self, r: &FrameRef) -> Frame<'_> {
        Frame {
            ts_ns: r.ts_ns,
            linktype: r.linktype,
            orig_len: r.orig_len,
            data: self.slice(r.offset, r.caplen as usize),
        }
    }

    /// Reads one byte every 64 KiB of `start..end` so that its pages are
    /// mapped (page faults are taken here rather than by whoever reads them next).
    pub fn prefault(&self, start: usize, end: usize) {
        let bytes = self.bytes();
        let end = end.min(bytes.len());
        let step = PAGE_STEP;
        let mut at = start / step * step;
        while at < end {
            std::hint::black_box(bytes[at]);
            at += step;
        }
    }

    /// `len` bytes at `offset` (empty if out of range, rather than a panic).
    #[inline(always)]
    pub fn slice(&self, offset: usize, len: usize) -> &[u8] {
        self.0
            .get(offset..offset.saturating_add(len))
            .unwrap_or_default()
    }

    /// Drops this process's page-table entries for the pages in `start..end` (`end`
    /// rounded down to a page boundary; nothing before `end` may be in use), so
    /// they no longer count in its resident set (the page cache keeps them; reading them
    /// again faults them back in, so this is harmless for correctness).
    pub fn release(&self, start: usize, end: usize) {
        release_pages(&self.0, start, end);
    }
}

/// `madvise(MADV_DONTNEED)` on the pages of `start..end` of a read-only shared file
/// mapping (`start` rounded down, `end` rounded down to a page boundary: the caller has
/// consumed everything before `end`).
fn release_pages(map: &Mmap, start: usize, end: usize) {
    #[cfg(unix)]
    {
        let page = page_size();
        let start = start / page * page;
        let end = end.min(map.len()) / page * page;
        if end > start {
            // SAFETY: the range lies inside the mapping; for a read-only shared file
            // mapping MADV_DONTNEED only drops page-table entries, later reads see the
            // same file contents again. No reference into the map is invalidated.
            unsafe {
                let _ = map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (map, start, end);
}

/// Hints the CPU to load the cache line at `p` (any address: a prefetch never faults).
#[inline(always)]
pub(super) fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint has no architectural effect and never faults, whatever the
    // address; SSE is part of the x86_64 baseline.
    #[allow(unused_unsafe)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(unix)]
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// The bytes of the capture: a memory map, or a buffer refilled from a reader.
pub(super) struct Input {
    pub(super) backing: Backing,
    /// Offset of the next unread byte in the map or buffer.
    pub(super) pos: usize,
    /// Bytes dropped from the front of the buffer (stream mode).
    base: u64,
    /// Bytes of the map released from the resident set so far (huge: never release;
    /// streams never do).
    pub(super) released: usize,
    /// The map is prefetched up to here.
    pub(super) prefetched: usize,
}

/// Where the bytes come from.
pub(super) enum Backing {
    Mapped(Arc<Mmap>),
    Stream(Stream),
}

/// A reader and the buffer holding its unread bytes.
pub(super) struct Stream {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    filled: usize,
    eof: bool,
}

impl Input {
    /// Opens `path` (`-`: standard input) and returns the input and its total size.
    pub(super) fn open(path: &str) -> Result<(Input, Option<u64>), CaptureError> {
        let io_err = |e: io::Error| CaptureError::Io {
            path: path.to_owned(),
            message: io_message(&e),
        };
        if path == "-" {
            let (reader, total) = stdin_reader().map_err(io_err)?;
            return Ok((Input::stream(reader), total));
        }
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(CaptureError::Io {
                path: path.to_owned(),
                message: "Is a directory".to_owned(),
            });
        }
        if meta.is_file() {
            // SAFETY: the map is read-only and private to this reader. As with every
            // memory-mapped reader, truncating the file while it is being read is undefined
            // behaviour; capture files are not expected to change under us.
            if let Ok(map) = unsafe { Mmap::map(&file) } {
                #[cfg(unix)]
                let _ = map.advise(memmap2::Advice::Sequential);
                let input = Input {
                    backing: Backing::Mapped(Arc::new(map)),
                    pos: 0,
                    base: 0,
                    released: 0,
                    prefetched: 0,
                };
                return Ok((input, Some(meta.len())));
            }
        }
        let total = meta.is_file().then_some(meta.len());
        Ok((Input::stream(Box::new(file)), total))
    }

    pub(super) fn stream(reader: Box<dyn Read + Send>) -> Input {
        Input {
            backing: Backing::Stream(Stream {
                reader,
                buf: vec![0; CHUNK],
                filled: 0,
                eof: false,
            }),
            pos: 0,
            base: 0,
            released: usize::MAX / 2,
            prefetched: 0,
        }
    }

    /// The unread bytes currently available.
    #[inline(always)]
    pub(super) fn window(&self) -> &[u8] {
        match &self.backing {
            Backing::Mapped(map) => map.get(self.pos..).unwrap_or_default(),
            Backing::Stream(s) => s.buf.get(self.pos..s.filled).unwrap_or_default(),
        }
    }

    /// `len` bytes at absolute buffer offset `start` (checked by the caller beforehand;
    /// empty if not, rather than a panic).
    #[inline(always)]
    pub(super) fn bytes(&self, start: usize, len: usize) -> &[u8] {
        let all: &[u8] = match &self.backing {
            Backing::Mapped(map) => map,
            Backing::Stream(s) => &s.buf,
        };
        all.get(start..start.saturating_add(len))
            .unwrap_or_default()
    }

    #[inline(always)]
    pub(super) fn advance(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n);
    }

    pub(super) fn position(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Prefetches the next [`PREFETCH_AHEAD`] bytes of a map into the CPU caches (each
    /// cache line once).
    #[inline(always)]
    pub(super) fn prefetch_ahead(&mut self) {
        if let Backing::Mapped(map) = &self.backing {
            let end = self.pos.saturating_add(PREFETCH_AHEAD).min(map.len());
            let mut line = self.prefetched.max(self.pos & !63);
            while line < end {
                prefetch_line(map.as_ptr().wrapping_add(line));
                line += 64;
            }
            self.prefetched = line;
        }
    }

    /// Releases the consumed whole pages of the map (nothing before `pos` is borrowed
    /// any more when the next frame is read).
    #[cold]
    pub(super) fn release_consumed(&mut self) {
        if let Backing::Mapped(map) = &self.backing {
            release_pages(map, self.released, self.pos);
            self.released = self.pos;
        }
    }

    /// Reads until at least `need` bytes are available from `pos`, or the end of input.
    #[cold]
    pub(super) fn refill(&mut self, need: usize) -> io::Result<()> {
        let Backing::Stream(s) = &mut self.backing else {
            return Ok(());
        };
        while s.filled.saturating_sub(self.pos) < need && !s.eof {
            if self.pos.saturating_add(need) > s.buf.len() || s.filled == s.buf.len() {
                // Move the unread bytes to the front, growing the buffer for big records.
                let start = self.pos.min(s.filled);
                s.buf.copy_within(start..s.filled, 0);
                s.filled -= start;
                self.base += start as u64;
                self.pos = 0;
                if need > s.buf.len() {
                    // Grow step by step: a corrupt length must not allocate 256 MiB at once.
                    let grown = s.buf.len().saturating_mul(2).min(need.next_power_of_two());
                    s.buf.resize(grown.max(CHUNK), 0);
                }
            }
            let Some(free) = s.buf.get_mut(s.filled..) else {
                return Ok(());
            };
            match s.reader.read(free) {
                Ok(0) => s.eof = true,
                Ok(n) => s.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Standard input as an unbuffered reader (our own buffer is large), and its size when it
/// is a redirected regular file.
#[cfg(unix)]
fn stdin_reader() -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
    use std::os::fd::AsFd;
    let file = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let total = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    Ok((Box::new(file), total))
}

/// Standard input as a reader (its size is unknown).
#[cfg(not(unix))]
fn stdin_reader() -> io::Result<(Box<dyn Read + Send>, Option<u64>)> {
    Ok((Box::new(io::stdin()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_refill_compacts_and_grows() {
        let data: Vec<u8> = (0..3 * CHUNK + 100).map(|i| i as u8).collect();
        let mut input = Input::stream(Box::new(io::Cursor::new(data.clone())));
        let mut consumed = 0usize;
        for step in [10usize, CHUNK - 3, 2 * CHUNK + 5, 7] {
            input.refill(step).expect("cursor reads cannot fail");
            let w = input.window();
            assert!(w.len() >= step.min(data.len() - consumed));
            assert_eq!(
                &w[..step.min(w.len())],
                &data[consumed..consumed + step.min(w.len())]
            );
            input.advance(step);
            consumed += step;
            assert_eq!(input.position(), consumed as u64);
        }
        input.refill(64 * CHUNK).expect("cursor reads cannot fail");
        assert_eq!(input.window(), &data[consumed..]);
    }
}
