//! Live capture (stub until the reader lands).
use super::{CaptureError, FrameSource, Poll};
/// A live capture.
pub struct LiveCapture;
impl LiveCapture {
    /// Opens an interface.
    pub fn open(
        interface: &str,
        _f: Option<&str>,
        _s: i32,
        _p: bool,
    ) -> Result<LiveCapture, CaptureError> {
        Err(CaptureError::Live {
            interface: interface.to_string(),
            message: "stub".into(),
        })
    }
}
impl FrameSource for LiveCapture {
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError> {
        Ok(Poll::End)
    }
}
