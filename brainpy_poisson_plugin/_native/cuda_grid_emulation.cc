// The CUDA kernel's per-thread body (bpp::grid_stride_elements, bpp/poisson_kernel.h),
// compiled as host code and run over an emulated grid: every block and thread of a launch
// of the given shape, with the table staged as the kernel stages it into shared memory or
// read from the operand as its global-memory path does. A test hook, not a kernel:
// tests/test_gpu_body_on_cpu.py calls it through ctypes and compares the result with the
// reference bit for bit, so the index mapping and the add that the GPU runs are tested on
// every CPU. Not registered with XLA.

#include <cstdint>
#include <vector>

#include "bpp/poisson_kernel.h"

#if defined(_WIN32)
#define BPP_EMULATION_EXPORT __declspec(dllexport)
#else
#define BPP_EMULATION_EXPORT __attribute__((visibility("default")))
#endif

namespace {

//! One emulated launch of ``grid`` blocks of ``block`` threads. Returns nullptr, or the
//! message the kernel would abort with.
template <typename T>
const char* emulate(const T* in, T* out, int rank, const int64_t* local, const uint32_t* layout, const uint32_t* key,
                    const uint32_t* rows, uint32_t L, const T* increments, int64_t grid, int64_t block, bool staged) {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= local[d];
  const int64_t step = grid * block;
  std::vector<uint64_t> s_tab(L);
  std::vector<T> s_inc(static_cast<size_t>(L) + 1);
  for (int64_t b = 0; b < grid; ++b) {
    // "thread 0": the block's collapsed layout and its step, in "shared memory"
    bpp::Layout lay{};
    bpp::LayoutStep st{};
    if (const char* err = bpp::make_layout(rank, local, layout, layout + rank, &lay)) return err;
    bpp::make_layout_step(lay, static_cast<uint64_t>(step), &st);
    if (b == 0) {
      for (int64_t t = 0; t < block; ++t) {
        if (!bpp::thresholds_ordered_part(bpp::RowTable{rows}, L, static_cast<uint32_t>(t),
                                          static_cast<uint32_t>(block))) {
          return "thresholds must be non-decreasing";
        }
      }
    }
    if (staged) {  // every thread's share of the staging loop, then the barrier
      for (int64_t t = 0; t < block; ++t) {
        for (uint32_t j = static_cast<uint32_t>(t); j < L; j += static_cast<uint32_t>(block)) {
          s_tab[j] = bpp::threshold_at(rows, j);
        }
        for (uint32_t j = static_cast<uint32_t>(t); j <= L; j += static_cast<uint32_t>(block)) {
          s_inc[j] = increments[j];
        }
      }
    }
    for (int64_t t = 0; t < block; ++t) {
      const int64_t first = b * block + t;
      if (staged) {
        bpp::grid_stride_elements(in, out, n, key[0], key[1], lay, st, s_tab.data(), L, s_inc.data(), first, step);
      } else {
        bpp::grid_stride_elements(in, out, n, key[0], key[1], lay, st, bpp::RowTable{rows}, L,
                                  bpp::ReadOnly<T>{increments}, first, step);
      }
    }
  }
  return nullptr;
}

}  // namespace

//! ``dtype``: 0 float32, 1 float64. ``layout``: uint32[2, rank] (origin, global dims).
//! Returns 0 on success; otherwise 1 and the kernel's abort message in ``msg``.
extern "C" BPP_EMULATION_EXPORT int BppEmulateCudaGrid(int dtype, const void* in, void* out, int rank,
                                                       const int64_t* local, const uint32_t* layout,
                                                       const uint32_t* key, const uint32_t* rows, uint32_t L,
                                                       const void* increments, int64_t grid, int64_t block, int staged,
                                                       const char** msg) {
  const char* err = dtype == 0
                        ? emulate(static_cast<const float*>(in), static_cast<float*>(out), rank, local, layout, key,
                                  rows, L, static_cast<const float*>(increments), grid, block, staged != 0)
                        : emulate(static_cast<const double*>(in), static_cast<double*>(out), rank, local, layout, key,
                                  rows, L, static_cast<const double*>(increments), grid, block, staged != 0);
  if (msg != nullptr) *msg = err;
  return err == nullptr ? 0 : 1;
}
