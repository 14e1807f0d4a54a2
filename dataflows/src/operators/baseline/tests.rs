use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect, Probe as _};
use timely::dataflow::{InputHandle, ProbeHandle};

use super::*;
use crate::baseline::Severity;
use crate::packet::Addr;
use crate::time::NS_PER_SEC;
use crate::window::{WindowKey, WindowStats};

const S: u64 = NS_PER_SEC;

fn host(last: u8) -> WindowKey {
    WindowKey {
        granularity: Granularity::Host,
        src: Addr::from_v4([10, 0, 0, last]),
        ..Default::default()
    }
}

/// A 1 s window of `key` ending at `end_s` seconds with `packets` packets of 100 bytes.
fn window(key: WindowKey, end_s: u64, packets: u64) -> WindowRecord {
    WindowRecord {
        key,
        start_ns: (end_s - 1) * S,
        end_ns: end_s * S,
        partial: false,
        stats: WindowStats {
            packets,
            bytes: 100 * packets,
            flows_started: packets / 10,
            ..Default::default()
        },
    }
}

/// Runs the detector on `windows` (each sent at `end − 1` by worker 0) with `workers`
/// workers and returns the alerts in canonical order.
fn run(config: DetectConfig, mut windows: Vec<WindowRecord>, workers: usize) -> Vec<Alert> {
    windows.sort_by_key(|w| w.end_ns);
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&out);
    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<WindowRecord>>>::new();
        let probe = ProbeHandle::new();
        let sink = Arc::clone(&sink);
        let config = config.clone();
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .detect_anomalies(config)
                .inspect(move |a: &Alert| sink.lock().expect("lock").push(a.clone()))
                .probe_with(&probe);
        });
        if worker.index() == 0 {
            for w in &windows {
                let t = w.end_ns - 1;
                if t > *input.time() {
                    input.advance_to(t);
                }
                input.send(w.clone());
                worker.step();
            }
        }
    })
    .expect("timely");
    drop(guards);
    let mut alerts = std::mem::take(&mut *out.lock().expect("lock"));
    alerts.sort_by_key(|a| a.order_key());
    alerts
}

/// The baseline mechanisms are tested with plain z-scores: threshold 4, no cap, both
/// directions, no population prior (the defaults are tuned for 60 s windows of an
/// office network, see README); the population prior and the cap have their own tests.
fn config() -> DetectConfig {
    DetectConfig {
        learn_ns: 0,
        history_ns: 10 * S,
        history_steps: 0,
        threshold: 4.0,
        max_deviation: 0.0,
        upward: [false; crate::baseline::METRICS],
        population: false,
        ..DetectConfig::default()
    }
}

fn metric<'a>(a: &'a Alert, name: &str) -> &'a AlertMetric {
    a.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no {name} in {a:?}"))
}

fn packets_of(end_s: u64) -> u64 {
    100 + (end_s * 37) % 11
}

/// The baseline of a window ending at `E` holds the windows ending in `[E − history,
/// E − 1 ns]` that did not alert (with a history step, those that have not left by
/// `E − 1 ns`: a window ending at `x` leaves at `x` rounded up to the step plus the
/// history): checked against a direct computation through the alerts of outliers (which
/// carry the baseline they were judged against).
#[test]
fn trailing_baseline_matches_a_direct_computation() {
    // Exactly, and in 5 steps of 2 s.
    for steps in [0, 5] {
        trailing_baseline_with_steps_matches_a_direct_computation(steps);
    }
}

