//! The probe views of the registry (`offcpu`, `profile`): a view whose reading is one eBPF
//! probe's output rather than a /proc window. One run for all of them, as
//! [`super::pipeline`] is for the window views:
//!
//! ```text
//! plan      the arguments: --record, --fixture, --svg, --folded, --top
//!   -> reading   the probe's output: replayed from DIR/probes/NAME.json (--fixture), or
//!                traced live for the window (preflight, scope, attach, wait, detach) and
//!                stored there (--record)
//!   -> report    the view's own report (findings, section, what was lost)
//!   -> render    folded stacks / an SVG flame graph here; table, JSON... in `commands::run`
//! ```
//!
//! A probe view is a [`ProbeView`] implementation: its registry entry, how its arguments
//! plan a run, how it traces, its folded stacks and flame graph, its report. Also here: what
//! every probe subcommand shares (`syscalls` included): the scope checks (`--pid`,
//! `--cgroup`), the recorded probe file, and the header of a probe-only report.

use std::path::Path;

use super::views::View;
use crate::cli::Global;
use crate::model::report::{Finding, Host, Report, Tool, Unavailable, Window, SCHEMA_VERSION};
use crate::model::sections::Sections;

/// What a probe view's arguments ask of one run.
pub struct Plan<'a> {
    /// `--record DIR`: store the probe output as `DIR/probes/NAME.json`.
    pub record: Option<&'a Path>,
    /// `--fixture DIR`: replay `DIR/probes/NAME.json` instead of tracing.
    pub fixture: Option<&'a Path>,
    /// `--svg FILE`: also draw a flame graph.
    pub svg: Option<&'a Path>,
    /// `--folded`: print folded stacks instead of the report.
    pub folded: bool,
    /// `--top`: rows in the report's lists.
    pub top: usize,
}

/// How a probe view draws its flame graph.
pub struct Flame {
    pub title: &'static str,
    /// What a folded line's value counts (`us`, `samples`).
    pub count_name: &'static str,
    pub palette: inferno::flamegraph::color::BasicPalette,
    /// The error when there is nothing to draw.
    pub empty: &'static str,
}

/// A view whose reading is one probe's output (`offcpu`, `profile`).
pub trait ProbeView {
    type Args;
    /// The probe's output: what is traced, recorded and replayed.
    type Probe: serde::Serialize + serde::de::DeserializeOwned;
    /// The registry entry: its name is the subcommand, the report's `command` and the
    /// recorded file (`probes/NAME.json`).
    const VIEW: &'static View;
    const FLAME: Flame;
    fn plan(a: &Self::Args) -> Plan<'_>;
    /// A scope that names nothing is an error, not an empty report (checked before tracing).
    fn check_scope(_a: &Self::Args) -> Result<(), String> {
        Ok(())
    }
    /// Trace for the window (see [`trace_window`]).
    #[cfg(feature = "bpf")]
    fn trace(a: &Self::Args, g: &Global) -> Result<Self::Probe, String>;
    /// Folded stacks (`proc;frame;frame value`), for `--folded` and the flame graph.
    fn folded(p: &Self::Probe) -> Vec<String>;
    /// The report. `live`: the host facts are this machine's (a replayed fixture gets none,
    /// so snapshots are stable).
    fn report(p: Self::Probe, top: usize, live: bool) -> Report;
}

/// Run a probe view: plan -> reading (fixture or live, recorded) -> report, or folded stacks
/// (printed here; the process exits) and a flame graph.
pub fn run<V: ProbeView>(a: &V::Args, g: &Global) -> Result<Report, String> {
    let plan = V::plan(a);
    let name = V::VIEW.name;
    // The output directory is taken before tracing (created 0700 by us, or empty and ours;
    // files created without following symlinks): a bad one fails fast.
    let record_dir = match plan.record {
        Some(dir) => Some(super::sixty_second::prepare_capture_dir(dir)?),
        None => None,
    };
    let probe: V::Probe = match plan.fixture {
        Some(dir) => load_probe(dir, name)?,
        None => {
            V::check_scope(a)?;
            live::<V>(a, g)?
        }
    };
    if let Some(dir) = &record_dir {
        write_probe(dir, name, &probe)?;
    }
    if let Some(svg) = plan.svg {
        let lines = V::folded(&probe);
        if lines.is_empty() {
            return Err(V::FLAME.empty.into());
        }
        flame_svg(
            &lines,
            V::FLAME.title,
            V::FLAME.count_name,
            V::FLAME.palette,
            svg,
        )?;
    }
    if plan.folded {
        let mut text = String::new();
        for l in V::folded(&probe) {
            text.push_str(&l);
            text.push('\n');
        }
        std::process::exit(super::print_or_exit_code(&text));
    }
    Ok(V::report(probe, plan.top, plan.fixture.is_none()))
}

#[cfg(feature = "bpf")]
fn live<V: ProbeView>(a: &V::Args, g: &Global) -> Result<V::Probe, String> {
    V::trace(a, g)
}

