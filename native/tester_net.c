/* SPDX-License-Identifier: MIT */
/* Kernel-matrix scenario for the network-depth probes (bpf/conn*.bpf.h):
 * a TLS-looking stream head split over write + writev, the connection's byte
 * accounting at close, and a unix connect's peer path from the kernel. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include "tester.h"

/* a handshake record announcing a 60-byte ClientHello body: 5 + 4 + 60 bytes */
#define HELLO_LEN 69
#define FIRST_PART 20

int t_act_tlshead(int port, const char *unix_path)
{
	unsigned char hello[HELLO_LEN] = { 0x16, 0x03, 0x01, 0x00, 64, 0x01, 0x00, 0x00, 60 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return 3;
	struct iovec iov = { .iov_base = hello + FIRST_PART, .iov_len = HELLO_LEN - FIRST_PART };
	if (write(fd, hello, FIRST_PART) != FIRST_PART || writev(fd, &iov, 1) != HELLO_LEN - FIRST_PART)
		return 4;
	close(fd);
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", unix_path);
	int ufd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&u, sizeof(u)))
		return 5;
	close(ufd);
	return 0;
}

int t_sc_net_depth(struct wa_loader *l, char *detail, size_t dlen)
{
	int port;
	int lfd = t_listen_on(AF_INET, "127.0.0.1", &port);
	if (lfd < 0)
		FAILF("cannot listen on 127.0.0.1: %m");
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	if ((size_t)snprintf(path, sizeof(path), "%.90s/docker.sock", t_workdir) >= sizeof(path) || strlen(t_workdir) > 90) {
		close(lfd);
		FAILF("scratch directory path too long for sun_path");
	}
	unlink(path);
	struct sockaddr_un u = { .sun_family = AF_UNIX };
	snprintf(u.sun_path, sizeof(u.sun_path), "%s", path);
	int ufd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ufd < 0 || bind(ufd, (struct sockaddr *)&u, sizeof(u)) || listen(ufd, 4)) {
		close(lfd);
		FAILF("cannot listen on %s: %m", path);
	}
	char ports[16];
	snprintf(ports, sizeof(ports), "%d", port);
	struct t_run r;
	t_reset();
	if (t_run_act(l, 1, &r, (const char *const[]){ "tlshead", ports, path, NULL }) || r.timed_out) {
		close(lfd), close(ufd);
		FAILF("tlshead child did not run");
	}
	close(lfd);
	close(ufd);
	unlink(path);
	if (!exited_with(&r, 0))
		FAILF("tlshead child status %#x", r.status);
	const struct wa_stream_head *h0 = t_nth(WA_EV_STREAM_HEAD, 0), *h1 = t_nth(WA_EV_STREAM_HEAD, 1);
	if (!h0 || !h1 || h0->stream_off != 0 || h0->len != FIRST_PART || h1->stream_off != FIRST_PART ||
	    h1->len != HELLO_LEN - FIRST_PART || h1->syscall != WA_SEND_WRITEV || !(h1->hdr.flags & WA_F_CAPTURE_END))
		FAILF("stream heads: %d records, want [0,%d) by write and [%d,%d) by writev ending the capture",
		      t_count(WA_EV_STREAM_HEAD), FIRST_PART, FIRST_PART, HELLO_LEN);
	const struct wa_conn_end *e = t_nth(WA_EV_CONN_END, 0);
	static const unsigned char lo[4] = { 127, 0, 0, 1 };
	if (!e || e->how != WA_END_CLOSE || e->tx_bytes != HELLO_LEN || e->tx_calls != 2 || e->peer.port != port ||
	    memcmp(e->peer.addr, lo, 4))
		FAILF("conn_end: %d records; want close, %d bytes in 2 writes to 127.0.0.1:%d", t_count(WA_EV_CONN_END), HELLO_LEN, port);
	const struct wa_unix_connect *uc = t_nth(WA_EV_UNIX_CONNECT, 0);
	if (!uc || uc->ret != 0 || uc->path_len != strlen(path) || memcmp(uc + 1, path, uc->path_len) || (uc->hdr.flags & WA_F_USER_ADDR))
		FAILF("unix_connect: %d records; want %s from the kernel socket", t_count(WA_EV_UNIX_CONNECT), path);
	snprintf(detail, dlen, "stream head 20+49 bytes (write, writev), conn_end %d bytes, unix peer %s", HELLO_LEN, path);
	return 1;
}
