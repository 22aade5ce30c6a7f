/* SPDX-License-Identifier: (MIT OR Apache-2.0 OR GPL-2.0) */
/*
 * Shared between bpf/tasks.bpf.c and src/collect/taskdump.rs (which decodes the records as
 * `RawTaskRec`, a mirror of this struct that needs no BPF, so a recorded fixture replays
 * anywhere; src/probe/taskiter.rs checks at compile time that the mirror has the generated
 * type's size and field offsets): one record per task (thread) of the BPF task iterator.
 * Change both sides together, and bump TASKS_VERSION.
 *
 * Times are nanoseconds as task_struct holds them; sizes are pages. User space turns them
 * into what /proc/PID/stat shows (cputime_adjust, nsec_to_clock_t, get_mm_rss).
 */
#ifndef TRIAGE_TASKS_H
#define TRIAGE_TASKS_H

#define TASKS_COMM_LEN 16
/* Bump when the record changes: user space refuses other versions. */
#define TASKS_VERSION 1

/* flags of task_rec.have */
#define TR_HAVE_MM 1 /* rss_* are valid (the task has an mm) */
#define TR_HAVE_FDS 2 /* nr_fds is valid (group leader with a files table, counted in full) */
#define TR_HAVE_NETNS 4 /* netns is valid */

struct task_rec {
	__u32 version; /* TASKS_VERSION */
	__u32 size; /* sizeof(struct task_rec) */
	__u32 tgid;
	__u32 pid;
	__u32 ppid; /* real_parent->tgid */
	__u32 state; /* task->__state */
	__u32 exit_state;
	__u32 flags; /* task->flags (PF_KTHREAD) */
	__u32 cpu; /* the CPU it last ran on */
	__s32 nr_threads; /* signal->nr_threads */
	__u32 nr_fds; /* open fds (bits of files->fdt->open_fds) */
	__u32 have; /* TR_HAVE_* */
	__u64 netns; /* nsproxy->net_ns->ns.inum */
	/* this thread */
	__u64 utime;
	__u64 stime;
	__u64 sum_exec_runtime;
	__u64 prev_utime; /* task->prev_cputime: what /proc last reported */
	__u64 prev_stime;
	__u64 min_flt;
	__u64 maj_flt;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 start_boottime;
	/* the process (mm and signal_struct, shared by its threads) */
	__u64 rss_file;
	__u64 rss_anon;
	__u64 rss_swap;
	__u64 rss_shmem;
	__u64 sig_utime; /* threads that exited */
	__u64 sig_stime;
	__u64 sig_sum_sched_runtime;
	__u64 sig_prev_utime;
	__u64 sig_prev_stime;
	__u64 sig_min_flt;
	__u64 sig_maj_flt;
	__u64 sig_cutime; /* reaped children */
	__u64 sig_cstime;
	char comm[TASKS_COMM_LEN];
};

_Static_assert(sizeof(struct task_rec) == 256, "src/collect/taskdump.rs decodes 256-byte records");

#endif
