/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Identity as the kernel sees it. The sensitive set matches files by
 * (superblock s_dev, inode number) read from kernel objects; stat(2) in user
 * space can disagree (btrfs subvolumes report their own anonymous device,
 * overlayfs reports a layer's inode). So the sensor opens each sensitive path
 * itself (O_PATH) and asks the kernel: this iterator walks the sensor's own
 * file table and writes, per fd, the identity wa_is_sensitive will compute
 * for a file opened there: the dentry's inode and superblock.
 */
#ifndef WA_IDENTITY_BPF_H
#define WA_IDENTITY_BPF_H

#include "common.bpf.h"

/* one row of the iterator's output; user space reads them back to back */
struct wa_identity_row {
	__u32 fd;
	__u32 dev;
	__u64 ino;
};

SEC("iter/task_file")
int wa_identity_iter(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	if (!task || !file || task->tgid != wa_self_tgid)
		return 0;
	struct wa_identity_row row = {};
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	row.fd = ctx->fd;
	row.ino = BPF_CORE_READ(d, d_inode, i_ino);
	row.dev = BPF_CORE_READ(d, d_sb, s_dev);
	bpf_seq_write(ctx->meta->seq, &row, sizeof(row));
	return 0;
}

#endif
