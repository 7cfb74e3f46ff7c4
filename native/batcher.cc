// SPDX-License-Identifier: MIT
#include "batcher.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loader.h"

namespace {
constexpr size_t kFrameHeader = 8;
constexpr size_t kMaxRecord = 32 * 1024;  // larger than any record events.h can produce

uint64_t MonoNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return uint64_t(t.tv_sec) * 1000000000ull + t.tv_nsec;
}
}  // namespace

WaPoller::WaPoller(size_t batch_bytes, int max_latency_ms, Deliver deliver, Fatal fatal)
    : batch_bytes_(batch_bytes), max_latency_ms_(max_latency_ms), deliver_(std::move(deliver)), fatal_(std::move(fatal)) {}

WaPoller::~WaPoller() {
  Stop();
  free(buf_);
  if (wake_fd_ >= 0) close(wake_fd_);
  if (wait_ep_ >= 0) close(wait_ep_);
}

bool WaPoller::NewBuffer() {
  cap_ = batch_bytes_ + kMaxRecord + kFrameHeader;
  buf_ = static_cast<uint8_t*>(malloc(cap_));
  len_ = count_ = 0;
  return buf_ != nullptr;
}

int WaPoller::OnRecord(void* self_ptr, const void* data, size_t size) {
  auto* self = static_cast<WaPoller*>(self_ptr);
  uint16_t type = size >= 2 ? *static_cast<const uint16_t*>(data) : 0;
  if (type >= WA_EV_MAX) type = 0;
  self->seen[type]++;
  if (!self->buf_ && !self->NewBuffer()) {
    self->user_dropped++;
    self->user_dropped_by_type[type]++;
    return 0;
  }
  if (size > kMaxRecord) size = kMaxRecord;  // cannot happen with events.h; the decoder flags the mismatch
  size_t framed = kFrameHeader + ((size + 7) & ~size_t(7));
  if (self->len_ + framed > self->cap_) self->Flush();
  if (!self->buf_ && !self->NewBuffer()) {
    self->user_dropped++;
    self->user_dropped_by_type[type]++;
    return 0;
  }
  uint8_t* p = self->buf_ + self->len_;
  uint32_t hdr[2] = {uint32_t(size), 0};
  memcpy(p, hdr, sizeof(hdr));
  memcpy(p + kFrameHeader, data, size);
  memset(p + kFrameHeader + size, 0, framed - kFrameHeader - size);
  if (self->count_ == 0) self->first_ns_ = MonoNs();
  self->len_ += framed;
  self->count_++;
  self->records++;
  self->bytes += size;
  if (self->len_ >= self->batch_bytes_) self->Flush();
  return 0;
}

void WaPoller::Flush() {
  if (!buf_ || count_ == 0) return;
  WaBatch b{buf_, len_, count_};
  buf_ = nullptr;
  len_ = count_ = 0;
  batches++;
  if (!deliver_(b)) {
    user_dropped += b.records;
    CountLost(b);
    free(b.data);
  }
}

// A batch JS never got: tally its records by type from the frames.
void WaPoller::CountLost(const WaBatch& b) {
  for (size_t off = 0; off + kFrameHeader <= b.len;) {
    uint32_t len;
    memcpy(&len, b.data + off, sizeof(len));
    uint16_t type = 0;
    if (len >= 2) memcpy(&type, b.data + off + kFrameHeader, sizeof(type));
    user_dropped_by_type[type < WA_EV_MAX ? type : 0]++;
    off += kFrameHeader + ((size_t(len) + 7) & ~size_t(7));
  }
}

void WaPoller::Start() {
  if (running_.exchange(true)) return;
  // Without the eventfd (or the ring's fd) FlushSoon still works, one poll timeout later.
  if (wake_fd_ < 0) wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wait_ep_ >= 0) close(wait_ep_);
  wait_ep_ = wake_fd_ < 0 ? -1 : epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (wait_ep_ >= 0 && (epoll_ctl(wait_ep_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0 ||
                        epoll_ctl(wait_ep_, EPOLL_CTL_ADD, wa_loader_ring_fd(loader_), &ev) != 0)) {
    close(wait_ep_);
    wait_ep_ = -1;
  }
  thread_ = std::thread([this] { Run(); });
}

void WaPoller::FlushSoon() {
  flush_asked_.store(true);
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

void WaPoller::Run() {
  const int timeout = max_latency_ms_ < 10 ? max_latency_ms_ : 10;
  const uint64_t max_age = uint64_t(max_latency_ms_) * 1000000ull;
  int consecutive = 0;
  while (running_.load(std::memory_order_relaxed)) {
    // after a failed poll, retry at once as the ring's own poll would (the bound below decides)
    if (wait_ep_ >= 0 && consecutive == 0 && !flush_asked_.load()) {
      epoll_event ev[2];
      if (epoll_wait(wait_ep_, ev, 2, timeout) < 0 && errno != EINTR) {
        close(wait_ep_);  // never spin on a broken wait: back to polling the ring alone
        wait_ep_ = -1;
      }
      uint64_t n;
      (void)!read(wake_fd_, &n, sizeof(n));
    }
    // the request is taken before the ring is drained: every record in the ring
    // when FlushSoon was called is in the batch flushed below
    const bool asked = flush_asked_.exchange(false);
    int rc = wa_loader_poll(loader_, wait_ep_ >= 0 || asked ? 0 : timeout);
    if (rc < 0) {
      poll_errors++;
      // a failing poll returns at once: without a bound this spins while the
      // ring fills unseen; past it the sensor says it is blind and stops
      if (++consecutive >= WA_POLL_ERRORS_FATAL) {
        fatal_errno.store(-rc);
        Flush();
        if (fatal_) fatal_(-rc);
        return;
      }
    } else {
      consecutive = 0;
    }
    if (count_ && (asked || MonoNs() - first_ns_ >= max_age)) Flush();
  }
  // the tail: whatever the kernel produced before we were told to stop
  while (wa_loader_poll(loader_, 0) > 0) {
  }
  Flush();
}

void WaPoller::Stop() {
  running_.store(false);
  FlushSoon();  // wakes the thread now rather than at its next poll timeout
  if (thread_.joinable()) thread_.join();
}
