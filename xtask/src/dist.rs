//! `cargo xtask dist [--check-repro]`: the release artifacts of one commit.
//!
//! - a fully static x86_64 binary (glibc `+crt-static`, libbpf/libelf/zlib from their static
//!   archives: the `static` feature), built with `[profile.dist]` into `target/dist` so the
//!   normal dynamic dev build and `cargo test` keep their own target directory untouched;
//!   stripped, its debug info split into `triage.debug` (linked by `.gnu_debuglink`);
//! - `triage-VERSION-x86_64-unknown-linux.tar.gz`: the binary, completions and man pages (when
//!   the generators exist), README.md, LICENSE;
//! - `triage_VERSION_amd64.deb` (dpkg-deb): /usr/bin/triage, man pages, completions;
//! - `SHA256SUMS` over the artifacts.
//!
//! Reproducible: the same commit gives byte-identical artifacts. What that takes is listed in
//! [`dist_env`] (paths remapped, SOURCE_DATE_EPOCH from the commit, one codegen unit) and
//! [`tarball`] (sorted entries, fixed mtime, owner 0, gzip without name or time).
//! `--check-repro` builds a second time in a separate target directory and compares.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};

use crate::{deps, usage_err, util};

/// The Rust target of the static binary (glibc; musl is not installable here without rustup
/// downloads, and static glibc works because triage resolves no names through NSS).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";
/// What the artifacts are called: static, so any x86_64 Linux (not just gnu userlands).
pub const PLATFORM: &str = "x86_64-unknown-linux";

/// Packages dist needs beyond the build ones: objcopy/readelf (binutils), dpkg-deb (dpkg);
/// `file` is for tests/dist.rs (what `file` says about the binary).
const PACKAGES: &[&str] = &["binutils", "dpkg", "tar", "gzip", "file"];

/// Where the artifacts land.
pub fn out_dir() -> PathBuf {
    util::root().join("target/dist/out")
}

