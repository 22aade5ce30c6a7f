//! `triage doctor`: what this box allows. Kernel, BTF, tracefs/debugfs, lockdown, effective
//! capabilities, the BPF/perf/log sysctls, memlock, cgroup mode, container and namespaces; for
//! each probe whether it really loads and attaches here; and the /proc-side readiness (kernel
//! log, other users' fd tables, PSI). Every problem comes with the exact fix.
//!
//! A report, not a test: it exits 0 whenever it ran, whatever it found (1 only for a `--root`
//! that is not a directory). It changes nothing (no
//! sysctl, no rlimit). Probes go only through [`probe::catalog`] and [`probe::try_attach`].

mod render;

use serde::{Deserialize, Serialize};

use crate::cli::Global;
use crate::collect::Problem;
use crate::host::{LiveSource, Source};
use crate::model::report::Tool;

/// Version of the doctor document (its own: it is not a report).
pub const SCHEMA_VERSION: &str = "1.0";
use crate::probe;
use crate::probe::checks::{self as preflight, has_cap, Preflight};

pub const NAME: &str = "doctor";

pub use crate::cli::DoctorArgs as Args;

/// The `doctor --json` document (see docs/json.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Doctor {
    pub schema_version: String,
    pub tool: Tool,
    /// Always `doctor`.
    pub command: String,
    pub hostname: Option<String>,
    /// The root the facts were read under (`/`, or `--root`).
    pub root: String,
    /// The raw facts.
    pub preflight: Preflight,
    /// Whether triage's eBPF probes can load here (capabilities, BTF, lockdown).
    pub can_bpf: bool,
    /// Why they cannot, each with the fix; empty when `can_bpf`.
    pub bpf_blockers: Vec<Problem>,
    /// One line per fact, judged: `ok` false means something triage needs is missing.
    pub checks: Vec<Check>,
    /// Every probe in this build, tried for real.
    pub probes: Vec<ProbeResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Check {
    /// Stable id: `kernel`, `btf`, `capabilities`, `kernel_log`, ...
    pub name: String,
    pub ok: bool,
    /// What was found, for people.
    pub value: String,
    /// The exact fix when `ok` is false (sometimes advice when it is true).
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProbeResult {
    pub name: String,
    pub what: String,
    pub tracepoints: Vec<String>,
    pub ok: bool,
    /// `tp_btf`, `raw_tp` or `tracepoint`: the attach type that worked.
    pub attach_type: Option<String>,
    pub error: Option<String>,
    pub fix: Option<String>,
}

/// Run `doctor`, print it, return the exit code: 0 when it ran (whatever it found), 1 when the
/// `--root` directory does not exist.
pub fn run(args: &Args, g: &Global, color: bool) -> i32 {
    let base = args.root.clone().unwrap_or_else(|| "/".into());
    if !base.is_dir() {
        eprintln!("triage: {}: not a directory", base.display());
        return 1;
    }
    let src = LiveSource::new(&base);
    let doc = collect(&src, &base.display().to_string());
    let text = if g.json || g.format == crate::cli::Format::Json {
        let mut s = crate::render::to_json_pretty(&doc);
        s.push('\n');
        s
    } else {
        render::render(&doc, color)
    };
    super::print_or_exit_code(&text)
}

/// Everything `doctor` reports, read through `src`; probes are tried on the running kernel.
pub fn collect(src: &dyn Source, root: &str) -> Doctor {
    let pf = preflight::check(src);
    let external_btf = probe::btf::external();
    let blockers =
        probe::preflight::with_external_btf(preflight::bpf_blockers(&pf), external_btf.as_deref());
    let mut checks = fact_checks(&pf);
    if let Some(ext) = &external_btf {
        external_btf_check(&mut checks, ext);
    }
    checks.extend(proc_checks(src, &pf));
    let probes = probe::catalog()
        .into_iter()
        .map(|spec| {
            let c = probe::try_attach(spec.name);
            // A probe that failed for a reason we already know gets that reason's fix.
            let fix = c
                .fix
                .or_else(|| (!c.ok).then(|| blockers.first().and_then(|b| b.fix.clone()))?);
            ProbeResult {
                name: c.name,
                what: spec.what.to_string(),
                tracepoints: spec.tracepoints.iter().map(|t| t.to_string()).collect(),
                ok: c.ok,
                attach_type: c.attach_type,
                error: c.error,
                fix,
            }
        })
        .collect();
    Doctor {
        schema_version: SCHEMA_VERSION.to_string(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: NAME.to_string(),
        hostname: src
            .read_string("proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string()),
        root: root.to_string(),
        can_bpf: blockers.is_empty(),
        bpf_blockers: blockers,
        preflight: pf,
        checks,
        probes,
    }
}

/// The `btf` check when an external BTF file was given: it is what the probes use.
fn external_btf_check(checks: &mut [Check], ext: &std::path::Path) {
    let Some(c) = checks.iter_mut().find(|c| c.name == "btf") else {
        return;
    };
    let kernel = if c.ok {
        "kernel BTF present"
    } else {
        "no kernel BTF"
    };
    match probe::btf::check_file(ext) {
        None => {
            c.ok = true;
            c.value = format!(
                "{kernel}; using external BTF {} (--btf/TRIAGE_BTF; tp_btf needs the kernel's own)",
                ext.display()
            );
            c.fix = None;
        }
        Some(why) => {
            c.ok = false;
            c.value = format!("{kernel}; {why}");
            c.fix = Some(probe::btf::WHERE_TO_GET.to_string());
        }
    }
}

fn check(name: &str, ok: bool, value: impl Into<String>, fix: Option<&str>) -> Check {
    Check {
        name: name.to_string(),
        ok,
        value: value.into(),
        fix: fix.map(str::to_string),
    }
}

const UNKNOWN: &str = "unknown (file unreadable)";

/// The preflight facts, each judged against what triage needs.
pub fn fact_checks(p: &Preflight) -> Vec<Check> {
    let mut out = Vec::new();
    let perfmon = has_cap(p, "CAP_PERFMON") || has_cap(p, "CAP_SYS_ADMIN");
    let bpf = has_cap(p, "CAP_BPF") || has_cap(p, "CAP_SYS_ADMIN");
    let syslog = has_cap(p, "CAP_SYSLOG") || has_cap(p, "CAP_SYS_ADMIN");

    out.push(check(
        "kernel",
        p.kernel.is_some(),
        p.kernel.clone().unwrap_or_else(|| UNKNOWN.into()),
        None,
    ));
    out.push(if p.btf {
        check(
            "btf",
            true,
            "kernel BTF present (/sys/kernel/btf/vmlinux)",
            None,
        )
    } else {
        check(
            "btf",
            false,
            "no kernel BTF (/sys/kernel/btf/vmlinux absent): every probe needs BTF",
            Some(probe::btf::WHERE_TO_GET),
        )
    });
    out.push(match &p.tracefs {
        Some(m) => check("tracefs", true, m.clone(), None),
        None => check(
            "tracefs",
            false,
            "not mounted (needed only by the classic tracepoint/ fallback)",
            Some("mount -t tracefs nodev /sys/kernel/tracing (in a container: bind-mount it)"),
        ),
    });
    out.push(match &p.debugfs {
        Some(m) => check("debugfs", true, m.clone(), None),
        None => check("debugfs", true, "not mounted (not needed)", None),
    });
    out.push(match p.lockdown.as_deref() {
        Some("confidentiality") => check(
            "lockdown",
            false,
            "confidentiality",
            Some(
                "kernel lockdown=confidentiality forbids BPF reading kernel memory: boot with \
                 lockdown=integrity or none",
            ),
        ),
        Some(mode) => check("lockdown", true, mode, None),
        None => check(
            "lockdown",
            true,
            "no lockdown file (securityfs not mounted or no lockdown LSM)",
            None,
        ),
    });

    let cap_value = match p.cap_eff {
        Some(mask) => {
            let missing: Vec<&str> = preflight::CAPS
                .iter()
                .map(|(_, n)| *n)
                .filter(|n| !has_cap(p, n))
                .collect();
            let have = if p.caps.is_empty() {
                "none of the relevant ones".to_string()
            } else {
                p.caps.join(" ")
            };
            let mut v = format!("CapEff {mask:016x}: {have}");
            if !missing.is_empty() {
                v.push_str(&format!("; missing {}", missing.join(" ")));
            }
            v
        }
        None => UNKNOWN.to_string(),
    };
    let caps_ok = (has_cap(p, "CAP_BPF") && perfmon) || has_cap(p, "CAP_SYS_ADMIN");
    out.push(check(
        "capabilities",
        caps_ok,
        cap_value,
        (!caps_ok).then_some(preflight::SETCAP_FIX),
    ));

    out.push(match p.unprivileged_bpf_disabled {
        None => check("unprivileged_bpf_disabled", true, UNKNOWN, None),
        Some(v) => {
            let meaning = match v {
                0 => "unprivileged BPF allowed",
                1 => "unprivileged BPF off until reboot",
                _ => "unprivileged BPF off",
            };
            let ok = v == 0 || bpf;
            check(
                "unprivileged_bpf_disabled",
                ok,
                format!(
                    "{v} ({meaning}{})",
                    if bpf { "; we have CAP_BPF" } else { "" }
                ),
                (!ok).then_some("grant CAP_BPF (triage never changes this sysctl)"),
            )
        }
    });
    out.push(match p.perf_event_paranoid {
        None => check("perf_event_paranoid", true, UNKNOWN, None),
        Some(v) => {
            let ok = v <= -1 || perfmon;
            check(
                "perf_event_paranoid",
                ok,
                format!(
                    "{v}{}",
                    if perfmon {
                        " (we have CAP_PERFMON)"
                    } else {
                        ""
                    }
                ),
                (!ok).then_some(
                    "grant CAP_PERFMON: sudo setcap cap_bpf,cap_perfmon+ep $(which triage) \
                     (triage never changes this sysctl)",
                ),
            )
        }
    });
    out.push(match p.kptr_restrict {
        None => check("kptr_restrict", true, UNKNOWN, None),
        Some(0) => check("kptr_restrict", true, "0 (kernel addresses visible)", None),
        Some(1) if syslog => check(
            "kptr_restrict",
            true,
            "1 (kernel addresses visible to us: CAP_SYSLOG)",
            None,
        ),
        Some(1) => check(
            "kptr_restrict",
            false,
            "1 (kernel addresses hidden without CAP_SYSLOG: no kernel stack symbols)",
            Some("run as root or grant CAP_SYSLOG"),
        ),
        Some(v) => check(
            "kptr_restrict",
            false,
            format!("{v} (kernel addresses hidden from everyone: no kernel stack symbols)"),
            Some("sysctl kernel.kptr_restrict=1 and run with CAP_SYSLOG (triage never changes it)"),
        ),
    });
    out.push(match p.dmesg_restrict {
        None => check("dmesg_restrict", true, UNKNOWN, None),
        Some(0) => check("dmesg_restrict", true, "0 (kernel log open to all)", None),
        Some(v) if syslog => check(
            "dmesg_restrict",
            true,
            format!("{v} (kernel log needs CAP_SYSLOG: we have it)"),
            None,
        ),
        Some(v) => check(
            "dmesg_restrict",
            false,
            format!("{v} (kernel log needs CAP_SYSLOG)"),
            Some("run as root or grant CAP_SYSLOG: sudo setcap cap_syslog+ep $(which triage)"),
        ),
    });

    // Since 5.11 BPF memory is charged to the memory cgroup, not to RLIMIT_MEMLOCK.
    let memcg_accounting = p
        .kernel
        .as_deref()
        .and_then(preflight::kernel_version)
        .is_some_and(|v| v >= (5, 11));
    out.push(match &p.memlock_limit {
        None => check("memlock", true, UNKNOWN, None),
        Some(l) if memcg_accounting => check(
            "memlock",
            true,
            format!("{l} (not used for BPF: kernel >= 5.11 charges BPF memory to the cgroup)"),
            None,
        ),
        Some(l) if l == "unlimited" => check("memlock", true, l.clone(), None),
        Some(l) => check(
            "memlock",
            false,
            format!("{l} (kernel < 5.11 charges BPF maps to this limit)"),
            Some("ulimit -l unlimited before running triage (systemd: LimitMEMLOCK=infinity)"),
        ),
    });
    out.push(check("cgroup_mode", true, p.cgroup_mode.clone(), None));
    out.push(check(
        "container",
        true,
        p.container
            .clone()
            .unwrap_or_else(|| "no evidence of a container".into()),
        None,
    ));
    out.push(match p.pid_ns_is_init {
        Some(true) => check(
            "pid_namespace",
            true,
            "the initial PID namespace (host PIDs)",
            None,
        ),
        Some(false) => check(
            "pid_namespace",
            true,
            "its own: eBPF sees host PIDs, which differ from the PIDs here",
            Some("run in the host PID namespace (docker --pid=host, hostPID: true) to match PIDs"),
        ),
        None => check(
            "pid_namespace",
            true,
            "unknown (proc/1/ns/pid unreadable)",
            None,
        ),
    });
    out.push(match p.net_ns_is_init {
        Some(true) => check("net_namespace", true, "PID 1's", None),
        Some(false) => check(
            "net_namespace",
            true,
            "not PID 1's: TCP counters are this namespace's",
            None,
        ),
        None => check(
            "net_namespace",
            true,
            "unknown (proc/1/ns/net unreadable: other namespaces are read through their processes when allowed)",
            None,
        ),
    });
    out
}

/// The /proc-side readiness, tried for real: the kernel log, other users' fd tables, PSI.
pub fn proc_checks(src: &dyn Source, p: &Preflight) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(match src.kmsg() {
        Ok(b) => check(
            "kernel_log",
            true,
            format!(
                "/dev/kmsg readable ({} records)",
                b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count()
            ),
            None,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
            "kernel_log",
            false,
            "/dev/kmsg absent",
            Some("in a container: bind-mount /dev/kmsg (docker --device /dev/kmsg)"),
        ),
        Err(e) => check(
            "kernel_log",
            false,
            format!("/dev/kmsg: {e}"),
            Some(match p.dmesg_restrict {
                Some(0) => "run as root",
                _ => "kernel.dmesg_restrict=1: run as root or grant CAP_SYSLOG",
            }),
        ),
    });
    out.push(match src.list("proc/1/fd") {
        Ok(fds) => check(
            "other_users_fds",
            true,
            format!("/proc/1/fd readable ({} fds)", fds.len()),
            None,
        ),
        Err(e) => check(
            "other_users_fds",
            false,
            format!("/proc/1/fd: {e} (fd counts of other users' processes not measured)"),
            Some("run as root or grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"),
        ),
    });
    out.push(match src.read("proc/pressure/cpu") {
        Ok(_) => {
            let mut kinds = src.list("proc/pressure").unwrap_or_default();
            kinds.sort();
            check(
                "psi",
                true,
                format!("/proc/pressure: {}", kinds.join(" ")),
                None,
            )
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => check(
            "psi",
            false,
            "no /proc/pressure (kernel without PSI)",
            Some(
                "kernel >= 4.20 with CONFIG_PSI=y (boot with psi=1 if CONFIG_PSI_DEFAULT_DISABLED)",
            ),
        ),
        Err(e) => check(
            "psi",
            false,
            format!("/proc/pressure/cpu: {e}"),
            Some("boot with psi=1 (PSI is built in but disabled)"),
        ),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FixtureSource;

    fn put(root: &std::path::Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    #[test]
    fn unprivileged_box_says_what_is_missing_and_how_to_fix_it() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        put(r, "proc/sys/kernel/osrelease", "5.10.0-28-amd64\n");
        put(r, "proc/sys/kernel/hostname", "db1\n");
        put(r, "proc/self/status", "CapEff:\t0000000000000000\n");
        put(r, "proc/sys/kernel/dmesg_restrict", "1\n");
        put(r, "proc/sys/kernel/perf_event_paranoid", "2\n");
        put(r, "proc/sys/kernel/kptr_restrict", "1\n");
        put(r, "proc/sys/kernel/unprivileged_bpf_disabled", "2\n");
        put(
            r,
            "proc/self/limits",
            "Max locked memory         65536                65536                bytes\n",
        );
        put(
            r,
            "proc/pressure/cpu",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        );
        let d = collect(&FixtureSource::open(r).unwrap(), "/x");
        assert_eq!(d.command, "doctor");
        assert_eq!(d.hostname.as_deref(), Some("db1"));
        assert!(!d.can_bpf);
        let get = |n: &str| d.checks.iter().find(|c| c.name == n).unwrap().clone();
        let caps = get("capabilities");
        assert!(!caps.ok);
        assert!(caps.value.starts_with("CapEff 0000000000000000: none"));
        assert!(caps.fix.unwrap().contains("setcap cap_bpf,cap_perfmon+ep"));
        assert!(!get("btf").ok);
        assert!(!get("dmesg_restrict").fix.unwrap().is_empty());
        assert!(!get("perf_event_paranoid").ok);
        assert!(!get("unprivileged_bpf_disabled").ok);
        assert!(!get("kptr_restrict").ok);
        // 5.10 still charges BPF maps to memlock.
        let m = get("memlock");
        assert!(!m.ok && m.value.starts_with("65536 bytes"));
        assert!(!get("kernel_log").ok);
        assert!(!get("other_users_fds").ok);
        assert!(get("psi").ok);
        assert_eq!(get("psi").value, "/proc/pressure: cpu");
        // Checks have a fixed order and unique names.
        let names: Vec<&str> = d.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names[0], "kernel");
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
