//! triage run as root over a hostile tree (a fixture or `--root` directory someone else can
//! write): nothing outside the tree is read, special files are refused without blocking, sizes
//! are capped, and every refusal is listed in `unavailable`.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::copy_fixture;
use triage::analyze::{build_report, Analysis};
use triage::collect::run::from_fixture;
use triage::host::{LiveSource, Source};
use triage::model::report::Report;
use triage::render;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The fixture's report, computed on another thread: a hang fails the test instead of
/// blocking it forever.
fn report_within(dir: &Path, limit: Duration) -> Report {
    let dir = dir.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r = from_fixture(&dir).map(|r| build_report(&r, "sixty-second", &Analysis::default()));
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    rx.recv_timeout(limit)
        .expect("the fixture replay hung")
        .expect("the fixture replays")
}

fn unavailable_paths(r: &Report) -> String {
    r.unavailable
        .iter()
        .map(|u| format!("{}: {}", u.what, u.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A secret outside the tree, which the tree links to.
fn secret() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("shadow");
    std::fs::write(&p, "root:SECRET-HASH:19000:0:99999:7:::\n").unwrap();
    (d, p)
}

#[test]
fn a_fixture_symlink_out_of_the_tree_is_refused_and_listed() {
    let fx = copy_fixture("idle");
    let t1 = fx.path().join("fx/t1");
    let (_s, shadow) = secret();
    let host = t1.join("proc/sys/kernel/hostname");
    std::fs::remove_file(&host).unwrap();
    symlink(&shadow, &host).unwrap();
    // And an escape through `..`.
    let rel = t1.join("proc/sys/kernel/osrelease");
    std::fs::remove_file(&rel).unwrap();
    let up = "../".repeat(20) + shadow.to_str().unwrap().trim_start_matches('/');
    symlink(&up, &rel).unwrap();

    let r = report_within(&fx.path().join("fx"), Duration::from_secs(60));
    let json = render::json(&r);
    let table = render::table::render(&r, &render::table::Style { color: false });
    assert!(!json.contains("SECRET-HASH"), "secret in JSON");
    assert!(!table.contains("SECRET-HASH"), "secret in table");
    assert_ne!(r.host.hostname, "root:SECRET-HASH:19000:0:99999:7:::");
    let un = unavailable_paths(&r);
    assert!(
        un.contains("proc/sys/kernel/hostname: refused: the path resolves outside"),
        "{un}"
    );
    assert!(
        un.contains("proc/sys/kernel/osrelease: refused: the path resolves outside"),
        "{un}"
    );
}

#[test]
fn a_fixture_top_level_symlink_out_of_the_tree_is_refused() {
    let fx = copy_fixture("idle");
    let (s, _shadow) = secret();
    let t1 = fx.path().join("fx/t1");
    std::fs::rename(&t1, s.path().join("t1")).unwrap();
    symlink(s.path().join("t1"), &t1).unwrap();
    let e = from_fixture(&fx.path().join("fx")).unwrap_err().to_string();
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn dev_zero_a_fifo_and_a_huge_file_in_a_fixture_are_refused_without_hanging() {
    let fx = copy_fixture("idle");
    let t1 = fx.path().join("fx/t1");
    // /dev/zero behind a symlink (an escape) ...
    std::fs::remove_file(t1.join("proc/stat")).unwrap();
    symlink("/dev/zero", t1.join("proc/stat")).unwrap();
    // ... a FIFO nobody writes ...
    std::fs::remove_file(t1.join("proc/loadavg")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        t1.join("proc/loadavg"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    // ... and a 100 MiB (sparse) meminfo and kernel log.
    for p in ["proc/meminfo", "dev/kmsg"] {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(t1.join(p))
            .unwrap();
        f.set_len(100 << 20).unwrap();
    }
    let r = report_within(&fx.path().join("fx"), Duration::from_secs(60));
    let un = unavailable_paths(&r);
    assert!(
        un.contains("proc/stat: refused: the path resolves outside"),
        "{un}"
    );
    assert!(
        un.contains("proc/loadavg: refused: a FIFO is not read"),
        "{un}"
    );
    assert!(
        un.contains("proc/meminfo: refused: larger than 16777216 bytes"),
        "{un}"
    );
    assert!(un.contains("dev/kmsg: refused: larger than"), "{un}");
}

#[test]
fn root_dev_kmsg_linked_to_dev_zero_is_refused() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("dev")).unwrap();
    std::fs::create_dir_all(d.path().join("proc/sys/kernel")).unwrap();
    symlink("/dev/zero", d.path().join("dev/kmsg")).unwrap();
    let (_s, shadow) = secret();
    symlink(&shadow, d.path().join("proc/sys/kernel/hostname")).unwrap();
    let src = LiveSource::new(d.path());
    let e = src.kmsg().unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let e = src.read("proc/sys/kernel/hostname").unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    let refused: Vec<String> = src.refusals().into_iter().map(|(p, _)| p).collect();
    assert_eq!(refused, ["dev/kmsg", "proc/sys/kernel/hostname"]);
    // Inside the tree, even an absolute symlink target is not followed out of it.
    std::fs::write(d.path().join("proc/loadavg"), "1 2 3 4/5 6\n").unwrap();
    assert_eq!(src.read_string("proc/loadavg").unwrap(), "1 2 3 4/5 6\n");
}

fn triage() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_triage"))
}

/// While `capture` runs, another process keeps planting symlinks in its output directory
/// (`meta.json` and a snapshot directory pointing elsewhere). Nothing outside is written, and
/// what is written is private.
#[test]
fn capture_never_writes_through_symlinks_planted_during_the_run() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let victim = d.path().join("victim.conf");
    std::fs::write(&victim, "precious\n").unwrap();
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let planter = {
        let (out, victim, elsewhere, stop) =
            (out.clone(), victim.clone(), elsewhere.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut planted = 0u32;
            // Plant once triage has taken the (empty) directory and started writing.
            while !out.join("t0").exists() && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_micros(200));
            }
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (link, target) in [
                    (out.join("meta.json"), &victim),
                    (out.join("t1"), &elsewhere),
                    (out.join("samples"), &elsewhere),
                ] {
                    if symlink(target, &link).is_ok() {
                        planted += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            planted
        })
    };
    let o = triage()
        .args(["capture", "--duration", "0.5", "--no-bpf", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let planted = planter.join().unwrap();
    assert!(planted > 0, "the planter never got a link in");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "a write went through the planted directory link"
    );
    // What was written is private: directories 0700, files 0600.
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o700);
    let t0 = out.join("t0");
    assert_eq!(std::fs::metadata(&t0).unwrap().mode() & 0o777, 0o700);
    assert_eq!(
        std::fs::metadata(t0.join("proc/stat")).unwrap().mode() & 0o777,
        0o600
    );
}

