// Decode path v10 (M <= 16) on weights prepared once in mma fragment order (mx_prepare_gemv_weights).
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
// the 8 partials are summed in a fixed order at the end. Activations are read from their row-major
// MX codes (L2-resident) and decoded in registers by the lanes that hold them.
#include <cuda_bf16.h>

#include <algorithm>

#include "cuda/mx_mixed_device.cuh"
#include "cuda/ptx_helpers.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace ptx;

constexpr int kWarps = 8;

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
  int seg_start[3];    // first K block of each segment
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

// 4 FP6 codes (low 24 bits) -> 2 f16x2 pairs of value * 2^-6 (E2M3) or * 2^-4 (E3M2).
__device__ __forceinline__ void fp6x4_to_f16(uint32_t x, bool e2m3, uint32_t& p0, uint32_t& p1) {
  const uint32_t b = (x & 0x3Fu) | ((x << 2) & 0x3F00u) | ((x << 4) & 0x3F0000u) | ((x << 6) & 0x3F000000u);
  const uint32_t sign = (b << 2) & 0x80808080u;
  const uint32_t e = e2m3 ? (b & 0x1F1F1F1Fu) | sign : ((b << 1) & 0x3E3E3E3Eu) | sign;
  p0 = e4m3x2_to_f16x2(e);
  p1 = e4m3x2_to_f16x2(e >> 16);
}


// Elements 8q .. 8q + 7 of one row's block as 4 f16x2 pairs (FP6: times 2^-6 / 2^-4). For FP6 the 6
// bytes come as lo (bytes 0-3) and hi (bytes 4-5 in the low half).
template <int SEG>
__device__ __forceinline__ void row_pairs(uint32_t lo, uint32_t hi, bool e2m3, uint32_t (&P)[4]) {
  if constexpr (SEG == 0) {
    fp4x8_to_f16(lo, P);
  } else if constexpr (SEG == 1) {
    fp6x4_to_f16(lo & 0xFFFFFFu, e2m3, P[0], P[1]);
    fp6x4_to_f16((lo >> 24) | (hi << 8), e2m3, P[2], P[3]);
  } else {
    P[0] = e4m3x2_to_f16x2(lo);
    P[1] = e4m3x2_to_f16x2(lo >> 16);
    P[2] = e4m3x2_to_f16x2(hi);
    P[3] = e4m3x2_to_f16x2(hi >> 16);
  }
}

template <int NT>
struct Acc {
  float c[NT][4];
};

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
};

// Weight pointer of block lb for this lane: base + lb * 16 * bpb (the caller advances lb).
template <int SEG, int NT>
__device__ __forceinline__ void load_block(const V10Args& p, const uint8_t* wsrc, const uint8_t* wssrc, int kb, int g, int q,
                                           BlockRaw<NT>& r) {
  if constexpr (SEG == 0) {
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(wsrc));
    r.wg[0] = v.x, r.wg[1] = 0u, r.wg8[0] = v.y, r.wg8[1] = 0u;
  } else if constexpr (SEG == 1) {
    const uint32_t* u = reinterpret_cast<const uint32_t*>(wsrc);
    const uint32_t w0 = __ldg(u), w1 = __ldg(u + 1), w2 = __ldg(u + 2);
    r.wg[0] = w0, r.wg[1] = w1 & 0xFFFFu, r.wg8[0] = (w1 >> 16) | (w2 << 16), r.wg8[1] = w2 >> 16;
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(wsrc));
    r.wg[0] = v.x, r.wg[1] = v.y, r.wg8[0] = v.z, r.wg8[1] = v.w;
  }
  r.sw2 = __ldg(reinterpret_cast<const uint16_t*>(wssrc));
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    r.b[t] = __ldg(p.act + (static_cast<int64_t>(kb) * 8 * NT + 8 * t + g) * 4 + q);
    r.sa[t] = __ldg(reinterpret_cast<const float2*>(p.act_s + static_cast<int64_t>(kb) * 8 * NT + 8 * t + 2 * q));
  }
}

