//! Block I/O of cgroups, for `triage disk`: bytes and operations per device, the throttling
//! limits set on them, and (v2) I/O pressure. cgroup v2: `io.stat`, `io.max`, `io.pressure`;
//! v1: `blkio.throttle.io_service_bytes`, `blkio.throttle.io_serviced` and
//! `blkio.throttle.{read,write}_{bps,iops}_device`. Only groups with a limit or with I/O are
//! kept; a file that is absent is simply not there (not every kernel has every file).

use std::collections::BTreeMap;

use super::cgroup::CgroupLayout;
use super::system::{parse_psi, Psi};
use crate::host::Source;

/// At most this many cgroup directories are visited per hierarchy.
pub const MAX_IO_CGROUPS: usize = 2000;

/// One limit: device, kind (`rbps`, `wbps`, `riops`, `wiops`) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoLimit {
    pub device: String,
    pub kind: String,
    pub value: u64,
}

/// Counters of one cgroup, summed over devices (since the cgroup was created).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoCg {
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ios: u64,
    pub write_ios: u64,
    /// Per device `MAJ:MIN` -> (read bytes, write bytes), to compare with per-device limits.
    pub per_device: BTreeMap<String, (u64, u64)>,
    pub limits: Vec<IoLimit>,
    pub pressure: Option<Psi>,
    pub v1: bool,
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
pub fn parse_io_stat(text: &str, cg: &mut IoCg) {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(dev) = it.next() else { continue };
        let (mut rb, mut wb) = (0, 0);
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => rb = v,
                "wbytes" => wb = v,
                "rios" => cg.read_ios += v,
                "wios" => cg.write_ios += v,
                _ => {}
            }
        }
        cg.read_bytes += rb;
        cg.write_bytes += wb;
        cg.per_device.insert(dev.to_string(), (rb, wb));
    }
}

/// v2 `io.max`: `8:0 rbps=max wbps=1048576 riops=max wiops=max`.
pub fn parse_io_max(text: &str) -> Vec<IoLimit> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let Some(dev) = it.next() else { continue };
        for kv in it {
            if let Some((k, v)) = kv.split_once('=') {
                if let Ok(value) = v.parse::<u64>() {
                    out.push(IoLimit {
                        device: dev.to_string(),
                        kind: k.to_string(),
                        value,
                    });
                }
            }
        }
    }
    out
}

/// v1 `blkio.throttle.io_service_bytes` / `io_serviced`: `8:0 Read 123` lines, `Total` last.
/// Returns per device (read, write).
pub fn parse_v1_service(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let v: Vec<&str> = line.split_ascii_whitespace().collect();
        if v.len() != 3 {
            continue;
        }
        let Ok(n) = v[2].parse::<u64>() else { continue };
        let e = out.entry(v[0].to_string()).or_default();
        match v[1] {
            "Read" => e.0 += n,
            "Write" => e.1 += n,
            _ => {}
        }
    }
    out
}

/// v1 `blkio.throttle.read_bps_device`: `8:0 1048576` lines.
pub fn parse_v1_limit(text: &str, kind: &str) -> Vec<IoLimit> {
    text.lines()
        .filter_map(|l| {
            let (dev, v) = l.split_once(' ')?;
            Some(IoLimit {
                device: dev.to_string(),
                kind: kind.to_string(),
                value: v.trim().parse().ok()?,
            })
        })
        .collect()
}

fn join(mount: &str, cg: &str) -> String {
    if cg == "/" {
        mount.to_string()
    } else {
        format!("{mount}{cg}")
    }
}

