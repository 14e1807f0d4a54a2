//! One capture file read by several workers of a process: the record headers are walked
//! once, by whichever worker needs more packets, and every worker decodes the chunks it
//! claimed.
//!
//! Walking the record headers is a chain of dependent loads (where the next header is
//! depends on this one's captured length), so it cannot be spread over workers. A
//! [`SharedFile`] holds the file's one [`CaptureFile`] behind a mutex; a worker *claims*
//! the next chunk of up to [`CHUNK`] frames by walking their headers under the lock and
//! copying out, for each frame, where its bytes are in the shared memory map and its
//! capture metadata (pcapng interfaces and Simple Packet Block timestamps are thus handled
//! by the one sequential reader). It then decodes the chunk without the lock; the headers
//! it just walked are still in its cache. Chunks go to whichever worker asks first, so the
//! load balances itself.
//!
//! Each chunk carries the index of its first frame and `max_seen` before it (the largest
//! capture time of every earlier frame of the file), from which the claiming worker
//! computes exactly the lateness that a single reader would. [`SharedFile::max_seen`]
//! is `max_seen` before the first unclaimed frame: a lower bound (less `max_disorder`) of
//! every frame a worker will claim in future.
//!
//! Pages of the map are released (`MADV_DONTNEED`) once every chunk before them has been
//! finished by its worker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::capture::pcap_file::{CaptureFile, FrameRef, SharedMap, RELEASE_STEP};
use crate::capture::{CaptureError, Frame, FrameSource};
use crate::runtime::ingest::{Progress, CHUNK};

/// A worker that finds the reader busy maps this many bytes ahead of it meanwhile.
const PREFAULT_AHEAD: usize = 4 << 20;

/// A run of consecutive frames claimed by one worker.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Sequence number of the chunk (claim order).
    pub seq: u64,
    /// Index in the file of the first frame.
    pub first_index: u64,
    /// Largest capture time of every frame of the file before this chunk (0 if none).
    pub max_seen_before: u64,
    /// The frames.
    pub frames: Vec<FrameRef>,
    /// The error that ended the file right after these frames, if any.
    pub error: Option<CaptureError>,
}

/// A capture file shared by the workers of a process.
pub struct SharedFile {
    map: SharedMap,
    scan: Mutex<Scan>,
    /// `max_seen` before the first unclaimed frame.
    max_seen: AtomicU64,
    /// Frames claimed so far.
    claimed: AtomicU64,
    /// Every frame has been claimed (end of file or damage).
    exhausted: AtomicBool,
    /// File position of the first unclaimed frame.
    position: AtomicUsize,
    /// The map has been prefaulted up to here.
    prefaulted: AtomicUsize,
}

impl std::fmt::Debug for SharedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedFile")
            .field("map", &self.map)
            .field("max_seen", &self.max_seen)
            .field("claimed", &self.claimed)
            .finish_non_exhaustive()
    }
}

/// The sequential reader and the bookkeeping of claimed chunks.
struct Scan {
    file: CaptureFile,
    next_index: u64,
    max_seen: u64,
    done: bool,
    next_seq: u64,
    /// Chunks claimed and not yet finished (or finished out of order): (seq, first byte
    /// of the chunk, finished).
    in_flight: VecDeque<(u64, usize, bool)>,
    /// Bytes of the map released so far.
    released: usize,
    /// File position already reported to the progress bar.
    reported: u64,
}

impl SharedFile {
    /// Shares an opened capture file; `None` when it is not memory-mapped (then every
    /// worker must read it on its own).
    pub fn new(mut file: CaptureFile) -> Option<SharedFile> {
        let map = file.share_map()?;
        Some(SharedFile {
            map,
            scan: Mutex::new(Scan {
                file,
                next_index: 0,
                max_seen: 0,
                done: false,
                next_seq: 0,
                in_flight: VecDeque::new(),
                released: 0,
                reported: 0,
            }),
            max_seen: AtomicU64::new(0),
            claimed: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            position: AtomicUsize::new(0),
            prefaulted: AtomicUsize::new(0),
        })
    }

    /// Total size of the file.
    pub fn total_len(&self) -> Option<u64> {
        self.lock().file.total_len()
    }

