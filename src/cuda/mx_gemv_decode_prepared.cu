// The prepared decode path (M <= 16; versions v10-v12, one harness) on weights prepared once in
// mma fragment order (mx_prepare_gemv_weights). v10 first:
//
// Why: v4-v9 stage every weight block through shared memory and spend ~130 warp instructions per
// 32-K block of a 16-row tile (bench/GPU_NOTES.md); the decode bound is the weight bytes. Here the
// prepared layout puts, for each 16-row group and MX block, the 32 lanes' fragment bytes side by
// side: a warp reads one contiguous 256 / 384 / 512-byte run (FP4 / FP6 / FP8) straight into
// registers, one 8-16-byte load per lane, no shared memory and no barrier in the K loop.
//
// Layout of a prepared segment (same byte count as the row-major one; N a multiple of 16): codes at
// (i * 16 * bpb) + lane * 2 * bpr with i = prepared_index(G, b, ...) (mx_mixed_device.cuh) for row
// group G, block b, lane = 4 g + q, where bpr = bpb / 4 bytes hold elements 8q .. 8q + 7 of row
// 16 G + g, followed by the same elements of row 16 G + g + 8; scales at i * 16 + 2 g (row g) and
// + 1 (row g + 8). Super-groups of 8 groups are block-major inside, so that one block of 128 rows
// is one contiguous run (the prefill GEMM v15 copies it with one bulk copy, mx_mixed_gemm_prepared).
// In each block the MMA's K order is permuted the same way for weights and activations: lane q
// holds elements 8q .. 8q + 7, pairs (8q, 8q+1), (8q+2, 8q+3) in the first k16 step and (8q+4,
// 8q+5), (8q+6, 8q+7) in the second (the K sum is unchanged).
//
// Arithmetic: mma.sync m16n8k16 f16 -> f32 on UNSCALED element values (exact in f16: FP4 through a
// byte table of f16 high bytes, FP6 placed into E4M3 fields and FP8 by the hardware e4m3x2 -> f16x2
// conversion), a fresh FP32 partial per block promoted as acc += (t * s_w) * s_a with the E8M0
// scales as floats (FP6's 2^6 / 2^4 placement factors applied to t first, so no scale overflows
// where the reference does not). CTA = 8 warps on one 16-row group; warp w takes blocks w, w + 8, ...;
// the 8 partials are summed in a fixed order at the end. Activations are decoded once per call by a
// small kernel (prepare_activations) into the lanes' order.
//
// v11 (the same kernel, template INT4): the FP4 x FP4 blocks (the bulk of K) run on the integer
// tensor path instead. Twice an E2M1 value is an integer in [-12, 12], so a block's dot product is
// an exact int32 sum. The weights become unsigned bytes u = 2 w + 12 through two byte-table PRMTs
// (the sign bit of each code is PRMT's replicate flag: one table answers for positive codes and
// zero for negative ones, the other the reverse) and one OR; activations are signed bytes 2 a; one
// mma.sync m16n8k32 u8 x s8 (IMMA) per block starts from -12 sum(2 a), which removes the offset.
// Promotion as above with the factor 1/4 folded into the activation scale. Per lane and FP4 block
// this replaces the f16 decode of 16 codes (4 PRMT + 2 LOP + 2 PRMT per 4 codes) and two HMMAs by
// 9 instructions per 8 codes and one IMMA. FP6 and FP8 blocks keep the f16 path.
//
// v12 (the default; v11's kernels, another launch): where the activations are decoded by the
// pre-pass kernel (M > 1, or grids beyond one wave), the GEMV is a programmatic dependent launch of
// it. Its CTAs start while the pre-pass runs, prefetch their first weight batches into L2 and wait
// (griddepcontrol.wait) for the pre-pass's results, instead of starting after it has drained.
// H100, 70/20/10 (bench/GPU_NOTES.md session 6): 1.9-2.3 us off every such call (o M = 2: 15.0 ->
// 12.9 us, gate_up M = 1: 46.0 -> 43.8); the fused M = 1 calls (qkv, o) are unchanged.
//
// v14 (v13 = v12 up to 16 rows): at M = 1 where the fused kernel does not apply (grids
// beyond one wave, K > 4096: gate_up, down) the pre-pass writes only the one token, in the fused
// path's compact layout (68 bytes per K block), and the GEMV reads it like the fused path does. The
// 8-token tiles cost every warp 512 bytes of L2 reads per block, more than the block's weights.
// From 9 rows up, layers with N large enough for 8 row groups per CTA take the rows kernel.
// Session 9 (all versions): FP6 blocks decode through fp6x4_spread (mx_bits.cuh),
// the FP6 format is a template parameter instead of a per-block select, and at M = 1 the f16 path
// skips the absent odd token's promotion like the integer path.
//
// v17 (the default since session 11; v16, merged segment tails, was measured and removed): v14 with
// the warps per row group on that one-token path chosen per layer (gemv_warps_per_group), not 8, and
// each segment's tail batch run by code for exactly its 1-3 blocks (also in the fused kernel), and at
// 16 warps per row group each warp on one segment only (split_segment_warps).
// Why: each warp pays ~500 instructions besides its blocks' own (prologue prefetches, three segment
// set-ups, three tail batches; ncu on 8B gate_up: 13.4 M instructions at 128 / 0 FP4 / FP6 blocks,
// 16.6 M at 120 / 8, ~225 more per warp for one FP6 block), and with 8 warps a warp of Llama-3.1-8B
// gate_up streams only 16 blocks. 2 warps per row group there: 39.3 -> 34.6 us (H100, 70/20/10).
// Session 12: on the token tiles (M = 2 .. 16) v17 takes 4 warps per row group where only that fits the
// grid in one wave (gemv_tile_warps; at M = 9 .. 16 the kernel's 118 registers leave 2 CTAs of 8 warps
// per SM, so Llama-3.1-8B qkv's 384 row groups ran in 1.45 waves).
//
// v19 (the default since session 12): v17, and at M = 2 on one-wave grids with K <= 4096 (8B qkv / o)
// each CTA decodes the two tokens into shared memory itself, as the M = 1 fused kernel does, instead of
// waiting for the pre-pass kernel (launch_fused_tokens): 8B qkv 13.8 -> 12.2 us, o 11.3 -> 9.9 (H100,
// 70/20/10). From M = 3 the per-CTA decoding cost more than the pre-pass (bench/GPU_NOTES.md). Session
// 13: its prologue one loop per segment (decode_tokens_segment, half the instructions per item), and with
// it M = 3-4 too (8B qkv 13.7 -> 13.2 us).
//
// v20 (the default since session 13): v19, and at M = 9 .. 16 the two-tile GEMV's warps per row group
// and blocks per load batch chosen by the grid (gemv_two_tile_shape: 2-block batches at 80 registers run
// 3 CTAs per SM where 4-block ones at 118 run 2), also on the wide layers that took the rows kernel
// (gate_up). H100, 70/20/10, v19 -> v20 in one process: Llama-3.1-8B qkv 15.7 -> 15.4 us, gate_up 51.6-52.8
// -> 50.4-52.0; 70B qkv 39.1-39.7 -> 37.0-37.6, gate_up 183-187 -> 170; Qwen2.5-32B gate_up 119 -> 108-110,
// down 62.3-63.4 -> 56.7-57.9 (o 16.5-16.7 -> 16.8-16.9); Qwen2.5-7B gate_up 72-73 -> 57-58.
//
// v21 (the default since session 14): v20's kernels, the call's first one (the fused kernel, or the
// pre-pass) launched as a programmatic dependent of the stream's previous kernel, which in an engine
// is the quantizer of the activations (the quantizers call griddepcontrol.launch_dependents first
// thing). The fused kernels then prefetch their first weight batches into L2 before waiting
// (griddepcontrol.wait) for the activations, so that the weight stream overlaps the quantizer. Same
// arithmetic, bit-identical results (tests: CudaMxDecodeChain). Measured end to end, producer
// kernel + GEMM, by bench/bench_decode_linear.cu (bench/RESULTS.md, session 14).
//
// v22 (the default since session 15): v21, and where the caller passes the decode-ready activations
// (MxDecodeActs, written by the quantizer along with its MX output: mx_reorder_quantize_v3.cu's v13
// kernels) the GEMV reads them instead of decoding the MX activations: no pre-pass kernel (~1.5-2 us at
// M = 5..16 on K = 4096, and it could not start early above K = 5120, bench/GPU_NOTES.md session 14) and
// no per-CTA decoding in the fused paths (M = 1 one-wave grids and v19's M = 2..4 take the one-token and
// token-tile kernels instead). The GEMV is the quantizer's programmatic dependent where the quantizer's
// grid is small (acts_chain), an ordinary launch after it elsewhere. Without acts v22 is v21.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "cuda/gemv_shape_policy.hpp"
#include "cuda/mx_decode_acts.cuh"
#include "cuda/mx_gemv_prepared_common.cuh"
#include "cuda/scratch.cuh"

