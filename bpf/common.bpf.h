/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Maps, runtime config and helpers shared by every agent-witness program. */
#ifndef WA_COMMON_BPF_H
#define WA_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "maps.h"
#include "syscall.bpf.h"

#define AT_FDCWD -100
#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 00170000
#define S_IFSOCK 0140000

/* Runtime config, written by user space through the skeleton's mmap of .bss. */
volatile __u32 wa_trace_all;      /* 1: host-wide, every tgid but our own */
volatile __u32 wa_self_tgid;      /* the sensor's own process, never traced */
volatile __u32 wa_spawn_parent;   /* one-shot: next child forked by this tgid becomes a root */
volatile __u32 wa_sensitive_count;/* entries in wa_sensitive; 0 skips the ancestry walk */
volatile __u64 wa_wakeup_bytes;   /* wake the consumer once this much data is waiting */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the loader */
} wa_events SEC(".maps");

/* Scope: tgids whose events we want. Roots are added by user space, children inherit on fork. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WA_TRACED_MAX); /* resizable by the loader */
	__type(key, __u32);
	__type(value, struct wa_traced);
} wa_traced SEC(".maps");

/* Per-type counters: [type] of records emitted and of records lost to a full ring. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WA_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} wa_emitted SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WA_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} wa_dropped SEC(".maps");

/* Syscall arguments saved at sys_enter for the matching sys_exit, per thread.
 * Task storage, not a hash keyed by thread id: it lives and dies with the
 * thread and never evicts, so no number of busy threads can push another
 * thread's pending syscall out (an LRU hash did, silently). Freed with the
 * task; `kind` = 0 marks it empty. An allocation failure is counted
 * (WA_LOSS_PENDING). */
struct wa_pending {
	__u64 args[6];
	__u32 old_ids[3];
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wa_pending);
} wa_pending SEC(".maps");

/* Loss counters by enum wa_loss_counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WA_LOSS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} wa_loss SEC(".maps");

/* Ring drops per process, so a heartbeat can name who is losing records.
 * Bounded; a drop by a process that finds it full is counted in
 * WA_LOSS_DROPPERS_FULL (and, like every drop, in wa_dropped). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WA_DROPPERS_MAX);
	__type(key, __u32);
	__type(value, struct wa_drop_val);
} wa_drop_pids SEC(".maps");

/* Sensitive files and directories by identity (kernel dev_t, inode): an open
 * whose file or any ancestor matches is a sensitive read. Identity, not path
 * text, so relative paths, symlinks and ../ games cannot dodge it. */
struct wa_inode_key {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* bits: WA_SENS_* (sensitive.bpf.h); names: for a directory with sensitive
 * children by name, one bit per name at wa_name_bit(its length, its first
 * byte), so that the walk compares a child's name only when its bit is set
 * (native/loader_maps.c computes the same bit). */
struct wa_sens_val {
	__u8 bits;
	__u8 pad[7];
	__u64 names;
};

/* 6.2+ (the open exits' cast twins: sensitive.bpf.h, path.bpf.h) */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct wa_inode_key);
	__type(value, struct wa_sens_val);
} wa_sensitive SEC(".maps");

/* Room to build one variable-size record plus the path-walk scratch. */
#define WA_REC_MAX (sizeof(struct wa_exec) + WA_FILENAME_MAX + WA_ARGV_MAX + 3 * (WA_PATH_MAX + WA_NAME_MAX))
struct wa_scratch {
	__u8 rec[WA_REC_MAX];
	struct dentry *dstack[WA_PATH_DEPTH];
	/* The path walk's counters live here, not on the stack: map memory is
	 * not tracked as constants, so the verifier's states converge after one
	 * callback iteration. On the stack each depth is a new state, and kernels
	 * that verify bpf_loop callbacks as loops (6.12 in the matrix) run wa_exec
	 * past the 1M-instruction budget. */
	__u32 walk_n;
	__u32 walk_pos;
	/* the cast walk's dentry, mount, mount root and task root (bpf/path.bpf.h) */
	__u64 cw_d, cw_mnt, cw_mnt_root, cw_root_d, cw_root_mnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wa_scratch);
} wa_scratch_map SEC(".maps");

