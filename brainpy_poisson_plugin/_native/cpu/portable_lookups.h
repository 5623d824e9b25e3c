// CPU handler, part 3 of 6: the portable count lookups (linear and guide, compiled for
// every ISA), the counter walker that yields the elements' global indices in local
// order, and the vectorisable block add.
#ifndef BPP_CPU_PORTABLE_LOOKUPS_H_
#define BPP_CPU_PORTABLE_LOOKUPS_H_

#include <algorithm>
#include <cstdint>

#include "bpp/poisson_kernel.h"
#include "cpu/config.h"
#include "cpu/lookup_plan.h"

namespace bpp {
namespace {

//! Count lookup over a fixed-size, padded array of hi words (see cpu_handler.cc).
//! Portable path: one less-than and one equality compare per entry (a table look-up for
//! the tie check would compile to a gather, slower than the compares).
template <int M>
struct LinearLookup {
  static constexpr bool kWholeBlock = false;  // per element (operator()), not a block at a time
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

//! Count lookup through the guide table (see cpu_handler.cc).
struct GuideLookup {
  static constexpr bool kWholeBlock = false;
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
          for (int j = 0; j < run; ++j) {
            x0[k + j] = 0;
            x1[k + j] = s + static_cast<uint32_t>(j);
          }
        } else {
          for (int j = 0; j < run; ++j) {
            x0[k + j] = 0;
            x1[k + j] = s + static_cast<uint32_t>(j) * st;
          }
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
BPP_INLINE void add_block_inplace(T* BPP_RESTRICT dst, const T* BPP_RESTRICT inc, const uint32_t* BPP_RESTRICT cnt,
                                  int m) {
  for (int k = 0; k < m; ++k) dst[k] = add_increment<T>(dst[k], inc[cnt[k]]);
}
template <typename T>
BPP_INLINE void add_block(T* BPP_RESTRICT dst, const T* BPP_RESTRICT src, const T* BPP_RESTRICT inc,
                          const uint32_t* BPP_RESTRICT cnt, int m) {
  for (int k = 0; k < m; ++k) dst[k] = add_increment<T>(src[k], inc[cnt[k]]);
}

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_PORTABLE_LOOKUPS_H_
