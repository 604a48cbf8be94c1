// Reorder + quantize v3-v9, v11, v12 (the default; K split over CTAs at small M) and v13 (v12's small-M
// kernels also writing the decode GEMV's activation layout): x (M, K) bf16 -> permuted FP4 | FP6 | FP8 MX
// segments, bit-identical to mx::quantize_mixed, with about a third of v1's instructions per element
// (v1 is instruction-bound).
// v4 = v3 with a packed (16x2) block max and, for ties to even, a float-adder encoder with fewer
// integer instructions (encode_elem_rne); ties away run v3's encoder. v5 = v4 capped at 40
// registers (6 CTAs of 8 warps per SM instead of 5). v6 = v4 with the hardware FP8 conversions for
// the FP8 and FP6 segments (cvt_fp8x2). v7 = v6 with the staging loads of two column groups in
// flight per thread (AHEAD = 2); v8 = v6 with 2 rows per CTA (twice the CTAs) and AHEAD = 4;
// v9 = v6 with the FP4 segment encoded on packed bf16 pairs (encode_store_fp4x2), FP6/FP8 codes
// assembled as whole words (encode_store_fp68_words), v8's shape above K = 8192. v11 (template flag
// F16) = v9 with its integer-pipe work moved to the f16 pipe (fp4_codes_f16, pack_fp4x4_f16, the
// block max by max_abs_bf16x2, FP6 without float clamps) and AHEAD = 2 at K <= 8192.
//
// A CTA (8 warps) owns R rows (R = 4, or 2 for K > 14336). The R rows are staged in shared memory
// INTERLEAVED, column-major: column c holds its R bf16 values side by side (8 bytes for R = 4), so
// one random gather (LDS.64) fetches a permuted column for all R rows. A thread then owns 8
// consecutive permuted columns (a quarter MX block) of all R rows: the block max takes two
// shuffles, lane q of a block computes the scale of row q, and the encoder is integer arithmetic
// on the float bits (no floor, no per-element branches):
//   |v| >= 2^emin: round the float's mantissa to m bits in place (add half - 1 + parity, or half
//                  for ties away), code = (bits >> (23 - m)) - ((126 + emin) << m);
//   |v| <  2^emin: the same on |v| + 2^emin (exact: v has 8 significant bits), minus one binade.
// Both are the CPU encoder's "nearest on the element grid, saturate to max_code" (element_impl.hpp).
// Stores: FP4 one word per row and thread (a warp writes 128 contiguous bytes), FP8 8 bytes, FP6 6
// bytes as 4 + 2; one scale byte per block and row.
// Shared-memory layout swizzle: 16-byte chunks of each 64-byte (R = 4) or 32-byte (R = 2) column
// group are XOR-permuted so that the 16-byte staging stores of 8 consecutive lanes hit 32 banks.
#include <cuda_bf16.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "cuda/fused_prologue_math.hpp"
#include "cuda/gemv_shape_policy.hpp"
#include "cuda/mx_decode_acts.cuh"
#include "cuda/mx_gemv_prepared_common.cuh"
#include "cuda/mx_mixed_device.cuh"
#include "cuda/ptx_helpers.cuh"
#include "cuda/mx_reorder_quantize.cuh"
#include "cuda/scratch.cuh"

namespace micromix::cuda {
namespace {

using namespace ptx;  // max/min_u16x2, mul/add_bf16x2, pack_bf16x2

// Element format constants of the encoder: code bits, mantissa bits, smallest normal exponent,
// max code (the scale rule takes emax and max_normal at run time from mx::info).
template <int BITS, int MB, int EMIN, unsigned MAXC>
struct QFmt {
  static constexpr int kBits = BITS, kM = MB, kEmin = EMIN;
  static constexpr unsigned kMaxCode = MAXC;
};
using QFp4 = QFmt<4, 1, 0, 0x07u>;    // E2M1
using QE2M3 = QFmt<6, 3, 0, 0x1Fu>;   // FP6 E2M3
using QE3M2 = QFmt<6, 2, -2, 0x1Fu>;  // FP6 E3M2
using QE4M3 = QFmt<8, 3, -6, 0x7Eu>;  // FP8 E4M3

// Prologue fused in front of the quantizer (mx_fused_quantize.cu): none, RMSNorm with a bf16 or
// f32 weight, SwiGLU.
// kProSwigluLate (v12 at small M): gate and up staged raw, SiLU(gate) * up computed after the gather for
// the gathered columns only (with K split over CTAs each CTA stages whole rows: computing it while
// staging would repeat the exp of every column in every CTA).
constexpr int kProNone = 0, kProRmsBf16 = 1, kProRmsF32 = 2, kProSwiglu = 3, kProSwigluLate = 4;

struct V3Args {
  const uint16_t* x;   // (M, K) bf16, rows ld apart (SwiGLU: the gate)
  const uint16_t* up;  // SwiGLU: the up rows, ld apart
  const void* w;       // RMSNorm: the weight (K), bf16 or f32
  int64_t ld;
  float eps;
  const int4* perm4;   // (K / 4)
  int64_t M, K;
  int blocks4, blocks6;  // K blocks of the FP4 and FP6 segments
  uint8_t* codes[3];
  uint8_t* scales[3];
  int64_t row_bytes[3];
  int seg_blocks[3];
  int emax[3];            // per segment, for the scale rule
  unsigned max_frac[3];
  int fp6_e2m3;
  int ceil_rule;
  uint32_t even;  // 1: ties to even, 0: ties away
  int split_units;  // v12: units (8 permuted columns) quantized per CTA, CTAs along y (0: all of K)
  DecodeActsView dact;  // v13: the decode-ready layout to write as well (slots 0: none)
};

// SiLU(gate) * up of a bf16 pair (low halves, high halves), rounded to a bf16 pair (fused::swiglu_f32).
__device__ __forceinline__ uint32_t swiglu_bf16x2(uint32_t g, uint32_t u) {
  return pack_bf16x2(fused::swiglu_f32(__uint_as_float(g << 16), __uint_as_float(u << 16)),
                     fused::swiglu_f32(__uint_as_float(g & 0xffff0000u), __uint_as_float(u & 0xffff0000u)));
}
// The same on 8 values (a 16-byte chunk of gate and of up).
__device__ __forceinline__ uint4 swiglu_bf16x8(uint4 g, uint4 u) {
  const uint32_t ga[4] = {g.x, g.y, g.z, g.w}, ua[4] = {u.x, u.y, u.z, u.w};
  uint32_t o[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) o[i] = swiglu_bf16x2(ga[i], ua[i]);
  return make_uint4(o[0], o[1], o[2], o[3]);
}

// Byte offset of column c in the staged row group (see the swizzle note above).
template <int R>
__device__ __forceinline__ uint32_t col_offset(uint32_t c) {
  if constexpr (R == 4) return (c << 3) ^ (c & 0x30u);
  else return (c << 2) ^ ((c >> 1) & 0x10u);
}

// E8M0 scale code of a block-row from its max |x| as bf16 bits (mx::block_scale, both rules).
__device__ __forceinline__ uint32_t scale_code(uint32_t amax16, int emax, unsigned max_frac, bool ceil_rule) {
  if (amax16 >= 0x7f80u) return 0xFFu;  // NaN or Inf in the block
  if (amax16 == 0) return ceil_rule ? 127u : 0u;
  const uint32_t b = amax16 << 16;
  int ilog;
  uint32_t frac;
  if (b >= 0x00800000u) {
    ilog = static_cast<int>(b >> 23) - 127;
    frac = b & 0x7fffffu;
  } else {  // float subnormal: normalize
    const int lz = __clz(static_cast<int>(b));
    ilog = (31 - lz) - 149;
    frac = (b << (lz - 8)) & 0x7fffffu;
  }
  // ocp: floor(log2 amax) - emax. ceil: smallest e with amax <= max_normal * 2^e; with
  // amax = A 2^ilog and max_normal = Q 2^emax (A, Q in [1, 2)) that is ilog - emax + (A > Q).
  int e = ilog - emax + (ceil_rule && frac > max_frac ? 1 : 0);
  e = max(e, -127);
  e = min(e, 127 - emax);
  return static_cast<uint32_t>(e + 127);
}

// Code of one element: fbits = the bf16 value as float bits, inv = 2^-scale (0 for NaN rows).
template <class F>
__device__ __forceinline__ uint32_t encode_elem(uint32_t fbits, float inv, uint32_t even) {
  constexpr int sh = 23 - F::kM;
  constexpr float kMinNormal = F::kEmin >= 0 ? static_cast<float>(1 << F::kEmin) : 1.0f / static_cast<float>(1 << -F::kEmin);
  constexpr uint32_t kOffNormal = static_cast<uint32_t>(126 + F::kEmin) << F::kM;
  constexpr uint32_t kOffSmall = static_cast<uint32_t>(127 + F::kEmin) << F::kM;
  const float a = fabsf(__uint_as_float(fbits) * inv);
  const bool small = a < kMinNormal;
  const uint32_t u = __float_as_uint(small ? a + kMinNormal : a);
  const uint32_t r = u + ((1u << (sh - 1)) - even) + ((u >> sh) & even);
  const uint32_t mag = min((r >> sh) - (small ? kOffSmall : kOffNormal), F::kMaxCode);
  return mag | ((fbits >> 31) << (F::kBits - 1));
}

// v4's encoder, ties to even only: the float adder rounds. With e = max(exponent(|v|), emin) and
// the magic number M = 1.5 * 2^(e + 23 - m) (ulp 2^(e - m), the element grid's spacing in e's
// binade, also for the subnormal binade), bits(|v| + M) - bits(M) = q = |v| / 2^(e - m) rounded to
// nearest even (one correct rounding); the code is ((e - emin) << m) + q as in element_impl.hpp,
// saturated at max_code. Fewer integer-pipe instructions than encode_elem (ncu: v3 is ALU-bound).
template <class F>
__device__ __forceinline__ uint32_t encode_elem_rne(uint32_t fbits, float inv) {
  constexpr int sh = 23 - F::kM;
  constexpr uint32_t kEminExp = static_cast<uint32_t>(127 + F::kEmin) << 23;
  constexpr uint32_t kMagic = (static_cast<uint32_t>(23 - F::kM) << 23) | 0x400000u;
  const float v = __uint_as_float(fbits) * inv;
  const uint32_t ebits = max(__float_as_uint(v) & 0x7f800000u, kEminExp);
  const uint32_t mbits = ebits + kMagic;
  const float r = fabsf(v) + __uint_as_float(mbits);
  const uint32_t mag = min(__float_as_uint(r) - mbits + ((ebits - kEminExp) >> sh), F::kMaxCode);
  return mag | ((fbits >> 31) << (F::kBits - 1));
}

// v6: hardware conversions, ties to even with saturation to the largest finite value, for the FP8
// and FP6 segments. E2M3 is E4M3's grid scaled by 2^-6 and E3M2 is E5M2's grid scaled by 2^-12
// (same mantissa width; the scaled subnormal spacings coincide: 2^-9 and 2^-16), so the FP6 code
// is the 8-bit code of v * 2^-k with its magnitude clamped to 0x1F and the sign moved from bit 7 to
// bit 5. Values below the scaled ranges are far under half the smallest step and give +-0 both ways.
// cvt's first operand goes to the upper byte.
template <bool E5M2>
__device__ __forceinline__ uint32_t cvt_fp8x2(float hi, float lo) {
  uint16_t d;
  if constexpr (E5M2) asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(d) : "f"(hi), "f"(lo));
  else asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(d) : "f"(hi), "f"(lo));
  return d;
}

