//! The fleet engines for real: three "hosts" (network + PID + UTS namespaces on a private
//! bridge, each with its own sshd), one with a shaped, dropping link that makes TCP retransmit
//! in its namespace only. The Ansible playbook, the parallel-ssh recipe and the plain-ssh loop
//! each copy the binary, run `triage sixty-second --json` on every host, collect the reports
//! and run `triage fleet`: the faulty host must rank first and the retransmits be "only" there.
//! Everything (namespaces, sshds, traffic) is torn down afterwards, also on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lab_sh() -> PathBuf {
    repo().join("tests/fleet/lab.sh")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Tears the lab down when dropped, so a failing assertion still cleans up.
struct Lab {
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(lab_sh())
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

impl Lab {
    fn ctl(&self) -> String {
        std::fs::read_to_string(self.dir.join("ctl"))
            .expect("ctl namespace name")
            .trim()
            .to_string()
    }

    /// `CMD` in the control namespace, killed after `secs`.
    fn in_ctl(&self, secs: u32, envs: &[(&str, String)], cmd: &[&str]) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ctl(), "timeout", &secs.to_string()]);
        c.args(cmd);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("spawn ip netns exec")
    }
}

/// A stripped copy of the test binary: the same code, a fifth of the bytes to copy.
fn small_binary(dir: &Path) -> PathBuf {
    let dst = dir.join("triage");
    std::fs::copy(env!("CARGO_BIN_EXE_triage"), &dst).expect("copy binary");
    let _ = Command::new("strip").arg(&dst).status();
    dst
}

/// The fleet document written by an engine: the faulty host first, the retransmits only there.
fn assert_fault_ranked_first(fleet_json: &Path, engine: &str) {
    let text = std::fs::read_to_string(fleet_json)
        .unwrap_or_else(|e| panic!("{engine}: {}: {e}", fleet_json.display()));
    let f: serde_json::Value = serde_json::from_str(&text).expect("fleet JSON");
    assert_eq!(f["reports_read"], 3, "{engine}: {text}");
    assert_eq!(
        f["skipped"].as_array().unwrap().len(),
        0,
        "{engine}: {text}"
    );
    let hosts: Vec<&str> = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 3);
    assert_eq!(
        hosts[0], "h2",
        "{engine}: the faulty host is not first: {hosts:?}"
    );
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(sorted, ["h1", "h2", "h3"], "{engine}");
    assert_eq!(f["hosts"][0]["worst_severity"], "critical", "{engine}");
    let retrans = f["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == "tcp.errors.retransmits")
        .unwrap_or_else(|| panic!("{engine}: no retransmit group: {text}"));
    assert_eq!(retrans["hosts"], 1, "{engine}: {retrans}");
    assert_eq!(retrans["spread"], "one");
    assert_eq!(retrans["host_labels"], serde_json::json!(["h2"]));
    // h2 stands out on its retransmit rate against the two clean hosts.
    let outlier = f["outliers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["metric"] == "tcp.retrans_segs_per_s")
        .unwrap_or_else(|| panic!("{engine}: no retransmit outlier: {text}"));
    assert_eq!(outlier["host"], "h2");
    assert!(outlier["value"].as_f64().unwrap() >= 10.0, "{outlier}");
    // In parallel: the three 1 s windows start within 2 s of each other (one after the other,
    // each window plus its ssh round trips, they could not).
    let starts: Vec<f64> = f["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let t: jiff::Timestamp = h["window_start"].as_str().unwrap().parse().unwrap();
            t.as_millisecond() as f64 / 1000.0
        })
        .collect();
    let spread = starts.iter().cloned().fold(f64::MIN, f64::max)
        - starts.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!("{engine}: windows started within {spread:.2} s");
    assert!(
        spread < 2.0,
        "{engine}: windows started {spread:.2} s apart"
    );
}

