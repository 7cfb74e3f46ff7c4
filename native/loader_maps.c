/* SPDX-License-Identifier: MIT */
/*
 * The loader's map plumbing: the traced set as user space sees it, the
 * sensitive set (identities and names), and the kernel's view of our own
 * fds. Adding a traced root lives in loader_hooks.c: it must attach the
 * syscall hooks first.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "loader_int.h"

static size_t traced_bits_bytes(struct wa_loader *l)
{
	return (size_t)bpf_map__max_entries(l->skel->maps.wa_traced_bits) * sizeof(uint64_t);
}

int wa_traced_bits_map(struct wa_loader *l)
{
	void *m = mmap(NULL, traced_bits_bytes(l), PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(l->skel->maps.wa_traced_bits), 0);
	if (m == MAP_FAILED)
		return -errno;
	l->traced_bits = m;
	return 0;
}

void wa_traced_bits_unmap(struct wa_loader *l)
{
	if (l->traced_bits)
		munmap(l->traced_bits, traced_bits_bytes(l));
	l->traced_bits = NULL;
}

/* Atomic read-modify-write on memory the programs update with their own
 * atomics (a fork sets a child's bit in the same word): a map update of the
 * whole word could undo theirs. */
int wa_traced_bits_mark(struct wa_loader *l, uint32_t tgid)
{
	if (!l->traced_bits)
		return -ENODEV;
	if ((size_t)tgid / 64 * sizeof(uint64_t) >= traced_bits_bytes(l))
		return -ERANGE;
	__atomic_fetch_or(&l->traced_bits[tgid / 64], 1ull << (tgid & 63), __ATOMIC_SEQ_CST);
	return 0;
}

void wa_traced_bits_unmark(struct wa_loader *l, uint32_t tgid)
{
	if (l->traced_bits && (size_t)tgid / 64 * sizeof(uint64_t) < traced_bits_bytes(l))
		__atomic_fetch_and(&l->traced_bits[tgid / 64], ~(1ull << (tgid & 63)), __ATOMIC_SEQ_CST);
}

