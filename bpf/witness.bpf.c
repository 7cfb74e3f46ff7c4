/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * agent-witness probes: one object, tracepoints only (this project's reference
 * host has no kprobes, fentry or BPF LSM). Each concern lives in its own header;
 * this unit just gathers them so they share one set of maps.
 */
#include "common.bpf.h"
#include "process.bpf.h"
#include "net.bpf.h"
#include "file.bpf.h"
#include "security.bpf.h"
#include "boundary.bpf.h"
#include "chmod.bpf.h"
#include "io_uring.bpf.h"
#include "identity.bpf.h"
#include "ssl_uprobe.bpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";
