// The deterministic construction of a binomial sampling table, shared by the CPU library
// (host-built tables through ctypes, and the ``bpp_binomial_table`` FFI target) and the
// CUDA kernel of that target. It is step for step the construction specified (and
// mirrored in pure Python) by brainpy_poisson_plugin/sampling/table_builder.py: only
// correctly rounded IEEE double + - * / (on the device the explicit round-to-nearest
// intrinsics, which are never contracted into an FMA), exact floor/ceil and integers, so
// every backend gives the same thresholds. No exp, log, lgamma.
//
// Result: k0 and size thresholds T[0..size) (uint64, strictly increasing, in (0, 2^64)),
// a draw being k0 + #{j : T[j] <= u}.
#ifndef BPP_BINOMIAL_TABLE_H_
#define BPP_BINOMIAL_TABLE_H_

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define BPP_TABLE_HD __host__ __device__ inline
#else
#define BPP_TABLE_HD inline
#endif

namespace bpp {
namespace table {

//! A walk stops before the first pmf ratio w(k) / w(m) below this (2^-110).
constexpr double kCutoff = 7.7037197775489434e-34;
//! Below this p the table is empty, k0 = 0 (2^-200).
constexpr double kTinyP = 6.2230152778611417e-61;
constexpr double kTwo64 = 18446744073709551616.0;
constexpr double kSplitter = 134217729.0;  // 2^27 + 1

//! Status codes of build().
enum Status : int { kOk = 0, kTooLong = 1, kBadP = 2 };

// Correctly rounded basic operations, never fused.
#if defined(__CUDA_ARCH__)
BPP_TABLE_HD double add(double a, double b) { return __dadd_rn(a, b); }
BPP_TABLE_HD double sub(double a, double b) { return __dsub_rn(a, b); }
BPP_TABLE_HD double mul(double a, double b) { return __dmul_rn(a, b); }
BPP_TABLE_HD double div(double a, double b) { return __ddiv_rn(a, b); }
#else
// The CPU library is compiled with -ffp-contract=off and without fast-math.
BPP_TABLE_HD double add(double a, double b) { return a + b; }
BPP_TABLE_HD double sub(double a, double b) { return a - b; }
BPP_TABLE_HD double mul(double a, double b) { return a * b; }
BPP_TABLE_HD double div(double a, double b) { return a / b; }
#endif

struct DD {
  double hi;
  double lo;
};

BPP_TABLE_HD DD two_sum(double a, double b) {
  const double s = add(a, b);
  const double bb = sub(s, a);
  const double e = add(sub(a, sub(s, bb)), sub(b, bb));
  return {s, e};
}

BPP_TABLE_HD DD quick_two_sum(double a, double b) {
  const double s = add(a, b);
  return {s, sub(b, sub(s, a))};
}

BPP_TABLE_HD DD split(double a) {
  const double t = mul(kSplitter, a);
  const double hi = sub(t, sub(t, a));
  return {hi, sub(a, hi)};
}

BPP_TABLE_HD DD two_prod(double a, double b) {
  const double p = mul(a, b);
  const DD as = split(a);
  const DD bs = split(b);
  const double e = add(add(add(sub(mul(as.hi, bs.hi), p), mul(as.hi, bs.lo)), mul(as.lo, bs.hi)), mul(as.lo, bs.lo));
  return {p, e};
}

BPP_TABLE_HD DD dd_add(DD a, DD b) {
  DD s = two_sum(a.hi, b.hi);
  const DD t = two_sum(a.lo, b.lo);
  s.lo = add(s.lo, t.hi);
  s = quick_two_sum(s.hi, s.lo);
  s.lo = add(s.lo, t.lo);
  return quick_two_sum(s.hi, s.lo);
}

BPP_TABLE_HD DD dd_neg(DD a) { return {-a.hi, -a.lo}; }

BPP_TABLE_HD DD dd_mul(DD a, DD b) {
  DD p = two_prod(a.hi, b.hi);
  p.lo = add(p.lo, mul(a.hi, b.lo));
  p.lo = add(p.lo, mul(a.lo, b.hi));
  return quick_two_sum(p.hi, p.lo);
}

BPP_TABLE_HD DD dd_mul_d(DD a, double b) {
  DD p = two_prod(a.hi, b);
  p.lo = add(p.lo, mul(a.lo, b));
  return quick_two_sum(p.hi, p.lo);
}

BPP_TABLE_HD DD dd_div_d(DD a, double b) {
  const double q1 = div(a.hi, b);
  const DD p = two_prod(q1, b);
  const DD s = two_sum(a.hi, -p.hi);
  double f = sub(s.lo, p.lo);
  f = add(f, a.lo);
  const double q2 = div(add(s.hi, f), b);
  return quick_two_sum(q1, q2);
}

BPP_TABLE_HD DD dd_div(DD a, DD b) {
  const double q1 = div(a.hi, b.hi);
  DD r = dd_add(a, dd_neg(dd_mul_d(b, q1)));
  const double q2 = div(r.hi, b.hi);
  r = dd_add(r, dd_neg(dd_mul_d(b, q2)));
  const double q3 = div(r.hi, b.hi);
  const DD q = quick_two_sum(q1, q2);
  return dd_add(q, DD{q3, 0.0});
}

//! floor(x) of a normalised double-double 0 <= x, as an integer in [0, 2^64]:
//! returns false when the value is 2^64 or more (*out untouched), true otherwise.
BPP_TABLE_HD bool floor_u64(DD x, uint64_t* out) {
  const double fh = floor(x.hi);
  double extra = 0.0;
  if (fh == x.hi) extra = floor(x.lo);
  // value = fh + extra, fh an integer-valued double in [0, 2^64], |extra| < 2^12.
  if (fh >= kTwo64) {
    if (extra >= 0.0) return false;
    *out = uint64_t{0} - static_cast<uint64_t>(-extra);
    return true;
  }
  const uint64_t base = fh <= 0.0 ? 0 : static_cast<uint64_t>(fh);
  if (extra >= 0.0) {
    const uint64_t v = base + static_cast<uint64_t>(extra);
    if (v < base) return false;
    *out = v;
  } else {
    const uint64_t k = static_cast<uint64_t>(-extra);
    *out = k > base ? 0 : base - k;
  }
  return true;
}

//! ceil(x) of a normalised double-double 0 <= x <= 2^64 + small, saturated to [0, 2^64]:
//! returns false when the value is 2^64 or more.
BPP_TABLE_HD bool ceil_u64(DD x, uint64_t* out) {
  const double ch = ceil(x.hi);
  double extra = 0.0;
  if (ch == x.hi) extra = ceil(x.lo);
  if (ch >= kTwo64) {
    if (extra >= 0.0) return false;
    *out = uint64_t{0} - static_cast<uint64_t>(-extra);
    return true;
  }
  const uint64_t base = ch <= 0.0 ? 0 : static_cast<uint64_t>(ch);
  if (extra >= 0.0) {
    const uint64_t v = base + static_cast<uint64_t>(extra);
    if (v < base) return false;
    *out = v;
  } else {
    const uint64_t k = static_cast<uint64_t>(-extra);
    *out = k > base ? 0 : base - k;
  }
  return true;
}

//! One step of the downward walk: w(k-1) from w(k).
BPP_TABLE_HD DD step_down(DD w, int64_t n, int64_t k, DD rinv) {
  w = dd_mul_d(w, static_cast<double>(k));
  w = dd_mul(w, rinv);
  return dd_div_d(w, static_cast<double>(n - k + 1));
}

//! One step of the upward walk: w(k+1) from w(k).
BPP_TABLE_HD DD step_up(DD w, int64_t n, int64_t k, DD r) {
  w = dd_mul_d(w, static_cast<double>(n - k));
  w = dd_mul(w, r);
  return dd_div_d(w, static_cast<double>(k + 1));
}

//! Threshold of a value k >= m: 2^64 - ceil((Utot - A(k)) * s); false if not in (0, 2^64).
BPP_TABLE_HD bool upper_threshold(DD utot, DD a, DD s, uint64_t* out) {
  const DD y = dd_mul(dd_add(utot, dd_neg(a)), s);
  uint64_t c;
  if (!ceil_u64(y, &c)) return false;  // c >= 2^64: threshold <= 0
  if (c == 0) return false;            // threshold 2^64
  *out = uint64_t{0} - c;
  return true;
}

//! Threshold of a value k < m: floor((Ltot - D(k+1)) * s); false if not in (0, 2^64).
BPP_TABLE_HD bool lower_threshold(DD ltot, DD d_next, DD s, uint64_t* out) {
  const DD y = dd_mul(dd_add(ltot, dd_neg(d_next)), s);
  uint64_t t;
  if (!floor_u64(y, &t)) return false;
  if (t == 0) return false;
  *out = t;
  return true;
}

//! Builds the table of Binomial(n, p) into out[0..capacity) (see the file comment).
//! p must be in [0, 1] (kBadP otherwise, NaN included); kTooLong if more than
//! capacity thresholds are kept (then *k0 and *size are set to -1).
BPP_TABLE_HD int build(int64_t n, double p, int64_t capacity, uint64_t* out, int32_t* k0, int32_t* size) {
  *k0 = -1;
  *size = -1;
  if (!(p >= 0.0 && p <= 1.0)) return kBadP;
  if (p == 0.0 || p < kTinyP) {
    *k0 = 0;
    *size = 0;
    return kOk;
  }
  if (p == 1.0) {
    *k0 = static_cast<int32_t>(n);
    *size = 0;
    return kOk;
  }
  const DD q = two_sum(1.0, -p);
  const DD r = dd_div(DD{p, 0.0}, q);     // p / q
  const DD rinv = dd_div(q, DD{p, 0.0});  // q / p
  double mm = floor(mul(static_cast<double>(n + 1), p));
  int64_t m = static_cast<int64_t>(mm);
  if (m < 0) m = 0;
  if (m > n) m = n;

  // Pass 1: the walks' totals.
  DD ltot = {0.0, 0.0};
  {
    DD w = {1.0, 0.0};
    for (int64_t k = m; k > 0; --k) {
      w = step_down(w, n, k, rinv);
      if (w.hi < kCutoff) break;
      ltot = dd_add(ltot, w);
    }
  }
  DD utot = {1.0, 0.0};
  {
    DD w = {1.0, 0.0};
    for (int64_t k = m; k < n; ++k) {
      w = step_up(w, n, k, r);
      if (w.hi < kCutoff) break;
      utot = dd_add(utot, w);
    }
  }
  const DD total = dd_add(ltot, utot);
  const DD s = dd_div(DD{kTwo64, 0.0}, total);

  // The first upper threshold T(m) bounds the lower run.
  uint64_t first = 0;
  const bool have_first = upper_threshold(utot, DD{1.0, 0.0}, s, &first);

  // Pass 2a: the lower run T(m-1), T(m-2), ... (strictly decreasing, > 0), written in
  // descending order and reversed afterwards.
  int64_t nlow = 0;
  {
    DD w = {1.0, 0.0};
    DD d = {0.0, 0.0};  // D(k+1)
    bool bounded = have_first;
    uint64_t prev = first;
    for (int64_t k = m; k > 0; --k) {
      w = step_down(w, n, k, rinv);
      if (w.hi < kCutoff) break;
      uint64_t t;
      if (!lower_threshold(ltot, d, s, &t)) break;
      if (bounded && !(t < prev)) break;
      if (nlow >= capacity) return kTooLong;
      out[nlow++] = t;
      prev = t;
      bounded = true;
      d = dd_add(d, w);
    }
  }
  for (int64_t i = 0, j = nlow - 1; i < j; ++i, --j) {
    const uint64_t t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  // Pass 2b: the upper run T(m), T(m+1), ... (strictly increasing, < 2^64).
  int64_t nup = 0;
  if (have_first) {
    if (nlow + nup >= capacity) return kTooLong;
    out[nlow + nup++] = first;
    uint64_t prev = first;
    DD w = {1.0, 0.0};
    DD a = {1.0, 0.0};
    for (int64_t k = m; k < n; ++k) {
      w = step_up(w, n, k, r);
      if (w.hi < kCutoff) break;
      a = dd_add(a, w);
      uint64_t t;
      if (!upper_threshold(utot, a, s, &t)) break;
      if (!(t > prev)) break;
      if (nlow + nup >= capacity) return kTooLong;
      out[nlow + nup++] = t;
      prev = t;
    }
  }
  *k0 = static_cast<int32_t>(m - nlow);
  *size = static_cast<int32_t>(nlow + nup);
  return kOk;
}

}  // namespace table
}  // namespace bpp

#endif  // BPP_BINOMIAL_TABLE_H_
