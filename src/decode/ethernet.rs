//! Link layers: Ethernet (VLAN, MPLS, PPPoE), Linux SLL/SLL2, NULL/LOOP, PPP, raw IP.

use flowtide_dataflows::packet::Packet;

use super::{Decoder, SkipReason};

/// Decodes a frame of link type `linktype`.
pub(super) fn decode_link(
    _d: &Decoder,
    _linktype: u32,
    _data: &[u8],
    _out: &mut Packet,
) -> Result<(), SkipReason> {
    Err(SkipReason::UnsupportedLinkType)
}