#[cfg(not(feature = "bpf"))]
fn live<V: ProbeView>(_a: &V::Args, _g: &Global) -> Result<V::Probe, String> {
    Err(crate::probe::NO_BPF.into())
}

/// Where a recording keeps probe NAME's output, inside the fixture directory.
pub fn probe_file(name: &str) -> String {
    format!("probes/{name}.json")
}

/// Store probe NAME's output as `DIR/probes/NAME.json` (pretty JSON, one trailing newline).
pub fn write_probe<T: serde::Serialize>(
    dir: &crate::host::outdir::OutDir,
    name: &str,
    probe: &T,
) -> Result<(), String> {
    let json = serde_json::to_string_pretty(probe).map_err(|e| e.to_string())?;
    dir.write(&probe_file(name), (json + "\n").as_bytes())
        .map_err(|e| e.to_string())
}

/// A recorded probe output, `DIR/probes/NAME.json`, read beneath DIR and capped.
pub fn load_probe<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, String> {
    let rel = probe_file(name);
    let path = dir.join(&rel);
    let text =
        crate::host::safe::read_in(dir, &rel).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `--pid` must name a process that exists (pid 0 never does: no /proc/0).
pub fn check_pid(pid: u32) -> Result<(), String> {
    if Path::new(&format!("/proc/{pid}")).exists() {
        Ok(())
    } else {
        Err(format!("--pid {pid}: no such process"))
    }
}

/// A live probe's window: preflight (eBPF allowed here), the scope's cgroup resolved for the
/// in-kernel filter, then `trace(cgroup, stop)` attaches, polls `stop()` until `--duration`
/// (counted from the first poll, after attaching) or Ctrl-C, and detaches. `progress`: a
/// progress line on stderr while it waits. An attach failure says what to do about it.
#[cfg(feature = "bpf")]
pub fn trace_window<T>(
    name: &str,
    g: &Global,
    cgroup: Option<&str>,
    duration_s: f64,
    progress: Option<&str>,
    trace: impl FnOnce(
        Option<(String, u64, u32)>,
        &mut dyn FnMut() -> bool,
    ) -> Result<T, crate::probe::syscalls::AttachFailure>,
) -> Result<T, String> {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    crate::probe::set_verbose(g.verbose);
    crate::probe::preflight::require_bpf(name)?;
    let cgroup = match cgroup {
        Some(c) => Some(resolve_cgroup(c)?),
        None => None,
    };
    let flag = super::interrupt_flag();
    let dur = Duration::from_secs_f64(duration_s.clamp(0.1, 86400.0));
    let mut t0: Option<Instant> = None;
    let mut shown = None;
    let mut stop = || {
        let t = *t0.get_or_insert_with(Instant::now);
        if let Some(what) = progress {
            shown.get_or_insert_with(|| {
                super::output::Progress::start(&format!("{what} ({:.1} s)", dur.as_secs_f64()), dur)
            });
        }
        t.elapsed() >= dur || flag.load(Ordering::Relaxed)
    };
    let traced = trace(cgroup, &mut stop);
    drop(shown);
    traced.map_err(|e| {
        format!(
            "{name} probe did not attach: {e} ({})",
            crate::probe::attach_fix(&e.to_string())
        )
    })
}

/// A cgroup v2 path to (path, id, depth) for the in-kernel filter. The id of a v2 cgroup is
/// its directory's inode number. On a hybrid host the v2 hierarchy is /sys/fs/cgroup/unified.
pub fn resolve_cgroup(path: &str) -> Result<(String, u64, u32), String> {
    use std::os::unix::fs::MetadataExt;

    let rel = path
        .trim_start_matches("/sys/fs/cgroup/unified")
        .trim_start_matches("/sys/fs/cgroup")
        .trim_matches('/');
    for mount in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        if !Path::new(mount).join("cgroup.controllers").exists()
            && !Path::new(mount).join("cgroup.procs").exists()
        {
            continue;
        }
        // Only a v2 hierarchy has cgroup ids that bpf_get_current_cgroup_id sees.
        let is_v2 = std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
            m.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 2 && f[1] == mount && f[2] == "cgroup2"
            })
        });
        if !is_v2 {
            continue;
        }
        let dir = Path::new(mount).join(rel);
        if let Ok(md) = std::fs::metadata(&dir) {
            let level = if rel.is_empty() {
                0
            } else {
                rel.split('/').count() as u32
            };
            return Ok((format!("/{rel}"), md.ino(), level));
        }
    }
    Err(format!(
        "--cgroup {path}: no such cgroup in a cgroup v2 hierarchy (/sys/fs/cgroup or /sys/fs/cgroup/unified)"
    ))
}