// v9: the FP4 segment encoded two rows at a time on the packed bf16 pairs (row 2h low, 2h + 1 high)
// with bf16x2 arithmetic: v = x * 2^-s (exact: a power of two; results below 2^-126 are far under
// the smallest FP4 step and give +-0 either way), then v4's float-adder rounding in bf16 (7 mantissa
// bits hold FP4's 1 + the magic number's 6: one correct rounding, ties to even), all integer steps
// on 16-bit halves (no carries cross: every half stays below 2^16). About half of v6's instructions
// per FP4 element. The packed halves keep row 2h's and 2h + 1's codes; 4 columns of both rows pack
// into one word (nibbles of each half), two PRMTs split them into the rows' words.
// v11: the same codes with the integer steps moved to the f16 pipe (the ALU pipe is the quantizer's
// busiest: ncu, bench/GPU_NOTES.md session 8). On the grid's code axis E2M1 is the piecewise-linear
// phi(x) = min(2x, x + 2, x / 2 + 4) of x = |v| (slopes 2, 1, 1/2 over [0, 2), [2, 4), [4, 8): every
// grid value maps to its code and each rounding decision lies inside one linear piece), so
// nearest-even on the grid is rint(phi(x)) with ties to the even code = even mantissa, saturated at 7.
// In f16 (11 significant bits) every selected piece is exact for the scaled bf16 x < 8 (8 bits);
// rint is the add of 1024 (ulp 1); x below 2^-14 may lose bits in the conversion but is far under the
// first rounding threshold 0.25. Per pair of values: 1 cvt, 3 f16 add/fma, 3 f16 min, 1 f16 add
// against ~12 integer-pipe steps.
__device__ __forceinline__ uint32_t fp4_codes_f16(uint32_t v) {
  uint32_t a = pack_f16x2(__uint_as_float(v << 16), __uint_as_float(v & 0xffff0000u));
  asm("abs.f16x2 %0, %0;" : "+r"(a));  // |v| (ptxas folds it into the adds below as operand modifiers)
  const uint32_t t1 = add_f16x2(a, a), t2 = add_f16x2(a, 0x40004000u);            // 2x, x + 2
  const uint32_t t3 = fma_f16x2(a, 0x38003800u, 0x44004400u);                      // x / 2 + 4
  const uint32_t phi = min_f16x2(min_f16x2(t1, t2), min_f16x2(t3, 0x47004700u));  // <= 7
  return add_f16x2(phi, 0x64006400u);  // f16 bits 0x6400 + code (1024 + rint(phi)) in each half
}
// Four fp4_codes_f16 results (0x6400 + code per half) and their values' bf16 pairs -> the codes
// packed as nibbles 0-3 of each half with the signs at bits 3, 7, 11, 15. The nibbles do not
// overlap, so the packing is a sum (IMADs; the 0x6400s cancel modulo 2^32), the signs then OR in.
__device__ __forceinline__ uint32_t pack_fp4x4_f16(const uint32_t (&r)[4], const uint32_t (&v)[4]) {
  constexpr uint32_t kMagicSum = 0xAAAAA400u;  // 0x6400 * 0x1111 * (1 + 2^16) mod 2^32
  uint32_t w = r[0] + r[1] * 16u + r[2] * 256u + r[3] * 4096u - kMagicSum;
  w |= (v[0] >> 12) & 0x00080008u;
  w |= (v[1] >> 8) & 0x00800080u;
  w |= (v[2] >> 4) & 0x08000800u;
  return w | (v[3] & 0x80008000u);
}

