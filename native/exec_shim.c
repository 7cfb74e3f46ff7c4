/* SPDX-License-Identifier: MIT */
/*
 * witness-exec: the guardian between `witness run` and the traced agent.
 *
 * Node cannot run code between fork and exec, so the pre-exec work that makes
 * the agent unprivileged lives here. This process stays root and untraced; it
 * forks the agent only when the witness says "go" (after arming the sensor's
 * one-shot for this pid, so the kernel marks the agent before its first
 * instruction), and then:
 *   - is the agent tree's child subreaper, so orphans (double forks, nohup)
 *     reparent here and "no children left" means the whole tree has exited;
 *   - forks the agent into the witness's cgroup (cgroup.kill ends the tree at once);
 *   - in the agent: setgroups/setresgid/setresuid, PR_SET_PDEATHSIG(SIGKILL),
 *     PR_SET_NO_NEW_PRIVS, a seccomp filter failing io_uring_* with EPERM;
 *   - kills the whole tree when the witness asks ("kill"), or when the control
 *     socket reaches EOF without "leave": the witness died, so the agent must not
 *     go on unobserved.
 * A uid-nobody agent can signal neither this process nor the witness (both root).
 *
 *   witness-exec --resolve USER[:GROUP]       prints uid, gid, home, name, groups (a,b,..), one a line (NSS)
 *   witness-exec --uid U --gid G [--groups A,B] [--cgroup DIR] [--allow-io-uring] -- CMD ARGS
 *   control on fd 3 (a socket): witness → "go", "run" (after "pid"), then "kill" | "leave"
 *                               guardian → "pid N" | "nocgroup ERRNO" | "execerr ERRNO" | "exit CODE SIGNAL" | "empty" | "killed"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONTROL_FD 3
#define MAX_GROUPS 1024

#if defined(__x86_64__)
#define WA_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define WA_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "witness-exec: add the audit arch of this platform"
#endif
/* io_uring_setup/enter/register are 425..427 on every architecture (asm-generic table). */
#define NR_IO_URING_SETUP 425
#define NR_IO_URING_REGISTER 427

static void die(const char *what)
{
	fprintf(stderr, "witness-exec: %s: %s\n", what, strerror(errno));
	exit(126);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(CONTROL_FD, buf, (size_t)n) < 0) { /* witness gone: EOF handling kills the tree */ }
}

static int resolve(const char *spec)
{
	char user[256];
	const char *colon = strchr(spec, ':');
	size_t ulen = colon ? (size_t)(colon - spec) : strlen(spec);
	if (ulen == 0 || ulen >= sizeof(user)) { fprintf(stderr, "invalid user '%s'\n", spec); return 2; }
	memcpy(user, spec, ulen);
	user[ulen] = 0;
	char *end;
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		long uid = strtol(user, &end, 10);
		if (*end == 0 && uid >= 0) pw = getpwuid((uid_t)uid);
	}
	if (!pw) { fprintf(stderr, "no such user '%s'\n", user); return 3; }
	gid_t gid = pw->pw_gid;
	if (colon) {
		const char *g = colon + 1;
		struct group *gr = *g ? getgrnam(g) : NULL;
		if (!gr && *g) {
			long n = strtol(g, &end, 10);
			if (*end == 0 && n >= 0) gr = getgrgid((gid_t)n);
		}
		if (!gr) { fprintf(stderr, "no such group '%s'\n", g); return 4; }
		gid = gr->gr_gid;
	}
	gid_t groups[MAX_GROUPS];
	int ng = MAX_GROUPS;
	/* initgroups' list: the user's supplementary groups plus the primary gid */
	if (getgrouplist(pw->pw_name, gid, groups, &ng) < 0) { fprintf(stderr, "user '%s' is in more than %d groups\n", user, MAX_GROUPS); return 5; }
	/* one field a line: a home directory may hold spaces */
	printf("%u\n%u\n%s\n%s\n", (unsigned)pw->pw_uid, (unsigned)gid, pw->pw_dir, pw->pw_name);
	for (int i = 0; i < ng; i++) printf("%s%u", i ? "," : "", (unsigned)groups[i]);
	printf("\n");
	return 0;
}

static int install_io_uring_filter(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		/* a foreign ABI (e.g. i386 on x86_64) could reach io_uring under other numbers: refuse it */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, WA_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
		BPF_STMT(BPF_ALU | BPF_AND | BPF_K, ~0x40000000u), /* x32 numbers are nr | __X32_SYSCALL_BIT */
#endif
		BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, NR_IO_URING_SETUP, 0, 2),
		BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, NR_IO_URING_REGISTER, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

struct opts {
	uid_t uid;
	gid_t gid;
	gid_t groups[MAX_GROUPS];
	int ngroups;
	const char *cgroup;
	int allow_io_uring;
	char **argv;
};

