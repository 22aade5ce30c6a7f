//! Hand-made fixtures for the deep dives (`triage cpu|mem|disk|net`), derived from
//! `fixtures/deep-idle` (an idle recording made by `triage capture`, which records every deep
//! reading). Each one edits only the files its fault touches, at t1 (counters advance over the
//! window from their idle t0 values), so everything else stays a real recording.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{edit, read, write, Base};

/// The recording these fixtures start from.
pub const DEEP_BASE: &str = "deep-idle";

/// The fixtures this module writes.
pub const DEEP_FIXTURES: &[&str] = &[
    "softirq-one-cpu",
    "memory-leak",
    "direct-reclaim-v1-limit",
    "disk-await-outlier",
    "close-wait-leak",
    "udp-rcvbuf-errors",
    "listen-overflow",
    "softnet-drops",
    "port-exhaustion",
    "oom-kill",
    "io-cgroup-limit",
];

/// A plain user process of the deep-idle recording (a `bash`), reused as the faulty process.
const PROC: u32 = 18339;

pub fn build(name: &str, dir: &Path, b: &Base) -> Result<String> {
    match name {
        "softirq-one-cpu" => softirq_one_cpu(dir, b),
        "memory-leak" => memory_leak(dir, b),
        "direct-reclaim-v1-limit" => direct_reclaim(dir, b),
        "disk-await-outlier" => disk_await_outlier(dir, b),
        "close-wait-leak" => close_wait_leak(dir),
        "udp-rcvbuf-errors" => udp_rcvbuf(dir, b),
        "listen-overflow" => listen_overflow(dir, b),
        "softnet-drops" => softnet_drops(dir, b),
        "port-exhaustion" => port_exhaustion(dir),
        "oom-kill" => oom_kill(dir),
        "io-cgroup-limit" => io_cgroup_limit(dir, b),
        _ => bail!("unknown deep fixture {name}"),
    }
}

