/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * io_uring submissions by traced processes. io_uring requests (OPENAT,
 * CONNECT, UNLINKAT, ...) never pass a syscall tracepoint, so without this an
 * agent could do all of them unseen. io_uring_submit_req runs after the
 * kernel's prep has copied the request: for the file operations the names
 * are the kernel's own copies (struct filename), not user memory. The SQPOLL
 * thread is a thread of the owning process, so the traced check holds there
 * too.
 */
#ifndef WA_IO_URING_BPF_H
#define WA_IO_URING_BPF_H

#include "path.bpf.h"
#include "socket.bpf.h"

#define WA_IORING_SETUP_SQPOLL (1U << 1)

/* A name from a struct filename (kernel memory), anchored at dfd. */
static __always_inline __u32 wa_filename_write(struct wa_scratch *s, int dfd, struct filename *fn, char *buf,
					       __u16 *flags)
{
	if (!fn)
		return 0;
	const char *name = BPF_CORE_READ(fn, name);
	if (!name)
		return 0;
	return wa_name_path_write(s, dfd, name, buf, flags, true) & (WA_PATH_MAX - 1);
}

static __always_inline int wa_io_uring_record(struct io_kiocb *req)
{
	if (!wa_is_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return 0;
	struct wa_io_uring *r = (struct wa_io_uring *)s->rec;
	char *buf = (char *)(r + 1);
	__u16 flags = 0;
	__u32 l1 = 0, l2 = 0;
	__u8 op = BPF_CORE_READ(req, opcode);

	wa_fill_hdr(&r->hdr, WA_EV_IO_URING, 0);
	r->fd = BPF_CORE_READ(req, cqe.fd); /* set for opcodes that take a file; dfd below for the rest */
	r->op_flags = 0;
	r->opcode = op;
	r->sq_thread = (BPF_CORE_READ(req, ctx, flags) & WA_IORING_SETUP_SQPOLL) != 0;
	__builtin_memset(&r->peer, 0, sizeof(r->peer));
	r->pad = 0;
	r->pad2 = 0;

	/* the request's command data overlays the start of io_kiocb */
	if (op == IORING_OP_OPENAT || op == IORING_OP_OPENAT2) {
		if (bpf_core_type_exists(struct io_open)) {
			struct io_open *o = (void *)req;
			r->op_flags = BPF_CORE_READ(o, how.flags);
			r->fd = BPF_CORE_READ(o, dfd);
			l1 = wa_filename_write(s, BPF_CORE_READ(o, dfd), BPF_CORE_READ(o, filename), buf, &flags);
		}
	} else if (op == IORING_OP_UNLINKAT) {
		if (bpf_core_type_exists(struct io_unlink)) {
			struct io_unlink *u = (void *)req;
			r->op_flags = BPF_CORE_READ(u, flags);
			r->fd = BPF_CORE_READ(u, dfd);
			l1 = wa_filename_write(s, BPF_CORE_READ(u, dfd), BPF_CORE_READ(u, filename), buf, &flags);
		}
	} else if (op == IORING_OP_MKDIRAT) {
		if (bpf_core_type_exists(struct io_mkdir)) {
			struct io_mkdir *m = (void *)req;
			r->op_flags = BPF_CORE_READ(m, mode);
			r->fd = BPF_CORE_READ(m, dfd);
			l1 = wa_filename_write(s, BPF_CORE_READ(m, dfd), BPF_CORE_READ(m, filename), buf, &flags);
		}
	} else if (op == IORING_OP_RENAMEAT) {
		if (bpf_core_type_exists(struct io_rename)) {
			struct io_rename *n = (void *)req;
			r->op_flags = BPF_CORE_READ(n, flags);
			r->fd = BPF_CORE_READ(n, old_dfd);
			l1 = wa_filename_write(s, BPF_CORE_READ(n, old_dfd), BPF_CORE_READ(n, oldpath), buf, &flags);
			l2 = wa_filename_write(s, BPF_CORE_READ(n, new_dfd), BPF_CORE_READ(n, newpath), buf + l1, &flags);
		}
	} else if (op == IORING_OP_LINKAT || op == IORING_OP_SYMLINKAT) {
		if (bpf_core_type_exists(struct io_link)) {
			struct io_link *k = (void *)req;
			r->op_flags = BPF_CORE_READ(k, flags);
			r->fd = BPF_CORE_READ(k, new_dfd);
			struct filename *oldp = BPF_CORE_READ(k, oldpath);
			if (op == IORING_OP_SYMLINKAT) {
				/* a symlink's target is text, never resolved */
				const char *t = BPF_CORE_READ(oldp, name);
				long n = t ? bpf_probe_read_kernel_str(buf, WA_PATH_MAX, t) : 0;
				l1 = n > 0 ? (n - 1) & (WA_PATH_MAX - 1) : 0;
			} else {
				l1 = wa_filename_write(s, BPF_CORE_READ(k, old_dfd), oldp, buf, &flags);
			}
			l2 = wa_filename_write(s, BPF_CORE_READ(k, new_dfd), BPF_CORE_READ(k, newpath), buf + l1, &flags);
		}
	} else if (op == IORING_OP_CONNECT) {
		if (bpf_core_type_exists(struct io_connect)) {
			/* the address is copied from user memory at issue, after this point on
			 * older kernels: what we read here is the caller's buffer */
			struct io_connect *c = (void *)req;
			flags |= WA_F_USER_MEMORY;
			wa_read_sockaddr(&r->peer, BPF_CORE_READ(c, addr), BPF_CORE_READ(c, addr_len));
		}
	}
	l1 &= (WA_PATH_MAX - 1);
	l2 &= (WA_PATH_MAX - 1);
	r->path_len = l1;
	r->path2_len = l2;
	r->hdr.flags = flags;
	r->hdr.size = sizeof(*r) + l1 + l2;
	wa_output(r, sizeof(*r) + l1 + l2, WA_EV_IO_URING);
	return 0;
}

/* A ring created (io_uring_setup succeeded): using io_uring at all is the
 * finding, whether or not anything is submitted while we watch. */
SEC("tp_btf/io_uring_create")
int BPF_PROG(wa_io_uring_create, int fd, void *ring, __u32 sq_entries, __u32 cq_entries, __u32 flags)
{
	if (!wa_is_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	struct wa_io_uring *r = wa_reserve(sizeof(*r), WA_EV_IO_URING);
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	wa_fill_hdr(&r->hdr, WA_EV_IO_URING, sizeof(*r));
	r->fd = fd;
	r->op_flags = flags;
	r->opcode = WA_IORING_SETUP;
	r->sq_thread = (flags & WA_IORING_SETUP_SQPOLL) != 0;
	wa_submit(r, WA_EV_IO_URING);
	return 0;
}

/* 6.3 and later; the loader skips whichever of these two the kernel lacks */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(wa_io_uring_submit, struct io_kiocb *req) { return wa_io_uring_record(req); }

/* 6.0 .. 6.2: the same point in io_submit_sqe, after io_init_req's prep */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(wa_io_uring_submit_sqe, struct io_kiocb *req, bool force_nonblock) { return wa_io_uring_record(req); }

#endif
