/* SPDX-License-Identifier: MIT */
/*
 * witness-c: the loader's C front end. `probe` prints the capability table;
 * `drain SECONDS [CMD...]` traces CMD (or the host) and counts records as fast
 * as C can — the ceiling `npm run bench` measures the Node path against.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "loader.h"

static uint64_t records, bytes;

static int count_record(void *ctx, const void *data, size_t size)
{
	(void)ctx;
	(void)data;
	records++;
	bytes += size;
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmd_probe(struct wa_loader *l)
{
	for (int i = 0; i < wa_loader_prog_count(l); i++) {
		const struct wa_prog_status *s = wa_loader_prog(l, i);
		printf("%-24s %-44s %s%s%s\n", s->name, s->section, s->attached ? "attached" : s->loaded ? "loaded" : "FAILED",
		       s->reason[0] ? "  " : "", s->reason);
	}
	return 0;
}

/* Spawn argv with the loader armed, drain until it exits, print one JSON line. */
static int cmd_drain(struct wa_loader *l, char **argv, int prefill)
{
	int go[2];
	if (pipe(go))
		return 1;
	if (wa_loader_arm_spawn(l, getpid()))
		return 1;
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(go[0]);
	if (write(go[1], "g", 1) != 1)
		return 1;
	close(go[1]);
	int status = 0;
	double first = 0;
	if (prefill) {
		/* let the ring fill while nobody reads, then time only the drain */
		waitpid(pid, &status, 0);
		t0 = now_s();
	}
	for (; !prefill;) {
		int n = wa_loader_poll(l, 10);
		if (n > 0 && first == 0)
			first = now_s();
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
	}
	/* drain the tail */
	while (wa_loader_poll(l, 0) > 0)
		;
	double t1 = now_s();
	uint64_t em[WA_EV_MAX], dr[WA_EV_MAX], drops = 0, emitted = 0;
	wa_loader_counters(l, em, dr);
	for (int i = 0; i < WA_EV_MAX; i++) {
		drops += dr[i];
		emitted += em[i];
	}
	printf("{\"records\":%llu,\"bytes\":%llu,\"emitted\":%llu,\"dropped\":%llu,\"seconds\":%.6f,\"exit\":%d}\n",
	       (unsigned long long)records, (unsigned long long)bytes, (unsigned long long)emitted,
	       (unsigned long long)drops, t1 - t0, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}

int main(int argc, char **argv)
{
	int drain = argc >= 3 && !strcmp(argv[1], "drain");
	int prefilled = argc >= 3 && !strcmp(argv[1], "drain-prefilled");
	if (argc < 2 || (strcmp(argv[1], "probe") && !drain && !prefilled)) {
		fprintf(stderr, "usage: witness-c probe | witness-c drain|drain-prefilled CMD [ARGS...]\n");
		return 2;
	}
	/* ring and wakeup settable so a benchmark can match the Node path's settings */
	const char *ring_mb = getenv("WITNESS_RING_MB");
	const char *wakeup_kb = getenv("WITNESS_WAKEUP_KB");
	struct wa_loader_opts o = { .ring_bytes = (size_t)(ring_mb ? atoi(ring_mb) : 64) << 20,
				    .wakeup_bytes = (size_t)(wakeup_kb ? atoi(wakeup_kb) : 1024) << 10 };
	/* WITNESS_BUDGET_EVENTS=0: no fairness budget (the benchmark storm is one repeated path) */
	const char *budget = getenv("WITNESS_BUDGET_EVENTS");
	if (budget)
		o.budget_events = atoi(budget) > 0 ? atoi(budget) : -1;
	struct wa_loader *l = NULL;
	char err[256] = "";
	int rc = wa_loader_open(&l, &o, count_record, NULL, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "witness-c: %s\n", err);
		return 1;
	}
	rc = !strcmp(argv[1], "probe") ? cmd_probe(l) : cmd_drain(l, argv + 2, prefilled);
	wa_loader_close(l);
	return rc;
}
