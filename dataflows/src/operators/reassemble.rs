//! IP fragment reassembly as a dataflow operator: packets in, reconstructed packets and
//! reassembly events out, in event time.

use std::cell::RefCell;
use std::rc::Rc;

use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::{Capability, Concat, Operator};
use timely::dataflow::StreamVec;

use crate::flow_key::fragment_route;
use crate::order::EventTimeBuffer;
use crate::packet::{flags, Context, Packet};
use crate::reassembly::{
    Counters, Reassembled, ReassemblyConfig, ReassemblyEvent, ReassemblyTable,
};

/// Counters of one worker's reassembly operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReassembleStats {
    /// The reassembly table's counters (fragments, reassembled datagrams, drops, events
    /// per kind).
    pub table: Counters,
    /// Reassembled datagrams the decoder could not decode (dropped).
    pub undecodable: u64,
}

/// Shared handle to a worker's [`ReassembleStats`].
pub type ReassembleStatsHandle = Rc<RefCell<ReassembleStats>>;

/// What the reassembling operator emits before it is split into its two outputs.
enum Out {
    Packet(Packet),
    Event(ReassemblyEvent),
}

/// The reassembly state of one worker: the [`ReassemblyTable`] plus what the operator
/// needs to turn its output into [`Packet`]s. Independent of timely (unit-testable).
pub struct ReassembleState<D> {
    table: ReassemblyTable,
    decode: D,
    undecodable: u64,
    reassembled: Vec<Reassembled>,
}

impl<D: Fn(&[u8], Context, &mut Packet) -> bool> ReassembleState<D> {
    /// An empty state.
    pub fn new(config: ReassemblyConfig, decode: D) -> Self {
        ReassembleState {
            table: ReassemblyTable::new(config),
            decode,
            undecodable: 0,
            reassembled: Vec::new(),
        }
    }

    /// Feeds one fragment, in event-time order. A completed datagram is decoded into a
    /// packet that takes the completing fragment's time, feed and index; its `frame_len`
    /// is the sum of the frame lengths of the fragments pushed for the datagram while it
    /// was in flight (duplicates included: they were on the wire).
    pub fn push(
        &mut self,
        p: &Packet,
        packets: &mut Vec<Packet>,
        events: &mut Vec<ReassemblyEvent>,
    ) {
        if is_decoded_atomic(p) {
            // Nothing to reassemble: reported, and passed on as decoded.
            self.table.atomic(p, events);
            packets.push(p.clone());
            return;
        }
        self.table.push(p, &mut self.reassembled, events);
        for r in self.reassembled.drain(..) {
            let frame_len = r.frame_bytes.min(u64::from(u32::MAX)) as u32;
            let mut out = Packet {
                ts_ns: r.ts_ns,
                index: p.index,
                feed: p.feed,
                frame_len,
                flags: p.flags & (flags::LATE | flags::TRUNCATED),
                ..Packet::default()
            };
            if (self.decode)(&r.bytes, r.key.ctx, &mut out) {
                out.ts_ns = r.ts_ns;
                out.index = p.index;
                out.feed = p.feed;
                out.frame_len = frame_len;
                out.fragments = u16::try_from(r.fragments).unwrap_or(u16::MAX);
                packets.push(out);
            } else {
                self.undecodable += 1;
            }
        }
    }

    /// Times out datagrams whose deadline is at or before `frontier_ns`.
    pub fn expire(&mut self, frontier_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        self.table.expire(frontier_ns, events);
    }

    /// Ends the input (see [`ReassemblyTable::drain`]).
    pub fn drain(&mut self, end_of_input_ns: u64, events: &mut Vec<ReassemblyEvent>) {
        self.table.drain(end_of_input_ns, events);
    }

    /// The counters so far.
    pub fn stats(&self) -> ReassembleStats {
        ReassembleStats {
            table: self.table.counters().clone(),
            undecodable: self.undecodable,
        }
    }
}

/// An IPv6 atomic fragment (fragment header with offset 0 and M = 0) that the decoder
/// decoded through, keeping no datagram bytes: it is complete as it is.
fn is_decoded_atomic(p: &Packet) -> bool {
    p.bytes.is_none()
        && p.ip_version == 6
        && p.frag_offset == 0
        && p.flags & flags::MORE_FRAGMENTS == 0
        && p.flags & flags::V6_FRAGMENT_HEADER != 0
}

