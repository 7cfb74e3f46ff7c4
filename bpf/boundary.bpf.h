/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The boundary: what an agent does to the machine and to others that matters
 * for privilege and persistence (link, symlink, chmod, memfd_create, module
 * load, bpf, mount, namespaces) and signals sent outside its own tree.
 *
 * These syscalls are rare, so they get no handler of their own: the two
 * dispatchers (syscall.bpf.h), after finding no handler for a syscall
 * number, switch on it here before any map lookup, and only the listed
 * numbers go further.
 * Arguments are the syscall's registers (what the kernel used); paths and
 * names behind pointers are user memory, and the record says so.
 */
#ifndef WA_BOUNDARY_BPF_H
#define WA_BOUNDARY_BPF_H

#include "path.bpf.h"

#define WA_K_SYSOP 30   /* args[0..4] = syscall args, args[5] = enum wa_sysop_syscall */

#ifndef __TARGET_ARCH_x86
#error "boundary.bpf.h: syscall numbers are x86_64's; add this architecture's"
#endif

/* x86_64 syscall numbers -> enum wa_sysop_syscall; 0 = not ours (the common case). */
static __always_inline __u32 wa_sysop_of(long nr)
{
	switch (nr) {
	case 86: return WA_SYS_LINK;
	case 265: return WA_SYS_LINKAT;
	case 88: return WA_SYS_SYMLINK;
	case 266: return WA_SYS_SYMLINKAT;
	case 90: return WA_SYS_CHMOD;
	/* 91, fchmod: handlers of its own (chmod.bpf.h) */
	case 268: return WA_SYS_FCHMODAT;
	case 452: return WA_SYS_FCHMODAT2;
	case 319: return WA_SYS_MEMFD_CREATE;
	case 175: return WA_SYS_INIT_MODULE;
	case 313: return WA_SYS_FINIT_MODULE;
	case 321: return WA_SYS_BPF;
	case 165: return WA_SYS_MOUNT;
	case 166: return WA_SYS_UMOUNT2;
	case 429: return WA_SYS_MOVE_MOUNT;
	case 272: return WA_SYS_UNSHARE;
	case 308: return WA_SYS_SETNS;
	case 62: return WA_SYS_KILL;
	case 200: return WA_SYS_TKILL;
	case 234: return WA_SYS_TGKILL;
	case 424: return WA_SYS_PIDFD_SEND_SIGNAL;
	}
	return 0;
}

/* The sys_enter dispatcher. Every syscall of every process on the host runs
 * it while it is attached, so its first act is the gate: a caller nobody
 * traces (the wa_traced_bits filter, one load, common.bpf.h) returns before
 * any tail call, helper or map update. A traced caller goes to the syscall's
 * handler if it has one (a tail call does not return), else to the
 * boundary's own rare syscalls below. Handlers run only behind this gate. */
SEC("tp_btf/sys_enter")
int BPF_PROG(wa_sys_enter, struct pt_regs *regs, long id)
{
	if (!wa_current_traced())
		return 0;
	if (wa_tail_hot_enter(ctx, id))
		return 0;
	bpf_tail_call(ctx, &wa_sys_enter_tab, (__u32)id);
	__u32 op = wa_sysop_of(id);
	if (!op)
		return 0;
	__u64 a[6];
	a[0] = BPF_CORE_READ(regs, di);
	a[1] = BPF_CORE_READ(regs, si);
	a[2] = BPF_CORE_READ(regs, dx);
	a[3] = BPF_CORE_READ(regs, r10);
	a[4] = BPF_CORE_READ(regs, r8);
	a[5] = op;
	wa_pending_save_args(WA_K_SYSOP, a);
	return 0;
}

/* ---- signals outside the sender's tree ---- */

#define SI_USER 0
#define SI_QUEUE -1
#define SI_TKILL -6

/* Is `target` in the sender's own tree? Traced trees share a root; in
 * host-wide mode (no roots) a descendant of the sender counts as its tree. */
