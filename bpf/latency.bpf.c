// SPDX-License-Identifier: GPL-2.0
/*
 * The cheap latency probes the resource views use, one object, each part enabled on its own:
 *  - run-queue latency: wakeup (and new-task wakeup, and preemption) to switch-in, per CPU;
 *  - block I/O latency: request issue to completion, per (device, op);
 *  - TCP retransmits per flow, from tcp:tcp_retransmit_skb (fires in every network namespace).
 * Histograms are log2 in nanoseconds. Every handler exists as tp_btf and raw_tp; user space
 * enables one family with set_autoload.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "latency.h"
#include "bits.h"

#define TASK_RUNNING 0
#define E2BIG 7
#define AF_INET 2
#define AF_INET6 10
#define REQ_OP_MASK 0xff

const volatile __u32 self_tgid = 0;
const volatile __u32 rq_tgid = 0;	/* 0: every task; else only this process's threads */
const volatile __u32 bio_tgid = 0;	/* 0: every request; else only those issued by this tgid */
const volatile __u32 bio_dev = 0;	/* 0: every device */

/*
 * When each task was enqueued. The tp_btf programs keep it in task-local storage (no hash
 * update and delete per event, nothing preallocated: the slot comes with the task); the
 * raw_tp twins, which have no trusted task pointer, in this tid hash, not created otherwise.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u64);
} rq_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} rq_task_starts SEC(".maps");

/* Indexed by the CPU that switches the task in: only that CPU writes its entry. Sized to the
 * possible CPUs from user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LAT_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct lat_hist);
} rq_hist SEC(".maps");

/* Not preallocated (here and below): creating 16k preallocated entries cost more start-up
 * CPU than the whole block probe; entries are allocated as requests come. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct bio_start);
} bio_starts SEC(".maps");

/* With a process filter: requests that process queued through an I/O scheduler (they may be
 * issued later from another context, e.g. kblockd). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} bio_owned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct bio_key);
	__type(value, struct lat_hist);
} bio_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} retrans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LD_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} lat_dropped SEC(".maps");

struct lat_hist _lat_hist = {};
struct bio_start _bio_start = {};
struct bio_key _bio_key = {};
struct flow_key _flow_key = {};
struct flow_val _flow_val = {};

static __always_inline void ldrop(__u32 what)
{
	__u64 *d = bpf_map_lookup_elem(&lat_dropped, &what);
	if (d)
		*d += 1;
}

static __always_inline void hist_add(struct lat_hist *h, __u64 delta)
{
	__u32 slot = log2_u64(delta);
	if (slot >= LAT_SLOTS)
		slot = LAT_SLOTS - 1;
	h->count += 1;
	h->sum_ns += delta;
	if (delta > h->max_ns)
		h->max_ns = delta;
	h->slots[slot] += 1;
}

/* ---- run-queue latency ---- */

