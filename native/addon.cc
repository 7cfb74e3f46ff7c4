// SPDX-License-Identifier: MIT
// Node front end of the loader: a Sensor object whose poll thread hands JS
// one ArrayBuffer of raw records per batch, plus the wire-layout table.
#include <napi.h>
#include <memory>
#include <string>
#include <thread>
#include <chrono>
#include "addon_batch_msg.h"
#include "addon_hooks.h"
#include "addon_loss.h"
#include "addon_uprobe.h"
#include "batcher.h"
#include "flock.h"
#include "layout.h"
#include "ledger_hash.h"
#include "loader.h"
#include "peercred.h"
#include "sdnotify.h"
#include "source_hash.h"
namespace {

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
                           InstanceMethod("hooks", &Sensor::Hooks),
                           InstanceMethod("flushSoon", &Sensor::FlushSoon),
                           InstanceMethod("addSensitive", &Sensor::AddSensitive),
                           InstanceMethod("clearSensitive", &Sensor::ClearSensitive),
                           InstanceMethod("addSensitiveName", &Sensor::AddSensitiveName),
                           InstanceMethod("kernelIdentities", &Sensor::KernelIdentities),
                           InstanceMethod("stats", &Sensor::Stats),
                           InstanceMethod("dropsByProcess", &Sensor::DropsByProcess),
                           InstanceMethod("sweepSuppressed", &Sensor::SweepSuppressed),
                           InstanceMethod("injectPollErrors", &Sensor::InjectPollErrors),
                           InstanceMethod("injectCloseDelay", &Sensor::InjectCloseDelay),
                           InstanceMethod("close", &Sensor::Close),
                       });
  }

  // new Sensor({ onBatch(ab, records), ringBytes?, wakeupBytes?, batchBytes?, maxLatencyMs?, traceAll?,
  //              tracedMax?, connOwnersMax?, budgetEvents? (0: none), budgetWindowMs?, ringSharePct? })
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
    opts.traced_max = uint32_t(num("tracedMax", 0));
    opts.conn_owners_max = uint32_t(num("connOwnersMax", 0));
    double budget = num("budgetEvents", WA_DEFAULT_BUDGET);
    opts.budget_events = budget <= 0 ? -1 : int64_t(budget);
    opts.budget_window_ns = uint64_t(num("budgetWindowMs", 0) * 1e6);
    opts.ring_share_pct = uint32_t(num("ringSharePct", 0));
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
    }, [this](int err) {
      auto* msg = new BatchMsg{WaBatch{nullptr, 0, 0}, nullptr, err};
      if (tsfn_.BlockingCall(msg) != napi_ok) delete msg;
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
    WaUprobeExpose(env, info.This().As<Napi::Object>(), loader_);
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
      row.Set("skipped", Napi::Boolean::New(env, s->skipped != 0));
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
    int rc = wa_loader_arm_spawn(loader_, Pid(info));
    if (rc) throw Napi::Error::New(info.Env(), std::string("armSpawn: cannot attach the syscall hooks: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  // returns the pid still armed (0 when a fork consumed the one-shot)
  Napi::Value DisarmSpawn(const Napi::CallbackInfo& info) {
    Check(info);
    return Napi::Number::New(info.Env(), wa_loader_disarm_spawn(loader_));
  }

  Napi::Value SetTraceAll(const Napi::CallbackInfo& info) {
    Check(info);
    int rc = wa_loader_set_trace_all(loader_, info[0].ToBoolean().Value());
    if (rc) throw Napi::Error::New(info.Env(), std::string("setTraceAll: cannot attach the syscall hooks: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  Napi::Value Hooks(const Napi::CallbackInfo& info) { Check(info); return HooksCall(info, loader_); }
  Napi::Value FlushSoon(const Napi::CallbackInfo& info) { Check(info); poller_->FlushSoon(); return info.Env().Undefined(); }

  static uint64_t U64(const Napi::Value& v) { bool lossless = true; return v.IsBigInt() ? v.As<Napi::BigInt>().Uint64Value(&lossless) : uint64_t(v.As<Napi::Number>().Int64Value()); }

  // addSensitive(kernelDev: number, inode: bigint)
  Napi::Value AddSensitive(const Napi::CallbackInfo& info) {
    Check(info);
    uint64_t ino = U64(info[1]);
    int rc = wa_loader_add_sensitive(loader_, info[0].As<Napi::Number>().Uint32Value(), ino);
    if (rc) throw Napi::Error::New(info.Env(), std::string("addSensitive: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  // addSensitiveName(parentKernelDev: number, parentInode: bigint, name: string)
  Napi::Value AddSensitiveName(const Napi::CallbackInfo& info) {
    Check(info);
    uint64_t ino = U64(info[1]);
    std::string name = info[2].As<Napi::String>().Utf8Value();
    int rc = wa_loader_add_sensitive_name(loader_, info[0].As<Napi::Number>().Uint32Value(), ino, name.c_str());
    if (rc) throw Napi::Error::New(info.Env(), std::string("addSensitiveName: ") + strerror(-rc));
    return info.Env().Undefined();
  }

  // kernelIdentities(): [{ fd, dev, ino: bigint }] for this process's fds, from the kernel
  Napi::Value KernelIdentities(const Napi::CallbackInfo& info) {
    Check(info);
    Napi::Env env = info.Env();
    std::vector<wa_identity> rows(4096);
    int n = wa_loader_kernel_identities(loader_, rows.data(), int(rows.size()));
    if (n < 0) throw Napi::Error::New(env, std::string("kernelIdentities: ") + strerror(-n));
    int m = n < int(rows.size()) ? n : int(rows.size());
    auto arr = Napi::Array::New(env, m);
    for (int i = 0; i < m; i++) {
      auto o = Napi::Object::New(env);
      o.Set("fd", Napi::Number::New(env, rows[i].fd));
      o.Set("dev", Napi::Number::New(env, rows[i].dev));
      o.Set("ino", Napi::BigInt::New(env, rows[i].ino));
      arr[uint32_t(i)] = o;
    }
    return arr;
  }

  Napi::Value ClearSensitive(const Napi::CallbackInfo& info) { Check(info); wa_loader_clear_sensitive(loader_); return info.Env().Undefined(); }

  // Works after close too: the counters are frozen when the loader goes.
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    if (loader_) counters_.ReadKernel(loader_);
    if (poller_) counters_.ReadPoller(*poller_);
    return counters_.ToObject(info.Env(), closed_);
  }

  // dropsByProcess(max = 8): [{ pid, comm, count }], most drops first; frozen at close
  Napi::Value DropsByProcess(const Napi::CallbackInfo& info) {
    int max = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 8;
    if (max < 0) max = 0;
    std::vector<wa_dropper> rows(max);
    if (loader_) {
      int n = max ? wa_loader_droppers(loader_, rows.data(), max) : 0;
      rows.resize(n > 0 ? n : 0);
    } else {
      rows.assign(final_droppers_.begin(), final_droppers_.end());
      if (int(rows.size()) > max) rows.resize(max);
    }
    return DroppersArray(info.Env(), rows);
  }

  // sweepSuppressed(deleteBeforeNs: bigint): every repeat counter; those idle
  // since before the cutoff are deleted (deleted: true, count final). After
  // close: the final sweep close() took once the probes were detached.
  Napi::Value SweepSuppressed(const Napi::CallbackInfo& info) {
    if (!loader_) {
      auto arr = SuppArray(info.Env(), final_supp_);
      final_supp_.clear();
      return arr;
    }
    uint64_t cutoff = info[0].IsBigInt() ? U64(info[0]) : 0;
    std::vector<SuppRow> rows;
    int rc = wa_loader_sweep_suppress(loader_, cutoff, CollectSupp, &rows);
    if (rc < 0) throw Napi::Error::New(info.Env(), std::string("sweepSuppressed: ") + strerror(-rc));
    return SuppArray(info.Env(), rows);
  }

  // injectPollErrors(n, errno): test hook, the next n polls fail
  Napi::Value InjectPollErrors(const Napi::CallbackInfo& info) {
    Check(info);
    wa_loader_inject_poll_errors(loader_, info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  // injectCloseDelay(ms): test hook, close's worker lingers after queueing the last batch
  Napi::Value InjectCloseDelay(const Napi::CallbackInfo& info) {
    close_delay_ms_ = info[0].As<Napi::Number>().Int32Value();
    return info.Env().Undefined();
  }

  // Stops the poll thread off the JS thread (it may be waiting for JS to take a
  // batch), delivers the tail, then frees everything. Resolves when done.
  class CloseWorker : public Napi::AsyncWorker {
   public:
    CloseWorker(Napi::Env env, Sensor* s)
        : Napi::AsyncWorker(env), s_(s), latch_(new CloseLatch{Napi::Promise::Deferred::New(env)}) {}
    void Execute() override {
      // Detach first: once no probe can run, draining the ring empties it
      // for good and the counters are final, so at close every record the
      // kernel wrote was delivered or counted (emitted = delivered + dropped).
      wa_loader_detach(s_->loader_);
      s_->poller_->Stop();
      s_->counters_.ReadKernel(s_->loader_);
      std::vector<wa_dropper> top(kFinalDroppers);
      int n = wa_loader_droppers(s_->loader_, top.data(), kFinalDroppers);
      top.resize(n > 0 ? n : 0);
      s_->final_droppers_ = top;
      // every counter, deleted: their counts are final
      wa_loader_sweep_suppress(s_->loader_, UINT64_MAX, CollectSupp, &s_->final_supp_);
      auto* last = new BatchMsg{WaBatch{nullptr, 0, 0}, latch_};
      if (s_->tsfn_.BlockingCall(last) != napi_ok) {
        delete last;
        failed_ = true;
      }
      if (s_->close_delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(s_->close_delay_ms_));
    }
    void OnOK() override {
      s_->tsfn_.Release();
      s_->counters_.ReadPoller(*s_->poller_);
      s_->poller_.reset();
      // the links are gone already; freeing the maps needs no waiting on
      std::thread([l = s_->loader_] { wa_loader_close(l); }).detach();
      s_->loader_ = nullptr;
      Sensor* s = s_;
      if (failed_) latch_->pending--;  // the queue was torn down: the last batch never arrives
      CloseLatchArrive(Env(), latch_);
      s->Unref();
    }
    Napi::Promise Promise() { return latch_->deferred.Promise(); }  // before Queue(): latch_ is alive

   private:
    Sensor* s_;
    CloseLatch* latch_;  // freed by whichever of CallJs and OnOK arrives second
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
  int close_delay_ms_ = 0;
  static constexpr int kFinalDroppers = 64;
  // the last counters read: what stats() reports once the loader is gone
  WaCounters counters_;
  std::vector<wa_dropper> final_droppers_;
  std::vector<SuppRow> final_supp_;
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
  WaRegisterPeerCred(env, exports);
  RegisterLedgerHash(env, exports);
  WaRegisterFlock(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(agent_witness, Init)
