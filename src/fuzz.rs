//! Mutation fuzzing of whole fixtures, on stable Rust (`tests/fuzz.rs` drives it; CI runs it for
//! a bounded time in a build with overflow checks).
//!
//! Each recorded fixture is loaded once into memory ([`MemFixture`]); every round applies one
//! to three mutations (truncation, garbage and non-UTF-8 bytes, numbers replaced by `u64::MAX`,
//! `2^64`, negatives, floats, `NaN`; lines duplicated or dropped; files removed, replaced by a
//! symlink out of the tree or by a special file), replays the fixture through the whole
//! pipeline (every reader, the model, the rules, the JSON and table renderers, the deep dives,
//! the off-CPU, latency and syscall probe reports) and undoes the mutations. A panic is a
//! finding; the mutated fixture can be written out as a regression fixture.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use crate::analyze::{self, Analysis};
use crate::collect::deep::Spec;
use crate::collect::run;
use crate::host::memsource::{MemSource, Node};
use crate::host::packed::Layer;
use crate::host::safe::Root;
use crate::host::Source;
use crate::model;
use crate::render;

/// A fixture in memory: `meta.json`, the snapshots and the probe outputs.
#[derive(Debug, Clone)]
pub struct MemFixture {
    pub name: String,
    pub meta: Option<Vec<u8>>,
    pub t0: MemSource,
    pub samples: Vec<MemSource>,
    pub t1: MemSource,
    /// `probes/NAME.json` -> bytes.
    pub probes: BTreeMap<String, Vec<u8>>,
    /// Paths of regular files per part, to pick mutation targets from.
    keys: Vec<(Part, Vec<String>)>,
}

/// Which part of a fixture a mutation hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Meta,
    T0,
    T1,
    Sample(usize),
    Probe,
}

impl MemFixture {
    /// Load `dir` (a fixture directory) through the safe reader.
    /// A fixture directory in memory; an overlay fixture (`meta.json` naming a `base`) is its
    /// base with its own files on top and its `removed` paths taken out, as the reader sees it.
    pub fn load(dir: &Path) -> io::Result<MemFixture> {
        let own = Self::load_plain(dir)?;
        let v: serde_json::Value = own
            .meta
            .as_deref()
            .and_then(|m| serde_json::from_slice(m).ok())
            .unwrap_or_default();
        let Some(base) = v["base"]
            .as_str()
            .filter(|b| !b.is_empty() && !b.contains('/') && *b != "..")
        else {
            return Ok(own);
        };
        let mut fx = MemFixture::load(&dir.parent().unwrap_or(Path::new(".")).join(base))?;
        let removed: Vec<String> = v["removed"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        fx.apply_diff(dir, own, removed.iter().map(String::as_str))?;
        fx.name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fx.index();
        Ok(fx)
    }

    /// `over`'s files on top of this fixture (samples by their number, `samples/007`), then the
    /// `removed` paths (a file or a whole directory) taken out.
    fn apply_diff<'a>(
        &mut self,
        dir: &Path,
        over: MemFixture,
        removed: impl Iterator<Item = &'a str>,
    ) -> io::Result<()> {
        let apply = |to: &mut MemSource, from: &MemSource| {
            for (k, n) in &from.nodes {
                if *n != Node::Dir {
                    to.nodes.insert(k.clone(), n.clone());
                }
            }
        };
        apply(&mut self.t0, &over.t0);
        apply(&mut self.t1, &over.t1);
        let top = Layer::open(dir)?;
        for n in top.list("samples").unwrap_or_default() {
            let (Ok(i), Ok(r)) = (n.parse::<usize>(), top.subdir(&format!("samples/{n}"))) else {
                continue;
            };
            if let Some(t) = self.samples.get_mut(i) {
                apply(t, &MemSource::load_layer(&r)?);
            }
        }
        if over.meta.is_some() {
            self.meta = over.meta;
        }
        self.probes.extend(over.probes);
        let drop_path = |m: &mut MemSource, k: &str| {
            let prefix = format!("{k}/");
            m.nodes.retain(|n, _| n != k && !n.starts_with(&prefix));
        };
        for r in removed.filter(|l| !l.is_empty()) {
            if r == "meta.json" {
                self.meta = None;
            } else if let Some(p) = r.strip_prefix("probes/") {
                self.probes.remove(p);
            } else if let Some(k) = r.strip_prefix("t0/") {
                drop_path(&mut self.t0, k);
            } else if let Some(k) = r.strip_prefix("t1/") {
                drop_path(&mut self.t1, k);
            } else if let Some((i, k)) = r
                .strip_prefix("samples/")
                .and_then(|s| s.split_once('/'))
                .and_then(|(i, k)| Some((i.parse::<usize>().ok()?, k)))
            {
                if let Some(s) = self.samples.get_mut(i) {
                    drop_path(s, k);
                }
            }
        }
        Ok(())
    }