/* `t`: the task as a trusted BTF pointer (tp_btf: task storage), or NULL (raw_tp: the hash). */
static __always_inline void rq_enqueued(struct task_struct *t, __u32 pid, __u32 tgid)
{
	if (!pid)
		return;
	if (rq_tgid && tgid != rq_tgid)
		return;
	__u64 ts = bpf_ktime_get_ns();
	if (t) {
		__u64 *slot = bpf_task_storage_get(&rq_task_starts, t, 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (slot)
			*slot = ts;
		else
			ldrop(LD_RQ_START);
		return;
	}
	if (bpf_map_update_elem(&rq_starts, &pid, &ts, BPF_ANY))
		ldrop(LD_RQ_START);
}

static __always_inline void rq_switch(struct task_struct *prev_t, __u32 prev_pid, __u32 prev_tgid,
				     unsigned int prev_state, struct task_struct *next_t,
				     __u32 next_pid)
{
	if (prev_state == TASK_RUNNING)
		rq_enqueued(prev_t, prev_pid, prev_tgid); /* preempted: waits on the run queue */
	if (!next_pid)
		return;
	__u64 delta;
	if (next_t) {
		/* No create: a task never seen enqueued has no slot (and costs none). */
		__u64 *ts = bpf_task_storage_get(&rq_task_starts, next_t, 0, 0);
		if (!ts || !*ts)
			return;
		delta = bpf_ktime_get_ns() - *ts;
		*ts = 0;
	} else {
		__u64 *ts = bpf_map_lookup_elem(&rq_starts, &next_pid);
		if (!ts)
			return;
		delta = bpf_ktime_get_ns() - *ts;
		bpf_map_delete_elem(&rq_starts, &next_pid);
	}
	__u32 cpu = bpf_get_smp_processor_id();
	struct lat_hist *h = bpf_map_lookup_elem(&rq_hist, &cpu);
	if (h)
		hist_add(h, delta);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rq_wakeup_btf, struct task_struct *p)
{
	rq_enqueued(p, p->pid, p->tgid);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rq_wakeup_new_btf, struct task_struct *p)
{
	rq_enqueued(p, p->pid, p->tgid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rq_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	rq_switch(prev, prev->pid, prev->tgid, prev_state, next, next->pid);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(rq_wakeup_raw, struct task_struct *p)
{
	rq_enqueued(NULL, BPF_CORE_READ(p, pid), BPF_CORE_READ(p, tgid));
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(rq_wakeup_new_raw, struct task_struct *p)
{
	rq_enqueued(NULL, BPF_CORE_READ(p, pid), BPF_CORE_READ(p, tgid));
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(rq_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	rq_switch(NULL, BPF_CORE_READ(prev, pid), BPF_CORE_READ(prev, tgid), prev_state, NULL,
		  BPF_CORE_READ(next, pid));
	return 0;
}

/* ---- block I/O latency ---- */

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	__u32 major = BPF_CORE_READ(disk, major);
	__u32 minor = BPF_CORE_READ(disk, first_minor);
	return (major << 20) | minor;
}

static __always_inline void bio_insert(struct request *rq)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!bio_tgid || tgid != bio_tgid)
		return;
	__u64 key = (__u64)rq;
	bpf_map_update_elem(&bio_owned, &key, &tgid, BPF_ANY);
}

static __always_inline void bio_issue(struct request *rq)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (bio_tgid && tgid != bio_tgid) {
		__u64 key = (__u64)rq;
		if (!bpf_map_lookup_elem(&bio_owned, &key))
			return;
		bpf_map_delete_elem(&bio_owned, &key);
		tgid = bio_tgid;
	}
	if (bio_dev && rq_dev(rq) != bio_dev)
		return;
	__u64 key = (__u64)rq;
	struct bio_start s = { .ts = bpf_ktime_get_ns(), .tgid = tgid };
	if (bpf_map_update_elem(&bio_starts, &key, &s, BPF_ANY))
		ldrop(LD_BIO_START);
}

static __always_inline void bio_complete(struct request *rq)
{
	__u64 key = (__u64)rq;
	struct bio_start *s = bpf_map_lookup_elem(&bio_starts, &key);
	if (!s)
		return;
	__u64 delta = bpf_ktime_get_ns() - s->ts;
	bpf_map_delete_elem(&bio_starts, &key);
	struct bio_key k = {
		.dev = rq_dev(rq),
		.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK,
	};
	struct lat_hist *h = bpf_map_lookup_elem(&bio_hist, &k);
	if (!h) {
		struct lat_hist zero = {};
		if (bpf_map_update_elem(&bio_hist, &k, &zero, BPF_NOEXIST) == -E2BIG) {
			ldrop(LD_BIO_HIST);
			return;
		}
		h = bpf_map_lookup_elem(&bio_hist, &k);
		if (!h)
			return;
	}
	hist_add(h, delta);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(bio_issue_btf, struct request *rq)
{
	bio_issue(rq);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(bio_insert_btf, struct request *rq)
{
	bio_insert(rq);
	return 0;
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(bio_insert_raw, struct request *rq)
{
	bio_insert(rq);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(bio_complete_btf, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	bio_complete(rq);
	return 0;
}

SEC("raw_tp/block_rq_issue")
int BPF_PROG(bio_issue_raw, struct request *rq)
{
	bio_issue(rq);
	return 0;
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(bio_complete_raw, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	bio_complete(rq);
	return 0;
}

/* ---- TCP retransmits ---- */

static __always_inline void retransmit(const struct sock *sk)
{
	struct flow_key k = {};
	k.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	k.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (k.family == AF_INET) {
		BPF_CORE_READ_INTO(&k.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&k.daddr, sk, __sk_common.skc_daddr);
	} else if (k.family == AF_INET6) {
		BPF_CORE_READ_INTO(&k.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&k.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
	__u32 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	struct flow_val *v = bpf_map_lookup_elem(&retrans, &k);
	if (!v) {
		struct flow_val zero = {};
		if (bpf_map_update_elem(&retrans, &k, &zero, BPF_NOEXIST) == -E2BIG) {
			ldrop(LD_RETRANS);
			return;
		}
		v = bpf_map_lookup_elem(&retrans, &k);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->count, 1);
	v->state = state;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(retrans_btf, const struct sock *sk, const struct sk_buff *skb)
{
	retransmit(sk);
	return 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(retrans_raw, const struct sock *sk, const struct sk_buff *skb)
{
	retransmit(sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
