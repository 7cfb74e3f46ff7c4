/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The sensitive set's side of a read-only open (file.bpf.h): is the opened
 * file, or an ancestor, in it? Most opens are not, so the answer is built to
 * be "no" as cheaply as the kernel allows: a filesystem filter, then per
 * ancestor an identity filter, and a map lookup only where a filter says
 * "maybe".
 */
#ifndef WA_SENSITIVE_BPF_H
#define WA_SENSITIVE_BPF_H

#include "common.bpf.h"

#define WA_SENSITIVE_ANCESTORS 16

/* Sensitive names under a watched directory: (the directory's identity, a
 * child's name). A sensitive path that does not exist yet (~/.aws before the
 * agent creates it) or is replaced (rm -r ~/.ssh; mkdir ~/.ssh) still
 * matches by name under its parent. Names are compared on their first
 * WA_SENSITIVE_NAME - 1 bytes. */
#define WA_SENSITIVE_NAME 64
#define WA_SENS_SELF 1    /* wa_sensitive value bit: this file or directory is sensitive */
#define WA_SENS_PARENT 2  /* wa_sensitive value bit: some children are sensitive by name */

struct wa_name_key {
	struct wa_inode_key parent;
	char name[WA_SENSITIVE_NAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct wa_name_key);
	__type(value, __u8);
} wa_sensitive_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wa_name_key);
} wa_name_scratch SEC(".maps");

/* Filters in front of the sensitive set, so that the walk does no map
 * lookup for what cannot be in it, all indexed by multiplicative hashes
 * (wa_sens_dev_bit, wa_sens_id_bit; native/loader_maps.c computes the same):
 *  - one bit per filesystem (superblock s_dev) holding any sensitive
 *    identity. The ancestry walk follows d_parent, which never leaves a
 *    superblock, so an open on a filesystem whose bit is clear (/dev, /proc,
 *    tmpfs, a build tree's own mount) cannot be sensitive;
 *  - one bit per identity (s_dev, inode) sensitive itself (WA_SENS_SELF);
 *  - per 16 identity bits, the OR of the name filters (wa_sens_val.names) of
 *    the directories there with sensitive children by name (WA_SENS_PARENT).
 * A level is looked up only when its self bit is set, or when its names word
 * has the bit of the child's name (so /etc, watched by name, costs no lookup
 * for /etc/hostname): a member, or a collision (about 1 in 1600 levels at 40
 * identities). Inline loads from .bss, no helper call. The loader sets the
 * bits before it inserts what they stand for and clears the filters only
 * after emptying the maps, so a member never has a clear bit; bits are never
 * cleared one by one (a stale bit costs one lookup). */
#define WA_SENS_DEV_WORDS 4      /* 256 bits */
#define WA_SENS_SELF_WORDS 1024  /* 65536 bits, 8 KiB */
#define WA_SENS_NAME_WORDS 4096  /* one names word per 16 identity bits, 32 KiB */
#define WA_SENS_HASH 0x9E3779B97F4A7C15ull
volatile __u64 wa_sens_dev_filter[WA_SENS_DEV_WORDS];
volatile __u64 wa_sens_self_filter[WA_SENS_SELF_WORDS];
volatile __u64 wa_sens_name_filter[WA_SENS_NAME_WORDS];

static __always_inline __u32 wa_sens_dev_bit(__u32 dev)
{
	return ((__u64)dev * WA_SENS_HASH) >> 56; /* 0..255 */
}

static __always_inline __u32 wa_sens_id_bit(__u32 dev, __u64 ino)
{
	return ((ino ^ ((__u64)dev << 40)) * WA_SENS_HASH) >> 48; /* 0..65535 */
}

static __always_inline bool wa_sens_dev_maybe(__u32 dev)
{
	__u32 b = wa_sens_dev_bit(dev);
	return wa_sens_dev_filter[(b >> 6) & (WA_SENS_DEV_WORDS - 1)] & (1ull << (b & 63));
}

/* The name filter's bit for a name of `len` bytes starting with `c0`; names
 * are compared on their first WA_SENSITIVE_NAME - 1 bytes, so longer ones
 * count as that long. The loader computes the same (native/loader_maps.c). */
static __always_inline __u32 wa_name_bit(__u32 len, __u8 c0)
{
	if (len > WA_SENSITIVE_NAME - 1)
		len = WA_SENSITIVE_NAME - 1;
	return (len * 31 + c0) & 63;
}

