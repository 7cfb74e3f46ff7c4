/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Network depth: per-connection state for the TCP sockets a traced process
 * connects and the sockets it sends DNS queries on. From it:
 *   - the head of a TCP stream (the TLS ClientHello, only when the first
 *     bytes look like a TLS handshake record; plaintext is never captured),
 *   - DNS answers received on a query socket,
 *   - byte and timing accounting per connection, emitted when it ends.
 * Every send/recv program starts with the traced check and then needs a
 * wa_conns entry for the fd: an untraced task pays one hash lookup per hooked
 * syscall, a traced one a second lookup per fd that has no state.
 */
#ifndef WA_CONN_BPF_H
#define WA_CONN_BPF_H

#include "common.bpf.h"
#include "socket.bpf.h"

#define WA_K_TX 30     /* args: fd, buf | iov | msghdr, len; args[5] = enum wa_send_syscall */
#define WA_K_RX 31     /* args: fd, buf | msghdr; args[5] = enum wa_recv_syscall */
#define WA_K_LISTEN 32 /* args: fd, backlog */
#define AF_UNIX 1
#define SOCK_STREAM 1

#define WA_CONN_TCP 1 /* a connected TCP socket: accounted, its head captured */
#define WA_CONN_DNS 2 /* sent a DNS query: answers captured */

struct wa_conn_key {
	__u32 tgid;
	__u32 fd;
};

struct wa_conn {
	__u64 conn_id; /* boot ns at connect (or at the first query) */
	__u64 first_tx_ns, last_tx_ns, first_rx_ns, last_rx_ns;
	__u64 prev_ns;       /* the last write, or the last of the first reads after it */
	__u64 best_gap_ns;   /* longest wait among the first reads after the last write */
	__u64 resp_start_ns; /* the read that ended that wait */
	__u64 ans_tx_ns;     /* the previous exchange that got an answer: its last write */
	__u64 ans_resp_ns;   /* and its answer's start (a close_notify sent last gets none) */
	__u64 tx_bytes, rx_bytes;
	__u32 tx_calls, rx_calls;
	struct wa_sockaddr peer;
	__u16 kind;
	__u16 head_left; /* stream-head bytes still to capture */
	__u8 head_writes;
	__u8 rx_after_tx;
	__u8 pad[2];
};

/* Entries in wa_conns. Zero (no traced process holds a connection: the
 * common case) lets every send/recv program return after one load, before
 * even the traced lookup. Kept by atomic adds beside each insert / delete. */
volatile __s32 wa_conn_live;

static __always_inline bool wa_conn_none(void)
{
	return wa_conn_live <= 0;
}

/* Bounded: an fd whose state cannot be stored is counted as a dropped
 * conn_end (its accounting is lost) or dns_answer, never silently. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct wa_conn_key);
	__type(value, struct wa_conn);
} wa_conns SEC(".maps");

/* tgid -> entries it holds in wa_conns: the exit sweep walks wa_conns only
 * for a process that has some. A conn is stored only after its owner is
 * claimed here: a conn without an owner entry would never be swept at exit
 * (its conn_end lost, its slot held until the map fills), so a full owner
 * map is a counted drop, like a full wa_conns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u32);
} wa_conn_owners SEC(".maps");

static __always_inline struct wa_conn *wa_conn_lookup(__u32 fd)
{
	struct wa_conn_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	return bpf_map_lookup_elem(&wa_conns, &k);
}

/* One more entry for tgid; false when the owner map has no room for it. */
static __always_inline bool wa_conn_owner_claim(__u32 tgid)
{
	__u32 *n = bpf_map_lookup_elem(&wa_conn_owners, &tgid);
	if (!n) {
		__u32 zero = 0;
		/* -EEXIST: another thread of tgid claimed first; use its entry */
		long err = bpf_map_update_elem(&wa_conn_owners, &tgid, &zero, BPF_NOEXIST);
		if (err && err != -17 /* EEXIST */)
			return false;
		n = bpf_map_lookup_elem(&wa_conn_owners, &tgid);
		if (!n)
			return false;
	}
	__sync_fetch_and_add(n, 1);
	return true;
}

static __always_inline void wa_conn_owner_release(__u32 tgid)
{
	__u32 *n = bpf_map_lookup_elem(&wa_conn_owners, &tgid);
	if (n)
		__sync_fetch_and_add(n, -1);
}

