/* SPDX-License-Identifier: MIT */
/*
 * What traced children do: `witness-tester act NAME ARGS...`. Each action is a
 * plain sequence of syscalls whose records tester_scenarios.c then expects.
 * The tester re-execs itself rather than relying on a shell, so the same
 * actions run on the host and in a busybox initramfs. Exit codes: 0 done,
 * 1 a syscall the scenario needs failed (the scenario then says which).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include "tester.h"

/* fork + exec this binary with `act NEXT`, return the child's raw wait status */
static int spawn_self(const char *next)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return -1;
	self[n] = 0;
	pid_t pid = fork();
	if (pid == 0) {
		execl(self, self, "act", "chain", next, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return st;
}

/* root → mid → leaf, exiting 3, 5 and 0: the shape of `sh -c 'sh -c "echo; exit 5"; exit 3'` */
static int act_chain(const char *level)
{
	if (!strcmp(level, "root"))
		return spawn_self("mid") < 0 ? 1 : 3;
	if (!strcmp(level, "mid"))
		return spawn_self("leaf") < 0 ? 1 : 5;
	return 0;
}

static int tcp_connect(int family, const char *addr, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *a = (void *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, addr, &a->sin_addr);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (void *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, addr, &a->sin6_addr);
		len = sizeof(*a);
	}
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return 1;
	int rc = connect(fd, (struct sockaddr *)&ss, len);
	close(fd);
	return rc ? 1 : 0;
}

static int udp_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 1;
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	close(fd);
	return rc ? 1 : 0;
}

/* A DNS query for NAME type A, built by hand: no resolver library involved. */
static size_t dns_query(const char *name, unsigned char *q, size_t cap)
{
	static const unsigned char head[12] = { 0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t n = sizeof(head);
	memcpy(q, head, n);
	const char *p = name;
	while (*p && n + 70 < cap) {
		const char *dot = strchrnul(p, '.');
		size_t l = dot - p;
		if (l > 63)
			l = 63;
		q[n++] = (unsigned char)l;
		memcpy(q + n, p, l);
		n += l;
		p = *dot ? dot + 1 : dot;
	}
	q[n++] = 0;
	q[n++] = 0, q[n++] = 1; /* type A */
	q[n++] = 0, q[n++] = 1; /* class IN */
	return n;
}

/* send one query to 127.0.0.1:53 with sendto, sendmsg, write (connected) or a raw UDP socket */
static int act_dns(const char *mode, const char *name)
{
	unsigned char q[600];
	size_t n = dns_query(name, q + 8, sizeof(q) - 8);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int raw = !strcmp(mode, "raw");
	int fd = raw ? socket(AF_INET, SOCK_RAW, IPPROTO_UDP) : socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return 1;
	ssize_t rc = -1;
	if (!strcmp(mode, "sendto")) {
		rc = sendto(fd, q + 8, n, 0, (struct sockaddr *)&a, sizeof(a));
	} else if (!strcmp(mode, "sendmsg")) {
		struct iovec iov = { .iov_base = q + 8, .iov_len = n };
		struct msghdr m = { .msg_name = &a, .msg_namelen = sizeof(a), .msg_iov = &iov, .msg_iovlen = 1 };
		rc = sendmsg(fd, &m, 0);
	} else if (!strcmp(mode, "write")) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			rc = write(fd, q + 8, n);
	} else if (raw) {
		/* UDP header by hand: source 40000, destination 53, checksum 0 (none) */
		uint16_t h[4] = { htons(40000), htons(53), htons(8 + n), 0 };
		memcpy(q, h, 8);
		a.sin_port = 0;
		rc = sendto(fd, q, n + 8, 0, (struct sockaddr *)&a, sizeof(a));
	}
	close(fd);
	return rc > 0 ? 0 : 1;
}

static int write_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	int ok = write(fd, "data\n", 5) == 5;
	close(fd);
	return ok ? 0 : -1;
}

/* relative paths from inside DIR: the records must still carry absolute ones */
static int act_files(const char *dir, const char *name)
{
	char a[256], b[256];
	snprintf(a, sizeof(a), "sub/%s-a", name);
	snprintf(b, sizeof(b), "sub/%s-b", name);
	if (chdir(dir) || (mkdir("sub", 0755) && errno != EEXIST))
		return 1;
	int rc = write_file(a) || rename(a, b) || unlink(b);
	rmdir("sub");
	return rc ? 1 : 0;
}

/* /etc/shadow by absolute and relative path, then a file that is not sensitive */
static int act_sensitive(void)
{
	char buf[64];
	int rc = 0;
	int fd = open("/etc/shadow", O_RDONLY);
	rc |= fd < 0 || read(fd, buf, sizeof(buf)) < 0;
	close(fd);
	if (chdir("/etc"))
		return 1;
	fd = open("./shadow", O_RDONLY);
	rc |= fd < 0;
	close(fd);
	fd = open("/etc/hostname", O_RDONLY);
	close(fd);
	return rc ? 1 : 0;
}

static int act_setuid(void)
{
	if (setgid(65534) || setuid(65534))
		return 1;
	return 0;
}

/* attach to our own child, as a debugger would, then let it go */
static int act_ptrace(void)
{
	pid_t c = fork();
	if (c == 0) {
		for (;;)
			pause();
	}
	if (c < 0)
		return 1;
	int rc = 1, st;
	if (ptrace(PTRACE_ATTACH, c, 0, 0) == 0 && waitpid(c, &st, 0) == c && ptrace(PTRACE_DETACH, c, 0, 0) == 0)
		rc = 0;
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	return rc;
}

static int act_bind(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int rc = fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1);
	close(fd);
	return rc ? 1 : 0;
}

/* the scope scenario's mix: files, a sensitive read and a connect */
static int act_mix(const char *dir, const char *name, int port)
{
	int rc = act_files(dir, name);
	rc |= act_sensitive();
	rc |= tcp_connect(AF_INET, "127.0.0.1", port);
	return rc ? 1 : 0;
}

int t_act_main(int argc, char **argv)
{
	const char *a = argc > 0 ? argv[0] : "";
	if (!strcmp(a, "chain") && argc == 2)
		return act_chain(argv[1]);
	if (!strcmp(a, "noop"))
		return 0;
	if (!strcmp(a, "sigkill")) {
		kill(getpid(), SIGKILL);
		return 1;
	}
	if (!strcmp(a, "connect4") && argc == 2)
		return tcp_connect(AF_INET, "127.0.0.1", atoi(argv[1]));
	if (!strcmp(a, "connect6") && argc == 2)
		return tcp_connect(AF_INET6, "::1", atoi(argv[1]));
	if (!strcmp(a, "udpconnect"))
		return udp_connect();
	if (!strcmp(a, "dns") && argc == 3)
		return act_dns(argv[1], argv[2]);
	if (!strcmp(a, "files") && argc == 3)
		return act_files(argv[1], argv[2]);
	if (!strcmp(a, "sensitive"))
		return act_sensitive();
	if (!strcmp(a, "setuid"))
		return act_setuid();
	if (!strcmp(a, "ptrace"))
		return act_ptrace();
	if (!strcmp(a, "bind") && argc == 2)
		return act_bind(atoi(argv[1]));
	if (!strcmp(a, "tlshead") && argc == 3)
		return t_act_tlshead(atoi(argv[1]), argv[2]);
	if (!strcmp(a, "mix") && argc == 4)
		return act_mix(argv[1], argv[2], atoi(argv[3]));
	fprintf(stderr, "witness-tester: unknown action %s\n", a);
	return 2;
}
