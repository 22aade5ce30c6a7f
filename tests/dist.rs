//! The release artifacts of `cargo xtask dist` (target/dist/out, or `TRIAGE_DIST_DIR`), proven
//! portable: the binary is fully static and stripped, runs in an empty root (a directory
//! holding only it, with /proc, /sys and /dev bind-mounted) and gives a full report there; the
//! tarball is deterministic in form; the .deb installs, runs and removes.
//!
//! `cargo xtask test` builds the artifacts before the tests when root (as CI is); every test
//! here is ignored otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PLATFORM: &str = "x86_64-unknown-linux";

fn out_dir() -> PathBuf {
    std::env::var_os("TRIAGE_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dist/out"))
}

fn stage() -> PathBuf {
    out_dir().join(format!("triage-{VERSION}-{PLATFORM}"))
}

fn dist_bin() -> PathBuf {
    let b = stage().join("triage");
    assert!(
        b.exists(),
        "{} missing: run `cargo xtask dist` first",
        b.display()
    );
    b
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(o)))
}

#[test]
#[ignore = "needs the `cargo xtask dist` artifacts (cargo xtask test builds them as root)"]
fn dist_binary_is_static_stripped_and_small() {
    let bin = dist_bin();
    let file = text(&run(Command::new("file").arg(&bin)));
    assert!(file.contains("statically linked"), "{file}");
    assert!(file.contains(", stripped"), "{file}");
    let ldd = text(&run(Command::new("ldd").arg(&bin)));
    assert!(ldd.contains("not a dynamic executable"), "{ldd}");
    let elf = text(&run(Command::new("readelf").args(["-lSW"]).arg(&bin)));
    assert!(!elf.contains("INTERP") && !elf.contains("DYNAMIC"), "{elf}");
    // Debug info lives next to it, linked by name.
    assert!(elf.contains(".gnu_debuglink"), "{elf}");
    let dbg = out_dir().join("triage.debug");
    let dbg_sections = text(&run(Command::new("readelf").arg("-SW").arg(&dbg)));
    assert!(dbg_sections.contains(".debug_line"), "{dbg_sections}");
    // No NSS: nothing would be loaded from the box's /usr at run time.
    let bytes = std::fs::read(&bin).unwrap();
    for needle in [&b"libnss_"[..], b"nsswitch.conf"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} found in the binary",
            String::from_utf8_lossy(needle)
        );
    }
    // The symbol table (kept in the debug file) has none of the NSS entry points.
    let nm = run(Command::new("nm").arg(&dbg));
    assert!(nm.status.success(), "{}", text(&nm));
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        symbols.contains(" main\n"),
        "no symbol table in {}",
        dbg.display()
    );
    for nss in [
        " getpwnam",
        " getpwuid",
        " getgrnam",
        " gethostbyname",
        " getaddrinfo",
    ] {
        assert!(!symbols.contains(nss), "{nss} is linked in");
    }
    let size = bytes.len();
    assert!(size <= 6 * 1024 * 1024, "{size} bytes > 6 MiB");
    // The checksums match the artifacts.
    let sums = run(Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(out_dir()));
    assert!(sums.status.success(), "{}", text(&sums));
    assert_eq!(
        String::from_utf8_lossy(&sums.stdout)
            .matches(": OK")
            .count(),
        4,
        "{}",
        text(&sums)
    );
}

#[test]
#[ignore = "needs the `cargo xtask dist` artifacts (cargo xtask test builds them as root)"]
fn tarball_is_root_owned_with_one_mtime_and_sorted() {
    let tar = out_dir().join(format!("triage-{VERSION}-{PLATFORM}.tar.gz"));
    let o = run(Command::new("tar")
        .args(["--list", "--verbose", "--full-time", "-zf"])
        .arg(&tar));
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout).to_string();
    let top = format!("triage-{VERSION}-{PLATFORM}/");
    let mut names = Vec::new();
    let mut times = std::collections::BTreeSet::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // -rwxr-xr-x 0/0 5336888 2026-11-30 09:44:00 triage-.../triage
        assert_eq!(f[1], "0/0", "{line}");
        times.insert(format!("{} {}", f[3], f[4]));
        names.push(f[5].to_string());
    }
    assert_eq!(times.len(), 1, "{listing}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    for want in ["triage", "README.md", "LICENSE"] {
        assert!(names.contains(&format!("{top}{want}")), "{listing}");
    }
    assert!(names.iter().all(|n| n.starts_with(&top)), "{listing}");
}

