//! Small shared helpers: where the workspace is, how to call cargo, running a step loudly.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The workspace root, fixed at compile time so xtask works from any current directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
}

/// A `cargo` command run in the workspace root. Uses `$CARGO` (set by `cargo run`) so nested
/// builds use the same toolchain as the one that started xtask.
pub fn cargo() -> Command {
    let bin = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(bin);
    cmd.current_dir(root());
    cmd
}

/// Renders a command the way a user would type it, for progress and error messages.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    if s.ends_with("/cargo") {
        s = "cargo".into();
    }
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$|&;".contains(c)) {
            s.push_str(&format!(" '{}'", arg.replace('\'', r"'\''")));
        } else {
            s.push(' ');
            s.push_str(&arg);
        }
    }
    s
}

/// Runs a step with inherited stdio (so output is live), announcing it on stderr first.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Cargo's target directory as cargo itself resolves it (honours `CARGO_TARGET_DIR` and
/// config), so the binary and bench output are found wherever the build put them.
pub fn target_dir() -> Result<PathBuf> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run `cargo metadata`")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed invalid JSON")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` has no target_directory")
}

/// Builds the release binary and returns its path; `XTASK_TRIAGE_BIN` skips the build and
/// uses that binary instead (to bench an older build against a newer one).
pub fn build_release() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("XTASK_TRIAGE_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        let bin = bin
            .canonicalize()
            .with_context(|| format!("XTASK_TRIAGE_BIN={} not found", bin.display()))?;
        eprintln!(
            "xtask: using XTASK_TRIAGE_BIN={} (not building)",
            bin.display()
        );
        return Ok(bin);
    }
    run(cargo().args(["build", "--release", "-p", "triage"]))?;
    let bin = target_dir()?.join("release").join("triage");
    if !bin.is_file() {
        bail!("the build succeeded but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// Parses the value following a flag, naming the flag in the error.
pub fn parse_value<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T> {
    let Some(v) = value else {
        return crate::usage_err(format!("{flag} needs a value"));
    };
    match v.parse() {
        Ok(x) => Ok(x),
        Err(_) => crate::usage_err(format!("{flag}: invalid value `{v}`")),
    }
}

/// Files and links under `dir` (what git counts), directories not counted.
pub fn count_files(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            n += count_files(&e.path())?;
        } else {
            n += 1;
        }
    }
    Ok(n)
}
