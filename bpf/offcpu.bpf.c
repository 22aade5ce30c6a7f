// SPDX-License-Identifier: GPL-2.0
/*
 * triage offcpu: time threads spend off CPU, summed in the kernel by (process, thread, kernel
 * stack, user stack, state at switch-out), from the scheduler's switch tracepoint.
 *
 * At switch-out the previous task is current: its user stack can only be taken there (only
 * for tasks inside the scope, and only for blocking states unless runnable ones are asked
 * for). The kernel stack, the costly unwind, is taken at switch-in from the task about to
 * run (bpf_get_task_stack: its stack is still exactly where it blocked), and only when the
 * block lasted at least min_block_ns; so short blocks cost no kernel unwind. When every block
 * is wanted (kstack_at_switch_out: min_block of 1 us) it is taken at switch-out instead, from
 * the tracepoint's own context: the same walk costs less there (measured: 0.3 us per switch
 * on the 2-CPU VM), and no block is spared it anyway. That stack starts with the tracing
 * frames and the scheduler's; user space drops them (what bpf_get_task_stack leaves out), so
 * both places give the same stacks. Kernel stacks are stored by a 64-bit hash of their
 * frames. The raw_tp twin (no trusted task pointer) always takes the kernel stack at
 * switch-out. Start records are keyed by thread id in one shared map (tasks migrate). User
 * space enables one twin with set_autoload.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "offcpu.h"

#define PF_KTHREAD 0x00200000
#define TASK_RUNNING 0
#define TASK_DEAD 0x80
#define E2BIG 7

const volatile __u32 targ_tgid = 0;	/* 0: every process */
const volatile __u32 self_tgid = 0;	/* triage itself is never traced */
const volatile __u64 targ_cgid = 0;	/* 0: every cgroup; else this v2 cgroup and below */
const volatile int targ_cg_level = 0;
const volatile __u64 min_block_ns = 1000;
/* Blocks shorter than min_block_ns but at least sample_floor_ns: one in sample_every is
 * recorded (stack and all), weighted by sample_every; 0 or 1: shorter blocks are ignored.
 * Many short waits that add up (fsync at 0.1 ms, a lock held for microseconds) are then seen
 * at a fraction of the cost of unwinding every one. */
const volatile __u32 sample_every = 0;
const volatile __u64 sample_floor_ns = 0;
const volatile bool user_stacks = true;
const volatile bool kernel_threads = false;
const volatile bool include_runnable = false;
/* Take the kernel stack at switch-out on tp_btf too (see the top). */
const volatile bool kstack_at_switch_out = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, struct offcpu_start);
} offcpu_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, OFFCPU_MAX_DEPTH * sizeof(__u64));
} offcpu_stacks SEC(".maps");

/* Kernel stacks by hash of their frames. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct offcpu_kstack);
} offcpu_kstacks SEC(".maps");

/* Scratch space for one kernel stack (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct offcpu_kstack);
} offcpu_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct offcpu_key);
	__type(value, struct offcpu_val);
} offcpu_agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OD_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} offcpu_dropped SEC(".maps");

/*
 * Per CPU: 1 while a timer's expiry function runs (hrtimer or timer_list). A wakeup there is
 * the end of a timeout or a sleep, not another task's doing: an idle pool waking up on its
 * timeout is not waiting for a lock holder.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} offcpu_in_timer SEC(".maps");

/* Per CPU: short blocks seen, for 1-in-sample_every sampling. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} offcpu_short_seen SEC(".maps");

struct offcpu_start _offcpu_start = {};
struct offcpu_key _offcpu_key = {};
struct offcpu_val _offcpu_val = {};
struct offcpu_kstack _offcpu_kstack = {};

static __always_inline void odrop(__u32 what)
{
	__u64 *d = bpf_map_lookup_elem(&offcpu_dropped, &what);
	if (d)
		*d += 1;
}

/* Store the stack in `buf` (`bytes` long) under its hash; returns the hash, 0 if none. */
static __always_inline __u64 store_kstack(struct offcpu_kstack *buf, long bytes)
{
	if (bytes <= 0)
		return 0;
	__u32 n = bytes / 8;
	__u64 h = 0xcbf29ce484222325ULL; /* FNV-1a over the frame addresses */
	/* Only the frames taken: bpf_get_stack and bpf_get_task_stack zero the rest of the
	 * buffer themselves (__bpf_get_stack), so the stored copy has no stale tail. A stack is
	 * typically 10-30 frames: this loop used to run all OFFCPU_MAX_DEPTH slots per block. */
	for (__u32 i = 0; i < OFFCPU_MAX_DEPTH; i++) {
		if (i >= n)
			break;
		h = (h ^ buf->ips[i]) * 0x100000001b3ULL;
	}
	if (!h)
		h = 1;
	if (!bpf_map_lookup_elem(&offcpu_kstacks, &h) &&
	    bpf_map_update_elem(&offcpu_kstacks, &h, buf, BPF_NOEXIST) == -E2BIG) {
		odrop(OD_KSTACK);
		return 0;
	}
	return h;
}

