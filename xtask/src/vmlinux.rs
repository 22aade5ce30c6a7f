//! `cargo xtask vmlinux [--btf FILE] [--arch x86|arm64]`: regenerate the committed, pinned
//! `bpf/vmlinux/<arch>/vmlinux_<version>.h` (and its `vmlinux.h` link) from a kernel's BTF
//! with bpftool. Default: this machine's `/sys/kernel/btf/vmlinux` and architecture. The BPF
//! build never reads the build host's BTF itself: the header is an input, reviewed in git.

use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{deps, util};

pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut btf = "/sys/kernel/btf/vmlinux".to_string();
    let mut arch = match std::env::consts::ARCH {
        "aarch64" => "arm64".to_string(),
        _ => "x86".to_string(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--btf" => btf = util::parse_value("--btf", it.next())?,
            "--arch" => arch = util::parse_value("--arch", it.next())?,
            other => return crate::usage_err(format!("vmlinux: unexpected argument `{other}`")),
        }
    }
    if !["x86", "arm64"].contains(&arch.as_str()) {
        return crate::usage_err("vmlinux: --arch is x86 or arm64");
    }
    deps::ensure_packages(&["bpftool"])?;
    let out = Command::new("bpftool")
        .args(["btf", "dump", "file", &btf, "format", "c"])
        .output()
        .context("cannot run bpftool")?;
    if !out.status.success() {
        bail!(
            "bpftool btf dump file {btf} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Name the header after the kernel it came from (major.minor), like libbpf-tools does.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let version: String = if btf == "/sys/kernel/btf/vmlinux" {
        release.split('.').take(2).collect::<Vec<_>>().join(".")
    } else {
        "custom".into()
    };
    let dir = util::root().join("bpf").join("vmlinux").join(&arch);
    std::fs::create_dir_all(&dir)?;
    let file = format!("vmlinux_{version}.h");
    std::fs::write(dir.join(&file), &out.stdout)?;
    let link = dir.join("vmlinux.h");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&file, &link)?;
    println!(
        "wrote bpf/vmlinux/{arch}/{file} ({} bytes); vmlinux.h -> {file}",
        out.stdout.len()
    );
    Ok(ExitCode::SUCCESS)
}
