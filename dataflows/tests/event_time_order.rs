//! Property: however packets are batched, shuffled within what the frontier allows, and
//! however often the frontier moves, the flow table emits exactly the flows of one
//! in-order pass.

use flowtide_dataflows::flow::FlowRecord;
use flowtide_dataflows::operators::flow_table::{FlowTableConfig, FlowTableState};
use flowtide_dataflows::order::EventTimeBuffer;
use flowtide_dataflows::packet::{Addr, Packet};
use proptest::prelude::*;

fn packets() -> impl Strategy<Value = Vec<Packet>> {
    prop::collection::vec((0u64..2_000, 0u8..4, any::<bool>(), 0u16..3), 1..200).prop_map(|v| {
        let mut ps: Vec<Packet> = v
            .into_iter()
            .enumerate()
            .map(|(i, (ts, host, dir, port))| {
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
                    protocol: 17,
                    src,
                    dst,
                    sport,
                    dport,
                    ip_len: 100,
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

fn reference(ps: &[Packet], cfg: FlowTableConfig) -> Vec<FlowRecord> {
    let mut t = FlowTableState::new(cfg);
    let mut out = Vec::new();
    for p in ps {
        t.update(p, &mut out);
    }
    t.drain(ps.iter().map(|p| p.ts_ns).max().unwrap_or(0), &mut out);
    sorted(out)
}

proptest! {
    #[test]
    fn batching_and_frontier_steps_do_not_change_flows(
        ps in packets(),
        idle in 1u64..500,
        steps in prop::collection::vec(1u64..300, 1..30),
        seed in any::<u64>(),
    ) {
        let cfg = FlowTableConfig { idle_timeout_ns: idle };
        let expected = reference(&ps, cfg);

        // Deliver packets out of order: at each frontier step, deliver (shuffled) every
        // packet whose time is below the next frontier; the frontier only promises that
        // nothing earlier than itself is still to come.
        let mut t = FlowTableState::new(cfg);
        let mut buf = EventTimeBuffer::default();
        let mut out = Vec::new();
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
                t.drain(ps.iter().map(|p| p.ts_ns).max().unwrap_or(0), &mut out);
            } else {
                t.expire(frontier, &mut out);
            }
        }
        prop_assert_eq!(sorted(out), expected);
    }
}
