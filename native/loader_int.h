/* SPDX-License-Identifier: MIT */
/* The loader's state, shared by loader.c (load, attach, poll, close) and
 * loader_stats.c (counters and the loss-accounting maps). */
#ifndef WA_LOADER_INT_H
#define WA_LOADER_INT_H

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
};

#endif
