//! Off-CPU and latency-probe data as recorded (`probes/offcpu.json`, `probes/latency.json`) and
//! shown in reports. Stacks are stored symbolized (frames, not addresses), so fixtures replay
//! anywhere without blazesym or BPF. Lists are sorted (largest first, then by ids).

use crate::num::SatSum;
use serde::{Deserialize, Serialize};

/// Version of the `probes/offcpu.json` layout.
pub const OFFCPU_FORMAT: u32 = 1;
/// Version of the `probes/latency.json` layout.
pub const LATENCY_FORMAT: u32 = 1;

/// What the off-CPU probe saw over its window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OffcpuProbe {
    pub format_version: u32,
    /// `tp_btf` or `raw_tp`.
    pub attach_type: String,
    pub traced_s: f64,
    pub startup_ms: f64,
    /// `pid 812`, `cgroup /x`, or `system-wide`.
    pub scope: String,
    /// Blocks shorter than this were not counted exactly...
    pub min_block_us: u64,
    /// ...but, when this is >= 2, one in `sample_every` of the blocks from `sample_floor_us`
    /// up to `min_block_us` was recorded with weight `sample_every` (so short-block counts and
    /// times are estimates). 0: shorter blocks were ignored.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub sample_every: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample_floor_us: u64,
    pub user_stacks: bool,
    /// One row per (process, thread, kernel stack, user stack, state), most off-CPU time first.
    pub stacks: Vec<OffcpuStack>,
    /// Frames that could not be named (shown as module+offset or an address).
    pub frames_total: u64,
    pub frames_unresolved: u64,
    /// User stacks of one frame or none although the thread has a user part: built without
    /// frame pointers, most likely.
    pub user_stacks_truncated: u64,
    pub dropped: OffcpuDropped,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OffcpuStack {
    /// Process id (tgid) and its name (the main thread's), thread id and name.
    pub pid: u32,
    pub process: String,
    pub tid: u32,
    pub thread: String,
    /// `S` sleeping (interruptible), `D` uninterruptible (I/O), `I` idle-uninterruptible,
    /// `R` preempted, `T` stopped/traced, else the raw state in hex.
    pub state: String,
    pub total_ns: u64,
    pub count: u64,
    pub max_ns: u64,
    /// Of `count`, the blocks a timer's expiry ended (a timeout or a sleep running out), not
    /// another task's wakeup; and their time. Absent in recordings made before this was
    /// measured (then every block counts as woken by another task).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timer_count: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timer_ns: u64,
    /// Innermost first.
    pub kernel: Vec<Frame>,
    pub user: Vec<Frame>,
    /// The kernel stack was not captured (stack map full or collision).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernel_missing: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_missing: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Frame {
    /// Function name (demangled), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func: Option<String>,
    /// Offset into the function, or into the module when the function is unknown.
    pub offset: u64,
    /// File the code is in (`/usr/lib/x86_64-linux-gnu/libc.so.6`, `[kernel]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

impl Frame {
    pub fn resolved(&self) -> bool {
        self.func.is_some()
    }
    /// `func+0x1a`, else `module+0x1234`, else `0xADDR`.
    pub fn label(&self) -> String {
        match (&self.func, &self.module) {
            (Some(f), _) => format!("{f}+{:#x}", self.offset),
            (None, Some(m)) => {
                let base = m.rsplit('/').next().unwrap_or(m);
                format!("{base}+{:#x}", self.offset)
            }
            (None, None) => format!("{:#x}", self.offset),
        }
    }
    /// The name alone, for folded stacks and findings.
    pub fn short(&self) -> String {
        match &self.func {
            Some(f) => f.clone(),
            None => self.label(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct OffcpuDropped {
    /// Switch-outs not recorded: the per-thread start map was full.
    pub start_records: u64,
    /// Blocks not aggregated: the (thread, stacks, state) map was full.
    pub aggregations: u64,
    /// Kernel/user stacks not captured: the stack map was full or two stacks collided.
    pub kernel_stacks: u64,
    pub user_stacks: u64,
    /// Map entries refused because their size was not the BPF side's type.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
}

impl OffcpuDropped {
    pub fn total(&self) -> u64 {
        use crate::num::SatSum;
        [
            self.start_records,
            self.aggregations,
            self.kernel_stacks,
            self.user_stacks,
        ]
        .into_iter()
        .sat_sum()
    }
}

impl OffcpuStack {
    pub fn total_ms(&self) -> f64 {
        self.total_ns as f64 / 1e6
    }
    /// Does any frame (kernel or user) contain `needle`?
    pub fn has_frame(&self, needle: &str) -> bool {
        self.kernel
            .iter()
            .chain(self.user.iter())
            .any(|f| f.func.as_deref().is_some_and(|n| n.contains(needle)))
    }
    /// Folded line for flame-graph tools: `process;user frames outermost first;kernel frames`
    /// (kernel frames suffixed `_[k]`), then the off-CPU microseconds.
    pub fn folded(&self) -> String {
        let mut parts = vec![sanitize_folded(&self.process)];
        for f in self.user.iter().rev() {
            parts.push(sanitize_folded(&f.short()));
        }
        if self.user.is_empty() && !self.user_missing {
            // kernel thread or no user stack
        }
        parts.push(format!("[{}]", sanitize_folded(&self.state)));
        for f in self.kernel.iter().rev() {
            parts.push(format!("{}_[k]", sanitize_folded(&f.short())));
        }
        format!("{} {}", parts.join(";"), self.total_ns / 1000)
    }
}

/// `;` separates frames and the last space the value: neither may appear inside a frame.
/// Bidi controls and invisible characters (which would reorder or hide text in a flame graph)
/// become a visible `\u{...}`.
pub(crate) fn sanitize_folded(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ';' => out.push(':'),
            c if crate::text::is_invisible(c) && !c.is_control() => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c if c.is_whitespace() || c.is_control() => out.push('_'),
            c => out.push(c),
        }
    }
    out
}

/// The state letter for a raw `prev_state` at switch-out.
pub fn state_letter(raw: u32) -> String {
    const INTERRUPTIBLE: u32 = 0x1;
    const UNINTERRUPTIBLE: u32 = 0x2;
    const STOPPED: u32 = 0x4;
    const TRACED: u32 = 0x8;
    const NOLOAD: u32 = 0x400;
    if raw == 0 {
        "R".into()
    } else if raw & UNINTERRUPTIBLE != 0 && raw & NOLOAD != 0 {
        "I".into()
    } else if raw & UNINTERRUPTIBLE != 0 {
        "D".into()
    } else if raw & INTERRUPTIBLE != 0 {
        "S".into()
    } else if raw & (STOPPED | TRACED) != 0 {
        "T".into()
    } else {
        format!("{raw:#x}")
    }
}

/// One log2 histogram in nanoseconds: slot i holds [2^i, 2^(i+1)) ns, trailing zeros cut.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct LatHist {
    pub count: u64,
    pub sum_ns: u64,
    pub max_ns: u64,
    pub slots: Vec<u64>,
}

/// Slots the BPF side has (bpf/latency.h LAT_SLOTS).
pub const LAT_SLOTS: usize = 36;

impl LatHist {
    pub fn merge(&mut self, o: &LatHist) {
        self.count = self.count.saturating_add(o.count);
        self.sum_ns = self.sum_ns.saturating_add(o.sum_ns);
        self.max_ns = self.max_ns.max(o.max_ns);
        if self.slots.len() < o.slots.len() {
            self.slots.resize(o.slots.len(), 0);
        }
        for (a, b) in self.slots.iter_mut().zip(&o.slots) {
            *a = a.saturating_add(*b);
        }
    }
    /// Upper bound of the bucket holding percentile `p` (bucket-bounded estimate), ns.
    pub fn pct_hi_ns(&self, p: f64) -> Option<u64> {
        let q = crate::probe::hist::percentile(&self.slots, p, LAT_SLOTS)?;
        Some(q.hi_ns.unwrap_or(self.max_ns).min(self.max_ns.max(q.lo_ns)))
    }
    pub fn summary(&self) -> Option<HistSummary> {
        let b = |p: f64| crate::probe::hist::percentile(&self.slots, p, LAT_SLOTS);
        let (p50, p99) = (b(50.0)?, b(99.0)?);
        Some(HistSummary {
            count: self.count,
            avg_us: if self.count > 0 {
                (self.sum_ns as f64 / self.count as f64 / 1e2).round() / 10.0
            } else {
                0.0
            },
            p50_lo_us: p50.lo_ns as f64 / 1e3,
            p50_hi_us: p50.hi_ns.map(|h| h as f64 / 1e3),
            p99_lo_us: p99.lo_ns as f64 / 1e3,
            p99_hi_us: p99.hi_ns.map(|h| h as f64 / 1e3),
            max_us: self.max_ns as f64 / 1e3,
        })
    }
}

/// A histogram's figures for tables and findings. Percentiles are bucket-bounded:
/// the true value lies in `[lo, hi)`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct HistSummary {
    pub count: u64,
    pub avg_us: f64,
    pub p50_lo_us: f64,
    pub p50_hi_us: Option<f64>,
    pub p99_lo_us: f64,
    pub p99_hi_us: Option<f64>,
    pub max_us: f64,
}

/// What the latency probes saw (each part present only when it ran).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LatencyReadings {
    pub format_version: u32,
    pub attach_type: String,
    pub traced_s: f64,
    pub startup_ms: f64,
    /// Run-queue latency per CPU (index = CPU), wakeup/preemption to switch-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runqueue: Option<Vec<LatHist>>,
    /// Block I/O latency, issue to completion, per device and operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<Vec<BlockLat>>,
    /// TCP retransmits per flow, all network namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<Vec<Retransmit>>,
    /// Events lost because a map was full: run-queue starts, block starts, block
    /// histograms, retransmit flows.
    pub dropped: [u64; 4],
    /// Map entries refused because their size was not the BPF side's type.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub decode_errors: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct BlockLat {
    /// `major:minor` of the whole disk, and its name when known (`vda`).
    pub dev: String,
    pub name: Option<String>,
    /// `read`, `write`, `flush`, `discard`, or `op N`.
    pub op: String,
    pub hist: LatHist,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Retransmit {
    /// Network namespace inode.
    pub netns: u64,
    /// `10.200.9.1:40522`.
    pub local: String,
    pub remote: String,
    /// TCP state at the last retransmit (`ESTABLISHED`).
    pub state: String,
    pub count: u64,
}

impl LatencyReadings {
    /// All CPUs' run-queue histograms merged.
    pub fn runqueue_total(&self) -> Option<LatHist> {
        let per = self.runqueue.as_ref()?;
        let mut t = LatHist::default();
        for h in per {
            t.merge(h);
        }
        Some(t)
    }
}

/// Report section for the off-CPU view (`triage offcpu`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OffcpuSection {
    /// The probe output; `stacks` cut to the top rows (`stacks_total` says how many there were).
    pub probe: OffcpuProbe,
    /// Sum of off-CPU time over every stack, ms.
    pub total_ms: f64,
    pub stacks_total: usize,
    /// Per process, most off-CPU thread-time first, split by what it waits for; cut to
    /// `--top` (`processes_total` says how many there were, since 1.2).
    pub processes: Vec<OffcpuProc>,
    #[serde(default)]
    pub processes_total: usize,
}