    /// One directory as it is (packed or not), without resolving an overlay's base.
    fn load_plain(dir: &Path) -> io::Result<MemFixture> {
        let meta = Root::open(dir)?.read("meta.json", 1 << 20).ok();
        let top = Layer::open(dir)?;
        let snap = |rel: &str| -> io::Result<MemSource> {
            match top.subdir(rel) {
                Ok(r) => MemSource::load_layer(&r),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(MemSource::default()),
                Err(e) => Err(e),
            }
        };
        let t0 = snap("t0")?;
        let t1 = snap("t1")?;
        let mut samples = Vec::new();
        if let Ok(mut names) = top.list("samples") {
            names.sort();
            for n in names {
                samples.push(snap(&format!("samples/{n}"))?);
            }
        }
        let mut probes = BTreeMap::new();
        for n in top.list("probes").unwrap_or_default() {
            if let Ok(b) = top.read(&format!("probes/{n}"), 64 << 20) {
                probes.insert(n, b);
            }
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut fx = MemFixture {
            name,
            meta,
            t0,
            samples,
            t1,
            probes,
            keys: Vec::new(),
        };
        fx.index();
        Ok(fx)
    }

    fn index(&mut self) {
        let files = |m: &MemSource| -> Vec<String> {
            m.nodes
                .iter()
                .filter(|(_, n)| matches!(n, Node::File(_)))
                .map(|(k, _)| k.clone())
                .collect()
        };
        let mut keys = vec![(Part::T0, files(&self.t0)), (Part::T1, files(&self.t1))];
        for (i, s) in self.samples.iter().enumerate() {
            keys.push((Part::Sample(i), files(s)));
        }
        keys.push((Part::Probe, self.probes.keys().cloned().collect()));
        if self.meta.is_some() {
            keys.push((Part::Meta, vec!["meta.json".into()]));
        }
        keys.retain(|(_, k)| !k.is_empty());
        self.keys = keys;
    }

    fn snapshot_mut(&mut self, part: Part) -> Option<&mut MemSource> {
        match part {
            Part::T0 => Some(&mut self.t0),
            Part::T1 => Some(&mut self.t1),
            Part::Sample(i) => self.samples.get_mut(i),
            _ => None,
        }
    }

    /// Write what differs from `base` (the fixture it was mutated from) as a regression input:
    /// a `base` file naming the fixture, the changed files at their paths, and `removed`
    /// listing what was removed. [`MemFixture::load_regression`] reads it back.
    pub fn write_diff(&self, base: &MemFixture, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("base"), format!("{}\n", base.name))?;
        let mut removed = String::new();
        let mut parts: Vec<(String, &MemSource, &MemSource)> = vec![
            ("t0".into(), &self.t0, &base.t0),
            ("t1".into(), &self.t1, &base.t1),
        ];
        for (i, (a, b)) in self.samples.iter().zip(&base.samples).enumerate() {
            parts.push((format!("samples/{i:03}"), a, b));
        }
        for (prefix, a, b) in parts {
            for (k, n) in &a.nodes {
                if b.nodes.get(k) != Some(n) {
                    write_node(&dir.join(&prefix).join(k), n)?;
                }
            }
            for k in b.nodes.keys().filter(|k| !a.nodes.contains_key(*k)) {
                removed.push_str(&format!("{prefix}/{k}\n"));
            }
        }
        if self.meta != base.meta {
            match &self.meta {
                Some(m) => std::fs::write(dir.join("meta.json"), m)?,
                None => removed.push_str("meta.json\n"),
            }
        }
        for (k, v) in &self.probes {
            if base.probes.get(k) != Some(v) {
                write_node(&dir.join("probes").join(k), &Node::File(v.clone()))?;
            }
        }
        for k in base.probes.keys().filter(|k| !self.probes.contains_key(*k)) {
            removed.push_str(&format!("probes/{k}\n"));
        }
        std::fs::write(dir.join("removed"), removed)
    }

