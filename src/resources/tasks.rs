//! Tasks and processes. So far only the row of a task in uninterruptible sleep (D state),
//! which the checklist's processes section and the disk view share; the rest of the tasks
//! resource is still in `model::sections` and `model::build`.

use serde::{Deserialize, Serialize};

use super::columns::{s, Align, Column};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DTask {
    pub pid: i32,
    pub tid: i32,
    pub comm: String,
    pub wchan: Option<String>,
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