static __always_inline struct offcpu_kstack *scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&offcpu_scratch, &zero);
}

/* prev is current here: its user stack can be taken with bpf_get_stackid. `kernel_now`:
 * also take the kernel stack here (the raw_tp twin). */
static __always_inline void switch_out(void *ctx, __u32 tgid, __u32 pid, __u32 flags, __u32 state,
				       bool kernel_now)
{
	if (!pid)
		return; /* idle */
	if (state == TASK_RUNNING && !include_runnable)
		return; /* preempted: that wait is run-queue latency */
	if (state & TASK_DEAD) {
		/* The last switch of an exiting task: it never comes back; its record goes. */
		bpf_map_delete_elem(&offcpu_starts, &pid);
		return;
	}
	if (tgid == self_tgid)
		return;
	if (targ_tgid && tgid != targ_tgid)
		return;
	bool kthread = flags & PF_KTHREAD;
	if (kthread && !kernel_threads)
		return;
	if (targ_cgid && bpf_get_current_ancestor_cgroup_id(targ_cg_level) != targ_cgid)
		return;
	struct offcpu_start s = {
		.ts = bpf_ktime_get_ns(),
		.tgid = tgid,
		.state = state,
		.ustack = -1,
	};
	if (kernel_now) {
		struct offcpu_kstack *buf = scratch();
		if (buf)
			s.kstack = store_kstack(buf, bpf_get_stack(ctx, buf->ips, sizeof(buf->ips), 0));
	}
	if (user_stacks && !kthread) {
		s.ustack = bpf_get_stackid(ctx, &offcpu_stacks, BPF_F_USER_STACK | BPF_F_FAST_STACK_CMP);
		if (s.ustack < 0 && s.ustack != -14 /* EFAULT: no user stack */)
			odrop(OD_USTACK);
	}
	/* A thread's record is reused in place from one block to the next (a lookup, not an
	 * update that replaces the element and a delete at switch-in): ts 0 marks it closed. */
	struct offcpu_start *old = bpf_map_lookup_elem(&offcpu_starts, &pid);
	if (old)
		*old = s;
	else if (bpf_map_update_elem(&offcpu_starts, &pid, &s, BPF_ANY))
		odrop(OD_START);
}

