/* SPDX-License-Identifier: (MIT OR Apache-2.0 OR GPL-2.0) */
/*
 * Shared between bpf/profile.bpf.c and src/probe/profile.rs (through the skeleton's generated
 * `types`): the on-CPU profiler's map layouts. Change both sides together.
 */
#ifndef TRIAGE_PROFILE_H
#define TRIAGE_PROFILE_H

#define PROFILE_COMM_LEN 16
/* Frames kept per stack (the stack map's value size). */
#define PROFILE_MAX_DEPTH 127

/* Indexes into the per-CPU `profile_stats` array. */
#define PS_SAMPLES 0 /* every sample taken on this CPU (the rate check) */
#define PS_IDLE 1 /* samples of the idle task */
#define PS_COUNTED 2 /* samples inside the scope, counted in profile_counts */
#define PS_DROP_AGG 3 /* counted samples lost: profile_counts was full */
#define PS_DROP_KSTACK 4 /* kernel stack lost: stack map full or two stacks collided */
#define PS_DROP_USTACK 5 /* user stack lost: stack map full or two stacks collided */
#define PS_SLOTS 6

/* One aggregation row: a (process, thread, CPU, kernel stack, user stack). Stack ids index
 * profile_stacks; < 0: none (-14 EFAULT: not in that mode; other: dropped). */
struct profile_key {
	__u32 tgid;
	__u32 pid;
	__u32 cpu;
	__s32 kstack;
	__s32 ustack;
	__u32 pad;
};

struct profile_val {
	__u64 count;
	char comm[PROFILE_COMM_LEN];
};

#endif
