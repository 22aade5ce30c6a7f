//! Mutation fuzzing of every fixture through the whole pipeline (see `triage::fuzz`), on stable
//! Rust, in this build's overflow-checked arithmetic (the test profile checks overflow).
//!
//! `TRIAGE_FUZZ_SECS` (default 10) bounds the run, `TRIAGE_FUZZ_EXECS` (default: none) ends it
//! early after that many mutated fixtures, `TRIAGE_FUZZ_MIN` (default 0) is the number it must
//! reach, `TRIAGE_FUZZ_SEED` picks the seed (default: the time). `cargo xtask test` runs
//! `fuzz_fixtures` with 12,000 executions, at most 150 s, at least 10,000. A panic
//! or a replay longer than 10 s fails the test and writes the mutated fixture to
//! `target/fuzz-crashes/` (keep it as a regression fixture under `tests/fuzz-regressions/`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use triage::fuzz::{exercise, mutate, undo, MemFixture, Part, Rng};

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixtures() -> Vec<MemFixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| MemFixture::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// Every crashing input kept so far replays without a panic.
#[test]
fn fuzz_regressions_replay() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let fx = MemFixture::load_regression(&p, &fixtures).unwrap();
        // The diff is applied where it was taken: sample files to their own sample.
        if let Ok(rd) = std::fs::read_dir(p.join("samples")) {
            for s in rd {
                let s = s.unwrap().path();
                let i: usize = s.file_name().unwrap().to_str().unwrap().parse().unwrap();
                let want = std::fs::read(s.join("proc/stat")).unwrap();
                use triage::host::Source;
                assert_eq!(
                    fx.samples[i].read("proc/stat").unwrap(),
                    want,
                    "{}",
                    s.display()
                );
            }
        }
        exercise(&fx, 0);
        exercise(&fx, 1);
        exercise(&fx, 2);
        exercise(&fx, 3);
        n += 1;
    }
    assert!(n >= 1, "no regression inputs in {}", dir.display());
}

/// The qdisc recordings (`t0/qdisc.json`, `t1/qdisc.json`: rtnetlink counters as recorded)
/// mutated on their own, 80 times (about 6 s unoptimized): truncated, garbage, numbers at u64::MAX, removed, a link out
/// of the tree, a FIFO; every replay and view renders without a panic.
#[test]
fn fuzz_qdisc_recordings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/qdisc-drops-retransmits");
    let mut fx = MemFixture::load(&dir).unwrap();
    let mut rng = Rng(0x9d15_c0de);
    for i in 0..80u64 {
        let part = if i % 2 == 0 { Part::T0 } else { Part::T1 };
        let mut undos = vec![triage::fuzz::mutate_file(
            &mut fx,
            part,
            "qdisc.json",
            &mut rng,
        )];
        if i % 3 == 0 {
            let other = if part == Part::T0 { Part::T1 } else { Part::T0 };
            undos.push(triage::fuzz::mutate_file(
                &mut fx,
                other,
                "qdisc.json",
                &mut rng,
            ));
        }
        let what: Vec<String> = undos.iter().map(|u| u.what.clone()).collect();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&fx, i)));
        assert!(r.is_ok(), "panic on {what:?}");
        undo(&mut fx, undos);
    }
}

