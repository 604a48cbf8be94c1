// Block quantization and dequantization: scalar reference kernels, dispatch to the AVX-512
// kernels, and whole-matrix helpers threaded over rows.
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "formats/element_impl.hpp"
#include "formats/quantize_simd.hpp"
#include "micromix/bf16.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"

namespace micromix::mx {
namespace {

// Max |x| of a block as float bits; NaN or Inf give a value >= 0x7f800000.
inline uint32_t block_amax_bits(const float* x) {
  uint32_t m = 0;
  for (int i = 0; i < kBlock; ++i) {
    const uint32_t b = std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu;
    m = b > m ? b : m;
  }
  return m;
}

// One block -> 32 codes (one per byte) + its scale code.
inline uint8_t quantize_block(ElemFormat f, ScaleRule rule, Rounding r, const float* x, uint8_t* codes) {
  const uint32_t amax_bits = block_amax_bits(x);
  if (amax_bits >= 0x7f800000u) {  // NaN or Inf in the block: NaN scale (OCP)
    std::memset(codes, 0, kBlock);
    return kScaleNaN;
  }
  const uint8_t s = block_scale(f, rule, std::bit_cast<float>(amax_bits));
  // 2^-(s-127) is a float (normal or subnormal) for s in [0, 254]; x * it is exact unless the
  // product is below 2^-126, where every element format rounds to zero anyway.
  const float inv = std::ldexp(1.0f, 127 - static_cast<int>(s));
  for (int i = 0; i < kBlock; ++i) codes[i] = encode_scaled(f, x[i] * inv, r);
  return s;
}

void check_row_len(int64_t n, const char* what) {
  MM_CHECK(n >= 0 && n % kBlock == 0, "{}: length {} is not a multiple of {}", what, n, kBlock);
}

}  // namespace

void quantize(ElemFormat f, ScaleRule rule, Rounding r, std::span<const float> x,
              std::span<uint8_t> codes, std::span<uint8_t> scales) {
  check_row_len(static_cast<int64_t>(x.size()), "mx::quantize");
  MM_CHECK(codes.size() >= x.size() && scales.size() >= x.size() / kBlock,
           "mx::quantize: output spans too small");
  for (size_t b = 0; b < x.size() / kBlock; ++b)
    scales[b] = quantize_block(f, rule, r, x.data() + b * kBlock, codes.data() + b * kBlock);
}

void dequantize(ElemFormat f, std::span<const uint8_t> codes, std::span<const uint8_t> scales,
                std::span<float> out) {
  check_row_len(static_cast<int64_t>(codes.size()), "mx::dequantize");
  MM_CHECK(out.size() >= codes.size() && scales.size() >= codes.size() / kBlock,
           "mx::dequantize: spans too small");
  const float* t = decode_table(f);
  const uint8_t mask = static_cast<uint8_t>((1u << info(f).bits) - 1u);
  for (size_t i = 0; i < codes.size(); ++i) out[i] = t[codes[i] & mask] * scale_value(scales[i / kBlock]);
}

void quantize_row_scalar(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n,
                         uint8_t* packed, uint8_t* scales) {
  check_row_len(n, "mx::quantize_row");
  const size_t block_bytes = packed_row_bytes(f, kBlock);
  uint8_t codes[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    scales[b] = quantize_block(f, rule, r, x + b * kBlock, codes);
    pack_codes(f, codes, std::span<uint8_t>(packed + b * block_bytes, block_bytes));
  }
}

void dequantize_row_scalar(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                           float* out) {
  check_row_len(n, "mx::dequantize_row");
  const size_t block_bytes = packed_row_bytes(f, kBlock);
  const float* t = decode_table(f);
  uint8_t codes[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b) {
    unpack_codes(f, std::span<const uint8_t>(packed + b * block_bytes, block_bytes), codes);
    const float s = scale_value(scales[b]);
    for (int i = 0; i < kBlock; ++i) out[b * kBlock + i] = t[codes[i]] * s;
  }
}

bool have_avx2() {
#if MICROMIX_X86
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         std::getenv("MICROMIX_NO_SIMD") == nullptr;
  return ok;
#else
  return false;
#endif
}

void quantize_row(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n,
                  uint8_t* packed, uint8_t* scales) {
  check_row_len(n, "mx::quantize_row");
#if MICROMIX_X86
  if (have_avx2()) return quantize_row_avx2(f, rule, r, x, n, packed, scales);
#endif
  quantize_row_scalar(f, rule, r, x, n, packed, scales);
}

void dequantize_row(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n, float* out) {
  check_row_len(n, "mx::dequantize_row");
#if MICROMIX_X86
  // Only MXFP4 gains from SIMD here: for 6- and 8-bit codes a gather is no faster than the
  // scalar table lookup (bench/RESULTS.md).
  if (f == ElemFormat::fp4_e2m1 && have_avx2()) return dequantize_row_fp4_avx2(packed, scales, n, out);
#endif
  dequantize_row_scalar(f, packed, scales, n, out);
}

void dequantize_row_bf16(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                         uint16_t* out) {
  // Every element times its scale is exact in bf16 away from the exponent extremes, so the
  // float detour only rounds where bf16 itself must.
  float buf[kBlock];
  const size_t block_bytes = packed_row_bytes(f, kBlock);
  check_row_len(n, "mx::dequantize_row_bf16");
  for (int64_t b = 0; b < n / kBlock; ++b) {
    dequantize_row(f, packed + b * block_bytes, scales + b, kBlock, buf);
    for (int i = 0; i < kBlock; ++i) out[b * kBlock + i] = float_to_bf16(buf[i]);
  }
}

MxMatrix quantize_matrix(ElemFormat f, ScaleRule rule, Rounding r, std::span<const float> x,
                         int64_t rows, int64_t cols) {
  MM_CHECK(rows >= 0 && cols >= 0, "mx::quantize_matrix: negative shape ({}, {})", rows, cols);
  MM_CHECK(cols % kBlock == 0, "mx::quantize_matrix: cols = {} is not a multiple of {}", cols, kBlock);
  MM_CHECK(static_cast<int64_t>(x.size()) == rows * cols,
           "mx::quantize_matrix: {} values for a ({}, {}) matrix", x.size(), rows, cols);
  MxMatrix m;
  m.format = f;
  m.rows = rows;
  m.cols = cols;
  m.codes.resize(static_cast<size_t>(rows) * m.row_bytes());
  m.scales.resize(static_cast<size_t>(rows * m.blocks_per_row()));
  const size_t rb = m.row_bytes();
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t i = 0; i < rows; ++i)
    quantize_row(f, rule, r, x.data() + i * cols, cols, m.codes.data() + i * rb,
                 m.scales.data() + i * m.blocks_per_row());
  return m;
}

