// CPU FFI handler of ``bpp_poisson_add`` (docs/kernel-contract.md).
//
// Organisation (per call):
//   1. check operands; collapse the block layout (bpp::make_layout);
//   2. prepare a count lookup over the hi words H[j] = T[j] >> 32 of the thresholds:
//      - "linear" when at most 32 thresholds have 0 < H < 2^32-1 (every realistic table with
//        a mean count up to ~5: the far tails have H == 0 or H == 2^32-1): the count is
//        base + sum_j [H[j] < uh] over a fixed-size (8/16/32) padded array, fully unrolled;
//      - "guide" otherwise: bucket b = uh >> (32 - G) of 2^G >= 2L buckets (>= 2^11)
//        starts at guide[b] = #{j : H[j] < b << (32 - G)}, and two compares settle it
//        unless the bucket holds more than two thresholds (flagged in the guide entry).
//      Elements whose hi word equals a threshold's hi word (or 0, or 2^32-1), or whose
//      bucket is flagged, are marked and redone exactly with a binary search over the
//      64-bit thresholds (probability ~ L 2^-32 resp. ~2^-G per element);
//      on AVX-512 CPUs instead: the register binary search (SearchLookup, L + 1 <= 32),
//      else the count guide (GuideCountLookup: 2^13 buckets whose entry is the count, or
//      for f32 directly the increment, unless a hi word falls in the bucket; one gather
//      per 16 elements, flagged elements settled by a search within their bucket);
//   3. split the elements into chunks (>= 64K elements each; small targets run inline)
//      run on the FFI thread pool, the calling thread taking chunks too;
//   4. each chunk runs in blocks of kBlock elements, in branch-free loops that the
//      compiler vectorises: counters, Threefry-2x32, the count, the select-add (done on
//      bit patterns, so it vectorises without -fno-trapping-math).
// The chunk functions are compiled for x86-64-v4 / v3 / baseline (target_clones) and the
// best is picked at load time, so the library stays portable (no -march=native).

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bpp/ffi_common.h"
#include "bpp/poisson_kernel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {
namespace {

constexpr int kBlock = 256;
constexpr int64_t kMinChunk = 16 * 1024;  // elements (~40 us of work); smaller targets run inline
constexpr int kMinGuideBits = 11;
constexpr int kMaxGuideBits = 20;
constexpr uint32_t kSlowBit = 0x80000000u;  // in a count: "redo exactly"; in a guide entry: "crowded bucket"
constexpr int kMaxLinear = 32;
constexpr int kCountGuideBits = 13;  // v4 count guide: 2^13 words (32 KiB, an L1 cache)
constexpr int kIncrementGuide = -1;  // GuideCountLookup: gather f32 increment bits (see there)
//! Increment-guide entry of a flagged bucket (a negative quiet NaN and above: such
//! increments, if any, rule the increment guide out).
constexpr uint32_t kIncFlag = 0xFFC00000u;
constexpr uint32_t kMaxSearchTable = 32;  // v4 path: entries of the register tables (L + 1 at most)
constexpr uint32_t kMaxSearch = kMaxSearchTable - 1;  // middle hi words it searches

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && \
    !defined(BPP_NO_MULTIVERSION)
#define BPP_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BPP_MULTIVERSION
#endif

#if defined(__GNUC__)
#define BPP_INLINE inline __attribute__((always_inline))
#define BPP_RESTRICT __restrict__
#else
#define BPP_INLINE inline
#define BPP_RESTRICT
#endif

// ---------------------------------------------------------------------------------
// AVX-512 path (x86-64-v4). The loops above the lookup vectorise well on their own, but
// two steps would otherwise compile to gathers, which are slow on current x86 cores
// (~1 cycle per element each, as much as a third of the whole kernel): the tie check of
// the linear lookup and the increment look-up. With AVX-512 both tables fit in two zmm
// registers (32 entries) and a two-source permute (vpermt2d) does the look-up in one
// instruction. The code uses GCC vector extensions (16 lanes of 32 bits); it is
// instantiated only in functions compiled for x86-64-v4, picked at run time.
// ---------------------------------------------------------------------------------
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(BPP_NO_MULTIVERSION) && __GNUC__ >= 12
#define BPP_HAVE_V4 1
#define BPP_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#else
#define BPP_HAVE_V4 0
#define BPP_TARGET_V4
#endif
//! The v4 helpers: always inlined, and only ever into x86-64-v4 code (so the vector-ABI
//! warning about 512-bit arguments in functions without AVX-512 does not apply).
#define BPP_V4_INLINE BPP_INLINE
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

constexpr int kLanes = 16;      //!< 32-bit lanes of the v4 path
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

//! Everything a chunk needs; immutable while the call runs.
struct Plan {
  uint32_t k0, k1;
  uint32_t table_length;      //!< L
  const uint64_t* T;          //!< the L thresholds as 64-bit words (exact path)
  // linear lookup
  uint32_t lin_base;          //!< #{j : H[j] == 0}
  const uint32_t* lin_h;      //!< the middle hi words, padded with 2^32-1 to kMaxSearch + 1
  // guide lookup
  int hshift;                 //!< 32 - G
  const uint32_t* guide;      //!< 2^G entries: bucket start | kSlowBit if crowded
  const uint32_t* h;          //!< L hi words then two 2^32-1 entries
  Layout layout;
  const void* in;
  void* out;
  const void* inc;
  // v4 search (all tables with at most kMaxSearch middle hi words)
  uint32_t search_count;      //!< #middle hi words (those in lin_h)
  uint32_t search_steps;      //!< power of two >= search_count + 1
  // v4 count guide (larger tables): 2^(32 - cshift) + 1 entries, see GuideCountLookup
  int cshift;
  const uint32_t* cguide = nullptr;
  const uint32_t* iguide = nullptr;  //!< f32: the increment guide (or null)
};

//! Count lookup over a fixed-size, padded array of hi words (see the file comment).
//! Portable path: one less-than and one equality compare per entry (a table look-up for
//! the tie check would compile to a gather, slower than the compares).
template <int M>
struct LinearLookup {
  static constexpr bool kSearch = false;  // per element (operator()), not per block
  static constexpr bool kRegisterAdd = false;
  uint32_t base;
  uint32_t h[M];
  explicit LinearLookup(const Plan& p) : base(p.lin_base) {
    for (int j = 0; j < M; ++j) h[j] = p.lin_h[j];
  }
  BPP_INLINE uint32_t operator()(uint32_t uh) const {
    uint32_t c = base;
    uint32_t eq = static_cast<uint32_t>(uh == 0u) | static_cast<uint32_t>(uh == ~0u);
    for (int j = 0; j < M; ++j) {
      c += static_cast<uint32_t>(h[j] < uh);
      eq |= static_cast<uint32_t>(h[j] == uh);
    }
    return c | (eq << 31);
  }
};

//! Count lookup through the guide table (see the file comment).
struct GuideLookup {
  static constexpr bool kSearch = false;
  static constexpr bool kRegisterAdd = false;
  const uint32_t* BPP_RESTRICT guide;
  const uint32_t* BPP_RESTRICT h;
  int hshift;
  explicit GuideLookup(const Plan& p) : guide(p.guide), h(p.h), hshift(p.hshift) {}
  BPP_INLINE uint32_t operator()(uint32_t uh) const {
    const uint32_t e = guide[uh >> hshift];
    const uint32_t j = e & ~kSlowBit;
    const uint32_t h0 = h[j], h1 = h[j + 1];
    const uint32_t c = j + static_cast<uint32_t>(h0 < uh) + static_cast<uint32_t>(h1 < uh);
    const uint32_t eq = static_cast<uint32_t>(h0 == uh) | static_cast<uint32_t>(h1 == uh);
    return c | (e & kSlowBit) | (eq << 31);
  }
};

//! Walks the collapsed layout in local flat order and yields global flat indices.
class CounterWalker {
 public:
  CounterWalker(const Layout& lay, int64_t begin) : lay_(lay) {
    const int r = lay.rank;
    uint64_t rem = static_cast<uint64_t>(begin);
    for (int d = r - 1; d >= 0; --d) {
      const uint64_t n = static_cast<uint64_t>(lay.size[d]);
      idx_[d] = static_cast<int64_t>(rem % n);
      rem /= n;
    }
    inner_ = idx_[r - 1];
    inner_size_ = lay.size[r - 1];
    inner_stride_ = lay.stride[r - 1];
    row_ = lay.base;
    for (int d = 0; d < r - 1; ++d) row_ += static_cast<uint64_t>(idx_[d]) * lay.stride[d];
  }