    /// A regression input written by [`MemFixture::write_diff`], applied to its base fixture
    /// from `fixtures`.
    pub fn load_regression(dir: &Path, fixtures: &Path) -> io::Result<MemFixture> {
        let base = std::fs::read_to_string(dir.join("base"))?;
        let mut fx = MemFixture::load(&fixtures.join(base.trim()))?;
        let over = MemFixture::load_plain(dir)?;
        let removed = std::fs::read_to_string(dir.join("removed")).unwrap_or_default();
        fx.apply_diff(dir, over, removed.lines())?;
        fx.name = format!("{} (regression {})", fx.name, dir.display());
        fx.index();
        Ok(fx)
    }

    /// Write the fixture out as a directory (a crashing input becomes a regression fixture).
    pub fn write_to(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        if let Some(m) = &self.meta {
            std::fs::write(dir.join("meta.json"), m)?;
        }
        let snap = |m: &MemSource, d: &Path| -> io::Result<()> {
            for (k, n) in &m.nodes {
                let p = d.join(k);
                match n {
                    Node::Dir => std::fs::create_dir_all(&p)?,
                    Node::File(b) => {
                        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
                        std::fs::write(&p, b)?;
                    }
                    Node::Link(t) => {
                        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
                        std::os::unix::fs::symlink(t, &p)?;
                    }
                    Node::Refused(_) => {
                        std::fs::create_dir_all(p.parent().expect("has a parent"))?;
                        rustix::fs::mknodat(
                            rustix::fs::CWD,
                            &p,
                            rustix::fs::FileType::Fifo,
                            rustix::fs::Mode::from_raw_mode(0o600),
                            0,
                        )?;
                    }
                }
            }
            Ok(())
        };
        snap(&self.t0, &dir.join("t0"))?;
        snap(&self.t1, &dir.join("t1"))?;
        for (i, s) in self.samples.iter().enumerate() {
            snap(s, &dir.join(format!("samples/{i:03}")))?;
        }
        for (n, b) in &self.probes {
            std::fs::create_dir_all(dir.join("probes"))?;
            std::fs::write(dir.join("probes").join(n), b)?;
        }
        Ok(())
    }
}

fn write_node(p: &Path, n: &Node) -> io::Result<()> {
    std::fs::create_dir_all(p.parent().expect("has a parent"))?;
    match n {
        Node::Dir => std::fs::create_dir_all(p),
        Node::File(b) => std::fs::write(p, b),
        Node::Link(t) => std::os::unix::fs::symlink(t, p),
        Node::Refused(_) => Ok(rustix::fs::mknodat(
            rustix::fs::CWD,
            p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )?),
    }
}

/// A small, fast, seedable generator (splitmix64): runs are reproducible from their seed.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Values that break arithmetic and parsers.
const NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "4294967295",
    "4294967296",
    "2147483648",
    "-1",
    "-9223372036854775808",
    "0",
    "00000000000000000000000001",
    "340282366920938463463374607431768211456",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "-0",
    "0.0000001",
    "",
];

/// What one mutation changed, to undo it.
#[derive(Debug, Clone)]
pub struct Undo {
    part: Part,
    key: String,
    before: Option<Node>,
    /// For the report.
    pub what: String,
}

fn get(fx: &MemFixture, part: Part, key: &str) -> Option<Node> {
    match part {
        Part::Meta => fx.meta.clone().map(Node::File),
        Part::Probe => fx.probes.get(key).cloned().map(Node::File),
        Part::T0 => fx.t0.nodes.get(key).cloned(),
        Part::T1 => fx.t1.nodes.get(key).cloned(),
        Part::Sample(i) => fx.samples.get(i).and_then(|s| s.nodes.get(key).cloned()),
    }
}

