// Fused RMSNorm / SwiGLU + reorder + MX quantize (cuda_mx.hpp) at M = 8192 against a
// device-to-device copy of the op's input and against the unfused quantizer alone.
// Timing: CUDA events around 10 launches per iteration (manual time); bytes counted = bytes read
// + bytes written (fused: the bf16 input(s), the bf16 weight, codes and scales; copy: 2x the
// input), so GB/s compare directly with the copy's.
//   bench_fused_quantize [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#if MICROMIX_HAVE_CUDA
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "micromix/cuda_mx.hpp"
#include "micromix/mx_mixed.hpp"
#include "bench_cuda_check.hpp"

using namespace micromix;

namespace {


constexpr int64_t kM = 8192;
constexpr int kLaunches = 10;

// A MicroMix-like split: 1/16 FP8, 1/8 FP6 (E3M2), the rest FP4.
mx::MixedSplit split_of(int64_t K) {
  mx::MixedSplit s;
  s.n8 = K / 16;
  s.n6 = K / 8;
  s.n4 = K - s.n8 - s.n6;
  s.fp6 = mx::ElemFormat::fp6_e3m2;
  return s;
}

// Device buffers of one op: random bf16 input (elements), output segments, permutation.
struct Setup {
  int64_t K;
  mx::MixedSplit split;
  uint16_t* in = nullptr;
  uint16_t* weight = nullptr;
  uint16_t* copy_dst = nullptr;
  int32_t* perm = nullptr;
  uint8_t* buf[6] = {};
  cuda::MxMixedDeviceOut out;
  size_t in_elems, out_bytes = 0;
  Setup(int64_t k, int64_t in_cols) : K(k), split(split_of(k)), in_elems(static_cast<size_t>(kM * in_cols)) {
    std::mt19937 g(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<uint16_t> h(in_elems);
    for (size_t i = 0; i < h.size(); ++i) {
      if (i >= (1u << 20)) {  // host time: a 1M-value random pattern, repeated
        h[i] = h[i - (1u << 20)];
        continue;
      }
      const float f = nd(g);
      uint32_t u;
      std::memcpy(&u, &f, 4);
      h[i] = static_cast<uint16_t>(u >> 16);
    }
    CK(cudaMalloc(&in, in_elems * 2));
    CK(cudaMalloc(&copy_dst, in_elems * 2));
    CK(cudaMemcpy(in, h.data(), in_elems * 2, cudaMemcpyHostToDevice));
    std::vector<uint16_t> w(static_cast<size_t>(K), 0x3F80);  // 1.0
    CK(cudaMalloc(&weight, K * 2));
    CK(cudaMemcpy(weight, w.data(), K * 2, cudaMemcpyHostToDevice));
    std::vector<int32_t> p(static_cast<size_t>(K));
    for (int64_t i = 0; i < K; ++i) p[i] = static_cast<int32_t>(i);
    std::shuffle(p.begin(), p.end(), g);
    CK(cudaMalloc(&perm, K * 4));
    CK(cudaMemcpy(perm, p.data(), K * 4, cudaMemcpyHostToDevice));
    out.rows = kM;
    out.split = split;
    for (int s = 0; s < mx::kSegments; ++s) {
      const size_t cb = kM * mx::packed_row_bytes(split.format(s), split.count(s)), sb = kM * split.count(s) / 32;
      CK(cudaMalloc(&buf[2 * s], cb + 16));
      CK(cudaMalloc(&buf[2 * s + 1], sb + 16));
      out.codes[s] = buf[2 * s];
      out.scales[s] = buf[2 * s + 1];
      out_bytes += cb + sb;
    }
  }
  ~Setup() {
    cudaFree(in);
    cudaFree(copy_dst);
    cudaFree(weight);
    cudaFree(perm);
    for (auto* b : buf) cudaFree(b);
  }
};

template <class F>
void time_it(benchmark::State& st, size_t bytes, F launch) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) launch();  // warm-up
  CK(cudaDeviceSynchronize());
  for (auto _ : st) {
    CK(cudaEventRecord(a));
    for (int i = 0; i < kLaunches; ++i) launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    st.SetIterationTime(ms / 1e3 / kLaunches);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(bytes));
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
}

// range(0): K; range(1): 0 RMSNorm, 1 SwiGLU (packed gate|up).
void BM_Fused(benchmark::State& st) {
  const int64_t K = st.range(0);
  const bool swiglu = st.range(1) != 0;
  Setup s(K, swiglu ? 2 * K : K);
  const size_t bytes = s.in_elems * 2 + (swiglu ? 0 : K * 2) + s.out_bytes;
  time_it(st, bytes, [&] {
    if (swiglu)
      cuda::mx_swiglu_reorder_quantize(s.in, s.in + K, 2 * K, kM, s.perm, s.out, mx::ScaleRule::ocp, mx::Rounding::even,
                                       nullptr);
    else
      cuda::mx_rmsnorm_reorder_quantize(s.in, kM, s.weight, cuda::WeightType::bf16, 1e-5f, s.perm, s.out,
                                        mx::ScaleRule::ocp, mx::Rounding::even, nullptr);
  });
}

// The unfused quantizer alone on a bf16 (M, K) input (what the fused op replaces minus the
// prologue kernel).
void BM_UnfusedQuantize(benchmark::State& st) {
  const int64_t K = st.range(0);
  Setup s(K, K);
  time_it(st, s.in_elems * 2 + s.out_bytes, [&] {
    cuda::mx_reorder_quantize(s.in, kM, s.perm, s.out, mx::ScaleRule::ocp, mx::Rounding::even, nullptr);
  });
}

// Device-to-device copy of in_cols columns: bytes = read + write.
void BM_Copy(benchmark::State& st) {
  Setup s(st.range(0), st.range(1));
  time_it(st, s.in_elems * 4, [&] { CK(cudaMemcpyAsync(s.copy_dst, s.in, s.in_elems * 2, cudaMemcpyDeviceToDevice)); });
}

BENCHMARK(BM_Fused)->Args({4096, 0})->Args({14336, 1})->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_UnfusedQuantize)->Arg(4096)->Arg(14336)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Copy)->Args({4096, 4096})->Args({14336, 28672})->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

#else
static void BM_NoCuda(benchmark::State& st) {
  for (auto _ : st) {
  }
  st.SkipWithError("micromix was built without CUDA");
}
BENCHMARK(BM_NoCuda);
#endif

BENCHMARK_MAIN();