static __always_inline struct wa_scratch *wa_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&wa_scratch_map, &zero);
}

/* The traced set's membership, one bit per tgid: wa_traced holds each
 * member's scope (root, depth), and this says who is a member, so that every
 * syscall of every process asks it with one inlined array load and a test (no
 * helper call, no hashing) while the dispatchers are attached. The two change
 * together: every insert into wa_traced sets the bit first and every delete
 * clears it after, with atomics (a fork may set a bit in the same word as
 * another exit clears; user space adds and removes roots through its mmap of
 * this map with the same atomics, native/loader_maps.c). So a bit is never
 * clear for a tgid in wa_traced; it is set without an entry only for the
 * moment between the two steps, for a process being added (not yet running,
 * or about to be traced) or removed (at its exit, or leaving the set).
 * Sized for PID_MAX_LIMIT, the most pid_max can be on 64-bit: 512 KiB. An
 * array map, not a .bss.* section: the Debian bpftool that generates the
 * skeleton does not know those. */
#define WA_PID_LIMIT (4u << 20)
#define WA_PID_WORDS (WA_PID_LIMIT / 64)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, WA_PID_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} wa_traced_bits SEC(".maps");

static __always_inline __u64 *wa_traced_word(__u32 tgid)
{
	__u32 w = tgid / 64;
	return bpf_map_lookup_elem(&wa_traced_bits, &w);
}

static __always_inline bool wa_traced_member(__u32 tgid)
{
	__u64 *w = wa_traced_word(tgid);
	return w && (*w & (1ull << (tgid & 63)));
}

static __always_inline void wa_traced_mark(__u32 tgid)
{
	__u64 *w = wa_traced_word(tgid);
	if (w)
		__sync_fetch_and_or(w, 1ull << (tgid & 63));
}

static __always_inline void wa_traced_unmark(__u32 tgid)
{
	__u64 *w = wa_traced_word(tgid);
	if (w)
		__sync_fetch_and_and(w, ~(1ull << (tgid & 63)));
}

static __always_inline bool wa_is_traced(__u32 tgid)
{
	if (wa_trace_all)
		return tgid != wa_self_tgid && tgid != 0;
	return wa_traced_member(tgid);
}

/* The gate in front of every syscall handler (the dispatchers run it before
 * the tail call, boundary.bpf.h) and of the TLS uprobes: the caller is traced,
 * and the syscall is a native one (ia32 compat syscalls use other numbers and
 * registers; syscall.bpf.h). The compat test comes second so that untraced
 * processes never pay it; in targeted mode they pay one filter load. One
 * helper call gives both (the task's tgid and status), where pid_tgid and
 * then the task cost a traced caller two per syscall, each a return thunk. */
static __always_inline bool wa_current_traced(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	return wa_is_traced(t->tgid) && !wa_sys_compat(t);
}

static __always_inline void wa_count(void *map, __u32 type)
{
	__u64 *c = bpf_map_lookup_elem(map, &type);
	if (c)
		*c += 1; /* per-CPU: no atomics needed */
}

static __always_inline void wa_fill_hdr(struct wa_hdr *h, __u16 type, __u32 size)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();

	h->type = type;
	h->flags = 0;
	h->size = size;
	h->ts_ns = bpf_ktime_get_boot_ns();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = (__u32)ug;
	h->gid = ug >> 32;
	h->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
	(void)t;
}