/// `key value` lines (/proc/vmstat): add to the named counters.
fn bump_kv(text: &str, adds: &[(&str, u64)]) -> Result<String> {
    let mut out = String::new();
    let mut seen = 0;
    for line in text.lines() {
        match line
            .split_once(' ')
            .and_then(|(k, v)| Some((k, v.trim().parse::<u64>().ok()?)))
            .and_then(|(k, v)| adds.iter().find(|a| a.0 == k).map(|a| (k, v + a.1)))
        {
            Some((k, v)) => {
                out.push_str(&format!("{k} {v}\n"));
                seen += 1;
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if seen != adds.len() {
        bail!("not every counter of {adds:?} found");
    }
    Ok(out)
}

/// Header/value line pairs (/proc/net/snmp, netstat): add to `prefix`'s named counters.
fn bump_paired(text: &str, prefix: &str, adds: &[(&str, u64)]) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .with_context(|| format!("no {prefix} header"))?;
    let names: Vec<&str> = lines[i].split_ascii_whitespace().collect();
    let mut vals: Vec<String> = lines
        .get(i + 1)
        .context("no value line")?
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    for (name, add) in adds {
        let j = names
            .iter()
            .position(|n| n == name)
            .with_context(|| format!("no {prefix} {name}"))?;
        let v: i64 = vals[j].parse()?;
        vals[j] = (v + *add as i64).to_string();
    }
    out[i + 1] = vals.join(" ");
    Ok(out.join("\n") + "\n")
}

/// Move `ticks` from idle to field `field` (0-based after the name) of the `cpuN` and `cpu`
/// lines of /proc/stat.
fn stat_move_idle(text: &str, cpu: &str, field: usize, ticks: u64) -> Result<String> {
    let mut out = String::new();
    let mut edited = 0;
    for line in text.lines() {
        let name = line.split_ascii_whitespace().next().unwrap_or("");
        if name == cpu || name == "cpu" {
            let mut v: Vec<u64> = line
                .split_ascii_whitespace()
                .skip(1)
                .map(|x| x.parse())
                .collect::<Result<_, _>>()?;
            v[3] = v[3].checked_sub(ticks).context("idle below zero")?;
            v[field] += ticks;
            let nums: Vec<String> = v.iter().map(u64::to_string).collect();
            let pad = if name == "cpu" { "cpu " } else { name };
            out.push_str(&format!("{pad} {}\n", nums.join(" ")));
            edited += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if edited != 2 {
        bail!("no {cpu} line");
    }
    Ok(out)
}

/// A /proc/PID/stat with another name and RSS (pages).
fn stat_with(text: &str, comm: &str, rss_add_pages: u64) -> Result<String> {
    let open = text.find('(').context("stat without `(`")?;
    let close = text.rfind(')').context("stat without `)`")?;
    let mut fields: Vec<String> = text[close + 1..]
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    // fields[i] is field i + 3 of proc(5): 24 rss.
    let rss: u64 = fields.get(21).context("short stat")?.parse()?;
    fields[21] = (rss + rss_add_pages).to_string();
    Ok(format!("{}({comm}) {}\n", &text[..open], fields.join(" ")))
}

fn rename(dir: &Path, pid: u32, comm: &str) -> Result<()> {
    for snap in ["t0", "t1"] {
        edit(&dir.join(format!("{snap}/proc/{pid}/stat")), |t| {
            stat_with(t, comm, 0)
        })?;
    }
    Ok(())
}

// --- softirq-one-cpu ----------------------------------------------------------------------

/// NET_RX all on CPU 0 (one NIC queue, no RPS): 40,000/s there, CPU 0 at 45% softirq.
fn softirq_one_cpu(dir: &Path, b: &Base) -> Result<String> {
    let t1 = dir.join("t1");
    let n = b.at(0.0, 40_000.0, 1.0);
    edit(&t1.join("proc/softirqs"), |t| {
        let mut out = String::new();
        for line in t.lines() {
            if line.trim_start().starts_with("NET_RX:") {
                let (name, rest) = line.split_once(':').context("NET_RX line")?;
                let mut v: Vec<u64> = rest
                    .split_ascii_whitespace()
                    .map(|x| x.parse())
                    .collect::<Result<_, _>>()?;
                v[0] += n;
                let cols: Vec<String> = v.iter().map(|x| format!("{x:>10}")).collect();
                out.push_str(&format!("{name}:{} \n", cols.join(" ")));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        Ok(out)
    })?;
    let ticks = (b.elapsed_s * b.ticks_per_s * 0.45).round() as u64;
    edit(&t1.join("proc/stat"), |t| {
        stat_move_idle(t, "cpu0", 6, ticks)
    })?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: t1 /proc/softirqs NET_RX +{n} on CPU 0 only \
         (40000/s), t1 /proc/stat cpu0 {ticks} ticks moved from idle to softirq (45%)"
    ))
}

// --- memory-leak --------------------------------------------------------------------------

/// One process (`leaky`) grows by 12 MiB of anonymous memory over the window (~6 MiB/s).
fn memory_leak(dir: &Path, b: &Base) -> Result<String> {
    rename(dir, PROC, "leaky")?;
    let grow: u64 = 12 << 20;
    let page = b
        .meta
        .get("page_size_bytes")
        .and_then(|v| v.as_u64())
        .unwrap_or(4096);
    edit(&dir.join(format!("t1/proc/{PROC}/stat")), |t| {
        stat_with(t, "leaky", grow / page)
    })?;
    edit(&dir.join(format!("t1/proc/{PROC}/status")), |t| {
        let mut out = String::new();
        for line in t.lines() {
            match line.split_once(':') {
                Some((k @ ("RssAnon" | "VmRSS"), v)) => {
                    let kb: u64 = v.split_ascii_whitespace().next().unwrap_or("0").parse()?;
                    out.push_str(&format!("{k}:\t{:>8} kB\n", kb + (grow >> 10)));
                }
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        Ok(out)
    })?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: pid {PROC} renamed `leaky`, its t1 RSS (stat and \
         status RssAnon/VmRSS) 12 MiB above t0"
    ))
}

// --- direct-reclaim-v1-limit --------------------------------------------------------------

/// Direct reclaim (allocation stalls) and a cgroup v1 memory group at 97% of its
/// limit_in_bytes that hit it (failcnt) in the window.
fn direct_reclaim(dir: &Path, b: &Base) -> Result<String> {
    let t1 = dir.join("t1");
    let stalls = b.at(0.0, 300.0, 1.0);
    let scans = b.at(0.0, 40_000.0, 1.0);
    let steals = b.at(0.0, 30_000.0, 1.0);
    edit(&t1.join("proc/vmstat"), |t| {
        bump_kv(
            t,
            &[
                ("allocstall_normal", stalls),
                ("pgscan_direct", scans),
                ("pgsteal_direct", steals),
            ],
        )
    })?;
    let limit: u64 = 512 << 20;
    for (snap, usage, failcnt) in [
        ("t0", limit / 100 * 96, 10u64),
        ("t1", limit / 100 * 97, 410),
    ] {
        let cg = dir.join(snap).join("sys/fs/cgroup/memory/app");
        write(&cg.join("memory.limit_in_bytes"), format!("{limit}\n"))?;
        write(&cg.join("memory.usage_in_bytes"), format!("{usage}\n"))?;
        write(&cg.join("memory.failcnt"), format!("{failcnt}\n"))?;
        write(
            &cg.join("memory.stat"),
            format!(
                "cache 4194304\nrss {}\nshmem 0\ntotal_inactive_file 1048576\n",
                usage - 4194304
            ),
        )?;
        write(
            &cg.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )?;
    }
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: t1 /proc/vmstat allocstall_normal +{stalls} \
         (300/s), pgscan_direct +{scans}, pgsteal_direct +{steals}; a v1 memory cgroup /app with \
         limit_in_bytes 512 MiB at 96% -> 97% and failcnt 10 -> 410"
    ))
}

// --- disk-await-outlier -------------------------------------------------------------------

/// A second disk, vdb, doing 40 reads/s at 80 ms each while vda answers in ~1-2 ms.
fn disk_await_outlier(dir: &Path, b: &Base) -> Result<String> {
    let reads = b.at(0.0, 40.0, 1.0);
    let vda_reads = b.at(0.0, 50.0, 1.0);
    for (snap, f) in [("t0", 0u64), ("t1", 1)] {
        let root = dir.join(snap);
        write(&root.join("sys/block/vdb/queue/rotational"), "0\n")?;
        write(&root.join("sys/block/vdb/mq/0/cpu_list"), "0, 1\n")?;
        let r = 200_000 + reads * f;
        let ms = 9_000_000 + reads * 80 * f;
        let busy = 400_000 + (b.elapsed_s * 1000.0 * 0.9) as u64 * f;
        let weighted = 9_500_000 + reads * 80 * f;
        edit(&root.join("proc/diskstats"), |t| {
            let mut out = String::new();
            for line in t.lines() {
                let mut v: Vec<String> =
                    line.split_ascii_whitespace().map(str::to_string).collect();
                if v.get(2).map(String::as_str) == Some("vda") && f == 1 {
                    // vda: 50 reads/s more, at 1 ms each.
                    let add = |x: &str, n: u64| (x.parse::<u64>().unwrap_or(0) + n).to_string();
                    v[3] = add(&v[3], vda_reads);
                    v[5] = add(&v[5], vda_reads * 8);
                    v[6] = add(&v[6], vda_reads);
                    v[12] = add(&v[12], vda_reads);
                    v[13] = add(&v[13], vda_reads);
                    out.push_str(&format!("{:>4} {:>7} {}\n", v[0], v[1], v[2..].join(" ")));
                    continue;
                }
                out.push_str(line);
                out.push('\n');
            }
            out.push_str(&format!(
                " 254      16 vdb {r} 0 {} {ms} 0 0 0 0 0 {busy} {weighted} 0 0 0 0 0 0\n",
                r * 8
            ));
            Ok(out)
        })?;
    }
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: a second disk vdb (sys/block/vdb, non-rotational) \
         with {reads} reads at 80 ms each in the window (90% busy), vda +{vda_reads} reads at 1 ms"
    ))
}

