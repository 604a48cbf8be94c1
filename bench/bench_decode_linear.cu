// The decode linear end to end (M = 1..16): the kernel that produces a layer's input and the layer's
// GEMM, one after the other on one stream as an engine runs them, for
//   bf16:     the producer -> bf16 rows, cuBLAS BF16 GEMM;
//   fp8:      the producer -> E4M3 with a static per-tensor scale (the cast TensorRT-FP8 fuses into it),
//             cuBLASLt FP8 E4M3 GEMM;
//   micromix: the producer fused with reorder + quantize (mx_rmsnorm_reorder_quantize or
//             mx_swiglu_reorder_quantize) -> mx_mixed_gemv_prepared, v21 (the GEMV's first kernel, the
//             activation pre-pass or the GEMV, launched as the quantizer's programmatic dependent) and
//             v22 (the quantizer also writes the decode-ready activations, MxDecodeActs, and the GEMV
//             reads them: no pre-pass; "acts everywhere" = MICROMIX_GEMV_ACTS=all, M <= 4 only, where
//             the fused paths that decode in the CTA read them too).
// The producer: SwiGLU of a packed (M, 2K) gate|up row for down, RMSNorm for the others (q/k/v and
// gate/up follow one; o follows attention, whose epilogue would end in the same cast or quantizer).
// The baseline producer kernels are written here, simply (RMSNorm: a CTA per row; SwiGLU: a thread per 8
// elements; 16-byte loads); at these M they cost a launch and a few memory round trips, like ours. Each
// op alone is timed too (v21 alone: back-to-back calls, the next one's CTAs starting as the previous
// one's retire, which an engine with a quantizer between them does not see; compare the chains).
// (v20, ordinary launches, was a column until session 14; v21 equals it bit for bit and is faster.)
//
//   bench_decode_linear [--model M] [--m 1,2,4,...] [--reps N] [--only LAYER] [--mix NAME:F4:F6] [--json FILE]
//                       [--chains-only]
// (--chains-only: only the quantizers and the micromix chains, e.g. to compare settings of knobs.)
//
// Timing as bench_gemm: CUDA events around batches of calls, median over batches, weights rotating
// over copies that exceed twice the L2, random data.
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_cuda_check.hpp"
#include "bench_common.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"

using namespace micromix;
using namespace bench;

namespace {

constexpr int kNormThreads = 256;

// y = bf16(x * inv_rms * w), or E4M3(that * out_scale) (saturating), one CTA per row; K a multiple of 8.
template <bool FP8>
__global__ void __launch_bounds__(kNormThreads) rmsnorm_rows(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                                                            int K, float eps, float out_scale, void* __restrict__ y) {
  const int row = blockIdx.x;
  const uint4* xr = reinterpret_cast<const uint4*>(x + static_cast<size_t>(row) * K);
  const uint4* wr = reinterpret_cast<const uint4*>(w);
  float ss = 0.0f;
  for (int c = threadIdx.x; c < K / 8; c += kNormThreads) {
    const uint4 v = xr[c];
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]);
      ss = fmaf(f.x, f.x, fmaf(f.y, f.y, ss));
    }
  }
  __shared__ float part[kNormThreads / 32];
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kNormThreads / 32; ++i) total += part[i];
  const float inv = rsqrtf(total / static_cast<float>(K) + eps);
  for (int c = threadIdx.x; c < K / 8; c += kNormThreads) {
    const uint4 v = xr[c], wv = wr[c];
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    const __nv_bfloat162* hw = reinterpret_cast<const __nv_bfloat162*>(&wv);
    float out[8];
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(h[j]), g = __bfloat1622float2(hw[j]);
      out[2 * j] = f.x * inv * g.x;
      out[2 * j + 1] = f.y * inv * g.y;
    }
    if constexpr (FP8) {
      uint2 o;
      uint16_t* p = reinterpret_cast<uint16_t*>(&o);
      for (int j = 0; j < 4; ++j)
        p[j] = __nv_cvt_float2_to_fp8x2(make_float2(out[2 * j] * out_scale, out[2 * j + 1] * out_scale), __NV_SATFINITE, __NV_E4M3);
      reinterpret_cast<uint2*>(static_cast<uint8_t*>(y) + static_cast<size_t>(row) * K)[c] = o;
    } else {
      uint4 o;
      __nv_bfloat162* p = reinterpret_cast<__nv_bfloat162*>(&o);
      for (int j = 0; j < 4; ++j) p[j] = __floats2bfloat162_rn(out[2 * j], out[2 * j + 1]);
      reinterpret_cast<uint4*>(static_cast<__nv_bfloat16*>(y) + static_cast<size_t>(row) * K)[c] = o;
    }
  }
}

