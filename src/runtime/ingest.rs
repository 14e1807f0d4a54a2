//! Reading a worker's feeds into event-time-stamped packet batches.
//!
//! ## Watermarks and lateness
//! Each feed keeps `max_seen`, the largest capture time among its frames so far. A frame
//! whose capture time is more than `max_disorder` below `max_seen` is *late*: its
//! timestamp is raised to `max_seen - max_disorder` and it is flagged
//! [`flags::LATE`] and counted, so nothing is lost and the decision depends only on the
//! feed's own frame sequence (never on workers, batches or replay speed).
//!
//! The feed's watermark is `max_seen - max_disorder`: no later frame of that feed can
//! carry an (adjusted) time below it. A worker sends every batch at the minimum watermark
//! of its unfinished feeds, rounded down to the tick, which is therefore a lower bound on
//! the capture times it stamps.
//!
//! ## Several feeds, several workers
//! A worker merges its feeds by capture time, so one feed cannot run ahead of the others.
//! Standard input and live interfaces are read by one worker each.
//!
//! A regular file is opened and memory-mapped once per process and shared by all its
//! workers ([`SharedFile`]). Its record headers are walked once, in file order, by
//! whichever worker needs more packets: under the file's lock it *claims* the next chunk
//! of up to [`CHUNK`] frames, copying out where each frame is in the map and its capture
//! time and link type; it then filters and decodes the chunk on its own. Chunks go to
//! whoever asks first, so the work balances itself; which worker decodes a frame never
//! changes a result (the packet index is the frame's index in the file, and packets are
//! exchanged by flow key downstream).
//!
//! Lateness is decided exactly as by a single reader: a chunk carries the feed's
//! `max_seen` over every frame before it, and the worker keeps the running maximum through
//! the chunk. The worker's watermark for the feed is that running maximum (less
//! `max_disorder`) while it holds an unfinished chunk: it still has to send the rest of
//! that chunk, whose adjusted times are at least this. Once its chunk is used up, the
//! watermark is the file's `max_seen` before the first *unclaimed* frame, which bounds
//! every chunk the worker may claim later; chunks that other workers hold are covered by
//! their own watermarks. Every frame counts towards the feed counters of the worker that
//! claimed it only; a damaged file's error is met by the worker that claims the chunk
//! ending at the damage, which processes that chunk's frames and then reports it once.
//! The latest capture time of the feed ([`Ingest::max_event_time`]) is the file's, as
//! every worker sees it.
//!
//! A file that cannot be mapped (rare) is read whole by every worker, each decoding only
//! its round-robin share of chunks, as a fallback.
//!
//! Live interfaces are stamped by the kernel's clock; when an interface is idle its
//! `max_seen` follows the wall clock (less `max_disorder`) so windows still close.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flowtide_dataflows::packet::{flags, Packet};

use crate::capture::filter::BpfFilter;
use crate::capture::{CaptureError, FrameSource, Poll};
use crate::decode::{Decoder, SkipCounts};
use crate::runtime::feeds::{FeedKind, FeedSpec};
use crate::runtime::shared_file::{Chunk, SharedFile};
use crate::runtime::stats::FeedCounters;

/// Frames per chunk when several workers share a file.
pub const CHUNK: u64 = 1024;

/// Counters shared with the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    /// Frames read by all workers of this process.
    pub packets: AtomicU64,
    /// Bytes of input files consumed (by each file's primary reader).
    pub bytes: AtomicU64,
    /// Total size of the input files, when known.
    pub total_bytes: AtomicU64,
}

/// Ingestion settings shared by the workers of a process.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    /// Lateness bound (ns).
    pub max_disorder_ns: u64,
    /// Replay speed multiple, `None` = as fast as possible.
    pub speed: Option<f64>,
    /// BPF filter applied to file feeds.
    pub filter: Option<String>,
    /// This process's index.
    pub process: u32,
    /// Send IP fragments apart, to the reassembler (false: with every other packet).
    pub reassemble: bool,
}

/// Where a worker's frames of a feed come from.
pub enum FeedSource {
    /// A source of its own (every frame of it, or its `shard`).
    Own(Box<dyn FrameSource>),
    /// A file shared with the process's other workers: chunks claimed from it.
    Shared(Arc<SharedFile>),
}

