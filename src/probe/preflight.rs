//! What must hold before any probe is loaded: capabilities (effective, not uid 0), kernel BTF,
//! lockdown. The checks themselves are [`super::checks`]', the same ones `triage doctor`
//! shows, so the two can never disagree.

use std::path::Path;

use super::checks as preflight;
use crate::collect::Problem;
use crate::host::LiveSource;

/// Everything that stops the eBPF probes from running here, each with its fix. Empty: go.
/// Probes always run against the running kernel, so this reads the live system.
/// An external BTF file (`--btf`, `TRIAGE_BTF`) stands in for a missing kernel BTF; one that
/// cannot be read (or is not BTF) is a blocker of its own.
pub fn bpf_blockers() -> Vec<Problem> {
    with_external_btf(
        preflight::bpf_blockers(&preflight::check(&LiveSource::new("/"))),
        super::btf::external().as_deref(),
    )
}

/// `blockers` adjusted for an external BTF file `ext`.
pub fn with_external_btf(mut blockers: Vec<Problem>, ext: Option<&Path>) -> Vec<Problem> {
    let Some(ext) = ext else {
        return blockers;
    };
    blockers.retain(|b| b.what != preflight::BTF_BLOCKER);
    if let Some(why) = super::btf::check_file(ext) {
        blockers.push(
            Problem::new("eBPF: external BTF", ext.to_string_lossy(), why)
                .with_fix(super::btf::WHERE_TO_GET),
        );
    }
    blockers
}

/// `Err("NAME needs eBPF: <reason> (<fix>)")` when the probes cannot run here: the check every
/// probe command makes before tracing.
pub fn require_bpf(name: &str) -> Result<(), String> {
    match bpf_blockers().first() {
        None => Ok(()),
        Some(b) => {
            let fix = b
                .fix
                .as_deref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            Err(format!("{name} needs eBPF: {}{fix}", b.reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_btf_file_replaces_the_missing_kernel_btf() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("vmlinux.btf");
        std::fs::write(&good, [0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).unwrap();
        let bad = dir.path().join("vmlinux.tar.xz");
        std::fs::write(&bad, b"\xfd7zXZ\0\0\0").unwrap();
        let blockers = || {
            vec![
                Problem::new("eBPF: capabilities", "proc/self/status", "no CAP_BPF"),
                Problem::new(preflight::BTF_BLOCKER, "sys/kernel/btf/vmlinux", "absent"),
            ]
        };
        let whats = |b: Vec<Problem>| b.into_iter().map(|p| p.what).collect::<Vec<_>>();
        assert_eq!(
            whats(with_external_btf(blockers(), None)),
            ["eBPF: capabilities", preflight::BTF_BLOCKER]
        );
        assert_eq!(
            whats(with_external_btf(blockers(), Some(&good))),
            ["eBPF: capabilities"]
        );
        let b = with_external_btf(blockers(), Some(&bad));
        assert_eq!(b[1].what, "eBPF: external BTF");
        assert!(b[1].reason.contains("not a raw BTF file"), "{:?}", b[1]);
        assert!(b[1].fix.as_deref().unwrap().contains("BTFHub"));
    }
}
