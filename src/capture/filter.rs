//! BPF capture filters (compiled by libpcap) for capture files.
//!
//! A [`BpfFilter`] holds a tcpdump-style expression and compiles it lazily, once per link
//! type (a pcapng file may mix link types, and the same expression compiles to different
//! programs for Ethernet and raw IP). Frames are matched with libpcap's own interpreter
//! (`pcap_offline_filter`) given the frame's captured bytes *and* its original length, so
//! `greater`/`less`/`len` tests behave exactly as with `tcpdump -r`, even on frames cut
//! short by the snap length.

use std::os::raw::{c_int, c_uint};

use pcap::{BpfInstruction, BpfProgram, Capture, Linktype, PacketHeader};

use super::{linktype, CaptureError, Frame};

/// A BPF filter expression, compiled on demand for each link type it meets.
pub struct BpfFilter {
    expression: String,
    /// Compiled programs by link type (usually exactly one entry).
    programs: Vec<(u32, BpfProgram)>,
    /// Index in `programs` of the last link type used (fast path).
    last: usize,
}

impl std::fmt::Debug for BpfFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpfFilter")
            .field("expression", &self.expression)
            .field(
                "compiled_for",
                &self.programs.iter().map(|(lt, _)| *lt).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl BpfFilter {
    /// A filter for `expression`; nothing is compiled until the first frame.
    pub fn new(expression: &str) -> BpfFilter {
        BpfFilter {
            expression: expression.to_owned(),
            programs: Vec::new(),
            last: 0,
        }
    }

    /// The filter expression.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// True when `frame` passes the filter. Compiles the expression for the frame's link
    /// type on first use; fails with [`CaptureError::Filter`] if it does not compile.
    #[inline]
    pub fn matches(&mut self, frame: &Frame<'_>) -> Result<bool, CaptureError> {
        let program = self.program(frame.linktype)?;
        Ok(run(program, frame.data, frame.orig_len))
    }

    /// The program for `linktype`, compiling it if needed.
    #[inline]
    fn program(&mut self, linktype: u32) -> Result<&BpfProgram, CaptureError> {
        let index = match self.programs.get(self.last) {
            Some((lt, _)) if *lt == linktype => self.last,
            _ => match self.programs.iter().position(|(lt, _)| *lt == linktype) {
                Some(i) => i,
                None => {
                    let program = compile(&self.expression, linktype)?;
                    self.programs.push((linktype, program));
                    self.programs.len() - 1
                }
            },
        };
        self.last = index;
        match self.programs.get(index) {
            Some((_, program)) => Ok(program),
            None => Err(filter_error(
                &self.expression,
                "internal filter cache error",
            )),
        }
    }
}

/// Checks up front that `expression` compiles for `linktype`.
pub fn validate(expression: &str, linktype: u32) -> Result<(), CaptureError> {
    compile(expression, linktype).map(drop)
}

/// Compiles `expression` (optimized) for `linktype` with libpcap.
fn compile(expression: &str, linktype: u32) -> Result<BpfProgram, CaptureError> {
    let Some(dlt) = linktype_to_dlt(linktype) else {
        return Err(filter_error(
            expression,
            &format!("link type {linktype} is out of range for libpcap"),
        ));
    };
    let dead = Capture::dead(dlt).map_err(|e| filter_error(expression, &pcap_message(&e)))?;
    dead.compile(expression, true)
        .map_err(|e| filter_error(expression, &pcap_message(&e)))
}

/// The platform's DLT_* value for a LINKTYPE_* value (they differ for a few link types,
/// e.g. raw IP is LINKTYPE 101 in files but DLT 12 on Linux and 14 on OpenBSD), as
/// libpcap's own `linktype_to_dlt` does when it opens a file.
fn linktype_to_dlt(linktype: u32) -> Option<Linktype> {
    let name = match linktype {
        linktype::RAW | linktype::RAW_12 | linktype::RAW_OPENBSD => "RAW",
        linktype::LOOP => "LOOP",
        100 => "ATM_RFC1483",
        102 => "SLIP_BSDOS",
        103 => "PPP_BSDOS",
        106 => "ATM_CLIP",
        117 => "PFLOG",
        246 => "PFSYNC",
        258 => "PKTAP",
        _ => return i32::try_from(linktype).ok().map(Linktype),
    };
    let fallback = i32::try_from(linktype).ok().map(Linktype);
    Linktype::from_name(name).ok().or(fallback)
}

fn filter_error(expression: &str, message: &str) -> CaptureError {
    CaptureError::Filter {
        expression: expression.to_owned(),
        message: message.to_owned(),
    }
}

/// libpcap's own message, without the crate's "libpcap error: " prefix.
pub(crate) fn pcap_message(e: &pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(msg) if !msg.is_empty() => msg.clone(),
        pcap::Error::InvalidInputString => "the expression contains a NUL byte".to_owned(),
        other => other.to_string(),
    }
}

/// `struct bpf_program` as libpcap declares it.
#[repr(C)]
struct RawProgram {
    bf_len: c_uint,
    bf_insns: *const BpfInstruction,
}