/// Reassembles IP fragments.
///
/// Non-fragments pass straight through (they are neither exchanged nor buffered).
/// Fragments ([`Packet::is_fragment`]) are exchanged by [`fragment_route`], so every
/// fragment of a datagram meets on one worker, held until the frontier passes their
/// capture time, and fed to a [`ReassemblyTable`] in event-time order; datagrams time out
/// when the frontier passes their deadline. A completed datagram is decoded with
/// `decode(ip_bytes, context, &mut packet)` (which returns false when the datagram does
/// not decode; it is then dropped and counted) into a packet with the completing
/// fragment's time, feed and index and, as `frame_len`, the sum of the frame lengths of
/// the datagram's fragments. Reassembled packets and events are emitted at the
/// frontier's time, like [`super::FlowTable`]'s flows.
///
/// `end_of_input` carries, from every source, the latest capture time it read; it must
/// reach every worker (e.g. `.broadcast()`): when both inputs are complete, datagrams
/// still in flight time out or are reported incomplete (see [`ReassemblyTable::drain`]).
///
/// Returns the packet stream (non-fragments and reassembled datagrams), the event stream
/// and a handle to the worker's counters.
///
/// # Examples
/// ```
/// use flowtide_dataflows::operators::{Reassemble, ReassemblyConfig};
/// use flowtide_dataflows::packet::{flags, Addr, Packet};
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Event;
///
/// // An IPv4 datagram of 16 payload bytes in two fragments, 10.0.0.1 -> 10.0.0.2, id 7.
/// fn fragment(ts: u64, offset: u16, more: bool, data: &[u8]) -> Packet {
///     let mut b = vec![0x45, 0, 0, 0, 0, 7, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
///     let total = (20 + data.len()) as u16;
///     b[2..4].copy_from_slice(&total.to_be_bytes());
///     let fo = (offset / 8) | if more { 0x2000 } else { 0 };
///     b[6..8].copy_from_slice(&fo.to_be_bytes());
///     b.extend_from_slice(data);
///     Packet { ts_ns: ts, index: ts, ip_version: 4, protocol: 17, ip_id: 7,
///         src: Addr::from_v4([10, 0, 0, 1]), dst: Addr::from_v4([10, 0, 0, 2]),
///         frag_offset: offset, flags: if more { flags::MORE_FRAGMENTS } else { 0 },
///         frame_len: 14 + b.len() as u32, ip_len: b.len() as u32,
///         bytes: Some(b.into_boxed_slice()), ..Default::default() }
/// }
/// let udp = [0x30, 0x39, 0, 53, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
/// let packets = vec![fragment(1, 8, false, &udp[8..]), fragment(2, 0, true, &udp[..8])];
/// let out = timely::example(move |scope| {
///     let end_of_input = vec![2u64].to_stream(scope).container::<Vec<_>>();
///     // A toy decoder: reads the IPv4 length and the UDP ports.
///     let decode = |ip: &[u8], _ctx, p: &mut Packet| {
///         p.ip_len = ip.len() as u32;
///         p.sport = u16::from_be_bytes([ip[20], ip[21]]);
///         p.dport = u16::from_be_bytes([ip[22], ip[23]]);
///         true
///     };
///     let (packets, _events, _stats) = packets.to_stream(scope).container::<Vec<_>>()
///         .reassemble(end_of_input, ReassemblyConfig::default(), decode);
///     packets.capture()
/// });
/// let out: Vec<Packet> = out.try_iter()
///     .flat_map(|e| match e { Event::Messages(_, v) => v, Event::Progress(_) => Vec::new() })
///     .collect();
/// assert_eq!(out.len(), 1);
/// assert_eq!((out[0].ts_ns, out[0].ip_len, out[0].sport, out[0].dport), (2, 36, 12345, 53));
/// assert_eq!(out[0].frame_len, 2 * 42); // the two fragments' frames
/// ```
pub trait Reassemble<'scope> {
    /// Builds the reassembler; returns (packets, events, counters).
    fn reassemble<D>(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: ReassemblyConfig,
        decode: D,
    ) -> (
        StreamVec<'scope, u64, Packet>,
        StreamVec<'scope, u64, ReassemblyEvent>,
        ReassembleStatsHandle,
    )
    where
        D: Fn(&[u8], Context, &mut Packet) -> bool + 'static;

    /// The reassembler for a stream that carries only fragments (a source that already
    /// separates them, so the unfragmented majority bypasses this operator entirely);
    /// returns (reassembled datagrams, events, counters). Non-fragments given to it are
    /// passed to the table anyway and reported as malformed.
    fn reassemble_fragments<D>(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: ReassemblyConfig,
        decode: D,
    ) -> (
        StreamVec<'scope, u64, Packet>,
        StreamVec<'scope, u64, ReassemblyEvent>,
        ReassembleStatsHandle,
    )
    where
        D: Fn(&[u8], Context, &mut Packet) -> bool + 'static;
}

