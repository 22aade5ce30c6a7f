// SPDX-License-Identifier: GPL-2.0
/*
 * triage's process scan: an iter/task program that writes one fixed-size record per task
 * (every thread of every process) into the iterator's seq_file, so one read() of the
 * iterator's fd replaces opening and parsing /proc/PID/stat (and /proc/PID/fd's size and
 * /proc/PID/ns/net) for each process. Raw kernel values only; user space does the
 * arithmetic /proc does (src/collect/taskdump.rs), so recorded fixtures replay it.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "tasks.h"

#define PF_KTHREAD 0x00200000
/* Words of the open-fd bitmap counted at most (64 Ki words: 4 Mi fds); beyond, no count. */
#define MAX_FD_WORDS (1 << 16)

char LICENSE[] SEC("license") = "GPL";

struct task_rec _task_rec = {};

/* Before 6.2, the mm counters were atomics in struct mm_rss_stat. */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));
struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

static __always_inline __u64 rss_counter(struct mm_struct *mm, int i)
{
	__s64 v = 0;
	if (bpf_core_field_exists(((struct mm_struct___old *)0)->rss_stat.count)) {
		struct mm_struct___old *o = (void *)mm;
		v = BPF_CORE_READ(o, rss_stat.count[i & 3].counter);
	} else {
		/* percpu_counter_read_positive(): what get_mm_counter() and so /proc report */
		v = mm->rss_stat[i & 3].count;
	}
	return v > 0 ? (__u64)v : 0;
}

struct fd_ctx {
	unsigned long *bits;
	__u32 count;
};

static __always_inline __u32 popcount64(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

static long count_word(__u64 i, void *data)
{
	struct fd_ctx *c = data;
	unsigned long w = 0;
	if (bpf_probe_read_kernel(&w, sizeof(w), c->bits + i))
		return 1;
	c->count += popcount64(w);
	return 0;
}

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *t = ctx->task;
	struct task_rec r = {};

	if (!t)
		return 0;
	/* ctx->task is a BTF pointer: plain (CO-RE relocated) loads, which the kernel turns
	 * into direct reads with a fault handler, instead of one bpf_probe_read per field. */
	r.version = TASKS_VERSION;
	r.size = sizeof(r);
	r.tgid = t->tgid;
	r.pid = t->pid;
	r.ppid = t->real_parent->tgid;
	/* bpf_loop (5.17) is newer than __state (5.14) and thread_info.cpu (5.16). */
	r.state = t->__state;
	r.exit_state = t->exit_state;
	r.flags = t->flags;
	r.cpu = t->thread_info.cpu;
	r.utime = t->utime;
	r.stime = t->stime;
	r.sum_exec_runtime = t->se.sum_exec_runtime;
	r.prev_utime = t->prev_cputime.utime;
	r.prev_stime = t->prev_cputime.stime;
	r.min_flt = t->min_flt;
	r.maj_flt = t->maj_flt;
	r.nvcsw = t->nvcsw;
	r.nivcsw = t->nivcsw;
	r.start_boottime = t->start_boottime;
	__builtin_memcpy(r.comm, t->comm, sizeof(r.comm));
	r.comm[sizeof(r.comm) - 1] = 0;

	struct signal_struct *sig = t->signal;
	if (sig) {
		r.nr_threads = sig->nr_threads;
		r.sig_utime = sig->utime;
		r.sig_stime = sig->stime;
		r.sig_sum_sched_runtime = sig->sum_sched_runtime;
		r.sig_prev_utime = sig->prev_cputime.utime;
		r.sig_prev_stime = sig->prev_cputime.stime;
		r.sig_min_flt = sig->min_flt;
		r.sig_maj_flt = sig->maj_flt;
		r.sig_cutime = sig->cutime;
		r.sig_cstime = sig->cstime;
	}

	struct mm_struct *mm = t->mm;
	/* MM_FILEPAGES 0, MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3 (since 4.5) */
	if (mm && !(r.flags & PF_KTHREAD)) {
		r.have |= TR_HAVE_MM;
		r.rss_file = rss_counter(mm, 0);
		r.rss_anon = rss_counter(mm, 1);
		r.rss_swap = rss_counter(mm, 2);
		r.rss_shmem = rss_counter(mm, 3);
	}

	/* Per process: the leader's open fds and network namespace. */
	if (r.pid == r.tgid && !(r.flags & PF_KTHREAD)) {
		struct nsproxy *ns = t->nsproxy;
		if (ns) {
			r.netns = ns->net_ns->ns.inum;
			if (r.netns)
				r.have |= TR_HAVE_NETNS;
		}
		struct files_struct *files = t->files;
		if (files) {
			struct fdtable *fdt = files->fdt;
			if (fdt) {
				__u32 words = fdt->max_fds / 64;
				struct fd_ctx c = { .bits = fdt->open_fds, .count = 0 };
				if (c.bits && words <= MAX_FD_WORDS &&
				    bpf_loop(words, count_word, &c, 0) == words) {
					r.nr_fds = c.count;
					r.have |= TR_HAVE_FDS;
				}
			}
		}
	}
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}
