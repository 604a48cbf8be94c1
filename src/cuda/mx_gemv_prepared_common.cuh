// Shared by the prepared decode versions (mx_gemv_decode_prepared.cu: v10-v12, mx_gemv_decode_rows.cu:
// v13): the launch arguments, the element decoders, the activation pre-pass and its launch helper.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda/mx_mixed_device.cuh"
#include "cuda/mx_bits.cuh"
#include "cuda/ptx_helpers.cuh"

namespace micromix::cuda::gemvp {

using namespace mixed;
using namespace ptx;

struct V10Args {
  SegView a;                 // activations, row-major MX
  const uint8_t* wc[3];      // prepared weight codes per segment
  const uint8_t* ws[3];      // prepared weight scales per segment
  int64_t M, N;
  int nb[3];                 // MX blocks per row of each segment
  int64_t groups;            // N / 16
  void* y;
  int out_f32;
  int fp6_e2m3;
  // Activations decoded once per launch (prepare_activations): per K block and token (8 NT of
  // them) 32 f16 values in the lanes' pair order, and the token's scale as a float (0 past M).
  const uint4* act;    // [nkb][8 NT][4] x 16 bytes
  const float* act_s;  // [nkb][8 NT]
  const int* act_f;    // v13: [nkb] 1 where every token's FP4 block was folded (scaled) into bf16
  int act_tiles;       // v13: token tiles per K block in act (NT of the pre-pass)
  int seg_start[3];    // first K block of each segment
  int seg_warps[3];    // v17 with segment-specialised warps: warps per row group given to each segment
  int lean_prologue;   // v19: the prologue by decode_tokens_segment (MICROMIX_GEMV_LEAN_PROLOGUE, default 1)
  int chained;         // v21: the call's first kernel is a programmatic dependent of the activations' producer
};

__host__ __device__ constexpr int block_bytes(int seg) { return seg == 0 ? 16 : seg == 1 ? 24 : 32; }

// 8 FP4 codes (a word, code i in nibble i) -> f16x2 pairs (c0, c1), (c2, c3), (c4, c5), (c6, c7).
// E2M1's f16 values have zero low bytes: a byte table of the 8 high bytes, the sign ORed in.
__device__ __forceinline__ void fp4x8_to_f16(uint32_t w, uint32_t (&P)[4]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t x = h ? w >> 16 : w;
    uint32_t hi = prmt(0x3E3C3800u, 0x46444240u, x & 0x7777u);
    const uint32_t sg = prmt(0x80808080u, 0x80808080u, x);  // byte bit 0 = the code's sign
    hi |= (sg << 7) & 0x80808080u;
    P[2 * h] = prmt(hi, 0u, 0x1404u);
    P[2 * h + 1] = prmt(hi, 0u, 0x3424u);
  }
}

// FP6 values reach the f16 MMAs as value * 2^-12 (E3M2) or * 2^-6 (E2M3), on weights and
// activations alike; a block's partial is multiplied by this to undo both factors.
__host__ __device__ constexpr float fp6_f16_undo(bool e2m3) { return e2m3 ? 4096.0f : 16777216.0f; }

// 4 FP6 codes -> 2 f16x2 pairs (codes 0, 1 and 2, 3) of value * 2^-12 (E3M2) or * 2^-6 (E2M3).
// E3M2: a spread byte s00eeemm is the high byte of the f16 with exponent field 00eee and mantissa
// mm00000000, i.e. the value times 2^(3 - 15) (E3M2 subnormals land on f16 subnormals, exactly):
// one PRMT per pair. E2M3: a spread byte s00eemmm is the E4M3 code of exponent 00ee, value times
// 2^(1 - 7), widened by the hardware conversion.
template <bool E2M3>
__device__ __forceinline__ void fp6x4_to_f16(uint32_t x, uint32_t& p0, uint32_t& p1) {
  const uint32_t b = fp6x4_spread(x);
  if constexpr (E2M3) {
    p0 = e4m3x2_to_f16x2(b);
    p1 = e4m3x2_to_f16x2(b >> 16);
  } else {
    p0 = prmt(b, 0u, 0x1404u);
    p1 = prmt(b, 0u, 0x3424u);
  }
}


