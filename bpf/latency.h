/* SPDX-License-Identifier: (MIT OR Apache-2.0 OR GPL-2.0) */
/*
 * Shared between bpf/latency.bpf.c and src/probe/latency.rs: the layouts of the cheap
 * latency probes (run-queue latency, block I/O latency, TCP retransmits).
 */
#ifndef TRIAGE_LATENCY_H
#define TRIAGE_LATENCY_H

/* log2 buckets in nanoseconds, as in syscalls.h: slot i holds [2^i, 2^(i+1)) ns. */
#define LAT_SLOTS 36
#define LAT_MAX_CPUS 1024

/* Indexes into `lat_dropped`. */
#define LD_RQ_START 0 /* wakeups not recorded: map full */
#define LD_BIO_START 1 /* requests issued but not recorded: map full */
#define LD_BIO_HIST 2 /* completions not recorded: (device, op) map full */
#define LD_RETRANS 3 /* retransmits not recorded: flow map full */
#define LD_SLOTS 4

/* Per CPU (array index) for run-queue latency; per (device, op) for block I/O. */
struct lat_hist {
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
	__u64 slots[LAT_SLOTS];
};

struct bio_start {
	__u64 ts;
	__u32 tgid;
	__u32 pad;
};

struct bio_key {
	__u32 dev; /* major << 20 | minor, as the kernel's dev_t */
	__u32 op; /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard ... */
};

struct flow_key {
	__u64 netns;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 family;
	__u16 sport; /* host order */
	__u16 dport; /* host order */
	__u16 pad;
};

struct flow_val {
	__u64 count;
	__u32 state; /* TCP state at the last retransmit */
	__u32 pad;
};

#endif
