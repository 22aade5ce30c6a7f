// SPDX-License-Identifier: GPL-2.0
/*
 * triage syscalls: per-syscall and per-(process, syscall) counts, errors and time, aggregated
 * in the kernel and read once at the end of the window.
 *
 * Each handler exists three times around one body: tp_btf (typed arguments, cheapest), raw_tp
 * (same arguments through CO-RE reads) and the classic tracepoint (last resort; it must return
 * 1 or the event is hidden from other perf users). User space enables one family with
 * set_autoload. Counting happens at sys_exit, which knows the result: one program gives
 * counts and errors; the sys_enter program only runs when latency is measured.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "syscalls.h"
#include "bits.h"

/* errno values used below (not in vmlinux.h) */
#define ENOENT 2
#define E2BIG 7
#define EEXIST 17

#if defined(__TARGET_ARCH_x86)
#define REGS_NR(regs) ((regs)->orig_ax)
#define REGS_NR_FIELD orig_ax
#define NR_EXECVE 59
#define NR_EXECVEAT 322
#define IS_FORK(nr) ((nr) == 56 || (nr) == 57 || (nr) == 58 || (nr) == 435)
#elif defined(__TARGET_ARCH_arm64)
#define REGS_NR(regs) ((regs)->syscallno)
#define REGS_NR_FIELD syscallno
#define NR_EXECVE 221
#define NR_EXECVEAT 281
#define IS_FORK(nr) ((nr) == 220 || (nr) == 435)
#else
#error "triage syscalls supports x86_64 and arm64"
#endif

#define IS_EXEC(nr) ((nr) == NR_EXECVE || (nr) == NR_EXECVEAT)

/* Set before load (rodata): filters, applied first so filtered-out calls cost least. */
const volatile __u32 targ_tgid = 0;	/* 0: every process */
const volatile __u32 self_tgid = 0;	/* triage itself is never counted */
const volatile __u64 targ_cgid = 0;	/* 0: every cgroup; else this v2 cgroup and below */
const volatile int targ_cg_level = 0;	/* depth of targ_cgid in the v2 hierarchy */
const volatile bool filter_comm = false;
const volatile char targ_comm[TASK_COMM_LEN] = {};
const volatile bool measure_latency = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, __u32);
	__type(value, struct sys_stat);
} sys_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* resized from user space before load */
	__type(key, struct proc_sys_key);
	__type(value, struct proc_sys_val);
} proc_sys SEC(".maps");

/*
 * In front of proc_sys: the hot path is an (inlined) per-CPU array access, not a hash lookup.
 * A slot holds one (process, syscall) pair; another pair hashing to the slot flushes it into
 * proc_sys and takes it. User space adds the slots to proc_sys at the end.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct cache_ent);
} proc_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct proc_id);
	__type(value, struct proc_info);
} proc_infos SEC(".maps");

/*
 * When proc_sys is full (a storm of short-lived processes fills it with pids that are gone):
 * their calls go here, by (parent, syscall), key { ppid, nr, 0 }, so no call is lost from the
 * per-process view; the children of one parent become one row.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct proc_sys_key);
	__type(value, struct proc_sys_val);
} child_sys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct errno_key);
	__type(value, __u64);
} errnos SEC(".maps");

/* Keyed by thread id in one shared map: a thread can sleep in a syscall and wake elsewhere. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, __u32);
	__type(value, __u64);
} starts SEC(".maps");

/*
 * The same for the tp_btf programs, in task-local storage: no hash, no delete, no capacity
 * to run out of; the slot goes away with the task (or with the map when triage exits).
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} task_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Dummy instances so the skeleton's `types` module has the shared structs. */
struct sys_stat _sys_stat = {};
struct proc_sys_key _proc_sys_key = {};
struct proc_sys_val _proc_sys_val = {};
struct proc_id _proc_id = {};
struct cache_ent _cache_ent = {};
struct proc_info _proc_info = {};
struct errno_key _errno_key = {};

static __always_inline void drop_n(__u32 what, __u64 n)
{
	__u64 *d = bpf_map_lookup_elem(&dropped, &what);
	if (d)
		*d += n;
}

static __always_inline void drop(__u32 what)
{
	drop_n(what, 1);
}

