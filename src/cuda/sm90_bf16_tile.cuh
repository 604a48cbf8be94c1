// Device helpers of the BF16-wgmma mixed MX GEMMs (internal; sm90_mx_mixed_gemm_bf16*.cu): wgmma on
// K-major 32-byte-swizzled shared tiles, the MX element -> BF16 converters with the E8M0 scale
// folded in (exact for normal values; see sm90_mx_mixed_gemm_bf16.cu), one block row's conversion
// into the swizzled tile, the exact CUDA-core fallback of a tile, and the accumulator epilogue.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/mx_bits.cuh"
#include "cuda/ptx_helpers.cuh"
#include "cuda/sm90_mx_mixed_gemm_fp8.cuh"

namespace micromix::cuda::bf16tc {

using namespace mixed;
using namespace ptx;

// Below this scale code a block's nonzero values may be BF16 subnormals (inexact or flushed).
constexpr int kMinSafeScale = 10;

#define MM_WGMMA_ACC64(o)                                                                                        \
  "+f"(d[o + 0]), "+f"(d[o + 1]), "+f"(d[o + 2]), "+f"(d[o + 3]), "+f"(d[o + 4]), "+f"(d[o + 5]), "+f"(d[o + 6]), \
      "+f"(d[o + 7]), "+f"(d[o + 8]), "+f"(d[o + 9]), "+f"(d[o + 10]), "+f"(d[o + 11]), "+f"(d[o + 12]),        \
      "+f"(d[o + 13]), "+f"(d[o + 14]), "+f"(d[o + 15]), "+f"(d[o + 16]), "+f"(d[o + 17]), "+f"(d[o + 18]),     \
      "+f"(d[o + 19]), "+f"(d[o + 20]), "+f"(d[o + 21]), "+f"(d[o + 22]), "+f"(d[o + 23]), "+f"(d[o + 24]),     \
      "+f"(d[o + 25]), "+f"(d[o + 26]), "+f"(d[o + 27]), "+f"(d[o + 28]), "+f"(d[o + 29]), "+f"(d[o + 30]),     \
      "+f"(d[o + 31]), "+f"(d[o + 32]), "+f"(d[o + 33]), "+f"(d[o + 34]), "+f"(d[o + 35]), "+f"(d[o + 36]),     \
      "+f"(d[o + 37]), "+f"(d[o + 38]), "+f"(d[o + 39]), "+f"(d[o + 40]), "+f"(d[o + 41]), "+f"(d[o + 42]),     \
      "+f"(d[o + 43]), "+f"(d[o + 44]), "+f"(d[o + 45]), "+f"(d[o + 46]), "+f"(d[o + 47]), "+f"(d[o + 48]),     \
      "+f"(d[o + 49]), "+f"(d[o + 50]), "+f"(d[o + 51]), "+f"(d[o + 52]), "+f"(d[o + 53]), "+f"(d[o + 54]),     \
      "+f"(d[o + 55]), "+f"(d[o + 56]), "+f"(d[o + 57]), "+f"(d[o + 58]), "+f"(d[o + 59]), "+f"(d[o + 60]),     \
      "+f"(d[o + 61]), "+f"(d[o + 62]), "+f"(d[o + 63])

// d (64 x 128 f32) += A (64 x 16 bf16, K-major, smem) . B (128 x 16 bf16, K-major, smem)^T.
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,"
      "%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,"
      "%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : MM_WGMMA_ACC64(0)
      : "l"(da), "l"(db), "n"(1));
}

// d (64 x 256 f32) += A (64 x 16) . B (256 x 16)^T.
__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,"
      "%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,"
      "%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,"
      "%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,"
      "%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, "
      "%128, %129, p, 1, 1, 0, 0;\n}\n"
      : MM_WGMMA_ACC64(0), MM_WGMMA_ACC64(64)
      : "l"(da), "l"(db), "n"(1));
}

// d (64 x 256 f32) += A (64 x 16 bf16, registers a0..a3: the m16n8k16 A-fragment layout per warp)
// . B (256 x 16 bf16, K-major, smem)^T (the RS form: A never goes through shared memory).
__device__ __forceinline__ void wgmma_rs(float (&d)[128], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,"
      "%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,"
      "%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,"
      "%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,"
      "%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, "
      "{%128,%129,%130,%131}, %132, p, 1, 1, 0;\n}\n"
      : MM_WGMMA_ACC64(0), MM_WGMMA_ACC64(64)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "n"(1));
}