// stored[r]: the code word stored for row r (v13's decode-ready layout is built from it).
template <int R, bool F16 = false>
__device__ __forceinline__ void encode_store_fp4x2(const V3Args& p, const uint32_t (&g)[R / 2][8], const uint32_t (&inv)[R],
                                                   int64_t row0, int rows, int lb, int q, uint32_t (&stored)[R]) {
  constexpr uint32_t kEmin2 = 0x3F803F80u;   // bf16 exponent bits of 2^0 (E2M1 emin), both halves
  constexpr uint32_t kMagic2 = 0x03400340u;  // + 6 binades, mantissa 1.5: M = 1.5 * 2^(e + 6)
#pragma unroll
  for (int h = 0; h < R / 2; ++h) {
    // bf16 of 2^-s per row: the float's upper half (exact for 2^-127 too); 0 marks a NaN row.
    const uint32_t inv2 = (inv[2 * h] >> 16) | (inv[2 * h + 1] & 0xFFFF0000u);
    uint32_t c[8], vs[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t v = mul_bf16x2(g[h][i], inv2);
      if constexpr (F16) {  // c: the magic-offset codes; vs: the values for their signs
        c[i] = fp4_codes_f16(v);  // a NaN / Inf row's half is garbage here and stored as zeros below
        vs[i] = v;
        continue;
      }
      // |v| < 8 in every row that is stored; the clamp keeps a NaN/Inf row (scale 0xFF, stored as
      // zeros) from borrowing across halves into its partner row in the subtraction below.
      const uint32_t a = min_u16x2(v & 0x7FFF7FFFu, 0x41004100u);
      const uint32_t e = max_u16x2(a & 0x7F807F80u, kEmin2);
      const uint32_t m = e + kMagic2;
      const uint32_t qv = add_bf16x2(a, m) - m;                        // |v| / 2^(e - 1), rounded
      const uint32_t code = min_u16x2(qv + (((e - kEmin2) >> 6) & 0x00FF00FFu), 0x00070007u);
      c[i] = code | ((v >> 12) & 0x00080008u);                         // sign to bit 3 of each half
    }
    uint32_t wa, wb;
    if constexpr (F16) {
      wa = pack_fp4x4_f16({c[0], c[1], c[2], c[3]}, {vs[0], vs[1], vs[2], vs[3]});
      wb = pack_fp4x4_f16({c[4], c[5], c[6], c[7]}, {vs[4], vs[5], vs[6], vs[7]});
    } else {
      wa = c[0] | (c[1] << 4) | (c[2] << 8) | (c[3] << 12);
      wb = c[4] | (c[5] << 4) | (c[6] << 8) | (c[7] << 12);
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int r = 2 * h + k;
      if (r >= rows) break;
      const uint32_t word = __byte_perm(wa, wb, k == 0 ? 0x5410 : 0x7632);
      stored[r] = inv[r] != 0 ? word : 0u;
      *reinterpret_cast<uint32_t*>(p.codes[0] + (row0 + r) * p.row_bytes[0] + lb * 16 + 4 * q) = stored[r];
    }
  }
}

// v9's FP8 / FP6 path: as v6 (hardware cvt on v * 2^-k), but whole words at a time: the cvt pairs
// are joined with PRMT, FP6 magnitudes are clamped in float before the cvt (|v| <= max_normal, so
// the 8-bit magnitude never exceeds 0x1F) and the sign moves from bit 7 to bit 5 of all four bytes
// with one shift and one LOP3; the 6-bit codes are then packed with shifts of the whole word.
// F16 (v11): FP6 without the two float clamps per value. The scale rule keeps the scaled |v| below
// 2^(emax + 1) (8 for E2M3, 32 for E3M2), so its 8-bit code's magnitude is at most 0x20, reached only
// above max_normal; one subtraction per 4 codes turns 0x20 into 0x1F (the saturation).
// lo[r] / hi[r]: row r's stored bytes 0-3 / 4-7 (FP6: 4-5), as the decode GEMV's pre-pass loads them.
template <class F, int R, bool F16 = false>
__device__ __forceinline__ void encode_store_fp68_words(const V3Args& p, int seg, const uint32_t (&g)[R / 2][8],
                                                        const uint32_t (&inv)[R], int64_t row0, int rows, int lb, int q,
                                                        uint32_t (&lo)[R], uint32_t (&hi)[R]) {
  constexpr bool kFp6 = F::kBits == 6, kE5M2 = kFp6 && F::kM == 2;
  constexpr float kShift = !kFp6 ? 1.0f : kE5M2 ? 1.0f / 4096.0f : 1.0f / 64.0f;
  constexpr float kMax = F::kBits == 8 ? 448.0f : kE5M2 ? 28.0f : 7.5f;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    const float sck = __uint_as_float(inv[r]) * kShift;  // exact: a power of two, >= 2^-139
    uint32_t d[4];
#pragma unroll
    for (int i = 0; i < 8; i += 2) {
      float v[2];
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const uint32_t w = g[r / 2][i + k];
        float x = __uint_as_float((r & 1) ? (w & 0xffff0000u) : (w << 16));
        if constexpr (kFp6 && !F16) x = fminf(fmaxf(x * __uint_as_float(inv[r]), -kMax), kMax) * kShift;  // saturate first
        else x *= sck;
        v[k] = x;
      }
      d[i / 2] = cvt_fp8x2<kE5M2>(v[1], v[0]);
    }
    uint32_t w0 = __byte_perm(d[0], d[1], 0x5410), w1 = __byte_perm(d[2], d[3], 0x5410);  // codes 0-3, 4-7
    if (inv[r] == 0) w0 = w1 = 0u;  // NaN row: codes 0
    uint8_t* out = p.codes[seg] + (row0 + r) * p.row_bytes[seg];
    if constexpr (!kFp6) {
      lo[r] = w0, hi[r] = w1;
      *reinterpret_cast<uint2*>(out + lb * 32 + 8 * q) = make_uint2(w0, w1);
    } else {
      // Byte s.mmmmmmm (magnitude <= 0x1F, or 0x20 for F16) -> 6-bit code s.mmmmm, 4 at a time.
      if constexpr (F16) {
        w0 = ((w0 & 0x3F3F3F3Fu) - ((w0 >> 5) & 0x01010101u)) | ((w0 >> 2) & 0x20202020u);
        w1 = ((w1 & 0x3F3F3F3Fu) - ((w1 >> 5) & 0x01010101u)) | ((w1 >> 2) & 0x20202020u);
      } else {
        w0 = (w0 & 0x1F1F1F1Fu) | ((w0 >> 2) & 0x20202020u);
        w1 = (w1 & 0x1F1F1F1Fu) | ((w1 >> 2) & 0x20202020u);
      }
      // 4 codes in bytes -> 24 bits.
      const uint32_t p0 = (w0 & 0x3Fu) | ((w0 >> 2) & 0xFC0u) | ((w0 >> 4) & 0x3F000u) | ((w0 >> 6) & 0xFC0000u);
      const uint32_t p1 = (w1 & 0x3Fu) | ((w1 >> 2) & 0xFC0u) | ((w1 >> 4) & 0x3F000u) | ((w1 >> 6) & 0xFC0000u);
      const uint32_t l = p0 | (p1 << 24), h = p1 >> 8;
      lo[r] = l, hi[r] = h;
      uint8_t* o = out + lb * 24 + 6 * q;  // 4-byte aligned for even q, 2-byte for odd q
      if ((q & 1) == 0) {
        *reinterpret_cast<uint32_t*>(o) = l;
        *reinterpret_cast<uint16_t*>(o + 4) = static_cast<uint16_t>(h);
      } else {
        *reinterpret_cast<uint16_t*>(o) = static_cast<uint16_t>(l);
        *reinterpret_cast<uint32_t*>(o + 2) = (l >> 16) | (h << 16);
      }
    }
  }
}