static __always_inline bool wa_same_tree(__u32 sender, struct task_struct *target, __u32 target_tgid)
{
	if (target_tgid == sender)
		return true;
	struct wa_traced *st = bpf_map_lookup_elem(&wa_traced, &sender);
	struct wa_traced *tt = bpf_map_lookup_elem(&wa_traced, &target_tgid);
	if (st && tt)
		return st->root_pid == tt->root_pid;
	if (!wa_trace_all || !target)
		return false;
	struct task_struct *p = target;
#pragma unroll
	for (int i = 0; i < 8; i++) {
		p = BPF_CORE_READ(p, real_parent);
		__u32 pt = BPF_CORE_READ(p, tgid);
		if (pt == sender)
			return true;
		if (pt <= 1)
			break;
	}
	return false;
}

static __always_inline void wa_kill_emit(__s32 ret, __s32 sig, __s32 target_pid, __u32 target_tid, __s32 code,
					 __u16 syscall, __u16 source)
{
	struct wa_kill *r = wa_reserve(sizeof(*r), WA_EV_KILL);
	if (!r)
		return;
	wa_fill_hdr(&r->hdr, WA_EV_KILL, sizeof(*r));
	r->ret = ret;
	r->sig = sig;
	r->target_pid = target_pid;
	r->target_tid = target_tid;
	r->code = code;
	r->syscall = syscall;
	r->source = source;
	wa_submit(r, WA_EV_KILL);
}

/* Fires for every signal the kernel generates, after the permission check:
 * the target is the kernel's task, whatever pid, pidfd or group was named. */
SEC("tp_btf/signal_generate")
int BPF_PROG(wa_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	if (!wa_is_traced(sender))
		return 0;
	int code;
	if ((unsigned long)info == 0) /* SEND_SIG_NOINFO: from user space */
		code = SI_USER;
	else if ((unsigned long)info == 1) /* SEND_SIG_PRIV: the kernel's own */
		return 0;
	else
		code = BPF_CORE_READ(info, si_code);
	/* only signals a process asked for: not SIGCHLD, SIGPIPE, timers */
	if (code != SI_USER && code != SI_QUEUE && code != SI_TKILL)
		return 0;
	__u32 ttgid = BPF_CORE_READ(task, tgid);
	if (wa_same_tree(sender, task, ttgid))
		return 0;
	wa_kill_emit(result, sig, ttgid, BPF_CORE_READ(task, pid), code, 0, WA_KILL_GENERATED);
	return 0;
}

/* The pid behind a pidfd (its struct pid, number in the initial namespace). */
static __always_inline __s32 wa_pidfd_pid(int fd)
{
	struct file *f = wa_fd_file(fd);
	if (!f)
		return 0;
	struct pid *pid = BPF_CORE_READ(f, private_data);
	return pid ? BPF_CORE_READ(pid, numbers[0].nr) : 0;
}

/* A failed kill generates no signal, so it is reported from the syscall. */
static __always_inline void wa_kill_exit(struct wa_pending *p, long ret, __u32 op)
{
	if (ret >= 0)
		return; /* signal_generate reported it (or it was signal 0) */
	__s32 target = p->args[0];
	__u32 tid = 0;
	__s32 sig = p->args[1];
	if (op == WA_SYS_TKILL) {
		tid = target;
	} else if (op == WA_SYS_TGKILL) {
		tid = p->args[1];
		sig = p->args[2];
	} else if (op == WA_SYS_PIDFD_SEND_SIGNAL) {
		target = wa_pidfd_pid(p->args[0]);
	}
	if (sig == 0)
		return;
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	if (target > 0 && wa_same_tree(sender, NULL, target))
		return;
	wa_kill_emit(ret, sig, target, tid, SI_USER, op, WA_KILL_SYSCALL);
}

/* ---- link, symlink, chmod, memfd, module, bpf, mount, namespaces ---- */

static __always_inline __u16 wa_sysop_type(__u32 op)
{
	switch (op) {
	case WA_SYS_LINK: case WA_SYS_LINKAT: return WA_EV_LINK;
	case WA_SYS_SYMLINK: case WA_SYS_SYMLINKAT: return WA_EV_SYMLINK;
	case WA_SYS_CHMOD: case WA_SYS_FCHMOD: case WA_SYS_FCHMODAT: case WA_SYS_FCHMODAT2: return WA_EV_CHMOD;
	case WA_SYS_MEMFD_CREATE: return WA_EV_MEMFD;
	case WA_SYS_INIT_MODULE: case WA_SYS_FINIT_MODULE: return WA_EV_MODULE;
	case WA_SYS_BPF: return WA_EV_BPF;
	case WA_SYS_MOUNT: case WA_SYS_UMOUNT2: case WA_SYS_MOVE_MOUNT: return WA_EV_MOUNT;
	case WA_SYS_UNSHARE: case WA_SYS_SETNS: return WA_EV_NAMESPACE;
	}
	return 0;
}