// d (64 x 128 f32) += A (64 x 16 bf16, registers) . B (128 x 16 bf16, K-major, smem)^T.
__device__ __forceinline__ void wgmma_rs(float (&d)[64], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,"
      "%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,"
      "%56,%57,%58,%59,%60,%61,%62,%63}, "
      "{%64,%65,%66,%67}, %68, p, 1, 1, 0;\n}\n"
      : MM_WGMMA_ACC64(0)
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "n"(1));
}
#undef MM_WGMMA_ACC64

// 8 W FP4 codes (W words) -> 4 W bf16x2 words of value * s, in code order.
template <int W>
__device__ __forceinline__ void fp4_words_to_bf16(const uint32_t (&q)[W], float s, uint32_t (&o)[4 * W]) {
  // bf16 of the 8 scaled magnitudes (0 * s keeps a NaN scale NaN), as tables of low and high bytes.
  const uint32_t w0 = pack_bf16x2(0.0f * s, 0.5f * s), w1 = pack_bf16x2(s, 1.5f * s);
  const uint32_t w2 = pack_bf16x2(2.0f * s, 3.0f * s), w3 = pack_bf16x2(4.0f * s, 6.0f * s);
  const uint32_t L0 = prmt(w0, w1, 0x6420), L1 = prmt(w2, w3, 0x6420);
  const uint32_t H0 = prmt(w0, w1, 0x7531), H1 = prmt(w2, w3, 0x7531);
#pragma unroll
  for (int i = 0; i < 2 * W; ++i) {
    const uint32_t x = (i & 1) ? q[i >> 1] >> 16 : q[i >> 1];  // 4 codes in the low 16 bits
    const uint32_t sel = x & 0x7777u;
    const uint32_t lo = prmt(L0, L1, sel);
    // Selector s.mmm on 0x80 bytes: 0x80 for s = 0, sign-replicated 0xFF for s = 1: bit 0 = sign.
    const uint32_t sg = prmt(0x80808080u, 0x80808080u, x);
    const uint32_t hi = prmt(H0, H1, sel) | ((sg << 7) & 0x80808080u);
    o[2 * i] = prmt(lo, hi, 0x5140);
    o[2 * i + 1] = prmt(lo, hi, 0x7362);
  }
}

// 8 FP4 codes (one word) -> 4 bf16x2 words of value * 2^(s - 127), in INTERLEAVED order: word j
// holds codes j (low half) and j + 4 (high half). (Both GEMM operands use the same order, so the
// K sum is unchanged.) Bits s.eem placed as bf16 s......eem...... are exactly E2M1 * 2^-126 (eem
// = 00m lands in the bf16 subnormals with the same meaning), then two exact bf16 multiplies: by
// 2^126 and by the scale (scale2: the bf16x2 of 2^(s - 127); NaN scale -> NaN, zeros included).
// 3 integer + 3 multiply-pipe instructions per pair instead of the byte tables' ~4.5 integer ones.
__device__ __forceinline__ void fp4_word_to_bf16_il(uint32_t q, uint32_t scale2, uint32_t (&o)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint32_t t = j < 2 ? q << (6 - 4 * j) : q >> (4 * j - 6);  // nibble j's magnitude at bits 8..6
    const uint32_t bits = ((t & 0x02000200u) << 6) | (t & 0x01C001C0u);  // its sign (t bit 9) to bit 15
    o[j] = mul_bf16x2(mul_bf16x2(bits, 0x7E807E80u), scale2);             // * 2^126, * 2^(s - 127)
  }
}

// 4 E4M3 codes (one word) -> 2 bf16x2 words of value * f6 * s (f6: exact f16x2 factor, 1 for FP8).
__device__ __forceinline__ void e4m3x4_to_bf16(uint32_t e, uint32_t f6, bool fp6, float s, uint32_t& o0, uint32_t& o1) {
  uint32_t h0 = e4m3x2_to_f16x2(e), h1 = e4m3x2_to_f16x2(e >> 16);
  if (fp6) {
    h0 = hmul2(h0, f6);
    h1 = hmul2(h1, f6);
  }
  const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&h0));
  const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&h1));
  o0 = pack_bf16x2(a.x * s, a.y * s);
  o1 = pack_bf16x2(b.x * s, b.y * s);
}

