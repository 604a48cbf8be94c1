// Mixed FP4 | FP6 | FP8 MX GEMM: y (M, N) = dequant(a) (M, K) . dequant(w) (N, K)^T, all segments
// accumulated in FP32 in one launch, y written as bf16 or f32.
//
// Versions (one kernel template, numbered configurations; the harness tests and times them all):
//   v1  128x128 CTA tile, 8 warps (2x4, 64x32 each): prefill.
//   v2   64x128 CTA tile, 8 warps (2x4, 32x32 each): mid-size M.
//   v3   16x128 CTA tile, 4 warps (1x4, 16x32 each): small M on the tensor cores.
//   v4   v1 with packed bytes loaded two steps ahead (two register slots) to hide more latency.
//   v5   v4 capped at 128 registers so that two CTAs fit on an SM.
//   v6   FP8 tensor cores (mma.sync m16n8k32 e4m3, per-block FP32 promotion; sm90_mx_mixed_gemm_fp8.cu).
//   v7   v6 capped at 128 registers, 2 CTAs per SM.
//   v8   v6's pipeline with wgmma m64n128k32 e4m3 from shared memory (two warpgroups) for the FP4
//        and E2M3 segments, mma.sync for E3M2 and FP8 (wgmma's FP8 sums are not exact for those).
//   v9   v8 with block kb's wgmma in flight while block kb - 1 is promoted (3 E4M3 buffers).
//   v10  BF16 wgmma with the MX scales folded into the operands (exact for normal values; tiles
//        with values below 2^-126 fall back to CUDA-core FP32), no promotion, 128x128, 2 CTAs/SM
//        (sm90_mx_mixed_gemm_bf16.cu).
//   v11  v10 with a 128x256 tile, 1 CTA/SM.
//   v12  v10 fed from block-major copies of both operands (a pre-pass; one contiguous run per tile
//        and step instead of a sector per row), 128x128, 2 CTAs/SM (sm90_mx_mixed_gemm_bf16_a.cu).
//   v13  v12 with a 128x256 tile, 1 CTA/SM.
//   v14  activations converted to BF16 tiles once per call (pre-pass), weights converted per
//        256x128 tile (sm90_mx_mixed_gemm_bf16_pa.cu).
//   v15  weights converted in registers as wgmma's A operand (RS), activations pre-converted as B,
//        128 weight rows x 256 tokens, bulk copies + mbarrier ring (sm90_mx_mixed_gemm_bf16_rs.cu).
//   v16  v15 with 3 warpgroups, 192 weight rows x 128 tokens (3 warps per scheduler).
//   v17  v15 with two steps of wgmmas in flight while the next step is converted.
// v6-v9 are slower than v1 on H200 (bench/GPU_NOTES.md, FP8 section). Default: v15 from M = 256,
// v10 (split-K), v2 or v12 from 17 to 255 rows (see mx_mixed_gemm), the decode path up to 16.
// Each K step is one MX block (32), which lies in exactly one segment, so the format is uniform
// across the CTA for a step. Per step: each thread holds the packed bytes of half a block of one
// A or W row (loaded one step ahead), dequantizes them (LUT value * E8M0 scale, exact in bf16) into
// a double-buffered bf16 tile in shared memory, then the warps run mma.sync m16n8k16 bf16 with FP32
// accumulators fed by ldmatrix. One barrier per step.
// NOTES: rows past M or N are clamped on load and never stored; K = 0 writes zeros.
#include <cuda_bf16.h>

#include "cuda/mx_mixed_device.cuh"
#include "cuda/sm90_mx_mixed_gemm_fp8.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;

struct GemmArgs {
  SegView a, w;
  int64_t M, N;
  int64_t kb4, kb6, nkb;  // K blocks of the FP4 and FP6 segments, and in all
  void* y;
  int out_f32;
  int fp6_e2m3;
};

