// CUDA handler of ``bpp_binomial_table``: one block per table. Thread 0 runs the
// construction of bpp/binomial_table.h (the same code the CPU library runs; on the
// device every + - * / is an explicit round-to-nearest intrinsic, never an FMA), then
// the whole block converts the 64-bit thresholds to (hi, lo) rows and pads the rest.
// Asynchronous on XLA's stream; nothing is copied to the host.

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "bpp/binomial_table.h"
#include "bpp/ffi_common.h"
#include "bpp/table_ffi.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {
namespace {

constexpr int kTableThreads = 128;

template <typename P>
__global__ void binomial_table_kernel(const P* p, int64_t n, int64_t length, uint32_t* rows, int32_t* k0s,
                                      int32_t* sizes) {
  const int64_t b = blockIdx.x;
  uint32_t* my_rows = rows + 2 * length * b;
  uint64_t* words = reinterpret_cast<uint64_t*>(my_rows);
  __shared__ int32_t kept;
  if (threadIdx.x == 0) {
    int32_t k0 = -1, size = -1;
    const int status = table::build(n, static_cast<double>(p[b]), length, words, &k0, &size);
    if (status != table::kOk) {
      k0 = -1;
      size = -1;
    }
    k0s[b] = k0;
    sizes[b] = size;
    kept = size < 0 ? 0 : size;
  }
  __syncthreads();
  for (int64_t j = threadIdx.x; j < length; j += blockDim.x) {
    uint32_t hi = 0xFFFFFFFFu, lo = 0xFFFFFFFFu;
    if (j < kept) {
      const uint64_t v = words[j];
      hi = static_cast<uint32_t>(v >> 32);
      lo = static_cast<uint32_t>(v);
    }
    my_rows[2 * j] = hi;
    my_rows[2 * j + 1] = lo;
  }
}

ffi::Error binomial_table_cuda(cudaStream_t stream, ffi::AnyBuffer p, ffi::Result<ffi::AnyBuffer> thresholds,
                               ffi::Result<ffi::AnyBuffer> k0, ffi::Result<ffi::AnyBuffer> size, int64_t num_input) {
  TableShape shape;
  if (ffi::Error e = check_table_operands(p, *thresholds, *k0, *size, num_input, &shape); e.failure()) {
    return e;
  }
  if (shape.batch == 0) return ffi::Error::Success();
  uint32_t* rows = static_cast<uint32_t*>(thresholds->untyped_data());
  int32_t* k0s = static_cast<int32_t*>(k0->untyped_data());
  int32_t* sizes = static_cast<int32_t*>(size->untyped_data());
  const dim3 grid(static_cast<unsigned>(shape.batch));
  if (shape.f64) {
    binomial_table_kernel<double><<<grid, kTableThreads, 0, stream>>>(static_cast<const double*>(p.untyped_data()),
                                                                      num_input, shape.length, rows, k0s, sizes);
  } else {
    binomial_table_kernel<float><<<grid, kTableThreads, 0, stream>>>(static_cast<const float*>(p.untyped_data()),
                                                                     num_input, shape.length, rows, k0s, sizes);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return ffi::Error::Internal(std::string("bpp_binomial_table: kernel launch failed: ") + cudaGetErrorString(err));
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace bpp

extern "C" BPP_EXPORT XLA_FFI_Error* BppBinomialTableCuda(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppBinomialTableCuda, bpp::binomial_table_cuda,
                              BPP_BINOMIAL_TABLE_OPERANDS(ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>()));
