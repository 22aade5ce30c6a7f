//! What must hold before any probe is loaded: capabilities, kernel BTF, lockdown. One small
//! function on purpose: it is to be swapped for `host::preflight` (the `doctor` checks) when
//! both land.

use crate::collect::Problem;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Everything that stops the eBPF probes from running here, each with its fix. Empty: go.
pub fn bpf_blockers() -> Vec<Problem> {
    let mut out = Vec::new();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| cap_eff & (1u64 << c) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
            .iter()
            .filter(|(c, _)| !has(*c))
            .map(|(_, n)| *n)
            .collect();
        out.push(
            Problem::new(
                "eBPF probes",
                "proc/self/status",
                format!(
                    "not privileged: effective capabilities {cap_eff:#x} lack {} (or CAP_SYS_ADMIN)",
                    missing.join(" + ")
                ),
            )
            .with_fix(
                "run as root, or grant CAP_BPF and CAP_PERFMON: \
                 sudo setcap cap_bpf,cap_perfmon+ep $(command -v triage)",
            ),
        );
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        out.push(
            Problem::new(
                "eBPF probes",
                "sys/kernel/btf/vmlinux",
                "the kernel exposes no BTF type information (CONFIG_DEBUG_INFO_BTF is off)",
            )
            .with_fix("use a kernel built with CONFIG_DEBUG_INFO_BTF=y (most distribution kernels since 5.x)"),
        );
    }
    if let Ok(l) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        if l.contains("[confidentiality]") {
            out.push(
                Problem::new(
                    "eBPF probes",
                    "sys/kernel/security/lockdown",
                    "kernel lockdown is in confidentiality mode: BPF may not read kernel memory",
                )
                .with_fix(
                    "boot with lockdown=integrity or none (or disable Secure Boot's lockdown)",
                ),
            );
        }
    }
    out
}
