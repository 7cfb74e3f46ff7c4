/* SPDX-License-Identifier: MIT */
/*
 * The scenario set of test/kernel/ tests, held to the wire records. Each
 * check names what it saw when it fails, so a matrix log alone says why.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tester.h"

static const struct wa_exit *exit_of(uint32_t pid)
{
	const struct wa_exit *x;
	for (int i = 0; (x = t_nth(WA_EV_EXIT, i)); i++)
		if (x->hdr.pid == pid)
			return x;
	return NULL;
}

/* the fork record whose parent (the header's pid) is parent */
static const struct wa_fork *fork_by(uint32_t parent)
{
	const struct wa_fork *f;
	for (int i = 0; (f = t_nth(WA_EV_FORK, i)); i++)
		if (f->hdr.pid == parent)
			return f;
	return NULL;
}

static int sc_exec_chain(struct wa_loader *l, char *detail, size_t dlen)
{
	static const char *levels[3] = { "root", "mid", "leaf" };
	struct t_run r;
	RUN(1, &r, "chain", "root");
	if (!exited_with(&r, 3))
		FAILF("root status %#x, want exit 3", r.status);
	if (t_count(WA_EV_EXEC) != 3)
		FAILF("%d exec records, want 3", t_count(WA_EV_EXEC));
	struct t_exec_view v[3];
	char arg[64], cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		FAILF("getcwd failed");
	for (int i = 0; i < 3; i++) {
		t_exec_view(t_nth(WA_EV_EXEC, i), &v[i]);
		if (t_exec_arg(&v[i], 3, arg, sizeof(arg)) || strcmp(arg, levels[i]))
			FAILF("exec %d argv[3]=%s, want %s", i, arg, levels[i]);
		if (!t_path_is(v[i].exe, v[i].e->exe_len, t_self))
			FAILF("exec %d exe %.*s, want %s", i, v[i].e->exe_len, v[i].exe, t_self);
		if (!t_path_is(v[i].cwd, v[i].e->cwd_len, cwd))
			FAILF("exec %d cwd %.*s, want %s", i, v[i].e->cwd_len, v[i].cwd, cwd);
		if (v[i].e->argc != 4)
			FAILF("exec %d argc %u, want 4", i, v[i].e->argc);
	}
	if (v[0].e->hdr.pid != (uint32_t)r.pid || v[1].e->ppid != v[0].e->hdr.pid || v[2].e->ppid != v[1].e->hdr.pid)
		FAILF("parentage root=%u(run %d) mid.ppid=%u leaf.ppid=%u mid=%u", v[0].e->hdr.pid, r.pid, v[1].e->ppid,
		      v[2].e->ppid, v[1].e->hdr.pid);
	static const uint32_t want[3] = { 3 << 8, 5 << 8, 0 };
	for (int i = 0; i < 3; i++) {
		const struct wa_exit *x = exit_of(v[i].e->hdr.pid);
		if (!x || x->exit_code != want[i])
			FAILF("%s exit %#x, want %#x", levels[i], x ? x->exit_code : 0xdead, want[i]);
	}
	/* the spawn itself is recorded too: tester -> root, root -> mid, mid -> leaf */
	const struct wa_fork *f0 = fork_by(getpid()), *f1 = fork_by(v[0].e->hdr.pid), *f2 = fork_by(v[1].e->hdr.pid);
	if (t_count(WA_EV_FORK) != 3 || !f0 || !f1 || !f2 || f0->child_pid != v[0].e->hdr.pid ||
	    f1->child_pid != v[1].e->hdr.pid || f2->child_pid != v[2].e->hdr.pid)
		FAILF("fork records do not name root, mid and leaf (%d forks)", t_count(WA_EV_FORK));
	if (wa_loader_is_traced(l, r.pid))
		FAILF("exited root %d still in the traced set", r.pid);
	snprintf(detail, dlen, "3 execs, exits 3/5/0, 3 forks");
	return 1;
}

