// CPU handler, part 4 of 6: the AVX-512 (x86-64-v4) helpers and lookups: register
// tables looked up by permutes, the register binary search (SearchLookup) and the count
// guide (GuideCountLookup). Only instantiated in functions compiled for x86-64-v4.
#ifndef BPP_CPU_AVX512_LOOKUPS_H_
#define BPP_CPU_AVX512_LOOKUPS_H_

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bpp/poisson_kernel.h"
#include "cpu/config.h"
#include "cpu/lookup_plan.h"

namespace bpp {
namespace {

// AVX-512 path (x86-64-v4). The loops around the lookup vectorise well on their own, but
// two steps would otherwise compile to gathers, which are slow on current x86 cores
// (~1 cycle per element each, as much as a third of the whole kernel): the tie check of
// the linear lookup and the increment look-up. With AVX-512 both tables fit in two zmm
// registers (32 entries) and a two-source permute (vpermt2d) does the look-up in one
// instruction. The code uses GCC vector extensions (16 lanes of 32 bits); it is
// instantiated only in functions compiled for x86-64-v4, picked at run time.
//! The v4 helpers: always inlined, and only ever into x86-64-v4 code (so the vector-ABI
//! warning about 512-bit arguments in functions without AVX-512 does not apply).
#define BPP_V4_INLINE BPP_INLINE
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

constexpr int kLanes = 16;  //!< 32-bit lanes of the v4 path
typedef uint32_t VU32 __attribute__((vector_size(4 * kLanes)));
typedef float VF32 __attribute__((vector_size(4 * kLanes)));

template <typename V, typename S>
BPP_V4_INLINE V vload(const S* p) {
  V v;
  memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename S>
BPP_V4_INLINE void vstore(S* p, V v) {
  memcpy(p, &v, sizeof(V));
}
//! A table of N 32-bit entries (N = 16, 32, 64 or 128) held in zmm registers; ``t(idx)``
//! looks 16 indices up at once with permutes (vpermd for 16 entries, vpermt2d for 32,
//! several vpermt2d and blends above). Indices must be below N.
template <int N>
struct VTable {
  static_assert(N == 16 || N == 32 || N == 64 || N == 128, "table size");
  VU32 r[N / kLanes];
  //! Entries ``src[0..n)``, then ``pad``.
  BPP_V4_INLINE void load(const uint32_t* src, uint32_t n, uint32_t pad) {
    for (int j = 0; j < N; ++j) r[j / kLanes][j % kLanes] = static_cast<uint32_t>(j) < n ? src[j] : pad;
  }
  BPP_V4_INLINE VU32 operator()(VU32 idx) const {
#if BPP_HAVE_V4
    if constexpr (N == 16) {
      return __builtin_shuffle(r[0], idx);
    } else {
      VU32 v = __builtin_shuffle(r[0], r[1], idx);
      for (int q = 1; q < N / 32; ++q) {
        const VU32 w = __builtin_shuffle(r[2 * q], r[2 * q + 1], idx);
        v = (idx >> 5) == static_cast<uint32_t>(q) ? w : v;
      }
      return v;
    }
#else  // never on the hot path there; keeps the code compiling everywhere
    VU32 v;
    for (int l = 0; l < kLanes; ++l) v[l] = r[(idx[l] % N) / kLanes][idx[l] % kLanes];
    return v;
#endif
  }
};

//! f32 increments of a table of N >= L + 1 entries in registers: the select-add of
//! ``add_block`` with the increment looked up by permute instead of a gather.
//! dst[k] = add_increment(src[k], inc[k]) for 16 lanes, ``ib`` the increment bits.
BPP_V4_INLINE void add_lanes(float* dst, const float* src, VU32 ib) {
  const VF32 t = vload<VF32>(src);
  const VU32 sb = reinterpret_cast<VU32>(t + reinterpret_cast<VF32>(ib));
  const VU32 keep = reinterpret_cast<VU32>((ib << 1) == 0u);
  vstore(dst, (reinterpret_cast<VU32>(t) & keep) | (sb & ~keep));
}

template <int N>
struct RegisterAdd {
  VTable<N> inc;
  BPP_V4_INLINE void load(const Plan& p) { inc.load(static_cast<const uint32_t*>(p.inc), p.table_length + 1, 0u); }
  //! dst[k] = add_increment(src[k], inc[cnt[k]]).
  BPP_V4_INLINE void add(float* dst, const float* src, const uint32_t* BPP_RESTRICT cnt, int m) const {
    int k = 0;
    for (; k + kLanes <= m; k += kLanes) add_lanes(dst + k, src + k, inc(vload<VU32>(cnt + k)));
    for (; k < m; ++k) {
      dst[k] = add_increment<float>(src[k], bit_cast<float>(inc.r[cnt[k] / kLanes][cnt[k] % kLanes]));
    }
  }
};

//! v4 lookup: the middle hi words of the table (padded with 2^32-1) and the increments
//! (f32 targets) in registers, both tables of N entries, N >= L + 1. The count is a
//! branch-free binary search by permutes (log2 of the padded middle count steps) instead
//! of one compare per threshold; the tie check as in ``LinearLookup``.
template <typename T, int N>
struct SearchLookup {
  static constexpr bool kWholeBlock = true;
  static constexpr bool kRegisterAdd = std::is_same<T, float>::value;
  VTable<N> h;
  RegisterAdd<N> inc;
  uint32_t base;
  uint32_t steps;
  explicit SearchLookup(const Plan& p) : base(p.lin_base), steps(p.search_steps) {
    h.load(p.lin_h, p.search_count, ~0u);
    if constexpr (kRegisterAdd) inc.load(p);
  }

  //! Counts of the block (kBlock hi words ``y0``) into ``cnt``; returns the OR of them
  //! (its top bit: some element must be redone exactly).
  BPP_V4_INLINE uint32_t block(const uint32_t* BPP_RESTRICT y0, const uint32_t* BPP_RESTRICT,
                               uint32_t* BPP_RESTRICT cnt) const {
    VU32 any = VU32{};
    const uint32_t first = h.r[(steps / 2 - 1) / kLanes][(steps / 2 - 1) % kLanes];
    for (int k = 0; k < kBlock; k += kLanes) {
      const VU32 uh = vload<VU32>(y0 + k);
      // lower bound over the ``steps`` padded entries: c = #{j : h[j] < uh}
      VU32 c = reinterpret_cast<VU32>(uh > first) & (steps / 2);
      for (uint32_t step = steps / 4; step >= 1; step /= 2) {
        c += reinterpret_cast<VU32>(h(c + (step - 1)) < uh) & step;
      }
      VU32 probe = h(c);
      c -= reinterpret_cast<VU32>(probe < uh);  // true is all ones
      probe = h(c);                             // the first entry >= uh (2^32-1 padding past the middle words)
      const VU32 tie = reinterpret_cast<VU32>(probe == uh) | reinterpret_cast<VU32>(uh == 0u);
      const VU32 r = (c + base) | (tie & kSlowBit);
      vstore(cnt + k, r);
      any |= r;
    }
    uint32_t acc = 0;
    for (int l = 0; l < kLanes; ++l) acc |= any[l];
    return acc;
  }

  BPP_V4_INLINE void add(float* dst, const float* src, const uint32_t* BPP_RESTRICT cnt, int m) const {
    inc.add(dst, src, cnt, m);
  }
};

//! Where GuideCountLookup takes an element's increment from.
enum class IncrementSource {
  kGather,     //!< the portable gather-add over ``increments`` (f64, and f32 tables too big for the others)
  kRegisters,  //!< f32, L + 1 <= Entries (64 or 128): a register table looked up by permutes
  kGuide,      //!< f32: the increment guide, whose gather yields the increment bits themselves
};

//! v4 lookup for the tables too large for the register search: a guide over the top G
//! bits of the hi word whose entry is the bucket start s(b) = #{j : H[j] < b << (32 - G)},
//! flagged (kSlowBit) when a hi word falls inside the bucket. An unflagged entry is the
//! count itself (every threshold of a hi word below the bucket is <= u, every other one
//! > u), so most elements take one load (a gather). Flagged buckets are rare (at most
//! one per distinct hi word, of 2^G); their elements are settled right here by a binary
//! search over the 64-bit thresholds of the bucket only, [s(b), s(b + 1)) (the guide has
//! a sentinel entry s(2^G) = L). Where the increment comes from is ``S`` (IncrementSource).
template <typename T, IncrementSource S, int Entries = 16>
struct GuideCountLookup {
  static constexpr bool kWholeBlock = true;
  static constexpr bool kIncGuide = S == IncrementSource::kGuide;
  static_assert(S == IncrementSource::kGather || std::is_same<T, float>::value, "f32 only");
  static constexpr bool kRegisterAdd = S != IncrementSource::kGather;
  const uint32_t* BPP_RESTRICT look;   //!< the gathered guide: cguide, or iguide
  const uint32_t* BPP_RESTRICT guide;  //!< the count guide (fix-up)
  const uint64_t* BPP_RESTRICT thr;
  const uint32_t* BPP_RESTRICT incbits;
  int shift;
  RegisterAdd<Entries> inc;
  explicit GuideCountLookup(const Plan& p)
      : look(kIncGuide ? p.iguide : p.cguide),
        guide(p.cguide),
        thr(p.T),
        incbits(static_cast<const uint32_t*>(p.inc)),
        shift(p.cshift) {
    if constexpr (S == IncrementSource::kRegisters) inc.load(p);
  }

  //! As SearchLookup::block, but settles the flagged elements itself (returns 0): a
  //! gather per 16 elements, and the lane mask of the flagged ones, so that the rare
  //! fix-up visits just those. Written with intrinsics, so not inlined (GCC refuses to
  //! inline x86-64-v4 code into the generic template body; one call per block is noise).
  __attribute__((noinline)) BPP_TARGET_V4 uint32_t block(const uint32_t* BPP_RESTRICT y0,
                                                         const uint32_t* BPP_RESTRICT y1,
                                                         uint32_t* BPP_RESTRICT cnt) const {
    constexpr int kGroups = kBlock / kLanes;
    uint32_t flagged[kGroups];
    uint32_t any = 0;
#if BPP_HAVE_V4
    const __m512i slow = _mm512_set1_epi32(static_cast<int>(kIncGuide ? kIncFlag : kSlowBit));
    const __m128i sh = _mm_cvtsi32_si128(shift);
    for (int g = 0; g < kGroups; ++g) {
      const __m512i idx = _mm512_srl_epi32(_mm512_loadu_si512(y0 + g * kLanes), sh);
      const __m512i e = _mm512_i32gather_epi32(idx, look, 4);
      _mm512_storeu_si512(cnt + g * kLanes, e);
      flagged[g] = kIncGuide ? _mm512_cmpge_epu32_mask(e, slow) : _mm512_test_epi32_mask(e, slow);
      any |= flagged[g];
    }
#else  // never on the hot path there; keeps the code compiling everywhere
    for (int g = 0; g < kGroups; ++g) {
      flagged[g] = 0;
      for (int l = 0; l < kLanes; ++l) {
        const uint32_t e = look[y0[g * kLanes + l] >> shift];
        cnt[g * kLanes + l] = e;
        flagged[g] |= static_cast<uint32_t>(kIncGuide ? e >= kIncFlag : e >= kSlowBit) << l;
      }
      any |= flagged[g];
    }
#endif
    if (any) {
      for (int g = 0; g < kGroups; ++g) {
        for (uint32_t f = flagged[g]; f != 0; f &= f - 1) {
          const int k = g * kLanes + __builtin_ctz(f);
          const uint32_t b = y0[k] >> shift;
          const uint32_t s = guide[b] & ~kSlowBit;
          const uint32_t e = guide[b + 1] & ~kSlowBit;
          const uint32_t c = count_le(thr, s, e - s, (static_cast<uint64_t>(y0[k]) << 32) | y1[k]);
          cnt[k] = kIncGuide ? incbits[c] : c;
        }
      }
    }
    return 0;
  }

  BPP_V4_INLINE void add(float* dst, const float* src, const uint32_t* BPP_RESTRICT cnt, int m) const {
    if constexpr (kIncGuide) {  // ``cnt`` holds the increment bits
      int k = 0;
      for (; k + kLanes <= m; k += kLanes) add_lanes(dst + k, src + k, vload<VU32>(cnt + k));
      for (; k < m; ++k) dst[k] = add_increment<float>(src[k], bit_cast<float>(cnt[k]));
    } else {
      inc.add(dst, src, cnt, m);
    }
  }
};

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_AVX512_LOOKUPS_H_
