// SPDX-License-Identifier: MIT
// Batch SHA-256 for the ledger writer (ledger_hash.cc): exports.ledgerHash.
#pragma once
#include <napi.h>

#include <cstdint>

void RegisterLedgerHash(Napi::Env env, Napi::Object exports);

// The hashing loops (ledger_hash.cc), for the background queue (ledger_hash_queue.cc).
// leaf_i = SHA-256(0x00 || EVENT_TAG || d[ranges[2i], ranges[2i+1])) into out + 32 i; link advanced in place.
void WaLeafChain(const unsigned char* d, const uint32_t* ranges, uint64_t n, unsigned char* link, unsigned char* out);
// Appends n leaf hashes to the frontier nodes (64 x 32 bytes); returns the new size.
uint64_t WaFrontierAppend(unsigned char* nodes, uint64_t size, const unsigned char* leaves, size_t n);
// Argument checks shared by ledgerHash and ledgerHash.Queue (they throw a TypeError/RangeError naming `what`).
Napi::Uint8Array WaArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what);
uint64_t WaArgCount(const Napi::CallbackInfo& info, size_t i, const char* what);
// (data, ranges, n, chain, leaves, leavesAt) at info[0..5], checked: every range inside data, room for n leaves.
struct WaLeafChainArgs {
  Napi::Uint8Array data;
  Napi::Uint32Array ranges;
  uint64_t n;
  Napi::Uint8Array chain, leaves;
  uint64_t at;
};
WaLeafChainArgs WaParseLeafChain(const Napi::CallbackInfo& info);
// ledgerHash.Queue: the same work on a background thread (ledger_hash_queue.cc).
void RegisterLedgerHashQueue(Napi::Env env, Napi::Object ledgerHash);