    /// The largest capture time of every claimed frame (every frame of the file once it
    /// is exhausted); no frame of a chunk claimed from now on can have an adjusted time
    /// below this less `max_disorder`.
    #[inline]
    pub fn max_seen(&self) -> u64 {
        self.max_seen.load(Ordering::Acquire)
    }

    /// Frames claimed so far by all workers.
    pub fn frames_claimed(&self) -> u64 {
        self.claimed.load(Ordering::Acquire)
    }

    /// True when every frame has been claimed.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Acquire)
    }

    /// The frame a descriptor stands for.
    #[inline(always)]
    pub fn frame(&self, r: &FrameRef) -> Frame<'_> {
        self.map.frame(r)
    }

    fn lock(&self) -> MutexGuard<'_, Scan> {
        // A worker that panicked while holding the lock leaves a consistent reader
        // behind (every field is updated per frame); keep going.
        self.scan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock; while another worker holds it (walking headers), first take the page
    /// faults of the next [`PREFAULT_AHEAD`] bytes off its path.
    fn lock_or_prefault(&self) -> MutexGuard<'_, Scan> {
        match self.scan.try_lock() {
            Ok(guard) => return guard,
            Err(TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(TryLockError::WouldBlock) => {}
        }
        let pos = self.position.load(Ordering::Acquire);
        let end = pos.saturating_add(PREFAULT_AHEAD);
        let done = self.prefaulted.fetch_max(end, Ordering::AcqRel);
        if done < end {
            self.map.prefault(done.max(pos), end);
        }
        self.lock()
    }

    /// Finishes `chunk` (its frames are no longer in use; pass the chunk that was last
    /// claimed, or an empty default one) and claims the next frames into it. Returns
    /// false, with no frames, when the file is exhausted.
    pub fn claim(&self, chunk: &mut Chunk, finished: Option<u64>, progress: &Progress) -> bool {
        let mut release = None;
        let more = {
            let mut scan = self.lock_or_prefault();
            let scan = &mut *scan;
            if let Some(seq) = finished {
                if let Some(entry) = scan.in_flight.iter_mut().find(|e| e.0 == seq) {
                    entry.2 = true;
                }
                while scan.in_flight.front().is_some_and(|e| e.2) {
                    scan.in_flight.pop_front();
                }
            }
            chunk.frames.clear();
            chunk.error = None;
            let more = !scan.done;
            if more {
                let start = scan.file.position() as usize;
                chunk.seq = scan.next_seq;
                chunk.first_index = scan.next_index;
                chunk.max_seen_before = scan.max_seen;
                scan.next_seq += 1;
                scan.in_flight.push_back((chunk.seq, start, false));
                scan.fill(chunk);
                self.max_seen.store(scan.max_seen, Ordering::Release);
                self.claimed.store(scan.next_index, Ordering::Release);
                if scan.done {
                    self.exhausted.store(true, Ordering::Release);
                }
                let pos = scan.file.position();
                self.position.store(pos as usize, Ordering::Release);
                progress
                    .bytes
                    .fetch_add(pos - scan.reported, Ordering::Relaxed);
                scan.reported = pos;
            }
            // Everything before the oldest unfinished chunk is consumed.
            let consumed = scan
                .in_flight
                .front()
                .map_or(scan.file.position() as usize, |e| e.1);
            if consumed.saturating_sub(scan.released) >= RELEASE_STEP {
                release = Some((scan.released, consumed));
                scan.released = consumed;
            }
            more
        };
        if let Some((start, end)) = release {
            self.map.release(start, end);
        }
        more
    }
}

impl Scan {
    /// Walks up to [`CHUNK`] records into `chunk`.
    fn fill(&mut self, chunk: &mut Chunk) {
        match self.file.next_frame_refs(CHUNK as usize, &mut chunk.frames) {
            Ok(true) => {}
            Ok(false) => self.done = true,
            Err(e) => {
                self.done = true;
                chunk.error = Some(e);
            }
        }
        for r in &chunk.frames {
            self.max_seen = self.max_seen.max(r.ts_ns);
        }
        self.next_index += chunk.frames.len() as u64;
    }
}
