//! Readers: raw readings from /proc, /sys, cgroup files and the kernel log, through a
//! [`Source`](crate::host::Source). No arithmetic across time and no opinions here: a reader
//! turns one file into a typed value, or says why it could not.

pub mod cgroup;
pub mod deep;
pub mod iocg;
pub mod kmsg;

use serde::{Deserialize, Serialize};

/// Something a reader could not read or parse. Becomes an `unavailable` entry in the report.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Problem {
    /// What is missing, for people: `kernel log`, `cgroup cpu.stat of /scn-throttle`.
    pub what: String,
    /// The path concerned, relative to the root (`proc/pressure/cpu`).
    pub path: String,
    /// Why: the OS error or the parse error, in words.
    pub reason: String,
    /// What would fix it, when known.
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(
        what: impl Into<String>,
        path: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Problem {
            what: what.into(),
            path: path.into(),
            reason: reason.into(),
            fix: None,
        }
    }

    /// A problem from an I/O error, with a fix suggested for permission errors.
    pub fn io(what: impl Into<String>, path: &str, err: &std::io::Error) -> Self {
        let mut p = Problem::new(what, path, err.to_string());
        if err.kind() == std::io::ErrorKind::PermissionDenied {
            p.fix =
                Some("run as root (or with the capability that grants access to this file)".into());
        }
        p
    }

    /// A problem from a procfs parse error. procfs reports truncated files as an "internal
    /// error" with its own source path; users need to know the file was incomplete.
    pub fn parse(what: impl Into<String>, path: &str, err: &impl std::fmt::Display) -> Self {
        let text = err.to_string();
        let reason = if text.contains("Internal error") || text.contains("NoneError") {
            "truncated or garbled content".to_string()
        } else {
            text.lines().next().unwrap_or("unparseable").to_string()
        };
        Problem::new(what, path, reason)
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

pub mod disk;
pub mod net;
pub mod procs;
pub mod qdisc;
pub mod run;
pub mod system;
pub mod taskdump;
