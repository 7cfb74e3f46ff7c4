// SPDX-License-Identifier: MIT
// Batch SHA-256 for the ledger writer (ledger_hash.cc): exports.ledgerHash.
#pragma once
#include <napi.h>

void RegisterLedgerHash(Napi::Env env, Napi::Object exports);
