// Pieces shared by the GEMM benchmarks (bench_gemm, bench_decode_linear): random device data, the
// event timer, layer shapes and mixes, random mixed MX matrices on the device. Host code; include
// after <cuda_runtime.h> and bench_cuda_check.hpp.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <cublasLt.h>
#include <cublas_v2.h>

#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/mx_mixed.hpp"

namespace bench {

using namespace micromix;
namespace cuda = micromix::cuda;

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

inline uint8_t* device_random_bytes(size_t n, Rng& g, bool fp8_no_nan) {
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
inline uint8_t* device_random_scales(size_t n, Rng& g) {
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

inline mx::MixedSplit make_split(const Mix& m, int64_t K) {
  const int64_t blocks = K / 32;
  mx::MixedSplit s;
  s.n4 = static_cast<int64_t>(std::llround(m.f4 * static_cast<double>(blocks))) * 32;
  s.n6 = static_cast<int64_t>(std::llround(m.f6 * static_cast<double>(blocks))) * 32;
  s.n6 = std::min(s.n6, K - s.n4);
  s.n8 = K - s.n4 - s.n6;
  if (m.e2m3) s.fp6 = mx::ElemFormat::fp6_e2m3;
  return s;
}

inline size_t mixed_bytes(const mx::MixedSplit& s, int64_t rows) {
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

inline int copies_for(size_t bytes_per_copy, size_t l2) {
  return static_cast<int>(std::clamp<size_t>((2 * l2 + bytes_per_copy) / std::max<size_t>(bytes_per_copy, 1), 1, 32));
}

// True (after saying so) when this machine has no GPU micromix's kernels run on: benchmarks exit 0.
inline bool no_gpu(const char* bench) {
  if (cuda::available()) return false;
  std::printf("%s: no GPU: %s\n", bench, cuda::describe().c_str());
  return true;
}

// One benchmark process's GPU side: device 0's properties, a stream, the cuBLAS / cuBLASLt handles on
// it, a 64 MiB cuBLASLt workspace and a device float 1.0 (the FP8 baseline's scales).
struct GpuContext {
  cudaDeviceProp prop{};
  size_t l2 = 0;
  cudaStream_t stream{};
  cublasHandle_t blas{};
  cublasLtHandle_t lt{};
  size_t ws_bytes = size_t{64} << 20;
  void* ws = nullptr;
  float* d_one = nullptr;
  GpuContext() {
    CK(cudaGetDeviceProperties(&prop, 0));
    l2 = static_cast<size_t>(prop.l2CacheSize);
    CK(cudaStreamCreate(&stream));
    CKB(cublasCreate(&blas));
    CKB(cublasSetStream(blas, stream));
    CKB(cublasLtCreate(&lt));
    CK(cudaMalloc(&ws, ws_bytes));
    CK(cudaMalloc(&d_one, sizeof(float)));
    const float one = 1.0f;
    CK(cudaMemcpy(d_one, &one, sizeof(float), cudaMemcpyHostToDevice));
  }
  ~GpuContext() {
    cublasDestroy(blas);
    cublasLtDestroy(lt);
    cudaFree(ws);
    cudaFree(d_one);
    cudaStreamDestroy(stream);
  }
  GpuContext(const GpuContext&) = delete;
  GpuContext& operator=(const GpuContext&) = delete;
};

// The baselines' GEMMs, y (M, N) bf16 = x (M, K) . W (N, K)^T with FP32 accumulation (column-major
// y^T = W^T . x^T, TN): cuBLAS BF16, and cuBLASLt FP8 E4M3 x E4M3 with per-tensor scales (device
// pointers; the TensorRT-FP8 stand-in). Fp8Gemm::ok is false where cuBLASLt offers no algorithm.
inline void cublas_bf16_gemm(cublasHandle_t blas, int64_t M, int64_t N, int64_t K, const void* w, const void* x, void* y) {
  const float one = 1.0f, zero = 0.0f;
  CKB(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &one, w,
                   CUDA_R_16BF, static_cast<int>(K), x, CUDA_R_16BF, static_cast<int>(K), &zero, y, CUDA_R_16BF,
                   static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
struct Fp8Gemm {
  cublasLtHandle_t lt;
  void* ws;
  size_t ws_bytes;
  cublasLtMatmulDesc_t op{};
  cublasLtMatrixLayout_t la{}, lb{}, lc{};
  cublasLtMatmulHeuristicResult_t res{};
  bool ok = false;
  // d_scale: one float on the device, used for both operands' scales.
  Fp8Gemm(cublasLtHandle_t h, int64_t M, int64_t N, int64_t K, const float* d_scale, void* workspace, size_t workspace_bytes)
      : lt(h), ws(workspace), ws_bytes(workspace_bytes) {
    CKB(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &d_scale, sizeof d_scale));
    CKB(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &d_scale, sizeof d_scale));
    CKB(cublasLtMatrixLayoutCreate(&la, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(N), K));
    CKB(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8F_E4M3, static_cast<uint64_t>(K), static_cast<uint64_t>(M), K));
    CKB(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, static_cast<uint64_t>(N), static_cast<uint64_t>(M), N));
    cublasLtMatmulPreference_t pref;
    CKB(cublasLtMatmulPreferenceCreate(&pref));
    CKB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
    int found = 0;
    ok = cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found) == CUBLAS_STATUS_SUCCESS && found > 0;
    cublasLtMatmulPreferenceDestroy(pref);
  }
  void run(const void* w, const void* x, void* y, cudaStream_t stream) const {
    const float one = 1.0f, zero = 0.0f;
    CKB(cublasLtMatmul(lt, op, &one, w, la, x, lb, &zero, y, lc, y, lc, &res.algo, ws, ws_bytes, stream));
  }
  ~Fp8Gemm() {
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
  }
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;
};

// Layer shapes (N, K) from each model's config: q|k|v, o, gate|up, down; empty for an unknown model.
inline std::vector<Shape> model_shapes(const std::string& model) {
  if (model == "llama3.1-8b") return {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};
  if (model == "llama3.1-70b") return {{"qkv", 10240, 8192}, {"o", 8192, 8192}, {"gate_up", 57344, 8192}, {"down", 8192, 28672}};
  if (model == "qwen2.5-7b") return {{"qkv", 4608, 3584}, {"o", 3584, 3584}, {"gate_up", 37888, 3584}, {"down", 3584, 18944}};
  if (model == "qwen2.5-32b") return {{"qkv", 7168, 5120}, {"o", 5120, 5120}, {"gate_up", 55296, 5120}, {"down", 5120, 27648}};
  return {};
}

}  // namespace bench