namespace micromix::cuda {
namespace {

using namespace gemvp;

constexpr int kWarpsDefault = 8;  // warps per 16-row group (split K); the fused path may use 16
// v17's tail batches (gemv_exact_tails): exact code. H100, M = 1, 70/20/10, against the 3 slots in the
// same call: Llama-3.1-8B qkv 11.2 -> 10.9 us, o 9.4 -> 9.1 (the fused kernel, 8-16 blocks per warp),
// gate_up / down and 70B within noise (bench/GPU_NOTES.md, session 11).
constexpr bool kExactTailsDefault = true;
// CTAs per SM of 8 warps the two-tile GEMV (M = 9 .. 16) is compiled for, by its blocks per load batch:
// 118 registers at 4 blocks (2 CTAs), 80 at 2 (3 CTAs, no spills; ptxas).
__host__ __device__ constexpr int two_tile_ctas_per_sm(int batch) { return batch <= 2 ? 3 : 2; }

// The raw bytes one lane needs for one MX block: its weight words (rows g and g + 8) and scale
// pair, and per token tile the activation words of token 8t + g and the scale codes of tokens
// 8t + 2q, + 1. Loaded for several blocks before any is decoded, so that a warp keeps several
// loads in flight (one block at a time left the kernel latency-bound).
template <int NT>
struct BlockRaw {
  uint32_t wg[2], wg8[2];
  unsigned sw2;
  uint4 b[NT];     // this lane's B pairs (token 8t + g)
  float2 sa[NT];   // scales of tokens 8t + 2q, + 1
  int2 corr[NT];   // v11 FP4 blocks: the integer sums' starting values for tokens 8t + 2q, + 1
};

// This lane's decoded-activation pointers at one K block (token tile 0; tile t is 8 t tokens on).
// Advanced by the caller from block to block, so that the loop carries no 64-bit index arithmetic.
struct ActPtrs {
  const uint4* b;   // (kb, token g, q)
  const float* s;   // (kb, token 2q)
};

// Where a lane's activations come from. kSrcTiles: the pre-pass's token tiles (8 tokens per K block,
// prepare_activations). M = 1 only: kSrcTokenSmem (v11's fused path): the CTA decodes the one token
// into shared memory first; kSrcTokenGlobal (v14): a pre-pass (prepare_token) writes the one token
// in the same compact layout to global memory. Both as FusedAct: one (kb, q) slot per K block and
// quarter plus the block's scale, 68 bytes per block where the tiles take 512 (the tile layout's 7
// empty tokens were read from L2 by every warp of every CTA). An FP4 block's slot (int8 path) uses only
// its low 8 bytes for the codes and carries the scale and the integer start value in the other 8, so
// that its block step loads one 16-byte word of the token instead of three (session 10).
// v19, M = 2 .. 4 (by default; up to 8 with MICROMIX_GEMV_FUSED_TOKENS): kSrcTokens2 / 4 / 8: the CTA decodes
// the tokens into shared memory first, as the M = 1 fused path does, in a compact tile of MP = 2, 4 or 8
// token slots per K block (MP >= M): lane g supplies token g % MP to B column g, so columns 2q, 2q + 1
// hold tokens 2q % MP, + 1 (MP = 2: tokens 0 and 1 in every column pair) and only the first M columns
// are stored. An FP4 slot carries the codes in its low half and the start values of tokens 2q % MP, + 1
// in its high half (as the tiles do).
// kSrcTilesSC (session 15): the tiles with FP4 slots holding their 8 bytes only and the start values beside
// the scales, {scale, start} per token (prepare_activations' SC; the quantizer's decode-ready layout).
enum ActSrc : int {
  kSrcTiles = 0, kSrcTokenSmem = 1, kSrcTokenGlobal = 2, kSrcTokens2 = 3, kSrcTokens4 = 4, kSrcTokens8 = 5, kSrcTilesSC = 6
};
__host__ __device__ constexpr bool one_token(int src) { return src == kSrcTokenSmem || src == kSrcTokenGlobal; }
__host__ __device__ constexpr int token_slots(int src) { return src >= kSrcTokens2 && src <= kSrcTokens8 ? 1 << (src - 2) : 0; }  // MP
__host__ __device__ constexpr bool tile_src(int src) { return src == kSrcTiles || src == kSrcTilesSC; }

struct FusedAct {
  uint4* b;   // [nkb][4] (one token) or [nkb][MP][4]
  float* s;   // [nkb] or [nkb][MP]
};

// Quarter i (K block i / 4, quarter i % 4) of the one token, decoded into the compact layout f (the
// fused kernel's prologue and v14's pre-pass). Every lane of the calling warp must be here:
// decode_act_quarter shuffles within quads.
template <int MODE>
__device__ __forceinline__ void decode_token_quarter(const V10Args& p, int nkb, int i, const FusedAct& f) {
  const int kb = i >> 2, q = i & 3;
  const bool live = i < nkb * 4;
  const ActQuarter d = decode_act_quarter<MODE>(p, live, live ? kb : 0, 0, q);
  if (!live) return;
  uint4 b = d.b;
  if (MODE == kActInt4 && kb < p.seg_start[1]) b.z = __float_as_uint(d.s), b.w = static_cast<uint32_t>(d.c);
  f.b[i] = b;
  if (q == 0) f.s[kb] = d.s;
}

// v19's prologue: item i = (K block, token slot t < MP, quarter q) of the compact tile, t >= M zeros.
// Every lane of the calling warp must be here (quad and tile shuffles; a warp holds 32 / (4 MP) whole
// K blocks).
template <int MP>
__device__ __forceinline__ void decode_tokens_quarter(const V10Args& p, int nkb, int i, const FusedAct& f) {
  const int q = i & 3, t = (i >> 2) & (MP - 1), kb = i / (4 * MP);
  const bool live = i < nkb * MP * 4;
  const ActQuarter d = decode_act_quarter<kActInt4>(p, live, live ? kb : 0, t, q);
  const int base = (static_cast<int>(threadIdx.x) & 31) & ~(4 * MP - 1);  // this K block's first lane
  const int c0 = __shfl_sync(0xFFFFFFFFu, d.c, base + ((2 * q) & (MP - 1)) * 4);
  const int c1 = __shfl_sync(0xFFFFFFFFu, d.c, base + ((2 * q + 1) & (MP - 1)) * 4);
  if (!live) return;
  uint4 b = d.b;
  if (kb < p.seg_start[1]) b.z = static_cast<uint32_t>(c0), b.w = static_cast<uint32_t>(c1);
  f.b[i] = b;
  if (q == 0) f.s[kb * MP + t] = d.s;
}

// v19's prologue (the default since session 13; MICROMIX_GEMV_LEAN_PROLOGUE=0 runs decode_tokens_quarter):
// one segment's items (K block, token slot t, quarter q) with this thread's t and q fixed (kThreads is a
// multiple of 32 and of 4 MP) and its code and scale pointers advanced per round, instead of
// decode_tokens_quarter's generic segment choice and 64-bit addressing per item (SASS: ~60 instructions
// per FP4 item against ~115). H100, 70/20/10, both in alternating runs of one build (bench/GPU_NOTES.md,
// session 13): Llama-3.1-8B qkv M = 2 12.2 -> 11.8-12.2 us, M = 3-4 14.3 -> 13.1-13.3 (v17 13.6-13.9),
// M = 6-8 18.8-19.0 -> 15.5-15.7 (v17 13.7-13.9); Qwen2.5-7B qkv M = 4 12.9 -> 11.9 (v17 12.1-12.3).
// Every lane of the calling warp must be here: the trip count is uniform, the shuffles take whole quads
// and K blocks.
template <int MP, int SEG, bool F6E2M3, int kThreads>
__device__ __forceinline__ void decode_tokens_segment(const V10Args& p, const FusedAct& f) {
  const int nb = p.nb[SEG];
  if (nb == 0) return;
  constexpr int bpb = block_bytes(SEG), bpr = bpb / 4, kBlocksPerRound = kThreads / (4 * MP);
  static_assert(kThreads % (4 * MP) == 0 && kThreads % 32 == 0, "whole K blocks and warps per round");
  const int tid = static_cast<int>(threadIdx.x), q = tid & 3, t = (tid >> 2) & (MP - 1), lb0 = tid / (4 * MP);
  const bool tok = t < p.M;
  const uint8_t* code = p.a.codes[SEG] + (tok ? t * p.a.row_bytes[SEG] + static_cast<int64_t>(lb0) * bpb + q * bpr : 0);
  const uint8_t* scale = p.a.scales[SEG] + (tok ? t * p.a.blocks[SEG] + lb0 : 0);
  const int lane0 = (tid & 31) & ~(4 * MP - 1);  // this K block's first lane
  const int src0 = lane0 + ((2 * q) & (MP - 1)) * 4, src1 = lane0 + ((2 * q + 1) & (MP - 1)) * 4;
  const int rounds = (nb + kBlocksPerRound - 1) / kBlocksPerRound;
  for (int r = 0, lb = lb0; r < rounds; ++r, lb += kBlocksPerRound, code += kBlocksPerRound * bpb, scale += kBlocksPerRound) {
    const bool live = lb < nb, load = live && tok;
    uint32_t lo = 0u, hi = 0u;
    float sc = 0.0f;
    if (load) {
      load_act_codes(SEG, code, lo, hi);
      sc = scale_f32(*scale);
    }
    uint4 b;
    if constexpr (SEG == 0) {
      int sum = fp4x8_to_s8(lo, b.x, b.y);  // zeros give zeros
      sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 1);
      sum += __shfl_xor_sync(0xFFFFFFFFu, sum, 2);
      b.z = static_cast<uint32_t>(__shfl_sync(0xFFFFFFFFu, -12 * sum, src0));
      b.w = static_cast<uint32_t>(__shfl_sync(0xFFFFFFFFu, -12 * sum, src1));
      sc *= 0.25f;  // (2a)(2w) = 4 aw
    } else {
      uint32_t P[4];
      row_pairs<SEG, F6E2M3>(lo, hi, P);
      b = make_uint4(P[0], P[1], P[2], P[3]);
    }
    if (!live) continue;
    const int kb = p.seg_start[SEG] + lb;
    f.b[(kb * MP + t) * 4 + q] = b;
    if (q == 0) f.s[kb * MP + t] = sc;
  }
}

template <int NT, int SRC>
__device__ __forceinline__ ActPtrs act_ptrs(const V10Args& p, const FusedAct& f, int kb, int g, int q) {
  if constexpr (constexpr int MP = token_slots(SRC); MP > 0)
    return {f.b + (kb * MP + (g & (MP - 1))) * 4 + q, f.s + kb * MP + ((2 * q) & (MP - 1))};
  if constexpr (one_token(SRC)) return {f.b + kb * 4 + q, f.s + kb};
  const int64_t kt = static_cast<int64_t>(kb) * 8 * NT;
  if constexpr (SRC == kSrcTilesSC) return {p.act + (kt + g) * 4 + q, p.act_s + 2 * (kt + 2 * q)};
  return {p.act + (kt + g) * 4 + q, p.act_s + kt + 2 * q};
}

template <int NT, int SRC>
__device__ __forceinline__ ActPtrs advance(const ActPtrs& a, int blocks) {
  if constexpr (constexpr int MP = token_slots(SRC); MP > 0) return {a.b + blocks * MP * 4, a.s + blocks * MP};
  if constexpr (one_token(SRC)) return {a.b + blocks * 4, a.s + blocks};
  if constexpr (SRC == kSrcTilesSC) return {a.b + blocks * 8 * NT * 4, a.s + 2 * blocks * 8 * NT};
  return {a.b + blocks * 8 * NT * 4, a.s + blocks * 8 * NT};
}

// Weight pointers of one block for this lane (the caller advances them).
template <int SEG, int NT, bool INT4, int SRC>
__device__ __forceinline__ void load_block(const uint8_t* wsrc, const uint8_t* wssrc, const ActPtrs& ap, BlockRaw<NT>& r) {
  load_weight_words<SEG>(wsrc, wssrc, r.wg, r.wg8, r.sw2);
  if constexpr (token_slots(SRC) > 0) {  // v19: this lane's slot and the scales of its two columns' tokens
    static_assert(NT == 1, "v19 holds at most 8 tokens");
    r.b[0] = *ap.b;
    if constexpr (INT4 && SEG == 0) r.corr[0] = make_int2(static_cast<int>(r.b[0].z), static_cast<int>(r.b[0].w));
    r.sa[0] = *reinterpret_cast<const float2*>(ap.s);
  } else if constexpr (one_token(SRC)) {
    // The one token in every B column (lane g supplies column g): each column's sum is the token's,
    // so every accumulator holds a copy of it; only column 0's (token 0's) is stored. No per-lane
    // zeroing (6 selects per block) and the same start value and scale for all columns.
    r.b[0] = SRC == kSrcTokenGlobal ? ld_nc_v4(ap.b) : *ap.b;
    if constexpr (INT4 && SEG == 0) {  // scale and start value in the slot's upper half
      const float s = __uint_as_float(r.b[0].z);
      const int c = static_cast<int>(r.b[0].w);
      r.sa[0] = make_float2(s, s);
      r.corr[0] = make_int2(c, c);
    } else {
      const float s = SRC == kSrcTokenGlobal ? __uint_as_float(ld_nc_u32(ap.s)) : *ap.s;
      r.sa[0] = make_float2(s, s);
    }
  } else if constexpr (SRC == kSrcTilesSC) {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const uint4 sc = ld_nc_v4(ap.s + 16 * t);  // {scale, start} of tokens 8t + 2q and + 1
      if constexpr (INT4 && SEG == 0) {
        const uint2 xy = ld_nc_v2(ap.b + 8 * t * 4);
        r.b[t] = make_uint4(xy.x, xy.y, 0u, 0u);
        r.corr[t] = make_int2(static_cast<int>(sc.y), static_cast<int>(sc.w));
      } else {
        r.b[t] = ld_nc_v4(ap.b + 8 * t * 4);
      }
      r.sa[t] = make_float2(__uint_as_float(sc.x), __uint_as_float(sc.z));
    }
  } else {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      r.b[t] = ld_nc_v4(ap.b + 8 * t * 4);
      if constexpr (INT4 && SEG == 0)  // 8 signed bytes, then the starting sums of tokens 8t + 2q, + 1
        r.corr[t] = make_int2(static_cast<int>(r.b[t].z), static_cast<int>(r.b[t].w));
      const uint2 sa = ld_nc_v2(ap.s + 8 * t);
      r.sa[t] = make_float2(__uint_as_float(sa.x), __uint_as_float(sa.y));
    }
  }
}

