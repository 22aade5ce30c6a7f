//! The verdict of a report: one status and one line, first in every output format, and the
//! exit status scripts test.
//!
//! `incomplete` wins over everything: a report without its core readings (/proc/stat,
//! /proc/meminfo, the CPU list) cannot say "nothing is wrong", whatever its findings say.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::report::{Report, Severity, Subject};
use crate::collect::run::Readings;

#[derive(
    Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No warning or critical finding, and the core readings are there.
    #[default]
    Ok,
    /// The worst finding is a warning.
    Warning,
    /// The worst finding is critical.
    Critical,
    /// Core readings are missing: no verdict can be given (see `missing` and `unavailable`).
    Incomplete,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Incomplete => "incomplete",
        }
    }
}

/// One of the top findings, as scripts need it: what and about what.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct TopFinding {
    pub id: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
}

/// The verdict (`summary` in JSON, the first line of the table and of the markdown).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Summary {
    pub status: Status,
    /// One line for people (system strings in it are sanitized by the renderers).
    pub text: String,
    /// Up to three warning or critical findings, most severe first.
    pub top: Vec<TopFinding>,
    /// Findings by severity: critical, warning, info.
    pub critical: u32,
    pub warning: u32,
    pub info: u32,
    /// The core readings that could not be read (then `status` is `incomplete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// Up to this many findings are named in `top`.
pub const TOP: usize = 3;

/// The core readings absent from `r`: without them a report has no verdict.
pub fn missing_core(r: &Readings) -> Vec<String> {
    let mut m = Vec::new();
    if r.t0.system.stat.is_none() || r.t1.system.stat.is_none() {
        m.push("/proc/stat (CPU and task counters)".to_string());
    }
    if r.t1.system.mem.is_none() {
        m.push("/proc/meminfo (memory)".to_string());
    }
    if r.end.online_cpus.unwrap_or(0) == 0
        && r.t1.system.stat.as_ref().is_none_or(|s| s.cpus.is_empty())
    {
        m.push("the CPU list (/sys/devices/system/cpu/online, /proc/stat)".to_string());
    }
    m
}

/// The verdict of `rep` from its findings; `missing` (core readings not read) makes it
/// `incomplete`.
pub fn summarize(rep: &Report, missing: &[String]) -> Summary {
    let count = |s: Severity| rep.findings.iter().filter(|f| f.severity == s).count() as u32;
    let (critical, warning, info) = (
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info),
    );
    let mut real: Vec<_> = rep
        .findings
        .iter()
        .filter(|f| f.severity >= Severity::Warning)
        .collect();
    // Ranked already; a stable sort keeps the rank within a severity.
    real.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let top: Vec<TopFinding> = real
        .iter()
        .take(TOP)
        .map(|f| TopFinding {
            id: f.id.clone(),
            severity: f.severity,
            subject: f.subject.clone(),
        })
        .collect();
    let status = if !missing.is_empty() {
        Status::Incomplete
    } else if critical > 0 {
        Status::Critical
    } else if warning > 0 {
        Status::Warning
    } else {
        Status::Ok
    };
    let more = |n: usize| {
        if n > 1 {
            let others: Vec<&str> = real
                .iter()
                .skip(1)
                .take(TOP - 1)
                .map(|f| f.id.as_str())
                .collect();
            let rest = n - 1 - others.len();
            format!(
                " (+{} more: {}{})",
                n - 1,
                others.join(", "),
                if rest > 0 { ", ..." } else { "" }
            )
        } else {
            String::new()
        }
    };
    let text = match status {
        Status::Incomplete => format!(
            "INCOMPLETE: could not read {}; no verdict (see what was not measured)",
            missing.join(", ")
        ),
        Status::Ok if info > 0 => format!(
            "OK: no resource is saturated or erroring in this window ({info} informational note{})",
            if info == 1 { "" } else { "s" }
        ),
        Status::Ok => "OK: no resource is saturated or erroring in this window".to_string(),
        Status::Critical | Status::Warning => {
            let first = real[0];
            format!(
                "{}: {} [{}]{}",
                status.name().to_uppercase(),
                first.summary,
                first.id,
                more(real.len())
            )
        }
    };
    Summary {
        status,
        text,
        top,
        critical,
        warning,
        info,
        missing: missing.to_vec(),
    }
}

/// Recompute `rep.summary` after its findings changed (keeps the missing core readings).
pub fn refresh(rep: &mut Report) {
    let missing = std::mem::take(&mut rep.summary.missing);
    rep.summary = summarize(rep, &missing);
}

/// The verdict of a time series: the window with the worst status speaks for it (the first
/// such window), and the text says in how many windows it was seen.
pub fn over_windows(samples: &[Report]) -> Summary {
    let Some(worst) = samples
        .iter()
        .rev()
        .max_by_key(|r| r.summary.status)
        .map(|r| &r.summary)
    else {
        return Summary {
            status: Status::Incomplete,
            text: "INCOMPLETE: no window was measured".into(),
            missing: vec!["every window".into()],
            ..Default::default()
        };
    };
    let n = samples
        .iter()
        .filter(|r| r.summary.status == worst.status)
        .count();
    let mut s = worst.clone();
    if samples.len() > 1 {
        s.text = format!("{} (in {n} of {} windows)", s.text, samples.len());
    }
    s
}
