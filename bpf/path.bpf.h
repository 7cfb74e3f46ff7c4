/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Absolute paths without bpf_d_path (which tracepoints may not call): walk
 * dentry parents up to the mount root, hop to the parent mount, repeat; then
 * write the components root-first. Bounded by WA_PATH_DEPTH components,
 * WA_PATH_MAX bytes, and WA_PATH_DEPTH + WA_MOUNT_HOPS walk steps (each mount
 * crossed costs one); hitting any bound sets WA_F_TRUNC_PATH, so a walk that
 * ends before the root never passes for a whole path.
 *
 * The walk stops at the task's own root (fs->root), as d_path does, so that a
 * chrooted task's resolved paths and its as-given absolute paths share one
 * root; such records carry WA_F_CHROOT. A walk that reaches the namespace's
 * root without meeting the task's root named a file outside the chroot (an fd
 * or cwd kept from before it): WA_F_OUTSIDE_ROOT, and the path is global.
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
	struct dentry *root_d;   /* stop here (with root_mnt): the task's root; NULL = none */
	struct mount *root_mnt;
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
	if (d == w->root_d && mnt == w->root_mnt) {
		w->done = 1;
		return 1; /* the task's root */
	}
	if (d == mnt_root || d == parent) {
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt || !mp) {
			w->done = 1;
			/* the namespace's root, never having met the task's root */
			if (w->root_d)
				w->flags |= WA_F_OUTSIDE_ROOT;
			return 1;
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

#define WA_ROOT_HOPS 4

/* The current task's root when it is not its mount namespace's root (it is
 * chrooted): *root is filled and the result is true. Not a pointer compare with
 * mnt_ns->root: after an initramfs switch_root every task's root is a mount
 * stacked on the namespace's rootfs, so "not chrooted" means the root is
 * reached from the top through mount roots alone, no directory in between.
 * More than WA_ROOT_HOPS stacked mounts counts as chrooted (flagged, not hidden). */
static __always_inline bool wa_task_root(struct path *root)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_INTO(root, t, fs, root);
	if (!root->dentry || !root->mnt)
		return false;
	struct dentry *d = root->dentry;
	struct mount *mnt = container_of(root->mnt, struct mount, mnt);
#pragma unroll
	for (int i = 0; i < WA_ROOT_HOPS; i++) {
		if (d != BPF_CORE_READ(mnt, mnt.mnt_root))
			return true; /* a directory inside a mount: a chroot */
		struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);
		if (mp == mnt || !mp)
			return false; /* the top, through mount roots only */
		d = BPF_CORE_READ(mnt, mnt_mountpoint);
		mnt = mp;
	}
	return true;
}

/* Both walks (probe reads and, below, direct loads): up to the root, then
 * the names root-first; `up` and `down` are constants once inlined. */
static __always_inline __u32 wa_walk_run(struct wa_walk *w, __u16 *flags, long (*up)(__u32, void *),
					 long (*down)(__u32, void *))
{
	struct wa_scratch *s = w->s;
	s->walk_n = 0;
	s->walk_pos = 0;
	bpf_loop(WA_PATH_DEPTH + WA_MOUNT_HOPS, up, w, 0);
	/* the loop bound ran out before the root (many mounts stacked or nested):
	 * the top of the path is missing, so say so */
	if (!w->done)
		w->flags |= WA_F_TRUNC_PATH;
	if (s->walk_n == 0) {
		w->buf[0] = '/';
		*flags |= w->flags;
		return 1;
	}
	bpf_loop(WA_PATH_DEPTH, down, w, 0);
	*flags |= w->flags;
	__u32 len = s->walk_pos;
	return len < WA_PATH_MAX ? len : WA_PATH_MAX - 1;
}

/* Writes the absolute path of `path` at buf[0..]; buf must hold
 * WA_PATH_MAX + WA_NAME_MAX bytes. Relative to the current task's root when
 * task_root (WA_F_CHROOT when that is not the namespace's root), else to the
 * mount namespace's root. Returns its length (no NUL). */