/// Walk one hierarchy, calling `read` for every cgroup path (`/`, `/a`, `/a/b`).
fn walk(src: &dyn Source, mount: &str, mut read: impl FnMut(&str, &str)) {
    let mut stack = vec!["/".to_string()];
    let mut budget = MAX_IO_CGROUPS;
    while let Some(cg) = stack.pop() {
        if budget == 0 {
            break;
        }
        budget -= 1;
        let dir = join(mount, &cg);
        let Ok(mut names) = src.list(&dir) else {
            continue;
        };
        read(&cg, &dir);
        names.sort();
        for n in names.iter().rev() {
            // Control files have a dot (`io.stat`); systemd's cgroups too, with these endings.
            let unit = [".slice", ".service", ".scope", ".mount", ".socket"]
                .iter()
                .any(|e| n.ends_with(e));
            let is_file = (n.contains('.') && !unit)
                || matches!(n.as_str(), "tasks" | "notify_on_release" | "release_agent");
            if !is_file {
                let child = if cg == "/" {
                    format!("/{n}")
                } else {
                    format!("{cg}/{n}")
                };
                stack.push(child);
            }
        }
    }
}

/// Every cgroup with block I/O counters or limits, by path.
pub fn scan(src: &dyn Source, layout: &CgroupLayout) -> BTreeMap<String, IoCg> {
    let mut out: BTreeMap<String, IoCg> = BTreeMap::new();
    if let Some(m) = &layout.v2_mount {
        walk(src, m, |cg, dir| {
            let mut io = IoCg::default();
            let mut any = false;
            if let Ok(t) = src.read_string(&format!("{dir}/io.stat")) {
                parse_io_stat(&t, &mut io);
                any = true;
            }
            if let Ok(t) = src.read_string(&format!("{dir}/io.max")) {
                io.limits = parse_io_max(&t);
            }
            if let Ok(t) = src.read_string(&format!("{dir}/io.pressure")) {
                io.pressure = parse_psi(&t).ok();
                any = true;
            }
            if any {
                out.insert(cg.to_string(), io);
            }
        });
    }
    if let Some(m) = layout.v1_mounts.get("blkio") {
        walk(src, m, |cg, dir| {
            let Ok(t) = src.read_string(&format!("{dir}/blkio.throttle.io_service_bytes")) else {
                return;
            };
            let mut io = IoCg {
                v1: true,
                per_device: parse_v1_service(&t),
                ..Default::default()
            };
            for (r, w) in io.per_device.values() {
                io.read_bytes += r;
                io.write_bytes += w;
            }
            if let Ok(t) = src.read_string(&format!("{dir}/blkio.throttle.io_serviced")) {
                for (r, w) in parse_v1_service(&t).values() {
                    io.read_ios += r;
                    io.write_ios += w;
                }
            }
            for (file, kind) in [
                ("read_bps_device", "rbps"),
                ("write_bps_device", "wbps"),
                ("read_iops_device", "riops"),
                ("write_iops_device", "wiops"),
            ] {
                if let Ok(t) = src.read_string(&format!("{dir}/blkio.throttle.{file}")) {
                    io.limits.extend(parse_v1_limit(&t, kind));
                }
            }
            // In a hybrid layout the same path may exist in v2 (pressure only): merge.
            match out.get_mut(cg) {
                Some(v2) => {
                    let pressure = v2.pressure;
                    *v2 = io;
                    v2.pressure = pressure;
                }
                None => {
                    out.insert(cg.to_string(), io);
                }
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_stat_and_max() {
        let mut cg = IoCg::default();
        parse_io_stat(
            "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=1 wbytes=0 rios=1 wios=0\n",
            &mut cg,
        );
        assert_eq!(
            (cg.read_bytes, cg.write_bytes, cg.read_ios, cg.write_ios),
            (4097, 8192, 2, 2)
        );
        assert_eq!(cg.per_device["254:0"], (4096, 8192));
        let l = parse_io_max("254:0 rbps=max wbps=1048576 riops=max wiops=100\n");
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].kind.as_str(), l[0].value), ("wbps", 1048576));
    }

    #[test]
    fn v1_service_and_limits() {
        let s = parse_v1_service(
            "254:0 Read 100\n254:0 Write 200\n254:0 Sync 300\n254:0 Total 300\nTotal 300\n",
        );
        assert_eq!(s["254:0"], (100, 200));
        let l = parse_v1_limit("254:0 10485760\n", "wbps");
        assert_eq!(l[0].value, 10485760);
    }
}
