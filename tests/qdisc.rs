//! Qdisc drops for real, as root: a tbf on a veth of the root namespace that drops the bulk
//! TCP traffic the root namespace forwards to it from a sender namespace (the topology of
//! tests/workloads/qdisc-drops.sh, with the repo's own workload binary as sender and
//! receiver). `triage net --json` must see the drops on that interface, name it in the
//! finding, and tie the senders' retransmits to it. Everything is torn down by a drop guard,
//! even when an assertion fails.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NS_TX: &str = "triage-qd-tx";
const NS_RX: &str = "triage-qd-rx";
/// Root-namespace ends: `IF_TX` faces the sender, `IF_SHAPED` (with the tbf) the receiver.
const IF_TX: &str = "trqs0";
const IF_SHAPED: &str = "trq0";

fn sh(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The namespaces, links and processes of the test; dropping it removes them all.
struct Topology {
    children: Vec<Child>,
}

impl Topology {
    fn teardown() {
        for ns in [NS_TX, NS_RX] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        for l in [IF_TX, IF_SHAPED] {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(Stdio::null())
                .output();
        }
    }

    fn up() -> Topology {
        Self::teardown();
        let t = Topology {
            children: Vec::new(),
        };
        for ns in [NS_TX, NS_RX] {
            sh(&["ip", "netns", "add", ns]);
        }
        let ip = |a: &str| {
            let v: Vec<&str> = a.split_whitespace().collect();
            sh(&v);
        };
        ip(&format!(
            "ip link add {IF_TX} type veth peer name trqs1 netns {NS_TX}"
        ));
        ip(&format!(
            "ip link add {IF_SHAPED} type veth peer name trq1 netns {NS_RX}"
        ));
        ip(&format!("ip addr add 10.204.1.1/24 dev {IF_TX}"));
        ip(&format!("ip addr add 10.204.0.1/24 dev {IF_SHAPED}"));
        ip(&format!("ip link set {IF_TX} up"));
        ip(&format!("ip link set {IF_SHAPED} up"));
        for (ns, dev, addr, gw) in [
            (NS_TX, "trqs1", "10.204.1.2/24", "10.204.1.1"),
            (NS_RX, "trq1", "10.204.0.2/24", "10.204.0.1"),
        ] {
            ip(&format!("ip -n {ns} addr add {addr} dev {dev}"));
            ip(&format!("ip -n {ns} link set {dev} up"));
            ip(&format!("ip -n {ns} link set lo up"));
            ip(&format!("ip -n {ns} route add default via {gw}"));
        }
        // IPv4 forwarding is decided per input interface: only these two forward, the host's
        // own setting (net.ipv4.ip_forward) is left alone.
        for dev in [IF_TX, IF_SHAPED] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{dev}/forwarding"), "1").unwrap();
        }
        ip(&format!(
            "tc qdisc add dev {IF_SHAPED} root tbf rate 8mbit burst 32kbit latency 20ms"
        ));
        t
    }

    fn spawn_in(&mut self, ns: &str, args: &[&str]) {
        let c = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                env!("CARGO_BIN_EXE_triage-workload"),
                "--now",
            ])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(c);
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        Self::teardown();
    }
}

fn tc_drops() -> u64 {
    let o = Command::new("tc")
        .args(["-s", "qdisc", "show", "dev", IF_SHAPED])
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    t.split("dropped ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no drop count in {t}"))
}

#[test]
#[ignore = "needs root: netns + tc"]
fn live_qdisc_drops_are_named_and_explain_the_retransmits() {
    common::require_root();
    let mut topo = Topology::up();
    topo.spawn_in(NS_RX, &["tcp-sink", "10.204.0.2:5201"]);
    std::thread::sleep(Duration::from_millis(300));
    topo.spawn_in(NS_TX, &["tcp-send", "10.204.0.2:5201", "8", "4"]);
    // Let the flows reach their steady state (slow start ends in the first drops).
    std::thread::sleep(Duration::from_millis(1500));
    let before = tc_drops();
    let o = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["net", "--json", "--no-bpf", "--duration", "2"])
        .output()
        .unwrap();
    let after = tc_drops();
    let out = String::from_utf8_lossy(&o.stdout);
    let j: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{e}: {out} {}", String::from_utf8_lossy(&o.stderr)));
    let q = j["sections"]["qdiscs"]
        .as_array()
        .unwrap_or_else(|| panic!("no qdiscs: {out}"))
        .iter()
        .find(|q| q["interface"] == IF_SHAPED)
        .unwrap_or_else(|| panic!("no {IF_SHAPED} qdisc: {out}"));
    assert_eq!(q["kind"], "tbf");
    assert_eq!(q["parent"], "root");
    let drops = q["drops"].as_u64().unwrap();
    // triage's window lies inside tc's two readings.
    assert!(
        drops > 0 && drops <= after - before,
        "triage {drops}, tc {before} -> {after}"
    );
    let findings = j["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["id"] == "network.saturation.qdisc_drops")
        .unwrap_or_else(|| panic!("no qdisc finding: {findings:#?}"));
    assert_eq!(f["subject"]["interface"], IF_SHAPED);
    assert_eq!(f["subject"]["class"], "tbf");
    assert!(f["severity"] == "warning" || f["severity"] == "critical");
    // The senders' namespace retransmits what the tbf dropped: its finding says so.
    let rt = findings
        .iter()
        .find(|f| f["id"] == "tcp.errors.retransmits")
        .unwrap_or_else(|| panic!("no retransmit finding: {findings:#?}"));
    assert_eq!(rt["subject"]["interface"], IF_SHAPED, "{rt:#}");
    assert!(
        rt["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["metric"] == "tcp.retrans_qdisc_drop_pct"),
        "{rt:#}"
    );
    drop(topo);
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{IF_SHAPED}")).exists(),
        "torn down"
    );
}
