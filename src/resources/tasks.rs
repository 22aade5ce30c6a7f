//! Tasks and processes. So far only the row of a task in uninterruptible sleep (D state),
//! which the checklist's processes section and the disk view share; the rest of the tasks
//! resource is still in `model::sections` and `model::build`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DTask {
    pub pid: i32,
    pub tid: i32,
    pub comm: String,
    pub wchan: Option<String>,
}
