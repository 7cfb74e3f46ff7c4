// SPDX-License-Identifier: MIT
// The addon's views of the loss-accounting maps (bpf/maps.h): repeat
// counters and top dropping processes, as JavaScript objects.
#pragma once
#include <napi.h>

#include <vector>

#include "batcher.h"
#include "loader.h"

// One repeat counter copied out of the kernel map.
struct SuppRow {
  wa_supp_key k;
  wa_supp_val v;
  bool deleted;
};

// wa_supp_fn collecting into a std::vector<SuppRow> (ctx)
void CollectSupp(void* ctx, const wa_supp_key* k, const wa_supp_val* v, int deleted);
Napi::Array SuppArray(Napi::Env env, const std::vector<SuppRow>& rows);
Napi::Array DroppersArray(Napi::Env env, const std::vector<wa_dropper>& rows);

// Every counter stats() reports, kept so they survive the loader (close
// freezes them after the last drain).
struct WaCounters {
  uint64_t emitted[WA_EV_MAX] = {}, dropped[WA_EV_MAX] = {}, suppressed[WA_EV_MAX] = {};
  uint64_t seen[WA_EV_MAX] = {}, user_dropped_by_type[WA_EV_MAX] = {};
  uint64_t loss[WA_LOSS_MAX] = {};
  uint64_t batches = 0, records = 0, bytes = 0, user_dropped = 0, poll_errors = 0;
  int fatal_errno = 0;

  void ReadKernel(wa_loader* l);
  void ReadPoller(const WaPoller& p);
  Napi::Object ToObject(Napi::Env env, bool closed) const;
};
