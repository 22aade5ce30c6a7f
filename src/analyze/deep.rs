//! The deep views' rules, in order (`cpu_detail`, `mem_detail`, `disk_detail`, `net_detail`):
//! what the checklist cannot see. The rules, their thresholds (with their `why`) and their
//! sections live with their resources (`resources::cpu::deep`, `resources::memory::deep`,
//! `resources::disk`, `resources::sockets`); this only hands each the sections it reads. A
//! section that is absent (not this subcommand, or a fixture without the readings) gives no
//! finding, and a healthy idle box gives none either.

use crate::model::report::{Finding, Host};
use crate::model::sections::Sections;

pub fn findings(sec: &Sections, host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    softirq_rules(sec, host, &mut out);
    mem_rules(sec, &mut out);
    disk_rules(sec, &mut out);
    net_rules(sec, &mut out);
    out
}

/// The cpu view's rule (`resources::cpu::deep`): a softirq type pinned to one CPU.
fn softirq_rules(sec: &Sections, host: &Host, out: &mut Vec<Finding>) {
    if let Some(c) = &sec.cpu_detail {
        crate::resources::cpu::deep::softirq_rule(c, host.online_cpus, out);
    }
}

/// The mem view's rules (`resources::memory::deep`).
fn mem_rules(sec: &Sections, out: &mut Vec<Finding>) {
    if let Some(m) = &sec.mem_detail {
        crate::resources::memory::deep::rules(m, out);
    }
}

/// The disk view's rules (`resources::disk`): cgroups at their I/O limit, await outliers.
fn disk_rules(sec: &Sections, out: &mut Vec<Finding>) {
    let Some(dd) = &sec.disk_detail else {
        return;
    };
    crate::resources::disk::io_cgroup_rule(&dd.cgroups, out);
    crate::resources::disk::await_outlier_rule(&sec.disks, out);
}

/// The net view's rules (`resources::sockets`).
fn net_rules(sec: &Sections, out: &mut Vec<Finding>) {
    if let Some(n) = &sec.net_detail {
        crate::resources::sockets::rules(n, &sec.tcp, out);
    }
}
