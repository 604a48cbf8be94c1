// Decode path of the mixed MX GEMM for M <= 16: y (M, N) = dequant(a) . dequant(w)^T on CUDA
// cores, FP32 FMAs, streaming the packed weights once.
//
// v1 (v2 adds a one-chunk weight prefetch and folds the weight scale per block; v3 is v2 with
// 4 warps of 1 row per CTA): a CTA (8 warps) owns 32 rows of w (4 per warp) and walks K in chunks of 32 MX blocks.
// Per chunk: every lane issues the loads of its block (lane = block) for its warp's 4 rows
// (FP4 16 bytes, FP6 3x8, FP8 2x16 per row), then the CTA dequantizes the activation chunk
// (MT rows x 1024) into shared memory as float (rows padded by 4 floats per 32 so that lanes
// reading their own block hit distinct banks), then each lane multiplies its 4 weight blocks
// (LUT value * scale) with the MT activation rows. Warp shuffles reduce over lanes at the end.
// MT (activation rows per pass) is a template: 1, 2, 4, 8, 16; padded rows are zeros.
//
// v4 (mx_gemv_decode_v4.cu): tensor cores (mma.sync f16 on unscaled codes, FP32 promotion per
// MX block), bit-operation decode, per-warp cp.async pipelines, split-K over the 4 warps of a CTA
// of 16 weight rows. v5 (same file): v4 with the activations decoded once per CTA into shared
// memory instead of per warp and block (v4 where that area is too large). v6 (same file): 8 warps
// per CTA (split-K 8), 3 stages, a persistent grid (tiles loop inside the CTA). v7 (same file):
// v6 with 2 stages (more CTAs per SM). v8 (same file, the default): v6 / v7 by M with leaner
// cp.async issue code. v9 (same file): v8 with the per-block loop unrolled 4 times.
#include <cuda_bf16.h>

#include "cuda/mx_gemv_decode.cuh"
#include "cuda/mx_mixed_device.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;

constexpr int kChunkBlocks = 32;              // one MX block per lane per chunk
constexpr int kXStride = kChunkBlocks * 36;  // floats per activation row in smem (32 + 4 pad per block)

struct GemvArgs {
  SegView a, w;
  int64_t M, N;
  int64_t kb4, kb6, nkb;
  void* y;
  int out_f32;
  int fp6_e2m3;
};

__device__ inline int seg_of(const GemvArgs& p, int64_t kb, int64_t& lb) {
  if (kb < p.kb4) { lb = kb; return 0; }
  if (kb < p.kb4 + p.kb6) { lb = kb - p.kb4; return 1; }
  lb = kb - p.kb4 - p.kb6;
  return 2;
}

// A whole block (32 codes) of one row: up to 32 bytes in 8 words.
struct RawBlock {
  unsigned w[8];
  unsigned sc;
};

__device__ inline void load_block(const SegView& v, int seg, int64_t lb, int64_t row, RawBlock& r) {
  const uint8_t* base = v.codes[seg] + row * v.row_bytes[seg];
  r.sc = __ldg(v.scales[seg] + row * v.blocks[seg] + lb);
  if (seg == 0) {
    const uint4 t = __ldg(reinterpret_cast<const uint4*>(base + lb * 16));
    r.w[0] = t.x; r.w[1] = t.y; r.w[2] = t.z; r.w[3] = t.w;
  } else if (seg == 1) {
    const uint2* q = reinterpret_cast<const uint2*>(base + lb * 24);
    const uint2 t0 = __ldg(q), t1 = __ldg(q + 1), t2 = __ldg(q + 2);
    r.w[0] = t0.x; r.w[1] = t0.y; r.w[2] = t1.x; r.w[3] = t1.y; r.w[4] = t2.x; r.w[5] = t2.y;
  } else {
    const uint4* q = reinterpret_cast<const uint4*>(base + lb * 32);
    const uint4 t0 = __ldg(q), t1 = __ldg(q + 1);
    r.w[0] = t0.x; r.w[1] = t0.y; r.w[2] = t0.z; r.w[3] = t0.w;
    r.w[4] = t1.x; r.w[5] = t1.y; r.w[6] = t1.z; r.w[7] = t1.w;
  }
}

// LUT index of element i (0..31) of a raw block of segment SEG.
template <int SEG>
__device__ inline unsigned lut_index(const unsigned (&w)[8], int i) {
  if (SEG == 0) return kLutFp4 + ((w[i / 8] >> (4 * (i % 8))) & 15u);
  if (SEG == 1) {
    const int bit = 6 * i, q = bit / 32, off = bit % 32;
    const unsigned lo = w[q] >> off;
    return kLutFp6 + ((off <= 26 ? lo : (lo | (w[q + 1] << (32 - off)))) & 63u);
  }
  return kLutFp8 + ((w[i / 4] >> (8 * (i % 4))) & 255u);
}