/* A path argument, anchored at dirfd; user memory, so the record is flagged. */
static __always_inline __u32 wa_sysop_upath(struct wa_scratch *s, int dirfd, __u64 upath, char *buf, __u16 *flags)
{
	if (!upath)
		return 0;
	*flags |= WA_F_USER_MEMORY;
	return wa_user_path_write(s, dirfd, (const char *)upath, buf, flags) & (WA_PATH_MAX - 1);
}

/* A string argument taken as given (symlink target, fs type, memfd name). */
static __always_inline __u32 wa_sysop_ustr(__u64 ustr, char *buf, __u32 max, __u16 *flags)
{
	if (!ustr)
		return 0;
	*flags |= WA_F_USER_MEMORY;
	long r = bpf_probe_read_user_str(buf, max, (const char *)ustr);
	if (r <= 0) {
		*flags |= WA_F_READ_FAULT;
		return 0;
	}
	return (r - 1) & (WA_PATH_MAX - 1);
}

/* The path of an fd's file, from the kernel's struct file. */
static __always_inline __u32 wa_sysop_fdpath(struct wa_scratch *s, int fd, char *buf, __u16 *flags)
{
	struct file *f = wa_fd_file(fd);
	if (!f)
		return 0;
	struct path fp = {};
	BPF_CORE_READ_INTO(&fp, f, f_path);
	return wa_path_write(s, &fp, buf, flags) & (WA_PATH_MAX - 1);
}

