// SPDX-License-Identifier: MIT
// The ledger writer's hashing, a batch at a time (src/ledger/log-hash.ts).
// Per record the writer needs an RFC 6962 leaf hash, a chain link and on
// average one Merkle node: three SHA-256 of 65..300 bytes. Through
// node:crypto each one is a JS -> C++ call costing ~1 us, far more than the
// hashing (SHA-NI does a 64-byte block in ~50 ns). Here one call hashes a
// whole flush (thousands of records) with the OpenSSL that Node itself
// exports, so the same CPU-dispatched SHA-256 code runs without the
// per-call overhead. Same bytes in, same digests out: the JS fallback in
// log-hash.ts and the verifier compute identical values (test/ledger-hash.test.ts).
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <napi.h>
#include <openssl/sha.h>

#include <cstdint>
#include <cstring>

#include "ledger_hash.h"

namespace {

constexpr size_t kHash = 32;
constexpr int kMaxNodes = 64;  // one per set bit of a 64-bit size
const unsigned char kEventPrefix[] = "\0agent-witness.v1.event\n";  // 0x00 || EVENT_TAG (24 bytes)
const unsigned char kChainTag[] = "agent-witness.v1.chain\n";      // CHAIN_TAG (23 bytes)

// The low-level calls, never SHA256(): in OpenSSL 3 that one-shot fetches the
// algorithm from a provider on every call, which costs more than the hashing.
void Sha256(const unsigned char* data, size_t len, unsigned char* out) {
  SHA256_CTX c;
  SHA256_Init(&c);
  SHA256_Update(&c, data, len);
  SHA256_Final(out, &c);
}

void NodeHash(const unsigned char* left, const unsigned char* right, unsigned char* out) {
  unsigned char buf[1 + 2 * kHash];
  buf[0] = 0x01;
  memcpy(buf + 1, left, kHash);
  memcpy(buf + 1 + kHash, right, kHash);
  Sha256(buf, sizeof buf, out);
}

}  // namespace

// RFC 6962 frontier append: nodes[0..popcount(size)) are the perfect
// subtrees of the tree, largest (leftmost) first.
uint64_t WaFrontierAppend(unsigned char* nodes, uint64_t size, const unsigned char* leaves, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char node[kHash];
    memcpy(node, leaves + i * kHash, kHash);
    int top = __builtin_popcountll(size);
    for (uint64_t c = size; c & 1; c >>= 1) {
      top--;
      NodeHash(nodes + top * kHash, node, node);
    }
    memcpy(nodes + top * kHash, node, kHash);
    size++;
  }
  return size;
}

void WaLeafChain(const unsigned char* d, const uint32_t* ranges, uint64_t n, unsigned char* link, unsigned char* out) {
  SHA256_CTX prefixed;
  SHA256_Init(&prefixed);
  SHA256_Update(&prefixed, kEventPrefix, 24);
  unsigned char chainBuf[23 + 2 * kHash];
  memcpy(chainBuf, kChainTag, 23);
  for (uint64_t i = 0; i < n; i++) {
    uint32_t s = ranges[2 * i], e = ranges[2 * i + 1];
    SHA256_CTX c = prefixed;
    SHA256_Update(&c, d + s, e - s);
    SHA256_Final(out + i * kHash, &c);
    memcpy(chainBuf + 23, link, kHash);
    memcpy(chainBuf + 23 + kHash, out + i * kHash, kHash);
    Sha256(chainBuf, sizeof chainBuf, link);
  }
}

