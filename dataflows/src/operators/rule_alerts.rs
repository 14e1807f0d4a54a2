//! The rules that need no history ([`crate::rules`]) as an operator on finished windows.

use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

use crate::alert::Alert;
use crate::baseline::DetectConfig;
use crate::rules::rule_alerts;
use crate::window::WindowRecord;

/// Alerts of the rules that need no history, from finished windows.
///
/// # Examples
/// ```
/// use flowtide_dataflows::baseline::DetectConfig;
/// use flowtide_dataflows::operators::RuleAlerts;
/// use flowtide_dataflows::packet::Addr;
/// use flowtide_dataflows::window::{Granularity, WindowKey, WindowRecord, WindowStats};
/// use timely::dataflow::operators::{Inspect, ToStream};
///
/// let key = WindowKey { granularity: Granularity::Service, dst: Addr::from_v4([10, 0, 0, 9]),
///     dport: 80, protocol: 6, ..Default::default() };
/// let window = move |syn: u64, packets: u64| {
///     let mut flags = [0; 8];
///     flags[0] = syn;
///     WindowRecord { key, start_ns: 0, end_ns: 60_000_000_000, partial: false,
///         stats: WindowStats { packets, flags, ..Default::default() } }
/// };
/// let alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = alerts.clone();
/// timely::example(move |scope| {
///     // A flood (5000 SYNs, nothing else) and a busy service (5000 SYNs among 50 000
///     // packets of completed connections).
///     vec![window(5000, 5000), window(5000, 50_000)]
///         .to_stream(scope)
///         .rule_alerts(&DetectConfig::default())
///         .inspect(move |a| sink.lock().unwrap().push(a.clone()));
/// });
/// let alerts = alerts.lock().unwrap();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].kind.name(), "syn_flood");
/// assert_eq!(alerts[0].metrics[0].value, 5000.0);
/// ```
pub trait RuleAlerts<'scope> {
    /// The alerts of every rule ([`crate::rules::rule_alerts`]) for each window, at the
    /// window's record time.
    fn rule_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert>;
}

impl<'scope> RuleAlerts<'scope> for StreamVec<'scope, u64, WindowRecord> {
    fn rule_alerts(self, config: &DetectConfig) -> StreamVec<'scope, u64, Alert> {
        let config = config.clone();
        self.flat_map(move |w| rule_alerts(&config, &w))
    }
}
