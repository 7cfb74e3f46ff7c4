/* SPDX-License-Identifier: MIT */
/*
 * Loads witness.bpf.o program by program so one program the verifier rejects
 * (or a tracepoint a kernel lacks) costs that capability, not the sensor, and
 * the capability table says exactly what attached and why anything did not.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include "loader.h"
#include "loader_int.h"
#include "uprobe_attach.h"

#define WA_VLOG_SIZE (256 * 1024)


/* libbpf's own chatter is noise for users; verifier logs are captured per program */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("WITNESS_LIBBPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void set_reason(struct wa_prog_status *st, const char *msg)
{
	snprintf(st->reason, sizeof(st->reason), "%s", msg);
}

/* The last non-empty line of a verifier log is the one that says why. */
static void reason_from_log(struct wa_prog_status *st, const char *log)
{
	const char *end = log + strlen(log);
	while (end > log && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > log && start[-1] != '\n')
		start--;
	/* "processed N insns" is a summary; the reason is the line before it */
	if (end - start > 10 && memcmp(start, "processed ", 10) == 0 && start > log) {
		end = start - 1;
		start = end;
		while (start > log && start[-1] != '\n')
			start--;
	}
	int n = (int)(end - start);
	if (n > (int)sizeof(st->reason) - 1)
		n = sizeof(st->reason) - 1;
	if (n > 0)
		snprintf(st->reason, sizeof(st->reason), "%.*s", n, start);
}

/* Programs on a tracepoint that only some kernels have, each with an
 * alternative on the others (io_uring_submit_sqe became io_uring_submit_req
 * in 6.3). The one whose tracepoint this kernel lacks is not loaded at all:
 * left in, it would fail the whole-object load and send every start down
 * the slow one-by-one path. */
static const struct { const char *prog, *tracepoint; } optional_tp[] = {
	{ "wa_io_uring_submit", "io_uring_submit_req" },
	{ "wa_io_uring_submit_sqe", "io_uring_submit_sqe" },
};
#define N_OPTIONAL_TP (sizeof(optional_tp) / sizeof(optional_tp[0]))

/* 1 when this kernel has the io_uring tracepoint: tracefs says so in
 * microseconds; only without tracefs is the kernel's BTF parsed (~45 ms) for
 * its typedef btf_trace_NAME. */
static int kernel_has_tracepoint(struct btf **vmlinux, const char *tp)
{
	static const char *const roots[] = { "/sys/kernel/tracing/events/io_uring", "/sys/kernel/debug/tracing/events/io_uring" };
	char path[256];
	for (int i = 0; i < 2; i++) {
		if (access(roots[i], F_OK))
			continue;
		snprintf(path, sizeof(path), "%s/%s", roots[i], tp);
		return access(path, F_OK) == 0;
	}
	if (!*vmlinux)
		*vmlinux = btf__load_vmlinux_btf();
	snprintf(path, sizeof(path), "btf_trace_%s", tp);
	return *vmlinux && btf__find_by_name_kind(*vmlinux, path, BTF_KIND_TYPEDEF) > 0;
}

/* marks optional programs whose tracepoint is missing: not loaded, with why */
static void skip_absent_tracepoints(struct wa_loader *l, struct witness_bpf *s)
{
	struct btf *vmlinux = NULL;
	for (size_t k = 0; k < N_OPTIONAL_TP; k++) {
		if (kernel_has_tracepoint(&vmlinux, optional_tp[k].tracepoint))
			continue;
		for (int i = 0; i < l->nprogs; i++) {
			if (strcmp(l->progs[i].name, optional_tp[k].prog))
				continue;
			struct bpf_program *p = bpf_object__find_program_by_name(s->obj, optional_tp[k].prog);
			if (p)
				bpf_program__set_autoload(p, false);
			l->progs[i].skipped = 1;
			l->progs[i].error = -ENOENT;
			snprintf(l->progs[i].reason, sizeof(l->progs[i].reason),
				 "this kernel has no tracepoint %s (an alternative program covers it)",
				 optional_tp[k].tracepoint);
		}
	}
	btf__free(vmlinux); /* NULL-safe */
}

static struct witness_bpf *open_skel(const struct wa_loader_opts *o)
{
	struct witness_bpf *s = witness_bpf__open();
	if (!s)
		return NULL;
	bpf_map__set_max_entries(s->maps.wa_events, o->ring_bytes);
	if (o->traced_max)
		bpf_map__set_max_entries(s->maps.wa_traced, o->traced_max);
	if (o->conn_owners_max)
		bpf_map__set_max_entries(s->maps.wa_conn_owners, o->conn_owners_max);
	return s;
}

/* Try to load a single program on its own to learn whether, and why, it fails. */
static void probe_one(const struct wa_loader_opts *o, const char *name, struct wa_prog_status *st)
{
	struct witness_bpf *s = open_skel(o);
	struct bpf_program *p;
	char *log = calloc(1, WA_VLOG_SIZE);
	if (!s || !log) {
		st->error = -ENOMEM;
		set_reason(st, "out of memory");
		goto out;
	}
	bpf_object__for_each_program(p, s->obj)
		bpf_program__set_autoload(p, strcmp(bpf_program__name(p), name) == 0);
	p = bpf_object__find_program_by_name(s->obj, name);
	/* log level 0 + our buffer: libbpf verifies once without a log and only on
	 * failure retries with level 1 into it. Asking for level 1 up front makes
	 * kernels >= 6.4 fail a program that verifies fine with ENOSPC whenever its
	 * log overflows the buffer (and formatting the log slows verification). */
	bpf_program__set_log_buf(p, log, WA_VLOG_SIZE);
	int err = witness_bpf__load(s);
	st->loaded = err == 0;
	if (err) {
		st->error = err;
		reason_from_log(st, log);
		if (!st->reason[0])
			snprintf(st->reason, sizeof(st->reason), "load failed: %s", strerror(-err));
	}
out:
	free(log);
	if (s)
		witness_bpf__destroy(s);
}

int wa_loader_open(struct wa_loader **out, const struct wa_loader_opts *opts, wa_record_fn fn, void *ctx,
		   char *err, size_t errlen)
{
	struct wa_loader_opts o = *opts;
	struct bpf_program *p;
	struct wa_loader *l;
	int rc;

	if (!o.ring_bytes)
		o.ring_bytes = 16u << 20;
	if (!o.wakeup_bytes)
		o.wakeup_bytes = 256u << 10;
	libbpf_set_print(quiet_print);

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fn = fn;
	l->ctx = ctx;
	l->ncpus = libbpf_num_possible_cpus();

	l->skel = open_skel(&o);
	if (!l->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the embedded BPF object: %s", strerror(errno));
		goto fail;
	}
	bpf_object__for_each_program(p, l->skel->obj) {
		if (l->nprogs >= WA_MAX_PROGS)
			break;
		struct wa_prog_status *st = &l->progs[l->nprogs++];
		snprintf(st->name, sizeof(st->name), "%s", bpf_program__name(p));
		snprintf(st->section, sizeof(st->section), "%s", bpf_program__section_name(p));
	}

	/* Without a buffer of ours, a failing program makes libbpf retry with a log
	 * that it doubles on every ENOSPC: a 1M-instruction rejection is then
	 * verified again and again. Reasons come from probe_one anyway. */
	skip_absent_tracepoints(l, l->skel);
	wa_hooks_pick_variants(l);
	char *full_load_log = calloc(1, 4096);
	if (full_load_log)
		bpf_object__for_each_program(p, l->skel->obj)
			bpf_program__set_log_buf(p, full_load_log, 4096);
	rc = witness_bpf__load(l->skel);
	free(full_load_log);
	if (rc) {
		/* Slow path: find the culprits one by one, then load without them. */
		witness_bpf__destroy(l->skel);
		for (int i = 0; i < l->nprogs; i++)
			if (!l->progs[i].skipped)
				probe_one(&o, l->progs[i].name, &l->progs[i]);
		l->skel = open_skel(&o);
		if (!l->skel) {
			rc = -errno;
			snprintf(err, errlen, "cannot reopen the BPF object: %s", strerror(errno));
			goto fail;
		}
		int usable = 0;
		for (int i = 0; i < l->nprogs; i++) {
			p = bpf_object__find_program_by_name(l->skel->obj, l->progs[i].name);
			bpf_program__set_autoload(p, l->progs[i].loaded);
			usable += l->progs[i].loaded;
		}
		rc = usable ? witness_bpf__load(l->skel) : -ENOTSUP;
		if (rc) {
			snprintf(err, errlen, "no program could be loaded (%s); run `witness probe` for details",
				 strerror(-rc));
			goto fail;
		}
	} else {
		for (int i = 0; i < l->nprogs; i++)
			l->progs[i].loaded = !l->progs[i].skipped;
	}

	l->skel->bss->wa_self_tgid = getpid();
	l->skel->bss->wa_trace_all = o.trace_all ? 1 : 0;
	l->skel->bss->wa_wakeup_bytes = o.wakeup_bytes;
	l->skel->bss->wa_budget_events = o.budget_events < 0 ? 0 : o.budget_events ? (uint64_t)o.budget_events : WA_DEFAULT_BUDGET;
	l->skel->bss->wa_budget_window_ns = o.budget_window_ns ? o.budget_window_ns : WA_DEFAULT_BUDGET_WINDOW_NS;
	l->skel->bss->wa_ring_share_pct = o.ring_share_pct ? o.ring_share_pct : WA_DEFAULT_RING_SHARE_PCT;
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
	l->skel->bss->wa_hash_seed = seed;

	wa_hooks_attach_all(l, !o.trace_all && !o.eager_hooks);

	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.wa_events), (ring_buffer_sample_fn)fn, ctx, NULL);
	if (!l->rb) {
		rc = -errno;
		snprintf(err, errlen, "cannot map the ring buffer: %s", strerror(errno));
		goto fail;
	}
	*out = l;
	return 0;