  //! Writes the counter words of the next ``m`` elements.
  BPP_INLINE void fill(int m, uint32_t* BPP_RESTRICT x0, uint32_t* BPP_RESTRICT x1) {
    int k = 0;
    while (k < m) {
      const int run = static_cast<int>(std::min<int64_t>(m - k, inner_size_ - inner_));
      const uint64_t g0 = row_ + static_cast<uint64_t>(inner_) * inner_stride_;
      if (lay_.small) {
        const uint32_t s = static_cast<uint32_t>(g0);
        const uint32_t st = static_cast<uint32_t>(inner_stride_);
        if (st == 1) {
          for (int j = 0; j < run; ++j) { x0[k + j] = 0; x1[k + j] = s + static_cast<uint32_t>(j); }
        } else {
          for (int j = 0; j < run; ++j) { x0[k + j] = 0; x1[k + j] = s + static_cast<uint32_t>(j) * st; }
        }
      } else {
        for (int j = 0; j < run; ++j) {
          const uint64_t g = g0 + static_cast<uint64_t>(j) * inner_stride_;
          x0[k + j] = static_cast<uint32_t>(g >> 32);
          x1[k + j] = static_cast<uint32_t>(g);
        }
      }
      k += run;
      inner_ += run;
      if (inner_ == inner_size_) advance_row();
    }
  }