fn set(fx: &mut MemFixture, part: Part, key: &str, node: Option<Node>) {
    let bytes = |n: Option<Node>| match n {
        Some(Node::File(b)) => Some(b),
        _ => None,
    };
    match part {
        Part::Meta => fx.meta = bytes(node),
        Part::Probe => match bytes(node) {
            Some(b) => {
                fx.probes.insert(key.to_string(), b);
            }
            None => {
                fx.probes.remove(key);
            }
        },
        p => {
            if let Some(s) = fx.snapshot_mut(p) {
                match node {
                    Some(n) => s.nodes.insert(key.to_string(), n),
                    None => s.nodes.remove(key),
                };
            }
        }
    }
}

/// Digit runs (with a leading `-`) in `b`, as (start, end).
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let s = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

/// Mutate the bytes of one file; returns what was done.
fn mutate_bytes(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let len = b.len();
    match rng.below(12) {
        0 => {
            let at = rng.below(len + 1);
            b.truncate(at);
            format!("truncated at {at}")
        }
        1 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let junk: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            b.splice(at..at, junk);
            format!("{n} garbage bytes at {at}")
        }
        2 if len > 0 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let i = rng.below(len);
                b[i] = rng.next_u64() as u8;
            }
            format!("{n} bytes changed")
        }
        3..=5 => {
            let nums = numbers(b);
            if nums.is_empty() {
                b.extend_from_slice(b" 18446744073709551615");
                return "u64::MAX appended".into();
            }
            let (s, e) = nums[rng.below(nums.len())];
            let v = NUMBERS[rng.below(NUMBERS.len())];
            b.splice(s..e, v.bytes());
            format!("number at {s} -> {v:?}")
        }
        6 => {
            // Every number huge: sums and products overflow.
            let v = NUMBERS[rng.below(8)];
            for (s, e) in numbers(b).into_iter().rev() {
                b.splice(s..e, v.bytes());
            }
            format!("every number -> {v:?}")
        }
        7 => {
            let lines: Vec<&[u8]> = b.split(|c| *c == b'\n').collect();
            let i = rng.below(lines.len());
            let mut out: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
            let what = if rng.below(2) == 0 {
                out.insert(i, lines[i].to_vec());
                format!("line {i} duplicated")
            } else {
                out.remove(i);
                format!("line {i} removed")
            };
            *b = out.join(&b'\n');
            what
        }
        8 => {
            b.clear();
            "emptied".into()
        }
        9 => {
            let at = rng.below(len + 1);
            b.splice(at..at, [0xff, 0xfe, 0x00, b'\n', 0xc3]);
            format!("invalid UTF-8 and NUL at {at}")
        }
        10 => {
            let n = 1 + rng.below(64 << 10);
            let c = [b'9', b' ', b'(', b'x'][rng.below(4)];
            let at = rng.below(len + 1);
            b.splice(at..at, std::iter::repeat_n(c, n));
            format!("{n} x {:?} at {at}", c as char)
        }
        _ => {
            let at = rng.below(len + 1);
            let s = [
                "\u{202e}",
                "\u{1b}[2J",
                "\n\n",
                "\t",
                ")",
                "(",
                ":",
                "[",
                "]",
                "{",
            ][rng.below(10)];
            b.splice(at..at, s.bytes());
            format!("{s:?} at {at}")
        }
    }
}

/// Apply one to three mutations; returns how to undo them (in order).
pub fn mutate(fx: &mut MemFixture, rng: &mut Rng) -> Vec<Undo> {
    let mut undos = Vec::new();
    if fx.keys.is_empty() {
        return undos;
    }
    for _ in 0..1 + rng.below(3) {
        // t1 is read most (end facts): weight it double.
        let pick = rng.below(fx.keys.len() + 1);
        let (part, keys) = &fx.keys[pick.min(fx.keys.len() - 1)];
        let part = *part;
        // The netlink recordings (`qdisc.json`, `sock_diag_*.json`) are a few files among
        // thousands: one mutation in eight picks one of them when the snapshot has any.
        let recorded: Vec<&String> = keys
            .iter()
            .filter(|k| !k.contains('/') && k.ends_with(".json"))
            .collect();
        let key = if !recorded.is_empty() && rng.below(8) == 0 {
            recorded[rng.below(recorded.len())].clone()
        } else {
            keys[rng.below(keys.len())].clone()
        };
        undos.push(mutate_file(fx, part, &key, rng));
    }
    undos
}