__device__ inline void ldmatrix_x4(unsigned (&r)[4], const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

__device__ inline void mma_bf16_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Loads half (16 elements) of block lb of one row of segment seg: FP4 8 bytes, FP6 12, FP8 16.
__device__ inline void load_half_block(const SegView& v, int seg, int64_t lb, int64_t row, int half, uint4& raw,
                                       unsigned& sc) {
  const uint8_t* base = v.codes[seg] + row * v.row_bytes[seg];
  sc = __ldg(v.scales[seg] + row * v.blocks[seg] + lb);
  if (seg == 0) {
    const uint2 t = __ldg(reinterpret_cast<const uint2*>(base + lb * 16 + half * 8));
    raw = make_uint4(t.x, t.y, 0u, 0u);
  } else if (seg == 1) {
    const unsigned* q = reinterpret_cast<const unsigned*>(base + lb * 24 + half * 12);
    raw = make_uint4(__ldg(q), __ldg(q + 1), __ldg(q + 2), 0u);
  } else {
    raw = __ldg(reinterpret_cast<const uint4*>(base + lb * 32 + half * 16));
  }
}

__device__ inline unsigned pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const unsigned*>(&h);
}

// 16 codes of `raw` (layout of load_half_block) -> 16 bf16 values at dst (16-byte aligned).
template <int SEG>
__device__ inline void dequant_half_block_t(const float* lut, const uint4& raw, unsigned sc, __nv_bfloat16* dst) {
  const float s = scale_f32(sc);
  const unsigned wd[4] = {raw.x, raw.y, raw.z, raw.w};
  float v[16];
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    unsigned code;
    if (SEG == 0) {
      code = kLutFp4 + ((wd[i / 8] >> (4 * (i % 8))) & 15u);
    } else if (SEG == 1) {
      const int bit = 6 * i, w = bit / 32, off = bit % 32;
      const unsigned lo = wd[w] >> off;
      code = kLutFp6 + ((off <= 26 ? lo : (lo | (wd[w + 1] << (32 - off)))) & 63u);
    } else {
      code = kLutFp8 + ((wd[i / 4] >> (8 * (i % 4))) & 255u);
    }
    v[i] = lut[code] * s;
  }
  uint4 o0, o1;
  o0.x = pack_bf16x2(v[0], v[1]);
  o0.y = pack_bf16x2(v[2], v[3]);
  o0.z = pack_bf16x2(v[4], v[5]);
  o0.w = pack_bf16x2(v[6], v[7]);
  o1.x = pack_bf16x2(v[8], v[9]);
  o1.y = pack_bf16x2(v[10], v[11]);
  o1.z = pack_bf16x2(v[12], v[13]);
  o1.w = pack_bf16x2(v[14], v[15]);
  reinterpret_cast<uint4*>(dst)[0] = o0;
  reinterpret_cast<uint4*>(dst)[1] = o1;
}

__device__ inline void dequant_half_block(const float* lut, int seg, const uint4& raw, unsigned sc,
                                          __nv_bfloat16* dst) {
  if (seg == 0) dequant_half_block_t<0>(lut, raw, sc, dst);
  else if (seg == 1) dequant_half_block_t<1>(lut, raw, sc, dst);
  else dequant_half_block_t<2>(lut, raw, sc, dst);
}

