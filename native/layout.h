/* SPDX-License-Identifier: MIT */
#ifndef WA_LAYOUT_H
#define WA_LAYOUT_H
#include "../bpf/events.h"
#ifdef __cplusplus
extern "C" {
#endif
struct wa_layout_entry {
	const char *key;
	long value;
};
extern const struct wa_layout_entry wa_layout[]; /* ends with { NULL, 0 } */
#ifdef __cplusplus
}
#endif
#endif
