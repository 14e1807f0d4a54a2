//! How many bytes of heap the flow table holds per open flow, counted by a global
//! allocator that tracks the bytes in use (allocation sizes, not timings, so the figures
//! are the same on every run and machine word size).
//!
//! A million flows are opened between 17 client hosts and one server (distinct source
//! ports), so that the window-key aggregates stay a handful and the figures are the
//! table's own: its slabs of open flows, index, timer heap and, with windows on, the pane
//! accumulators and pane members.

use flowtide_dataflows::operators::flow_table::{FlowTableConfig, FlowTableState};
use flowtide_dataflows::packet::{tcp, Addr, Packet};
use flowtide_dataflows::window::WindowConfig;

mod counting_alloc;

#[global_allocator]
static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;

const FLOWS: u32 = 1_000_000;

/// Packet `i` of a flow `n`: from the client for even `i`, from the server for odd `i`.
fn packet(n: u32, i: u32) -> Packet {
    // A new client address every 60 000 flows (ports 1024..61024), so that every flow
    // key is distinct.
    let client = (
        Addr::from_v4([10, 1, (n / 60_000) as u8, 1]),
        1024 + (n % 60_000) as u16,
    );
    let server = (Addr::from_v4([192, 0, 2, 1]), 443u16);
    let ((src, sport), (dst, dport)) = if i.is_multiple_of(2) {
        (client, server)
    } else {
        (server, client)
    };
    Packet {
        ts_ns: u64::from(n) * 1_000 + u64::from(i),
        ip_version: 4,
        protocol: 6,
        src,
        dst,
        sport,
        dport,
        tcp_flags: match i {
            0 => tcp::SYN,
            1 => tcp::SYN | tcp::ACK,
            _ => tcp::ACK,
        },
        ip_len: 60,
        frame_len: 74,
        ..Default::default()
    }
}

/// Heap bytes per open flow after opening [`FLOWS`] flows of `packets` packets each.
fn bytes_per_flow(window: Option<WindowConfig>, packets: u32) -> f64 {
    let mut table = FlowTableState::new(FlowTableConfig {
        window,
        ..Default::default()
    });
    let mut out = Vec::new();
    let before = counting_alloc::in_use();
    for n in 0..FLOWS {
        for i in 0..packets {
            table.update(&packet(n, i), &mut out);
        }
    }
    assert!(out.is_empty(), "no flow may end");
    assert_eq!(table.open_flows(), FLOWS as usize);
    let used = counting_alloc::in_use().saturating_sub(before);
    drop(table);
    used as f64 / f64::from(FLOWS)
}

#[test]
fn open_flows_stay_within_their_byte_budget() {
    // The cases run in one test: the counter is process-wide.
    let panes = Some(WindowConfig::default());
    let [syn_only, handshake, long] = [1, 2, 3].map(|n| bytes_per_flow(None, n));
    let [w_syn_only, w_handshake, w_long] = [1, 2, 3].map(|n| bytes_per_flow(panes, n));
    eprintln!(
        "bytes per open flow, 1/2/3 packets: {syn_only:.0}/{handshake:.0}/{long:.0} \
         without windows, {w_syn_only:.0}/{w_handshake:.0}/{w_long:.0} with window panes"
    );
    // At most one packet per direction: the 160-byte slot, its index and timer entries,
    // and with windows on the pane's member entry (the pane comes from the lone packets).
    for bytes in [syn_only, handshake, w_syn_only, w_handshake] {
        assert!(bytes <= 256.0, "{bytes}");
    }
    // A direction's second packet adds the 288-byte full statistics, and with windows
    // on a 96-byte pane accumulator.
    assert!(
        long >= syn_only + 288.0 && long <= syn_only + 320.0,
        "{long}"
    );
    assert!(
        w_long >= w_syn_only + 384.0 && w_long <= w_syn_only + 430.0,
        "{w_long}"
    );
}
