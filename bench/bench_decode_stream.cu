// How fast can the decode GEMV's weight reads alone go? (issue 5, "decode at >= 75% of copy")
//
// The prepared decode kernels (src/cuda/mx_gemv_decode_prepared.cu) read a 70/20/10 gate_up layer at
// ~0.64 of a device-to-device copy at M = 1 on an H100. This bench runs only their memory side on a
// buffer of the same layout and size (no decoding, no MMAs: the words are XORed into one value per
// warp so the loads cannot be dropped), in several structures, to separate the cost of the access
// pattern from the cost of the arithmetic:
//   pattern-uU   v14's structure: a CTA of 8 warps per 16-row group, warp w takes blocks w, w + 8, ...
//                of each segment, U blocks' loads in flight per batch, then a tail batch; 4 CTAs / SM
//                (held there by unused dynamic shared memory, as v14's 64 registers hold it)
//   pattern-u4+X the same with X instructions of stand-in arithmetic per block after the batch's loads
//                (v14's real block step: ~46 FP4, ~42 FP8, ~75 FP6 instructions per lane)
//   uUxCcta+48   batches of U blocks with C CTAs per SM (more warps, fewer blocks each), +48 arithmetic
//   persist-uU   the same work, grid = resident CTAs, each looping over row groups
//   ring-dD      the same order, each lane copying its bytes of the next D blocks into shared memory
//                with cp.async (a ring per warp: bytes in flight without holding registers)
//   linear       the whole buffer read front to back, 16 bytes per lane, 4 loads in flight per lane
//   copy         cudaMemcpyAsync device to device of the same byte count (reported as read + write)
// Prints GB/s of the bytes read (median of the rounds) and the fraction of the copy rate.
//   bench_decode_stream [--n N] [--blocks n4,n6,n8] [--rounds R]   (defaults: gate_up 28672, 90,25,13)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cuda_check.hpp"
#include "cuda/mx_gemv_prepared_common.cuh"
#include "cuda/ptx_helpers.cuh"

