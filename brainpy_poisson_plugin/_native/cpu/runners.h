// CPU handler, part 5 of 6: the chunk loop (counters, Threefry-2x32, the lookup, the
// exact fix-up, the add, a block of kBlock elements at a time), its entry points per
// dtype, lookup and ISA, and picking one for a call.
#ifndef BPP_CPU_RUNNERS_H_
#define BPP_CPU_RUNNERS_H_

#include <algorithm>
#include <cstdint>

#include "bpp/poisson_kernel.h"
#include "cpu/avx512_lookups.h"
#include "cpu/config.h"
#include "cpu/lookup_plan.h"
#include "cpu/portable_lookups.h"

namespace bpp {
namespace {

//! Elements [begin, end) of the target. Always inlined into the per-dtype, per-lookup,
//! per-ISA entry points below.
template <typename T, typename Lookup>
BPP_INLINE void run_range_impl(const Plan& p, int64_t begin, int64_t end) {
  constexpr bool kWholeBlock = Lookup::kWholeBlock;  // the v4 lookups: a block at a time
  alignas(64) uint32_t x0[kBlock];
  alignas(64) uint32_t x1[kBlock];
  alignas(64) uint32_t cnt[kBlock];
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  const T* inc = static_cast<const T*>(p.inc);
  const uint32_t k0 = p.k0, k1 = p.k1;
  const Lookup lookup(p);
  const bool padded = p.table_length < p.full_length;
  CounterWalker walker(p.layout, begin);

  for (int64_t start = begin; start < end; start += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, end - start));
    walker.fill(m, x0, x1);
    for (int k = m; k < kBlock; ++k) {
      x0[k] = 0;
      x1[k] = 0;
    }

    for (int k = 0; k < kBlock; ++k) {
      uint32_t a = x0[k], b = x1[k];
      threefry2x32(k0, k1, a, b);
      x0[k] = a;
      x1[k] = b;
    }

    uint32_t slow = 0;
    if constexpr (kWholeBlock) {
      slow = lookup.block(x0, x1, cnt);
    } else {
      for (int k = 0; k < kBlock; ++k) {
        const uint32_t c = lookup(x0[k]);
        cnt[k] = c;
        slow |= c;
      }
    }
    if (slow & kSlowBit) {  // rare: settle the marked elements exactly
      for (int k = 0; k < m; ++k) {
        if (cnt[k] & kSlowBit) {
          const uint64_t u = (static_cast<uint64_t>(x0[k]) << 32) | x1[k];
          cnt[k] = count_le(p.T, 0u, p.table_length, u);
        }
      }
    }

    // u = 2^64-1 counts all L rows, padding included: the lookups (over the L_eff real
    // rows) gave it L_eff, so such elements get increment L added after the block add,
    // from their saved target value (rare: 2^-64 per element; padded tables only).
    uint32_t all_ones = 0;
    if (padded) {
      for (int k = 0; k < m; ++k) all_ones |= static_cast<uint32_t>((x0[k] & x1[k]) == ~0u);
    }
    alignas(64) T saved[kBlock];
    if (all_ones) {
      for (int k = 0; k < m; ++k) saved[k] = in[start + k];
    }

    if constexpr (Lookup::kRegisterAdd) {
      lookup.add(out + start, in + start, cnt, m);
    } else if (in == out) {
      add_block_inplace(out + start, inc, cnt, m);
    } else {
      add_block(out + start, in + start, inc, cnt, m);
    }
    if (all_ones) {
      for (int k = 0; k < m; ++k) {
        if ((x0[k] & x1[k]) == ~0u) out[start + k] = add_increment<T>(saved[k], inc[p.full_length]);
      }
    }
  }
}

// One entry point per (dtype, lookup); the body is the template above, the macros only
// stamp out the (non-template) wrappers:
//   - the portable ones (linear or guide lookup), compiled for x86-64-v3 and the baseline
//     (target_clones, the best picked at load time);
//   - where supported, the AVX-512 ones (register search, tables of N entries), compiled
//     for x86-64-v4 and picked at run time when the CPU has it.
#define BPP_DEFINE_RUN_RANGE(NAME, TYPE, LOOKUP) \
  BPP_MULTIVERSION void NAME(const Plan& p, int64_t begin, int64_t end) { run_range_impl<TYPE, LOOKUP>(p, begin, end); }
