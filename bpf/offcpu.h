/* SPDX-License-Identifier: (MIT OR Apache-2.0 OR GPL-2.0) */
/*
 * Shared between bpf/offcpu.bpf.c and src/probe/offcpu.rs (through the skeleton's generated
 * `types`): the off-CPU probe's map layouts. Change both sides together.
 */
#ifndef TRIAGE_OFFCPU_H
#define TRIAGE_OFFCPU_H

#define OFFCPU_COMM_LEN 16
/* Frames kept per stack (the stack map's value size is set to this from user space). */
#define OFFCPU_MAX_DEPTH 127

/* Indexes into `offcpu_dropped`. */
#define OD_START 0 /* start records not stored: the thread map was full */
#define OD_AGG 1 /* blocks not aggregated: the (thread, stacks, state) map was full */
#define OD_KSTACK 2 /* kernel stack not captured (stack map full or hash collision) */
#define OD_USTACK 3 /* user stack not captured */
#define OD_SLOTS 4

/* Where a thread went off CPU, stored at switch-out, keyed by thread id; `ts` 0: closed (the
 * thread is back on CPU; the record is reused at its next block and deleted when it exits).
 * `kstack` is set there by the raw_tp twin, and by tp_btf when every block is wanted;
 * otherwise tp_btf takes the kernel stack at switch-in. */
struct offcpu_start {
	__u64 ts;
	__u64 kstack; /* hash of the kernel stack (key of offcpu_kstacks); 0: none */
	__u32 tgid;
	__s32 ustack; /* id in offcpu_stacks; < 0: none */
	__u32 state;
	__u32 timer_woken; /* set by sched_waking when a timer's expiry woke it (a timeout) */
};

/* One aggregation row. */
struct offcpu_key {
	__u32 tgid;
	__u32 pid;
	__u64 kstack;
	__s32 ustack;
	__u32 state;
};

/* A kernel stack, innermost first, zero-padded. */
struct offcpu_kstack {
	__u64 ips[OFFCPU_MAX_DEPTH];
};

struct offcpu_val {
	__u64 total_ns;
	__u64 count;
	__u64 max_ns;
	char comm[OFFCPU_COMM_LEN];
	/* Of these blocks, those ended by a timer (a timeout or a sleep), not by another task. */
	__u64 timer_count;
	__u64 timer_ns;
};

#endif
