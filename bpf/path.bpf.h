/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Absolute paths without bpf_d_path (which tracepoints may not call): walk
 * dentry parents up to the mount root, hop to the parent mount, repeat; then
 * write the components root-first. Bounded by WA_PATH_DEPTH components,
 * WA_PATH_MAX bytes, and WA_PATH_DEPTH + WA_MOUNT_HOPS walk steps (each mount
 * crossed costs one); hitting any bound sets WA_F_TRUNC_PATH, so a walk that
 * ends before the root never passes for a whole path.
 */
#ifndef WA_PATH_BPF_H
#define WA_PATH_BPF_H

#include "common.bpf.h"

#define WA_MOUNT_HOPS 16

/* bpf_loop callbacks keep the walk within the verifier's 1M-instruction budget
 * where plain loops blow it; the counters (n, pos) live in the scratch map so
 * that kernels verifying callbacks as loops see one state, not one per depth. */
struct wa_walk {
	struct wa_scratch *s;
	struct dentry *d;
	struct mount *mnt;
	char *buf;
	__u16 flags;
	__u16 done;   /* the walk reached the global root (or a bound it flagged) */
};

static long wa_walk_up(__u32 i, void *arg)
{
	struct wa_walk *w = arg;
	/* locals, not w->x: CO-RE must not relocate our own struct's fields */
	struct mount *mnt = w->mnt;
	struct dentry *d = w->d;
	struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt || !mp) {
			w->done = 1;
			return 1; /* the global root */
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mp;
		return 0;
	}
	__u32 n = w->s->walk_n;
	if (n >= WA_PATH_DEPTH) {
		w->flags |= WA_F_TRUNC_PATH;
		w->done = 1;
		return 1;
	}
	w->s->dstack[n] = w->d;
	w->s->walk_n = n + 1;
	w->d = parent;
	return 0;
}

static long wa_walk_down(__u32 j, void *arg)
{
	struct wa_walk *w = arg;
	__u32 n = w->s->walk_n;
	if (j >= n)
		return 1;
	__u32 k = n - 1 - j;
	if (k >= WA_PATH_DEPTH)
		return 1;
	struct dentry *c = w->s->dstack[k];
	const unsigned char *name = BPF_CORE_READ(c, d_name.name);
	__u32 pos = w->s->walk_pos;
	if (pos > WA_PATH_MAX - WA_NAME_MAX - 1) {
		w->flags |= WA_F_TRUNC_PATH;
		return 1;
	}
	char *buf = w->buf;
	buf[pos & (WA_PATH_MAX - 1)] = '/';
	pos++;
	long r = bpf_probe_read_kernel_str(&buf[pos & (WA_PATH_MAX - 1)], WA_NAME_MAX, name);
	if (r > 1)
		pos += r - 1;
	w->s->walk_pos = pos;
	return 0;
}

/* Writes the absolute path of `path` at buf[0..]; buf must hold
 * WA_PATH_MAX + WA_NAME_MAX bytes. Returns its length (no NUL). */
static __always_inline __u32 wa_path_write(struct wa_scratch *s, struct path *path, char *buf, __u16 *flags)
{
	struct wa_walk w = {};
	struct vfsmount *vmnt = BPF_CORE_READ(path, mnt);
	w.s = s;
	w.d = BPF_CORE_READ(path, dentry);
	w.mnt = container_of(vmnt, struct mount, mnt);
	w.buf = buf;
	s->walk_n = 0;
	s->walk_pos = 0;
	bpf_loop(WA_PATH_DEPTH + WA_MOUNT_HOPS, wa_walk_up, &w, 0);
	/* the loop bound ran out before the root (many mounts stacked or nested):
	 * the top of the path is missing, so say so */
	if (!w.done)
		w.flags |= WA_F_TRUNC_PATH;
	if (s->walk_n == 0) {
		buf[0] = '/';
		*flags |= w.flags;
		return 1;
	}
	bpf_loop(WA_PATH_DEPTH, wa_walk_down, &w, 0);
	*flags |= w.flags;
	__u32 len = s->walk_pos;
	return len < WA_PATH_MAX ? len : WA_PATH_MAX - 1;
}

/* Absolute form of a user-supplied path relative to dirfd (AT_FDCWD = cwd).
 * Absolute inputs are copied as given. Returns the length (no NUL). */
static __always_inline __u32 wa_user_path_write(struct wa_scratch *s, int dirfd, const char *upath, char *buf,
						__u16 *flags)
{
	char first = 0;
	__u32 pos = 0;

	if (bpf_probe_read_user(&first, 1, upath)) {
		*flags |= WA_F_READ_FAULT;
		return 0;
	}
	if (first != '/') {
		struct path base = {};
		if (dirfd == AT_FDCWD) {
			struct task_struct *t = (struct task_struct *)bpf_get_current_task();
			BPF_CORE_READ_INTO(&base, t, fs, pwd);
		} else {
			struct file *f = wa_fd_file(dirfd);
			if (f)
				BPF_CORE_READ_INTO(&base, f, f_path);
		}
		if (base.dentry) {
			pos = wa_path_write(s, &base, buf, flags);
			if (pos > WA_PATH_MAX - WA_NAME_MAX - 1)
				pos = WA_PATH_MAX - WA_NAME_MAX - 1;
			if (pos != 1) /* "/" needs no separator */
				buf[pos++ & (WA_PATH_MAX - 1)] = '/';
			else
				pos = 1;
		} else {
			*flags |= WA_F_RELATIVE;
		}
	}
	pos &= (WA_PATH_MAX - 1);
	long r = bpf_probe_read_user_str(&buf[pos], WA_PATH_MAX - pos, upath);
	if (r <= 0) {
		*flags |= WA_F_READ_FAULT;
		return pos;
	}
	if (pos + r - 1 >= WA_PATH_MAX - 1)
		*flags |= WA_F_TRUNC_PATH;
	return pos + r - 1;
}

#endif
