// CUDA FFI handler of ``bpp_poisson_add`` (docs/kernel-contract.md).
//
// One grid-stride kernel, templated over the target's storage type (f16, bf16, f32, f64;
// f16/bf16 add in f32) and over where the table lives: staged into dynamic shared memory
// (thresholds as 64-bit words, then the increments) when it fits, read from global
// memory otherwise. The per-element work is bpp/poisson_kernel.h, the very code the CPU
// handler runs: threefry2x32 of the element's global index, a branch-free binary search
// (same number of steps in every thread: no divergence), one round-to-nearest add.
//
// The key and the layout are device buffers: the first thread of each block collapses
// the layout into shared memory (a handful of integer operations), so nothing is copied
// to the host and the call stays asynchronous on XLA's stream.

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "bpp/ffi_common.h"
#include "bpp/poisson_kernel.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {
namespace {

constexpr int kThreads = 256;
// Shared memory a block may use without opting in is 48 KiB, static (the collapsed layout,
// a few hundred bytes) and dynamic together: stage the table only below this.
constexpr size_t kMaxDynamicSmem = 46 * 1024;

//! Storage type <-> compute type of the add.
template <typename T>
struct Num;
template <>
struct Num<float> {
  using C = float;
  static __device__ __forceinline__ C up(float x) { return x; }
  static __device__ __forceinline__ float down(C x) { return x; }
};
template <>
struct Num<double> {
  using C = double;
  static __device__ __forceinline__ C up(double x) { return x; }
  static __device__ __forceinline__ double down(C x) { return x; }
};
template <>
struct Num<__half> {
  using C = float;
  static __device__ __forceinline__ C up(__half x) { return __half2float(x); }
  static __device__ __forceinline__ __half down(C x) { return __float2half_rn(x); }
};
template <>
struct Num<__nv_bfloat16> {
  using C = float;
  static __device__ __forceinline__ C up(__nv_bfloat16 x) { return __bfloat162float(x); }
  static __device__ __forceinline__ __nv_bfloat16 down(C x) { return __float2bfloat16_rn(x); }
};

//! Thresholds read from the u32[L, 2] operand in global memory.
struct GlobalTable {
  const uint32_t* rows;
  __device__ __forceinline__ uint64_t operator[](uint32_t j) const {
    return (static_cast<uint64_t>(__ldg(rows + 2 * j)) << 32) | static_cast<uint64_t>(__ldg(rows + 2 * j + 1));
  }
};

template <typename C>
struct KernelArgs {
  const void* in;
  void* out;
  const uint32_t* key;
  const uint32_t* thresholds;
  const C* increments;
  const int32_t* layout;
  int64_t n;
  uint32_t table_length;
  int rank;
  int64_t local[kMaxInputRank];
};

template <typename T, bool kShared>
__global__ void __launch_bounds__(kThreads) poisson_add_kernel(const KernelArgs<typename Num<T>::C> a) {
  using C = typename Num<T>::C;
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ Layout lay;
  __shared__ uint32_t key[2];
  __shared__ int layout_ok;

  const uint32_t L = a.table_length;
  uint64_t* s_tab = reinterpret_cast<uint64_t*>(smem);
  C* s_inc = reinterpret_cast<C*>(smem + sizeof(uint64_t) * L);
  if (threadIdx.x == 0) {
    layout_ok = make_layout(a.rank, a.local, a.layout, a.layout + a.rank, &lay) == nullptr;
    key[0] = a.key[0];
    key[1] = a.key[1];
  }
  if (kShared) {
    for (uint32_t j = threadIdx.x; j < L; j += blockDim.x) s_tab[j] = threshold_at(a.thresholds, j);
    for (uint32_t j = threadIdx.x; j <= L; j += blockDim.x) s_inc[j] = a.increments[j];
  }
  __syncthreads();

  const T* in = static_cast<const T*>(a.in);
  T* out = static_cast<T*>(a.out);
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (!layout_ok) {  // cannot happen from Python; leave the target unchanged
    for (; i < a.n; i += step) out[i] = in[i];
    return;
  }
  const uint32_t k0 = key[0], k1 = key[1];
  const bool flat = lay.rank == 1;
  const uint64_t base = lay.base, stride0 = lay.stride[0];
  for (; i < a.n; i += step) {
    const uint64_t g = flat ? base + static_cast<uint64_t>(i) * stride0 : global_index(lay, static_cast<uint64_t>(i));
    const uint64_t u = element_word(k0, k1, g);
    uint32_t c;
    C inc;
    if (kShared) {
      c = count_le(s_tab, 0u, L, u);
      inc = s_inc[c];
    } else {
      c = count_le(GlobalTable{a.thresholds}, 0u, L, u);
      inc = __ldg(a.increments + c);
    }
    const T t = in[i];
    out[i] = inc == C(0) ? t : Num<T>::down(add_rn(Num<T>::up(t), inc));
  }
}

int sm_count() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 32;
  static int cache[64] = {};
  if (dev < 0 || dev >= 64) return 32;
  if (cache[dev] == 0) {
    int sms = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms <= 0) sms = 32;
    cache[dev] = sms;
  }
  return cache[dev];
}

