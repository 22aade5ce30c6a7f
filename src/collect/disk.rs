//! Block devices (/proc/diskstats, /sys/block) and mounted filesystems (mountinfo + statvfs).

use procfs_core::process::MountInfos;
use procfs_core::{DiskStat, FromRead};

use super::Problem;
use crate::host::{FsStat, Source};

/// Whole disks known to /sys/block, with the facts iostat's caveats need.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDevice {
    pub name: String,
    /// `queue/rotational`: false for SSD/NVMe/virtual devices (then %util says little).
    pub rotational: Option<bool>,
    /// `queue/nr_requests` etc. are not needed; multi-queue is told by `mq/` existing.
    pub multi_queue: bool,
}

/// Devices backed by memory or files: counted but not judged as disks.
pub fn is_virtual_block(name: &str) -> bool {
    name.starts_with("loop")
        || name.starts_with("ram")
        || name.starts_with("zram")
        || name.starts_with("nbd")
}

pub fn read_diskstats(src: &dyn Source, problems: &mut Vec<Problem>) -> Option<Vec<DiskStat>> {
    let text = match src.read_string("proc/diskstats") {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::io("disk I/O counters", "proc/diskstats", &e));
            return None;
        }
    };
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match DiskStat::from_line(line) {
            Ok(d) => out.push(d),
            Err(_) => bad += 1,
        }
    }
    if bad > 0 {
        problems.push(Problem::new(
            "disk I/O counters",
            "proc/diskstats",
            format!("{bad} unparseable line(s) skipped"),
        ));
    }
    Some(out)
}

/// Whole disks from /sys/block (partitions are not listed there).
pub fn read_block_devices(src: &dyn Source) -> Option<Vec<BlockDevice>> {
    let mut names = src.list("sys/block").ok()?;
    names.sort();
    Some(
        names
            .into_iter()
            .map(|name| {
                let rotational = src
                    .read_string(&format!("sys/block/{name}/queue/rotational"))
                    .ok()
                    .and_then(|t| match t.trim() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    });
                let multi_queue = src.list(&format!("sys/block/{name}/mq")).is_ok();
                BlockDevice {
                    name,
                    rotational,
                    multi_queue,
                }
            })
            .collect(),
    )
}

/// A mounted filesystem worth checking for space (pseudo filesystems skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub mount_point: String,
    pub fs_type: String,
    pub device: String,
    pub stat: Option<FsStat>,
}

/// Filesystems that never fill up in a way an operator acts on, or are always 100% full.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "rpc_pipefs",
    "nsfs",
    "ramfs",
    "efivarfs",
    "selinuxfs",
    "devtmpfs",
    "squashfs",
    "iso9660",
    "nfsd",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "overlay.lower",
];

/// Mounts from our own mountinfo, one per device (bind mounts of the same filesystem collapse
/// onto the shortest mount point), with statvfs for each.
pub fn read_mounts(src: &dyn Source, problems: &mut Vec<Problem>) -> Vec<Mount> {
    let infos = match src.read("proc/self/mountinfo") {
        Ok(b) => match MountInfos::from_read(&b[..]) {
            Ok(m) => m,
            Err(e) => {
                problems.push(Problem::parse(
                    "filesystem space",
                    "proc/self/mountinfo",
                    &e,
                ));
                return Vec::new();
            }
        },
        Err(e) => {
            problems.push(Problem::io("filesystem space", "proc/self/mountinfo", &e));
            return Vec::new();
        }
    };
    let mut by_dev: std::collections::BTreeMap<String, Mount> = std::collections::BTreeMap::new();
    for m in infos.0 {
        if PSEUDO_FS.contains(&m.fs_type.as_str()) {
            continue;
        }
        let mount_point = m.mount_point.to_string_lossy().into_owned();
        // Kernel interface trees hold nothing an operator fills up.
        if mount_point.starts_with("/proc/")
            || mount_point.starts_with("/sys/")
            || mount_point == "/sys"
        {
            continue;
        }
        let key = format!("{}:{} {}", m.majmin, m.root, m.fs_type);
        let dev_key = if m.fs_type == "tmpfs" || m.fs_type == "overlay" {
            // Every tmpfs is its own filesystem with the same name: key by mount point.
            format!("{key} {mount_point}")
        } else {
            m.majmin.clone()
        };
        let keep = match by_dev.get(&dev_key) {
            Some(prev) => mount_point.len() < prev.mount_point.len(),
            None => true,
        };
        if keep {
            by_dev.insert(
                dev_key,
                Mount {
                    mount_point,
                    fs_type: m.fs_type.clone(),
                    device: m.mount_source.clone().unwrap_or_default(),
                    stat: None,
                },
            );
        }
    }
    let mut mounts: Vec<Mount> = by_dev.into_values().collect();
    mounts.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    // A mount point mounted over twice shows only the top mount's filesystem.
    mounts.dedup_by(|b, a| a.mount_point == b.mount_point);
    for m in &mut mounts {
        match src.statvfs(&m.mount_point) {
            Ok(s) => m.stat = Some(s),
            Err(e) => problems.push(Problem::io(
                format!("space of {}", m.mount_point),
                &m.mount_point,
                &e,
            )),
        }
    }
    mounts
}
