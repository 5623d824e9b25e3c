// The per-element logic of the fused Poisson-input sampler, shared by the CPU handler
// and the CUDA kernel (docs/kernel-contract.md is the specification):
//
//   g            global flat index of the element (from the block layout)
//   (y0, y1)   = threefry2x32(key, (g >> 32, g & 0xffffffff))   -- JAX's Threefry-2x32
//   u          = y0 << 32 | y1
//   c          = #{ j : T[j] <= u }                               -- unsigned 64-bit
//   out        = increments[c] == 0 ? t : t + increments[c]      -- one IEEE add
//
// Everything here is inline and usable from host and device code (BPP_HD), so the CPU
// tests exercise the same code the GPU runs. Only plain integer arithmetic and a single
// floating-point add per element: no multiply, so nothing can be contracted into an FMA.
#ifndef BPP_POISSON_KERNEL_H_
#define BPP_POISSON_KERNEL_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define BPP_HD __host__ __device__ __forceinline__
#else
#if defined(__GNUC__)
#define BPP_HD inline __attribute__((always_inline))
#else
#define BPP_HD inline
#endif
#endif

namespace bpp {

// ---------------------------------------------------------------------------------
// Threefry-2x32, 20 rounds (Random123; the variant jax.extend.random.threefry_2x32 uses).
// ---------------------------------------------------------------------------------

//! Key-schedule parity constant of Threefry-2x32.
constexpr uint32_t kThreefryParity = 0x1BD11BDAu;

template <int R>
BPP_HD uint32_t rotl32(uint32_t x) {
  static_assert(R > 0 && R < 32, "rotation");
  return (x << R) | (x >> (32 - R));
}

template <int R>
BPP_HD void threefry_round(uint32_t& x0, uint32_t& x1) {
  x0 += x1;
  x1 = rotl32<R>(x1);
  x1 ^= x0;
}

//! Four Threefry rounds with the given rotation constants (between key injections).
template <int R0, int R1, int R2, int R3>
BPP_HD void threefry_four_rounds(uint32_t& x0, uint32_t& x1) {
  threefry_round<R0>(x0, x1);
  threefry_round<R1>(x0, x1);
  threefry_round<R2>(x0, x1);
  threefry_round<R3>(x0, x1);
}

//! (y0, y1) = threefry2x32((k0, k1), (x0, x1)). Branch-free; vectorises when called
//! from a plain loop over arrays.
BPP_HD void threefry2x32(uint32_t k0, uint32_t k1, uint32_t& x0, uint32_t& x1) {
  const uint32_t k2 = k0 ^ k1 ^ kThreefryParity;
  x0 += k0;
  x1 += k1;
  threefry_four_rounds<13, 15, 26, 6>(x0, x1);
  x0 += k1;
  x1 += k2 + 1u;
  threefry_four_rounds<17, 29, 16, 24>(x0, x1);
  x0 += k2;
  x1 += k0 + 2u;
  threefry_four_rounds<13, 15, 26, 6>(x0, x1);
  x0 += k0;
  x1 += k1 + 3u;
  threefry_four_rounds<17, 29, 16, 24>(x0, x1);
  x0 += k1;
  x1 += k2 + 4u;
  threefry_four_rounds<13, 15, 26, 6>(x0, x1);
  x0 += k2;
  x1 += k0 + 5u;
}

//! The uniform 64-bit word of the element with global flat index ``g``.
BPP_HD uint64_t element_word(uint32_t k0, uint32_t k1, uint64_t g) {
  uint32_t x0 = static_cast<uint32_t>(g >> 32);
  uint32_t x1 = static_cast<uint32_t>(g);
  threefry2x32(k0, k1, x0, x1);
  return (static_cast<uint64_t>(x0) << 32) | static_cast<uint64_t>(x1);
}

//! Row ``j`` of the ``u32[L, 2]`` threshold operand as the 64-bit threshold.
BPP_HD uint64_t threshold_at(const uint32_t* rows, int64_t j) {
  return (static_cast<uint64_t>(rows[2 * j]) << 32) | static_cast<uint64_t>(rows[2 * j + 1]);
}

// ---------------------------------------------------------------------------------
// Count search: c = #{ j in [begin, begin + n) : T[j] <= u } + begin, T non-decreasing.
// ---------------------------------------------------------------------------------

//! Branch-free binary search (a fixed number of steps for a given ``n``; no divergence
//! on the GPU). ``Table`` is anything indexable yielding uint64_t.
template <typename Table>
BPP_HD uint32_t count_le(const Table& t, uint32_t begin, uint32_t n, uint64_t u) {
  uint32_t lo = begin;
  while (n > 0) {
    const uint32_t half = n >> 1;
    const bool le = t[lo + half] <= u;
    lo = le ? lo + half + 1 : lo;
    n = le ? n - half - 1 : half;
  }
  return lo;
}

// ---------------------------------------------------------------------------------
// The add.
// ---------------------------------------------------------------------------------

//! One IEEE add, round to nearest even (on the device an explicit __fadd_rn/__dadd_rn,
//! which the compiler never contracts into an FMA).
BPP_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
BPP_HD double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

//! out = inc == 0 ? t : t + inc, for f32/f64 (``T == C``) on host and device.
//! Written as a select, so a vectorised loop stores every element unconditionally.
template <typename T>
BPP_HD T add_increment(T t, T inc) {
  const T s = add_rn(t, inc);
  return inc == T(0) ? t : s;
}

//! The same as ``add_increment`` for f32/f64, with the select done on the bit patterns
//! (``inc`` is +-0 iff its bits shifted left by one are zero). Plain integer operations:
//! a loop over it vectorises even under the default -ftrapping-math, where a
//! floating-point select around an add would stay a branch. Host code.
template <typename T>
struct BitsOf;
template <>
struct BitsOf<float> { using type = uint32_t; };
template <>
struct BitsOf<double> { using type = uint64_t; };

template <typename To, typename From>
BPP_HD To bit_cast(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast");
#if defined(__GNUC__) && !defined(__CUDACC__) && (defined(__clang__) || __GNUC__ >= 11)
  return __builtin_bit_cast(To, x);  // keeps loops over it vectorisable
#else
  To r;
  memcpy(&r, &x, sizeof(To));
  return r;
#endif
}

template <typename T>
BPP_HD T add_increment_bits(T t, T inc) {
  using U = typename BitsOf<T>::type;
  const U tb = bit_cast<U>(t);
  const U sb = bit_cast<U>(t + inc);
  const U ib = bit_cast<U>(inc);
  const U keep = U(0) - static_cast<U>((ib << 1) == 0);  // all ones iff inc == +-0
  return bit_cast<T>((tb & keep) | (sb & ~keep));
}

// ---------------------------------------------------------------------------------
// Block layout: local flat index -> global flat index.
// ---------------------------------------------------------------------------------

//! Most dimensions a collapsed layout may keep (after dropping size-1 dimensions and
//! merging contiguous ones; an unsharded array always collapses to one).
constexpr int kMaxDims = 16;

//! Most dimensions a target may have.
constexpr int kMaxInputRank = 64;

//! The local block in global coordinates, collapsed: element with collapsed local
//! multi-index ``i`` has global flat index ``base + sum_d i_d * stride[d]``.
struct Layout {
  int rank;                     //!< collapsed rank, >= 1 (a single element: one dim of size 1)
  uint64_t base;                //!< global flat index of the block's first element
  int64_t size[kMaxDims];       //!< local extent of each collapsed dimension
  uint64_t stride[kMaxDims];    //!< global stride of each collapsed dimension
  bool small;                   //!< the global array has fewer than 2^32 elements
};

//! Global flat index of local flat index ``i`` (row-major over the collapsed dims).
BPP_HD uint64_t global_index(const Layout& lay, uint64_t i) {
  uint64_t g = lay.base;
  for (int d = lay.rank - 1; d >= 0; --d) {
    const uint64_t n = static_cast<uint64_t>(lay.size[d]);
    const uint64_t q = i / n;
    g += (i - q * n) * lay.stride[d];
    i = q;
  }
  return g;
}

//! Builds the collapsed layout. ``local`` are the target's dimensions, ``origin`` and
//! ``global`` the two rows of the layout operand (``rank`` entries each). Returns
//! nullptr on success, or a static message describing what is wrong. A block of one
//! element (0-d target, or all dimensions 1) collapses to rank 1, size 1.
BPP_HD const char* make_layout(int rank, const int64_t* local, const int32_t* origin,
                               const int32_t* global, Layout* out) {
  out->rank = 0;
  out->base = 0;
  out->small = true;
  if (rank > kMaxInputRank) return "layout: rank too large";
  uint64_t stride = 1;
  int n = 0;  // collapsed dims, innermost first in out->size/stride; flipped at the end
  for (int d = rank - 1; d >= 0; --d) {
    if (origin[d] < 0 || global[d] < 0) return "layout has a negative origin or dimension";
    if (local[d] < 0 || static_cast<int64_t>(origin[d]) + local[d] > global[d])
      return "layout: the block does not fit inside the global dimensions";
    out->base += static_cast<uint64_t>(origin[d]) * stride;
    if (local[d] != 1) {
      if (n > 0 && out->stride[n - 1] * static_cast<uint64_t>(out->size[n - 1]) == stride) {
        out->size[n - 1] *= local[d];  // contiguous with the inner one: merge
      } else {
        if (n == kMaxDims) return "layout: the block is too fragmented (more than 16 strided dimensions)";
        out->size[n] = local[d];
        out->stride[n] = stride;
        ++n;
      }
    }
    stride *= static_cast<uint64_t>(global[d]);
    if (stride >= (uint64_t{1} << 32)) out->small = false;
  }
  if (n == 0) {
    out->size[0] = 1;
    out->stride[0] = 1;
    n = 1;
  }
  out->rank = n;
  for (int k = 0; k < n / 2; ++k) {
    const int64_t s = out->size[k];
    out->size[k] = out->size[n - 1 - k];
    out->size[n - 1 - k] = s;
    const uint64_t t = out->stride[k];
    out->stride[k] = out->stride[n - 1 - k];
    out->stride[n - 1 - k] = t;
  }
  return nullptr;
}

}  // namespace bpp

#endif  // BPP_POISSON_KERNEL_H_