// Decodes one block's weights, runs the MMAs and promotes into acc.
template <int SEG, int NT>
__device__ __forceinline__ void compute_block(const V10Args& p, const BlockRaw<NT>& r, Acc<NT>& acc) {
  uint32_t A[4], A8[4];
  row_pairs<SEG>(r.wg[0], r.wg[1], p.fp6_e2m3, A);
  row_pairs<SEG>(r.wg8[0], r.wg8[1], p.fp6_e2m3, A8);
  // FP6 values reach the MMA scaled by 2^-k on both sides: undo it with the weight scale (applied to
  // the partial first, so that no scale overflows where the reference does not).
  const float undo = SEG != 1 ? 1.0f : p.fp6_e2m3 ? 4096.0f : 256.0f;
  const float swg = scale_f32(r.sw2 & 0xFFu), swg8 = scale_f32(r.sw2 >> 8);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float tmp[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    mma_f16(tmp, A[0], A8[0], A[1], A8[1], r.b[t].x, r.b[t].y);
    mma_f16(tmp, A[2], A8[2], A[3], A8[3], r.b[t].z, r.b[t].w);
    acc.c[t][0] = fmaf(tmp[0] * undo * swg, r.sa[t].x, acc.c[t][0]);
    acc.c[t][1] = fmaf(tmp[1] * undo * swg, r.sa[t].y, acc.c[t][1]);
    acc.c[t][2] = fmaf(tmp[2] * undo * swg8, r.sa[t].x, acc.c[t][2]);
    acc.c[t][3] = fmaf(tmp[3] * undo * swg8, r.sa[t].y, acc.c[t][3]);
  }
}

// Warp w's blocks of one segment: w, w + 8, ...; U blocks loaded before any is computed (full
// batches without per-block bounds checks, then the tail).
template <int SEG, int NT>
__device__ __forceinline__ void segment_blocks(const V10Args& p, int64_t G, int warp, int g, int q, Acc<NT>& acc) {
  constexpr int U = 4, bpb = block_bytes(SEG), bpr = bpb / 4;
  const int nb = p.nb[SEG];
  if (warp >= nb) return;
  const int lane = 4 * g + q;
  const int64_t at = prepared_index(G, warp, nb, p.groups);
  const int64_t step = (prepared_index(G, warp + 1, nb, p.groups) - at) * 16;  // bytes per block / bpb
  const uint8_t* wsrc = p.wc[SEG] + at * 16 * bpb + lane * 2 * bpr;
  const uint8_t* wssrc = p.ws[SEG] + at * 16 + 2 * g;
  int lb0 = warp;
  for (; lb0 + kWarps * (U - 1) < nb; lb0 += kWarps * U) {  // full batches: no per-block checks
    BlockRaw<NT> r[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      load_block<SEG, NT>(p, wsrc + u * kWarps * step * bpb, wssrc + u * kWarps * step, p.seg_start[SEG] + lb0 + kWarps * u, g, q, r[u]);
#pragma unroll
    for (int u = 0; u < U; ++u) compute_block<SEG, NT>(p, r[u], acc);
    wsrc += U * kWarps * step * bpb;
    wssrc += U * kWarps * step;
  }
  for (; lb0 < nb; lb0 += kWarps) {  // the tail, one block at a time
    BlockRaw<NT> r;
    load_block<SEG, NT>(p, wsrc, wssrc, p.seg_start[SEG] + lb0, g, q, r);
    compute_block<SEG, NT>(p, r, acc);
    wsrc += kWarps * step * bpb;
    wssrc += kWarps * step;
  }
}

// Thread per (K block, token, q): token's elements 8q .. 8q + 7 of the block as 4 f16 pairs (FP6:
// times 2^-6 / 2^-4), zeros past M; q = 0 also writes the token's scale (0 past M).
template <int NT>
__global__ void prepare_activations(V10Args p, int nkb, uint4* __restrict__ act, float* __restrict__ act_s) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(nkb) * 8 * NT * 4) return;
  const int q = static_cast<int>(i & 3);
  const int64_t kt = i >> 2;
  const int kb = static_cast<int>(kt / (8 * NT)), tok = static_cast<int>(kt - static_cast<int64_t>(kb) * 8 * NT);
  const int seg = kb < p.seg_start[1] ? 0 : kb < p.seg_start[2] ? 1 : 2;
  const int lb = kb - p.seg_start[seg];
  uint32_t P[4] = {0u, 0u, 0u, 0u};
  float sc = 0.0f;
  if (tok < p.M) {
    const int bpb = block_bytes(seg), bpr = bpb / 4;
    const uint8_t* src = p.a.codes[seg] + tok * p.a.row_bytes[seg] + static_cast<int64_t>(lb) * bpb + q * bpr;
    uint32_t lo = 0u, hi = 0u;
    for (int j = 0; j < bpr; ++j) {  // 4 / 6 / 8 bytes at any alignment
      const uint32_t byte = src[j];
      if (j < 4) lo |= byte << (8 * j);
      else hi |= byte << (8 * (j - 4));
    }
    if (seg == 0) row_pairs<0>(lo, hi, p.fp6_e2m3, P);
    else if (seg == 1) row_pairs<1>(lo, hi, p.fp6_e2m3, P);
    else row_pairs<2>(lo, hi, p.fp6_e2m3, P);
    sc = scale_f32(p.a.scales[seg][tok * p.a.blocks[seg] + lb]);
  }
  act[kt * 4 + q] = make_uint4(P[0], P[1], P[2], P[3]);
  if (q == 0) act_s[kt] = sc;
}

