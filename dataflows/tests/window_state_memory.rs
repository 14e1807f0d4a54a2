//! How many bytes of heap window state holds per key, counted by a global allocator that
//! tracks the bytes in use (allocation sizes, not timings: the figures are the same on
//! every run).
//!
//! The case that needs it: a million flows from distinct sources (a spoofed SYN flood,
//! a scan's replies) open at the end of a capture give two million window keys of one
//! flow each, a host and a channel per source. Their pane aggregates wait in the flow
//! table's pane combiner until the table has freed its flows, then build the windows
//! operator's state until the last windows go out.

use flowtide_dataflows::operators::WindowsState;
use flowtide_dataflows::packet::{proto, tcp, Addr, Packet};
use flowtide_dataflows::panes::{FlowSide, PaneAcc, PaneCombiner};
use flowtide_dataflows::window::{PaneAgg, WindowConfig};

mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

const FLOWS: u32 = 1_000_000;

/// Flow `n` of the flood: one SYN from its own source to the victim's web server.
fn flood_flow(n: u32) -> (FlowSide, PaneAcc) {
    let side = FlowSide {
        src: Addr::from_v4((0x0a00_0000 + n).to_be_bytes()),
        dst: Addr::from_v4([192, 0, 2, 1]),
        dport: 80,
        protocol: proto::TCP,
    };
    let mut acc = PaneAcc {
        start: 0,
        started: true,
        ..Default::default()
    };
    acc.add(
        &Packet {
            ts_ns: u64::from(n),
            protocol: proto::TCP,
            tcp_flags: tcp::SYN,
            ip_len: 40,
            ..Default::default()
        },
        None,
    );
    (side, acc)
}

#[test]
fn a_flood_of_one_flow_keys_stays_within_its_byte_budget() {
    // One test: the counter is process-wide.
    let config = WindowConfig::default();
    let before = counting_alloc::in_use();
    let mut combiner = PaneCombiner::new(config.slide_ns);
    for n in 0..FLOWS {
        let (side, mut acc) = flood_flow(n);
        combiner.fold(&side, &mut acc);
    }
    combiner.close_all();
    // A host and a channel per source, and the victim's service in a part per flush of
    // the pane (every 65 536 keys).
    let keys = 2 * FLOWS as usize + 1;
    let aggregates = combiner.len();
    assert!((keys..keys + 40).contains(&aggregates), "{aggregates}");
    let waiting = counting_alloc::in_use().saturating_sub(before) as f64 / aggregates as f64;

    // The aggregates go to the windows' state a part at a time, as the operators pass
    // them; the state's memory is measured once they are all in.
    let mut state = WindowsState::new(config);
    let mut part: Vec<PaneAgg> = Vec::new();
    let mut moved = 0;
    let before = counting_alloc::in_use();
    let mut done = false;
    while !done {
        done = combiner.take(16_384, &mut part);
        moved += part.len();
        for agg in part.drain(..) {
            state.insert(agg);
        }
    }
    drop(part);
    assert_eq!((moved, state.keys()), (aggregates, keys));
    let used = counting_alloc::in_use() as f64 - before as f64;
    // The combiner gave its memory back as the aggregates went out.
    let held = used / keys as f64;
    let mut out = Vec::new();
    state.drain(u64::MAX, &mut out);
    assert_eq!(out.len(), keys);
    eprintln!(
        "bytes per window key of one flow: {waiting:.0} waiting in the pane combiner, \
         {held:.0} net in the windows' state (after the combiner's are freed)"
    );
    // A key and its compact statistics (24 bytes in place for one SYN) in a flushed
    // part or the last pane: 64 bytes (67 measured: the service's parts hold its peers).
    assert!(waiting <= 72.0, "{waiting}");
    // The 88-byte slot (in a slab grown by doubling), the hash index of slot numbers and
    // the schedule entry: 115 measured, where a map of full statistics took 480.
    assert!(held + waiting <= 128.0, "{held} + {waiting}");
}