__device__ __forceinline__ int seg_of(const Fp8GemmArgs& p, int64_t kb, int64_t& lb) {
  if (kb < p.kb4) {
    lb = kb;
    return 0;
  }
  if (kb < p.kb4 + p.kb6) {
    lb = kb - p.kb4;
    return 1;
  }
  lb = kb - p.kb4 - p.kb6;
  return 2;
}

// Unscaled value of packed element j of segment seg's codes at `codes` (FP4 nibbles, FP6 4 codes per
// 3 bytes, FP8 bytes).
__device__ inline float packed_element(const Fp8GemmArgs& p, int seg, const uint8_t* codes, int64_t j) {
  if (seg == 0) return decode_formula(4, 2, 1, 1, false, (codes[j / 2] >> (4 * (j & 1))) & 0xFu);
  if (seg == 1) {
    const uint8_t* g = codes + (j / 4) * 3;
    const uint32_t w = g[0] | (uint32_t{g[1]} << 8) | (uint32_t{g[2]} << 16);
    const uint32_t c = (w >> (6 * (j & 3))) & 0x3Fu;
    return p.fp6_e2m3 ? decode_formula(6, 2, 3, 1, false, c) : decode_formula(6, 3, 2, 3, false, c);
  }
  return decode_formula(8, 4, 3, 7, true, codes[j]);
}

// Exact value of element k of a row (k counted over the whole K) from the packed codes.
__device__ inline float element_value(const Fp8GemmArgs& p, const SegView& v, int64_t row, int64_t k) {
  int64_t lb;
  const int seg = seg_of(p, k / 32, lb);
  const uint8_t* codes = v.codes[seg] + row * v.row_bytes[seg];
  return packed_element(p, seg, codes, lb * 32 + k % 32) * scale_f32(v.scales[seg][row * v.blocks[seg] + lb]);
}

// Exact value of element k of weight row n stored in mx_prepare_gemv_weights' layout: per 16-row
// group G and block b a run of 16 * bpb bytes at i = prepared_index(G, b, ...), lane 4 g + q (g = n
// % 8, q = slice) holding the bpb / 4 bytes of slice q of row 16 G + g, then of row 16 G + g + 8;
// scales at i * 16 + 2 g (+ 1).
__device__ inline float element_value_prepared(const Fp8GemmArgs& p, int64_t n, int64_t k) {
  int64_t lb;
  const int seg = seg_of(p, k / 32, lb);
  const int j = static_cast<int>(k % 32), q = j / 8, g = static_cast<int>(n % 16), half = g >= 8 ? 1 : 0;
  const int bpb = 16 + 8 * seg, bpr = bpb / 4;
  const int64_t nb = seg == 0 ? p.kb4 : seg == 1 ? p.kb6 : p.nkb - p.kb4 - p.kb6;
  const int64_t gb = prepared_index(n / 16, lb, nb, p.N / 16);
  const uint8_t* run = p.w.codes[seg] + gb * 16 * bpb + (4 * (g % 8) + q) * 2 * bpr + half * bpr;
  return packed_element(p, seg, run, j % 8) * scale_f32(p.w.scales[seg][gb * 16 + 2 * (g % 8) + half]);
}

// 4 G FP6 codes (3 G bytes as 3 G / 4 words) -> 2 G bf16x2 words of value * s; G = 4 or 8.
template <int G>
__device__ __forceinline__ void fp6_words_to_bf16(const uint32_t (&w)[3 * G / 4], bool e2m3, float s,
                                                  uint32_t (&o)[2 * G]) {
  const uint32_t f6 = e2m3 ? 0x54005400u : 0x4C004C00u;  // f16x2 of 64 (E2M3) or 16 (E3M2)
#pragma unroll
  for (int h = 0; h < G / 4; ++h) {  // 12 bytes = 4 groups of 3 bytes (4 codes each)
    const uint32_t a0 = w[3 * h], a1 = w[3 * h + 1], a2 = w[3 * h + 2];
    const uint32_t g[4] = {a0, __funnelshift_r(a0, a1, 24), __funnelshift_r(a1, a2, 16), a2 >> 8};
#pragma unroll
    for (int j = 0; j < 4; ++j) e4m3x4_to_bf16(fp6x4_to_e4m3(g[j], e2m3), f6, true, s, o[8 * h + 2 * j], o[8 * h + 2 * j + 1]);
  }
}

