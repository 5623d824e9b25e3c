// CUDA FFI handler of ``bpp_poisson_add`` (docs/kernel-contract.md).
//
// One grid-stride kernel, templated over the target's storage type (f16, bf16, f32, f64;
// f16/bf16 add in f32) and over where the table lives: staged into dynamic shared memory
// (thresholds as 64-bit words, then the increments) when it fits, read from global
// memory otherwise. The per-thread work is bpp::grid_stride_elements
// (bpp/poisson_kernel.h): threefry2x32 of the element's global index, a branch-free
// binary search (same number of steps in every thread: no divergence), the one add
// bpp::add_increment. The CPU test library runs that same function over an emulated grid
// (cuda_grid_emulation.cc, tests/test_gpu_body_on_cpu.py).
//
// The key, the layout and the table are device buffers: the first thread of each block
// collapses the layout into shared memory (a handful of integer operations), so nothing
// is copied to the host and the call stays asynchronous on XLA's stream, safe to capture
// into a CUDA graph (the handler declares the command-buffer trait). Contents that only
// the device can see (a layout that does not fit, thresholds out of order) cannot be
// reported as an FFI error without a synchronisation; the kernel then aborts (__trap):
// the launch fails and XLA reports the error at the next synchronisation, never a
// silently unchanged target. Everything visible from shapes and dtypes is an FFI error
// naming the operand, raised before the launch (bpp/ffi_common.h).

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

#include "bpp/ffi_common.h"
#include "bpp/poisson_kernel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {

template <>
struct StorageOf<__half> {
  using C = float;
  static __device__ __forceinline__ C up(__half x) { return __half2float(x); }
  static __device__ __forceinline__ __half down(C x) { return __float2half_rn(x); }
};
template <>
struct StorageOf<__nv_bfloat16> {
  using C = float;
  static __device__ __forceinline__ C up(__nv_bfloat16 x) { return __bfloat162float(x); }
  static __device__ __forceinline__ __nv_bfloat16 down(C x) { return __float2bfloat16_rn(x); }
};

namespace {

constexpr int kThreads = 256;
// Shared memory a block may use without opting in is 48 KiB, static (the collapsed layout
// and its step, under 1 KiB) and dynamic together: stage the table only below this.
constexpr size_t kMaxDynamicSmem = 46 * 1024;

template <typename C>
struct KernelArgs {
  const void* in;
  void* out;
  const uint32_t* key;
  const uint32_t* thresholds;
  const C* increments;
  const void* layout;
  bool layout_unsigned;  //!< uint32 layout (else int32)
  int64_t n;
  uint32_t table_length;
  int rank;
  int64_t local[kMaxInputRank];
};

template <typename T, bool kShared>
__global__ void __launch_bounds__(kThreads) poisson_add_kernel(const KernelArgs<typename StorageOf<T>::C> a) {
  using C = typename StorageOf<T>::C;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ Layout lay;
  __shared__ LayoutStep st;
  __shared__ uint32_t key[2];

  const uint32_t L = a.table_length;
  uint64_t* s_tab = reinterpret_cast<uint64_t*>(smem);
  C* s_inc = reinterpret_cast<C*>(smem + sizeof(uint64_t) * L);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  if (threadIdx.x == 0) {
    const int32_t* li = static_cast<const int32_t*>(a.layout);
    const uint32_t* lu = static_cast<const uint32_t*>(a.layout);
    const char* err = a.layout_unsigned ? make_layout(a.rank, a.local, lu, lu + a.rank, &lay)
                                        : make_layout(a.rank, a.local, li, li + a.rank, &lay);
    if (err != nullptr) {
      printf("bpp_poisson_add (CUDA): %s\n", err);
      __trap();
    }
    make_layout_step(lay, static_cast<uint64_t>(step), &st);
    key[0] = a.key[0];
    key[1] = a.key[1];
  }
  if (blockIdx.x == 0 && !thresholds_ordered_part(RowTable{a.thresholds}, L, threadIdx.x, blockDim.x)) {
    printf("bpp_poisson_add (CUDA): thresholds must be non-decreasing\n");
    __trap();
  }
  if (kShared) {
    for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) s_tab[j] = threshold_at(a.thresholds, j);
    for (uint32_t j = threadIdx.x; j <= L; j += blockDim.x) s_inc[j] = a.increments[j];
  }
  __syncthreads();

  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const T* in = static_cast<const T*>(a.in);
  T* out = static_cast<T*>(a.out);
  if (kShared) {
    grid_stride_elements(in, out, a.n, key[0], key[1], lay, st, s_tab, L, s_inc, first, step);
  } else {
    grid_stride_elements(in, out, a.n, key[0], key[1], lay, st, RowTable{a.thresholds}, L, ReadOnly<C>{a.increments},
                         first, step);
  }
}

