//! Tasks and processes. So far the row of a task in uninterruptible sleep (D state), which
//! the checklist's processes section and the disk view share, and a process's row (pidstat),
//! which the CPU and memory rules read; the rest of the tasks resource is still in
//! `model::sections` and `model::build`.

use serde::{Deserialize, Serialize};

use super::columns::{s, Align, Column};
use super::contract::Subject;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DTask {
    pub pid: i32,
    pub tid: i32,
    pub comm: String,
    pub wchan: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct ProcRow {
    pub pid: i32,
    pub comm: String,
    pub state: String,
    /// Of one CPU: 200 means two CPUs' worth.
    pub cpu_pct: f64,
    pub usr_pct: f64,
    pub sys_pct: f64,
    pub rss_bytes: u64,
    pub threads: i64,
    pub major_faults_per_s: f64,
    /// The CPU it last ran on at the end of the window (`/proc/PID/stat` field 39).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cpu: Option<u32>,
}

impl ProcRow {
    /// The finding subject naming this process.
    pub fn subject(&self) -> Subject {
        Subject::process(self.pid, &self.comm)
    }
}

/// Tasks in D state, as the disk view lists them.
pub const D_STATE_COLUMNS: &[Column<DTask>] = &[
    Column {
        header: "PID",
        align: Align::Left,
        value: |x| x.pid.to_string(),
    },
    Column {
        header: "TID",
        align: Align::Right,
        value: |x| x.tid.to_string(),
    },
    Column {
        header: "command",
        align: Align::Left,
        value: |x| s(&x.comm),
    },
    Column {
        header: "waiting in",
        align: Align::Left,
        value: |x| s(x.wchan.as_deref().unwrap_or("-")),
    },
];