template <int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(WM * WN * 32) gemm_mma_v1(GemmArgs p) {
  constexpr int T = WM * WN * 32;
  constexpr int LDS = 40;  // bf16 per smem row: 32 + 8 pad, so 8 ldmatrix rows hit distinct banks
  constexpr int WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NI = WTN / 8;
  constexpr int UA = (2 * BM + T - 1) / T, UB = (2 * BN + T - 1) / T;  // half blocks per thread
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile must be a multiple of 16x16");

  __shared__ __align__(16) __nv_bfloat16 sA[2][BM * LDS];  // (BM, 32) bf16, padded rows
  __shared__ __align__(16) __nv_bfloat16 sB[2][BN * LDS];  // (BN, 32) bf16, padded rows
  __shared__ float lut[kLutSize];
  fill_lut(lut, p.fp6_e2m3);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;

  uint4 ra[UA], rb[UB];
  unsigned sa[UA], sb[UB];
  auto seg_of = [&](int64_t kb, int64_t& lb) {
    if (kb < p.kb4) { lb = kb; return 0; }
    if (kb < p.kb4 + p.kb6) { lb = kb - p.kb4; return 1; }
    lb = kb - p.kb4 - p.kb6;
    return 2;
  };
  auto load = [&](int64_t kb) {
    int64_t lb;
    const int seg = seg_of(kb, lb);
#pragma unroll
    for (int u = 0; u < UA; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BM) load_half_block(p.a, seg, lb, min(m0 + unit / 2, p.M - 1), unit & 1, ra[u], sa[u]);
    }
#pragma unroll
    for (int u = 0; u < UB; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BN) load_half_block(p.w, seg, lb, min(n0 + unit / 2, p.N - 1), unit & 1, rb[u], sb[u]);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;

  __syncthreads();  // LUT ready
  if (p.nkb > 0) load(0);
  for (int64_t kb = 0; kb < p.nkb; ++kb) {
    const int buf = static_cast<int>(kb & 1);
    int64_t lb;
    const int seg = seg_of(kb, lb);
    // Dequantize the staged step into buffer buf (last read two steps ago: the barrier of the
    // previous step orders it).
#pragma unroll
    for (int u = 0; u < UA; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BM) dequant_half_block(lut, seg, ra[u], sa[u], &sA[buf][(unit / 2) * LDS + (unit & 1) * 16]);
    }
#pragma unroll
    for (int u = 0; u < UB; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BN) dequant_half_block(lut, seg, rb[u], sb[u], &sB[buf][(unit / 2) * LDS + (unit & 1) * 16]);
    }
    __syncthreads();
    if (kb + 1 < p.nkb) load(kb + 1);  // in flight during this step's MMAs
#pragma unroll
    for (int k16 = 0; k16 < 32; k16 += 16) {
      unsigned af[MI][4], bfr[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
        ldmatrix_x4(af[mi], &sA[buf][(wm * WTM + mi * 16 + (lane & 15)) * LDS + k16 + (lane >> 4) * 8]);
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        unsigned r[4];
        ldmatrix_x4(r, &sB[buf][(wn * WTN + nj * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + k16 + ((lane >> 3) & 1) * 8]);
        bfr[2 * nj][0] = r[0];
        bfr[2 * nj][1] = r[1];
        bfr[2 * nj + 1][0] = r[2];
        bfr[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni][0], bfr[ni][1]);
    }
  }

  // Epilogue: accumulator (mi, ni) holds rows lane/4 and lane/4 + 8, columns 2 (lane % 4) + {0, 1}.
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + wm * WTM + mi * 16 + (lane >> 2) + 8 * h;
        const int64_t col = n0 + wn * WTN + ni * 8 + (lane & 3) * 2;
        if (row >= p.M || col >= p.N) continue;
        const float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (p.out_f32)
          *reinterpret_cast<float2*>(static_cast<float*>(p.y) + row * p.N + col) = make_float2(v0, v1);
        else
          *reinterpret_cast<unsigned*>(static_cast<__nv_bfloat16*>(p.y) + row * p.N + col) = pack_bf16x2(v0, v1);
      }
}