fn trailing_baseline_with_steps_matches_a_direct_computation(steps: u64) {
    let outliers = [15u64, 16, 25, 33, 40];
    let windows: Vec<WindowRecord> = (1..=40)
        .map(|e| {
            let p = if outliers.contains(&e) {
                100_000
            } else {
                packets_of(e)
            };
            window(host(1), e, p)
        })
        .collect();
    let c = DetectConfig {
        min_windows: 5,
        history_steps: steps,
        ..config()
    };
    let step = c.history_step_ns();
    let alerts = run(c, windows, 1);
    let ends: Vec<u64> = alerts.iter().map(|a| a.window_end_ns / S).collect();
    assert_eq!(ends, outliers);
    for a in &alerts {
        let e = a.window_end_ns / S;
        let left = |x: u64| super::exit_time(x * S, (10 * S, step)) < e * S;
        let base: Vec<f64> = (1..e)
            .filter(|x| !outliers.contains(x) && !left(*x))
            .map(|x| packets_of(x) as f64)
            .collect();
        let n = base.len() as f64;
        let mean = base.iter().sum::<f64>() / n;
        let sd = (base.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let m = metric(a, "packets");
        assert!(
            (m.baseline_mean - mean).abs() < 1e-9,
            "{e}: {m:?} vs {mean}"
        );
        assert!((m.baseline_stddev - sd).abs() < 1e-9, "{e}: {m:?} vs {sd}");
        assert_eq!(m.value, 100_000.0);
        assert!(
            a.explanation
                .ends_with(&format!("[{} windows]", base.len())),
            "{}",
            a.explanation
        );
        let b = metric(a, "bytes");
        assert!((b.baseline_mean - 100.0 * mean).abs() < 1e-6);
    }
}

/// A window never sees itself: the first window of a key has no baseline, the second a
/// baseline of exactly one window.
#[test]
fn a_window_is_judged_against_earlier_windows_only() {
    let c = DetectConfig {
        min_windows: 1,
        threshold: 1e-9,
        ..config()
    };
    let alerts = run(c, vec![window(host(1), 1, 10), window(host(1), 2, 50)], 1);
    assert_eq!(alerts.len(), 1);
    let m = metric(&alerts[0], "packets");
    assert_eq!((m.value, m.baseline_mean), (50.0, 10.0));
    assert!(alerts[0].explanation.ends_with("[1 windows]"));
}

#[test]
fn learning_phase_and_minimum_windows() {
    let c = DetectConfig {
        learn_ns: 30 * S,
        history_ns: 3600 * S,
        ..config()
    };
    let mut windows: Vec<WindowRecord> = (1..=60)
        .map(|e| window(host(1), e, if e == 45 { 9_000 } else { 100 }))
        .collect();
    // Key 3: an outlier in the learning phase raises nothing.
    windows.extend((1..=29).map(|e| window(host(3), e, if e == 20 { 9_000 } else { 100 })));
    // Keys 2 and 4 appear at 50 s: an outlier after 5 windows is ignored, after 10 it
    // alerts.
    windows.extend((50..=70).map(|e| window(host(2), e, if e == 55 { 9_000 } else { 100 })));
    windows.extend((50..=70).map(|e| window(host(4), e, if e == 61 { 9_000 } else { 100 })));
    let alerts = run(c, windows, 1);
    let got: Vec<(u8, u64)> = alerts
        .iter()
        .map(|a| (a.src.map_or(0, |s| s.words().1 as u8), a.window_end_ns / S))
        .collect();
    // The first window ends at 1 s: alerts from 31 s on.
    assert_eq!(got, vec![(1, 45), (4, 61)]);
    assert_eq!(alerts[0].severity, Severity::High);
    assert_eq!(alerts[0].kind, AlertKind::Anomaly);
}

/// A long flood keeps alerting: its windows never enter the baseline (as long as the
/// history still holds `min_windows` windows from before it).
#[test]
fn a_long_flood_does_not_become_normal() {
    for mode in [BaselineMode::Trailing, BaselineMode::Decayed] {
        let c = DetectConfig {
            mode,
            decay_ns: 60 * S,
            history_ns: 1000 * S,
            ..config()
        };
        let windows: Vec<WindowRecord> = (1..=100)
            .map(|e| window(host(1), e, if e > 30 { 10_000 + e } else { packets_of(e) }))
            .collect();
        let alerts = run(c, windows, 1);
        let ends: Vec<u64> = alerts.iter().map(|a| a.window_end_ns / S).collect();
        assert_eq!(ends, (31..=100).collect::<Vec<_>>(), "{mode:?}");
        // And after the flood, normal traffic is normal again.
        let last = alerts.last().expect("alerts");
        let m = metric(last, "packets");
        assert!(m.baseline_mean < 120.0, "{mode:?}: {m:?}");
    }
}

/// A slow drift that never alerts is learned by the decayed baseline.
#[test]
fn decayed_baseline_follows_a_level_shift_that_does_not_alert() {
    let c = DetectConfig {
        mode: BaselineMode::Decayed,
        decay_ns: 5 * S,
        ..config()
    };
    // A gentle ramp (never 4 floors away from the recent past), then a spike.
    let windows: Vec<WindowRecord> = (1..=200)
        .map(|e| window(host(1), e, if e == 200 { 2_000 } else { 100 + e }))
        .collect();
    let alerts = run(c, windows, 1);
    assert_eq!(alerts.len(), 1);
    let m = metric(&alerts[0], "packets");
    // The decayed mean tracks the ramp (~ the last few windows, ~295).
    assert!((280.0..300.0).contains(&m.baseline_mean), "{m:?}");
}

#[test]
fn same_alerts_with_one_two_and_three_workers() {
    // Trailing with exact exits and with a history step (windows leaving in groups),
    // and decayed.
    for (mode, steps) in [
        (BaselineMode::Trailing, 0),
        (BaselineMode::Trailing, 2),
        (BaselineMode::Decayed, 0),
    ] {
        let c = DetectConfig {
            mode,
            hour_of_day: mode == BaselineMode::Decayed,
            history_steps: steps,
            ..config()
        };
        let mut windows = Vec::new();
        for k in 1..=12u8 {
            for e in 1..=60u64 {
                let x = u64::from(k) * 7 + e;
                let p = if x % 23 == 0 {
                    5_000 + x
                } else {
                    100 + (x * 13) % 17
                };
                windows.push(window(host(k), e, p));
            }
        }
        let one = run(c.clone(), windows.clone(), 1);
        assert!(one.len() > 10, "{}", one.len());
        let two = run(c.clone(), windows.clone(), 2);
        let three = run(c, windows, 3);
        assert_eq!(one, two, "{mode:?} {steps}");
        assert_eq!(one, three, "{mode:?} {steps}");
    }
}

#[test]
fn partial_windows_are_ignored() {
    let mut windows: Vec<WindowRecord> = (1..=20).map(|e| window(host(1), e, 100)).collect();
    let mut last = window(host(1), 21, 100_000);
    last.partial = true;
    windows.push(last);
    assert!(run(config(), windows, 1).is_empty());
}

/// Day and night traffic judged against their own hour's baseline: with hour-of-day
/// profiles the daily switch between 100 and 1000 packets per window is normal; without
/// them, it alerts.
#[test]
fn hour_of_day_profiles() {
    let mut windows = Vec::new();
    for day in 0..4u64 {
        for k in 1..=12u64 {
            let night = day * 86_400 + k;
            let noon = day * 86_400 + 12 * 3600 + k;
            windows.push(window(host(1), night, 100 + k % 3));
            windows.push(window(host(1), noon, 1000 + k % 3));
        }
    }
    let c = DetectConfig {
        history_ns: 10 * 86_400 * S,
        ..config()
    };
    let profiled = DetectConfig {
        hour_of_day: true,
        ..c.clone()
    };
    assert!(run(profiled, windows.clone(), 1).is_empty());
    let flat = run(c, windows, 1);
    assert!(!flat.is_empty());
    assert!(flat.iter().all(|a| a.hour_of_day.is_none()));
}

/// 20 ordinary hosts (about 100 packets per window) for 20 windows.
fn ordinary_hosts() -> Vec<WindowRecord> {
    (1..=20u64)
        .flat_map(|e| (1..=20u8).map(move |h| window(host(h), e, packets_of(e + u64::from(h)))))
        .collect()
}

/// A host never seen before floods in window 21: its own baseline is empty, so only the
/// population prior (every host's windows) can judge it; the same with 1 to 4 workers.
#[test]
fn population_prior_alerts_a_new_host_flooding() {
    let mut windows = ordinary_hosts();
    windows.push(window(host(99), 21, 100_000));
    let with = DetectConfig {
        population: true,
        ..config()
    };
    let alerts = run(with.clone(), windows.clone(), 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].src, Some(Addr::from_v4([10, 0, 0, 99])));
    assert_eq!(alerts[0].ts_ns, 21 * S);
    assert!(alerts[0].explanation.contains("judged against all keys"));
    for workers in 2..=4 {
        assert_eq!(
            run(with.clone(), windows.clone(), workers),
            alerts,
            "{workers}"
        );
    }
    assert!(
        run(config(), windows, 2).is_empty(),
        "no prior, no baseline"
    );
}

