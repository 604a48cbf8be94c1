// Per-device scratch pools (see scratch.cuh).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <mutex>

#include "cuda/common.cuh"
#include "cuda/scratch.cuh"
#include "micromix/cuda_mx.hpp"

namespace micromix::cuda {
namespace {

constexpr int kMaxDevices = 64;
std::mutex g_pool_mu;
cudaMemPool_t g_pools[kMaxDevices] = {};

cudaMemPool_t pool_for_current_device() {
  int dev = 0;
  MM_CUDA_CHECK(cudaGetDevice(&dev));
  MM_CUDA_REQUIRE(dev >= 0 && dev < kMaxDevices, "scratch: device index " + std::to_string(dev) + " out of range");
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (!g_pools[dev]) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = dev;
    cudaMemPool_t pool = nullptr;
    MM_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
    // Keep what was freed (mx_release_scratch trims), or at most MICROMIX_SCRATCH_KEEP_MB MiB.
    uint64_t keep = UINT64_MAX;
    if (const char* e = std::getenv("MICROMIX_SCRATCH_KEEP_MB")) {
      char* end = nullptr;
      const unsigned long long mb = std::strtoull(e, &end, 10);
      MM_CUDA_REQUIRE(end != e && *end == '\0' && mb < (1ull << 40),
                      std::string("MICROMIX_SCRATCH_KEEP_MB: not a number of MiB: '") + e + "'");
      keep = static_cast<uint64_t>(mb) << 20;
    }
    MM_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    g_pools[dev] = pool;
  }
  return g_pools[dev];
}

}  // namespace

void* scratch_alloc(size_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  MM_CUDA_CHECK(cudaMallocFromPoolAsync(&p, bytes ? bytes : 16, pool_for_current_device(), stream));
  return p;
}

void scratch_free(void* p, cudaStream_t stream) {
  if (p) MM_CUDA_CHECK(cudaFreeAsync(p, stream));
}

void mx_release_scratch() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  for (cudaMemPool_t pool : g_pools)
    if (pool) MM_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
}

}  // namespace micromix::cuda
