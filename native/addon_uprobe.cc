// SPDX-License-Identifier: MIT
// JavaScript face of native/uprobe_attach.c: sensor.attachTlsUprobes(path)
// -> { attached, error, functions: [{ func, error }] } (errors as -errno,
// 0 when fine). Set on each Sensor object by its constructor; the caller
// (src/sensor/tls-uprobes.ts) never calls it after close().
#include <napi.h>

#include <cstring>

#include "addon_uprobe.h"
#include "uprobe_attach.h"

namespace {

Napi::Value AttachTlsUprobes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "attachTlsUprobes(path: string)");
  auto* l = static_cast<wa_loader*>(info.Data());
  std::string path = info[0].As<Napi::String>().Utf8Value();
  wa_uprobe_result res[WA_UPROBE_FUNCS];
  int rc = wa_uprobe_attach_file(l, path.c_str(), res);
  auto o = Napi::Object::New(env);
  o.Set("attached", Napi::Number::New(env, rc > 0 ? rc : 0));
  o.Set("error", Napi::Number::New(env, rc < 0 ? rc : 0));
  auto fns = Napi::Array::New(env, rc == -EEXIST ? 0 : WA_UPROBE_FUNCS);
  for (uint32_t i = 0; rc != -EEXIST && i < WA_UPROBE_FUNCS; i++) {
    auto f = Napi::Object::New(env);
    f.Set("func", Napi::String::New(env, res[i].func));
    f.Set("error", Napi::Number::New(env, res[i].err));
    fns.Set(i, f);
  }
  o.Set("functions", fns);
  return o;
}

}  // namespace

void WaUprobeExpose(Napi::Env env, Napi::Object sensor, wa_loader* l) {
  sensor.DefineProperty(Napi::PropertyDescriptor::Value(
      "attachTlsUprobes", Napi::Function::New(env, AttachTlsUprobes, "attachTlsUprobes", l), napi_default));
}