int wa_loader_remove(struct wa_loader *l, uint32_t tgid)
{
	pthread_mutex_lock(&l->hooks_mu);
	int rc = bpf_map__delete_elem(l->skel->maps.wa_traced, &tgid, sizeof(tgid), 0);
	if (!rc)
		wa_traced_bits_unmark(l, tgid);
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

int wa_loader_is_traced(struct wa_loader *l, uint32_t tgid)
{
	struct wa_traced v;
	return bpf_map__lookup_elem(l->skel->maps.wa_traced, &tgid, sizeof(tgid), &v, sizeof(v), 0) == 0;
}

struct wa_inode_key_u {
	uint64_t ino;
	uint32_t dev;
	uint32_t pad;
};

/* struct wa_sens_val in bpf/common.bpf.h */
struct wa_sens_val_u {
	uint8_t bits;
	uint8_t pad[7];
	uint64_t names;
};

#define SENSITIVE_NAME 64 /* WA_SENSITIVE_NAME in bpf/sensitive.bpf.h */

/* wa_name_bit in bpf/sensitive.bpf.h: the name filter's bit for a name as stored
 * (at most SENSITIVE_NAME - 1 bytes) */
static unsigned name_bit(const char *stored)
{
	return (unsigned)(strlen(stored) * 31 + (unsigned char)stored[0]) & 63;
}

/* wa_sens_dev_bit / wa_sens_id_bit in bpf/sensitive.bpf.h: the same hashes */
#define SENS_HASH 0x9E3779B97F4A7C15ull
#define SENS_DEV_WORDS 4
#define SENS_ID_WORDS 1024
_Static_assert(sizeof(((struct witness_bpf__bss *)0)->wa_sens_dev_filter) == SENS_DEV_WORDS * 8, "sensitive.bpf.h filter");
_Static_assert(sizeof(((struct witness_bpf__bss *)0)->wa_sens_id_filter) == SENS_ID_WORDS * 8, "sensitive.bpf.h filter");

static void sensitive_filter_set(struct wa_loader *l, uint32_t kdev, uint64_t ino)
{
	unsigned db = (unsigned)(((uint64_t)kdev * SENS_HASH) >> 56);
	unsigned ib = (unsigned)(((ino ^ ((uint64_t)kdev << 40)) * SENS_HASH) >> 48);
	__atomic_fetch_or(&l->skel->bss->wa_sens_dev_filter[db >> 6], 1ull << (db & 63), __ATOMIC_SEQ_CST);
	__atomic_fetch_or(&l->skel->bss->wa_sens_id_filter[ib >> 6], 1ull << (ib & 63), __ATOMIC_SEQ_CST);
}

/* OR `bits` (sensitive.bpf.h: 1 = sensitive itself, 2 = has sensitive children by
 * name) and `names` (the name filter) into an identity's value; -E2BIG when
 * the map is full. */
static int sensitive_set_bits(struct wa_loader *l, uint32_t kdev, uint64_t ino, uint8_t bits, uint64_t names)
{
	struct wa_inode_key_u k = { .ino = ino, .dev = kdev, .pad = 0 };
	struct wa_sens_val_u v;
	memset(&v, 0, sizeof(v));
	/* the filters' bits first: from here on opens on that filesystem walk
	 * and the walk looks this identity up (sensitive.bpf.h), so none can skip it
	 * once it is in the map */
	sensitive_filter_set(l, kdev, ino);
	bpf_map__lookup_elem(l->skel->maps.wa_sensitive, &k, sizeof(k), &v, sizeof(v), 0);
	v.bits |= bits;
	v.names |= names;
	int rc = bpf_map__update_elem(l->skel->maps.wa_sensitive, &k, sizeof(k), &v, sizeof(v), BPF_ANY);
	if (!rc)
		l->skel->bss->wa_sensitive_count++;
	return rc;
}

int wa_loader_add_sensitive(struct wa_loader *l, uint32_t kdev, uint64_t ino)
{
	return sensitive_set_bits(l, kdev, ino, 1, 0);
}

int wa_loader_add_sensitive_name(struct wa_loader *l, uint32_t parent_kdev, uint64_t parent_ino, const char *name)
{
	struct {
		struct wa_inode_key_u parent;
		char name[SENSITIVE_NAME];
	} k;
	memset(&k, 0, sizeof(k));
	k.parent.ino = parent_ino;
	k.parent.dev = parent_kdev;
	snprintf(k.name, sizeof(k.name), "%s", name);
	uint8_t one = 1;
	int rc = bpf_map__update_elem(l->skel->maps.wa_sensitive_names, &k, sizeof(k), &one, 1, BPF_ANY);
	/* the name before its filter bit: a walk that sees the bit finds the name */
	return rc ? rc : sensitive_set_bits(l, parent_kdev, parent_ino, 2, 1ull << name_bit(k.name));
}

static void clear_map(int fd, size_t key_size)
{
	char k[256], next[256];
	if (key_size > sizeof(k))
		return;
	while (bpf_map_get_next_key(fd, NULL, next) == 0) {
		memcpy(k, next, key_size);
		bpf_map_delete_elem(fd, k);
	}
}

void wa_loader_clear_sensitive(struct wa_loader *l)
{
	l->skel->bss->wa_sensitive_count = 0;
	clear_map(bpf_map__fd(l->skel->maps.wa_sensitive), sizeof(struct wa_inode_key_u));
	clear_map(bpf_map__fd(l->skel->maps.wa_sensitive_names), bpf_map__key_size(l->skel->maps.wa_sensitive_names));
	/* the filters after the maps: a bit is never clear for a member */
	memset((void *)l->skel->bss->wa_sens_dev_filter, 0, sizeof(l->skel->bss->wa_sens_dev_filter));
	memset((void *)l->skel->bss->wa_sens_id_filter, 0, sizeof(l->skel->bss->wa_sens_id_filter));
}

int wa_loader_kernel_identities(struct wa_loader *l, struct wa_identity *rows, int max)
{
	int idx = -1;
	for (int i = 0; i < l->nprogs; i++)
		if (!strcmp(l->progs[i].name, "wa_identity_iter"))
			idx = i;
	if (idx < 0 || !l->links[idx])
		return -ENOTSUP;
	int fd = bpf_iter_create(bpf_link__fd(l->links[idx]));
	if (fd < 0)
		return -errno;
	int n = 0;
	for (;;) {
		struct wa_identity row;
		ssize_t got = read(fd, &row, sizeof(row));
		if (got == 0)
			break;
		if (got != (ssize_t)sizeof(row)) {
			n = got < 0 ? -errno : -EIO;
			break;
		}
		if (n < max)
			rows[n] = row;
		n++;
	}
	close(fd);
	return n;
}
