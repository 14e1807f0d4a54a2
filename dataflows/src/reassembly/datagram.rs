//! The fragment buffer of one datagram: stored fragments in arrival order, the covered
//! byte ranges, the final end, and the overlap analysis of a new fragment.
//!
//! A datagram keeps every byte it stores (its fragments' data and the offset-0 header) in
//! one buffer, and each fragment as a range of it: one allocation per datagram instead
//! of one per fragment, so that a flood of incomplete datagrams, evicted oldest first,
//! frees one cold block per datagram rather than one per fragment. The buffer grows to
//! exactly what it holds up to [`EXACT_GROWTH`] bytes (the size of most datagrams, so the
//! charge is the data itself), and by doubling beyond, so that a datagram of many
//! fragments is not copied once per fragment; its capacity is what is charged.

use super::event::Range;
use super::policy::{paint, FragmentView, Policy};

/// Fixed memory charged per datagram in flight: the buffer, its index and timer entries
/// and their allocations. Measured: about 660 bytes of resident memory per datagram
/// (200 000 one-fragment datagrams), so the budget bounds real memory, not a model of it.
pub const DATAGRAM_OVERHEAD: usize = 768;
/// Fixed memory charged per stored fragment besides its data (its 12-byte range, twice
/// that with the growth of the list, and allocator slack).
pub const FRAGMENT_OVERHEAD: usize = 48;
/// A datagram's byte buffer grows to exactly what it holds up to this size, and by
/// doubling beyond it.
pub const EXACT_GROWTH: usize = 4096;
/// The most fragments a datagram may store. Each adds at most 65 535 bytes to the
/// buffer (an IP payload), like its header, so the buffer's offsets fit in 32 bits.
pub const MAX_FRAGMENTS_LIMIT: usize = 65_535;

/// The capacity a buffer of capacity `cap` has once it holds `needed` bytes.
fn grown(cap: usize, needed: usize) -> usize {
    if needed <= cap {
        cap
    } else if needed <= EXACT_GROWTH {
        needed
    } else {
        needed.max(cap.saturating_mul(2))
    }
}

/// The growth of a buffer of capacity `cap` holding `len` bytes when `header` (if not 0)
/// and then `data` bytes are appended, one append each.
fn growth_after(cap: usize, len: usize, header: usize, data: usize) -> usize {
    let mut c = cap;
    let mut l = len;
    for n in [header, data] {
        if n > 0 {
            l = l.saturating_add(n);
            c = grown(c, l);
        }
    }
    c - cap
}

/// One stored fragment: where its data is in the datagram's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredFragment {
    /// Offset in the fragmentable payload.
    pub offset: u32,
    /// Start of its data in the buffer.
    start: u32,
    /// Length of its data.
    len: u32,
}

impl StoredFragment {
    /// One past the last byte.
    pub fn end(&self) -> u32 {
        self.offset + self.len
    }
}

/// Where the offset-0 fragment's header is in the buffer, and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    start: u32,
    len: u32,
    /// IPv6: index in the header of the next-header byte that names the fragment header.
    next_header_at: usize,
    /// The upper-layer protocol it names.
    protocol: u8,
}

/// What a new fragment shares with the stored ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlapReport {
    /// Extent of all bytes shared with stored fragments, if any.
    pub extent: Option<Range>,
    /// Merged ranges where the new data differs from some stored fragment's.
    pub differing: Vec<Range>,
    /// A stored fragment has the same offset, length and data.
    pub duplicate: bool,
    /// A stored fragment the new one starts inside of and ends before (teardrop shrink).
    pub shrinks: Option<Range>,
}