// acc[r][m] += sum_i w_r[i] * x[m][i] over one block, for the lane's 4 rows.
template <int SEG, int MT, int R>
__device__ inline void block_fma(const float* lut, const RawBlock (&rb)[R], const float* sx_lane,
                                 float (&acc)[R][MT]) {
  float s[R];
#pragma unroll
  for (int r = 0; r < R; ++r) s[r] = scale_f32(rb[r].sc);
#pragma unroll
  for (int g = 0; g < 8; ++g) {  // 4 elements at a time
    float wv[R][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < 4; ++i) wv[r][i] = lut[lut_index<SEG>(rb[r].w, 4 * g + i)] * s[r];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float4 xv = *reinterpret_cast<const float4*>(sx_lane + m * kXStride + 4 * g);
#pragma unroll
      for (int r = 0; r < R; ++r)
        acc[r][m] += wv[r][0] * xv.x + wv[r][1] * xv.y + wv[r][2] * xv.z + wv[r][3] * xv.w;
    }
  }
}

// v2: the same sums with the weight scale applied once per block: partial = sum_i code_i * x_i,
// then acc += scale * partial (exact: the scale is a power of two).
template <int SEG, int MT, int R>
__device__ inline void block_fma_folded(const float* lut, const RawBlock (&rb)[R], const float* sx_lane,
                                        float (&acc)[R][MT]) {
  float part[R][MT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) part[r][m] = 0.0f;
#pragma unroll
  for (int g = 0; g < 8; ++g) {
    float wv[R][4];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int i = 0; i < 4; ++i) wv[r][i] = lut[lut_index<SEG>(rb[r].w, 4 * g + i)];
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float4 xv = *reinterpret_cast<const float4*>(sx_lane + m * kXStride + 4 * g);
#pragma unroll
      for (int r = 0; r < R; ++r)
        part[r][m] += wv[r][0] * xv.x + wv[r][1] * xv.y + wv[r][2] * xv.z + wv[r][3] * xv.w;
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float s = scale_f32(rb[r].sc);
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] += s * part[r][m];
  }
}

// V 1: loads of a chunk are issued at the top of that chunk. V 2: the next chunk's weights are
// loaded (into a second register set) before this chunk's activations are staged and used, and
// the weight scale is folded (block_fma_folded) for MT <= 8.
// WARPS warps of R rows each per CTA (v1, v2: 8 x 4; v3: 4 x 1, four times the CTAs of v2 so
// that N = 4096 gives 1024 CTAs instead of 128: more bytes in flight per SM).
template <int MT, int V, int WARPS, int R>
__global__ void __launch_bounds__(WARPS * 32) gemv_kernel(GemvArgs p) {
  constexpr int kRowsPerWarp = R, kRowsPerCta = WARPS * R;
  extern __shared__ float4 s_x_raw[];
  float* sx = reinterpret_cast<float*>(s_x_raw);  // (MT, kXStride)
  __shared__ float lut[kLutSize];
  fill_lut(lut, p.fp6_e2m3);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t n_base = static_cast<int64_t>(blockIdx.x) * kRowsPerCta + warp * kRowsPerWarp;
  const int64_t m_base = static_cast<int64_t>(blockIdx.y) * MT;

  float acc[R][MT];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) acc[r][m] = 0.0f;

  const int64_t chunks = (p.nkb + kChunkBlocks - 1) / kChunkBlocks;
  // This lane's weight blocks (lane = block of the chunk) for the warp's rows.
  auto issue = [&](int64_t c, RawBlock (&rb)[R], int& seg, bool& valid) {
    const int64_t kb = c * kChunkBlocks + lane;
    valid = c < chunks && kb < p.nkb;
    int64_t lb = 0;
    seg = valid ? seg_of(p, kb, lb) : 0;
    if (valid)
#pragma unroll
      for (int r = 0; r < R; ++r) load_block(p.w, seg, lb, min(n_base + r, p.N - 1), rb[r]);
  };
  RawBlock rb[R], rb_next[R];
  int seg = 0, seg_next = 0;
  bool valid = false, valid_next = false;
  if (V >= 2) issue(0, rb_next, seg_next, valid_next);
  for (int64_t c = 0; c < chunks; ++c) {
    if (V >= 2) {
#pragma unroll
      for (int r = 0; r < R; ++r) rb[r] = rb_next[r];
      seg = seg_next;
      valid = valid_next;
      issue(c + 1, rb_next, seg_next, valid_next);  // flies during this chunk
    } else {
      issue(c, rb, seg, valid);  // flies while the activations are dequantized
    }

    __syncthreads();  // previous chunk's reads of sx are done (and the LUT is ready)
    // Activation chunk -> sx: unit = (row m, block b) of 32 elements.
    for (int unit = tid; unit < MT * kChunkBlocks; unit += WARPS * 32) {
      const int m = unit / kChunkBlocks, b = unit % kChunkBlocks;
      const int64_t xkb = c * kChunkBlocks + b;
      float* dst = sx + m * kXStride + b * 36;
      if (xkb >= p.nkb || m_base + m >= p.M) {
        for (int i = 0; i < 32; i += 4) *reinterpret_cast<float4*>(dst + i) = make_float4(0.f, 0.f, 0.f, 0.f);
        continue;
      }
      int64_t xlb;
      const int xseg = seg_of(p, xkb, xlb);
      RawBlock xr;
      load_block(p.a, xseg, xlb, m_base + m, xr);
      const float s = scale_f32(xr.sc);
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        const unsigned li = xseg == 0 ? lut_index<0>(xr.w, i) : xseg == 1 ? lut_index<1>(xr.w, i) : lut_index<2>(xr.w, i);
        dst[i] = lut[li] * s;
      }
    }
    __syncthreads();
    if (valid) {
      const float* sx_lane = sx + lane * 36;
      if constexpr (V >= 2 && MT <= 8) {
        if (seg == 0) block_fma_folded<0, MT, R>(lut, rb, sx_lane, acc);
        else if (seg == 1) block_fma_folded<1, MT, R>(lut, rb, sx_lane, acc);
        else block_fma_folded<2, MT, R>(lut, rb, sx_lane, acc);
      } else {
        if (seg == 0) block_fma<0, MT, R>(lut, rb, sx_lane, acc);
        else if (seg == 1) block_fma<1, MT, R>(lut, rb, sx_lane, acc);
        else block_fma<2, MT, R>(lut, rb, sx_lane, acc);
      }
    }
  }

  // Reduce over lanes (every lane ends with every sum), then lanes write distinct outputs.
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m)
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], o);
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const int j = r * MT + m;
      const int64_t row = m_base + m, col = n_base + r;
      if ((j & 31) != lane || row >= p.M || col >= p.N) continue;
      if (p.out_f32) static_cast<float*>(p.y)[row * p.N + col] = acc[r][m];
      else static_cast<__nv_bfloat16*>(p.y)[row * p.N + col] = __float2bfloat16_rn(acc[r][m]);
    }
}