//! Multiprocessors of the current device, and the device (cached per device).
int sm_count(int dev) {
  static int cache[64] = {};
  if (dev < 0 || dev >= 64) return 32;
  if (cache[dev] == 0) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms <= 0) sms = 32;
    cache[dev] = sms;
  }
  return cache[dev];
}

//! Blocks of ``kThreads`` one multiprocessor runs at once for ``kernel`` with ``smem``
//! bytes of dynamic shared memory (the occupancy calculator; cached per device, kernel
//! and shared-memory size, which is one of a few table lengths in a run).
template <typename Kernel>
int resident_blocks(Kernel kernel, int dev, size_t smem) {
  struct Entry {
    const void* kernel;
    int dev;
    size_t smem;
    int blocks;
  };
  static Entry cache[32] = {};
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const void* key = reinterpret_cast<const void*>(kernel);
  for (const Entry& e : cache) {
    if (e.kernel == key && e.dev == dev && e.smem == smem) return e.blocks;
  }
  int blocks = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, smem) != cudaSuccess || blocks <= 0) {
    blocks = 1;
  }
  static int next = 0;
  cache[next] = Entry{key, dev, smem, blocks};
  next = (next + 1) % 32;
  return blocks;
}

template <typename T, bool kShared>
ffi::Error launch_variant(cudaStream_t stream, const KernelArgs<typename StorageOf<T>::C>& a, size_t smem) {
  auto kernel = poisson_add_kernel<T, kShared>;
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) dev = 0;
  // One full wave: as many blocks as the multiprocessors hold at once (each thread then
  // strides over the rest), fewer for small targets.
  const int64_t want = (a.n + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sm_count(dev)) * resident_blocks(kernel, dev, smem);
  const unsigned grid = static_cast<unsigned>(want < cap ? want : cap);
  kernel<<<grid, kThreads, smem, stream>>>(a);
  // Right after the launch: reports this launch's own configuration errors only.
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return ffi::Error::Internal(std::string("bpp_poisson_add: CUDA kernel launch failed: ") + cudaGetErrorString(err));
  }
  return ffi::Error::Success();
}

template <typename T>
ffi::Error launch(cudaStream_t stream, const CallShape& shape, const ffi::AnyBuffer& target, const ffi::AnyBuffer& key,
                  const ffi::AnyBuffer& thresholds, const ffi::AnyBuffer& increments, const ffi::AnyBuffer& layout,
                  ffi::AnyBuffer& out) {
  using C = typename StorageOf<T>::C;
  const int64_t n = shape.num_elements;
  if (n == 0) return ffi::Error::Success();
  KernelArgs<C> a;
  a.in = target.untyped_data();
  a.out = out.untyped_data();
  a.key = static_cast<const uint32_t*>(key.untyped_data());
  a.thresholds = static_cast<const uint32_t*>(thresholds.untyped_data());
  a.increments = static_cast<const C*>(increments.untyped_data());
  a.layout = layout.untyped_data();
  a.layout_unsigned = layout.element_type() == ffi::DataType::U32;
  a.n = n;
  a.table_length = shape.table_length;
  a.rank = shape.rank;
  for (int d = 0; d < kMaxInputRank; ++d) a.local[d] = d < shape.rank ? shape.local[d] : 1;

  const size_t smem = sizeof(uint64_t) * shape.table_length + sizeof(C) * (shape.table_length + 1);
  if (smem <= kMaxDynamicSmem) return launch_variant<T, true>(stream, a, smem);
  return launch_variant<T, false>(stream, a, 0);
}

