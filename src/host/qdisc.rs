//! Queueing disciplines of our own network namespace and their counters, through an rtnetlink
//! `RTM_GETQDISC` dump (what `tc -s qdisc show` asks). A qdisc that drops (tbf/htb over their
//! rate, a full fq/pfifo) loses packets on this host before they reach the wire: TCP then
//! retransmits them, and the network is innocent.
//!
//! Parsed by hand with bounds checks: a reply is a `tcmsg` (20 bytes) and a handful of route
//! attributes (`TCA_KIND`, `TCA_STATS2` with `TCA_STATS_BASIC`/`TCA_STATS_QUEUE`, the legacy
//! `TCA_STATS`). Every length in a reply is checked before it is used; a malformed message is
//! skipped, never a panic.

use serde::{Deserialize, Serialize};
use std::io;

const RTM_NEWQDISC: u16 = 36;
const RTM_GETQDISC: u16 = 38;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
use super::netlink::NLMSG_HDRLEN;
#[cfg(test)]
use super::netlink::{NLMSG_DONE, NLMSG_ERROR};
/// `struct tcmsg`: family, pad, pad (u16), ifindex (i32), handle, parent, info (u32).
const TCMSG_LEN: usize = 20;

const TCA_KIND: u16 = 1;
const TCA_STATS: u16 = 3;
const TCA_STATS2: u16 = 7;
const TCA_STATS_BASIC: u16 = 1;
const TCA_STATS_QUEUE: u16 = 3;
const TCA_STATS_PKT64: u16 = 8;
/// The kernel sets it on nested attributes; the type is the low bits.
const NLA_TYPE_MASK: u16 = 0x3fff;

/// At most this many qdiscs are kept from one dump (a box with thousands of interfaces keeps
/// the first ones the kernel sends).
pub const MAX_QDISCS: usize = 4096;
/// A dump that has not ended after this many reads is cut short (a hostile or broken peer).
const MAX_READS: usize = 10_000;

/// One queueing discipline and its counters since it was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qdisc {
    /// Interface name (`eth0`); `ifN` when the index has no name any more.
    pub interface: String,
    pub ifindex: u32,
    /// `tbf`, `htb`, `fq_codel`, `pfifo_fast`, `noqueue`, `mq`...
    pub kind: String,
    /// `major:minor` handle as a number (`0x80010000` is `8001:`).
    pub handle: u32,
    /// Parent handle; `0xffffffff` is the root.
    pub parent: u32,
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    /// Not in the legacy `TCA_STATS`.
    pub requeues: Option<u64>,
    /// Bytes and packets queued now.
    pub backlog_bytes: u64,
    pub qlen: u64,
}

