//! The finding catalogue: one entry per finding id the rules can produce, with what it means,
//! the thresholds it is judged by ([`super::THRESHOLDS`] by name, or the fixed limits of rules
//! whose thresholds live in their code) and where to look next. `docs/findings.md` is generated
//! from it ([`markdown`]) and a test keeps both in step with the rules' source.
//!
//! Every id is `resource.kind.what`: lowercase words with underscores, `kind` one of the USE
//! kinds (`utilization`, `saturation`, `errors`), except the cgroup findings, whose middle word
//! is the controller whose limit is hit (`cgroup.cpu.throttled`, `cgroup.memory.near_limit`,
//! `cgroup.io.at_limit`). [`ID_PATTERN`] says it for people, [`id_is_valid`] for code.

use std::fmt::Write as _;

use super::Threshold;

/// One finding id.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub id: &'static str,
    /// The finding's `resource` field.
    pub resource: &'static str,
    /// Which subcommands can produce it.
    pub commands: &'static str,
    /// What it means, for the person reading the report.
    pub meaning: &'static str,
    /// Names in the thresholds ([`crate::resources::rule::all`]) the rule compares with.
    pub thresholds: &'static [&'static str],
    /// Limits fixed in the rule's code (rules without a threshold entry), and why.
    pub fixed: &'static str,
    /// The next steps the finding suggests (the report fills in PIDs, devices, paths).
    pub next: &'static [&'static str],
}

pub const ID_PATTERN: &str = "resource.kind.what, kind = utilization | saturation | errors \
     (cgroup findings: cgroup.<controller>.what, controller = cpu | memory | io)";

/// Does `id` follow the one naming pattern?
pub fn id_is_valid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('.').collect();
    let word = |w: &str| {
        !w.is_empty()
            && w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if parts.len() != 3 || !parts.iter().all(|p| word(p)) {
        return false;
    }
    let kinds: &[&str] = if parts[0] == "cgroup" {
        &["cpu", "memory", "io"]
    } else {
        &["utilization", "saturation", "errors"]
    };
    kinds.contains(&parts[1])
}

const CHECKLIST: &str = "sixty-second, capture";
const CPU: &str = "sixty-second, cpu";
const MEM: &str = "sixty-second, mem";
const DISK: &str = "sixty-second, disk";
const NET: &str = "sixty-second, net";

