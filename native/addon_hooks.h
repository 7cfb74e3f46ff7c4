// SPDX-License-Identifier: MIT
// sensor.hooks(op?): the lazy syscall hooks from JavaScript (native/loader_hooks.c).
#pragma once
#include <napi.h>

#include "loader.h"

// op: undefined (just report), "hold", "release" or "idle" (detach now if
// nothing needs them). Returns { attached, lazy, held, detaches }.
Napi::Value HooksCall(const Napi::CallbackInfo& info, wa_loader* l);
