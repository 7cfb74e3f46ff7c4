/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* fork (scope inheritance), exec (argv, cwd, exe), exit (status). */
#ifndef WA_PROCESS_BPF_H
#define WA_PROCESS_BPF_H

#include "path.bpf.h"
#include "budget.bpf.h"

/* The traced set had no room for a child of a traced tree: count it and name
 * it, so an escape by forking a busy tree past WA_TRACED_MAX is evidence. */
static __always_inline void wa_scope_overflow(__u32 child, const struct wa_traced *next, long err)
{
	wa_count(&wa_loss, WA_LOSS_SCOPE_FULL);
	struct wa_scope_overflow *r = wa_reserve(sizeof(*r), WA_EV_SCOPE_OVERFLOW);
	if (!r)
		return;
	wa_fill_hdr(&r->hdr, WA_EV_SCOPE_OVERFLOW, sizeof(*r));
	r->child_pid = child;
	r->root_pid = next->root_pid;
	r->depth = next->depth;
	r->error = err;
	wa_submit(r, WA_EV_SCOPE_OVERFLOW);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(wa_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	struct wa_traced next = {};
	struct wa_traced *pt;
	long err;

	if (ptgid == ctgid)
		return 0; /* a new thread, not a new process */

	pt = bpf_map_lookup_elem(&wa_traced, &ptgid);
	if (pt) {
		next.root_pid = pt->root_pid;
		next.depth = pt->depth + 1;
		wa_traced_mark(ctgid);
		err = bpf_map_update_elem(&wa_traced, &ctgid, &next, BPF_ANY);
		if (err) {
			wa_traced_unmark(ctgid);
			wa_scope_overflow(ctgid, &next, err);
			return 0;
		}
	} else if (wa_spawn_parent == ptgid &&
		   __sync_val_compare_and_swap(&wa_spawn_parent, ptgid, 0) == ptgid) {
		/* `witness run`: the child is traced before it runs a single instruction */
		next.root_pid = ctgid;
		wa_traced_mark(ctgid);
		err = bpf_map_update_elem(&wa_traced, &ctgid, &next, BPF_ANY);
		if (err) {
			wa_traced_unmark(ctgid);
			/* re-arm: user space sees the one-shot unconsumed and refuses
			 * to let the command run untraced */
			__sync_val_compare_and_swap(&wa_spawn_parent, 0, ptgid);
			wa_scope_overflow(ctgid, &next, err);
			return 0;
		}
	} else if (!wa_trace_all || ptgid == wa_self_tgid) {
		return 0;
	}

	struct wa_fork *r = wa_reserve(sizeof(*r), WA_EV_FORK);
	if (!r)
		return 0;
	wa_fill_hdr(&r->hdr, WA_EV_FORK, sizeof(*r));
	/* the header describes the parent (current); the child is named here */
	r->child_pid = ctgid;
	r->pad = 0;
	wa_submit(r, WA_EV_FORK);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(wa_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = task->tgid;
	if (!wa_is_traced(tgid))
		return 0;

	struct wa_scratch *s = wa_scratch();
	if (!s)
		return 0;
	struct wa_exec *e = (struct wa_exec *)s->rec;
	char *data = (char *)(e + 1);
	__u16 flags = 0;
	__u32 off = 0;

	wa_fill_hdr(&e->hdr, WA_EV_EXEC, 0);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->argc = BPF_CORE_READ(bprm, argc);
	e->euid = BPF_CORE_READ(task, cred, euid.val);
	e->egid = BPF_CORE_READ(task, cred, egid.val);

	/* filename as passed to execve */
	long r = bpf_probe_read_kernel_str(data, WA_FILENAME_MAX, BPF_CORE_READ(bprm, filename));
	__u32 flen = r > 0 ? r - 1 : 0;
	if (r == WA_FILENAME_MAX)
		flags |= WA_F_TRUNC_FILENAME;
	e->filename_len = flen;
	off = flen & (WA_FILENAME_MAX - 1);

	/* argv straight from the new image's stack: NUL-separated strings */
	unsigned long arg_start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long arg_end = BPF_CORE_READ(task, mm, arg_end);
	__u32 alen = arg_end > arg_start ? arg_end - arg_start : 0;
	if (alen > WA_ARGV_MAX) {
		alen = WA_ARGV_MAX;
		flags |= WA_F_TRUNC_ARGV;
	}
	alen &= (2 * WA_ARGV_MAX - 1);
	if (alen > WA_ARGV_MAX)
		alen = WA_ARGV_MAX;
	if (alen && bpf_probe_read_user(&data[off], alen, (void *)arg_start)) {
		flags |= WA_F_READ_FAULT;
		alen = 0;
	}
	e->argv_len = alen;
	off += alen;

	/* cwd, then the resolved executable */
	struct path pwd = {};
	BPF_CORE_READ_INTO(&pwd, task, fs, pwd);
	/* clamp, not mask: these sums are not powers of two */
	if (off > WA_FILENAME_MAX + WA_ARGV_MAX)
		off = WA_FILENAME_MAX + WA_ARGV_MAX;
	__u32 clen = wa_path_write(s, &pwd, &data[off], &flags);
	clen &= (WA_PATH_MAX - 1);
	e->cwd_len = clen;
	off += clen;

	struct path exe = {};
	BPF_CORE_READ_INTO(&exe, bprm, file, f_path);
	/* no name in any directory: memfd_create, O_TMPFILE or a deleted file, so
	 * nothing on disk is what ran (fileless exec) */
	if (BPF_CORE_READ(bprm, file, f_inode, __i_nlink) == 0)
		flags |= WA_F_FILELESS;
	if (off > WA_FILENAME_MAX + WA_ARGV_MAX + WA_PATH_MAX)
		off = WA_FILENAME_MAX + WA_ARGV_MAX + WA_PATH_MAX;
	__u32 xlen = wa_path_write(s, &exe, &data[off], &flags);
	xlen &= (WA_PATH_MAX - 1);
	e->exe_len = xlen;
	off += xlen;

	/* chrooted: where its root is, from the namespace's root, so that the
	 * record's root-relative paths can be placed */
	e->root_len = 0;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	struct path root = {};
	if (wa_task_root(&root)) {
		if (off > WA_FILENAME_MAX + WA_ARGV_MAX + 2 * WA_PATH_MAX)
			off = WA_FILENAME_MAX + WA_ARGV_MAX + 2 * WA_PATH_MAX;
		__u16 ignored = 0; /* the root's own walk is global: its flags say nothing of the exec */
		__u32 rlen = wa_path_write_from(s, &root, &data[off], &ignored, false);
		if (ignored & WA_F_TRUNC_PATH)
			flags |= WA_F_TRUNC_PATH;
		rlen &= (WA_PATH_MAX - 1);
		e->root_len = rlen;
		off += rlen;
	}

	e->hdr.flags = flags;
	e->hdr.size = sizeof(*e) + off;
	wa_output(e, sizeof(*e) + off, WA_EV_EXEC);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(wa_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	/* The process ends with its last thread, not with its leader (which may
	 * pthread_exit early): do_exit decrements signal->live before this
	 * tracepoint, so zero means this thread is the group's last. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	if (!wa_is_traced(tgid))
		return 0;

	struct wa_exit *r = wa_reserve(sizeof(*r), WA_EV_EXIT);
	if (r) {
		wa_fill_hdr(&r->hdr, WA_EV_EXIT, sizeof(*r));
		r->ppid = BPF_CORE_READ(task, real_parent, tgid);
		r->exit_code = task->exit_code;
		wa_submit(r, WA_EV_EXIT);
	}
	bpf_map_delete_elem(&wa_traced, &tgid);
	wa_traced_unmark(tgid);
	wa_budget_forget(tgid);
	return 0;
}

#endif
