// SPDX-License-Identifier: MIT
// SO_PEERCRED for Node: Node has no API for a Unix socket's peer credentials,
// and a socket file's mode only says who could connect(2), not who did. The
// kernel fills SO_PEERCRED at connect(2) with the connecting process's pid and
// effective uid/gid; the peer cannot forge them, only root can (by being root,
// or passing the fd on: the answer stays the process that connected).
#include "peercred.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace {

// peerCred(fd: number) -> { pid, uid, gid }; throws with the errno text
// (ENOTSOCK, EBADF, ...) when the descriptor has no peer.
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "peerCred(fd: number)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof(cred);
  std::memset(&cred, 0, sizeof(cred));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred)) {
    int err = errno;
    throw Napi::Error::New(env, std::string("SO_PEERCRED: ") + std::strerror(err));
  }
  auto out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, double(cred.pid)));
  out.Set("uid", Napi::Number::New(env, double(cred.uid)));
  out.Set("gid", Napi::Number::New(env, double(cred.gid)));
  return out;
}

}  // namespace

void WaRegisterPeerCred(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred));
}
