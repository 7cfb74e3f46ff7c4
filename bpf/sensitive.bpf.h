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

/* Two filters in front of the sensitive set, so that the walk does no map
 * lookup for what cannot be in it: one bit per filesystem (superblock s_dev)
 * holding any sensitive identity, and one bit per identity (s_dev, inode) in
 * wa_sensitive, each at a multiplicative hash (wa_sens_dev_bit,
 * wa_sens_id_bit; native/loader_maps.c computes the same). The ancestry walk
 * follows d_parent, which never leaves a superblock, so an open on a
 * filesystem whose bit is clear (/dev, /proc, tmpfs, a build tree's own
 * mount) cannot be sensitive; on one whose bit is set, a level whose identity
 * bit is clear is not in wa_sensitive, and only a set bit (a member, or one
 * collision in ~1600 at 40 identities) pays the hash lookup. Inline
 * loads from .bss, no helper call. The loader sets a bit before it inserts
 * what the bit stands for and clears the filters only after emptying the
 * maps, so a set member never has a clear bit; bits are never cleared one by
 * one (a stale bit costs one lookup). */
#define WA_SENS_DEV_WORDS 4      /* 256 bits */
#define WA_SENS_ID_WORDS 1024    /* 65536 bits, 8 KiB */
#define WA_SENS_HASH 0x9E3779B97F4A7C15ull
volatile __u64 wa_sens_dev_filter[WA_SENS_DEV_WORDS];
volatile __u64 wa_sens_id_filter[WA_SENS_ID_WORDS];

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

static __always_inline bool wa_sens_id_maybe(__u32 dev, __u64 ino)
{
	__u32 b = wa_sens_id_bit(dev, ino);
	return wa_sens_id_filter[(b >> 6) & (WA_SENS_ID_WORDS - 1)] & (1ull << (b & 63));
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
		__u64 ino = BPF_CORE_READ(inode, i_ino);
		if (wa_sens_id_maybe(dev, ino)) {
			struct wa_inode_key k = {};
			k.ino = ino;
			k.dev = dev;
			struct wa_sens_val *v = bpf_map_lookup_elem(&wa_sensitive, &k);
			if (v && (v->bits & WA_SENS_SELF))
				return true;
			if (v && (v->bits & WA_SENS_PARENT) && child_name) {
				__u8 c0 = 0;
				bpf_probe_read_kernel(&c0, 1, child_name);
				if ((v->names & (1ull << wa_name_bit(child_len, c0))) && wa_child_named(&k, child_name))
					return true;
			}
		}
		if (de.parent == d || !de.parent)
			break;
		child_name = de.name;
		child_len = de.len;
		d = de.parent;
	}
	return false;
}

#endif
