// CPU handler, part 6 of 6: sharing one call's elements between the calling thread and
// the FFI thread pool, in chunks of at least kMinChunk elements (block aligned).
#ifndef BPP_CPU_WORK_SHARING_H_
#define BPP_CPU_WORK_SHARING_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "cpu/config.h"
#include "cpu/lookup_plan.h"
#include "cpu/runners.h"
#include "xla/ffi/api/ffi.h"

namespace bpp {
namespace {

#if BPP_HAVE_FFI_THREADPOOL
using Pool = ffi::ThreadPool;
#else
struct Pool {};
#endif

//! Thread cap from BRAINPY_POISSON_NUM_THREADS (read once; 0 or unset: no cap).
inline int64_t thread_cap() {
  static const int64_t cap = [] {
    const char* s = std::getenv("BRAINPY_POISSON_NUM_THREADS");
    if (s == nullptr || *s == '\0') return int64_t{0};
    const long v = std::strtol(s, nullptr, 10);
    return v > 0 ? static_cast<int64_t>(v) : int64_t{0};
  }();
  return cap;
}

//! One call: its plan, the tables the plan points into, and the chunk counters, shared
//! by the calling thread and the pool tasks. Tasks hold a reference, so a task the pool
//! starts late (after all chunks are taken) finds nothing to do and never touches freed
//! memory; the caller waits only for chunks actually being processed.
struct Work {
  LookupTables tables;
  Plan plan;
  RunRange run = nullptr;
  int64_t n = 0, chunk = 0, num_chunks = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;

  void drain() {
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= num_chunks) return;
      const int64_t b = c * chunk;
      run(plan, b, std::min(n, b + chunk));
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == num_chunks) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return done.load(std::memory_order_acquire) == num_chunks; });
  }
};

//! Runs ``work->run`` over all ``work->n`` elements: inline for small targets (or one
//! thread), else in a few chunks per thread (each at least kMinChunk elements, block
//! aligned) taken by the calling thread and the pool's threads.
inline void run_parallel(Pool& pool, const std::shared_ptr<Work>& work) {
  const int64_t n = work->n;
  int64_t threads = 1;
#if BPP_HAVE_FFI_THREADPOOL
  if (n >= 2 * kMinChunk) {
    threads = std::max<int64_t>(1, pool.num_threads());
    if (thread_cap() > 0) threads = std::min(threads, thread_cap());
    threads = std::min(threads, n / kMinChunk);
  }
#else
  (void)pool;
#endif
  if (threads <= 1) {
    work->run(work->plan, 0, n);
    return;
  }
  const int64_t chunks = std::min(4 * threads, n / kMinChunk);
  int64_t chunk = (n + chunks - 1) / chunks;
  chunk = (chunk + kBlock - 1) / kBlock * kBlock;
  work->chunk = chunk;
  work->num_chunks = (n + chunk - 1) / chunk;
#if BPP_HAVE_FFI_THREADPOOL
  for (int64_t t = 1; t < threads; ++t) {
    pool.Schedule([w = work] { w->drain(); });
  }
#endif
  work->drain();
  work->wait();
}

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_WORK_SHARING_H_