// --- close-wait-leak ----------------------------------------------------------------------

/// CLOSE_WAIT sockets pile up: 40 at t0, 180 at t1 (sock_diag recordings).
fn close_wait_leak(dir: &Path) -> Result<String> {
    for (snap, cw) in [("t0", 40), ("t1", 180)] {
        write(
            &dir.join(snap).join("sock_diag_tcp.json"),
            format!(
                "{{\n  \"CLOSE_WAIT\": {cw},\n  \"ESTABLISHED\": 220,\n  \"LISTEN\": 1,\n  \"TIME_WAIT\": 12\n}}"
            ),
        )?;
    }
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: sock_diag_tcp.json with CLOSE_WAIT 40 at t0 and 180 \
         at t1 (220 ESTABLISHED)"
    ))
}

// --- udp-rcvbuf-errors --------------------------------------------------------------------

/// A UDP reader too slow for its traffic: 800 datagrams/s dropped for a full receive buffer.
fn udp_rcvbuf(dir: &Path, b: &Base) -> Result<String> {
    let rx = b.at(0.0, 20_000.0, 1.0);
    let err = b.at(0.0, 800.0, 1.0);
    edit(&dir.join("t1/proc/net/snmp"), |t| {
        bump_paired(
            t,
            "Udp:",
            &[
                ("InDatagrams", rx),
                ("InErrors", err),
                ("RcvbufErrors", err),
            ],
        )
    })?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: t1 /proc/net/snmp Udp InDatagrams +{rx} (20000/s), \
         InErrors and RcvbufErrors +{err} (800/s)"
    ))
}