// Decodes one block's weights, runs the MMAs and promotes into acc. PAIR: tokens 2q + 1 exist (M > 1;
// at M = 1 their promotion is skipped). F6E2M3: the FP6 element format (SEG 1 only).
template <int SEG, int NT, bool INT4, bool PAIR, bool F6E2M3>
__device__ __forceinline__ void compute_block(const V10Args& p, const float* scale_lut, const BlockRaw<NT>& r, Acc<NT>& acc) {
  if constexpr (INT4 && SEG == 0) {
    uint32_t A[4];
    fp4x8_to_u8(r.wg[0], A[0], A[2]);   // row g: elements 8q..8q+3 as MMA k 4q.., 8q+4.. as k 16+4q..
    fp4x8_to_u8(r.wg8[0], A[1], A[3]);  // row g + 8
    const float swg = scale_lut[r.sw2 & 0xFFu], swg8 = scale_lut[r.sw2 >> 8];
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      int c[4] = {r.corr[t].x, r.corr[t].y, r.corr[t].x, r.corr[t].y};
      mma_u8s8(c, A[0], A[1], A[2], A[3], r.b[t].x, r.b[t].y);
      acc.c[t][0] = fmaf(__int2float_rn(c[0]) * swg, r.sa[t].x, acc.c[t][0]);
      acc.c[t][2] = fmaf(__int2float_rn(c[2]) * swg8, r.sa[t].x, acc.c[t][2]);
      if constexpr (PAIR) {
        acc.c[t][1] = fmaf(__int2float_rn(c[1]) * swg, r.sa[t].y, acc.c[t][1]);
        acc.c[t][3] = fmaf(__int2float_rn(c[3]) * swg8, r.sa[t].y, acc.c[t][3]);
      }
    }
    return;
  }
  uint32_t A[4], A8[4];
  row_pairs<SEG, F6E2M3>(r.wg[0], r.wg[1], A);
  row_pairs<SEG, F6E2M3>(r.wg8[0], r.wg8[1], A8);
  // FP6 values reach the MMA scaled by 2^-k on both sides: undo it with the weight scale (applied to
  // the partial first, so that no scale overflows where the reference does not).
  constexpr float undo = SEG != 1 ? 1.0f : fp6_f16_undo(F6E2M3);
  const float swg = scale_lut[r.sw2 & 0xFFu], swg8 = scale_lut[r.sw2 >> 8];
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    mma_f16(tmp, A[0], A8[0], A[1], A8[1], r.b[t].x, r.b[t].y);
    mma_f16(tmp, A[2], A8[2], A[3], A8[3], r.b[t].z, r.b[t].w);
    acc.c[t][0] = fmaf(tmp[0] * undo * swg, r.sa[t].x, acc.c[t][0]);
    acc.c[t][2] = fmaf(tmp[2] * undo * swg8, r.sa[t].x, acc.c[t][2]);
    if constexpr (PAIR) {
      acc.c[t][1] = fmaf(tmp[1] * undo * swg, r.sa[t].y, acc.c[t][1]);
      acc.c[t][3] = fmaf(tmp[3] * undo * swg8, r.sa[t].y, acc.c[t][3]);
    }
  }
}

// Warp w's blocks of one segment: w, w + 8, ...; U blocks loaded before any is computed (full
// batches without per-block bounds checks), then the tail (1 .. U - 1 blocks) as one more batch whose
// loads are in flight together: at K = 4096 and 70/20/10 a warp has ~3 FP6 and ~2 FP8 blocks, which
// v10-v13 until session 9 fetched one block at a time, in as many dependent DRAM round trips. Tail
// slots past the end load the tail's first block again (no branches around loads) and are not
// computed. (A ring of slots reloaded right after each block's math, so that loads stay in flight
// during it, measured slower: 3 slots under the 64-register cap and clamped 64-bit addressing added
// ~20 instructions per block; bench/GPU_NOTES.md session 9.)
// R blocks of one segment, nw blocks apart: all R loaded before any is computed.
template <int R, int SEG, int NT, bool INT4, bool PAIR, int SRC, bool F6E2M3>
__device__ __forceinline__ void block_batch(const V10Args& p, const float* scale_lut, const uint8_t* wsrc, const uint8_t* wssrc,
                                            int64_t wstride, int64_t sstride, const ActPtrs& ap, int nw, Acc<NT>& acc) {
  BlockRaw<NT> r[R];
#pragma unroll
  for (int u = 0; u < R; ++u)
    load_block<SEG, NT, INT4, SRC>(wsrc + u * wstride, wssrc + u * sstride, advance<NT, SRC>(ap, u * nw), r[u]);
#pragma unroll
  for (int u = 0; u < R; ++u) compute_block<SEG, NT, INT4, PAIR, F6E2M3>(p, scale_lut, r[u], acc);
}