/// A host that always sends 100 times more than the others is judged against its own
/// baseline once it holds `min_windows` windows, never against the population (where it
/// would be an outlier), with any worker count. (The join emits the matches with the own
/// and the population baseline on different workers; scoring before bringing them
/// together judged such a window against the population on one worker.)
#[test]
fn population_prior_only_without_enough_history() {
    let mut windows = ordinary_hosts();
    windows.extend((1..=21u64).map(|e| window(host(50), e, 10_000 + e % 3)));
    let with = DetectConfig {
        population: true,
        ..config()
    };
    for workers in 1..=4 {
        let alerts = run(with.clone(), windows.clone(), workers);
        let big: Vec<_> = alerts
            .iter()
            .filter(|a| a.src == Some(Addr::from_v4([10, 0, 0, 50])))
            .filter(|a| a.ts_ns > 11 * S)
            .collect();
        assert!(big.is_empty(), "{workers} workers: {big:?}");
    }
}

/// With the cap, one metric alone cannot make an alert, and with `upward` a drop of
/// traffic is no deviation.
#[test]
fn capped_and_upward_deviations() {
    let mut windows: Vec<WindowRecord> = (1..=20)
        .map(|e| window(host(1), e, packets_of(e)))
        .collect();
    // Window 21: a huge mean packet size alone (same packets, 100 times the bytes).
    let mut w = window(host(1), 21, 100);
    w.stats.bytes *= 100;
    windows.push(w);
    // Window 22: almost no traffic.
    windows.push(window(host(1), 22, 1));
    // Packets and mean packet size only.
    let mut weights = [0.0; crate::baseline::METRICS];
    weights[crate::baseline::Metric::Packets as usize] = 1.0;
    weights[crate::baseline::Metric::PktSizeMean as usize] = 1.0;
    // Window 22 is under the default `min_packets`; this test is about deviations.
    let plain = DetectConfig {
        weights,
        history_ns: 3600 * S,
        min_packets: 0,
        ..config()
    };
    let capped = DetectConfig {
        max_deviation: 5.0,
        upward: crate::baseline::Metric::ALL.map(crate::baseline::Metric::default_upward),
        ..plain.clone()
    };
    let plain = run(plain, windows.clone(), 1);
    assert_eq!(
        plain.iter().map(|a| a.ts_ns / S).collect::<Vec<_>>(),
        vec![21, 22]
    );
    assert!(run(capped, windows, 1).is_empty());
}

