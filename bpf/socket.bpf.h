/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Sockets behind fds and user sockaddrs, for the network probes (net, conn,
 * io_uring). */
#ifndef WA_SOCKET_BPF_H
#define WA_SOCKET_BPF_H

#include "common.bpf.h"

/* The socket behind an fd, or NULL when the fd is not a socket. */
static __always_inline struct socket *wa_fd_socket(int fd)
{
	struct file *f = wa_fd_file(fd);
	if (!f)
		return NULL;
	__u16 mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	return BPF_CORE_READ(f, private_data);
}

/* Read a user sockaddr into the wire form; returns 0 if it is AF_INET/AF_INET6. */
static __always_inline int wa_read_sockaddr(struct wa_sockaddr *out, const void *uaddr, __u32 len)
{
	__u16 family = 0;
	if (!uaddr || bpf_probe_read_user(&family, sizeof(family), uaddr))
		return -1;
	out->family = family;
	if (family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin = {};
		bpf_probe_read_user(&sin, sizeof(sin), uaddr);
		out->port = bpf_ntohs(sin.sin_port);
		__builtin_memcpy(out->addr, &sin.sin_addr, 4);
		return 0;
	}
	if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 sin6 = {};
		bpf_probe_read_user(&sin6, sizeof(sin6), uaddr);
		out->port = bpf_ntohs(sin6.sin6_port);
		__builtin_memcpy(out->addr, &sin6.sin6_addr, 16);
		return 0;
	}
	return -1;
}

#endif