BPP_DEFINE_RUN_RANGE(run_f32_lin8, float, LinearLookup<8>)
BPP_DEFINE_RUN_RANGE(run_f32_lin16, float, LinearLookup<16>)
BPP_DEFINE_RUN_RANGE(run_f32_lin32, float, LinearLookup<32>)
BPP_DEFINE_RUN_RANGE(run_f32_guide, float, GuideLookup)
BPP_DEFINE_RUN_RANGE(run_f64_lin8, double, LinearLookup<8>)
BPP_DEFINE_RUN_RANGE(run_f64_lin16, double, LinearLookup<16>)
BPP_DEFINE_RUN_RANGE(run_f64_lin32, double, LinearLookup<32>)
BPP_DEFINE_RUN_RANGE(run_f64_guide, double, GuideLookup)
#undef BPP_DEFINE_RUN_RANGE

#if BPP_HAVE_V4
// LOOKUP in parentheses (it has commas); unwrapped by BPP_UNPAREN.
#define BPP_UNPAREN(...) __VA_ARGS__
#define BPP_DEFINE_RUN_RANGE_V4(NAME, TYPE, LOOKUP)                    \
  BPP_TARGET_V4 void NAME(const Plan& p, int64_t begin, int64_t end) { \
    run_range_impl<TYPE, BPP_UNPAREN LOOKUP>(p, begin, end);           \
  }
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_16, float, (SearchLookup<float, 16>))
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_32, float, (SearchLookup<float, 32>))
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide64, float, (GuideCountLookup<float, IncrementSource::kRegisters, 64>))
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide128, float, (GuideCountLookup<float, IncrementSource::kRegisters, 128>))
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide, float, (GuideCountLookup<float, IncrementSource::kGather>))
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_iguide, float, (GuideCountLookup<float, IncrementSource::kGuide>))
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_16, double, (SearchLookup<double, 16>))
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_32, double, (SearchLookup<double, 32>))
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_guide, double, (GuideCountLookup<double, IncrementSource::kGather>))
#undef BPP_DEFINE_RUN_RANGE_V4
#undef BPP_UNPAREN
#endif

//! A chunk function: elements [begin, end) of the call's target.
using RunRange = void (*)(const Plan&, int64_t, int64_t);

//! The AVX-512 entry point for dtype ``T`` and a table of ``L`` thresholds, or nullptr
//! (no AVX-512 here). The register search when the table fits (L + 1 <= 32), else the
//! count guide (f32: increments in registers up to 128 entries, else the increment guide
//! where the increments allow one).
template <typename T>
RunRange pick_v4_runner(uint32_t L, bool inc_guide);
template <>
RunRange pick_v4_runner<float>(uint32_t L, bool inc_guide) {
#if BPP_HAVE_V4
  if (!use_v4()) return nullptr;
  if (L + 1 <= 16) return run_f32_v4_16;
  if (L + 1 <= kMaxSearchTable) return run_f32_v4_32;
  if (inc_guide) return run_f32_v4_iguide;
  if (L + 1 <= 64) return run_f32_v4_guide64;
  if (L + 1 <= 128) return run_f32_v4_guide128;
  return run_f32_v4_guide;
#else
  (void)L;
  (void)inc_guide;
  return nullptr;
#endif
}
template <>
RunRange pick_v4_runner<double>(uint32_t L, bool) {
#if BPP_HAVE_V4
  if (!use_v4()) return nullptr;
  if (L + 1 <= 16) return run_f64_v4_16;
  if (L + 1 <= kMaxSearchTable) return run_f64_v4_32;
  return run_f64_v4_guide;
#else
  (void)L;
  return nullptr;
#endif
}

//! The portable entry point for dtype ``T``: a linear lookup of 8/16/32 entries for
//! ``m`` middle hi words, or the guide when ``m`` exceeds kMaxLinear.
template <typename T>
RunRange pick_portable_runner(uint32_t m);
template <>
RunRange pick_portable_runner<float>(uint32_t m) {
  return m <= 8 ? run_f32_lin8 : m <= 16 ? run_f32_lin16 : m <= 32 ? run_f32_lin32 : run_f32_guide;
}
template <>
RunRange pick_portable_runner<double>(uint32_t m) {
  return m <= 8 ? run_f64_lin8 : m <= 16 ? run_f64_lin16 : m <= 32 ? run_f64_lin32 : run_f64_guide;
}

//! The chunk function for a plan: AVX-512 where the CPU has it, else portable.
template <typename T>
RunRange pick_runner(const Plan& p) {
  if (RunRange v4 = pick_v4_runner<T>(p.table_length, p.iguide != nullptr)) return v4;
  return pick_portable_runner<T>(p.lin_count);
}

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_RUNNERS_H_
