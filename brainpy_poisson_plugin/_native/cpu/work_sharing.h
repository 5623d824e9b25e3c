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

//! The value of ``s`` if it is a plain non-negative decimal integer, optionally with
//! surrounding white space, else 0 (as switches.py: "4x", "-2", "+2", "2.5", "" mean no
//! cap). Values past 2^40 saturate (any such cap is no cap in effect).
inline int64_t parse_thread_cap(const char* s) {
  if (s == nullptr) return 0;
  const auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r'); };
  while (space(*s)) ++s;
  int64_t v = 0;
  const char* digits = s;
  for (; *s >= '0' && *s <= '9'; ++s) v = std::min<int64_t>(10 * v + (*s - '0'), int64_t{1} << 40);
  if (s == digits) return 0;
  while (space(*s)) ++s;
  return *s == '\0' ? v : 0;
}

//! Thread cap from BRAINPY_POISSON_NUM_THREADS (read once; 0, unset or not a plain
//! non-negative integer: no cap).
inline int64_t thread_cap() {
  static const int64_t cap = parse_thread_cap(std::getenv("BRAINPY_POISSON_NUM_THREADS"));
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