#[test]
#[ignore = "needs root: network namespaces + sshd"]
fn engines_rank_the_faulty_host_first() {
    let started = Instant::now();
    let deps = Command::new("bash")
        .arg(lab_sh())
        .arg("deps")
        .output()
        .unwrap();
    assert!(
        deps.status.success(),
        "installing the lab's packages: {}",
        show(&deps)
    );
    let installed = started.elapsed();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let id = format!("{:04x}", std::process::id() & 0xffff);
    let lab = Lab {
        dir: dir.join("lab"),
    };
    // Traffic for at most 150 s; teardown kills it sooner.
    let up = Command::new("bash")
        .arg(lab_sh())
        .args(["up", lab.dir.to_str().unwrap(), &id, "3", "2", "150"])
        .output()
        .unwrap();
    assert!(up.status.success(), "lab up: {}", show(&up));
    let bin = small_binary(&dir);
    let bin_s = bin.display().to_string();
    let key = lab.dir.join("id").display().to_string();
    let ssh_opts = format!(
        "-i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -l root"
    );
    let args = "--duration 1 --no-bpf";
    // Give the sender a moment so the window sees a steady retransmit rate.
    std::thread::sleep(Duration::from_millis(500));

    // Ansible.
    let ans = dir.join("ansible");
    let reports = ans.join("reports");
    let o = lab.in_ctl(
        100,
        &[
            (
                "ANSIBLE_CONFIG",
                repo()
                    .join("contrib/ansible/ansible.cfg")
                    .display()
                    .to_string(),
            ),
            ("ANSIBLE_HOST_KEY_CHECKING", "False".into()),
            (
                "ANSIBLE_LOCAL_TEMP",
                ans.join("tmp-local").display().to_string(),
            ),
            (
                "ANSIBLE_REMOTE_TMP",
                ans.join("tmp-remote").display().to_string(),
            ),
            (
                "ANSIBLE_SSH_CONTROL_PATH_DIR",
                ans.join("cp").display().to_string(),
            ),
            ("ANSIBLE_NOCOLOR", "1".into()),
        ],
        &[
            "ansible-playbook",
            "-i",
            lab.dir.join("inventory").to_str().unwrap(),
            repo().join("contrib/ansible/triage.yml").to_str().unwrap(),
            "-e",
            &format!("triage_binary={bin_s}"),
            "-e",
            &format!("triage_reports={}", reports.display()),
            "-e",
            // One directory per host: the lab's hosts share a filesystem.
            &format!(
                "triage_remote_dir={}/{{{{ inventory_hostname }}}}",
                ans.join("remote").display()
            ),
            "-e",
            &format!("triage_args='{args}'"),
        ],
    );
    assert!(o.status.success(), "ansible-playbook: {}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("only h2"), "the playbook's fleet table: {out}");
    for h in ["h1", "h2", "h3"] {
        assert!(
            reports.join(format!("{h}.json")).is_file(),
            "no report fetched from {h}"
        );
    }
    assert_fault_ranked_first(&ans.join("fleet.json"), "ansible");
    assert!(ans.join("fleet.md").is_file());
    // triage_keep=false: the hosts were cleaned.
    assert!(ans.join("remote/h1").is_dir() && !ans.join("remote/h1/triage").exists());
    let after_ansible = started.elapsed();

    // parallel-ssh.
    let p = dir.join("pssh");
    let o = lab.in_ctl(
        60,
        &[
            ("TRIAGE_BIN", bin_s.clone()),
            ("TRIAGE_REMOTE_DIR", p.join("remote").display().to_string()),
            ("SSH_OPTS", ssh_opts.clone()),
        ],
        &[
            repo().join("contrib/ssh/triage-pssh.sh").to_str().unwrap(),
            lab.dir.join("hosts").to_str().unwrap(),
            p.to_str().unwrap(),
            "--",
            "--duration",
            "1",
            "--no-bpf",
        ],
    );
    assert!(o.status.success(), "triage-pssh.sh: {}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("only h2"),
        "{}",
        show(&o)
    );
    assert_fault_ranked_first(&p.join("fleet.json"), "parallel-ssh");

    // Plain ssh in a loop.
    let s = dir.join("ssh");
    let o = lab.in_ctl(
        60,
        &[
            ("TRIAGE_BIN", bin_s.clone()),
            ("TRIAGE_REMOTE_DIR", s.join("remote").display().to_string()),
            ("SSH_OPTS", ssh_opts.clone()),
        ],
        &[
            repo().join("contrib/ssh/triage-ssh.sh").to_str().unwrap(),
            lab.dir.join("hosts").to_str().unwrap(),
            s.to_str().unwrap(),
            "--",
            "--duration",
            "1",
            "--no-bpf",
        ],
    );
    assert!(o.status.success(), "triage-ssh.sh: {}", show(&o));
    assert_fault_ranked_first(&s.join("fleet.json"), "ssh loop");

    let ctl = lab.ctl();
    drop(lab);
    // Torn down: none of our namespaces is left.
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let prefix = ctl.trim_end_matches("-ctl");
    assert!(!list.contains(prefix), "namespaces left behind: {list}");
    eprintln!(
        "fleet lab: packages {:.1} s, ansible done at {:.1} s, total {:.1} s",
        installed.as_secs_f64(),
        after_ansible.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        started.elapsed() - installed < Duration::from_secs(150),
        "the lab took {:?}",
        started.elapsed()
    );
}
