//! Live capture from network interfaces (libpcap).
//!
//! [`LiveCapture`] opens an interface in immediate, non-blocking mode. When no packet
//! is waiting, [`FrameSource::next_frame`] waits on the capture's selectable file
//! descriptor for at most 50 ms and then returns [`Poll::Idle`], so the caller can stop
//! polling at any time (or use [`LiveCapture::stop`] / a [`StopHandle`] from another
//! thread). libpcap's own read timeout is not enough: on Linux `pcap_next_ex` does not
//! return while no packet arrives. Timestamps are requested with nanosecond precision from the kernel and
//! converted from microseconds when the platform only offers those.

use std::os::fd::{AsRawFd, RawFd};
use std::os::raw::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pcap::{Active, Capture, Device, Precision};

use super::filter::pcap_message;
use super::{linktype, CaptureError, Frame, FrameSource, Poll};

/// Read timeout: how long [`FrameSource::next_frame`] waits before [`Poll::Idle`].
pub const READ_TIMEOUT_MS: i32 = 50;

/// Kernel buffer size requested for the capture.
pub const BUFFER_SIZE: i32 = 64 * 1024 * 1024;

/// The message for capture permission errors.
pub const PERMISSION_HINT: &str = "permission denied: capturing needs the CAP_NET_RAW \
    capability (and CAP_NET_ADMIN for promiscuous mode); run as root or grant them with \
    `sudo setcap cap_net_raw,cap_net_admin=eip $(which flowtide)`";

/// A capture on a network interface.
pub struct LiveCapture {
    interface: String,
    /// The libpcap handle; `None` once stopped or failed.
    capture: Option<Capture<Active>>,
    linktype: u32,
    /// True when libpcap delivers nanosecond timestamps.
    nanos: bool,
    /// Set by [`LiveCapture::stop`], a [`StopHandle`], or a fatal read error.
    stopped: Arc<AtomicBool>,
    /// The last read returned a packet, so more may be waiting: read before waiting.
    ready: bool,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.interface)
            .field("linktype", &self.linktype)
            .field("nanos", &self.nanos)
            .field("stopped", &self.stopped.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Stops a [`LiveCapture`] from another thread (e.g. a Ctrl-C handler): the capture
/// returns [`Poll::End`] at its next poll, within one read timeout.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// Asks the capture to stop.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl LiveCapture {
    /// Opens `interface` for capture with the given snap length and promiscuous mode,
    /// applying the BPF `filter` in the kernel when given.
    ///
    /// Errors are one sentence in [`CaptureError::Live`] (a permission problem says which
    /// capabilities are needed; an unknown interface lists the available ones),
    /// [`CaptureError::Filter`] for an invalid filter, and
    /// [`CaptureError::UnsupportedLinkType`] when the interface's link type cannot be
    /// decoded.
    pub fn open(
        interface: &str,
        filter: Option<&str>,
        snaplen: i32,
        promisc: bool,
    ) -> Result<LiveCapture, CaptureError> {
        let live_error = |e: pcap::Error| open_error(interface, &e);
        let mut capture = Capture::from_device(interface)
            .map_err(live_error)?
            .promisc(promisc)
            .snaplen(snaplen)
            .timeout(READ_TIMEOUT_MS)
            .immediate_mode(true)
            .buffer_size(BUFFER_SIZE)
            .precision(Precision::Nano)
            .open()
            .map_err(live_error)?
            .setnonblock()
            .map_err(live_error)?;
        let linktype = u32::try_from(capture.get_datalink().0).unwrap_or(u32::MAX);
        if !linktype::is_supported(linktype) {
            return Err(CaptureError::UnsupportedLinkType {
                source: interface.to_owned(),
                linktype,
            });
        }
        if let Some(expression) = filter {
            capture
                .filter(expression, true)
                .map_err(|e| CaptureError::Filter {
                    expression: expression.to_owned(),
                    message: pcap_message(&e),
                })?;
        }
        let nanos = delivers_nanos(&capture);
        Ok(LiveCapture {
            interface: interface.to_owned(),
            capture: Some(capture),
            linktype,
            nanos,
            stopped: Arc::new(AtomicBool::new(false)),
            ready: false,
        })
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface's link type (LINKTYPE_* value).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Stops the capture and releases the interface; further polls return [`Poll::End`].
    pub fn stop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.capture = None;
    }

    /// A handle that stops this capture from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.stopped))
    }

    /// Packets `(received, dropped by the kernel buffer, dropped by the interface)` so
    /// far, as libpcap reports them; `None` once stopped or if the platform cannot tell.
    pub fn stats(&self) -> Option<(u32, u32, u32)> {
        let capture = self.capture.as_ref()?;
        // `struct pcap_stat` is three `u_int`s (four on Windows); keep room for four.
        let mut stat: [c_uint; 4] = [0; 4];
        // SAFETY: the handle is alive (owned by `capture`), `LiveCapture` is not `Sync` so
        // no other thread uses it concurrently, and `stat` is large enough for libpcap's
        // `struct pcap_stat`.
        let rc = unsafe { pcap_stats(capture.as_ptr().cast(), stat.as_mut_ptr().cast()) };
        (rc == 0).then_some((stat[0], stat[1], stat[2]))
    }
}

