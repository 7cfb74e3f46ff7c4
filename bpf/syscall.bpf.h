/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Syscall hooks behind two dispatchers. Every syscall handler is a tp_btf
 * program on sys_enter or sys_exit that is loaded but never attached itself:
 * the loader puts it in a program array under its syscall number, and the
 * dispatchers (boundary.bpf.h) tail-call into it. Two raw-tracepoint links
 * instead of ~56 syscall tracepoints, because detaching a syscall tracepoint
 * waits out an RCU-tasks grace period under a kernel-wide mutex (~30 ms each,
 * ~1.9 s for all of them on the reference host), while detaching a raw
 * tracepoint link takes ~1 ms: only then can the loader attach the syscall
 * hooks while a traced tree exists and detach them when none is left
 * (native/loader_hooks.c).
 *
 * A handler sees the syscall's arguments as the registers the kernel used
 * (x86_64 order di, si, dx, r10, r8, r9) in a wa_sys_ctx, the same shape the
 * syscall tracepoints gave (ctx->args[], ctx->ret), so the handlers' bodies
 * did not change.
 *
 * Handlers run only behind the dispatchers' gate (wa_current_traced: the
 * caller is traced and the syscall native) and do not test it again; a
 * process nobody traces never reaches the tail call.
 */
#ifndef WA_SYSCALL_BPF_H
#define WA_SYSCALL_BPF_H

#ifndef __TARGET_ARCH_x86
#error "syscall.bpf.h: argument registers and syscall numbers are x86_64's; add this architecture's"
#endif

#define WA_SYS_NR_MAX 512 /* program array slots: x86_64 syscall numbers are below this */

struct wa_sys_ctx {
	__u64 args[6];
	long ret;
};

/* syscall number -> handler (filled by the loader from its name table) */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, WA_SYS_NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} wa_sys_enter_tab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, WA_SYS_NR_MAX);
	__type(key, __u32);
	__type(value, __u32);
} wa_sys_exit_tab SEC(".maps");

/* The hottest syscalls go by a constant slot: the JIT makes such a tail call
 * a direct jump, patched in when the loader fills the slot (while it is
 * empty, a jump over it), where a tail call by a variable slot is an
 * indirect jump, and an indirect jump costs a retpoline on a host mitigated
 * against Spectre v2 (this one). bpf_tail_call_static keeps clang from
 * merging the calls into one with a variable slot. A listed syscall whose
 * slot is empty (open, openat and fchmod have no enter handler, close no exit one)
 * is done here: none of them is one of the boundary's (boundary.bpf.h), so
 * the dispatcher returns (true) without the variable tail call or that
 * switch. Every other syscall falls through to the variable tail call. */
#define WA_TAIL_HOT(ctx, tab, nr) \
	case nr: bpf_tail_call_static(ctx, tab, nr); return true

static __always_inline bool wa_tail_hot_enter(void *ctx, long id)
{
	switch (id) {
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 0);   /* read */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 1);   /* write */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 2);   /* open (no enter handler) */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 3);   /* close */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 20);  /* writev */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 91);  /* fchmod (no enter handler) */
	WA_TAIL_HOT(ctx, &wa_sys_enter_tab, 257); /* openat (no enter handler) */
	}
	return false;
}

static __always_inline bool wa_tail_hot_exit(void *ctx, long nr)
{
	switch (nr) {
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 0);   /* read */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 1);   /* write */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 2);   /* open */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 3);   /* close (no exit handler) */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 20);  /* writev */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 91);  /* fchmod */
	WA_TAIL_HOT(ctx, &wa_sys_exit_tab, 257); /* openat */
	}
	return false;
}

#define TS_COMPAT 0x0002 /* x86 thread_info.status: in a 32-bit syscall */

/* A 32-bit (ia32) syscall uses another number table and other registers; the
 * syscall tracepoints ignored those (the kernel reports no syscall number for
 * them), and so do the handlers rather than misread them: wa_current_traced()
 * (common.bpf.h), the dispatchers' gate in front of every handler, is false
 * for them. */
static __always_inline bool wa_sys_compat(struct task_struct *t)
{
	return t->thread_info.status & TS_COMPAT;
}

/* The x86_64 syscall argument registers, in order (see WA_SYSCALL_EXIT for
 * why they are still the call's at sys_exit). Inlined: loads a body does not
 * use are compiled away. */
static __always_inline void wa_sys_ctx_fill(struct wa_sys_ctx *c, struct pt_regs *regs, long ret)
{
	c->args[0] = regs->di;
	c->args[1] = regs->si;
	c->args[2] = regs->dx;
	c->args[3] = regs->r10;
	c->args[4] = regs->r8;
	c->args[5] = regs->r9;
	c->ret = ret;
}

/* WA_SYSCALL_ENTER(openat) { body using ctx->args[] } defines wa_enter_openat */
#define WA_SYSCALL_ENTER(name)                                                    \
	static __always_inline int wa_enter_##name##_body(struct wa_sys_ctx *ctx);   \
	SEC("tp_btf/sys_enter")                                                      \
	int BPF_PROG(wa_enter_##name, struct pt_regs *regs, long id)                 \
	{                                                                            \
		struct wa_sys_ctx c;                                                 \
		wa_sys_ctx_fill(&c, regs, 0);                                        \
		return wa_enter_##name##_body(&c);                                   \
	}                                                                            \
	static __always_inline int wa_enter_##name##_body(struct wa_sys_ctx *ctx)

/* WA_SYSCALL_EXIT(openat) { body using ctx->ret, ctx->args[] } defines
 * wa_exit_openat. At sys_exit the argument registers still hold what the
 * syscall was called with: x86_64 syscalls read them from pt_regs and leave
 * them (the return value goes to ax, the number stays in orig_ax), and no
 * tracer can change them between the two tracepoints (ptrace stops come
 * before sys_enter and after sys_exit). So an exit handler may read its
 * arguments here instead of saving them at enter; the loads a body does not
 * use are compiled away. (execve and sigreturn rebuild the registers; they
 * have no exit handler.) */
#define WA_SYSCALL_EXIT(name)                                                     \
	static __always_inline int wa_exit_##name##_body(struct wa_sys_ctx *ctx);    \
	SEC("tp_btf/sys_exit")                                                       \
	int BPF_PROG(wa_exit_##name, struct pt_regs *regs, long ret)                 \
	{                                                                            \
		struct wa_sys_ctx c;                                                 \
		wa_sys_ctx_fill(&c, regs, ret);                                      \
		return wa_exit_##name##_body(&c);                                    \
	}                                                                            \
	static __always_inline int wa_exit_##name##_body(struct wa_sys_ctx *ctx)

#endif
