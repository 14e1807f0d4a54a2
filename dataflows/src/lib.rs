//! # flowtide-dataflows
//!
//! The packet and flow model of flowtide and the timely/differential dataflow operators
//! built on it. This crate does no I/O: the `flowtide` binary captures and decodes packets
//! into [`packet::Packet`] records, feeds them in with event-time (capture-time) timely
//! timestamps, and writes what these operators produce.
//!
//! ## Time
//! A timely timestamp here is a *lower bound* on the capture time, in nanoseconds, of
//! every record it stamps. Sources advance it in coarse steps (see the binary's `--tick`)
//! so progress tracking stays cheap, while operators order and window records by the
//! exact nanosecond time they carry. When the input frontier passes `t`, every record with
//! capture time below `t` has arrived; operators then process those records in
//! (time, feed, index) order, so their results depend only on the packets, never on epoch
//! size, batch size, worker count or replay speed.

pub mod alert;
pub mod baseline;
pub mod compact_stats;
pub mod connections;
pub mod decayed_baselines;
pub(crate) mod distinct;
pub mod flow;
pub mod flow_acc;
pub mod flow_key;
pub mod flow_state;
pub mod half_open;
pub mod hash;
pub mod moments;
pub mod operators;
pub mod order;
pub mod packet;
pub mod panes;
pub mod reassembly;
pub mod reflection;
pub mod rules;
pub mod scans;
pub mod slab_map;
pub mod syn_acks;
pub mod time;
pub mod trailing_scorer;
pub(crate) mod varint;
pub mod wide_batch;
pub mod window;
