//! How the deep views are scoped (`--pid`, `--cgroup`, `--top`), and the helpers the deep
//! sections share: cutting a top list (saying how many rows were left out), a process at both
//! ends of the window, PSI stall time in the window.

use std::collections::BTreeMap;

use crate::collect::procs::ProcSample;
use crate::collect::run::Readings;
use crate::num::{delta, r2};

/// How the deep views are scoped (`--pid`, `--cgroup`, `--top`).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub pid: Option<i32>,
    pub cgroup: Option<String>,
    pub top: usize,
}

impl Scope {
    /// Does process `pid` belong in the view?
    pub fn wants(&self, r: &Readings, pid: i32) -> bool {
        if let Some(p) = self.pid {
            if p != pid {
                return false;
            }
        }
        if let Some(cg) = &self.cgroup {
            return r
                .end
                .deep
                .proc_cgroups
                .get(&pid)
                .is_some_and(|c| in_cgroup(c, cg));
        }
        true
    }
}

/// `/a/b/c` is in `/a/b` (and in `/a/b/`), not in `/a/bc`.
pub fn in_cgroup(path: &str, scope: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    scope.is_empty() || path == scope || path.starts_with(&format!("{scope}/"))
}

/// Cut `v` to `n` rows, recording how many were left out under `name` (JSON never drops rows
/// silently).
pub fn cut<T>(v: &mut Vec<T>, n: usize, name: &str, left_out: &mut BTreeMap<String, usize>) {
    if v.len() > n {
        left_out.insert(name.to_string(), v.len() - n);
        v.truncate(n);
    }
}

/// Stall time of PSI `res` in the window, ms (`full` when asked).
pub fn psi_stall_ms(r: &Readings, res: &str, full: bool) -> Option<f64> {
    let pick = |p: &crate::collect::system::Psi| {
        if full {
            p.full.map(|f| f.total_us)
        } else {
            Some(p.some.total_us)
        }
    };
    let a = pick(r.t0.system.psi.get(res)?)?;
    let b = pick(r.t1.system.psi.get(res)?)?;
    delta(a, b).map(|d| r2(d as f64 / 1000.0))
}

/// Same process at both ends (pid and start time), else None.
pub fn before<'a>(r: &'a Readings, p: &ProcSample) -> Option<&'a ProcSample> {
    r.t0.procs
        .procs
        .get(&p.pid)
        .filter(|o| o.starttime == p.starttime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_scope_is_by_path_component() {
        assert!(in_cgroup("/a/b/c", "/a/b"));
        assert!(in_cgroup("/a/b", "/a/b/"));
        assert!(!in_cgroup("/a/bc", "/a/b"));
        assert!(in_cgroup("/anything", "/"));
    }
}
