// GEMM benchmark of the mixed MX kernels against cuBLAS BF16 and cuBLASLt FP8 E4M3 (per-tensor
// scales, the TensorRT-FP8 stand-in) in the same process, on Llama-3.1-8B layer shapes, plus the
// reorder+quantize kernel against a device-to-device copy. Plain main() (no Google Benchmark).
//
//   bench_gemm [--quick] [--small] [--json FILE] [--reps N] [--only LAYER] [--m M] [--kernels V,V,..]
//              [--model llama3.1-8b|llama3.1-70b|qwen2.5-7b|qwen2.5-32b] [--mix NAME:F4:F6[:e2m3]] [--no-default-mixes]
//   (--kernels: the mx_mixed_gemm versions timed for M > 16, 0 = the default dispatch; for M <= 16 its
//   negative entries -1 - v pick row-major decode versions v (-1: the default) and kGemvPrepared*Kernel
//   (-110 .. -121) prepared ones (then only those run; otherwise every prepared version runs); --model: the
//   layer shapes; --mix: one more allocation, F4 / F6 the fractions of K in MXFP4 / MXFP6, e.g. the
//   calibrated one printed by `micromix quantize`; --no-default-mixes: only the --mix ones, e.g. for ncu)
//
// --small: the memory-bound rows only: M = 1, 2, 4, 8, 16 (decode, every decode version, both
// baselines) and the reorder+quantize kernels (every version) at M = 1024 and 8192.
//
// Timing: CUDA events around batches of launches, median over batches, after warm-up; weights
// rotate over enough copies to exceed twice the L2 so every launch streams them from HBM; data
// are random (never zeros). Prints a markdown table and writes JSON rows.
#include <cstdio>
#include <cstring>
#include <string>

#if MICROMIX_HAVE_CUDA
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "../src/cuda/mx_kernel_versions.hpp"  // bench hook: quantize version (bench has no src/ include path)
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/mx_mixed.hpp"
#include "bench_cuda_check.hpp"
#include "bench_common.hpp"

using namespace micromix;
using namespace bench;

