//! NTPv4 client and server packets (RFC 5905).

/// Seconds between the NTP era 0 epoch (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// A 64-bit NTP timestamp for Unix time `ns`.
pub fn timestamp(ns: u64) -> [u8; 8] {
    let secs = (ns / 1_000_000_000 + NTP_UNIX_OFFSET) as u32;
    let frac = (((ns % 1_000_000_000) << 32) / 1_000_000_000) as u32;
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&secs.to_be_bytes());
    t[4..].copy_from_slice(&frac.to_be_bytes());
    t
}

/// A client-mode request sent at `ns`.
pub fn request(out: &mut Vec<u8>, ns: u64) {
    out.extend_from_slice(&[0x23, 0, 6, 0xec]); // LI 0, VN 4, mode 3; poll 6; precision -20
    out.extend_from_slice(&[0; 36]);
    out.extend_from_slice(&timestamp(ns));
}

/// A server-mode reply to a request transmitted at `client_tx_ns`, received at
/// `rx_ns` and answered at `tx_ns`, from a stratum-2 server synchronised to `refid`.
pub fn reply(out: &mut Vec<u8>, client_tx_ns: u64, rx_ns: u64, tx_ns: u64, refid: [u8; 4]) {
    out.extend_from_slice(&[0x24, 2, 6, 0xe9]); // LI 0, VN 4, mode 4; stratum 2; precision -23
    out.extend_from_slice(&0x0000_0a3du32.to_be_bytes()); // root delay ≈ 40 ms
    out.extend_from_slice(&0x0000_0021u32.to_be_bytes()); // root dispersion ≈ 0.5 ms
    out.extend_from_slice(&refid);
    out.extend_from_slice(&timestamp(rx_ns.saturating_sub(37_000_000_000)));
    out.extend_from_slice(&timestamp(client_tx_ns));
    out.extend_from_slice(&timestamp(rx_ns));
    out.extend_from_slice(&timestamp(tx_ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_epoch() {
        let mut q = Vec::new();
        request(&mut q, 1_700_000_000_500_000_000);
        assert_eq!(q.len(), 48);
        assert_eq!(
            &q[40..44],
            &(1_700_000_000u32.wrapping_add(2_208_988_800)).to_be_bytes()
        );
        assert_eq!(&q[44..48], &0x8000_0000u32.to_be_bytes());
        let mut r = Vec::new();
        reply(&mut r, 1, 2, 3, [1, 2, 3, 4]);
        assert_eq!(r.len(), 48);
    }
}
