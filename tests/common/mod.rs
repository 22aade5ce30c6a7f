//! Helpers shared by the integration tests: the binaries, fixture paths, JSON output, and the
//! privilege gates.
//!
//! A test that needs privileges is `#[ignore = "needs root: ..."]`, so a plain `cargo test`
//! lists it as ignored instead of passing it silently; `cargo xtask test` (CI, as root) runs it
//! with `--include-ignored`. Inside such a test, [`require_bpf`] / [`require_root`] fail loudly
//! when it is run anyway without the privileges it needs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `triage` binary under test.
pub fn triage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_triage"))
}

/// `fixtures/NAME` in the repository.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A copy of `fixtures/NAME` as a plain directory at `DIR/fx` (unpacked when packed), for
/// tests that edit fixture files.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = fixture(name);
    if src.join(triage::host::packed::TREE_FILE).is_file() {
        triage::host::packed::unpack(&src, &d.path().join("fx")).unwrap();
    } else {
        let st = Command::new("cp")
            .arg("-a")
            .arg(&src)
            .arg(d.path().join("fx"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    d
}

/// Every fixture directory (those with a `meta.json`), sorted.
pub fn fixture_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// stdout parsed as JSON, or a panic showing both streams.
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// Effective uid 0.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Fails the test unless the eBPF probes can load here (CAP_BPF+CAP_PERFMON, BTF, the `bpf`
/// feature). Only called from `#[ignore = "needs root: ..."]` tests.
pub fn require_bpf() {
    if !cfg!(feature = "bpf") {
        panic!("this test needs the `bpf` feature (it is #[ignore]d; cargo xtask test runs it as root)");
    }
    let blockers = triage::probe::preflight::bpf_blockers();
    assert!(
        blockers.is_empty(),
        "this test needs root (CAP_BPF+CAP_PERFMON) and BTF; it is #[ignore]d so a plain \
         `cargo test` does not run it; cargo xtask test runs it as root. Blocked by: {blockers:?}"
    );
}

/// Fails the test unless we are root with `setpriv` to drop privileges (util-linux).
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root (it is #[ignore]d; cargo xtask test runs it as root)"
    );
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        setpriv,
        "setpriv (util-linux) is missing: cargo xtask test installs it"
    );
}

/// Mounts tracefs at /sys/kernel/tracing if it is not mounted (root only): the classic
/// tracepoint tests need its event ids.
pub fn ensure_tracefs() {
    if Path::new("/sys/kernel/tracing/events").exists() {
        return;
    }
    let st = Command::new("mount")
        .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
        .status()
        .expect("mount runs");
    assert!(
        st.success() && Path::new("/sys/kernel/tracing/events").exists(),
        "could not mount tracefs at /sys/kernel/tracing"
    );
}

/// Runs `check` on every item and fails once at the end naming each item that failed, so one
/// mismatching snapshot does not hide the rest (what `insta::glob!` does for files).
pub fn check_each<T: std::fmt::Debug>(items: impl IntoIterator<Item = T>, check: impl Fn(&T)) {
    let mut failed = Vec::new();
    let mut n = 0;
    for item in items {
        n += 1;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&item))).is_err() {
            failed.push(format!("{item:?}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {n} case(s) failed: {}",
        failed.len(),
        failed.join(", ")
    );
}

/// The cgroup v2 hierarchy: /sys/fs/cgroup/unified on a hybrid host, else /sys/fs/cgroup.
pub fn cgroup2_mount() -> &'static str {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .find(|m| {
            std::fs::read_to_string("/proc/mounts").is_ok_and(|t| {
                t.lines()
                    .any(|l| l.split_whitespace().nth(1) == Some(m) && l.contains(" cgroup2 "))
            })
        })
        .expect("a cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup")
}

/// Fail with the command's stderr unless it exited 0.
pub fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `triage VIEW --folded --fixture DIR` (a probe view): its lines as (stack, value), each
/// checked to end in a whole number.
pub fn folded_from_fixture(view: &str, fx: &Path) -> Vec<(String, u64)> {
    let out = triage()
        .args([view, "--folded", "--fixture"])
        .arg(fx)
        .output()
        .unwrap();
    succeeded(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let (stack, v) = l.rsplit_once(' ').expect("value at the end");
            let v = v.parse::<u64>().unwrap_or_else(|_| panic!("{l}"));
            (stack.to_string(), v)
        })
        .collect()
}

/// `triage VIEW --json --svg FILE --fixture DIR` (a probe view): the JSON report it printed
/// and the flame graph it drew (checked to be an SVG document).
pub fn svg_from_fixture(view: &str, fx: &Path) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("f.svg");
    let out = triage()
        .args([view, "--json", "--svg"])
        .arg(&svg)
        .arg("--fixture")
        .arg(fx)
        .output()
        .unwrap();
    succeeded(&out);
    let doc = std::fs::read_to_string(&svg).unwrap();
    assert!(doc.starts_with("<?xml"), "{doc}");
    (json(&out), doc)
}

/// Compile the test program `src` (relative to the repository) with `compiler` and `flags`
/// into `dir/out`; the binary's path.
pub fn build_c(compiler: &str, src: &str, flags: &[&str], dir: &Path, out: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let out = dir.join(out);
    let st = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("{compiler} runs: {e}"));
    assert!(st.success(), "{compiler} {}", src.display());
    out
}

/// `tests/offcpu/NAME.c`, built with frame pointers and threads, into `dir`.
pub fn build_offcpu_workload(name: &str, dir: &Path) -> PathBuf {
    build_c(
        "cc",
        &format!("tests/offcpu/{name}.c"),
        &["-O1", "-g", "-fno-omit-frame-pointer", "-pthread"],
        dir,
        name,
    )
}
