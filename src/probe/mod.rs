//! eBPF probes, user side: preflight checks, load/attach/read (behind the `bpf` feature), and
//! the decoding that needs no BPF at all (histograms, syscall and errno names, the recorded
//! output format), so fixtures replay anywhere.
//!
//! Invariants: probes attach to tracepoints only (tp_btf, else raw_tp, else the classic
//! tracepoint); they aggregate in the kernel in bounded maps read once at the end of the
//! window; whatever was dropped is counted; nothing global (sysctls) is changed; the
//! programs are detached when the probe's function returns, on every path.

pub mod btf;
pub mod checks;
pub mod cost;
pub mod cost_model;
pub mod decode;
pub mod hist;
pub mod kernels;
#[cfg(feature = "bpf")]
pub mod latency;
pub mod minbtf;
pub mod names;
#[cfg(feature = "bpf")]
pub mod offcpu;
pub mod offcpu_model;
pub mod output;
pub mod preflight;
#[cfg(feature = "bpf")]
pub mod profile;
pub mod profile_model;
#[cfg(feature = "bpf")]
pub mod stacks;
#[cfg(feature = "bpf")]
pub mod syscalls;
#[cfg(feature = "bpf")]
pub mod taskiter;
#[cfg(feature = "bpf")]
pub mod tpbtf;

#[cfg(feature = "bpf")]
#[allow(clippy::all, dead_code, unused_imports, non_camel_case_types)]
mod syscalls_skel {
    include!(concat!(env!("OUT_DIR"), "/syscalls.skel.rs"));
}

/// One probe triage can load.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ProbeSpec {
    pub name: &'static str,
    /// What it measures, for people.
    pub what: &'static str,
    pub tracepoints: &'static [&'static str],
}

/// Every probe triage has.
pub fn catalog() -> Vec<ProbeSpec> {
    vec![
        ProbeSpec {
            name: "syscalls",
            what: "syscall counts, errors and latency per process (triage syscalls)",
            tracepoints: &["raw_syscalls:sys_enter", "raw_syscalls:sys_exit"],
        },
        ProbeSpec {
            name: "offcpu",
            what: "off-CPU time by stack and thread state (triage offcpu)",
            tracepoints: &["sched:sched_switch"],
        },
        ProbeSpec {
            name: "profile",
            what: "on-CPU stack samples on every CPU (triage profile)",
            tracepoints: &["perf_event: cpu-clock, one per CPU"],
        },
        ProbeSpec {
            name: "latency",
            what: "run-queue, block I/O latency and TCP retransmits (sixty-second, cpu, disk, net)",
            tracepoints: &[
                "sched:sched_wakeup",
                "sched:sched_wakeup_new",
                "sched:sched_switch",
                "block:block_rq_insert",
                "block:block_rq_issue",
                "block:block_rq_complete",
                "tcp:tcp_retransmit_skb",
            ],
        },
        ProbeSpec {
            name: "tasks",
            what: "process scan through the BPF task iterator instead of /proc \
                   (--task-scan; auto from 600 tasks on)",
            tracepoints: &["iter/task (BPF task iterator, no tracepoint)"],
        },
    ]
}

/// The result of really loading and attaching a probe, then detaching it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ProbeCheck {
    pub name: String,
    pub ok: bool,
    /// `tp_btf`, `raw_tp`, `tracepoint`, `perf_event` or `iter`.
    pub attach_type: Option<String>,
    pub error: Option<String>,
    pub fix: Option<String>,
}

/// Message for builds without eBPF.
pub const NO_BPF: &str = "built without eBPF support (--no-default-features)";

/// Load and attach probe `name` for an instant (it matches no process), then detach.
pub fn try_attach(name: &str) -> ProbeCheck {
    let mut c = ProbeCheck {
        name: name.to_string(),
        ok: false,
        attach_type: None,
        error: None,
        fix: None,
    };
    if !catalog().iter().any(|p| p.name == name) {
        c.error = Some(format!("no probe named {name}"));
        return c;
    }
    #[cfg(not(feature = "bpf"))]
    {
        c.error = Some(NO_BPF.into());
        c.fix =
            Some("rebuild with the default features (needs clang, libelf-dev, zlib1g-dev)".into());
    }
    #[cfg(feature = "bpf")]
    {
        // libbpf's own log stays quiet unless -v was given (set_verbose(true) before).
        set_verbose(VERBOSE.load(std::sync::atomic::Ordering::Relaxed));
        let blockers = preflight::bpf_blockers();
        if let Some(b) = blockers.first() {
            c.error = Some(b.reason.clone());
            c.fix = b.fix.clone();
            return c;
        }
        // Each probe is loaded and attached for real, then detached; a pid no process can
        // have (pid_max <= 2^22) keeps the filtered ones from counting anything meanwhile.
        let attached: Result<String, String> = match name {
            "syscalls" => {
                let opts = syscalls::Options {
                    pid: Some(u32::MAX),
                    latency: true,
                    ..Default::default()
                };
                syscalls::trace(&opts, || ())
                    .map(|(p, ())| p.attach_type)
                    .map_err(|e| e.to_string())
            }
            "offcpu" => {
                let opts = offcpu::Options {
                    pid: Some(u32::MAX),
                    ..Default::default()
                };
                offcpu::trace(&opts, || true)
                    .map(|p| p.attach_type)
                    .map_err(|e| e.to_string())
            }
            "profile" => {
                let opts = profile::Options {
                    pid: Some(u32::MAX),
                    ..Default::default()
                };
                profile::trace(&opts, || true)
                    .map(|p| p.attach_type)
                    .map_err(|e| e.to_string())
            }
            "tasks" => match taskiter::check() {
                Ok(kind) => Ok(kind),
                Err((why, fix)) => {
                    c.fix = fix;
                    Err(why)
                }
            },
            _ => latency::start(&latency::Wanted::all())
                .map(|r| r.finish().attach_type)
                .map_err(|e| e.to_string()),
        };
        match attached {
            Ok(kind) => {
                c.ok = true;
                c.attach_type = Some(kind);
            }
            Err(e) => {
                c.fix = Some(c.fix.take().unwrap_or_else(|| attach_fix(&e)));
                c.error = Some(e);
            }
        }
    }
    c
}

