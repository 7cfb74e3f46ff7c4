/* SPDX-License-Identifier: MIT */
/*
 * The one definition of agent-witness's kernel → user-space wire format.
 *
 * Every record in the ring buffer starts with `struct wa_hdr`. `hdr.size` is
 * the number of meaningful bytes in the record (header included); records
 * with variable parts (exec, dns, file, rename) carry the lengths of those
 * parts in their fixed part and the bytes follow it, in the documented order.
 * All integers are host-endian (the sensor and its consumer share a host),
 * except where a field name ends in `_be` (network byte order).
 *
 * The native addon exports offsets and sizes from this file (native/layout.c)
 * and the TypeScript decoder refuses to run when its own table disagrees.
 * Bump WA_WIRE_VERSION on any change.
 *
 * This header is included by BPF C (with vmlinux.h types) and by user-space C.
 */
#ifndef AGENT_WITNESS_EVENTS_H
#define AGENT_WITNESS_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define WA_WIRE_VERSION 3

/* Bounds, documented in the README. Records past a bound carry a TRUNC flag. */
#define WA_COMM_LEN      16
#define WA_ARGV_MAX      4096  /* bytes of NUL-separated argv captured per exec */
#define WA_PATH_MAX      4096  /* bytes of a resolved path (PATH_MAX) */
#define WA_NAME_MAX      256   /* one path component, NUL included */
#define WA_PATH_DEPTH    48    /* path components walked before giving up (flag) */
#define WA_FILENAME_MAX  512   /* exec's filename as passed to execve */
#define WA_DNS_MAX       512   /* bytes of a DNS datagram captured */
#define WA_STREAM_HEAD_MAX 2048 /* bytes captured from the start of a TCP stream (TLS ClientHello) */
#define WA_STREAM_HEAD_WRITES 4 /* writes the head capture may span (a fragmented ClientHello) */
#define WA_DNS_ANSWER_MAX 1232  /* bytes of a DNS answer captured (the EDNS0 size DNS flag day chose) */
#define WA_UNIX_PATH_MAX 108    /* sun_path */
#define WA_TLS_CHUNK_MAX 8192   /* plaintext bytes per tls_data record */
#define WA_TLS_CHUNKS    8      /* records per SSL call (64 KiB); past that TRUNC_PAYLOAD */

enum wa_event_type {
	WA_EV_EXEC = 1,
	WA_EV_EXIT = 2,
	WA_EV_FORK = 3,
	WA_EV_CONNECT = 4,
	WA_EV_DNS = 5,
	WA_EV_FILE_WRITE = 6,
	WA_EV_FILE_UNLINK = 7,
	WA_EV_FILE_RENAME = 8,
	WA_EV_FILE_READ_SENSITIVE = 9,
	WA_EV_SETUID = 10,
	WA_EV_SETGID = 11,
	WA_EV_PTRACE = 12,
	WA_EV_BIND = 13,
	/* network depth (36..47) */
	WA_EV_STREAM_HEAD = 36,   /* first bytes written on a connected TCP socket */
	WA_EV_DNS_ANSWER = 37,    /* a datagram received on a socket that sent a DNS query */
	WA_EV_CONN_END = 38,      /* byte and timing accounting of a TCP connection at its end */
	WA_EV_UNIX_CONNECT = 39,
	WA_EV_LISTEN = 40,
	WA_EV_ACCEPT = 41,
	WA_EV_TLS_DATA = 42,      /* plaintext an SSL_write / SSL_read moved (--tls-metadata only) */
	/* Wave 2 numbering, reserved by area so parallel work never collides:
	 *   14..29  the boundary: kill, io_uring, link/symlink, chmod, memfd,
	 *           module load, bpf(), mount, namespaces
	 *   30..35  loss accounting: scope overflow, suppressed repeats
	 *   36..47  network depth: TLS hello, DNS answers, unix connect,
	 *           listen/accept, connection byte accounting, TLS uprobes
	 *   48..55  speed / resident sensor
	 * A type is added here with its number from its area's range. */
	/* -- the boundary (14..29) -- */
	WA_EV_KILL = 14,       /* a signal to a process outside the sender's tree */
	WA_EV_IO_URING = 15,   /* an io_uring submission */
	WA_EV_LINK = 16,       /* link / linkat (struct wa_sysop) */
	WA_EV_SYMLINK = 17,    /* symlink / symlinkat */
	WA_EV_CHMOD = 18,      /* chmod / fchmod / fchmodat / fchmodat2 */
	WA_EV_MEMFD = 19,      /* memfd_create */
	WA_EV_MODULE = 20,     /* init_module / finit_module */
	WA_EV_BPF = 21,        /* bpf(2) */
	WA_EV_MOUNT = 22,      /* mount / umount2 / move_mount */
	WA_EV_NAMESPACE = 23,  /* unshare / setns */
	WA_EV_SCOPE_OVERFLOW = 30, /* a traced process's child could not join the traced set */
	WA_EV_MAX = 64, /* size of per-type counter arrays */
};