// 4 W FP8 E4M3 codes (W words) -> 2 W bf16x2 words of value * s.
template <int W>
__device__ __forceinline__ void fp8_words_to_bf16(const uint32_t (&w)[W], float s, uint32_t (&o)[2 * W]) {
#pragma unroll
  for (int j = 0; j < W; ++j) e4m3x4_to_bf16(w[j], 0u, false, s, o[2 * j], o[2 * j + 1]);
}

// One row of one MX block (packed codes at src: 16 / 24 / 32 bytes for segment 0 / 1 / 2, scale code
// sc) -> 16 bf16x2 words o; FP4_IL: FP4 in fp4_word_to_bf16_il's interleaved K order (both operands
// of a GEMM must use the same order). Returns true if the block has values below 2^-126.
template <bool FP4_IL>
__device__ __forceinline__ bool block_row_to_bf16(int seg, const uint8_t* src, unsigned sc, bool e2m3, uint32_t (&o)[16]) {
  const float s = scale_f32(sc);
  uint32_t any;
  if (seg == 0) {
    const uint4 q = *reinterpret_cast<const uint4*>(src);
    const uint32_t w[4] = {q.x, q.y, q.z, q.w};
    any = q.x | q.y | q.z | q.w;
    if constexpr (FP4_IL) {
      const uint32_t s2 = pack_bf16x2(s, s);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        uint32_t oj[4];
        fp4_word_to_bf16_il(w[j], s2, oj);
#pragma unroll
        for (int e = 0; e < 4; ++e) o[4 * j + e] = oj[e];
      }
    } else {
      fp4_words_to_bf16<4>(w, s, o);
    }
  } else if (seg == 1) {
    const uint2 u0 = reinterpret_cast<const uint2*>(src)[0], u1 = reinterpret_cast<const uint2*>(src)[1],
                u2 = reinterpret_cast<const uint2*>(src)[2];
    const uint32_t w[6] = {u0.x, u0.y, u1.x, u1.y, u2.x, u2.y};
    any = w[0] | w[1] | w[2] | w[3] | w[4] | w[5];
    fp6_words_to_bf16<8>(w, e2m3, s, o);
  } else {
    const uint4 q0 = reinterpret_cast<const uint4*>(src)[0], q1 = reinterpret_cast<const uint4*>(src)[1];
    const uint32_t w[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
    any = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
    fp8_words_to_bf16<8>(w, s, o);
  }
  return sc < kMinSafeScale && any != 0;
}

// Half h of one row of one MX block (elements 16 h .. 16 h + 15 in the K order of
// block_row_to_bf16<true>: words 8 h .. 8 h + 7 of its output) -> 8 bf16x2 words o. src points at
// the half's codes (8 / 12 / 16 bytes for segment 0 / 1 / 2, 4-byte aligned). Returns true if the
// half has values below 2^-126.
__device__ __forceinline__ bool block_half_row_to_bf16(int seg, const uint8_t* src, unsigned sc, bool e2m3,
                                                       uint32_t (&o)[8]) {
  const float s = scale_f32(sc);
  const uint32_t* w = reinterpret_cast<const uint32_t*>(src);
  uint32_t any;
  if (seg == 0) {
    const uint2 q = *reinterpret_cast<const uint2*>(src);
    any = q.x | q.y;
    const uint32_t s2 = pack_bf16x2(s, s);
    uint32_t o0[4], o1[4];
    fp4_word_to_bf16_il(q.x, s2, o0);
    fp4_word_to_bf16_il(q.y, s2, o1);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      o[e] = o0[e];
      o[4 + e] = o1[e];
    }
  } else if (seg == 1) {
    const uint32_t q[3] = {w[0], w[1], w[2]};
    any = q[0] | q[1] | q[2];
    fp6_words_to_bf16<4>(q, e2m3, s, o);
  } else {
    const uint4 v = *reinterpret_cast<const uint4*>(src);
    const uint32_t q[4] = {v.x, v.y, v.z, v.w};
    any = v.x | v.y | v.z | v.w;
    fp8_words_to_bf16<4>(q, s, o);
  }
  return sc < kMinSafeScale && any != 0;
}

