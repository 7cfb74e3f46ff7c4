/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* connect and bind (with their results), and DNS datagrams caught at send. */
#ifndef WA_NET_BPF_H
#define WA_NET_BPF_H

#include "budget.bpf.h"
#include "conn_rx.bpf.h"

#define WA_K_CONNECT 1
#define WA_K_BIND 2
#define SOCK_RAW 3
#define IPPROTO_UDP 17

static __always_inline void wa_sock_kind(int fd, __u16 *type, __u16 *proto)
{
	struct socket *sock = wa_fd_socket(fd);
	if (!sock)
		return;
	*type = BPF_CORE_READ(sock, type);
	*proto = BPF_CORE_READ(sock, sk, sk_protocol);
}

/* connect and bind records have one layout (the address is the peer for one,
 * the local end for the other), so one exit path builds both. */
_Static_assert(sizeof(struct wa_connect) == sizeof(struct wa_bind), "wa_connect/wa_bind layouts differ");
_Static_assert(__builtin_offsetof(struct wa_connect, peer) == __builtin_offsetof(struct wa_bind, local),
	       "wa_connect.peer/wa_bind.local differ");
_Static_assert(__builtin_offsetof(struct wa_connect, fd) == __builtin_offsetof(struct wa_bind, fd),
	       "wa_connect.fd/wa_bind.fd differ");

/* The address the kernel used, from the socket itself at exit: the peer for
 * connect (skc_daddr/skc_dport), the local end for bind (skc_rcv_saddr/
 * skc_num, so an ephemeral port shows as assigned). False when the socket
 * holds none (not inet, or a failed call left the port 0). */
static __always_inline bool wa_sock_addr(int fd, bool peer, struct wa_sockaddr *out)
{
	struct socket *sock = wa_fd_socket(fd);
	if (!sock)
		return false;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return false;
	__u16 port = peer ? bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport)) : BPF_CORE_READ(sk, __sk_common.skc_num);
	if (port == 0)
		return false;
	out->family = family;
	out->port = port;
	/* typed temporaries: BPF_CORE_READ_INTO sizes the read by its destination,
	 * and an array destination would copy one byte */
	if (family == AF_INET) {
		__u32 a4 = peer ? BPF_CORE_READ(sk, __sk_common.skc_daddr) : BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(out->addr, &a4, 4);
	} else {
		struct in6_addr a6 = {};
		if (peer)
			BPF_CORE_READ_INTO(&a6, sk, __sk_common.skc_v6_daddr);
		else
			BPF_CORE_READ_INTO(&a6, sk, __sk_common.skc_v6_rcv_saddr);
		__builtin_memcpy(out->addr, &a6, 16);
	}
	return true;
}

static __always_inline bool wa_addr_any(const struct wa_sockaddr *a)
{
	__u64 w[2];
	__builtin_memcpy(w, a->addr, 16);
	return a->family == AF_INET ? (__u32)w[0] == 0 : (w[0] | w[1]) == 0;
}

static __always_inline bool wa_addr_differs(const struct wa_sockaddr *a, const struct wa_sockaddr *b)
{
	__u64 x[2], y[2];
	__builtin_memcpy(x, a->addr, 16);
	__builtin_memcpy(y, b->addr, 16);
	if (a->family != b->family || a->port != b->port)
		return true;
	return a->family == AF_INET ? (__u32)x[0] != (__u32)y[0] : (x[0] != y[0] || x[1] != y[1]);
}

static __always_inline int wa_sockaddr_exit(long ret, __u32 kind, __u16 type)
{
	struct wa_pending *p = wa_pending_get(kind);
	if (!p)
		return 0;
	struct wa_sockaddr kaddr = {}, uaddr = {};
	int fd = p->args[0];
	/* The caller's buffer is read only now, after the kernel used its own
	 * copy: another thread may have rewritten it. The socket says what the
	 * kernel did; the buffer is the fallback (and flagged) when it cannot. */
	bool have_k = wa_sock_addr(fd, kind == WA_K_CONNECT, &kaddr);
	bool have_u = wa_read_sockaddr(&uaddr, (void *)p->args[1], p->args[2]) == 0;
	if ((have_k || have_u) &&
	    (type != WA_EV_CONNECT || wa_admit(type, have_k ? &kaddr : &uaddr, sizeof(kaddr)))) {
		struct wa_connect *r = wa_reserve(sizeof(*r), type);
		if (r) {
			wa_fill_hdr(&r->hdr, type, sizeof(*r));
			r->ret = ret;
			r->sock_type = 0;
			r->protocol = 0;
			wa_sock_kind(fd, &r->sock_type, &r->protocol);
			if (have_k) {
				r->peer = kaddr;
				/* connect(0.0.0.0) goes to loopback and bind(port 0) gets a port:
				 * only a specific address and port can be told rewritten */
				if (!have_u || (uaddr.port && !wa_addr_any(&uaddr) && wa_addr_differs(&kaddr, &uaddr)))
					r->hdr.flags |= WA_F_ARG_REWRITTEN;
			} else {
				r->peer = uaddr;
				r->hdr.flags |= WA_F_USER_MEMORY;
			}
			r->fd = fd;
			wa_submit(r, type);
		}
	}
	wa_pending_drop();
	return 0;
}

WA_SAVE_ENTER(connect, WA_K_CONNECT, 3)