bool cuda_dtype_supported(ffi::DataType t) {
  return t == ffi::DataType::F16 || t == ffi::DataType::BF16 || t == ffi::DataType::F32 || t == ffi::DataType::F64;
}

ffi::Error poisson_add_cuda(cudaStream_t stream, ffi::AnyBuffer target, ffi::AnyBuffer key, ffi::AnyBuffer thresholds,
                            ffi::AnyBuffer increments, ffi::AnyBuffer layout, ffi::Result<ffi::AnyBuffer> out) {
  CallShape shape;
  ffi::AnyBuffer& res = *out;
  if (ffi::Error e =
          check_operands("CUDA", cuda_dtype_supported, target, key, thresholds, increments, layout, res, &shape);
      e.failure()) {
    return e;
  }
  switch (shape.dtype) {
    case ffi::DataType::F16: return launch<__half>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::BF16:
      return launch<__nv_bfloat16>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F32: return launch<float>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F64: return launch<double>(stream, shape, target, key, thresholds, increments, layout, res);
    default: return invalid(std::string("the CUDA kernel does not support target dtype ") + dtype_name(shape.dtype));
  }
}

}  // namespace
}  // namespace bpp

#ifndef BPP_CUDA_ARCHITECTURES
#define BPP_CUDA_ARCHITECTURES "unknown"
#endif

//! Whether this library has a kernel image the current CUDA device can run, asked of the
//! CUDA runtime itself (a cubin for the device's architecture, or PTX it can JIT).
//! Returns 0 if it can; otherwise a nonzero CUDA error code, with a message in ``msg``.
//! ``major``/``minor`` receive the device's compute capability (-1 if unknown).
//! Called by ops/native.py before registering the handler.
extern "C" BPP_EXPORT int BppCudaCheckDevice(int* major, int* minor, char* msg, int msg_len) {
  *major = -1;
  *minor = -1;
  auto fail = [&](cudaError_t e, const char* what) {
    snprintf(msg, static_cast<size_t>(msg_len), "%s: %s (built for %s)", what, cudaGetErrorString(e),
             BPP_CUDA_ARCHITECTURES);
    return static_cast<int>(e);
  };
  int dev = 0;
  cudaError_t e = cudaGetDevice(&dev);
  if (e != cudaSuccess) return fail(e, "no CUDA device");
  if ((e = cudaDeviceGetAttribute(major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess ||
      (e = cudaDeviceGetAttribute(minor, cudaDevAttrComputeCapabilityMinor, dev)) != cudaSuccess) {
    return fail(e, "cannot read the compute capability");
  }
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, bpp::poisson_add_kernel<float, true>);
  if (e != cudaSuccess) {
    char what[96];
    snprintf(what, sizeof(what), "no kernel image for compute capability %d.%d", *major, *minor);
    return fail(e, what);
  }
  snprintf(msg, static_cast<size_t>(msg_len), "compute capability %d.%d (built for %s)", *major, *minor,
           BPP_CUDA_ARCHITECTURES);
  return 0;
}

extern "C" BPP_EXPORT XLA_FFI_Error* BppPoissonAddCuda(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppPoissonAddCuda, bpp::poisson_add_cuda,
                              BPP_POISSON_ADD_OPERANDS(ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>()),
                              {ffi::Traits::kCmdBufferCompatible});