template <bool FP8>
void rmsnorm(const void* x, const void* w, int64_t M, int64_t K, void* y, cudaStream_t s) {
  rmsnorm_rows<FP8><<<static_cast<unsigned>(M), kNormThreads, 0, s>>>(static_cast<const __nv_bfloat16*>(x),
                                                                     static_cast<const __nv_bfloat16*>(w), static_cast<int>(K),
                                                                     1e-5f, 1.0f / 16, y);
  CK(cudaGetLastError());
}

// y = bf16(silu(g) * u), or E4M3(that * out_scale) (saturating); gu (M, 2K): row i = gate row | up row.
template <bool FP8>
__global__ void swiglu_rows(const __nv_bfloat16* __restrict__ gu, int64_t M, int K, float out_scale, void* __restrict__ y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // 8 elements each
  if (i >= M * K / 8) return;
  const int64_t row = i / (K / 8), c = i % (K / 8);
  const uint4 gv = reinterpret_cast<const uint4*>(gu + row * 2 * K)[c], uv = reinterpret_cast<const uint4*>(gu + row * 2 * K + K)[c];
  const __nv_bfloat162* g2 = reinterpret_cast<const __nv_bfloat162*>(&gv);
  const __nv_bfloat162* u2 = reinterpret_cast<const __nv_bfloat162*>(&uv);
  float out[8];
  for (int j = 0; j < 4; ++j) {
    const float2 g = __bfloat1622float2(g2[j]), u = __bfloat1622float2(u2[j]);
    out[2 * j] = g.x / (1.0f + __expf(-g.x)) * u.x;
    out[2 * j + 1] = g.y / (1.0f + __expf(-g.y)) * u.y;
  }
  if constexpr (FP8) {
    uint2 o;
    uint16_t* p = reinterpret_cast<uint16_t*>(&o);
    for (int j = 0; j < 4; ++j)
      p[j] = __nv_cvt_float2_to_fp8x2(make_float2(out[2 * j] * out_scale, out[2 * j + 1] * out_scale), __NV_SATFINITE, __NV_E4M3);
    reinterpret_cast<uint2*>(y)[i] = o;
  } else {
    uint4 o;
    __nv_bfloat162* p = reinterpret_cast<__nv_bfloat162*>(&o);
    for (int j = 0; j < 4; ++j) p[j] = __floats2bfloat162_rn(out[2 * j], out[2 * j + 1]);
    reinterpret_cast<uint4*>(y)[i] = o;
  }
}

