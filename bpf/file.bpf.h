/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* opens for write/create/truncate, sensitive reads, unlink, rename. */
#ifndef WA_FILE_BPF_H
#define WA_FILE_BPF_H

#include "path.bpf.h"
#include "budget.bpf.h"

#define WA_K_OPEN 10    /* args: dirfd, path, flags, mode */
#define WA_K_UNLINK 11  /* args: dirfd, path */
#define WA_K_RENAME 12  /* args: olddirfd, old, newdirfd, new, flags */

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define WA_WRITE_FLAGS (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)
#define WA_SENSITIVE_ANCESTORS 16

/* Normalise the open family to (dirfd, path, flags, mode) at entry. */
static __always_inline void wa_open_enter(int dirfd, __u64 path, __u64 flags, __u64 mode)
{
	if (!wa_current_traced())
		return;
	struct wa_pending *p = wa_pending_new(WA_K_OPEN);
	if (!p)
		return;
	p->args[0] = dirfd;
	p->args[1] = path;
	p->args[2] = flags;
	p->args[3] = mode;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int wa_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	wa_open_enter(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int wa_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	wa_open_enter(AT_FDCWD, ctx->args[0], ctx->args[1], ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_creat")
int wa_enter_creat(struct trace_event_raw_sys_enter *ctx)
{
	wa_open_enter(AT_FDCWD, ctx->args[0], O_CREAT | O_WRONLY | O_TRUNC, ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int wa_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	if (!wa_current_traced())
		return 0;
	struct open_how how = {};
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	wa_open_enter(ctx->args[0], ctx->args[1], how.flags, how.mode);
	return 0;
}

/* Is the opened file, or one of its ancestors, in the sensitive set? */
static __always_inline bool wa_is_sensitive(struct file *f)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
#pragma clang loop unroll(disable)
	for (int i = 0; i < WA_SENSITIVE_ANCESTORS; i++) {
		struct wa_inode_key k = {};
		k.ino = BPF_CORE_READ(d, d_inode, i_ino);
		k.dev = BPF_CORE_READ(d, d_sb, s_dev);
		if (bpf_map_lookup_elem(&wa_sensitive, &k))
			return true;
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (parent == d)
			break;
		d = parent;
	}
	return false;
}

static __always_inline int wa_open_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_OPEN);
	if (!p)
		return 0;
	__u32 oflags = p->args[2];
	__u32 mode = p->args[3];
	__u16 type = 0;
	struct file *f = NULL;

	if (ret >= 0)
		f = wa_fd_file(ret);
	if (oflags & WA_WRITE_FLAGS)
		type = WA_EV_FILE_WRITE;
	else if (f && wa_sensitive_count && wa_is_sensitive(f))
		type = WA_EV_FILE_READ_SENSITIVE;
	else if (!f && (ret == -13 /* EACCES */ || ret == -1 /* EPERM */) && wa_sensitive_count)
		/* A denied read has no file to identify: the path as asked for (user
		 * memory) goes up and user space keeps it only under a sensitive path.
		 * An attempt on the witness's own state is evidence, not noise. */
		type = WA_EV_FILE_READ_SENSITIVE;
	if (!type) {
		wa_pending_drop();
		return 0;
	}

	struct wa_scratch *s = wa_scratch();
	if (!s) {
		wa_pending_drop();
		return 0;
	}
	struct wa_file *r = (struct wa_file *)s->rec;
	char *buf = (char *)(r + 1);
	__u16 flags = 0;
	__u32 len;
	wa_fill_hdr(&r->hdr, type, 0);
	if (f) {
		/* the file actually opened: symlinks and ../ already resolved */
		struct path fp = {};
		BPF_CORE_READ_INTO(&fp, f, f_path);
		len = wa_path_write(s, &fp, buf, &flags);
	} else {
		/* a failed open: the path as asked for, anchored at dirfd */
		len = wa_user_path_write(s, p->args[0], (const char *)p->args[1], buf, &flags);
	}
	len &= (WA_PATH_MAX - 1);
	r->ret = ret;
	r->open_flags = oflags;
	r->mode = mode;
	r->path_len = len;
	r->pad = 0;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + len;
	wa_pending_drop();
	/* write opens are high-volume: repeats of one path past the budget are counted;
	 * sensitive reads never are */
	if (type == WA_EV_FILE_WRITE && !wa_admit(type, buf, len))
		return 0;
	wa_output(r, sizeof(*r) + len, type);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int wa_exit_openat(struct trace_event_raw_sys_exit *ctx) { return wa_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_openat2")
int wa_exit_openat2(struct trace_event_raw_sys_exit *ctx) { return wa_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_open")
int wa_exit_open(struct trace_event_raw_sys_exit *ctx) { return wa_open_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_creat")
int wa_exit_creat(struct trace_event_raw_sys_exit *ctx) { return wa_open_exit(ctx->ret); }

/* unlink and rename: built at exit from the names as given, anchored at
 * their dirfd (the directories still exist; the names may not). */
static __always_inline void wa_save_path_args(int dirfd, __u64 path, int dirfd2, __u64 path2, __u64 flags, __u32 kind)
{
	if (!wa_current_traced())
		return;
	struct wa_pending *p = wa_pending_new(kind);
	if (!p)
		return;
	p->args[0] = dirfd;
	p->args[1] = path;
	p->args[2] = dirfd2;
	p->args[3] = path2;
	p->args[4] = flags;
}

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int wa_enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], 0, 0, ctx->args[2], WA_K_UNLINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_unlink")
int wa_enter_unlink(struct trace_event_raw_sys_enter *ctx)
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
	__u16 flags = 0;
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

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int wa_exit_unlinkat(struct trace_event_raw_sys_exit *ctx) { return wa_unlink_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_unlink")
int wa_exit_unlink(struct trace_event_raw_sys_exit *ctx) { return wa_unlink_exit(ctx->ret); }

SEC("tracepoint/syscalls/sys_enter_renameat2")
int wa_enter_renameat2(struct trace_event_raw_sys_enter *ctx)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4], WA_K_RENAME);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_renameat")
int wa_enter_renameat(struct trace_event_raw_sys_enter *ctx)
{
	wa_save_path_args(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], 0, WA_K_RENAME);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_rename")
int wa_enter_rename(struct trace_event_raw_sys_enter *ctx)
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
	__u16 flags = 0;
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

SEC("tracepoint/syscalls/sys_exit_renameat2")
int wa_exit_renameat2(struct trace_event_raw_sys_exit *ctx) { return wa_rename_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_renameat")
int wa_exit_renameat(struct trace_event_raw_sys_exit *ctx) { return wa_rename_exit(ctx->ret); }
SEC("tracepoint/syscalls/sys_exit_rename")
int wa_exit_rename(struct trace_event_raw_sys_exit *ctx) { return wa_rename_exit(ctx->ret); }

#endif
