/* SPDX-License-Identifier: MIT */
/*
 * The sensor's loader: plain C over the libbpf skeleton, shared by the Node
 * addon (native/addon.cc), the C benchmark consumer and the static kernel
 * tester, so the kernel-facing part is the same code everywhere.
 */
#ifndef WA_LOADER_H
#define WA_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include "../bpf/events.h"
#include "../bpf/maps.h"

#ifdef __cplusplus
extern "C" {
#endif

struct wa_loader;

struct wa_loader_opts {
	size_t ring_bytes;      /* power of two; 0 = 16 MiB */
	uint64_t wakeup_bytes;  /* wake the consumer when this much waits; 0 = 256 KiB */
	int trace_all;          /* host-wide mode */
	uint32_t traced_max;    /* wa_traced entries; 0 = WA_TRACED_MAX */
	uint32_t conn_owners_max; /* wa_conn_owners entries; 0 = the program's (tests shrink it) */
	/* fairness (bpf/budget.bpf.h): records per process, per kind, per window
	 * before repeats are counted instead of written; 0 = WA_DEFAULT_BUDGET,
	 * negative = no budget */
	int64_t budget_events;
	uint64_t budget_window_ns; /* 0 = WA_DEFAULT_BUDGET_WINDOW_NS */
	uint32_t ring_share_pct;   /* 0 = WA_DEFAULT_RING_SHARE_PCT */
	/* keep the syscall hooks attached for the sensor's life even in targeted
	 * mode (the default attaches them only while a traced tree exists) */
	int eager_hooks;
};

#define WA_DEFAULT_BUDGET 1024
#define WA_DEFAULT_BUDGET_WINDOW_NS 1000000000ull
#define WA_DEFAULT_RING_SHARE_PCT 50
/* consecutive failed polls after which the consumer gives up (fatal) */
#define WA_POLL_ERRORS_FATAL 64

/* One process with ring drops (wa_drop_pids). */
struct wa_dropper {
	uint32_t pid;
	uint64_t count;
	char comm[WA_COMM_LEN];
};

/* One repeat counter (wa_suppress): deleted = it was removed in this sweep,
 * so its count is final. */
typedef void (*wa_supp_fn)(void *ctx, const struct wa_supp_key *k, const struct wa_supp_val *v, int deleted);

/* One row of the capability table. */
struct wa_prog_status {
	char name[64];
	char section[96];
	int loaded;             /* verifier accepted it */
	int skipped;            /* not tried: its tracepoint is absent here (an alternative covers it) */
	int attached;
	int error;              /* -errno of the failing step, 0 when fine */
	char reason[192];       /* last verifier/attach message */
};

/* record callback: data points into the ring, valid only during the call */
typedef int (*wa_record_fn)(void *ctx, const void *data, size_t size);

int wa_loader_open(struct wa_loader **out, const struct wa_loader_opts *opts, wa_record_fn fn, void *ctx,
		   char *err, size_t errlen);
int wa_loader_prog_count(const struct wa_loader *l);
const struct wa_prog_status *wa_loader_prog(const struct wa_loader *l, int i);

/* Adding a root and arming a spawn attach the syscall hooks first (both
 * return -errno, and change nothing, when that fails): the new process
 * cannot act before its hooks are live. */
int wa_loader_add_root(struct wa_loader *l, uint32_t tgid);
int wa_loader_remove(struct wa_loader *l, uint32_t tgid);
int wa_loader_is_traced(struct wa_loader *l, uint32_t tgid);
/* the next process forked by parent_tgid becomes a traced root, before it runs */
int wa_loader_arm_spawn(struct wa_loader *l, uint32_t parent_tgid);
/* still armed (nonzero) when no fork consumed it; disarms in the same step.
 * Call it after the fork: until then the hooks stay attached for the spawn. */
uint32_t wa_loader_disarm_spawn(struct wa_loader *l);
int wa_loader_set_trace_all(struct wa_loader *l, int on);

/* Syscall hooks in targeted mode (native/loader_hooks.c): attached while a
 * traced tree exists, a spawn is armed or a holder holds them; detached by
 * wa_loader_hooks_idle (every poll runs it, at most once per 50 ms; force
 * skips that limit) once none of those is true. Returns 1 when it detached. */
#define WA_LOADER_LAZY_HOOKS 1
int wa_loader_hooks_idle(struct wa_loader *l, int force);
int wa_loader_hooks_attach(struct wa_loader *l);
/* on: one more holder (attaches now); off: one fewer. A resident sensor
 * holds them while agents come and go, so none pays an attach. */
int wa_loader_hooks_hold(struct wa_loader *l, int on);
struct wa_hooks_state {
	int attached;       /* the dispatchers are attached now */
	int lazy;           /* targeted mode, attached only while wanted */
	int held;           /* holders */
	uint64_t detaches;  /* idle detaches so far */
};
void wa_loader_hooks_state(struct wa_loader *l, struct wa_hooks_state *out);
/* sensitive set: kernel dev_t (MKDEV(major, minor) = major << 20 | minor) + inode */
int wa_loader_add_sensitive(struct wa_loader *l, uint32_t kdev, uint64_t ino);
void wa_loader_clear_sensitive(struct wa_loader *l);
/* a sensitive name under a directory: matches whatever inode holds that name later */
int wa_loader_add_sensitive_name(struct wa_loader *l, uint32_t parent_kdev, uint64_t parent_ino, const char *name);

/* The kernel's identity of each of this process's open fds (bpf/identity.bpf.h:
 * the dentry's superblock s_dev and inode, as the sensitive match computes them). */
struct wa_identity {
	uint32_t fd;
	uint32_t dev;
	uint64_t ino;
};
/* fills up to max rows; returns the number of fds seen, or -errno (-ENOTSUP without the iterator) */
int wa_loader_kernel_identities(struct wa_loader *l, struct wa_identity *rows, int max);

/* Waits up to timeout_ms, then drains whatever is there (BPF_RB_NO_WAKEUP
 * records never wake us, so a timeout must still consume). Returns records
 * handed to the callback, or -errno. */
int wa_loader_poll(struct wa_loader *l, int timeout_ms);
/* the ring's epoll fd (readable when the kernel woke the consumer), for a poller that waits on more than the ring */
int wa_loader_ring_fd(struct wa_loader *l);

/* per-type totals summed over CPUs */
void wa_loader_counters(struct wa_loader *l, uint64_t emitted[WA_EV_MAX], uint64_t dropped[WA_EV_MAX]);
/* loss counters by enum wa_loss_counter; repeats counted per type */
void wa_loader_loss(struct wa_loader *l, uint64_t loss[WA_LOSS_MAX]);
void wa_loader_suppressed(struct wa_loader *l, uint64_t suppressed[WA_EV_MAX]);
/* the processes with the most ring drops, most first; returns how many (<= max) */
int wa_loader_droppers(struct wa_loader *l, struct wa_dropper *out, int max);
/* Hands every repeat counter to fn; those whose last activity (window start or
 * last repeat) is before delete_before_ns are deleted as they are read.
 * Returns the number of counters seen, or -errno. */
int wa_loader_sweep_suppress(struct wa_loader *l, uint64_t delete_before_ns, wa_supp_fn fn, void *ctx);

/* Detaches every program (waiting out the kernel's RCU grace periods, in
 * parallel): afterwards no probe can emit, so a drain empties the ring for
 * good and the counters are final. Idempotent; close() does it too. */
void wa_loader_detach(struct wa_loader *l);

/* Test hook: the next n polls fail with -err (a real poll failure cannot be
 * produced on demand). */
void wa_loader_inject_poll_errors(struct wa_loader *l, int n, int err);

void wa_loader_close(struct wa_loader *l);

/* CLOCK_BOOTTIME and CLOCK_REALTIME sampled back to back, in ns */
void wa_clock_pair(uint64_t *boot_ns, uint64_t *real_ns);

#ifdef __cplusplus
}
#endif
#endif
