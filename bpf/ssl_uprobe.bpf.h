/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Opt-in TLS plaintext (`--tls-metadata`): uprobes on OpenSSL's SSL_write,
 * SSL_read, SSL_write_ex and SSL_read_ex. The programs are loaded with the
 * rest but attached only on demand (native/uprobe_attach.c, one uprobe per
 * library file and function, for every process that maps it): without the
 * flag nothing is attached and nothing runs. With it, an untraced process
 * calling SSL_write pays the uprobe trap and one hash lookup, and returns.
 *
 * Entry saves (SSL*, buf, len, out-length pointer) in the thread's own task
 * storage; the return reads what the call actually moved, from the caller's
 * buffer (user memory: a racing thread could alter it), in chunks of
 * WA_TLS_CHUNK_MAX up to WA_TLS_CHUNKS per call (past that: TRUNC_PAYLOAD,
 * and user space sees the gap from call_off/call_len). User space parses the
 * plaintext and keeps only the metadata (src/sensor/tls-sessions.ts).
 * A call whose entry state cannot be stored is counted as a dropped tls_data.
 */
#ifndef WA_SSL_UPROBE_BPF_H
#define WA_SSL_UPROBE_BPF_H

#include "common.bpf.h"

/* this libbpf predates BPF_UPROBE: BPF_KPROBE reads the same registers */

struct wa_ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out_len;  /* SSL_*_ex: size_t *written / *readbytes */
	__u32 fn;       /* enum wa_tls_fn; 0 = empty */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct wa_ssl_call);
} wa_ssl_calls SEC(".maps");

static __always_inline void wa_ssl_enter(__u32 fn, void *ssl, const void *buf, void *out_len)
{
	if (!wa_current_traced())
		return;
	struct wa_ssl_call *c = bpf_task_storage_get(&wa_ssl_calls, bpf_get_current_task_btf(), 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c) {
		wa_drop(WA_EV_TLS_DATA); /* this call's bytes will not be seen */
		return;
	}
	c->ssl = (__u64)ssl;
	c->buf = (__u64)buf;
	c->out_len = (__u64)out_len;
	c->fn = fn;
}

struct wa_tls_loop {
	struct wa_ssl_call call;
	__u32 moved;
};

static long wa_tls_chunk(__u64 i, struct wa_tls_loop *lp)
{
	__u32 off = (__u32)i * WA_TLS_CHUNK_MAX;
	if (off >= lp->moved)
		return 1;
	struct wa_scratch *s = wa_scratch();
	if (!s)
		return 1;
	struct wa_tls_data *h = (struct wa_tls_data *)s->rec;
	__u32 n = lp->moved - off;
	if (n > WA_TLS_CHUNK_MAX)
		n = WA_TLS_CHUNK_MAX;
	wa_fill_hdr(&h->hdr, WA_EV_TLS_DATA, 0);
	h->ssl = lp->call.ssl;
	h->call_len = lp->moved;
	h->call_off = off;
	h->fn = lp->call.fn;
	h->pad = 0;
	__u8 *data = s->rec + sizeof(*h);
	n &= (WA_TLS_CHUNK_MAX * 2 - 1);
	if (n > WA_TLS_CHUNK_MAX)
		n = WA_TLS_CHUNK_MAX;
	if (n == 0 || bpf_probe_read_user(data, n, (void *)(lp->call.buf + off))) {
		h->hdr.flags |= WA_F_READ_FAULT;
		n = 0;
	}
	if (i + 1 == WA_TLS_CHUNKS && off + n < lp->moved)
		h->hdr.flags |= WA_F_TRUNC_PAYLOAD;
	h->len = n;
	h->hdr.size = sizeof(*h) + n;
	wa_output(h, sizeof(*h) + n, WA_EV_TLS_DATA);
	return 0;
}

static __always_inline void wa_ssl_exit(int ret)
{
	struct wa_ssl_call *c = bpf_task_storage_get(&wa_ssl_calls, bpf_get_current_task_btf(), 0, 0);
	if (!c || c->fn == 0)
		return;
	struct wa_tls_loop lp = { .call = *c };
	c->fn = 0;
	if (lp.call.fn == WA_TLS_WRITE_EX || lp.call.fn == WA_TLS_READ_EX) {
		__u64 moved = 0;
		if (ret != 1 || !lp.call.out_len || bpf_probe_read_user(&moved, sizeof(moved), (void *)lp.call.out_len))
			return;
		lp.moved = moved > 0xffffffffull ? 0xffffffffu : (__u32)moved;
	} else {
		if (ret <= 0)
			return;
		lp.moved = (__u32)ret;
	}
	if (lp.moved == 0)
		return;
	bpf_loop(WA_TLS_CHUNKS, wa_tls_chunk, &lp, 0);
}

SEC("uprobe")
int BPF_KPROBE(wa_ssl_write, void *ssl, const void *buf, int num)
{
	wa_ssl_enter(WA_TLS_WRITE, ssl, buf, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(wa_ssl_read, void *ssl, void *buf, int num)
{
	wa_ssl_enter(WA_TLS_READ, ssl, buf, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(wa_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	wa_ssl_enter(WA_TLS_WRITE_EX, ssl, buf, written);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(wa_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	wa_ssl_enter(WA_TLS_READ_EX, ssl, buf, readbytes);
	return 0;
}

/* one return program serves all four: the entry saved which call it was */
SEC("uretprobe")
int BPF_KRETPROBE(wa_ssl_ret, long ret)
{
	if (!wa_current_traced())
		return 0;
	/* all four return int: the upper half of the register is not theirs */
	wa_ssl_exit((int)ret);
	return 0;
}

#endif
