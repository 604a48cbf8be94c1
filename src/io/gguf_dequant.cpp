// ggml storage types: block geometry, type ids and scalar dequantizers.
//
// Block layouts (ggml-common.h), little-endian, no padding:
//   q4_0 (32):  f16 d, u8 qs[16]            x[j] = d * ((qs[j] & 15) - 8), x[j+16] = d * ((qs[j] >> 4) - 8)
//   q4_1 (32):  f16 d, f16 m, u8 qs[16]     x[j] = d * (qs[j] & 15) + m,   x[j+16] = d * (qs[j] >> 4) + m
//   q8_0 (32):  f16 d, i8 qs[32]            x[j] = d * qs[j]
//   q4_K (256): f16 d, f16 dmin, u8 scales[12], u8 qs[128]: 8 sub-blocks of 32 with 6-bit scale and min
//   q5_K (256): f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]: as q4_K plus a fifth bit
//   q6_K (256): u8 ql[128], u8 qh[64], i8 scales[16], f16 d: 16 sub-blocks of 16, 6-bit values - 32
//   q8_K (256): f32 d, i8 qs[256], i16 bsums[16]
#include <cmath>
#include <cstring>

#include "io/gguf.hpp"
#include "micromix/error.hpp"

namespace micromix::io::gguf {
namespace {

uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
float load_f16(const uint8_t* p) { return fp16_to_float(load_u16(p)); }
float load_f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

void dequant_q4_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 15) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void dequant_q4_1(const uint8_t* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>(qs[j] & 15) + m;
    y[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

void dequant_q8_0(const uint8_t* b, float* y) {
  const float d = load_f16(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[2 + j]));
}

// The 12 scale bytes of q4_K/q5_K hold 8 six-bit scales and 8 six-bit mins: sub-blocks 0-3 in the
// low 6 bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 take their low 4 bits from
// bytes 8-11 (scale low nibble, min high nibble) and their top 2 bits from the spare top bits of
// bytes 0-3 (scales) and 4-7 (mins).
void k_scale_min(int j, const uint8_t* q, uint8_t& sc, uint8_t& mn) {
  if (j < 4) {
    sc = q[j] & 63;
    mn = q[j + 4] & 63;
  } else {
    sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequant_q4_K(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int sub = 0; sub < 8; sub += 2) {  // 64 values per pass: low nibbles then high nibbles
    uint8_t sc, mn;
    k_scale_min(sub, scales, sc, mn);
    const float d1 = d * sc, m1 = dmin * mn;
    k_scale_min(sub + 1, scales, sc, mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>(q[l] >> 4) - m2;
    y += 64;
    q += 32;
  }
}

void dequant_q5_K(const uint8_t* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int sub = 0; sub < 8; sub += 2) {
    uint8_t sc, mn;
    k_scale_min(sub, scales, sc, mn);
    const float d1 = d * sc, m1 = dmin * mn;
    k_scale_min(sub + 1, scales, sc, mn);
    const float d2 = d * sc, m2 = dmin * mn;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) y[32 + l] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    y += 64;
    ql += 32;
    u1 = static_cast<uint8_t>(u1 << 2);
    u2 = static_cast<uint8_t>(u2 << 2);
  }
}

void dequant_q6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  for (int half = 0; half < 2; ++half) {  // 128 values per pass
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void dequant_q8_K(const uint8_t* b, float* y) {
  const float d = load_f32(b);
  for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(static_cast<int8_t>(b[4 + j]));
}

}  // namespace

float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // Inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else {
    // zero or subnormal: mant * 2^-24, exact in float32
    const float v = std::ldexp(static_cast<float>(mant), -24);
    uint32_t vb;
    std::memcpy(&vb, &v, 4);
    bits = sign | vb;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

BlockInfo block_info(DType t) {
  switch (t) {
    case DType::f32: return {1, 4};
    case DType::f16: return {1, 2};
    case DType::bf16: return {1, 2};
    case DType::q4_0: return {32, 18};
    case DType::q4_1: return {32, 20};
    case DType::q8_0: return {32, 34};
    case DType::q4_K: return {256, 144};
    case DType::q5_K: return {256, 176};
    case DType::q6_K: return {256, 210};
    case DType::q8_K: return {256, 292};
    case DType::u8: return {1, 1};
    case DType::i8: return {1, 1};
    case DType::i32: return {1, 4};
    case DType::i64: return {1, 8};
  }
  fail("block_info: invalid dtype {}", static_cast<int>(t));
}

std::optional<DType> dtype_from_ggml(uint32_t ggml_type) {
  switch (ggml_type) {
    case kGgmlF32: return DType::f32;
    case kGgmlF16: return DType::f16;
    case kGgmlBF16: return DType::bf16;
    case kGgmlQ4_0: return DType::q4_0;
    case kGgmlQ4_1: return DType::q4_1;
    case kGgmlQ8_0: return DType::q8_0;
    case kGgmlQ4_K: return DType::q4_K;
    case kGgmlQ5_K: return DType::q5_K;
    case kGgmlQ6_K: return DType::q6_K;
    case kGgmlQ8_K: return DType::q8_K;
    case kGgmlI8: return DType::i8;
    case kGgmlI32: return DType::i32;
    case kGgmlI64: return DType::i64;
    default: return std::nullopt;
  }
}

uint32_t ggml_from_dtype(DType t) {
  switch (t) {
    case DType::f32: return kGgmlF32;
    case DType::f16: return kGgmlF16;
    case DType::bf16: return kGgmlBF16;
    case DType::q4_0: return kGgmlQ4_0;
    case DType::q4_1: return kGgmlQ4_1;
    case DType::q8_0: return kGgmlQ8_0;
    case DType::q4_K: return kGgmlQ4_K;
    case DType::q5_K: return kGgmlQ5_K;
    case DType::q6_K: return kGgmlQ6_K;
    case DType::q8_K: return kGgmlQ8_K;
    case DType::i8: return kGgmlI8;
    case DType::i32: return kGgmlI32;
    case DType::i64: return kGgmlI64;
    case DType::u8: break;
  }
  fail("gguf: dtype {} has no ggml type", dtype_name(t));
}

std::string_view ggml_type_name(uint32_t ggml_type) {
  static constexpr std::string_view names[] = {
      "f32",  "f16",     "q4_0",   "q4_1",  "q4_2 (removed)", "q4_3 (removed)", "q5_0",    "q5_1",
      "q8_0", "q8_1",    "q2_K",   "q3_K",  "q4_K",           "q5_K",           "q6_K",    "q8_K",
      "iq2_xxs", "iq2_xs", "iq3_xxs", "iq1_s", "iq4_nl",      "iq3_s",          "iq2_s",   "iq4_xs",
      "i8",   "i16",     "i32",    "i64",   "f64",            "iq1_m",          "bf16"};
  return ggml_type < std::size(names) ? names[ggml_type] : std::string_view{};
}

void dequantize_blocks(DType t, const uint8_t* src, int64_t n_blocks, float* out) {
  void (*fn)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case DType::q4_0: fn = dequant_q4_0; break;
    case DType::q4_1: fn = dequant_q4_1; break;
    case DType::q8_0: fn = dequant_q8_0; break;
    case DType::q4_K: fn = dequant_q4_K; break;
    case DType::q5_K: fn = dequant_q5_K; break;
    case DType::q6_K: fn = dequant_q6_K; break;
    case DType::q8_K: fn = dequant_q8_K; break;
    default: fail("dequantize_blocks: {} is not a block-quantized type", dtype_name(t));
  }
  const BlockInfo bi = block_info(t);
#pragma omp parallel for schedule(static) if (n_blocks > 4096)
  for (int64_t b = 0; b < n_blocks; ++b) fn(src + b * bi.bytes, out + b * bi.elems);
}

}  // namespace micromix::io::gguf
