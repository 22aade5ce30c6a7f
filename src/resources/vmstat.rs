//! vmstat: runnable and blocked tasks sampled in the window, swap and paging, faults, context
//! switches, interrupts, forks, OOM kills and the CPU split, from two snapshots of /proc/stat
//! and /proc/vmstat and the task samples; vmstat's columns. It has no rule of its own: the
//! CPU, memory and tasks rules read it (run queue, swapping, major faults, OOM kills, D state,
//! fork storms).

use serde::{Deserialize, Serialize};

use super::columns::{o1, ou, Column};
use super::cpu::CpuRow;
use crate::collect::run::Readings;
use crate::num::{delta, opt_rate, r2, SatSum};

// ---- section -------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct VmstatSection {
    pub samples: u32,
    /// vmstat `r`: runnable tasks (running + waiting), sampled in the window.
    pub runnable_min: Option<u32>,
    pub runnable_avg: Option<f64>,
    pub runnable_max: Option<u32>,
    /// vmstat `b`: tasks blocked in uninterruptible sleep.
    pub blocked_min: Option<u32>,
    pub blocked_avg: Option<f64>,
    pub blocked_max: Option<u32>,
    pub swap_in_kb_per_s: Option<f64>,
    pub swap_out_kb_per_s: Option<f64>,
    pub page_in_kb_per_s: Option<f64>,
    pub page_out_kb_per_s: Option<f64>,
    pub major_faults_per_s: Option<f64>,
    pub context_switches_per_s: Option<f64>,
    pub interrupts_per_s: Option<f64>,
    pub forks_per_s: Option<f64>,
    /// OOM kills in the window (/proc/vmstat oom_kill, Linux >= 4.13).
    pub oom_kills: Option<u64>,
    pub user_pct: Option<f64>,
    pub system_pct: Option<f64>,
    pub idle_pct: Option<f64>,
    pub iowait_pct: Option<f64>,
    pub steal_pct: Option<f64>,
}

// ---- build ---------------------------------------------------------------------------------

fn ro(v: Option<f64>) -> Option<f64> {
    v.map(r2)
}

fn min_avg_max(v: &[u32]) -> (Option<u32>, Option<f64>, Option<u32>) {
    if v.is_empty() {
        return (None, None, None);
    }
    let sum: u64 = v.iter().map(|&x| x as u64).sat_sum();
    (
        v.iter().min().copied(),
        Some(r2(sum as f64 / v.len() as f64)),
        v.iter().max().copied(),
    )
}

/// The section over the measured window; the CPU split is mpstat's `all` row.
pub fn vmstat(r: &Readings, all: Option<&CpuRow>) -> Option<VmstatSection> {
    let el = r.meta.elapsed_s;
    let (a, b) = (&r.t0.system, &r.t1.system);
    // procs_running counts the reader itself: vmstat's `r` does too; we do not.
    let run: Vec<u32> = r
        .samples
        .iter()
        .map(|s| s.running.saturating_sub(1))
        .collect();
    let blk: Vec<u32> = r.samples.iter().map(|s| s.blocked).collect();
    let (rmin, ravg, rmax) = min_avg_max(&run);
    let (bmin, bavg, bmax) = min_avg_max(&blk);
    let page_kb = r.meta.page_size_bytes as f64 / 1024.0;
    let vm = |k: &str| opt_rate(a.vmstat.get(k).copied(), b.vmstat.get(k).copied(), el);
    let (sa, sb) = (a.stat.as_ref(), b.stat.as_ref());
    Some(VmstatSection {
        samples: r.samples.len() as u32,
        runnable_min: rmin,
        runnable_avg: ravg,
        runnable_max: rmax,
        blocked_min: bmin,
        blocked_avg: bavg,
        blocked_max: bmax,
        swap_in_kb_per_s: ro(vm("pswpin").map(|p| p * page_kb)),
        swap_out_kb_per_s: ro(vm("pswpout").map(|p| p * page_kb)),
        page_in_kb_per_s: ro(vm("pgpgin")),
        page_out_kb_per_s: ro(vm("pgpgout")),
        major_faults_per_s: ro(vm("pgmajfault")),
        context_switches_per_s: ro(opt_rate(
            sa.and_then(|s| s.ctxt),
            sb.and_then(|s| s.ctxt),
            el,
        )),
        interrupts_per_s: ro(opt_rate(
            sa.and_then(|s| s.intr),
            sb.and_then(|s| s.intr),
            el,
        )),
        forks_per_s: ro(opt_rate(
            sa.and_then(|s| s.forks),
            sb.and_then(|s| s.forks),
            el,
        )),
        oom_kills: match (a.vmstat.get("oom_kill"), b.vmstat.get("oom_kill")) {
            (Some(&x), Some(&y)) => delta(x, y),
            _ => None,
        },
        user_pct: all.map(|c| r2(c.usr_pct + c.nice_pct)),
        system_pct: all.map(|c| r2(c.sys_pct + c.irq_pct + c.soft_pct)),
        idle_pct: all.map(|c| c.idle_pct),
        iowait_pct: all.map(|c| c.iowait_pct),
        steal_pct: all.map(|c| c.steal_pct),
    })
}

