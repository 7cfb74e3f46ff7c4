// SPDX-License-Identifier: MIT
// peerCred(fd): the kernel's record of who is at the other end of a connected
// Unix socket (SO_PEERCRED), for the daemon's resident socket.
#pragma once
#include <napi.h>

// Adds `peerCred` to the addon's exports (one call from addon.cc's Init).
void WaRegisterPeerCred(Napi::Env env, Napi::Object exports);