// Elements 8q .. 8q + 7 of one row's block as 4 f16x2 pairs (FP6: times 2^-6 / 2^-12). For FP6 the 6
// bytes come as lo (bytes 0-3) and hi (bytes 4-5 in the low half; higher bits are ignored).
template <int SEG, bool E2M3 = false>
__device__ __forceinline__ void row_pairs(uint32_t lo, uint32_t hi, uint32_t (&P)[4]) {
  if constexpr (SEG == 0) {
    fp4x8_to_f16(lo, P);
  } else if constexpr (SEG == 1) {
    fp6x4_to_f16<E2M3>(lo, P[0], P[1]);
    fp6x4_to_f16<E2M3>(__funnelshift_r(lo, hi, 24), P[2], P[3]);
  } else {
    P[0] = e4m3x2_to_f16x2(lo);
    P[1] = e4m3x2_to_f16x2(lo >> 16);
    P[2] = e4m3x2_to_f16x2(hi);
    P[3] = e4m3x2_to_f16x2(hi >> 16);
  }
}

// v11: 8 FP4 codes (code i in nibble i) -> unsigned bytes 2 v + 12 of codes 0-3 (lo) and 4-7 (hi).
// PRMT's selector nibble is the code: bits 0-2 pick a table byte, bit 3 (the sign) makes PRMT
// replicate that byte's top bit instead (0 here). Positive codes read kUp = 12 + 2|v| from `w`,
// negative ones kUn = 12 - 2|v| from the sign-flipped word; the other table gives 0.
__device__ __forceinline__ void fp4x8_to_u8(uint32_t w, uint32_t& lo, uint32_t& hi) {
  constexpr uint32_t kUp0 = 0x0F0E0D0Cu, kUp1 = 0x18141210u;  // 12 + {0, 1, 2, 3, 4, 6, 8, 12}
  constexpr uint32_t kUn0 = 0x090A0B0Cu, kUn1 = 0x00040608u;  // 12 - {0, 1, 2, 3, 4, 6, 8, 12}
  const uint32_t x = w ^ 0x88888888u;
  lo = prmt(kUp0, kUp1, w) | prmt(kUn0, kUn1, x);
  hi = prmt(kUp0, kUp1, w >> 16) | prmt(kUn0, kUn1, x >> 16);
}

// v11 activations: 8 FP4 codes -> signed bytes 2 v (lo: codes 0-3, hi: 4-7); returns their sum.
// Byte tables of +2|v| and -2|v| indexed by the magnitude bits, then one PRMT per 4 codes picks the
// positive or the negative byte by the code's sign (selector nibble j or j + 4); the sum by dp4a.
__device__ __forceinline__ int fp4x8_to_s8(uint32_t w, uint32_t& lo, uint32_t& hi) {
  constexpr uint32_t kP0 = 0x03020100u, kP1 = 0x0C080604u;  // {0, 1, 2, 3, 4, 6, 8, 12}
  constexpr uint32_t kN0 = 0xFDFEFF00u, kN1 = 0xF4F8FAFCu;  // their negations as bytes
  const uint32_t m = w & 0x77777777u, sel = 0x32103210u | ((w >> 1) & 0x44444444u);
  lo = prmt(prmt(kP0, kP1, m), prmt(kN0, kN1, m), sel);
  hi = prmt(prmt(kP0, kP1, m >> 16), prmt(kN0, kN1, m >> 16), sel >> 16);
  return __dp4a(static_cast<int>(lo), 0x01010101, __dp4a(static_cast<int>(hi), 0x01010101, 0));
}

// Warp w's first U blocks of segment SEG into L2 (each lane prefetches its bytes of the block's
// contiguous run): issued before the wait on the activation pre-pass (v12's programmatic launch).
// pl: the row group's place in the prepared layout (prepared_place); nw: the warps sharing the segment.
template <int SEG, int kWarps>
__device__ __forceinline__ void prefetch_first_blocks(const V10Args& p, const PreparedPlace& pl, int warp, int lane,
                                                      int nw = kWarps) {
  constexpr int U = 4, bpb = block_bytes(SEG), bpr = bpb / 4;
  const int nb = p.nb[SEG];
  if (warp >= nb) return;
  const uint8_t* wsrc = p.wc[SEG] + pl.index(warp, nb) * 16 * bpb + lane * 2 * bpr;
  const int wstride = nw * pl.size * 16 * bpb;  // < 2^31: nw <= 16, size <= 8, bpb <= 32
#pragma unroll
  for (int u = 0; u < U; ++u)
    if (warp + u * nw < nb) prefetch_l2(wsrc + u * wstride);
}

