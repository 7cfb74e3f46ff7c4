/* SPDX-License-Identifier: MIT */
/*
 * File scenarios (write/rename/unlink with relative paths made absolute,
 * sensitive reads by inode) and the scoping scenario: an untraced process
 * doing the same things leaves no trace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "tester.h"

static int path_contains(const char *p, size_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle)) != NULL;
}

static const struct wa_file *file_rec(uint16_t type, const char *want)
{
	const struct wa_file *f;
	for (int i = 0; (f = t_nth(type, i)); i++)
		if (t_path_is(t_file_path(f), f->path_len, want))
			return f;
	return NULL;
}

int t_sc_files(struct wa_loader *l, char *detail, size_t dlen)
{
	char a[4200], b[4200];
	snprintf(a, sizeof(a), "%s/sub/wt-a", t_workdir);
	snprintf(b, sizeof(b), "%s/sub/wt-b", t_workdir);
	struct t_run r;
	RUN(1, &r, "files", t_workdir, "wt");
	if (!exited_with(&r, 0))
		FAILF("files child status %#x", r.status);
	const struct wa_file *w = file_rec(WA_EV_FILE_WRITE, a);
	if (!w) {
		const struct wa_file *f0 = t_nth(WA_EV_FILE_WRITE, 0);
		FAILF("no write of %s (%d writes, first %.*s)", a, t_count(WA_EV_FILE_WRITE), f0 ? f0->path_len : 0,
		      f0 ? t_file_path(f0) : "");
	}
	unsigned want_flags = O_WRONLY | O_CREAT | O_TRUNC;
	if ((w->open_flags & want_flags) != want_flags || w->ret < 0 || (w->hdr.flags & WA_F_RELATIVE))
		FAILF("write flags %#x ret %d hdr.flags %#x", w->open_flags, w->ret, w->hdr.flags);
	const struct wa_rename *rn = t_nth(WA_EV_FILE_RENAME, 0);
	if (t_count(WA_EV_FILE_RENAME) != 1)
		FAILF("%d rename records, want 1", t_count(WA_EV_FILE_RENAME));
	const char *op = (const char *)(rn + 1), *np = op + rn->old_len;
	if (!t_path_is(op, rn->old_len, a) || !t_path_is(np, rn->new_len, b) || rn->ret != 0)
		FAILF("rename %.*s -> %.*s ret %d", rn->old_len, op, rn->new_len, np, rn->ret);
	const struct wa_file *u = file_rec(WA_EV_FILE_UNLINK, b);
	if (!u || u->ret != 0 || t_count(WA_EV_FILE_UNLINK) != 1)
		FAILF("unlink of %s: %d unlink records, ret %d", b, t_count(WA_EV_FILE_UNLINK), u ? u->ret : 1);
	snprintf(detail, dlen, "write, rename and unlink under %s, absolute", t_workdir);
	return 1;
}

/* Registers /etc/shadow by identity; kept for the scope scenario after it. */
int t_sc_sensitive(struct wa_loader *l, char *detail, size_t dlen)
{
	struct stat st;
	if (stat("/etc/shadow", &st))
		FAILF("cannot stat /etc/shadow: %s", strerror(errno));
	/* the kernel's dev_t is MKDEV(major, minor) = major << 20 | minor, not stat's encoding */
	uint32_t kdev = (major(st.st_dev) << 20) | minor(st.st_dev);
	if (wa_loader_add_sensitive(l, kdev, st.st_ino))
		FAILF("wa_loader_add_sensitive failed");
	struct t_run r;
	RUN(1, &r, "sensitive");
	if (!exited_with(&r, 0))
		FAILF("sensitive child status %#x", r.status);
	int n = t_count(WA_EV_FILE_READ_SENSITIVE);
	if (n != 2)
		FAILF("%d sensitive reads, want 2 (/etc/shadow absolute and ./shadow)", n);
	for (int i = 0; i < 2; i++) {
		const struct wa_file *f = t_nth(WA_EV_FILE_READ_SENSITIVE, i);
		if (!t_path_is(t_file_path(f), f->path_len, "/etc/shadow") || f->ret < 0)
			FAILF("read %d path %.*s ret %d", i, f->path_len, t_file_path(f), f->ret);
	}
	snprintf(detail, dlen, "2 reads of /etc/shadow (dev %u:%u ino %llu), /etc/hostname ignored", major(st.st_dev),
		 minor(st.st_dev), (unsigned long long)st.st_ino);
	return 1;
}

/* Does any collected record belong to pid, or name a path containing needle? */
static int leaked(uint32_t pid, const char *needle)
{
	for (size_t i = 0; i < t_nrecs; i++) {
		const struct wa_hdr *h = t_recs[i].hdr;
		if (h->pid == pid)
			return 1;
		if (h->type == WA_EV_FILE_WRITE || h->type == WA_EV_FILE_UNLINK || h->type == WA_EV_FILE_READ_SENSITIVE) {
			const struct wa_file *f = (const void *)h;
			if (path_contains(t_file_path(f), f->path_len, needle))
				return 1;
		} else if (h->type == WA_EV_FILE_RENAME) {
			const struct wa_rename *r = (const void *)h;
			if (path_contains((const char *)(r + 1), r->old_len + r->new_len, needle))
				return 1;
		}
	}
	return 0;
}

int t_sc_scope(struct wa_loader *l, char *detail, size_t dlen)
{
	int port;
	int lfd = t_listen_on(AF_INET, "127.0.0.1", &port);
	if (lfd < 0)
		FAILF("cannot listen on 127.0.0.1: %s", strerror(errno));
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	struct t_run out, in;
	int rc = t_run_act(l, 0, &out, (const char *[]){ "mix", t_workdir, "untraced", ps, NULL });
	/* a traced run afterwards proves the sensor was live and delivering meanwhile */
	rc |= t_run_act(l, 1, &in, (const char *[]){ "mix", t_workdir, "traced", ps, NULL });
	close(lfd);
	if (rc || out.timed_out || in.timed_out)
		FAILF("could not run the two children");
	if (!exited_with(&out, 0) || !exited_with(&in, 0))
		FAILF("children status %#x / %#x", out.status, in.status);
	if (!t_count(WA_EV_CONNECT) || !t_count(WA_EV_FILE_READ_SENSITIVE) || !t_count(WA_EV_FILE_WRITE))
		FAILF("traced run incomplete: connect %d sensitive %d write %d", t_count(WA_EV_CONNECT),
		      t_count(WA_EV_FILE_READ_SENSITIVE), t_count(WA_EV_FILE_WRITE));
	if (leaked(out.pid, "untraced"))
		FAILF("records from untraced pid %d leaked", out.pid);
	if (wa_loader_is_traced(l, out.pid) || wa_loader_is_traced(l, in.pid))
		FAILF("an exited child is still in the traced set");
	snprintf(detail, dlen, "untraced pid %d: 0 records; traced twin: %zu records", out.pid, t_nrecs);
	return 1;
}