namespace {

using namespace micromix::cuda::ptx;

constexpr int kWarps = 8;

struct Layout {
  const uint8_t* wc[3];
  const uint8_t* ws[3];
  int nb[3];
  int64_t groups;
};

// The prepared layout's block sizes and index, from the library itself (mx_gemv_prepared_common.cuh,
// mx_mixed_device.cuh), so that this bench reads exactly what the decode kernels read.
using micromix::cuda::gemvp::block_bytes;
using micromix::cuda::mixed::prepared_index;

template <int SEG>
__device__ __forceinline__ uint32_t load_words(const uint8_t* w, const uint8_t* s) {
  uint32_t x;
  if constexpr (SEG == 0) {
    const uint2 v = ld_nc_v2(w);
    x = v.x ^ v.y;
  } else if constexpr (SEG == 1) {
    x = ld_nc_u32(w) ^ ld_nc_u32(w + 4) ^ ld_nc_u32(w + 8);
  } else {
    const uint4 v = ld_nc_v4(w);
    x = v.x ^ v.y ^ v.z ^ v.w;
  }
  return x ^ ld_nc_u16(s);
}

// MATH instructions of stand-in arithmetic on a loaded word, in 4 independent chains (v14's block step
// has about that much instruction-level parallelism); asm volatile so that none is folded away.
template <int MATH>
__device__ __forceinline__ uint32_t stand_in_math(uint32_t x) {
  if constexpr (MATH == 0) {
    return x;
  } else {
    uint32_t c[4] = {x, x ^ 1u, x ^ 2u, x ^ 3u};
#pragma unroll
    for (int i = 0; i < MATH / 4; ++i)
#pragma unroll
      for (int k = 0; k < 4; ++k) asm volatile("mad.lo.u32 %0, %0, %1, %2;" : "+r"(c[k]) : "r"(x), "r"(c[(k + 1) & 3]));
    return c[0] ^ c[1] ^ c[2] ^ c[3];
  }
}

// v14's loop shape: U blocks' loads in flight, then their XOR and MATH more instructions per block,
// then the tail batch.
template <int SEG, int U, int MATH = 0>
__device__ __forceinline__ uint32_t seg_pattern(const Layout& L, int64_t G, int warp, int lane) {
  constexpr int bpb = block_bytes(SEG), bpr = bpb / 4;
  const int nb = L.nb[SEG], g = lane >> 2;
  if (warp >= nb) return 0u;
  const int64_t at = prepared_index(G, warp, nb, L.groups);
  const int64_t step = (prepared_index(G, warp + 1, nb, L.groups) - at) * 16;
  const uint8_t* w = L.wc[SEG] + at * 16 * bpb + lane * 2 * bpr;
  const uint8_t* s = L.ws[SEG] + at * 16 + 2 * g;
  const int64_t wstride = kWarps * step * bpb, sstride = kWarps * step;
  uint32_t acc = 0u;
  int lb = warp;
  for (; lb + kWarps * (U - 1) < nb; lb += kWarps * U) {
    uint32_t r[U];
#pragma unroll
    for (int u = 0; u < U; ++u) r[u] = load_words<SEG>(w + u * wstride, s + u * sstride);
#pragma unroll
    for (int u = 0; u < U; ++u) acc ^= stand_in_math<MATH>(r[u]);
    w += U * wstride;
    s += U * sstride;
  }
  if (lb < nb) {
    const int rem = (nb - lb + kWarps - 1) / kWarps;
    uint32_t r[U - 1];
#pragma unroll
    for (int u = 0; u < U - 1; ++u) {
      const int v = u < rem ? u : 0;
      r[u] = load_words<SEG>(w + v * wstride, s + v * sstride);
    }
#pragma unroll
    for (int u = 0; u < U - 1; ++u)
      if (u < rem) acc ^= stand_in_math<MATH>(r[u]);
  }
  return acc;
}

// The same blocks through a per-warp ring of D shared-memory slots filled by cp.async: a lane copies
// its own bytes (and lanes 0-3 the 16 scale bytes) of block i + D while it reads block i.
template <int SEG, int D>
__device__ __forceinline__ uint32_t seg_ring(const Layout& L, int64_t G, int warp, int lane, uint8_t* ring) {
  constexpr int bpb = block_bytes(SEG), bpr = bpb / 4, slot = 32 * 16 + 16;
  const int nb = L.nb[SEG];
  if (warp >= nb) return 0u;
  const int64_t at = prepared_index(G, warp, nb, L.groups);
  const int64_t step = (prepared_index(G, warp + 1, nb, L.groups) - at) * 16;
  const uint8_t* w = L.wc[SEG] + at * 16 * bpb + lane * 2 * bpr;
  const uint8_t* s = L.ws[SEG] + at * 16 + 4 * (lane & 3);
  const int64_t wstride = kWarps * step * bpb, sstride = kWarps * step;
  const int n = (nb - warp + kWarps - 1) / kWarps;  // this warp's blocks
  auto issue = [&](int i) {
    if (i < n) {
      uint8_t* d = ring + (i % D) * slot;
      const uint8_t* src = w + i * wstride;
      if constexpr (SEG == 0) cp_async8(d + lane * 8, src);
      else if constexpr (SEG == 1) {
        cp_async4(d + lane * 12, src);
        cp_async4(d + lane * 12 + 4, src + 4);
        cp_async4(d + lane * 12 + 8, src + 8);
      } else cp_async16(d + lane * 16, src);
      if (lane < 4) cp_async4(d + 512 + lane * 4, s + i * sstride);
    }
    cp_async_commit();
  };
#pragma unroll
  for (int i = 0; i < D - 1; ++i) issue(i);
  uint32_t acc = 0u;
  for (int i = 0; i < n; ++i) {
    issue(i + D - 1);
    cp_async_wait<D - 1>();
    const uint8_t* d = ring + (i % D) * slot;
    const uint32_t* x = reinterpret_cast<const uint32_t*>(d + lane * (2 * bpr));
    uint32_t v = x[0] ^ x[1];
    if constexpr (SEG >= 1) v ^= x[2];
    if constexpr (SEG == 2) v ^= x[3];
    if (lane < 4) v ^= reinterpret_cast<const uint32_t*>(d + 512)[lane];
    acc ^= v;
  }
  cp_async_wait<0>();
  __syncwarp();
  return acc;
}

template <int U, int MATH = 0, int CTAS = 4>
__global__ void __launch_bounds__(256, CTAS) k_pattern(Layout L, uint32_t* sink) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t G = blockIdx.x;
  const uint32_t a = seg_pattern<0, U, MATH>(L, G, warp, lane) ^ seg_pattern<1, U, MATH>(L, G, warp, lane) ^
                     seg_pattern<2, U, MATH>(L, G, warp, lane);
  if (a == 0x9E3779B9u) sink[0] = a;  // practically never: keeps the loads without a store per warp
}