/* hdr.flags */
enum wa_flags {
	WA_F_TRUNC_ARGV = 1 << 0,     /* argv longer than WA_ARGV_MAX */
	WA_F_TRUNC_PATH = 1 << 1,     /* a path hit WA_PATH_MAX or WA_PATH_DEPTH */
	WA_F_TRUNC_PAYLOAD = 1 << 2,  /* DNS datagram longer than WA_DNS_MAX */
	WA_F_TRUNC_FILENAME = 1 << 3, /* exec filename longer than WA_FILENAME_MAX */
	WA_F_READ_FAULT = 1 << 4,     /* a user/kernel read failed; field may be partial */
	WA_F_RELATIVE = 1 << 5,       /* a path could not be anchored; it is as the caller gave it */
	WA_F_CAPTURE_END = 1 << 12,   /* the last stream-head record of this connection */
	WA_F_USER_ADDR = 1 << 13,     /* the address came from user memory, not the kernel socket */
	/* Wave 2, by area: bits 6..9 the boundary, 10 paths in a chroot (loss
	 * accounting needed none), 11 free, 12..13 network depth, 14..15 speed. */
	/* -- the boundary (6..9) -- */
	WA_F_USER_MEMORY = 1 << 6,    /* some field was read from the caller's memory, not a kernel
				       * object: the caller could have changed it (docs/ndjson.md
				       * names the fields per event) */
	WA_F_FILELESS = 1 << 7,       /* exec: the executable has no name in any directory
				       * (memfd, O_TMPFILE, deleted): a fileless exec */
	WA_F_ARG_REWRITTEN = 1 << 8,  /* connect/bind: the caller's buffer no longer holds the
				       * address the kernel used (rewritten during the call);
				       * the record has the kernel's */
	WA_F_CHROOT = 1 << 9,         /* the task's root is not its mount namespace's root
				       * (chroot): every path in the record, resolved or as
				       * given, is relative to the task's root, like d_path */
	WA_F_OUTSIDE_ROOT = 1 << 10,  /* a chrooted task named a file outside its root (an fd
				       * or cwd from before the chroot: the classic escape);
				       * the path is relative to the mount namespace's root */
};

/* 56 bytes, common to every record. */
struct wa_hdr {
	__u16 type;          /* enum wa_event_type */
	__u16 flags;         /* enum wa_flags */
	__u32 size;          /* meaningful bytes, header included */
	__u64 ts_ns;         /* CLOCK_BOOTTIME ns (bpf_ktime_get_boot_ns) */
	__u32 pid;           /* tgid */
	__u32 tid;
	__u32 uid;           /* real uid at the event */
	__u32 gid;           /* real gid at the event */
	__u64 cgroup_id;     /* cgroup v2 id (inode of the cgroup dir) */
	char comm[WA_COMM_LEN];
};

/* exec: followed by filename[filename_len], argv[argv_len] (NUL-separated),
 * cwd[cwd_len], exe[exe_len], root[root_len]; none NUL-terminated on the wire. */