// EXACT_TAIL (v17's option): the tail batch as code for exactly its 1, 2 or 3 blocks (one branch per
// segment) instead of 3 slots loaded whatever the count.
// nw: the warps sharing this segment of the row group (kWarps, or fewer with segment-specialised warps).
// U: blocks per load batch (4; the two-tile kernel also 2).
template <int SEG, int NT, bool INT4, bool PAIR, int SRC, int kWarps, bool F6E2M3 = false, bool EXACT_TAIL = false, int U = 4>
__device__ __forceinline__ void segment_blocks(const V10Args& p, const FusedAct& f, const float* scale_lut, const PreparedPlace& pl,
                                               int warp, int g, int q, Acc<NT>& acc, int nw = kWarps) {
  constexpr int bpb = block_bytes(SEG), bpr = bpb / 4;
  const int nb = p.nb[SEG];
  if (warp >= nb) return;
  const int lane = 4 * g + q;
  const int64_t at = pl.index(warp, nb);
  const uint8_t* wsrc = p.wc[SEG] + at * 16 * bpb + lane * 2 * bpr;
  const uint8_t* wssrc = p.ws[SEG] + at * 16 + 2 * g;
  const int64_t sstride = nw * pl.size * 16, wstride = sstride * bpb;  // 64-bit: shorter loops (SASS)
  ActPtrs ap = act_ptrs<NT, SRC>(p, f, p.seg_start[SEG] + warp, g, q);
  int lb0 = warp;
  for (; lb0 + nw * (U - 1) < nb; lb0 += nw * U) {  // full batches: no per-block checks
    block_batch<U, SEG, NT, INT4, PAIR, SRC, F6E2M3>(p, scale_lut, wsrc, wssrc, wstride, sstride, ap, nw, acc);
    wsrc += U * wstride;
    wssrc += U * sstride;
    ap = advance<NT, SRC>(ap, U * nw);
  }
  if constexpr (U > 1) {  // the tail batch (U = 1: every block was a full batch)
    if (lb0 >= nb) return;
    const int rem = (nb - lb0 + nw - 1) / nw;
    if constexpr (EXACT_TAIL) {
      if (U == 2 || rem == 1) block_batch<1, SEG, NT, INT4, PAIR, SRC, F6E2M3>(p, scale_lut, wsrc, wssrc, wstride, sstride, ap, nw, acc);
      else if (U == 3 || rem == 2) block_batch<2, SEG, NT, INT4, PAIR, SRC, F6E2M3>(p, scale_lut, wsrc, wssrc, wstride, sstride, ap, nw, acc);
      else block_batch<3, SEG, NT, INT4, PAIR, SRC, F6E2M3>(p, scale_lut, wsrc, wssrc, wstride, sstride, ap, nw, acc);
    } else {
      BlockRaw<NT> r[U - 1];
#pragma unroll
      for (int u = 0; u < U - 1; ++u) {
        const int v = u < rem ? u : 0;
        load_block<SEG, NT, INT4, SRC>(wsrc + v * wstride, wssrc + v * sstride, advance<NT, SRC>(ap, v * nw), r[u]);
      }
#pragma unroll
      for (int u = 0; u < U - 1; ++u)
        if (u < rem) compute_block<SEG, NT, INT4, PAIR, F6E2M3>(p, scale_lut, r[u], acc);
    }
  }
}

// Occupancy: v11 at M = 1 (NT = 1, !PAIR) runs 4 CTAs (32 warps) per SM at <= 64 registers (4 bytes
// spilled): H100, 70/20/10, against 3 CTAs: Llama-3.1-70B down 90.4 -> 76.0 us, o 36.0 -> 30.5,
// gate_up 155.5 -> 151.2, qkv 37.7 -> 41.6; 8B gate_up 51.9 -> 48.4, down 29.3 -> 30.5 (separate
// runs). At M = 2..8 the same cap made v11 3-10% slower than v10 (spills on the pair path), so those
// instances and v10 keep 3 CTAs.
// SRC (ActSrc): kSrcTokenSmem = M = 1 with the token's activations decoded by this CTA into dynamic shared memory first
// (every CTA decodes all of K, no pre-pass launch; nkb = the K blocks). That decoding was a fifth to a third of
// the o layer's instructions while it read the codes byte by byte and built FP4 bytes in a loop
// (ncu, session 6); with word loads and byte tables o went 12.0 -> 10.9 us (H100, 70/20/10).
// kWarps: warps per 16-row group (split K), one row group per CTA. v17 chooses it per layer (fewer
// warps give each warp a longer run of blocks, so that its fixed costs, segment set-up, three tail
// batches and the prologue's prefetches, spread over more blocks).
// SPLIT (v17 at 16 warps per row group): segment-specialised warps, p.seg_warps[s] of the kWarps on
// segment s alone (one set-up and one tail batch per warp instead of three; split_segment_warps).
template <int NT, bool INT4, bool PAIR, int SRC, int kWarps = kWarpsDefault, bool EXACT_TAIL = false, bool SPLIT = false, int BATCH = 4>
__global__ void __launch_bounds__(kWarps * 32, kWarps == 16 ? 2 : NT == 2 ? two_tile_ctas_per_sm(BATCH) * 8 / kWarps : (INT4 && !PAIR ? 32 : 24) / kWarps)
    gemv_frag(V10Args p, int nkb) {
  __shared__ float red[kWarps][32][NT * 4];
  __shared__ float scale_lut[256];  // E8M0 code -> float (two table reads per block instead of ~14 ALU ops)
  extern __shared__ uint4 fused_smem[];
  for (int i = threadIdx.x; i < 256; i += kWarps * 32) scale_lut[i] = scale_f32(static_cast<unsigned>(i));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int64_t G = blockIdx.x;
  const PreparedPlace pl = prepared_place(G, p.groups);  // shared by the three segments
  constexpr int MP = token_slots(SRC);  // v19's token slots per K block (0: not v19's kernel)
  FusedAct f{fused_smem, reinterpret_cast<float*>(fused_smem + nkb * (MP > 0 ? MP : 1) * 4)};
  if constexpr (SRC == kSrcTokenGlobal) f = FusedAct{const_cast<uint4*>(p.act), const_cast<float*>(p.act_s)};
  // After the pre-pass (prepare_activations), or (v21) after the kernel that produced the activations
  // where this kernel decodes them itself. Launched programmatically (v12, v21) this CTA may start
  // while that kernel runs: its first weight batches go to L2 first, then it waits for the
  // activations (a no-op after an ordinary launch).
  if (tile_src(SRC) || SRC == kSrcTokenGlobal || p.chained) {
    if constexpr (SPLIT) {  // this warp's own segment only
      const int w0 = p.seg_warps[0], w1 = p.seg_warps[1];
      if (warp < w0) prefetch_first_blocks<0, kWarps>(p, pl, warp, lane, w0);
      else if (warp < w0 + w1) prefetch_first_blocks<1, kWarps>(p, pl, warp - w0, lane, w1);
      else prefetch_first_blocks<2, kWarps>(p, pl, warp - w0 - w1, lane, p.seg_warps[2]);
    } else {
      prefetch_first_blocks<0, kWarps>(p, pl, warp, lane);
      prefetch_first_blocks<1, kWarps>(p, pl, warp, lane);
      prefetch_first_blocks<2, kWarps>(p, pl, warp, lane);
    }
    griddep_wait();
  }
  if constexpr (SRC == kSrcTokenSmem) {
    for (int base = 0; base < nkb * 4; base += kWarps * 32)  // uniform trip count: whole warps shuffle
      decode_token_quarter<INT4 ? kActInt4 : kActF16>(p, nkb, base + static_cast<int>(threadIdx.x), f);
  }
  if constexpr (MP > 0) {
    static_assert(INT4 && PAIR, "v19 runs the int8 FP4 path on several tokens");
    if (p.lean_prologue) {  // uniform per launch
      decode_tokens_segment<MP, 0, false, kWarps * 32>(p, f);
      if (p.fp6_e2m3) decode_tokens_segment<MP, 1, true, kWarps * 32>(p, f);
      else decode_tokens_segment<MP, 1, false, kWarps * 32>(p, f);
      decode_tokens_segment<MP, 2, false, kWarps * 32>(p, f);
    } else {
      for (int base = 0; base < nkb * MP * 4; base += kWarps * 32)  // uniform trip count: whole warps shuffle
        decode_tokens_quarter<MP>(p, nkb, base + static_cast<int>(threadIdx.x), f);
    }
  }
  __syncthreads();
  Acc<NT> acc;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc.c[t][i] = 0.0f;
  // Segments in K order; warp w takes every kWarps-th block of each (per-segment loops: no branch per block).
  if constexpr (SPLIT) {
    const int w0 = p.seg_warps[0], w1 = p.seg_warps[1];
    if (warp < w0) segment_blocks<0, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL>(p, f, scale_lut, pl, warp, g, q, acc, w0);
    else if (warp < w0 + w1 && p.fp6_e2m3)
      segment_blocks<1, NT, INT4, PAIR, SRC, kWarps, true, EXACT_TAIL>(p, f, scale_lut, pl, warp - w0, g, q, acc, w1);
    else if (warp < w0 + w1)
      segment_blocks<1, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL>(p, f, scale_lut, pl, warp - w0, g, q, acc, w1);
    else segment_blocks<2, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL>(p, f, scale_lut, pl, warp - w0 - w1, g, q, acc, p.seg_warps[2]);
  } else {
    segment_blocks<0, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL, BATCH>(p, f, scale_lut, pl, warp, g, q, acc);
    if (p.fp6_e2m3) segment_blocks<1, NT, INT4, PAIR, SRC, kWarps, true, EXACT_TAIL, BATCH>(p, f, scale_lut, pl, warp, g, q, acc);
    else segment_blocks<1, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL, BATCH>(p, f, scale_lut, pl, warp, g, q, acc);
    segment_blocks<2, NT, INT4, PAIR, SRC, kWarps, false, EXACT_TAIL, BATCH>(p, f, scale_lut, pl, warp, g, q, acc);
  }
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) red[warp][lane][4 * t + i] = acc.c[t][i];
  __syncthreads();
  if (warp != 0) return;
  sum_warp_partials<NT>(red, 0, kWarps, lane, acc);
  store_acc<NT>(p, acc, G, g, q, 0);
}