// Stores half h of row t (8 words) into sub-tile h of a block buffer (sub-tiles sub bytes apart),
// with store_row_sw32's 32-byte swizzle.
__device__ __forceinline__ void store_half_row_sw32(uint8_t* buf, int sub, int t, int h, const uint32_t (&o)[8]) {
  const int sw = (t >> 2) & 1;
  uint4* row = reinterpret_cast<uint4*>(buf + h * sub + t * 32);
  row[sw] = make_uint4(o[0], o[1], o[2], o[3]);
  row[1 ^ sw] = make_uint4(o[4], o[5], o[6], o[7]);
}

// Stores row t's 16 words into a block buffer of two k16 sub-tiles (sub bytes apart): words 0..7 ->
// sub-tile 0, 8..15 -> sub-tile 1; 16-byte chunk c of the row at c ^ ((t >> 2) & 1) (32-byte swizzle).
__device__ __forceinline__ void store_row_sw32(uint8_t* buf, int sub, int t, const uint32_t (&o)[16]) {
  const int sw = (t >> 2) & 1;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    uint4* row = reinterpret_cast<uint4*>(buf + h * sub + t * 32);
    row[sw] = make_uint4(o[8 * h], o[8 * h + 1], o[8 * h + 2], o[8 * h + 3]);
    row[1 ^ sw] = make_uint4(o[8 * h + 4], o[8 * h + 5], o[8 * h + 6], o[8 * h + 7]);
  }
}

