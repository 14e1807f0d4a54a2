//! How many bytes of heap the detector's baselines hold per key, counted by a global
//! allocator that tracks the bytes in use (allocation sizes, not timings: the figures are
//! the same on every run).
//!
//! The case: a large network in which every host is seen in every minute (a DNS lookup
//! and its answer), so every host key has a baseline, fed by one window a minute. After
//! four minutes each key's trailing baseline holds four windows: their sum in
//! differential's arrangement, and their retraction, one update for the windows of one
//! history step (1 h), waiting in its batcher until they leave the 24 h history. A
//! decayed baseline holds the key's decayed moments. The arrangement merges its batches
//! while the worker is idle (`configure_worker`, as `flowtide analyze` configures it).

use flowtide_dataflows::baseline::{BaselineKey, BaselineMode, DetectConfig};
use flowtide_dataflows::operators::baseline::{configure_worker, DecayedBaselines, Probe};
use flowtide_dataflows::operators::Detect;
use flowtide_dataflows::packet::Addr;
use flowtide_dataflows::time::NS_PER_SEC;
use flowtide_dataflows::window::{Granularity, WindowKey, WindowRecord, WindowStats};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Probe as _};
use timely::dataflow::{InputHandle, ProbeHandle};

mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

const HOSTS: u32 = 100_000;
const MINUTES: u64 = 4;
const MINUTE: u64 = 60 * NS_PER_SEC;
const STEPS: usize = 5000;

/// Host `n`'s window ending at minute `m`: a DNS exchange, slightly different each time.
fn window(n: u32, m: u64) -> WindowRecord {
    let packets = 2 + u64::from(n % 3) + m % 2;
    WindowRecord {
        key: WindowKey {
            granularity: Granularity::Host,
            src: Addr::from_v4((0x0a00_0000 + n).to_be_bytes()),
            ..Default::default()
        },
        start_ns: (m - 1) * MINUTE,
        end_ns: m * MINUTE,
        partial: false,
        stats: WindowStats {
            packets,
            bytes: 65 * packets + u64::from(n % 50),
            flows_started: 1,
            iat_count: packets - 1,
            iat_sum_ns: u128::from(packets - 1) * 1_000_000,
            peers: vec![Addr::from_v4([192, 0, 2, 53])],
            dst_ports: vec![53],
            ..Default::default()
        },
    }
}

/// Bytes per key held by trailing baselines after `MINUTES` windows of every host.
fn trailing_bytes_per_key() -> f64 {
    let mut config = timely::Config::thread();
    configure_worker(&mut config.worker);
    let guards = timely::execute(config, move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<WindowRecord>>>::new();
        let probe = ProbeHandle::new();
        worker.dataflow::<u64, _, _>(|scope| {
            scope
                .input_from(&mut input)
                .detect_anomalies(DetectConfig::default())
                .probe_with(&probe);
        });
        let before = counting_alloc::in_use();
        for m in 1..=MINUTES {
            input.advance_to(m * MINUTE - 1);
            for n in 0..HOSTS {
                input.send(window(n, m));
            }
            input.advance_to(m * MINUTE + 1);
            while probe.less_than(input.time()) {
                worker.step();
            }
        }
        // The input stays open: the windows' retractions wait for their time.
        for _ in 0..STEPS {
            worker.step();
        }
        let used = counting_alloc::in_use() as f64 - before as f64;
        used / f64::from(HOSTS)
    });
    match guards.map(|g| g.join()) {
        Ok(mut results) => match results.pop() {
            Some(Ok(per_key)) => per_key,
            other => panic!("worker failed: {other:?}"),
        },
        Err(e) => panic!("timely: {e}"),
    }
}

/// Bytes per key held by decayed baselines after `MINUTES` windows of every host.
fn decayed_bytes_per_key() -> f64 {
    let config = DetectConfig {
        mode: BaselineMode::Decayed,
        ..DetectConfig::default()
    };
    let before = counting_alloc::in_use();
    let mut baselines = DecayedBaselines::new(config);
    let mut alerts = Vec::new();
    for m in 1..=MINUTES {
        let mut batch: Vec<(BaselineKey, Probe)> = (0..HOSTS)
            .map(|n| {
                let w = window(n, m);
                (BaselineKey::of(&w, false), Probe::of(&w, w.end_ns - 1))
            })
            .collect();
        baselines.process(&mut batch, MINUTE, &mut alerts);
    }
    assert_eq!(baselines.keys(), HOSTS as usize);
    let used = counting_alloc::in_use() as f64 - before as f64;
    used / f64::from(HOSTS)
}

#[test]
fn baselines_stay_within_512_bytes_per_key() {
    // One test: the counter is process-wide.
    let decayed = decayed_bytes_per_key();
    let trailing = trailing_bytes_per_key();
    eprintln!(
        "bytes per key with {MINUTES} windows: trailing {trailing:.0} (differential's \
         arrangement and batcher), decayed {decayed:.0}"
    );
    assert!(decayed <= 512.0, "decayed: {decayed}");
    assert!(trailing <= 512.0, "trailing: {trailing}");
}
