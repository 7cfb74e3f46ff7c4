/* SPDX-License-Identifier: MIT */
/*
 * Attaching the programs, and the syscall hooks only while someone is traced.
 *
 * Syscall handlers are not attached at all: they sit in two program arrays
 * under their syscall numbers and run through the sys_enter/sys_exit
 * dispatchers (bpf/syscall.bpf.h). In targeted mode the dispatchers are
 * attached only while a traced tree exists or a spawn is about to create one:
 * every process on the host pays for each of its syscalls while they are, and
 * nothing while they are not. sched, signal and io_uring probes stay attached
 * for the sensor's life.
 *
 * Never missing a traced process's first actions: a root only enters the
 * traced set through user space (wa_loader_add_root, or the one-shot armed by
 * wa_loader_arm_spawn), and both attach the dispatchers before they return,
 * so the process is held (the fork has not happened yet) until its hooks
 * are live. Children join from a traced parent, which means the hooks are
 * already attached. They are detached again only from wa_loader_hooks_idle,
 * when the traced set is empty, no spawn is pending and nobody holds them;
 * all three change only under hooks_mu, so an attach cannot interleave.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "loader.h"
#include "loader_int.h"
#include "uprobe_attach.h"

#ifndef __x86_64__
#error "loader_hooks.c: the handler table uses x86_64 syscall numbers (as bpf/syscall.bpf.h does)"
#endif

/* Handler programs are wa_enter_NAME / wa_exit_NAME for these syscalls. */
#define SC(n) { #n, __NR_##n }
static const struct { const char *name; int nr; } wa_handled[] = {
	SC(openat), SC(open), SC(creat), SC(openat2), SC(unlinkat), SC(unlink),
	SC(renameat2), SC(renameat), SC(rename), SC(connect), SC(bind), SC(sendto),
	SC(write), SC(sendmsg), SC(sendmmsg), SC(writev), SC(read), SC(recvfrom),
	SC(recvmsg), SC(close), SC(listen), SC(accept), SC(accept4), SC(setuid),
	SC(setreuid), SC(setresuid), SC(setgid), SC(setregid), SC(setresgid), SC(ptrace), SC(fchmod),
};
#define N_HANDLED (sizeof(wa_handled) / sizeof(wa_handled[0]))

static const char *const dispatchers[2] = { "wa_sys_enter", "wa_sys_exit" };

/* The syscall number a handler serves and which table it goes in (0 enter,
 * 1 exit), or -1 when the program is not a handler. */
static int handler_nr(const struct wa_prog_status *st, int *table)
{
	const char *rest;
	if (!strcmp(st->section, "tp_btf/sys_enter") && !strncmp(st->name, "wa_enter_", 9)) {
		*table = 0;
		rest = st->name + 9;
	} else if (!strcmp(st->section, "tp_btf/sys_exit") && !strncmp(st->name, "wa_exit_", 8)) {
		*table = 1;
		rest = st->name + 8;
	} else {
		return -1;
	}
	size_t n = strlen(rest);
	if (n > 8 && !strcmp(rest + n - 8, "__nocast"))
		n -= 8; /* the probe-read twin of a handler (below) serves the same slot */
	for (size_t k = 0; k < N_HANDLED; k++)
		if (strlen(wa_handled[k].name) == n && !strncmp(rest, wa_handled[k].name, n))
			return wa_handled[k].nr;
	return -1;
}

/* bpf_rdonly_cast, which the open exits' direct-load walk calls
 * (bpf/sensitive.bpf.h), is in every kernel from 6.2; the release says so
 * without parsing the kernel's BTF (~45 ms). A kernel that reports 6.2+ but
 * lacks it fails those programs, and the capability table says so. */
static int kernel_has_rdonly_cast(void)
{
	struct utsname u;
	unsigned maj = 0, min = 0;
	if (uname(&u) || sscanf(u.release, "%u.%u", &maj, &min) != 2)
		return 0;
	return maj > 6 || (maj == 6 && min >= 2);
}

/* Of each handler and its ..._nocast twin, only one is loaded: the direct-
 * load one where the kernel has bpf_rdonly_cast, the probe-read one before.
 * The other is skipped (not loaded), with why. Run before the object loads. */
