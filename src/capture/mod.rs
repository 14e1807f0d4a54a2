//! Packet capture: reading frames from capture files, standard input and live interfaces.
//!
//! Every source yields [`Frame`]s: a capture timestamp, the link type of the interface it
//! was captured on, and the captured bytes. Sources never panic on malformed input; they
//! return a [`CaptureError`] that says what is wrong in one sentence, and for damaged files
//! the index of the packet where the damage starts.

pub mod filter;
pub mod linktype;
pub mod live;
pub mod pcap_file;
pub mod pcap_writer;

use std::fmt;

/// One captured frame, borrowed from the source's buffer until the next call.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Link-layer header type (LINKTYPE_* value, see [`linktype`]).
    pub linktype: u32,
    /// Length of the frame on the wire (may exceed `data.len()` when the snap length cut it).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What a [`FrameSource`] has to offer now.
#[derive(Debug)]
pub enum Poll<'a> {
    /// The next frame.
    Frame(Frame<'a>),
    /// No frame arrived within the source's read timeout (live capture only).
    Idle,
    /// The source is exhausted (end of file, or capture stopped).
    End,
}

/// A source of frames in capture order.
pub trait FrameSource {
    /// The next frame, [`Poll::Idle`] when a live source has nothing yet, [`Poll::End`] at
    /// the end of input.
    ///
    /// After an `Err` the source is finished: further calls return `Ok(Poll::End)`.
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError>;

    /// True for live interfaces (their capture timestamps follow the wall clock).
    fn is_live(&self) -> bool {
        false
    }

    /// Bytes of the underlying file consumed so far (for progress reporting).
    fn position(&self) -> u64 {
        0
    }

    /// Packets the kernel or interface dropped (live capture), when known.
    fn dropped(&self) -> Option<u64> {
        None
    }

    /// Total size of the underlying file when known.
    fn total_len(&self) -> Option<u64> {
        None
    }
}

/// Why a capture could not be read (completely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureError {
    /// The file could not be opened or read.
    Io {
        /// The path (or `-` for standard input).
        path: String,
        /// The operating system's message.
        message: String,
    },
    /// The file is not a pcap or pcapng capture.
    NotACapture {
        /// The path.
        path: String,
    },
    /// The capture's link type is not one flowtide decodes.
    UnsupportedLinkType {
        /// The path or interface.
        source: String,
        /// The LINKTYPE_* value.
        linktype: u32,
    },
    /// The file ends in the middle of a packet or a block, or a record header is corrupt.
    Damaged {
        /// The path.
        path: String,
        /// Index (0-based) of the first packet that could not be read.
        packet_index: u64,
        /// What exactly is wrong.
        detail: String,
    },
    /// A live interface could not be opened for capture.
    Live {
        /// The interface name.
        interface: String,
        /// What went wrong, including which capability is needed for permission errors.
        message: String,
    },
    /// The BPF filter expression did not compile.
    Filter {
        /// The expression.
        expression: String,
        /// libpcap's message.
        message: String,
    },
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Io { path, message } => write!(f, "cannot read {path}: {message}"),
            CaptureError::NotACapture { path } => {
                write!(f, "{path} is not a pcap or pcapng capture file")
            }
            CaptureError::UnsupportedLinkType { source, linktype } => write!(
                f,
                "{source} has link type {linktype} ({}), which flowtide cannot decode",
                linktype::name(*linktype)
            ),
            CaptureError::Damaged {
                path,
                packet_index,
                detail,
            } => write!(
                f,
                "{path} is damaged at packet {packet_index} (0-based): {detail}"
            ),
            CaptureError::Live { interface, message } => {
                write!(f, "cannot capture on {interface}: {message}")
            }
            CaptureError::Filter {
                expression,
                message,
            } => {
                write!(f, "invalid capture filter {expression:?}: {message}")
            }
        }
    }
}

impl std::error::Error for CaptureError {}
