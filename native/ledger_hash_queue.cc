// SPDX-License-Identifier: MIT
// ledgerHash.Queue: the ledger writer's leaf/chain/frontier hashing on a
// background thread (src/ledger/log-hash.ts). The writer's event loop thread
// lays records out, writes them and hands each flush's byte ranges here; the
// three SHA-256 per record (~0.5 us of ~2 on the storm) run beside it. The
// hash state (chain head, frontier nodes, leaf hashes) and the record bytes
// stay in the writer's Buffers: it keeps them alive and unchanged until
// waitFor(ticket) says the jobs that read or write them are done, and it reads
// the state only after wait(). Jobs run in submission order, so the tree and
// the chain come out exactly as the synchronous calls make them.
#include <napi.h>

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "ledger_hash.h"

namespace {

constexpr size_t kHash = 32;
constexpr size_t kMaxNodes = 64;

struct Job {
  const unsigned char* data;
  std::vector<uint32_t> ranges;  // copied: the writer reuses its array at once
  uint64_t n;
  unsigned char* chain;
  unsigned char* leaves;  // n hashes written here
  unsigned char* nodes;
  uint64_t size;  // tree size before this job
};

// One thread for the process, started at the first job; jobs of every log in order.
class Worker {
 public:
  static Worker& Get() {
    static Worker* w = new Worker();  // never destroyed: a parked thread outliving main is harmless
    return *w;
  }

  uint64_t Submit(Job&& j) {
    std::unique_lock<std::mutex> lk(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    q_.push_back(std::move(j));
    uint64_t ticket = ++submitted_;
    work_.notify_one();
    return ticket;
  }

  void WaitFor(uint64_t ticket) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return done_ >= ticket; });
  }

  uint64_t Submitted() {
    std::lock_guard<std::mutex> lk(mu_);
    return submitted_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      work_.wait(lk, [&] { return !q_.empty(); });
      Job j = std::move(q_.front());
      q_.pop_front();
      lk.unlock();
      WaLeafChain(j.data, j.ranges.data(), j.n, j.chain, j.leaves);
      WaFrontierAppend(j.nodes, j.size, j.leaves, j.n);
      lk.lock();
      done_++;
      done_cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable work_, done_cv_;
  std::deque<Job> q_;
  uint64_t submitted_ = 0, done_ = 0;
  std::thread thread_;
};

// submit(data, ranges, n, chain, leaves, leavesAt, nodes, size) -> ticket
// Everything is checked here, on the caller's thread: the job itself cannot fail.
Napi::Value Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WaLeafChainArgs a = WaParseLeafChain(info);
  auto nodes = WaArgBytes(info, 6, "nodes");
  uint64_t size = WaArgCount(info, 7, "size");
  if (nodes.ByteLength() != kMaxNodes * kHash) throw Napi::RangeError::New(env, "nodes must be 64 * 32 bytes");
  if (size + a.n > 9007199254740992ULL) throw Napi::RangeError::New(env, "tree size past 2^53");
  Job j{a.data.Data(), std::vector<uint32_t>(a.ranges.Data(), a.ranges.Data() + 2 * a.n), a.n, a.chain.Data(),
        a.leaves.Data() + a.at, nodes.Data(), size};
  return Napi::Number::New(env, double(Worker::Get().Submit(std::move(j))));
}

// waitFor(ticket): blocks until that job and every earlier one is done; wait(): all submitted so far.
Napi::Value WaitFor(const Napi::CallbackInfo& info) {
  Worker::Get().WaitFor(WaArgCount(info, 0, "ticket"));
  return info.Env().Undefined();
}

Napi::Value WaitAll(const Napi::CallbackInfo& info) {
  Worker& w = Worker::Get();
  w.WaitFor(w.Submitted());
  return info.Env().Undefined();
}

}  // namespace

void RegisterLedgerHashQueue(Napi::Env env, Napi::Object ledgerHash) {
  auto q = Napi::Object::New(env);
  q.Set("submit", Napi::Function::New(env, Submit));
  q.Set("waitFor", Napi::Function::New(env, WaitFor));
  q.Set("wait", Napi::Function::New(env, WaitAll));
  ledgerHash.Set("queue", q);
}