/// All state of one datagram being reassembled.
#[derive(Clone, Debug)]
pub struct DatagramBuffer {
    /// Capture time of the first fragment.
    pub first_ns: u64,
    /// When it times out.
    pub deadline_ns: u64,
    /// The policy it is reassembled with.
    pub policy: Policy,
    /// Fragments in arrival order.
    fragments: Vec<StoredFragment>,
    /// The stored fragments' data and the header, in arrival order.
    bytes: Vec<u8>,
    /// Stored fragments cover `[0, prefix_end)` without a gap (0: no fragment at 0).
    prefix_end: u32,
    /// End of the datagram per its first final fragment.
    pub final_end: Option<u32>,
    /// Largest end of stored data.
    pub max_end: u32,
    /// Header of the first-arrived offset-0 fragment (see `parse::ParsedFragment::header`)
    /// and the upper-layer protocol it names (for IPv6 the offset-0 fragment's next
    /// header is the one that counts, RFC 8200 §4.5).
    header: Option<Header>,
    /// Merged byte ranges where overlapping fragments carried different data.
    pub differing: Vec<Range>,
    /// The datagram's policy is rfc5722 and it was discarded: it produces no output.
    pub discarded: bool,
    /// Memory charged to this datagram.
    pub memory: usize,
    /// Summed frame lengths of the fragments pushed for it while it was in flight
    /// (duplicates and rejected fragments included: they were on the wire).
    pub frame_bytes: u64,
}

impl DatagramBuffer {
    /// An empty buffer.
    pub fn new(first_ns: u64, deadline_ns: u64, policy: Policy) -> Self {
        DatagramBuffer {
            first_ns,
            deadline_ns,
            policy,
            fragments: Vec::new(),
            bytes: Vec::new(),
            prefix_end: 0,
            final_end: None,
            max_end: 0,
            header: None,
            differing: Vec::new(),
            discarded: false,
            memory: DATAGRAM_OVERHEAD,
            frame_bytes: 0,
        }
    }