pub const RULES: &[Rule] = &[
    Rule { id: "cpu.saturation.runqueue", resource: "cpu", commands: CPU,
        meaning: "More runnable tasks than CPUs this workload can use (cpuset and CFS quota counted), in at least half of the 100 ms samples: tasks wait for a CPU. The busiest processes are named.",
        thresholds: &["cpu.runnable_per_cpu", "cpu.runnable_samples_above_pct", "cpu.own_cgroup_quota_used_pct"], fixed: "",
        next: &["triage cpu", "pidstat -t -p PID 1", "triage offcpu"] },
    Rule { id: "cpu.utilization.single_cpu", resource: "cpu", commands: CPU,
        meaning: "One CPU is (nearly) always busy: a single-threaded process holding a CPU (whatever the other CPUs do), or one interrupt/softirq queue while the others idle.",
        thresholds: &["cpu.hottest_cpu_busy_pct", "cpu.others_median_busy_pct", "cpu.single_thread_process_pct", "cpu.hottest_cpu_soft_pct"], fixed: "",
        next: &["mpstat -P ALL 1", "pidstat -t 1", "cat /proc/interrupts"] },
    Rule { id: "cpu.saturation.iowait", resource: "cpu", commands: CPU,
        meaning: "Tasks wait on I/O (CPU iowait, or the io pressure stall share while the disk is idle and a cgroup sits at its I/O limit): the bottleneck is the storage, NFS or the cgroup's limit behind the waiting tasks, not the CPU.",
        thresholds: &["cpu.iowait_pct", "io.stall_pct", "disk.util_pct_idle", "cgroup.io_limit_used_pct"], fixed: "",
        next: &["triage disk", "iostat -xz 1", "pidstat -d 1"] },
    Rule { id: "cpu.utilization.system_time", resource: "cpu", commands: CPU,
        meaning: "A large share of CPU time is spent in the kernel (system calls, page faults, locks in kernel code); the top system-time process is named.",
        thresholds: &["cpu.system_pct"], fixed: "",
        next: &["triage syscalls --pid PID", "perf top", "pidstat -u 1"] },
    Rule { id: "cpu.utilization.hot_function", resource: "cpu", commands: "profile",
        meaning: "One function is the innermost frame of most of a busy process's samples: that function is where its CPU goes (a lead, not a fault).",
        thresholds: &["profile.function_self_pct", "profile.process_cpus"], fixed: "",
        next: &["triage profile -p PID --svg flame.svg", "perf annotate"] },
    Rule { id: "cpu.utilization.kernel_time", resource: "cpu", commands: "profile",
        meaning: "A busy process spends a large share of its samples in the kernel: the kernel function and the syscall it comes from are named.",
        thresholds: &["profile.kernel_pct", "profile.process_cpus"], fixed: "",
        next: &["triage syscalls -p PID", "triage profile -p PID --folded"] },
    Rule { id: "cpu.utilization.softirq_time", resource: "cpu", commands: "profile",
        meaning: "A CPU spends a large share of its samples in softirq (the handler is named, e.g. net_rx_action): interrupt work concentrated on it.",
        thresholds: &["profile.cpu_softirq_pct"], fixed: "",
        next: &["triage cpu", "cat /proc/softirqs", "cat /proc/interrupts"] },
    Rule { id: "tasks.saturation.fork_storm", resource: "tasks", commands: CPU,
        meaning: "Processes are created and exit at a high rate: the parent spawning them is named (from its reaped children's CPU), and the system time they cost is its consequence.",
        thresholds: &[], fixed: "forks/s (vmstat processes) >= 500 warn, >= 2000 critical (procs_storm::FORKS_WARN_PER_S / FORKS_CRIT_PER_S): each fork+exec+exit costs ~0.1-1 ms of kernel CPU",
        next: &["triage syscalls -p PARENT", "pstree -p PARENT", "execsnoop"] },
    Rule { id: "io.saturation.sync_writes", resource: "io", commands: DISK,
        meaning: "A process writes small blocks and flushes each (fsync/fdatasync) one at a time: latency-bound, not a saturated device (requests neither queue nor overlap); its threads wait on every flush.",
        thresholds: &[], fixed: "device busy with about one request in flight (aqu-sz / busy <= 2), writes <= 64 KiB, await <= 2 ms, flushes in the window; io PSI >= 20% warn (io_sync constants)",
        next: &["triage offcpu -p PID", "strace -c -f -p PID", "batch the writes or use group commit"] },
    Rule { id: "io.saturation.pressure", resource: "io", commands: DISK,
        meaning: "Tasks stalled on I/O for a large share of the window (PSI io some), whatever the CPUs did.",
        thresholds: &[], fixed: "PSI io some >= 20% warn, >= 50% critical (io_sync::PSI_IO_WARN_PCT / PSI_IO_CRIT_PCT)",
        next: &["triage disk", "cat /proc/pressure/io", "iostat -xz 1"] },
    Rule { id: "swap.utilization.space", resource: "swap", commands: MEM,
        meaning: "Swap space is nearly full: with RAM short too, the last reserve before the OOM killer is almost gone (critical while pages still move in or out); with RAM to spare it only holds cold pages (info).",
        thresholds: &["memory.swap_used_pct", "memory.used_pct"], fixed: "",
        next: &["triage mem", "grep VmSwap /proc/*/status | sort -k2 -n | tail"] },
    Rule { id: "cpu.saturation.steal", resource: "cpu", commands: CPU,
        meaning: "The hypervisor runs other guests on this VM's CPUs: the VM wanted CPU time it did not get.",
        thresholds: &["cpu.steal_pct"], fixed: "",
        next: &["mpstat -P ALL 1", "ask the cloud provider / move the VM"] },
    Rule { id: "cpu.saturation.dstate_load", resource: "tasks", commands: CPU,
        meaning: "Load average above the CPU count while the CPUs are mostly idle, with tasks in uninterruptible sleep (D state): the load is I/O or NFS waits, not CPU demand.",
        thresholds: &["tasks.blocked_avg", "cpu.load1_per_cpu", "cpu.busy_pct_low"], fixed: "",
        next: &["triage disk", "cat /proc/PID/stack", "triage offcpu"] },
    Rule { id: "cpu.saturation.softirq_one_cpu", resource: "cpu", commands: "cpu",
        meaning: "One CPU spends a large share of its time in softirq and handles (nearly) all of one softirq type (typically NET_RX): one queue or IRQ is bound to it.",
        thresholds: &["cpu.softirq_cpu_soft_pct", "cpu.softirq_one_cpu_share_pct"], fixed: "",
        next: &["cat /proc/interrupts", "ethtool -l IFACE", "check RPS/RSS and irqbalance"] },
    Rule { id: "cpu.utilization.syscall_system_time", resource: "cpu", commands: "syscalls",
        meaning: "A process spends most of its CPU in the kernel, and the traced syscalls say which call explains it.",
        thresholds: &["syscalls.process_sys_share_pct"], fixed: "",
        next: &["triage syscalls --pid PID", "strace -c -p PID", "perf top -p PID"] },
    Rule { id: "cgroup.cpu.throttled", resource: "cgroup", commands: CPU,
        meaning: "A cgroup used up its CFS quota in many periods and was throttled: its tasks waited although the host may have idle CPUs.",
        thresholds: &["cgroup.throttled_periods_pct", "cgroup.throttled_host_idle_pct"], fixed: "",
        next: &["triage cpu --cgroup PATH", "raise cpu.max / cpu.cfs_quota_us or spread the work"] },
    Rule { id: "memory.utilization.available_low", resource: "memory", commands: MEM,
        meaning: "Little memory is available (MemAvailable) for new allocations without reclaim or swap.",
        thresholds: &["memory.used_pct"], fixed: "",
        next: &["triage mem", "free -m", "ps aux --sort=-rss | head"] },
    Rule { id: "memory.saturation.swapping", resource: "memory", commands: MEM,
        meaning: "Pages are swapped in or out during the window: memory demand exceeds RAM (or a cgroup limit) and the workload waits on disk for memory.",
        thresholds: &["memory.swap_kb_per_s", "cgroup.memory_used_pct"], fixed: "",
        next: &["triage mem", "vmstat 1", "pidstat -r 1"] },
    Rule { id: "memory.saturation.major_faults", resource: "memory", commands: MEM,
        meaning: "Many major page faults: pages are read back from disk (file cache evicted or swap), each costing milliseconds.",
        thresholds: &["memory.major_faults_per_s"], fixed: "",
        next: &["triage mem", "pidstat -r 1"] },
    Rule { id: "memory.errors.oom_kill", resource: "memory", commands: MEM,
        meaning: "The kernel's OOM killer killed a process in the window (or the kernel log reports one): memory ran out.",
        thresholds: &["memory.oom_kills"], fixed: "",
        next: &["dmesg -T | grep -i -A20 'out of memory'", "triage mem"] },
    Rule { id: "memory.saturation.direct_reclaim", resource: "memory", commands: "mem",
        meaning: "Allocations stalled in direct reclaim: a task had to free memory itself before it could allocate (latency spikes).",
        thresholds: &["memory.allocation_stalls_per_s"], fixed: "",
        next: &["grep -E 'allocstall|pgscan_direct' /proc/vmstat", "triage mem --interval 1"] },
    Rule { id: "memory.errors.rss_growth", resource: "memory", commands: "mem",
        meaning: "A process's resident memory grew steadily over the window: a leak or an unbounded cache (confirm over several windows).",
        thresholds: &["memory.rss_growth_kb_per_s"], fixed: "",
        next: &["triage mem --pid PID --interval 5", "pmap -x PID"] },
    Rule { id: "cgroup.memory.near_limit", resource: "cgroup", commands: MEM,
        meaning: "A cgroup's memory use is close to its limit: the kernel reclaims inside it and the next step is swap or OOM kills.",
        thresholds: &["cgroup.memory_used_pct"], fixed: "",
        next: &["triage mem --cgroup PATH", "raise memory.max / memory.limit_in_bytes or shrink the workload"] },
    Rule { id: "cgroup.memory.limit_hits", resource: "cgroup", commands: "mem",
        meaning: "A cgroup hit its memory limit in the window (memory.events high/max, v1 failcnt): it was throttled or reclaimed.",
        thresholds: &["cgroup.memory_limit_events"], fixed: "",
        next: &["triage mem --cgroup PATH", "cat memory.events of the cgroup"] },
    Rule { id: "disk.saturation.queue", resource: "disk", commands: DISK,
        meaning: "A block device is busy with requests queuing (aqu-sz above 1): I/O waits behind other I/O. The top I/O process is named in `triage disk`.",
        thresholds: &["disk.aqu_sz", "disk.util_pct"], fixed: "",
        next: &["triage disk", "iotop -o", "iostat -xz DEVICE 1"] },
    Rule { id: "disk.saturation.await", resource: "disk", commands: DISK,
        meaning: "Requests to a device take long on average (read or write await), without the queue finding: slow media, a throttled volume or a struggling path.",
        thresholds: &["disk.await_ms"], fixed: "",
        next: &["triage disk", "iostat -xz DEVICE 1"] },
    Rule { id: "disk.saturation.flush", resource: "disk", commands: DISK,
        meaning: "The device's cache flushes (what every fsync/fdatasync commit waits for) are slow while its reads and writes are fast: a write cache without power-loss protection, a RAID cache gone write-through, or a struggling device. w_await does not show it: the kernel times flushes apart.",
        thresholds: &["disk.flush_await_ms"], fixed: ">= 1 flush/s (disk::MIN_FLUSHES_PER_S)",
        next: &["triage disk", "cat /sys/block/DEVICE/queue/write_cache", "biolatency -F (bcc/libbpf-tools)"] },
    Rule { id: "disk.errors.await_outlier", resource: "disk", commands: "disk",
        meaning: "One device answers many times slower than its peers: the device or its path (controller, network volume) is at fault.",
        thresholds: &["disk.await_outlier_ratio", "disk.await_ms"], fixed: "",
        next: &["iostat -xz DEVICE 1", "smartctl -a /dev/DEVICE", "dmesg -T | grep DEVICE"] },
    Rule { id: "filesystem.utilization.space", resource: "filesystem", commands: DISK,
        meaning: "A filesystem is nearly full: writes will fail with ENOSPC.",
        thresholds: &["filesystem.used_pct"], fixed: "",
        next: &["df -h MOUNT", "du -xh --max-depth=2 MOUNT | sort -h | tail"] },
    Rule { id: "filesystem.utilization.inodes", resource: "filesystem", commands: DISK,
        meaning: "A filesystem is running out of inodes: creating files fails with ENOSPC although space is free.",
        thresholds: &["filesystem.inodes_used_pct"], fixed: "",
        next: &["df -i MOUNT", "find MOUNT -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | sort -n | tail"] },
    Rule { id: "network.errors.interface", resource: "network", commands: NET,
        meaning: "An interface drops or errors packets (receive or transmit): saturation, a full ring buffer or a link/driver problem.",
        thresholds: &["network.errors_per_s"], fixed: "",
        next: &["ip -s link show IFACE", "ethtool -S IFACE", "triage net"] },
    Rule { id: "network.saturation.softnet_drops", resource: "network", commands: "net",
        meaning: "The per-CPU input backlog overflowed (softnet_stat dropped): packets were dropped before any socket saw them.",
        thresholds: &["network.softnet_drops_per_s"], fixed: "",
        next: &["cat /proc/net/softnet_stat", "sysctl net.core.netdev_max_backlog"] },
    Rule { id: "network.saturation.qdisc_drops", resource: "network", commands: NET,
        meaning: "A queueing discipline of this host (tbf/htb over their rate, a full fq/pfifo, an AQM under sustained overload) drops packets before they reach the wire: TCP retransmits them, the network is not at fault. Read over rtnetlink (RTM_GETQDISC), own network namespace.",
        thresholds: &["network.qdisc_drop_pct", "network.qdisc_drops_per_s"], fixed: "",
        next: &["tc -s qdisc show dev IFACE", "triage net"] },
    Rule { id: "tcp.errors.retransmits", resource: "tcp", commands: NET,
        meaning: "TCP retransmits a noticeable share of its segments, in some network namespace: packet loss or congestion on the path. With eBPF the flow is named. When a queueing discipline of this host drops at least half as many packets in the window, the loss is local: the finding names that interface and qdisc and is its consequence (info).",
        thresholds: &["tcp.retrans_pct", "tcp.retrans_segs_per_s", "tcp.retrans_qdisc_drop_pct"],
        fixed: "eBPF only (no /proc counters in the scope): >= 10 retransmits/s from the tcp_retransmit_skb tracepoint",
        next: &["triage net", "ss -ti", "nstat -az | grep -i retrans"] },
    Rule { id: "tcp.saturation.listen_overflow", resource: "tcp", commands: NET,
        meaning: "Listen queues overflowed: connection attempts were dropped because the application does not accept() fast enough.",
        thresholds: &["tcp.listen_overflows_per_s"], fixed: "",
        next: &["triage net", "ss -ltn"] },
    Rule { id: "tcp.saturation.time_wait", resource: "tcp", commands: NET,
        meaning: "Tens of thousands of sockets in TIME_WAIT: close to exhausting the ephemeral port range for new outgoing connections.",
        thresholds: &["tcp.time_wait"], fixed: "",
        next: &["ss -tan state time-wait | wc -l", "use connection pooling / keep-alive"] },
    Rule { id: "tcp.errors.close_wait_growth", resource: "tcp", commands: "net",
        meaning: "Sockets in CLOSE_WAIT accumulate during the window: the application does not close connections its peers closed (an fd/connection leak).",
        thresholds: &["tcp.close_wait_growth"], fixed: "",
        next: &["ss -tanp state close-wait", "ls -l /proc/PID/fd | wc -l"] },
    Rule { id: "tcp.saturation.accept_queue_full", resource: "tcp", commands: "net",
        meaning: "A listener's accept queue is at its backlog: the next handshake is dropped. The port and the owning process are named.",
        thresholds: &["tcp.listen_queue_fill_pct"], fixed: "critical when ListenOverflows also grew in the window",
        next: &["ss -ltnp sport = :PORT", "raise the backlog (listen(), net.core.somaxconn) or accept faster"] },
    Rule { id: "tcp.saturation.ephemeral_ports", resource: "tcp", commands: "net",
        meaning: "Sockets holding local ports are close to the size of ip_local_port_range: new outgoing connections will fail with EADDRNOTAVAIL.",
        thresholds: &["tcp.ephemeral_used_pct"], fixed: "",
        next: &["sysctl net.ipv4.ip_local_port_range", "ss -tan | awk '{print $4}' | sort | uniq -c | sort -n | tail"] },
    Rule { id: "udp.errors.rcvbuf", resource: "udp", commands: "net",
        meaning: "UDP datagrams were dropped because a socket's receive buffer was full: the receiver is too slow or its buffer too small.",
        thresholds: &["udp.rcvbuf_errors_per_s"], fixed: "",
        next: &["ss -uamp", "sysctl net.core.rmem_max"] },
    Rule { id: "conntrack.utilization.table", resource: "conntrack", commands: NET,
        meaning: "The connection-tracking table is nearly full: when it is, new connections are dropped (`nf_conntrack: table full`).",
        thresholds: &["conntrack.used_pct"], fixed: "",
        next: &["sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max", "conntrack -S"] },
    Rule { id: "file_descriptors.utilization.system", resource: "file_descriptors", commands: CHECKLIST,
        meaning: "The system-wide open file count is close to fs.file-max: opens will fail with ENFILE.",
        thresholds: &["file_descriptors.used_pct"], fixed: "",
        next: &["cat /proc/sys/fs/file-nr", "lsof | awk '{print $2}' | sort | uniq -c | sort -n | tail"] },
    Rule { id: "file_descriptors.utilization.process", resource: "file_descriptors", commands: CHECKLIST,
        meaning: "A process has nearly as many open files as its soft limit (ulimit -n): its next open/accept fails with EMFILE.",
        thresholds: &["file_descriptors.process_pct"], fixed: "",
        next: &["ls /proc/PID/fd | wc -l", "grep 'open files' /proc/PID/limits"] },
    Rule { id: "tasks.utilization.pid_max", resource: "tasks", commands: CHECKLIST,
        meaning: "The number of threads is close to kernel.pid_max / threads-max: fork and thread creation will fail.",
        thresholds: &["tasks.used_pct"], fixed: "",
        next: &["ps -eLf | wc -l", "sysctl kernel.pid_max kernel.threads-max"] },
    Rule { id: "tasks.errors.zombies", resource: "tasks", commands: CPU,
        meaning: "Many zombie processes: a parent is not reaping its children (they hold PIDs, not memory).",
        thresholds: &["tasks.zombies"], fixed: "",
        next: &["ps -eo ppid,pid,stat,comm | awk '$3 ~ /Z/'", "fix or restart the parent"] },
    Rule { id: "kernel_log.errors.io_error", resource: "kernel_log", commands: CHECKLIST,
        meaning: "Block I/O errors on a device (the device is the subject): failing media, a broken path or a full thin pool.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage disk", "dmesg -T | grep -i 'I/O error'", "smartctl -a /dev/DEVICE"] },
    Rule { id: "kernel_log.errors.fs_error", resource: "kernel_log", commands: CHECKLIST,
        meaning: "A filesystem reported errors (EXT4-fs error, XFS corruption...): it may be remounted read-only.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | grep -iE 'EXT4-fs|XFS'", "findmnt -o TARGET,OPTIONS"] },
    Rule { id: "kernel_log.errors.hung_task", resource: "kernel_log", commands: CHECKLIST,
        meaning: "A task was blocked in D state for longer than hung_task_timeout_secs: storage or NFS stalled under it.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage disk", "dmesg -T | grep -A20 'blocked for more than'"] },
    Rule { id: "kernel_log.errors.conntrack_full", resource: "kernel_log", commands: CHECKLIST,
        meaning: "nf_conntrack: table full, dropping packet: new connections are dropped.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage net", "sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max"] },
    Rule { id: "kernel_log.errors.syn_flood", resource: "kernel_log", commands: CHECKLIST,
        meaning: "The kernel saw a possible SYN flood on a port and sent cookies: the accept queue overflows.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage net", "ss -ltn"] },
    Rule { id: "kernel_log.errors.file_max_reached", resource: "kernel_log", commands: CHECKLIST,
        meaning: "VFS: file-max limit reached: opening files fails system-wide.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["cat /proc/sys/fs/file-nr", "sysctl fs.file-max"] },
    Rule { id: "kernel_log.errors.tcp_memory", resource: "kernel_log", commands: CHECKLIST,
        meaning: "TCP: out of memory -- consider tuning tcp_mem: sockets are being dropped.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage net", "sysctl net.ipv4.tcp_mem", "cat /proc/net/sockstat"] },
    Rule { id: "kernel_log.errors.segfault", resource: "kernel_log", commands: CHECKLIST,
        meaning: "A process crashed with a segmentation fault (the process is the subject).",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | grep segfault", "coredumpctl list"] },
    Rule { id: "kernel_log.errors.soft_lockup", resource: "kernel_log", commands: CHECKLIST,
        meaning: "A CPU was stuck in kernel code (soft lockup): the kernel or a driver is looping.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | grep -A30 'soft lockup'", "triage cpu"] },
    Rule { id: "kernel_log.errors.rcu_stall", resource: "kernel_log", commands: CHECKLIST,
        meaning: "RCU stall: a CPU did not pass through a quiescent state; the kernel is stuck or starved.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | grep -A30 'rcu'", "triage cpu"] },
    Rule { id: "kernel_log.errors.hardware_error", resource: "kernel_log", commands: CHECKLIST,
        meaning: "Machine-check or other hardware errors: the hardware is failing.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | grep -iE 'mce|hardware error'", "ras-mc-ctl --errors"] },
    Rule { id: "kernel_log.errors.nfs_not_responding", resource: "kernel_log", commands: CHECKLIST,
        meaning: "An NFS server is not responding: tasks using that mount hang in D state.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["triage disk", "nfsstat -m"] },
    Rule { id: "kernel_log.errors.other", resource: "kernel_log", commands: CHECKLIST,
        meaning: "Another kernel problem message (error, warning or call trace) without a class of its own.",
        thresholds: &[], fixed: "one finding per class (and device): critical when an error, hung task, lockup or hardware error is in the window, warning within the recent horizon (300 s), info older within --log-lookback",
        next: &["dmesg -T | tail -50"] },
    Rule { id: "cgroup.io.at_limit", resource: "cgroup", commands: "disk",
        meaning: "A cgroup does I/O at (nearly) its blkio.throttle (v1) or io.max (v2) limit for the whole window: the limit, not the device, caps it.",
        thresholds: &["cgroup.io_limit_used_pct"], fixed: "",
        next: &["triage disk --cgroup PATH", "raise io.max / blkio.throttle.* or move the workload"] },
    Rule { id: "syscalls.saturation.storm", resource: "syscalls", commands: "syscalls",
        meaning: "One process makes most of the system's syscalls at a very high rate: a tight loop (polling, tiny reads/writes) burning CPU in syscall entry/exit.",
        thresholds: &["syscalls.process_calls_per_s", "syscalls.top_process_share_pct"], fixed: "",
        next: &["triage syscalls --pid PID", "strace -f -c -p PID", "perf top -p PID"] },
    Rule { id: "locks.saturation.futex", resource: "locks", commands: "syscalls",
        meaning: "A busy process spends most of its syscall time in futex (or makes futex calls at a very high rate): its threads contend on a lock.",
        thresholds: &["syscalls.futex_time_pct", "syscalls.futex_busy_cpu_pct", "syscalls.futex_calls_per_s"], fixed: "",
        next: &["triage offcpu -p PID", "perf lock record -p PID -- sleep 5 && perf lock report"] },
    Rule { id: "syscalls.errors.exhaustion", resource: "syscalls", commands: "syscalls",
        meaning: "Syscalls fail with EMFILE, ENFILE, ENOMEM, ENOSPC or EDQUOT: a resource (fds, memory, space, quota) is running out.",
        thresholds: &["syscalls.exhaustion_errors"], fixed: "",
        next: &["triage syscalls --pid PID", "grep 'open files' /proc/PID/limits", "df -h"] },
    Rule { id: "syscalls.errors.connection_refused", resource: "syscalls", commands: "syscalls",
        meaning: "A process gets ECONNREFUSED at a high rate: it hammers a backend that is down or not listening.",
        thresholds: &["syscalls.refused_per_s"], fixed: "",
        next: &["strace -f -e trace=connect -p PID", "ss -tnp"] },
    Rule { id: "syscalls.errors.rate", resource: "syscalls", commands: "syscalls",
        meaning: "A syscall fails most of the time at a high rate: work wasted in a retry or polling loop.",
        thresholds: &["syscalls.errors_per_s", "syscalls.error_pct"], fixed: "",
        next: &["triage syscalls --pid PID", "strace -f -e trace=SYSCALL -p PID"] },
    Rule { id: "locks.saturation.contention", resource: "offcpu", commands: "offcpu",
        meaning: "Many threads of one process block on futexes in many short waits: lock contention (not idle workers parked on a condition variable, which wait rarely and long).",
        thresholds: &[],
        fixed: "futex waits >= 50% of the process's off-CPU time, >= 2 threads, >= 0.5 threads blocked on average, >= 10 waits/s of <= 100 ms on average; critical at >= 2 threads blocked on average",
        next: &["perf lock record -p PID -- sleep 5 && perf lock report", "triage offcpu -p PID --svg offcpu.svg"] },
    Rule { id: "io.saturation.blocked_threads", resource: "offcpu", commands: "offcpu",
        meaning: "A process's threads wait in D state in block or filesystem code: it is slowed by I/O.",
        thresholds: &[],
        fixed: ">= 30% of its off-CPU time and >= 0.2 threads blocked on average; critical at >= 1",
        next: &["triage disk", "pidstat -d -p PID 1"] },
    Rule { id: "threads.utilization.pool_parked", resource: "offcpu", commands: "offcpu",
        meaning: "Several threads of a process are parked in the same socket receive: a pool waiting on one peer, or simply idle (info).",
        thresholds: &[], fixed: ">= 4 threads and >= 50% of the process's off-CPU time in a socket receive",
        next: &["ss -tip | grep pid=PID"] },
    Rule { id: "locks.errors.deadlock_suspect", resource: "offcpu", commands: "offcpu",
        meaning: "At least two threads of a process are blocked on a futex for the whole window and none of its threads ran: a deadlock, or a process stopped waiting on something external.",
        thresholds: &[], fixed: ">= 2 threads each blocked >= 90% of the window in one wait, and every thread of the process blocked that long",
        next: &["gdb -p PID -batch -ex 'thread apply all bt'"] },
];

