// GPU ops on mixed FP4 | FP6 | FP8 MX matrices (see mx_mixed.hpp): the fused reorder + quantize of
// activations, the mixed GEMM and the small-M decode path. No CUDA headers needed; streams are
// passed as void* (a cudaStream_t). All ops are asynchronous on their stream, without hidden syncs.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "micromix/mx_mixed.hpp"

namespace micromix::cuda {

// Device pointers of one mixed matrix (rows, cols), same layout as mx::MxMixedMatrix:
// codes[s] (rows, packed_row_bytes(format(s), count(s))), scales[s] (rows, count(s) / 32).
struct MxMixedDevice {
  int64_t rows = 0;
  mx::MixedSplit split;
  const uint8_t* codes[mx::kSegments] = {};
  const uint8_t* scales[mx::kSegments] = {};
};
struct MxMixedDeviceOut {
  int64_t rows = 0;
  mx::MixedSplit split;
  uint8_t* codes[mx::kSegments] = {};
  uint8_t* scales[mx::kSegments] = {};
};

// Reorder + quantize: x (M, K) bf16 bits row-major, perm (K) int32 on the device (permuted column
// j takes x[:, perm[j]]) -> out's segments. Bit-identical to mx::quantize_mixed on the float values
// of x. One pass: each row is read once and each code and scale written once.
// NOTES: perm is not validated on the device (host code validates it once at load time).
void mx_reorder_quantize(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                         mx::ScaleRule rule, mx::Rounding r, void* stream);

enum class OutType { bf16, f32 };

// Mixed GEMM: y (M, N) = dequant(a) (M, K) . dequant(w) (N, K)^T with FP32 accumulation of all
// three segments in one launch, y written as bf16 (round to nearest even) or f32.
// a and w must share the split (the caller guarantees they share the permutation).
// version: 0 picks the library default for the shape (M <= 16: the decode path, mx_mixed_gemv);
// 1.. select a numbered GEMM kernel (see sm90_mx_mixed_gemm.cu). Numerics: every dequantized element is exact in bf16 unless its
// magnitude is below 2^-126 (scale codes near 0); the tensor cores flush such values to zero.
void mx_mixed_gemm(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, int version,
                   void* stream);
// Number of GEMM versions selectable by mx_mixed_gemm's version argument, and their names.
int mx_mixed_gemm_versions();
const char* mx_mixed_gemm_version_name(int version);

// Decode path for M <= 16: streams w once, dequantizes in registers, FP32 accumulation on CUDA
// cores. Same contract as mx_mixed_gemm. version: 0 default (the latest), 1.. a numbered kernel
// (see mx_gemv_decode.cu).
void mx_mixed_gemv(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, void* stream,
                   int version = 0);
int mx_mixed_gemv_versions();

// ---- host conveniences (tests, tools): copy to the device, run, copy back; synchronous ----------
// y (M, N) as float (out = f32) or bf16 bits widened to float (out = bf16). kernel: 0 GEMM default,
// v >= 1 GEMM version v; -1 the decode path's default, -1 - v decode version v (-2: v1, -3: v2).
std::vector<float> mx_mixed_gemm_host(const mx::MxMixedMatrix& a, const mx::MxMixedMatrix& w, OutType out,
                                      int kernel);
// x (M, K) as bf16 bits -> mixed matrix with the same split and perm as `like` describes.
mx::MxMixedMatrix mx_reorder_quantize_host(std::span<const uint16_t> x, int64_t M, int64_t K,
                                           std::span<const int32_t> perm, const mx::MixedSplit& split,
                                           mx::ScaleRule rule, mx::Rounding r);

}  // namespace micromix::cuda