#[test]
fn fuzz_fixtures() {
    let secs = env_u64("TRIAGE_FUZZ_SECS", 10);
    let min = env_u64("TRIAGE_FUZZ_MIN", 0);
    let target = env_u64("TRIAGE_FUZZ_EXECS", u64::MAX);
    let seed = env_u64(
        "TRIAGE_FUZZ_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let threads = env_u64(
        "TRIAGE_FUZZ_THREADS",
        std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
    )
    .max(1);
    let base = Arc::new(fixtures());
    assert!(base.len() >= 10);
    // Quiet panics: each one is reported once, below, with its mutation and where it was.
    std::panic::set_hook(Box::new(|info| {
        let mut at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if !at.starts_with("src/") {
            // In the standard library (an overflowing `sum`): our caller is what matters.
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            if let Some(l) = bt.lines().find(|l| {
                let l = l.trim_start();
                l.starts_with("at ")
                    && l.contains("src/")
                    && !l.contains("/rustc/")
                    && !l.contains("/.cargo/")
            }) {
                at = format!("{at} <- {}", l.trim());
            }
        }
        LAST_PANIC.with(|p| *p.borrow_mut() = at);
    }));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let execs = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..threads {
        let mut fxs: Vec<MemFixture> = base.iter().cloned().collect();
        let base = base.clone();
        let execs = execs.clone();
        let failures = failures.clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng(seed ^ (t.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            let mut round = 0u64;
            // A watchdog: a replay that takes too long is a hang.
            let busy_since = Arc::new(AtomicU64::new(0));
            let what = Arc::new(Mutex::new(String::new()));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let dog = {
                let (busy_since, what, stop) = (busy_since.clone(), what.clone(), stop.clone());
                std::thread::spawn(move || {
                    let t0 = Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(200));
                        let b = busy_since.load(Ordering::Relaxed);
                        let now = t0.elapsed().as_millis() as u64;
                        if b > 0 && now.saturating_sub(b) > 10_000 {
                            // Not eprintln!: the test harness captures it, and abort loses it.
                            use std::io::Write;
                            let _ = writeln!(
                                std::io::stderr(),
                                "fuzz: HANG (> 10 s) on {}",
                                what.lock().unwrap_or_else(|e| e.into_inner())
                            );
                            std::process::abort();
                        }
                    }
                })
            };
            let dog_t0 = Instant::now();
            while Instant::now() < deadline && execs.load(Ordering::Relaxed) < target {
                let i = rng.below(fxs.len());
                let fx = &mut fxs[i];
                let undos = mutate(fx, &mut rng);
                let desc = format!(
                    "{}: {}",
                    fx.name,
                    undos
                        .iter()
                        .map(|u| u.what.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                *what.lock().unwrap_or_else(|e| e.into_inner()) = desc.clone();
                busy_since.store(
                    (dog_t0.elapsed().as_millis() as u64).max(1),
                    Ordering::Relaxed,
                );
                let r =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(fx, round)));
                busy_since.store(0, Ordering::Relaxed);
                if let Err(p) = r {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    let msg = format!("{msg} at {}", LAST_PANIC.with(|p| p.borrow().clone()));
                    let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("target/fuzz-crashes")
                        .join(format!("{}-{}", fx.name, f.len()));
                    if f.len() < 50 {
                        let _ = std::fs::remove_dir_all(&out);
                        let _ = fx.write_diff(&base[i], &out);
                    }
                    f.push(format!(
                        "{desc}\n    panic: {msg}\n    input: {}",
                        out.display()
                    ));
                }
                undo(fx, undos);
                round += 1;
                execs.fetch_add(1, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Relaxed);
            let _ = dog.join();
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let _ = std::panic::take_hook();
    let n = execs.load(Ordering::Relaxed);
    let took = started.elapsed().as_secs_f64();
    let failures = failures.lock().unwrap();
    eprintln!(
        "fuzz: {n} mutated fixtures in {took:.1} s ({:.0}/s, {threads} threads, seed {seed}), {} panics",
        n as f64 / took,
        failures.len()
    );
    let mut uniq: Vec<&String> = failures.iter().collect();
    uniq.sort();
    uniq.dedup_by(|a, b| a.lines().nth(1) == b.lines().nth(1));
    assert!(
        failures.is_empty(),
        "{} panics ({} distinct), seed {seed}:\n{}",
        failures.len(),
        uniq.len(),
        uniq.iter()
            .take(30)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        n >= min,
        "only {n} mutated fixtures in {secs} s (wanted {min})"
    );
}