pub fn run(args: &[String]) -> Result<std::process::ExitCode> {
    let mut check_repro = false;
    for a in args {
        match a.as_str() {
            "--check-repro" => check_repro = true,
            other => return usage_err(format!("dist: unexpected argument {other}")),
        }
    }
    deps::ensure(false)?;
    deps::ensure_packages(PACKAGES)?;
    let started = Instant::now();
    // Read once: a commit made while --check-repro runs must not change the second build.
    let epoch = source_date_epoch();
    let arts = build_all(&util::root().join("target/dist"), &out_dir(), epoch)?;
    eprintln!(
        "xtask dist: built in {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    print!("{}", std::fs::read_to_string(out_dir().join("SHA256SUMS"))?);
    println!(
        "binary: {} bytes stripped ({} bytes of debug info in triage.debug)",
        arts.binary_size, arts.debug_size
    );
    if check_repro {
        // The same commit, the same paths, built again from nothing: what was built first
        // moves aside, the second build happens where the first did.
        let first = util::root().join("target/dist-first");
        let _ = std::fs::remove_dir_all(&first);
        std::fs::rename(util::root().join("target/dist"), &first)?;
        let again = Instant::now();
        let other = build_all(&util::root().join("target/dist"), &out_dir(), epoch)?;
        let secs = again.elapsed().as_secs_f64();
        let a = std::fs::read_to_string(first.join("out/SHA256SUMS"))?;
        let b = std::fs::read_to_string(out_dir().join("SHA256SUMS"))?;
        if a != b || arts.binary_sha != other.binary_sha {
            eprintln!(
                "xtask dist: NOT reproducible (first build kept in target/dist-first):\n{a}---\n{b}"
            );
            return Ok(std::process::ExitCode::FAILURE);
        }
        std::fs::remove_dir_all(&first)?;
        println!(
            "reproducible: a second build from scratch ({secs:.0} s) gave byte-identical artifacts"
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub struct Artifacts {
    pub binary_sha: String,
    pub binary_size: u64,
    pub debug_size: u64,
}

/// The package version (the `[package]` version of the root Cargo.toml).
pub fn version() -> Result<String> {
    let toml = std::fs::read_to_string(util::root().join("Cargo.toml"))?;
    let pkg = toml
        .split("\n[")
        .find(|s| s.starts_with("package]"))
        .context("Cargo.toml has no [package]")?;
    pkg.lines()
        .find_map(|l| {
            let v = l.strip_prefix("version")?.trim_start().strip_prefix('=')?;
            Some(v.trim().trim_matches('"').to_string())
        })
        .context("no version in [package]")
}

/// SOURCE_DATE_EPOCH: the caller's, else the commit time of HEAD, else 0 (not a git checkout).
pub fn source_date_epoch() -> u64 {
    if let Some(v) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return v;
    }
    Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(util::root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}

/// The environment of the static build. Everything is set here, for this one cargo call: the
/// dev build and `cargo test` never see these flags (their target directory stays valid).
fn dist_env(cmd: &mut Command, epoch: u64) {
    let root = util::root().display().to_string();
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let flags = [
        // glibc linked in: no ld.so, no libc.so.6, no GLIBC_2.xx version requirement.
        "-C target-feature=+crt-static".to_string(),
        // A plain static executable (not static-pie): `ldd` says "not a dynamic executable".
        "-C relocation-model=static".to_string(),
        // Reproducible across checkouts and users: no absolute paths in panics or debug info.
        format!("--remap-path-prefix={root}=/triage"),
        format!("--remap-path-prefix={cargo_home}=/cargo"),
    ];
    cmd.env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", flags.join(" "))
        // libbpf-sys's `static` feature links libelf.a and libz.a: Debian's, from here.
        .env("LIBBPF_SYS_LIBRARY_PATH", "/usr/lib/x86_64-linux-gnu")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("CARGO_INCREMENTAL", "0")
        // The vendored libbpf's C objects: no build paths in their debug info or __FILE__.
        .env(
            "LIBBPF_SYS_EXTRA_CFLAGS",
            format!("-ffile-prefix-map={root}=/triage -ffile-prefix-map={cargo_home}=/cargo"),
        )
        // The BPF objects embed their source paths in BTF line info: see bpf/build.rs.
        .env("TRIAGE_BPF_PREFIX_MAP", format!("{root}=/triage"));
}

/// Build the static binary into `target_dir` and package it into `out`.
pub fn build_all(target_dir: &Path, out: &Path, epoch: u64) -> Result<Artifacts> {
    let version = version()?;
    let mut cmd = util::cargo();
    cmd.args([
        "build",
        "--locked",
        "--profile",
        "dist",
        "--features",
        "static",
    ])
    .args(["--target", TARGET, "--bin", "triage", "--target-dir"])
    .arg(target_dir);
    dist_env(&mut cmd, epoch);
    let t = Instant::now();
    util::run(&mut cmd)?;
    eprintln!(
        "xtask dist: static build took {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let built = target_dir.join(TARGET).join("dist/triage");

    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    let name = format!("triage-{version}-{PLATFORM}");
    let stage = out.join(&name);
    std::fs::create_dir_all(&stage)?;

    // Debug info to its own file; the shipped binary stripped and pointing at it.
    let debug = out.join("triage.debug");
    util::run(
        Command::new("objcopy")
            .arg("--only-keep-debug")
            .arg(&built)
            .arg(&debug),
    )?;
    let bin = stage.join("triage");
    util::run(
        Command::new("objcopy")
            .args(["--strip-all", "--add-gnu-debuglink=triage.debug"])
            .arg(&built)
            .arg(&bin)
            .current_dir(out),
    )?;
    check_static(&bin)?;

    std::fs::copy(util::root().join("README.md"), stage.join("README.md"))?;
    std::fs::copy(util::root().join("LICENSE"), stage.join("LICENSE"))?;
    let have_completions = completions(&bin, &stage.join("completions"))?;
    let have_man = man_pages(&bin, &stage.join("man"))?;

    let tar = out.join(format!("{name}.tar.gz"));
    tarball(out, &name, &tar, epoch)?;
    let deb = deb(out, &stage, &version, epoch, have_completions, have_man)?;

    let files = [&bin, &tar, &deb, &debug];
    let sums = sha256(&files, out)?;
    std::fs::write(out.join("SHA256SUMS"), &sums)?;
    let binary_sha = sha256(&[&bin], &stage)?;
    Ok(Artifacts {
        binary_sha,
        binary_size: std::fs::metadata(&bin)?.len(),
        debug_size: std::fs::metadata(&debug)?.len(),
    })
}

/// The binary must have no program interpreter and no dynamic section (fully static), and no
/// trace of NSS (static glibc would dlopen libnss_*.so for getpwnam/gethostbyname).
pub fn check_static(bin: &Path) -> Result<()> {
    let out = Command::new("readelf")
        .args(["-lW"])
        .arg(bin)
        .output()
        .context("readelf")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("INTERP") || text.contains("DYNAMIC") {
        bail!(
            "{} is not fully static (readelf -l shows INTERP/DYNAMIC)",
            bin.display()
        );
    }
    let bytes = std::fs::read(bin)?;
    for needle in [&b"libnss_"[..], b"nsswitch.conf"] {
        if bytes.windows(needle.len()).any(|w| w == needle) {
            bail!(
                "{} references {} (NSS): a static glibc binary would need the box's libnss",
                bin.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }
    Ok(())
}

/// `triage completions SHELL` into `dir` when the subcommand exists (the output issue adds
/// it); otherwise a notice and no directory.
fn completions(bin: &Path, dir: &Path) -> Result<bool> {
    let probe = Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .context("running the dist binary")?;
    if !probe.status.success() || probe.stdout.is_empty() {
        eprintln!("xtask dist: notice: `triage completions` does not exist yet: no completions/");
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    for (shell, file) in [
        ("bash", "triage.bash"),
        ("zsh", "_triage"),
        ("fish", "triage.fish"),
    ] {
        let o = Command::new(bin).args(["completions", shell]).output()?;
        if !o.status.success() {
            bail!("triage completions {shell} failed");
        }
        std::fs::write(dir.join(file), o.stdout)?;
    }
    Ok(true)
}

/// Man pages written by the dist binary itself (`triage manpages DIR`, what `cargo xtask man`
/// runs), so they describe exactly the binary shipped; a notice and no directory when the
/// binary has no such command.
fn man_pages(bin: &Path, dir: &Path) -> Result<bool> {
    let o = Command::new(bin)
        .arg("manpages")
        .arg(dir)
        .output()
        .context("running the dist binary")?;
    let pages = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).count())
        .unwrap_or(0);
    if !o.status.success() || pages == 0 {
        eprintln!("xtask dist: notice: `triage manpages DIR` does not exist: no man/");
        let _ = std::fs::remove_dir_all(dir);
        return Ok(false);
    }
    Ok(true)
}

/// Every file and directory under `dir` gets mtime `epoch` (the tarball and the .deb record
/// mtimes).
fn set_mtimes(dir: &Path, epoch: u64) -> Result<()> {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch);
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            set_mtimes(&p, epoch)?;
        } else {
            std::fs::File::options()
                .write(true)
                .open(&p)?
                .set_modified(t)?;
        }
    }
    std::fs::File::open(dir)?.set_modified(t)?;
    Ok(())
}

/// A deterministic tar.gz of `out/name`: sorted names, one mtime, owner/group 0, no pax
/// atime/ctime, gzip without the file name or a timestamp.
fn tarball(out: &Path, name: &str, tar: &Path, epoch: u64) -> Result<()> {
    set_mtimes(&out.join(name), epoch)?;
    let script = format!(
        "set -o pipefail; tar --sort=name --mtime=@{epoch} --owner=0 --group=0 --numeric-owner \
         --mode=go-w --format=gnu -cf - '{name}' | gzip -9n > '{}'",
        tar.display()
    );
    util::run(Command::new("bash").args(["-c", &script]).current_dir(out))
}

/// `triage_VERSION_amd64.deb` with dpkg-deb (root-owned files, SOURCE_DATE_EPOCH for the ar
/// members). The binary is static: no Depends.
fn deb(
    out: &Path,
    stage: &Path,
    version: &str,
    epoch: u64,
    completions: bool,
    man: bool,
) -> Result<PathBuf> {
    let root = out.join("deb");
    let put = |rel: &str, from: &Path, mode: u32| -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().unwrap())?;
        std::fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    put("usr/bin/triage", &stage.join("triage"), 0o755)?;
    put(
        "usr/share/doc/triage/README.md",
        &stage.join("README.md"),
        0o644,
    )?;
    put(
        "usr/share/doc/triage/copyright",
        &stage.join("LICENSE"),
        0o644,
    )?;
    if completions {
        let c = stage.join("completions");
        put(
            "usr/share/bash-completion/completions/triage",
            &c.join("triage.bash"),
            0o644,
        )?;
        put(
            "usr/share/zsh/vendor-completions/_triage",
            &c.join("_triage"),
            0o644,
        )?;
        put(
            "usr/share/fish/vendor_completions.d/triage.fish",
            &c.join("triage.fish"),
            0o644,
        )?;
    }
    if man {
        let mut pages: Vec<PathBuf> = std::fs::read_dir(stage.join("man"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        pages.sort();
        for p in pages {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            let section = file.rsplit('.').next().unwrap_or("1").to_string();
            let dest = root.join(format!("usr/share/man/man{section}/{file}.gz"));
            std::fs::create_dir_all(dest.parent().unwrap())?;
            let o = Command::new("gzip").args(["-9nc"]).arg(&p).output()?;
            if !o.status.success() {
                bail!("gzip {}", p.display());
            }
            std::fs::write(&dest, o.stdout)?;
        }
    }
    let size_kib = dir_size(&root)?.div_ceil(1024);
    let control = format!(
        "Package: triage\nVersion: {version}\nArchitecture: amd64\nMaintainer: triage developers \
         <triage@localhost>\nInstalled-Size: {size_kib}\nSection: admin\nPriority: optional\n\
         Description: why is this Linux box slow? USE-method triage from /proc, /sys and eBPF\n \
         One static binary: the 60-second checklist as a ranked USE report, deep dives per\n \
         resource, syscall and off-CPU tracing with eBPF.\n"
    );
    std::fs::create_dir_all(root.join("DEBIAN"))?;
    std::fs::write(root.join("DEBIAN/control"), control)?;
    set_mtimes(&root, epoch)?;
    let deb = out.join(format!("triage_{version}_amd64.deb"));
    util::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&root)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", epoch.to_string()),
    )?;
    Ok(deb)
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let m = e.metadata()?;
        n += if m.is_dir() {
            dir_size(&e.path())?
        } else {
            m.len()
        };
    }
    Ok(n)
}

/// `sha256sum` lines for `files` (names relative to `base`).
fn sha256(files: &[&PathBuf], base: &Path) -> Result<String> {
    let mut cmd = Command::new("sha256sum");
    cmd.current_dir(base);
    for f in files {
        cmd.arg(f.strip_prefix(base).unwrap_or(f));
    }
    let o = cmd.output().context("sha256sum")?;
    if !o.status.success() {
        bail!("sha256sum failed: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8(o.stdout)?)
}
