/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* opens for write/create/truncate, sensitive reads, unlink, rename. */
#ifndef WA_FILE_BPF_H
#define WA_FILE_BPF_H

#include "path.bpf.h"
#include "budget.bpf.h"
#include "sensitive.bpf.h"

#define WA_K_OPEN 10    /* args: dirfd, path, flags, mode */
#define WA_K_UNLINK 11  /* args: dirfd, path */
#define WA_K_RENAME 12  /* args: olddirfd, old, newdirfd, new, flags */

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define WA_WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)
#define O_EXCL 0200
#define O_NOCTTY 0400
#define FMODE_WRITE 0x2
/* open flags the kernel clears from f_flags once the file is open */
#define WA_OPEN_ONLY_FLAGS (O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC)
#define WA_OPEN_HOW_USER 1 /* pending.args[4]: flags/mode came from a user struct open_how */

/* The open family, normalised to (dirfd, path, flags, mode). open, openat
 * and creat have no enter handler: their exits read the arguments from the
 * registers (syscall.bpf.h), so the commonest syscall a traced process makes
 * costs no pending slot, at enter or at exit. openat2's flags are in a user
 * struct open_how, read at enter before the kernel's own copy. */
struct wa_open_args {
	__u64 dirfd;
	__u64 path;
	__u32 flags;
	__u32 mode;
	bool how_user; /* flags/mode came from a user struct open_how */
};

WA_SYSCALL_ENTER(openat2)
{
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	struct wa_pending *p = wa_pending_new(WA_K_OPEN);
	if (!p)
		return 0;
	p->args[0] = ctx->args[0];
	p->args[1] = ctx->args[1];
	p->args[2] = how.flags;
	p->args[3] = how.mode;
	/* open_how is user memory read before the kernel's copy: mark it so the
	 * exit trusts the opened file over it */
	p->args[4] = WA_OPEN_HOW_USER;
	return 0;
}

/* p: openat2's pending slot, to empty; NULL for the others. cast: walk by
 * direct loads (wa_is_sensitive_cast, 6.2+) rather than probe reads. */