// v13: the quad's block kb of its rows in the decode-ready layout (mx_decode_acts.cuh), from the code
// words just stored (lo / hi per row, as the GEMV's pre-pass loads them) and the scale codes (sc: of this
// lane's row q & (R - 1); sc0: of row 0), by the pre-pass's own decoders (mx_gemv_prepared_common.cuh):
// the same bytes it would write. Every lane of the quad is here (a block's 4 units are one lane quad,
// active together, in one segment): the FP4 block sums are quad shuffles. Rows past M (r >= rows) are
// not decoded: their start values are 0, their slots are not written.
template <int SEG, bool E2M3, int R>
__device__ __forceinline__ void store_decode_slots(const V3Args& p, int kb, int q, int64_t row0, int rows, const uint32_t (&lo)[R],
                                                   const uint32_t (&hi)[R], uint32_t sc, uint32_t sc0) {
  const DecodeActsView& d = p.dact;
  const unsigned quad = 0xFu << (threadIdx.x & 28u);
  constexpr float kScaleFactor = SEG == 0 ? 0.25f : 1.0f;  // FP4: (2a)(2w) = 4 aw
  uint4 b[R];
  int c[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    c[r] = 0;
    if (r >= rows) continue;  // uniform over the quad (and the CTA)
    if constexpr (SEG == 0) {
      int sum = gemvp::fp4x8_to_s8(lo[r], b[r].x, b[r].y);
      sum += __shfl_xor_sync(quad, sum, 1);
      sum += __shfl_xor_sync(quad, sum, 2);
      c[r] = -12 * sum;
      b[r].z = b[r].w = 0u;
    } else {
      uint32_t P[4];
      gemvp::row_pairs<SEG, E2M3>(lo[r], hi[r], P);
      b[r] = make_uint4(P[0], P[1], P[2], P[3]);
    }
  }
  if (d.slots == 1) {  // M = 1: the compact one-token layout
    const float s0 = mixed::scale_f32(sc0) * kScaleFactor;
    uint4 v = b[0];
    if constexpr (SEG == 0) v.z = __float_as_uint(s0), v.w = static_cast<uint32_t>(c[0]);
    d.b[kb * 4 + q] = v;
    if (q == 0) d.s[kb] = s0;
    return;
  }
  const int64_t base = static_cast<int64_t>(kb) * d.slots;  // tiles: whole slots, lane q the pair of row q
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    d.b[(base + row0 + r) * 4 + q] = b[r];
  }
  int cq = c[0];
#pragma unroll
  for (int r = 1; r < R; ++r) cq = q == r ? c[r] : cq;
  if (q < R && q < rows)
    *reinterpret_cast<float2*>(d.s + 2 * (base + row0 + q)) = make_float2(mixed::scale_f32(sc) * kScaleFactor, __int_as_float(cq));
}

// Encodes and stores the thread's 8 columns of every row. g[h][i]: rows 2h (low half) and 2h + 1
// (high half) of column i; inv[r]: 2^-scale of row r, 0 for NaN-scale rows (codes 0).
template <class F, int R, bool FAST, bool HW>
__device__ __forceinline__ void encode_store(const V3Args& p, int seg, const uint32_t (&g)[R / 2][8],
                                             const uint32_t (&inv)[R], int64_t row0, int rows, int lb, int q) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
    const float sc = __uint_as_float(inv[r]);
    const uint32_t keep = inv[r] != 0 ? 0xffffffffu : 0u;
    uint32_t c[8];
    if constexpr (HW && F::kBits >= 6) {
      constexpr bool kE5M2 = F::kBits == 6 && F::kM == 2;
      constexpr float kShift = F::kBits == 8 ? 1.0f : kE5M2 ? 1.0f / 4096.0f : 1.0f / 64.0f;
      const float sck = sc * kShift;  // exact: a power of two, >= 2^-139
      float v[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t w = g[r / 2][i];
        v[i] = __uint_as_float((r & 1) ? (w & 0xffff0000u) : (w << 16)) * sck;
      }
#pragma unroll
      for (int i = 0; i < 8; i += 2) {
        const uint32_t d = cvt_fp8x2<kE5M2>(v[i + 1], v[i]);
        c[i] = d & 0xffu;
        c[i + 1] = d >> 8;
      }
      if constexpr (F::kBits == 6)
#pragma unroll
        for (int i = 0; i < 8; ++i) c[i] = min(c[i] & 0x7fu, F::kMaxCode) | ((c[i] & 0x80u) >> 2);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint32_t w = g[r / 2][i];
        const uint32_t fb = (r & 1) ? (w & 0xffff0000u) : (w << 16);
        if constexpr (FAST) c[i] = encode_elem_rne<F>(fb, sc);
        else c[i] = encode_elem<F>(fb, sc, p.even);
      }
    }
    uint8_t* out = p.codes[seg] + (row0 + r) * p.row_bytes[seg];
    if constexpr (F::kBits == 4) {
      uint32_t word = 0;
#pragma unroll
      for (int i = 0; i < 8; ++i) word |= c[i] << (4 * i);
      *reinterpret_cast<uint32_t*>(out + lb * 16 + 4 * q) = word & keep;
    } else if constexpr (F::kBits == 8) {
      uint2 v;
      v.x = (c[0] | (c[1] << 8) | (c[2] << 16) | (c[3] << 24)) & keep;
      v.y = (c[4] | (c[5] << 8) | (c[6] << 16) | (c[7] << 24)) & keep;
      *reinterpret_cast<uint2*>(out + lb * 32 + 8 * q) = v;
    } else {
      const uint32_t lo = (c[0] | (c[1] << 6) | (c[2] << 12) | (c[3] << 18) | (c[4] << 24) | (c[5] << 30)) & keep;
      const uint32_t hi = ((c[5] >> 2) | (c[6] << 4) | (c[7] << 10)) & keep;
      uint8_t* o = out + lb * 24 + 6 * q;  // 4-byte aligned for even q, 2-byte for odd q
      if ((q & 1) == 0) {
        *reinterpret_cast<uint32_t*>(o) = lo;
        *reinterpret_cast<uint16_t*>(o + 4) = static_cast<uint16_t>(hi);
      } else {
        *reinterpret_cast<uint16_t*>(o) = static_cast<uint16_t>(lo);
        *reinterpret_cast<uint32_t*>(o + 2) = (lo >> 16) | (hi << 16);
      }
    }
  }
}


// FAST = v4: packed block max and encode_elem_rne (ties to even only). MINB: register cap for MINB
// CTAs per SM; v3 and v4 use 5 (what plain __launch_bounds__(256) gave: 48 registers; with
// (256, 1) ptxas took 64-76), v5 = v4 with 6 (40 registers; ncu on v4: 5 CTAs by registers, 61%
// issue slots, 13 cycles between issues per warp).
// DACT (v13): also the decode-ready layout (p.dact; store_decode_slots; PACKED only). EARLY (v13): the
// thread's first unit of permutation loaded before the staging, so that its round trip overlaps the
// staging loads instead of following the barrier.
template <int R, bool FAST, int MINB, bool HW, int AHEAD, bool PACKED, int PRO, bool F16 = false, bool DACT = false,
          bool EARLY = false>