/* The agent side of the fork: never returns. Reports exec failure on errfd. */
static void become_agent(const struct opts *o, int syncfd, int errfd, pid_t guardian)
{
	char c;
	int err = 0;
	if (read(syncfd, &c, 1) != 1) _exit(126); /* the guardian died before placing us */
	close(syncfd);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setgroups((size_t)o->ngroups, o->groups) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
	    setresuid(o->uid, o->uid, o->uid) < 0)
		goto fail;
	/* after the credential change, which clears it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) goto fail;
	if (getppid() != guardian) _exit(126);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) goto fail;
	if (!o->allow_io_uring && install_io_uring_filter() < 0) goto fail;
	execvp(o->argv[0], o->argv);
fail:
	err = errno;
	if (write(errfd, &err, sizeof(err)) < 0) { /* nothing left to tell */ }
	_exit(127);
}

/* Pids whose parent chain reaches `root` (its descendants), by /proc. */
static int descendants(pid_t root, pid_t *out, int cap)
{
	static pid_t pid[65536], ppid[65536];
	int n = 0, found = 0;
	DIR *d = opendir("/proc");
	if (!d) return 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 65536) {
		char path[64], buf[512];
		char *end;
		long p = strtol(e->d_name, &end, 10);
		if (*end || p <= 0) continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", p);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) continue;
		ssize_t len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0) continue;
		buf[len] = 0;
		char *rp = strrchr(buf, ')'); /* comm may contain anything but the last ')' */
		int pp;
		if (!rp || sscanf(rp + 1, " %*c %d", &pp) != 1) continue;
		pid[n] = (pid_t)p;
		ppid[n++] = pp;
	}
	closedir(d);
	/* fixpoint: a pid is in if its parent is root or already in */
	static char in[65536];
	memset(in, 0, sizeof(in));
	for (int changed = 1; changed;) {
		changed = 0;
		for (int i = 0; i < n; i++) {
			if (in[i]) continue;
			int hit = ppid[i] == root;
			for (int j = 0; !hit && j < n; j++) hit = in[j] && pid[j] == ppid[i];
			if (hit) { in[i] = 1; changed = 1; if (found < cap) out[found++] = pid[i]; }
		}
	}
	return found;
}

/* Ends the tree: cgroup.kill when we placed it in a cgroup, then SIGKILL by ancestry until no child is left. */
static int kill_tree(const struct opts *o)
{
	int killed = 0;
	/* We are the tree's subreaper: no child left means no tree left, so the /proc
	 * scan (milliseconds on a busy host, on every run's way out) is skipped. */
	pid_t r0;
	while ((r0 = waitpid(-1, NULL, WNOHANG)) > 0) {}
	if (r0 < 0 && errno == ECHILD) return 0;
	if (o->cgroup) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/cgroup.kill", o->cgroup);
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) { if (write(fd, "1", 1) < 0) { /* fall back to signals below */ } close(fd); }
	}
	static pid_t pids[4096];
	for (int pass = 0;; pass++) {
		int n = descendants(getpid(), pids, 4096);
		for (int i = 0; i < n; i++) if (kill(pids[i], SIGKILL) == 0 && pass == 0) killed++;
		pid_t r;
		while ((r = waitpid(-1, NULL, WNOHANG)) > 0) {}
		if (r < 0 && errno == ECHILD) break;
		usleep(1000); /* a SIGKILLed task needs a moment to become a zombie */
	}
	return killed;
}

/*
 * fork(2), born in the run's cgroup (clone3 CLONE_INTO_CGROUP, 5.7+): writing cgroup.procs
 * waits for an RCU grace period the first time in a while (7-14 ms here, once per run).
 * *placed = 0 (old kernel, refusal): a plain fork, moved by place_in_cgroup as before.
 */
static pid_t fork_into_cgroup(const char *cgroup, int *placed)
{
	int cfd = cgroup ? open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW) : -1;
	*placed = 0;
	if (cfd >= 0) {
		struct clone_args args = { .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (__u64)cfd };
		long pid = syscall(SYS_clone3, &args, sizeof(args));
		if (pid != 0) close(cfd); /* the child's copy goes at exec (O_CLOEXEC) */
		if (pid >= 0) { *placed = 1; return (pid_t)pid; }
	}
	return fork();
}

/* Into the run's cgroup before it runs; on failure the tree is still ended by ancestry (kill_tree). */
static int place_in_cgroup(const char *cgroup, pid_t pid)
{
	char path[4096], num[32];
	snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	int n = snprintf(num, sizeof(num), "%d", (int)pid);
	int ok = fd >= 0 && write(fd, num, (size_t)n) == n;
	int err = errno;
	if (fd >= 0) close(fd);
	return ok ? 0 : (err ? err : EIO);
}

