// Prepared decode v13 above 16 rows ("rows kernel"; up to 16 rows v13 runs v12, mx_gemv_decode_prepared.cu):
// batched decoding, M = 17..64 per launch pair, on the prepared weights (mx_prepare_gemv_weights).
//
// Why (bench/GPU_NOTES.md, session 7): v10-v12 take 16 rows per launch pair, so M = 64 read every weight
// four times and converted it four times; the GEMM dispatch (v18 / v15) at M = 17..64 was 0.38-0.56x
// cuBLAS BF16 on Llama-3.1-8B shapes.
//
// v13: a CTA works on 32 tokens (4 token tiles of 8; M = 33..64 runs two chunks, CTA i taking chunk
// i % 2, so a row group's two CTAs run side by side and share its weights through L2) and on RG row
// groups of 16 rows with 8 / RG warps splitting each group's K (partials summed in a fixed order).
// FP4 blocks (the bulk of K) run on bf16 MMAs with both scales folded into the operands: E2M1 times
// 2^(s - 127) is an exact normal bf16 for scale codes 2..252 (kFoldMin, kFoldMax), so the MMA
// accumulates the exact products of the whole K range in FP32 and nothing is promoted per block
// (v11's int8 path promotes 4 accumulators per token tile and block). A block whose weight scales (any
// of its 16 rows) or activation scales (any token; the pre-pass records it per block in act_f) fall
// outside runs unscaled into a fresh FP32 partial and is promoted with the scales (act_s is 1 for a
// token that was folded). FP6 / FP8 blocks keep v10's f16 path (unscaled, promoted per block).
// Each warp loads the weights, scales and activation slots of U blocks before computing any: loading
// the activations just in time left every block waiting for an L2 round trip (1.6x slower).
// Measured and not kept (H100, session 7): prefetching each next batch of weights into L2 (5-15%
// slower: these kernels are issue-bound), several row groups per CTA except on wide layers (see
// gemv_rows_groups_per_cta), and "v14": every operand staged in shared memory by cp.async in a ring
// of steps with one CTA barrier per step, 64 tokens per CTA (so each weight conversion feeds 8
// tiles): 1.3-2.2x slower than this kernel on every 8B layer at M = 32 and 64; one block per load
// batch at 3 CTAs per SM: up to 1.5x slower (qkv M = 32 11% faster); the FP4 byte tables held in
// registers instead of rebuilt per block by ptxas (-30 moves per batch): no change.
#include <cstdlib>

#include "cuda/mx_gemv_prepared_common.cuh"