/// `tc`'s spelling of a handle: `root`, `ingress` (`ffff:fff1`), `8001:`, `1:10`.
pub fn handle_name(h: u32) -> String {
    match h {
        0xffff_ffff => "root".into(),
        0xffff_fff1 => "ingress".into(),
        _ if h & 0xffff == 0 => format!("{:x}:", h >> 16),
        _ => format!("{:x}:{:x}", h >> 16, h & 0xffff),
    }
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The route attributes in `b`: (type, payload). Stops at the first malformed one.
fn attrs(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut off = 0usize;
    std::iter::from_fn(move || {
        let len = u16_at(b, off)? as usize;
        let kind = u16_at(b, off + 2)? & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        let payload = b.get(off + 4..off.checked_add(len)?)?;
        off = off.checked_add((len + 3) & !3)?;
        Some((kind, payload))
    })
}

/// One `RTM_NEWQDISC` payload (tcmsg + attributes) -> a qdisc, its interface not yet named.
pub fn parse_qdisc(m: &[u8]) -> Option<Qdisc> {
    let ifindex = u32_at(m, 4)?;
    let handle = u32_at(m, 8)?;
    let parent = u32_at(m, 12)?;
    let mut q = Qdisc {
        ifindex,
        handle,
        parent,
        ..Default::default()
    };
    let mut kind = None;
    let mut stats2 = false;
    let mut legacy = None;
    for (t, p) in attrs(m.get(TCMSG_LEN..)?) {
        match t {
            TCA_KIND => {
                let s = p.split(|&c| c == 0).next().unwrap_or_default();
                kind = Some(String::from_utf8_lossy(s).into_owned());
            }
            TCA_STATS2 => {
                for (st, sp) in attrs(p) {
                    match st {
                        TCA_STATS_BASIC => {
                            // gnet_stats_basic: u64 bytes, u32 packets.
                            if let (Some(b), Some(n)) = (u64_at(sp, 0), u32_at(sp, 8)) {
                                q.bytes = b;
                                q.packets = q.packets.max(u64::from(n));
                                stats2 = true;
                            }
                        }
                        TCA_STATS_PKT64 => {
                            if let Some(n) = u64_at(sp, 0) {
                                q.packets = n;
                            }
                        }
                        TCA_STATS_QUEUE => {
                            // gnet_stats_queue: qlen, backlog, drops, requeues, overlimits.
                            if let (Some(ql), Some(bl), Some(d), Some(rq), Some(ov)) = (
                                u32_at(sp, 0),
                                u32_at(sp, 4),
                                u32_at(sp, 8),
                                u32_at(sp, 12),
                                u32_at(sp, 16),
                            ) {
                                q.qlen = ql.into();
                                q.backlog_bytes = bl.into();
                                q.drops = d.into();
                                q.requeues = Some(rq.into());
                                q.overlimits = ov.into();
                                stats2 = true;
                            }
                        }
                        _ => {}
                    }
                }
            }
            // tc_stats: u64 bytes; u32 packets, drops, overlimits, bps, pps, qlen, backlog.
            TCA_STATS => legacy = Some(p),
            _ => {}
        }
    }
    q.kind = kind?;
    if !stats2 {
        let p = legacy?;
        q.bytes = u64_at(p, 0)?;
        q.packets = u32_at(p, 8)?.into();
        q.drops = u32_at(p, 12)?.into();
        q.overlimits = u32_at(p, 16)?.into();
        q.qlen = u32_at(p, 28)?.into();
        q.backlog_bytes = u32_at(p, 32)?.into();
    }
    Some(q)
}

/// Walk the netlink messages of one received buffer, keeping up to [`MAX_QDISCS`] qdiscs.
/// Returns true at `NLMSG_DONE`; a kernel error is an error; a message whose length does not
/// fit the buffer is an error (the rest of the buffer cannot be framed).
pub fn parse_messages(buf: &[u8], out: &mut Vec<Qdisc>) -> io::Result<bool> {
    super::netlink::walk(buf, |kind, payload| {
        if kind == RTM_NEWQDISC && out.len() < MAX_QDISCS {
            out.extend(parse_qdisc(payload));
        }
    })
}

fn request(seq: u32) -> Vec<u8> {
    let len = (NLMSG_HDRLEN + TCMSG_LEN) as u32;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&RTM_GETQDISC.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // tcmsg: AF_UNSPEC, every interface, any handle/parent.
    m.resize(len as usize, 0);
    m
}

/// The raw replies of one dump, as received (for tests and for recording the parser's input).
pub fn dump_raw() -> io::Result<Vec<Vec<u8>>> {
    use rustix::net::{recv, send, socket_with, AddressFamily, RecvFlags, SendFlags};
    use rustix::net::{SocketFlags, SocketType};
    let sock = socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        // NETLINK_ROUTE is protocol 0.
        None,
    )?;
    send(&sock, &request(1), SendFlags::empty())?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut sink = Vec::new();
    for _ in 0..MAX_READS {
        let n = match recv(&sock, &mut buf[..], RecvFlags::empty()) {
            Ok((n, _)) => n.min(buf.len()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let chunk = buf[..n].to_vec();
        sink.clear();
        let done = n == 0 || parse_messages(&chunk, &mut sink)?;
        out.push(chunk);
        if done {
            return Ok(out);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "qdisc dump did not end",
    ))
}

/// Every qdisc of our network namespace, interfaces named, sorted by (interface, handle).
pub fn qdiscs() -> io::Result<Vec<Qdisc>> {
    let mut out = Vec::new();
    for chunk in dump_raw()? {
        parse_messages(&chunk, &mut out)?;
    }
    name_interfaces(&mut out);
    out.sort_by(|a, b| (&a.interface, a.handle).cmp(&(&b.interface, b.handle)));
    Ok(out)
}

fn name_interfaces(qs: &mut [Qdisc]) {
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .ok();
    let mut names = std::collections::BTreeMap::new();
    for q in qs {
        let name = names.entry(q.ifindex).or_insert_with(|| {
            sock.as_ref()
                .and_then(|s| rustix::net::netdevice::index_to_name(s, q.ifindex).ok())
                .unwrap_or_else(|| format!("if{}", q.ifindex))
        });
        q.interface = name.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn msg(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn tcmsg(ifindex: u32, handle: u32, parent: u32) -> Vec<u8> {
        let mut t = vec![0u8; 4];
        t.extend_from_slice(&ifindex.to_ne_bytes());
        t.extend_from_slice(&handle.to_ne_bytes());
        t.extend_from_slice(&parent.to_ne_bytes());
        t.extend_from_slice(&0u32.to_ne_bytes());
        t
    }

    fn queue(qlen: u32, backlog: u32, drops: u32, requeues: u32, over: u32) -> Vec<u8> {
        [qlen, backlog, drops, requeues, over]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect()
    }

    #[test]
    fn stats2_basic_and_queue() {
        let mut p = tcmsg(3, 0x8001_0000, 0xffff_ffff);
        p.extend(attr(TCA_KIND, b"tbf\0"));
        let mut basic = 123_456u64.to_ne_bytes().to_vec();
        basic.extend_from_slice(&789u32.to_ne_bytes());
        let mut s2 = attr(TCA_STATS_BASIC, &basic);
        s2.extend(attr(TCA_STATS_QUEUE, &queue(4, 6000, 55, 1, 900)));
        p.extend(attr(TCA_STATS2 | 0x8000, &s2));
        let mut buf = msg(RTM_NEWQDISC, &p);
        buf.extend(msg(NLMSG_DONE, &[0; 4]));
        let mut out = Vec::new();
        assert!(parse_messages(&buf, &mut out).unwrap());
        assert_eq!(
            out,
            vec![Qdisc {
                interface: String::new(),
                ifindex: 3,
                kind: "tbf".into(),
                handle: 0x8001_0000,
                parent: 0xffff_ffff,
                bytes: 123_456,
                packets: 789,
                drops: 55,
                overlimits: 900,
                requeues: Some(1),
                backlog_bytes: 6000,
                qlen: 4,
            }]
        );
        assert_eq!(handle_name(0x8001_0000), "8001:");
        assert_eq!(handle_name(0x0001_0010), "1:10");
        assert_eq!(handle_name(0xffff_ffff), "root");
    }

    #[test]
    fn legacy_stats_when_no_stats2() {
        let mut p = tcmsg(2, 0, 0xffff_ffff);
        p.extend(attr(TCA_KIND, b"pfifo_fast\0"));
        let mut st = 1000u64.to_ne_bytes().to_vec();
        for v in [10u32, 2, 3, 0, 0, 1, 1500] {
            st.extend_from_slice(&v.to_ne_bytes());
        }
        p.extend(attr(TCA_STATS, &st));
        let mut out = Vec::new();
        assert!(!parse_messages(&msg(RTM_NEWQDISC, &p), &mut out).unwrap());
        let q = &out[0];
        assert_eq!(
            (
                q.bytes,
                q.packets,
                q.drops,
                q.overlimits,
                q.qlen,
                q.backlog_bytes
            ),
            (1000, 10, 2, 3, 1, 1500)
        );
        assert_eq!(q.requeues, None);
    }

    #[test]
    fn errors_and_truncation_never_panic() {
        let e = msg(NLMSG_ERROR, &(-1i32).to_ne_bytes());
        assert_eq!(
            parse_messages(&e, &mut Vec::new())
                .unwrap_err()
                .raw_os_error(),
            Some(1)
        );
        // An attribute longer than its message, a kindless qdisc, a zero-length attribute.
        let mut p = tcmsg(1, 0, 0);
        p.extend_from_slice(&200u16.to_ne_bytes());
        p.extend_from_slice(&TCA_KIND.to_ne_bytes());
        let mut out = Vec::new();
        assert!(!parse_messages(&msg(RTM_NEWQDISC, &p), &mut out).unwrap());
        let mut z = tcmsg(1, 0, 0);
        z.extend([0, 0, 1, 0]);
        assert!(!parse_messages(&msg(RTM_NEWQDISC, &z), &mut out).unwrap());
        assert!(out.is_empty());
        let mut bad = msg(RTM_NEWQDISC, &tcmsg(1, 0, 0));
        bad[0] = 255;
        assert!(parse_messages(&bad, &mut out).is_err());
    }

    /// A dump recorded from Linux 6.18 (`dump_raw`, with a tbf on a veth dropping): parsed
    /// whole, then every truncation and every single-byte corruption of it parse without a
    /// panic.
    #[test]
    fn kernel_dump_and_its_mutations() {
        let raw: &[u8] = include_bytes!("testdata/qdisc_dump.bin");
        let mut out = Vec::new();
        assert!(parse_messages(raw, &mut out).unwrap());
        let kinds: Vec<&str> = out.iter().map(|q| q.kind.as_str()).collect();
        assert!(kinds.contains(&"tbf"), "{kinds:?}");
        assert!(kinds.contains(&"noqueue"), "{kinds:?}");
        let tbf = out.iter().find(|q| q.kind == "tbf").unwrap();
        assert!(
            tbf.drops > 0 && tbf.overlimits > 0 && tbf.packets > 0,
            "{tbf:?}"
        );
        assert_eq!(tbf.parent, 0xffff_ffff);
        for cut in 0..raw.len() {
            let _ = parse_messages(&raw[..cut], &mut Vec::new());
        }
        for i in 0..raw.len() {
            for v in [0u8, 0xff, raw[i].wrapping_add(1)] {
                let mut m = raw.to_vec();
                m[i] = v;
                let _ = parse_messages(&m, &mut Vec::new());
            }
        }
    }

    #[test]
    fn the_dump_keeps_at_most_max_qdiscs() {
        let mut p = tcmsg(1, 0, 0xffff_ffff);
        p.extend(attr(TCA_KIND, b"noqueue\0"));
        p.extend(attr(TCA_STATS, &[0u8; 36]));
        let one = msg(RTM_NEWQDISC, &p);
        let buf: Vec<u8> = one.repeat(MAX_QDISCS + 5);
        let mut out = Vec::new();
        parse_messages(&buf, &mut out).unwrap();
        assert_eq!(out.len(), MAX_QDISCS);
    }

    #[test]
    fn live_dump_names_loopback() {
        let qs = qdiscs().unwrap();
        assert!(
            qs.iter()
                .any(|q| q.interface == "lo" && q.kind == "noqueue"),
            "{qs:?}"
        );
    }
}