// ---- columns -------------------------------------------------------------------------------

/// `min/avg/max` of a sampled count.
fn mm(a: Option<u32>, b: Option<f64>, c: Option<u32>) -> String {
    format!(
        "{}/{}/{}",
        ou(a.map(u64::from)),
        o1(b),
        ou(c.map(u64::from))
    )
}

/// The table's title: what `r` and `b` are, and how many samples they come from.
pub fn title(v: &VmstatSection) -> String {
    format!(
        "vmstat (r runnable, b blocked: min/avg/max of {} samples)",
        v.samples
    )
}

/// vmstat: one row, the window.
pub const COLUMNS: &[Column<VmstatSection>] = &[
    Column::left("r", |v| mm(v.runnable_min, v.runnable_avg, v.runnable_max)),
    Column::right("b", |v| mm(v.blocked_min, v.blocked_avg, v.blocked_max)),
    Column::right("si kB/s", |v| o1(v.swap_in_kb_per_s)),
    Column::right("so kB/s", |v| o1(v.swap_out_kb_per_s)),
    Column::right("majflt/s", |v| o1(v.major_faults_per_s)),
    Column::right("cs/s", |v| o1(v.context_switches_per_s.map(f64::round))),
    Column::right("in/s", |v| o1(v.interrupts_per_s.map(f64::round))),
    Column::right("us", |v| o1(v.user_pct)),
    Column::right("sy", |v| o1(v.system_pct)),
    Column::right("id", |v| o1(v.idle_pct)),
    Column::right("wa", |v| o1(v.iowait_pct)),
    Column::right("st", |v| o1(v.steal_pct)),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::system::TaskSample;

    fn readings() -> Readings {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
        let mut r = crate::collect::run::from_fixture(&dir).unwrap();
        r.meta.elapsed_s = 2.0;
        r.meta.page_size_bytes = 4096;
        r
    }

    /// `r` leaves the reader itself out; swap pages become kB over the measured window; a
    /// counter that went backwards gives no rate; the row is vmstat's.
    #[test]
    fn runnable_leaves_the_reader_out_and_rates_use_the_measured_window() {
        let mut r = readings();
        r.samples = [(3, 0), (1, 2), (2, 4)]
            .iter()
            .map(|&(running, blocked)| TaskSample { running, blocked })
            .collect();
        let vm = |r: &mut Readings, k: &str, a: u64, b: u64| {
            r.t0.system.vmstat.insert(k.into(), a);
            r.t1.system.vmstat.insert(k.into(), b);
        };
        vm(&mut r, "pswpin", 1000, 1100);
        vm(&mut r, "pswpout", 500, 400);
        vm(&mut r, "pgmajfault", 10, 31);
        vm(&mut r, "oom_kill", 2, 3);
        let v = vmstat(&r, None).unwrap();
        assert_eq!(v.samples, 3);
        assert_eq!(
            (v.runnable_min, v.runnable_avg, v.runnable_max),
            (Some(0), Some(1.0), Some(2))
        );
        assert_eq!(
            (v.blocked_min, v.blocked_avg, v.blocked_max),
            (Some(0), Some(2.0), Some(4))
        );
        // 100 pages of 4 KiB in 2 s.
        assert_eq!(v.swap_in_kb_per_s, Some(200.0));
        assert_eq!(v.swap_out_kb_per_s, None);
        assert_eq!(v.major_faults_per_s, Some(10.5));
        assert_eq!(v.oom_kills, Some(1));
        assert_eq!(v.user_pct, None);
        let cells = Column::cells(COLUMNS, &v);
        assert_eq!(
            Column::headers(COLUMNS)[..5],
            ["r", "b", "si kB/s", "so kB/s", "majflt/s"]
        );
        assert_eq!(cells[..5], ["0/1.0/2", "0/2.0/4", "200.0", "-", "10.5"]);
        assert_eq!(
            title(&v),
            "vmstat (r runnable, b blocked: min/avg/max of 3 samples)"
        );
    }

    /// No samples: no min/avg/max, shown as dashes.
    #[test]
    fn no_samples_no_runnable() {
        let mut r = readings();
        r.samples.clear();
        let v = vmstat(&r, None).unwrap();
        assert_eq!((v.runnable_min, v.runnable_avg), (None, None));
        assert_eq!(Column::cells(COLUMNS, &v)[0], "-/-/-");
    }
}