 private:
  void advance_row() {
    inner_ = 0;
    for (int d = lay_.rank - 2; d >= 0; --d) {
      ++idx_[d];
      row_ += lay_.stride[d];
      if (idx_[d] < lay_.size[d]) return;
      row_ -= static_cast<uint64_t>(lay_.size[d]) * lay_.stride[d];
      idx_[d] = 0;
    }
  }

  const Layout& lay_;
  int64_t idx_[kMaxDims] = {};
  int64_t inner_, inner_size_;
  uint64_t inner_stride_, row_;
};

//! dst[k] (+)= inc[cnt[k]], with the zero-increment select. Separate functions so that
//! the restrict-qualified parameters tell the vectoriser the table gather cannot alias
//! the target (the in-place form reads and writes through one pointer).
template <typename T>
BPP_INLINE void add_block_inplace(T* BPP_RESTRICT dst, const T* BPP_RESTRICT inc,
                                  const uint32_t* BPP_RESTRICT cnt, int m) {
  for (int k = 0; k < m; ++k) dst[k] = add_increment_bits<T>(dst[k], inc[cnt[k]]);
}
template <typename T>
BPP_INLINE void add_block(T* BPP_RESTRICT dst, const T* BPP_RESTRICT src, const T* BPP_RESTRICT inc,
                          const uint32_t* BPP_RESTRICT cnt, int m) {
  for (int k = 0; k < m; ++k) dst[k] = add_increment_bits<T>(src[k], inc[cnt[k]]);
}

//! f32 increments of a table of N >= L + 1 entries in registers: the select-add of
//! ``add_block`` with the increment looked up by permute instead of a gather.
//! dst[k] = add_increment_bits(src[k], inc[k]) for 16 lanes, ``ib`` the increment bits.
BPP_V4_INLINE void add_lanes(float* dst, const float* src, VU32 ib) {
  const VF32 t = vload<VF32>(src);
  const VU32 sb = reinterpret_cast<VU32>(t + reinterpret_cast<VF32>(ib));
  const VU32 keep = reinterpret_cast<VU32>((ib << 1) == 0u);
  vstore(dst, (reinterpret_cast<VU32>(t) & keep) | (sb & ~keep));
}

template <int N>
struct RegisterAdd {
  VTable<N> inc;
  BPP_V4_INLINE void load(const Plan& p) {
    inc.load(static_cast<const uint32_t*>(p.inc), p.table_length + 1, 0u);
  }
  //! dst[k] = add_increment_bits(src[k], inc[cnt[k]]).
  BPP_V4_INLINE void add(float* dst, const float* src, const uint32_t* BPP_RESTRICT cnt, int m) const {
    int k = 0;
    for (; k + kLanes <= m; k += kLanes) add_lanes(dst + k, src + k, inc(vload<VU32>(cnt + k)));
    for (; k < m; ++k) {
      dst[k] = add_increment_bits<float>(src[k], bit_cast<float>(inc.r[cnt[k] / kLanes][cnt[k] % kLanes]));
    }
  }
};

//! v4 lookup: the middle hi words of the table (padded with 2^32-1) and the increments
//! (f32 targets) in registers, both tables of N entries, N >= L + 1. The count is a
//! branch-free binary search by permutes (log2 of the padded middle count steps) instead
//! of one compare per threshold; the tie check as in ``LinearLookup``.
template <typename T, int N>
struct SearchLookup {
  static constexpr bool kSearch = true;
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
      probe = h(c);  // the first entry >= uh (2^32-1 padding past the middle words)
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

//! v4 lookup for the tables too large for the register search: a guide over the top G
//! bits of the hi word whose entry is the bucket start s(b) = #{j : H[j] < b << (32 - G)},
//! flagged (kSlowBit) when a hi word falls inside the bucket. An unflagged entry is the
//! count itself (every threshold of a hi word below the bucket is <= u, every other one
//! > u), so most elements take one load (a gather). Flagged buckets are rare (at most
//! one per distinct hi word, of 2^G); their elements are settled right here by a binary
//! search over the 64-bit thresholds of the bucket only, [s(b), s(b + 1)) (the guide has
//! a sentinel entry s(2^G) = L). Increments (f32): N = kIncrementGuide: the "increment
//! guide", same buckets but holding the increment bits of the count, kIncFlag where
//! flagged, so that the gather yields the increment itself; N > 0: in registers (N >= L + 1);
//! N = 0 (and f64): the portable gather-add.
template <typename T, int N>
struct GuideCountLookup {
  static constexpr bool kSearch = true;
  static constexpr bool kIncGuide = N == kIncrementGuide;
  static_assert(!kIncGuide || std::is_same<T, float>::value, "increment guide: f32 only");
  static constexpr bool kRegisterAdd = std::is_same<T, float>::value && N != 0;
  const uint32_t* BPP_RESTRICT look;   //!< the gathered guide: cguide, or iguide
  const uint32_t* BPP_RESTRICT guide;  //!< the count guide (fix-up)
  const uint64_t* BPP_RESTRICT thr;
  const uint32_t* BPP_RESTRICT incbits;
  int shift;
  RegisterAdd<(N > 0 ? N : 16)> inc;
  explicit GuideCountLookup(const Plan& p)
      : look(kIncGuide ? p.iguide : p.cguide), guide(p.cguide), thr(p.T),
        incbits(static_cast<const uint32_t*>(p.inc)), shift(p.cshift) {
    if constexpr (N > 0) inc.load(p);
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
      for (; k < m; ++k) dst[k] = add_increment_bits<float>(src[k], bit_cast<float>(cnt[k]));
    } else {
      inc.add(dst, src, cnt, m);
    }
  }
};

//! Elements [begin, end) of the target. Always inlined into the per-dtype, per-lookup,
//! per-ISA entry points below.
template <typename T, typename Lookup>
BPP_INLINE void run_range_impl(const Plan& p, int64_t begin, int64_t end) {
  constexpr bool kSearch = Lookup::kSearch;  // the v4 lookups: a block at a time
  alignas(64) uint32_t x0[kBlock];
  alignas(64) uint32_t x1[kBlock];
  alignas(64) uint32_t cnt[kBlock];
  const T* in = static_cast<const T*>(p.in);
  T* out = static_cast<T*>(p.out);
  const T* inc = static_cast<const T*>(p.inc);
  const uint32_t k0 = p.k0, k1 = p.k1;
  const Lookup lookup(p);
  CounterWalker walker(p.layout, begin);

  for (int64_t start = begin; start < end; start += kBlock) {
    const int m = static_cast<int>(std::min<int64_t>(kBlock, end - start));
    walker.fill(m, x0, x1);
    for (int k = m; k < kBlock; ++k) { x0[k] = 0; x1[k] = 0; }

    for (int k = 0; k < kBlock; ++k) {
      uint32_t a = x0[k], b = x1[k];
      threefry2x32(k0, k1, a, b);
      x0[k] = a;
      x1[k] = b;
    }

    uint32_t slow = 0;
    if constexpr (kSearch) {
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

    if constexpr (Lookup::kRegisterAdd) {
      lookup.add(out + start, in + start, cnt, m);
    } else if (in == out) {
      add_block_inplace(out + start, inc, cnt, m);
    } else {
      add_block(out + start, in + start, inc, cnt, m);
    }
  }
}

// One entry point per (dtype, lookup); the body is the template above, the macros only
// stamp out the (non-template) wrappers:
//   - the portable ones (linear or guide lookup), compiled for x86-64-v3 and the baseline
//     (target_clones, the best picked at load time);
//   - where supported, the AVX-512 ones (register search, tables of N entries), compiled
//     for x86-64-v4 and picked at run time when the CPU has it.
#define BPP_DEFINE_RUN_RANGE(NAME, TYPE, LOOKUP)                                   \
  BPP_MULTIVERSION void NAME(const Plan& p, int64_t begin, int64_t end) {          \
    run_range_impl<TYPE, LOOKUP>(p, begin, end);                                   \
  }
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
#define BPP_DEFINE_RUN_RANGE_V4(NAME, TYPE, LOOKUP, N)                             \
  BPP_TARGET_V4 void NAME(const Plan& p, int64_t begin, int64_t end) {             \
    run_range_impl<TYPE, LOOKUP<TYPE, N>>(p, begin, end);                          \
  }
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_16, float, SearchLookup, 16)
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_32, float, SearchLookup, 32)
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide64, float, GuideCountLookup, 64)
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide128, float, GuideCountLookup, 128)
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_guide, float, GuideCountLookup, 0)
BPP_DEFINE_RUN_RANGE_V4(run_f32_v4_iguide, float, GuideCountLookup, kIncrementGuide)
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_16, double, SearchLookup, 16)
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_32, double, SearchLookup, 32)
BPP_DEFINE_RUN_RANGE_V4(run_f64_v4_guide, double, GuideCountLookup, 0)
#undef BPP_DEFINE_RUN_RANGE_V4

