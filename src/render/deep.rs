//! Tables of the deep-dive sections (`triage cpu|mem|disk|net`), and the time series
//! (`--interval S --count N`) as a table of one row per window or as one JSON document.

use std::fmt::Write as _;

use comfy_table::CellAlignment;

use super::table::{f1, new_table, o1, ou, s, section, shorten, spec_table, wrap, Style};
use crate::model::deep::{CpuDetail, DiskDetail, MemDetail, NetDetail, Series};
use crate::model::report::{Report, Severity};
use crate::resources::cpu::deep as cpu_deep;
use crate::resources::memory::deep as mem_deep;
use crate::resources::netif::deep as netif_deep;
use crate::resources::sockets;
use crate::text::human_bytes;

fn ob(v: Option<u64>) -> String {
    v.map(hb).unwrap_or_else(|| "-".into())
}

/// `human_bytes` without the space (`549.7MiB`): narrow columns in wide tables.
fn hb(v: u64) -> String {
    human_bytes(v).replace(' ', "")
}

fn left(t: &mut comfy_table::Table, col: usize) {
    if let Some(c) = t.column_mut(col) {
        c.set_cell_alignment(CellAlignment::Left);
    }
}

/// The deep sections present in `r` (none for `sixty-second`).
pub fn render(out: &mut String, r: &Report, st: &Style) {
    let sec = &r.sections;
    if let Some(c) = &sec.cpu_detail {
        cpu(out, c, st);
    }
    if let Some(m) = &sec.mem_detail {
        mem(out, m, st);
    }
    if let Some(d) = &sec.disk_detail {
        disk(out, d, st);
    }
    if let Some(n) = &sec.net_detail {
        net(out, n, st);
        super::qdisc::render(out, &sec.qdiscs, st);
    }
}

fn cpu(out: &mut String, c: &CpuDetail, st: &Style) {
    let _ = writeln!(out);
    wrap(
        out,
        &st.head("CPUs:"),
        "  ",
        &format!(
            "{} online, {:.2} effective ({}); PSI cpu some: {} ms stalled in the window, avg10 {}%, avg60 {}%",
            c.online_cpus,
        c.effective_cpus,
        s(&c.effective_cpus_source),
        o1(c.psi_some_stall_ms),
            o1(c.psi_some_avg10_pct),
            o1(c.psi_some_avg60_pct)
        ),
    );
    for (title, rows) in [
        ("pidstat -u -w: processes by CPU", &c.top_processes),
        ("pidstat -t: threads by CPU", &c.top_threads),
    ] {
        if rows.is_empty() {
            let _ = writeln!(out, "\n{}\n  none used CPU in the window", st.head(title));
        } else {
            section(out, st, title, &spec_table(cpu_deep::TASK_COLUMNS, rows));
        }
    }
    if !c.softirqs.is_empty() {
        let t = spec_table(cpu_deep::SOFTIRQ_COLUMNS, &c.softirqs);
        section(out, st, "/proc/softirqs (concentration per CPU)", &t);
    }
}

fn mem(out: &mut String, m: &MemDetail, st: &Style) {
    let b = &m.breakdown;
    let mut t = new_table(&["", "bytes", "", "bytes"]);
    left(&mut t, 0);
    left(&mut t, 2);
    let rows = [
        ("MemTotal", b.total_bytes, "MemAvailable", b.available_bytes),
        ("MemFree", b.free_bytes, "anon (AnonPages)", b.anon_bytes),
        ("file cache", b.file_cache_bytes, "dirty", b.dirty_bytes),
        (
            "slab reclaimable",
            b.slab_reclaimable_bytes,
            "slab unreclaimable",
            b.slab_unreclaimable_bytes,
        ),
        ("shmem", b.shmem_bytes, "page tables", b.page_tables_bytes),
        (
            "kernel stacks",
            b.kernel_stack_bytes,
            "huge page size",
            b.hugepage_size_bytes,
        ),
        (
            "Committed_AS",
            b.committed_as_bytes,
            "CommitLimit",
            b.commit_limit_bytes,
        ),
        (
            "swap total",
            b.swap_total_bytes,
            "swap used",
            b.swap_used_bytes,
        ),
    ];
    for (a, x, c, y) in rows {
        t.add_row(vec![a.to_string(), ob(x), c.to_string(), ob(y)]);
    }
    section(out, st, "/proc/meminfo: the MemAvailable picture", &t);
    wrap(
        out,
        "",
        "    ",
        &format!(
        "  huge pages {}/{} free; committed {}% of CommitLimit; THP {} (defrag {}); overcommit_memory {} ratio {}",
        ou(b.hugepages_free),
        ou(b.hugepages_total),
        o1(b.committed_pct_of_limit),
        s(m.thp_enabled.as_deref().unwrap_or("-")),
        s(m.thp_defrag.as_deref().unwrap_or("-")),
        ou(m.overcommit_memory),
        ou(m.overcommit_ratio)
        ),
    );
    let t = spec_table(mem_deep::RECLAIM_COLUMNS, std::slice::from_ref(&m.reclaim));
    section(out, st, "vmstat/sar -B: paging and reclaim", &t);
    wrap(
        out,
        "",
        "    ",
        &format!(
        "  PSI memory: some {} ms, full {} ms stalled in the window; OOM kills {} in the window, {} since boot",
        o1(m.psi_some_stall_ms),
        o1(m.psi_full_stall_ms),
        ou(m.oom_kills),
        ou(m.oom_kills_since_boot)
        ),
    );
    if !m.oom_events.is_empty() {
        let t = spec_table(mem_deep::OOM_COLUMNS, &m.oom_events);
        section(out, st, "OOM kills (kernel log)", &t);
    }
    let t = spec_table(mem_deep::RSS_COLUMNS, &m.top_rss);
    section(out, st, "pidstat -r: processes by resident memory", &t);
    if !m.cgroups.is_empty() {
        let t = spec_table(mem_deep::CGROUP_COLUMNS, &m.cgroups);
        section(out, st, "memory cgroups (limits, events in the window)", &t);
    }
}

