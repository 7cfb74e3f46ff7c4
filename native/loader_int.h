/* SPDX-License-Identifier: MIT */
/* The loader's state, shared by loader.c (load, poll, close), loader_hooks.c
 * (attach, lazy syscall hooks, traced roots), loader_maps.c (traced and
 * sensitive sets) and loader_stats.c (counters and the loss-accounting maps). */
#ifndef WA_LOADER_INT_H
#define WA_LOADER_INT_H

#include <pthread.h>
#include <stdint.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "witness.skel.h"

#define WA_MAX_PROGS 96

struct wa_loader {
	struct witness_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[WA_MAX_PROGS];
	struct wa_prog_status progs[WA_MAX_PROGS];
	int nprogs;
	wa_record_fn fn;
	void *ctx;
	int ncpus;
	int inject_poll_n, inject_poll_err;
	/* syscall hooks (loader_hooks.c); hooks_mu guards all of these */
	pthread_mutex_t hooks_mu;
	int hooks_init;     /* hooks_mu initialised */
	int hooks_lazy;     /* targeted mode: dispatchers attached only while wanted */
	int hooks_on;       /* dispatchers attached now */
	int hooks_hold;     /* holders keeping them attached (wa_loader_hooks_hold) */
	int hooks_final;    /* wa_loader_detach ran: never attach again */
	int spawn_pending;  /* armed and not yet disarmed */
	int disp[2];        /* progs[] index of the sys_enter / sys_exit dispatcher */
	uint64_t hooks_detaches;
	uint64_t hooks_checked_ns;
	/* wa_traced_bits mapped here (loader_maps.c); NULL once detached. Under
	 * hooks_mu, like every change of the traced set from user space. */
	uint64_t *traced_bits;
};

/* loader_hooks.c: installs handlers, attaches the rest (at open) */
void wa_hooks_attach_all(struct wa_loader *l, int lazy);
void wa_hooks_pick_variants(struct wa_loader *l);

/* loader_maps.c, under hooks_mu: the traced set's membership bits
 * (bpf/common.bpf.h). map: 0 or -errno; mark: set before an insert into
 * wa_traced; unmark: clear after a delete. */
int wa_traced_bits_map(struct wa_loader *l);
void wa_traced_bits_unmap(struct wa_loader *l);
int wa_traced_bits_mark(struct wa_loader *l, uint32_t tgid);
void wa_traced_bits_unmark(struct wa_loader *l, uint32_t tgid);

#endif
