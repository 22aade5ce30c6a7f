//! Framing of netlink dump answers, shared by sock_diag and rtnetlink: each message's header,
//! the end of the dump, and the kernel's error message. The payloads are the callers'.

use std::io;

pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_HDRLEN: usize = 16;

/// Walk the netlink messages in `buf`, calling `each(type, payload)` for every message that is
/// neither the end nor an error. Returns true at NLMSG_DONE; an error message is its errno; a
/// message longer than the buffer is an error (the rest cannot be framed).
pub fn walk(buf: &[u8], mut each: impl FnMut(u16, &[u8])) -> io::Result<bool> {
    let word = |at: usize| -> Option<[u8; 4]> { buf.get(at..at + 4)?.try_into().ok() };
    let mut off = 0usize;
    while off + NLMSG_HDRLEN <= buf.len() {
        let len = word(off).map_or(0, u32::from_ne_bytes) as usize;
        let kind = word(off + 4).map_or(0, |w| u16::from_ne_bytes([w[0], w[1]]));
        let Some(msg) = buf
            .get(off..off.saturating_add(len))
            .filter(|_| len >= NLMSG_HDRLEN)
        else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        };
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let errno = word(off + NLMSG_HDRLEN)
                    .map(|w| i32::from_ne_bytes(w).saturating_neg())
                    .unwrap_or(0);
                return Err(if errno > 0 {
                    io::Error::from_raw_os_error(errno)
                } else {
                    io::Error::new(io::ErrorKind::InvalidData, "netlink error message")
                });
            }
            _ => each(kind, &msg[NLMSG_HDRLEN..]),
        }
        // Messages are 4-byte aligned.
        off = off.saturating_add((len + 3) & !3);
    }
    Ok(false)
}