template <typename T>
ffi::Error launch(cudaStream_t stream, const CallShape& shape, const ffi::AnyBuffer& target,
                  const ffi::AnyBuffer& key, const ffi::AnyBuffer& thresholds,
                  const ffi::AnyBuffer& increments, const ffi::AnyBuffer& layout, ffi::AnyBuffer& out) {
  using C = typename Num<T>::C;
  const int64_t n = shape.num_elements;
  if (n == 0) return ffi::Error::Success();
  KernelArgs<C> a;
  a.in = target.untyped_data();
  a.out = out.untyped_data();
  a.key = static_cast<const uint32_t*>(key.untyped_data());
  a.thresholds = static_cast<const uint32_t*>(thresholds.untyped_data());
  a.increments = static_cast<const C*>(increments.untyped_data());
  a.layout = static_cast<const int32_t*>(layout.untyped_data());
  a.n = n;
  a.table_length = shape.table_length;
  a.rank = shape.rank;
  for (int d = 0; d < kMaxInputRank; ++d) a.local[d] = d < shape.rank ? shape.local[d] : 1;

  const int64_t want = (n + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * 8;
  const unsigned grid = static_cast<unsigned>(want < cap ? want : cap);
  const size_t smem = sizeof(uint64_t) * shape.table_length + sizeof(C) * (shape.table_length + 1);
  if (smem <= kMaxDynamicSmem) {
    poisson_add_kernel<T, true><<<grid, kThreads, smem, stream>>>(a);
  } else {
    poisson_add_kernel<T, false><<<grid, kThreads, 0, stream>>>(a);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return ffi::Error::Internal(std::string("bpp_poisson_add: CUDA kernel launch failed: ") +
                                cudaGetErrorString(err));
  }
  return ffi::Error::Success();
}

bool cuda_dtype_supported(ffi::DataType t) {
  return t == ffi::DataType::F16 || t == ffi::DataType::BF16 || t == ffi::DataType::F32 ||
         t == ffi::DataType::F64;
}

ffi::Error poisson_add_cuda(cudaStream_t stream, ffi::AnyBuffer target, ffi::AnyBuffer key,
                            ffi::AnyBuffer thresholds, ffi::AnyBuffer increments, ffi::AnyBuffer layout,
                            ffi::Result<ffi::AnyBuffer> out) {
  CallShape shape;
  ffi::AnyBuffer& res = *out;
  if (ffi::Error e = check_operands("CUDA", cuda_dtype_supported, target, key, thresholds, increments,
                                    layout, res, &shape);
      e.failure()) {
    return e;
  }
  switch (shape.dtype) {
    case ffi::DataType::F16:
      return launch<__half>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::BF16:
      return launch<__nv_bfloat16>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F32:
      return launch<float>(stream, shape, target, key, thresholds, increments, layout, res);
    case ffi::DataType::F64:
      return launch<double>(stream, shape, target, key, thresholds, increments, layout, res);
    default:
      return invalid(std::string("the CUDA kernel does not support target dtype ") + dtype_name(shape.dtype));
  }
}

}  // namespace
}  // namespace bpp

extern "C" BPP_EXPORT XLA_FFI_Error* BppPoissonAddCuda(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppPoissonAddCuda, bpp::poisson_add_cuda,
                              BPP_POISSON_ADD_OPERANDS(ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>()));
