//! Capture files (pcap, pcapng) and standard input. (stub until the reader lands)
use super::{CaptureError, FrameSource, Poll};
/// A capture file.
pub struct CaptureFile;
impl CaptureFile {
    /// Opens a capture.
    pub fn open(path: &str) -> Result<CaptureFile, CaptureError> {
        Err(CaptureError::NotACapture {
            path: path.to_string(),
        })
    }
}
impl FrameSource for CaptureFile {
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError> {
        Ok(Poll::End)
    }
}
