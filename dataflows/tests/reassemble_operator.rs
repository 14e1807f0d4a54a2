//! The reassembly operator in a dataflow: fragments arriving out of order, in separate
//! batches at separate timely times, yield one reassembled packet; non-fragments pass
//! through unchanged.

use std::cell::RefCell;
use std::rc::Rc;

use flowtide_dataflows::operators::{Reassemble, ReassemblyConfig};
use flowtide_dataflows::packet::{flags, Addr, Packet};
use flowtide_dataflows::reassembly::ReassemblyEvent;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};

fn fragment(ts: u64, id: u16, offset: u16, more: bool, data: &[u8]) -> Packet {
    let mut b = vec![
        0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    let total = (20 + data.len()) as u16;
    b[2..4].copy_from_slice(&total.to_be_bytes());
    b[4..6].copy_from_slice(&id.to_be_bytes());
    let fo = (offset / 8) | if more { 0x2000 } else { 0 };
    b[6..8].copy_from_slice(&fo.to_be_bytes());
    b.extend_from_slice(data);
    Packet {
        ts_ns: ts,
        index: ts,
        ip_version: 4,
        protocol: 17,
        ip_id: u32::from(id),
        src: Addr::from_v4([10, 0, 0, 1]),
        dst: Addr::from_v4([10, 0, 0, 2]),
        frag_offset: offset,
        flags: if more { flags::MORE_FRAGMENTS } else { 0 },
        frame_len: 14 + b.len() as u32,
        ip_len: b.len() as u32,
        bytes: Some(b.into_boxed_slice()),
        ..Default::default()
    }
}

fn plain(ts: u64) -> Packet {
    Packet {
        ts_ns: ts,
        index: ts,
        ip_version: 4,
        protocol: 6,
        src: Addr::from_v4([10, 0, 0, 3]),
        dst: Addr::from_v4([10, 0, 0, 4]),
        sport: 1234,
        dport: 80,
        frame_len: 60,
        ip_len: 40,
        ..Default::default()
    }
}

type Seen = (Vec<Packet>, Vec<ReassemblyEvent>);

/// Runs the operator over `batches` (each sent at its own timely time) on `workers` threads.
fn run(batches: Vec<(u64, Vec<Packet>)>, end: u64, workers: usize) -> Seen {
    let seen = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
    let sink = std::sync::Arc::clone(&seen);
    timely::execute(timely::Config::process(workers), move |worker| {
        let mut input = InputHandle::<u64, CapacityContainerBuilder<Vec<Packet>>>::new();
        let mut ends = InputHandle::<u64, CapacityContainerBuilder<Vec<u64>>>::new();
        let probe = ProbeHandle::new();
        let local: Rc<RefCell<Seen>> = Rc::default();
        let (l1, l2) = (Rc::clone(&local), Rc::clone(&local));
        worker.dataflow::<u64, _, _>(|scope| {
            let eoi = scope.input_from(&mut ends).broadcast();
            let decode = |ip: &[u8], _ctx, p: &mut Packet| {
                if ip.len() < 24 {
                    return false;
                }
                p.ip_version = 4;
                p.protocol = ip[9];
                p.ip_len = ip.len() as u32;
                p.sport = u16::from_be_bytes([ip[20], ip[21]]);
                p.dport = u16::from_be_bytes([ip[22], ip[23]]);
                true
            };
            let (packets, events, _stats) =
                scope
                    .input_from(&mut input)
                    .reassemble(eoi, ReassemblyConfig::default(), decode);
            packets
                .inspect(move |p| l1.borrow_mut().0.push(p.clone()))
                .probe_with(&probe);
            events
                .inspect(move |e| l2.borrow_mut().1.push(e.clone()))
                .probe_with(&probe);
        });
        if worker.index() == 0 {
            for (t, batch) in batches.clone() {
                input.advance_to(t);
                ends.advance_to(t);
                for p in batch {
                    input.send(p);
                }
                worker.step();
            }
            ends.send(end);
        }
        drop(input);
        drop(ends);
        while !probe.done() {
            worker.step();
        }
        let mut s = sink.lock().expect("lock");
        let l = local.take();
        s.0.extend(l.0);
        s.1.extend(l.1);
    })
    .expect("timely");
    let mut s = std::mem::take(&mut *seen.lock().expect("lock"));
    s.0.sort_by_key(|p| p.order_key());
    s
}

#[test]
fn out_of_order_fragments_across_batches_make_one_packet() {
    let udp: Vec<u8> = [0x30, 0x39, 0, 53, 0, 32, 0, 0]
        .into_iter()
        .chain(0..24)
        .collect();
    for workers in [1, 3] {
        let batches = vec![
            (0, vec![plain(5), fragment(10, 7, 16, false, &udp[16..])]),
            (20, vec![plain(25)]),
            (30, vec![fragment(30, 7, 8, true, &udp[8..16]), plain(31)]),
            (40, vec![fragment(45, 7, 0, true, &udp[..8])]),
        ];
        let (packets, events) = run(batches, 45, workers);
        assert_eq!(packets.len(), 4, "{workers} workers: {packets:?}");
        assert_eq!(packets[0], plain(5));
        assert_eq!(packets[1], plain(25));
        assert_eq!(packets[2], plain(31));
        let r = &packets[3];
        assert_eq!((r.ts_ns, r.index), (45, 45));
        assert_eq!((r.sport, r.dport, r.ip_len), (12345, 53, 52));
        assert_eq!(r.frame_len, 3 * 34 + 32);
        assert!(!r.is_fragment());
        assert!(events.is_empty(), "{events:?}");
    }
}

#[test]
fn incomplete_datagrams_are_reported_at_the_end() {
    let batches = vec![(0, vec![fragment(1, 3, 0, true, &[0; 16]), plain(2)])];
    let (packets, events) = run(batches, 2, 2);
    assert_eq!(packets, vec![plain(2)]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind.name(), "incomplete_at_end");
    assert_eq!(events[0].ts_ns, 2);
}
