/* SPDX-License-Identifier: MIT */
/* Offsets, sizes and constants of bpf/events.h, exported so the TypeScript
 * decoder can refuse to run against a wire format it does not match. */
#include <stddef.h>
#include "layout.h"

#define F(s, f) { #s "." #f, (long)offsetof(struct s, f) }
#define S(s) { #s ".$size", (long)sizeof(struct s) }
#define C(c) { #c, (long)(c) }

const struct wa_layout_entry wa_layout[] = {
	C(WA_WIRE_VERSION), C(WA_COMM_LEN), C(WA_ARGV_MAX), C(WA_PATH_MAX), C(WA_NAME_MAX), C(WA_PATH_DEPTH),
	C(WA_FILENAME_MAX), C(WA_DNS_MAX), C(WA_STREAM_HEAD_MAX), C(WA_STREAM_HEAD_WRITES), C(WA_DNS_ANSWER_MAX),
	C(WA_UNIX_PATH_MAX),
	C(WA_EV_EXEC), C(WA_EV_EXIT), C(WA_EV_FORK), C(WA_EV_CONNECT), C(WA_EV_DNS), C(WA_EV_FILE_WRITE),
	C(WA_EV_FILE_UNLINK), C(WA_EV_FILE_RENAME), C(WA_EV_FILE_READ_SENSITIVE), C(WA_EV_SETUID), C(WA_EV_SETGID),
	C(WA_EV_PTRACE), C(WA_EV_BIND), C(WA_EV_SCOPE_OVERFLOW), C(WA_EV_MAX),
	C(WA_EV_STREAM_HEAD), C(WA_EV_DNS_ANSWER), C(WA_EV_CONN_END), C(WA_EV_UNIX_CONNECT), C(WA_EV_LISTEN),
	C(WA_EV_ACCEPT), C(WA_F_CAPTURE_END), C(WA_F_USER_ADDR), C(WA_SEND_WRITEV),
	C(WA_RECV_READ), C(WA_RECV_RECVFROM), C(WA_RECV_RECVMSG), C(WA_END_CLOSE), C(WA_END_EXIT), C(WA_END_REUSED),
	C(WA_F_TRUNC_ARGV), C(WA_F_TRUNC_PATH), C(WA_F_TRUNC_PAYLOAD), C(WA_F_TRUNC_FILENAME), C(WA_F_READ_FAULT),
	C(WA_F_RELATIVE),
	C(WA_SEND_SENDTO), C(WA_SEND_SENDMSG), C(WA_SEND_SENDMMSG), C(WA_SEND_WRITE),
	C(WA_SETID_SETUID), C(WA_SETID_SETREUID), C(WA_SETID_SETRESUID), C(WA_SETID_SETGID), C(WA_SETID_SETREGID),
	C(WA_SETID_SETRESGID),
	S(wa_hdr), F(wa_hdr, type), F(wa_hdr, flags), F(wa_hdr, size), F(wa_hdr, ts_ns), F(wa_hdr, pid),
	F(wa_hdr, tid), F(wa_hdr, uid), F(wa_hdr, gid), F(wa_hdr, cgroup_id), F(wa_hdr, comm),
	S(wa_exec), F(wa_exec, hdr), F(wa_exec, ppid), F(wa_exec, argc), F(wa_exec, euid), F(wa_exec, egid),
	F(wa_exec, filename_len), F(wa_exec, argv_len), F(wa_exec, cwd_len), F(wa_exec, exe_len),
	S(wa_exit), F(wa_exit, hdr), F(wa_exit, ppid), F(wa_exit, exit_code),
	S(wa_fork), F(wa_fork, hdr), F(wa_fork, child_pid), F(wa_fork, pad),
	S(wa_sockaddr), F(wa_sockaddr, family), F(wa_sockaddr, port), F(wa_sockaddr, addr),
	S(wa_connect), F(wa_connect, hdr), F(wa_connect, ret), F(wa_connect, sock_type), F(wa_connect, protocol),
	F(wa_connect, peer), F(wa_connect, fd),
	S(wa_dns), F(wa_dns, hdr), F(wa_dns, sock_type), F(wa_dns, protocol), F(wa_dns, peer), F(wa_dns, payload_len),
	F(wa_dns, syscall), F(wa_dns, orig_len),
	S(wa_file), F(wa_file, hdr), F(wa_file, ret), F(wa_file, open_flags), F(wa_file, mode), F(wa_file, path_len),
	F(wa_file, pad),
	S(wa_rename), F(wa_rename, hdr), F(wa_rename, ret), F(wa_rename, rename_flags), F(wa_rename, old_len),
	F(wa_rename, new_len), F(wa_rename, pad),
	S(wa_setid), F(wa_setid, hdr), F(wa_setid, ret), F(wa_setid, syscall), F(wa_setid, old_ids),
	F(wa_setid, new_ids),
	S(wa_ptrace), F(wa_ptrace, hdr), F(wa_ptrace, ret), F(wa_ptrace, target_pid), F(wa_ptrace, request),
	S(wa_bind), F(wa_bind, hdr), F(wa_bind, ret), F(wa_bind, sock_type), F(wa_bind, protocol), F(wa_bind, local),
	F(wa_bind, fd),
	S(wa_stream_head), F(wa_stream_head, hdr), F(wa_stream_head, fd), F(wa_stream_head, len),
	F(wa_stream_head, syscall), F(wa_stream_head, stream_off), F(wa_stream_head, orig_len), F(wa_stream_head, conn_id),
	S(wa_dns_answer), F(wa_dns_answer, hdr), F(wa_dns_answer, fd), F(wa_dns_answer, payload_len),
	F(wa_dns_answer, syscall), F(wa_dns_answer, orig_len), F(wa_dns_answer, pad),
	S(wa_conn_end), F(wa_conn_end, hdr), F(wa_conn_end, fd), F(wa_conn_end, how), F(wa_conn_end, pad),
	F(wa_conn_end, peer), F(wa_conn_end, conn_id), F(wa_conn_end, first_tx_ns), F(wa_conn_end, last_tx_ns),
	F(wa_conn_end, first_rx_ns), F(wa_conn_end, last_rx_ns), F(wa_conn_end, req_end_ns), F(wa_conn_end, resp_start_ns), F(wa_conn_end, tx_bytes),
	F(wa_conn_end, rx_bytes), F(wa_conn_end, tx_calls), F(wa_conn_end, rx_calls),
	S(wa_unix_connect), F(wa_unix_connect, hdr), F(wa_unix_connect, ret), F(wa_unix_connect, fd),
	F(wa_unix_connect, sock_type), F(wa_unix_connect, path_len), F(wa_unix_connect, pad),
	S(wa_listen), F(wa_listen, hdr), F(wa_listen, ret), F(wa_listen, fd), F(wa_listen, backlog),
	F(wa_listen, sock_type), F(wa_listen, protocol), F(wa_listen, local), F(wa_listen, peer),
	S(wa_scope_overflow), F(wa_scope_overflow, hdr), F(wa_scope_overflow, child_pid),
	F(wa_scope_overflow, root_pid), F(wa_scope_overflow, depth), F(wa_scope_overflow, error),
	{ 0, 0 },
};
