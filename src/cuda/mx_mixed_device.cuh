// Device helpers shared by the mixed MX kernels (internal): format parameters, element decoding,
// E8M0 scales, and the segment bookkeeping of a mixed matrix.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/common.cuh"
#include "micromix/cuda_mx.hpp"

namespace micromix::cuda::mixed {

// Element format parameters (mirror of mx::ElemInfo for the three mixed formats).
struct Fmt {
  int bits, ebits, mbits, bias, emax, max_code;
  float max_normal;
};

inline Fmt fmt_of(mx::ElemFormat f) {
  const mx::ElemInfo& I = mx::info(f);
  return Fmt{I.bits, I.ebits, I.mbits, I.bias, I.emax, I.max_code, I.max_normal};
}

// Offsets of the three decode tables in a shared 336-entry LUT: FP4 (16) | FP6 (64) | FP8 (256).
inline constexpr int kLutFp4 = 0, kLutFp6 = 16, kLutFp8 = 80, kLutSize = 336;

// Value of an element code by the format definition (E4M3: S.1111.111 is NaN).
__device__ inline float decode_formula(int bits, int ebits, int mbits, int bias, bool e4m3, unsigned c) {
  const bool neg = (c >> (bits - 1)) & 1u;
  const unsigned exp = (c >> mbits) & ((1u << ebits) - 1u);
  const unsigned man = c & ((1u << mbits) - 1u);
  if (e4m3 && exp == 15 && man == 7) return __int_as_float(0x7fc00000);
  const float v = exp == 0 ? ldexpf(static_cast<float>(man), 1 - bias - mbits)
                           : ldexpf(static_cast<float>((1u << mbits) + man), static_cast<int>(exp) - bias - mbits);
  return neg ? -v : v;
}

// Fills lut[0..336) cooperatively; fp6_e2m3 selects the FP6 variant. Caller syncs afterwards.
__device__ inline void fill_lut(float* lut, bool fp6_e2m3) {
  for (int i = threadIdx.x; i < kLutSize; i += blockDim.x) {
    float v;
    if (i < kLutFp6) v = decode_formula(4, 2, 1, 1, false, i);
    else if (i < kLutFp8) v = fp6_e2m3 ? decode_formula(6, 2, 3, 1, false, i - kLutFp6) : decode_formula(6, 3, 2, 3, false, i - kLutFp6);
    else v = decode_formula(8, 4, 3, 7, true, i - kLutFp8);
    lut[i] = v;
  }
}

// 2^(code - 127) as float; NaN for 0xFF; code 0 is the subnormal 2^-127.
// Branch-free (two selects): ptxas turned the nested conditional into divergent branches per call.
__device__ __forceinline__ float scale_f32(unsigned s) {
  uint32_t bits = s << 23;                 // 2^(s - 127) for s in 1..254; 0xFF -> +Inf bits
  bits = s == 0 ? 0x00400000u : bits;      // 2^-127, a subnormal
  bits |= s == 0xFFu ? 0x00400000u : 0u;   // +Inf bits -> quiet NaN 0x7FC00000
  return __uint_as_float(bits);
}

// Index of the (16-row group G, MX block b) run in the prepared weight layout (mx_prepare_gemv_weights;
// runs of 16 * bytes-per-block codes and 16 scale bytes): groups come in super-groups of 8 (128
// rows), block-major inside each: one block of a super-group is one contiguous run (the prefill
// GEMM's tile, one bulk copy), and a super-group's blocks follow each other closely (the decode
// path walks them). nb: blocks per row of the segment; groups = N / 16 (the last super-group may
// hold fewer than 8).
// The index is sg0 * nb + b * size + gi for every segment: PreparedPlace holds the three terms of one
// row group, so that a kernel computes them once (32-bit: groups < 2^31) for all its segments.
struct PreparedPlace {
  int sg0;   // first row group of G's super-group
  int size;  // row groups in that super-group (8; fewer in a last partial one)
  int gi;    // G - sg0
  __host__ __device__ int64_t index(int64_t b, int64_t nb) const { return sg0 * nb + b * size + gi; }
};
__host__ __device__ inline PreparedPlace prepared_place(int64_t G, int64_t groups) {
  const int g = static_cast<int>(G), sg0 = g & ~7, rest = static_cast<int>(groups) - sg0;
  return {sg0, rest < 8 ? rest : 8, g - sg0};
}
__host__ __device__ inline int64_t prepared_index(int64_t G, int64_t b, int64_t nb, int64_t groups) {
  return prepared_place(G, groups).index(b, nb);
}

// The segments of a mixed matrix as the kernels read them: per segment the code and scale
// pointers, bytes per row, blocks per row; and the first global K block of each segment.
struct SegView {
  const uint8_t* codes[3];
  const uint8_t* scales[3];
  int64_t row_bytes[3];
  int64_t blocks[3];  // blocks per row of the segment (count / 32)
};

inline SegView seg_view(const MxMixedDevice& m) {
  SegView v{};
  for (int s = 0; s < mx::kSegments; ++s) {
    v.codes[s] = m.codes[s];
    v.scales[s] = m.scales[s];
    v.row_bytes[s] = static_cast<int64_t>(mx::packed_row_bytes(m.split.format(s), m.split.count(s)));
    v.blocks[s] = m.split.count(s) / mx::kBlock;
  }
  return v;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether each non-empty segment's codes start on a multiple of fp4 / fp6 / fp8 bytes (powers of
// two); rows and whole MX blocks keep that alignment (a block is 16 / 24 / 32 bytes).
inline bool codes_aligned(const SegView& v, uintptr_t fp4, uintptr_t fp6, uintptr_t fp8) {
  const uintptr_t need[3] = {fp4, fp6, fp8};
  for (int s = 0; s < 3; ++s)
    if (v.blocks[s] && (reinterpret_cast<uintptr_t>(v.codes[s]) & (need[s] - 1))) return false;
  return true;
}

// Host-side checks shared by the GEMM launchers.
inline void check_operands(const char* op, const MxMixedDevice& a, const MxMixedDevice& w) {
  const auto& s = a.split;
  MM_CUDA_REQUIRE(s.n4 == w.split.n4 && s.n6 == w.split.n6 && s.n8 == w.split.n8 && s.fp6 == w.split.fp6,
                  std::string(op) + ": a and w have different splits");
  for (int i = 0; i < mx::kSegments; ++i) {
    MM_CUDA_REQUIRE(s.count(i) >= 0 && s.count(i) % mx::kBlock == 0,
                    std::string(op) + ": segment sizes must be multiples of 32");
    if (s.count(i) == 0) continue;
    MM_CUDA_REQUIRE(aligned16(a.codes[i]) && aligned16(w.codes[i]),
                    std::string(op) + ": segment code pointers must be 16-byte aligned");
  }
  MM_CUDA_REQUIRE(s.fp6 == mx::ElemFormat::fp6_e3m2 || s.fp6 == mx::ElemFormat::fp6_e2m3,
                  std::string(op) + ": FP6 must be E3M2 or E2M3");
  MM_CUDA_REQUIRE(a.rows >= 0 && w.rows >= 0, std::string(op) + ": negative rows");
  MM_CUDA_REQUIRE(w.rows % 16 == 0, std::string(op) + ": N = " + std::to_string(w.rows) + " is not a multiple of 16");
}

}  // namespace micromix::cuda::mixed
