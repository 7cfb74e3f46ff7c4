/* SPDX-License-Identifier: MIT */
/*
 * On-demand TLS uprobes (--tls-metadata): attaches bpf/ssl_uprobe.bpf.h's
 * programs to OpenSSL's SSL_write / SSL_read / SSL_write_ex / SSL_read_ex in
 * one ELF file (libssl.so.3, or a binary that embeds OpenSSL with exported
 * symbols, such as node). One uprobe per file and function serves every
 * process that maps the file; the programs themselves only record traced
 * processes. The loader defers these programs (wa_uprobe_deferred) and
 * detaches them with the rest (wa_uprobe_detach_all).
 */
#ifndef WA_UPROBE_ATTACH_H
#define WA_UPROBE_ATTACH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wa_loader;

#define WA_UPROBE_FUNCS 4
#define WA_UPROBE_MAX_FILES 256

/* Per function: 0 attached (entry and return), else -errno of the failing
 * step (-ENOENT: the file has no such symbol). */
struct wa_uprobe_result {
	const char *func;
	int err;
};

/* Attaches to `path`. Returns the number of functions attached (0..4), or
 * -errno for the file as a whole (-EEXIST: this file, by device and inode,
 * is attached already; -E2BIG: WA_UPROBE_MAX_FILES reached; -ESHUTDOWN: the
 * loader is detached). */
int wa_uprobe_attach_file(struct wa_loader *l, const char *path, struct wa_uprobe_result out[WA_UPROBE_FUNCS]);

/* Files attached so far. */
int wa_uprobe_file_count(struct wa_loader *l);

/* 1 for a program the loader must not attach itself (an uprobe section). */
int wa_uprobe_deferred(const char *section);

/* Loader hooks: detach (with the other links, before the final drain) and forget. */
void wa_uprobe_detach_all(struct wa_loader *l);
void wa_uprobe_forget(struct wa_loader *l);

#ifdef __cplusplus
}
#endif
#endif
