// Operand checking shared by the CPU and CUDA handlers of ``bpp_binomial_table`` (host
// code only: shapes and dtypes, never buffer contents).
//
//   operand  p           f32[B...] or f64[B...] (a scalar, or any batch shape)
//   results  thresholds  u32[B..., L, 2]  rows (hi, lo); rows past `size` are 0xffffffff
//            k0          i32[B...]
//            size        i32[B...]        -1 where p is NaN or outside [0, 1]
//   attribute num_input  i64 in [1, 2^31 - 1]
#ifndef BPP_TABLE_FFI_H_
#define BPP_TABLE_FFI_H_

#include <cstdint>
#include <string>

#include "bpp/ffi_common.h"
#include "xla/ffi/api/ffi.h"

namespace bpp {

struct TableShape {
  int64_t batch = 0;   //!< number of tables
  int64_t length = 0;  //!< L, rows per table
  bool f64 = false;    //!< p is float64
};

inline ffi::Error table_invalid(const std::string& msg) {
  return ffi::Error::InvalidArgument("bpp_binomial_table: " + msg);
}

inline ffi::Error check_table_operands(const ffi::AnyBuffer& p, const ffi::AnyBuffer& thresholds,
                                       const ffi::AnyBuffer& k0, const ffi::AnyBuffer& size, int64_t num_input,
                                       TableShape* shape) {
  const ffi::DataType pt = p.element_type();
  if (pt != ffi::DataType::F32 && pt != ffi::DataType::F64) {
    return table_invalid(std::string("p must be float32 or float64, got ") + dtype_name(pt));
  }
  if (num_input < 1 || num_input > 2147483647) {
    return table_invalid("num_input must be in [1, 2**31 - 1], got " + std::to_string(num_input));
  }
  const auto pd = p.dimensions();
  const auto td = thresholds.dimensions();
  if (thresholds.element_type() != ffi::DataType::U32 || td.size() != pd.size() + 2 || td[td.size() - 1] != 2) {
    return table_invalid("thresholds must be uint32[*p.shape, L, 2], got " +
                         std::string(dtype_name(thresholds.element_type())) + dims_str(td));
  }
  for (size_t i = 0; i < pd.size(); ++i) {
    if (td[i] != pd[i]) return table_invalid("thresholds must have p's batch shape");
  }
  for (const ffi::AnyBuffer* b : {&k0, &size}) {
    if (b->element_type() != ffi::DataType::S32 || b->element_count() != p.element_count()) {
      return table_invalid("k0 and size must be int32 with p's shape");
    }
  }
  shape->batch = static_cast<int64_t>(p.element_count());
  shape->length = td[td.size() - 2];
  shape->f64 = pt == ffi::DataType::F64;
  return ffi::Error::Success();
}

}  // namespace bpp

#define BPP_BINOMIAL_TABLE_OPERANDS(binding)         \
  binding                                            \
      .Arg<::xla::ffi::AnyBuffer>() /* p */          \
      .Ret<::xla::ffi::AnyBuffer>() /* thresholds */ \
      .Ret<::xla::ffi::AnyBuffer>() /* k0 */         \
      .Ret<::xla::ffi::AnyBuffer>() /* size */       \
      .Attr<int64_t>("num_input")

#endif  // BPP_TABLE_FFI_H_