// A lane's FP32 accumulators: per token tile t, rows g / g + 8 x tokens 8t + 2q / + 1 (the m16n8 C
// fragment: c[t][0] (g, 2q), [1] (g, 2q + 1), [2] (g + 8, 2q), [3] (g + 8, 2q + 1)).
template <int NT>
struct Acc {
  float c[NT][4];
};

// Partials of `warps` warps (red[w][lane][4 t + i], warps w0 ..) summed in a fixed order into acc.
template <int NT>
__device__ __forceinline__ void sum_warp_partials(const float (*red)[32][NT * 4], int w0, int warps, int lane, Acc<NT>& acc) {
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < warps; ++w) s += red[w0 + w][lane][4 * t + i];
      acc.c[t][i] = s;
    }
}

// This lane's outputs (rows 16 G + g, + 8; tokens tok0 + 8 t + 2q, + 1 below M) as f32 or bf16.
template <int NT>
__device__ __forceinline__ void store_acc(const V10Args& p, const Acc<NT>& acc, int64_t G, int g, int q, int64_t tok0) {
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t tok = tok0 + 8 * t + 2 * q + (i & 1), row = 16 * G + g + 8 * (i >> 1);
      if (tok >= p.M) continue;
      if (p.out_f32) static_cast<float*>(p.y)[tok * p.N + row] = acc.c[t][i];
      else static_cast<__nv_bfloat16*>(p.y)[tok * p.N + row] = __float2bfloat16_rn(acc.c[t][i]);
    }
}

// One lane's weight words of one prepared MX block: rows g (w) and g + 8 (w8), FP4 8 / FP6 12 / FP8 16
// bytes in all, and the two rows' scale codes (sw2: row g in the low byte).
template <int SEG>
__device__ __forceinline__ void load_weight_words(const uint8_t* wsrc, const uint8_t* wssrc, uint32_t (&w)[2],
                                                  uint32_t (&w8)[2], unsigned& sw2) {
  if constexpr (SEG == 0) {
    const uint2 v = ld_nc_v2(wsrc);
    w[0] = v.x, w[1] = 0u, w8[0] = v.y, w8[1] = 0u;
  } else if constexpr (SEG == 1) {
    const uint32_t w0 = ld_nc_u32(wsrc), w1 = ld_nc_u32(wsrc + 4), w2 = ld_nc_u32(wsrc + 8);
    w[0] = w0, w[1] = w1, w8[0] = __funnelshift_r(w1, w2, 16), w8[1] = w2 >> 16;  // row_pairs ignores bits past 48
  } else {
    const uint4 v = ld_nc_v4(wsrc);
    w[0] = v.x, w[1] = v.y, w8[0] = v.z, w8[1] = v.w;
  }
  sw2 = ld_nc_u16(wssrc);
}

// How the pre-pass writes a (K block, token, quarter q) slot. kActF16 (v10): 8 f16 values (FP6 times
// 2^-6 / 2^-4) and the token's scale. kActInt4 (v11, v12): FP4 blocks as 8 signed bytes 2 v, the
// scale times 1/4 and -12 times the block's byte sum. kActBf16 (v13): FP4 blocks as 8 bf16 values
// with the token's scale folded in where that is exact (scale code in [kFoldMin, kFoldMax]; the
// slot's scale is then 1), else unscaled with the scale; FP6 / FP8 blocks as kActF16.
enum ActMode : int { kActF16 = 0, kActInt4 = 1, kActBf16 = 2 };

// E2M1 value v times 2^(s - 127) is a normal bf16 (exactly) for every nonzero v when 2 <= s <= 252:
// 0.5 * 2^(2 - 127) = 2^-126, 6 * 2^(252 - 127) < 2^128. Outside (and for the NaN code 255) the
// block stays unscaled and is promoted in FP32.
constexpr unsigned kFoldMin = 2, kFoldMax = 252;
__device__ __forceinline__ bool foldable(unsigned s) { return s - kFoldMin <= kFoldMax - kFoldMin; }
// bf16x2 of 2^(s - 127) in both halves (s in 1..254).
__device__ __forceinline__ uint32_t bf16_pow2_x2(unsigned s) { return (s << 7) * 0x00010001u; }

