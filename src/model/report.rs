//! The report: the one contract between analysis and rendering, and the JSON schema.
//!
//! Invariants: every number is over the measured window (never since boot, unless its name says
//! `_total` or `since_boot`); units are in metric ids and field names; a value that could not be
//! computed is `null` with a reason; every list has a deterministic order. Fields are only ever
//! added: `schema_version` changes its major number if one is removed or changes meaning.

use serde::{Deserialize, Serialize};

use super::sections::Sections;

/// Major.minor. Minor bumps add fields; a major bump removes or changes one.
pub const SCHEMA_VERSION: &str = "1.4";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: String,
    pub tool: Tool,
    /// The subcommand that produced the report (`sixty-second`).
    pub command: String,
    /// The verdict: `ok`, `warning`, `critical` or `incomplete`, one line, the top findings
    /// (since 1.2).
    #[serde(default)]
    pub summary: super::summary::Summary,
    pub host: Host,
    pub window: Window,
    /// One entry per resource (and instance), with its USE metrics.
    pub resources: Vec<Resource>,
    /// Ranked: most severe and furthest over its threshold first.
    pub findings: Vec<Finding>,
    /// The checklist's detail tables (per CPU, per disk, top processes, ...).
    pub sections: Sections,
    /// What could not be measured, why, and what would fix it.
    pub unavailable: Vec<Unavailable>,
    /// What producing this report cost (triage's CPU and memory, its eBPF programs' run
    /// time); absent from replayed fixtures' snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<super::cost::OwnCost>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Host {
    pub hostname: String,
    pub kernel: String,
    pub uptime_s: Option<f64>,
    /// CPUs the kernel has online (`/sys/devices/system/cpu/online`).
    pub online_cpus: u32,
    /// CPUs this workload can really use: online, narrowed by cpuset and by a CFS quota.
    pub effective_cpus: f64,
    /// What decided `effective_cpus` (`online`, `cpuset 0-3`, `cpu.max 200000/100000`).
    pub effective_cpus_source: String,
    pub memory_total_bytes: Option<u64>,
    /// The tightest memory limit over the workload's cgroup and its ancestors, if any.
    pub memory_limit_bytes: Option<u64>,
    pub memory_limit_source: Option<String>,
    /// `v1`, `v2`, `hybrid` or `none`; null when the mount table could not be read (or, for
    /// `offcpu` replaying a fixture, was not recorded).
    pub cgroup_mode: Option<String>,
    /// The cgroup triage measures as "own" (v2 path, or the v1 cpu controller's path).
    pub cgroup: Option<String>,
    /// null when it could not be judged (cgroup layout unknown).
    pub in_container: Option<bool>,
    /// Why we think so (`/.dockerenv`, `cgroup path /docker/...`, `container=podman`).
    pub container_evidence: Option<String>,
    /// null when unknown (an `offcpu` fixture records no host facts).
    pub clock_ticks_per_s: Option<u64>,
    pub page_size_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Window {
    /// RFC 3339, UTC.
    pub start: String,
    pub end: String,
    /// Measured on the monotonic clock between the first and last reading; rates divide by it.
    pub elapsed_s: f64,
    /// How many times runnable/blocked tasks were sampled inside the window.
    pub samples: u32,
}

pub use crate::resources::contract::{
    Evidence, Finding, Metric, Resource, Severity, Subject, Unavailable, UseKind,
};

impl Report {
    /// The resource named `name` with `instance`.
    pub fn resource(&self, name: &str, instance: Option<&str>) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| r.name == name && r.instance.as_deref() == instance)
    }

    /// Value of a metric of the system-wide resource `name`.
    pub fn value(&self, name: &str, id: &str) -> Option<f64> {
        self.resource(name, None)?.metric(id)?.value
    }

    /// Exit status for scripts: 0 no warning, 1 a warning or worse was found.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
