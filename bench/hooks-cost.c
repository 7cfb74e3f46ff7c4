/* What the syscall hooks cost other processes, in one run, as ratios to the
 * bare workload measured in between (bench/hooks-bench.mjs builds this against
 * the loader of the tree under test, so two designs compare on one machine):
 *
 *   hooks-cost ROUNDS N STORM RO_PATH  ->  one JSON line
 *
 * Per round: bare storm (no sensor); sensor loaded, no traced tree; a traced
 * tree present (a traced sleeper) while the storm runs untraced; the storm
 * itself traced doing read-only opens of RO_PATH; then the time to detach and
 * close. Every storm is N open+close pairs of /dev/null or RO_PATH. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "loader.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long records;
static int count(void *ctx, const void *d, size_t n) { records++; return 0; }

/* runs argv (traced when l is given), polling the ring until it exits; seconds */
static double run(struct wa_loader *l, int traced, char *const argv[])
{
	if (traced)
		wa_loader_arm_spawn(l, getpid());
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (traced)
		wa_loader_disarm_spawn(l);
	int st;
	for (;;) {
		if (l)
			wa_loader_poll(l, 5);
		if (waitpid(pid, &st, l ? WNOHANG : 0) == pid)
			break;
	}
	double s = now_s() - t0;
	while (l && wa_loader_poll(l, 0) > 0)
		;
	return s;
}

static double attach_s; /* the last sleeper's arm: the attach, when the hooks were detached */

static pid_t sleeper(struct wa_loader *l)
{
	double t0 = now_s();
	wa_loader_arm_spawn(l, getpid());
	attach_s = now_s() - t0;
	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	wa_loader_disarm_spawn(l);
	return pid;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

#define MAXR 16
static double med(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 3;
	if (rounds > MAXR)
		rounds = MAXR;
	char *n = argc > 2 ? argv[2] : "1000000";
	char *storm = argc > 3 ? argv[3] : "./open-storm";
	char *ro = argc > 4 ? argv[4] : "/etc/hostname";
	char *null_argv[] = { storm, n, "/dev/null", "ro", NULL };
	char *ro_argv[] = { storm, n, ro, "ro", NULL };
	double bare[MAXR], bare_ro[MAXR], idle[MAXR], tree[MAXR], traced_ro[MAXR], open_s[MAXR], close_s[MAXR];
	double attach[MAXR], detach[MAXR];
	for (int r = 0; r < rounds; r++) {
		bare[r] = run(NULL, 0, null_argv);
		bare_ro[r] = run(NULL, 0, ro_argv);
		struct wa_loader_opts o = { .ring_bytes = 16u << 20 };
		struct wa_loader *l;
		char err[256];
		double t0 = now_s();
		if (wa_loader_open(&l, &o, count, NULL, err, sizeof(err))) {
			fprintf(stderr, "hooks-cost: %s\n", err);
			return 1;
		}
		open_s[r] = now_s() - t0;
		for (int i = 0; i < 3; i++) /* let an idle check run (lazy designs detach here) */
			wa_loader_poll(l, 30);
		idle[r] = run(l, 0, null_argv);
		pid_t s = sleeper(l);
		attach[r] = attach_s;
		tree[r] = run(l, 0, null_argv);
		traced_ro[r] = run(l, 1, ro_argv);
		kill(s, SIGKILL);
		waitpid(s, NULL, 0);
		detach[r] = 0;
#ifdef WA_LOADER_LAZY_HOOKS
		for (int i = 0; i < 100 && wa_loader_is_traced(l, s); i++) /* its exit record removes it */
			wa_loader_poll(l, 1);
		t0 = now_s();
		if (wa_loader_hooks_idle(l, 1))
			detach[r] = now_s() - t0;
#endif
		t0 = now_s();
		wa_loader_close(l);
		close_s[r] = now_s() - t0;
	}
	double b = med(bare, rounds), bro = med(bare_ro, rounds);
	double i = med(idle, rounds), t = med(tree, rounds), tro = med(traced_ro, rounds);
	printf("{\"rounds\":%d,\"n\":%s,\"bare_s\":%.4f,\"bare_ro_s\":%.4f,\"idle_s\":%.4f,\"tree_s\":%.4f,\"traced_ro_s\":%.4f,"
	       "\"idle_x\":%.4f,\"tree_x\":%.4f,\"traced_ro_x\":%.4f,\"open_s\":%.4f,\"close_s\":%.4f,"
	       "\"attach_s\":%.5f,\"detach_s\":%.5f,\"records\":%ld}\n",
	       rounds, n, b, bro, i, t, tro, i / b, t / b, tro / bro, med(open_s, rounds), med(close_s, rounds),
	       med(attach, rounds), med(detach, rounds), records);
	return 0;
}
