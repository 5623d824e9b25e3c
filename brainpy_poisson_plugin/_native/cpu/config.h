// CPU handler, part 1 of 6: build configuration and the constants of the lookups.
// Private to cpu_handler.cc: every cpu/*.h is included into that one translation unit
// (so that target_clones dispatch and inlining work across the parts), in the order
// config, lookup_plan, portable_lookups, avx512_lookups, runners, work_sharing.
#ifndef BPP_CPU_CONFIG_H_
#define BPP_CPU_CONFIG_H_

#include <cstdint>

namespace bpp {
namespace {

constexpr int kBlock = 256;               //!< elements per block of the vectorised loops
constexpr int64_t kMinChunk = 16 * 1024;  //!< elements per pool task at least (~40 us); smaller targets run inline
constexpr int kMinGuideBits = 11;
constexpr int kMaxGuideBits = 20;
constexpr uint32_t kSlowBit = 0x80000000u;  //!< in a count: "redo exactly"; in a guide entry: "crowded bucket"
constexpr int kMaxLinear = 32;              //!< most middle hi words of the portable linear lookup
constexpr int kCountGuideBits = 13;         //!< v4 count guide: 2^13 words (32 KiB, an L1 cache)
//! Increment-guide entry of a flagged bucket (a negative quiet NaN and above: such
//! increments, if any, rule the increment guide out).
constexpr uint32_t kIncFlag = 0xFFC00000u;
constexpr uint32_t kMaxSearchTable = 32;              //!< v4 path: entries of the register tables (L + 1 at most)
constexpr uint32_t kMaxSearch = kMaxSearchTable - 1;  //!< middle hi words it searches

}  // namespace
}  // namespace bpp

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && \
    !defined(BPP_NO_MULTIVERSION)
#define BPP_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BPP_MULTIVERSION
#endif

#if defined(__GNUC__)
#define BPP_INLINE inline __attribute__((always_inline))
#define BPP_RESTRICT __restrict__
#else
#define BPP_INLINE inline
#define BPP_RESTRICT
#endif

// The AVX-512 (x86-64-v4) lookups of avx512_lookups.h: GCC 12+ on x86-64 Linux.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(BPP_NO_MULTIVERSION) && __GNUC__ >= 12
#define BPP_HAVE_V4 1
#define BPP_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#else
#define BPP_HAVE_V4 0
#define BPP_TARGET_V4
#endif

namespace bpp {
namespace {

//! Whether the CPU runs x86-64-v4 code (AVX-512 F/BW/CD/DQ/VL); asked once.
inline bool use_v4() {
#if BPP_HAVE_V4
  static const bool v4 = [] {
    __builtin_cpu_init();  // harmless if the libgcc constructor already ran
    return __builtin_cpu_supports("x86-64-v4") != 0;
  }();
  return v4;
#else
  return false;
#endif
}

//! Whether a table of ``L`` thresholds takes the v4 count guide (GuideCountLookup): on
//! AVX-512 CPUs when it is too large for the register search.
inline bool use_count_guide(uint32_t L) { return use_v4() && L + 1 > kMaxSearchTable; }

}  // namespace
}  // namespace bpp

#endif  // BPP_CPU_CONFIG_H_
