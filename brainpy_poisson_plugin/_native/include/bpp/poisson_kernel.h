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
// The add: one function for every backend and dtype.
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

//! Unsigned integer of the same width as a float type (its bit pattern).
template <int Bytes>
struct UIntOfSize;
template <>
struct UIntOfSize<2> {
  using type = uint16_t;
};
template <>
struct UIntOfSize<4> {
  using type = uint32_t;
};
template <>
struct UIntOfSize<8> {
  using type = uint64_t;
};
template <typename T>
using BitsOf = typename UIntOfSize<sizeof(T)>::type;

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

//! Storage type ``T`` of the target and compute type ``C`` of the add, with the
//! conversions between them. f32 and f64 add in their own type; the CUDA handler adds
//! ``StorageOf`` specialisations for f16 and bf16 (add in f32, one rounding back).
template <typename T>
struct StorageOf {
  using C = T;
  static BPP_HD C up(T x) { return x; }
  static BPP_HD T down(C x) { return x; }
};

//! out = inc == +-0 ? t : down(up(t) + inc): the add of docs/kernel-contract.md, used by
//! the CPU handler and the CUDA kernel alike. The select is done on bit patterns (``inc``
//! is +-0 iff its bits shifted left by one are zero): plain integer operations, so a CPU
//! loop over it vectorises even under the default -ftrapping-math, where a floating-point
//! select around an add would stay a branch; on the GPU it is a few integer instructions.
template <typename T, typename C = typename StorageOf<T>::C>
BPP_HD T add_increment(T t, C inc) {
  using U = BitsOf<T>;
  using UC = BitsOf<C>;
  const U tb = bit_cast<U>(t);
  const U sb = bit_cast<U>(StorageOf<T>::down(add_rn(StorageOf<T>::up(t), inc)));
  const UC ib = bit_cast<UC>(inc);
  const U keep = U(0) - static_cast<U>((ib << 1) == 0);  // all ones iff inc == +-0
  return bit_cast<T>(static_cast<U>((tb & keep) | (sb & static_cast<U>(~keep))));
}

// ---------------------------------------------------------------------------------
// Block layout: local flat index -> global flat index (64-bit).
// ---------------------------------------------------------------------------------

//! Most dimensions a collapsed layout may keep (after dropping size-1 dimensions and
//! merging contiguous ones; an unsharded array always collapses to one).
constexpr int kMaxDims = 16;

//! Most dimensions a target may have.
constexpr int kMaxInputRank = 64;

//! The local block in global coordinates, collapsed: element with collapsed local
//! multi-index ``i`` has global flat index ``base + sum_d i_d * stride[d]``.
struct Layout {
  int rank;                   //!< collapsed rank, >= 1 (a single element: one dim of size 1)
  uint64_t base;              //!< global flat index of the block's first element
  int64_t size[kMaxDims];     //!< local extent of each collapsed dimension
  uint64_t stride[kMaxDims];  //!< global stride of each collapsed dimension
  bool small;                 //!< the global array has fewer than 2^32 elements
};

//! Global flat index of local flat index ``i`` (row-major over the collapsed dims).
//! One division per collapsed dimension: used once per thread or chunk, not per element.
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

//! Largest global array (elements) a layout may describe: flat indices are 64-bit.
constexpr uint64_t kMaxGlobalElements = uint64_t{1} << 63;