struct wa_exec {
	struct wa_hdr hdr;
	__u32 ppid;
	__u32 argc;          /* argv entries seen (may exceed those captured) */
	__u32 euid;
	__u32 egid;
	__u16 filename_len;
	__u16 argv_len;
	__u16 cwd_len;
	__u16 exe_len;       /* resolved path of the executable file */
	__u16 root_len;      /* WA_F_CHROOT: the task's root, relative to its mount
			      * namespace's root; 0 when not chrooted */
	__u16 pad[3];
};                       /* then filename, argv, cwd, exe, root */

struct wa_exit {
	struct wa_hdr hdr;
	__u32 ppid;
	__u32 exit_code;     /* raw wait status: (code << 8) | signal, core flag 0x80 */
};

struct wa_fork {
	struct wa_hdr hdr;   /* hdr.pid = parent tgid */
	__u32 child_pid;     /* child tgid */
	__u32 pad;
};

/* Address block shared by connect / bind / dns. */
struct wa_sockaddr {
	__u16 family;        /* AF_INET=2, AF_INET6=10 */
	__u16 port;          /* host order */
	__u8 addr[16];       /* v4 in the first 4 bytes */
};

struct wa_connect {
	struct wa_hdr hdr;
	__s32 ret;           /* syscall result: 0 or -errno (-EINPROGRESS for non-blocking) */
	__u16 sock_type;     /* SOCK_STREAM=1, SOCK_DGRAM=2, SOCK_RAW=3, 0 unknown */
	__u16 protocol;      /* IPPROTO_* of the socket, 0 unknown */
	struct wa_sockaddr peer;
	__u32 fd;
};

/* DNS: a datagram sent to port 53 (or from a raw socket); payload follows.
 * For raw sockets the payload starts at the transport header. */
struct wa_dns {
	struct wa_hdr hdr;
	__u16 sock_type;
	__u16 protocol;
	struct wa_sockaddr peer;
	__u16 payload_len;   /* bytes captured */
	__u16 syscall;       /* enum wa_send_syscall */
	__u32 orig_len;      /* bytes the syscall was asked to send */
};

enum wa_send_syscall { WA_SEND_SENDTO = 1, WA_SEND_SENDMSG = 2, WA_SEND_SENDMMSG = 3, WA_SEND_WRITE = 4, WA_SEND_WRITEV = 5 };

/* file write / unlink / read_sensitive: path[path_len] follows (absolute
 * unless WA_F_RELATIVE). */
struct wa_file {
	struct wa_hdr hdr;
	__s32 ret;
	__u32 open_flags;    /* open(2) flags; 0 for unlink */
	__u32 mode;
	__u16 path_len;
	__u16 pad;
};

/* rename: old path then new path follow. */
struct wa_rename {
	struct wa_hdr hdr;
	__s32 ret;
	__u32 rename_flags;
	__u16 old_len;
	__u16 new_len;
	__u32 pad;
};

/* setuid family / setgid family: ids before and after (real, effective, saved). */
struct wa_setid {
	struct wa_hdr hdr;
	__s32 ret;
	__u32 syscall;       /* enum wa_setid_syscall */
	__u32 old_ids[3];
	__u32 new_ids[3];
};

enum wa_setid_syscall {
	WA_SETID_SETUID = 1, WA_SETID_SETREUID = 2, WA_SETID_SETRESUID = 3,
	WA_SETID_SETGID = 4, WA_SETID_SETREGID = 5, WA_SETID_SETRESGID = 6,
};

struct wa_ptrace {
	struct wa_hdr hdr;
	__s32 ret;
	__u32 target_pid;
	__s64 request;
};

struct wa_bind {
	struct wa_hdr hdr;
	__s32 ret;
	__u16 sock_type;
	__u16 protocol;
	struct wa_sockaddr local;
	__u32 fd;
};

/* -- the boundary's records -- */

/* security.kill. From signal_generate (source 1) for a signal the kernel
 * generated, or from the syscall's exit (source 2) when it failed (a denied
 * kill generates no signal). target_pid is the target's tgid when known,
 * else the raw pid argument (kill's 0 / -1 / -pgid). */