// v4, v5: v1 with PF register slots of staged packed bytes (loads issued PF steps ahead).
template <int BM, int BN, int WM, int WN, int PF, int MIN_CTAS>
__global__ void __launch_bounds__(WM * WN * 32, MIN_CTAS) gemm_mma_pf(GemmArgs p) {
  constexpr int T = WM * WN * 32;
  constexpr int LDS = 40;  // bf16 per smem row: 32 + 8 pad, so 8 ldmatrix rows hit distinct banks
  constexpr int WTM = BM / WM, WTN = BN / WN, MI = WTM / 16, NI = WTN / 8;
  constexpr int UA = (2 * BM + T - 1) / T, UB = (2 * BN + T - 1) / T;  // half blocks per thread
  static_assert(WTM % 16 == 0 && WTN % 16 == 0, "warp tile must be a multiple of 16x16");

  __shared__ __align__(16) __nv_bfloat16 sA[2][BM * LDS];  // (BM, 32) bf16, padded rows
  __shared__ __align__(16) __nv_bfloat16 sB[2][BN * LDS];  // (BN, 32) bf16, padded rows
  __shared__ float lut[kLutSize];
  fill_lut(lut, p.fp6_e2m3);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * BM, n0 = static_cast<int64_t>(blockIdx.x) * BN;

  // PF register slots of staged packed bytes: slot j holds step kb with kb % PF == j.
  uint4 ra[PF][UA], rb[PF][UB];
  unsigned sa[PF][UA], sb[PF][UB];
  auto seg_of = [&](int64_t kb, int64_t& lb) {
    if (kb < p.kb4) { lb = kb; return 0; }
    if (kb < p.kb4 + p.kb6) { lb = kb - p.kb4; return 1; }
    lb = kb - p.kb4 - p.kb6;
    return 2;
  };
  auto load = [&](int64_t kb, uint4 (&rA)[UA], unsigned (&sA_)[UA], uint4 (&rB)[UB], unsigned (&sB_)[UB]) {
    int64_t lb;
    const int seg = seg_of(kb, lb);
#pragma unroll
    for (int u = 0; u < UA; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BM) load_half_block(p.a, seg, lb, min(m0 + unit / 2, p.M - 1), unit & 1, rA[u], sA_[u]);
    }
#pragma unroll
    for (int u = 0; u < UB; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BN) load_half_block(p.w, seg, lb, min(n0 + unit / 2, p.N - 1), unit & 1, rB[u], sB_[u]);
    }
  };

  float acc[MI][NI][4];
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[i][j][c] = 0.0f;

  __syncthreads();  // LUT ready
#pragma unroll
  for (int j = 0; j < PF; ++j)
    if (j < p.nkb) load(j, ra[j], sa[j], rb[j], sb[j]);
  constexpr int kUnroll = PF;
  const int64_t kb_end = PF == 1 ? p.nkb : (p.nkb + PF - 1) / PF * PF;
  for (int64_t kb0 = 0; kb0 < kb_end; kb0 += kUnroll)
#pragma unroll
  for (int j = 0; j < kUnroll; ++j) {
    const int64_t kb = kb0 + j;
    if (PF > 1 && kb >= p.nkb) break;
    const int buf = static_cast<int>(kb & 1);
    int64_t lb;
    const int seg = seg_of(kb, lb);
    // Dequantize the staged step into buffer buf (last read two steps ago: the barrier of the
    // previous step orders it).
#pragma unroll
    for (int u = 0; u < UA; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BM) dequant_half_block(lut, seg, ra[j][u], sa[j][u], &sA[buf][(unit / 2) * LDS + (unit & 1) * 16]);
    }
#pragma unroll
    for (int u = 0; u < UB; ++u) {
      const int unit = tid + u * T;
      if (unit < 2 * BN) dequant_half_block(lut, seg, rb[j][u], sb[j][u], &sB[buf][(unit / 2) * LDS + (unit & 1) * 16]);
    }
    __syncthreads();
    if (kb + PF < p.nkb) load(kb + PF, ra[j], sa[j], rb[j], sb[j]);  // in flight during the next PF steps