// Thread per (row group, block, lane) of one segment: gathers the lane's 2 x bpr bytes and, for
// lanes 0..7, the scale pair of rows g and g + 8.
__global__ void prepare_segment(const uint8_t* __restrict__ codes, const uint8_t* __restrict__ scales, int64_t row_bytes,
                                int nb, int bpb, int64_t groups, uint8_t* __restrict__ pc, uint8_t* __restrict__ ps) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= groups * nb * 32) return;
  const int lane = static_cast<int>(i & 31), g = lane >> 2, q = lane & 3;
  const int64_t gb = i >> 5, G = gb / nb;
  const int b = static_cast<int>(gb - G * nb), bpr = bpb / 4;
  const int64_t at = prepared_index(G, b, nb, groups);
  uint8_t* dst = pc + at * 16 * bpb + lane * 2 * bpr;
  for (int h = 0; h < 2; ++h) {
    const int64_t row = 16 * G + g + 8 * h;
    const uint8_t* src = codes + row * row_bytes + static_cast<int64_t>(b) * bpb + q * bpr;
    for (int j = 0; j < bpr; ++j) dst[h * bpr + j] = src[j];
  }
  if (q == 0) {
    ps[at * 16 + 2 * g] = scales[(16 * G + g) * nb + b];
    ps[at * 16 + 2 * g + 1] = scales[(16 * G + g + 8) * nb + b];
  }
}

// v14's pre-pass at M = 1: thread per (K block, quarter) decodes the token into the compact layout
// the fused path builds in shared memory (FusedAct: b [nkb][4], s [nkb]). The launch covers
// whole warps (decode_act_quarter shuffles within quads).
__global__ void prepare_token(V10Args p, int nkb, uint4* __restrict__ b, float* __restrict__ s) {
  griddep_launch_dependents();  // the GEMV's CTAs may start and prefetch their weights now
  griddep_wait();               // v21: the producer's activations (a no-op after an ordinary launch)
  decode_token_quarter<kActInt4>(p, nkb, static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x), FusedAct{b, s});
}

}  // namespace

void mx_prepare_gemv_weights(const MxMixedDevice& w, const MxMixedDeviceOut& out, void* stream) {
  MM_CUDA_REQUIRE(w.rows % 16 == 0, "mx_prepare_gemv_weights: N = " + std::to_string(w.rows) + " is not a multiple of 16");
  MM_CUDA_REQUIRE(out.rows == w.rows && out.split.n4 == w.split.n4 && out.split.n6 == w.split.n6 &&
                      out.split.n8 == w.split.n8 && out.split.fp6 == w.split.fp6,
                  "mx_prepare_gemv_weights: out does not have w's shape and split");
  const auto s = static_cast<cudaStream_t>(stream);
  const int64_t groups = w.rows / 16;
  for (int seg = 0; seg < mx::kSegments; ++seg) {
    const int nb = static_cast<int>(w.split.count(seg) / mx::kBlock);
    if (nb == 0 || groups == 0) continue;
    const int64_t threads = groups * nb * 32;
    prepare_segment<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, s>>>(
        w.codes[seg], w.scales[seg], static_cast<int64_t>(mx::packed_row_bytes(w.split.format(seg), w.split.count(seg))), nb,
        block_bytes(seg), groups, out.codes[seg], out.scales[seg]);
    MM_CUDA_CHECK(cudaGetLastError());
  }
}

namespace {

// v11 at M = 1 decodes the token inside the GEMV kernel (no pre-pass launch; 16 warps per row group
// when even those CTAs fit in one wave: o 14.3 -> 13.6 us, H100 70/20/10) while its shared-memory
// area fits next to 2-3 CTAs per SM and the grid fits the GPU in one wave: every CTA decodes all of
// K before streaming its weights, which costs more than the pre-pass launch once CTAs run in several
// waves (H100, 70/20/10 M = 1: o 16.4 -> 14.3 us, but gate_up 56 -> 61 us, bench/GPU_NOTES.md).
constexpr size_t kFusedBytesPerBlock = 4 * sizeof(uint4) + sizeof(float);
constexpr size_t kFusedMaxBytes = 70 * 1024;
// K up to 4096 (two prologue rounds of 256 threads): measured faster there; at K = 14336 (down, one
// wave) the prologue cost more than the pre-pass launch (31.2 vs 30.2 us, H100).
constexpr int kFusedMaxBlocks = 128;
static_assert(kFusedMaxBlocks * kFusedBytesPerBlock <= kFusedMaxBytes, "fused area within the attribute set");

// CTAs of `kernel` (threads per CTA, smem bytes of dynamic shared memory) the current GPU holds at once.
template <class Kernel>
int64_t resident_ctas(Kernel kernel, int threads, size_t smem = 0) {
  int dev = 0, sms = 0, per = 0;
  MM_CUDA_CHECK(cudaGetDevice(&dev));
  MM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  MM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per, kernel, threads, smem));
  return static_cast<int64_t>(sms) * per;
}

// resident_ctas for a kernel with dynamic shared memory (the fused kernels), after allowing it up to
// kFusedMaxBytes; smem: the bytes to count per CTA.
template <class Kernel>
int64_t fused_resident_ctas(Kernel kernel, int threads, size_t smem) {
  MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kFusedMaxBytes)));
  return resident_ctas(kernel, threads, smem);
}

// v17's warps per 16-row group at M = 1 on the pre-pass path (one CTA per row group): the fewest (1,
// 2, 4, 8, else 16) whose grid still fills 60% of the warp slots the GPU holds at once, so that each
// warp streams as long a run of blocks as the grid allows. H100, 70/20/10, us against v14 (8 warps)
// in the same process: Llama-3.1-8B gate_up (1792 groups) 2 warps 34.6 vs 39.3, down (256 groups)
// 16 warps 21.2 vs 22.1; Llama-3.1-70B gate_up (3584) 1 warp 115.3 vs 130.2, qkv (640) 4 warps 27.8
// vs 29.9, o and down (512) 8 warps = v14 (bench/RESULTS.md, session 11, with the refuted shapes:
// several row groups per CTA, e.g. 2 warps x 4 groups 35.5 against 34.1 on 8B gate_up, lose to one
// group per CTA, which the hardware spreads more evenly over the SMs; at M = 2 .. 8 the same rule
// gained nothing, the token tiles' L2 reads dominate there). MICROMIX_GEMV_WARPS (1, 2, 4, 8, 16)
// overrides it (experiments; read per call so that the tests can run every shape).
int gemv_warps_per_group(int64_t groups) {
  const std::string forced = env_knob("MICROMIX_GEMV_WARPS", {"1", "2", "4", "8", "16"});
  if (!forced.empty()) return std::stoi(forced);
  static int64_t sms = 0;
  if (sms == 0) {
    int dev = 0, n = 0;
    MM_CUDA_CHECK(cudaGetDevice(&dev));
    MM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    sms = n;
  }
  return gemv_token_warps(groups, sms);
}

// v17's segment-specialised warps: sets q.seg_warps to gemv_segment_split's split of a row group's w
// warps and returns true; false (q unchanged) where it does not apply (w < 4: no such kernels) or is
// off. By default on at 16 warps per row group only: H100, 70/20/10, M = 1, against the K split in
// alternating runs (bench/GPU_NOTES.md, session 11): Llama-3.1-8B o (fused, 16 warps) 8.9 -> 8.7 us,
// down (16) 20.8 -> 19.6; at 8 warps 70B o 22.4 -> 21.0 but 70B down 58.6 -> 59.2 and 8B qkv 10.8 ->
// 11.0, at 4 warps 70B qkv 27.4 -> 28.8. MICROMIX_GEMV_SPLIT=seg turns it on from 4 warps, =k off
// (read per call).
bool split_segment_warps(V10Args& q, int w) {
  const std::string v = env_knob("MICROMIX_GEMV_SPLIT", {"seg", "k"});
  if (v == "k" || w < 4 || (v.empty() && w < 16)) return false;
  return gemv_segment_split(q.nb, w, q.seg_warps);
}

// v17's one-token GEMV (M = 1, pre-pass path) with w = 1, 2, 4, 8 or 16 warps per row group.
template <bool EXACT>
void launch_token_warps(int w, bool pdl, cudaStream_t s, V10Args q, int nkb) {
  const auto grid = static_cast<unsigned>(q.groups);
  if constexpr (EXACT) {
    if (split_segment_warps(q, w)) {  // w is 4, 8 or 16 here
      if (w == 4) launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 4, true, true>, grid, 128, pdl, s, q, nkb);
      else if (w == 8) launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 8, true, true>, grid, 256, pdl, s, q, nkb);
      else launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 16, true, true>, grid, 512, pdl, s, q, nkb);
      return;
    }
  }
  switch (w) {
    case 1: launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 1, EXACT>, grid, 32, pdl, s, q, nkb); break;
    case 2: launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 2, EXACT>, grid, 64, pdl, s, q, nkb); break;
    case 4: launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 4, EXACT>, grid, 128, pdl, s, q, nkb); break;
    case 8: launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 8, EXACT>, grid, 256, pdl, s, q, nkb); break;
    default: launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal, 16, EXACT>, grid, 512, pdl, s, q, nkb); break;
  }
}

