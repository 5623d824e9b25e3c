// CPU handler, part 2 of 6: the lookup plan, everything the chunks of one call read
// (immutable while they run), and building it from the operands (see cpu_handler.cc for
// the lookups it prepares).
#ifndef BPP_CPU_LOOKUP_PLAN_H_
#define BPP_CPU_LOOKUP_PLAN_H_

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "bpp/ffi_common.h"
#include "bpp/poisson_kernel.h"
#include "cpu/config.h"

namespace bpp {
namespace {

//! Everything a chunk needs; immutable while the call runs. Its table pointers point
//! into the LookupTables it was built with, which lives as long as the plan (both are
//! members of the call's shared Work, work_sharing.h).
struct Plan {
  uint32_t k0, k1;
  uint32_t table_length;  //!< L_eff: the leading thresholds below 2^64-1, those the lookups search
  uint32_t full_length;   //!< L, the operand's rows (padding rows of 2^64-1 included)
  const uint64_t* T;      //!< the L_eff thresholds as 64-bit words (exact path)
  // linear lookup
  uint32_t lin_base;      //!< #{j : H[j] == 0}
  uint32_t lin_count;     //!< #{j : 0 < H[j] < 2^32-1}, the middle hi words
  const uint32_t* lin_h;  //!< the middle hi words, padded with 2^32-1 to kMaxSearch + 1
  // guide lookup
  int hshift;             //!< 32 - G
  const uint32_t* guide;  //!< 2^G entries: bucket start | kSlowBit if crowded
  const uint32_t* h;      //!< L hi words then two 2^32-1 entries
  Layout layout;
  const void* in;
  void* out;
  const void* inc;
  // v4 search (all tables with at most kMaxSearch middle hi words)
  uint32_t search_count;  //!< #middle hi words (those in lin_h)
  uint32_t search_steps;  //!< power of two >= search_count + 1
  // v4 count guide (larger tables): 2^(32 - cshift) + 1 entries, see GuideCountLookup
  int cshift;
  const uint32_t* cguide = nullptr;
  const uint32_t* iguide = nullptr;  //!< f32: the increment guide (or null)
};

//! The tables a Plan points into.
struct LookupTables {
  std::vector<uint64_t> thresholds;  //!< T[j], plus one spare entry
  std::vector<uint32_t> hi;          //!< H[j] = T[j] >> 32, then two 2^32-1 entries
  std::vector<uint32_t> middle;      //!< the middle hi words, padded (linear / v4 search)
  std::vector<uint32_t> guide;       //!< portable guide
  std::vector<uint32_t> count_guide;
  std::vector<uint32_t> increment_guide;
};

inline int ceil_log2(uint64_t x) {
  int b = 0;
  while ((uint64_t{1} << b) < x) ++b;
  return b;
}

//! Portable guide: 2^G buckets of the hi word, G >= log2(2L) (at least 2^11), not much
//! more than n; entry b = #{j : H[j] < b << (32 - G)}, | kSlowBit when more than two
//! thresholds start in the bucket.
inline void build_guide(uint32_t L, int64_t n, LookupTables& tab, Plan& p) {
  int G = std::max(ceil_log2(2 * static_cast<uint64_t>(L)), kMinGuideBits);
  G = std::min(G, std::max(1, ceil_log2(static_cast<uint64_t>(n)) + 2));
  G = std::min(G, kMaxGuideBits);
  p.hshift = 32 - G;
  const uint32_t buckets = uint32_t{1} << G;
  std::vector<uint32_t>& guide = tab.guide;
  guide.resize(buckets);
  uint32_t j = 0;
  for (uint32_t b = 0; b < buckets; ++b) {
    const uint32_t lo = b << p.hshift;
    while (j < L && tab.hi[j] < lo) ++j;
    guide[b] = j;
  }
  for (uint32_t b = 0; b < buckets; ++b) {
    const uint32_t next = b + 1 < buckets ? guide[b + 1] : L;
    if (next - guide[b] > 2) guide[b] |= kSlowBit;
  }
  p.guide = guide.data();
}

//! v4 count guide of 2^G + 1 entries (GuideCountLookup): s(b) = #{j : H[j] < b << (32 - G)},
//! kSlowBit where some H[j] >> (32 - G) == b, sentinel s(2^G) = L; for f32 also the
//! increment guide (unless some increment's bits collide with kIncFlag). Built by filling
//! the runs of buckets between consecutive hi words: memset speed.
inline void build_count_guide(uint32_t L, bool f32, const uint32_t* ib, LookupTables& tab, Plan& p) {
  const int G = kCountGuideBits;
  p.cshift = 32 - G;
  const uint32_t buckets = uint32_t{1} << G;
  const bool inc_guide = f32 && std::all_of(ib, ib + L + 1, [](uint32_t v) { return v < kIncFlag; });
  tab.count_guide.assign(static_cast<size_t>(buckets) + 1, 0u);
  uint32_t* cg = tab.count_guide.data();
  uint32_t* ig = nullptr;
  if (inc_guide) {
    tab.increment_guide.assign(buckets, 0u);
    ig = tab.increment_guide.data();
  }
  uint32_t b = 0;  // next bucket to fill
  for (uint32_t j = 0; j < L; ++j) {
    const uint32_t hb = tab.hi[j] >> p.cshift;
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

//! Fills ``p`` (and ``tab``, which it points into) for one call with a target of dtype
//! ``T``. Returns an FFI error naming the operand whose contents are wrong (layout,
//! thresholds), or success.
template <typename T>
ffi::Error build_plan(const CallShape& shape, const ffi::AnyBuffer& target, const ffi::AnyBuffer& key,
                      const ffi::AnyBuffer& thresholds, const ffi::AnyBuffer& increments, const ffi::AnyBuffer& layout,
                      ffi::AnyBuffer& out, LookupTables& tab, Plan& p) {
  const char* err = nullptr;
  if (layout.element_type() == ffi::DataType::U32) {
    const uint32_t* lay = static_cast<const uint32_t*>(layout.untyped_data());
    err = make_layout(shape.rank, shape.local, lay, lay + shape.rank, &p.layout);
  } else {
    const int32_t* lay = static_cast<const int32_t*>(layout.untyped_data());
    err = make_layout(shape.rank, shape.local, lay, lay + shape.rank, &p.layout);
  }
  if (err != nullptr) return invalid(err);

  const uint32_t* kw = static_cast<const uint32_t*>(key.untyped_data());
  p.k0 = kw[0];
  p.k1 = kw[1];
  const uint32_t full = shape.table_length;
  p.full_length = full;

  // The lookups cover the L_eff leading thresholds below 2^64-1 only: the rows past them
  // (the padding of a table built at run time, all ones) are above every word but
  // u = 2^64-1, whose count L the chunk loop settles itself (run_range_impl), so every
  // count equals that of a search over all L rows.
  const uint32_t* rows = static_cast<const uint32_t*>(thresholds.untyped_data());
  uint32_t L = 0;
  for (uint32_t j = 0; j < full; ++j) {
    const uint64_t t = threshold_at(rows, j);
    if (j > 0 && t < threshold_at(rows, j - 1)) return invalid("thresholds must be non-decreasing");
    L += t != ~uint64_t{0};
  }
  p.table_length = L;

  // Thresholds as 64-bit words (exact path) and their hi words (fast paths).
  tab.thresholds.assign(static_cast<size_t>(L) + 1, 0u);
  tab.hi.assign(static_cast<size_t>(L) + 2, ~0u);
  uint32_t lin_begin = 0, lin_end = 0;
  for (uint32_t j = 0; j < L; ++j) {
    tab.thresholds[j] = threshold_at(rows, j);
    tab.hi[j] = rows[2 * j];
    lin_begin += tab.hi[j] == 0u;
    lin_end += tab.hi[j] != ~0u;
  }
  p.T = tab.thresholds.data();
  p.h = tab.hi.data();
  p.lin_count = lin_end - lin_begin;
  tab.middle.assign(kMaxSearch + 1, ~0u);
  p.search_count = std::min<uint32_t>(p.lin_count, kMaxSearch);
  std::copy(tab.hi.begin() + lin_begin, tab.hi.begin() + lin_begin + p.search_count, tab.middle.begin());
  p.lin_base = lin_begin;
  p.lin_h = tab.middle.data();
  p.search_steps = 2;
  while (p.search_steps < p.search_count + 1) p.search_steps *= 2;
  if (p.lin_count > static_cast<uint32_t>(kMaxLinear)) build_guide(L, shape.num_elements, tab, p);
  if (use_count_guide(L)) {
    build_count_guide(L, std::is_same<T, float>::value, static_cast<const uint32_t*>(increments.untyped_data()), tab,
                      p);
  }
  p.in = target.untyped_data();
  p.out = out.untyped_data();
  p.inc = increments.untyped_data();
  return ffi::Error::Success();
}

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_LOOKUP_PLAN_H_