namespace micromix::cuda::gemvp {
namespace {

// The raw bytes one lane needs for one MX block, loaded U blocks at a time before any is computed:
// its weight words (rows g and g + 8) and scale codes, per token tile the activation slot of token
// 8t + g and (FP6 / FP8 blocks) the scales of tokens 8t + 2q, + 1, and (FP4) the block's fold flag.
// Loading the activations just in time (the first v13) left every block waiting for an L2 round
// trip: 1.6x slower than v12 at M = 1 on every mix (H100, session 7).
template <int NT>
struct RowsRaw {
  uint32_t w[2], w8[2];
  unsigned sw2;
  uint4 b[NT];
  float2 sa[NT];
  int folded;
};

// Activation pointers of this lane at one K block (token tile 0 of this CTA's chunk); tile t is
// 32 t slots on, and a K block is 8 * tiles slots (tiles: the token tiles of all chunks).
struct RowsAct {
  const uint4* b;
  const float* s;
  const int* f;
};

template <int SEG, int NT>
__device__ __forceinline__ void load_rows_block(const uint8_t* wsrc, const uint8_t* wssrc, const RowsAct& a, RowsRaw<NT>& r) {
  load_weight_words<SEG>(wsrc, wssrc, r.w, r.w8, r.sw2);
#pragma unroll
  for (int t = 0; t < NT; ++t) r.b[t] = ld_nc_v4(a.b + 32 * t);
  if constexpr (SEG == 0) {
    r.folded = static_cast<int>(ld_nc_u32(a.f));
  } else {
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const uint2 v = ld_nc_v2(a.s + 8 * t);
      r.sa[t] = make_float2(__uint_as_float(v.x), __uint_as_float(v.y));
    }
  }
}

// One block against this CTA's NT token tiles. FP4 with every scale foldable: bf16 MMAs straight
// into the accumulators. Otherwise a fresh FP32 partial per tile, promoted with the weight scale and
// the activation scale (1 for a folded token; FP4's scales, needed only here, are loaded now).
template <int SEG, int NT, bool F6E2M3>
__device__ __forceinline__ void rows_block(const V10Args& p, const float* scale_lut, const RowsRaw<NT>& r, const RowsAct& a,
                                           Acc<NT>& acc) {
  const unsigned s0 = r.sw2 & 0xFFu, s8 = r.sw2 >> 8;
  uint32_t A[4], A8[4];
  float undo = 1.0f;
  float2 sa[NT];
  if constexpr (SEG == 0) {
    fp4x8_to_bf16(r.w[0], A);
    fp4x8_to_bf16(r.w8[0], A8);
    if (__all_sync(0xFFFFFFFFu, foldable(s0) && foldable(s8)) && r.folded != 0) {
      const uint32_t m0 = bf16_pow2_x2(s0), m8 = bf16_pow2_x2(s8);
#pragma unroll
      for (int i = 0; i < 4; ++i) A[i] = mul_bf16x2(A[i], m0), A8[i] = mul_bf16x2(A8[i], m8);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        mma_bf16(acc.c[t], A[0], A8[0], A[1], A8[1], r.b[t].x, r.b[t].y);
        mma_bf16(acc.c[t], A[2], A8[2], A[3], A8[3], r.b[t].z, r.b[t].w);
      }
      return;
    }
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      const uint2 v = ld_nc_v2(a.s + 8 * t);
      sa[t] = make_float2(__uint_as_float(v.x), __uint_as_float(v.y));
    }
  } else {
    row_pairs<SEG, F6E2M3>(r.w[0], r.w[1], A);
    row_pairs<SEG, F6E2M3>(r.w8[0], r.w8[1], A8);
    // FP6 values reach the MMA scaled by 2^-k on both sides: undone with the weight scale.
    undo = SEG != 1 ? 1.0f : fp6_f16_undo(F6E2M3);
#pragma unroll
    for (int t = 0; t < NT; ++t) sa[t] = r.sa[t];
  }
  // The partial times undo first (a power of two), then the scale: no overflow where the reference has none.
  const float swg = scale_lut[s0], swg8 = scale_lut[s8];
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if constexpr (SEG == 0) {
      mma_bf16(tmp, A[0], A8[0], A[1], A8[1], r.b[t].x, r.b[t].y);
      mma_bf16(tmp, A[2], A8[2], A[3], A8[3], r.b[t].z, r.b[t].w);
    } else {
      mma_f16(tmp, A[0], A8[0], A[1], A8[1], r.b[t].x, r.b[t].y);
      mma_f16(tmp, A[2], A8[2], A[3], A8[3], r.b[t].z, r.b[t].w);
    }
    acc.c[t][0] = fmaf(tmp[0] * undo * swg, sa[t].x, acc.c[t][0]);
    acc.c[t][1] = fmaf(tmp[1] * undo * swg, sa[t].y, acc.c[t][1]);
    acc.c[t][2] = fmaf(tmp[2] * undo * swg8, sa[t].x, acc.c[t][2]);
    acc.c[t][3] = fmaf(tmp[3] * undo * swg8, sa[t].y, acc.c[t][3]);
  }
}

__device__ __forceinline__ RowsAct rows_act_advance(const RowsAct& a, int blocks, int tiles) {
  return {a.b + static_cast<int64_t>(blocks) * 32 * tiles, a.s + static_cast<int64_t>(blocks) * 8 * tiles, a.f + blocks};
}