//! Builds the collapsed layout. ``local`` are the target's dimensions, ``origin`` and
//! ``global`` the two rows of the layout operand (``rank`` entries each; ``I`` is
//! ``uint32_t``, the encoding of ``ops/primitive.py``, or ``int32_t``, the older one).
//! Returns nullptr on success, or a static message describing what is wrong. A block of
//! one element (0-d target, or all dimensions 1) collapses to rank 1, size 1.
template <typename I>
BPP_HD const char* make_layout(int rank, const int64_t* local, const I* origin, const I* global, Layout* out) {
  out->rank = 0;
  out->base = 0;
  out->small = true;
  if (rank > kMaxInputRank) return "layout: rank too large";
  uint64_t stride = 1;
  int n = 0;  // collapsed dims, innermost first in out->size/stride; flipped at the end
  for (int d = rank - 1; d >= 0; --d) {
    const int64_t o = static_cast<int64_t>(origin[d]);
    const int64_t gd = static_cast<int64_t>(global[d]);
    if (o < 0 || gd < 0) return "layout has a negative origin or dimension";
    if (local[d] < 0 || o + local[d] > gd) return "layout: the block does not fit inside the global dimensions";
    out->base += static_cast<uint64_t>(o) * stride;
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
    if (gd != 0 && stride > (kMaxGlobalElements - 1) / static_cast<uint64_t>(gd)) {
      return "layout: the global array has 2^63 or more elements";
    }
    stride *= static_cast<uint64_t>(gd);
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

//! A fixed step of the local flat index (a grid-stride loop's ``gridDim * blockDim``)
//! as mixed-radix digits of the collapsed layout, with the global-index change of each
//! digit and of a wrap-around: computed once, so advancing a position by the step takes
//! one add and one compare per collapsed dimension instead of a 64-bit division.
struct LayoutStep {
  int64_t digit[kMaxDims];   //!< the step's digit in dimension d (< size[d])
  uint64_t delta[kMaxDims];  //!< digit[d] * stride[d]
  uint64_t wrap[kMaxDims];   //!< size[d] * stride[d]
};

BPP_HD void make_layout_step(const Layout& lay, uint64_t step, LayoutStep* s) {
  for (int d = lay.rank - 1; d >= 0; --d) {
    const uint64_t n = static_cast<uint64_t>(lay.size[d]);
    s->digit[d] = static_cast<int64_t>(step % n);
    step /= n;
    s->delta[d] = static_cast<uint64_t>(s->digit[d]) * lay.stride[d];
    s->wrap[d] = n * lay.stride[d];
  }
}

//! A position in the block: collapsed multi-index and its global flat index.
struct LayoutCursor {
  int64_t idx[kMaxDims];
  uint64_t g;

  //! Positions the cursor at local flat index ``i`` (one division per dimension).
  BPP_HD void seek(const Layout& lay, uint64_t i) {
    g = lay.base;
    for (int d = lay.rank - 1; d >= 0; --d) {
      const uint64_t n = static_cast<uint64_t>(lay.size[d]);
      const uint64_t q = i / n;
      idx[d] = static_cast<int64_t>(i - q * n);
      g += static_cast<uint64_t>(idx[d]) * lay.stride[d];
      i = q;
    }
  }

  //! Moves the cursor ``step`` elements on (``s`` from make_layout_step). Past the end
  //! of the block the position is meaningless; callers stop at the block's size.
  BPP_HD void advance(const Layout& lay, const LayoutStep& s) {
    int64_t carry = 0;
    for (int d = lay.rank - 1; d >= 0; --d) {
      int64_t v = idx[d] + s.digit[d] + carry;
      g += s.delta[d] + (carry ? lay.stride[d] : 0);
      carry = v >= lay.size[d];
      if (carry) {
        v -= lay.size[d];
        g -= s.wrap[d];
      }
      idx[d] = v;
    }
  }
};

// ---------------------------------------------------------------------------------
// The per-thread body of the CUDA kernel, also compiled as host code: the CPU test
// library runs it over an emulated grid (tests/test_gpu_body_on_cpu.py).
// ---------------------------------------------------------------------------------

//! Thresholds read straight from the ``u32[L, 2]`` operand (the CUDA kernel's
//! global-memory path; read-only cache loads on the device).
struct RowTable {
  const uint32_t* rows;
  BPP_HD uint64_t operator[](uint32_t j) const {
#if defined(__CUDA_ARCH__)
    return (static_cast<uint64_t>(__ldg(rows + 2 * j)) << 32) | static_cast<uint64_t>(__ldg(rows + 2 * j + 1));
#else
    return threshold_at(rows, j);
#endif
  }
};

//! Increments read from global memory (read-only cache loads on the device).
template <typename C>
struct ReadOnly {
  const C* p;
  BPP_HD C operator[](uint32_t j) const {
#if defined(__CUDA_ARCH__)
    return __ldg(p + j);
#else
    return p[j];
#endif
  }
};

//! The count index of word ``u`` for the ``L`` thresholds of ``table`` whose first
//! ``real`` are those below 2^64-1 (the rest, a run-time table's padding, are all ones):
//! #{j < L : T[j] <= u}, searching the real rows only (u = 2^64-1 counts all L rows).
template <typename Table>
BPP_HD uint32_t padded_count(const Table& table, uint32_t real, uint32_t L, uint64_t u) {
  return u == ~uint64_t{0} ? L : count_le(table, 0u, real, u);
}

//! Elements ``first, first + step, ...`` below ``n`` of the block: one thread of the
//! grid-stride loop (``first`` = the thread's global id, ``step`` = threads in the grid;
//! ``st`` = make_layout_step(lay, step)). ``Table`` yields the 64-bit thresholds,
//! ``Increments`` the ``C[L + 1]`` increments.
template <typename T, typename Table, typename Increments>
BPP_HD void grid_stride_elements(const T* in, T* out, int64_t n, uint32_t k0, uint32_t k1, const Layout& lay,
                                 const LayoutStep& st, const Table& table, uint32_t L, const Increments& inc,
                                 int64_t first, int64_t step) {
  const uint32_t real = count_le(table, 0u, L, ~uint64_t{0} - 1u);  // rows below 2^64-1 (leading: T sorted)
  if (lay.rank == 1) {  // unsharded, or a block contiguous in the global array
    const uint64_t base = lay.base, stride0 = lay.stride[0];
    for (int64_t i = first; i < n; i += step) {
      const uint64_t u = element_word(k0, k1, base + static_cast<uint64_t>(i) * stride0);
      out[i] = add_increment<T>(in[i], inc[padded_count(table, real, L, u)]);
    }
    return;
  }
  if (first >= n) return;
  LayoutCursor cur;
  cur.seek(lay, static_cast<uint64_t>(first));
  for (int64_t i = first; i < n; i += step, cur.advance(lay, st)) {
    const uint64_t u = element_word(k0, k1, cur.g);
    out[i] = add_increment<T>(in[i], inc[padded_count(table, real, L, u)]);
  }
}

//! Whether the ``L`` thresholds are non-decreasing, checked by thread ``tid`` of
//! ``nthreads`` over its share of the pairs (the CUDA kernel's block 0 does this).
template <typename Table>
BPP_HD bool thresholds_ordered_part(const Table& table, uint32_t L, uint32_t tid, uint32_t nthreads) {
  bool ok = true;
  for (uint32_t j = tid + 1; j < L; j += nthreads) ok = ok && table[j - 1] <= table[j];
  return ok;
}

}  // namespace bpp

#endif  // BPP_POISSON_KERNEL_H_
