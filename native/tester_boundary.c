/* SPDX-License-Identifier: MIT */
/*
 * The boundary's scenarios and actions (bpf/boundary.bpf.h, io_uring.bpf.h):
 * an io_uring OPENAT, a signal to a process outside the traced tree and a
 * setuid chmod, each held to its wire record on every kernel of the matrix.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/io_uring.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "tester.h"

/* IORING_OP_OPENAT of path through raw syscalls; 0 when the CQE has an fd */
static int act_uring_openat(const char *path)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return 1;
	char *sq = mmap(0, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	char *cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return 1;
	unsigned *tail = (unsigned *)(sq + p.sq_off.tail), mask = *(unsigned *)(sq + p.sq_off.ring_mask);
	unsigned idx = *tail & mask;
	memset(&sqes[idx], 0, sizeof(sqes[idx]));
	sqes[idx].opcode = IORING_OP_OPENAT;
	sqes[idx].fd = AT_FDCWD;
	sqes[idx].addr = (unsigned long)path;
	((unsigned *)(sq + p.sq_off.array))[idx] = idx;
	__atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return 1;
	struct io_uring_cqe *cqes = (void *)(cq + p.cq_off.cqes);
	unsigned head = *(unsigned *)(cq + p.cq_off.head);
	return cqes[head & *(unsigned *)(cq + p.cq_off.ring_mask)].res >= 0 ? 0 : 1;
}

int t_boundary_act(int argc, char **argv)
{
	const char *a = argv[0];
	if (!strcmp(a, "uring_openat") && argc == 2)
		return act_uring_openat(argv[1]);
	if (!strcmp(a, "kill_other") && argc == 2)
		return kill(atoi(argv[1]), SIGTERM) ? 1 : 0;
	if (!strcmp(a, "chmod_setuid") && argc == 2)
		return chmod(argv[1], 04755) ? 1 : 0;
	if (!strcmp(a, "fchmod_exec") && argc == 2) {
		int fd = open(argv[1], O_RDONLY);
		return fd < 0 || fchmod(fd, 0755) ? 1 : 0;
	}
	return -1;
}

int t_sc_io_uring(struct wa_loader *l, char *detail, size_t dlen)
{
	struct t_run r;
	RUN(1, &r, "uring_openat", t_self);
	if (!exited_with(&r, 0))
		FAILF("io_uring openat child status %#x (io_uring disabled?)", r.status);
	const struct wa_io_uring *u;
	for (int i = 0; (u = t_nth(WA_EV_IO_URING, i)); i++)
		if (u->opcode == IORING_OP_OPENAT)
			break;
	if (!u)
		FAILF("no io_uring OPENAT record (%d io_uring records)", t_count(WA_EV_IO_URING));
	const char *path = (const char *)(u + 1);
	if (u->fd != AT_FDCWD || !t_path_is(path, u->path_len, t_self))
		FAILF("io_uring OPENAT fd %d path %.*s, want %d %s", u->fd, u->path_len, path, AT_FDCWD, t_self);
	snprintf(detail, dlen, "OPENAT %s", t_self);
	return 1;
}

int t_sc_kill_outside(struct wa_loader *l, char *detail, size_t dlen)
{
	pid_t victim = fork();
	if (victim == 0) {
		pause();
		_exit(0);
	}
	if (victim < 0)
		FAILF("fork failed");
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", victim);
	struct t_run r;
	RUN(1, &r, "kill_other", ps);
	int st;
	waitpid(victim, &st, 0);
	const struct wa_kill *k = t_nth(WA_EV_KILL, 0);
	if (!exited_with(&r, 0) || !k || k->target_pid != victim || k->sig != SIGTERM || k->source != WA_KILL_GENERATED)
		FAILF("no generated kill record for SIGTERM to %d (%d kill records, child status %#x)", victim,
		      t_count(WA_EV_KILL), r.status);
	snprintf(detail, dlen, "SIGTERM to untraced %d", victim);
	return 1;
}

int t_sc_chmod_setuid(struct wa_loader *l, char *detail, size_t dlen)
{
	char f[4200];
	snprintf(f, sizeof(f), "%s/setuid-me", t_workdir);
	int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		FAILF("cannot create %s", f);
	close(fd);
	struct t_run r;
	RUN(1, &r, "chmod_setuid", f);
	const struct wa_sysop *c = t_nth(WA_EV_CHMOD, 0);
	if (!exited_with(&r, 0) || !c || c->args[0] != 04755 || c->ret != 0 || !t_path_is((const char *)(c + 1), c->path_len, f))
		FAILF("no chmod record of 04755 on %s (%d chmod records, child status %#x)", f, t_count(WA_EV_CHMOD), r.status);
	unlink(f);
	snprintf(detail, dlen, "%s 04755 via %s", f, c->syscall == WA_SYS_CHMOD ? "chmod" : "fchmodat");
	return 1;
}


/* fchmod has exit handlers of its own (bpf/chmod.bpf.h), a direct-load twin
 * and a probe-read one: each kernel proves the one it loads. */
int t_sc_fchmod_exec(struct wa_loader *l, char *detail, size_t dlen)
{
	char f[4200];
	snprintf(f, sizeof(f), "%s/exec-me", t_workdir);
	int fd = open(f, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		FAILF("cannot create %s", f);
	close(fd);
	struct t_run r;
	RUN(1, &r, "fchmod_exec", f);
	const struct wa_sysop *c = t_nth(WA_EV_CHMOD, 0);
	if (!exited_with(&r, 0) || !c || c->syscall != WA_SYS_FCHMOD || c->args[0] != 0755 || (c->args[1] & 07777) != 0755 ||
	    c->ret != 0 || !t_path_is((const char *)(c + 1), c->path_len, f))
		FAILF("no fchmod record of 0755 on %s (%d chmod records, child status %#x)", f, t_count(WA_EV_CHMOD), r.status);
	unlink(f);
	snprintf(detail, dlen, "%s 0755 by fd, mode after %#llo", f, (unsigned long long)(c->args[1] & 07777));
	return 1;
}