void wa_hooks_pick_variants(struct wa_loader *l)
{
	int cast = kernel_has_rdonly_cast();
	for (int i = 0; i < l->nprogs; i++) {
		struct wa_prog_status *st = &l->progs[i];
		size_t n = strlen(st->name);
		int nocast = n > 8 && !strcmp(st->name + n - 8, "__nocast");
		char twin[sizeof(st->name) + 8];
		snprintf(twin, sizeof(twin), "%s__nocast", st->name);
		int has_twin = !nocast && bpf_object__find_program_by_name(l->skel->obj, twin);
		if (!(nocast ? cast : has_twin && !cast))
			continue;
		struct bpf_program *p = bpf_object__find_program_by_name(l->skel->obj, st->name);
		if (p)
			bpf_program__set_autoload(p, false);
		st->skipped = 1;
		st->error = -ENOENT;
		snprintf(st->reason, sizeof(st->reason), "%s", nocast
			 ? "this kernel has bpf_rdonly_cast: its direct-load twin serves the syscall"
			 : "this kernel has no bpf_rdonly_cast (before 6.2): its ..._nocast twin serves the syscall");
	}
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static int attach_link(struct wa_loader *l, int i)
{
	struct wa_prog_status *st = &l->progs[i];
	struct bpf_program *p = bpf_object__find_program_by_name(l->skel->obj, st->name);
	struct bpf_link *link = p ? bpf_program__attach(p) : NULL;
	if (!link) {
		int err = p ? -errno : -ENOENT;
		st->error = err;
		snprintf(st->reason, sizeof(st->reason), "attach failed: %s", strerror(-err));
		return err;
	}
	l->links[i] = link;
	st->attached = 1;
	return 0;
}

/* Installs every loaded handler in its table and attaches every other
 * program (the dispatchers included, so the capability table says whether
 * they can attach). Lazy mode then detaches the dispatchers at the first
 * idle check. */
void wa_hooks_attach_all(struct wa_loader *l, int lazy)
{
	pthread_mutex_init(&l->hooks_mu, NULL);
	l->hooks_init = 1;
	l->hooks_lazy = lazy;
	l->disp[0] = l->disp[1] = -1;
	(void)wa_traced_bits_map(l); /* unmapped, wa_loader_add_root fails (-ENODEV): no root without its bit */
	int tabs[2] = { bpf_map__fd(l->skel->maps.wa_sys_enter_tab), bpf_map__fd(l->skel->maps.wa_sys_exit_tab) };
	for (int i = 0; i < l->nprogs; i++) {
		struct wa_prog_status *st = &l->progs[i];
		for (int d = 0; d < 2; d++)
			if (!strcmp(st->name, dispatchers[d]))
				l->disp[d] = i;
		if (!st->loaded)
			continue;
		int table;
		int nr = handler_nr(st, &table);
		if (nr < 0 && wa_uprobe_deferred(st->section)) { /* TLS uprobes: native/uprobe_attach.c, on demand */
			st->skipped = 1;
			snprintf(st->reason, sizeof(st->reason), "attached on demand to OpenSSL's SSL_write/SSL_read (--tls-metadata)");
			continue;
		}
		if (nr < 0) {
			attach_link(l, i);
			continue;
		}
		struct bpf_program *p = bpf_object__find_program_by_name(l->skel->obj, st->name);
		int fd = bpf_program__fd(p);
		__u32 key = nr;
		if (bpf_map_update_elem(tabs[table], &key, &fd, BPF_ANY)) {
			st->error = -errno;
			snprintf(st->reason, sizeof(st->reason), "cannot install in the dispatch table: %s", strerror(errno));
			continue;
		}
		st->attached = 1; /* live whenever its dispatcher is */
	}
	l->hooks_on = 1;
}

/* under hooks_mu */
static int hooks_attach_locked(struct wa_loader *l)
{
	if (l->hooks_final)
		return -ESHUTDOWN; /* detached for good: the sensor is closing */
	int rc = 0;
	for (int d = 0; d < 2; d++) {
		int i = l->disp[d];
		if (i < 0 || !l->progs[i].loaded || l->links[i])
			continue;
		int err = attach_link(l, i);
		if (err && !rc)
			rc = err;
	}
	l->hooks_on = 1;
	return rc;
}

int wa_loader_hooks_attach(struct wa_loader *l)
{
	pthread_mutex_lock(&l->hooks_mu);
	int rc = hooks_attach_locked(l);
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

static int traced_set_empty(struct wa_loader *l)
{
	__u32 key;
	return bpf_map_get_next_key(bpf_map__fd(l->skel->maps.wa_traced), NULL, &key) != 0;
}

int wa_loader_hooks_idle(struct wa_loader *l, int force)
{
	uint64_t now = mono_ns();
	/* polls come often under load; the check is a syscall, once per 50 ms is plenty */
	if (!force && now - l->hooks_checked_ns < 50000000ull)
		return 0;
	l->hooks_checked_ns = now;
	int detached = 0;
	pthread_mutex_lock(&l->hooks_mu);
	if (l->hooks_on && l->hooks_lazy && !l->hooks_hold && !l->spawn_pending && !l->skel->bss->wa_trace_all &&
	    traced_set_empty(l)) {
		for (int d = 0; d < 2; d++) {
			int i = l->disp[d];
			if (i >= 0 && l->links[i]) {
				bpf_link__destroy(l->links[i]);
				l->links[i] = NULL;
			}
		}
		l->hooks_on = 0;
		l->hooks_detaches++;
		detached = 1;
	}
	pthread_mutex_unlock(&l->hooks_mu);
	return detached;
}

int wa_loader_hooks_hold(struct wa_loader *l, int on)
{
	pthread_mutex_lock(&l->hooks_mu);
	int rc = 0;
	if (on) {
		l->hooks_hold++;
		rc = hooks_attach_locked(l);
	} else if (l->hooks_hold > 0) {
		l->hooks_hold--;
	}
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

void wa_loader_hooks_state(struct wa_loader *l, struct wa_hooks_state *out)
{
	pthread_mutex_lock(&l->hooks_mu);
	out->attached = l->hooks_on;
	out->lazy = l->hooks_lazy;
	out->held = l->hooks_hold;
	out->detaches = l->hooks_detaches;
	pthread_mutex_unlock(&l->hooks_mu);
}

int wa_loader_add_root(struct wa_loader *l, uint32_t tgid)
{
	struct wa_traced v = { .root_pid = tgid, .depth = 0 };
	pthread_mutex_lock(&l->hooks_mu);
	int rc = hooks_attach_locked(l);
	if (!rc)
		rc = wa_traced_bits_mark(l, tgid); /* membership before the scope entry (bpf/common.bpf.h) */
	if (!rc) {
		rc = bpf_map__update_elem(l->skel->maps.wa_traced, &tgid, sizeof(tgid), &v, sizeof(v), BPF_ANY);
		if (rc && !wa_loader_is_traced(l, tgid))
			wa_traced_bits_unmark(l, tgid); /* not added: not a member */
	}
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

int wa_loader_arm_spawn(struct wa_loader *l, uint32_t parent_tgid)
{
	pthread_mutex_lock(&l->hooks_mu);
	int rc = hooks_attach_locked(l);
	if (!rc) {
		/* pending until disarmed: by then the fork has put the child in the
		 * traced set (the kernel clears the one-shot a moment before it adds
		 * the child, so the one-shot alone cannot say "nothing is coming") */
		l->spawn_pending = 1;
		__atomic_store_n(&l->skel->bss->wa_spawn_parent, parent_tgid, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

uint32_t wa_loader_disarm_spawn(struct wa_loader *l)
{
	pthread_mutex_lock(&l->hooks_mu);
	uint32_t left = __atomic_exchange_n(&l->skel->bss->wa_spawn_parent, 0, __ATOMIC_SEQ_CST);
	l->spawn_pending = 0;
	pthread_mutex_unlock(&l->hooks_mu);
	return left;
}

int wa_loader_set_trace_all(struct wa_loader *l, int on)
{
	pthread_mutex_lock(&l->hooks_mu);
	int rc = on ? hooks_attach_locked(l) : 0;
	if (!rc)
		l->skel->bss->wa_trace_all = on ? 1 : 0;
	pthread_mutex_unlock(&l->hooks_mu);
	return rc;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* A syscall tracepoint's detach waits out an RCU grace period; there are few
 * left (none in bpf/ today), but from parallel threads the waits overlap. */
static void destroy_links(struct wa_loader *l)
{
	pthread_t th[WA_MAX_PROGS];
	int started[WA_MAX_PROGS] = { 0 };
	for (int i = 0; i < l->nprogs; i++) {
		if (!l->links[i])
			continue;
		started[i] = pthread_create(&th[i], NULL, destroy_link, l->links[i]) == 0;
		if (!started[i])
			bpf_link__destroy(l->links[i]);
		l->links[i] = NULL;
	}
	for (int i = 0; i < l->nprogs; i++)
		if (started[i])
			pthread_join(th[i], NULL);
}

void wa_loader_detach(struct wa_loader *l)
{
	if (!l)
		return;
	wa_uprobe_detach_all(l); /* the on-demand TLS uprobes go with the rest */
	if (!l->hooks_init) {
		destroy_links(l);
		return;
	}
	pthread_mutex_lock(&l->hooks_mu);
	destroy_links(l);
	l->hooks_on = 0;
	l->hooks_final = 1;
	wa_traced_bits_unmap(l);
	pthread_mutex_unlock(&l->hooks_mu);
}
