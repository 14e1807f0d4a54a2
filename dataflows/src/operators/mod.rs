//! Dataflow operators, one per module, each an extension trait on timely streams.

pub mod flow_table;

pub use flow_table::{FlowTable, FlowTableConfig, FlowTableStats};