static int guard(struct opts *o)
{
	if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) < 0) die("control socket on fd 3");
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("PR_SET_CHILD_SUBREAPER");
	/* Ctrl-C reaches the whole foreground group: the witness forwards it to the agent; we must stay. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGINT); sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP); sigaddset(&mask, SIGQUIT); sigaddset(&mask, SIGPIPE);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("sigprocmask");
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC);
	if (sfd < 0) die("signalfd");

	char line[64];
	size_t have = 0;
	int started = 0, root_done = 0, emptied = 0;
	pid_t agent = -1;
	for (;;) {
		struct pollfd p[2] = { { .fd = CONTROL_FD, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; die("poll"); }
		if (p[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) < 0) { /* coalesced; reap below anyway */ }
		}
		for (;;) {
			int st;
			pid_t r = waitpid(-1, &st, WNOHANG);
			if (r > 0 && r == agent) {
				say("exit %d %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
				root_done = 1;
				continue;
			}
			if (r > 0) continue; /* a reparented orphan of the tree */
			if (r < 0 && errno == ECHILD && root_done && !emptied) { say("empty\n"); emptied = 1; }
			break;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
		ssize_t n = read(CONTROL_FD, line + have, sizeof(line) - 1 - have);
		if (n <= 0) {
			/* EOF without "leave": the witness is gone; the agent must not outlive it unobserved */
			if (started) kill_tree(o);
			return 0;
		}
		have += (size_t)n;
		line[have] = 0;
		char *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			if (strcmp(line, "go") == 0 && !started) {
				int syncp[2], errp[2];
				if (pipe2(syncp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) die("pipe2");
				pid_t me = getpid();
				int placed;
				agent = fork_into_cgroup(o->cgroup, &placed);
				if (agent < 0) die("fork");
				if (agent == 0) {
					close(syncp[1]); close(errp[0]); close(CONTROL_FD); close(sfd);
					become_agent(o, syncp[0], errp[1], me);
				}
				started = 1;
				close(syncp[0]); close(errp[1]);
				say("pid %d\n", (int)agent);
				/* The witness opens its scope for this pid (and disarms) before the agent runs a single instruction. */
				char ack[4];
				if (read(CONTROL_FD, ack, sizeof(ack)) != (ssize_t)sizeof(ack) || memcmp(ack, "run\n", 4) != 0) {
					kill(agent, SIGKILL);
					kill_tree(o);
					return 0;
				}
				int cgerr = o->cgroup && !placed ? place_in_cgroup(o->cgroup, agent) : 0;
				if (cgerr) { say("nocgroup %d\n", cgerr); o->cgroup = NULL; }
				if (write(syncp[1], "g", 1) != 1) die("release agent");
				close(syncp[1]);
				int err;
				if (read(errp[0], &err, sizeof(err)) == (ssize_t)sizeof(err)) say("execerr %d\n", err);
				close(errp[0]);
			} else if (strcmp(line, "kill") == 0) {
				say("killed %d\n", kill_tree(o));
				return 0;
			} else if (strcmp(line, "leave") == 0) {
				return 0;
			}
			size_t used = (size_t)(nl + 1 - line);
			memmove(line, nl + 1, have - used + 1);
			have -= used;
		}
		if (have >= sizeof(line) - 1) have = 0; /* garbage: drop it */
	}
}

/* Strict: a malformed id must never become 0 (root). */
static unsigned long parse_id(const char *s)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v >= 0xffffffffUL) { fprintf(stderr, "witness-exec: invalid id '%s'\n", s); exit(126); }
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = { .uid = (uid_t)-1, .gid = (gid_t)-1 };
	int i = 1;
	if (argc == 3 && strcmp(argv[1], "--resolve") == 0) return resolve(argv[2]);
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) { i++; break; }
		if (i + 1 >= argc && strcmp(a, "--allow-io-uring") != 0) { fprintf(stderr, "witness-exec: %s needs a value\n", a); return 126; }
		if (strcmp(a, "--uid") == 0) o.uid = (uid_t)parse_id(argv[++i]);
		else if (strcmp(a, "--gid") == 0) o.gid = (gid_t)parse_id(argv[++i]);
		else if (strcmp(a, "--groups") == 0) {
			char *s = argv[++i], *tok, *save = NULL;
			for (tok = strtok_r(s, ",", &save); tok && o.ngroups < MAX_GROUPS; tok = strtok_r(NULL, ",", &save))
				o.groups[o.ngroups++] = (gid_t)parse_id(tok);
		} else if (strcmp(a, "--cgroup") == 0) o.cgroup = argv[++i];
		else if (strcmp(a, "--allow-io-uring") == 0) o.allow_io_uring = 1;
		else { fprintf(stderr, "witness-exec: unknown option %s\n", a); return 126; }
	}
	if (i >= argc || o.uid == (uid_t)-1 || o.gid == (gid_t)-1) {
		fprintf(stderr, "usage: witness-exec --uid U --gid G [--groups A,B] [--cgroup DIR] [--allow-io-uring] -- CMD [ARGS]\n");
		return 126;
	}
	o.argv = argv + i;
	return guard(&o);
}
