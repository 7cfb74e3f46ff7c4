// SPDX-License-Identifier: MIT
// flock(2) for the ledger's lock files (src/ledger/flock.ts): Node has none.
#ifndef WA_FLOCK_H
#define WA_FLOCK_H

#include <napi.h>

// Adds `flock(fd, op)` to the addon's exports.
void WaRegisterFlock(Napi::Env env, Napi::Object exports);

#endif