/// One process's off-CPU thread-time (ms) by kind of wait.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct OffcpuProc {
    pub pid: u32,
    pub process: String,
    pub threads: u32,
    pub total_ms: f64,
    pub lock_ms: f64,
    pub io_ms: f64,
    pub sleep_ms: f64,
    pub net_ms: f64,
    pub poll_ms: f64,
    pub other_ms: f64,
}

/// Report section for the latency probes in sixty-second and the resource views.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct LatencySection {
    /// Run-queue latency, all CPUs then each CPU (`all`, `0`, `1`...).
    pub runqueue: Vec<RunqRow>,
    /// Block I/O latency per device and op.
    pub block: Vec<BlockLatRow>,
    pub retransmits: Vec<Retransmit>,
    pub attach_type: String,
    pub dropped: u64,
    /// Which probes ran (`runqueue`, `block`, `retransmits`): an empty list above means
    /// "nothing in the window", not "not measured".
    #[serde(default)]
    pub probes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct RunqRow {
    /// `all` or the CPU number.
    pub cpu: String,
    pub latency: HistSummary,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct BlockLatRow {
    pub device: String,
    pub op: String,
    pub latency: HistSummary,
}

impl LatencySection {
    pub fn from_readings(r: &LatencyReadings) -> LatencySection {
        let ran = [
            ("runqueue", r.runqueue.is_some()),
            ("block", r.block.is_some()),
            ("retransmits", r.retransmits.is_some()),
        ];
        let mut s = LatencySection {
            attach_type: r.attach_type.clone(),
            dropped: r.dropped.iter().copied().chain([r.decode_errors]).sat_sum(),
            probes: ran
                .iter()
                .filter(|x| x.1)
                .map(|x| x.0.to_string())
                .collect(),
            ..Default::default()
        };
        if let Some(per) = &r.runqueue {
            if let Some(t) = r.runqueue_total().and_then(|t| t.summary()) {
                s.runqueue.push(RunqRow {
                    cpu: "all".into(),
                    latency: t,
                });
            }
            for (cpu, h) in per.iter().enumerate() {
                if let Some(x) = h.summary() {
                    s.runqueue.push(RunqRow {
                        cpu: cpu.to_string(),
                        latency: x,
                    });
                }
            }
        }
        for b in r.block.iter().flatten() {
            if let Some(x) = b.hist.summary() {
                s.block.push(BlockLatRow {
                    device: b.name.clone().unwrap_or_else(|| b.dev.clone()),
                    op: b.op.clone(),
                    latency: x,
                });
            }
        }
        s.retransmits = r.retransmits.clone().unwrap_or_default();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_labels() {
        assert_eq!(state_letter(0), "R");
        assert_eq!(state_letter(1), "S");
        assert_eq!(state_letter(2), "D");
        assert_eq!(state_letter(0x402), "I");
        assert_eq!(state_letter(0x102), "D");
        let f = Frame {
            func: None,
            offset: 0x10,
            module: Some("/usr/lib/libc.so.6".into()),
        };
        assert_eq!(f.label(), "libc.so.6+0x10");
        let s = OffcpuStack {
            process: "a b".into(),
            state: "S".into(),
            total_ns: 5_000_000,
            kernel: vec![Frame {
                func: Some("schedule".into()),
                ..Default::default()
            }],
            user: vec![
                Frame {
                    func: Some("nanosleep".into()),
                    ..Default::default()
                },
                Frame {
                    func: Some("main".into()),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(s.folded(), "a_b;main;nanosleep;[S];schedule_[k] 5000");
    }

    #[test]
    fn hist_summary_is_bucket_bounded() {
        let mut h = LatHist {
            count: 100,
            sum_ns: 100 * 1500,
            max_ns: 1900,
            slots: vec![0; 11],
        };
        h.slots[10] = 100;
        let s = h.summary().unwrap();
        assert_eq!((s.p50_lo_us, s.p50_hi_us), (1.024, Some(2.048)));
        assert_eq!(s.max_us, 1.9);
    }
}
