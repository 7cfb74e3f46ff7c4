// SPDX-License-Identifier: MIT
#include "addon_loss.h"

#include <cstring>
#include <string>

namespace {

const char* kEventNames[WA_EV_MAX] = {"none", "exec", "exit", "fork", "connect", "dns", "file_write", "file_unlink",
                                      "file_rename", "file_read_sensitive", "setuid", "setgid", "ptrace", "bind"};
// Wave 2 areas fill their reserved numbers here (C++ has no designated array initialisers).
[[maybe_unused]] const bool kWave2Names = [] {
  // 14..29 the boundary: without a name a kind's emitted/dropped counts would be left out of stats()
  kEventNames[WA_EV_KILL] = "kill";
  kEventNames[WA_EV_IO_URING] = "io_uring";
  kEventNames[WA_EV_LINK] = "link";
  kEventNames[WA_EV_SYMLINK] = "symlink";
  kEventNames[WA_EV_CHMOD] = "chmod";
  kEventNames[WA_EV_MEMFD] = "memfd";
  kEventNames[WA_EV_MODULE] = "module";
  kEventNames[WA_EV_BPF] = "bpf";
  kEventNames[WA_EV_MOUNT] = "mount";
  kEventNames[WA_EV_NAMESPACE] = "namespace";
  kEventNames[WA_EV_SCOPE_OVERFLOW] = "scope_overflow";  // 30..35 loss accounting
  kEventNames[WA_EV_STREAM_HEAD] = "stream_head";        // 36..47 network depth
  kEventNames[WA_EV_DNS_ANSWER] = "dns_answer";
  kEventNames[WA_EV_CONN_END] = "conn_end";
  kEventNames[WA_EV_UNIX_CONNECT] = "unix_connect";
  kEventNames[WA_EV_LISTEN] = "listen";
  kEventNames[WA_EV_ACCEPT] = "accept";
  kEventNames[WA_EV_TLS_DATA] = "tls_data";
  return true;
}();

// enum wa_loss_counter, as stats().loss keys
const char* kLossNames[WA_LOSS_MAX] = {"scopeFull", "pendingLost", "droppersFull", "suppressFull", "budgetFull", "shed"};

// { kind: n } over the named record types
Napi::Object ByKind(Napi::Env env, const uint64_t* v, const uint64_t* minus = nullptr) {
  auto o = Napi::Object::New(env);
  for (int t = 1; t < WA_EV_MAX; t++) {
    if (!kEventNames[t]) continue;  // a reserved, unused type number
    o.Set(kEventNames[t], Napi::Number::New(env, double(v[t] - (minus ? minus[t] : 0))));
  }
  return o;
}

}  // namespace

void WaCounters::ReadKernel(wa_loader* l) {
  wa_loader_counters(l, emitted, dropped);
  wa_loader_loss(l, loss);
  wa_loader_suppressed(l, suppressed);
}

void WaCounters::ReadPoller(const WaPoller& p) {
  batches = p.batches;
  records = p.records;
  bytes = p.bytes;
  user_dropped = p.user_dropped;
  poll_errors = p.poll_errors;
  fatal_errno = p.fatal_errno;
  for (int t = 0; t < WA_EV_MAX; t++) {
    seen[t] = p.seen[t];
    user_dropped_by_type[t] = p.user_dropped_by_type[t];
  }
}

Napi::Object WaCounters::ToObject(Napi::Env env, bool closed) const {
  auto lossObj = Napi::Object::New(env);
  for (int i = 0; i < WA_LOSS_MAX; i++)
    if (kLossNames[i]) lossObj.Set(kLossNames[i], Napi::Number::New(env, double(loss[i])));
  auto s = Napi::Object::New(env);
  s.Set("kernelEmitted", ByKind(env, emitted));
  s.Set("kernelDropped", ByKind(env, dropped));
  s.Set("kernelSuppressed", ByKind(env, suppressed));
  s.Set("delivered", ByKind(env, seen, user_dropped_by_type));
  s.Set("loss", lossObj);
  s.Set("pollErrors", Napi::Number::New(env, double(poll_errors)));
  s.Set("pollFatalErrno", Napi::Number::New(env, fatal_errno));
  s.Set("batches", Napi::Number::New(env, double(batches)));
  s.Set("records", Napi::Number::New(env, double(records)));
  s.Set("bytes", Napi::Number::New(env, double(bytes)));
  s.Set("userDropped", Napi::Number::New(env, double(user_dropped)));
  s.Set("closed", Napi::Boolean::New(env, closed));
  return s;
}

void CollectSupp(void* ctx, const wa_supp_key* k, const wa_supp_val* v, int deleted) {
  static_cast<std::vector<SuppRow>*>(ctx)->push_back(SuppRow{*k, *v, deleted != 0});
}

Napi::Array SuppArray(Napi::Env env, const std::vector<SuppRow>& rows) {
  auto arr = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); i++) {
    const SuppRow& r = rows[i];
    auto o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, r.k.tgid));
    o.Set("type", Napi::Number::New(env, r.k.kind));
    o.Set("hash", Napi::BigInt::New(env, uint64_t(r.k.hash)));
    o.Set("count", Napi::Number::New(env, double(r.v.count)));
    o.Set("winStartNs", Napi::BigInt::New(env, uint64_t(r.v.win_start)));
    o.Set("firstNs", Napi::BigInt::New(env, uint64_t(r.v.first_ns)));
    o.Set("lastNs", Napi::BigInt::New(env, uint64_t(r.v.last_ns)));
    o.Set("keyFullLen", Napi::Number::New(env, r.v.key_full_len));
    size_t klen = r.v.key_len <= WA_SUPP_KEY_MAX ? r.v.key_len : WA_SUPP_KEY_MAX;
    o.Set("key", Napi::Buffer<uint8_t>::Copy(env, r.v.key, klen));
    o.Set("uid", Napi::Number::New(env, r.v.uid));
    o.Set("gid", Napi::Number::New(env, r.v.gid));
    o.Set("cgroupId", Napi::BigInt::New(env, uint64_t(r.v.cgroup_id)));
    o.Set("comm", Napi::String::New(env, std::string(r.v.comm, strnlen(r.v.comm, WA_COMM_LEN))));
    o.Set("deleted", Napi::Boolean::New(env, r.deleted));
    arr.Set(i, o);
  }
  return arr;
}

Napi::Array DroppersArray(Napi::Env env, const std::vector<wa_dropper>& rows) {
  auto arr = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); i++) {
    auto o = Napi::Object::New(env);
    o.Set("pid", Napi::Number::New(env, rows[i].pid));
    o.Set("comm", Napi::String::New(env, std::string(rows[i].comm, strnlen(rows[i].comm, WA_COMM_LEN))));
    o.Set("count", Napi::Number::New(env, double(rows[i].count)));
    arr.Set(i, o);
  }
  return arr;
}
