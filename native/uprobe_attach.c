/* SPDX-License-Identifier: MIT */
/* On-demand TLS uprobes: see uprobe_attach.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <bpf/libbpf.h>
#include "loader_int.h"
#include "uprobe_attach.h"

struct wa_uprobe_file {
	dev_t dev;
	ino_t ino;
	struct bpf_link *links[2 * WA_UPROBE_FUNCS];
};

/* One set per loader, found by its pointer: the loader's own struct stays
 * as it is (another area owns it); a handful of loaders per process at most. */
struct wa_uprobe_set {
	struct wa_loader *l;
	int detached;
	int nfiles;
	struct wa_uprobe_file *files;
};

#define WA_UPROBE_SETS 16
static struct wa_uprobe_set sets[WA_UPROBE_SETS];
static pthread_mutex_t sets_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct { const char *func, *prog; } funcs[WA_UPROBE_FUNCS] = {
	{ "SSL_write", "wa_ssl_write" },
	{ "SSL_read", "wa_ssl_read" },
	{ "SSL_write_ex", "wa_ssl_write_ex" },
	{ "SSL_read_ex", "wa_ssl_read_ex" },
};

int wa_uprobe_deferred(const char *section)
{
	return section && (strncmp(section, "uprobe", 6) == 0 || strncmp(section, "uretprobe", 9) == 0);
}

/* caller holds sets_lock */
static struct wa_uprobe_set *set_of(struct wa_loader *l, int create)
{
	struct wa_uprobe_set *free_slot = NULL;
	for (int i = 0; i < WA_UPROBE_SETS; i++) {
		if (sets[i].l == l)
			return &sets[i];
		if (!sets[i].l && !free_slot)
			free_slot = &sets[i];
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->l = l;
	return free_slot;
}

static struct bpf_link *attach_one(struct wa_loader *l, const char *prog, const char *path, const char *func,
				   int retprobe, int *err)
{
	struct bpf_program *p = bpf_object__find_program_by_name(l->skel->obj, prog);
	if (!p || bpf_program__fd(p) < 0) {
		*err = -ENOEXEC; /* the program did not load: `witness probe` says why */
		return NULL;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = func, .retprobe = retprobe);
	struct bpf_link *link = bpf_program__attach_uprobe_opts(p, -1, path, 0, &o);
	if (!link)
		*err = errno ? -errno : -EINVAL;
	return link;
}

int wa_uprobe_attach_file(struct wa_loader *l, const char *path, struct wa_uprobe_result out[WA_UPROBE_FUNCS])
{
	struct stat sb;
	for (int i = 0; i < WA_UPROBE_FUNCS; i++) {
		out[i].func = funcs[i].func;
		out[i].err = -ENOENT;
	}
	if (stat(path, &sb))
		return -errno;
	pthread_mutex_lock(&sets_lock);
	int rc = 0;
	struct wa_uprobe_set *s = set_of(l, 1);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	if (s->detached) {
		rc = -ESHUTDOWN;
		goto out;
	}
	for (int i = 0; i < s->nfiles; i++)
		if (s->files[i].dev == sb.st_dev && s->files[i].ino == sb.st_ino) {
			rc = -EEXIST;
			goto out;
		}
	if (s->nfiles >= WA_UPROBE_MAX_FILES) {
		rc = -E2BIG;
		goto out;
	}
	struct wa_uprobe_file *grown = realloc(s->files, (s->nfiles + 1) * sizeof(*grown));
	if (!grown) {
		rc = -ENOMEM;
		goto out;
	}
	s->files = grown;
	struct wa_uprobe_file *f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	for (int i = 0; i < WA_UPROBE_FUNCS; i++) {
		int err = 0;
		/* the return probe first: an entry without its return would leave
		 * saved calls that nothing consumes */
		struct bpf_link *ret = attach_one(l, "wa_ssl_ret", path, funcs[i].func, 1, &err);
		struct bpf_link *ent = ret ? attach_one(l, funcs[i].prog, path, funcs[i].func, 0, &err) : NULL;
		if (!ent) {
			bpf_link__destroy(ret); /* NULL-safe */
			out[i].err = err;
			continue;
		}
		f->links[2 * i] = ent;
		f->links[2 * i + 1] = ret;
		out[i].err = 0;
		rc++;
	}
	/* a file with none of the functions is remembered too: it is not retried */
	s->nfiles++;
out:
	pthread_mutex_unlock(&sets_lock);
	return rc;
}

int wa_uprobe_file_count(struct wa_loader *l)
{
	pthread_mutex_lock(&sets_lock);
	struct wa_uprobe_set *s = set_of(l, 0);
	int n = s ? s->nfiles : 0;
	pthread_mutex_unlock(&sets_lock);
	return n;
}

void wa_uprobe_detach_all(struct wa_loader *l)
{
	pthread_mutex_lock(&sets_lock);
	struct wa_uprobe_set *s = set_of(l, 1);
	if (s) {
		s->detached = 1;
		for (int i = 0; i < s->nfiles; i++)
			for (int k = 0; k < 2 * WA_UPROBE_FUNCS; k++) {
				bpf_link__destroy(s->files[i].links[k]);
				s->files[i].links[k] = NULL;
			}
	}
	pthread_mutex_unlock(&sets_lock);
}

void wa_uprobe_forget(struct wa_loader *l)
{
	wa_uprobe_detach_all(l);
	pthread_mutex_lock(&sets_lock);
	struct wa_uprobe_set *s = set_of(l, 0);
	if (s) {
		free(s->files);
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&sets_lock);
}