fn disk(out: &mut String, d: &DiskDetail, st: &Style) {
    if !d.devices.is_empty() {
        let t = spec_table(crate::resources::disk::EXTRA_COLUMNS, &d.devices);
        section(out, st, "iostat -x: merges, request size, queue", &t);
    }
    let _ = writeln!(
        out,
        "\n{} some {} ms, full {} ms stalled in the window",
        st.head("PSI io:"),
        o1(d.psi_some_stall_ms),
        o1(d.psi_full_stall_ms)
    );
    let t = spec_table(crate::resources::disk::IO_PROC_COLUMNS, &d.top_io);
    let title = format!(
        "pidstat -d: processes by storage I/O ({} not readable)",
        d.io_not_readable
    );
    if d.top_io.is_empty() {
        let _ = writeln!(
            out,
            "\n{}\n  no process did storage I/O in the window",
            st.head(&title)
        );
    } else {
        section(out, st, &title, &t);
    }
    if !d.cgroups.is_empty() {
        let t = spec_table(crate::resources::disk::IO_CGROUP_COLUMNS, &d.cgroups);
        section(
            out,
            st,
            "cgroup block I/O (blkio.throttle / io.max limits)",
            &t,
        );
    }
    if !d.d_state.is_empty() {
        let t = spec_table(crate::resources::tasks::D_STATE_COLUMNS, &d.d_state);
        section(
            out,
            st,
            "tasks in D state (uninterruptible, usually waiting for I/O)",
            &t,
        );
    }
    if !d.read_only_mounts.is_empty() {
        let list: Vec<String> = d.read_only_mounts.iter().map(|m| s(m)).collect();
        wrap(out, "  read-only mounts:", "    ", &list.join(" "));
    }
    if !d.io_errors.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            st.head("I/O and filesystem errors (kernel log)")
        );
        for e in &d.io_errors {
            wrap(
                out,
                &format!("  {:>6.0}s ago", e.age_s),
                "      ",
                &s(&e.message),
            );
        }
    }
}

fn net(out: &mut String, n: &NetDetail, st: &Style) {
    if !n.links.is_empty() {
        let t = spec_table(netif_deep::LINK_COLUMNS, &n.links);
        section(out, st, "sar -n DEV: link utilization", &t);
    }
    if !n.softnet.is_empty() {
        let t = spec_table(netif_deep::SOFTNET_COLUMNS, &n.softnet);
        section(out, st, "/proc/net/softnet_stat", &t);
    }
    let t = spec_table(sockets::COUNTER_COLUMNS, std::slice::from_ref(&n.counters));
    section(out, st, "sar -n UDP,ETCP", &t);
    let states: Vec<String> = n
        .tcp_states
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    wrap(
        out,
        &format!("\n{}", st.head("ss -s: TCP sockets:")),
        "    ",
        &if states.is_empty() {
            "-".to_string()
        } else {
            states.join(", ")
        },
    );
    wrap(
        out,
        "",
        "    ",
        &format!(
        "  CLOSE_WAIT {} -> {} over the window; conntrack {}/{}; local ports held {} of {} ({}%, upper bound)",
        ou(n.close_wait_start),
        ou(n.close_wait_end),
        ou(n.conntrack),
        ou(n.conntrack_max),
        ou(n.tcp_sockets_bound),
        ou(n.ephemeral_ports),
        o1(n.ephemeral_used_pct)
        ),
    );
    if !n.listeners.is_empty() {
        let t = spec_table(sockets::LISTEN_COLUMNS, &n.listeners);
        section(
            out,
            st,
            &format!(
                "ss -ltn: listeners by accept-queue fill ({} in all)",
                n.listeners_total
            ),
            &t,
        );
    }
}