__global__ void __launch_bounds__(256, MINB) reorder_quantize_v3(V3Args p) {
  static_assert(!DACT || PACKED, "the decode-ready layout is written by the packed encoders");
  ptx::griddep_launch_dependents();  // a decode GEMV launched as our programmatic dependent (v21) may start now
  extern __shared__ uint4 s_raw[];
  uint8_t* s = reinterpret_cast<uint8_t*>(s_raw);
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * R;
  const int rows = static_cast<int>(p.M - row0 < R ? p.M - row0 : R);  // rows of this CTA that exist
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int units = static_cast<int>(p.K / 8);  // groups of 8 columns
  int4 early_a = make_int4(0, 0, 0, 0), early_b = early_a;  // EARLY: the first unit's permutation
  if constexpr (EARLY) {
    const int u_first = (p.split_units ? static_cast<int>(blockIdx.y) * p.split_units : 0) + warp * 32 + lane;
    const int u_stop = p.split_units ? min(units, static_cast<int>(blockIdx.y) * p.split_units + p.split_units) : units;
    if (u_first < u_stop) early_a = __ldg(p.perm4 + 2 * u_first), early_b = __ldg(p.perm4 + 2 * u_first + 1);
  }

  // Stage R rows, interleaved by column (rows past M are zeros). AHEAD > 1 (v7, v8): the loads of
  // AHEAD column groups are all issued before any of them is stored, so that a thread keeps
  // AHEAD * R 16-byte loads in flight instead of R (v6 left DRAM ~48% busy; GPU_NOTES).
  auto stage_store = [&](uint8_t* base, int gi, const uint4 (&v)[R]) {
    const uint32_t g = static_cast<uint32_t>(gi);
    if constexpr (R == 4) {
      const uint32_t a[4] = {v[0].x, v[0].y, v[0].z, v[0].w}, b[4] = {v[1].x, v[1].y, v[1].z, v[1].w};
      const uint32_t c[4] = {v[2].x, v[2].y, v[2].z, v[2].w}, d[4] = {v[3].x, v[3].y, v[3].z, v[3].w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint4 chunk = make_uint4(__byte_perm(a[i], b[i], 0x5410), __byte_perm(c[i], d[i], 0x5410),
                                       __byte_perm(a[i], b[i], 0x7632), __byte_perm(c[i], d[i], 0x7632));
        *reinterpret_cast<uint4*>(base + g * 64 + 16 * (static_cast<uint32_t>(i) ^ ((g >> 1) & 3u))) = chunk;
      }
    } else {
      const uint32_t a[4] = {v[0].x, v[0].y, v[0].z, v[0].w}, b[4] = {v[1].x, v[1].y, v[1].z, v[1].w};
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint4 chunk = make_uint4(__byte_perm(a[2 * i], b[2 * i], 0x5410), __byte_perm(a[2 * i], b[2 * i], 0x7632),
                                       __byte_perm(a[2 * i + 1], b[2 * i + 1], 0x5410),
                                       __byte_perm(a[2 * i + 1], b[2 * i + 1], 0x7632));
        *reinterpret_cast<uint4*>(base + g * 32 + 16 * (static_cast<uint32_t>(i) ^ ((g >> 2) & 1u))) = chunk;
      }
    }
  };
  // Fused prologues (PRO, mx_fused_quantize.cu's definitions, fused_prologue_math.hpp), each value
  // rounded to bf16 by one hardware cvt per pair (fused::to_bf16's integer steps cost ~6 ALU
  // instructions per value). SwiGLU: the chunks are transformed in registers before staging.
  // RMSNorm (v11 only): x is staged raw while each thread sums its rows' squares (chunk order tid,
  // tid + 256, ..., elements in order: the kernel's fixed sum order), the weight goes to shared
  // memory as floats, and each value is normalized right after the gather (one read of x; the
  // two-pass form, which re-read x from L2 to normalize before staging, was 55.2 against 49.5 us).
  auto load_chunk = [&](const uint16_t* base, int64_t r, int gi) {
    return __ldg(reinterpret_cast<const uint4*>(base + (row0 + r) * p.ld) + gi);
  };
  float inv_rms[R];
  constexpr bool kRmsNorm = PRO == kProRmsBf16 || PRO == kProRmsF32;  // normalized after the gather
  static_assert(!kRmsNorm || F16, "the RMSNorm prologue exists in v11's form only");
  float* s_w = reinterpret_cast<float*>(s + p.K * 2 * R);  // kRmsNorm: the weight, K floats
  constexpr bool kLate = PRO == kProSwigluLate;
  uint8_t* s_up = s + p.K * 2 * R;  // kLate: the up rows, staged as x
  __shared__ float s_warp[R][8];
  // Row r's chunk gi as staged: x, or the prologue's bf16 output.
  auto chunk = [&](int64_t r, int gi) -> uint4 {
    if (r >= rows) return make_uint4(0, 0, 0, 0);
    if constexpr (PRO != kProSwiglu) {  // x (RMSNorm: normalized after the gather)
      return load_chunk(p.x, r, gi);
    } else {  // (the pair loop written here: through swiglu_bf16x8 ptxas schedules this kernel differently)
      const uint4 gv = load_chunk(p.x, r, gi), uv = load_chunk(p.up, r, gi);
      const uint32_t ga[4] = {gv.x, gv.y, gv.z, gv.w}, ua[4] = {uv.x, uv.y, uv.z, uv.w};
      uint32_t o[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) o[i] = swiglu_bf16x2(ga[i], ua[i]);
      return make_uint4(o[0], o[1], o[2], o[3]);
    }
  };
  float acc_sq[R];  // kRmsNorm: this thread's sums of squares per row (chunk order tid, tid + 256, ...)
#pragma unroll
  for (int r = 0; r < R; ++r) acc_sq[r] = 0.0f;
  for (int gi0 = tid; gi0 < units; gi0 += 256 * AHEAD) {
    uint4 v[AHEAD][R], vu[kLate ? AHEAD : 1][R];
#pragma unroll
    for (int j = 0; j < AHEAD; ++j) {
      const int gi = gi0 + 256 * j;
#pragma unroll
      for (int r = 0; r < R; ++r) v[j][r] = gi < units ? chunk(r, gi) : make_uint4(0, 0, 0, 0);
      if constexpr (kLate) {
#pragma unroll
        for (int r = 0; r < R; ++r) vu[j][r] = gi < units && r < rows ? load_chunk(p.up, r, gi) : make_uint4(0, 0, 0, 0);
      }
      if constexpr (kRmsNorm) {
        if (gi < units) {
          float4 w0, w1;
          if constexpr (PRO == kProRmsF32) {
            const float4* wp = reinterpret_cast<const float4*>(p.w) + 2 * gi;
            w0 = __ldg(wp);
            w1 = __ldg(wp + 1);
          } else {
            const uint4 wq = __ldg(reinterpret_cast<const uint4*>(p.w) + gi);
            w0 = make_float4(__uint_as_float(wq.x << 16), __uint_as_float(wq.x & 0xffff0000u), __uint_as_float(wq.y << 16),
                             __uint_as_float(wq.y & 0xffff0000u));
            w1 = make_float4(__uint_as_float(wq.z << 16), __uint_as_float(wq.z & 0xffff0000u), __uint_as_float(wq.w << 16),
                             __uint_as_float(wq.w & 0xffff0000u));
          }
          reinterpret_cast<float4*>(s_w)[2 * gi] = w0;
          reinterpret_cast<float4*>(s_w)[2 * gi + 1] = w1;
        }
#pragma unroll
        for (int r = 0; r < R; ++r) {  // rows past M are zeros: their sums are never used
          const uint32_t a[4] = {v[j][r].x, v[j][r].y, v[j][r].z, v[j][r].w};
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float l = __uint_as_float(a[i] << 16), h = __uint_as_float(a[i] & 0xffff0000u);
            acc_sq[r] = fmaf(l, l, acc_sq[r]);
            acc_sq[r] = fmaf(h, h, acc_sq[r]);
          }
        }
      }
    }
#pragma unroll
    for (int j = 0; j < AHEAD; ++j)
      if (gi0 + 256 * j < units) {
        stage_store(s, gi0 + 256 * j, v[j]);
        if constexpr (kLate) stage_store(s_up, gi0 + 256 * j, vu[j]);
      }
  }
  if constexpr (kRmsNorm) {  // warp butterfly, then the warps in order: a fixed sum order
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int o = 16; o >= 1; o >>= 1) acc_sq[r] = acc_sq[r] + __shfl_xor_sync(0xffffffffu, acc_sq[r], o);
      if (lane == 0) s_warp[r][warp] = acc_sq[r];
    }
  }
  __syncthreads();
  if constexpr (kRmsNorm) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float total = s_warp[r][0];