/* A record lost to a full ring: counted per type and per process. */
static __always_inline void wa_drop(__u16 type)
{
	wa_count(&wa_dropped, type);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct wa_drop_val *v = bpf_map_lookup_elem(&wa_drop_pids, &tgid);
	if (!v) {
		struct wa_drop_val nv = {};
		bpf_get_current_comm(nv.comm, sizeof(nv.comm));
		bpf_map_update_elem(&wa_drop_pids, &tgid, &nv, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&wa_drop_pids, &tgid);
		if (!v) {
			wa_count(&wa_loss, WA_LOSS_DROPPERS_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
}

/* Reserve a fixed-size record; counts the drop when the ring is full. */
static __always_inline void *wa_reserve(__u32 size, __u16 type)
{
	void *r = bpf_ringbuf_reserve(&wa_events, size, 0);
	if (!r)
		wa_drop(type);
	return r;
}

/* Wake the consumer only when enough is waiting: it also drains on a short
 * poll timeout, so quiet tails are never stranded. */
static __always_inline __u64 wa_wakeup_flag(void)
{
	return bpf_ringbuf_query(&wa_events, BPF_RB_AVAIL_DATA) >= wa_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										    : BPF_RB_NO_WAKEUP;
}

static __always_inline void wa_submit(void *r, __u16 type)
{
	bpf_ringbuf_submit(r, wa_wakeup_flag());
	wa_count(&wa_emitted, type);
}

/* Copy a built record from scratch into the ring (variable-size records). */
static __always_inline void wa_output(void *rec, __u32 size, __u16 type)
{
	if (size > WA_REC_MAX)
		size = WA_REC_MAX;
	if (bpf_ringbuf_output(&wa_events, rec, size, wa_wakeup_flag()) == 0)
		wa_count(&wa_emitted, type);
	else
		wa_drop(type);
}

/* The current thread's pending slot; create: allocate it on first use. */
static __always_inline struct wa_pending *wa_pending_slot(__u64 create)
{
	struct task_struct *t = bpf_get_current_task_btf();
	return bpf_task_storage_get(&wa_pending, t, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline struct wa_pending *wa_pending_get(__u32 kind)
{
	struct wa_pending *p = wa_pending_slot(0);
	if (p && p->kind != kind)
		return NULL;
	return p;
}

static __always_inline void wa_pending_drop(void)
{
	struct wa_pending *p = wa_pending_slot(0);
	if (p)
		p->kind = 0;
}

/* An empty pending slot of `kind` for the caller to fill (args zeroed), or
 * NULL (counted) when the thread's storage cannot be allocated. */
static __always_inline struct wa_pending *wa_pending_new(__u32 kind)
{
	struct wa_pending *p = wa_pending_slot(1);
	if (!p) {
		wa_count(&wa_loss, WA_LOSS_PENDING);
		return NULL;
	}
	p->kind = kind;
	p->args[0] = p->args[1] = p->args[2] = p->args[3] = p->args[4] = p->args[5] = 0;
	p->old_ids[0] = p->old_ids[1] = p->old_ids[2] = 0;
	return p;
}

/* Save the syscall's arguments (the registers, syscall.bpf.h) for its sys_exit. */
static __always_inline struct wa_pending *wa_pending_save(struct wa_sys_ctx *ctx, __u32 kind, int nargs)
{
	struct wa_pending *p = wa_pending_new(kind);
	if (!p)
		return NULL;
	if (nargs > 0) p->args[0] = ctx->args[0];
	if (nargs > 1) p->args[1] = ctx->args[1];
	if (nargs > 2) p->args[2] = ctx->args[2];
	if (nargs > 3) p->args[3] = ctx->args[3];
	if (nargs > 4) p->args[4] = ctx->args[4];
	if (nargs > 5) p->args[5] = ctx->args[5];
	return p;
}

/* Save arguments a program collected itself (BTF raw tracepoints have no
 * syscall-tracepoint ctx): args[0..5] as given. */
static __always_inline struct wa_pending *wa_pending_save_args(__u32 kind, const __u64 *args)
{
	struct wa_pending *p = wa_pending_new(kind);
	if (!p)
		return NULL;
	p->args[0] = args[0];
	p->args[1] = args[1];
	p->args[2] = args[2];
	p->args[3] = args[3];
	p->args[4] = args[4];
	p->args[5] = args[5];
	return p;
}

/* enter handler that only saves the arguments */
#define WA_SAVE_ENTER(name, kind, nargs)                                        \
	WA_SYSCALL_ENTER(name)                                             \
	{                                                                  \
		wa_pending_save(ctx, kind, nargs);                         \
		return 0;                                                  \
	}

/* fd -> struct file* through the current task's fd table. Every caller is a
 * BTF program, so the table is reached by direct loads (no helper call per
 * step); only the slot itself is a probe read. */
static __always_inline struct file *wa_fd_file(int fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#endif