// Activations -> BF16 tiles for the GEMMs with pre-converted activations (v14, v15): thread (row r,
// half h = lane & 1) of K block kb (grid.x: 64-row groups of rows_pad, grid.y: K blocks, 128
// threads) writes the 16 values of half h of row r's block, in the order Half::convert(seg, block
// codes, h, scale code, e2m3, o) gives them, to out + ((kb * 2 + h) * rows_pad + r) * 32 with the
// 32-byte swizzle (the two 16-byte chunks swapped when (r >> 2) & 1), so that a K step of a tile of
// rows is one contiguous run per half. Pad rows get zeros; unsafe[r / tile_rows] |= 1 where a block
// of the row has values below 2^-126.
template <class Half>
__global__ void __launch_bounds__(128) activations_to_bf16_tiles(Fp8GemmArgs p, int64_t rows_pad, int tile_rows, uint8_t* out,
                                                                 int* unsafe) {
  const int h = threadIdx.x & 1;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * 64 + (threadIdx.x >> 1);
  const int64_t kb = blockIdx.y;
  int64_t lb;
  const int seg = seg_of(p, kb, lb);
  uint32_t o[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
  bool bad = false;
  if (r < p.M) {
    // (Selects, not p.a.codes[seg]: a dynamic index into the parameter struct goes through local memory.)
    const uint8_t* block = (seg == 0 ? p.a.codes[0] : seg == 1 ? p.a.codes[1] : p.a.codes[2]) +
                           r * (seg == 0 ? p.a.row_bytes[0] : seg == 1 ? p.a.row_bytes[1] : p.a.row_bytes[2]) +
                           lb * (16 + 8 * seg);
    const unsigned sc = (seg == 0 ? p.a.scales[0] : seg == 1 ? p.a.scales[1] : p.a.scales[2])
        [r * (seg == 0 ? p.a.blocks[0] : seg == 1 ? p.a.blocks[1] : p.a.blocks[2]) + lb];
    bad = Half::convert(seg, block, h, sc, p.fp6_e2m3, o);
  }
  uint4* dst = reinterpret_cast<uint4*>(out + ((kb * 2 + h) * rows_pad + r) * 32);
  const int sw = static_cast<int>(r >> 2) & 1;
  dst[sw] = make_uint4(o[0], o[1], o[2], o[3]);
  dst[1 ^ sw] = make_uint4(o[4], o[5], o[6], o[7]);
  if (__any_sync(0xFFFFFFFFu, bad) && (threadIdx.x & 31) == 0) atomicOr(unsafe + r / tile_rows, 1);
}

// Where a CTA writes: y, or for a split-K launch its FP32 partial slice (blockIdx.z).
struct OutView {
  void* y;
  int f32;
};
__device__ __forceinline__ OutView out_view(const Fp8GemmArgs& p) {
  if (p.split_ws) return OutView{p.split_ws + static_cast<int64_t>(blockIdx.z) * p.M * p.N, 1};
  return OutView{p.y, p.out_f32};
}

// Writes output element (m, n) as f32 or bf16.
__device__ __forceinline__ void store_y(const Fp8GemmArgs& p, OutView o, int64_t m, int64_t n, float v) {
  if (o.f32) static_cast<float*>(o.y)[m * p.N + n] = v;
  else static_cast<__nv_bfloat16*>(o.y)[m * p.N + n] = __float2bfloat16_rn(v);
}

// The exact path of a BM x BN tile at (m0, n0): FP32 products of the decoded values on the CUDA
// cores (for tiles with values below 2^-126; slow, meant to be rare).
template <int BM, int BN>
__device__ void exact_tile_fallback(const Fp8GemmArgs& p, OutView o, int64_t m0, int64_t n0, int kb_lo, int kb_hi) {
  for (int i = threadIdx.x; i < BM * BN; i += blockDim.x) {
    const int64_t m = m0 + i / BN, n = n0 + i % BN;
    if (m >= p.M || n >= p.N) continue;
    float sum = 0.0f;
    for (int64_t k = int64_t{kb_lo} * 32; k < int64_t{kb_hi} * 32; ++k)
      sum = fmaf(element_value(p, p.a, m, k), p.w_prepared ? element_value_prepared(p, n, k) : element_value(p, p.w, n, k), sum);
    store_y(p, o, m, n, sum);
  }
}

// The K-block range of this CTA (split-K along blockIdx.z).
__device__ __forceinline__ void split_range(const Fp8GemmArgs& p, int& kb_lo, int& kb_hi) {
  const int nkb = static_cast<int>(p.nkb);
  if (p.split_chunk <= 0) {
    kb_lo = 0;
    kb_hi = nkb;
  } else {
    kb_lo = min(nkb, static_cast<int>(blockIdx.z) * p.split_chunk);
    kb_hi = min(nkb, kb_lo + p.split_chunk);
  }
}

// Epilogue of a warpgroup's m64 x BN wgmma accumulators (rows row0.. of the warp's 16-row slice):
// n8 block f holds rows r8, r8 + 8 and columns 2q, 2q + 1.
template <int BN>
__device__ __forceinline__ void store_acc_m64(const Fp8GemmArgs& p, OutView o, const float (&acc)[BN / 2], int64_t row0,
                                              int64_t n0) {
  const int lane = threadIdx.x & 31, q = lane & 3, r8 = lane >> 2;
#pragma unroll
  for (int f = 0; f < BN / 8; ++f)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int64_t row = row0 + r8 + 8 * h, col = n0 + f * 8 + q * 2;
      if (row >= p.M || col >= p.N) continue;
      const float v0 = acc[4 * f + 2 * h], v1 = acc[4 * f + 2 * h + 1];
      if (o.f32)
        *reinterpret_cast<float2*>(static_cast<float*>(o.y) + row * p.N + col) = make_float2(v0, v1);
      else
        *reinterpret_cast<uint32_t*>(static_cast<__nv_bfloat16*>(o.y) + row * p.N + col) = pack_bf16x2(v0, v1);
    }
}

// End of a v10-v13 tile: the exact fallback if any thread flagged values below 2^-126 (CTA-wide
// vote), else the warpgroup's m64 x BN accumulators (rows row0.. of the warp's 16-row slice).
template <int BM, int BN>
__device__ __forceinline__ void finish_tile(const Fp8GemmArgs& p, bool unsafe, const float (&acc)[BN / 2], int64_t m0,
                                            int64_t n0, int64_t row0, int kb_lo, int kb_hi) {
  if (__syncthreads_or(unsafe)) exact_tile_fallback<BM, BN>(p, out_view(p), m0, n0, kb_lo, kb_hi);
  else store_acc_m64<BN>(p, out_view(p), acc, row0, n0);
}

// Host: the dynamic shared-memory size and the largest carveout for a kernel, once per kernel.
template <class Kernel>
inline void set_smem_attributes(Kernel kernel, int bytes) {
  MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
}

}  // namespace micromix::cuda::bf16tc
