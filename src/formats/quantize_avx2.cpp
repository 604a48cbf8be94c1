// AVX2 kernels for MX quantization and dequantization, compiled with function target attributes
// and chosen at run time (quantize.cpp), so the library still runs on CPUs without AVX2.
// The element encoder is the same arithmetic as encode_scaled() in element_impl.hpp, 8 lanes wide.
#include "formats/quantize_simd.hpp"

#if MICROMIX_X86
#include <immintrin.h>

#include <bit>
#include <cstring>

#include "formats/element_impl.hpp"
#include "micromix/mx_pack.hpp"

#define MM_AVX2 __attribute__((target("avx2,fma")))

namespace micromix::mx {
namespace {

// 2^(127 - s) as a float for a scale code s in [0, 254] (s = 254 gives the subnormal 2^-127).
inline float inverse_scale(uint8_t s) {
  if (s == 254) return std::bit_cast<float>(0x00400000u);
  return std::bit_cast<float>(static_cast<uint32_t>(254 - s) << 23);
}

struct EncodeConsts {
  __m256i emin, mbits_bias, max_code;
  __m256 max_normal;
  __m128i mbits, sign_shift;
  bool away, is_int8;
};

MM_AVX2 inline EncodeConsts make_consts(ElemFormat f, Rounding r) {
  const ElemInfo& I = info(f);
  EncodeConsts c;
  c.emin = _mm256_set1_epi32(1 - I.bias);
  c.mbits_bias = _mm256_set1_epi32(127 + I.mbits);
  c.max_code = _mm256_set1_epi32(I.max_code);
  c.max_normal = _mm256_set1_ps(I.max_normal);
  c.mbits = _mm_cvtsi32_si128(I.mbits);
  c.sign_shift = _mm_cvtsi32_si128(I.bits - 1);
  c.away = r == Rounding::away;
  c.is_int8 = f == ElemFormat::int8;
  return c;
}

// round_int() of element_impl.hpp on 8 lanes: r >= 0 and < 2^24.
MM_AVX2 inline __m256i round_lanes(__m256 r, bool away) {
  const __m256 fl = _mm256_floor_ps(r);
  const __m256 fr = _mm256_sub_ps(r, fl);
  const __m256i q = _mm256_cvttps_epi32(fl);
  const __m256 half = _mm256_set1_ps(0.5f);
  __m256 up = _mm256_cmp_ps(fr, half, _CMP_GT_OQ);
  __m256 tie = _mm256_cmp_ps(fr, half, _CMP_EQ_OQ);
  if (!away) {
    const __m256i odd = _mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1));
    tie = _mm256_and_ps(tie, _mm256_castsi256_ps(odd));
  }
  up = _mm256_or_ps(up, tie);
  return _mm256_sub_epi32(q, _mm256_castps_si256(up));  // mask lanes are -1
}

// 8 scaled values -> 8 codes (one per int32 lane).
MM_AVX2 inline __m256i encode8(const EncodeConsts& c, __m256 y) {
  const __m256i bits = _mm256_castps_si256(y);
  const __m256i sign = _mm256_srli_epi32(bits, 31);
  const __m256i abits = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256 a = _mm256_castsi256_ps(abits);
  const __m256 sat = _mm256_cmp_ps(a, c.max_normal, _CMP_GE_OQ);
  if (c.is_int8) {
    __m256i q = round_lanes(_mm256_mul_ps(_mm256_andnot_ps(sat, a), _mm256_set1_ps(64.0f)), c.away);
    q = _mm256_min_epi32(q, c.max_code);
    q = _mm256_blendv_epi8(q, c.max_code, _mm256_castps_si256(sat));
    const __m256i neg = _mm256_sub_epi32(_mm256_setzero_si256(), q);
    const __m256i s = _mm256_cmpeq_epi32(sign, _mm256_set1_epi32(1));
    return _mm256_and_si256(_mm256_blendv_epi8(q, neg, s), _mm256_set1_epi32(0xFF));
  }
  __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(abits, 23), _mm256_set1_epi32(127));
  e = _mm256_max_epi32(e, c.emin);
  // a * 2^(mbits - e): exact, < 2^(mbits+1). Saturated lanes are replaced below.
  const __m256i mult = _mm256_slli_epi32(_mm256_sub_epi32(c.mbits_bias, e), 23);
  const __m256 r = _mm256_mul_ps(_mm256_andnot_ps(sat, a), _mm256_castsi256_ps(mult));
  const __m256i q = round_lanes(r, c.away);
  __m256i mag = _mm256_add_epi32(_mm256_sll_epi32(_mm256_sub_epi32(e, c.emin), c.mbits), q);
  mag = _mm256_min_epi32(mag, c.max_code);
  mag = _mm256_blendv_epi8(mag, c.max_code, _mm256_castps_si256(sat));
  return _mm256_or_si256(mag, _mm256_sll_epi32(sign, c.sign_shift));
}