#pragma unroll
      for (int w = 1; w < 8; ++w) total = total + s_warp[r][w];
      inv_rms[r] = fused::inv_rms(total, p.K, p.eps);
    }
  }

  // Quantize: the lane owns unit u = 8 permuted columns = quarter q of MX block u / 4. Loop bounds
  // are warp-uniform so that every lane takes part in the shuffles. v12: this CTA's units only
  // (split_units a multiple of 32: a block's 4 units stay in one warp's lane quad).
  const int u_begin = p.split_units ? static_cast<int>(blockIdx.y) * p.split_units : 0;
  const int u_end = p.split_units ? min(units, u_begin + p.split_units) : units;
  for (int u0 = u_begin + warp * 32; u0 < u_end; u0 += 256) {
    const int u = u0 + lane;
    const bool active = u < u_end;
    const int b = u >> 2, q = u & 3;
    uint32_t g[R / 2][8];
    if (active) {
      int4 pa, pb;
      if (EARLY && u0 == u_begin + warp * 32) pa = early_a, pb = early_b;
      else pa = __ldg(p.perm4 + 2 * u), pb = __ldg(p.perm4 + 2 * u + 1);
      const int cols[8] = {pa.x, pa.y, pa.z, pa.w, pb.x, pb.y, pb.z, pb.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint8_t* src = s + col_offset<R>(static_cast<uint32_t>(cols[i]));
        if constexpr (R == 4) {
          const uint2 t = *reinterpret_cast<const uint2*>(src);
          g[0][i] = t.x;
          g[1][i] = t.y;
        } else {
          g[0][i] = *reinterpret_cast<const uint32_t*>(src);
        }
        if constexpr (kLate) {  // rows 2h (low half) and 2h + 1 (high half) of column cols[i]
          const uint8_t* usrc = s_up + col_offset<R>(static_cast<uint32_t>(cols[i]));
          uint32_t up[R / 2];
          if constexpr (R == 4) {
            const uint2 t = *reinterpret_cast<const uint2*>(usrc);
            up[0] = t.x;
            up[1] = t.y;
          } else {
            up[0] = *reinterpret_cast<const uint32_t*>(usrc);
          }
#pragma unroll
          for (int h = 0; h < R / 2; ++h) g[h][i] = swiglu_bf16x2(g[h][i], up[h]);
        }
        if constexpr (kRmsNorm) {
          const float wc = s_w[cols[i]];
#pragma unroll
          for (int h = 0; h < R / 2; ++h)
            g[h][i] = pack_bf16x2(fused::rmsnorm_f32(__uint_as_float(g[h][i] << 16), inv_rms[2 * h], wc),
                                  fused::rmsnorm_f32(__uint_as_float(g[h][i] & 0xffff0000u), inv_rms[2 * h + 1], wc));
        }
      }
    } else {
#pragma unroll
      for (int h = 0; h < R / 2; ++h)
#pragma unroll
        for (int i = 0; i < 8; ++i) g[h][i] = 0;
    }
    // Block max |x| per row over the 4 lanes of the block (bf16 magnitude bits compare as integers).
    uint32_t am[R];
#pragma unroll
    for (int h = 0; h < R / 2; ++h) {
      if constexpr (FAST && F16) {
        // v11: bf16 max of magnitudes (max.NaN.xorsign.abs: |a| vs |b|, a NaN propagates; the sign
        // bit is masked once at the end), the same as the integer max of the magnitude bits below
        // for every non-NaN value, and >= 0x7F80 whenever a NaN or Inf is present, as there.
        uint32_t m2 = g[h][0];
#pragma unroll
        for (int i = 1; i < 8; ++i) m2 = max_abs_bf16x2(m2, g[h][i]);
        m2 &= 0x7fff7fffu;
        am[2 * h] = m2 & 0xffffu;
        am[2 * h + 1] = m2 >> 16;
      } else if constexpr (FAST) {
        uint32_t m2 = g[h][0] & 0x7fff7fffu;
#pragma unroll
        for (int i = 1; i < 8; ++i) m2 = max_u16x2(m2, g[h][i] & 0x7fff7fffu);
        am[2 * h] = m2 & 0xffffu;
        am[2 * h + 1] = m2 >> 16;
      } else {
        uint32_t lo = 0, hi = 0;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          lo = max(lo, g[h][i] & 0x7fffu);
          hi = max(hi, g[h][i] & 0x7fff0000u);
        }
        am[2 * h] = lo;
        am[2 * h + 1] = hi >> 16;
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
      am[r] = max(am[r], __shfl_xor_sync(0xffffffffu, am[r], 1));
      am[r] = max(am[r], __shfl_xor_sync(0xffffffffu, am[r], 2));
    }
    const int seg = b < p.blocks4 ? 0 : b < p.blocks4 + p.blocks6 ? 1 : 2;
    const int lb = b - (seg == 0 ? 0 : seg == 1 ? p.blocks4 : p.blocks4 + p.blocks6);
    // Lane q computes the scale of row q (R = 2: lanes 2, 3 repeat rows 0, 1 and do not store).
    const int rq = q & (R - 1);
    uint32_t amq = am[0];
#pragma unroll
    for (int r = 1; r < R; ++r) amq = rq == r ? am[r] : amq;
    const uint32_t sc = scale_code(amq, p.emax[seg], p.max_frac[seg], p.ceil_rule);
    if (active && q < R && rq < rows)
      p.scales[seg][(row0 + rq) * p.seg_blocks[seg] + lb] = static_cast<uint8_t>(sc);
    // 2^(127 - s): normal for s <= 253, the subnormal 2^-127 for s = 254; 0 marks a NaN row.
    const uint32_t invq = sc == 0xFFu ? 0u : sc <= 253u ? (254u - sc) << 23 : 0x00400000u;
    uint32_t inv[R];
#pragma unroll
    for (int r = 0; r < R; ++r) inv[r] = __shfl_sync(0xffffffffu, invq, (lane & ~3) + r);
    const uint32_t sc0 = DACT ? __shfl_sync(0xffffffffu, sc, lane & ~3) : 0u;  // row 0's (v13, M = 1)
    if (!active) continue;
    uint32_t lo[R], hi[R];  // the stored code words per row (zeros for rows past M)
#pragma unroll
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = 0u;
    if (seg == 0) {
      if constexpr (PACKED) encode_store_fp4x2<R, F16>(p, g, inv, row0, rows, lb, q, lo);
      else encode_store<QFp4, R, FAST, HW>(p, 0, g, inv, row0, rows, lb, q);
    }
    else if constexpr (PACKED) {
      if (seg == 2) encode_store_fp68_words<QE4M3, R, F16>(p, 2, g, inv, row0, rows, lb, q, lo, hi);
      else if (p.fp6_e2m3) encode_store_fp68_words<QE2M3, R, F16>(p, 1, g, inv, row0, rows, lb, q, lo, hi);
      else encode_store_fp68_words<QE3M2, R, F16>(p, 1, g, inv, row0, rows, lb, q, lo, hi);
    } else if (seg == 2) encode_store<QE4M3, R, FAST, HW>(p, 2, g, inv, row0, rows, lb, q);
    else if (p.fp6_e2m3) encode_store<QE2M3, R, FAST, HW>(p, 1, g, inv, row0, rows, lb, q);
    else encode_store<QE3M2, R, FAST, HW>(p, 1, g, inv, row0, rows, lb, q);
    if constexpr (DACT) {
      if (seg == 0) store_decode_slots<0, false, R>(p, b, q, row0, rows, lo, hi, sc, sc0);
      else if (seg == 2) store_decode_slots<2, false, R>(p, b, q, row0, rows, lo, hi, sc, sc0);
      else if (p.fp6_e2m3) store_decode_slots<1, true, R>(p, b, q, row0, rows, lo, hi, sc, sc0);
      else store_decode_slots<1, false, R>(p, b, q, row0, rows, lo, hi, sc, sc0);
    }
  }
}

template <int R, bool FAST, int MINB, bool HW = false, int AHEAD = 1, bool PACKED = false, int PRO = kProNone, bool F16 = false,
          bool DACT = false, bool EARLY = false>
