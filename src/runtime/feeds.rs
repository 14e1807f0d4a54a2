//! Feeds: the capture files, standard input and live interfaces a process reads.

use flowtide_dataflows::hash::StableHasher;
use serde::Serialize;

use crate::capture::live::LiveCapture;
use crate::capture::pcap_file::CaptureFile;
use crate::capture::{CaptureError, FrameSource};

/// What a feed reads from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedKind {
    /// A pcap or pcapng file.
    File,
    /// Standard input (`-r -`).
    Stdin,
    /// A live interface (`-i`).
    Live,
}

/// One feed named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    /// The path or interface name as given.
    pub name: String,
    /// File, stdin or live.
    pub kind: FeedKind,
    /// Stable id: a digest of the kind and name, the same in every process, used as the
    /// second key of event-time order.
    pub id: u32,
}

impl FeedSpec {
    /// A file (or `-` for standard input).
    pub fn file(path: &str) -> FeedSpec {
        let kind = if path == "-" {
            FeedKind::Stdin
        } else {
            FeedKind::File
        };
        FeedSpec {
            name: path.to_string(),
            id: feed_id(&kind, path),
            kind,
        }
    }

    /// A live interface.
    pub fn live(interface: &str) -> FeedSpec {
        FeedSpec {
            name: interface.to_string(),
            id: feed_id(&FeedKind::Live, interface),
            kind: FeedKind::Live,
        }
    }

    /// True when several workers can share the reading of this feed (a regular file that
    /// each of them can map).
    pub fn shardable(&self) -> bool {
        self.kind == FeedKind::File
    }

    /// Opens the feed.
    pub fn open(&self, options: &OpenOptions) -> Result<Box<dyn FrameSource>, CaptureError> {
        match self.kind {
            FeedKind::File | FeedKind::Stdin => Ok(Box::new(CaptureFile::open(&self.name)?)),
            FeedKind::Live => Ok(Box::new(LiveCapture::open(
                &self.name,
                options.filter.as_deref(),
                options.snaplen,
                options.promisc,
            )?)),
        }
    }
}

/// How live feeds are opened.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// BPF filter (applied in the kernel for live feeds).
    pub filter: Option<String>,
    /// Snap length for live capture.
    pub snaplen: i32,
    /// Promiscuous mode for live capture.
    pub promisc: bool,
}

fn feed_id(kind: &FeedKind, name: &str) -> u32 {
    let mut h = StableHasher::new();
    h.write_u64(match kind {
        FeedKind::File | FeedKind::Stdin => 1,
        FeedKind::Live => 2,
    });
    h.write_bytes(name.as_bytes());
    (h.finish() >> 32) as u32
}
