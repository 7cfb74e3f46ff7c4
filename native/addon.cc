// SPDX-License-Identifier: MIT
// Node front end of the loader: a Sensor object whose poll thread hands JS
// one ArrayBuffer of raw records per batch, plus the wire-layout table.
#include <napi.h>

#include <memory>
#include <string>
#include <thread>

#include "batcher.h"
#include "layout.h"
#include "loader.h"
#include "sdnotify.h"
#include "source_hash.h"

namespace {

const char* kEventNames[WA_EV_MAX] = {"none", "exec", "exit", "fork", "connect", "dns", "file_write", "file_unlink",
                                      "file_rename", "file_read_sensitive", "setuid", "setgid", "ptrace", "bind"};
// Wave 2 areas fill their reserved numbers here (C++ has no designated array initialisers).
[[maybe_unused]] static const bool kNetDepthNames = [] {
  kEventNames[WA_EV_STREAM_HEAD] = "stream_head";
  kEventNames[WA_EV_DNS_ANSWER] = "dns_answer";
  kEventNames[WA_EV_CONN_END] = "conn_end";
  kEventNames[WA_EV_UNIX_CONNECT] = "unix_connect";
  kEventNames[WA_EV_LISTEN] = "listen";
  kEventNames[WA_EV_ACCEPT] = "accept";
  return true;
}();

struct BatchMsg {
  WaBatch batch;
  // set on the last message close() sends: queued behind every batch, so
  // resolving it here means JS has been handed everything
  Napi::Promise::Deferred* done = nullptr;
};

void CallJs(Napi::Env env, Napi::Function cb, std::nullptr_t*, BatchMsg* msg) {
  WaBatch b = msg->batch;
  Napi::Promise::Deferred* done = msg->done;
  delete msg;
  if (done) {
    if (env != nullptr) done->Resolve(env.Undefined());
    delete done;
    return;
  }
  if (env == nullptr) {  // tearing down: nobody to hand it to
    free(b.data);
    return;
  }
  auto ab = Napi::ArrayBuffer::New(env, b.data, b.len, [](Napi::Env, void* d) { free(d); });
  cb.Call({ab, Napi::Number::New(env, double(b.records))});
}

using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, BatchMsg, CallJs>;

class Sensor : public Napi::ObjectWrap<Sensor> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Sensor",
                       {
                           InstanceMethod("capabilities", &Sensor::Capabilities),
                           InstanceMethod("start", &Sensor::Start),
                           InstanceMethod("addRoot", &Sensor::AddRoot),
                           InstanceMethod("remove", &Sensor::Remove),
                           InstanceMethod("isTraced", &Sensor::IsTraced),
                           InstanceMethod("armSpawn", &Sensor::ArmSpawn),
                           InstanceMethod("disarmSpawn", &Sensor::DisarmSpawn),
                           InstanceMethod("setTraceAll", &Sensor::SetTraceAll),
                           InstanceMethod("addSensitive", &Sensor::AddSensitive),
                           InstanceMethod("clearSensitive", &Sensor::ClearSensitive),
                           InstanceMethod("stats", &Sensor::Stats),
                           InstanceMethod("close", &Sensor::Close),
                       });
  }

  // new Sensor({ onBatch(ab, records), ringBytes?, wakeupBytes?, batchBytes?, maxLatencyMs?, traceAll? })
  explicit Sensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sensor>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "Sensor: options object required");
    auto o = info[0].As<Napi::Object>();
    if (!o.Get("onBatch").IsFunction()) throw Napi::TypeError::New(env, "Sensor: options.onBatch must be a function");
    auto num = [&](const char* k, double d) { return o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().DoubleValue() : d; };

    wa_loader_opts opts{};
    opts.ring_bytes = size_t(num("ringBytes", 16 << 20));
    opts.wakeup_bytes = uint64_t(num("wakeupBytes", 256 << 10));
    opts.trace_all = o.Get("traceAll").ToBoolean().Value() ? 1 : 0;
    size_t batch_bytes = size_t(num("batchBytes", 1 << 20));
    int latency = int(num("maxLatencyMs", 20));

    // a bounded queue: when JS falls behind, the poll thread blocks, the ring
    // absorbs the burst, and the kernel counts what it cannot hold
    tsfn_ = Tsfn::New(env, o.Get("onBatch").As<Napi::Function>(), "witness-batches", 64, 1);
    tsfn_.Unref(env);
    poller_ = std::make_unique<WaPoller>(batch_bytes, latency, [this](WaBatch b) {
      auto* msg = new BatchMsg{b};
      if (tsfn_.BlockingCall(msg) != napi_ok) {
        delete msg;
        return false;
      }
      return true;
    });
    char err[256] = "";
    int rc = wa_loader_open(&loader_, &opts, &WaPoller::OnRecord, poller_.get(), err, sizeof(err));
    if (rc) {
      tsfn_.Release();
      auto e = Napi::Error::New(env, std::string("cannot load the sensor: ") + err);
      e.Set("errno", Napi::Number::New(env, -rc));
      throw e;
    }
    poller_->Attach(loader_);
  }

  ~Sensor() override {
    if (poller_ && !closed_) {
      tsfn_.Abort();  // unblock a poll thread waiting on a full queue
      poller_->Stop();
    }
    poller_.reset();
    if (loader_) wa_loader_close(loader_);
  }

 private:
  void Check(const Napi::CallbackInfo& info) {
    if (!loader_ || closed_) throw Napi::Error::New(info.Env(), "Sensor is closed");
  }

  Napi::Value Capabilities(const Napi::CallbackInfo& info) {
    Check(info);
    Napi::Env env = info.Env();
    int n = wa_loader_prog_count(loader_);
    auto arr = Napi::Array::New(env, n);
    for (int i = 0; i < n; i++) {
      const wa_prog_status* s = wa_loader_prog(loader_, i);
      auto row = Napi::Object::New(env);
      row.Set("name", s->name);
      row.Set("section", s->section);
      row.Set("loaded", Napi::Boolean::New(env, s->loaded));
      row.Set("attached", Napi::Boolean::New(env, s->attached));
      row.Set("error", Napi::Number::New(env, s->error));
      row.Set("reason", s->reason);
      arr.Set(i, row);
    }
    return arr;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Check(info);
    tsfn_.Ref(info.Env());
    poller_->Start();
    return info.Env().Undefined();
  }

  uint32_t Pid(const Napi::CallbackInfo& info) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "pid must be a number");
    return info[0].As<Napi::Number>().Uint32Value();
  }

  Napi::Value AddRoot(const Napi::CallbackInfo& info) {
    Check(info);
    int rc = wa_loader_add_root(loader_, Pid(info));
    if (rc) throw Napi::Error::New(info.Env(), std::string("addRoot: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    Check(info);
    wa_loader_remove(loader_, Pid(info));
    return info.Env().Undefined();
  }

  Napi::Value IsTraced(const Napi::CallbackInfo& info) {
    Check(info);
    return Napi::Boolean::New(info.Env(), wa_loader_is_traced(loader_, Pid(info)));
  }

  Napi::Value ArmSpawn(const Napi::CallbackInfo& info) {
    Check(info);
    wa_loader_arm_spawn(loader_, Pid(info));
    return info.Env().Undefined();
  }

  // returns the pid still armed (0 when a fork consumed the one-shot)
  Napi::Value DisarmSpawn(const Napi::CallbackInfo& info) {
    Check(info);
    return Napi::Number::New(info.Env(), wa_loader_disarm_spawn(loader_));
  }

  Napi::Value SetTraceAll(const Napi::CallbackInfo& info) {
    Check(info);
    wa_loader_set_trace_all(loader_, info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }

  // addSensitive(kernelDev: number, inode: bigint)
  Napi::Value AddSensitive(const Napi::CallbackInfo& info) {
    Check(info);
    bool lossless = true;
    uint64_t ino = info[1].IsBigInt() ? info[1].As<Napi::BigInt>().Uint64Value(&lossless)
                                      : uint64_t(info[1].As<Napi::Number>().Int64Value());
    int rc = wa_loader_add_sensitive(loader_, info[0].As<Napi::Number>().Uint32Value(), ino);
    if (rc) throw Napi::Error::New(info.Env(), std::string("addSensitive: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  Napi::Value ClearSensitive(const Napi::CallbackInfo& info) {
    Check(info);
    wa_loader_clear_sensitive(loader_);
    return info.Env().Undefined();
  }

  // Works after close too: the counters are frozen when the loader goes.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t* em = final_emitted_;
    uint64_t* dr = final_dropped_;
    if (loader_) wa_loader_counters(loader_, em, dr);
    auto emitted = Napi::Object::New(env), dropped = Napi::Object::New(env);
    for (int t = 1; t < WA_EV_MAX; t++) {
      if (!kEventNames[t]) continue;  // a reserved, unused type number
      emitted.Set(kEventNames[t], Napi::Number::New(env, double(em[t])));
      dropped.Set(kEventNames[t], Napi::Number::New(env, double(dr[t])));
    }
    auto s = Napi::Object::New(env);
    s.Set("kernelEmitted", emitted);
    s.Set("kernelDropped", dropped);
    if (poller_) {
      final_batches_ = poller_->batches;
      final_records_ = poller_->records;
      final_bytes_ = poller_->bytes;
      final_user_dropped_ = poller_->user_dropped;
    }
    s.Set("batches", Napi::Number::New(env, double(final_batches_)));
    s.Set("records", Napi::Number::New(env, double(final_records_)));
    s.Set("bytes", Napi::Number::New(env, double(final_bytes_)));
    s.Set("userDropped", Napi::Number::New(env, double(final_user_dropped_)));
    s.Set("closed", Napi::Boolean::New(env, closed_));
    return s;
  }

  // Stops the poll thread off the JS thread (it may be waiting for JS to take a
  // batch), delivers the tail, then frees everything. Resolves when done.
  class CloseWorker : public Napi::AsyncWorker {
   public:
    CloseWorker(Napi::Env env, Sensor* s)
        : Napi::AsyncWorker(env), s_(s), deferred_(new Napi::Promise::Deferred(Napi::Promise::Deferred::New(env))) {}
    void Execute() override {
      s_->poller_->Stop();
      wa_loader_counters(s_->loader_, s_->final_emitted_, s_->final_dropped_);
      auto* last = new BatchMsg{WaBatch{nullptr, 0, 0}, deferred_};
      if (s_->tsfn_.BlockingCall(last) != napi_ok) {
        delete last;
        failed_ = true;
      }
    }
    void OnOK() override {
      s_->tsfn_.Release();
      s_->final_batches_ = s_->poller_->batches;
      s_->final_records_ = s_->poller_->records;
      s_->final_bytes_ = s_->poller_->bytes;
      s_->final_user_dropped_ = s_->poller_->user_dropped;
      s_->poller_.reset();
      // Detaching ~40 tracepoints takes the kernel a second or two (an RCU
      // wait each, serialised); nothing downstream needs to wait for it.
      std::thread([l = s_->loader_] { wa_loader_close(l); }).detach();
      s_->loader_ = nullptr;
      if (failed_) {  // the queue was torn down: nothing will resolve it for us
        deferred_->Resolve(Env().Undefined());
        delete deferred_;
      }
      s_->Unref();
    }
    Napi::Promise Promise() { return deferred_->Promise(); }

   private:
    Sensor* s_;
    Napi::Promise::Deferred* deferred_;  // resolved by CallJs after the last batch
    bool failed_ = false;
  };

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (closed_) {
      auto d = Napi::Promise::Deferred::New(info.Env());
      d.Resolve(info.Env().Undefined());
      return d.Promise();
    }
    closed_ = true;
    Ref();  // keep this object alive until the worker is done
    auto* w = new CloseWorker(info.Env(), this);
    auto p = w->Promise();
    w->Queue();
    return p;
  }

  wa_loader* loader_ = nullptr;
  std::unique_ptr<WaPoller> poller_;
  Tsfn tsfn_;
  bool closed_ = false;
  uint64_t final_emitted_[WA_EV_MAX] = {}, final_dropped_[WA_EV_MAX] = {};
  uint64_t final_batches_ = 0, final_records_ = 0, final_bytes_ = 0, final_user_dropped_ = 0;
};

Napi::Value ClockOffsets(const Napi::CallbackInfo& info) {
  uint64_t boot, real;
  wa_clock_pair(&boot, &real);
  auto o = Napi::Object::New(info.Env());
  o.Set("bootNs", Napi::BigInt::New(info.Env(), boot));
  o.Set("realNs", Napi::BigInt::New(info.Env(), real));
  return o;
}

// sdNotify(state): true when systemd got the datagram, false when not under
// Type=notify ($NOTIFY_SOCKET unset); throws on a send error.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "sdNotify(state: string)");
  int r = wa_sd_notify(info[0].As<Napi::String>().Utf8Value().c_str());
  if (r < 0) throw Napi::Error::New(info.Env(), std::string("sd_notify: ") + strerror(-r));
  return Napi::Boolean::New(info.Env(), r > 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto layout = Napi::Object::New(env);
  for (const wa_layout_entry* e = wa_layout; e->key; e++) layout.Set(e->key, Napi::Number::New(env, double(e->value)));
  exports.Set("Sensor", Sensor::Init(env));
  exports.Set("layout", layout);
  exports.Set("sourceHash", Napi::String::New(env, WA_SOURCE_HASH));
  exports.Set("wireVersion", Napi::Number::New(env, WA_WIRE_VERSION));
  exports.Set("clockOffsets", Napi::Function::New(env, ClockOffsets));
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify));
  return exports;
}

}  // namespace

NODE_API_MODULE(agent_witness, Init)