// 8 FP4 codes (code i in nibble i) -> bf16x2 pairs (c0, c1), (c2, c3), (c4, c5), (c6, c7), unscaled.
// E2M1's bf16 values take both bytes (1.5 = 0x3FC0): byte tables of the high and low bytes by
// magnitude, the sign ORed into the high byte, then the bytes interleaved.
__device__ __forceinline__ void fp4x8_to_bf16(uint32_t w, uint32_t (&P)[4]) {
  constexpr uint32_t kHi0 = 0x3F3F3F00u, kHi1 = 0x40404040u;  // {0, .5, 1, 1.5 | 2, 3, 4, 6} high bytes
  constexpr uint32_t kLo0 = 0xC0800000u, kLo1 = 0xC0804000u;  // low bytes
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const uint32_t x = h ? w >> 16 : w, m = x & 0x7777u;
    const uint32_t sg = prmt(0x80808080u, 0x80808080u, x);  // byte bit 0 = the code's sign
    const uint32_t hi = prmt(kHi0, kHi1, m) | ((sg << 7) & 0x80808080u);
    const uint32_t lo = prmt(kLo0, kLo1, m);
    P[2 * h] = prmt(lo, hi, 0x5140u);
    P[2 * h + 1] = prmt(lo, hi, 0x7362u);
  }
}

// One (K block, token, quarter q) of the activations, decoded as MODE says, zeros past M (scale 0);
// c: -12 times the block's byte sum (kActInt4: a quad shuffle over q, so the calling warp's lanes
// must all be here, quads live or dead together); folded: kActBf16's FP4 slot is scaled (or empty).
struct ActQuarter {
  uint4 b;
  float s;
  int c;
  bool folded;
};

// One quarter of an activation block's codes (4 / 6 / 8 bytes of FP4 / FP6 / FP8) as one 4-byte, three
// 2-byte or one 8-byte load: check_operands requires 16-byte aligned segments, and rows and blocks keep
// that alignment for these sizes.
__device__ __forceinline__ void load_act_codes(int seg, const uint8_t* src, uint32_t& lo, uint32_t& hi) {
  if (seg == 0) {
    lo = *reinterpret_cast<const uint32_t*>(src);
  } else if (seg == 1) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(src);
    lo = h[0] | (static_cast<uint32_t>(h[1]) << 16);
    hi = h[2];
  } else {
    const uint2 v = *reinterpret_cast<const uint2*>(src);
    lo = v.x, hi = v.y;
  }
}

template <int MODE>
__device__ __forceinline__ ActQuarter decode_act_quarter(const V10Args& p, bool live, int kb, int tok, int q) {
  const int seg = kb < p.seg_start[1] ? 0 : kb < p.seg_start[2] ? 1 : 2;
  const int lb = kb - p.seg_start[seg];
  uint32_t P[4] = {0u, 0u, 0u, 0u};
  float sc = 0.0f;
  int sum = 0;
  bool folded = true;
  if (live && tok < p.M) {
    const int bpb = block_bytes(seg), bpr = bpb / 4;
    const uint8_t* src = p.a.codes[seg] + tok * p.a.row_bytes[seg] + static_cast<int64_t>(lb) * bpb + q * bpr;
    uint32_t lo = 0u, hi = 0u;
    load_act_codes(seg, src, lo, hi);
    const unsigned code = p.a.scales[seg][tok * p.a.blocks[seg] + lb];
    sc = scale_f32(code);
    if (MODE == kActInt4 && seg == 0) {
      sum = fp4x8_to_s8(lo, P[0], P[1]);
      sc *= 0.25f;  // (2a)(2w) = 4 aw; exact (the smallest scale 2^-127 becomes 2^-129, still a float)
    } else if (MODE == kActBf16 && seg == 0) {
      fp4x8_to_bf16(lo, P);
      folded = foldable(code);
      if (folded) {
        const uint32_t m = bf16_pow2_x2(code);
#pragma unroll
        for (int i = 0; i < 4; ++i) P[i] = mul_bf16x2(P[i], m);
        sc = 1.0f;
      }
    } else if (seg == 0) {
      row_pairs<0>(lo, hi, P);
    } else if (seg == 1) {
      if (p.fp6_e2m3) row_pairs<1, true>(lo, hi, P);
      else row_pairs<1, false>(lo, hi, P);
    } else {
      row_pairs<2>(lo, hi, P);
    }
  }
  if constexpr (MODE == kActInt4) {
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
    sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
  }
  return {make_uint4(P[0], P[1], P[2], P[3]), sc, -12 * sum, folded};
}

