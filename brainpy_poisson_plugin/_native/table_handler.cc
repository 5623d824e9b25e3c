// CPU side of the table builder: the ``bpp_binomial_table`` FFI handler (tables for a p
// known only at run time, built inside the compiled program) and a plain C function that
// builds one table for the host (``binomial_table`` calls it through ctypes). Both run
// bpp/binomial_table.h, the construction the CUDA kernel runs too.

#include <cstdint>

#include "bpp/binomial_table.h"
#include "bpp/ffi_common.h"
#include "bpp/table_ffi.h"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace bpp {
namespace {

//! Builds table b into rows (u32[L, 2]) and pads; invalid p or overlong -> size -1.
void build_rows(int64_t n, double p, int64_t length, uint32_t* rows, int32_t* k0, int32_t* size) {
  uint64_t* words = reinterpret_cast<uint64_t*>(rows);  // 8-byte aligned (XLA buffers)
  const int status = table::build(n, p, length, words, k0, size);
  if (status != table::kOk) {
    *k0 = -1;
    *size = -1;
  }
  const int64_t kept = *size < 0 ? 0 : *size;
  for (int64_t j = 0; j < kept; ++j) {
    const uint64_t v = words[j];
    rows[2 * j] = static_cast<uint32_t>(v >> 32);
    rows[2 * j + 1] = static_cast<uint32_t>(v);
  }
  for (int64_t j = kept; j < length; ++j) {
    rows[2 * j] = 0xFFFFFFFFu;
    rows[2 * j + 1] = 0xFFFFFFFFu;
  }
}

ffi::Error binomial_table_cpu(ffi::AnyBuffer p, ffi::Result<ffi::AnyBuffer> thresholds, ffi::Result<ffi::AnyBuffer> k0,
                              ffi::Result<ffi::AnyBuffer> size, int64_t num_input) {
  TableShape shape;
  if (ffi::Error e = check_table_operands(p, *thresholds, *k0, *size, num_input, &shape); e.failure()) {
    return e;
  }
  uint32_t* rows = static_cast<uint32_t*>(thresholds->untyped_data());
  int32_t* k0s = static_cast<int32_t*>(k0->untyped_data());
  int32_t* sizes = static_cast<int32_t*>(size->untyped_data());
  for (int64_t b = 0; b < shape.batch; ++b) {
    const double pb = shape.f64 ? static_cast<const double*>(p.untyped_data())[b]
                                : static_cast<double>(static_cast<const float*>(p.untyped_data())[b]);
    build_rows(num_input, pb, shape.length, rows + 2 * shape.length * b, k0s + b, sizes + b);
  }
  return ffi::Error::Success();
}

}  // namespace
}  // namespace bpp

//! Host entry point (ctypes): the table of Binomial(n, p) into out[0..capacity) as
//! uint64 thresholds. Returns 0 (ok), 1 (more than capacity thresholds) or 2 (bad p).
extern "C" BPP_EXPORT int bpp_binomial_table_build(int64_t n, double p, int64_t capacity, uint64_t* out, int32_t* k0,
                                                   int32_t* size) {
  return bpp::table::build(n, p, capacity, out, k0, size);
}

extern "C" BPP_EXPORT XLA_FFI_Error* BppBinomialTableCpu(XLA_FFI_CallFrame* call_frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(BppBinomialTableCpu, bpp::binomial_table_cpu,
                              BPP_BINOMIAL_TABLE_OPERANDS(ffi::Ffi::Bind()));