/// A feed as handed to a worker: its spec, its opened source, the worker's share of it
/// (`(share, sharers)`, `None` = all of it) and whether this worker reports its progress.
pub struct AssignedFeed {
    /// The feed.
    pub spec: FeedSpec,
    /// The opened source.
    pub source: FeedSource,
    /// `(this worker's share, number of sharing workers)` of an [`FeedSource::Own`]
    /// source that every sharing worker reads; `None` = every frame.
    pub shard: Option<(u64, u64)>,
    /// This worker reports the feed's byte position to the progress bar (and its total
    /// size).
    pub primary: bool,
}

/// The chunk a worker is working through of a shared file.
struct Claimed {
    file: Arc<SharedFile>,
    chunk: Chunk,
    /// Next frame of `chunk.frames` to read.
    next: usize,
    /// Sequence number of the chunk held, if any (to finish it at the next claim).
    held: Option<u64>,
}

/// Where one feed stands for one worker.
struct FeedReader {
    feed_id: u32,
    source: Box<dyn FrameSource>,
    /// A shared file (then `source` is unused).
    claimed: Option<Claimed>,
    live: bool,
    /// (this worker's share, number of sharing workers); `None` = every frame is ours.
    shard: Option<(u64, u64)>,
    /// This worker reports the feed's byte position to the progress bar.
    primary: bool,
    next_index: u64,
    max_seen: u64,
    done: bool,
    /// The next frame, read ahead for the merge: its raw capture time and, if this worker
    /// owns and decoded it, the packet.
    pending: Option<(u64, Option<Packet>)>,
    filter: Option<BpfFilter>,
    counters: FeedCounters,
    skips: SkipCounts,
    last_position: u64,
}

/// What [`Ingest::fill`] stopped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FillStatus {
    /// The batch is full or the budget used; call again.
    More,
    /// Live feeds are idle, or paced replay must wait this long.
    Wait(Duration),
    /// Every feed is finished.
    Done,
}

/// A worker's feeds and their merge.
pub struct Ingest {
    feeds: Vec<FeedReader>,
    decoder: Decoder,
    config: IngestConfig,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    /// (wall instant, capture time) of the first frame, for paced replay.
    pace_origin: Option<(Instant, u64)>,
}

impl Ingest {
    /// A worker's ingestion over already opened feeds.
    pub fn new(
        feeds: Vec<AssignedFeed>,
        decoder: Decoder,
        config: IngestConfig,
        stop: Arc<AtomicBool>,
        progress: Arc<Progress>,
    ) -> Self {
        let feeds = feeds
            .into_iter()
            .map(
                |AssignedFeed {
                     spec,
                     source,
                     shard,
                     primary,
                 }| {
                    let kind = match spec.kind {
                        FeedKind::File => "file",
                        FeedKind::Stdin => "stdin",
                        FeedKind::Live => "live",
                    };
                    let (source, claimed): (Box<dyn FrameSource>, _) = match source {
                        FeedSource::Own(source) => (source, None),
                        FeedSource::Shared(file) => (
                            Box::new(NoFrames),
                            Some(Claimed {
                                file,
                                chunk: Chunk::default(),
                                next: 0,
                                held: None,
                            }),
                        ),
                    };
                    if primary {
                        let total = match &claimed {
                            Some(c) => c.file.total_len(),
                            None => source.total_len(),
                        };
                        if let Some(total) = total {
                            progress.total_bytes.fetch_add(total, Ordering::Relaxed);
                        }
                    }
                    let filter = match (&config.filter, spec.kind == FeedKind::Live) {
                        (Some(expr), false) => Some(BpfFilter::new(expr)),
                        _ => None,
                    };
                    FeedReader {
                        feed_id: spec.id,
                        live: source.is_live(),
                        source,
                        claimed,
                        shard,
                        primary,
                        next_index: 0,
                        max_seen: 0,
                        done: false,
                        pending: None,
                        filter,
                        counters: FeedCounters::new(&spec.name, kind, config.process),
                        skips: SkipCounts::default(),
                        last_position: 0,
                    }
                },
            )
            .collect();
        Ingest {
            feeds,
            decoder,
            config,
            stop,
            progress,
            pace_origin: None,
        }
    }