WA_SYSCALL_EXIT(connect)
{
	struct wa_pending *p = wa_pending_get(WA_K_CONNECT);
	if (p) {
		/* network depth: per-connection state, and AF_UNIX peers (conn*.bpf.h) */
		int fd = p->args[0];
		const void *uaddr = (const void *)p->args[1];
		__u32 ulen = p->args[2];
		wa_conn_connected(ctx->ret, fd);
		wa_unix_connect(ctx->ret, fd, uaddr, ulen);
	}
	return wa_sockaddr_exit(ctx->ret, WA_K_CONNECT, WA_EV_CONNECT);
}

WA_SAVE_ENTER(bind, WA_K_BIND, 3)

WA_SYSCALL_EXIT(bind) { return wa_sockaddr_exit(ctx->ret, WA_K_BIND, WA_EV_BIND); }

/*
 * A datagram is DNS when it goes to port 53: by explicit address, or over a
 * socket connected to port 53. Raw UDP sockets are captured whole (their
 * payload carries the UDP header) and user space checks the port. Capturing
 * at the syscall means glibc, musl, Go and hand-rolled resolvers all show.
 */
static __always_inline void wa_dns_capture(int fd, const void *uaddr, __u32 addrlen, const void *ubuf, __u64 len,
					   __u16 syscall)
{
	struct wa_sockaddr peer = {};
	__u16 type = 0, proto = 0;
	struct socket *sock = wa_fd_socket(fd);
	if (!sock)
		return;
	type = BPF_CORE_READ(sock, type);
	proto = BPF_CORE_READ(sock, sk, sk_protocol);

	bool is_dns = false;
	if (uaddr && wa_read_sockaddr(&peer, uaddr, addrlen) == 0) {
		is_dns = peer.port == 53 || type == SOCK_RAW;
	} else {
		struct sock *sk = BPF_CORE_READ(sock, sk);
		__u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
		if (dport == 53) {
			is_dns = true;
			peer.family = family;
			peer.port = dport;
			if (family == AF_INET)
				bpf_core_read(peer.addr, 4, &sk->__sk_common.skc_daddr); /* READ_INTO would copy sizeof(*addr) = 1 byte */
			else if (family == AF_INET6)
				bpf_core_read(peer.addr, 16, &sk->__sk_common.skc_v6_daddr);
		}
	}
	if (!is_dns || (type == SOCK_RAW && proto != IPPROTO_UDP && proto != 255 /* IPPROTO_RAW */))
		return;
	if (type != SOCK_RAW)
		wa_conn_open(fd, WA_CONN_DNS, NULL); /* its answers are captured (conn_rx.bpf.h) */

	struct wa_scratch *s = wa_scratch();
	if (!s)
		return;
	struct wa_dns *d = (struct wa_dns *)s->rec;
	wa_fill_hdr(&d->hdr, WA_EV_DNS, 0);
	d->sock_type = type;
	d->protocol = proto;
	d->peer = peer;
	d->syscall = syscall;
	d->orig_len = len;
	__u32 n = len > WA_DNS_MAX ? WA_DNS_MAX : len;
	if (len > WA_DNS_MAX)
		d->hdr.flags |= WA_F_TRUNC_PAYLOAD;
	n &= (2 * WA_DNS_MAX - 1);
	if (n > WA_DNS_MAX)
		n = WA_DNS_MAX;
	if (n && bpf_probe_read_user((void *)(d + 1), n, ubuf)) {
		d->hdr.flags |= WA_F_READ_FAULT;
		n = 0;
	}
	d->payload_len = n;
	d->hdr.size = sizeof(*d) + n;
	/* the key is the message past its 2-byte ID (a fresh ID per query) */
	if (n > 2 && !wa_admit(WA_EV_DNS, (__u8 *)(d + 1) + 2, n - 2))
		return;
	wa_output(d, sizeof(*d) + n, WA_EV_DNS);
}

WA_SYSCALL_ENTER(sendto)
{
	wa_dns_capture(ctx->args[0], (void *)ctx->args[4], ctx->args[5], (void *)ctx->args[1], ctx->args[2],
		       WA_SEND_SENDTO);
	wa_tx_enter(ctx, WA_SEND_SENDTO);
	return 0;
}

WA_SYSCALL_ENTER(write)
{
	wa_dns_capture(ctx->args[0], NULL, 0, (void *)ctx->args[1], ctx->args[2], WA_SEND_WRITE);
	wa_tx_enter(ctx, WA_SEND_WRITE);
	return 0;
}

/* sendmsg: the first iovec of the message carries the query */
static __always_inline void wa_dns_msghdr(int fd, const struct user_msghdr *um, __u16 syscall)
{
	struct user_msghdr m = {};
	struct iovec iov = {};
	if (bpf_probe_read_user(&m, sizeof(m), um))
		return;
	if (!m.msg_iov || m.msg_iovlen < 1 || bpf_probe_read_user(&iov, sizeof(iov), m.msg_iov))
		return;
	wa_dns_capture(fd, m.msg_name, m.msg_namelen, iov.iov_base, iov.iov_len, syscall);
}

WA_SYSCALL_ENTER(sendmsg)
{
	wa_dns_msghdr(ctx->args[0], (void *)ctx->args[1], WA_SEND_SENDMSG);
	wa_tx_enter(ctx, WA_SEND_SENDMSG);
	return 0;
}

/* sendmmsg: glibc sends the A and AAAA queries as a pair; look at two */
WA_SYSCALL_ENTER(sendmmsg)
{
	struct mmsghdr *v = (void *)ctx->args[1];
	__u32 vlen = ctx->args[2];
	wa_dns_msghdr(ctx->args[0], (void *)&v[0].msg_hdr, WA_SEND_SENDMMSG);
	if (vlen > 1)
		wa_dns_msghdr(ctx->args[0], (void *)&v[1].msg_hdr, WA_SEND_SENDMMSG);
	return 0;
}

#endif