extern "C" {
    /// `int pcap_offline_filter(const struct bpf_program *, const struct pcap_pkthdr *,
    /// const u_char *)` from libpcap (linked by the `pcap` crate).
    fn pcap_offline_filter(
        program: *const RawProgram,
        header: *const PacketHeader,
        data: *const u8,
    ) -> c_int;
}

/// Runs `program` on a frame of `data.len()` captured bytes and `orig_len` bytes on the
/// wire.
#[inline]
fn run(program: &BpfProgram, data: &[u8], orig_len: u32) -> bool {
    let instructions = program.get_instructions();
    let Ok(bf_len) = c_uint::try_from(instructions.len()) else {
        return false;
    };
    let Ok(caplen) = u32::try_from(data.len()) else {
        return false;
    };
    let raw = RawProgram {
        bf_len,
        bf_insns: instructions.as_ptr(),
    };
    // SAFETY: `PacketHeader` is the crate's `#[repr(C)]` mirror of `struct pcap_pkthdr`,
    // made of integers only, so all-zero bytes are a valid value.
    let mut header: PacketHeader = unsafe { std::mem::zeroed() };
    header.caplen = caplen;
    // As recorded, like libpcap filtering a file itself (even when a damaged record says
    // fewer bytes were on the wire than captured).
    header.len = orig_len;
    // SAFETY: `raw` points at the instructions owned by `program` (`BpfInstruction` is a
    // transparent wrapper of `struct bpf_insn`), which outlives the call; libpcap's
    // interpreter reads at most `header.caplen == data.len()` bytes of `data`.
    unsafe { pcap_offline_filter(&raw, &header, data.as_ptr()) != 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame (60 bytes captured).
    fn tcp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[12] = 0x08; // ethertype IPv4
        f[14] = 0x45; // version 4, IHL 5
        f[16] = 0; // total length 46
        f[17] = 46;
        f[23] = 6; // TCP
        f[34] = 0x04; // source port 1234
        f[35] = 0xd2;
        f[36] = 0; // destination port 80
        f[37] = 80;
        f
    }

    fn frame(data: &[u8], orig_len: u32, linktype: u32) -> Frame<'_> {
        Frame {
            ts_ns: 0,
            linktype,
            orig_len,
            data,
        }
    }

    #[test]
    fn matches_and_caches_per_linktype() {
        let data = tcp_frame();
        let mut f = BpfFilter::new("tcp port 80");
        assert!(f
            .matches(&frame(&data, 60, linktype::ETHERNET))
            .expect("compiles"));
        let mut udp = data.clone();
        udp[23] = 17;
        assert!(!f
            .matches(&frame(&udp, 60, linktype::ETHERNET))
            .expect("compiles"));
        // The same IP packet without the Ethernet header, as raw IP.
        let raw = &data[14..];
        assert!(f.matches(&frame(raw, 46, linktype::RAW)).expect("compiles"));
        assert_eq!(f.programs.len(), 2);
    }

    #[test]
    fn length_tests_use_the_wire_length() {
        let data = tcp_frame();
        let mut f = BpfFilter::new("greater 1000");
        assert!(f
            .matches(&frame(&data, 1500, linktype::ETHERNET))
            .expect("compiles"));
        assert!(!f
            .matches(&frame(&data, 60, linktype::ETHERNET))
            .expect("compiles"));
    }

    #[test]
    fn invalid_expression_is_a_filter_error() {
        let data = tcp_frame();
        let mut f = BpfFilter::new("tcp and and");
        let err = f
            .matches(&frame(&data, 60, linktype::ETHERNET))
            .expect_err("the expression does not compile");
        match err {
            CaptureError::Filter {
                expression,
                message,
            } => {
                assert_eq!(expression, "tcp and and");
                assert!(!message.is_empty());
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(validate("port 99999999", linktype::ETHERNET).is_err());
        assert!(validate("tcp\0", linktype::ETHERNET).is_err());
        assert!(validate("udp or icmp", linktype::LINUX_SLL).is_ok());
        assert!(validate("", linktype::ETHERNET).is_ok());
    }

    #[test]
    fn raw_ip_linktypes_map_to_the_platform_dlt() {
        let dlt_raw = Linktype::from_name("RAW").expect("libpcap knows DLT_RAW");
        for lt in [linktype::RAW, linktype::RAW_12, linktype::RAW_OPENBSD] {
            assert_eq!(linktype_to_dlt(lt), Some(dlt_raw), "linktype {lt}");
        }
        assert_eq!(
            linktype_to_dlt(linktype::ETHERNET),
            Some(Linktype::ETHERNET)
        );
        assert_eq!(linktype_to_dlt(linktype::LINUX_SLL2), Some(Linktype(276)));
        assert_eq!(linktype_to_dlt(u32::MAX), None);
    }

    #[test]
    fn empty_frame_does_not_crash() {
        let mut f = BpfFilter::new("tcp");
        assert!(!f
            .matches(&frame(&[], 0, linktype::ETHERNET))
            .expect("compiles"));
    }
}