static __always_inline void wa_conn_emit_end(__u32 fd, struct wa_conn *c, __u16 how)
{
	if (!(c->kind & WA_CONN_TCP))
		return;
	struct wa_conn_end *r = wa_reserve(sizeof(*r), WA_EV_CONN_END);
	if (!r)
		return;
	wa_fill_hdr(&r->hdr, WA_EV_CONN_END, sizeof(*r));
	r->fd = fd;
	r->how = how;
	r->pad = 0;
	r->peer = c->peer;
	r->conn_id = c->conn_id;
	r->first_tx_ns = c->first_tx_ns;
	r->last_tx_ns = c->last_tx_ns;
	r->first_rx_ns = c->first_rx_ns;
	r->last_rx_ns = c->last_rx_ns;
	r->req_end_ns = c->resp_start_ns ? c->last_tx_ns : c->ans_tx_ns;
	r->resp_start_ns = c->resp_start_ns ? c->resp_start_ns : c->ans_resp_ns;
	r->tx_bytes = c->tx_bytes;
	r->rx_bytes = c->rx_bytes;
	r->tx_calls = c->tx_calls;
	r->rx_calls = c->rx_calls;
	wa_submit(r, WA_EV_CONN_END);
}

/* Peer address of a connected inet socket, from the kernel's sock. */
static __always_inline void wa_sock_peer(struct sock *sk, struct wa_sockaddr *out)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->family = family;
	out->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* bpf_core_read, not BPF_CORE_READ_INTO: that one sizes the copy by
	 * *dst, one byte of the addr array */
	if (family == AF_INET)
		bpf_core_read(out->addr, 4, &sk->__sk_common.skc_daddr);
	else if (family == AF_INET6)
		bpf_core_read(out->addr, 16, &sk->__sk_common.skc_v6_daddr);
}

static __always_inline void wa_sock_local(struct sock *sk, struct wa_sockaddr *out)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	out->family = family;
	out->port = BPF_CORE_READ(sk, __sk_common.skc_num); /* host order already */
	if (family == AF_INET)
		bpf_core_read(out->addr, 4, &sk->__sk_common.skc_rcv_saddr);
	else if (family == AF_INET6)
		bpf_core_read(out->addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
}

/* Starts (or extends) the state of a traced process's fd. A TCP connect on
 * an fd that still has state ends the old connection first (fd reuse
 * without a close we saw: dup2 over it, close_range, ...). */
static __always_inline void wa_conn_open(__u32 fd, __u16 kind, struct sock *sk)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct wa_conn_key k = { .tgid = tgid, .fd = fd };
	struct wa_conn *old = bpf_map_lookup_elem(&wa_conns, &k);
	if (old) {
		if (kind == WA_CONN_DNS) {
			old->kind |= WA_CONN_DNS;
			return;
		}
		wa_conn_emit_end(fd, old, WA_END_REUSED);
	}
	struct wa_conn c = {};
	c.conn_id = bpf_ktime_get_boot_ns();
	c.kind = kind;
	if (kind == WA_CONN_TCP) {
		c.head_left = WA_STREAM_HEAD_MAX;
		c.head_writes = WA_STREAM_HEAD_WRITES;
		wa_sock_peer(sk, &c.peer);
	}
	__u32 lost = kind == WA_CONN_TCP ? WA_EV_CONN_END : WA_EV_DNS_ANSWER;
	if (!old && !wa_conn_owner_claim(tgid)) {
		wa_count(&wa_dropped, lost);
		return;
	}
	if (bpf_map_update_elem(&wa_conns, &k, &c, BPF_ANY)) {
		if (!old)
			wa_conn_owner_release(tgid);
		wa_count(&wa_dropped, lost);
		return;
	}
	if (!old)
		__sync_fetch_and_add(&wa_conn_live, 1);
}

static __always_inline void wa_conn_forget(__u32 fd)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct wa_conn_key k = { .tgid = tgid, .fd = fd };
	if (bpf_map_delete_elem(&wa_conns, &k) == 0) {
		wa_conn_owner_release(tgid);
		__sync_fetch_and_add(&wa_conn_live, -1);
	}
}

/* connect exit of an inet stream socket: start accounting it. */
static __always_inline void wa_conn_connected(long ret, int fd)
{
	if (ret != 0 && ret != -115 /* EINPROGRESS */)
		return;
	struct socket *sock = wa_fd_socket(fd);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return;
	wa_conn_open(fd, WA_CONN_TCP, sk);
}

/* ---- send side ---- */

/* sys_enter of a send syscall: remember the buffer for the exit when the fd has state. */
static __always_inline void wa_tx_enter(struct wa_sys_ctx *ctx, __u16 syscall)
{
	if (wa_conn_none() || !wa_conn_lookup(ctx->args[0]))
		return;
	struct wa_pending *p = wa_pending_save(ctx, WA_K_TX, 3);
	if (p)
		p->args[5] = syscall;
}

/* The user pointer and length of the first bytes a send syscall moved. */
static __always_inline int wa_first_iov(__u16 syscall, __u64 a1, __u64 a2, const void **ptr, __u64 *len)
{
	struct iovec iov = {};
	if (syscall == WA_SEND_WRITE || syscall == WA_SEND_SENDTO) {
		*ptr = (const void *)a1;
		*len = a2;
		return 0;
	}
	if (syscall == WA_SEND_SENDMSG) {
		struct user_msghdr m = {};
		if (bpf_probe_read_user(&m, sizeof(m), (void *)a1) || !m.msg_iov || m.msg_iovlen < 1)
			return -1;
		a1 = (__u64)m.msg_iov;
	} else if (a2 < 1) {
		return -1;
	}
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)a1))
		return -1;
	*ptr = iov.iov_base;
	*len = iov.iov_len;
	return 0;
}

