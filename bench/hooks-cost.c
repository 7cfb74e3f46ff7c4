/* What the syscall hooks cost other processes, in one run, as ratios to the
 * bare workload measured in between (bench/hooks-bench.mjs builds this against
 * the loader of the tree under test, so two designs compare on one machine):
 *
 *   hooks-cost ROUNDS N STORM RO_PATH  ->  one JSON line
 *   hooks-cost host-wide CMD ARGS...   ->  one JSON line (host_wide below)
 *
 * Per round: bare storm (no sensor); sensor loaded, no traced tree; a traced
 * tree present (a traced sleeper) while the storm runs untraced, of /dev/null
 * and of RO_PATH (the floor each read-only storm below is measured against:
 * every process pays it while a tree exists); the storm itself traced doing
 * read-only opens of RO_PATH; then the time to detach and
 * close; then the bare storms again. Ratios are per round, against the mean
 * of that round's two bare runs; the medians are printed. Every storm is N
 * open+close pairs of /dev/null or RO_PATH. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <fcntl.h>
#include <bpf/bpf.h>
#include "loader.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long records;
static int count(void *ctx, const void *d, size_t n) { records++; return 0; }

/* Runs argv (traced when asked), polling the ring until it exits; returns
 * the CPU seconds (user + system) the workload used. CPU time, not wall: this
 * machine is shared, and a run that waits for a CPU is not slower for it; what
 * the hooks add runs in the workload's own syscalls and is charged to it. */
static double run(struct wa_loader *l, int traced, char *const argv[])
{
	if (traced)
		wa_loader_arm_spawn(l, getpid());
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY); /* stdout is this harness's JSON */
		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (traced)
		wa_loader_disarm_spawn(l);
	int st;
	struct rusage ru;
	for (;;) {
		if (l)
			wa_loader_poll(l, 5);
		if (wait4(pid, &st, l ? WNOHANG : 0, &ru) == pid)
			break;
	}
	(void)t0;
	double s = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
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

/* The sensor's default sensitive set for root, registered as registerSensitive
 * does (src/sensor/sensitive-set.ts): each existing path's identity, and its
 * name under its parent directory; so the read-only storms pay the real walk. */
static const char *const sensitive[] = {
	"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/ssh/ssh_host_ed25519_key",
	"/root/.ssh", "/root/.aws", "/root/.gnupg", "/root/.kube", "/root/.docker/config.json", "/root/.netrc",
	"/root/.config/gcloud", "/root/.git-credentials", "/root/.npmrc", "/root/.pypirc",
};

static uint32_t kdev(dev_t d) { return major(d) << 20 | minor(d); }

static void register_sensitive(struct wa_loader *l)
{
	for (size_t i = 0; i < sizeof(sensitive) / sizeof(sensitive[0]); i++) {
		struct stat st, pst;
		char a[256], b[256];
		snprintf(a, sizeof(a), "%s", sensitive[i]);
		snprintf(b, sizeof(b), "%s", sensitive[i]);
		if (stat(a, &st) == 0)
			wa_loader_add_sensitive(l, kdev(st.st_dev), st.st_ino);
		if (stat(dirname(a), &pst) == 0)
			wa_loader_add_sensitive_name(l, kdev(pst.st_dev), pst.st_ino, basename(b));
	}
}

/* HOOKS_STATS=1: the kernel's own run-time accounting (bpf_enable_stats, which
 * itself adds tens of ns per run: compare these, never add them to the
 * ratios, which are measured without it). Per storm, the mean ns per run of
 * each dispatcher, tail-called handlers included, read from this process's
 * own program fds (other sensors on the host have the same names). */
static int stats_on;
struct disp_stats { uint64_t ns[2], cnt[2]; };

static void read_disp(struct disp_stats *s)
{
	memset(s, 0, sizeof(*s));
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		if (fd <= 2 || bpf_obj_get_info_by_fd(fd, &info, &len))
			continue;
		int k = !strcmp(info.name, "wa_sys_enter") ? 0 : !strcmp(info.name, "wa_sys_exit") ? 1 : -1;
		if (k >= 0 && !s->cnt[k]) {
			s->ns[k] = info.run_time_ns;
			s->cnt[k] = info.run_cnt;
		}
	}
	if (d)
		closedir(d);
}