template <int U>
__global__ void __launch_bounds__(256, 4) k_persist(Layout L, uint32_t* sink) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  uint32_t a = 0u;
  for (int64_t G = blockIdx.x; G < L.groups; G += gridDim.x)
    a ^= seg_pattern<0, U>(L, G, warp, lane) ^ seg_pattern<1, U>(L, G, warp, lane) ^ seg_pattern<2, U>(L, G, warp, lane);
  if (a == 0x9E3779B9u) sink[0] = a;
}

template <int D>
__global__ void __launch_bounds__(256, 4) k_ring(Layout L, uint32_t* sink) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  uint8_t* ring = smem + warp * D * (32 * 16 + 16);
  const int64_t G = blockIdx.x;
  const uint32_t a = seg_ring<0, D>(L, G, warp, lane, ring) ^ seg_ring<1, D>(L, G, warp, lane, ring) ^
                     seg_ring<2, D>(L, G, warp, lane, ring);
  if (a == 0x9E3779B9u) sink[0] = a;
}

__global__ void __launch_bounds__(256, 4) k_linear(const uint4* p, int64_t n16, uint32_t* sink) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  uint32_t a = 0u;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    uint4 r[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) r[u] = ld_nc_v4(p + i + u * stride);
#pragma unroll
    for (int u = 0; u < 4; ++u) a ^= r[u].x ^ r[u].y ^ r[u].z ^ r[u].w;
  }
  for (; i < n16; i += stride) {
    const uint4 r = ld_nc_v4(p + i);
    a ^= r.x ^ r.y ^ r.z ^ r.w;
  }
  if (a == 0x9E3779B9u) sink[0] = a;
}

// Dynamic shared memory (unused) that holds a kernel to `ctas` CTAs per SM whatever its registers allow
// (228 KB per SM, 1 KB reserved per CTA plus the 1 KB static array): the stand-in kernels use fewer
// registers than v14's 64 and would otherwise run 6 CTAs per SM where v14 runs 4.
size_t pin_smem(int ctas) { return ctas == 4 ? 46 * 1024 : ctas == 5 ? 38 * 1024 : 31 * 1024; }

