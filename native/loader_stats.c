/* SPDX-License-Identifier: MIT */
/* Counters and the loss-accounting maps, read from user space: per-type
 * emitted/dropped, loss reasons, repeats counted, top dropping processes, and
 * the sweep that turns repeat counters into summaries. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include "loader_int.h"

static void percpu_sums(struct wa_loader *l, struct bpf_map *m, uint64_t *out, uint32_t n)
{
	uint64_t *vals = calloc(l->ncpus, sizeof(uint64_t));
	for (uint32_t k = 0; k < n; k++) {
		out[k] = 0;
		if (vals && !bpf_map__lookup_elem(m, &k, sizeof(k), vals, sizeof(uint64_t) * l->ncpus, 0))
			for (int c = 0; c < l->ncpus; c++)
				out[k] += vals[c];
	}
	free(vals);
}

void wa_loader_loss(struct wa_loader *l, uint64_t loss[WA_LOSS_MAX])
{
	percpu_sums(l, l->skel->maps.wa_loss, loss, WA_LOSS_MAX);
}

void wa_loader_suppressed(struct wa_loader *l, uint64_t suppressed[WA_EV_MAX])
{
	percpu_sums(l, l->skel->maps.wa_suppressed, suppressed, WA_EV_MAX);
}

int wa_loader_droppers(struct wa_loader *l, struct wa_dropper *out, int max)
{
	int fd = bpf_map__fd(l->skel->maps.wa_drop_pids), n = 0;
	uint32_t key, next;
	uint32_t *prev = NULL;
	struct wa_drop_val v;
	while (max > 0 && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		/* insertion into the top-`max`, most first */
		int at = n < max ? n : max - 1;
		if (n == max && out[at].count >= v.count)
			continue;
		while (at > 0 && out[at - 1].count < v.count) {
			out[at] = out[at - 1];
			at--;
		}
		out[at].pid = key;
		out[at].count = v.count;
		memcpy(out[at].comm, v.comm, sizeof(out[at].comm));
		out[at].comm[WA_COMM_LEN - 1] = 0;
		if (n < max)
			n++;
	}
	return n;
}

/* One counter of a sweep: an idle one is deleted, its final value read in the
 * same step (lookup-and-delete), so no repeat counted after the read is lost;
 * the rest are reported. A counter with no repeats has nothing to report: it
 * is not passed on (most counters of a burst of distinct keys, e.g. a tar
 * extraction's paths, never count one). */
static void sweep_one(int fd, const struct wa_supp_key *k, const struct wa_supp_val *v,
		      uint64_t delete_before_ns, wa_supp_fn fn, void *ctx)
{
	uint64_t active = v->last_ns > v->win_start ? v->last_ns : v->win_start;
	if (active < delete_before_ns) {
		struct wa_supp_key key = *k;
		struct wa_supp_val final;
		if (bpf_map_lookup_and_delete_elem(fd, &key, &final) == 0) {
			if (final.count > 0)
				fn(ctx, &key, &final, 1);
			return;
		}
	}
	if (v->count > 0)
		fn(ctx, k, v, 0);
}

#define SWEEP_CHUNK 1024

/* Every second, with up to WA_SUPPRESS_MAX counters: read by batch lookups (a
 * syscall per SWEEP_CHUNK counters) instead of two syscalls per counter, which
 * cost a host-wide daemon ~0.2 s of CPU per tar extraction of 15k files
 * (2026-12-02 profile). Batch lookups are 5.6+; the probes need bpf_loop (5.17)
 * anyway. Deleting counters already returned does not disturb the batch
 * cursor, which points at the next bucket. */
int wa_loader_sweep_suppress(struct wa_loader *l, uint64_t delete_before_ns, wa_supp_fn fn, void *ctx)
{
	int fd = bpf_map__fd(l->skel->maps.wa_suppress);
	struct wa_supp_key *keys = malloc(SWEEP_CHUNK * sizeof(*keys));
	struct wa_supp_val *vals = malloc(SWEEP_CHUNK * sizeof(*vals));
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	uint32_t cursor = 0, next_cursor = 0;
	int walked = 0, err = 0;
	for (bool first = true;; first = false) {
		uint32_t count = SWEEP_CHUNK;
		err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &next_cursor, keys, vals, &count, &opts);
		if (err && err != -ENOENT)
			break;
		for (uint32_t i = 0; i < count; i++)
			sweep_one(fd, &keys[i], &vals[i], delete_before_ns, fn, ctx);
		walked += (int)count;
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		cursor = next_cursor;
	}
	free(keys);
	free(vals);
	return err ? err : walked;
}

void wa_loader_counters(struct wa_loader *l, uint64_t emitted[WA_EV_MAX], uint64_t dropped[WA_EV_MAX])
{
	percpu_sums(l, l->skel->maps.wa_emitted, emitted, WA_EV_MAX);
	percpu_sums(l, l->skel->maps.wa_dropped, dropped, WA_EV_MAX);
}
