// SPDX-License-Identifier: MIT
// Drains the ring on its own thread and packs raw records into batches: one
// hand-off to JavaScript per batch, not per event (a per-event call tops out
// far below what the kernel produces).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>

#include "../bpf/events.h"

struct wa_loader;

// A batch is a malloc'd buffer of frames: u32 len, u32 reserved, record bytes,
// zero padding to 8. Ownership passes to `deliver`.
struct WaBatch {
  uint8_t* data;
  size_t len;
  size_t records;
};

class WaPoller {
 public:
  // deliver returns false when the batch could not be handed over (then the
  // poller frees it and counts its records as dropped in user space).
  using Deliver = std::function<bool(WaBatch)>;

  // fatal: called once on the poll thread when polling failed
  // WA_POLL_ERRORS_FATAL times in a row (the thread then stops)
  using Fatal = std::function<void(int err)>;

  WaPoller(size_t batch_bytes, int max_latency_ms, Deliver deliver, Fatal fatal = nullptr);
  ~WaPoller();
  void Attach(wa_loader* loader) { loader_ = loader; }
  void Start();
  void Stop();  // drains the ring, flushes, joins; idempotent
  // Hands JS what the ring holds now instead of at max_latency: wakes the poll
  // thread, which drains the ring after seeing the request and flushes.
  void FlushSoon();
  static int OnRecord(void* self, const void* data, size_t size);

  std::atomic<uint64_t> batches{0}, records{0}, bytes{0}, user_dropped{0}, poll_errors{0};
  // per record type: taken from the ring, and of those, lost in user space
  std::atomic<uint64_t> seen[WA_EV_MAX] = {}, user_dropped_by_type[WA_EV_MAX] = {};
  std::atomic<int> fatal_errno{0};

 private:
  void Run();
  void Flush();
  bool NewBuffer();
  void CountLost(const WaBatch& b);

  wa_loader* loader_ = nullptr;
  size_t batch_bytes_;
  int max_latency_ms_;
  Deliver deliver_;
  Fatal fatal_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<bool> flush_asked_{false};
  // the poll thread waits on the ring's epoll fd and wake_fd_ together (-1: on the ring alone)
  int wake_fd_ = -1, wait_ep_ = -1;
  uint8_t* buf_ = nullptr;
  size_t len_ = 0, cap_ = 0, count_ = 0;
  uint64_t first_ns_ = 0;
};
