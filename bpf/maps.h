/* SPDX-License-Identifier: MIT */
/*
 * Values of the loss-accounting maps that user space reads (not wire records:
 * they never travel in the ring, so they are not part of the layout table).
 * Included by BPF C (with vmlinux.h types) and by the loader.
 */
#ifndef AGENT_WITNESS_MAPS_H
#define AGENT_WITNESS_MAPS_H

#include "events.h"

/* Loss counters (the `wa_loss` map, indexed by this enum): every way a probe
 * can fail to record, or to account per process, that is not a ring drop. */
enum wa_loss_counter {
	WA_LOSS_SCOPE_FULL = 0,     /* a child could not join wa_traced: it escaped (a scope_overflow names it) */
	WA_LOSS_PENDING = 1,        /* syscall entry state could not be stored: that syscall's exit is not recorded */
	WA_LOSS_DROPPERS_FULL = 2,  /* wa_drop_pids full: a ring drop not attributed to its process */
	WA_LOSS_SUPPRESS_FULL = 3,  /* wa_suppress full: a repeat was written instead of counted (nothing lost) */
	WA_LOSS_BUDGET_FULL = 4,    /* wa_budget full: a process ran without a budget (nothing lost) */
	WA_LOSS_SHED = 5,           /* an over-budget process's record refused at the ring reserve (also in wa_dropped) */
	WA_LOSS_MAX = 8,
};

/* Bounds of the loss-accounting maps (defaults; the loader may resize). */
#define WA_TRACED_MAX    65536  /* wa_traced: processes in traced trees */
#define WA_DROPPERS_MAX  1024   /* wa_drop_pids: processes with ring drops */
#define WA_BUDGET_MAX    16384  /* wa_budget: (process, kind) budgets */
#define WA_SUPPRESS_MAX  16384  /* wa_suppress: (process, kind, key) repeat counters */
#define WA_SUPP_KEY_MAX  256    /* bytes of a suppressed key kept for its summary */

/* Fairness maps, read by user space (not wire records). A process past its
 * budget for a high-volume kind has its repeats counted here, not written;
 * user space turns the counts into sensor.suppressed summaries. */
struct wa_budget_key {
	__u32 tgid;
	__u32 kind;          /* wa_event_type */
};

struct wa_budget {
	__u64 win_start;     /* CLOCK_BOOTTIME ns the current window began */
	__u64 used;          /* records of this kind in this window */
};

struct wa_supp_key {
	__u32 tgid;
	__u16 kind;          /* wa_event_type */
	__u16 pad;
	__u64 hash;          /* keyed hash of the key bytes (path, address, DNS question) */
};

struct wa_supp_val {
	__u64 count;         /* repeats counted; only ever grows */
	__u64 win_start;     /* the budget window this key was last written in */
	__u64 first_ns;      /* first and last repeat counted */
	__u64 last_ns;
	__u32 key_full_len;  /* length of the whole key */
	__u16 key_len;       /* bytes of it kept in key[] */
	__u16 pad;
	__u32 uid;           /* of the process when the counter began */
	__u32 gid;
	__u64 cgroup_id;
	char comm[WA_COMM_LEN];
	__u8 key[WA_SUPP_KEY_MAX];
};

/* Value of wa_drop_pids, keyed by tgid: ring drops of one process. */
struct wa_drop_val {
	__u64 count;
	char comm[WA_COMM_LEN];
};

#endif /* AGENT_WITNESS_MAPS_H */
