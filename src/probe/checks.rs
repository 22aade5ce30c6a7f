//! Preflight: what this box allows a tracer to do (BTF, tracefs, lockdown, effective
//! capabilities, the BPF/perf sysctls, memlock, cgroup layout, container and namespaces).
//!
//! Invariants:
//! - Every fact is read through a [`Source`] (files relative to the root), so a fixture tree
//!   drives it in tests; nothing here changes any system setting.
//! - Privilege is judged from the **effective capabilities** of this process
//!   (`proc/self/status` CapEff), never from uid 0: a root process without CAP_BPF cannot load
//!   probes, and a non-root process with CAP_BPF + CAP_PERFMON can.
//! - A fact that cannot be read is `None` (unknown), never a guess.

use procfs_core::process::MountInfo;
use serde::{Deserialize, Serialize};

use crate::collect::{cgroup, Problem};
use crate::host::Source;

/// Capability bits (linux/capability.h) that matter to triage, with their names.
pub const CAPS: &[(u32, &str)] = &[
    (39, "CAP_BPF"),
    (38, "CAP_PERFMON"),
    (21, "CAP_SYS_ADMIN"),
    (34, "CAP_SYSLOG"),
    (19, "CAP_SYS_PTRACE"),
    (2, "CAP_DAC_READ_SEARCH"),
    (24, "CAP_SYS_RESOURCE"),
];

/// The inode of the initial PID namespace (`PROC_PID_INIT_INO`, fixed since Linux 3.8): lets us
/// tell whether we are in it even when `proc/1/ns/pid` cannot be read.
const PROC_PID_INIT_INO: &str = "pid:[4026531836]";

/// The exact command that lets triage load probes without running as root.
pub const SETCAP_FIX: &str = "run as root or grant CAP_BPF and CAP_PERFMON: \
     sudo setcap cap_bpf,cap_perfmon+ep $(which triage)";

/// Facts about what this box allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Preflight {
    /// `proc/sys/kernel/osrelease`.
    pub kernel: Option<String>,
    /// `sys/kernel/btf/vmlinux` exists (CO-RE programs need it).
    pub btf: bool,
    /// Where tracefs is mounted (from `proc/self/mountinfo`), None = not mounted.
    pub tracefs: Option<String>,
    /// Where debugfs is mounted, None = not mounted.
    pub debugfs: Option<String>,
    /// The `[selected]` mode in `sys/kernel/security/lockdown`; None if the file is absent.
    pub lockdown: Option<String>,
    /// The effective capability mask of this process (`proc/self/status` CapEff).
    pub cap_eff: Option<u64>,
    /// Names of the relevant effective capabilities present ([`CAPS`] order).
    pub caps: Vec<String>,
    pub unprivileged_bpf_disabled: Option<u32>,
    pub perf_event_paranoid: Option<i32>,
    pub kptr_restrict: Option<u32>,
    pub dmesg_restrict: Option<u32>,
    /// The soft "Max locked memory" of this process (`proc/self/limits`): `8388608 bytes`,
    /// `unlimited`.
    pub memlock_limit: Option<String>,
    /// `v1`, `v2`, `hybrid`, `none` (or `unknown` when mountinfo is unreadable).
    pub cgroup_mode: String,
    /// Why we think we run in a container, None if nothing says so.
    pub container: Option<String>,
    /// Whether we share PID 1's PID namespace (None: cannot tell).
    pub pid_ns_is_init: Option<bool>,
    /// Whether we share PID 1's network namespace (None: cannot tell).
    pub net_ns_is_init: Option<bool>,
}

