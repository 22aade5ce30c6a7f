// SPDX-License-Identifier: GPL-2.0
/*
 * triage profile: timed stack sampling. One perf event per CPU (CPU clock, or cycles) fires
 * at the requested rate; each sample counts (process, thread, CPU, kernel stack, user stack)
 * in a hash map, so the window costs one map update per sample and user space reads the
 * counts once at the end. The stack map is bounded: a stack that does not fit (map full, or
 * a different stack already in its bucket) is counted as dropped, never attributed to
 * another stack. Filters are rodata, so the verifier drops what is not asked for.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "profile.h"

#define E2BIG 7
#define EFAULT 14

const volatile __u32 targ_tgid = 0; /* 0: every process */
const volatile __u32 self_tgid = 0; /* triage itself is never sampled */
const volatile __u64 targ_cgid = 0; /* 0: every cgroup; else this v2 cgroup and below */
const volatile int targ_cg_level = 0;
const volatile bool filter_comm = false;
const volatile char targ_comm[PROFILE_COMM_LEN] = {};
const volatile bool user_stacks = true;
const volatile bool kernel_stacks = true;
/* Keep the idle task's kernel stacks (softirqs and interrupts run on idle CPUs too). */
const volatile bool idle_stacks = true;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 16384);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PROFILE_MAX_DEPTH * sizeof(__u64));
} profile_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct profile_key);
	__type(value, struct profile_val);
} profile_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} profile_stats SEC(".maps");

struct profile_key _profile_key = {};
struct profile_val _profile_val = {};

static __always_inline void stat(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&profile_stats, &what);
	if (v)
		*v += 1; /* per-CPU, and a CPU takes one sample at a time */
}

static __always_inline bool comm_matches(void)
{
	char comm[PROFILE_COMM_LEN];
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < PROFILE_COMM_LEN; i++) {
		if (comm[i] != targ_comm[i])
			return false;
		if (comm[i] == 0)
			break;
	}
	return true;
}

static __always_inline __s32 stack_id(struct bpf_perf_event_data *ctx, __u64 flags, __u32 drop)
{
	long id = bpf_get_stackid(ctx, &profile_stacks, flags);
	if (id < 0 && id != -EFAULT)
		stat(drop); /* -EEXIST: collision, -ENOMEM: full */
	return id;
}

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, pid = id;
	stat(PS_SAMPLES);
	if (pid == 0) {
		stat(PS_IDLE);
		if (!idle_stacks || targ_tgid || targ_cgid || filter_comm)
			return 0;
	} else {
		if (tgid == self_tgid)
			return 0;
		if (targ_tgid && tgid != targ_tgid)
			return 0;
		if (targ_cgid && bpf_get_current_ancestor_cgroup_id(targ_cg_level) != targ_cgid)
			return 0;
		if (filter_comm && !comm_matches())
			return 0;
	}
	stat(PS_COUNTED);
	struct profile_key k = {
		.tgid = tgid,
		.pid = pid,
		.cpu = bpf_get_smp_processor_id(),
		.kstack = -EFAULT,
		.ustack = -EFAULT,
	};
	if (kernel_stacks)
		k.kstack = stack_id(ctx, 0, PS_DROP_KSTACK);
	if (user_stacks && pid != 0)
		k.ustack = stack_id(ctx, BPF_F_USER_STACK, PS_DROP_USTACK);
	struct profile_val *v = bpf_map_lookup_elem(&profile_counts, &k);
	if (!v) {
		struct profile_val zero = {};
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		long err = bpf_map_update_elem(&profile_counts, &k, &zero, BPF_NOEXIST);
		if (err == -E2BIG) {
			stat(PS_DROP_AGG);
			return 0;
		}
		v = bpf_map_lookup_elem(&profile_counts, &k);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