    /// Compares a new fragment with the stored ones.
    pub fn analyse(&self, offset: u32, data: &[u8]) -> OverlapReport {
        let end = offset + data.len() as u32;
        let mut r = OverlapReport::default();
        let mut diff: Vec<Range> = Vec::new();
        for f in &self.fragments {
            let (s, e) = (offset.max(f.offset), end.min(f.end()));
            if s >= e {
                continue;
            }
            r.extent = Some(match r.extent {
                None => (s, e),
                Some((a, b)) => (a.min(s), b.max(e)),
            });
            let stored = self.data_of(f);
            if f.offset == offset && f.end() == end && stored == data {
                r.duplicate = true;
            }
            if f.offset < offset && end < f.end() && r.shrinks.is_none() {
                r.shrinks = Some((f.offset, f.end()));
            }
            let mut run: Option<u32> = None;
            for j in s..=e {
                let differs =
                    j < e && data[(j - offset) as usize] != stored[(j - f.offset) as usize];
                match (differs, run) {
                    (true, None) => run = Some(j),
                    (false, Some(st)) => {
                        diff.push((st, j));
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        r.differing = merge(diff);
        r
    }

    /// The memory that appending `header` bytes (with [`Self::set_header`]; 0 for none)
    /// and then `data` bytes (with [`Self::store`]) adds to the buffer: its capacity's
    /// growth, as those two charge it.
    pub fn growth(&self, header: usize, data: usize) -> usize {
        let cap = self.bytes.capacity();
        growth_after(cap, self.bytes.len(), header, data)
    }

    /// What a new datagram's buffer costs once it holds `header` and then `data` bytes.
    pub fn initial_growth(header: usize, data: usize) -> usize {
        growth_after(0, 0, header, data)
    }

    /// Appends `data` to the buffer, growing it as [`Self::growth`] says; returns where
    /// it starts and the memory the growth took.
    fn append(&mut self, data: &[u8]) -> (u32, usize) {
        let cap = self.bytes.capacity();
        let target = grown(cap, self.bytes.len() + data.len());
        if target > cap {
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(data);
        (start, self.bytes.capacity() - cap)
    }

    /// The data of a stored fragment.
    fn data_of(&self, f: &StoredFragment) -> &[u8] {
        let start = f.start as usize;
        &self.bytes[start..start + f.len as usize]
    }

    /// Number of stored fragments.
    pub fn fragment_count(&self) -> usize {
        self.fragments.len()
    }

    /// Whether the offset-0 fragment's header is stored.
    pub fn has_header(&self) -> bool {
        self.header.is_some()
    }

    /// Stores the offset-0 fragment's header (see `parse::ParsedFragment::header`), the
    /// index of its next-header byte naming the fragment header and the upper-layer
    /// protocol; returns the memory it was charged.
    pub fn set_header(&mut self, header: &[u8], next_header_at: usize, protocol: u8) -> usize {
        let (start, cost) = self.append(header);
        self.header = Some(Header {
            start,
            len: header.len() as u32,
            next_header_at,
            protocol,
        });
        self.memory += cost;
        cost
    }

    /// The stored header, its next-header index and protocol.
    pub fn header(&self) -> Option<(&[u8], usize, u8)> {
        self.header.map(|h| {
            let start = h.start as usize;
            (
                &self.bytes[start..start + h.len as usize],
                h.next_header_at,
                h.protocol,
            )
        })
    }

    /// Stores a fragment (after analysis) and returns the memory it was charged.
    pub fn store(&mut self, offset: u32, data: &[u8]) -> usize {
        let end = offset + data.len() as u32;
        let (start, growth) = self.append(data);
        self.fragments.push(StoredFragment {
            offset,
            start,
            len: data.len() as u32,
        });
        self.max_end = self.max_end.max(end);
        if offset <= self.prefix_end && end > self.prefix_end {
            // The gap-free prefix grows: take in every stored fragment it now reaches.
            // Each fragment extends it at most once, so a datagram costs O(fragments²)
            // at worst, like the overlap analysis.
            self.prefix_end = end;
            let mut grown = true;
            while grown {
                grown = false;
                for f in &self.fragments {
                    if f.offset <= self.prefix_end && f.end() > self.prefix_end {
                        self.prefix_end = f.end();
                        grown = true;
                    }
                }
            }
        }
        let cost = growth + FRAGMENT_OVERHEAD;
        self.memory += cost;
        cost
    }

    /// True when the final fragment arrived and every byte before its end is covered.
    pub fn is_complete(&self) -> bool {
        match self.final_end {
            Some(f) => self.prefix_end >= f && self.header.is_some(),
            None => false,
        }
    }

    /// True when overlapping fragments differ on a byte before the end (the final end, or
    /// `max_end` while it is unknown): only then can policies disagree.
    pub fn differs_in_payload(&self) -> bool {
        let end = self.final_end.unwrap_or(self.max_end);
        self.differing.iter().any(|&(s, _)| s < end)
    }

    /// The payload under `policy` (up to the final end).
    pub fn payload(&self, policy: Policy) -> Vec<u8> {
        let len = self.final_end.unwrap_or(self.max_end) as usize;
        if self.differing.is_empty() {
            // Every overlap carried identical data, so every policy yields the bytes of
            // any covering fragment: copy each fragment in place (the same result as
            // painting, without tracking an owner per byte).
            let mut out = vec![0u8; len];
            for f in &self.fragments {
                let start = (f.offset as usize).min(len);
                let stop = (f.end() as usize).min(len);
                out[start..stop].copy_from_slice(&self.data_of(f)[..stop - start]);
            }
            return out;
        }
        paint(policy, &self.views(), len).0
    }

    /// The stored fragments as the policies see them, in arrival order.
    pub fn views(&self) -> Vec<FragmentView<'_>> {
        self.fragments
            .iter()
            .map(|f| FragmentView {
                offset: f.offset,
                data: self.data_of(f),
            })
            .collect()
    }
}

/// Sorts and merges touching or overlapping ranges.
pub fn merge(mut v: Vec<Range>) -> Vec<Range> {
    v.sort_unstable();
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_without_differing_overlaps_equals_painting() {
        let mut d = DatagramBuffer::new(0, 10, Policy::Bsd);
        d.store(8, b"BBBBBBBBCCCC");
        d.store(0, b"AAAAAAAABBBB");
        d.store(16, b"CCCCDDDD"); // overlaps [16, 20) with identical bytes
        d.store(40, b"past"); // beyond the final end: ignored
        d.final_end = Some(30);
        assert!(d.differing.is_empty());
        let views = d.views();
        for p in Policy::ALL {
            assert_eq!(d.payload(p), paint(p, &views, 30).0, "{p:?}");
        }
        assert_eq!(&d.payload(Policy::Bsd)[..24], b"AAAAAAAABBBBBBBBCCCCDDDD");
    }

    #[test]
    fn analysis_finds_differences_duplicates_and_shrinks() {
        let mut d = DatagramBuffer::new(0, 10, Policy::First);
        d.store(0, b"AAAAAAAABBBBBBBB");
        let r = d.analyse(0, b"AAAAAAAABBBBBBBB");
        assert!(r.duplicate && r.differing.is_empty());
        let r = d.analyse(8, b"BBBXBBBBCC");
        assert_eq!(r.extent, Some((8, 16)));
        assert_eq!(r.differing, vec![(11, 12)]);
        assert!(!r.duplicate);
        let r = d.analyse(4, b"AAAA");
        assert_eq!(r.shrinks, Some((0, 16)));
        assert_eq!(d.analyse(16, b"x").extent, None);
        assert_eq!(
            merge(vec![(5, 6), (0, 2), (2, 3), (6, 9)]),
            vec![(0, 3), (5, 9)]
        );
    }

    #[test]
    fn the_charge_is_the_buffer_capacity_as_predicted() {
        let mut d = DatagramBuffer::new(0, 10, Policy::Bsd);
        let mut charged = DATAGRAM_OVERHEAD;
        // A header and small fragments: the buffer holds exactly what was stored.
        let predicted = d.growth(20, 1480);
        assert_eq!(predicted, DatagramBuffer::initial_growth(20, 1480));
        charged += d.set_header(&[0x45; 20], 0, 17);
        charged += d.store(0, &[1; 1480]);
        assert_eq!(charged, DATAGRAM_OVERHEAD + predicted + FRAGMENT_OVERHEAD);
        assert_eq!(d.bytes.capacity(), 1500);
        charged += d.store(1480, &[2; 1480]);
        assert_eq!(d.bytes.capacity(), 2980);
        // Past EXACT_GROWTH it doubles, and the prediction says by how much.
        for i in 2..40u32 {
            let predicted = d.growth(0, 1480);
            let cost = d.store(i * 1480, &[i as u8; 1480]);
            assert_eq!(cost, predicted + FRAGMENT_OVERHEAD, "fragment {i}");
            charged += cost;
        }
        assert_eq!(d.memory, charged);
        assert_eq!(
            d.memory,
            DATAGRAM_OVERHEAD + d.bytes.capacity() + 40 * FRAGMENT_OVERHEAD
        );
        assert!(d.bytes.capacity() < 2 * d.bytes.len());
        // Every fragment reads back its own bytes.
        let (header, _, protocol) = d.header().expect("header");
        assert_eq!((header, protocol), (&[0x45u8; 20][..], 17));
        for (i, f) in d.fragments.iter().enumerate() {
            let fill = if i < 2 { i as u8 + 1 } else { i as u8 };
            assert_eq!(d.data_of(f), &[fill; 1480][..], "fragment {i}");
        }
    }

    #[test]
    fn gap_free_prefix_equals_merged_coverage() {
        // Random sequences of ranges over a small space, against merge().
        let ranges: Vec<Range> = (0..6u32)
            .flat_map(|s| (s + 1..7).map(move |e| (s * 2, e * 2)))
            .collect();
        let mut state = 7u64;
        for _ in 0..5000 {
            let mut d = DatagramBuffer::new(0, 10, Policy::First);
            let mut all = Vec::new();
            for _ in 0..5 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let r = ranges[(state >> 33) as usize % ranges.len()];
                d.store(r.0, &vec![0; (r.1 - r.0) as usize]);
                all.push(r);
                let merged = merge(all.clone());
                let want = match merged.first() {
                    Some(&(0, e)) => e,
                    _ => 0,
                };
                assert_eq!(d.prefix_end, want, "{all:?}");
            }
        }
    }
}