//! Whether the CPU runs x86-64-v4 code (AVX-512 F/BW/CD/DQ/VL); asked once.
bool use_v4() {
  static const bool v4 = [] {
    __builtin_cpu_init();  // harmless if the libgcc constructor already ran
    return __builtin_cpu_supports("x86-64-v4") != 0;
  }();
  return v4;
}
#endif

using RunRange = void (*)(const Plan&, int64_t, int64_t);

//! Whether a table of ``L`` thresholds takes the v4 count guide (GuideCountLookup): on
//! AVX-512 CPUs when it is too large for the register search.
bool use_count_guide(uint32_t L) {
#if BPP_HAVE_V4
  return use_v4() && L + 1 > kMaxSearchTable;
#else
  (void)L;
  return false;
#endif
}

//! The entry point for dtype ``T``, a table of ``L`` thresholds of which ``m`` are middle
//! ones. On AVX-512 CPUs: the register search when the table fits (L + 1 <= 32), else the
//! count guide (f32: increments in registers up to 128 entries). Elsewhere a linear
//! lookup of 8/16/32 entries, or the portable guide when ``m`` exceeds kMaxLinear.
template <typename T>
RunRange runner(uint32_t L, uint32_t m, bool inc_guide);
#if BPP_HAVE_V4
#define BPP_RUNNER_V4(P)                                        \
  if (use_v4() && L + 1 <= kMaxSearchTable) {                   \
    return L + 1 <= 16 ? P##_v4_16 : P##_v4_32;                 \
  }