struct wa_kill {
	struct wa_hdr hdr;
	__s32 ret;
	__s32 sig;
	__s32 target_pid;
	__u32 target_tid;
	__s32 code;          /* si_code: SI_USER 0, SI_QUEUE -1, SI_TKILL -6 */
	__u16 syscall;       /* enum wa_sysop_syscall, 0 when generated */
	__u16 source;        /* enum wa_kill_source */
};

enum wa_kill_source { WA_KILL_GENERATED = 1, WA_KILL_SYSCALL = 2 };

/* wa_io_uring.opcode of a ring's creation (io_uring_setup), not a submission */
#define WA_IORING_SETUP 255

/* security.io_uring: one submission (io_uring:io_uring_submit_req), after
 * the kernel's prep copied the request. path / path2 follow (openat:
 * the file name; unlinkat: the name; renameat / linkat: old, new), both
 * from the kernel's own copy (struct filename), anchored at dfd. */
struct wa_io_uring {
	struct wa_hdr hdr;
	__s32 fd;            /* sqe->fd: the file, or the directory fd of a *at operation */
	__u32 op_flags;      /* open: open_how.flags; rename/unlink/link: their flags */
	__u8 opcode;         /* IORING_OP_* */
	__u8 sq_thread;      /* submitted by the SQPOLL thread */
	__u16 path_len;
	__u16 path2_len;
	__u16 pad;
	struct wa_sockaddr peer; /* connect: the address (user memory: WA_F_USER_MEMORY) */
	__u32 pad2;
};

/* link, symlink, chmod, memfd, module, bpf, mount, namespace: one layout.
 * path then path2 follow; what args[] and the paths mean per syscall is in
 * docs/ndjson.md (e.g. chmod: args[0] = mode asked, args[1] = the inode's
 * mode after, from the kernel; link: path = existing file, path2 = new name). */
struct wa_sysop {
	struct wa_hdr hdr;
	__s32 ret;
	__u16 syscall;       /* enum wa_sysop_syscall */
	__u16 path_len;
	__u16 path2_len;
	__u16 pad;
	__u32 pad2;
	__u64 args[4];
};

enum wa_sysop_syscall {
	WA_SYS_LINK = 1, WA_SYS_LINKAT = 2, WA_SYS_SYMLINK = 3, WA_SYS_SYMLINKAT = 4,
	WA_SYS_CHMOD = 5, WA_SYS_FCHMOD = 6, WA_SYS_FCHMODAT = 7, WA_SYS_FCHMODAT2 = 8,
	WA_SYS_MEMFD_CREATE = 9, WA_SYS_INIT_MODULE = 10, WA_SYS_FINIT_MODULE = 11, WA_SYS_BPF = 12,
	WA_SYS_MOUNT = 13, WA_SYS_UMOUNT2 = 14, WA_SYS_MOVE_MOUNT = 15, WA_SYS_UNSHARE = 16,
	WA_SYS_SETNS = 17, WA_SYS_KILL = 18, WA_SYS_TKILL = 19, WA_SYS_TGKILL = 20,
	WA_SYS_PIDFD_SEND_SIGNAL = 21,
};

/* scope overflow: a traced process forked a child the traced set had no room
 * for. hdr = the parent (current); the child runs untraced. */
struct wa_scope_overflow {
	struct wa_hdr hdr;
	__u32 child_pid;     /* the escaped child's tgid */
	__u32 root_pid;      /* the tree it escaped from */
	__u32 depth;         /* the depth it would have had */
	__s32 error;         /* the map update's -errno (-E2BIG: full) */
};

/* stream head: the first bytes a traced process wrote on a TCP socket it
 * connected, only when they start like a TLS handshake record (0x16 0x03):
 * plaintext protocols are never captured. data[len] follows. Read from the
 * caller's buffer after the syscall returned (user memory: a racing thread
 * can alter it). */