#[test]
fn capture_refuses_a_symlink_a_non_empty_or_foreign_output_directory() {
    let d = tempfile::tempdir().unwrap();
    let real = d.path().join("real");
    std::fs::create_dir(&real).unwrap();
    symlink(&real, d.path().join("link")).unwrap();
    let o = triage()
        .args(["capture", "--duration", "0.2", "--no-bpf", "--out"])
        .arg(d.path().join("link"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert!(std::fs::read_dir(&real).unwrap().next().is_none());
    // offcpu --record used to write into a non-empty directory.
    std::fs::write(real.join("keep"), "x").unwrap();
    let o = triage()
        .args(["offcpu", "--duration", "0.2", "--record"])
        .arg(&real)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
}

#[test]
#[ignore = "needs root: chown a directory to another user"]
fn capture_refuses_a_directory_owned_by_someone_else() {
    let d = tempfile::tempdir().unwrap();
    let theirs = d.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let o = triage()
        .args(["capture", "--duration", "0.2", "--no-bpf", "--out"])
        .arg(&theirs)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("owned by uid 65534"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A process named with a right-to-left override (U+202E) and a zero-width space: JSON, folded
/// stacks and the SVG flame graph show escapes, never the raw characters.
#[test]
fn bidi_and_invisible_characters_are_escaped_in_json_folded_and_svg() {
    let fx = copy_fixture("offcpu-lock-contention");
    let probe = fx.path().join("fx/probes/offcpu.json");
    let text = std::fs::read_to_string(&probe).unwrap();
    assert!(text.contains("scn_lockc"));
    std::fs::write(
        &probe,
        text.replace("scn_lockc", "scn\u{202e}cod.exe\u{200b}"),
    )
    .unwrap();
    let raw = |s: &str| s.contains('\u{202e}') || s.contains('\u{200b}');
    let o = triage()
        .args(["offcpu", "--json", "--fixture"])
        .arg(fx.path().join("fx"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let json = String::from_utf8(o.stdout).unwrap();
    assert!(!raw(&json));
    assert!(json.contains(r"scn\u202ecod.exe\u200b"), "{json}");
    let o = triage()
        .args(["offcpu", "--folded", "--fixture"])
        .arg(fx.path().join("fx"))
        .output()
        .unwrap();
    let folded = String::from_utf8(o.stdout).unwrap();
    assert!(!raw(&folded));
    assert!(folded.contains(r"scn\u{202e}cod.exe\u{200b};"), "{folded}");
    let svg = fx.path().join("f.svg");
    let o = triage()
        .args(["offcpu", "--svg"])
        .arg(&svg)
        .arg("--fixture")
        .arg(fx.path().join("fx"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(!raw(&svg));
    assert!(svg.contains(r"scn\u{202e}cod.exe"));
    // The table keeps its own escaping.
    let o = triage()
        .args(["offcpu", "--fixture"])
        .arg(fx.path().join("fx"))
        .output()
        .unwrap();
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(!raw(&table));
}

/// The hostname of a fixture with a bidi override, in the sixty-second JSON.
#[test]
fn a_bidi_hostname_is_escaped_in_json() {
    let fx = copy_fixture("idle");
    std::fs::write(
        fx.path().join("fx/t1/proc/sys/kernel/hostname"),
        "web\u{202e}1-prod\n",
    )
    .unwrap();
    let o = triage()
        .args(["sixty-second", "--json", "--fixture"])
        .arg(fx.path().join("fx"))
        .output()
        .unwrap();
    let json = String::from_utf8(o.stdout).unwrap();
    assert!(json.contains(r#""hostname": "web\u202e1-prod""#), "{json}");
    assert!(!json.contains('\u{202e}'));
}

/// A report that cannot be written is an error (exit 1, a message); a reader that closed the
/// pipe early (`| head`) is not.
#[test]
fn a_failed_stdout_write_exits_1_and_a_closed_pipe_exits_0() {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idle");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = triage()
        .args(["sixty-second", "--json", "--fixture"])
        .arg(&fx)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("No space left on device"), "{err}");
    for args in [
        &["sixty-second", "--json", "--fixture"][..],
        &["offcpu", "--folded", "--fixture"][..],
    ] {
        let fx = if args[0] == "offcpu" {
            fx.with_file_name("offcpu-lock-contention")
        } else {
            fx.clone()
        };
        let mut child = triage()
            .args(args)
            .arg(&fx)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // offcpu --folded and doctor go through the same check.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = triage()
        .args(["offcpu", "--folded", "--fixture"])
        .arg(fx.with_file_name("offcpu-lock-contention"))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// A source that denies PID 1's fd table and network namespace (as a VM sandbox does even to
/// root), optionally reporting no capabilities for the reader.
struct DenyPid1<S> {
    inner: S,
    no_caps: bool,
}

impl<S: Source> Source for DenyPid1<S> {
    fn read(&self, rel: &str) -> std::io::Result<Vec<u8>> {
        let b = self.inner.read(rel)?;
        if self.no_caps && rel == "proc/self/status" {
            let s = String::from_utf8_lossy(&b)
                .replace("CapEff:\t000001fffeffffff", "CapEff:\t0000000000000000");
            return Ok(s.into_bytes());
        }
        Ok(b)
    }
    fn list(&self, rel: &str) -> std::io::Result<Vec<String>> {
        self.inner.list(rel)
    }
    fn readlink(&self, rel: &str) -> std::io::Result<String> {
        if rel == "proc/1/ns/net" {
            return Err(std::io::ErrorKind::PermissionDenied.into());
        }
        self.inner.readlink(rel)
    }
    fn stat_size(&self, rel: &str) -> std::io::Result<u64> {
        if rel == "proc/1/fd" {
            return Err(std::io::ErrorKind::PermissionDenied.into());
        }
        self.inner.stat_size(rel)
    }
    fn statvfs(&self, m: &str) -> std::io::Result<triage::host::FsStat> {
        self.inner.statvfs(m)
    }
    fn kmsg(&self) -> std::io::Result<Vec<u8>> {
        self.inner.kmsg()
    }
    fn tcp_states(&self) -> std::io::Result<std::collections::BTreeMap<String, u64>> {
        self.inner.tcp_states()
    }
}

fn pid1_denied_note(no_caps: bool) -> triage::model::report::Unavailable {
    use triage::host::memsource::MemSource;
    let fx = triage::fuzz::MemFixture::load(&fixtures_dir().join("idle")).unwrap();
    let wrap = |s: &MemSource| DenyPid1 {
        inner: s.clone(),
        no_caps,
    };
    let (s0, s1) = (wrap(&fx.t0), wrap(&fx.t1));
    let samples: Vec<&dyn Source> = fx.samples.iter().map(|s| s as &dyn Source).collect();
    let r = triage::collect::run::from_sources(
        fx.meta.as_ref().unwrap(),
        &s0,
        &samples,
        &s1,
        &triage::collect::deep::Spec::SIXTY_SECOND,
    )
    .unwrap();
    let rep = build_report(&r, "sixty-second", &Analysis::default());
    rep.unavailable
        .into_iter()
        .find(|u| u.what.starts_with("other users' processes"))
        .expect("a note about the denied process")
}

/// Root with every capability is not told to run as root; the process is named.
#[test]
fn a_process_denied_even_to_root_is_named_and_root_is_not_told_to_run_as_root() {
    let u = pid1_denied_note(false);
    assert!(u.reason.contains("process_api (pid 1)"), "{}", u.reason);
    assert!(
        u.reason.contains("even with CAP_SYS_PTRACE"),
        "{}",
        u.reason
    );
    assert_eq!(u.fix, None);
    // Without the capabilities, running as root is the fix.
    let u = pid1_denied_note(true);
    assert!(u.reason.contains("process_api (pid 1)"), "{}", u.reason);
    assert!(u.fix.unwrap().contains("run as root"));
}

/// Values at the edge of u64 in a fixture: `page_size_bytes` = u64::MAX, every /proc/stat and
/// process counter u64::MAX, a latency histogram with 80 slots of u64::MAX. This build checks
/// overflow: the replay must not panic, and sizes saturate rather than wrap.
#[test]
fn u64_max_everywhere_neither_panics_nor_wraps() {
    let fx = copy_fixture("cpu-saturation-ebpf");
    let dir = fx.path().join("fx");
    let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap();
    let meta = regex_replace_number(&meta, "page_size_bytes", "18446744073709551615");
    std::fs::write(dir.join("meta.json"), meta).unwrap();
    let max_all = |p: &Path| {
        let t = std::fs::read_to_string(p).unwrap();
        let mut out = String::new();
        let mut in_num = false;
        for c in t.chars() {
            if c.is_ascii_digit() {
                if !in_num {
                    out.push_str("18446744073709551615");
                }
                in_num = true;
            } else {
                in_num = false;
                out.push(c);
            }
        }
        std::fs::write(p, out).unwrap();
    };
    for snap in ["t0", "t1"] {
        max_all(&dir.join(snap).join("proc/stat"));
        max_all(&dir.join(snap).join("proc/vmstat"));
    }
    let lat = dir.join("probes/latency.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lat).unwrap()).unwrap();
    // Histogram slots (80 of them) and every count and nanosecond total at u64::MAX.
    fn bump(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Array(a) => a.iter_mut().for_each(bump),
            serde_json::Value::Object(o) => {
                for (k, x) in o.iter_mut() {
                    if k == "slots" {
                        *x = serde_json::json!(vec![u64::MAX; 80]);
                    } else if (k == "count" || k.ends_with("_ns")) && x.is_u64() {
                        *x = serde_json::json!(u64::MAX);
                    } else {
                        bump(x);
                    }
                }
            }
            _ => {}
        }
    }
    bump(&mut v);
    std::fs::write(&lat, v.to_string()).unwrap();
    let o = triage()
        .args(["sixty-second", "--json", "--fixture"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Report = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.host.page_size_bytes, Some(u64::MAX));
    // Every process's RSS saturates (pages x u64::MAX), never wraps to a small number.
    let procs = r.sections.processes.as_ref().unwrap();
    assert!(procs
        .top_rss
        .iter()
        .all(|p| p.rss_bytes == u64::MAX || p.rss_bytes == 0));
    for cmd in ["cpu", "mem", "disk", "net"] {
        let o = triage()
            .args([cmd, "--json", "--fixture"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn regex_replace_number(text: &str, key: &str, value: &str) -> String {
    let pat = format!("\"{key}\": ");
    let start = text.find(&pat).unwrap() + pat.len();
    let end = start + text[start..].find(|c: char| !c.is_ascii_digit()).unwrap();
    format!("{}{value}{}", &text[..start], &text[end..])
}

/// Found by the fuzzer: a process name of 100,000 `(` made the table layout take minutes. The
/// table shows the start of such a name, within a second.
#[test]
fn a_huge_process_name_renders_quickly() {
    let fx = copy_fixture("offcpu-lock-contention");
    let probe = fx.path().join("fx/probes/offcpu.json");
    let text = std::fs::read_to_string(&probe).unwrap();
    std::fs::write(
        &probe,
        text.replacen("scn_lockc", &format!("scn_{}", "(".repeat(100_000)), 1),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let mut child = triage()
        .args(["offcpu", "--fixture"])
        .arg(fx.path().join("fx"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drain stdout while it runs: a report larger than the pipe buffer must not block it.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        use std::io::Read;
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            break;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the table took over 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = reader.join().unwrap();
    assert!(
        out.contains("bytes in all)"),
        "{}",
        &out[..out.len().min(2000)]
    );
}
