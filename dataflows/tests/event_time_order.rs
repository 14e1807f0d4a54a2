//! Property: however packets are batched, shuffled within what the frontier allows, and
//! however often the frontier moves, the flow table emits exactly the flows of one
//! in-order pass, with every end reason (idle, active, TCP FIN/RST with linger) and the
//! window panes they produce.

use flowtide_dataflows::flow::FlowRecord;
use flowtide_dataflows::operators::flow_table::{FlowTableConfig, FlowTableState};
use flowtide_dataflows::order::EventTimeBuffer;
use flowtide_dataflows::packet::{tcp, Addr, Packet};
use flowtide_dataflows::window::{PaneAgg, WindowConfig, WindowKey, WindowStats};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn packets() -> impl Strategy<Value = Vec<Packet>> {
    let flags = prop::sample::select(vec![
        0u8,
        tcp::SYN,
        tcp::SYN | tcp::ACK,
        tcp::ACK,
        tcp::ACK | tcp::PSH,
        tcp::FIN | tcp::ACK,
        tcp::RST,
    ]);
    let item = (
        0u64..2_000,
        0u8..4,
        any::<bool>(),
        0u16..3,
        any::<bool>(),
        flags,
    );
    prop::collection::vec(item, 1..200).prop_map(|v| {
        let mut ps: Vec<Packet> = v
            .into_iter()
            .enumerate()
            .map(|(i, (ts, host, dir, port, is_tcp, flags))| {
                let (a, b) = (
                    Addr::from_v4([10, 0, 0, host]),
                    Addr::from_v4([10, 0, 1, 1]),
                );
                let (src, dst, sport, dport) = if dir {
                    (a, b, 1000 + port, 80)
                } else {
                    (b, a, 80, 1000 + port)
                };
                Packet {
                    ts_ns: ts,
                    index: i as u64,
                    protocol: if is_tcp { 6 } else { 17 },
                    tcp_flags: if is_tcp { flags } else { 0 },
                    src,
                    dst,
                    sport,
                    dport,
                    ip_len: 60 + u32::from(port) * 500,
                    ..Default::default()
                }
            })
            .collect();
        ps.sort_by_key(|p| p.order_key());
        ps
    })
}

fn sorted(mut v: Vec<FlowRecord>) -> Vec<FlowRecord> {
    v.sort_by_key(|f| (f.order_key(), f.src2dst.packets, f.dst2src.packets));
    v
}

/// Panes merged per (key, pane): workers may flush one pane in several parts.
fn merged(panes: Vec<PaneAgg>) -> BTreeMap<(WindowKey, u64), WindowStats> {
    let mut m: BTreeMap<(WindowKey, u64), WindowStats> = BTreeMap::new();
    for a in panes {
        m.entry((a.key, a.pane_start_ns))
            .or_default()
            .merge(&a.stats);
    }
    m
}

type Outcome = (Vec<FlowRecord>, BTreeMap<(WindowKey, u64), WindowStats>);

fn reference(ps: &[Packet], cfg: FlowTableConfig) -> Outcome {
    let mut t = FlowTableState::new(cfg);
    let (mut out, mut panes) = (Vec::new(), Vec::new());
    for p in ps {
        t.update(p, &mut out);
    }
    t.drain(
        ps.iter().map(|p| p.ts_ns).max().unwrap_or(0),
        &mut out,
        &mut panes,
    );
    (sorted(out), merged(panes))
}

fn config() -> impl Strategy<Value = FlowTableConfig> {
    (1u64..500, 1u64..1_500, any::<bool>(), 0u64..100, 1u64..400).prop_map(
        |(idle, active, tcp_teardown, linger, slide)| FlowTableConfig {
            idle_timeout_ns: idle,
            active_timeout_ns: active,
            tcp_teardown,
            tcp_linger_ns: linger,
            window: Some(WindowConfig {
                size_ns: slide,
                slide_ns: slide,
            }),
            announce_udp_min_bytes: 0,
        },
    )
}

proptest! {
    #[test]
    fn batching_and_frontier_steps_do_not_change_flows(
        ps in packets(),
        cfg in config(),
        steps in prop::collection::vec(1u64..300, 1..30),
        seed in any::<u64>(),
    ) {
        let expected = reference(&ps, cfg);

        // Deliver packets out of order: at each frontier step, deliver (shuffled) every
        // packet whose time is below the next frontier; the frontier only promises that
        // nothing earlier than itself is still to come.
        let mut t = FlowTableState::new(cfg);
        let mut buf = EventTimeBuffer::default();
        let (mut out, mut panes) = (Vec::new(), Vec::new());
        let mut frontier = 0u64;
        let mut next = 0usize;
        let mut rng = seed | 1;
        // Sources never let the frontier pass the input's last capture time before the end.
        let t_end = ps.iter().map(|p| p.ts_ns).max().unwrap_or(0);
        for step in steps.iter().chain(std::iter::once(&u64::MAX)) {
            let target = if *step == u64::MAX { u64::MAX } else { frontier.saturating_add(*step).min(t_end) };
            let mut batch: Vec<Packet> = Vec::new();
            while next < ps.len() && ps[next].ts_ns < target.saturating_add(50) {
                batch.push(ps[next].clone());
                next += 1;
            }
            for i in (1..batch.len()).rev() {
                rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
                batch.swap(i, (rng % (i as u64 + 1)) as usize);
            }
            buf.extend_from(&mut batch);
            frontier = target;
            let ready: Vec<Packet> = buf.release(frontier).collect();
            for p in &ready {
                t.update(p, &mut out);
            }
            if frontier == u64::MAX {
                t.drain(ps.iter().map(|p| p.ts_ns).max().unwrap_or(0), &mut out, &mut panes);
            } else {
                let before = panes.len();
                t.expire(frontier, &mut out, &mut panes);
                // A pane is emitted only once it is over.
                for a in &panes[before..] {
                    prop_assert!(a.pane_start_ns + cfg.window.map_or(1, |w| w.slide_ns) <= frontier);
                }
            }
        }
        prop_assert_eq!((sorted(out), merged(panes)), expected);
    }
}