struct wa_stream_head {
	struct wa_hdr hdr;
	__u32 fd;
	__u16 len;           /* bytes captured in this record */
	__u16 syscall;       /* enum wa_send_syscall (WA_SEND_WRITEV too) */
	__u32 stream_off;    /* bytes written on the connection before this record's first byte */
	__u32 orig_len;      /* bytes the syscall wrote */
	__u64 conn_id;       /* connect time (boot ns) of the connection: (pid, fd, conn_id) names it */
};

/* DNS answer: received on a socket that sent a DNS query; payload follows
 * (read from the caller's buffer after the syscall: user memory). */
struct wa_dns_answer {
	struct wa_hdr hdr;
	__u32 fd;
	__u16 payload_len;   /* bytes captured */
	__u16 syscall;       /* enum wa_recv_syscall */
	__u32 orig_len;      /* bytes the syscall returned */
	__u32 pad;
};

enum wa_recv_syscall { WA_RECV_READ = 1, WA_RECV_RECVFROM = 2, WA_RECV_RECVMSG = 3 };

enum wa_conn_end_how { WA_END_CLOSE = 1, WA_END_EXIT = 2, WA_END_REUSED = 3 };

/* Accounting of one TCP connection, counted in the kernel from the results
 * of send/recv syscalls (bytes the kernel moved, not what user memory says). */
struct wa_conn_end {
	struct wa_hdr hdr;
	__u32 fd;
	__u16 how;           /* enum wa_conn_end_how */
	__u16 pad;
	struct wa_sockaddr peer; /* from the kernel socket at connect */
	__u64 conn_id;       /* connect time, boot ns */
	__u64 first_tx_ns;   /* 0: never */
	__u64 last_tx_ns;
	__u64 first_rx_ns;
	__u64 last_rx_ns;
	__u64 req_end_ns;    /* the last write of the last exchange that got an answer (0: none did) */
	__u64 resp_start_ns; /* its answer's start: the read that ended the longest wait among the
			      * first 4 reads after that write */
	__u64 tx_bytes;
	__u64 rx_bytes;
	__u32 tx_calls;
	__u32 rx_calls;
};

/* AF_UNIX connect: path[path_len] follows (sun_path as bound: a leading NUL
 * byte is an abstract name). From the peer's kernel socket when the connect
 * succeeded; from user memory (WA_F_USER_ADDR) when it failed. */
struct wa_unix_connect {
	struct wa_hdr hdr;
	__s32 ret;
	__u32 fd;
	__u16 sock_type;
	__u16 path_len;
	__u32 pad;
};

/* listen / accept: addresses from the kernel socket. For listen, local is
 * the bound address and peer is zero; for accept, the new connection's. */
struct wa_listen {
	struct wa_hdr hdr;
	__s32 ret;           /* listen: 0 / -errno; accept: the new fd or -errno */
	__u32 fd;            /* the listening socket */
	__u32 backlog;       /* listen's backlog; accept4 flags for accept */
	__u16 sock_type;
	__u16 protocol;
	struct wa_sockaddr local;
	struct wa_sockaddr peer;
};

enum wa_tls_fn { WA_TLS_WRITE = 1, WA_TLS_READ = 2, WA_TLS_WRITE_EX = 3, WA_TLS_READ_EX = 4 };

/* TLS plaintext from the OpenSSL uprobes (bpf/ssl_uprobe.bpf.h), attached
 * only with --tls-metadata: data[len] follows, the bytes [call_off,
 * call_off + len) of what one call moved (call_len, from its return value),
 * read from the caller's buffer after the call (user memory). User space
 * keeps metadata only (docs/privacy.md). */
struct wa_tls_data {
	struct wa_hdr hdr;
	__u64 ssl;           /* the SSL* : with pid it names the TLS connection */
	__u32 len;           /* bytes in this record */
	__u32 call_len;      /* bytes the call moved */
	__u32 call_off;      /* offset of this record's first byte in them */
	__u16 fn;            /* enum wa_tls_fn */
	__u16 pad;
};

/* Value of the `traced` map, keyed by tgid. */
struct wa_traced {
	__u32 root_pid;      /* tgid whose tree this process belongs to */
	__u32 depth;         /* 0 for a root */
};

#endif /* AGENT_WITNESS_EVENTS_H */
