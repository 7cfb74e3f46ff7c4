/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * fchmod: the busiest of the boundary's syscalls (a tar extraction makes one
 * per file it writes, npm and git one per file they unpack), so it has exit
 * handlers of its own instead of the boundary's generic path (boundary.bpf.h:
 * the arguments saved at sys_enter in the pending slot, the file's path
 * walked by probe reads at sys_exit). Its arguments are the registers at
 * sys_exit (syscall.bpf.h), so nothing is saved at enter; and, like the open
 * exits, it comes twice: the file's path by direct loads (6.2+) and by probe
 * reads (..._nocast, before 6.2); the loader loads one (native/loader_hooks.c).
 * Host-wide, one fchmod of a file 9 levels down cost 2.75 us over the hooks'
 * floor by the generic path (2026-12-02). The record is the same as before:
 * path and the inode's mode after from the kernel's struct file, args[0] the
 * mode asked, args[2] the fd.
 */
#ifndef WA_CHMOD_BPF_H
#define WA_CHMOD_BPF_H

#include "common.bpf.h"
#include "path.bpf.h"
#include "sensitive.bpf.h"
#include "syscall.bpf.h"

static __always_inline int wa_fchmod_exit(struct wa_sys_ctx *ctx, bool cast)
{
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return 0;
	int fd = ctx->args[0];
	struct file *f = cast ? wa_fd_file_cast(fd) : wa_fd_file(fd);
	struct wa_sysop *r = (struct wa_sysop *)s->rec;
	char *buf = (char *)(r + 1);
	__u16 flags = 0;
	__u32 len = 0;
	wa_fill_hdr(&r->hdr, WA_EV_CHMOD, 0);
	if (f) {
		if (cast) {
			len = wa_file_path_write_cast(s, f, buf, &flags);
		} else {
			struct path fp = {};
			BPF_CORE_READ_INTO(&fp, f, f_path);
			len = wa_path_write(s, &fp, buf, &flags);
		}
	}
	len &= (WA_PATH_MAX - 1);
	r->args[0] = ctx->args[1];
	r->args[1] = f ? BPF_CORE_READ(f, f_inode, i_mode) : 0;
	r->args[2] = fd;
	r->args[3] = 0;
	r->ret = ctx->ret;
	r->syscall = WA_SYS_FCHMOD;
	r->path_len = len;
	r->path2_len = 0;
	r->pad = 0;
	r->pad2 = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + len;
	wa_output(r, sizeof(*r) + len, WA_EV_CHMOD);
	return 0;
}

WA_SYSCALL_EXIT(fchmod) { return wa_fchmod_exit(ctx, true); }
WA_SYSCALL_EXIT(fchmod__nocast) { return wa_fchmod_exit(ctx, false); }

#endif