// --- listen-overflow ----------------------------------------------------------------------

/// Port 8080's accept queue is full (129 of 128) and overflows 50 times a second; its owner,
/// `api-server`, is found through its fd table.
fn listen_overflow(dir: &Path, b: &Base) -> Result<String> {
    const INODE: u64 = 990_001;
    rename(dir, PROC, "api-server")?;
    // Listeners are read at the end of the window only.
    let path = dir.join("t1/sock_diag_listen.json");
    let mut l: Vec<serde_json::Value> = serde_json::from_str(&read(&path)?)?;
    l.push(serde_json::json!({
        "addr": "0.0.0.0", "port": 8080, "accept_queue": 129, "backlog": 128, "inode": INODE
    }));
    write(&path, serde_json::to_string_pretty(&l)?)?;
    // The state counts agree: one more LISTEN socket, its 129 queued connections established.
    let states = dir.join("t1/sock_diag_tcp.json");
    let mut st: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&read(&states)?)?;
    for (k, add) in [("LISTEN", 1u64), ("ESTABLISHED", 129)] {
        let v = st.get(k).and_then(|v| v.as_u64()).unwrap_or(0) + add;
        st.insert(k.into(), v.into());
    }
    write(&states, serde_json::to_string_pretty(&st)?)?;
    // The owner's fd table: a directory of links, its recorded fd count kept in `.size` (as
    // `triage capture` records a directory read both ways).
    let fd = dir.join(format!("t1/proc/{PROC}/fd"));
    let size = if fd.is_file() {
        read(&fd)?
    } else {
        "2\n".into()
    };
    if fd.is_file() {
        std::fs::remove_file(&fd)?;
    }
    std::fs::create_dir_all(&fd)?;
    write(&fd.join(".size"), size)?;
    for (n, target) in [
        ("0", "/dev/null".to_string()),
        ("7", format!("socket:[{INODE}]")),
    ] {
        std::os::unix::fs::symlink(target, fd.join(n))?;
    }
    let ovf = b.at(0.0, 50.0, 1.0);
    edit(&dir.join("t1/proc/net/netstat"), |t| {
        bump_paired(
            t,
            "TcpExt:",
            &[("ListenOverflows", ovf), ("ListenDrops", ovf)],
        )
    })?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: pid {PROC} renamed `api-server`, a listener \
         0.0.0.0:8080 with accept queue 129 of backlog 128 (inode {INODE}) in \
         sock_diag_listen.json (LISTEN +1 and ESTABLISHED +129 in sock_diag_tcp.json), t1 proc/{PROC}/fd/7 -> socket:[{INODE}], TcpExt ListenOverflows \
         and ListenDrops +{ovf} (50/s)"
    ))
}

// --- softnet-drops ------------------------------------------------------------------------

/// CPU 1's input backlog overflows: 300 packets/s dropped, 20 squeezes/s, 90,000 packets/s.
fn softnet_drops(dir: &Path, b: &Base) -> Result<String> {
    let (pk, dr, sq) = (
        b.at(0.0, 90_000.0, 1.0),
        b.at(0.0, 300.0, 1.0),
        b.at(0.0, 20.0, 1.0),
    );
    edit(&dir.join("t1/proc/net/softnet_stat"), |t| {
        let mut out = String::new();
        for (i, line) in t.lines().enumerate() {
            let mut v: Vec<u64> = line
                .split_ascii_whitespace()
                .map(|x| u64::from_str_radix(x, 16))
                .collect::<Result<_, _>>()?;
            if i == 1 {
                v[0] += pk;
                v[1] += dr;
                v[2] += sq;
            }
            let cols: Vec<String> = v.iter().map(|x| format!("{x:08x}")).collect();
            out.push_str(&cols.join(" "));
            out.push('\n');
        }
        Ok(out)
    })?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: t1 /proc/net/softnet_stat CPU 1 processed +{pk}, \
         dropped +{dr} (300/s), time_squeeze +{sq}"
    ))
}

// --- port-exhaustion ----------------------------------------------------------------------

