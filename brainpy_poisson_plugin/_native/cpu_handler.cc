// CPU FFI handler of ``bpp_poisson_add`` (docs/kernel-contract.md).
//
// Organisation (per call):
//   1. check operands (bpp/ffi_common.h);
//   2. build_plan (cpu/lookup_plan.h): collapse the block layout (bpp::make_layout) and
//      prepare a count lookup over the hi words H[j] = T[j] >> 32 of the L_eff leading
//      thresholds below 2^64-1 (a run-time table's padding rows of all ones excluded; the
//      chunk loop gives u = 2^64-1 the count L of the full table), picked from L_eff:
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
//   3. pick_runner (cpu/runners.h): the chunk function for the lookup, dtype and ISA;
//   4. run_parallel (cpu/work_sharing.h): split the elements into chunks (>= kMinChunk =
//      16K elements each; smaller targets run inline) run on the FFI thread pool, the
//      calling thread taking chunks too;
//   5. each chunk runs in blocks of kBlock elements, in branch-free loops that the
//      compiler vectorises: counters, Threefry-2x32, the count, the select-add (done on
//      bit patterns, so it vectorises without -fno-trapping-math: bpp::add_increment).
// The chunk functions are compiled for x86-64-v4 / v3 / baseline (target_clones) and the
// best is picked at load time, so the library stays portable (no -march=native).
//
// The parts live in cpu/*.h, included here into this one translation unit (target_clones
// and the always-inline lookups need to see each other): config.h (constants, ISA
// detection), lookup_plan.h, portable_lookups.h, avx512_lookups.h, runners.h,
// work_sharing.h.

#include <cstdint>
#include <memory>
#include <string>

#include "bpp/ffi_common.h"
#include "bpp/poisson_kernel.h"
#include "cpu/avx512_lookups.h"
#include "cpu/config.h"
#include "cpu/lookup_plan.h"
#include "cpu/portable_lookups.h"
#include "cpu/runners.h"
#include "cpu/work_sharing.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {
namespace {

template <typename T>
ffi::Error poisson_add_typed(Pool& pool, const CallShape& shape, const ffi::AnyBuffer& target,
                             const ffi::AnyBuffer& key, const ffi::AnyBuffer& thresholds,
                             const ffi::AnyBuffer& increments, const ffi::AnyBuffer& layout, ffi::AnyBuffer& out) {
  auto work = std::make_shared<Work>();
  if (ffi::Error e = build_plan<T>(shape, target, key, thresholds, increments, layout, out, work->tables, work->plan);
      e.failure()) {
    return e;
  }
  work->n = shape.num_elements;
  if (work->n == 0) return ffi::Error::Success();
  work->run = pick_runner<T>(work->plan);
  run_parallel(pool, work);
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
  if (ffi::Error e =
          check_operands("CPU", cpu_dtype_supported, target, key, thresholds, increments, layout, res, &shape);
      e.failure()) {
    return e;
  }
  switch (shape.dtype) {
    case ffi::DataType::F32:
      return poisson_add_typed<float>(pool, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F64:
      return poisson_add_typed<double>(pool, shape, target, key, thresholds, increments, layout, res);
    default: return invalid(std::string("the CPU kernel does not support target dtype ") + dtype_name(shape.dtype));
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

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppPoissonAddCpu, bpp::poisson_add_cpu, BPP_POISSON_ADD_OPERANDS(BPP_CPU_BINDING));