/// Read every preflight fact through `src`. Never fails: what cannot be read is None.
pub fn check(src: &dyn Source) -> Preflight {
    let text = |p: &str| src.read_string(p).ok();
    let num = |p: &str| text(p).and_then(|s| s.trim().parse::<i64>().ok());
    let unum = |p: &str| num(p).and_then(|v| u32::try_from(v).ok());

    let mountinfo = text("proc/self/mountinfo").unwrap_or_default();
    let cap_eff = text("proc/self/status").and_then(|s| parse_cap_eff(&s));
    let (cgroup_mode, container) = match cgroup::layout(src) {
        Ok(l) => (
            l.mode.as_str().to_string(),
            cgroup::container_evidence(src, &l),
        ),
        Err(_) => ("unknown".to_string(), None),
    };
    Preflight {
        kernel: text("proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        // Listing the directory, not reading the file: vmlinux is several MB.
        btf: src
            .list("sys/kernel/btf")
            .is_ok_and(|names| names.iter().any(|n| n == "vmlinux")),
        tracefs: mount_of(&mountinfo, "tracefs"),
        debugfs: mount_of(&mountinfo, "debugfs"),
        lockdown: text("sys/kernel/security/lockdown").and_then(|s| parse_lockdown(&s)),
        cap_eff,
        caps: cap_eff.map(cap_names).unwrap_or_default(),
        unprivileged_bpf_disabled: unum("proc/sys/kernel/unprivileged_bpf_disabled"),
        perf_event_paranoid: num("proc/sys/kernel/perf_event_paranoid")
            .and_then(|v| i32::try_from(v).ok()),
        kptr_restrict: unum("proc/sys/kernel/kptr_restrict"),
        dmesg_restrict: unum("proc/sys/kernel/dmesg_restrict"),
        memlock_limit: text("proc/self/limits").and_then(|s| parse_memlock(&s)),
        cgroup_mode,
        container,
        pid_ns_is_init: same_ns(src, "pid", Some(PROC_PID_INIT_INO)),
        net_ns_is_init: same_ns(src, "net", None),
    }
}

/// Whether this process has capability `name` (one of [`CAPS`]) in its effective set.
pub fn has_cap(p: &Preflight, name: &str) -> bool {
    p.caps.iter().any(|c| c == name)
}

/// Whether triage's eBPF probes can load here: CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN) in the
/// effective set, kernel BTF, and no lockdown=confidentiality.
pub fn can_bpf(p: &Preflight) -> bool {
    bpf_blockers(p).is_empty()
}

/// The `what` of the missing-kernel-BTF blocker (an external BTF file lifts it).
pub const BTF_BLOCKER: &str = "eBPF: kernel BTF";

/// Every reason eBPF probes cannot run here, each with the exact fix. Empty when they can.
pub fn bpf_blockers(p: &Preflight) -> Vec<Problem> {
    let mut out = Vec::new();
    let privileged =
        (has_cap(p, "CAP_BPF") && has_cap(p, "CAP_PERFMON")) || has_cap(p, "CAP_SYS_ADMIN");
    if !privileged {
        let reason = match p.cap_eff {
            Some(mask) => {
                let missing: Vec<&str> = ["CAP_BPF", "CAP_PERFMON"]
                    .into_iter()
                    .filter(|c| !has_cap(p, c))
                    .collect();
                format!(
                    "effective capabilities {mask:016x} lack {} (and CAP_SYS_ADMIN)",
                    missing.join(" and ")
                )
            }
            None => "effective capabilities unknown (CapEff unreadable)".to_string(),
        };
        out.push(
            Problem::new("eBPF: capabilities", "proc/self/status", reason).with_fix(SETCAP_FIX),
        );
    }
    if !p.btf {
        out.push(
            Problem::new(
                BTF_BLOCKER,
                "sys/kernel/btf/vmlinux",
                "sys/kernel/btf/vmlinux absent (kernel built without BTF type information): \
                 every probe (syscalls, offcpu, latency) relocates its reads against the \
                 kernel's BTF (CO-RE) and cannot load without it",
            )
            .with_fix(format!(
                "inside a container, bind-mount the host's /sys/kernel/btf; otherwise {}",
                crate::probe::btf::WHERE_TO_GET
            )),
        );
    }
    if p.lockdown.as_deref() == Some("confidentiality") {
        out.push(
            Problem::new(
                "eBPF: kernel lockdown",
                "sys/kernel/security/lockdown",
                "lockdown=confidentiality",
            )
            .with_fix(
                "kernel lockdown=confidentiality forbids BPF reading kernel memory: boot with \
                 lockdown=integrity or none (kernel command line lockdown=, or disable Secure \
                 Boot enforcement); it cannot be lowered at run time",
            ),
        );
    }
    out
}

/// The CapEff mask from `proc/PID/status` (hex, e.g. `000001ffffffffff`).
pub fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// Names of the [`CAPS`] set in `mask`.
pub fn cap_names(mask: u64) -> Vec<String> {
    CAPS.iter()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// The bracketed word in `none [integrity] confidentiality`.
pub fn parse_lockdown(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let len = text[start..].find(']')?;
    Some(text[start..start + len].to_string()).filter(|s| !s.is_empty())
}

/// The soft `Max locked memory` limit from `proc/PID/limits`: `8388608 bytes` or `unlimited`.
pub fn parse_memlock(limits: &str) -> Option<String> {
    let rest = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max locked memory"))?;
    let mut words = rest.split_whitespace();
    let soft = words.next()?;
    if soft == "unlimited" {
        return Some(soft.to_string());
    }
    let _hard = words.next();
    match words.next() {
        Some(unit) => Some(format!("{soft} {unit}")),
        None => Some(soft.to_string()),
    }
}

/// The mount point of the first `fs_type` mount in mountinfo, preferring the canonical
/// `/sys/kernel/tracing` / `/sys/kernel/debug` if it is mounted there.
fn mount_of(mountinfo: &str, fs_type: &str) -> Option<String> {
    let canonical = match fs_type {
        "tracefs" => "/sys/kernel/tracing",
        "debugfs" => "/sys/kernel/debug",
        _ => "",
    };
    let mut first = None;
    for line in mountinfo.lines() {
        let Ok(mi) = MountInfo::from_line(line) else {
            continue;
        };
        if mi.fs_type != fs_type {
            continue;
        }
        let mp = mi.mount_point.to_string_lossy().into_owned();
        if mp == canonical {
            return Some(mp);
        }
        first.get_or_insert(mp);
    }
    first
}

/// Whether `proc/self/ns/KIND` is the same namespace as `proc/1/ns/KIND`. When PID 1's link is
/// unreadable (another user's process, or a container without CAP_SYS_PTRACE), a known initial
/// namespace id (`init_id`) still answers; otherwise None.
fn same_ns(src: &dyn Source, kind: &str, init_id: Option<&str>) -> Option<bool> {
    let own = src.readlink(&format!("proc/self/ns/{kind}")).ok()?;
    match src.readlink(&format!("proc/1/ns/{kind}")) {
        Ok(init) => Some(own == init),
        Err(_) => init_id.map(|id| own == id),
    }
}

/// Kernel `major.minor` from an osrelease string (`6.1.0-18-amd64` -> (6, 1)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FixtureSource;
    use std::path::Path;

    const MOUNTINFO: &str = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:3 - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
26 24 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:5 - debugfs debugfs rw
27 26 0:12 / /sys/kernel/debug/tracing rw,nosuid,nodev,noexec,relatime shared:6 - tracefs tracefs rw
28 24 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:7 - tracefs tracefs rw
";

    fn put(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn link(root: &Path, rel: &str, target: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    /// A privileged Debian-like box: BTF, tracefs, lockdown none, root's full CapEff.
    fn full_box(root: &Path) {
        put(root, "proc/sys/kernel/osrelease", "6.1.0-18-amd64\n");
        put(root, "sys/kernel/btf/vmlinux", "BTF");
        put(root, "proc/self/mountinfo", MOUNTINFO);
        put(
            root,
            "sys/fs/cgroup/cgroup.controllers",
            "cpu memory io pids\n",
        );
        put(root, "proc/self/cgroup", "0::/user.slice/session-1.scope\n");
        put(
            root,
            "sys/kernel/security/lockdown",
            "[none] integrity confidentiality\n",
        );
        put(
            root,
            "proc/self/status",
            "Name:\ttriage\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
             CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n",
        );
        put(root, "proc/sys/kernel/unprivileged_bpf_disabled", "2\n");
        put(root, "proc/sys/kernel/perf_event_paranoid", "2\n");
        put(root, "proc/sys/kernel/kptr_restrict", "0\n");
        put(root, "proc/sys/kernel/dmesg_restrict", "1\n");
        put(
            root,
            "proc/self/limits",
            "Limit                     Soft Limit           Hard Limit           Units     \n\
             Max cpu time              unlimited            unlimited            seconds   \n\
             Max locked memory         8388608              8388608              bytes     \n",
        );
        link(root, "proc/self/ns/pid", "pid:[4026531836]");
        link(root, "proc/1/ns/pid", "pid:[4026531836]");
        link(root, "proc/self/ns/net", "net:[4026531840]");
        link(root, "proc/1/ns/net", "net:[4026531840]");
    }

    #[test]
    fn privileged_box_facts() {
        let dir = tempfile::tempdir().unwrap();
        full_box(dir.path());
        let p = check(&FixtureSource::open(dir.path()).unwrap());
        assert_eq!(p.kernel.as_deref(), Some("6.1.0-18-amd64"));
        assert!(p.btf);
        assert_eq!(p.tracefs.as_deref(), Some("/sys/kernel/tracing"));
        assert_eq!(p.debugfs.as_deref(), Some("/sys/kernel/debug"));
        assert_eq!(p.lockdown.as_deref(), Some("none"));
        assert_eq!(p.cap_eff, Some(0x1ff_ffff_ffff));
        assert_eq!(
            p.caps,
            [
                "CAP_BPF",
                "CAP_PERFMON",
                "CAP_SYS_ADMIN",
                "CAP_SYSLOG",
                "CAP_SYS_PTRACE",
                "CAP_DAC_READ_SEARCH",
                "CAP_SYS_RESOURCE"
            ]
        );
        assert_eq!(p.unprivileged_bpf_disabled, Some(2));
        assert_eq!(p.perf_event_paranoid, Some(2));
        assert_eq!(p.kptr_restrict, Some(0));
        assert_eq!(p.dmesg_restrict, Some(1));
        assert_eq!(p.memlock_limit.as_deref(), Some("8388608 bytes"));
        assert_eq!(p.cgroup_mode, "v2");
        assert_eq!(p.container, None);
        assert_eq!(p.pid_ns_is_init, Some(true));
        assert_eq!(p.net_ns_is_init, Some(true));
        assert!(can_bpf(&p));
        assert!(bpf_blockers(&p).is_empty());
    }

    #[test]
    fn unprivileged_box_without_btf() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        full_box(root);
        std::fs::remove_file(root.join("sys/kernel/btf/vmlinux")).unwrap();
        put(
            root,
            "proc/self/status",
            "Name:\ttriage\nCapEff:\t0000000000000000\n",
        );
        // Only tracefs under debugfs; PID 1's namespaces unreadable (not created), and a
        // container's own PID namespace.
        put(
            root,
            "proc/self/mountinfo",
            &MOUNTINFO.lines().take(5).collect::<Vec<_>>().join("\n"),
        );
        std::fs::remove_file(root.join("proc/1/ns/pid")).unwrap();
        std::fs::remove_file(root.join("proc/1/ns/net")).unwrap();
        std::fs::remove_file(root.join("proc/self/ns/pid")).unwrap();
        link(root, "proc/self/ns/pid", "pid:[4026532210]");
        put(root, ".dockerenv", "");
        put(
            root,
            "proc/self/limits",
            "Max locked memory         unlimited            unlimited            bytes\n",
        );

        let p = check(&FixtureSource::open(root).unwrap());
        assert!(!p.btf);
        assert_eq!(p.tracefs, None);
        assert_eq!(p.debugfs.as_deref(), Some("/sys/kernel/debug"));
        assert_eq!(p.cap_eff, Some(0));
        assert!(p.caps.is_empty());
        assert_eq!(p.memlock_limit.as_deref(), Some("unlimited"));
        assert_eq!(p.container.as_deref(), Some("/.dockerenv exists"));
        // Known initial PID namespace id says "not init"; the net namespace cannot be told.
        assert_eq!(p.pid_ns_is_init, Some(false));
        assert_eq!(p.net_ns_is_init, None);

        assert!(!can_bpf(&p));
        let b = bpf_blockers(&p);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(b[0].what, "eBPF: capabilities");
        assert!(b[0].reason.contains("lack CAP_BPF and CAP_PERFMON"));
        assert!(b[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("sudo setcap cap_bpf,cap_perfmon+ep $(which triage)"));
        assert_eq!(b[1].what, "eBPF: kernel BTF");
        assert!(b[1]
            .fix
            .as_deref()
            .unwrap()
            .contains("CONFIG_DEBUG_INFO_BTF=y"));
    }

    #[test]
    fn tracefs_only_under_debugfs_is_found_there() {
        let dir = tempfile::tempdir().unwrap();
        full_box(dir.path());
        let mi: Vec<&str> = MOUNTINFO.lines().take(6).collect();
        put(dir.path(), "proc/self/mountinfo", &mi.join("\n"));
        let p = check(&FixtureSource::open(dir.path()).unwrap());
        assert_eq!(p.tracefs.as_deref(), Some("/sys/kernel/debug/tracing"));
    }

    #[test]
    fn lockdown_confidentiality_blocks_even_root() {
        let dir = tempfile::tempdir().unwrap();
        full_box(dir.path());
        put(
            dir.path(),
            "sys/kernel/security/lockdown",
            "none integrity [confidentiality]\n",
        );
        let p = check(&FixtureSource::open(dir.path()).unwrap());
        assert_eq!(p.lockdown.as_deref(), Some("confidentiality"));
        assert!(!can_bpf(&p));
        let b = bpf_blockers(&p);
        assert_eq!(b.len(), 1);
        assert!(b[0]
            .fix
            .as_deref()
            .unwrap()
            .contains("lockdown=confidentiality"));
    }

    #[test]
    fn capabilities_not_uid_decide() {
        // CAP_BPF + CAP_PERFMON alone (a setcap'ed binary run by a user) is enough.
        let mask = (1u64 << 39) | (1u64 << 38);
        let p = Preflight {
            btf: true,
            cap_eff: Some(mask),
            caps: cap_names(mask),
            ..Default::default()
        };
        assert_eq!(p.caps, ["CAP_BPF", "CAP_PERFMON"]);
        assert!(can_bpf(&p));
        // CAP_BPF alone is not (attaching needs CAP_PERFMON).
        let p = Preflight {
            caps: cap_names(1 << 39),
            ..p
        };
        assert!(!can_bpf(&p));
        assert!(bpf_blockers(&p)[0].reason.contains("lack CAP_PERFMON"));
        // CAP_SYS_ADMIN alone is.
        let p = Preflight {
            caps: cap_names(1 << 21),
            ..p
        };
        assert!(can_bpf(&p));
    }

    #[test]
    fn missing_files_are_unknown_not_guessed() {
        let dir = tempfile::tempdir().unwrap();
        let p = check(&FixtureSource::open(dir.path()).unwrap());
        assert_eq!(p.kernel, None);
        assert!(!p.btf);
        assert_eq!(p.lockdown, None);
        assert_eq!(p.cap_eff, None);
        assert_eq!(p.perf_event_paranoid, None);
        assert_eq!(p.memlock_limit, None);
        assert_eq!(p.cgroup_mode, "unknown");
        assert_eq!(p.pid_ns_is_init, None);
        assert!(bpf_blockers(&p)[0].reason.contains("unknown"));
    }

    #[test]
    fn small_parsers() {
        assert_eq!(
            parse_lockdown("[none] integrity confidentiality").as_deref(),
            Some("none")
        );
        assert_eq!(parse_lockdown("garbage"), None);
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(kernel_version("x"), None);
        assert_eq!(
            parse_cap_eff("CapEff:\t000001fffeffffff\n"),
            Some(0x1fffeffffff)
        );
        // Bit 24 (CAP_SYS_RESOURCE) clear, as in an unprivileged-ish container.
        assert!(!cap_names(0x1fffeffffff).contains(&"CAP_SYS_RESOURCE".to_string()));
    }
}