static __always_inline bool wa_child_named(const struct wa_inode_key *parent, const unsigned char *name)
{
	__u32 zero = 0;
	struct wa_name_key *k = bpf_map_lookup_elem(&wa_name_scratch, &zero);
	if (!k || !name)
		return false;
	__builtin_memset(k, 0, sizeof(*k));
	k->parent = *parent;
	bpf_probe_read_kernel_str(k->name, sizeof(k->name), name);
	return bpf_map_lookup_elem(&wa_sensitive_names, k) != NULL;
}

/* What the walk needs of a dentry: its parent, name and inode. struct dentry
 * has kept d_parent, d_name and d_inode next to each other, in that order,
 * since 2.6 (d_name being a struct qstr: hash and len, then the name
 * pointer), so one probe read of 32 bytes gets all three where three or four
 * would; CO-RE checks that layout on the running kernel, and any other layout
 * reads them one by one. */
struct wa_dent {
	struct dentry *parent;
	struct inode *inode;
	const unsigned char *name;
	__u32 len;
};

/* The walk's first level also wants the dentry's superblock: d_sb sits 56
 * bytes past d_inode (d_shortname or d_iname, then d_op) on 6.1 to 6.18, so
 * that level reads 96 bytes from d_parent where CO-RE finds d_sb within
 * them, and d_sb on its own otherwise. */
#define WA_DENT_SPAN 16 /* u64 words of room; a power of two: the verifier bounds an index by a mask */
static __always_inline void wa_dent_read(struct dentry *d, struct wa_dent *out, struct super_block **sb)
{
	__u32 op = bpf_core_field_offset(struct dentry, d_parent);
	__u32 on = bpf_core_field_offset(struct dentry, d_name);
	__u32 oi = bpf_core_field_offset(struct dentry, d_inode);
	__u32 os = bpf_core_field_offset(struct dentry, d_sb);
	if (on == op + 8 && oi == on + 16 && bpf_core_field_offset(struct qstr, len) == 4 &&
	    bpf_core_field_offset(struct qstr, name) == 8) {
		__u64 span[WA_DENT_SPAN] = {};
		bool with_sb = sb && os > oi && os + 8 - op <= 96 && !(os & 7);
		bpf_probe_read_kernel(span, with_sb ? 96 : 32, (char *)d + op);
		out->parent = (struct dentry *)span[0];
		out->len = span[1] >> 32; /* x86_64 (little-endian): hash, then len */
		out->name = (const unsigned char *)span[2];
		out->inode = (struct inode *)span[3];
		if (with_sb)
			*sb = (struct super_block *)span[((os - op) >> 3) & (WA_DENT_SPAN - 1)];
		else if (sb)
			*sb = BPF_CORE_READ(d, d_sb);
		return;
	}
	out->parent = BPF_CORE_READ(d, d_parent);
	out->len = BPF_CORE_READ(d, d_name.len);
	out->name = BPF_CORE_READ(d, d_name.name);
	out->inode = BPF_CORE_READ(d, d_inode);
	if (sb)
		*sb = BPF_CORE_READ(d, d_sb);
}

/* Direct loads (the open exits' cast twins, 6.2+, native/loader_hooks.c):
 * bpf_rdonly_cast makes a file pointer a BTF pointer whose fields are one
 * load each. From 6.17 it also casts to void * (BPF_FEAT_RDONLY_CAST_TO_VOID),
 * so memory no BTF type describes (a name's bytes, the fd table's slots) is
 * read by direct loads as well instead of a bpf_probe_read_kernel call. CO-RE
 * answers at load; before 6.17 the verifier drops that branch as dead. */
enum bpf_features___wa { BPF_FEAT_RDONLY_CAST_TO_VOID___wa = 0 };
#define WA_DIRECT_MEM bpf_core_enum_value_exists(enum bpf_features___wa, BPF_FEAT_RDONLY_CAST_TO_VOID___wa)

/* A byte at p: by a direct load where the kernel allows one (WA_DIRECT_MEM,
 * in a cast twin), else by a probe read. */
static __always_inline __u8 wa_kernel_byte(const void *p, bool direct)
{
	__u8 c = 0;
	if (direct && WA_DIRECT_MEM)
		c = *(const volatile __u8 *)bpf_rdonly_cast(p, 0);
	else
		bpf_probe_read_kernel(&c, 1, p);
	return c;
}