static __always_inline __u32 wa_path_write_from(struct wa_scratch *s, struct path *path, char *buf, __u16 *flags,
						bool task_root)
{
	struct wa_walk w = {};
	struct vfsmount *vmnt = BPF_CORE_READ(path, mnt);
	struct path root = {};
	if (task_root && wa_task_root(&root)) {
		w.root_d = root.dentry;
		w.root_mnt = container_of(root.mnt, struct mount, mnt);
		w.flags |= WA_F_CHROOT;
	}
	w.s = s;
	w.d = BPF_CORE_READ(path, dentry);
	w.mnt = container_of(vmnt, struct mount, mnt);
	w.buf = buf;
	return wa_walk_run(&w, flags, wa_walk_up, wa_walk_down);
}

static __always_inline __u32 wa_path_write(struct wa_scratch *s, struct path *path, char *buf, __u16 *flags)
{
	return wa_path_write_from(s, path, buf, flags, true);
}

/* The same walk by direct loads, for the open exits' cast twins (6.2+,
 * native/loader_hooks.c): every dentry and mount field on the way up is one
 * load the kernel guards with an exception entry, not a bpf_probe_read_kernel
 * call, and a mount's root is read once per mount, not once per level. A
 * name is copied by a string read bounded by its d_name.len (+1 for the
 * NUL), never by a plain copy of that length: a rename racing the walk can
 * pair an old inline name (NUL-terminated inside the dentry) with a new,
 * longer length, and a copy of the length would carry the dentry's next
 * fields (pointers) into the record. A scan for the NUL after a plain copy
 * did the same but cost every sensor load 140-230 ms of verification. What
 * a race can still give is what d_path gives: one of the two names, or a
 * prefix of the old one. A write-open of a 3-level path cost its opener
 * ~2.2 us over bare with the probe-read walk and ~1.5 us with this one,
 * a 12-level path ~3.8 and ~2.4 us (host-wide, same run, 2026-12-02). */
#define WA_CAST(p, type) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

/* The cast walk keeps its pointers in the scratch map (cw_*), as the
 * probe-read walk keeps its counters there: loaded back from map memory they
 * are plain scalars to the verifier, cast again where they are used. */
static long wa_walk_up_cast(__u32 i, void *arg)
{
	struct wa_walk *w = arg;
	struct wa_scratch *s = w->s;
	__u64 dv = s->cw_d, mv = s->cw_mnt;
	struct dentry *d = WA_CAST((void *)dv, struct dentry);
	struct mount *mnt = WA_CAST((void *)mv, struct mount);
	if (dv == s->cw_root_d && mv == s->cw_root_mnt) {
		w->done = 1;
		return 1; /* the task's root */
	}
	__u64 parent = (__u64)d->d_parent;
	if (dv == s->cw_mnt_root || dv == parent) {
		__u64 mp = (__u64)mnt->mnt_parent;
		if (mp == mv || !mp) {
			w->done = 1;
			if (s->cw_root_d)
				w->flags |= WA_F_OUTSIDE_ROOT;
			return 1;
		}
		s->cw_d = (__u64)mnt->mnt_mountpoint;
		s->cw_mnt = mp;
		s->cw_mnt_root = (__u64)WA_CAST((void *)mp, struct mount)->mnt.mnt_root;
		return 0;
	}
	__u32 n = s->walk_n;
	if (n >= WA_PATH_DEPTH) {
		w->flags |= WA_F_TRUNC_PATH;
		w->done = 1;
		return 1;
	}
	s->dstack[n] = (struct dentry *)dv;
	s->walk_n = n + 1;
	s->cw_d = parent;
	return 0;
}

static long wa_walk_down_cast(__u32 j, void *arg)
{
	struct wa_walk *w = arg;
	__u32 n = w->s->walk_n;
	if (j >= n)
		return 1;
	__u32 k = n - 1 - j;
	if (k >= WA_PATH_DEPTH)
		return 1;
	struct dentry *c = WA_CAST(w->s->dstack[k], struct dentry);
	/* the name, then its length, in that order (as d_path's prepend_name):
	 * a rename publishes the length before the name */
	const unsigned char *name = c->d_name.name;
	asm volatile("" ::: "memory");
	__u32 len = c->d_name.len;
	__u32 pos = w->s->walk_pos;
	if (pos > WA_PATH_MAX - WA_NAME_MAX - 1) {
		w->flags |= WA_F_TRUNC_PATH;
		return 1;
	}
	char *buf = w->buf;
	buf[pos & (WA_PATH_MAX - 1)] = '/';
	pos++;
	if (len > WA_NAME_MAX - 1)
		len = WA_NAME_MAX - 1;
	/* a string read bounded by the length: it stops at the name's NUL, so a
	 * length from another name than the pointer's never reads past it */
	long r = bpf_probe_read_kernel_str(&buf[pos & (WA_PATH_MAX - 1)], (len & (WA_NAME_MAX - 1)) + 1, name);
	if (r > 1)
		pos += r - 1;
	w->s->walk_pos = pos;
	return 0;
}