#pragma unroll
    for (int k16 = 0; k16 < 32; k16 += 16) {
      unsigned af[MI][4], bfr[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
        ldmatrix_x4(af[mi], &sA[buf][(wm * WTM + mi * 16 + (lane & 15)) * LDS + k16 + (lane >> 4) * 8]);
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        unsigned r[4];
        ldmatrix_x4(r, &sB[buf][(wn * WTN + nj * 16 + (lane & 7) + (lane >> 4) * 8) * LDS + k16 + ((lane >> 3) & 1) * 8]);
        bfr[2 * nj][0] = r[0];
        bfr[2 * nj][1] = r[1];
        bfr[2 * nj + 1][0] = r[2];
        bfr[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi)
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) mma_bf16_16816(acc[mi][ni], af[mi], bfr[ni][0], bfr[ni][1]);
    }
  }

  // Epilogue: accumulator (mi, ni) holds rows lane/4 and lane/4 + 8, columns 2 (lane % 4) + {0, 1}.
#pragma unroll
  for (int mi = 0; mi < MI; ++mi)
#pragma unroll
    for (int ni = 0; ni < NI; ++ni)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row = m0 + wm * WTM + mi * 16 + (lane >> 2) + 8 * h;
        const int64_t col = n0 + wn * WTN + ni * 8 + (lane & 3) * 2;
        if (row >= p.M || col >= p.N) continue;
        const float v0 = acc[mi][ni][2 * h], v1 = acc[mi][ni][2 * h + 1];
        if (p.out_f32)
          *reinterpret_cast<float2*>(static_cast<float*>(p.y) + row * p.N + col) = make_float2(v0, v1);
        else
          *reinterpret_cast<unsigned*>(static_cast<__nv_bfloat16*>(p.y) + row * p.N + col) = pack_bf16x2(v0, v1);
      }
}

template <int BM, int BN, int WM, int WN>
void launch(const GemmArgs& p, cudaStream_t stream) {
  const int64_t gx = (p.N + BN - 1) / BN, gy = (p.M + BM - 1) / BM;
  MM_CUDA_REQUIRE(gy <= 65535, "mx_mixed_gemm: M too large for the grid");
  gemm_mma_v1<BM, BN, WM, WN><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), WM * WN * 32, 0, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

template <int BM, int BN, int WM, int WN, int PF, int MIN_CTAS>
void launch_pf(const GemmArgs& p, cudaStream_t stream) {
  const int64_t gx = (p.N + BN - 1) / BN, gy = (p.M + BM - 1) / BM;
  MM_CUDA_REQUIRE(gy <= 65535, "mx_mixed_gemm: M too large for the grid");
  static const bool carveout_set = [] {
    // Ask for the largest shared-memory carveout so that MIN_CTAS CTAs fit on an SM.
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemm_mma_pf<BM, BN, WM, WN, PF, MIN_CTAS>,
                                       cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    return true;
  }();
  (void)carveout_set;
  gemm_mma_pf<BM, BN, WM, WN, PF, MIN_CTAS><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), WM * WN * 32, 0, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

const char* const kVersionNames[] = {"default", "v1 mma.sync 128x128", "v2 mma.sync 64x128", "v3 mma.sync 16x128",
                                     "v4 mma.sync 128x128 prefetch 2", "v5 mma.sync 128x128 prefetch 2, 2 CTAs/SM",
                                     "v6 fp8 mma.sync 128x128", "v7 fp8 mma.sync 128x128, 2 CTAs/SM",
                                     "v8 fp8 wgmma (FP4, E2M3) + mma.sync (E3M2, FP8)",
                                     "v9 v8 with async wgmma overlapping the promotion",
                                     "v10 bf16 wgmma, scales folded, 128x128",
                                     "v11 bf16 wgmma, scales folded, 128x256",
                                     "v12 bf16 wgmma, block-major pre-pass, 128x128",
                                     "v13 bf16 wgmma, block-major pre-pass, 128x256",
                                     "v14 bf16 wgmma, activations pre-converted, 256x128",
                                     "v15 bf16 wgmma RS, weights in registers, 256x128",
                                     "v16 bf16 wgmma RS, weights in registers, 128x192",
                                     "v17 bf16 wgmma RS, weights in registers, 256x128, 2 steps in flight",
                                     "v18 operands dequantized to bf16, cuBLAS bf16 GEMM (fp32 accumulation)"};