extern "C" {
    /// `int pcap_stats(pcap_t *, struct pcap_stat *)`.
    fn pcap_stats(p: *mut c_void, stats: *mut c_void) -> c_int;
    /// `int pcap_get_tstamp_precision(pcap_t *)`: 0 microseconds, 1 nanoseconds.
    fn pcap_get_tstamp_precision(p: *mut c_void) -> c_int;
}

/// True when an activated capture delivers nanosecond timestamps.
fn delivers_nanos(capture: &Capture<Active>) -> bool {
    // SAFETY: the handle is alive and activated; the call only reads a field of it.
    unsafe { pcap_get_tstamp_precision(capture.as_ptr().cast()) == 1 }
}

impl FrameSource for LiveCapture {
    fn next_frame(&mut self) -> Result<Poll<'_>, CaptureError> {
        if self.stopped.load(Ordering::Relaxed) {
            self.capture = None;
            return Ok(Poll::End);
        }
        let Some(capture) = self.capture.as_mut() else {
            return Ok(Poll::End);
        };
        if !self.ready {
            wait_readable(capture.as_raw_fd(), READ_TIMEOUT_MS);
        }
        match capture.next_packet() {
            Ok(packet) => {
                self.ready = true;
                let header = packet.header;
                // `time_t` and `suseconds_t` are narrower than i64 on some platforms.
                #[allow(clippy::unnecessary_cast)]
                let (secs, frac) = (header.ts.tv_sec as i64, header.ts.tv_usec as i64);
                let ts_ns = timestamp_ns(secs, frac, self.nanos);
                Ok(Poll::Frame(Frame {
                    ts_ns,
                    linktype: self.linktype,
                    orig_len: header.len,
                    data: packet.data,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.ready = false;
                Ok(Poll::Idle)
            }
            Err(pcap::Error::NoMorePackets) => {
                self.stopped.store(true, Ordering::Relaxed);
                Ok(Poll::End)
            }
            Err(e) => {
                self.stopped.store(true, Ordering::Relaxed);
                Err(CaptureError::Live {
                    interface: self.interface.clone(),
                    message: format!("reading packets failed: {}", pcap_message(&e)),
                })
            }
        }
    }

    fn is_live(&self) -> bool {
        true
    }

    fn dropped(&self) -> Option<u64> {
        self.stats()
            .map(|(_, dropped, if_dropped)| u64::from(dropped) + u64::from(if_dropped))
    }
}

/// A libpcap timestamp (seconds and micro- or nanoseconds) in nanoseconds since the epoch;
/// times before 1970 become 0.
fn timestamp_ns(secs: i64, frac: i64, nanos: bool) -> u64 {
    let frac_ns = if nanos {
        frac
    } else {
        frac.saturating_mul(1000)
    };
    let ns = i128::from(secs) * 1_000_000_000 + i128::from(frac_ns);
    u64::try_from(ns.max(0)).unwrap_or(u64::MAX)
}

/// One clear sentence for a failure to open `interface`.
fn open_error(interface: &str, e: &pcap::Error) -> CaptureError {
    let detail = pcap_message(e);
    let message = match Device::list() {
        Ok(devices) if !devices.iter().any(|d| d.name == interface) => {
            let names: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
            if names.is_empty() {
                "the interface does not exist, and libpcap sees no interfaces at all".to_owned()
            } else {
                format!(
                    "the interface does not exist; available interfaces: {}",
                    names.join(", ")
                )
            }
        }
        _ if is_permission_error(&detail) => PERMISSION_HINT.to_owned(),
        _ => format!("libpcap could not open it: {detail}"),
    };
    CaptureError::Live {
        interface: interface.to_owned(),
        message,
    }
}

/// True for libpcap's various ways of saying "not allowed".
fn is_permission_error(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "operation not permitted",
        "permission denied",
        "don't have permission",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}

/// Waits until `fd` is readable or `timeout_ms` passes (or a signal interrupts).
fn wait_readable(fd: RawFd, timeout_ms: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is a valid, exclusively borrowed pollfd array of length 1 for the
    // duration of the call; poll(2) does not retain the pointer.
    unsafe {
        libc::poll(&mut pfd, 1, timeout_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert() {
        assert_eq!(timestamp_ns(1, 500_000, false), 1_500_000_000);
        assert_eq!(timestamp_ns(1, 500_000, true), 1_000_500_000);
        assert_eq!(timestamp_ns(-5, 0, true), 0);
        assert_eq!(timestamp_ns(i64::MAX, i64::MAX, false), u64::MAX);
    }

    #[test]
    fn permission_messages_are_recognised() {
        assert!(is_permission_error(
            "You don't have permission to capture on that device (socket: Operation not permitted)"
        ));
        assert!(is_permission_error("eth0: Permission denied"));
        assert!(!is_permission_error("No such device exists"));
    }

    #[test]
    fn nonexistent_interface_is_a_clear_error() {
        let err = LiveCapture::open("ftnoexist0", None, 65535, false)
            .expect_err("a nonexistent interface cannot be opened");
        let CaptureError::Live { interface, message } = &err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(interface, "ftnoexist0");
        assert!(message.contains("does not exist"), "{message}");
        assert!(!err.to_string().contains('\n'));
    }
}
