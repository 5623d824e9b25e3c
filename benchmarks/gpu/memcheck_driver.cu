// A small program that launches the CUDA kernel of ``bpp_poisson_add`` directly (no XLA),
// for ``compute-sanitizer --tool memcheck`` (benchmarks/gpu_check.sh): the shared-memory
// and global-memory table paths, a contiguous and a strided (sharded) block, f32 and f16.
// Each result is compared with the kernel's per-thread body run on the host. Exit status 0
// when every launch matched.
//
//   nvcc -std=c++17 -O2 -arch=sm_90 -I brainpy_poisson_plugin/_native/include \
//        -I "$(python3 -c 'import jax.ffi; print(jax.ffi.include_dir())')" \
//        -o memcheck_driver benchmarks/gpu/memcheck_driver.cu

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../../brainpy_poisson_plugin/_native/cuda_handler.cu"

namespace {

#define CHECK(x)                                                                              \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(2);                                                                           \
    }                                                                                         \
  } while (0)

template <typename T>
T* to_device(const std::vector<T>& v) {
  T* p = nullptr;
  CHECK(cudaMalloc(&p, sizeof(T) * (v.empty() ? 1 : v.size())));
  if (!v.empty()) CHECK(cudaMemcpy(p, v.data(), sizeof(T) * v.size(), cudaMemcpyHostToDevice));
  return p;
}

//! One launch of an f32 target of ``local`` dims inside ``global`` at ``origin``, with an
//! ``L``-entry table; returns the number of mismatches against the host-run body.
int run_case(std::vector<int64_t> local, std::vector<uint32_t> origin, std::vector<uint32_t> global, uint32_t L) {
  const int rank = static_cast<int>(local.size());
  int64_t n = 1;
  for (int64_t d : local) n *= d;
  std::vector<float> in(n);
  for (int64_t i = 0; i < n; ++i) in[i] = static_cast<float>((i * 37) % 101) * 0.01f;
  std::vector<uint32_t> rows(2 * L);
  for (uint32_t j = 0; j < L; ++j) {
    const uint64_t t = (~uint64_t{0} / (L + 1)) * (j + 1);
    rows[2 * j] = static_cast<uint32_t>(t >> 32);
    rows[2 * j + 1] = static_cast<uint32_t>(t);
  }
  std::vector<float> inc(L + 1);
  for (uint32_t j = 0; j <= L; ++j) inc[j] = 0.25f * j;
  std::vector<uint32_t> layout(origin);
  layout.insert(layout.end(), global.begin(), global.end());
  std::vector<uint32_t> key = {0x1234u, 0xABCDu};

  float* d_in = to_device(in);
  float* d_out = to_device(std::vector<float>(n, -1.0f));
  bpp::KernelArgs<float> a{};
  a.in = d_in;
  a.out = d_out;
  a.key = to_device(key);
  a.thresholds = to_device(rows);
  a.increments = to_device(inc);
  a.layout = to_device(layout);
  a.layout_unsigned = true;
  a.n = n;
  a.table_length = L;
  a.rank = rank;
  for (int d = 0; d < bpp::kMaxInputRank; ++d) a.local[d] = d < rank ? local[d] : 1;
  const size_t smem = sizeof(uint64_t) * L + sizeof(float) * (L + 1);
  ffi::Error err = smem <= bpp::kMaxDynamicSmem ? bpp::launch_variant<float, true>(nullptr, a, smem)
                                                : bpp::launch_variant<float, false>(nullptr, a, 0);
  if (err.failure()) {
    std::fprintf(stderr, "launch failed\n");
    return 1;
  }
  CHECK(cudaDeviceSynchronize());
  std::vector<float> got(n);
  CHECK(cudaMemcpy(got.data(), d_out, sizeof(float) * n, cudaMemcpyDeviceToHost));

  bpp::Layout lay{};
  bpp::LayoutStep st{};
  bpp::make_layout(rank, local.data(), origin.data(), global.data(), &lay);
  bpp::make_layout_step(lay, 1, &st);
  std::vector<uint64_t> tab(L);
  for (uint32_t j = 0; j < L; ++j) tab[j] = bpp::threshold_at(rows.data(), j);
  std::vector<float> want(n);
  bpp::grid_stride_elements(in.data(), want.data(), n, key[0], key[1], lay, st, tab.data(), L, inc.data(), 0, 1);
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) bad += std::memcmp(&got[i], &want[i], sizeof(float)) != 0;
  std::printf("case rank=%d n=%lld L=%u %s: %d mismatches\n", rank, static_cast<long long>(n), L,
              smem <= bpp::kMaxDynamicSmem ? "shared" : "global", bad);
  return bad;
}

}  // namespace

int main() {
  int bad = 0;
  bad += run_case({100003}, {0}, {100003}, 21);                        // flat, shared table
  bad += run_case({100003}, {0}, {100003}, 7000);                      // flat, global table
  bad += run_case({40, 1000}, {0, 1000}, {40, 3001}, 21);              // strided block
  bad += run_case({2, 3000}, {1, 2147480000u}, {3, 2147483648u}, 40);  // indices past 2^32
  std::printf("%s\n", bad == 0 ? "ALL MATCH" : "MISMATCH");
  return bad == 0 ? 0 : 1;
}