/* `next`: the task about to run, when its kernel stack is to be taken here (tp_btf). */
static __always_inline void switch_in(__u32 pid, const char *comm, struct task_struct *next)
{
	struct offcpu_start *s = bpf_map_lookup_elem(&offcpu_starts, &pid);
	if (!s || !s->ts)
		return;
	__u64 delta = bpf_ktime_get_ns() - s->ts;
	struct offcpu_key k = {
		.tgid = s->tgid,
		.pid = pid,
		.kstack = s->kstack,
		.ustack = s->ustack,
		.state = s->state,
	};
	bool timer = s->timer_woken;
	s->ts = 0;
	__u64 weight = 1;
	if (delta < min_block_ns) {
		if (sample_every < 2 || delta < sample_floor_ns)
			return;
		__u32 zero = 0;
		__u32 *n = bpf_map_lookup_elem(&offcpu_short_seen, &zero);
		if (!n)
			return;
		*n += 1;
		if (*n % sample_every)
			return;
		weight = sample_every;
	}
	if (next && !k.kstack) {
		struct offcpu_kstack *buf = scratch();
		if (buf)
			k.kstack = store_kstack(buf, bpf_get_task_stack(next, buf->ips, sizeof(buf->ips), 0));
	}
	struct offcpu_val *v = bpf_map_lookup_elem(&offcpu_agg, &k);
	if (!v) {
		struct offcpu_val zero = {};
		bpf_probe_read_kernel_str(zero.comm, sizeof(zero.comm), comm);
		if (bpf_map_update_elem(&offcpu_agg, &k, &zero, BPF_NOEXIST) == -E2BIG) {
			odrop(OD_AGG);
			return;
		}
		v = bpf_map_lookup_elem(&offcpu_agg, &k);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->total_ns, delta * weight);
	__sync_fetch_and_add(&v->count, weight);
	if (delta > v->max_ns)
		v->max_ns = delta;
	if (timer) {
		__sync_fetch_and_add(&v->timer_count, weight);
		__sync_fetch_and_add(&v->timer_ns, delta * weight);
	}
}

static __always_inline void timer_mark(__u32 on)
{
	__u32 zero = 0;
	__u32 *t = bpf_map_lookup_elem(&offcpu_in_timer, &zero);
	if (t)
		*t = on;
}

/* A task is being woken: if a timer's expiry does it, mark its start record. */
static __always_inline void waking(__u32 pid)
{
	__u32 zero = 0;
	__u32 *t = bpf_map_lookup_elem(&offcpu_in_timer, &zero);
	if (!t || !*t)
		return;
	struct offcpu_start *s = bpf_map_lookup_elem(&offcpu_starts, &pid);
	if (s)
		s->timer_woken = 1;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_out(ctx, prev->tgid, prev->pid, prev->flags, prev_state, kstack_at_switch_out);
	switch_in(next->pid, next->comm, next);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(offcpu_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	switch_out(ctx, BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid), BPF_CORE_READ(prev, flags),
		   prev_state, true);
	switch_in(BPF_CORE_READ(next, pid), next->comm, NULL);
	return 0;
}

SEC("tp_btf/sched_waking")
int BPF_PROG(offcpu_waking_btf, struct task_struct *p)
{
	waking(p->pid);
	return 0;
}

SEC("raw_tp/sched_waking")
int BPF_PROG(offcpu_waking_raw, struct task_struct *p)
{
	waking(BPF_CORE_READ(p, pid));
	return 0;
}

/* The timer tracepoints carry no argument we need: only enter/leave. */
SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(offcpu_hrt_in_btf)
{
	timer_mark(1);
	return 0;
}

SEC("tp_btf/hrtimer_expire_exit")
int BPF_PROG(offcpu_hrt_out_btf)
{
	timer_mark(0);
	return 0;
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(offcpu_tl_in_btf)
{
	timer_mark(1);
	return 0;
}

SEC("tp_btf/timer_expire_exit")
int BPF_PROG(offcpu_tl_out_btf)
{
	timer_mark(0);
	return 0;
}

SEC("raw_tp/hrtimer_expire_entry")
int BPF_PROG(offcpu_hrt_in_raw)
{
	timer_mark(1);
	return 0;
}

SEC("raw_tp/hrtimer_expire_exit")
int BPF_PROG(offcpu_hrt_out_raw)
{
	timer_mark(0);
	return 0;
}

SEC("raw_tp/timer_expire_entry")
int BPF_PROG(offcpu_tl_in_raw)
{
	timer_mark(1);
	return 0;
}

SEC("raw_tp/timer_expire_exit")
int BPF_PROG(offcpu_tl_out_raw)
{
	timer_mark(0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