/* The filters that do not need the task: pid and self. Returns the tgid or 0 to skip. */
static __always_inline __u32 wanted_tgid(__u64 id)
{
	__u32 tgid = id >> 32;
	if (tgid == self_tgid)
		return 0;
	if (targ_tgid && tgid != targ_tgid)
		return 0;
	return tgid;
}

static __always_inline bool wanted_rest(void)
{
	if (targ_cgid && bpf_get_current_ancestor_cgroup_id(targ_cg_level) != targ_cgid)
		return false;
	if (filter_comm) {
		char comm[TASK_COMM_LEN];
		bpf_get_current_comm(comm, sizeof(comm));
		for (int i = 0; i < TASK_COMM_LEN; i++) {
			if (comm[i] != targ_comm[i])
				return false;
			if (comm[i] == 0)
				break;
		}
	}
	return true;
}

/* `task` is the current task as a BTF pointer (tp_btf), or NULL: then the hash is used. */
/* pid_tgid from the BTF task pointer when there is one (two loads, no helper call). */
static __always_inline __u64 pid_tgid(struct task_struct *task)
{
	if (task)
		return ((__u64)task->tgid << 32) | (__u32)task->pid;
	return bpf_get_current_pid_tgid();
}

static __always_inline void on_enter(struct task_struct *task)
{
	__u64 id = pid_tgid(task);
	if (!wanted_tgid(id) || !wanted_rest())
		return;
	__u64 ts = bpf_ktime_get_ns();
	if (task) {
		__u64 *slot = bpf_task_storage_get(&task_starts, task, 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (slot)
			*slot = ts;
		else
			drop(DROP_START);
		return;
	}
	__u32 tid = (__u32)id;
	if (bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY))
		drop(DROP_START);
}

/*
 * The process's name is its main thread's (a thread's own comm may be `lto cgu.00` or
 * `tokio-runtime-w`). Only on the slow path: a new (process, syscall) slot or an execve.
 */
static __always_inline void remember_comm(struct proc_id *pid, bool overwrite)
{
	struct proc_info info = {};
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	if (BPF_CORE_READ_STR_INTO(&info.comm, t, group_leader, comm) < 0)
		bpf_get_current_comm(info.comm, sizeof(info.comm));
	info.ppid = BPF_CORE_READ(t, group_leader, real_parent, tgid);
	if (bpf_map_update_elem(&proc_infos, pid, &info, overwrite ? BPF_ANY : BPF_NOEXIST) == -E2BIG)
		drop(DROP_PROC_INFO);
}

static __always_inline void add_to(struct proc_sys_val *v, struct proc_sys_val *add)
{
	v->count += add->count;
	v->errors += add->errors;
	v->time_ns += add->time_ns;
	v->fail_ns += add->fail_ns;
}

/* Add counts to `map` under `k` (inserting the key if new); non-zero if there was no room. */
static __always_inline long add_counts(void *map, struct proc_sys_key *k, struct proc_sys_val *add)
{
	struct proc_sys_val *v = bpf_map_lookup_elem(map, k);
	if (!v) {
		long e = bpf_map_update_elem(map, k, add, BPF_NOEXIST);
		if (e != -EEXIST)
			return e;
		v = bpf_map_lookup_elem(map, k);
		if (!v)
			return -ENOENT;
	}
	add_to(v, add);
	return 0;
}

/* Add a cache slot's counts to proc_sys; when it is full, to the parent's row in child_sys. */
static __always_inline void flush(struct proc_sys_key *k, struct proc_sys_val *add, __u32 ppid)
{
	if (add_counts(&proc_sys, k, add) == 0)
		return;
	struct proc_sys_key pk = { .tgid = ppid, .nr = k->nr, .start_ns = 0 };
	if (!ppid || add_counts(&child_sys, &pk, add))
		drop_n(DROP_PROC_SYS, add->count);
}

/* The current process's parent (its group leader's real parent), on the slow path only. */
static __always_inline __u32 parent_tgid(void)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(t, group_leader, real_parent, tgid);
}

