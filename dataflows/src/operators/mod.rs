//! Dataflow operators, one per module, each an extension trait on timely streams.

pub mod baseline;
pub mod connection_alerts;
pub mod flow_table;
pub mod frag_alerts;
pub mod reassemble;
pub mod rule_alerts;
pub mod unfinished_fragments;
pub mod windows;

pub use crate::reassembly::ReassemblyConfig;
pub use baseline::Detect;
pub use connection_alerts::ConnectionAlerts;
pub use flow_table::{FlowTable, FlowTableConfig, FlowTableStats};
pub use frag_alerts::FragAlerts;
pub use reassemble::{Reassemble, ReassembleStats, ReassembleStatsHandle};
pub use rule_alerts::RuleAlerts;
pub use unfinished_fragments::{fragment_arrival, FragCount, UnfinishedFragments};
pub use windows::{Windows, WindowsState, WindowsStats};