static __always_inline void wa_head_capture(__u32 fd, struct wa_conn *c, __u16 syscall, __u64 a1, __u64 a2, __u64 moved)
{
	const void *ptr = NULL;
	__u64 first = 0;
	__u32 off = c->tx_bytes;
	if (wa_first_iov(syscall, a1, a2, &ptr, &first)) {
		c->head_left = 0;
		return;
	}
	if (off == 0) {
		__u8 sig[2] = {};
		/* 0x16 0x03: a TLS handshake record. Anything else (HTTP, SSH, a
		 * database protocol) is not ours to read. */
		if (bpf_probe_read_user(sig, 2, ptr) || sig[0] != 0x16 || sig[1] != 0x03) {
			c->head_left = 0;
			return;
		}
	}
	__u64 n = moved < first ? moved : first;
	if (n > c->head_left)
		n = c->head_left;
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return;
	struct wa_stream_head *h = (struct wa_stream_head *)s->rec;
	wa_fill_hdr(&h->hdr, WA_EV_STREAM_HEAD, 0);
	h->fd = fd;
	h->syscall = syscall;
	h->stream_off = off;
	h->orig_len = moved;
	h->conn_id = c->conn_id;
	__u8 *data = (__u8 *)(h + 1);
	n &= (2 * WA_STREAM_HEAD_MAX - 1);
	if (n > WA_STREAM_HEAD_MAX)
		n = WA_STREAM_HEAD_MAX;
	if (n == 0 || bpf_probe_read_user(data, n, ptr)) {
		h->hdr.flags |= WA_F_READ_FAULT;
		n = 0;
		c->head_left = 0;
	}
	__u32 left = c->head_left > n ? c->head_left - n : 0;
	if (off == 0 && n >= 9) {
		/* the handshake header's 24-bit length: stop once the ClientHello is in */
		__u32 need = 9 + (((__u32)data[6] << 16) | ((__u32)data[7] << 8) | data[8]);
		__u32 rest = need > n ? need - n : 0;
		if (rest < left)
			left = rest;
	}
	if (n < moved)
		left = 0; /* more went out than the first iovec we read: the stream has a gap */
	if (c->head_writes > 0)
		c->head_writes--;
	if (c->head_writes == 0)
		left = 0;
	c->head_left = left;
	if (left == 0)
		h->hdr.flags |= WA_F_CAPTURE_END;
	h->len = n;
	h->hdr.size = sizeof(*h) + n;
	wa_output(h, sizeof(*h) + n, WA_EV_STREAM_HEAD);
}

static __always_inline int wa_tx_exit(long ret)
{
	struct wa_pending *p = wa_pending_get(WA_K_TX);
	if (!p)
		return 0;
	__u32 fd = p->args[0];
	__u64 a1 = p->args[1], a2 = p->args[2];
	__u16 syscall = p->args[5];
	wa_pending_drop();
	if (ret <= 0)
		return 0;
	struct wa_conn *c = wa_conn_lookup(fd);
	if (!c)
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();
	if (c->head_left > 0 && (c->kind & WA_CONN_TCP))
		wa_head_capture(fd, c, syscall, a1, a2, ret);
	if (c->first_tx_ns == 0)
		c->first_tx_ns = now;
	if (c->resp_start_ns) {
		c->ans_tx_ns = c->last_tx_ns;
		c->ans_resp_ns = c->resp_start_ns;
	}
	c->last_tx_ns = now;
	c->prev_ns = now;
	c->rx_after_tx = 0;
	c->best_gap_ns = 0;
	c->resp_start_ns = 0;
	c->tx_bytes += ret;
	c->tx_calls++;
	return 0;
}

WA_SYSCALL_EXIT(write)
{
	if (wa_conn_none())
		return 0;
	return wa_tx_exit(ctx->ret);
}

WA_SYSCALL_ENTER(writev)
{
	if (!wa_conn_none())
		wa_tx_enter(ctx, WA_SEND_WRITEV);
	return 0;
}

WA_SYSCALL_EXIT(writev)
{
	if (wa_conn_none())
		return 0;
	return wa_tx_exit(ctx->ret);
}

WA_SYSCALL_EXIT(sendto)
{
	if (wa_conn_none())
		return 0;
	return wa_tx_exit(ctx->ret);
}

WA_SYSCALL_EXIT(sendmsg)
{
	if (wa_conn_none())
		return 0;
	return wa_tx_exit(ctx->ret);
}

#endif