    /// True when every feed is finished.
    pub fn is_done(&self) -> bool {
        self.feeds.iter().all(|f| f.done && f.pending.is_none())
    }

    /// The time at which the worker may stamp its next batch: the least watermark of its
    /// unfinished feeds, rounded down to a multiple of `tick`; `None` when all are done.
    pub fn stamp_time(&self, tick: u64) -> Option<u64> {
        let d = self.config.max_disorder_ns;
        let wm = self
            .feeds
            .iter()
            .filter(|f| !(f.done && f.pending.is_none()))
            .map(|f| f.watermark_base().saturating_sub(d))
            .min()?;
        Some(if tick > 1 { wm - wm % tick } else { wm })
    }

    /// The latest capture time seen on any of this worker's feeds (every frame counts,
    /// including other workers' shares), `None` if no frame was read.
    pub fn max_event_time(&self) -> Option<u64> {
        self.feeds
            .iter()
            .filter_map(|f| match &f.claimed {
                Some(c) => (c.file.frames_claimed() > 0).then(|| c.file.max_seen()),
                None => (f.next_index > 0).then_some(f.max_seen),
            })
            .max()
    }

    /// Moves up to `budget` frames' worth of packets into `batch`, IP fragments into
    /// `fragments` (so that unfragmented packets bypass reassembly; without
    /// [`IngestConfig::reassemble`], fragments go into `batch` too).
    pub fn fill(
        &mut self,
        batch: &mut Vec<Packet>,
        fragments: &mut Vec<Packet>,
        budget: usize,
    ) -> FillStatus {
        if self.stop.load(Ordering::Relaxed) {
            for f in &mut self.feeds {
                f.done = true;
                f.pending = None;
            }
        }
        let mut idle = false;
        let mut frames = 0u64;
        let mut status = FillStatus::More;
        for _ in 0..budget {
            // Read ahead on every feed that has nothing pending.
            for f in self
                .feeds
                .iter_mut()
                .filter(|f| !f.done && f.pending.is_none())
            {
                if f.live && idle {
                    continue;
                }
                match f.read_ahead(&self.decoder, &self.config, &self.progress) {
                    ReadAhead::Frame => frames += 1,
                    ReadAhead::Idle => idle = true,
                    ReadAhead::End => {}
                }
            }
            // Take the earliest pending frame.
            let Some(next) = self
                .feeds
                .iter_mut()
                .filter(|f| f.pending.is_some())
                .min_by_key(|f| f.pending.as_ref().map(|p| p.0))
            else {
                status = if idle {
                    FillStatus::Wait(Duration::from_millis(1))
                } else {
                    FillStatus::More
                };
                break;
            };
            if let (Some(speed), Some((raw_ts, _))) = (self.config.speed, next.pending.as_ref()) {
                let origin = *self.pace_origin.get_or_insert((Instant::now(), *raw_ts));
                let due = origin.0
                    + Duration::from_secs_f64(raw_ts.saturating_sub(origin.1) as f64 / 1e9 / speed);
                let now = Instant::now();
                if due > now {
                    status = FillStatus::Wait((due - now).min(Duration::from_millis(50)));
                    break;
                }
            }
            if let Some((_, Some(p))) = next.pending.take() {
                if self.config.reassemble && p.is_fragment() {
                    fragments.push(p);
                } else {
                    batch.push(p);
                }
            }
        }
        self.progress.packets.fetch_add(frames, Ordering::Relaxed);
        for f in self
            .feeds
            .iter_mut()
            .filter(|f| f.primary && f.claimed.is_none())
        {
            let pos = f.source.position();
            if pos > f.last_position {
                self.progress
                    .bytes
                    .fetch_add(pos - f.last_position, Ordering::Relaxed);
                f.last_position = pos;
            }
        }
        if self.is_done() {
            FillStatus::Done
        } else {
            status
        }
    }

    /// The per-feed counters of this worker.
    pub fn counters(&self) -> Vec<FeedCounters> {
        self.feeds
            .iter()
            .map(|f| {
                let mut c = f.counters.clone();
                c.add_skips(&f.skips);
                c.dropped = f.source.dropped();
                c
            })
            .collect()
    }
}

enum ReadAhead {
    Frame,
    Idle,
    End,
}

