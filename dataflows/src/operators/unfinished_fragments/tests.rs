use std::sync::{Arc, Mutex};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;

use super::*;
use crate::time::NS_PER_SEC;

const S: u64 = NS_PER_SEC;

fn frag_packet(ts_s: u64, dst: u8, fragments: u16) -> crate::packet::Packet {
    crate::packet::Packet {
        ts_ns: ts_s * S,
        ip_version: 4,
        protocol: 17,
        src: Addr::from_v4([192, 0, 2, 1]),
        dst: Addr::from_v4([10, 0, 0, dst]),
        fragments,
        ..Default::default()
    }
}

/// Fragments that never become part of a reassembled datagram, per destination and
/// bucket: 600 towards .9 (none completes), 600 towards .8 (all complete, in pairs).
#[test]
fn unfinished_fragments_become_a_flood_alert() {
    let run_unfinished = |workers: usize| {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut frags = InputHandle::<u64, CapacityContainerBuilder<Vec<FragCount>>>::new();
            let mut done =
                InputHandle::<u64, CapacityContainerBuilder<Vec<crate::packet::Packet>>>::new();
            let sink = Arc::clone(&sink);
            let config = DetectConfig::default();
            worker.dataflow::<u64, _, _>(|scope| {
                let d = scope.input_from(&mut done);
                scope
                    .input_from(&mut frags)
                    .unfinished_fragment_alerts(d, &config)
                    .inspect(move |a: &Alert| sink.lock().expect("lock").push(a.clone()));
            });
            if worker.index() == 0 {
                for i in 0..600u64 {
                    let t = 100 * S + i * 10_000_000;
                    frags.advance_to(t);
                    done.advance_to(t);
                    let mut p = frag_packet(100, 9, 0);
                    p.ts_ns = t;
                    frags.send(fragment_arrival(&p));
                    p.dst = Addr::from_v4([10, 0, 0, 8]);
                    frags.send(fragment_arrival(&p));
                    if i % 2 == 1 {
                        p.fragments = 2;
                        done.send(p);
                    }
                }
            }
        })
        .expect("timely");
        let mut alerts = std::mem::take(&mut *out.lock().expect("lock"));
        alerts.sort_by_key(|a| a.order_key());
        alerts
    };
    let alerts = run_unfinished(1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a.kind, AlertKind::FragFlood);
    assert_eq!(a.dst, Some(Addr::from_v4([10, 0, 0, 9])));
    assert_eq!(a.src, Some(Addr::from_v4([192, 0, 2, 1])));
    assert_eq!(a.score, 600.0);
    assert_eq!(a.ts_ns, 110 * S);
    assert_eq!(run_unfinished(3), alerts);
}