static __always_inline int wa_sysop_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_SYSOP);
	if (!p)
		return 0;
	__u32 op = p->args[5];
	__u16 type = wa_sysop_type(op);
	if (op >= WA_SYS_KILL) {
		wa_kill_exit(p, ret, op);
		wa_pending_drop();
		return 0;
	}
	struct wa_scratch *s = wa_scratch();
	if (!type || !s) {
		wa_pending_drop();
		return 0;
	}
	struct wa_sysop *r = (struct wa_sysop *)s->rec;
	char *buf = (char *)(r + 1);
	__u16 flags = 0;
	__u32 l1 = 0, l2 = 0;
	wa_fill_hdr(&r->hdr, type, 0);
	r->args[0] = r->args[1] = r->args[2] = r->args[3] = 0;
	switch (op) {
	case WA_SYS_LINK: /* (old, new) */
		l1 = wa_sysop_upath(s, AT_FDCWD, p->args[0], buf, &flags);
		l2 = wa_sysop_upath(s, AT_FDCWD, p->args[1], buf + l1, &flags);
		break;
	case WA_SYS_LINKAT: /* (olddfd, old, newdfd, new, flags) */
		l1 = wa_sysop_upath(s, p->args[0], p->args[1], buf, &flags);
		l2 = wa_sysop_upath(s, p->args[2], p->args[3], buf + l1, &flags);
		r->args[0] = p->args[4];
		break;
	case WA_SYS_SYMLINK: /* (target, linkpath): the target is text, never resolved */
		l1 = wa_sysop_ustr(p->args[0], buf, WA_PATH_MAX, &flags);
		l2 = wa_sysop_upath(s, AT_FDCWD, p->args[1], buf + l1, &flags);
		break;
	case WA_SYS_SYMLINKAT: /* (target, newdfd, linkpath) */
		l1 = wa_sysop_ustr(p->args[0], buf, WA_PATH_MAX, &flags);
		l2 = wa_sysop_upath(s, p->args[1], p->args[2], buf + l1, &flags);
		break;
	case WA_SYS_CHMOD: /* (path, mode) */
		l1 = wa_sysop_upath(s, AT_FDCWD, p->args[0], buf, &flags);
		r->args[0] = p->args[1];
		break;
	case WA_SYS_FCHMODAT: /* (dfd, path, mode) */
	case WA_SYS_FCHMODAT2: /* (dfd, path, mode, flags) */
		l1 = wa_sysop_upath(s, p->args[0], p->args[1], buf, &flags);
		r->args[0] = p->args[2];
		r->args[3] = op == WA_SYS_FCHMODAT2 ? p->args[3] : 0;
		break;
	case WA_SYS_MEMFD_CREATE: /* (name, flags) -> fd */
		l1 = wa_sysop_ustr(p->args[0], buf, WA_NAME_MAX, &flags);
		r->args[0] = p->args[1];
		break;
	case WA_SYS_INIT_MODULE: /* (image, len, params) */
		r->args[0] = p->args[1];
		l2 = wa_sysop_ustr(p->args[2], buf, WA_NAME_MAX, &flags);
		break;
	case WA_SYS_FINIT_MODULE: /* (fd, params, flags): the module file from the fd */
		l1 = wa_sysop_fdpath(s, p->args[0], buf, &flags);
		l2 = wa_sysop_ustr(p->args[1], buf + l1, WA_NAME_MAX, &flags);
		r->args[0] = p->args[2];
		r->args[2] = p->args[0];
		break;
	case WA_SYS_BPF: { /* (cmd, attr, size): prog_type is attr's first word for PROG_LOAD */
		r->args[0] = p->args[0];
		__u32 first = 0;
		if (p->args[0] == 5 /* BPF_PROG_LOAD */ || p->args[0] == 0 /* BPF_MAP_CREATE */) {
			flags |= WA_F_USER_MEMORY;
			if (bpf_probe_read_user(&first, sizeof(first), (void *)p->args[1]))
				flags |= WA_F_READ_FAULT;
		}
		r->args[1] = first;
		break;
	}
	case WA_SYS_MOUNT: /* (source, target, fstype, flags, data) */
		l1 = wa_sysop_ustr(p->args[0], buf, WA_NAME_MAX, &flags);
		l2 = wa_sysop_upath(s, AT_FDCWD, p->args[1], buf + l1, &flags);
		r->args[0] = p->args[3];
		break;
	case WA_SYS_UMOUNT2: /* (target, flags) */
		l2 = wa_sysop_upath(s, AT_FDCWD, p->args[0], buf, &flags);
		r->args[0] = p->args[1];
		break;
	case WA_SYS_MOVE_MOUNT: /* (from_dfd, from_path, to_dfd, to_path, flags) */
		l1 = wa_sysop_upath(s, p->args[0], p->args[1], buf, &flags);
		l2 = wa_sysop_upath(s, p->args[2], p->args[3], buf + l1, &flags);
		r->args[0] = p->args[4];
		break;
	case WA_SYS_UNSHARE: /* (flags) */
		r->args[0] = p->args[0];
		break;
	case WA_SYS_SETNS: { /* (fd, nstype): the namespace's inode number from the fd (its
			      * nsfs name is made up on demand; a pidfd shows its pidfs inode) */
		struct file *f = wa_fd_file(p->args[0]);
		r->args[0] = p->args[1];
		r->args[1] = f ? BPF_CORE_READ(f, f_inode, i_ino) : 0;
		r->args[2] = p->args[0];
		break;
	}
	}
	l1 &= (WA_PATH_MAX - 1);
	l2 &= (WA_PATH_MAX - 1);
	r->ret = ret;
	r->syscall = op;
	r->path_len = l1;
	r->path2_len = l2;
	r->pad = 0;
	r->pad2 = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + l1 + l2;
	wa_pending_drop();
	wa_output(r, sizeof(*r) + l1 + l2, type);
	return 0;
}

/* The sys_exit dispatcher: the same gate first, then the same dispatch. */
SEC("tp_btf/sys_exit")
int BPF_PROG(wa_sys_exit, struct pt_regs *regs, long ret)
{
	if (!wa_current_traced())
		return 0;
	long nr = regs->orig_ax;
	if (wa_tail_hot_exit(ctx, nr))
		return 0;
	bpf_tail_call(ctx, &wa_sys_exit_tab, (__u32)nr);
	if (!wa_sysop_of(nr))
		return 0;
	return wa_sysop_exit(ret);
}

#endif