/// The time series as one JSON document (pretty, trailing newline).
pub fn series_json(series: &Series) -> String {
    let mut s = super::to_json_pretty(series);
    s.push('\n');
    s
}

/// A sum that is +0.0 when empty (`Iterator::sum` of floats starts at -0.0).
fn sum(v: impl Iterator<Item = f64>) -> f64 {
    v.fold(0.0, |a, b| a + b)
}

fn hhmmss(ts: &str) -> String {
    ts.get(11..19).unwrap_or(ts).to_string()
}

/// One row per window, like `vmstat S N`, then the findings seen in any window.
/// The time-series table's columns and one row per window in `samples` (shared by the
/// whole table and the streamed rows).
pub fn series_parts(command: &str, samples: &[Report]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    match command {
        "cpu" => (
            vec![
                "time",
                "r avg",
                "b avg",
                "us",
                "sy",
                "wa",
                "st",
                "id",
                "cs/s",
                "in/s",
                "PSI ms",
                "top process",
            ],
            samples
                .iter()
                .map(|r| {
                    let v = r.sections.vmstat.as_ref();
                    let c = r.sections.cpu_detail.as_ref();
                    vec![
                        hhmmss(&r.window.end),
                        o1(v.and_then(|v| v.runnable_avg)),
                        o1(v.and_then(|v| v.blocked_avg)),
                        o1(v.and_then(|v| v.user_pct)),
                        o1(v.and_then(|v| v.system_pct)),
                        o1(v.and_then(|v| v.iowait_pct)),
                        o1(v.and_then(|v| v.steal_pct)),
                        o1(v.and_then(|v| v.idle_pct)),
                        o1(v.and_then(|v| v.context_switches_per_s).map(f64::round)),
                        o1(v.and_then(|v| v.interrupts_per_s).map(f64::round)),
                        o1(c.and_then(|c| c.psi_some_stall_ms)),
                        c.and_then(|c| c.top_processes.first())
                            .map(|p| format!("{} {:.0}%", shorten(&s(&p.comm), 16), p.cpu_pct))
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect(),
        ),
        "mem" => (
            vec![
                "time",
                "avail",
                "swap",
                "si kB/s",
                "so kB/s",
                "minflt/s",
                "majflt/s",
                "dscan/s",
                "stall/s",
                "OOM",
                "RSS grower",
            ],
            samples
                .iter()
                .map(|r| {
                    let m = r.sections.mem_detail.as_ref();
                    let rc = m.map(|m| &m.reclaim);
                    let grower = m.and_then(|m| {
                        m.top_rss
                            .iter()
                            .filter_map(|p| Some((p, p.rss_growth_bytes_per_s?)))
                            .max_by(|a, b| a.1.total_cmp(&b.1))
                    });
                    vec![
                        hhmmss(&r.window.end),
                        ob(m.and_then(|m| m.breakdown.available_bytes)),
                        ob(m.and_then(|m| m.breakdown.swap_used_bytes)),
                        o1(rc.and_then(|x| x.swap_in_kb_per_s)),
                        o1(rc.and_then(|x| x.swap_out_kb_per_s)),
                        o1(rc.and_then(|x| x.minor_faults_per_s)),
                        o1(rc.and_then(|x| x.major_faults_per_s)),
                        o1(rc.and_then(|x| x.direct_scan_per_s)),
                        o1(rc.and_then(|x| x.allocation_stalls_per_s)),
                        ou(m.and_then(|m| m.oom_kills)),
                        grower
                            .map(|(p, g)| {
                                format!(
                                    "{} +{}/s",
                                    shorten(&s(&p.comm), 10),
                                    human_bytes(g.max(0.0) as u64).replace(' ', "")
                                )
                            })
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect(),
        ),
        "disk" => (
            vec![
                "time",
                "device",
                "r/s",
                "w/s",
                "rkB/s",
                "wkB/s",
                "r_await",
                "w_await",
                "aqu-sz",
                "%util",
                "PSI io ms",
            ],
            samples
                .iter()
                .map(|r| {
                    let d = r.sections.disks.first();
                    vec![
                        hhmmss(&r.window.end),
                        d.map(|d| s(&d.device)).unwrap_or_else(|| "(idle)".into()),
                        o1(d.map(|d| d.r_per_s)),
                        o1(d.map(|d| d.w_per_s)),
                        o1(d.map(|d| d.rkb_per_s)),
                        o1(d.map(|d| d.wkb_per_s)),
                        o1(d.and_then(|d| d.r_await_ms)),
                        o1(d.and_then(|d| d.w_await_ms)),
                        o1(d.map(|d| d.aqu_sz)),
                        o1(d.map(|d| d.util_pct)),
                        o1(r.sections
                            .disk_detail
                            .as_ref()
                            .and_then(|d| d.psi_some_stall_ms)),
                    ]
                })
                .collect(),
        ),
        _ => (
            vec![
                "time",
                "rx kB/s",
                "tx kB/s",
                "retrans/s",
                "estab",
                "CLOSE_WAIT",
                "TIME_WAIT",
                "ovfl/s",
                "udp rbuf/s",
                "drops/s",
            ],
            samples
                .iter()
                .map(|r| {
                    let own: Vec<_> = r
                        .sections
                        .interfaces
                        .iter()
                        .filter(|i| i.namespace == "own")
                        .collect();
                    let t = r.sections.tcp.iter().find(|t| t.namespace == "own");
                    let n = r.sections.net_detail.as_ref();
                    vec![
                        hhmmss(&r.window.end),
                        f1(sum(own.iter().map(|i| i.rx_kb_per_s))),
                        f1(sum(own.iter().map(|i| i.tx_kb_per_s))),
                        o1(t.and_then(|t| t.retrans_segs_per_s)),
                        ou(t.and_then(|t| t.established)),
                        ou(n.and_then(|n| n.close_wait_end)),
                        ou(t.and_then(|t| t.time_wait)),
                        o1(t.and_then(|t| t.listen_overflows_per_s)),
                        o1(n.and_then(|n| n.counters.udp_rcvbuf_errors_per_s)),
                        f1(sum(own.iter().map(|i| i.rx_drops_per_s + i.tx_drops_per_s))),
                    ]
                })
                .collect(),
        ),
    }
}

pub fn series_table(series: &Series) -> String {
    let mut out = String::new();
    let Some(first) = series.samples.first() else {
        return "no window measured\n".into();
    };
    let _ = writeln!(
        out,
        "triage {} on {}: {} windows of {:.2} s",
        series.command,
        s(&first.host.hostname),
        series.count,
        series.interval_s
    );
    let (headers, rows) = series_parts(&series.command, &series.samples);
    let mut t = new_table(&headers);
    for row in rows {
        t.add_row(row);
    }
    for part in super::table::fit(&t, super::table::width()) {
        for line in part.to_string().lines() {
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out.push_str(&series_findings(series));
    out
}

/// The findings seen in any window of a series, the most severe occurrence of each. One entry
/// per finding and subject (the process that grew, the device that queued): a finding about
/// another process in another window is another entry, and the one seen in the most windows
/// comes first.
pub fn series_findings(series: &Series) -> String {
    let mut out = String::new();
    let mut seen: Vec<(
        String,
        Severity,
        String,
        usize,
        &crate::model::report::Subject,
    )> = Vec::new();
    for r in &series.samples {
        for f in r
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
        {
            match seen.iter_mut().find(|x| x.0 == f.id && *x.4 == f.subject) {
                Some(x) => {
                    x.3 += 1;
                    if f.severity >= x.1 {
                        (x.1, x.2) = (f.severity, f.summary.clone());
                    }
                }
                None => seen.push((f.id.clone(), f.severity, f.summary.clone(), 1, &f.subject)),
            }
        }
    }
    seen.sort_by(|a, b| b.3.cmp(&a.3).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    let seen: Vec<(String, Severity, String, usize)> =
        seen.into_iter().map(|x| (x.0, x.1, x.2, x.3)).collect();
    let _ = writeln!(out, "\nFINDINGS (in any window)");
    if seen.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (id, sev, summary, n) in seen {
        let tag = if sev == Severity::Critical {
            "CRIT"
        } else {
            "WARN"
        };
        wrap(
            &mut out,
            &format!("  {tag}"),
            "       ",
            &format!("{} [{id}, {n} of {} windows]", s(&summary), series.count),
        );
    }
    out
}
