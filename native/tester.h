/* SPDX-License-Identifier: MIT */
/*
 * witness-tester: the kernel matrix's probe of the real loader. Shared pieces
 * of the harness (tester.c), the scenario checks (tester_scenarios.c) and the
 * actions traced children perform (tester_acts.c).
 */
#ifndef WA_TESTER_H
#define WA_TESTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <sys/wait.h>
#include "loader.h"

/* One record copied out of the ring; the ring's memory is only valid in the callback. */
struct t_rec {
	const struct wa_hdr *hdr;
	size_t size;
};

/* Everything the callback received since the last t_reset(). */
extern struct t_rec *t_recs;
extern size_t t_nrecs;
extern uint64_t t_decode_errors;
extern char t_self[4096];   /* resolved path of this binary, re-exec'd for actions */
extern char t_workdir[4096];/* scratch directory for file scenarios */

/* Outcome of one traced (or deliberately untraced) child. */
struct t_run {
	pid_t pid;
	int status;     /* raw wait status */
	int timed_out;
};

void t_reset(void);
/* fork; the child execs `t_self act ARGS...` (args NULL-terminated). traced=0 leaves
 * it outside the traced set. Polls the ring until the child is reaped. */
int t_run_act(struct wa_loader *l, int traced, struct t_run *r, const char *const *args);

/* record helpers: the n-th record of a type (n from 0), or NULL */
const void *t_nth(uint16_t type, int n);
int t_count(uint16_t type);
/* variable parts of exec / file / rename records */
struct t_exec_view {
	const struct wa_exec *e;
	const char *filename, *argv, *cwd, *exe;
};
void t_exec_view(const struct wa_exec *e, struct t_exec_view *v);
/* argv entry i (NUL-separated on the wire) into out; returns 0 when present */
int t_exec_arg(const struct t_exec_view *v, int i, char *out, size_t outlen);
const char *t_file_path(const struct wa_file *f);
/* does a path of len bytes equal the NUL-terminated want? */
int t_path_is(const char *p, size_t len, const char *want);

/* Each scenario returns 1 on PASS; detail explains a FAIL (or notes a PASS). */
typedef int (*t_scenario_fn)(struct wa_loader *l, char *detail, size_t dlen);
struct t_scenario {
	const char *name;
	t_scenario_fn fn;
};
extern const struct t_scenario t_scenarios[];

/* a loopback listener of the tester's own: fd, or -1 with errno; *port gets its port */
int t_listen_on(int family, const char *addr, int *port);

/* scenarios in tester_scope.c */
int t_sc_files(struct wa_loader *l, char *detail, size_t dlen);
int t_sc_sensitive(struct wa_loader *l, char *detail, size_t dlen);
int t_sc_scope(struct wa_loader *l, char *detail, size_t dlen);
/* scenarios and actions in tester_boundary.c; t_boundary_act returns -1 for an action not its own */
int t_sc_io_uring(struct wa_loader *l, char *detail, size_t dlen);
int t_sc_kill_outside(struct wa_loader *l, char *detail, size_t dlen);
int t_sc_chmod_setuid(struct wa_loader *l, char *detail, size_t dlen);
int t_sc_fchmod_exec(struct wa_loader *l, char *detail, size_t dlen);
int t_boundary_act(int argc, char **argv);
/* network depth (tester_net.c) */
int t_sc_net_depth(struct wa_loader *l, char *detail, size_t dlen);
int t_act_tlshead(int port, const char *unix_path);

/* Scenario bodies: FAILF fills `detail` and fails; RUN runs an action or fails. */
#define FAILF(...) do { snprintf(detail, dlen, __VA_ARGS__); return 0; } while (0)
#define RUN(traced, r, ...)                                                                   \
	do {                                                                                  \
		const char *args_[] = { __VA_ARGS__, NULL };                                  \
		if (t_run_act(l, traced, r, args_))                                           \
			FAILF("fork failed");                                                 \
		if ((r)->timed_out)                                                           \
			FAILF("child %d timed out", (r)->pid);                                \
	} while (0)

static inline int exited_with(const struct t_run *r, int code)
{
	return WIFEXITED(r->status) && WEXITSTATUS(r->status) == code;
}

/* `witness-tester act NAME ...` — runs inside the traced child. */
int t_act_main(int argc, char **argv);

#endif