template <int NT>
__global__ void __launch_bounds__(kWarps * 32) gemv_frag(V10Args p) {
  __shared__ float red[kWarps][32][NT * 4];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, q = lane & 3;
  const int64_t G = blockIdx.x;
  Acc<NT> acc;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc.c[t][i] = 0.0f;
  // Segments in K order; warp w takes every 8th block of each (per-segment loops: no branch per block).
  segment_blocks<0, NT>(p, G, warp, g, q, acc);
  segment_blocks<1, NT>(p, G, warp, g, q, acc);
  segment_blocks<2, NT>(p, G, warp, g, q, acc);
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) red[warp][lane][4 * t + i] = acc.c[t][i];
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float s = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) s += red[w][lane][4 * t + i];  // fixed order
      const int64_t tok = 8 * t + 2 * q + (i & 1), row = 16 * G + g + 8 * (i >> 1);
      if (tok >= p.M) continue;
      if (p.out_f32) static_cast<float*>(p.y)[tok * p.N + row] = s;
      else static_cast<__nv_bfloat16*>(p.y)[tok * p.N + row] = __float2bfloat16_rn(s);
    }
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

void mx_mixed_gemv_prepared(const MxMixedDevice& a, const MxMixedDevice& w_prepared, void* d_y, OutType out,
                            void* stream) {
  check_operands("mx_mixed_gemv_prepared", a, w_prepared);
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
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned grid = static_cast<unsigned>(p.N / 16);
  p.seg_start[0] = 0;
  p.seg_start[1] = p.nb[0];
  p.seg_start[2] = p.nb[0] + p.nb[1];
  const int nkb = p.nb[0] + p.nb[1] + p.nb[2];
  // Stream-ordered workspace for the decoded activations of up to 16 rows.
  const size_t act_bytes = static_cast<size_t>(nkb) * 16 * 64, act_s_bytes = static_cast<size_t>(nkb) * 16 * 4;
  uint8_t* ws = nullptr;
  if (nkb > 0) MM_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ws), act_bytes + act_s_bytes, s));
  // 16 activation rows per launch (the decode range is M <= 16; larger M works, one pair of launches per 16).
  for (int64_t m0 = 0; m0 < a.rows; m0 += 16) {
    V10Args q = p;
    q.M = std::min<int64_t>(16, a.rows - m0);
    for (int seg = 0; seg < mx::kSegments; ++seg) {
      q.a.codes[seg] = p.a.codes[seg] + m0 * p.a.row_bytes[seg];
      q.a.scales[seg] = p.a.scales[seg] + m0 * p.a.blocks[seg];
    }
    q.y = static_cast<uint8_t*>(p.y) + m0 * p.N * (p.out_f32 ? 4 : 2);
    q.act = reinterpret_cast<const uint4*>(ws);
    q.act_s = reinterpret_cast<const float*>(ws + act_bytes);
    const int nt = q.M <= 8 ? 1 : 2;
    if (nkb > 0) {
      const int64_t threads = static_cast<int64_t>(nkb) * 8 * nt * 4;
      const unsigned blocks = static_cast<unsigned>((threads + 255) / 256);
      if (nt == 1) prepare_activations<1><<<blocks, 256, 0, s>>>(q, nkb, reinterpret_cast<uint4*>(ws), reinterpret_cast<float*>(ws + act_bytes));
      else prepare_activations<2><<<blocks, 256, 0, s>>>(q, nkb, reinterpret_cast<uint4*>(ws), reinterpret_cast<float*>(ws + act_bytes));
      MM_CUDA_CHECK(cudaGetLastError());
    }
    if (nt == 1) gemv_frag<1><<<grid, kWarps * 32, 0, s>>>(q);
    else gemv_frag<2><<<grid, kWarps * 32, 0, s>>>(q);
    MM_CUDA_CHECK(cudaGetLastError());
  }
  if (ws) MM_CUDA_CHECK(cudaFreeAsync(ws, s));
}

}  // namespace micromix::cuda