/// Hopping windows: only those that tile time enter the baseline, all are scored.
#[test]
fn only_tiling_windows_enter_the_baseline() {
    let mut windows = Vec::new();
    for e in 2..=30u64 {
        // 2 s windows every second: those starting at an even second tile time.
        let mut w = window(host(1), e, if e == 30 { 100_000 } else { packets_of(e) });
        w.start_ns = (e - 2) * S;
        windows.push(w);
    }
    let c = DetectConfig {
        history_ns: 3600 * S,
        ..config()
    };
    let alerts = run(c, windows, 2);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    // 28 windows before the outlier, 14 of which tile time.
    assert!(
        alerts[0].explanation.ends_with("[14 windows]"),
        "{}",
        alerts[0].explanation
    );
}

/// A key's hopping windows of one epoch share its first window's query: with a history
/// that is a multiple of the window length they are judged exactly as when every window
/// queries on its own (a history of one more second changes nothing within 30 s).
#[test]
fn hopping_windows_of_an_epoch_share_one_query() {
    let mut windows = Vec::new();
    for key in 1..=3u8 {
        for e in 2..=30u64 {
            // 2 s windows every second; outliers on windows that do and do not tile.
            let spike = (key == 1 && e == 21) || (key == 2 && e == 28) || (key == 3 && e == 25);
            let mut w = window(host(key), e, if spike { 100_000 } else { packets_of(e) });
            w.start_ns = (e - 2) * S;
            windows.push(w);
        }
    }
    let shared = DetectConfig {
        history_ns: 3600 * S,
        ..config()
    };
    let each = DetectConfig {
        history_ns: 3601 * S,
        ..config()
    };
    let reference = run(each, windows.clone(), 1);
    assert!(
        reference.iter().any(|a| a.window_start_ns % (2 * S) != 0),
        "an alert on a window that does not tile: {reference:?}"
    );
    assert!(reference.len() >= 3, "{reference:?}");
    for workers in [1, 2, 3] {
        assert_eq!(run(shared.clone(), windows.clone(), workers), reference);
    }
}

/// Windows under `min_packets` are not scored and stay out of their key's own baseline:
/// a key of small windows raises nothing however its windows vary, and its first window
/// over the minimum has no history of its own (it is judged on its own windows only
/// once ten of them reached the minimum).
#[test]
fn windows_too_small_to_judge() {
    let c = DetectConfig {
        min_windows: 3,
        min_packets: 10,
        ..config()
    };
    // Key 1: 20 windows of 2 packets, then one of 9 packets of 100 times the size: all
    // small, nothing alerts (with `min_packets = 0`, the last window is an outlier).
    let mut windows: Vec<WindowRecord> = (1..=20).map(|e| window(host(1), e, 2)).collect();
    let mut odd = window(host(1), 21, 9);
    odd.stats.bytes *= 100;
    windows.push(odd);
    assert!(run(c.clone(), windows.clone(), 1).is_empty());
    let all = DetectConfig {
        min_packets: 0,
        ..c.clone()
    };
    assert_eq!(run(all, windows.clone(), 1).len(), 1);
    // Key 2: small windows, then windows of 100 packets: the first three big ones build
    // the baseline (none is judged against the small ones), the fourth is judged.
    let mut windows: Vec<WindowRecord> = (1..=10).map(|e| window(host(2), e, 3)).collect();
    windows.extend((11..=14).map(|e| window(host(2), e, 100 + e)));
    windows.push(window(host(2), 15, 5000));
    let alerts = run(c, windows, 1);
    assert_eq!(alerts.len(), 1);
    let m = metric(&alerts[0], "packets");
    assert_eq!(alerts[0].window_end_ns, 15 * S);
    assert!(
        alerts[0].explanation.ends_with("[4 windows]"),
        "{}",
        alerts[0].explanation
    );
    assert!((m.baseline_mean - 112.5).abs() < 1e-9, "{m:?}");
}
