// GEMM benchmark of the mixed MX kernels against cuBLAS BF16 and cuBLASLt FP8 E4M3 (per-tensor
// scales, the TensorRT-FP8 stand-in) in the same process, on Llama-3.1-8B layer shapes, plus the
// reorder+quantize kernel against a device-to-device copy. Plain main() (no Google Benchmark).
//
//   bench_gemm [--quick] [--small] [--json FILE] [--reps N] [--only LAYER] [--m M] [--kernels V,V,..]
//              [--model llama3.1-8b|llama3.1-70b|qwen2.5-7b|qwen2.5-32b] [--mix NAME:F4:F6[:e2m3]] [--no-default-mixes]
//   (--kernels: the mx_mixed_gemm versions timed for M > 16, 0 = the default dispatch; for M <= 16 its
//   negative entries -1 - v pick row-major decode versions v (-1: the default) and kGemvPrepared*Kernel
//   (-110 .. -120) prepared ones (then only those run; otherwise every prepared version runs); --model: the
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

namespace {

using namespace micromix;


struct Rng {  // xorshift64*: fast random bytes for big buffers
  uint64_t s = 0x9E3779B97F4A7C15ull;
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  float normalish() {  // Irwin-Hall(4), mean 0, var 1/3
    float a = 0;
    for (int i = 0; i < 4; ++i) a += static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    return (a - 2.0f) * 1.7320508f;
  }
};

uint8_t* device_random_bytes(size_t n, Rng& g, bool fp8_no_nan) {
  std::vector<uint8_t> h(n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = g.next();
    for (size_t j = 0; j < 8 && i + j < n; ++j) {
      uint8_t b = static_cast<uint8_t>(v >> (8 * j));
      if (fp8_no_nan && (b & 0x7F) == 0x7F) b ^= 1;
      h[i + j] = b;
    }
  }
  uint8_t* d = nullptr;
  CK(cudaMalloc(&d, n ? n : 1));
  if (n) CK(cudaMemcpy(d, h.data(), n, cudaMemcpyHostToDevice));
  return d;
}

// Realistic E8M0 scales for unit-range data: codes 116..131.
uint8_t* device_random_scales(size_t n, Rng& g) {
  std::vector<uint8_t> h(n);
  for (auto& b : h) b = static_cast<uint8_t>(116 + g.next() % 16);
  uint8_t* d = nullptr;
  CK(cudaMalloc(&d, n ? n : 1));
  if (n) CK(cudaMemcpy(d, h.data(), n, cudaMemcpyHostToDevice));
  return d;
}

struct Timer {
  int reps;
  cudaStream_t stream;
  // Median microseconds per launch; launch(i) runs the i-th call (rotate inputs by i).
  double operator()(const std::function<void(int)>& launch) const {
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    int idx = 0;
    for (int i = 0; i < 3; ++i) launch(idx++);
    CK(cudaEventRecord(e0, stream));
    launch(idx++);
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    const int inner = std::clamp(static_cast<int>(0.3 / std::max(ms, 1e-4f)), 1, 64);
    std::vector<double> ts;
    for (int r = 0; r < reps; ++r) {
      CK(cudaEventRecord(e0, stream));
      for (int j = 0; j < inner; ++j) launch(idx++);
      CK(cudaEventRecord(e1, stream));
      CK(cudaEventSynchronize(e1));
      CK(cudaEventElapsedTime(&ms, e0, e1));
      ts.push_back(1000.0 * ms / inner);
    }
    CK(cudaGetLastError());
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
  }
};

struct Shape {
  const char* name;
  int64_t N, K;
};

struct Mix {
  const char* name;
  double f4, f6;  // fractions of K; FP8 gets the rest
  bool e2m3 = false;  // MXFP6 as E2M3 (default E3M2)
};

mx::MixedSplit make_split(const Mix& m, int64_t K) {
  const int64_t blocks = K / 32;
  mx::MixedSplit s;
  s.n4 = static_cast<int64_t>(std::llround(m.f4 * static_cast<double>(blocks))) * 32;
  s.n6 = static_cast<int64_t>(std::llround(m.f6 * static_cast<double>(blocks))) * 32;
  s.n6 = std::min(s.n6, K - s.n4);
  s.n8 = K - s.n4 - s.n6;
  if (m.e2m3) s.fp6 = mx::ElemFormat::fp6_e2m3;
  return s;
}

size_t mixed_bytes(const mx::MixedSplit& s, int64_t rows) {
  size_t b = 0;
  for (int i = 0; i < mx::kSegments; ++i)
    b += static_cast<size_t>(rows) * (mx::packed_row_bytes(s.format(i), s.count(i)) + static_cast<size_t>(s.count(i) / 32));
  return b;
}

// A mixed matrix with random codes and scales on the device (owning).
struct DevMixed {
  std::vector<uint8_t*> bufs;
  cuda::MxMixedDevice view;
  cuda::MxMixedDeviceOut out;
  DevMixed(const mx::MixedSplit& s, int64_t rows, Rng& g) {
    view.rows = out.rows = rows;
    view.split = out.split = s;
    for (int i = 0; i < mx::kSegments; ++i) {
      uint8_t* c = device_random_bytes(static_cast<size_t>(rows) * mx::packed_row_bytes(s.format(i), s.count(i)), g, i == 2);
      uint8_t* sc = device_random_scales(static_cast<size_t>(rows * (s.count(i) / 32)), g);
      bufs.push_back(c);
      bufs.push_back(sc);
      view.codes[i] = out.codes[i] = c;
      view.scales[i] = out.scales[i] = sc;
    }
  }
  ~DevMixed() {
    for (auto* b : bufs) cudaFree(b);
  }
  DevMixed(const DevMixed&) = delete;
  DevMixed& operator=(const DevMixed&) = delete;
};

int copies_for(size_t bytes_per_copy, size_t l2) {
  return static_cast<int>(std::clamp<size_t>((2 * l2 + bytes_per_copy) / std::max<size_t>(bytes_per_copy, 1), 1, 32));
}

}  // namespace

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
  if (!cuda::available()) {
    std::printf("bench_gemm: no GPU: %s\n", cuda::describe().c_str());
    return 0;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  const size_t l2 = static_cast<size_t>(prop.l2CacheSize);
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
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

  cublasHandle_t blas;
  CKB(cublasCreate(&blas));
  CKB(cublasSetStream(blas, stream));
  cublasLtHandle_t lt;
  CKB(cublasLtCreate(&lt));
  const size_t ws_bytes = size_t{64} << 20;
  void* ws;
  CK(cudaMalloc(&ws, ws_bytes));
  float* d_one;
  CK(cudaMalloc(&d_one, sizeof(float)));
  const float one = 1.0f, zero = 0.0f;
  CK(cudaMemcpy(d_one, &one, sizeof(float), cudaMemcpyHostToDevice));

  // Layer shapes (N, K) from each model's config: q|k|v, o, gate|up, down.
  std::vector<Shape> shapes;
  if (model == "llama3.1-8b") shapes = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};
  else if (model == "llama3.1-70b") shapes = {{"qkv", 10240, 8192}, {"o", 8192, 8192}, {"gate_up", 57344, 8192}, {"down", 8192, 28672}};
  else if (model == "qwen2.5-7b") shapes = {{"qkv", 4608, 3584}, {"o", 3584, 3584}, {"gate_up", 37888, 3584}, {"down", 3584, 18944}};
  else if (model == "qwen2.5-32b") shapes = {{"qkv", 7168, 5120}, {"o", 5120, 5120}, {"gate_up", 55296, 5120}, {"down", 5120, 27648}};
  else {
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

      // cuBLAS bf16: column-major y^T (N, M) = W (K, N)^T . x^T (K, M)
      const double t16 = quantize_only(M) ? NAN : timer([&](int i) {
        CKB(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
                         &one, w16[static_cast<size_t>(i) % w16.size()], CUDA_R_16BF, static_cast<int>(K), x16,
                         CUDA_R_16BF, static_cast<int>(K), &zero, y16, CUDA_R_16BF, static_cast<int>(N),
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      });
      // cuBLASLt fp8 e4m3 x e4m3 -> bf16 with per-tensor scales (device pointers), TN layout.
      double t8 = NAN;
      {
        cublasLtMatmulDesc_t op;
        CKB(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &d_one, sizeof d_one));
        CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &d_one, sizeof d_one));
        cublasLtMatrixLayout_t la, lb, lc;
        CKB(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K));
        CKB(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K));
        CKB(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, static_cast<uint64_t>(N), static_cast<uint64_t>(M), N));
        cublasLtMatmulPreference_t pref;
        CKB(cublasLtMatmulPreferenceCreate(&pref));
        CKB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
        cublasLtMatmulHeuristicResult_t res{};
        int found = 0;
        if (!quantize_only(M) &&
            cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found) == CUBLAS_STATUS_SUCCESS && found > 0)
          t8 = timer([&](int i) {
            CKB(cublasLtMatmul(lt, op, &one, w8[static_cast<size_t>(i) % w8.size()], la, x8, lb, &zero, y16, lc, y16, lc,
                               &res.algo, ws, ws_bytes, stream));
          });
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(la);
        cublasLtMatrixLayoutDestroy(lb);
        cublasLtMatrixLayoutDestroy(lc);
        cublasLtMatmulDescDestroy(op);
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
          for (int qv : {0, 1, 3, 4, 5, 6, 7, 8, 9, 11}) {
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
        // --kernels naming prepared decode versions (-110 .. -120): those alone (with kernel 0, e.g. for ncu)
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
  cublasDestroy(blas);
  cublasLtDestroy(lt);
  return 0;
}

#else
int main() {
  std::printf("bench_gemm: micromix was built without CUDA\n");
  return 0;
}
#endif