static int sc_signal_kill(struct wa_loader *l, char *detail, size_t dlen)
{
	struct t_run r;
	RUN(1, &r, "sigkill");
	if (!WIFSIGNALED(r.status) || WTERMSIG(r.status) != SIGKILL)
		FAILF("status %#x, want killed by SIGKILL", r.status);
	const struct wa_exit *x = exit_of(r.pid);
	if (!x || (x->exit_code & 0x7f) != SIGKILL || (x->exit_code >> 8) != 0)
		FAILF("exit record %#x, want signal 9", x ? x->exit_code : 0xdead);
	snprintf(detail, dlen, "exit_code=%#x", x->exit_code);
	return 1;
}

static int sc_exec_first(struct wa_loader *l, char *detail, size_t dlen)
{
	for (int i = 0; i < 5; i++) {
		struct t_run r;
		t_reset();
		RUN(1, &r, "noop");
		const struct wa_exec *e = t_nth(WA_EV_EXEC, 0);
		if (t_count(WA_EV_EXEC) != 1 || e->hdr.pid != (uint32_t)r.pid)
			FAILF("run %d: %d execs, first pid %u, want 1 from %d", i, t_count(WA_EV_EXEC), e ? e->hdr.pid : 0,
			      r.pid);
	}
	snprintf(detail, dlen, "5/5 root execs seen");
	return 1;
}

static int sc_argv_truncated(struct wa_loader *l, char *detail, size_t dlen)
{
	char longarg[3001];
	memset(longarg, 'x', 3000);
	longarg[3000] = 0;
	struct t_run r;
	RUN(1, &r, "noop", longarg, longarg);
	const struct wa_exec *e = t_nth(WA_EV_EXEC, 0);
	if (!e)
		FAILF("no exec record");
	if (!(e->hdr.flags & WA_F_TRUNC_ARGV) || e->argc != 5 || e->argv_len > WA_ARGV_MAX)
		FAILF("flags %#x argc %u argv_len %u", e->hdr.flags, e->argc, e->argv_len);
	snprintf(detail, dlen, "argc=5 argv_len=%u flagged", e->argv_len);
	return 1;
}

