//! ONC RPC (RFC 5531) calls and replies of NFSv3 READ (RFC 1813) over UDP: the classic
//! source of large, fragmented UDP datagrams.

/// NFS program number.
const NFS_PROGRAM: u32 = 100_003;
/// NFSPROC3_READ.
const PROC_READ: u32 = 6;

fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends XDR variable-length opaque data (length, bytes, zero padding to 4).
fn opaque(out: &mut Vec<u8>, data: &[u8]) {
    u32be(out, data.len() as u32);
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(0, (4 - data.len() % 4) % 4));
}

/// A READ call with AUTH_UNIX credentials for `count` bytes at `offset` of file `fh`.
pub fn read_call(
    out: &mut Vec<u8>,
    xid: u32,
    machine: &str,
    uid: u32,
    fh: &[u8; 32],
    offset: u64,
    count: u32,
) {
    u32be(out, xid);
    u32be(out, 0); // CALL
    u32be(out, 2); // RPC version
    u32be(out, NFS_PROGRAM);
    u32be(out, 3);
    u32be(out, PROC_READ);
    // AUTH_UNIX credentials.
    u32be(out, 1);
    let mut cred = Vec::with_capacity(64);
    u32be(&mut cred, xid ^ 0x5a5a_0000); // stamp
    opaque(&mut cred, machine.as_bytes());
    u32be(&mut cred, uid);
    u32be(&mut cred, uid);
    u32be(&mut cred, 1);
    u32be(&mut cred, uid);
    opaque(out, &cred);
    // AUTH_NONE verifier.
    u32be(out, 0);
    u32be(out, 0);
    // READ3args.
    opaque(out, fh);
    out.extend_from_slice(&offset.to_be_bytes());
    u32be(out, count);
}

/// The reply header of a successful READ of `count` bytes (`eof` at end of file); the
/// caller appends the data length, `count` data bytes and XDR padding (see
/// [`read_reply_data_len`]).
pub fn read_reply_head(out: &mut Vec<u8>, xid: u32, count: u32, eof: bool) {
    u32be(out, xid);
    u32be(out, 1); // REPLY
    u32be(out, 0); // MSG_ACCEPTED
    u32be(out, 0); // AUTH_NONE verifier
    u32be(out, 0);
    u32be(out, 0); // SUCCESS
    u32be(out, 0); // NFS3_OK
    u32be(out, 0); // post_op_attr: no attributes
    u32be(out, count);
    u32be(out, u32::from(eof));
    u32be(out, count); // opaque data length
}

/// Data bytes (with XDR padding) that follow [`read_reply_head`].
pub fn read_reply_data_len(count: u32) -> usize {
    (count as usize).div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_is_word_aligned() {
        let mut c = Vec::new();
        read_call(&mut c, 1, "client7", 1000, &[9; 32], 8192, 8192);
        assert_eq!(c.len() % 4, 0);
        let mut r = Vec::new();
        read_reply_head(&mut r, 1, 8192, false);
        assert_eq!(r.len(), 44);
        assert_eq!(read_reply_data_len(5), 8);
    }
}
