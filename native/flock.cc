// SPDX-License-Identifier: MIT
// flock(fd, op) for JS. The ledger's locks (src/ledger/state.ts) are flock(2)
// locks on kept lock files, not O_EXCL files holding a pid: the kernel drops
// a flock when its last fd closes, so a writer killed with SIGKILL never
// leaves a stale lock behind, and no pid is ever trusted (pid reuse, a lock
// file torn empty by a kill between create and write).
#include "flock.h"

#include <errno.h>
#include <string.h>
#include <sys/file.h>

#include <string>

namespace {

// flock(fd, op): true when done; false when op has LOCK_NB and another open
// file holds a conflicting lock (EWOULDBLOCK); throws (with .code) otherwise.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "flock(fd: number, op: number)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = info[1].As<Napi::Number>().Int32Value();
  int r;
  do r = flock(fd, op); while (r < 0 && errno == EINTR);
  if (r == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK && (op & LOCK_NB)) return Napi::Boolean::New(env, false);
  int err = errno;
  Napi::Error e = Napi::Error::New(env, std::string("flock: ") + strerror(err));
  e.Set("code", Napi::String::New(env, err == EBADF ? "EBADF" : err == EINVAL ? "EINVAL" : err == ENOLCK ? "ENOLCK" : "EIO"));
  e.Set("errno", Napi::Number::New(env, -err));
  throw e;
}

}  // namespace

void WaRegisterFlock(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock));
  auto ops = Napi::Object::New(env);
  ops.Set("LOCK_SH", Napi::Number::New(env, LOCK_SH));
  ops.Set("LOCK_EX", Napi::Number::New(env, LOCK_EX));
  ops.Set("LOCK_NB", Napi::Number::New(env, LOCK_NB));
  ops.Set("LOCK_UN", Napi::Number::New(env, LOCK_UN));
  exports.Set("flockOps", ops);
}