// Warp ks of its row group takes blocks ks, ks + KS, ... of the segment, U at a time.
template <int SEG, int NT, int KS, bool F6E2M3 = false>
__device__ __forceinline__ void rows_segment(const V10Args& p, const float* scale_lut, int64_t G, int ks, int g, int q,
                                             int tile0, Acc<NT>& acc) {
  constexpr int U = NT >= 4 ? 2 : 4, bpb = block_bytes(SEG), bpr = bpb / 4;
  const int nb = p.nb[SEG], tiles = p.act_tiles;
  if (ks >= nb) return;
  const int lane = 4 * g + q;
  const int64_t at = prepared_index(G, ks, nb, p.groups);
  const int64_t step = (prepared_index(G, ks + 1, nb, p.groups) - at) * 16;
  const uint8_t* wsrc = p.wc[SEG] + at * 16 * bpb + lane * 2 * bpr;
  const uint8_t* wssrc = p.ws[SEG] + at * 16 + 2 * g;
  const int64_t wstride = KS * step * bpb, sstride = KS * step;
  const int kb = p.seg_start[SEG] + ks;
  RowsAct a{p.act + (static_cast<int64_t>(kb) * 8 * tiles + 8 * tile0 + g) * 4 + q,
            p.act_s + static_cast<int64_t>(kb) * 8 * tiles + 8 * tile0 + 2 * q, p.act_f + kb};
  int lb = ks;
  for (; lb + KS * (U - 1) < nb; lb += KS * U) {
    RowsRaw<NT> r[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      load_rows_block<SEG, NT>(wsrc + u * wstride, wssrc + u * sstride, rows_act_advance(a, u * KS, tiles), r[u]);
#pragma unroll
    for (int u = 0; u < U; ++u) rows_block<SEG, NT, F6E2M3>(p, scale_lut, r[u], rows_act_advance(a, u * KS, tiles), acc);
    wsrc += U * wstride;
    wssrc += U * sstride;
    a = rows_act_advance(a, U * KS, tiles);
  }
  if (lb < nb) {  // the tail (1 .. U - 1 blocks) as one batch, as in mx_gemv_decode_prepared.cu
    const int rem = (nb - lb + KS - 1) / KS;
    RowsRaw<NT> r[U - 1];
#pragma unroll
    for (int u = 0; u < U - 1; ++u) {
      const int v = u < rem ? u : 0;
      load_rows_block<SEG, NT>(wsrc + v * wstride, wssrc + v * sstride, rows_act_advance(a, v * KS, tiles), r[u]);
    }
#pragma unroll
    for (int u = 0; u < U - 1; ++u)
      if (u < rem) rows_block<SEG, NT, F6E2M3>(p, scale_lut, r[u], rows_act_advance(a, u * KS, tiles), acc);
  }
}

// CTA = 8 warps = RG row groups x KS = 8 / RG warps per group (K split, partials summed in a fixed
// order through shared memory), on one chunk of 8 NT tokens: CTA i takes chunk i % chunks of row
// groups RG (i / chunks) .., so the chunks of one row group run side by side and share its weights
// through L2. Launched as a programmatic dependent of the pre-pass: weights are prefetched into L2
// before waiting for the activations.
template <int NT, int RG>
__global__ void __launch_bounds__(256, NT >= 2 ? 2 : 3) gemv_rows(V10Args p, int chunks) {
  constexpr int KS = 8 / RG;
  __shared__ float scale_lut[256];
  __shared__ float red[KS > 1 ? 8 : 1][KS > 1 ? 32 : 1][NT * 4];
  scale_lut[threadIdx.x] = scale_f32(threadIdx.x);
  const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
  const int g = lane >> 2, q = lane & 3, ks = warp % KS;
  const int chunk = static_cast<int>(blockIdx.x) % chunks;
  const int64_t G = static_cast<int64_t>(blockIdx.x / chunks) * RG + warp / KS;
  const bool live = G < p.groups;
  if (live && chunk == 0) {
    const PreparedPlace pl = prepared_place(G, p.groups);
    prefetch_first_blocks<0, KS>(p, pl, ks, lane);
    prefetch_first_blocks<1, KS>(p, pl, ks, lane);
    prefetch_first_blocks<2, KS>(p, pl, ks, lane);
  }
  griddep_wait();
  __syncthreads();
  Acc<NT> acc;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc.c[t][i] = 0.0f;
  if (live) {
    rows_segment<0, NT, KS>(p, scale_lut, G, ks, g, q, chunk * NT, acc);
    if (p.fp6_e2m3) rows_segment<1, NT, KS, true>(p, scale_lut, G, ks, g, q, chunk * NT, acc);
    else rows_segment<1, NT, KS, false>(p, scale_lut, G, ks, g, q, chunk * NT, acc);
    rows_segment<2, NT, KS>(p, scale_lut, G, ks, g, q, chunk * NT, acc);
  }
  if constexpr (KS > 1) {
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) red[warp][lane][4 * t + i] = acc.c[t][i];
    __syncthreads();
    if (ks != 0) return;
    sum_warp_partials<NT>(red, warp, KS, lane, acc);
  }
  if (!live) return;
  store_acc<NT>(p, acc, G, g, q, 8 * chunk * NT);
}

