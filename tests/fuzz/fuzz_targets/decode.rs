//! The decoder must never panic, whatever the bytes and link type. Input: two bytes
//! selecting the link type, then the frame. Every decoded fragment is also re-decoded
//! as a reassembled datagram would be (`decode_ip`).
#![no_main]

use flowtide::capture::{linktype, Frame};
use flowtide::decode::Decoder;
use flowtide_dataflows::packet::Packet;
use libfuzzer_sys::fuzz_target;

const LINKTYPES: [u32; 13] = [
    linktype::ETHERNET,
    linktype::NULL,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::RAW,
    linktype::RAW_OPENBSD,
    linktype::RAW_12,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    105, // unsupported
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let linktype = LINKTYPES[sel as usize % LINKTYPES.len()];
    // Bit 7 of the selector: claim the frame was cut by the snap length.
    let orig_len = frame.len() as u32 + u32::from(sel >> 7) * 100;
    let decoder = Decoder::default();
    let mut p = Packet::default();
    let f = Frame {
        ts_ns: 1,
        linktype,
        orig_len,
        data: frame,
    };
    if decoder.decode(&f, 7, 0, &mut p).is_ok() {
        if let Some(bytes) = p.bytes.take() {
            let ctx = p.ctx;
            let _ = decoder.decode_ip(&bytes, ctx, &mut p);
        }
    }
    // Raw IP packets, as the reassembler hands them back.
    let _ = decoder.decode_ip(frame, Default::default(), &mut p);
});
