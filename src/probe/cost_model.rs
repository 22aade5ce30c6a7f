//! What producing a report cost: triage's own CPU time and peak memory (getrusage), and the
//! time the kernel spent running its eBPF programs (from BPF stats, when the administrator
//! enabled them with `kernel.bpf_stats_enabled`; triage never changes that sysctl).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OwnCost {
    /// triage's CPU time for the whole run (all threads), from getrusage(RUSAGE_SELF).
    pub cpu_user_ms: f64,
    pub cpu_system_ms: f64,
    /// Peak resident memory.
    pub max_rss_kb: u64,
    /// `kernel.bpf_stats_enabled` at the end of the run; null when it could not be read.
    pub bpf_stats_enabled: Option<bool>,
    /// Every eBPF program triage ran: how often it ran and, with BPF stats on, for how long
    /// (in the traced tasks' time, not triage's).
    pub programs: Vec<ProgramCost>,
    /// How each probe's CO-RE relocations were resolved (absent in reports before 1.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub btf: Vec<BtfUse>,
}

/// The BTF a probe's field reads were relocated against.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct BtfUse {
    pub probe: String,
    /// `minimal` (the few hundred kernel types the probe reads, cut from the kernel BTF),
    /// `kernel` (all of it, searched by libbpf), or `external` (`--btf`).
    pub source: String,
    /// Types in the minimal BTF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<u32>,
    /// Why the minimal BTF was not used, when it was tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ProgramCost {
    /// The probe (`latency`, `syscalls`, `offcpu`, `profile`) and the program's name.
    pub probe: String,
    pub program: String,
    /// Instructions the verifier processed to load it.
    pub verified_insns: u32,
    /// Runs and total run time; null without BPF stats (the kernel does not count then).
    pub run_count: Option<u64>,
    pub run_time_ns: Option<u64>,
}

impl OwnCost {
    pub fn cpu_ms(&self) -> f64 {
        self.cpu_user_ms + self.cpu_system_ms
    }
    /// Total run time of the programs, when measured.
    pub fn bpf_run_time_ns(&self) -> Option<u64> {
        if self.bpf_stats_enabled != Some(true) {
            return None;
        }
        Some(self.programs.iter().filter_map(|p| p.run_time_ns).sum())
    }
}
