//! Application-layer message builders: well-formed TLS, HTTP, DNS, NTP, ONC RPC/NFS
//! and QUIC-like payloads, so that dissectors see valid protocol data.

pub mod dns;
pub mod http;
pub mod ntp;
pub mod quic;
pub mod rpc;
pub mod tls;

/// Appends a block whose big-endian length prefix of `width` bytes (1, 2 or 3) is filled
/// in after `f` has written the block.
pub fn with_len(buf: &mut Vec<u8>, width: usize, f: impl FnOnce(&mut Vec<u8>)) {
    let at = buf.len();
    buf.extend(std::iter::repeat_n(0, width));
    f(buf);
    let len = (buf.len() - at - width) as u32;
    let be = len.to_be_bytes();
    buf[at..at + width].copy_from_slice(&be[4 - width..]);
}
