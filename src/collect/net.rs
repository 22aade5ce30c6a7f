//! Network counters of one network namespace: interfaces (/proc/net/dev), SNMP and TcpExt
//! counters, socket summary (sockstat) and TCP socket states.
//!
//! A namespace is read through the `net/` directory of a process inside it
//! (`proc/PID/net/...`), or `proc/net/...` for our own. Containers each have their own
//! namespace, so a box's retransmits may be invisible from the root namespace alone.

use std::collections::BTreeMap;

use procfs_core::net::InterfaceDeviceStatus;
use procfs_core::FromRead;

use super::Problem;
use crate::host::sockdiag::state_name;
use crate::host::Source;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct IfCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    pub rx_drop: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
}

/// Counters of one namespace at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetReading {
    pub interfaces: BTreeMap<String, IfCounters>,
    /// `Tcp:`/`Udp:`/`Ip:` rows of /proc/net/snmp and `TcpExt:` of /proc/net/netstat,
    /// as "Tcp.RetransSegs" -> value.
    pub counters: BTreeMap<String, i64>,
    /// /proc/net/sockstat, as "TCP.tw" -> value.
    pub sockstat: BTreeMap<String, u64>,
}

/// `State -> count` of TCP sockets (IPv4 + IPv6).
pub type TcpStates = BTreeMap<String, u64>;

/// Parse the paired header/value line format of /proc/net/snmp and /proc/net/netstat.
/// procfs's `Snmp` requires every field of one kernel's layout and has no `TcpExt`; this keeps
/// whatever the running kernel prints.
pub fn parse_paired_counters(text: &str, out: &mut BTreeMap<String, i64>) -> Result<(), String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i + 1 < lines.len() {
        let (Some((p1, names)), Some((p2, values))) =
            (lines[i].split_once(':'), lines[i + 1].split_once(':'))
        else {
            return Err(format!("line {}: not a `Prefix: ...` pair", i + 1));
        };
        if p1 != p2 {
            return Err(format!("line {}: header `{p1}` followed by `{p2}`", i + 1));
        }
        for (n, v) in names
            .split_ascii_whitespace()
            .zip(values.split_ascii_whitespace())
        {
            if let Ok(v) = v.parse::<i64>() {
                out.insert(format!("{p1}.{n}"), v);
            }
        }
        i += 2;
    }
    Ok(())
}

pub fn parse_sockstat(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let toks: Vec<&str> = rest.split_ascii_whitespace().collect();
        for kv in toks.chunks(2) {
            if let [k, v] = kv {
                if let Ok(v) = v.parse() {
                    out.insert(format!("{proto}.{k}"), v);
                }
            }
        }
    }
    out
}

/// Count sockets by state from /proc/net/tcp(6) text: only the `st` column is looked at.
pub fn count_tcp_states(text: &str, out: &mut TcpStates) {
    for line in text.lines().skip(1) {
        let Some(st) = line.split_ascii_whitespace().nth(3) else {
            continue;
        };
        let Ok(n) = u8::from_str_radix(st, 16) else {
            continue;
        };
        if let Some(name) = state_name(n) {
            *out.entry(name.to_string()).or_insert(0) += 1;
        }
    }
}

/// Read one namespace's counters; `base` is `proc/net` or `proc/PID/net`.
pub fn read_net(src: &dyn Source, base: &str, problems: &mut Vec<Problem>) -> NetReading {
    let mut r = NetReading::default();
    let dev = format!("{base}/dev");
    match src.read(&dev) {
        Ok(b) => match InterfaceDeviceStatus::from_read(&b[..]) {
            Ok(s) => {
                for (name, d) in s.0 {
                    r.interfaces.insert(
                        name,
                        IfCounters {
                            rx_bytes: d.recv_bytes,
                            rx_packets: d.recv_packets,
                            rx_errs: d.recv_errs,
                            rx_drop: d.recv_drop,
                            tx_bytes: d.sent_bytes,
                            tx_packets: d.sent_packets,
                            tx_errs: d.sent_errs,
                            tx_drop: d.sent_drop,
                        },
                    );
                }
            }
            Err(e) => problems.push(Problem::parse("network interface counters", &dev, &e)),
        },
        Err(e) => problems.push(Problem::io("network interface counters", &dev, &e)),
    }
    for f in ["snmp", "netstat"] {
        let p = format!("{base}/{f}");
        match src.read_string(&p) {
            Ok(t) => {
                if let Err(e) = parse_paired_counters(&t, &mut r.counters) {
                    problems.push(Problem::new("TCP/UDP counters", &p, e));
                }
            }
            Err(e) => problems.push(Problem::io("TCP/UDP counters", &p, &e)),
        }
    }
    let p = format!("{base}/sockstat");
    match src.read_string(&p) {
        Ok(t) => r.sockstat = parse_sockstat(&t),
        Err(e) => problems.push(Problem::io("socket summary", &p, &e)),
    }
    r
}

/// TCP socket states of one namespace (read at the end of the window only): netlink for our
/// own namespace, /proc/PID/net/tcp* for the others (or when netlink is not available).
pub fn read_tcp_states(src: &dyn Source, base: &str) -> Option<TcpStates> {
    if base == "proc/net" {
        if let Ok(s) = src.tcp_states() {
            return Some(s);
        }
    }
    let mut states = TcpStates::new();
    let mut any = false;
    for f in ["tcp", "tcp6"] {
        if let Ok(t) = src.read_string(&format!("{base}/{f}")) {
            count_tcp_states(&t, &mut states);
            any = true;
        }
    }
    any.then_some(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_counters_keep_unknown_fields() {
        let mut m = BTreeMap::new();
        parse_paired_counters(
            "Tcp: RtoAlgorithm ActiveOpens RetransSegs OutSegs NewField\nTcp: 1 10 3 1000 77\n\
             TcpExt: ListenOverflows ListenDrops\nTcpExt: 5 6\n",
            &mut m,
        )
        .unwrap();
        assert_eq!(m["Tcp.RetransSegs"], 3);
        assert_eq!(m["Tcp.NewField"], 77);
        assert_eq!(m["TcpExt.ListenDrops"], 6);
        assert!(parse_paired_counters("Tcp: a b\nUdp: 1 2\n", &mut m).is_err());
    }

    #[test]
    fn sockstat_pairs() {
        let m = parse_sockstat(
            "sockets: used 150\nTCP: inuse 5 orphan 1 tw 20 alloc 9 mem 3\nUDP: inuse 2 mem 1\n",
        );
        assert_eq!(m["TCP.tw"], 20);
        assert_eq!(m["sockets.used"], 150);
        assert_eq!(m["UDP.inuse"], 2);
    }

    #[test]
    fn tcp_states_counted_from_st_column() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue\n\
   0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n\
   1: 0100007F:0016 0100007F:9C40 01 00000000:00000000 00:00000000 00000000 0 0 2\n\
   2: 0100007F:0016 0100007F:9C41 08 00000000:00000000 00:00000000 00000000 0 0 3\n\
   3: 0100007F:0016 0100007F:9C42 08 garbage\n";
        let mut s = TcpStates::new();
        count_tcp_states(text, &mut s);
        assert_eq!(s["LISTEN"], 1);
        assert_eq!(s["ESTABLISHED"], 1);
        assert_eq!(s["CLOSE_WAIT"], 2);
    }
}