/// One mutation of the file `key` of `part` (removed, replaced by a link out of the tree or a
/// FIFO, or its bytes mutated); returns how to undo it.
pub fn mutate_file(fx: &mut MemFixture, part: Part, key: &str, rng: &mut Rng) -> Undo {
    {
        let key = key.to_string();
        let before = get(fx, part, &key);
        let snapshot = matches!(part, Part::T0 | Part::T1 | Part::Sample(_));
        let (node, what) = match rng.below(20) {
            0 => (None, "removed".to_string()),
            1 if snapshot => (
                Some(Node::Link(
                    ["/etc/shadow", "../../../../../../etc/passwd", "/dev/zero"][rng.below(3)]
                        .into(),
                )),
                "a symlink out of the tree".into(),
            ),
            2 if snapshot => (
                Some(Node::Refused("a FIFO is not read".into())),
                "a FIFO".into(),
            ),
            _ => {
                let mut b = match &before {
                    Some(Node::File(b)) => b.clone(),
                    _ => Vec::new(),
                };
                let w = mutate_bytes(&mut b, rng);
                (Some(Node::File(b)), w)
            }
        };
        set(fx, part, &key, node);
        Undo {
            part,
            key: key.clone(),
            before,
            what: format!("{part:?} {key}: {what}"),
        }
    }
}

/// Put back what `undos` changed.
pub fn undo(fx: &mut MemFixture, undos: Vec<Undo>) {
    for u in undos.into_iter().rev() {
        set(fx, u.part, &u.key, u.before);
    }
}

/// Replay the fixture through everything that reads it; `round` rotates the deep dive. Panics
/// are what the harness looks for; the return value (bytes rendered) only keeps the work from
/// being optimized away.
pub fn exercise(fx: &MemFixture, round: u64) -> usize {
    let analysis = Analysis::default();
    let mut out = 0;
    let mut readings = None;
    if let Some(meta) = &fx.meta {
        let samples: Vec<&dyn Source> = fx.samples.iter().map(|s| s as &dyn Source).collect();
        if let Ok(r) = run::from_sources(meta, &fx.t0, &samples, &fx.t1, &Spec::ALL) {
            let rep = analyze::build_report(&r, "sixty-second", &analysis);
            out += render::json(&rep).len();
            out += render::table::render(&rep, &render::table::Style { color: false }).len();
            use crate::commands::views;
            let focus = views::DEEP[(round % 4) as usize];
            let scope = model::deep::Scope {
                pid: None,
                cgroup: None,
                top: 10,
            };
            let d = crate::commands::pipeline::report(&r, focus, &scope, &analysis);
            out += render::json(&d).len();
            out += render::table::render(&d, &render::table::Style { color: true }).len();
            readings = Some(r);
        }
    }
    if let Some(b) = fx.probes.get("offcpu.json") {
        if let Ok(p) = serde_json::from_slice::<model::offcpu::OffcpuProbe>(b) {
            out += p.stacks.iter().map(|s| s.folded().len()).sum::<usize>();
            let rep = crate::commands::offcpu::report(p, 10, false);
            out += render::json(&rep).len();
            out += render::table::render(&rep, &render::table::Style { color: false }).len();
        }
    }
    if let Some(r) = &readings {
        if let Some(b) = fx.probes.get("latency.json") {
            if let Ok(l) = serde_json::from_slice::<model::offcpu::LatencyReadings>(b) {
                let mut rep = analyze::build_report(r, "sixty-second", &analysis);
                crate::commands::latency::add_latency(&mut rep, Some(&l), None);
                out += render::json(&rep).len();
                out += render::table::render(&rep, &render::table::Style { color: false }).len();
            }
        }
        if let Some(b) = fx.probes.get("syscalls.json") {
            if let Ok(p) = serde_json::from_slice::<crate::probe::output::SyscallsProbe>(b) {
                let rep = crate::commands::syscalls::report(r, Some(&p), Vec::new(), &analysis);
                out += render::json(&rep).len();
                out += render::table::render(&rep, &render::table::Style { color: false }).len();
            }
        }
    }
    out
}
