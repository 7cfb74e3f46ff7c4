/* SPDX-License-Identifier: MIT */
/*
 * witness-tester: a static binary that loads the sensor's real BPF object with
 * the real loader, prints the capability table and drives every scenario the
 * Node kernel tests cover, decoding records with events.h directly. Static so
 * one build runs unchanged on the host and inside a busybox initramfs on any
 * kernel of the matrix.
 *
 *   witness-tester run          capability table + scenarios, then DONE
 *   witness-tester probe        capability table only
 *   witness-tester act NAME ... what a traced child does (internal)
 *
 * Output lines (parsed by scripts/kernel-matrix.sh):
 *   KERNEL <release>
 *   CAP <prog> attached|loaded|failed [reason]
 *   SCENARIO <name> PASS|FAIL <detail>
 *   DONE pass=N fail=M
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "tester.h"

struct t_rec *t_recs;
size_t t_nrecs;
static size_t t_cap;
uint64_t t_decode_errors;
char t_self[4096];
char t_workdir[4096];

#define T_RUN_TIMEOUT_S 60.0 /* TCG guests are ~20x slower than the host */

/* Fixed part of each record type: a record shorter than this is a wire error. */
static size_t fixed_size(uint16_t type)
{
	switch (type) {
	case WA_EV_EXEC: return sizeof(struct wa_exec);
	case WA_EV_EXIT: return sizeof(struct wa_exit);
	case WA_EV_FORK: return sizeof(struct wa_fork);
	case WA_EV_CONNECT: return sizeof(struct wa_connect);
	case WA_EV_DNS: return sizeof(struct wa_dns);
	case WA_EV_FILE_WRITE:
	case WA_EV_FILE_UNLINK:
	case WA_EV_FILE_READ_SENSITIVE: return sizeof(struct wa_file);
	case WA_EV_FILE_RENAME: return sizeof(struct wa_rename);
	case WA_EV_SETUID:
	case WA_EV_SETGID: return sizeof(struct wa_setid);
	case WA_EV_PTRACE: return sizeof(struct wa_ptrace);
	case WA_EV_BIND: return sizeof(struct wa_bind);
	case WA_EV_KILL: return sizeof(struct wa_kill);
	case WA_EV_IO_URING: return sizeof(struct wa_io_uring);
	case WA_EV_LINK: case WA_EV_SYMLINK: case WA_EV_CHMOD: case WA_EV_MEMFD: case WA_EV_MODULE:
	case WA_EV_BPF: case WA_EV_MOUNT: case WA_EV_NAMESPACE: return sizeof(struct wa_sysop);
	case WA_EV_STREAM_HEAD: return sizeof(struct wa_stream_head);
	case WA_EV_DNS_ANSWER: return sizeof(struct wa_dns_answer);
	case WA_EV_CONN_END: return sizeof(struct wa_conn_end);
	case WA_EV_UNIX_CONNECT: return sizeof(struct wa_unix_connect);
	case WA_EV_LISTEN:
	case WA_EV_ACCEPT: return sizeof(struct wa_listen);
	default: return 0;
	}
}

/* The lengths a record declares must add up to exactly hdr.size. */
static size_t declared_size(const struct wa_hdr *h)
{
	switch (h->type) {
	case WA_EV_EXEC: {
		const struct wa_exec *e = (const void *)h;
		return sizeof(*e) + e->filename_len + e->argv_len + e->cwd_len + e->exe_len + e->root_len;
	}
	case WA_EV_DNS: {
		const struct wa_dns *d = (const void *)h;
		return sizeof(*d) + d->payload_len;
	}
	case WA_EV_FILE_WRITE:
	case WA_EV_FILE_UNLINK:
	case WA_EV_FILE_READ_SENSITIVE: {
		const struct wa_file *f = (const void *)h;
		return sizeof(*f) + f->path_len;
	}
	case WA_EV_FILE_RENAME: {
		const struct wa_rename *r = (const void *)h;
		return sizeof(*r) + r->old_len + r->new_len;
	}
	case WA_EV_IO_URING: {
		const struct wa_io_uring *u = (const void *)h;
		return sizeof(*u) + u->path_len + u->path2_len;
	}
	case WA_EV_LINK: case WA_EV_SYMLINK: case WA_EV_CHMOD: case WA_EV_MEMFD: case WA_EV_MODULE:
	case WA_EV_BPF: case WA_EV_MOUNT: case WA_EV_NAMESPACE: {
		const struct wa_sysop *o = (const void *)h;
		return sizeof(*o) + o->path_len + o->path2_len;
	}
	case WA_EV_STREAM_HEAD: return sizeof(struct wa_stream_head) + ((const struct wa_stream_head *)h)->len;
	case WA_EV_DNS_ANSWER: return sizeof(struct wa_dns_answer) + ((const struct wa_dns_answer *)h)->payload_len;
	case WA_EV_UNIX_CONNECT: return sizeof(struct wa_unix_connect) + ((const struct wa_unix_connect *)h)->path_len;
	default: return fixed_size(h->type);
	}
}