// The fused M = 1 kernel (the CTA decodes the token itself) with 16 or 8 warps per row group.
template <bool EXACT, bool SPLIT = false>
void launch_fused_as(bool sixteen, size_t smem, cudaStream_t s, const V10Args& q, int nkb) {
  static const bool attributes_set = [] {
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemv_frag<1, true, false, kSrcTokenSmem, 16, EXACT, SPLIT>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kFusedMaxBytes)));
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemv_frag<1, true, false, kSrcTokenSmem, 8, EXACT, SPLIT>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kFusedMaxBytes)));
    return true;
  }();
  (void)attributes_set;
  const auto grid = static_cast<unsigned>(q.groups);
  if (sixteen) launch_programmatic(gemv_frag<1, true, false, kSrcTokenSmem, 16, EXACT, SPLIT>, grid, 16 * 32, smem, q.chained, s, q, nkb);
  else launch_programmatic(gemv_frag<1, true, false, kSrcTokenSmem, 8, EXACT, SPLIT>, grid, 8 * 32, smem, q.chained, s, q, nkb);
}

template <bool EXACT>
void launch_fused(bool sixteen, size_t smem, cudaStream_t s, V10Args q, int nkb) {
  if constexpr (EXACT) {
    if (split_segment_warps(q, sixteen ? 16 : 8)) return launch_fused_as<true, true>(sixteen, smem, s, q, nkb);
  }
  launch_fused_as<EXACT>(sixteen, smem, s, q, nkb);
}

// v17's tail batches: code for exactly the tail's blocks (segment_blocks' EXACT_TAIL) by default,
// MICROMIX_GEMV_TAIL=slots for v14's three slots; read per call (experiments, tests).
bool gemv_exact_tails() {
  const std::string v = env_knob("MICROMIX_GEMV_TAIL", {"exact", "slots"});
  return v.empty() ? kExactTailsDefault : v == "exact";
}

// v17 on the token tiles (M = 2 .. 16): warps per row group by gemv_tile_warps (4 where only that
// fits the grid in one wave); MICROMIX_GEMV_TILE_WARPS (4 or 8) overrides it, read per call. H100,
// 70/20/10, 8 warps -> the rule, same process (session 12): M = 16 Llama-3.1-8B qkv 18.6 -> 15.8 us,
// Qwen2.5-7B qkv 16.5 -> 13.9, Qwen2.5-32B qkv / o / down 22.2 / 19.7 / 66.3 -> 19.6 / 16.5 / 63.0;
// M = 2 Llama-3.1-70B qkv / o / down 30.1 / 27.4 / 74.6 -> 28.6 / 25.5 / 67.9; nothing else changes.
template <int NT>
int gemv_tile_warps_for(int64_t groups) {
  const std::string v = env_knob("MICROMIX_GEMV_TILE_WARPS", {"4", "8"});
  if (!v.empty()) return std::stoi(v);
  static const int64_t resident8 = resident_ctas(gemv_frag<NT, true, true, kSrcTiles, 8>, 256);
  static const int64_t resident4 = resident_ctas(gemv_frag<NT, true, true, kSrcTiles, 4>, 128);
  return gemv_tile_warps(groups, resident8, resident4);
}

// v20's token-tile GEMV (M = 2 .. 16 after the pre-pass): the shape by gemv_one_tile_shape at M <= 8,
// by gemv_two_tile_shape at M = 9 .. 16 (two token tiles; session 13).
// MICROMIX_GEMV_TILE_WARPS (1 | 2 | 4 | 8 | 16) and MICROMIX_GEMV_TILE_BATCH (1 | 2 | 4) override warps per
// row group and blocks per load batch, read per call (experiments; built: 1 / 4, 2 / 4, 2 / 2, 4 / 4, 4 / 2,
// 8 / 4, 8 / 2, 16 / 2, 16 / 1).
template <int NT>
TileShape tile_shape(int64_t groups) {
  TileShape shape{};
  if constexpr (NT == 1) {
    static const int64_t r16_b2 = resident_ctas(gemv_frag<1, true, true, kSrcTiles, 16, false, false, 2>, 512);
    static const int64_t r8_b4 = resident_ctas(gemv_frag<1, true, true, kSrcTiles, 8>, 256);
    shape = gemv_one_tile_shape(groups, r16_b2, r8_b4);
  } else {
    static const int64_t r8_b4 = resident_ctas(gemv_frag<2, true, true, kSrcTiles, 8>, 256);
    static const int64_t r4_b4 = resident_ctas(gemv_frag<2, true, true, kSrcTiles, 4>, 128);
    static const int64_t r8_b2 = resident_ctas(gemv_frag<2, true, true, kSrcTiles, 8, false, false, 2>, 256);
    shape = gemv_two_tile_shape(groups, r8_b4, r4_b4, r8_b2);
  }
  const std::string w = env_knob("MICROMIX_GEMV_TILE_WARPS", {"1", "2", "4", "8", "16"}), b = env_knob("MICROMIX_GEMV_TILE_BATCH", {"1", "2", "4"});
  if (!w.empty()) shape.warps = std::stoi(w);
  if (!b.empty()) shape.batch = std::stoi(b);
  return shape;
}

template <int NT, int SRC = kSrcTiles>
void launch_tiles(bool pdl, cudaStream_t s, const V10Args& q, int nkb) {
  const TileShape shape = tile_shape<NT>(q.groups);
  const auto grid = static_cast<unsigned>(q.groups);
  const unsigned threads = 32u * static_cast<unsigned>(shape.warps);
  const auto go = [&](auto kernel) { launch_after_prepass(kernel, grid, threads, pdl, s, q, nkb); };
  const int w = shape.warps, b = shape.batch;
  if (w == 1 && b == 4) go(gemv_frag<NT, true, true, SRC, 1>);
  else if (w == 2 && b == 4) go(gemv_frag<NT, true, true, SRC, 2>);
  else if (w == 2 && b == 2) go(gemv_frag<NT, true, true, SRC, 2, false, false, 2>);
  else if (w == 4 && b == 4) go(gemv_frag<NT, true, true, SRC, 4>);
  else if (w == 4 && b == 2) go(gemv_frag<NT, true, true, SRC, 4, false, false, 2>);
  else if (w == 8 && b == 4) go(gemv_frag<NT, true, true, SRC, 8>);
  else if (w == 8 && b == 2) go(gemv_frag<NT, true, true, SRC, 8, false, false, 2>);
  else if (w == 16 && b == 2) go(gemv_frag<NT, true, true, SRC, 16, false, false, 2>);
  else if (w == 16 && b == 1) go(gemv_frag<NT, true, true, SRC, 16, false, false, 1>);
  else MM_CUDA_REQUIRE(false, "no token-tile GEMV with " + std::to_string(w) + " warps per row group and " + std::to_string(b) + "-block batches");
}

// v19 at M = 2: the tokens decoded by each CTA into a compact tile of MP token slots (kSrcTokens2 / 4
// / 8, MP >= M), exact tails, 16 warps per row group where that grid fits the GPU in one wave, else 8
// where that one does (the M = 1 fused kernel's rule); false (nothing launched) where neither does.
// Why: on the one-wave layers (8B qkv / o) M = 2 cost ~2.6 us more than M = 1, and the GEMV itself only
// ~1.1 us of that (ncu, H100, session 12): the rest is the pre-pass kernel the GEMV waits for. H100, 70/20/10,
// v17 -> v19 in one process: Llama-3.1-8B M = 2 qkv 13.8 -> 12.2 us, o 11.3 -> 10.7; Qwen2.5-7B qkv
// 12.3 -> 11.3, o 10.5 -> 10.0. Each CTA decodes all K blocks of every slot (4 rounds of its 256 threads
// at MP = 2 and K = 4096), and from M = 3 that costs more than the pre-pass: M = 3-4 (MP = 4) qkv 13.8
// -> 14.2-14.5, o 11.3 -> 12.2-12.5; M = 6-8 (MP = 8) 18.7-19.0 / 16.0; two items per thread and round
// (loads of both in flight) changed nothing (bench/GPU_NOTES.md, session 12). So v19 takes M = 2 only;
// MICROMIX_GEMV_FUSED_TOKENS (0 = off, 2, 4, 8: the largest M taken) overrides it, read per call.
// 16 warps against 8 (alternating, H100, M = 2, 70/20/10): 8B o 10.7 -> 9.9 us, Qwen2.5-7B o 10.0 -> 9.4.
// Session 13: with the per-segment prologue (decode_tokens_segment) M = 3-4 gain too (8B qkv 13.7 ->
// 13.2, o 11.3 -> 10.9, Qwen2.5-7B qkv 12.2 -> 11.9, o 10.5 -> 9.9 against v17), M = 5-8 still lose
// (8B qkv 13.8 -> 15.6): the default limit is M = 4.
int gemv_fused_tokens_max() {
  const std::string v = env_knob("MICROMIX_GEMV_FUSED_TOKENS", {"0", "2", "4", "8"});
  return v.empty() ? 4 : std::stoi(v);
}

static_assert(kFusedMaxBlocks * 8 * kFusedBytesPerBlock <= kFusedMaxBytes, "v19's 8-slot tile within the attribute set");
// kWarps per row group (8, or 16 at <= 64 registers); resident: CTAs of that kernel the GPU holds at once.
template <int SRC, int kWarps>
int64_t fused_tokens_resident() {
  constexpr int MP = token_slots(SRC);
  static const int64_t resident =
      fused_resident_ctas(gemv_frag<1, true, true, SRC, kWarps, true>, kWarps * 32, kFusedMaxBlocks * MP * kFusedBytesPerBlock);
  return resident;
}

