use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;

use super::*;
use crate::reassembly::{EvictReason, FragKey};
use crate::time::NS_PER_SEC;

const S: u64 = NS_PER_SEC;

fn metric<'a>(a: &'a Alert, name: &str) -> &'a AlertMetric {
    a.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name} in {a:?}"))
}

fn event(ts_s: u64, src: u8, dst: u8, kind: EventKind) -> ReassemblyEvent {
    ReassemblyEvent {
        ts_ns: ts_s * S + 5,
        key: FragKey {
            ip_version: 4,
            src: Addr::from_v4([192, 0, 2, src]),
            dst: Addr::from_v4([10, 0, 0, dst]),
            protocol: 17,
            id: u32::from(src),
            ..Default::default()
        },
        kind,
    }
}

fn run_frag(events: Vec<ReassemblyEvent>, workers: usize) -> Vec<Alert> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&out);
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<ReassemblyEvent>>>::new();
        let sink = Arc::clone(&sink);
        let config = DetectConfig {
            frag_flood_threshold: 50,
            ..DetectConfig::default()
        };
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .frag_alerts(&config)
                .inspect(move |a: &Alert| sink.lock().expect("lock").push(a.clone()));
        });
        if worker.index() == 0 {
            for e in &events {
                if e.ts_ns > *input.time() {
                    input.advance_to(e.ts_ns);
                }
                input.send(e.clone());
            }
        }
    })
    .expect("timely");
    drop(guards);
    let mut alerts = std::mem::take(&mut *out.lock().expect("lock"));
    alerts.sort_by_key(|a| a.order_key());
    alerts
}

#[test]
fn reassembly_events_become_aggregated_alerts() {
    let eviction = || EventKind::Eviction {
        reason: EvictReason::Memory,
        first_ns: 0,
        fragments: 1,
    };
    let mut events = Vec::new();
    // A spoofed flood towards 10.0.0.9: 300 evictions over 3 s (one bucket of 10 s),
    // then 20 in the next bucket (below the threshold of 50).
    for i in 0..300u64 {
        events.push(event(100 + i / 100, (i % 200) as u8, 9, eviction()));
    }
    for i in 0..20u64 {
        events.push(event(111, i as u8, 9, eviction()));
    }
    // An overlap with different data and the ambiguity it causes, twice, one pair.
    for t in [102, 103] {
        events.push(event(
            t,
            7,
            3,
            EventKind::OverlapDifferent {
                range: (0, 8),
                differing: vec![(0, 8)],
            },
        ));
        events.push(event(
            t,
            7,
            3,
            EventKind::Ambiguity {
                groups: vec![],
                discarded_by: vec![],
                ranges: vec![],
            },
        ));
    }
    events.push(event(104, 8, 3, EventKind::TooLarge { size: 70_000 }));
    events.push(event(
        104,
        8,
        3,
        EventKind::Timeout {
            first_ns: 0,
            fragments: 1,
        },
    ));
    events.sort_by_key(|e| e.ts_ns);
    let alerts = run_frag(events.clone(), 1);
    let got: Vec<(&str, Option<String>, u64, f64)> = alerts
        .iter()
        .map(|a| {
            (
                a.kind.name(),
                a.src.map(|s| s.to_string()),
                a.ts_ns / S,
                a.score,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("frag_ambiguity", Some("192.0.2.7".to_string()), 110, 2.0),
            ("frag_overlap", Some("192.0.2.7".to_string()), 110, 2.0),
            ("frag_flood", None, 110, 300.0),
            ("frag_too_large", Some("192.0.2.8".to_string()), 110, 1.0),
        ]
    );
    let flood = &alerts[2];
    assert_eq!(flood.dst, Some(Addr::from_v4([10, 0, 0, 9])));
    assert_eq!(flood.severity, Severity::High); // 300 >= 4 x 50
    assert_eq!(metric(flood, "distinct_sources").value, 200.0);
    assert_eq!(flood.granularity, AlertGranularity::Pair);
    assert!(
        flood.explanation.contains("from 200 sources"),
        "{}",
        flood.explanation
    );
    assert_eq!(run_frag(events, 3), alerts);
}
