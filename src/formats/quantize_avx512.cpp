// AVX-512 kernels for the hot MX paths, compiled for AVX-512 with function attributes and chosen
// at run time (quantize.cpp), so the library still runs on CPUs without it.
#include "formats/quantize_simd.hpp"

#if MICROMIX_X86
#include <immintrin.h>

#include <bit>
#include <cstring>

#include "formats/element_impl.hpp"
#include "micromix/mx_pack.hpp"

// GCC 12 reports its own intrinsics' undefined-vector idiom as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define MM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

namespace micromix::mx {
namespace {

// 2^(127 - s) as a float for a scale code s in [0, 254] (s = 254 gives the subnormal 2^-127).
inline float inverse_scale(uint8_t s) {
  if (s == 254) return std::bit_cast<float>(0x00400000u);
  return std::bit_cast<float>(static_cast<uint32_t>(254 - s) << 23);
}

// E2M1 magnitude code = number of decision thresholds that y passes. Under ties-to-even a tie
// goes to the even code (0, 1.0, 2.0, 4.0), so the threshold below an even code is ">=" and the
// one above it ">"; under ties-away every threshold is ">=".
MM_AVX512 inline __m512i e2m1_magnitude(__m512 y, bool away) {
  const __m512i one = _mm512_set1_epi32(1);
  __m512i c = _mm512_setzero_si512();
  const float t[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  for (int i = 0; i < 7; ++i) {
    const bool strict = !away && (i % 2 == 0);  // thresholds just above an even code
    const __mmask16 m = strict ? _mm512_cmp_ps_mask(y, _mm512_set1_ps(t[i]), _CMP_GT_OQ)
                               : _mm512_cmp_ps_mask(y, _mm512_set1_ps(t[i]), _CMP_GE_OQ);
    c = _mm512_mask_add_epi32(c, m, c, one);
  }
  return c;
}

// 16 codes (one per int32 lane, < 16) -> 8 bytes of nibble pairs in the low half of an xmm.
MM_AVX512 inline __m128i nibble_pack16(__m512i codes) {
  const __m128i b = _mm512_cvtepi32_epi8(codes);  // 16 bytes
  const __m128i w = _mm_or_si128(b, _mm_srli_epi16(b, 4));
  return _mm_and_si128(w, _mm_set1_epi16(0x00FF));
}

}  // namespace

MM_AVX512 void quantize_row_fp4_avx512(ScaleRule rule, Rounding r, const float* x, int64_t n,
                                       uint8_t* packed, uint8_t* scales) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  const bool away = r == Rounding::away;
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, packed += 16) {
    const __m512i x0 = _mm512_castps_si512(_mm512_loadu_ps(x));
    const __m512i x1 = _mm512_castps_si512(_mm512_loadu_ps(x + 16));
    const __m512i a0 = _mm512_and_si512(x0, abs_mask), a1 = _mm512_and_si512(x1, abs_mask);
    const uint32_t amax_bits = _mm512_reduce_max_epu32(_mm512_max_epu32(a0, a1));
    if (amax_bits >= 0x7f800000u) {  // NaN or Inf in the block
      scales[b] = kScaleNaN;
      std::memset(packed, 0, 16);
      continue;
    }
    uint8_t s;
    if (rule == ScaleRule::ocp && amax_bits >= 0x00800000u) {  // normal amax: exponent bits
      int e = static_cast<int>(amax_bits >> 23) - 127 - 2;  // emax(E2M1) = 2
      s = static_cast<uint8_t>((e < -127 ? -127 : e) + 127);
    } else {
      s = block_scale(ElemFormat::fp4_e2m1, rule, std::bit_cast<float>(amax_bits));
    }
    scales[b] = s;
    const __m512 inv = _mm512_set1_ps(inverse_scale(s));
    const __m512 y0 = _mm512_mul_ps(_mm512_castsi512_ps(a0), inv);
    const __m512 y1 = _mm512_mul_ps(_mm512_castsi512_ps(a1), inv);
    // sign bit of x -> bit 3 of the code
    const __m512i s0 = _mm512_slli_epi32(_mm512_srli_epi32(x0, 31), 3);
    const __m512i s1 = _mm512_slli_epi32(_mm512_srli_epi32(x1, 31), 3);
    const __m512i c0 = _mm512_or_si512(e2m1_magnitude(y0, away), s0);
    const __m512i c1 = _mm512_or_si512(e2m1_magnitude(y1, away), s1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(packed), _mm_packus_epi16(nibble_pack16(c0), nibble_pack16(c1)));
  }
}

MM_AVX512 void dequantize_row_avx512(ElemFormat f, const uint8_t* packed, const uint8_t* scales, int64_t n,
                                     float* out) {
  const float* table = decode_table(f);
  const int bits = info(f).bits;
  const size_t block_bytes = packed_row_bytes(f, kBlock);
  if (bits == 4) {
    const __m512 lut = _mm512_loadu_ps(table);  // 16 values of E2M1
    const __m128i lo_mask = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < n / kBlock; ++b, packed += block_bytes, out += kBlock) {
      const __m512 lut_s = _mm512_mul_ps(lut, _mm512_set1_ps(scale_value(scales[b])));
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
      const __m128i lo = _mm_and_si128(v, lo_mask);
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), lo_mask);
      const __m512i i0 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));  // codes 0..15
      const __m512i i1 = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi));  // codes 16..31
      _mm512_storeu_ps(out, _mm512_permutexvar_ps(i0, lut_s));
      _mm512_storeu_ps(out + 16, _mm512_permutexvar_ps(i1, lut_s));
    }
    return;
  }
  alignas(64) uint8_t codes[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b, packed += block_bytes, out += kBlock) {
    const uint8_t* c = packed;
    if (bits == 6) {
      unpack_codes(f, std::span<const uint8_t>(packed, block_bytes), codes);
      c = codes;
    }
    const __m512 s = _mm512_set1_ps(scale_value(scales[b]));
    for (int h = 0; h < 2; ++h) {
      const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16 * h)));
      _mm512_storeu_ps(out + 16 * h, _mm512_mul_ps(_mm512_i32gather_ps(idx, table, 4), s));
    }
  }
}

}  // namespace micromix::mx
#endif
