//! BPF filters (stub until the reader lands).
use super::{CaptureError, Frame};
/// A filter.
pub struct BpfFilter;
impl BpfFilter {
    /// New.
    pub fn new(_e: &str) -> BpfFilter {
        BpfFilter
    }
    /// Matches.
    pub fn matches(&mut self, _f: &Frame<'_>) -> Result<bool, CaptureError> {
        Ok(true)
    }
    /// Validates.
    pub fn validate(_e: &str, _l: u32) -> Result<(), CaptureError> {
        Ok(())
    }
}