// The layer's producer: SwiGLU (x packed gate|up, M x 2K) or RMSNorm (x M x K, weight w) into y.
template <bool FP8>
void produce(bool swiglu, const void* x, const void* w, int64_t M, int64_t K, void* y, cudaStream_t s) {
  if (!swiglu) return rmsnorm<FP8>(x, w, M, K, y, s);
  const int64_t threads = M * K / 8;
  swiglu_rows<FP8><<<static_cast<unsigned>((threads + 255) / 256), 256, 0, s>>>(static_cast<const __nv_bfloat16*>(x), M,
                                                                               static_cast<int>(K), 1.0f / 16, y);
  CK(cudaGetLastError());
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  std::string t = s;
  for (size_t a = 0; a <= t.size();) {
    const size_t b = std::min(t.find(',', a), t.size());
    v.push_back(std::atoll(t.substr(a, b - a).c_str()));
    a = b + 1;
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model = "llama3.1-8b", only, json_path, mix_name = "70/20/10";
  std::vector<int64_t> Ms = {1, 2, 4, 8, 16};
  Mix mix{"70/20/10", 0.7, 0.2};
  int reps = 25;
  bool chains_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!std::strcmp(argv[i], "--chains-only")) chains_only = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--m") && i + 1 < argc) Ms = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--mix") && i + 1 < argc) {
      const std::string arg = argv[++i];
      const size_t c1 = arg.find(':'), c2 = c1 == std::string::npos ? c1 : arg.find(':', c1 + 1);
      if (c2 == std::string::npos) {
        std::fprintf(stderr, "bench_decode_linear: --mix wants NAME:F4:F6, got '%s'\n", arg.c_str());
        return 2;
      }
      mix_name = arg.substr(0, c1);
      mix = {mix_name.c_str(), std::atof(arg.substr(c1 + 1, c2 - c1 - 1).c_str()), std::atof(arg.substr(c2 + 1).c_str())};
      if (!(mix.f4 >= 0 && mix.f6 >= 0 && mix.f4 + mix.f6 <= 1.0 + 1e-9)) {
        std::fprintf(stderr, "bench_decode_linear: --mix fractions must be >= 0 with F4 + F6 <= 1, got '%s'\n", arg.c_str());
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: bench_decode_linear [--model llama3.1-8b|llama3.1-70b|qwen2.5-7b|qwen2.5-32b] [--m 1,2,4,8,16]\n"
                   "                           [--reps N] [--only LAYER] [--mix NAME:F4:F6] [--json FILE] [--chains-only]\n");
      return 2;
    }
  }
  for (int64_t M : Ms)
    if (M < 1 || M > 16) {
      std::fprintf(stderr, "bench_decode_linear: --m values must be 1..16, got %lld\n", static_cast<long long>(M));
      return 2;
    }
  const std::vector<Shape> shapes = model_shapes(model);
  if (shapes.empty()) {
    std::fprintf(stderr, "bench_decode_linear: unknown --model '%s'\n", model.c_str());
    return 2;
  }
  if (no_gpu("bench_decode_linear")) return 0;
  const GpuContext gpu;
  const cudaDeviceProp& prop = gpu.prop;
  const size_t l2 = gpu.l2;
  const cudaStream_t stream = gpu.stream;
  const Timer timer{reps, stream};
  Rng g;
  nlohmann::json rows = nlohmann::json::array();
  std::printf("device: %s, %d SMs; model %s, mix %s; us per call (median)\n", prop.name, prop.multiProcessorCount, model.c_str(),
              mix.name);
  std::printf("\n| layer | M | producer bf16 | producer e4m3 | mx producer+quantize | + decode acts | cuBLAS bf16 | cuBLASLt fp8 | v21 back to back "
              "| bf16 chain | fp8 chain | v21 chain | **v22 chain** | v22 acts everywhere | v22 chain x bf16 | v22 chain x fp8 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Shape& sh : shapes) {
    if (!only.empty() && only != sh.name) continue;
    const int64_t N = sh.N, K = sh.K;
    const size_t wb16 = static_cast<size_t>(N * K) * 2, wb8 = static_cast<size_t>(N * K);
    std::vector<uint8_t*> w16, w8;
    for (int i = 0; i < (chains_only ? 0 : copies_for(wb16, l2)); ++i) {
      uint8_t* d;
      CK(cudaMalloc(&d, wb16));
      if (i == 0) {  // bf16 random near 1 with random signs; further copies are device copies
        std::vector<uint16_t> h(static_cast<size_t>(N * K));
        for (auto& v : h) v = static_cast<uint16_t>(0x3E00u | (g.next() & 0x81FFu));
        CK(cudaMemcpy(d, h.data(), wb16, cudaMemcpyHostToDevice));
      } else {
        CK(cudaMemcpy(d, w16[0], wb16, cudaMemcpyDeviceToDevice));
      }
      w16.push_back(d);
    }
    for (int i = 0; i < (chains_only ? 0 : copies_for(wb8, l2)); ++i) w8.push_back(device_random_bytes(wb8, g, true));
    const mx::MixedSplit split = make_split(mix, K);
    std::vector<std::unique_ptr<DevMixed>> wprep;
    for (int i = 0; i < copies_for(mixed_bytes(split, N), l2); ++i) {
      const DevMixed raw(split, N, g);
      wprep.push_back(std::make_unique<DevMixed>(split, N, g));
      cuda::mx_prepare_gemv_weights(raw.view, wprep.back()->out, stream);
      CK(cudaStreamSynchronize(stream));
    }
    // RMSNorm weight (bf16 near 1) and the permutation of K.
    std::vector<uint16_t> hw(static_cast<size_t>(K));
    for (auto& v : hw) v = static_cast<uint16_t>(0x3F60u + (g.next() & 0x3Fu));
    uint16_t* d_norm;
    CK(cudaMalloc(&d_norm, static_cast<size_t>(K) * 2));
    CK(cudaMemcpy(d_norm, hw.data(), static_cast<size_t>(K) * 2, cudaMemcpyHostToDevice));
    std::vector<int32_t> perm = mx::identity_permutation(K);
    for (int64_t j = K - 1; j > 0; --j) std::swap(perm[static_cast<size_t>(j)], perm[g.next() % static_cast<uint64_t>(j + 1)]);
    int32_t* d_perm;
    CK(cudaMalloc(&d_perm, static_cast<size_t>(K) * 4));
    CK(cudaMemcpy(d_perm, perm.data(), static_cast<size_t>(K) * 4, cudaMemcpyHostToDevice));

    const bool swiglu = !std::strcmp(sh.name, "down");  // down's input comes from SwiGLU
    for (int64_t M : Ms) {
      std::vector<uint16_t> hx(static_cast<size_t>(M * K * (swiglu ? 2 : 1)));
      for (auto& v : hx) v = static_cast<uint16_t>(0x3E00u | (g.next() & 0x81FFu));
      uint8_t *x, *xn16, *xn8, *y;
      CK(cudaMalloc(&x, hx.size() * 2));
      CK(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&xn16, static_cast<size_t>(M * K) * 2));
      CK(cudaMalloc(&xn8, static_cast<size_t>(M * K)));
      CK(cudaMalloc(&y, static_cast<size_t>(M * N) * 2));
      DevMixed xq(split, M, g);
      const Fp8Gemm fp8(gpu.lt, M, N, K, gpu.d_one, gpu.ws, gpu.ws_bytes);
      cuda::MxDecodeActs acts{nullptr, cuda::mx_decode_acts_bytes(M, split)};
      CK(cudaMalloc(&acts.data, acts.bytes));
      // with_acts: the quantizer also writes the decode-ready activations.
      const auto quantize = [&](bool with_acts) {
        const auto* xb = reinterpret_cast<const uint16_t*>(x);
        const cuda::MxDecodeActs* a = with_acts ? &acts : nullptr;
        if (swiglu)
          cuda::mx_swiglu_reorder_quantize(xb, xb + K, 2 * K, M, d_perm, xq.out, mx::ScaleRule::ocp, mx::Rounding::even, stream, a);
        else
          cuda::mx_rmsnorm_reorder_quantize(xb, M, d_norm, cuda::WeightType::bf16, 1e-5f, d_perm, xq.out, mx::ScaleRule::ocp,
                                            mx::Rounding::even, stream, a);
      };
      const auto gemv = [&](int i, int version) {
        cuda::mx_mixed_gemv_prepared(xq.view, wprep[static_cast<size_t>(i) % wprep.size()]->view, y, cuda::OutType::bf16, stream,
                                     version, version >= 22 ? &acts : nullptr);
      };
      const auto bf16_gemm = [&](int i) { cublas_bf16_gemm(gpu.blas, M, N, K, w16[static_cast<size_t>(i) % w16.size()], xn16, y); };
      const auto fp8_gemm = [&](int i) { fp8.run(w8[static_cast<size_t>(i) % w8.size()], xn8, y, stream); };
      // (NaN: not run.)
      const auto time_if = [&](bool run, const std::function<void(int)>& f) { return run ? timer(f) : NAN; };
      const bool all = !chains_only;
      const double t_norm16 = time_if(all, [&](int) { produce<false>(swiglu, x, d_norm, M, K, xn16, stream); });
      const double t_norm8 = time_if(all, [&](int) { produce<true>(swiglu, x, d_norm, M, K, xn8, stream); });
      const double t_quant = timer([&](int) { quantize(false); });
      const double t_quant_acts = timer([&](int) { quantize(true); });
      const double t_bf16 = time_if(all, bf16_gemm);
      const double t_fp8 = time_if(all && fp8.ok, fp8_gemm);
      const double t_v21 = time_if(all, [&](int i) { gemv(i, 21); });
      const double c_bf16 = time_if(all, [&](int i) {
        produce<false>(swiglu, x, d_norm, M, K, xn16, stream);
        bf16_gemm(i);
      });
      const double c_fp8 = time_if(all && fp8.ok, [&](int i) {
        produce<true>(swiglu, x, d_norm, M, K, xn8, stream);
        fp8_gemm(i);
      });
      // The micromix chains twice, alternating (slow windows of a fresh machine hit all alike).
      double c_v21 = 1e30, c_v22 = 1e30, c_v22_all = M <= 4 ? 1e30 : NAN;
      for (int round = 0; round < 2; ++round) {
        c_v21 = std::min(c_v21, timer([&](int i) {
                           quantize(false);
                           gemv(i, 21);
                         }));
        c_v22 = std::min(c_v22, timer([&](int i) {
                           quantize(true);
                           gemv(i, 22);
                         }));
        if (M <= 4) {
          setenv("MICROMIX_GEMV_ACTS", "all", 1);
          c_v22_all = std::min(c_v22_all, timer([&](int i) {
                                 quantize(true);
                                 gemv(i, 22);
                               }));
          unsetenv("MICROMIX_GEMV_ACTS");
        }
      }
      const auto f = [](double v, const char* fmt = "%.1f") {  // "-" for what did not run
        char b[32];
        std::snprintf(b, sizeof b, fmt, v);
        return std::isnan(v) ? std::string("-") : std::string(b);
      };
      std::printf("| %s | %lld | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s | %s |\n", sh.name,
                  static_cast<long long>(M), f(t_norm16).c_str(), f(t_norm8).c_str(), f(t_quant).c_str(), f(t_quant_acts).c_str(),
                  f(t_bf16).c_str(), f(t_fp8).c_str(), f(t_v21).c_str(), f(c_bf16).c_str(), f(c_fp8).c_str(), f(c_v21).c_str(),
                  f(c_v22).c_str(), f(c_v22_all).c_str(), f(c_bf16 / c_v22, "%.2f").c_str(), f(c_fp8 / c_v22, "%.2f").c_str());
      std::fflush(stdout);
      rows.push_back({{"layer", sh.name}, {"M", M}, {"N", N}, {"K", K}, {"mix", mix.name},
                      {"producer", swiglu ? "swiglu" : "rmsnorm"}, {"us", {{"norm_bf16", t_norm16}, {"norm_e4m3", t_norm8}, {"mx_quantize", t_quant}, {"mx_quantize_acts", t_quant_acts},
                              {"cublas_bf16", t_bf16}, {"cublaslt_fp8", t_fp8}, {"gemv_v21", t_v21}, {"chain_bf16", c_bf16},
                              {"chain_fp8", c_fp8}, {"chain_v21", c_v21}, {"chain_v22", c_v22}, {"chain_v22_acts_all", c_v22_all}}}});
      for (uint8_t* p : {x, xn16, xn8, y}) CK(cudaFree(p));
      CK(cudaFree(acts.data));
    }
    CK(cudaFree(d_norm));
    CK(cudaFree(d_perm));
    for (auto* p : w16) CK(cudaFree(p));
    for (auto* p : w8) CK(cudaFree(p));
  }
  if (!json_path.empty()) {
    const nlohmann::json doc = {{"device", prop.name}, {"model", model}, {"mix", mix.name}, {"rows", rows}};
    std::ofstream(json_path) << doc.dump(1) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}
