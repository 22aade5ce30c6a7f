//! What a probe hands back: plain data, serialized as-is into a fixture's
//! `probes/NAME.json`, so a recorded run replays without loading BPF.

use serde::{Deserialize, Serialize};

/// Version of the `probes/syscalls.json` layout; bump when a field changes meaning.
pub const SYSCALLS_FORMAT: u32 = 1;

/// The syscall counter's maps, summed over CPUs, as read once at the end of the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SyscallsProbe {
    pub format_version: u32,
    /// Syscall table the numbers belong to: `x86_64` or `aarch64`.
    pub arch: String,
    /// `tp_btf`, `raw_tp` or `tracepoint`.
    pub attach_type: String,
    /// Whether time in syscall (and the latency histograms) was measured.
    pub latency: bool,
    /// Monotonic seconds from attach to the read of the maps.
    pub traced_s: f64,
    /// Load + attach time.
    pub startup_ms: f64,
    pub scope: Scope,
    /// Capacity of the (process, syscall) map.
    pub max_proc_entries: u32,
    /// Per syscall number, system-wide (within the scope); only numbers that were called.
    pub syscalls: Vec<SyscallTotal>,
    /// Per process (pid + start time), with its syscalls.
    pub processes: Vec<ProcessTotal>,
    /// Failed calls per (syscall, errno).
    pub errnos: Vec<ErrnoCount>,
    pub dropped: Dropped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
}

impl Scope {
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.pid {
            parts.push(format!("pid {p}"));
        }
        if let Some(c) = &self.cgroup {
            parts.push(format!("cgroup {c}"));
        }
        if let Some(c) = &self.comm {
            parts.push(format!("comm {c}"));
        }
        if parts.is_empty() {
            "system-wide".into()
        } else {
            parts.join(", ")
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SyscallTotal {
    pub nr: u32,
    pub count: u64,
    pub errors: u64,
    /// Sum of time in the syscall (latency mode), nanoseconds.
    pub time_ns: u64,
    /// log2 histogram of time in the syscall: slot i counts [2^i, 2^(i+1)) ns. Trailing
    /// empty slots are omitted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ProcessTotal {
    pub pid: u32,
    /// Kernel start time of the process (ns since boot): with `pid`, tells a reused PID apart.
    pub start_ns: u64,
    /// The name when first seen (or after its execve); `None` if the name map was full.
    pub comm: Option<String>,
    pub syscalls: Vec<ProcessSyscall>,
    /// This row is not process `pid` but its children, together: their calls that did not
    /// fit in the per-process table (a storm of short-lived processes fills it). `comm` is
    /// the parent's name.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub children: bool,
    /// For a `children` row: how many exited processes were folded into it (their calls that
    /// overflowed the table are in it too, uncounted here).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exited: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ProcessSyscall {
    pub nr: u32,
    pub count: u64,
    pub errors: u64,
    pub time_ns: u64,
    /// Of `time_ns`, the time in calls that failed (a futex wait that timed out, a wait
    /// interrupted). Absent in recordings made before it was measured.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fail_ns: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ErrnoCount {
    pub nr: u32,
    pub errno: u32,
    pub count: u64,
}

/// Events not recorded because a map was full (or the number was out of range).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Dropped {
    /// Calls missing from the per-process tables (the per-syscall totals still have them).
    pub process_syscalls: u64,
    /// Processes whose name was not recorded.
    pub process_names: u64,
    /// Failed calls missing from the errno table.
    pub errnos: u64,
    /// Calls without a start time, so without latency.
    pub start_times: u64,
    /// Calls whose number is -1 at exit or outside the table: not map drops. Mostly
    /// `rt_sigreturn`, which restores the registers with the number set to -1.
    pub bad_numbers: u64,
    /// Map entries refused because their size was not the BPF side's type (a layout
    /// mismatch between the program and triage): left out of every table.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
}

impl Dropped {
    /// Events lost to full maps (not counting `bad_numbers`).
    pub fn total(&self) -> u64 {
        self.process_syscalls + self.process_names + self.errnos + self.start_times
    }
}
