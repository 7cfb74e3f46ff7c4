// SPDX-License-Identifier: MIT
// Binding of the on-demand TLS uprobes (native/addon_uprobe.cc).
#pragma once
#include <napi.h>

#include "loader.h"

// Defines sensor.attachTlsUprobes(path) for this Sensor's loader.
void WaUprobeExpose(Napi::Env env, Napi::Object sensor, wa_loader* l);
