//! Output sinks: JSON Lines files and the run summary.

pub mod alert_json;
pub mod flow_json;
pub mod json_line;
pub mod line_file;
pub mod ordered_jsonl;
pub mod reassembly_json;
pub mod spill;
pub mod summary;
pub mod window_json;
