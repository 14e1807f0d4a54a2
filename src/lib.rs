//! # flowtide
//!
//! The `flowtide` binary's library: command line, capture, decoding, the cluster runtime
//! that drives the dataflows of [`flowtide_dataflows`], and the output sinks.

pub mod capture;
pub mod cli;
pub mod decode;
pub mod defrag;
pub mod runtime;
pub mod sink;
pub mod synth;
