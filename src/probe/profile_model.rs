//! On-CPU profile data as recorded (`probes/profile.json`) and shown in reports. Stacks are
//! stored symbolized (frames, not addresses: [`Frame`] is the off-CPU probe's), so fixtures
//! replay anywhere without blazesym or BPF. Lists are sorted (most samples first, then ids).

use serde::{Deserialize, Serialize};

pub use super::offcpu_model::Frame;

/// Version of the `probes/profile.json` layout.
pub const PROFILE_FORMAT: u32 = 1;

/// What the sampler saw over its window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfileProbe {
    pub format_version: u32,
    /// `perf_event` (one event per CPU, a BPF program on each).
    pub attach_type: String,
    /// `cpu-clock` (a timer, works everywhere) or `cycles` (the PMU; absent in most VMs).
    pub event: String,
    /// The requested sampling rate per CPU.
    pub frequency_hz: u64,
    pub traced_s: f64,
    pub startup_ms: f64,
    /// `pid 812`, `cgroup /x`, `comm nginx`, or `system-wide`.
    pub scope: String,
    pub user_stacks: bool,
    pub kernel_stacks: bool,
    /// Every sample each CPU took (in scope or not, idle included): the rate check.
    pub per_cpu: Vec<CpuSamples>,
    /// Samples inside the scope (idle included when system-wide).
    pub counted: u64,
    /// One row per (process, thread, CPU, kernel stack, user stack), most samples first.
    pub stacks: Vec<ProfileStack>,
    /// Frames that could not be named (shown as module+offset or an address).
    pub frames_total: u64,
    pub frames_unresolved: u64,
    pub dropped: ProfileDropped,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct CpuSamples {
    pub cpu: u32,
    pub samples: u64,
    /// Samples of the idle task.
    pub idle: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ProfileDropped {
    /// Samples not counted: the (thread, CPU, stacks) map was full.
    pub aggregations: u64,
    /// Stacks lost (counted without them): the stack map was full or two stacks collided.
    pub kernel_stacks: u64,
    pub user_stacks: u64,
    /// Map entries refused because their size was not the BPF side's type.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl ProfileDropped {
    pub fn total(&self) -> u64 {
        self.aggregations + self.kernel_stacks + self.user_stacks
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfileStack {
    /// Process id (tgid) and its name (the main thread's), thread id and name. pid 0 is the
    /// idle task (`swapper/N`).
    pub pid: u32,
    pub process: String,
    pub tid: u32,
    pub thread: String,
    pub cpu: u32,
    pub samples: u64,
    /// Innermost first. Empty kernel: the sample hit user mode.
    pub kernel: Vec<Frame>,
    pub user: Vec<Frame>,
    /// The stack was lost (map full or collision): the samples count, their frames do not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernel_missing: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_missing: bool,
}

/// Functions a complete user stack reaches: the program's or a thread's start. A stack that
/// reaches none of them stopped early: the frame-pointer walk broke in code built without
/// frame pointers.
pub const STACK_ROOTS: &[&str] = &[
    "_start",
    "__libc_start_main",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "thread_start",
    "main",
];

/// Kernel frames that mean the sample was taken while the CPU served softirqs.
pub const SOFTIRQ_FRAMES: &[&str] = &["handle_softirqs", "__do_softirq"];

impl ProfileStack {
    /// The idle task, doing nothing (no softirq work in the stack).
    pub fn is_idle(&self) -> bool {
        self.pid == 0 && self.softirq().is_none()
    }

    /// The sample interrupted kernel code.
    pub fn in_kernel(&self) -> bool {
        !self.kernel.is_empty() || self.kernel_missing
    }

    /// When the CPU was serving softirqs: the handler (`net_rx_action`), the frame the
    /// softirq loop called; `softirq` when it could not be named.
    pub fn softirq(&self) -> Option<String> {
        let i = self.kernel.iter().position(|f| {
            f.func
                .as_deref()
                .is_some_and(|n| SOFTIRQ_FRAMES.contains(&n))
        })?;
        Some(
            i.checked_sub(1)
                .and_then(|j| self.kernel.get(j))
                .and_then(|f| f.func.clone())
                .unwrap_or_else(|| "softirq".into()),
        )
    }

    /// The user stack reaches a known root (or there is none to walk). A stripped C
    /// library does not name its start functions (`__libc_start_call_main`, `start_thread`
    /// are local symbols): an outermost frame inside it, below at least one caller, counts
    /// as the start too.
    pub fn user_complete(&self) -> bool {
        let in_libc = |f: &Frame| {
            f.module.as_deref().is_some_and(|m| {
                let base = m.rsplit('/').next().unwrap_or(m);
                base.starts_with("libc.so") || base.starts_with("libc-")
            })
        };
        self.user.is_empty()
            || self
                .user
                .iter()
                .any(|f| f.func.as_deref().is_some_and(|n| STACK_ROOTS.contains(&n)))
            || (self.user.len() >= 2 && self.user.last().is_some_and(in_libc))
    }

    /// The innermost frame: the function the CPU was executing, and whether it is the
    /// kernel's.
    pub fn leaf(&self) -> Option<(&Frame, bool)> {
        self.kernel
            .first()
            .map(|f| (f, true))
            .or_else(|| self.user.first().map(|f| (f, false)))
    }

    /// Folded line for flame-graph tools: `process;user frames outermost first;kernel frames`
    /// (kernel frames suffixed `_[k]`), then the sample count.
    pub fn folded(&self) -> String {
        use super::offcpu_model::sanitize_folded;
        let mut parts = vec![sanitize_folded(&self.process)];
        for f in self.user.iter().rev() {
            parts.push(sanitize_folded(&f.short()));
        }
        if self.user_missing {
            parts.push("[user stack lost]".into());
        }
        for f in self.kernel.iter().rev() {
            parts.push(format!("{}_[k]", sanitize_folded(&f.short())));
        }
        if self.kernel_missing {
            parts.push("[kernel stack lost]_[k]".into());
        }
        format!("{} {}", parts.join(";"), self.samples)
    }
}

/// Report section for `triage profile`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfileSection {
    /// The probe output; `stacks` cut to the top rows (`stacks_total` says how many there
    /// were), idle-task stacks left out.
    pub probe: ProfileProbe,
    /// Samples of work (in scope, the idle task doing nothing left out): the denominator of
    /// every share below.
    pub samples: u64,
    /// Observed rate: samples per CPU per second, against `probe.frequency_hz`.
    pub rate_hz: f64,
    pub stacks_total: usize,
    pub processes: Vec<ProfProcess>,
    pub threads: Vec<ProfThread>,
    pub functions: Vec<ProfFunction>,
    pub cpus: Vec<ProfCpu>,
    /// Where user stacks stopped early (frame pointers missing), by the module of the last
    /// frame reached.
    pub unwind: Vec<ProfUnwind>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfProcess {
    pub pid: u32,
    pub process: String,
    pub threads: u32,
    pub samples: u64,
    /// Share of all samples of work.
    pub pct: f64,
    /// Average CPUs used over the window (samples / rate / time).
    pub cpus: f64,
    /// Share of its own samples taken in the kernel.
    pub kernel_pct: f64,
    /// Its hottest function (self) and that function's share of its samples.
    pub top_function: Option<String>,
    pub top_function_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfThread {
    pub pid: u32,
    pub process: String,
    pub tid: u32,
    pub thread: String,
    pub samples: u64,
    pub pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfFunction {
    pub function: String,
    /// The file it is in, when known (`[kernel]` for the kernel's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    pub kernel: bool,
    /// Samples with it as the innermost frame, and with it anywhere in the stack.
    pub self_samples: u64,
    pub self_pct: f64,
    pub total_samples: u64,
    pub total_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfCpu {
    pub cpu: u32,
    /// Every sample this CPU took (the rate check), and the split of them.
    pub samples: u64,
    pub idle_pct: f64,
    pub user_pct: f64,
    pub kernel_pct: f64,
    /// Serving softirqs (part of kernel), and the handler with most of it.
    pub softirq_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_softirq: Option<String>,
    pub top_softirq_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProfUnwind {
    pub pid: u32,
    pub process: String,
    /// Samples whose user stack stopped early, of the process's samples with a user stack.
    pub truncated: u64,
    pub with_user_stack: u64,
    /// The module (and function) of the outermost frame reached: where the walk broke.
    pub stopped_in: String,
}