/* HOOKS_STATS=1 with host-wide: every program's run time over the workload,
 * to stderr (tail-called handlers are counted in their dispatcher) */
#define MAXP 128
struct prog_stats { int n; char name[MAXP][16]; uint64_t ns[MAXP], cnt[MAXP]; };

static void read_all(struct prog_stats *s)
{
	memset(s, 0, sizeof(*s));
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)) && s->n < MAXP) {
		int fd = atoi(e->d_name);
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		if (fd <= 2 || bpf_obj_get_info_by_fd(fd, &info, &len) || !info.run_cnt)
			continue;
		memcpy(s->name[s->n], info.name, 16);
		s->ns[s->n] = info.run_time_ns;
		s->cnt[s->n++] = info.run_cnt;
	}
	if (d)
		closedir(d);
}

static void print_delta(const struct prog_stats *a, const struct prog_stats *b)
{
	for (int i = 0; i < b->n; i++) {
		uint64_t ns = b->ns[i], cnt = b->cnt[i];
		for (int j = 0; j < a->n; j++)
			if (!strcmp(a->name[j], b->name[i]) && a->cnt[j] <= cnt) {
				ns -= a->ns[j];
				cnt -= a->cnt[j];
				break;
			}
		if (cnt)
			fprintf(stderr, "  %-16s %10llu runs %8.1f ns/run %8.3f s\n", b->name[i], (unsigned long long)cnt,
				(double)ns / cnt, ns / 1e9);
	}
}

/* a storm under stats: adds its dispatcher runs to acc */
static double run_stats(struct wa_loader *l, int traced, char *const argv[], struct disp_stats *acc)
{
	struct disp_stats a, b;
	if (stats_on)
		read_disp(&a);
	double s = run(l, traced, argv);
	if (stats_on) {
		read_disp(&b);
		for (int k = 0; k < 2; k++) {
			acc->ns[k] += b.ns[k] - a.ns[k];
			acc->cnt[k] += b.cnt[k] - a.cnt[k];
		}
	}
	return s;
}