template <int MT, int V>
void launch(const GemvArgs& p, cudaStream_t stream) {
  constexpr int WARPS = V >= 3 ? 4 : 8, R = V >= 3 ? 1 : 4;
  const int64_t gx = (p.N + WARPS * R - 1) / (WARPS * R), gy = (p.M + MT - 1) / MT;
  const size_t smem = sizeof(float) * MT * kXStride;
  if (smem > 48 * 1024)
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemv_kernel<MT, V, WARPS, R>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem)));
  gemv_kernel<MT, V, WARPS, R><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), WARPS * 32, smem, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

template <int V>
void launch_for_m(const GemvArgs& p, cudaStream_t s) {
  if (p.M <= 1) launch<1, V>(p, s);
  else if (p.M <= 2) launch<2, V>(p, s);
  else if (p.M <= 4) launch<4, V>(p, s);
  else if (p.M <= 8) launch<8, V>(p, s);
  else launch<16, V>(p, s);
}

}  // namespace

int mx_mixed_gemv_versions() { return 9; }

void mx_mixed_gemv(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, void* stream,
                   int version) {
  check_operands("mx_mixed_gemv", a, w);
  MM_CUDA_REQUIRE(version >= 0 && version <= 9, "mx_mixed_gemv: unknown version " + std::to_string(version));
  const int64_t M = a.rows, N = w.rows;
  MM_CUDA_REQUIRE(M <= 65535 * 16, "mx_mixed_gemv: M too large");
  if (M == 0 || N == 0) return;
  GemvArgs p{};
  p.a = seg_view(a);
  p.w = seg_view(w);
  p.M = M;
  p.N = N;
  p.kb4 = a.split.n4 / mx::kBlock;
  p.kb6 = a.split.n6 / mx::kBlock;
  p.nkb = a.split.cols() / mx::kBlock;
  p.y = d_y;
  p.out_f32 = out == OutType::f32;
  p.fp6_e2m3 = a.split.fp6 == mx::ElemFormat::fp6_e2m3;
  const auto s = static_cast<cudaStream_t>(stream);
  // Default: v8, the fastest version on every Llama-3.1-8B decode shape of the H100 run of
  // 2026-11-26 (bench/GPU_NOTES.md, run 7) except qkv at M = 2..8, where v5 is 8-15% faster (384
  // tiles on a persistent grid of 264 CTAs leave a tail). v1 where v4-v8 do not apply (scale arrays
  // not 4-byte aligned).
  if (version == 0) version = 8;
  if (version >= 4) {
    if (gemv_tc_launch(version, a, w, d_y, out, s)) return;
    version = 1;
  }
  if (version == 1) launch_for_m<1>(p, s);
  else if (version == 2) launch_for_m<2>(p, s);
  else launch_for_m<3>(p, s);
}

}  // namespace micromix::cuda
