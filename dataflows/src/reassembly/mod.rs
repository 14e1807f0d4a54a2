//! IP fragment reassembly: the pure, operator-independent core.
//!
//! A [`table::ReassemblyTable`] takes the fragments of one worker in event-time order
//! (`push`), reconstructs complete datagrams into IP packets ([`table::Reassembled`]) and
//! reports anomalies and lifecycle events ([`event::ReassemblyEvent`]). Datagrams are keyed
//! by [`event::FragKey`] (context, IP version, addresses, protocol, identification), time
//! out in event time (`expire`), are evicted oldest-first under a memory budget and
//! count limits, and are reported at the end of input (`drain`).
//!
//! ## Overlap policies
//! Targets resolve overlapping fragments differently (Novak, "Target-Based Fragmentation
//! Reassembly", 2005; Snort frag3; Suricata). Here every policy is one rule applied per
//! byte while the stored fragments are painted in arrival order: a byte keeps the data of
//! its current owner unless the new fragment *beats* it, comparing the two fragments'
//! original offsets (`off`) and ends (`end`):
//!
//! | policy      | new fragment beats the owner when            | targets (per Novak / Baggett) |
//! |-------------|----------------------------------------------|-------------------------------|
//! | `first`     | never                                        | old Solaris, HP-UX 11, macOS  |
//! | `last`      | always                                       | RFC 791, Cisco                |
//! | `bsd`       | `new.off < own.off`                          | FreeBSD, AIX, HP-UX 10, IRIX  |
//! | `bsd-right` | `new.off >= own.off`                         | HP JetDirect                  |
//! | `linux`     | `new.off <= own.off`                         | Linux before 4.19             |
//! | `windows`   | `new.off < own.off && new.end > own.end`     | Windows                       |
//! | `solaris`   | `new.off < own.off && new.end >= own.end`    | Solaris                       |
//! | `rfc5722`   | never; a different-data overlap discards all | IPv6 stacks, Linux ≥ 4.19     |
//!
//! So `bsd` is "lowest offset wins, ties to the earlier fragment", `linux` "lowest offset,
//! ties to the later", `bsd-right` "highest offset, ties to the later", and `windows` /
//! `solaris` are `first` except that a later fragment swallowing an earlier one (starting
//! strictly before it and ending after it — strictly for Windows, or at its end for
//! Solaris) replaces it.
//!
//! This one rule set reproduces byte for byte both oracles in `tests/reassembly_*.rs`:
//! Suricata's Sturges/Novak unit tests (byte ranges; IPv4 and IPv6; bsd, linux, windows,
//! solaris, first, last and the other defrag.c cases) and Mark Baggett's reassembler
//! (`final_frags.pcap` and the "judy" pattern; fragment granularity; first, rfc791 = last,
//! linux, bsd, bsd-right). The two sources describe the same behaviours and do not
//! disagree on any of these cases. Baggett's sixth policy, "other" ("some IoT device":
//! highest offset wins, ties to the *earlier* fragment), is neither Windows nor Solaris:
//! on `final_frags.pcap` `windows` gives Baggett's `first` result and `solaris` his `bsd`
//! result, and on the Novak set all three differ; it has no [`policy::Policy`] variant.
//! One caveat: Baggett's output zeroes the UDP checksum (scapy rebuilds the header); the
//! bytes of the datagram itself are otherwise identical.
//!
//! With several fragments stacked on one byte the rule compares *original* claims, not
//! the trimmed extents a kernel keeps; the oracles above do not distinguish the two.
//!
//! Exact duplicates (same offset, length and data) are never stored: they change no
//! policy's result. A datagram whose overlaps all carried identical data yields the same
//! bytes under every policy; when some overlap differed, the completed datagram is
//! painted under every policy of the configured set and an ambiguity event names the
//! groups of agreeing policies and the differing byte ranges.
//!
//! ## Output, time and limits
//! * The reconstructed packet takes the header of the first-arrived offset-0 fragment.
//!   IPv4: total length rewritten, MF and offset cleared, DF (and the reserved bit) kept as
//!   on that fragment, header checksum recomputed. IPv6: fragment header removed, the
//!   preceding next-header field patched, payload length fixed. Its time is the capture
//!   time of the completing fragment. Bytes past the final fragment's end are ignored.
//! * A datagram's deadline is its *first* fragment's time plus the timeout of its IP
//!   version (Linux and Suricata do the same), enforced by `expire(frontier)` and at the
//!   start of every `push`, never by waiting for later packets.
//! * Memory is charged per stored fragment (data plus a fixed overhead), per stored
//!   header and per datagram; exceeding the budget or the datagram count evicts the oldest
//!   datagrams (first-fragment time, then key), reaching the fragment limit evicts the
//!   datagram itself, and a fragment that alone exceeds the budget is dropped.
//! * The first final fragment (MF=0) fixes the end; a later one with another end is dropped
//!   (`conflicting_final`). An exact duplicate that carries no new final mark is not stored.

pub mod datagram;
pub mod event;
pub mod parse;
pub mod policy;
pub mod table;

pub use event::{Counters, EventKind, EvictReason, FragKey, ReassemblyEvent};
pub use policy::{Cidr, Policy, PolicyMap};
pub use table::{Reassembled, ReassemblyConfig, ReassemblyTable, TinyFirst};