/// The stand-in source of a feed read through a [`SharedFile`].
struct NoFrames;

impl FrameSource for NoFrames {
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError> {
        Ok(Poll::End)
    }
}

impl FeedReader {
    /// The feed's `max_seen` as far as this worker is concerned: no frame it will still
    /// send from this feed has an adjusted time below this less `max_disorder`.
    ///
    /// A shared file: within the chunk the worker holds, the running maximum up to the
    /// frame last read; with no frame of it left, the maximum before the first unclaimed
    /// frame, which bounds every chunk the worker can claim in future.
    fn watermark_base(&self) -> u64 {
        match &self.claimed {
            Some(c) if self.pending.is_none() && c.next == c.chunk.frames.len() => {
                c.file.max_seen()
            }
            _ => self.max_seen,
        }
    }

    /// Reads the next frame into `pending`.
    fn read_ahead(
        &mut self,
        decoder: &Decoder,
        config: &IngestConfig,
        progress: &Progress,
    ) -> ReadAhead {
        if let Some(c) = self.claimed.as_mut() {
            // A shared file: the next frame of the chunk held, or of a new one.
            while c.next == c.chunk.frames.len() {
                if let Some(e) = c.chunk.error.take() {
                    self.finish_with_error(&e);
                    return ReadAhead::End;
                }
                if !c.file.claim(&mut c.chunk, c.held.take(), progress) {
                    self.done = true;
                    return ReadAhead::End;
                }
                c.held = Some(c.chunk.seq);
                c.next = 0;
                self.next_index = c.chunk.first_index;
                self.max_seen = c.chunk.max_seen_before;
            }
        }
        let frame = if let Some(c) = self.claimed.as_mut() {
            let desc = c.chunk.frames[c.next];
            c.next += 1;
            c.file.frame(&desc)
        } else {
            match self.source.next_frame() {
                Ok(Poll::Frame(frame)) => frame,
                Ok(Poll::Idle) => {
                    // An idle live interface: its clock moves on.
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                    self.max_seen = self
                        .max_seen
                        .max(now.saturating_sub(config.max_disorder_ns));
                    return ReadAhead::Idle;
                }
                Ok(Poll::End) => {
                    self.done = true;
                    return ReadAhead::End;
                }
                Err(e) => {
                    self.finish_with_error(&e);
                    return ReadAhead::End;
                }
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        let raw_ts = frame.ts_ns;
        let late_floor = self.max_seen.saturating_sub(config.max_disorder_ns);
        let late = self.next_index > 1 && raw_ts < late_floor;
        self.max_seen = self.max_seen.max(raw_ts);
        let owned = self.shard.is_none_or(|(me, n)| (index / CHUNK) % n == me);
        if !owned {
            self.pending = Some((raw_ts, None));
            return ReadAhead::Frame;
        }
        let c = &mut self.counters;
        c.packets_read += 1;
        c.bytes_read += frame.data.len() as u64;
        if c.first_ns == 0 || raw_ts < c.first_ns {
            c.first_ns = raw_ts;
        }
        c.last_ns = c.last_ns.max(raw_ts);
        if let Some(filter) = self.filter.as_mut() {
            match filter.matches(&frame) {
                Ok(true) => {}
                Ok(false) => {
                    c.packets_filtered += 1;
                    self.pending = Some((raw_ts, None));
                    return ReadAhead::Frame;
                }
                Err(e) => {
                    self.finish_with_error(&e);
                    return ReadAhead::End;
                }
            }
        }
        let mut packet = Packet::default();
        match decoder.decode(&frame, self.feed_id, index, &mut packet) {
            Ok(()) => {
                c.packets_decoded += 1;
                if late {
                    packet.ts_ns = late_floor;
                    packet.flags |= flags::LATE;
                    c.packets_late += 1;
                }
                self.pending = Some((raw_ts, Some(packet)));
            }
            Err(reason) => {
                self.skips.add(reason);
                self.pending = Some((raw_ts, None));
            }
        }
        ReadAhead::Frame
    }

    fn finish_with_error(&mut self, e: &CaptureError) {
        tracing::warn!("{e}");
        if self.primary || self.shard.is_none() {
            eprintln!("flowtide: warning: {e}");
        }
        self.counters.error = Some(e.to_string());
        self.done = true;
    }
}
