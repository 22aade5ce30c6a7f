//! What must hold before any probe is loaded: capabilities (effective, not uid 0), kernel BTF,
//! lockdown. The checks themselves are `host::preflight`'s, the same ones `triage doctor`
//! shows, so the two can never disagree.

use super::checks as preflight;
use crate::collect::Problem;
use crate::host::LiveSource;

/// Everything that stops the eBPF probes from running here, each with its fix. Empty: go.
/// Probes always run against the running kernel, so this reads the live system.
pub fn bpf_blockers() -> Vec<Problem> {
    preflight::bpf_blockers(&preflight::check(&LiveSource::new("/")))
}
