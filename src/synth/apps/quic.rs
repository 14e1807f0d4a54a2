//! QUIC-like packets (RFC 9000 framing): long-header Initial/Handshake packets and
//! short-header 1-RTT packets whose protected bytes are random.

use crate::synth::rng::Rng;

/// QUIC version 1.
pub const VERSION_1: u32 = 1;

/// Appends a 2-byte variable-length integer (values below 16384).
fn varint2(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&(0x4000 | (v & 0x3fff)).to_be_bytes());
}

/// A long-header packet of `kind` (0 Initial, 2 Handshake) with `len` bytes of
/// protected packet number and payload.
pub fn long_packet(out: &mut Vec<u8>, rng: &mut Rng, kind: u8, dcid: &[u8], scid: &[u8], len: u16) {
    out.push(0xc0 | (kind & 3) << 4 | (rng.next_u32() as u8 & 0x0f));
    out.extend_from_slice(&VERSION_1.to_be_bytes());
    out.push(dcid.len() as u8);
    out.extend_from_slice(dcid);
    out.push(scid.len() as u8);
    out.extend_from_slice(scid);
    if kind == 0 {
        out.push(0); // token length
    }
    varint2(out, len);
    rng.extend(out, len as usize);
}

/// A short-header (1-RTT) packet to `dcid` with `len` protected bytes.
pub fn short_packet(out: &mut Vec<u8>, rng: &mut Rng, dcid: &[u8], len: usize) {
    out.push(0x40 | (rng.next_u32() as u8 & 0x3f));
    out.extend_from_slice(dcid);
    rng.extend(out, len);
}