/// Draw folded `lines` as an SVG flame graph into `path`.
pub fn flame_svg(
    lines: &[String],
    title: &str,
    count_name: &str,
    palette: inferno::flamegraph::color::BasicPalette,
    path: &Path,
) -> Result<(), String> {
    let mut opts = inferno::flamegraph::Options::default();
    opts.title = title.into();
    opts.count_name = count_name.into();
    opts.colors = inferno::flamegraph::Palette::Basic(palette);
    let f = crate::host::outdir::create_output_file(path).map_err(|e| e.to_string())?;
    let mut w = std::io::BufWriter::new(f);
    inferno::flamegraph::from_lines(&mut opts, lines.iter().map(|s| s.as_str()), &mut w)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // A full disk shows here (BufWriter's drop would swallow it).
    use std::io::Write;
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

/// A probe-only report (no /proc window): the header facts of a window that traced `secs`
/// ending now, the view's findings, sections and what was lost, its summary.
pub fn report(
    view: &View,
    secs: f64,
    live: bool,
    findings: Vec<Finding>,
    sections: Sections,
    unavailable: Vec<Unavailable>,
) -> Report {
    let (host, start, end) = header(secs, live);
    let mut rep = Report {
        schema_version: SCHEMA_VERSION.into(),
        tool: Tool {
            name: "triage".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        command: view.name.into(),
        summary: Default::default(),
        host,
        window: Window {
            start,
            end,
            elapsed_s: (secs * 1000.0).round() / 1000.0,
            samples: 0,
        },
        resources: Vec::new(),
        findings,
        sections,
        unavailable,
        cost: None,
    };
    crate::model::summary::refresh(&mut rep);
    rep
}

/// Host facts and the window's start and end for a probe-only report that traced `secs`
/// ending now. `live`: the host facts are this machine's; a replayed fixture gets none (null,
/// not a made-up value), so snapshots are stable.
pub fn header(secs: f64, live: bool) -> (Host, String, String) {
    if live {
        let online = read_trim("/sys/devices/system/cpu/online");
        let cpus = count_cpus(&online);
        let now = jiff::Timestamp::now();
        let end = now.round(jiff::Unit::Millisecond).unwrap_or(now);
        let start = end
            .checked_sub(jiff::SignedDuration::from_secs_f64(secs))
            .unwrap_or(end);
        let host = Host {
            hostname: read_trim("/proc/sys/kernel/hostname"),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            online_cpus: cpus,
            effective_cpus: cpus as f64,
            effective_cpus_source: format!("online {online}"),
            ..live_host_facts()
        };
        (host, start.to_string(), end.to_string())
    } else {
        let host = Host {
            hostname: "(fixture)".into(),
            kernel: "-".into(),
            effective_cpus_source: "-".into(),
            // Not recorded with the probe: null, not a made-up value.
            ..Default::default()
        };
        (host, "-".into(), "-".into())
    }
}

fn read_trim(p: &str) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host facts every report has, read from this machine the same way the /proc pipeline
/// reads them (unknown ones stay null).
fn live_host_facts() -> Host {
    let src = crate::host::LiveSource::new(std::path::Path::new("/"));
    let layout = crate::collect::cgroup::layout(&src).ok();
    let container = layout
        .as_ref()
        .and_then(|l| crate::collect::cgroup::container_evidence(&src, l));
    let mem_total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    Host {
        memory_total_bytes: mem_total,
        cgroup_mode: layout.as_ref().map(|l| l.mode.as_str().to_string()),
        in_container: layout.as_ref().map(|_| container.is_some()),
        container_evidence: container,
        clock_ticks_per_s: Some(rustix::param::clock_ticks_per_second()),
        page_size_bytes: Some(rustix::param::page_size() as u64),
        ..Default::default()
    }
}

/// CPUs in a list such as `0-3,8`.
fn count_cpus(list: &str) -> u32 {
    list.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('-') {
            Some((a, b)) => match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(a), Ok(b)) if b >= a => b - a + 1,
                _ => 0,
            },
            None => u32::from(p.parse::<u32>().is_ok()),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singles() {
        assert_eq!(count_cpus("0-3,8"), 5);
        assert_eq!(count_cpus("0"), 1);
        assert_eq!(count_cpus(""), 0);
        assert_eq!(count_cpus("3-1,x"), 0);
    }

    #[test]
    fn a_pid_must_exist() {
        assert!(check_pid(std::process::id()).is_ok());
        assert_eq!(check_pid(0).unwrap_err(), "--pid 0: no such process");
    }

    /// A recording is read back as written; a missing one names its path.
    #[test]
    fn a_written_probe_reads_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let out = crate::host::outdir::OutDir::create(&dir).unwrap();
        let probe = crate::model::profile::ProfileProbe {
            frequency_hz: 99,
            scope: "pid 1".into(),
            ..Default::default()
        };
        write_probe(&out, "profile", &probe).unwrap();
        let text = std::fs::read_to_string(dir.join("probes/profile.json")).unwrap();
        assert!(text.ends_with("}\n"), "{text}");
        let back: crate::model::profile::ProfileProbe = load_probe(&dir, "profile").unwrap();
        assert_eq!(back, probe);
        let e = load_probe::<crate::model::profile::ProfileProbe>(&dir, "offcpu").unwrap_err();
        assert!(e.contains("probes/offcpu.json"), "{e}");
    }
}
