// SPDX-License-Identifier: MIT
// sensor.hooks(op?): hold, release or idle-check the syscall hooks, and say
// where they stand. A resident sensor holds them while agents come and go.
#include "addon_hooks.h"

#include <cstring>
#include <string>

Napi::Value HooksCall(const Napi::CallbackInfo& info, wa_loader* l) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && !info[0].IsUndefined()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "hooks(op): op must be 'hold', 'release' or 'idle'");
    std::string op = info[0].As<Napi::String>().Utf8Value();
    int rc = 0;
    if (op == "hold") rc = wa_loader_hooks_hold(l, 1);
    else if (op == "release") wa_loader_hooks_hold(l, 0);
    else if (op == "idle") wa_loader_hooks_idle(l, 1);
    else throw Napi::TypeError::New(env, "hooks(op): op must be 'hold', 'release' or 'idle'");
    if (rc) throw Napi::Error::New(env, std::string("hooks(hold): cannot attach the syscall hooks: ") + strerror(-rc));
  }
  wa_hooks_state st{};
  wa_loader_hooks_state(l, &st);
  Napi::Object o = Napi::Object::New(env);
  o.Set("attached", Napi::Boolean::New(env, st.attached));
  o.Set("lazy", Napi::Boolean::New(env, st.lazy));
  o.Set("held", Napi::Number::New(env, st.held));
  o.Set("detaches", Napi::Number::New(env, double(st.detaches)));
  return o;
}
