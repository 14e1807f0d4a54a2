//! The runtime: cluster configuration, feeds, ingestion and the `analyze` worker loop.

pub mod analyze;
pub mod backpressure;
pub mod config;
pub mod detect_config;
pub mod feeds;
pub mod ingest;
pub mod progress_bar;
pub mod shared_file;
pub mod stats;