#else
#define BPP_RUNNER_V4(P)
#endif
template <>
RunRange runner<float>(uint32_t L, uint32_t m, bool inc_guide) {
  BPP_RUNNER_V4(run_f32)
#if BPP_HAVE_V4
  if (use_count_guide(L)) {
    if (inc_guide) return run_f32_v4_iguide;
    return L + 1 <= 64 ? run_f32_v4_guide64 : L + 1 <= 128 ? run_f32_v4_guide128 : run_f32_v4_guide;
  }
#endif
  return m <= 8 ? run_f32_lin8 : m <= 16 ? run_f32_lin16 : m <= 32 ? run_f32_lin32 : run_f32_guide;
}
template <>
RunRange runner<double>(uint32_t L, uint32_t m, bool) {
  BPP_RUNNER_V4(run_f64)
#if BPP_HAVE_V4
  if (use_count_guide(L)) return run_f64_v4_guide;
#endif
  return m <= 8 ? run_f64_lin8 : m <= 16 ? run_f64_lin16 : m <= 32 ? run_f64_lin32 : run_f64_guide;
}
#undef BPP_RUNNER_V4

//! Thread cap from BRAINPY_POISSON_NUM_THREADS (read once; 0 or unset: no cap).
int64_t thread_cap() {
  static const int64_t cap = [] {
    const char* s = std::getenv("BRAINPY_POISSON_NUM_THREADS");
    if (s == nullptr || *s == '\0') return int64_t{0};
    const long v = std::strtol(s, nullptr, 10);
    return v > 0 ? static_cast<int64_t>(v) : int64_t{0};
  }();
  return cap;
}