int main(int argc, char** argv) {
  bool quick = false, small = false;
  std::vector<int> kernel_list;  // --kernels: GEMM versions for M > 16 (default: see below)
  std::string json_path, model = "llama3.1-8b";
  std::vector<Mix> mixes = {{"mxfp4", 1.0, 0.0}, {"mxfp8", 0.0, 0.0}, {"70/20/10", 0.7, 0.2}};
  std::vector<std::string> mix_names;  // storage for --mix names
  mix_names.reserve(8);
  int reps = 25;
  std::string only;
  int64_t only_m = 0;
  bool default_mixes = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--no-default-mixes")) default_mixes = false;
    else if (!std::strcmp(argv[i], "--small")) small = true;
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--m") && i + 1 < argc) only_m = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
    else if (!std::strcmp(argv[i], "--mix") && i + 1 < argc && mix_names.size() < 8) {
      const std::string arg = argv[++i];
      const size_t c1 = arg.find(':'), c2 = arg.find(':', c1 == std::string::npos ? c1 : c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) {
        std::fprintf(stderr, "bench_gemm: --mix wants NAME:F4:F6, got '%s'\n", arg.c_str());
        return 2;
      }
      const size_t c3 = arg.find(':', c2 + 1);
      const std::string tail = c3 == std::string::npos ? "" : arg.substr(c3 + 1);
      if (!tail.empty() && tail != "e2m3" && tail != "e3m2") {
        std::fprintf(stderr, "bench_gemm: --mix: FP6 element must be e2m3 or e3m2, got '%s'\n", tail.c_str());
        return 2;
      }
      const double f4 = std::atof(arg.substr(c1 + 1, c2 - c1 - 1).c_str()), f6 = std::atof(arg.substr(c2 + 1, c3 - c2 - 1).c_str());
      if (!(f4 >= 0 && f6 >= 0 && f4 + f6 <= 1.0 + 1e-9)) {
        std::fprintf(stderr, "bench_gemm: --mix fractions must be >= 0 with F4 + F6 <= 1, got '%s'\n", arg.c_str());
        return 2;
      }
      mix_names.push_back(arg.substr(0, c1));
      mixes.push_back({mix_names.back().c_str(), f4, f6, tail == "e2m3"});
    }
    else if (!std::strcmp(argv[i], "--kernels") && i + 1 < argc) {
      for (char* t = std::strtok(argv[++i], ","); t; t = std::strtok(nullptr, ",")) kernel_list.push_back(std::atoi(t));
    }
    else {
      std::fprintf(stderr,
                   "usage: bench_gemm [--quick] [--small] [--json FILE] [--reps N] [--only LAYER] [--m M] [--kernels V,V,..]\n"
                   "                  [--model llama3.1-8b|llama3.1-70b|qwen2.5-7b|qwen2.5-32b] [--mix NAME:F4:F6[:e2m3]]\n"
                   "                  [--no-default-mixes]\n");
      return 2;
    }
  }
  if (!default_mixes) mixes.erase(mixes.begin(), mixes.begin() + 3);
  if (mixes.empty()) {
    std::fprintf(stderr, "bench_gemm: --no-default-mixes needs at least one --mix\n");
    return 2;
  }
  for (int v : kernel_list)
    if (!cuda::is_gemv_prepared_version_kernel(v) && (v < -1 - cuda::mx_mixed_gemv_versions() || v > cuda::mx_mixed_gemm_versions())) {
      std::fprintf(stderr, "bench_gemm: --kernels: no GEMM version %d (0..%d) or decode version %d (-1..%d)\n", v,
                   cuda::mx_mixed_gemm_versions(), -1 - v, -1 - cuda::mx_mixed_gemv_versions());
      return 2;
    }
  if (no_gpu("bench_gemm")) return 0;
  const GpuContext gpu;
  const cudaDeviceProp& prop = gpu.prop;
  const size_t l2 = gpu.l2;
  const cudaStream_t stream = gpu.stream;
  const Timer timer{reps, stream};
  nlohmann::json rows = nlohmann::json::array();
  Rng g;

  // ---- ceiling: device-to-device copy (bytes read + written) ----------------------------------
  const size_t copy_bytes = size_t{1} << 30;
  void *c0, *c1;
  CK(cudaMalloc(&c0, copy_bytes));
  CK(cudaMalloc(&c1, copy_bytes));
  CK(cudaMemset(c0, 0x3C, copy_bytes));
  const double copy_us = timer([&](int) { CK(cudaMemcpyAsync(c1, c0, copy_bytes, cudaMemcpyDeviceToDevice, stream)); });
  const double copy_gbs = 2.0 * static_cast<double>(copy_bytes) / copy_us * 1e-3;
  CK(cudaFree(c0));
  CK(cudaFree(c1));
  std::printf("device: %s, %d SMs, L2 %zu MB; d2d copy %.0f GB/s (read+write)\n", prop.name, prop.multiProcessorCount,
              l2 >> 20, copy_gbs);
  rows.push_back({{"kind", "copy"}, {"gbs", copy_gbs}, {"bytes", copy_bytes}, {"us", copy_us}});

  const cublasHandle_t blas = gpu.blas;

  const std::vector<Shape> shapes = model_shapes(model);
  if (shapes.empty()) {
    std::fprintf(stderr, "bench_gemm: unknown --model '%s' (llama3.1-8b, llama3.1-70b, qwen2.5-7b, qwen2.5-32b)\n", model.c_str());
    return 2;
  }
  std::printf("model shapes: %s\n", model.c_str());
  rows.push_back({{"kind", "config"}, {"model", model}});
  std::vector<int64_t> Ms = {1, 16, 64, 256, 1024, 4096, 8192};
  if (quick) Ms = {1, 16, 1024, 8192};
  if (small) Ms = {1, 2, 4, 8, 16, 1024, 8192};
  if (only_m > 0) Ms = {only_m};
  // --small: above 16 rows only the quantize kernels run.
  const auto quantize_only = [&](int64_t M) { return small && M > 16; };

  std::printf("\n| layer | M | N | K | cuBLAS bf16 us | cuBLASLt fp8 us | ours: mix kernel | us | TFLOP/s | GB/s | x bf16 | x fp8 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Shape& sh : shapes) {
    if (!only.empty() && only != sh.name) continue;
    const int64_t N = sh.N, K = sh.K;
    // Baseline weights, rotated.
    const size_t wb16 = static_cast<size_t>(N * K) * 2, wb8 = static_cast<size_t>(N * K);
    const int r16 = copies_for(wb16, l2), r8 = copies_for(wb8, l2);
    std::vector<uint8_t*> w16, w8;
    for (int i = 0; i < r16; ++i) {
      // bf16 random: random sign/mantissa, exponent near 1.0 (0x3F00..0x3FFF | sign)
      std::vector<uint16_t> h(static_cast<size_t>(N * K));
      for (auto& v : h) v = static_cast<uint16_t>(0x3E00u | (g.next() & 0x81FFu));
      uint8_t* d;
      CK(cudaMalloc(&d, wb16));
      CK(cudaMemcpy(d, h.data(), wb16, cudaMemcpyHostToDevice));
      w16.push_back(d);
      if (i > 0) break;  // host generation is slow: further copies are device copies of the first
    }
    while (static_cast<int>(w16.size()) < r16) {
      uint8_t* d;
      CK(cudaMalloc(&d, wb16));
      CK(cudaMemcpy(d, w16[w16.size() % 2], wb16, cudaMemcpyDeviceToDevice));
      w16.push_back(d);
    }
    for (int i = 0; i < r8; ++i) w8.push_back(device_random_bytes(wb8, g, true));
    // Mixed weights, rotated, per mix.
    std::vector<std::vector<std::unique_ptr<DevMixed>>> wmix(std::size(mixes));
    for (size_t mi = 0; mi < std::size(mixes); ++mi) {
      const auto s = make_split(mixes[mi], K);
      const int rm = copies_for(mixed_bytes(s, N), l2);
      for (int i = 0; i < rm; ++i) wmix[mi].push_back(std::make_unique<DevMixed>(s, N, g));
    }
    // The same weights prepared once for the decode path v10 (mx_prepare_gemv_weights), as an engine would at load time.
    std::vector<std::vector<std::unique_ptr<DevMixed>>> wprep(std::size(mixes));
    for (size_t mi = 0; mi < std::size(mixes); ++mi)
      for (const auto& w : wmix[mi]) {
        wprep[mi].push_back(std::make_unique<DevMixed>(w->view.split, N, g));
        cuda::mx_prepare_gemv_weights(w->view, wprep[mi].back()->out, stream);
      }
    CK(cudaStreamSynchronize(stream));

    for (int64_t M : Ms) {
      const size_t xb16 = static_cast<size_t>(M * K) * 2;
      std::vector<uint16_t> hx(static_cast<size_t>(M * K));
      for (auto& v : hx) v = static_cast<uint16_t>(0x3E00u | (g.next() & 0x81FFu));
      uint8_t *x16, *y16;
      CK(cudaMalloc(&x16, xb16));
      CK(cudaMemcpy(x16, hx.data(), xb16, cudaMemcpyHostToDevice));
      uint8_t* x8 = device_random_bytes(static_cast<size_t>(M * K), g, true);
      CK(cudaMalloc(&y16, static_cast<size_t>(M * N) * 2));
      const double flop = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);

      // The baselines: cuBLAS BF16, cuBLASLt FP8 E4M3 with per-tensor scales.
      const double t16 = quantize_only(M) ? NAN : timer([&](int i) {
        cublas_bf16_gemm(blas, M, N, K, w16[static_cast<size_t>(i) % w16.size()], x16, y16);
      });
      double t8 = NAN;
      {
        const Fp8Gemm fp8(gpu.lt, M, N, K, gpu.d_one, gpu.ws, gpu.ws_bytes);
        if (!quantize_only(M) && fp8.ok)
          t8 = timer([&](int i) { fp8.run(w8[static_cast<size_t>(i) % w8.size()], x8, y16, stream); });
      }
      rows.push_back({{"kind", "gemm"}, {"layer", sh.name}, {"M", M}, {"N", N}, {"K", K}, {"impl", "cublas_bf16"},
                      {"us", t16}, {"tflops", flop / t16 * 1e-6}});
      rows.push_back({{"kind", "gemm"}, {"layer", sh.name}, {"M", M}, {"N", N}, {"K", K}, {"impl", "cublaslt_fp8_e4m3"},
                      {"us", t8}, {"tflops", flop / t8 * 1e-6}});

      for (size_t mi = 0; mi < std::size(mixes); ++mi) {
        const auto s = make_split(mixes[mi], K);
        // Activations: quantize the bf16 x on the GPU (also timed below for the big shapes).
        DevMixed xq(s, M, g);
        int32_t* d_perm;
        {
          std::vector<int32_t> perm = mx::identity_permutation(K);
          for (int64_t j = K - 1; j > 0; --j) std::swap(perm[static_cast<size_t>(j)], perm[g.next() % static_cast<uint64_t>(j + 1)]);
          CK(cudaMalloc(&d_perm, static_cast<size_t>(K) * 4));
          CK(cudaMemcpy(d_perm, perm.data(), static_cast<size_t>(K) * 4, cudaMemcpyHostToDevice));
        }
        cuda::mx_reorder_quantize(reinterpret_cast<const uint16_t*>(x16), M, d_perm, xq.out, mx::ScaleRule::ocp,
                                  mx::Rounding::even, stream);
        if (M >= 1024 && !std::strcmp(mixes[mi].name, "70/20/10")) {
          for (int qv : {0, 1, 3, 4, 5, 6, 7, 8, 9, 11, 12}) {
            cuda::set_reorder_quantize_version(qv);
            const double tq = timer([&](int) {
              cuda::mx_reorder_quantize(reinterpret_cast<const uint16_t*>(x16), M, d_perm, xq.out, mx::ScaleRule::ocp,
                                        mx::Rounding::even, stream);
            });
            // Fewest bytes: x read once, codes and scales written once (perm reads hit the cache).
            const double qbytes = static_cast<double>(xb16 + mixed_bytes(s, M));
            std::string qname = qv == 0 ? "default" : "v";
            if (qv) qname += std::to_string(qv);
            rows.push_back({{"kind", "quantize"}, {"layer", sh.name}, {"M", M}, {"K", K}, {"mix", mixes[mi].name},
                            {"kernel", qname}, {"us", tq}, {"gbs", qbytes / tq * 1e-3},
                            {"frac_of_copy", qbytes / tq * 1e-3 / copy_gbs}});
            std::printf("| quantize %s | %lld | | %lld | | | %s reorder+quantize %s | %.1f | | %.0f | %.2f of copy | |\n",
                        sh.name, static_cast<long long>(M), static_cast<long long>(K), mixes[mi].name, qname.c_str(), tq,
                        qbytes / tq * 1e-3, qbytes / tq * 1e-3 / copy_gbs);
          }
          cuda::set_reorder_quantize_version(0);
        }
        if (quantize_only(M)) {
          CK(cudaFree(d_perm));
          continue;
        }
        std::vector<int> kernels = {0};
        if (M <= 16)  // decode path: its default (-1), then every version v (-1 - v)
          for (int v = 0; v <= cuda::mx_mixed_gemv_versions(); ++v) kernels.push_back(-1 - v);
        if (M <= 16 && !kernel_list.empty()) {  // --kernels' negative entries: those decode versions only
          kernels = {0};
          for (int k : kernel_list)
            if (k < 0) kernels.push_back(k);
        }
        // --kernels naming prepared decode versions (-110 .. -121): those alone (with kernel 0, e.g. for ncu)
        const bool listed_prepared = std::any_of(kernel_list.begin(), kernel_list.end(), cuda::is_gemv_prepared_version_kernel);
        // (The "default" row is mx_mixed_gemm's dispatch on weights NOT prepared: at M <= 16 the unprepared
        // decode kernels v1-v9; the prepared path's default is its newest version's row, v20.)
        if (M <= 16 && !listed_prepared) {  // the prepared decode path's older versions
          kernels.push_back(cuda::kGemvPreparedV10Kernel);
          kernels.push_back(cuda::kGemvPreparedV11Kernel);
          kernels.push_back(cuda::kGemvPreparedV12Kernel);
        }
        if (!std::strcmp(mixes[mi].name, "70/20/10") && !quick && M >= 64) kernels = M <= 256 ? std::vector<int>{1, 2, 3, 4, 5} : std::vector<int>{1, 2, 4, 5};
        // FP8 tensor-core versions (6..) on every mix, quick runs included.
        if (M > 16)
          for (int v = 6; v <= cuda::mx_mixed_gemm_versions(); ++v) kernels.push_back(v);
        if (M > 16 && !kernel_list.empty()) {
          kernels.clear();
          for (int k : kernel_list)
            if (k >= 0) kernels.push_back(k);
        }
        if (M <= 16 && !listed_prepared) {
          kernels.push_back(cuda::kGemvPreparedV13Kernel);
          kernels.push_back(cuda::kGemvPreparedV14Kernel);
          kernels.push_back(cuda::kGemvPreparedV17Kernel);
          kernels.push_back(cuda::kGemvPreparedV19Kernel);
          kernels.push_back(cuda::kGemvPreparedV20Kernel);
          kernels.push_back(cuda::kGemvPreparedV21Kernel);
          kernels.push_back(cuda::kGemvPreparedV22Kernel);
        }
        if (M > 16 && M <= 128) {  // the prepared decode path beyond its range: 16 / 64 rows per launch
          kernels.push_back(cuda::kGemvPreparedV12Kernel);
          kernels.push_back(cuda::kGemvPreparedV13Kernel);
        }
        if (M > 16) kernels.push_back(cuda::kGemmPreparedKernel);  // the prepared weights' default dispatch
        if (M > 16 && std::find(kernels.begin(), kernels.end(), 18) != kernels.end())
          kernels.push_back(cuda::kGemmPreparedV18Kernel);  // v18 reading the prepared layout
        for (int kernel : kernels) {
          const auto& wv = wmix[mi];
          const double t = timer([&](int i) {
            const auto& w = wv[static_cast<size_t>(i) % wv.size()]->view;
            if (cuda::is_gemv_prepared_version_kernel(kernel))
              cuda::mx_mixed_gemv_prepared(xq.view, wprep[mi][static_cast<size_t>(i) % wv.size()]->view, y16,
                                           cuda::OutType::bf16, stream, -kernel - 100);
            else if (kernel == cuda::kGemmPreparedKernel || kernel == cuda::kGemmPreparedV18Kernel)
              cuda::mx_mixed_gemm_prepared(xq.view, wprep[mi][static_cast<size_t>(i) % wv.size()]->view, y16,
                                           cuda::OutType::bf16, stream, kernel == cuda::kGemmPreparedV18Kernel ? 18 : 0);
            else if (kernel < 0) cuda::mx_mixed_gemv(xq.view, w, y16, cuda::OutType::bf16, stream, -kernel - 1);
            else cuda::mx_mixed_gemm(xq.view, w, y16, cuda::OutType::bf16, kernel, stream);
          });
          const double bytes = static_cast<double>(mixed_bytes(s, N) + mixed_bytes(s, M) + static_cast<size_t>(M * N) * 2);
          const double read_gbs = static_cast<double>(mixed_bytes(s, N) + mixed_bytes(s, M)) / t * 1e-3;
          std::string kname = kernel == -1 ? "gemv default" : kernel < 0 ? "gemv v" : cuda::mx_mixed_gemm_version_name(kernel);
          if (kernel == cuda::kGemvPreparedV10Kernel) kname = "gemv v10 prepared weights";
          else if (kernel == cuda::kGemvPreparedV11Kernel) kname = "gemv v11 prepared weights (int8 FP4)";
          else if (kernel == cuda::kGemvPreparedV12Kernel) kname = "gemv v12 prepared weights (v11 + PDL)";
          else if (kernel == cuda::kGemvPreparedV13Kernel) kname = "gemv v13 prepared weights (row groups per CTA, bf16 FP4)";
          else if (kernel == cuda::kGemvPreparedV14Kernel) kname = "gemv v14 prepared weights (v13 + one-token pre-pass)";
          else if (kernel == cuda::kGemvPreparedV17Kernel) kname = "gemv v17 prepared weights (v14, M = 1 warps per row group by grid)";
          else if (kernel == cuda::kGemvPreparedV19Kernel) kname = "gemv v19 prepared weights (v17, M = 2-4 tokens decoded per CTA)";
          else if (kernel == cuda::kGemvPreparedV20Kernel) kname = "gemv v20 prepared weights (v19, M = 9-16 tile shape by grid)";
          else if (kernel == cuda::kGemvPreparedV21Kernel) kname = "gemv v21 prepared weights (v20 as a dependent launch: back-to-back calls overlap, see bench_decode_linear)";
          else if (kernel == cuda::kGemvPreparedV22Kernel) kname = "gemv v22 prepared weights (v21 on its own tile form; without the quantizer's activations, see bench_decode_linear)";
          else if (kernel == cuda::kGemmPreparedKernel) kname = "prepared weights (default dispatch)";
          else if (kernel == cuda::kGemmPreparedV18Kernel) kname = "v18 on prepared weights";
          else if (kernel < -1) kname += std::to_string(-kernel - 1);
          rows.push_back({{"kind", "gemm"}, {"layer", sh.name}, {"M", M}, {"N", N}, {"K", K}, {"impl", "micromix"},
                          {"mix", mixes[mi].name}, {"kernel", kname}, {"avg_bits", s.average_bits()}, {"us", t},
                          {"tflops", flop / t * 1e-6}, {"gbs", bytes / t * 1e-3}, {"read_gbs", read_gbs},
                          {"read_frac_of_copy", read_gbs / copy_gbs}, {"x_bf16", t16 / t}, {"x_fp8", t8 / t}});
          std::printf("| %s | %lld | %lld | %lld | %.1f | %.1f | %s %s | %.1f | %.1f | %.0f (read %.2f of copy) | %.2f | %.2f |\n",
                      sh.name, static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), t16, t8,
                      mixes[mi].name, kname.c_str(), t, flop / t * 1e-6, bytes / t * 1e-3, read_gbs / copy_gbs, t16 / t,
                      t8 / t);
        }
        CK(cudaFree(d_perm));
      }
      CK(cudaFree(x16));
      CK(cudaFree(x8));
      CK(cudaFree(y16));
      std::fflush(stdout);
    }
    for (auto* p : w16) CK(cudaFree(p));
    for (auto* p : w8) CK(cudaFree(p));
  }
  nlohmann::json doc = {{"device", prop.name}, {"sms", prop.multiProcessorCount}, {"l2_bytes", l2},
                        {"copy_gbs", copy_gbs}, {"rows", rows}};
  if (!json_path.empty()) {
    std::ofstream(json_path) << doc.dump(1) << "\n";
    std::printf("\nwrote %s\n", json_path.c_str());
  }
  return 0;
}

#else
int main() {
  std::printf("bench_gemm: micromix was built without CUDA\n");
  return 0;
}
#endif