// Thread per (K block, token, q) of 8 NT token slots (zeros past M); the launch covers whole warps
// (blocks of 256 threads) and the thread count is a multiple of 4. kActInt4, FP4 blocks: the slot
// (kb, token, q) carries its 8 bytes and, in its other half, the starting sums of tokens 2q and
// 2q + 1 of its 8-token tile (the GEMV lane that reads this slot accumulates those two tokens; one
// warp holds a tile's 8 tokens). SC (kActInt4 only; the GEMV's kSrcTilesSC): FP4 slots carry their 8
// bytes only (the high half zero) and act_s holds per token the pair {scale, start value} (the start
// value's int bits; 0 for FP6 / FP8 blocks). kActBf16: act_f[kb] = 1 when all of the block's tokens
// were folded (a block's 32 NT threads lie in one CTA of 256, since 256 is a multiple of 32 NT).
template <int NT, int MODE, bool SC = false>
__global__ void prepare_activations(V10Args p, int nkb, uint4* __restrict__ act, float* __restrict__ act_s,
                                    int* __restrict__ act_f) {
  static_assert(!SC || MODE == kActInt4, "the {scale, start} pairs are the integer path's");
  griddep_launch_dependents();  // v12, v13: the GEMV's CTAs may start and prefetch their weights now
  griddep_wait();               // v21: the producer's activations (a no-op after an ordinary launch)
  static_assert(256 % (32 * NT) == 0, "a K block's threads in one CTA");
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const bool live = i < nkb * 8 * NT * 4;
  const int q = i & 3, kt = i >> 2;
  const int kb = live ? kt / (8 * NT) : 0;
  const int tok = kt - kb * 8 * NT;
  ActQuarter d = decode_act_quarter<MODE>(p, live, kb, tok, q);
  if constexpr (MODE == kActInt4 && !SC) {
    const int c0 = __shfl_sync(0xFFFFFFFFu, d.c, 8 * q), c1 = __shfl_sync(0xFFFFFFFFu, d.c, 8 * q + 4);
    if (kb < p.seg_start[1]) d.b.z = static_cast<uint32_t>(c0), d.b.w = static_cast<uint32_t>(c1);
  }
  if constexpr (MODE == kActBf16) {
    __shared__ int s_folded[256 / (32 * NT)];
    const int local = static_cast<int>(threadIdx.x) / (32 * NT);
    if (threadIdx.x % (32 * NT) == 0) s_folded[local] = 1;
    __syncthreads();
    if (!d.folded) s_folded[local] = 0;  // every writer stores the same value
    __syncthreads();
    if (live && tok == 0 && q == 0) act_f[kb] = s_folded[local];
  }
  if (!live) return;
  act[i] = d.b;
  if constexpr (SC) {
    if (q == 0) *reinterpret_cast<float2*>(act_s + 2 * kt) = make_float2(d.s, __int_as_float(d.c));
  } else {
    if (q == 0) act_s[kt] = d.s;
  }
}

// kernel<<<grid, threads, smem, s>>>(args...), with pdl as a programmatic dependent launch of the
// stream's previous kernel (its CTAs may start before that one has finished; they must
// griddepcontrol.wait before reading its results).
template <class Kernel, class... Args>
void launch_programmatic(Kernel kernel, unsigned grid, unsigned threads, size_t smem, bool pdl, cudaStream_t s, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = pdl ? 1 : 0;
  MM_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

// gemv_frag after the activation pre-pass; pdl (v12): as a programmatic dependent launch, so that its
// CTAs start (and prefetch weights) while the pre-pass runs.
template <class Kernel>
void launch_after_prepass(Kernel kernel, unsigned grid, unsigned threads, bool pdl, cudaStream_t s, const V10Args& q, int nkb) {
  launch_programmatic(kernel, grid, threads, 0, pdl, s, q, nkb);
}

// v21: whether the activation pre-pass is launched as a programmatic dependent of the producer
// (q.chained) or after it has finished (mx_gemv_decode_prepared.cu says why).
bool chain_prepass(const V10Args& q);

// v13 (mx_gemv_decode_rows.cu): up to kRowsTokens rows per launch pair (pre-pass + GEMV) on a
// workspace of gemv_rows_workspace(nkb) bytes (nkb: K blocks).
constexpr int kRowsTokens = 64;
size_t gemv_rows_workspace(int nkb);
void gemv_rows_launch(V10Args q, int nkb, uint8_t* ws, cudaStream_t s);
// Row groups per CTA of the rows kernel for `groups` 16-row groups (1 or 8; MICROMIX_GEMV_RG overrides).
int gemv_rows_groups_per_cta(int64_t groups);

}  // namespace micromix::cuda::gemvp
