/* SPDX-License-Identifier: (MIT OR Apache-2.0 OR GPL-2.0) */
/*
 * Shared between bpf/syscalls.bpf.c and src/probe/syscalls.rs (through the skeleton's
 * generated `types`): the map layouts of the syscall counter. Change both sides together.
 */
#ifndef TRIAGE_SYSCALLS_H
#define TRIAGE_SYSCALLS_H

/* Syscall numbers counted (x86_64 is below 470, arm64 below 470). */
#define MAX_SYSCALLS 512
/* log2 latency buckets in nanoseconds: slot i holds [2^i, 2^(i+1)) ns; the last is open. */
#define MAX_SLOTS 36
#define TASK_COMM_LEN 16
/* Per-CPU direct-mapped cache of (process, syscall) counters in front of the hash. */
#define CACHE_SLOTS 1024

/* Indexes into the `dropped` per-CPU array: events not recorded because a map was full. */
#define DROP_PROC_SYS 0 /* (process, syscall) pairs: the per-process tables are incomplete */
#define DROP_PROC_INFO 1 /* process names */
#define DROP_ERRNO 2 /* (syscall, errno) pairs */
#define DROP_START 3 /* in-flight start timestamps: those calls have no latency */
#define DROP_NR 4 /* number -1 at exit (rt_sigreturn) or >= MAX_SYSCALLS: not a map drop */
#define DROP_SLOTS 5

/* Per syscall number, per CPU. */
struct sys_stat {
	__u64 count;
	__u64 errors;
	__u64 time_ns;
	__u64 slots[MAX_SLOTS];
};

/* A process is its tgid plus its start time, so a reused PID is a different process. */
struct proc_sys_key {
	__u32 tgid;
	__u32 nr;
	__u64 start_ns;
};

struct proc_sys_val {
	__u64 count;
	__u64 errors;
	__u64 time_ns;
	__u64 fail_ns; /* of time_ns, in calls that failed: a futex wait that timed out */
};

/* A slot of the per-CPU cache: tgid 0 (never a syscall caller) marks it empty. `ppid`: the
 * process's parent when the slot was taken, for the per-parent table when proc_sys is full. */
struct cache_ent {
	struct proc_sys_key key;
	struct proc_sys_val val;
	__u32 ppid;
	__u32 pad;
};

struct proc_id {
	__u32 tgid;
	__u32 pad;
	__u64 start_ns;
};

/* Captured the first time the process is seen (and again after a successful execve). */
struct proc_info {
	char comm[TASK_COMM_LEN];
	__u32 ppid; /* its parent then: exited processes are shown as their parent's children */
	__u32 pad;
};

struct errno_key {
	__u32 nr;
	__u32 err;
};

#endif