/// `triage ARGS` chrooted into `root`, with /proc, /sys and /dev bind-mounted in a private
/// mount namespace (gone when the command ends).
fn in_empty_root(root: &Path, args: &[&str]) -> Output {
    run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"for d in proc sys dev; do mount --rbind "/$d" "$0/$d" || exit 99; done
               exec chroot "$0" /triage "$@""#,
        )
        .arg(root)
        .args(args))
}

#[test]
#[ignore = "needs root: unshare -m, bind mounts and chroot (and the dist artifacts)"]
fn dist_binary_gives_a_full_report_in_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(dist_bin(), root.join("triage")).unwrap();
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir(root.join(d)).unwrap();
    }
    // Nothing else: no /usr, /lib, /etc, /tmp.
    let mut entries: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["dev", "proc", "sys", "triage"]);

    let v = in_empty_root(root, &["--version"]);
    assert!(text(&v).contains(VERSION), "{}", text(&v));

    let o = in_empty_root(root, &["sixty-second", "--duration", "0.5", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("could not read"), "{stderr}");
    let r = json(&o);
    assert_eq!(r["command"], "sixty-second");
    for want in ["cpu", "memory"] {
        let res = r["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == want)
            .unwrap_or_else(|| panic!("no {want} resource"));
        assert!(!res["metrics"].as_array().unwrap().is_empty(), "{res}");
    }
    let unavailable = r["unavailable"].to_string();
    assert!(!unavailable.contains("/proc/stat"), "{unavailable}");
    assert!(!unavailable.contains("/proc/meminfo"), "{unavailable}");
    // The eBPF latency probes ran from inside the empty root too.
    assert!(!unavailable.contains("eBPF latency"), "{unavailable}");

    let o = in_empty_root(root, &["doctor", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let d = json(&o);
    assert_eq!(d["can_bpf"], true, "{}", d["bpf_blockers"]);
    for p in d["probes"].as_array().unwrap() {
        assert_eq!(p["ok"], true, "{p}");
    }
}

#[test]
#[ignore = "needs root: dpkg -i / dpkg -r (and the dist artifacts)"]
fn deb_installs_runs_and_removes() {
    let deb = out_dir().join(format!("triage_{VERSION}_amd64.deb"));
    assert!(deb.exists(), "{} missing", deb.display());
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    let info = text(&info);
    assert!(info.contains("Package: triage"), "{info}");
    assert!(
        !info.contains("Depends:"),
        "a static binary depends on nothing: {info}"
    );

    let i = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(i.status.success(), "{}", text(&i));
    let installed = Path::new("/usr/bin/triage");
    let result = std::panic::catch_unwind(|| {
        let files = text(&run(Command::new("dpkg").args(["-L", "triage"])));
        assert!(files.contains("/usr/bin/triage"), "{files}");
        assert!(files.contains("/usr/share/doc/triage/copyright"), "{files}");
        // Completions and man pages ship when the generators exist (see xtask/src/dist.rs).
        if stage().join("completions").exists() {
            assert!(
                files.contains("/usr/share/bash-completion/completions/triage"),
                "{files}"
            );
        }
        if stage().join("man").exists() {
            assert!(files.contains("/usr/share/man/man1/"), "{files}");
        }
        let v = run(Command::new(installed).arg("--version"));
        assert!(text(&v).contains(VERSION));
        let o = run(Command::new(installed).args(["sixty-second", "--duration", "0.3", "--json"]));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(json(&o)["command"], "sixty-second");
    });
    let r = run(Command::new("dpkg").args(["-r", "triage"]));
    assert!(r.status.success(), "{}", text(&r));
    assert!(!installed.exists(), "dpkg -r left /usr/bin/triage");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