static __always_inline int wa_open_exit(long ret, const struct wa_open_args *a, struct wa_pending *p, bool cast)
{
	__u32 oflags = a->flags;
	__u32 mode = a->mode;
	__u16 type = 0;
	__u16 flags = 0;
	struct file *f = NULL;
	bool how_user = a->how_user;

	if (ret >= 0)
		f = cast ? wa_fd_file_cast(ret) : wa_fd_file(ret);
	/* Decide first, from as little of the file as possible: most opens are
	 * read-only and record nothing. The create/truncate bits are gone from
	 * f_flags by now and come from the arguments. */
	if (f && how_user) {
		/* openat2: its flags were read from user memory, so the file decides */
		if ((BPF_CORE_READ(f, f_mode) & FMODE_WRITE) || (oflags & (O_CREAT | O_TRUNC)))
			type = WA_EV_FILE_WRITE;
	} else if (oflags & WA_WRITE_FLAGS) {
		/* open, openat, creat, or a failed openat2: the flags are the
		 * registers the kernel used (syscall.bpf.h), and FMODE_WRITE comes
		 * from nothing else (O_WRONLY, O_RDWR), so an opened file need not
		 * be read to know a write */
		type = WA_EV_FILE_WRITE;
		if (how_user)
			flags |= WA_F_USER_MEMORY;
	}
	if (!type && f && wa_sensitive_count &&
	    (cast ? wa_is_sensitive_cast(f) : wa_is_sensitive(BPF_CORE_READ(f, f_path.dentry))))
		type = WA_EV_FILE_READ_SENSITIVE;
	else if (!type && !f && (ret == -13 /* EACCES */ || ret == -1 /* EPERM */) && wa_sensitive_count)
		/* A denied read has no file to identify: the path as asked for (user
		 * memory) goes up and user space keeps it only under a sensitive path.
		 * An attempt on the witness's own state is evidence, not noise. */
		type = WA_EV_FILE_READ_SENSITIVE;
	if (!type) {
		if (p)
			p->kind = 0; /* wa_pending_drop, without looking the slot up again */
		return 0;
	}
	if (f) {
		/* what the kernel opened, not what the arguments said: access mode and
		 * status flags from the file, mode from its inode */
		oflags = BPF_CORE_READ(f, f_flags) | (oflags & WA_OPEN_ONLY_FLAGS);
		mode = BPF_CORE_READ(f, f_inode, i_mode) & 07777;
		if (how_user && (oflags & WA_OPEN_ONLY_FLAGS))
			flags |= WA_F_USER_MEMORY;
	}

	if (p)
		p->kind = 0; /* all it held is in *a */
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return 0;
	struct wa_file *r = (struct wa_file *)s->rec;
	char *buf = (char *)(r + 1);
	__u32 len;
	wa_fill_hdr(&r->hdr, type, 0);
	if (f) {
		/* the file actually opened: symlinks and ../ already resolved */
		if (cast) {
			len = wa_file_path_write_cast(s, f, buf, &flags);
		} else {
			struct path fp = {};
			BPF_CORE_READ_INTO(&fp, f, f_path);
			len = wa_path_write(s, &fp, buf, &flags);
		}
	} else {
		/* a failed open: the path as asked for, anchored at dirfd */
		flags |= WA_F_USER_MEMORY;
		len = wa_user_path_write(s, a->dirfd, (const char *)a->path, buf, &flags);
	}
	len &= (WA_PATH_MAX - 1);
	r->ret = ret;
	r->open_flags = oflags;
	r->mode = mode;
	r->path_len = len;
	r->pad = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + len;
	/* write opens are high-volume: repeats of one path past the budget are counted;
	 * sensitive reads never are */
	if (type == WA_EV_FILE_WRITE && !wa_admit(type, buf, len))
		return 0;
	wa_output(r, sizeof(*r) + len, type);
	return 0;
}

/* The open exits that may walk come twice: by direct loads (cast, 6.2+)
 * and by probe reads (..._nocast, before 6.2); the loader loads one of each
 * pair (sensitive.bpf.h, native/loader_hooks.c). creat always writes, so it
 * never walks. */
WA_SYSCALL_EXIT(openat)
{
	struct wa_open_args a = { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], false };
	return wa_open_exit(ctx->ret, &a, NULL, true);
}

WA_SYSCALL_EXIT(openat__nocast)
{
	struct wa_open_args a = { ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], false };
	return wa_open_exit(ctx->ret, &a, NULL, false);
}

WA_SYSCALL_EXIT(open)
{
	struct wa_open_args a = { (__u64)(long)AT_FDCWD, ctx->args[0], ctx->args[1], ctx->args[2], false };
	return wa_open_exit(ctx->ret, &a, NULL, true);
}

WA_SYSCALL_EXIT(open__nocast)
{
	struct wa_open_args a = { (__u64)(long)AT_FDCWD, ctx->args[0], ctx->args[1], ctx->args[2], false };
	return wa_open_exit(ctx->ret, &a, NULL, false);
}

WA_SYSCALL_EXIT(creat)
{
	struct wa_open_args a = { (__u64)(long)AT_FDCWD, ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, ctx->args[1], false };
	return wa_open_exit(ctx->ret, &a, NULL, false);
}

static __always_inline int wa_openat2_exit(struct wa_sys_ctx *ctx, bool cast)
{
	struct wa_pending *p = wa_pending_get(WA_K_OPEN);
	if (!p)
		return 0;
	struct wa_open_args a = { p->args[0], p->args[1], p->args[2], p->args[3], p->args[4] == WA_OPEN_HOW_USER };
	return wa_open_exit(ctx->ret, &a, p, cast);
}

