//! The per-resource part of the report contract: metrics (USE), findings with their subject
//! and evidence, what could not be measured. Resources produce these; `model::report`
//! gathers them into a `Report` (and re-exports them, so `model::report::Finding` still works).

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    Serialize,
    Deserialize,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UseKind {
    Utilization,
    Saturation,
    Errors,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Resource {
    /// `cpu`, `memory`, `swap`, `disk`, `filesystem`, `network`, `tcp`, `file_descriptors`,
    /// `tasks`, `conntrack`, `kernel_log`, `cgroup`.
    pub name: String,
    /// The device, interface, mount, namespace or cgroup; absent for the system-wide resource.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub instance: Option<String>,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Metric {
    /// Stable id with the unit as suffix: `cpu.busy_pct`, `disk.await_ms`.
    pub id: String,
    pub kind: UseKind,
    /// A short label for tables (`busy`, `await`).
    pub label: String,
    pub value: Option<f64>,
    /// `pct`, `per_s`, `count`, `bytes`, `bytes_per_s`, `ms`, `ratio`, `s`.
    pub unit: String,
    /// Why `value` is null.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Where it was read: `/proc/stat`, `/proc/diskstats`, `cgroup:cpu.stat`.
    pub source: String,
}

#[derive(
    Debug,
    Clone,
    Copy,
    Serialize,
    Deserialize,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Finding {
    /// Stable id: `cpu.saturation.runqueue`.
    pub id: String,
    pub severity: Severity,
    pub resource: String,
    /// What the finding is about (process, device, mount, cgroup, socket, syscall): the fields
    /// later code ranks, demotes, scopes and enriches by. Code never parses `summary`.
    #[serde(default, skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
    /// One line a senior engineer would write.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// The next commands to run.
    pub next: Vec<String>,
    /// For ranking: how far the leading evidence is past its threshold (value / threshold).
    pub score: f64,
}

/// The structured subject of a finding: whichever of these apply. Absent fields are omitted
/// from JSON; an empty subject (a system-wide finding) is omitted whole.
#[derive(
    Debug,
    Clone,
    Default,
    Serialize,
    Deserialize,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub struct Subject {
    /// The process (thread group id) the finding blames or is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its command name (`/proc/PID/comm`, sanitized at render time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// The parent process, for findings about what a process spawns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<i32>,
    /// A CPU number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// A block device (`vda`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// A network interface (`eth0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// A mount point (`/srv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// A cgroup path (`/system.slice/nginx.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// A network namespace (`net:[4026531840]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    /// A local address and port (`10.0.0.1:443`, `*:8080`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// A remote address and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// A port, when the finding is about one port rather than one connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A system call name (`futex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<String>,
    /// A kernel log class or other named kind (`oom_kill`, `io_error`, `hung_task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl Subject {
    pub fn is_empty(&self) -> bool {
        *self == Subject::default()
    }

    /// A process subject.
    pub fn process(pid: i32, comm: &str) -> Self {
        Subject {
            pid: Some(pid),
            comm: Some(comm.to_string()),
            ..Default::default()
        }
    }

    /// A block-device subject.
    pub fn device(name: &str) -> Self {
        Subject {
            device: Some(name.to_string()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Evidence {
    /// A metric id, or a threshold name when the evidence is not a metric.
    pub metric: String,
    pub value: f64,
    /// `>`, `>=`, `<`, `<=`.
    pub comparison: String,
    pub threshold: f64,
    pub unit: String,
}

#[derive(
    Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub struct Unavailable {
    /// What could not be measured (`kernel log`, `cgroup cpu.stat`, `/proc/123/fd`).
    pub what: String,
    pub reason: String,
    /// What would fix it, when we know.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<String>,
}

impl Metric {
    pub fn new(
        id: &str,
        kind: UseKind,
        label: &str,
        value: Option<f64>,
        unit: &str,
        source: &str,
    ) -> Self {
        let value = value.filter(|v| v.is_finite());
        Metric {
            id: id.to_string(),
            kind,
            label: label.to_string(),
            value,
            unit: unit.to_string(),
            reason: None,
            source: source.to_string(),
        }
    }

    /// A metric whose value could not be computed.
    pub fn missing(
        id: &str,
        kind: UseKind,
        label: &str,
        unit: &str,
        source: &str,
        reason: impl Into<String>,
    ) -> Self {
        let mut m = Metric::new(id, kind, label, None, unit, source);
        m.reason = Some(reason.into());
        m
    }

    /// A value, or null with a reason when it is absent.
    pub fn maybe(
        id: &str,
        kind: UseKind,
        label: &str,
        value: Option<f64>,
        unit: &str,
        source: &str,
        reason_if_missing: &str,
    ) -> Self {
        match value.filter(|v| v.is_finite()) {
            Some(v) => Metric::new(id, kind, label, Some(v), unit, source),
            None => Metric::missing(id, kind, label, unit, source, reason_if_missing),
        }
    }
}

impl Resource {
    pub fn new(name: &str, instance: Option<String>) -> Self {
        Resource {
            name: name.to_string(),
            instance,
            metrics: Vec::new(),
        }
    }

    pub fn metric(&self, id: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.id == id)
    }
}

impl Finding {
    /// Sets the structured subject (builder style, for the rules).
    pub fn with_subject(mut self, subject: Subject) -> Self {
        self.subject = subject;
        self
    }
}