void launch_v3(const V3Args& p, cudaStream_t stream) {
  constexpr bool kRmsNorm = PRO == kProRmsBf16 || PRO == kProRmsF32;  // + the weight as floats
  const size_t smem = static_cast<size_t>(p.K) * 2 * R * (PRO == kProSwigluLate ? 2 : 1) + (kRmsNorm ? static_cast<size_t>(p.K) * 4 : 0);
  constexpr auto kernel = reorder_quantize_v3<R, FAST, MINB, HW, AHEAD, PACKED, PRO, F16, DACT, EARLY>;
  static const bool attrs_set = [] {  // once per kernel; the launch's own size sets occupancy
    MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    // Largest shared-memory carveout: ncu showed 5 CTAs/SM by shared memory at K = 4096 (32 KB each).
    MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    return true;
  }();
  (void)attrs_set;
  const int64_t grid = (p.M + R - 1) / R;
  const int64_t units = p.K / 8;
  const int64_t splits = p.split_units ? (units + p.split_units - 1) / p.split_units : 1;
  kernel<<<dim3(static_cast<unsigned>(grid), static_cast<unsigned>(splits)), 256, smem, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

bool aligned(const void* ptr, uintptr_t a) { return (reinterpret_cast<uintptr_t>(ptr) & (a - 1)) == 0; }

// y (M, K) bf16 = SiLU(gate) * up rounded as the fused kernels round it (a thread per 8 columns; gate and
// up rows ld apart). The first pass of the SwiGLU quantizer at small M where the late form does not fit.
__global__ void __launch_bounds__(256) swiglu_rows_bf16(const uint16_t* __restrict__ gate, const uint16_t* __restrict__ up,
                                                       int64_t ld, int64_t M, int64_t K, uint16_t* __restrict__ y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= M * (K / 8)) return;
  const int64_t row = i / (K / 8), c = i % (K / 8);
  reinterpret_cast<uint4*>(y + row * K)[c] =
      swiglu_bf16x8(__ldg(reinterpret_cast<const uint4*>(gate + row * ld) + c), __ldg(reinterpret_cast<const uint4*>(up + row * ld) + c));
}

}  // namespace

namespace {

// The quantizer's arguments for out; false when v3-v9 do not apply (see the header).
bool make_v3_args(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                  mx::ScaleRule rule, mx::Rounding r, V3Args& p) {
  const mx::MixedSplit& s = out.split;
  const int64_t K = s.cols();
  if (K > 51200 || !aligned(d_perm, 16)) return false;
  if (s.n4 && !aligned(out.codes[0], 4)) return false;
  if (s.n6 && !aligned(out.codes[1], 4)) return false;
  if (s.n8 && !aligned(out.codes[2], 8)) return false;
  p = V3Args{};
  p.x = d_x;
  p.ld = K;
  p.perm4 = reinterpret_cast<const int4*>(d_perm);
  p.M = M;
  p.K = K;
  p.blocks4 = static_cast<int>(s.n4 / 32);
  p.blocks6 = static_cast<int>(s.n6 / 32);
  for (int i = 0; i < mx::kSegments; ++i) {
    const mx::ElemInfo& I = mx::info(s.format(i));
    p.codes[i] = out.codes[i];
    p.scales[i] = out.scales[i];
    p.row_bytes[i] = static_cast<int64_t>(mx::packed_row_bytes(s.format(i), s.count(i)));
    p.seg_blocks[i] = static_cast<int>(s.count(i) / mx::kBlock);
    p.emax[i] = I.emax;
    uint32_t mb;
    std::memcpy(&mb, &I.max_normal, 4);
    p.max_frac[i] = mb & 0x7fffffu;
  }
  p.fp6_e2m3 = s.fp6 == mx::ElemFormat::fp6_e2m3;
  p.ceil_rule = rule == mx::ScaleRule::ceil;
  p.even = r == mx::Rounding::even ? 1u : 0u;
  return true;
}

// Rows per CTA of v9's shapes (launch_v9): 4 up to K = 8192, 2 above.
constexpr int64_t v9_rows(int64_t K) { return K <= 8192 ? 4 : 2; }

// launch_v9's dynamic shared memory per CTA: the staged rows (2 bytes per column, R rows) and, for
// RMSNorm, the weight as floats; within the 200 KB the kernels are allowed, or v9 does not apply.
bool v9_fits(int pro, int64_t K) {
  const bool rms = pro == kProRmsBf16 || pro == kProRmsF32;
  return K * 2 * v9_rows(K) + (rms ? K * 4 : 0) <= 200 * 1024;
}

// v12 (the default; also the fused RMSNorm / SwiGLU quantizers): v11, and where its grid of row
// groups is small (M <= 16 on an H100) each row group's K split over CTAs of split_units units, every
// CTA staging (and normalizing) the whole rows but quantizing only its part. Why: at M <= 16 the
// quantizer ran as 1-8 CTAs, each walking all of K (H100, session 14: 6.0 us at K = 4096 and 9.9 us at
// K = 14336 with RMSNorm, where a plain RMSNorm kernel takes 4.4-4.5 us), in front of every decode
// GEMV. The staging and the RMSNorm sum run in every CTA in the same order: bit-identical output.
// SwiGLU then computes SiLU(gate) * up after the gather (kProSwigluLate), for its CTA's columns only.
// MICROMIX_QUANTIZE_SPLIT (0, 64, 128, 256, 512 units per CTA; default 256) overrides it, read per call
// (512 measured in session 15 with the GEMV behind it: the quantizer 7.4 -> 9.9 us on 8B down, slower).
// Returns 0 (no split) for M's row groups of K that fill the GPU.
// v13 (session 15): where the caller passes the decode GEMV's activation buffer (MxDecodeActs), v12's
// split kernels also write it (DACT: store_decode_slots), at 2 CTAs per SM of registers (a few CTAs run
// at these M), with the early loads above K = 4096 (EARLY, launch_v9) and 2 rows per CTA at M <= 2.
int quantize_split_units(int64_t M, int64_t K) {
  const std::string v = env_knob("MICROMIX_QUANTIZE_SPLIT", {"0", "64", "128", "256", "512"});
  static const int sms = [] {
    int dev = 0, n = 132;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
  }();
  const int64_t row_ctas = (M + v9_rows(K) - 1) / v9_rows(K);
  if (row_ctas * 8 > sms) return 0;  // enough row groups to fill the GPU
  return v.empty() ? 256 : std::stoi(v);
}

// CTAs per row group along K for a split of `split` units (0: no split, one CTA).
int64_t quantize_splits(int64_t K, int split) { return split ? (K / 8 + split - 1) / split : 1; }

// Rows per CTA of the split kernels that write the decode layout (v13): decode_quantizer_rows
// (gemv_shape_policy.hpp; measurements there and in bench/GPU_NOTES.md, session 16) unless
// MICROMIX_QUANTIZE_R2 (0: 4 rows, 1: 2 rows up to K = 8192; read per call) overrides it.
int64_t dact_rows(int64_t M, int64_t K, int split) {
  const std::string v = env_knob("MICROMIX_QUANTIZE_R2", {"0", "1"});
  if (K <= 8192 && !v.empty()) return v == "1" ? 2 : 4;
  return decode_quantizer_rows(M, K, quantize_splits(K, split));
}

}  // namespace

int64_t quantizer_ctas(int64_t M, int64_t K) {
  const int split = quantize_split_units(M, K);
  const int64_t rows = split ? dact_rows(M, K, split) : v9_rows(K);
  return (M + rows - 1) / rows * quantize_splits(K, split);
}