/* Is the opened file (dentry d) — its own inode, so a hard link matches — or
 * one of its ancestors in the sensitive set, or named as sensitive under a
 * watched ancestor? Identities are the kernel's (superblock s_dev, inode
 * number). The superblock is the file's all the way up (d_parent stays in
 * it), so its s_dev is read once, with the first level, and decides first
 * (the filesystem filter) whether there is anything to walk. Per level: one
 * read of the dentry, one of the inode number, the identity filter; only a
 * level whose filter bit is set is looked up, and a child's name is read
 * only when its parent is watched by name and the parent's name filter has
 * the child's bit. With the default set, /dev/null costs three probe reads
 * past the file (its dentry pointer, the dentry, s_dev) and no lookup;
 * /etc/hostname nine and one lookup (/etc's: watched by name). */
/* One level of the walk, once its identity is known: is it sensitive
 * itself, or is the child we came from (child_name, NULL at the first level)
 * named as sensitive under it? The filters first; the child's first byte is
 * read only when this level's names word is not empty. */
static __always_inline bool wa_level_matches(__u32 dev, __u64 ino, const unsigned char *child_name, __u32 child_len,
					     bool direct)
{
	__u32 b = wa_sens_id_bit(dev, ino);
	bool self = wa_sens_self_filter[(b >> 6) & (WA_SENS_SELF_WORDS - 1)] & (1ull << (b & 63));
	__u64 names = child_name ? wa_sens_name_filter[(b >> 4) & (WA_SENS_NAME_WORDS - 1)] : 0;
	__u64 name_bit = 0;
	if (names)
		name_bit = 1ull << wa_name_bit(child_len, wa_kernel_byte(child_name, direct));
	if (!self && !(names & name_bit))
		return false;
	struct wa_inode_key k = {};
	k.ino = ino;
	k.dev = dev;
	struct wa_sens_val *v = bpf_map_lookup_elem(&wa_sensitive, &k);
	if (!v)
		return false;
	if (v->bits & WA_SENS_SELF)
		return true;
	return (v->bits & WA_SENS_PARENT) && (v->names & name_bit) && wa_child_named(&k, child_name);
}

static __always_inline bool wa_is_sensitive(struct dentry *d)
{
	struct wa_dent de;
	struct super_block *sb = NULL;
	wa_dent_read(d, &de, &sb);
	__u32 dev = BPF_CORE_READ(sb, s_dev);
	if (!wa_sens_dev_maybe(dev))
		return false;
	const unsigned char *child_name = NULL;
	__u32 child_len = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < WA_SENSITIVE_ANCESTORS; i++) {
		if (i > 0)
			wa_dent_read(d, &de, NULL);
		struct inode *inode = de.inode; /* a local: CO-RE must not relocate wa_dent's own fields */
		if (wa_level_matches(dev, BPF_CORE_READ(inode, i_ino), child_name, child_len, false))
			return true;
		if (de.parent == d || !de.parent)
			break;
		child_name = de.name;
		child_len = de.len;
		d = de.parent;
	}
	return false;
}

/* The same walk by direct loads, for kernels with bpf_rdonly_cast (6.2+):
 * the file pointer is cast to a BTF pointer, and every field on the way up
 * is then one load instruction the kernel guards with an exception entry,
 * not a helper call of ~7 ns (the bpf_probe_read_kernel the walk above pays
 * two of per level); from 6.17 the child's first byte too. The loader loads
 * these programs (the open exits) on 6.2+ and the probe-read ones (named
 * ..._nocast) before (native/loader_hooks.c). */

static __always_inline bool wa_is_sensitive_cast(struct file *file)
{
	struct file *f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
	if (!f)
		return false;
	struct dentry *d = f->f_path.dentry;
	if (!d)
		return false;
	__u32 dev = d->d_sb->s_dev;
	if (!wa_sens_dev_maybe(dev))
		return false;
	const unsigned char *child_name = NULL;
	__u32 child_len = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < WA_SENSITIVE_ANCESTORS; i++) {
		struct inode *inode = d->d_inode;
		if (!inode)
			break;
		if (wa_level_matches(dev, inode->i_ino, child_name, child_len, true))
			return true;
		struct dentry *parent = d->d_parent;
		if (parent == d || !parent)
			break;
		child_name = d->d_name.name;
		child_len = d->d_name.len;
		d = parent;
	}
	return false;
}

/* The open exits' fd -> struct file: wa_fd_file (common.bpf.h) with the
 * slot read by a direct load where the kernel allows it (WA_DIRECT_MEM). */
static __always_inline struct file *wa_fd_file_cast(int fd)
{
	if (!WA_DIRECT_MEM)
		return wa_fd_file(fd);
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file *const *fds = bpf_rdonly_cast(fdt->fd, 0);
	return fds[fd];
}

#endif