/* wa_task_root by direct loads: true when chrooted, its root in s->cw_root_*. */
static __always_inline bool wa_task_root_cast(struct wa_scratch *s)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fs_struct *fs = WA_CAST(t->fs, struct fs_struct);
	s->cw_root_d = 0;
	s->cw_root_mnt = 0;
	if (!fs)
		return false;
	struct dentry *d = fs->root.dentry;
	struct vfsmount *vm = fs->root.mnt;
	if (!d || !vm)
		return false;
	struct mount *mnt = container_of(vm, struct mount, mnt);
	struct dentry *rd = d;
	struct mount *rm = mnt;
#pragma unroll
	for (int i = 0; i < WA_ROOT_HOPS; i++) {
		struct mount *m = WA_CAST(mnt, struct mount);
		if (d != m->mnt.mnt_root)
			goto chrooted;
		struct mount *mp = m->mnt_parent;
		if (mp == mnt || !mp)
			return false;
		d = m->mnt_mountpoint;
		mnt = mp;
	}
chrooted:
	s->cw_root_d = (__u64)rd;
	s->cw_root_mnt = (__u64)rm;
	return true;
}

/* wa_path_write of an opened file, by direct loads (cast twins only). */
static __always_inline __u32 wa_file_path_write_cast(struct wa_scratch *s, struct file *file, char *buf, __u16 *flags)
{
	struct wa_walk w = {};
	struct file *f = WA_CAST(file, struct file);
	struct vfsmount *vmnt = f->f_path.mnt;
	if (wa_task_root_cast(s))
		w.flags |= WA_F_CHROOT;
	w.s = s;
	w.buf = buf;
	struct mount *mnt = container_of(vmnt, struct mount, mnt);
	s->cw_d = (__u64)f->f_path.dentry;
	s->cw_mnt = (__u64)mnt;
	s->cw_mnt_root = (__u64)WA_CAST(mnt, struct mount)->mnt.mnt_root;
	return wa_walk_run(&w, flags, wa_walk_up_cast, wa_walk_down_cast);
}

/* Absolute form of a path name relative to dirfd (AT_FDCWD = cwd), the name
 * in user memory or (kernel = true) in a kernel copy such as struct filename.
 * Absolute inputs are copied as given. Returns the length (no NUL). */
static __always_inline __u32 wa_name_path_write(struct wa_scratch *s, int dirfd, const char *upath, char *buf,
						__u16 *flags, bool kernel)
{
	char first = 0;
	__u32 pos = 0;

	if (kernel ? bpf_probe_read_kernel(&first, 1, upath) : bpf_probe_read_user(&first, 1, upath)) {
		*flags |= WA_F_READ_FAULT;
		return 0;
	}
	if (first == '/') {
		/* as given, so relative to the task's root: say when that is a chroot */
		struct path root = {};
		if (wa_task_root(&root))
			*flags |= WA_F_CHROOT;
	} else {
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
	long r = kernel ? bpf_probe_read_kernel_str(&buf[pos], WA_PATH_MAX - pos, upath)
			: bpf_probe_read_user_str(&buf[pos], WA_PATH_MAX - pos, upath);
	if (r <= 0) {
		*flags |= WA_F_READ_FAULT;
		return pos;
	}
	if (pos + r - 1 >= WA_PATH_MAX - 1)
		*flags |= WA_F_TRUNC_PATH;
	return pos + r - 1;
}

static __always_inline __u32 wa_user_path_write(struct wa_scratch *s, int dirfd, const char *upath, char *buf,
						__u16 *flags)
{
	return wa_name_path_write(s, dirfd, upath, buf, flags, false);
}

#endif
