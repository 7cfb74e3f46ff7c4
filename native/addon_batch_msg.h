// SPDX-License-Identifier: MIT
// What the poll thread and close() hand the JS thread through the
// thread-safe function: batches of raw records, a fatal poll error, and the
// last message that (with the close worker) settles close()'s promise.
#ifndef WA_ADDON_BATCH_MSG_H
#define WA_ADDON_BATCH_MSG_H
#include <napi.h>
#include <cstdlib>
#include "batcher.h"

// close()'s promise: resolved once JS has been handed the last batch AND the
// close worker has finished on the JS thread (loader gone, final counters and
// sweep frozen). Resolving on the last batch alone let close()'s continuation
// run before OnOK, sweep a map the worker had already emptied, and lose every
// final repeat counter (seen under load in CI as 0 summarised).
struct CloseLatch {
  Napi::Promise::Deferred deferred;
  int pending = 2;  // the last batch, the worker's OnOK
};

inline void CloseLatchArrive(Napi::Env env, CloseLatch* l) {
  if (--l->pending > 0) return;
  if (env != nullptr) l->deferred.Resolve(env.Undefined());
  delete l;
}

struct BatchMsg {
  WaBatch batch;
  // set on the last message close() sends: queued behind every batch
  CloseLatch* done = nullptr;
  // nonzero: the poll thread gave up (errno); JS gets onBatch(null, -errno)
  int fatal = 0;
};

inline void CallJs(Napi::Env env, Napi::Function cb, std::nullptr_t*, BatchMsg* msg) {
  WaBatch b = msg->batch;
  CloseLatch* done = msg->done;
  int fatal = msg->fatal;
  delete msg;
  if (fatal) {
    if (env != nullptr) cb.Call({env.Null(), Napi::Number::New(env, -fatal)});
    return;
  }
  if (done) {
    CloseLatchArrive(env, done);
    return;
  }
  if (env == nullptr) {  // tearing down: nobody to hand it to
    free(b.data);
    return;
  }
  auto ab = Napi::ArrayBuffer::New(env, b.data, b.len, [](Napi::Env, void* d) { free(d); });
  cb.Call({ab, Napi::Number::New(env, double(b.records))});
}

#endif