/// A fix for an attach failure, from what libbpf said.
pub fn attach_fix(err: &str) -> String {
    if err.contains("ermission") || err.contains("EPERM") {
        "run as root, or grant CAP_BPF and CAP_PERFMON".into()
    } else if err.contains(kernels::SKIP_ENV) {
        "run a newer kernel (docs/kernels.md lists what each probe needs); the /proc report \
         does not depend on it"
            .into()
    } else {
        "run with -v to see libbpf's log; `triage doctor` checks BTF, capabilities and lockdown"
            .into()
    }
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Route libbpf's own messages to stderr under `-v`, and nowhere otherwise.
/// What a probe was scoped to, as reports say it: `pid 812, cgroup /x, comm nginx`, or
/// `system-wide` (off-CPU and profile alike).
pub fn scope_label(pid: Option<u32>, cgroup: Option<&str>, comm: Option<&str>) -> String {
    let parts: Vec<String> = [
        pid.map(|p| format!("pid {p}")),
        cgroup.map(|c| format!("cgroup {c}")),
        comm.map(|c| format!("comm {c}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "system-wide".into()
    } else {
        parts.join(", ")
    }
}

pub fn set_verbose(v: bool) {
    VERBOSE.store(v, std::sync::atomic::Ordering::Relaxed);
    #[cfg(feature = "bpf")]
    {
        fn print(level: libbpf_rs::PrintLevel, msg: String) {
            if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
                eprint!("libbpf: {level:?}: {msg}");
            }
        }
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, print)));
    }
}

/// The BTF-based attach types a probe tries in order: `TRIAGE_ATTACH=raw_tp` forces the
/// fallback (to test it on a kernel where tp_btf works).
#[cfg(feature = "bpf")]
pub(crate) fn btf_attach_types() -> Vec<&'static str> {
    const TYPES: [&str; 2] = ["tp_btf", "raw_tp"];
    match std::env::var("TRIAGE_ATTACH") {
        Ok(k) => TYPES.iter().copied().filter(|t| *t == k).collect(),
        Err(_) => TYPES.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_labels() {
        assert_eq!(scope_label(None, None, None), "system-wide");
        assert_eq!(scope_label(Some(812), None, None), "pid 812");
        assert_eq!(
            scope_label(Some(1), Some("/x"), Some("nginx")),
            "pid 1, cgroup /x, comm nginx"
        );
    }

    #[test]
    fn catalog_has_syscalls() {
        let c = catalog();
        assert!(c.iter().any(|p| p.name == "syscalls"));
        assert_eq!(
            try_attach("nope").error.as_deref(),
            Some("no probe named nope")
        );
    }

    #[test]
    fn catalog_lists_the_task_iterator() {
        let c = catalog();
        let names: Vec<&str> = c.iter().map(|p| p.name).collect();
        assert_eq!(names, ["syscalls", "offcpu", "profile", "latency", "tasks"]);
        let t = &c[4];
        assert_eq!(t.tracepoints.len(), 1);
        assert!(t.tracepoints[0].starts_with("iter/task"), "{t:?}");
        assert!(t.what.contains("--task-scan"), "{t:?}");
        // Its kernel floor is in the table like every other probe's.
        assert!(kernels::too_old("tasks", &[], "5.10.0").is_some());
    }

    #[cfg(not(feature = "bpf"))]
    #[test]
    fn without_bpf_try_attach_says_so() {
        let c = try_attach("syscalls");
        assert!(!c.ok);
        assert_eq!(c.error.as_deref(), Some(NO_BPF));
    }

    /// As root, the probe really loads and attaches (and detaches).
    #[cfg(feature = "bpf")]
    #[test]
    #[ignore = "needs root: loads an eBPF probe; cargo xtask test runs it as root"]
    fn try_attach_loads_the_syscall_probe_as_root() {
        let blockers = preflight::bpf_blockers();
        assert!(blockers.is_empty(), "not privileged for BPF: {blockers:?}");
        let c = try_attach("syscalls");
        assert!(c.ok, "{c:?}");
        assert_eq!(c.attach_type.as_deref(), Some("tp_btf"));
    }

    /// As root in the host PID namespace, the task iterator loads, attaches and dumps.
    #[cfg(feature = "bpf")]
    #[test]
    #[ignore = "needs root: loads the BPF task iterator; cargo xtask test runs it as root"]
    fn try_attach_runs_the_task_iterator_as_root() {
        let blockers = preflight::bpf_blockers();
        assert!(blockers.is_empty(), "not privileged for BPF: {blockers:?}");
        let c = try_attach("tasks");
        assert!(c.ok, "{c:?}");
        assert_eq!(c.attach_type.as_deref(), Some("iter"));
        assert_eq!((c.error, c.fix), (None, None));
    }
}