namespace {
void check_matrix(const MxMatrix& m, size_t out_size) {
  MM_CHECK(m.cols % kBlock == 0, "mx::dequantize_matrix: cols = {} is not a multiple of {}", m.cols, kBlock);
  MM_CHECK(m.codes.size() == static_cast<size_t>(m.rows) * m.row_bytes() &&
               m.scales.size() == static_cast<size_t>(m.rows * m.blocks_per_row()),
           "mx::dequantize_matrix: storage does not match shape ({}, {})", m.rows, m.cols);
  MM_CHECK(out_size == static_cast<size_t>(m.rows * m.cols), "mx::dequantize_matrix: output size {} != {}",
           out_size, m.rows * m.cols);
}
}  // namespace

void dequantize_matrix(const MxMatrix& m, std::span<float> out) {
  check_matrix(m, out.size());
  const size_t rb = m.row_bytes();
#pragma omp parallel for schedule(static) if (m.rows * m.cols > (1 << 16))
  for (int64_t i = 0; i < m.rows; ++i)
    dequantize_row(m.format, m.codes.data() + i * rb, m.scales.data() + i * m.blocks_per_row(), m.cols,
                   out.data() + i * m.cols);
}

void dequantize_matrix_bf16(const MxMatrix& m, std::span<uint16_t> out) {
  check_matrix(m, out.size());
  const size_t rb = m.row_bytes();
#pragma omp parallel for schedule(static) if (m.rows * m.cols > (1 << 16))
  for (int64_t i = 0; i < m.rows; ++i)
    dequantize_row_bf16(m.format, m.codes.data() + i * rb, m.scales.data() + i * m.blocks_per_row(), m.cols,
                        out.data() + i * m.cols);
}

}  // namespace micromix::mx