// NT token tiles per CTA, `chunks` CTAs per row-group set (M <= 8 NT chunks).
template <int NT>
void launch_rows(const V10Args& q, int chunks, int rg, cudaStream_t s) {
  const auto grid = [&](int r) { return static_cast<unsigned>((q.groups + r - 1) / r * chunks); };
  if (rg >= 8) launch_after_prepass(gemv_rows<NT, 8>, grid(8), 256, true, s, q, chunks);
  else if (rg >= 4) launch_after_prepass(gemv_rows<NT, 4>, grid(4), 256, true, s, q, chunks);
  else if (rg >= 2) launch_after_prepass(gemv_rows<NT, 2>, grid(2), 256, true, s, q, chunks);
  else launch_after_prepass(gemv_rows<NT, 1>, grid(1), 256, true, s, q, chunks);
}

// The pre-pass over TILES token tiles (all chunks) into the workspace.
template <int TILES>
void prepass_rows(V10Args& q, int nkb, uint8_t* ws, cudaStream_t s) {
  uint4* act = reinterpret_cast<uint4*>(ws);
  float* act_s = reinterpret_cast<float*>(ws + static_cast<size_t>(nkb) * kRowsTokens * 64);
  int* act_f = reinterpret_cast<int*>(reinterpret_cast<uint8_t*>(act_s) + static_cast<size_t>(nkb) * kRowsTokens * 4);
  q.act = act;
  q.act_s = act_s;
  q.act_f = act_f;
  q.act_tiles = TILES;
  if (nkb == 0) return;  // K = 0: the GEMV still writes its zeros
  const int64_t threads = static_cast<int64_t>(nkb) * 8 * TILES * 4;
  const auto ctas = static_cast<unsigned>((threads + 255) / 256);
  launch_programmatic(prepare_activations<TILES, kActBf16>, ctas, 256, 0, chain_prepass(q), s, q, nkb, act, act_s, act_f);
}

}  // namespace

size_t gemv_rows_workspace(int nkb) { return static_cast<size_t>(nkb) * (kRowsTokens * 64 + kRowsTokens * 4 + 4); }

// Row groups per CTA: MICROMIX_GEMV_RG (1, 2, 4 or 8) if set, else 8 where that still gives 1.5 CTAs
// per SM per token chunk (Llama-3.1-8B gate_up) and 1 otherwise: H100, M = 32 / 64, 70/20/10, the
// best of 1, 2, 4, 8 within 10% on every 8B layer (bench/GPU_NOTES.md session 7).
int gemv_rows_groups_per_cta(int64_t groups) {
  static const int forced = [] {  // read once per process
    const char* e = std::getenv("MICROMIX_GEMV_RG");
    const int v = e ? std::atoi(e) : 0;
    return v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
  }();
  if (forced) return forced;
  static const int sms = [] {  // the first device's SM count (as the v11 fused path's occupancy, once)
    int dev = 0, n = 132;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev);
    return n;
  }();
  return groups / 8 * 2 >= 3 * static_cast<int64_t>(sms) ? 8 : 1;
}

void gemv_rows_launch(V10Args q, int nkb, uint8_t* ws, cudaStream_t s) {
  // 4 token tiles (32 tokens) per CTA; beyond 32 rows two chunks; up to 16 rows 2 tiles.
  const int chunks = q.M > 32 ? 2 : 1, rg = gemv_rows_groups_per_cta(q.groups);
  if (q.M <= 16) {
    prepass_rows<2>(q, nkb, ws, s);
    launch_rows<2>(q, 1, rg, s);
    return;
  }
  if (q.M <= 32) prepass_rows<4>(q, nkb, ws, s);
  else prepass_rows<8>(q, nkb, ws, s);
  launch_rows<4>(q, chunks, rg, s);
}

}  // namespace micromix::cuda::gemvp