constexpr int kVersions = 18;

// Where the default is v18 (dequantize to BF16 + cuBLAS): from kCublasMinRows rows, and for small
// weight matrices (N x K <= kCublasSmallWeights: Llama-3.1-8B qkv and o) from 17 rows. H100, session
// 6, Llama-3.1-8B 70/20/10 (bench/GPU_NOTES.md): v18 beats v15 on every layer from M = 512 (o 57 vs
// 108 us, gate_up 312 vs 376, down 189 vs 254 row-major; 1.5-1.9x at 1024-2048) and on qkv / o from
// M = 64 (qkv 60.5 vs 66.6 us at 64, 67.6 vs 105.5 at 256); below 512 the big matrices stay on the
// kernels that read the MX weights directly (gate_up at 256: v18 272 us, v15 238; prepared 255 vs
// 170), because v18 writes and re-reads the weights as BF16 (4.6 bytes per weight moved).
constexpr int64_t kCublasMinRows = 512;
constexpr int64_t kCublasSmallWeights = int64_t{1} << 25;
bool prefer_cublas(int64_t M, int64_t N, int64_t K) { return M >= kCublasMinRows || (M > 16 && N * K <= kCublasSmallWeights); }

}  // namespace

int mx_mixed_gemm_versions() { return kVersions; }
const char* mx_mixed_gemm_version_name(int version) {
  return version >= 0 && version <= kVersions ? kVersionNames[version] : "unknown";
}

void mx_mixed_gemm(const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out, int version,
                   void* stream) {
  check_operands("mx_mixed_gemm", a, w);
  MM_CUDA_REQUIRE(version >= 0 && version <= kVersions, "mx_mixed_gemm: unknown version " + std::to_string(version));
  const int64_t M = a.rows, N = w.rows;
  if (M == 0 || N == 0) return;
  // Small M streams weights: the decode path (mx_gemv_decode.cu) is 20x faster there (H100, down
  // M = 1: 36 us vs 740-870 us for v3 in bench/GPU_NOTES.md).
  if (version == 0 && M <= 16) return mx_mixed_gemv(a, w, d_y, out, stream, 0);
  GemmArgs p{};
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
  // Measured (H100/H200, bench/GPU_NOTES.md): v18 where prefer_cublas says so (above); otherwise from M = 256 v15 (weights converted in registers as
  // the RS operand of BF16 wgmma, activations pre-converted; H200 70/20/10: 1.2-1.6x v10 at M = 512,
  // 0.93-1.24x at 256, 1.2-1.6x v12 at 1024-8192); from 17 to 255 rows v10 with split-K (no pre-pass
  // over the weights), except where its half-empty 128-row tiles already fill the GPU at M <= 64
  // (gate_up at M = 64: v2 171 us vs v10 352-427 us), where v2 stays; below a wave of tiles at
  // K <= 8192, v12 (H100, M = 64, qkv / o: 70/20/10 80.7 / 54.1 us vs v10 93.9 / 58.8, calibrated mix
  // 82.3 / 54.0 vs 101.3 / 65.2; down at K = 14336 stays on v10: 162 vs 173 us).
  if (version == 0) {
    const int64_t tiles = ((N + 127) / 128) * ((M + 127) / 128);
    const int64_t K = a.split.cols();
    version = prefer_cublas(M, N, K) ? 18 : M >= 256 ? 15 : (M <= 64 && tiles >= 132) ? 2 : (M <= 64 && K <= 8192) ? 12 : 10;
  }
  // v10/v11 copy scale bytes as aligned 4-byte words: they need 4-byte aligned scale arrays (v12 and
  // up read scales byte-wise in their pre-passes).
  auto scales_aligned4 = [](const MxMixedDevice& m) {
    for (int i = 0; i < mx::kSegments; ++i)
      if (m.split.count(i) && (reinterpret_cast<uintptr_t>(m.scales[i]) & 3u)) return false;
    return true;
  };
  if ((version == 10 || version == 11) && !(scales_aligned4(a) && scales_aligned4(w))) version = 1;
  const auto s = static_cast<cudaStream_t>(stream);
  if (version >= 6) {
    const Fp8GemmArgs f{p.a, p.w, p.M, p.N, p.kb4, p.kb6, p.nkb, p.y, p.out_f32, p.fp6_e2m3};
    if (version == 18 && mx_mixed_gemm_cublas_supported(f)) return mx_mixed_gemm_cublas_launch(f, s);
    if (version >= 15) return mx_mixed_gemm_bf16rs_launch(version == 18 ? 15 : version, f, s);
    if (version == 14) return mx_mixed_gemm_bf16pa_launch(f, s);
    if (version >= 12) return mx_mixed_gemm_bf16a_launch(version, f, s);
    return version >= 10 ? mx_mixed_gemm_bf16_launch(version, f, s) : mx_mixed_gemm_fp8_launch(version, f, s);
  }
  switch (version) {
    case 1: launch<128, 128, 2, 4>(p, s); break;
    case 2: launch<64, 128, 2, 4>(p, s); break;
    case 4: launch_pf<128, 128, 2, 4, 2, 1>(p, s); break;
    case 5: launch_pf<128, 128, 2, 4, 2, 2>(p, s); break;
    default: launch<16, 128, 1, 4>(p, s); break;
  }
}