namespace {

uint64_t FrontierAppend(unsigned char* nodes, uint64_t size, const unsigned char* leaves, size_t n) {
  return WaFrontierAppend(nodes, size, leaves, n);
}

// leafChain(data, ranges: Uint32Array [start, end) pairs, n, chain: 32 bytes in/out, leaves, leavesAt)
// leaf_i = SHA-256(0x00 || EVENT_TAG || data[start_i, end_i)); chain = SHA-256(CHAIN_TAG || chain || leaf_i)
Napi::Value LeafChain(const Napi::CallbackInfo& info) {
  WaLeafChainArgs a = WaParseLeafChain(info);
  WaLeafChain(a.data.Data(), a.ranges.Data(), a.n, a.chain.Data(), a.leaves.Data() + a.at);
  return info.Env().Undefined();
}

// frontierAppend(nodes: 64*32 bytes in/out, size, leaves, leavesAt, n) -> new size
Napi::Value FrontierAppendJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto nodes = WaArgBytes(info, 0, "nodes");
  uint64_t size = WaArgCount(info, 1, "size");
  auto leaves = WaArgBytes(info, 2, "leaves");
  uint64_t at = WaArgCount(info, 3, "leavesAt");
  uint64_t n = WaArgCount(info, 4, "n");
  if (nodes.ByteLength() != kMaxNodes * kHash) throw Napi::RangeError::New(env, "nodes must be 64 * 32 bytes");
  if (at > leaves.ByteLength() || (leaves.ByteLength() - at) / kHash < n) throw Napi::RangeError::New(env, "leaves holds fewer than n hashes");
  if (size + n > 9007199254740992ULL) throw Napi::RangeError::New(env, "tree size past 2^53");
  return Napi::Number::New(env, double(FrontierAppend(nodes.Data(), size, leaves.Data() + at, n)));
}

// subtreeRoot(leaves, leavesAt, n, out: 32 bytes): MTH over n >= 1 leaf hashes
Napi::Value SubtreeRoot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto leaves = WaArgBytes(info, 0, "leaves");
  uint64_t at = WaArgCount(info, 1, "leavesAt");
  uint64_t n = WaArgCount(info, 2, "n");
  auto out = WaArgBytes(info, 3, "out");
  if (n == 0 || out.ByteLength() != kHash) throw Napi::RangeError::New(env, "need n >= 1 and a 32-byte out");
  if (at > leaves.ByteLength() || (leaves.ByteLength() - at) / kHash < n) throw Napi::RangeError::New(env, "leaves holds fewer than n hashes");
  unsigned char nodes[kMaxNodes * kHash];
  uint64_t size = FrontierAppend(nodes, 0, leaves.Data() + at, n);
  int top = __builtin_popcountll(size) - 1;
  unsigned char r[kHash];
  memcpy(r, nodes + top * kHash, kHash);
  for (int i = top - 1; i >= 0; i--) NodeHash(nodes + i * kHash, r, r);
  memcpy(out.Data(), r, kHash);
  return env.Undefined();
}

}  // namespace

Napi::Uint8Array WaArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a Uint8Array");
  }
  return info[i].As<Napi::Uint8Array>();
}

uint64_t WaArgCount(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740992.0) || d != double(uint64_t(d))) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a whole number in [0, 2^53]");
  }
  return uint64_t(d);
}

WaLeafChainArgs WaParseLeafChain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto data = WaArgBytes(info, 0, "data");
  if (info.Length() < 2 || !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    throw Napi::TypeError::New(env, "ranges must be a Uint32Array");
  }
  WaLeafChainArgs a{data, info[1].As<Napi::Uint32Array>(), WaArgCount(info, 2, "n"), WaArgBytes(info, 3, "chain"),
                    WaArgBytes(info, 4, "leaves"), WaArgCount(info, 5, "leavesAt")};
  if (a.chain.ByteLength() != kHash) throw Napi::RangeError::New(env, "chain must be 32 bytes");
  if (a.n * 2 > a.ranges.ElementLength()) throw Napi::RangeError::New(env, "ranges holds fewer than n pairs");
  if (a.at > a.leaves.ByteLength() || (a.leaves.ByteLength() - a.at) / kHash < a.n) throw Napi::RangeError::New(env, "leaves has no room for n hashes");
  for (uint64_t i = 0; i < a.n; i++) {
    if (a.ranges[2 * i] > a.ranges[2 * i + 1] || a.ranges[2 * i + 1] > data.ByteLength()) throw Napi::RangeError::New(env, "a range runs outside data");
  }
  return a;
}

void RegisterLedgerHash(Napi::Env env, Napi::Object exports) {
  auto o = Napi::Object::New(env);
  o.Set("leafChain", Napi::Function::New(env, LeafChain));
  o.Set("frontierAppend", Napi::Function::New(env, FrontierAppendJs));
  o.Set("subtreeRoot", Napi::Function::New(env, SubtreeRoot));
  RegisterLedgerHashQueue(env, o);
  exports.Set("ledgerHash", o);
}