/* a loopback listener of our own; returns its fd and port */
int t_listen_on(int family, const char *addr, int *port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		inet_pton(AF_INET6, addr, &a->sin6_addr);
		len = sizeof(*a);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 16) || getsockname(fd, (struct sockaddr *)&ss, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static const struct wa_connect *connect_to(int port)
{
	const struct wa_connect *c;
	for (int i = 0; (c = t_nth(WA_EV_CONNECT, i)); i++)
		if (c->peer.port == port)
			return c;
	return NULL;
}

static int check_connect(struct wa_loader *l, int family, const char *addr, char *detail, size_t dlen)
{
	int port;
	int lfd = t_listen_on(family, addr, &port);
	if (lfd < 0)
		FAILF("cannot listen on %s: %m", addr);
	struct t_run r;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	int rc = t_run_act(l, 1, &r, (const char *[]){ family == AF_INET ? "connect4" : "connect6", ps, NULL });
	close(lfd);
	if (rc || r.timed_out || !exited_with(&r, 0))
		FAILF("connect child status %#x", r.status);
	const struct wa_connect *c = connect_to(port);
	unsigned char want[16] = { 0 };
	inet_pton(family, addr, want);
	if (!c)
		FAILF("no connect record to port %d (%d connect records)", port, t_count(WA_EV_CONNECT));
	if (c->peer.family != family || memcmp(c->peer.addr, want, family == AF_INET ? 4 : 16) || c->ret != 0 ||
	    c->sock_type != SOCK_STREAM || c->protocol != IPPROTO_TCP)
		FAILF("family %u ret %d type %u proto %u", c->peer.family, c->ret, c->sock_type, c->protocol);
	snprintf(detail, dlen, "%s port %d ret 0 tcp", addr, port);
	return 1;
}

static int sc_connect_v4(struct wa_loader *l, char *d, size_t n) { return check_connect(l, AF_INET, "127.0.0.1", d, n); }
static int sc_connect_v6(struct wa_loader *l, char *d, size_t n) { return check_connect(l, AF_INET6, "::1", d, n); }

static int sc_udp_connect(struct wa_loader *l, char *detail, size_t dlen)
{
	struct t_run r;
	RUN(1, &r, "udpconnect");
	const struct wa_connect *c = connect_to(9);
	static const unsigned char want[4] = { 127, 0, 0, 2 };
	if (!c || c->peer.family != AF_INET || memcmp(c->peer.addr, want, 4) || c->ret != 0 || c->sock_type != SOCK_DGRAM ||
	    c->protocol != IPPROTO_UDP)
		FAILF("no udp connect to 127.0.0.2:9 with ret 0 (%d connect records)", t_count(WA_EV_CONNECT));
	snprintf(detail, dlen, "127.0.0.2:9 udp ret 0");
	return 1;
}

/* the query name as DNS labels, e.g. \6sendto\15agent-witness\4test\0 */
static size_t dns_labels(const char *name, unsigned char *out)
{
	size_t n = 0;
	const char *p = name;
	while (*p) {
		const char *dot = strchrnul(p, '.');
		out[n++] = (unsigned char)(dot - p);
		memcpy(out + n, p, dot - p);
		n += dot - p;
		p = *dot ? dot + 1 : dot;
	}
	out[n++] = 0;
	return n;
}

static int check_dns(struct wa_loader *l, const char *mode, uint16_t syscall, char *detail, size_t dlen)
{
	char name[128];
	unsigned char labels[160];
	snprintf(name, sizeof(name), "%s.agent-witness.test", mode);
	size_t ln = dns_labels(name, labels);
	struct t_run r;
	RUN(1, &r, "dns", mode, name);
	if (!exited_with(&r, 0))
		FAILF("dns child status %#x", r.status);
	const struct wa_dns *d;
	for (int i = 0; (d = t_nth(WA_EV_DNS, i)); i++) {
		const unsigned char *p = (const unsigned char *)(d + 1);
		int raw = d->sock_type == SOCK_RAW;
		/* raw sockets carry the UDP header: destination port at bytes 2..3 */
		int port_ok = raw ? d->payload_len >= 8 && p[2] == 0 && p[3] == 53 : d->peer.port == 53;
		if (d->syscall == syscall && port_ok && memmem(p, d->payload_len, labels, ln))
			break;
	}
	if (!d)
		FAILF("no dns record via syscall %u carrying %s (%d dns records)", syscall, name, t_count(WA_EV_DNS));
	snprintf(detail, dlen, "%s captured (%u bytes)", name, d->payload_len);
	return 1;
}

static int sc_dns_sendto(struct wa_loader *l, char *d, size_t n) { return check_dns(l, "sendto", WA_SEND_SENDTO, d, n); }
static int sc_dns_sendmsg(struct wa_loader *l, char *d, size_t n) { return check_dns(l, "sendmsg", WA_SEND_SENDMSG, d, n); }
static int sc_dns_write(struct wa_loader *l, char *d, size_t n) { return check_dns(l, "write", WA_SEND_WRITE, d, n); }
static int sc_dns_raw(struct wa_loader *l, char *d, size_t n) { return check_dns(l, "raw", WA_SEND_SENDTO, d, n); }

static int sc_setuid(struct wa_loader *l, char *detail, size_t dlen)
{
	struct t_run r;
	RUN(1, &r, "setuid");
	if (!exited_with(&r, 0))
		FAILF("setuid child status %#x", r.status);
	const struct wa_setid *g = t_nth(WA_EV_SETGID, 0), *u = t_nth(WA_EV_SETUID, 0);
	if (!g || !u)
		FAILF("setgid records %d, setuid records %d", t_count(WA_EV_SETGID), t_count(WA_EV_SETUID));
	const struct wa_setid *both[2] = { g, u };
	for (int i = 0; i < 2; i++) {
		const struct wa_setid *s = both[i];
		for (int k = 0; k < 3; k++)
			if (s->ret != 0 || s->old_ids[k] != 0 || s->new_ids[k] != 65534)
				FAILF("%s ret %d old %u/%u/%u new %u/%u/%u", i ? "setuid" : "setgid", s->ret, s->old_ids[0],
				      s->old_ids[1], s->old_ids[2], s->new_ids[0], s->new_ids[1], s->new_ids[2]);
	}
	snprintf(detail, dlen, "gid and uid 0/0/0 -> 65534/65534/65534");
	return 1;
}

static int sc_ptrace(struct wa_loader *l, char *detail, size_t dlen)
{
	struct t_run r;
	RUN(1, &r, "ptrace");
	if (!exited_with(&r, 0))
		FAILF("ptrace child status %#x (attach refused?)", r.status);
	const struct wa_fork *f = fork_by(r.pid);
	if (!f)
		FAILF("no fork record for the tracee");
	const struct wa_ptrace *p;
	for (int i = 0; (p = t_nth(WA_EV_PTRACE, i)); i++)
		if (p->request == 16 /* PTRACE_ATTACH */ && p->target_pid == f->child_pid && p->ret == 0)
			break;
	if (!p)
		FAILF("no PTRACE_ATTACH of %u (%d ptrace records)", f->child_pid, t_count(WA_EV_PTRACE));
	snprintf(detail, dlen, "PTRACE_ATTACH of %u ret 0 (%d ptrace records)", f->child_pid, t_count(WA_EV_PTRACE));
	return 1;
}

static int sc_bind(struct wa_loader *l, char *detail, size_t dlen)
{
	int port;
	int fd = t_listen_on(AF_INET, "127.0.0.1", &port);
	if (fd < 0)
		FAILF("no free loopback port: %m");
	close(fd);
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	struct t_run r;
	RUN(1, &r, "bind", ps);
	const struct wa_bind *b;
	static const unsigned char lo[4] = { 127, 0, 0, 1 };
	for (int i = 0; (b = t_nth(WA_EV_BIND, i)); i++)
		if (b->local.port == port)
			break;
	if (!b || b->local.family != AF_INET || memcmp(b->local.addr, lo, 4) || b->ret != 0 || b->sock_type != SOCK_STREAM)
		FAILF("no bind record for 127.0.0.1:%d with ret 0 (%d bind records, child status %#x)", port,
		      t_count(WA_EV_BIND), r.status);
	snprintf(detail, dlen, "127.0.0.1:%d tcp ret 0", port);
	return 1;
}

/* last: the whole run decoded cleanly and the ring never dropped */
static int sc_wire_clean(struct wa_loader *l, char *detail, size_t dlen)
{
	uint64_t em[WA_EV_MAX], dr[WA_EV_MAX], emitted = 0, dropped = 0;
	wa_loader_counters(l, em, dr);
	for (int i = 0; i < WA_EV_MAX; i++) {
		emitted += em[i];
		dropped += dr[i];
	}
	if (t_decode_errors || dropped || !emitted)
		FAILF("decode errors %llu, dropped %llu, emitted %llu", (unsigned long long)t_decode_errors,
		      (unsigned long long)dropped, (unsigned long long)emitted);
	snprintf(detail, dlen, "%llu records emitted, 0 dropped, 0 decode errors", (unsigned long long)emitted);
	return 1;
}

const struct t_scenario t_scenarios[] = {
	{ "exec_chain", sc_exec_chain },
	{ "signal_kill", sc_signal_kill },
	{ "exec_first_instruction", sc_exec_first },
	{ "argv_truncated", sc_argv_truncated },
	{ "connect_v4", sc_connect_v4 },
	{ "connect_v6", sc_connect_v6 },
	{ "udp_connect", sc_udp_connect },
	{ "dns_sendto", sc_dns_sendto },
	{ "dns_sendmsg", sc_dns_sendmsg },
	{ "dns_write", sc_dns_write },
	{ "dns_raw", sc_dns_raw },
	{ "file_write_rename_unlink", t_sc_files },
	{ "sensitive_read", t_sc_sensitive },
	{ "setuid_nobody", sc_setuid },
	{ "ptrace_attach", sc_ptrace },
	{ "bind", sc_bind },
	{ "untraced_scope", t_sc_scope },
	{ "io_uring_openat", t_sc_io_uring },
	{ "kill_outside_tree", t_sc_kill_outside },
	{ "chmod_setuid", t_sc_chmod_setuid },
	{ "fchmod_exec", t_sc_fchmod_exec },
	{ "net_depth", t_sc_net_depth },
	{ "wire_clean", sc_wire_clean },
	{ NULL, NULL },
};