static int on_record(void *ctx, const void *data, size_t size)
{
	(void)ctx;
	const struct wa_hdr *h = data;
	if (size < sizeof(*h) || h->size > size || !fixed_size(h->type) || h->size < fixed_size(h->type) ||
	    declared_size(h) != h->size) {
		t_decode_errors++;
		return 0;
	}
	if (t_nrecs == t_cap) {
		size_t ncap = t_cap ? t_cap * 2 : 256;
		struct t_rec *n = realloc(t_recs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t_recs = n;
		t_cap = ncap;
	}
	void *copy = malloc(h->size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, h->size);
	t_recs[t_nrecs++] = (struct t_rec){ .hdr = copy, .size = h->size };
	return 0;
}

void t_reset(void)
{
	for (size_t i = 0; i < t_nrecs; i++)
		free((void *)t_recs[i].hdr);
	t_nrecs = 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int t_run_act(struct wa_loader *l, int traced, struct t_run *r, const char *const *args)
{
	const char *argv[32];
	int n = 0;
	argv[n++] = t_self;
	argv[n++] = "act";
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	memset(r, 0, sizeof(*r));
	fflush(NULL);
	if (traced && wa_loader_arm_spawn(l, getpid()))
		return -EIO;
	pid_t pid = fork();
	if (pid < 0) {
		wa_loader_disarm_spawn(l);
		return -errno;
	}
	if (pid == 0) {
		execv(t_self, (char *const *)argv);
		_exit(127);
	}
	r->pid = pid;
	/* our fork consumed the arming; anything left armed would trace a stranger */
	if (traced && wa_loader_disarm_spawn(l))
		fprintf(stderr, "witness-tester: spawn arming was not consumed by pid %d\n", pid);
	double t0 = now_s();
	for (;;) {
		wa_loader_poll(l, 20);
		pid_t w = waitpid(pid, &r->status, WNOHANG);
		if (w == pid)
			break;
		if (now_s() - t0 > T_RUN_TIMEOUT_S && !r->timed_out) {
			r->timed_out = 1;
			kill(pid, SIGKILL);
		}
	}
	/* the exit record is in the ring before the parent can reap: drain the tail */
	while (wa_loader_poll(l, 0) > 0)
		;
	return 0;
}

const void *t_nth(uint16_t type, int n)
{
	for (size_t i = 0; i < t_nrecs; i++)
		if (t_recs[i].hdr->type == type && n-- == 0)
			return t_recs[i].hdr;
	return NULL;
}

int t_count(uint16_t type)
{
	int c = 0;
	for (size_t i = 0; i < t_nrecs; i++)
		c += t_recs[i].hdr->type == type;
	return c;
}

void t_exec_view(const struct wa_exec *e, struct t_exec_view *v)
{
	const char *p = (const char *)(e + 1);
	v->e = e;
	v->filename = p;
	v->argv = v->filename + e->filename_len;
	v->cwd = v->argv + e->argv_len;
	v->exe = v->cwd + e->cwd_len;
}

int t_exec_arg(const struct t_exec_view *v, int i, char *out, size_t outlen)
{
	const char *p = v->argv, *end = v->argv + v->e->argv_len;
	while (i-- > 0) {
		const char *z = memchr(p, 0, end - p);
		if (!z)
			return -1;
		p = z + 1;
	}
	if (p >= end)
		return -1;
	const char *z = memchr(p, 0, end - p);
	size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
	snprintf(out, outlen, "%.*s", (int)len, p);
	return 0;
}

const char *t_file_path(const struct wa_file *f) { return (const char *)(f + 1); }

int t_path_is(const char *p, size_t len, const char *want)
{
	return strlen(want) == len && memcmp(p, want, len) == 0;
}

static void print_caps(struct wa_loader *l)
{
	for (int i = 0; i < wa_loader_prog_count(l); i++) {
		const struct wa_prog_status *s = wa_loader_prog(l, i);
		printf("CAP %s %s%s%s\n", s->name, s->attached ? "attached" : s->loaded ? "loaded" : "failed",
		       s->reason[0] ? " " : "", s->reason);
	}
	fflush(stdout);
}

static int run_scenarios(struct wa_loader *l)
{
	int pass = 0, fail = 0;
	char detail[512];
	snprintf(t_workdir, sizeof(t_workdir), "/tmp/witness-tester-XXXXXX");
	if (!mkdtemp(t_workdir)) {
		printf("SCENARIO setup FAIL mkdtemp /tmp: %s\n", strerror(errno));
		printf("DONE pass=0 fail=1\n");
		return 1;
	}
	for (const struct t_scenario *s = t_scenarios; s->name; s++) {
		detail[0] = 0;
		t_reset();
		int ok = s->fn(l, detail, sizeof(detail));
		/* one line per scenario, whatever the detail contains */
		for (char *c = detail; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
		printf("SCENARIO %s %s %s\n", s->name, ok ? "PASS" : "FAIL", detail[0] ? detail : "-");
		fflush(stdout);
		ok ? pass++ : fail++;
	}
	t_reset();
	rmdir(t_workdir);
	printf("DONE pass=%d fail=%d\n", pass, fail);
	fflush(stdout);
	return fail ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "act"))
		return t_act_main(argc - 2, argv + 2);
	if (argc != 2 || (strcmp(argv[1], "run") && strcmp(argv[1], "probe"))) {
		fprintf(stderr, "usage: witness-tester run | probe\n");
		return 2;
	}
	ssize_t n = readlink("/proc/self/exe", t_self, sizeof(t_self) - 1);
	if (n <= 0) {
		fprintf(stderr, "witness-tester: cannot resolve /proc/self/exe (is /proc mounted?)\n");
		return 2;
	}
	t_self[n] = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct utsname u;
	if (!uname(&u))
		printf("KERNEL %s\n", u.release);
	struct wa_loader_opts o = { .ring_bytes = 4u << 20, .wakeup_bytes = 1 };
	struct wa_loader *l = NULL;
	char err[256] = "";
	int rc = wa_loader_open(&l, &o, on_record, NULL, err, sizeof(err));
	if (rc) {
		printf("SCENARIO load FAIL %s\n", err);
		printf("DONE pass=0 fail=1\n");
		return 1;
	}
	print_caps(l);
	rc = !strcmp(argv[1], "run") ? run_scenarios(l) : 0;
	wa_loader_close(l);
	return rc;
}
