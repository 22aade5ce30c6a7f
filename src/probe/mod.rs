//! eBPF probes, user side. PLACEHOLDER on the `doctor` branch: the real module (load, attach,
//! read) comes from the eBPF branch with exactly this interface; `triage doctor` only goes
//! through [`catalog`] and [`try_attach`].

/// One probe triage can run.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub name: &'static str,
    /// What it measures, for people.
    pub what: &'static str,
    /// The tracepoints it attaches to.
    pub tracepoints: &'static [&'static str],
}

/// Whether one probe loads and attaches here.
#[derive(Debug, Clone)]
pub struct ProbeCheck {
    pub name: String,
    pub ok: bool,
    /// `tp_btf`, `raw_tp` or `tracepoint` when attached.
    pub attach_type: Option<String>,
    pub error: Option<String>,
    pub fix: Option<String>,
}

/// Every probe in this build.
pub fn catalog() -> Vec<ProbeSpec> {
    Vec::new()
}

/// Load and attach probe `name` for real, then detach it.
pub fn try_attach(name: &str) -> ProbeCheck {
    ProbeCheck {
        name: name.to_string(),
        ok: false,
        attach_type: None,
        error: Some("no probes in this build".to_string()),
        fix: None,
    }
}
