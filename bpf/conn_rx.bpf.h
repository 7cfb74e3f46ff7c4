/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Network depth, receive side and ends: read/recvfrom/recvmsg accounting and
 * DNS answers, close and process exit, AF_UNIX connects, listen and accept.
 * recv syscalls are the hottest on any host: past the dispatchers' gate
 * (traced callers only), every program here checks the per-fd state first.
 */
#ifndef WA_CONN_RX_BPF_H
#define WA_CONN_RX_BPF_H

#include "conn.bpf.h"

static __always_inline int wa_rx_enter(struct wa_sys_ctx *ctx, __u16 syscall)
{
	if (wa_conn_none() || !wa_conn_lookup(ctx->args[0]))
		return 0;
	struct wa_pending *p = wa_pending_save(ctx, WA_K_RX, 2);
	if (p)
		p->args[5] = syscall;
	return 0;
}

static __always_inline void wa_dns_answer(__u32 fd, __u16 syscall, __u64 a1, __u64 moved)
{
	const void *ptr = (const void *)a1;
	__u64 room = moved;
	if (syscall == WA_RECV_RECVMSG) {
		struct user_msghdr m = {};
		struct iovec iov = {};
		if (bpf_probe_read_user(&m, sizeof(m), (void *)a1) || !m.msg_iov || m.msg_iovlen < 1 ||
		    bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov))
			return;
		ptr = iov.iov_base;
		room = iov.iov_len < moved ? iov.iov_len : moved;
	}
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return;
	struct wa_dns_answer *d = (struct wa_dns_answer *)s->rec;
	wa_fill_hdr(&d->hdr, WA_EV_DNS_ANSWER, 0);
	d->fd = fd;
	d->syscall = syscall;
	d->orig_len = moved;
	d->pad = 0;
	__u32 n = room > WA_DNS_ANSWER_MAX ? WA_DNS_ANSWER_MAX : room;
	if (moved > n)
		d->hdr.flags |= WA_F_TRUNC_PAYLOAD;
	n &= 2047;
	if (n > WA_DNS_ANSWER_MAX)
		n = WA_DNS_ANSWER_MAX;
	if (n && bpf_probe_read_user((void *)(d + 1), n, ptr)) {
		d->hdr.flags |= WA_F_READ_FAULT;
		n = 0;
	}
	d->payload_len = n;
	d->hdr.size = sizeof(*d) + n;
	wa_output(d, sizeof(*d) + n, WA_EV_DNS_ANSWER);
}

/* The response starts at the read that ends the longest wait among the
 * first reads after the last write: TLS 1.3 session tickets arrive right
 * after the handshake, the response only once the server has an answer. */
#define WA_RESP_READS 4

static __always_inline int wa_rx_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_RX);
	if (!p)
		return 0;
	__u32 fd = p->args[0];
	__u64 a1 = p->args[1];
	__u16 syscall = p->args[5];
	wa_pending_drop();
	if (ret <= 0)
		return 0;
	struct wa_conn *c = wa_conn_lookup(fd);
	if (!c)
		return 0;
	if (c->kind & WA_CONN_DNS)
		wa_dns_answer(fd, syscall, a1, ret);
	__u64 now = bpf_ktime_get_boot_ns();
	if (c->first_rx_ns == 0)
		c->first_rx_ns = now;
	c->last_rx_ns = now;
	if (c->last_tx_ns != 0 && c->rx_after_tx < WA_RESP_READS) {
		__u64 gap = now - c->prev_ns;
		if (c->resp_start_ns == 0 || gap > c->best_gap_ns) {
			c->best_gap_ns = gap;
			c->resp_start_ns = now;
		}
		c->prev_ns = now;
		c->rx_after_tx++;
	}
	c->rx_bytes += ret;
	c->rx_calls++;
	return 0;
}

WA_SYSCALL_ENTER(read) { return wa_rx_enter(ctx, WA_RECV_READ); }

WA_SYSCALL_EXIT(read) { return !wa_conn_none() ? wa_rx_exit(ctx->ret) : 0; }

WA_SYSCALL_ENTER(recvfrom) { return wa_rx_enter(ctx, WA_RECV_RECVFROM); }

WA_SYSCALL_EXIT(recvfrom) { return !wa_conn_none() ? wa_rx_exit(ctx->ret) : 0; }

WA_SYSCALL_ENTER(recvmsg) { return wa_rx_enter(ctx, WA_RECV_RECVMSG); }

WA_SYSCALL_EXIT(recvmsg) { return !wa_conn_none() ? wa_rx_exit(ctx->ret) : 0; }

WA_SYSCALL_ENTER(close)
{
	if (wa_conn_none())
		return 0;
	__u32 fd = ctx->args[0];
	struct wa_conn *c = wa_conn_lookup(fd);
	if (!c)
		return 0;
	wa_conn_emit_end(fd, c, WA_END_CLOSE);
	wa_conn_forget(fd);
	return 0;
}

/* Process exit: the kernel closes its fds without a close(2) we could see. */
struct wa_sweep {
	__u32 tgid;
	__u32 n;
};