namespace {

// v9's configuration with prologue PRO: 4 rows per CTA up to K = 8192; 2 rows and 4 staging loads
// ahead above (v8 vs v6 on H200: K = 14336 0.53 vs 0.47 of copy, K = 4096 0.46 vs 0.49).
// F16 = v11: v9's shapes with v11's encoders (fp4_codes_f16, the FP6 words without float clamps) and,
// without a prologue, two column groups of staging loads in flight at K <= 8192 (with v9's integer
// encoder the same change lost: v7; with the integer pipe relieved it gains 3%, bench/GPU_NOTES.md).
// split_units: v12's K split (quantize_split_units; 0: none).
// v13: with p.dact set, v11's kernels on the split (small-M) path also write the decode-ready layout;
// returns whether they did (elsewhere the caller writes it from the MX output: write_decode_acts).
template <int PRO, bool F16 = false>
bool launch_v9(V3Args p, cudaStream_t stream, int split_units = 0) {
  p.split_units = split_units;
  // (The prologues need more registers: 4 CTAs per SM instead of 5 keeps them from spilling. The late
  // SwiGLU runs at small M only, a few CTAs: 2 per SM, and 2 column groups ahead instead of 4 above
  // K = 8192, hold its gate and up loads without spilling.)
  constexpr bool kLate = PRO == kProSwigluLate;
  constexpr int kMinBlocks = PRO == kProNone ? 5 : kLate ? 2 : 4;
  constexpr int kAhead = F16 && PRO == kProNone ? 2 : 1;
  if constexpr (F16 && PRO != kProSwiglu) {
    if (p.dact.slots && split_units) {  // (a few CTAs at these M: registers for the layout's values, no spills)
      constexpr int kDactMinBlocks = 2;
      // Above K = 4096 (v13's default; MICROMIX_QUANTIZE_EARLY 1 / 0 forces it on / off, read per call):
      // 4 column groups of staging loads in flight (up to 4x fewer dependent round trips at K = 8192-14336)
      // and the first unit's permutation loaded before the staging. H100, 70/20/10, chains (RMSNorm / SwiGLU
      // + quantizer + v22), three alternating rounds (bench/GPU_NOTES.md, session 15): Llama-3.1-70B (K =
      // 8192) qkv / o / gate_up M = 1 -2.1 .. -3.0 us, M = 4 -0.6 .. -0.9; 8B down (K = 14336) -1.0 .. -1.1;
      // at K = 4096 (8B qkv / o) -0.1 .. +0.5: off there.
      const std::string early = env_knob("MICROMIX_QUANTIZE_EARLY", {"0", "1"});
      // 2 rows per CTA also up to K = 8192 where dact_rows says so (at M <= 2 always: a 4-row CTA there spent half
      // its row-pair work on empty rows; session 15: 8B qkv / o M = 1-2 -0.6 .. -0.9 us, 70B -0.7 .. -1.1).
      if (p.K <= 8192 && dact_rows(p.M, p.K, split_units) == 2) {
        if (early.empty() ? p.K > 4096 : early == "1") launch_v3<2, true, kDactMinBlocks, true, 4, true, PRO, F16, true, true>(p, stream);
        else launch_v3<2, true, kDactMinBlocks, true, kAhead, true, PRO, F16, true>(p, stream);
        return true;
      }
      if (early.empty() ? p.K > 4096 : early == "1") {
        if (p.K <= 8192) launch_v3<4, true, kDactMinBlocks, true, kLate ? 2 : 4, true, PRO, F16, true, true>(p, stream);
        else launch_v3<2, true, kDactMinBlocks, true, 4, true, PRO, F16, true, true>(p, stream);
        return true;
      }
      if (p.K <= 8192) launch_v3<4, true, kDactMinBlocks, true, kAhead, true, PRO, F16, true>(p, stream);
      else launch_v3<2, true, kDactMinBlocks, true, kLate ? 2 : 4, true, PRO, F16, true>(p, stream);
      return true;
    }
  }
  if (p.K <= 8192) launch_v3<4, true, kMinBlocks, true, kAhead, true, PRO, F16>(p, stream);
  else launch_v3<2, true, kMinBlocks, true, kLate ? 2 : 4, true, PRO, F16>(p, stream);
  return false;
}

}  // namespace

bool mx_fused_reorder_quantize_v9_launch(FusedPrologue kind, const uint16_t* d_x, const uint16_t* d_up, int64_t ld,
                                         const void* d_w, float eps, int64_t M, const int32_t* d_perm,
                                         const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                         cudaStream_t stream, const DecodeActsView& acts) {
  V3Args p;
  if (r != mx::Rounding::even || !make_v3_args(d_x, M, d_perm, out, rule, r, p)) return false;
  const int pro = kind == FusedPrologue::swiglu ? kProSwiglu : kind == FusedPrologue::rms_f32w ? kProRmsF32 : kProRmsBf16;
  if (!v9_fits(pro, p.K)) return false;  // RMSNorm beyond K = 25600: the one-row kernel (mx_fused_quantize.cu)
  if (M == 0 || p.K == 0) return true;
  p.dact = acts;
  bool wrote = false;
  p.up = d_up;
  p.w = d_w;
  p.ld = ld;
  p.eps = eps;
  if (kind == FusedPrologue::swiglu) {
    // Split over CTAs (small M): SiLU(gate) * up after the gather (twice the staging, within the 200 KB
    // up to K = 12800 at 4 rows per CTA and K = 25600 at 2), else while staging.
    const int split = quantize_split_units(p.M, p.K);
    if (split && p.K * 2 * v9_rows(p.K) * 2 <= 200 * 1024) {
      wrote = launch_v9<kProSwigluLate, true>(p, stream, split);
    } else if (split) {
      // Beyond that (K > 25600, e.g. Llama-3.1-70B's down) each CTA would compute SiLU over its whole
      // rows while staging (19-34 us at M <= 16, H100): two passes instead, SwiGLU over the whole GPU
      // into bf16 scratch, then the split quantizer on it (the same bits as the fused form).
      auto* y = static_cast<uint16_t*>(scratch_alloc(static_cast<size_t>(p.M * p.K) * 2, stream));
      const int64_t threads = p.M * (p.K / 8);
      swiglu_rows_bf16<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(p.x, p.up, p.ld, p.M, p.K, y);
      MM_CUDA_CHECK(cudaGetLastError());
      V3Args q = p;
      q.x = y;
      q.up = nullptr;
      q.ld = p.K;
      wrote = launch_v9<kProNone, true>(q, stream, split);
      scratch_free(y, stream);
    } else {
      launch_v9<kProSwiglu, true>(p, stream);
    }
  }
  else if (kind == FusedPrologue::rms_f32w) wrote = launch_v9<kProRmsF32, true>(p, stream, quantize_split_units(p.M, p.K));
  else wrote = launch_v9<kProRmsBf16, true>(p, stream, quantize_split_units(p.M, p.K));
  if (acts.slots && !wrote) write_decode_acts(out, acts, stream);
  return true;
}

bool mx_reorder_quantize_v3_launch(int version, const uint16_t* d_x, int64_t M, const int32_t* d_perm,
                                   const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r, cudaStream_t stream,
                                   const DecodeActsView& acts) {
  V3Args p;
  if (!make_v3_args(d_x, M, d_perm, out, rule, r, p)) return false;
  if (M == 0 || p.K == 0) return true;
  const int64_t K = p.K;
  const bool fast = version >= 4 && r == mx::Rounding::even;
  if (fast && version == 12) {  // the default: also the decode-ready layout (v13's kernels) where asked
    p.dact = acts;
    if (!launch_v9<kProNone, true>(p, stream, quantize_split_units(p.M, p.K)) && acts.slots) write_decode_acts(out, acts, stream);
    return true;
  }
  if (acts.slots) {  // the older versions: the layout from their output, after them
    if (!mx_reorder_quantize_v3_launch(version, d_x, M, d_perm, out, rule, r, stream, DecodeActsView{})) return false;
    write_decode_acts(out, acts, stream);
    return true;
  }
  if (fast && version == 8) {
    launch_v3<2, true, 5, true, 4>(p, stream);
  } else if (fast && version == 9) {
    launch_v9<kProNone>(p, stream);
  } else if (fast && version == 11) {
    launch_v9<kProNone, true>(p, stream);

  } else if (K <= 14336) {
    if (fast && version == 7) launch_v3<4, true, 5, true, 2>(p, stream);
    else if (fast && version >= 6) launch_v3<4, true, 5, true>(p, stream);
    else if (fast && version >= 5) launch_v3<4, true, 6>(p, stream);
    else if (fast) launch_v3<4, true, 5>(p, stream);
    else launch_v3<4, false, 5>(p, stream);
  } else {
    if (fast && version == 7) launch_v3<2, true, 5, true, 2>(p, stream);
    else if (fast && version >= 6) launch_v3<2, true, 5, true>(p, stream);
    else if (fast && version >= 5) launch_v3<2, true, 6>(p, stream);
    else if (fast) launch_v3<2, true, 5>(p, stream);
    else launch_v3<2, false, 5>(p, stream);
  }
  return true;
}

}  // namespace micromix::cuda