static __always_inline void on_exit(struct task_struct *task, long nr_l, long ret,
				    __u64 start_ns, bool exec_nr)
{
	__u64 id = pid_tgid(task);
	__u32 tgid = wanted_tgid(id);
	if (!tgid || !wanted_rest())
		return;
	__u64 delta = 0;
	if (measure_latency && task) {
		__u64 *ts = bpf_task_storage_get(&task_starts, task, 0, 0);
		if (ts && *ts) {
			delta = bpf_ktime_get_ns() - *ts;
			*ts = 0;
		}
	} else if (measure_latency) {
		__u32 tid = (__u32)id;
		__u64 *ts = bpf_map_lookup_elem(&starts, &tid);
		if (ts) {
			delta = bpf_ktime_get_ns() - *ts;
			bpf_map_delete_elem(&starts, &tid);
		}
	}
	if (nr_l < 0 || nr_l >= MAX_SYSCALLS) {
		drop(DROP_NR);
		return;
	}
	__u32 nr = (__u32)nr_l;
	/* A new task's first return to user space (ret_from_fork) passes sys_exit with the
	 * parent's clone/fork/vfork number and 0: the parent's call, already counted. */
	if (IS_FORK(nr) && ret == 0)
		return;
	bool err = ret < 0 && ret >= -4095;

	struct sys_stat *s = bpf_map_lookup_elem(&sys_stats, &nr);
	if (s) {
		s->count += 1;
		if (err)
			s->errors += 1;
		if (measure_latency && delta) {
			s->time_ns += delta;
			__u32 slot = log2_u64(delta);
			if (slot >= MAX_SLOTS)
				slot = MAX_SLOTS - 1;
			s->slots[slot] += 1;
		}
	}

	__u32 idx = (tgid * 2654435761u) ^ (nr * 40503u) ^ (__u32)start_ns;
	idx &= CACHE_SLOTS - 1;
	struct cache_ent *c = bpf_map_lookup_elem(&proc_cache, &idx);
	if (c) {
		if (c->key.tgid == tgid && c->key.nr == nr && c->key.start_ns == start_ns) {
			c->val.count += 1;
			if (err)
				c->val.errors += 1;
			c->val.time_ns += delta;
			if (err)
				c->val.fail_ns += delta;
		} else {
			if (c->val.count)
				flush(&c->key, &c->val, c->ppid);
			c->ppid = parent_tgid();
			c->key.tgid = tgid;
			c->key.nr = nr;
			c->key.start_ns = start_ns;
			c->val.count = 1;
			c->val.errors = err ? 1 : 0;
			c->val.time_ns = delta;
			c->val.fail_ns = err ? delta : 0;
			struct proc_id pid = { .tgid = tgid, .start_ns = start_ns };
			remember_comm(&pid, false);
		}
	}
	if (exec_nr && ret == 0) {
		struct proc_id pid = { .tgid = tgid, .start_ns = start_ns };
		remember_comm(&pid, true);
	}
	if (err) {
		struct errno_key ek = { .nr = nr, .err = (__u32)(-ret) };
		__u64 *c = bpf_map_lookup_elem(&errnos, &ek);
		if (c) {
			*c += 1;
		} else {
			__u64 one = 1;
			if (bpf_map_update_elem(&errnos, &ek, &one, BPF_NOEXIST) == -E2BIG)
				drop(DROP_ERRNO);
		}
	}
}


SEC("tp_btf/sys_enter")
int BPF_PROG(triage_enter_btf, struct pt_regs *regs, long id)
{
	on_enter(bpf_get_current_task_btf());
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(triage_exit_btf, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = REGS_NR(regs);
	on_exit(t, nr, ret, t->group_leader->start_time, IS_EXEC(nr));
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(triage_enter_raw, struct pt_regs *regs, long id)
{
	on_enter(NULL);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(triage_exit_raw, struct pt_regs *regs, long ret)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	long nr = BPF_CORE_READ(regs, REGS_NR_FIELD);
	on_exit(NULL, nr, ret, BPF_CORE_READ(t, group_leader, start_time), IS_EXEC(nr));
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int triage_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	on_enter(NULL);
	return 1; /* 0 would hide the event from other perf users of this tracepoint */
}

SEC("tracepoint/raw_syscalls/sys_exit")
int triage_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	long nr = ctx->id;
	on_exit(NULL, nr, ctx->ret, BPF_CORE_READ(t, group_leader, start_time), IS_EXEC(nr));
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