/* [enter, exit] mean ns per dispatcher run */
static void stats_json(char *out, size_t n, const struct disp_stats *acc)
{
	double x[2];
	for (int k = 0; k < 2; k++)
		x[k] = acc->cnt[k] ? (double)acc->ns[k] / acc->cnt[k] : 0;
	snprintf(out, n, "[%.1f,%.1f]", x[0], x[1]);
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

/* hooks-cost host-wide CMD ARGS...: one round of CMD bare, then under a
 * host-wide sensor (trace_all, the daemon's mode, the default sensitive set),
 * then bare again; CPU seconds of CMD and its children, ratio against the
 * mean of the bare runs. The sensor's own consumer runs in this process, so
 * the ratio is what the hooks add to CMD's own syscalls. */
static int host_wide(char *const argv[])
{
	double b1 = run(NULL, 0, argv);
	struct wa_loader_opts o = { .ring_bytes = 16u << 20, .trace_all = 1 };
	struct wa_loader *l;
	char err[256];
	if (wa_loader_open(&l, &o, count, NULL, err, sizeof(err))) {
		fprintf(stderr, "hooks-cost: %s\n", err);
		return 1;
	}
	register_sensitive(l);
	long before = records;
	static struct prog_stats sa, sb;
	int stats_fd = getenv("HOOKS_STATS") && !strcmp(getenv("HOOKS_STATS"), "1") ? bpf_enable_stats(BPF_STATS_RUN_TIME) : -1;
	if (stats_fd >= 0)
		read_all(&sa);
	double all = run(l, 0, argv);
	if (stats_fd >= 0) {
		read_all(&sb);
		print_delta(&sa, &sb);
		close(stats_fd);
	}
	long got = records - before;
	wa_loader_close(l);
	double b2 = run(NULL, 0, argv);
	double bare = (b1 + b2) / 2;
	printf("{\"bare_s\":%.4f,\"all_s\":%.4f,\"all_x\":%.4f,\"records\":%ld}\n", bare, all, all / bare, got);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 2 && !strcmp(argv[1], "host-wide"))
		return host_wide(argv + 2);
	int rounds = argc > 1 ? atoi(argv[1]) : 3;
	if (rounds > MAXR)
		rounds = MAXR;
	char *n = argc > 2 ? argv[2] : "1000000";
	char *storm = argc > 3 ? argv[3] : "./open-storm";
	char *ro = argc > 4 ? argv[4] : "/etc/hostname";
	char *null_argv[] = { storm, n, "/dev/null", "ro", NULL };
	char *ro_argv[] = { storm, n, ro, "ro", NULL };
	double bare[MAXR], bare_ro[MAXR], idle[MAXR], tree[MAXR], traced_ro[MAXR], open_s[MAXR], close_s[MAXR];
	double attach[MAXR], detach[MAXR], idle_x[MAXR], tree_x[MAXR], traced_ro_x[MAXR], tree_ro[MAXR], tree_ro_x[MAXR];
	struct disp_stats st_tree = { 0 }, st_ro = { 0 };
	int stats_fd = -1;
	if (getenv("HOOKS_STATS") && !strcmp(getenv("HOOKS_STATS"), "1")) {
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME); /* on while the fd is open */
		stats_on = stats_fd >= 0;
	}
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
		register_sensitive(l);
		for (int i = 0; i < 3; i++) /* let an idle check run (lazy designs detach here) */
			wa_loader_poll(l, 30);
		idle[r] = run(l, 0, null_argv);
		pid_t s = sleeper(l);
		attach[r] = attach_s;
		tree[r] = run_stats(l, 0, null_argv, &st_tree);
		tree_ro[r] = run(l, 0, ro_argv);
		traced_ro[r] = run_stats(l, 1, ro_argv, &st_ro);
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
		/* each round's ratios against the mean of its bare runs before and after */
		double b2 = run(NULL, 0, null_argv), bro2 = run(NULL, 0, ro_argv);
		bare[r] = (bare[r] + b2) / 2;
		bare_ro[r] = (bare_ro[r] + bro2) / 2;
		idle_x[r] = idle[r] / bare[r];
		tree_x[r] = tree[r] / bare[r];
		traced_ro_x[r] = traced_ro[r] / bare_ro[r];
		tree_ro_x[r] = tree_ro[r] / bare_ro[r];
	}
	double b = med(bare, rounds), bro = med(bare_ro, rounds);
	char js_tree[64] = "null", js_ro[64] = "null";
	if (stats_on) {
		stats_json(js_tree, sizeof(js_tree), &st_tree);
		stats_json(js_ro, sizeof(js_ro), &st_ro);
	}
	double i = med(idle, rounds), t = med(tree, rounds), tro = med(traced_ro, rounds);
	printf("{\"rounds\":%d,\"n\":%s,\"bare_s\":%.4f,\"bare_ro_s\":%.4f,\"idle_s\":%.4f,\"tree_s\":%.4f,\"tree_ro_s\":%.4f,\"traced_ro_s\":%.4f,"
	       "\"idle_x\":%.4f,\"tree_x\":%.4f,\"tree_ro_x\":%.4f,\"traced_ro_x\":%.4f,\"open_s\":%.4f,\"close_s\":%.4f,"
	       "\"attach_s\":%.5f,\"detach_s\":%.5f,\"records\":%ld,\"stats_tree_ns\":%s,\"stats_ro_ns\":%s}\n",
	       rounds, n, b, bro, i, t, med(tree_ro, rounds), tro, med(idle_x, rounds), med(tree_x, rounds), med(tree_ro_x, rounds), med(traced_ro_x, rounds), med(open_s, rounds), med(close_s, rounds),
	       med(attach, rounds), med(detach, rounds), records, js_tree, js_ro);
	if (stats_fd >= 0)
		close(stats_fd);
	return 0;
}