template <int SRC>
bool launch_fused_tokens_as(cudaStream_t s, const V10Args& q, int nkb) {
  constexpr int MP = token_slots(SRC);
  const size_t smem = static_cast<size_t>(nkb) * MP * kFusedBytesPerBlock;
  const auto grid = static_cast<unsigned>(q.groups);
  if (q.groups <= fused_tokens_resident<SRC, 16>()) {  // 64 registers, no spills (ptxas)
    launch_programmatic(gemv_frag<1, true, true, SRC, 16, true>, grid, 16 * 32, smem, q.chained, s, q, nkb);
  } else {
    if (q.groups > fused_tokens_resident<SRC, kWarpsDefault>()) return false;
    launch_programmatic(gemv_frag<1, true, true, SRC, kWarpsDefault, true>, grid, kWarpsDefault * 32, smem, q.chained, s, q, nkb);
  }
  return true;
}

bool launch_fused_tokens(cudaStream_t s, V10Args q, int nkb) {
  q.lean_prologue = env_knob("MICROMIX_GEMV_LEAN_PROLOGUE", {"0", "1"}) != "0";
  if (q.M <= 2) return launch_fused_tokens_as<kSrcTokens2>(s, q, nkb);
  if (q.M <= 4) return launch_fused_tokens_as<kSrcTokens4>(s, q, nkb);
  return launch_fused_tokens_as<kSrcTokens8>(s, q, nkb);
}

// v22: where the caller's decode-ready activations replace the in-kernel or pre-pass decoding. 2 (the
// default, MICROMIX_GEMV_ACTS=all): everywhere, also in place of the fused paths' per-CTA decoding (M = 1
// one-wave grids, v19's M = 2..4); 1 (=prepass): only where v21 would run a pre-pass kernel (v21's kernels,
// bit-identical y); 0 (=0): never (v21). Read per call. H100, 70/20/10, Llama-3.1-8B chains (RMSNorm +
// quantizer + GEMV), v21 -> =prepass -> =all: qkv M = 1 14.4 -> 14.8 -> 13.5 us, M = 4 17.0 -> 18.5 -> 15.3;
// o M = 4 14.6 -> 15.9 -> 13.1 (bench/GPU_NOTES.md, session 15).
int gemv_acts_mode() {
  const std::string v = env_knob("MICROMIX_GEMV_ACTS", {"0", "prepass", "all"});
  return v == "0" ? 0 : v == "prepass" ? 1 : 2;
}

// v22: whether the GEMV reading the quantizer's activations starts early behind it (programmatic
// dependent launch): only where the quantizer's grid is small (<= kEarlyGemvMaxQuantizerCtas = 12 CTAs). Launched early, the GEMV's
// CTAs take the SM slots beside the quantizer's. H100, 70/20/10, early against after, chains in one
// process (bench/GPU_NOTES.md, session 15): with 2-12 quantizer CTAs early gained 0.9-3.5 us on every
// layer measured (Llama-3.1-8B, 70B, Qwen2.5-32B); with 14-16 it went either way (8B down M = 4 -1.4 us,
// 70B o M = 16 -4.3, Qwen2.5-32B down M = 1 +2.1), from 28 on it lost (8B down M = 16 -5, 70B down M = 16
// -15). MICROMIX_GEMV_ACTS_CHAIN (0: never, all: always) overrides it, read per call.
bool acts_chain(const V10Args& q) {
  if (!q.chained) return false;
  const std::string v = env_knob("MICROMIX_GEMV_ACTS_CHAIN", {"0", "all"});
  if (!v.empty()) return v == "all";
  return quantizer_ctas(q.M, 32 * static_cast<int64_t>(q.nb[0] + q.nb[1] + q.nb[2])) <= kEarlyGemvMaxQuantizerCtas;
}

template <int NT, bool INT4>
// ws: the decoded-activation workspace (ws_bytes, pairs first, act_bytes of them), allocated here on
// the first launch that needs the pre-pass (the fused M = 1 path does not); the caller frees it.
// v14: at M = 1 beyond the fused path, the compact one-token pre-pass (prepare_token); v17: the same
// with gemv_warps_per_group's CTAs. given (v22; slots 0: none): the quantizer's decode-ready activations
// in the layout this M reads (1 or 8 NT slots), used as gemv_acts_mode says; the GEMV is then the call's
// first kernel, launched as a programmatic dependent of the quantizer.
void launch_prepared(V10Args q, int nkb, uint8_t*& ws, size_t ws_bytes, size_t act_bytes, int version, cudaStream_t s,
                     const DecodeActsView& given = {}) {
  const bool pdl = version >= 12, token = version >= 14;
  const unsigned grid = static_cast<unsigned>(q.N / 16);
  const int acts_mode = INT4 && given.slots && nkb > 0 ? gemv_acts_mode() : 0;
  if constexpr (INT4 && NT == 1) {
    const size_t fused = static_cast<size_t>(nkb) * kFusedBytesPerBlock;
    // CTAs the GPU holds at once with 16 / 8 warps per row group (current device, first call):
    // a grid that fits with 16 warps halves each warp's chain of K batches.
    static const int64_t resident16 =
        fused_resident_ctas(gemv_frag<1, true, false, kSrcTokenSmem, 16>, 16 * 32, kFusedMaxBlocks * kFusedBytesPerBlock);
    static const int64_t resident8 = std::max<int64_t>(
        1, fused_resident_ctas(gemv_frag<1, true, false, kSrcTokenSmem, 8>, 8 * 32, kFusedMaxBlocks * kFusedBytesPerBlock));
    const bool exact = version >= 17 && gemv_exact_tails();
    if (q.M == 1 && acts_mode < 2 && nkb <= kFusedMaxBlocks && static_cast<int64_t>(grid) <= resident8) {
      const bool sixteen = static_cast<int64_t>(grid) <= resident16;
      if (exact) launch_fused<true>(sixteen, fused, s, q, nkb);
      else launch_fused<false>(sixteen, fused, s, q, nkb);
      return;
    }
    if (version >= 19 && q.M >= 2 && q.M <= gemv_fused_tokens_max() && acts_mode < 2 && nkb <= kFusedMaxBlocks &&
        launch_fused_tokens(s, q, nkb))
      return;
    if (q.M == 1 && token && nkb > 0) {
      bool gemv_pdl = pdl;
      if (acts_mode) {  // v22: the quantizer wrote the compact layout
        q.act = given.b;
        q.act_s = given.s;
        gemv_pdl = acts_chain(q);
      } else {
        if (!ws) ws = static_cast<uint8_t*>(scratch_alloc(ws_bytes, s));  // ws_bytes > nkb * 68
        q.act = reinterpret_cast<uint4*>(ws);
        q.act_s = reinterpret_cast<float*>(ws + static_cast<size_t>(nkb) * 64);
        const auto ctas = static_cast<unsigned>((nkb * 4 + 255) / 256);
        launch_programmatic(prepare_token, ctas, 256, 0, chain_prepass(q), s, q, nkb, const_cast<uint4*>(q.act),
                            const_cast<float*>(q.act_s));
      }
      if (version >= 17 && exact) launch_token_warps<true>(gemv_warps_per_group(q.groups), gemv_pdl, s, q, nkb);
      else if (version >= 17) launch_token_warps<false>(gemv_warps_per_group(q.groups), gemv_pdl, s, q, nkb);
      else launch_after_prepass(gemv_frag<1, true, false, kSrcTokenGlobal>, grid, kWarpsDefault * 32, pdl, s, q, nkb);
      return;
    }
  }
  bool gemv_pdl = pdl;
  // v22: the tiles' {scale, start} form (kSrcTilesSC, mx_decode_acts.cuh), also from the pre-pass.
  const bool sc = INT4 && version >= 22 && !(NT == 1 && q.M == 1);
  if (acts_mode) {  // v22: the quantizer wrote the token tiles
    q.act = given.b;
    q.act_s = given.s;
    gemv_pdl = acts_chain(q);
  } else {
    if (!ws) ws = static_cast<uint8_t*>(scratch_alloc(ws_bytes, s));
    uint4* act = reinterpret_cast<uint4*>(ws);
    float* act_s = reinterpret_cast<float*>(ws + act_bytes);
    q.act = act;
    q.act_s = act_s;
    if (nkb > 0) {
      const int64_t threads = static_cast<int64_t>(nkb) * 8 * NT * 4;
      const unsigned blocks = static_cast<unsigned>((threads + 255) / 256);
      if (sc)
        launch_programmatic(prepare_activations<NT, kActInt4, true>, blocks, 256, 0, chain_prepass(q), s, q, nkb, act, act_s,
                            static_cast<int*>(nullptr));
      else
        launch_programmatic(prepare_activations<NT, INT4>, blocks, 256, 0, chain_prepass(q), s, q, nkb, act, act_s,
                            static_cast<int*>(nullptr));
    }
  }
  bool single = false;  // v11 at M = 1 skips the odd tokens' promotion
  if constexpr (INT4 && NT == 1) single = q.M == 1;
  if constexpr (INT4) {
    if (!single && version >= 20) return sc ? launch_tiles<NT, kSrcTilesSC>(gemv_pdl, s, q, nkb) : launch_tiles<NT>(gemv_pdl, s, q, nkb);
    if (!single && version >= 17 && gemv_tile_warps_for<NT>(q.groups) == 4)
      return launch_after_prepass(gemv_frag<NT, true, true, kSrcTiles, 4>, grid, 4 * 32, pdl, s, q, nkb);
  }
  if (single) launch_after_prepass(gemv_frag<NT, INT4, !(INT4 && NT == 1), kSrcTiles>, grid, kWarpsDefault * 32, pdl, s, q, nkb);
  else launch_after_prepass(gemv_frag<NT, INT4, true, kSrcTiles>, grid, kWarpsDefault * 32, pdl, s, q, nkb);
}

}  // namespace