/// 26,000 TCP sockets holding local ports (22,000 TIME_WAIT) against the 28,232-port range.
fn port_exhaustion(dir: &Path) -> Result<String> {
    for snap in ["t0", "t1"] {
        write(
            &dir.join(snap).join("sock_diag_tcp.json"),
            "{\n  \"ESTABLISHED\": 4000,\n  \"LISTEN\": 1,\n  \"TIME_WAIT\": 22000\n}",
        )?;
    }
    // The port use a client-side storm leaves, as `tcp_port_use` dumps it at the end: every
    // socket from one local address to one remote address:port (the kernel's allocation key).
    write(
        &dir.join("t1").join("sock_diag_ports.json"),
        "{\n  \"destinations\": [\n    {\n      \"local_addr\": \"10.0.2.15\",\n      \
         \"remote\": \"10.0.2.20:5432\",\n      \"sockets\": 26000,\n      \
         \"time_wait\": 22000\n    }\n  ],\n  \"time_wait_local_ports\": []\n}",
    )?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: sock_diag_tcp.json with 4000 ESTABLISHED and 22000 \
         TIME_WAIT sockets at both ends (ip_local_port_range 32768-60999 as recorded); \
         t1/sock_diag_ports.json: the 26000 sockets are client-side, from 10.0.2.15 to \
         10.0.2.20:5432 (issue 9: ports are counted per destination)"
    ))
}

// --- oom-kill -----------------------------------------------------------------------------

/// A memory cgroup OOM kill inside the window: `worker` (pid 31337) in /app/worker, 512 MiB of
/// anonymous memory, as the kernel logs it (three records), and oom_kill +1 in /proc/vmstat.
fn oom_kill(dir: &Path) -> Result<String> {
    let t1 = dir.join("t1");
    let uptime: f64 = read(&t1.join("proc/uptime"))?
        .split_ascii_whitespace()
        .next()
        .context("empty uptime")?
        .parse()?;
    let ts = ((uptime - 1.0) * 1e6) as u64;
    edit(&t1.join("dev/kmsg"), |t| {
        let seq = t
            .lines()
            .filter_map(|l| l.split(',').nth(1)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        Ok(format!(
            "{t}4,{},{ts},-;worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0\n\
             6,{},{},-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app,task_memcg=/app/worker,task=worker,pid=31337,uid=1000\n\
             3,{},{},-;Memory cgroup out of memory: Killed process 31337 (worker) total-vm:1048576kB, anon-rss:524288kB, file-rss:2048kB, shmem-rss:0kB, UID:1000 pgtables:1100kB oom_score_adj:0\n",
            seq + 1,
            seq + 2,
            ts + 10_000,
            seq + 3,
            ts + 20_000
        ))
    })?;
    edit(&t1.join("proc/vmstat"), |t| bump_kv(t, &[("oom_kill", 1)]))?;
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: three kernel log records of a memory cgroup OOM kill \
         of worker (pid 31337, anon-rss 524288 kB, task_memcg /app/worker) 1 s before the end \
         of the window, /proc/vmstat oom_kill +1"
    ))
}

// --- io-cgroup-limit ----------------------------------------------------------------------

/// A cgroup v1 blkio group `/backup` writing at 99% of its 10 MiB/s write_bps_device limit on
/// vda (254:0), and an unlimited sibling `/web` reading a little.
fn io_cgroup_limit(dir: &Path, b: &Base) -> Result<String> {
    let limit: u64 = 10 << 20;
    let written = b.at(0.0, limit as f64 * 0.99, 1.0);
    let ios = b.at(0.0, 80.0, 1.0);
    let web_read = b.at(0.0, 200.0 * 1024.0, 1.0);
    for (snap, f) in [("t0", 0u64), ("t1", 1)] {
        let blkio = dir.join(snap).join("sys/fs/cgroup/blkio");
        let svc = |r: u64, w: u64| {
            format!(
                "254:0 Read {r}\n254:0 Write {w}\n254:0 Sync {w}\n254:0 Async 0\n254:0 Discard 0\n254:0 Total {}\nTotal {}\n",
                r + w,
                r + w
            )
        };
        let backup = blkio.join("backup");
        write(
            &backup.join("blkio.throttle.io_service_bytes"),
            svc(0, 5_000_000_000 + written * f),
        )?;
        write(
            &backup.join("blkio.throttle.io_serviced"),
            svc(0, 600_000 + ios * f),
        )?;
        write(
            &backup.join("blkio.throttle.write_bps_device"),
            format!("254:0 {limit}\n"),
        )?;
        write(&backup.join("blkio.throttle.read_bps_device"), "")?;
        let web = blkio.join("web");
        write(
            &web.join("blkio.throttle.io_service_bytes"),
            svc(90_000_000 + web_read * f, 1_000_000),
        )?;
        write(
            &web.join("blkio.throttle.io_serviced"),
            svc(20_000 + 50 * f, 300),
        )?;
    }
    Ok(format!(
        "derived from fixtures/{DEEP_BASE}: v1 blkio cgroups /backup (write_bps_device 254:0 \
         {limit}, +{written} bytes written in the window: 99%) and /web (no limit, reading \
         200 KiB/s)"
    ))
}