impl<'scope> Reassemble<'scope> for StreamVec<'scope, u64, Packet> {
    fn reassemble<D>(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: ReassemblyConfig,
        decode: D,
    ) -> (
        StreamVec<'scope, u64, Packet>,
        StreamVec<'scope, u64, ReassemblyEvent>,
        ReassembleStatsHandle,
    )
    where
        D: Fn(&[u8], Context, &mut Packet) -> bool + 'static,
    {
        let mut parts = self.partition(2, |p: Packet| (u64::from(p.is_fragment()), p));
        let fragments = parts.pop().expect("two parts");
        let whole = parts.pop().expect("two parts");
        let (reassembled, events, stats) =
            fragments.reassemble_fragments(end_of_input, config, decode);
        (whole.concat(reassembled), events, stats)
    }

    fn reassemble_fragments<D>(
        self,
        end_of_input: StreamVec<'scope, u64, u64>,
        config: ReassemblyConfig,
        decode: D,
    ) -> (
        StreamVec<'scope, u64, Packet>,
        StreamVec<'scope, u64, ReassemblyEvent>,
        ReassembleStatsHandle,
    )
    where
        D: Fn(&[u8], Context, &mut Packet) -> bool + 'static,
    {
        let stats: ReassembleStatsHandle = Rc::default();
        let stats_out = Rc::clone(&stats);
        let fragments = self;
        let pact = Exchange::new(fragment_route);
        let out = fragments.binary_frontier(
            end_of_input,
            pact,
            Pipeline,
            "Reassemble",
            move |cap: Capability<u64>, _info| {
                let mut cap = Some(cap);
                let mut state = ReassembleState::new(config, decode);
                let mut buffer = EventTimeBuffer::default();
                let mut end_of_input_ns = 0u64;
                let mut packets: Vec<Packet> = Vec::new();
                let mut events: Vec<ReassemblyEvent> = Vec::new();
                move |(frags, frags_frontier), (ends, ends_frontier), output| {
                    frags.for_each(|_time, data| buffer.extend_from(data));
                    ends.for_each(|_time, data| {
                        end_of_input_ns = data.drain(..).fold(end_of_input_ns, u64::max);
                    });
                    let Some(held) = cap.as_mut() else { return };
                    let now = frags_frontier.frontier().iter().min().copied();
                    let finished = now.is_none() && ends_frontier.is_empty();
                    let horizon = now.unwrap_or(u64::MAX);
                    if horizon <= *held.time() && !finished {
                        return; // nothing new is complete
                    }
                    for p in buffer.release(horizon) {
                        state.push(&p, &mut packets, &mut events);
                    }
                    match now {
                        Some(t) => state.expire(t, &mut events),
                        None if finished => state.drain(end_of_input_ns, &mut events),
                        None => {}
                    }
                    if !packets.is_empty() || !events.is_empty() {
                        let mut session = output.session(&*held);
                        session.give_iterator(
                            packets
                                .drain(..)
                                .map(Out::Packet)
                                .chain(events.drain(..).map(Out::Event)),
                        );
                    }
                    *stats.borrow_mut() = state.stats();
                    match now {
                        Some(t) => held.downgrade(&t),
                        None if finished => cap = None,
                        None => {}
                    }
                }
            },
        );
        let mut split = out.partition(2, |o: Out| match o {
            Out::Packet(p) => (0, Ok(p)),
            Out::Event(e) => (1, Err(e)),
        });
        let events = split.pop().expect("two parts").flat_map(|r| r.err());
        let reassembled = split.pop().expect("two parts").flat_map(|r| r.ok());
        (reassembled, events, stats_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Addr;
    use crate::reassembly::EventKind;

    fn fragment(ts: u64, offset: u16, more: bool, data: &[u8]) -> Packet {
        let mut b = vec![
            0x45, 0, 0, 0, 0, 9, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let total = (20 + data.len()) as u16;
        b[2..4].copy_from_slice(&total.to_be_bytes());
        let fo = (offset / 8) | if more { 0x2000 } else { 0 };
        b[6..8].copy_from_slice(&fo.to_be_bytes());
        b.extend_from_slice(data);
        Packet {
            ts_ns: ts,
            index: ts,
            ip_version: 4,
            protocol: 17,
            ip_id: 9,
            src: Addr::from_v4([10, 0, 0, 1]),
            dst: Addr::from_v4([10, 0, 0, 2]),
            frag_offset: offset,
            flags: if more { flags::MORE_FRAGMENTS } else { 0 },
            frame_len: 100,
            bytes: Some(b.into_boxed_slice()),
            ..Default::default()
        }
    }

    #[test]
    fn frame_lengths_are_summed_per_datagram() {
        let mut s = ReassembleState::new(
            ReassemblyConfig::default(),
            |ip: &[u8], _, p: &mut Packet| {
                p.ip_len = ip.len() as u32;
                true
            },
        );
        let (mut out, mut ev) = (Vec::new(), Vec::new());
        s.push(&fragment(1, 0, true, &[0; 16]), &mut out, &mut ev);
        s.push(&fragment(2, 16, true, &[0; 8]), &mut out, &mut ev);
        // An exact duplicate is not stored, but it was on the wire.
        s.push(&fragment(2, 16, true, &[0; 8]), &mut out, &mut ev);
        s.push(&fragment(3, 24, false, &[0; 8]), &mut out, &mut ev);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].frame_len, out[0].ip_len, out[0].index),
            (400, 52, 3)
        );
        // The next datagram of the same key counts its own fragments only.
        let mut late = fragment(4, 0, true, &[0; 16]);
        late.frame_len = 60;
        s.push(&late, &mut out, &mut ev);
        let mut last = fragment(5, 16, false, &[0; 8]);
        last.frame_len = 50;
        s.push(&last, &mut out, &mut ev);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].frame_len, 110);
        s.push(&fragment(6, 0, true, &[0; 16]), &mut out, &mut ev);
        s.drain(7, &mut ev);
        assert_eq!(s.stats().table.event("incomplete_at_end"), 1);
    }

    #[test]
    fn decoded_atomic_fragments_pass_through() {
        // What the decoder makes of an IPv6 atomic fragment: decoded through to TCP, the
        // fragment-header flag and id kept, no bytes.
        let atomic = Packet {
            ts_ns: 7,
            ip_version: 6,
            protocol: 6,
            ip_id: 0x1234,
            sport: 43210,
            dport: 80,
            src: Addr::from_v6([1; 16]),
            dst: Addr::from_v6([2; 16]),
            flags: flags::V6_FRAGMENT_HEADER,
            frame_len: 80,
            ..Default::default()
        };
        let mut s = ReassembleState::new(
            ReassemblyConfig::default(),
            |_: &[u8], _, _: &mut Packet| panic!("nothing to decode"),
        );
        let (mut out, mut ev) = (Vec::new(), Vec::new());
        s.push(&atomic, &mut out, &mut ev);
        assert_eq!(out, vec![atomic]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, EventKind::AtomicFragment);
        assert_eq!((ev[0].key.id, ev[0].key.protocol), (0x1234, 0));
        let stats = s.stats().table;
        assert_eq!(
            (stats.fragments, stats.reassembled, stats.dropped_fragments),
            (1, 1, 0)
        );
        assert_eq!(stats.event("malformed"), 0);
    }
}
