//! IPv4 and IPv6.

use flowtide_dataflows::packet::Packet;

use super::{Decoder, SkipReason};

/// Decodes an IP packet at tunnel depth `depth`.
pub(super) fn decode_ip(
    _d: &Decoder,
    _data: &[u8],
    _depth: usize,
    _out: &mut Packet,
) -> Result<(), SkipReason> {
    Err(SkipReason::BadIpVersion)
}