fail:
	wa_loader_close(l);
	return rc ? rc : -EINVAL;
}

int wa_loader_prog_count(const struct wa_loader *l) { return l->nprogs; }

const struct wa_prog_status *wa_loader_prog(const struct wa_loader *l, int i)
{
	return i >= 0 && i < l->nprogs ? &l->progs[i] : NULL;
}

void wa_loader_inject_poll_errors(struct wa_loader *l, int n, int err)
{
	__atomic_store_n(&l->inject_poll_err, err, __ATOMIC_SEQ_CST);
	__atomic_store_n(&l->inject_poll_n, n, __ATOMIC_SEQ_CST);
}

int wa_loader_poll(struct wa_loader *l, int timeout_ms)
{
	if (__atomic_load_n(&l->inject_poll_n, __ATOMIC_SEQ_CST) > 0) {
		__atomic_fetch_sub(&l->inject_poll_n, 1, __ATOMIC_SEQ_CST);
		return -l->inject_poll_err;
	}
	wa_loader_hooks_idle(l, 0);
	int n = ring_buffer__poll(l->rb, timeout_ms);
	if (n < 0 && n != -EINTR)
		return n;
	/* no-wakeup submissions don't wake epoll: always drain what is there */
	int m = ring_buffer__consume(l->rb);
	if (m < 0)
		return m;
	return (n > 0 ? n : 0) + m;
}

int wa_loader_ring_fd(struct wa_loader *l)
{
	return ring_buffer__epoll_fd(l->rb);
}

void wa_loader_close(struct wa_loader *l)
{
	if (!l)
		return;
	wa_loader_detach(l);
	wa_uprobe_forget(l);
	if (l->hooks_init)
		pthread_mutex_destroy(&l->hooks_mu);
	if (l->rb)
		ring_buffer__free(l->rb);
	if (l->skel)
		witness_bpf__destroy(l->skel);
	free(l);
}

void wa_clock_pair(uint64_t *boot_ns, uint64_t *real_ns)
{
	struct timespec b, r, b2;
	/* bracket the realtime read with two boottime reads and take their midpoint */
	clock_gettime(CLOCK_BOOTTIME, &b);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_BOOTTIME, &b2);
	uint64_t b1n = (uint64_t)b.tv_sec * 1000000000ull + b.tv_nsec;
	uint64_t b2n = (uint64_t)b2.tv_sec * 1000000000ull + b2.tv_nsec;
	*boot_ns = b1n + (b2n - b1n) / 2;
	*real_ns = (uint64_t)r.tv_sec * 1000000000ull + r.tv_nsec;
}