//! Work shared by the calling thread and the pool tasks. Tasks hold a reference, so a
//! task the pool starts late (after all chunks are taken) finds nothing to do and never
//! touches freed memory; the caller waits only for chunks actually being processed.
struct Work {
  Plan plan;
  RunRange run;
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

int ceil_log2(uint64_t x) {
  int b = 0;
  while ((uint64_t{1} << b) < x) ++b;
  return b;
}

#if BPP_HAVE_FFI_THREADPOOL
using Pool = ffi::ThreadPool;
#else
struct Pool {};
#endif

template <typename T>
ffi::Error poisson_add_typed(Pool& pool, const CallShape& shape, const ffi::AnyBuffer& target,
                             const ffi::AnyBuffer& key, const ffi::AnyBuffer& thresholds,
                             const ffi::AnyBuffer& increments, const ffi::AnyBuffer& layout,
                             ffi::AnyBuffer& out) {
  auto work = std::make_shared<Work>();
  Plan& p = work->plan;
  const int32_t* lay = static_cast<const int32_t*>(layout.untyped_data());
  if (const char* err = make_layout(shape.rank, shape.local, lay, lay + shape.rank, &p.layout)) {
    return invalid(err);
  }
  const int64_t n = shape.num_elements;
  if (n == 0) return ffi::Error::Success();

  const uint32_t* kw = static_cast<const uint32_t*>(key.untyped_data());
  p.k0 = kw[0];
  p.k1 = kw[1];
  const uint32_t L = shape.table_length;
  p.table_length = L;

  // Thresholds as 64-bit words (exact path) and their hi words (fast paths).
  const uint32_t* rows = static_cast<const uint32_t*>(thresholds.untyped_data());
  std::vector<uint64_t> tab(static_cast<size_t>(L) + 1);
  std::vector<uint32_t> hi(static_cast<size_t>(L) + 2, ~0u);
  uint32_t lin_begin = 0, lin_end = 0;
  for (uint32_t j = 0; j < L; ++j) {
    tab[j] = threshold_at(rows, j);
    hi[j] = rows[2 * j];
    if (j > 0 && tab[j] < tab[j - 1]) return invalid("thresholds must be non-decreasing");
    lin_begin += hi[j] == 0u;
    lin_end += hi[j] != ~0u;
  }
  p.T = tab.data();
  p.h = hi.data();
  const uint32_t lin_count = lin_end - lin_begin;
  std::vector<uint32_t> lin(kMaxSearch + 1, ~0u);
  p.search_count = std::min<uint32_t>(lin_count, kMaxSearch);
  std::copy(hi.begin() + lin_begin, hi.begin() + lin_begin + p.search_count, lin.begin());
  p.lin_base = lin_begin;
  p.lin_h = lin.data();
  p.search_steps = 2;
  while (p.search_steps < p.search_count + 1) p.search_steps *= 2;
  std::vector<uint32_t> guide;
  if (lin_count > static_cast<uint32_t>(kMaxLinear)) {
    // 2^G buckets of the hi word, G >= log2(2L) (at least 2^11), not much more than n.
    int G = std::max(ceil_log2(2 * static_cast<uint64_t>(L)), kMinGuideBits);
    G = std::min(G, std::max(1, ceil_log2(static_cast<uint64_t>(n)) + 2));
    G = std::min(G, kMaxGuideBits);
    p.hshift = 32 - G;
    const uint32_t buckets = uint32_t{1} << G;
    guide.resize(buckets);
    uint32_t j = 0;
    for (uint32_t b = 0; b < buckets; ++b) {
      const uint32_t lo = b << p.hshift;
      while (j < L && hi[j] < lo) ++j;
      guide[b] = j;
    }
    for (uint32_t b = 0; b < buckets; ++b) {
      const uint32_t next = b + 1 < buckets ? guide[b + 1] : L;
      if (next - guide[b] > 2) guide[b] |= kSlowBit;
    }
    p.guide = guide.data();
  }
  std::unique_ptr<uint32_t[]> cguide, iguide;
  if (use_count_guide(L)) {
    // Count guide of 2^G + 1 entries (GuideCountLookup): s(b) = #{j : H[j] < b << (32 - G)},
    // kSlowBit where some H[j] >> (32 - G) == b, sentinel s(2^G) = L; for f32 also the
    // increment guide (unless some increment's bits collide with kIncFlag). Built by
    // filling the runs of buckets between consecutive hi words: memset speed.
    const int G = kCountGuideBits;
    p.cshift = 32 - G;
    const uint32_t buckets = uint32_t{1} << G;
    const uint32_t* ib = static_cast<const uint32_t*>(increments.untyped_data());
    const bool inc_guide = std::is_same<T, float>::value &&
                           std::all_of(ib, ib + L + 1, [](uint32_t v) { return v < kIncFlag; });
    uint32_t* cg = new uint32_t[static_cast<size_t>(buckets) + 1];
    uint32_t* ig = inc_guide ? new uint32_t[buckets] : nullptr;
    cguide.reset(cg);
    iguide.reset(ig);
    uint32_t b = 0;  // next bucket to fill
    for (uint32_t j = 0; j < L; ++j) {
      const uint32_t hb = hi[j] >> p.cshift;
      if (hb < b) continue;  // bucket hb already flagged
      // buckets [b, hb) hold no hi word and count j; hb holds H[j] (flagged, starts at j)
      std::fill(cg + b, cg + hb, j);
      cg[hb] = j | kSlowBit;
      if (ig) {
        std::fill(ig + b, ig + hb, ib[j]);
        ig[hb] = kIncFlag;
      }
      b = hb + 1;
    }
    std::fill(cg + b, cg + buckets + 1, L);
    if (ig) std::fill(ig + b, ig + buckets, ib[L]);
    p.cguide = cg;
    p.iguide = ig;
  }
  p.in = target.untyped_data();
  p.out = out.untyped_data();
  p.inc = increments.untyped_data();

  work->run = runner<T>(L, lin_count, p.iguide != nullptr);
  work->n = n;

  int64_t threads = 1;
#if BPP_HAVE_FFI_THREADPOOL
  if (n >= 2 * kMinChunk) {
    threads = std::max<int64_t>(1, pool.num_threads());
    if (thread_cap() > 0) threads = std::min(threads, thread_cap());
    threads = std::min(threads, n / kMinChunk);
  }
#endif
  if (threads <= 1) {
    work->run(p, 0, n);
    return ffi::Error::Success();
  }
  // A few chunks per thread for balance, each at least kMinChunk, block aligned.
  int64_t chunks = std::min(4 * threads, n / kMinChunk);
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
  return ffi::Error::Success();
}

bool cpu_dtype_supported(ffi::DataType t) { return t == ffi::DataType::F32 || t == ffi::DataType::F64; }

ffi::Error poisson_add_cpu(
#if BPP_HAVE_FFI_THREADPOOL
    ffi::ThreadPool pool,
#endif
    ffi::AnyBuffer target, ffi::AnyBuffer key, ffi::AnyBuffer thresholds, ffi::AnyBuffer increments,
    ffi::AnyBuffer layout, ffi::Result<ffi::AnyBuffer> out) {
#if !BPP_HAVE_FFI_THREADPOOL
  Pool pool;
#endif
  CallShape shape;
  ffi::AnyBuffer& res = *out;
  if (ffi::Error e = check_operands("CPU", cpu_dtype_supported, target, key, thresholds, increments,
                                    layout, res, &shape);
      e.failure()) {
    return e;
  }
  switch (shape.dtype) {
    case ffi::DataType::F32:
      return poisson_add_typed<float>(pool, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F64:
      return poisson_add_typed<double>(pool, shape, target, key, thresholds, increments, layout, res);
    default:
      return invalid(std::string("the CPU kernel does not support target dtype ") + dtype_name(shape.dtype));
  }
}

}  // namespace
}  // namespace bpp

extern "C" BPP_EXPORT XLA_FFI_Error* BppPoissonAddCpu(XLA_FFI_CallFrame* call_frame);

#if BPP_HAVE_FFI_THREADPOOL
#define BPP_CPU_BINDING ffi::Ffi::Bind().Ctx<ffi::ThreadPool>()
#else
#define BPP_CPU_BINDING ffi::Ffi::Bind()
#endif

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppPoissonAddCpu, bpp::poisson_add_cpu,
                              BPP_POISSON_ADD_OPERANDS(BPP_CPU_BINDING));
