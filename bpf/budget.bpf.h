/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Fairness under flood, for the high-volume kinds (file_write, dns, connect).
 *
 * Each process has, per kind, a budget of wa_budget_events records per window
 * of wa_budget_window_ns. Within it everything is written. Past it, a record
 * whose key (path, destination, DNS question) this process already had
 * written in the current window is a repeat: counted in wa_suppress (and
 * wa_suppressed[kind]) instead of written; user space turns those counts into
 * sensor.suppressed summaries. A key not yet written in the window is always
 * written, so a flood cannot hide a new destination. Over budget, a process
 * may also not fill the ring past wa_ring_share_pct: its records beyond that
 * are dropped and counted (WA_LOSS_SHED, wa_dropped, wa_drop_pids), so the
 * ring keeps room for everyone else.
 *
 * Exactness: every gated record is either written (emitted or dropped, both
 * counted) or suppressed (counted with an atomic add), never neither; the
 * races between threads of one process only move the window edge.
 */
#ifndef WA_BUDGET_BPF_H
#define WA_BUDGET_BPF_H

#include "common.bpf.h"

#define WA_EEXIST 17

/* Runtime config (.bss, set by the loader): 0 budget events = no budget. */
volatile __u64 wa_budget_events;
volatile __u64 wa_budget_window_ns;
volatile __u64 wa_hash_seed;         /* random per load: keys cannot be chosen to collide */
volatile __u32 wa_ring_share_pct;    /* ring fill an over-budget process may not push past */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WA_BUDGET_MAX);
	__type(key, struct wa_budget_key);
	__type(value, struct wa_budget);
} wa_budget SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WA_SUPPRESS_MAX);
	__type(key, struct wa_supp_key);
	__type(value, struct wa_supp_val);
} wa_suppress SEC(".maps");

/* Repeats counted, per kind (the sum the summaries must add up to). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WA_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} wa_suppressed SEC(".maps");

/* Too big for the stack: one wa_supp_val per CPU to build an insert in. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wa_supp_val);
} wa_supp_tmp SEC(".maps");

static __always_inline __u64 wa_mix(__u64 h, __u64 w)
{
	h ^= w;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 32);
}

struct wa_hash_walk {
	const __u8 *buf;
	__u32 len;
	__u64 h;
};

static long wa_hash_step(__u32 i, void *arg)
{
	struct wa_hash_walk *c = arg;
	__u32 off = i * 8;
	if (off >= c->len)
		return 1;
	__u64 w = 0;
	bpf_probe_read_kernel(&w, sizeof(w), c->buf + off);
	__u32 rem = c->len - off;
	if (rem < 8)
		w &= (1ULL << (rem * 8)) - 1; /* bytes past the key are stale scratch */
	c->h = wa_mix(c->h, w);
	return 0;
}

/* Keyed 64-bit hash of len bytes (len <= WA_PATH_MAX). Not cryptographic; the
 * seed is secret to the kernel and the sensor. */
static __always_inline __u64 wa_hash_bytes(const void *buf, __u32 len)
{
	struct wa_hash_walk c = { .buf = buf, .len = len, .h = wa_hash_seed ^ ((__u64)len * 0x9E3779B97F4A7C15ULL) };
	bpf_loop((WA_PATH_MAX + 7) / 8, wa_hash_step, &c, 0);
	return wa_mix(c.h, c.h >> 29);
}

/* Starts counting repeats of a key; false when wa_suppress is full. */
static __always_inline bool wa_supp_insert(struct wa_supp_key *sk, __u64 win, const void *key, __u32 key_len)
{
	__u32 zero = 0;
	struct wa_supp_val *t = bpf_map_lookup_elem(&wa_supp_tmp, &zero);
	if (!t)
		return false;
	t->count = 0;
	t->win_start = win;
	t->first_ns = 0;
	t->last_ns = 0;
	t->key_full_len = key_len;
	__u32 n = key_len < WA_SUPP_KEY_MAX ? key_len : WA_SUPP_KEY_MAX;
	/* keep the clamped value in the register the read uses, and test that
	 * very register once: otherwise clang tests a copy (n - 1 <= 255) and
	 * 6.1's verifier never learns the size is bounded */
	asm volatile("" : "+r"(n));
	t->key_len = n;
	t->pad = 0;
	__u64 ug = bpf_get_current_uid_gid();
	t->uid = (__u32)ug;
	t->gid = ug >> 32;
	t->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(t->comm, sizeof(t->comm));
	if (n <= WA_SUPP_KEY_MAX) /* size 0 is allowed */
		bpf_probe_read_kernel(t->key, n, key);
	long err = bpf_map_update_elem(&wa_suppress, sk, t, BPF_NOEXIST);
	return err == 0 || err == -WA_EEXIST;
}

/* The gate: true when the record (of `type`, identified by key bytes) is to be
 * written; false when it was counted as a repeat or shed (both counted). */
static __always_inline bool wa_admit(__u16 type, const void *key, __u32 key_len)
{
	if (!wa_budget_events)
		return true;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct wa_budget_key bk = { .tgid = tgid, .kind = type };
	__u64 now = bpf_ktime_get_boot_ns();
	struct wa_budget *b = bpf_map_lookup_elem(&wa_budget, &bk);
	if (!b) {
		struct wa_budget nb = { .win_start = now, .used = 0 };
		bpf_map_update_elem(&wa_budget, &bk, &nb, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&wa_budget, &bk);
		if (!b) {
			wa_count(&wa_loss, WA_LOSS_BUDGET_FULL);
			return true;
		}
	}
	__u64 win = b->win_start;
	if ((__s64)(now - win) >= (__s64)wa_budget_window_ns) {
		/* a new window; threads racing here only move its edge */
		b->win_start = now;
		b->used = 0;
		win = now;
	}
	if (__sync_fetch_and_add(&b->used, 1) < wa_budget_events)
		return true;

	struct wa_supp_key sk = { .tgid = tgid, .kind = type, .pad = 0, .hash = wa_hash_bytes(key, key_len) };
	struct wa_supp_val *v = bpf_map_lookup_elem(&wa_suppress, &sk);
	if (v && v->win_start == win) {
		__sync_fetch_and_add(&v->count, 1);
		if (!v->first_ns)
			v->first_ns = now;
		v->last_ns = now;
		wa_count(&wa_suppressed, type);
		return false;
	}
	if (v)
		v->win_start = win; /* written before, not in this window: written once more */
	else if (!wa_supp_insert(&sk, win, key, key_len))
		wa_count(&wa_loss, WA_LOSS_SUPPRESS_FULL);

	/* a key new in this window is written, but an over-budget process may not
	 * take the ring past its share: the others keep room */
	__u64 avail = bpf_ringbuf_query(&wa_events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&wa_events, BPF_RB_RING_SIZE);
	if (avail * 100 > size * wa_ring_share_pct) {
		wa_count(&wa_loss, WA_LOSS_SHED);
		wa_drop(type);
		return false;
	}
	return true;
}

/* A process's budgets go with it (its repeat counters are swept by user space). */
static __always_inline void wa_budget_forget(__u32 tgid)
{
	struct wa_budget_key bk = { .tgid = tgid, .kind = WA_EV_FILE_WRITE };
	if (!wa_budget_events)
		return;
	bpf_map_delete_elem(&wa_budget, &bk);
	bk.kind = WA_EV_DNS;
	bpf_map_delete_elem(&wa_budget, &bk);
	bk.kind = WA_EV_CONNECT;
	bpf_map_delete_elem(&wa_budget, &bk);
}

#endif
