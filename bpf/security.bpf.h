/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Privilege changes (set*id: ids before and after) and ptrace. */
#ifndef WA_SECURITY_BPF_H
#define WA_SECURITY_BPF_H

#include "common.bpf.h"

#define WA_K_SETID 20  /* pending.old_ids + args[5] = which syscall */
#define WA_K_PTRACE 21

static __always_inline void wa_setid_enter(struct wa_sys_ctx *ctx, __u32 which, int nargs)
{
	struct wa_pending *p = wa_pending_save(ctx, WA_K_SETID, nargs);
	if (!p)
		return;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	const struct cred *c = BPF_CORE_READ(t, cred);
	p->args[5] = which;
	if (which <= WA_SETID_SETRESUID) {
		p->old_ids[0] = BPF_CORE_READ(c, uid.val);
		p->old_ids[1] = BPF_CORE_READ(c, euid.val);
		p->old_ids[2] = BPF_CORE_READ(c, suid.val);
	} else {
		p->old_ids[0] = BPF_CORE_READ(c, gid.val);
		p->old_ids[1] = BPF_CORE_READ(c, egid.val);
		p->old_ids[2] = BPF_CORE_READ(c, sgid.val);
	}
}

/* at exit the task's cred is the committed new one */
static __always_inline int wa_setid_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_SETID);
	if (!p)
		return 0;
	__u32 which = p->args[5];
	__u16 type = which <= WA_SETID_SETRESUID ? WA_EV_SETUID : WA_EV_SETGID;
	struct wa_setid *r = wa_reserve(sizeof(*r), type);
	if (r) {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		const struct cred *c = BPF_CORE_READ(t, cred);
		wa_fill_hdr(&r->hdr, type, sizeof(*r));
		r->ret = ret;
		r->syscall = which;
		r->old_ids[0] = p->old_ids[0];
		r->old_ids[1] = p->old_ids[1];
		r->old_ids[2] = p->old_ids[2];
		if (type == WA_EV_SETUID) {
			r->new_ids[0] = BPF_CORE_READ(c, uid.val);
			r->new_ids[1] = BPF_CORE_READ(c, euid.val);
			r->new_ids[2] = BPF_CORE_READ(c, suid.val);
		} else {
			r->new_ids[0] = BPF_CORE_READ(c, gid.val);
			r->new_ids[1] = BPF_CORE_READ(c, egid.val);
			r->new_ids[2] = BPF_CORE_READ(c, sgid.val);
		}
		wa_submit(r, type);
	}
	wa_pending_drop();
	return 0;
}

#define WA_SETID_PROGS(name, which, n)                                                 \
	WA_SYSCALL_ENTER(name)                                                        \
	{                                                                             \
		wa_setid_enter(ctx, which, n);                                          \
		return 0;                                                             \
	}                                                                             \
	WA_SYSCALL_EXIT(name) { return wa_setid_exit(ctx->ret); }

WA_SETID_PROGS(setuid, WA_SETID_SETUID, 1)
WA_SETID_PROGS(setreuid, WA_SETID_SETREUID, 2)
WA_SETID_PROGS(setresuid, WA_SETID_SETRESUID, 3)
WA_SETID_PROGS(setgid, WA_SETID_SETGID, 1)
WA_SETID_PROGS(setregid, WA_SETID_SETREGID, 2)
WA_SETID_PROGS(setresgid, WA_SETID_SETRESGID, 3)

WA_SAVE_ENTER(ptrace, WA_K_PTRACE, 4)

WA_SYSCALL_EXIT(ptrace)
{
	struct wa_pending *p = wa_pending_get(WA_K_PTRACE);
	if (!p)
		return 0;
	struct wa_ptrace *r = wa_reserve(sizeof(*r), WA_EV_PTRACE);
	if (r) {
		wa_fill_hdr(&r->hdr, WA_EV_PTRACE, sizeof(*r));
		r->ret = ctx->ret;
		r->request = p->args[0];
		r->target_pid = p->args[1];
		wa_submit(r, WA_EV_PTRACE);
	}
	wa_pending_drop();
	return 0;
}

#endif
