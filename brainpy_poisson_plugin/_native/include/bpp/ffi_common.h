// Operand checking shared by the CPU and CUDA FFI handlers of ``bpp_poisson_add``
// (host code only; shapes and dtypes, never buffer contents, which may live on a device).
#ifndef BPP_FFI_COMMON_H_
#define BPP_FFI_COMMON_H_

#include <cstdint>
#include <sstream>
#include <string>

#include "bpp/poisson_kernel.h"
#include "xla/ffi/api/ffi.h"

#if defined(_WIN32)
#define BPP_EXPORT __declspec(dllexport)
#else
#define BPP_EXPORT __attribute__((visibility("default")))
#endif

namespace bpp {

namespace ffi = xla::ffi;

inline const char* dtype_name(ffi::DataType t) {
  switch (t) {
    case ffi::DataType::F16: return "float16";
    case ffi::DataType::BF16: return "bfloat16";
    case ffi::DataType::F32: return "float32";
    case ffi::DataType::F64: return "float64";
    case ffi::DataType::U32: return "uint32";
    case ffi::DataType::S32: return "int32";
    case ffi::DataType::U64: return "uint64";
    case ffi::DataType::S64: return "int64";
    case ffi::DataType::U8: return "uint8";
    case ffi::DataType::S8: return "int8";
    case ffi::DataType::U16: return "uint16";
    case ffi::DataType::S16: return "int16";
    case ffi::DataType::PRED: return "bool";
    default: return "an unsupported dtype";
  }
}

inline std::string dims_str(ffi::AnyBuffer::Dimensions d) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < d.size(); ++i) os << (i ? ", " : "") << d[i];
  if (d.size() == 1) os << ",";
  os << ")";
  return os.str();
}

//! What the handlers need to know about one call, from shapes and dtypes alone.
struct CallShape {
  int rank = 0;
  int64_t local[kMaxInputRank] = {};
  int64_t num_elements = 0;
  uint32_t table_length = 0;  //!< L
  ffi::DataType dtype = ffi::DataType::INVALID;
};

inline ffi::Error invalid(const std::string& msg) { return ffi::Error::InvalidArgument("bpp_poisson_add: " + msg); }

//! Checks the operands of ``bpp_poisson_add`` (see docs/kernel-contract.md).
//! ``platform`` is used in the unsupported-dtype message only.
inline ffi::Error check_operands(const char* platform, bool (*dtype_supported)(ffi::DataType),
                                 const ffi::AnyBuffer& target, const ffi::AnyBuffer& key,
                                 const ffi::AnyBuffer& thresholds, const ffi::AnyBuffer& increments,
                                 const ffi::AnyBuffer& layout, const ffi::AnyBuffer& out, CallShape* shape) {
  const ffi::DataType dt = target.element_type();
  if (!dtype_supported(dt)) {
    return invalid(std::string("the ") + platform + " kernel does not support target dtype " + dtype_name(dt));
  }
  const auto tdims = target.dimensions();
  if (tdims.size() > static_cast<size_t>(kMaxInputRank)) {
    return invalid("target rank " + std::to_string(tdims.size()) + " exceeds the maximum of " +
                   std::to_string(kMaxInputRank));
  }
  if (out.element_type() != dt || out.dimensions().size() != tdims.size()) {
    return invalid("the result must have the target's dtype and shape");
  }
  for (size_t i = 0; i < tdims.size(); ++i) {
    if (out.dimensions()[i] != tdims[i]) return invalid("the result must have the target's shape");
  }
  if (key.element_type() != ffi::DataType::U32 || key.element_count() != 2) {
    return invalid(std::string("key must be uint32[2], got ") + dtype_name(key.element_type()) +
                   dims_str(key.dimensions()));
  }
  const auto th = thresholds.dimensions();
  if (thresholds.element_type() != ffi::DataType::U32 || th.size() != 2 || th[1] != 2) {
    return invalid(std::string("thresholds must be uint32[L, 2], got ") + dtype_name(thresholds.element_type()) +
                   dims_str(th));
  }
  if (th[0] >= (int64_t{1} << 30)) return invalid("thresholds: table too long");
  const int64_t L = th[0];
  const ffi::DataType want_inc = dt == ffi::DataType::F64 ? ffi::DataType::F64 : ffi::DataType::F32;
  const auto id = increments.dimensions();
  if (increments.element_type() != want_inc || id.size() != 1 || id[0] != L + 1) {
    return invalid(std::string("increments must be ") + dtype_name(want_inc) + "[L + 1] = " + dtype_name(want_inc) +
                   "[" + std::to_string(L + 1) + "] for a " + dtype_name(dt) + " target and L = " + std::to_string(L) +
                   ", got " + dtype_name(increments.element_type()) + dims_str(id));
  }
  const auto ld = layout.dimensions();
  const bool layout_dtype_ok =
      layout.element_type() == ffi::DataType::U32 || layout.element_type() == ffi::DataType::S32;
  if (!layout_dtype_ok || ld.size() != 2 || ld[0] != 2 || ld[1] != static_cast<int64_t>(tdims.size())) {
    return invalid(std::string("layout must be uint32[2, rank] (or int32[2, rank]) = uint32[2, ") +
                   std::to_string(tdims.size()) + "], got " + dtype_name(layout.element_type()) + dims_str(ld));
  }
  shape->rank = static_cast<int>(tdims.size());
  shape->num_elements = 1;
  for (int i = 0; i < shape->rank; ++i) {
    shape->local[i] = tdims[i];
    shape->num_elements *= tdims[i];
  }
  shape->table_length = static_cast<uint32_t>(L);
  shape->dtype = dt;
  return ffi::Error::Success();
}

}  // namespace bpp

//! The operands of every ``bpp_poisson_add`` handler, in order (docs/kernel-contract.md),
//! appended to a platform's binding (its context arguments first).
#define BPP_POISSON_ADD_OPERANDS(binding)                              \
  binding                                                              \
      .Arg<::xla::ffi::AnyBuffer>() /* target */                       \
      .Arg<::xla::ffi::AnyBuffer>() /* key u32[2] */                   \
      .Arg<::xla::ffi::AnyBuffer>() /* thresholds u32[L, 2] */         \
      .Arg<::xla::ffi::AnyBuffer>() /* increments C[L + 1] */          \
      .Arg<::xla::ffi::AnyBuffer>() /* layout u32[2, rank] (or i32) */ \
      .Ret<::xla::ffi::AnyBuffer>() /* result (aliases target) */

#endif  // BPP_FFI_COMMON_H_