/// The catalogue entry of `id`.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

fn threshold_of(name: &str) -> Option<&'static Threshold> {
    crate::resources::rule::all()
        .chain(super::profile::PROFILE_THRESHOLDS)
        .find(|t| t.id == name)
}

fn fmt_num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Markdown table cells: no pipes or newlines inside.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// docs/findings.md, generated from [`RULES`] and the thresholds.
pub fn markdown() -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Finding catalogue\n");
    let _ = writeln!(
        o,
        "<!-- Generated from src/analyze/catalog.rs and the thresholds in src/resources/ (each resource's THRESHOLDS, and rule.rs); \
         do not edit. Regenerate: UPDATE_DOCS=1 cargo test --test docs -->\n"
    );
    let _ = writeln!(
        o,
        "Every finding in a report (`findings[].id`) is listed here: the resource it is about, \
         what it means, the thresholds it is judged by (warning / critical, compared with `>=` \
         unless the rule says otherwise) and why those numbers, and the next steps the report \
         suggests (with the PID, device, cgroup or port filled in).\n"
    );
    let _ = writeln!(
        o,
        "Ids follow one pattern: `{ID_PATTERN}`. Ids are stable; new ones may be added.\n"
    );
    let _ = writeln!(o, "| id | resource | produced by |");
    let _ = writeln!(o, "|---|---|---|");
    for r in RULES {
        let _ = writeln!(
            o,
            "| [`{}`](#{}) | {} | {} |",
            r.id,
            r.id.replace('.', ""),
            r.resource,
            r.commands
        );
    }
    for r in RULES {
        let _ = writeln!(o, "\n## `{}`\n", r.id);
        let _ = writeln!(
            o,
            "Resource `{}`; produced by `triage {}`.\n",
            r.resource,
            r.commands.replace(", ", "`, `triage ")
        );
        let _ = writeln!(o, "{}\n", r.meaning);
        if !r.thresholds.is_empty() {
            let _ = writeln!(o, "| threshold | warning | critical | unit | why |");
            let _ = writeln!(o, "|---|---|---|---|---|");
            for name in r.thresholds {
                match threshold_of(name) {
                    Some(t) => {
                        let _ = writeln!(
                            o,
                            "| `{}` | {} | {} | {} | {} |",
                            t.id,
                            fmt_num(t.warn),
                            fmt_num(t.crit),
                            t.unit,
                            cell(t.why)
                        );
                    }
                    None => {
                        let _ = writeln!(o, "| `{name}` | ? | ? | ? | missing from THRESHOLDS |");
                    }
                }
            }
            let _ = writeln!(o);
        }
        if !r.fixed.is_empty() {
            let _ = writeln!(o, "Limits in the rule: {}.\n", r.fixed);
        }
        let _ = writeln!(o, "Next steps:");
        for n in r.next {
            let _ = writeln!(o, "- `{n}`");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern() {
        assert!(id_is_valid("cpu.saturation.runqueue"));
        assert!(id_is_valid("cgroup.memory.near_limit"));
        assert!(id_is_valid("file_descriptors.utilization.process"));
        assert!(!id_is_valid("cpu.iowait.high"));
        assert!(!id_is_valid("offcpu.lock_contention"));
        assert!(!id_is_valid("cgroup.saturation.x.y"));
        assert!(!id_is_valid("Cpu.saturation.x"));
        assert!(!id_is_valid("cgroup.net.x"));
    }

    #[test]
    fn every_rule_is_valid_unique_and_its_thresholds_exist() {
        let mut seen = std::collections::BTreeSet::new();
        for r in RULES {
            assert!(id_is_valid(r.id), "{} breaks {ID_PATTERN}", r.id);
            assert!(seen.insert(r.id), "{} listed twice", r.id);
            for t in r.thresholds {
                assert!(threshold_of(t).is_some(), "{}: no threshold {t}", r.id);
            }
            assert!(
                !r.thresholds.is_empty() || !r.fixed.is_empty(),
                "{}: no threshold at all",
                r.id
            );
            assert!(!r.next.is_empty(), "{}: no next step", r.id);
        }
        // And every threshold belongs to some finding in the catalogue.
        for t in crate::resources::rule::all() {
            assert!(
                RULES.iter().any(|r| r.thresholds.contains(&t.id)),
                "threshold {} is in no catalogue entry",
                t.id
            );
        }
    }
}