// v21's pre-pass launched early only up to K = 5120: launched early, its CTAs hold their SM slots
// while they wait for the quantizer (longer at larger K: 6.0 us at K = 4096, 9.9 at 14336 for the
// RMSNorm quantizer at M <= 16), and the GEMV's CTAs, launched early behind them, find fewer slots;
// a one-wave GEMV's CTAs that do not fit start only after the wait, as a tail. H100, 70/20/10, v20
// -> v21 chains (bench_decode_linear, session 14): K = 4096 (8B qkv / o / gate_up, M = 2..16) 0.5-1.8
// us faster, K = 5120 (Qwen2.5-32B qkv / o) 1.5-1.9 faster; K = 8192 (70B qkv M = 4: 39.0 -> 42.5, o M
// = 16: 38.9 -> 43.8) and K >= 14336 (8B down M = 16: 38.4 -> 42.4, Qwen2.5-32B down 70.2 -> 87.2)
// slower, whether the pre-pass had 32 CTAs or 112. MICROMIX_GEMV_CHAIN_PREPASS (0, 128, 160, 256,
// all: the most K blocks launched early) overrides the limit, read per call.
bool gemvp::chain_prepass(const V10Args& q) {
  if (!q.chained) return false;
  const std::string v = env_knob("MICROMIX_GEMV_CHAIN_PREPASS", {"0", "128", "160", "256", "all"});
  if (v == "all") return true;
  return q.nb[0] + q.nb[1] + q.nb[2] <= (v.empty() ? 160 : std::stoi(v));
}

int mx_mixed_gemv_prepared_default_version() { return 22; }

void mx_mixed_gemv_prepared(const MxMixedDevice& a, const MxMixedDevice& w_prepared, void* d_y, OutType out,
                            void* stream, int version, const MxDecodeActs* acts) {
  check_operands("mx_mixed_gemv_prepared", a, w_prepared);
  if (version == 0) version = mx_mixed_gemv_prepared_default_version();
  MM_CUDA_REQUIRE((version >= 10 && version <= 14) || version == 17 || (version >= 19 && version <= 22),
                  "mx_mixed_gemv_prepared: version " + std::to_string(version) + " does not exist (0, 10 .. 14, 17, 19 .. 22)");
  const DecodeActsView given = version >= 22 ? decode_acts_view(acts, a.rows, a.split, "mx_mixed_gemv_prepared") : DecodeActsView{};
  if (w_prepared.rows == 0 || a.rows == 0) return;
  V10Args p{};
  p.a = seg_view(a);
  for (int s = 0; s < mx::kSegments; ++s) {
    p.wc[s] = w_prepared.codes[s];
    p.ws[s] = w_prepared.scales[s];
    p.nb[s] = static_cast<int>(a.split.count(s) / mx::kBlock);
  }
  p.M = a.rows;
  p.N = w_prepared.rows;
  p.groups = p.N / 16;
  p.y = d_y;
  p.out_f32 = out == OutType::f32;
  p.fp6_e2m3 = a.split.fp6 == mx::ElemFormat::fp6_e2m3;
  p.chained = version >= 21;
  const auto s = static_cast<cudaStream_t>(stream);
  p.seg_start[0] = 0;
  p.seg_start[1] = p.nb[0];
  p.seg_start[2] = p.nb[0] + p.nb[1];
  const int nkb = p.nb[0] + p.nb[1] + p.nb[2];
  // Stream-ordered workspace for the decoded activations of up to 16 rows (pairs, scales), taken by
  // the first launch that runs the pre-pass.
  const size_t act_bytes = static_cast<size_t>(nkb) * 16 * 64, act_s_bytes = static_cast<size_t>(nkb) * 16 * 8;  // (the SC pairs)
  uint8_t* ws = nullptr;
  // Rows per launch pair: 16 (v10-v12; the decode range is M <= 16, larger M works), 64 (v13, v14).
  // v13 = v12 up to 16 rows, the rows kernel beyond (mx_gemv_decode_rows.cu); v14 = v13 with the
  // compact one-token pre-pass at M = 1 where the fused path does not apply.
  // v14 also from 9 rows up where the rows kernel runs 8 row groups per CTA (large N): H100, 70/20/10,
  // Llama-3.1-8B gate_up M = 16 55.6-56.9 -> 51.5-52.1 us, M = 9 54.8-55.6 -> 50.3-54.2; on the smaller
  // layers (1 row group per CTA) it was slower there (qkv 18.5 -> 19.8, o 12.2 -> 13.4, down 25.5 -> 28.5).
  // v20 keeps M = 9..16 on the token tiles there (launch_tiles; MICROMIX_GEMV_WIDE_ROWS=1 takes the
  // rows kernel again, =0 also before v20; read per call).
  const std::string wide_env = env_knob("MICROMIX_GEMV_WIDE_ROWS", {"0", "1"});
  const bool wide_rows = wide_env.empty() ? version < 20 : wide_env == "1";
  const bool rows = version >= 13 && (a.rows > 16 || (version >= 14 && wide_rows && a.rows > 8 && gemv_rows_groups_per_cta(p.groups) == 8));
  const int64_t rows_per_launch = rows ? kRowsTokens : 16;
  if (rows) ws = static_cast<uint8_t*>(scratch_alloc(gemv_rows_workspace(nkb), s));
  for (int64_t m0 = 0; m0 < a.rows; m0 += rows_per_launch) {
    V10Args q = p;
    q.M = std::min<int64_t>(rows_per_launch, a.rows - m0);
    for (int seg = 0; seg < mx::kSegments; ++seg) {
      q.a.codes[seg] = p.a.codes[seg] + m0 * p.a.row_bytes[seg];
      q.a.scales[seg] = p.a.scales[seg] + m0 * p.a.blocks[seg];
    }
    q.y = static_cast<uint8_t*>(p.y) + m0 * p.N * (p.out_f32 ? 4 : 2);
    const bool two = q.M > 8;
    if (rows) {
      gemv_rows_launch(q, nkb, ws, s);
    } else if (version >= 11) {
      if (two) launch_prepared<2, true>(q, nkb, ws, act_bytes + act_s_bytes, act_bytes, version, s, given);
      else launch_prepared<1, true>(q, nkb, ws, act_bytes + act_s_bytes, act_bytes, version, s, given);
    } else {
      if (two) launch_prepared<2, false>(q, nkb, ws, act_bytes + act_s_bytes, act_bytes, version, s);
      else launch_prepared<1, false>(q, nkb, ws, act_bytes + act_s_bytes, act_bytes, version, s);
    }
  }
  scratch_free(ws, s);
}

size_t mx_decode_acts_bytes(int64_t M, const mx::MixedSplit& split) {
  const int slots = decode_act_slots(M);  // tiles: room for the {scale, start} form
  return static_cast<size_t>(split.cols() / mx::kBlock) * slots * (sizeof(uint4) * 4 + sizeof(float) * (slots > 1 ? 2 : 1));
}

DecodeActsView decode_acts_view(const MxDecodeActs* acts, int64_t M, const mx::MixedSplit& split, const char* op) {
  const int slots = decode_act_slots(M);
  const int64_t nkb = split.cols() / mx::kBlock;
  if (!acts || slots == 0 || nkb == 0) return {};
  const size_t need = mx_decode_acts_bytes(M, split);
  MM_CUDA_REQUIRE(acts->data && acts->bytes >= need, std::string(op) + ": the decode-ready activation buffer holds " +
                                                         std::to_string(acts->bytes) + " bytes, M = " + std::to_string(M) +
                                                         " needs " + std::to_string(need) + " (mx_decode_acts_bytes)");
  MM_CUDA_REQUIRE(mixed::aligned16(acts->data), std::string(op) + ": the decode-ready activation buffer must be 16-byte aligned");
  DecodeActsView v;
  v.b = static_cast<uint4*>(acts->data);
  v.s = reinterpret_cast<float*>(v.b + nkb * slots * 4);
  v.slots = slots;
  v.nkb = static_cast<int>(nkb);
  return v;
}

void write_decode_acts(const MxMixedDeviceOut& a, const DecodeActsView& v, cudaStream_t stream) {
  using namespace gemvp;
  if (v.slots == 0 || a.rows == 0) return;
  V10Args p{};
  for (int seg = 0; seg < mx::kSegments; ++seg) {
    p.a.codes[seg] = a.codes[seg];
    p.a.scales[seg] = a.scales[seg];
    p.a.row_bytes[seg] = static_cast<int64_t>(mx::packed_row_bytes(a.split.format(seg), a.split.count(seg)));
    p.a.blocks[seg] = a.split.count(seg) / mx::kBlock;
    p.nb[seg] = static_cast<int>(p.a.blocks[seg]);
  }
  p.M = a.rows;
  p.fp6_e2m3 = a.split.fp6 == mx::ElemFormat::fp6_e2m3;
  p.seg_start[1] = p.nb[0];
  p.seg_start[2] = p.nb[0] + p.nb[1];
  const int nkb = v.nkb;
  const int64_t threads = static_cast<int64_t>(nkb) * v.slots * 4;  // the kernels take whole CTAs (quad shuffles)
  const auto ctas = static_cast<unsigned>((threads + 255) / 256);
  if (v.slots == 1) prepare_token<<<ctas, 256, 0, stream>>>(p, nkb, v.b, v.s);
  else if (v.slots == 8) prepare_activations<1, kActInt4, true><<<ctas, 256, 0, stream>>>(p, nkb, v.b, v.s, nullptr);
  else prepare_activations<2, kActInt4, true><<<ctas, 256, 0, stream>>>(p, nkb, v.b, v.s, nullptr);
  MM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace micromix::cuda