static long wa_sweep_one(struct bpf_map *map, struct wa_conn_key *k, struct wa_conn *c, struct wa_sweep *sw)
{
	if (k->tgid != sw->tgid)
		return 0;
	wa_conn_emit_end(k->fd, c, WA_END_EXIT);
	if (bpf_map_delete_elem(map, k) == 0)
		__sync_fetch_and_add(&wa_conn_live, -1);
	sw->n++;
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(wa_conn_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	/* not wa_is_traced: wa_exit may already have removed the tgid */
	__u32 *held = bpf_map_lookup_elem(&wa_conn_owners, &tgid);
	if (!held)
		return 0;
	struct wa_sweep sw = { .tgid = tgid };
	if (*held > 0)
		bpf_for_each_map_elem(&wa_conns, wa_sweep_one, &sw, 0);
	bpf_map_delete_elem(&wa_conn_owners, &tgid);
	return 0;
}

/* ---- AF_UNIX connect ---- */

/* Called from the connect exit before its pending args are dropped. */
static __always_inline void wa_unix_connect(long ret, int fd, const void *uaddr, __u32 ulen)
{
	struct socket *sock = wa_fd_socket(fd);
	if (!sock)
		return;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return;
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return;
	struct wa_unix_connect *r = (struct wa_unix_connect *)s->rec;
	wa_fill_hdr(&r->hdr, WA_EV_UNIX_CONNECT, 0);
	r->ret = ret;
	r->fd = fd;
	r->sock_type = BPF_CORE_READ(sock, type);
	r->pad = 0;
	char *path = (char *)(r + 1);
	__u32 n = 0;
	struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ((struct unix_sock *)sk, peer);
	struct unix_address *ua = peer ? BPF_CORE_READ(peer, addr) : NULL;
	if (ret == 0 && ua) {
		int alen = BPF_CORE_READ(ua, len); /* sun_family included */
		n = alen > 2 ? alen - 2 : 0;
		if (n > WA_UNIX_PATH_MAX)
			n = WA_UNIX_PATH_MAX;
		if (n && bpf_probe_read_kernel(path, n & 127, &ua->name[0].sun_path)) {
			r->hdr.flags |= WA_F_READ_FAULT;
			n = 0;
		}
	} else if (uaddr && ulen > 2) {
		/* a failed connect has no peer: what the caller asked for is all there is */
		r->hdr.flags |= WA_F_USER_ADDR;
		n = ulen - 2;
		if (n > WA_UNIX_PATH_MAX)
			n = WA_UNIX_PATH_MAX;
		if (bpf_probe_read_user(path, n & 127, (const char *)uaddr + 2)) {
			r->hdr.flags |= WA_F_READ_FAULT;
			n = 0;
		}
	}
	n &= 127;
	/* a filesystem path ends at its NUL; an abstract name (leading NUL) is its full length */
	if (n > 1 && path[0] != 0) {
		for (__u32 i = 1; i < WA_UNIX_PATH_MAX; i++) {
			if (i >= n)
				break;
			if (path[i & 127] == 0) {
				n = i;
				break;
			}
		}
	}
	r->path_len = n;
	r->hdr.size = sizeof(*r) + n;
	wa_output(r, sizeof(*r) + n, WA_EV_UNIX_CONNECT);
}

/* ---- listen / accept ---- */

WA_SAVE_ENTER(listen, WA_K_LISTEN, 2)

static __always_inline void wa_listen_record(__u16 type, long ret, __u32 fd, __u32 arg, int sock_fd, bool with_peer)
{
	struct wa_listen *r = wa_reserve(sizeof(*r), type);
	if (!r)
		return;
	__builtin_memset(r, 0, sizeof(*r));
	wa_fill_hdr(&r->hdr, type, sizeof(*r));
	r->ret = ret;
	r->fd = fd;
	r->backlog = arg;
	struct socket *sock = sock_fd >= 0 ? wa_fd_socket(sock_fd) : NULL;
	if (sock) {
		struct sock *sk = BPF_CORE_READ(sock, sk);
		r->sock_type = BPF_CORE_READ(sock, type);
		r->protocol = BPF_CORE_READ(sk, sk_protocol);
		wa_sock_local(sk, &r->local);
		if (with_peer)
			wa_sock_peer(sk, &r->peer);
	}
	wa_submit(r, type);
}

WA_SYSCALL_EXIT(listen)
{
	struct wa_pending *p = wa_pending_get(WA_K_LISTEN);
	if (!p)
		return 0;
	__u32 fd = p->args[0], backlog = p->args[1];
	wa_pending_drop();
	wa_listen_record(WA_EV_LISTEN, ctx->ret, fd, backlog, fd, false);
	return 0;
}

/* accept: the new connection's own socket says who connected (no user sockaddr). */
static __always_inline int wa_accept_exit(long ret)
{
	if (ret < 0)
		return 0;
	wa_listen_record(WA_EV_ACCEPT, ret, ret, 0, ret, true);
	return 0;
}

WA_SYSCALL_EXIT(accept) { return wa_accept_exit(ctx->ret); }

WA_SYSCALL_EXIT(accept4) { return wa_accept_exit(ctx->ret); }

#endif