WA_SYSCALL_EXIT(openat2) { return wa_openat2_exit(ctx, true); }
WA_SYSCALL_EXIT(openat2__nocast) { return wa_openat2_exit(ctx, false); }

/* unlink and rename: built at exit from the names as given, anchored at
 * their dirfd (the directories still exist; the names may not). */
static __always_inline void wa_save_path_args(int dirfd, __u64 path, int dirfd2, __u64 path2, __u64 flags, __u32 kind)
{
	struct wa_pending *p = wa_pending_new(kind);
	if (!p)
		return;
	p->args[0] = dirfd;
	p->args[1] = path;
	p->args[2] = dirfd2;
	p->args[3] = path2;
	p->args[4] = flags;
}

WA_SYSCALL_ENTER(unlinkat)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], 0, 0, ctx->args[2], WA_K_UNLINK);
	return 0;
}

WA_SYSCALL_ENTER(unlink)
{
	wa_save_path_args(AT_FDCWD, ctx->args[0], 0, 0, 0, WA_K_UNLINK);
	return 0;
}

static __always_inline int wa_unlink_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_UNLINK);
	struct wa_scratch *s = wa_scratch();
	if (!p || !s)
		return 0;
	struct wa_file *r = (struct wa_file *)s->rec;
	__u16 flags = WA_F_USER_MEMORY; /* the name, read at exit: nothing else holds it */
	wa_fill_hdr(&r->hdr, WA_EV_FILE_UNLINK, 0);
	__u32 len = wa_user_path_write(s, p->args[0], (const char *)p->args[1], (char *)(r + 1), &flags);
	len &= (WA_PATH_MAX - 1);
	r->ret = ret;
	r->open_flags = p->args[4]; /* unlinkat flags (AT_REMOVEDIR) */
	r->mode = 0;
	r->path_len = len;
	r->pad = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + len;
	wa_pending_drop();
	wa_output(r, sizeof(*r) + len, WA_EV_FILE_UNLINK);
	return 0;
}

WA_SYSCALL_EXIT(unlinkat) { return wa_unlink_exit(ctx->ret); }
WA_SYSCALL_EXIT(unlink) { return wa_unlink_exit(ctx->ret); }

WA_SYSCALL_ENTER(renameat2)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4], WA_K_RENAME);
	return 0;
}

WA_SYSCALL_ENTER(renameat)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], 0, WA_K_RENAME);
	return 0;
}

WA_SYSCALL_ENTER(rename)
{
	wa_save_path_args(AT_FDCWD, ctx->args[0], AT_FDCWD, ctx->args[1], 0, WA_K_RENAME);
	return 0;
}

static __always_inline int wa_rename_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_RENAME);
	struct wa_scratch *s = wa_scratch();
	if (!p || !s)
		return 0;
	struct wa_rename *r = (struct wa_rename *)s->rec;
	char *buf = (char *)(r + 1);
	__u16 flags = WA_F_USER_MEMORY; /* both names, read at exit */
	wa_fill_hdr(&r->hdr, WA_EV_FILE_RENAME, 0);
	__u32 olen = wa_user_path_write(s, p->args[0], (const char *)p->args[1], buf, &flags);
	olen &= (WA_PATH_MAX - 1);
	__u32 nlen = wa_user_path_write(s, p->args[2], (const char *)p->args[3], buf + olen, &flags);
	nlen &= (WA_PATH_MAX - 1);
	r->ret = ret;
	r->rename_flags = p->args[4];
	r->old_len = olen;
	r->new_len = nlen;
	r->pad = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + olen + nlen;
	wa_pending_drop();
	wa_output(r, sizeof(*r) + olen + nlen, WA_EV_FILE_RENAME);
	return 0;
}

WA_SYSCALL_EXIT(renameat2) { return wa_rename_exit(ctx->ret); }
WA_SYSCALL_EXIT(renameat) { return wa_rename_exit(ctx->ret); }
WA_SYSCALL_EXIT(rename) { return wa_rename_exit(ctx->ret); }

#endif