template <class F>
double median_us(F&& launch, int rounds, int reps) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<double> t;
  launch(0);
  CK(cudaDeviceSynchronize());
  for (int r = 0; r < rounds; ++r) {
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; ++i) launch(i);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    t.push_back(1000.0 * ms / reps);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 28672;
  int nb[3] = {90, 25, 13};
  int rounds = 15;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--n") && i + 1 < argc) n = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--blocks") && i + 1 < argc) {
      if (std::sscanf(argv[++i], "%d,%d,%d", &nb[0], &nb[1], &nb[2]) != 3) {
        std::fprintf(stderr, "--blocks wants n4,n6,n8 (32-K blocks per segment)\n");
        return 2;
      }
    } else if (!std::strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_decode_stream [--n N] [--blocks n4,n6,n8] [--rounds R]\n");
      return 2;
    }
  }
  if (n % 16 || n <= 0 || nb[0] < 0 || nb[1] < 0 || nb[2] < 0 || rounds < 1) {
    std::fprintf(stderr, "N must be a positive multiple of 16, block counts >= 0\n");
    return 2;
  }
  const int64_t groups = n / 16;
  size_t seg_bytes[3], total = 0;
  for (int s = 0; s < 3; ++s) {
    seg_bytes[s] = static_cast<size_t>(groups) * nb[s] * 16 * (block_bytes(s) + 1);  // codes + scales
    total += seg_bytes[s];
  }
  // Enough copies that consecutive launches never find their bytes in the 50 MB L2.
  const int copies = static_cast<int>(std::max<size_t>(2, (256u << 20) / total + 1));
  std::vector<uint8_t*> buf(copies);
  for (auto& b : buf) {
    CK(cudaMalloc(&b, total));
    CK(cudaMemset(b, 0x5A, total));
  }
  uint8_t* dst = nullptr;
  CK(cudaMalloc(&dst, total));
  uint32_t* sink = nullptr;
  CK(cudaMalloc(&sink, 4));
  std::vector<Layout> L(copies);
  for (int c = 0; c < copies; ++c) {
    size_t off = 0;
    for (int s = 0; s < 3; ++s) {
      L[c].wc[s] = buf[c] + off;
      L[c].ws[s] = buf[c] + off + static_cast<size_t>(groups) * nb[s] * 16 * block_bytes(s);
      L[c].nb[s] = nb[s];
      off += seg_bytes[s];
    }
    L[c].groups = groups;
  }
  int dev = 0, sms = 0;
  CK(cudaGetDevice(&dev));
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, dev));
  const int reps = 20;
  const unsigned grid = static_cast<unsigned>(groups);
  std::printf("device %s, %d SMs; N = %lld, blocks %d/%d/%d, %.1f MB read per call, %d buffers\n", prop.name, sms,
              static_cast<long long>(n), nb[0], nb[1], nb[2], total / 1e6, copies);
  const double copy_us =
      median_us([&](int i) { CK(cudaMemcpyAsync(dst, buf[i % copies], total, cudaMemcpyDeviceToDevice)); }, rounds, reps);
  const double copy_gbs = 2.0 * total / copy_us / 1e3;
  std::printf("%-14s %9s %9s %9s\n", "variant", "us", "GB/s", "x copy");
  std::printf("%-14s %9.2f %9.0f %9.2f\n", "copy (r+w)", copy_us, copy_gbs, 1.0);
  auto row = [&](const char* name, double us) {
    const double gbs = total / us / 1e3;
    std::printf("%-14s %9.2f %9.0f %9.2f\n", name, us, gbs, gbs / copy_gbs);
  };
  constexpr int kRingD = 8;
  const size_t ring_bytes = static_cast<size_t>(kWarps) * kRingD * (32 * 16 + 16);
  CK(cudaFuncSetAttribute(k_ring<kRingD>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(std::max(ring_bytes, pin_smem(4)))));
  CK(cudaFuncSetAttribute(k_ring<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(std::max(ring_bytes, pin_smem(4)))));
  for (int pass = 0; pass < 2; ++pass) {
    row("linear", median_us([&](int i) { k_linear<<<sms * 4, 256>>>(reinterpret_cast<const uint4*>(buf[i % copies]), total / 16, sink); }, rounds, reps));
    row("pattern-u4", median_us([&](int i) { k_pattern<4><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u8", median_us([&](int i) { k_pattern<8><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u4+16", median_us([&](int i) { k_pattern<4, 16><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u4+32", median_us([&](int i) { k_pattern<4, 32><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u4+48", median_us([&](int i) { k_pattern<4, 48><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u4+64", median_us([&](int i) { k_pattern<4, 64><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("pattern-u4+96", median_us([&](int i) { k_pattern<4, 96><<<grid, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("u4x6cta+48", median_us([&](int i) { k_pattern<4, 48, 6><<<grid, 256, pin_smem(6)>>>(L[i % copies], sink); }, rounds, reps));
    row("u3x5cta+48", median_us([&](int i) { k_pattern<3, 48, 5><<<grid, 256, pin_smem(5)>>>(L[i % copies], sink); }, rounds, reps));
    row("u2x6cta+48", median_us([&](int i) { k_pattern<2, 48, 6><<<grid, 256, pin_smem(6)>>>(L[i % copies], sink); }, rounds, reps));
    row("persist-u4", median_us([&](int i) { k_persist<4><<<sms * 4, 256, pin_smem(4)>>>(L[i % copies], sink); }, rounds, reps));
    row("ring-d4", median_us([&](int i) { k_ring<4><<<grid, 256, std::max(ring_bytes / 2, pin_smem(4))>>>(L[i % copies], sink); }, rounds, reps));
    row("ring-d8", median_us([&](int i) { k_ring<kRingD><<<grid, 256, std::max(ring_bytes, pin_smem(4))>>>(L[i % copies], sink); }, rounds, reps));
  }
  for (auto b : buf) CK(cudaFree(b));
  CK(cudaFree(dst));
  CK(cudaFree(sink));
  return 0;
}