// 4 x 8 int32 codes (each < 256) -> 32 bytes in order.
MM_AVX2 inline __m256i narrow32(__m256i c0, __m256i c1, __m256i c2, __m256i c3) {
  const __m256i p01 = _mm256_packus_epi32(c0, c1);  // per 128-bit lane: c0[0:4] c1[0:4] | c0[4:8] c1[4:8]
  const __m256i p23 = _mm256_packus_epi32(c2, c3);
  const __m256i b = _mm256_packus_epi16(p01, p23);  // 4-byte groups: c0a c1a c2a c3a | c0b c1b c2b c3b
  return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

MM_AVX2 void quantize_row_avx2(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n, uint8_t* packed,
                               uint8_t* scales) {
  const EncodeConsts c = make_consts(f, r);
  const ElemInfo& I = info(f);
  const size_t block_bytes = packed_row_bytes(f, kBlock);
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  alignas(32) uint8_t codes[kBlock];
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, packed += block_bytes) {
    __m256 v[4];
    __m256i m = _mm256_setzero_si256();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(v[i]), abs_mask));
    }
    // Horizontal max of the |x| bit patterns (NaN/Inf compare above every finite value).
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4E));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xB1));
    const uint32_t amax_bits = static_cast<uint32_t>(_mm_cvtsi128_si32(h));
    if (amax_bits >= 0x7f800000u) {  // NaN or Inf in the block: NaN scale (OCP)
      scales[b] = kScaleNaN;
      std::memset(packed, 0, block_bytes);
      continue;
    }
    uint8_t s;
    if (rule == ScaleRule::ocp && amax_bits >= 0x00800000u) {  // normal amax: floor(log2) from the bits
      const int e = static_cast<int>(amax_bits >> 23) - 127 - I.emax;
      s = static_cast<uint8_t>((e < -127 ? -127 : e) + 127);
    } else {
      s = block_scale(f, rule, std::bit_cast<float>(amax_bits));
    }
    scales[b] = s;
    const __m256 inv = _mm256_set1_ps(inverse_scale(s));
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = encode8(c, _mm256_mul_ps(v[i], inv));
    const __m256i bytes = narrow32(q[0], q[1], q[2], q[3]);
    if (I.bits == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(packed), bytes);
    } else if (I.bits == 4) {  // element 2j low nibble, 2j+1 high nibble
      const __m256i w = _mm256_and_si256(_mm256_or_si256(bytes, _mm256_srli_epi16(bytes, 4)), _mm256_set1_epi16(0x00FF));
      const __m128i p = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(packed), p);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(codes), bytes);
      pack_codes(f, codes, std::span<uint8_t>(packed, block_bytes));
    }
  }
}

MM_AVX2 void dequantize_row_fp4_avx2(const uint8_t* packed, const uint8_t* scales, int64_t n, float* out) {
  // Magnitudes of the 8 non-negative E2M1 codes; the sign is code bit 3 moved to bit 31.
  const __m256 mag_lut = _mm256_loadu_ps(decode_table(ElemFormat::fp4_e2m1));
  const __m128i lo_mask = _mm_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / kBlock; ++b, packed += 16, out += kBlock) {
    const __m256 lut = _mm256_mul_ps(mag_lut, _mm256_set1_ps(scale_value(scales[b])));
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
    const __m128i lo = _mm_and_si128(v, lo_mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), lo_mask);
    const __m128i c01 = _mm_unpacklo_epi8(lo, hi), c23 = _mm_unpackhi_epi8(lo, hi);  // codes 0..15, 16..31
    const __m128i parts[4] = {c01, _mm_srli_si128(c01, 8), c23, _mm_srli_si128(c23, 8)};
    for (int i = 0; i < 4; ++i) {
      const __m256i code = _mm256_cvtepu8_epi32(parts[i]);
      const __m256 val = _mm256_permutevar8x32_ps(lut, code);  // uses the low 3 bits
      const __m256i sign = _mm256_slli_epi32(_mm256_srli_epi32(code, 3), 31);
      _mm256_storeu_ps(out + 8 * i, _mm256_xor_ps(val, _mm256_castsi256_ps(sign)));
    }
  }
}

}  // namespace micromix::mx
#endif