constexpr int64_t kPreparedGemvMaxRows = 64;

void mx_mixed_gemm_prepared(const MxMixedDevice& a, const MxMixedDevice& w_prepared, void* d_y, OutType out,
                            void* stream, int version) {
  MM_CUDA_REQUIRE(version == 0 || version == 15 || version == 18,
                  "mx_mixed_gemm_prepared: version " + std::to_string(version) + " does not exist (0, 15 or 18)");
  check_operands("mx_mixed_gemm_prepared", a, w_prepared);
  MM_CUDA_REQUIRE(w_prepared.rows % 16 == 0, "mx_mixed_gemm_prepared: N = " + std::to_string(w_prepared.rows) +
                                                 " is not a multiple of 16 (prepared weights)");
  const int64_t M = a.rows, N = w_prepared.rows;
  if (M == 0 || N == 0) return;
  // The prepared decode path up to 64 rows (v13's rows kernel beyond 16: 1.4-3.4x the GEMM dispatch at
  // M = 32 and 64 on Llama-3.1-8B shapes; at M = 128 two launch pairs lose to it: gate_up 234 vs 164 us;
  // H100, bench/GPU_NOTES.md session 7).
  if (M <= 16 || (version == 0 && M <= kPreparedGemvMaxRows)) return mx_mixed_gemv_prepared(a, w_prepared, d_y, out, stream);
  const Fp8GemmArgs f{seg_view(a), seg_view(w_prepared), M, N, a.split.n4 / mx::kBlock, a.split.n6 / mx::kBlock,
                      a.split.cols() / mx::kBlock, d_y, out == OutType::f32, a.split.fp6 == mx::ElemFormat::fp6_e2m3};
  Fp8GemmArgs q = f;
  q.w_prepared = 1;
  if ((version == 18 || (version == 0 && prefer_cublas(M, N, a.split.cols()))) && mx_mixed_gemm_cublas_supported(q))
    return mx_mixed_gemm_cublas_launch(q, static_cast<cudaStream_t>(stream));
  mx_mixed_gemm_bf16rs_prepared_launch(q, static_cast<cudaStream_t>(stream));
}

}  // namespace micromix::cuda
