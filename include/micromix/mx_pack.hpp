// Packed storage of MX matrices.
//
// An MX matrix is (rows, cols) row-major, cols a multiple of 32; each row is split into blocks of
// 32 consecutive columns and each block shares one E8M0 scale.
//
//   codes:  (rows, row_bytes) row-major, row_bytes = cols * bits / 8
//     FP4 (E2M1):   two codes per byte; element 2j in the low nibble, 2j+1 in the high nibble.
//     FP6 (E2M3/E3M2): four codes per three bytes; the three bytes are a little-endian 24-bit
//                   word w and element 4j+i is (w >> 6i) & 63.
//     FP8 / INT8:   one code per byte.
//   scales: (rows, cols / 32) row-major, one E8M0 byte per block.
//
// Rows start on byte boundaries because cols is a multiple of 32 (32*4/8 = 16 bytes, 32*6/8 = 24).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "micromix/mx.hpp"

namespace micromix::mx {

inline size_t packed_row_bytes(ElemFormat f, int64_t cols) {
  return static_cast<size_t>(cols) * static_cast<size_t>(info(f).bits) / 8;
}

// One-code-per-byte <-> packed. n (number of codes) must be a multiple of 32.
void pack_codes(ElemFormat f, std::span<const uint8_t> codes, std::span<uint8_t> packed);
void unpack_codes(ElemFormat f, std::span<const uint8_t> packed, std::span<uint8_t> codes);

struct MxMatrix {
  ElemFormat format = ElemFormat::fp4_e2m1;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;   // (rows, packed_row_bytes(format, cols))
  std::vector<uint8_t> scales;  // (rows, cols / 32)

  size_t row_bytes() const { return packed_row_bytes(format, cols); }
  int64_t blocks_per_row() const { return cols / kBlock; }
};

// Quantizes one row of n values (n % 32 == 0) straight into packed codes and scales.
// Uses the AVX2 kernels when the CPU has them (MICROMIX_NO_SIMD=1 forces the scalar ones);
// bit-identical to the scalar path.
void quantize_row(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n,
                  uint8_t* packed, uint8_t* scales);
// Dequantizes one packed row back to float32 / bfloat16.
void dequantize_row(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                    float* out);
void dequantize_row_bf16(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                         uint16_t* out);

// Whole matrices, threaded over rows. Throw micromix::Error on bad shapes.
MxMatrix quantize_matrix(ElemFormat f, ScaleRule rule, Rounding r, std::span<const float> x,
                         int64_t rows, int64_t cols);
void dequantize_matrix(const MxMatrix& m, std::span<float> out);
void dequantize_matrix_bf16(const MxMatrix& m, std::span<uint16_t> out);

// Scalar reference kernels (the portable fallback and the oracle for the SIMD ones).
void quantize_row_scalar(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n,
                         uint8_t* packed, uint8_t* scales);
void dequantize_row_scalar(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                           float* out);
// True when the AVX2 kernels are compiled in, the CPU supports them and MICROMIX_NO_SIMD is unset.
bool have_avx2();

}  // namespace micromix::mx
