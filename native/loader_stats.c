/* SPDX-License-Identifier: MIT */
/* Counters and the loss-accounting maps, read from user space: per-type
 * emitted/dropped, loss reasons, repeats counted, top dropping processes, and
 * the sweep that turns repeat counters into summaries. */
#include <errno.h>
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

int wa_loader_sweep_suppress(struct wa_loader *l, uint64_t delete_before_ns, wa_supp_fn fn, void *ctx)
{
	int fd = bpf_map__fd(l->skel->maps.wa_suppress);
	size_t cap = 1024, n = 0;
	struct wa_supp_key *keys = malloc(cap * sizeof(*keys)), *prev = NULL, next;
	if (!keys)
		return -ENOMEM;
	/* keys first: deleting while walking would restart get_next_key */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (n == cap) {
			struct wa_supp_key *k2 = realloc(keys, 2 * cap * sizeof(*keys));
			if (!k2)
				break;
			keys = k2;
			cap *= 2;
		}
		keys[n] = next;
		prev = &keys[n++];
	}
	struct wa_supp_val v;
	for (size_t i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(fd, &keys[i], &v))
			continue;
		uint64_t active = v.last_ns > v.win_start ? v.last_ns : v.win_start;
		/* lookup-and-delete reads the final value in the same step as it
		 * removes the counter */
		if (active < delete_before_ns && bpf_map_lookup_and_delete_elem(fd, &keys[i], &v) == 0) {
			fn(ctx, &keys[i], &v, 1);
			continue;
		}
		fn(ctx, &keys[i], &v, 0);
	}
	free(keys);
	return (int)n;
}

void wa_loader_counters(struct wa_loader *l, uint64_t emitted[WA_EV_MAX], uint64_t dropped[WA_EV_MAX])
{
	percpu_sums(l, l->skel->maps.wa_emitted, emitted, WA_EV_MAX);
	percpu_sums(l, l->skel->maps.wa_dropped, dropped, WA_EV_MAX);
}
