// Reorder + quantize: x (M, K) bf16 -> permuted FP4 | FP6 | FP8 MX segments, bit-identical to
// mx::quantize_mixed (the CPU encoder's arithmetic is reproduced step by step: amax from the bits,
// the scale rule, x * 2^-shared_exp, round on the element grid, saturate).
//
// Versions (numbered; tests and bench select them through mx_kernel_versions.hpp):
// v1 (here): one CTA per row. The row (2K bytes) is read once with 16-byte loads into shared
// memory; warp w then quantizes permuted blocks w, w + 8, ...: lane e gathers element perm[32 b + e]
// from shared memory, the block max comes from a warp reduction, and lanes combine codes with
// shuffles so that each packed byte is written once (FP4: 2 lanes, FP6: 4 lanes per 3 bytes, FP8: 1).
// ncu: issue-bound (62% issue slots at 6% DRAM). Also the fallback for K > 51200.
// v2 (removed): several rows per CTA sharing the perm reads; slower (bench/GPU_NOTES.md).
// v3 (mx_reorder_quantize_v3.cu): 4 rows per CTA interleaved in shared memory, a thread per
// quarter block, integer encoder; about a third of v1's instructions per element.
// v4 (same file): v3 with a packed block max and a float-adder encoder (ties to even).
// v5 (same file): v4 capped at 40 registers for 6 CTAs per SM.
// v6 (same file): v4 with hardware cvt.rn.satfinite e4m3x2/e5m2x2 for the FP8 and FP6
// segments.
// v7, v8 (same file): v6 with more staging loads in flight per thread (v8 also 2 rows per CTA).
// v9 (same file): v6 with the FP4 segment encoded on packed bf16 pairs (half the
// instructions), FP6/FP8 codes assembled as whole words, and v8's shape above K = 8192.
// v10 (removed): persistent CTAs with a cp.async double buffer; slower (bench/GPU_NOTES.md).
// v11 (same file, the default; also the fused RMSNorm / SwiGLU quantizers' encoders): v9 with the
// integer-pipe work cut (the pipe ncu found busiest): FP4 codes as rint of a piecewise-linear map in
// f16 arithmetic (fp4_codes_f16), the block max by bf16 max of magnitudes, FP6 without float
// clamps, and two column groups of staging loads in flight at K <= 8192.
// v12 (same file, the default): v11 with each row group's K split over several CTAs at small M.
#include <cuda_bf16.h>

#include "cuda/mx_kernel_versions.hpp"
#include "cuda/mx_mixed_device.cuh"
#include "cuda/mx_quantize_common.cuh"
#include "cuda/mx_reorder_quantize.cuh"
#include "cuda/ptx_helpers.cuh"

namespace micromix::cuda {
namespace {

using mixed::Fmt;

struct QuantArgs {
  const uint16_t* x;     // (M, K) bf16
  const int32_t* perm;   // (K)
  int64_t K;
  int64_t blocks4, blocks6;  // K blocks in the FP4 and FP6 segments
  uint8_t* codes[3];
  uint8_t* scales[3];
  int64_t row_bytes[3];
  int64_t seg_blocks[3];  // blocks per row of each segment
  Fmt fmt[3];
  int ceil_rule;  // 0: ocp, 1: ceil
  int away;       // 0: ties to even, 1: ties away
};

// floor(log2(a)) of a finite a > 0 from its bits (float32 subnormals included).
__device__ inline int ilogb_bits(uint32_t b) {
  const int e = static_cast<int>(b >> 23);
  if (e != 0) return e - 127;
  return (31 - __clz(static_cast<int>(b))) - 149;
}

// mx::block_scale: shared exponent code for a block of max magnitude amax (finite, >= 0).
__device__ inline unsigned block_scale(const Fmt& f, bool ceil_rule, uint32_t amax_bits) {
  if (amax_bits == 0) return ceil_rule ? 127u : 0u;
  int e;
  if (!ceil_rule) {
    e = ilogb_bits(amax_bits) - f.emax;
  } else {
    const double q = f.max_normal;
    const double amax = __uint_as_float(amax_bits);
    e = ilogb_bits(amax_bits) - ilogb_bits(__float_as_uint(f.max_normal)) - 1;
    while (amax > ldexp(q, e)) ++e;
  }
  e = max(e, -127);
  e = min(e, 127 - f.emax);
  return static_cast<unsigned>(e + 127);
}

__global__ void __launch_bounds__(256) reorder_quantize_v1(QuantArgs p) {
  ptx::griddep_launch_dependents();  // a decode GEMV launched as our programmatic dependent (v21) may start now
  extern __shared__ uint4 s_row_raw[];
  const uint16_t* s_row = reinterpret_cast<const uint16_t*>(s_row_raw);
  const int64_t row = blockIdx.x;
  // Stage the row: K is a multiple of 32, so K * 2 bytes is a whole number of uint4.
  const uint4* g_row = reinterpret_cast<const uint4*>(p.x + row * p.K);
  for (int64_t i = threadIdx.x; i < p.K / 8; i += blockDim.x) s_row_raw[i] = __ldg(g_row + i);
  __syncthreads();

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const int64_t nblocks = p.K / 32;
  for (int64_t b = warp; b < nblocks; b += warps) {
    const int seg = b < p.blocks4 ? 0 : b < p.blocks4 + p.blocks6 ? 1 : 2;
    const int64_t lb = b - (seg == 0 ? 0 : seg == 1 ? p.blocks4 : p.blocks4 + p.blocks6);
    const Fmt f = p.fmt[seg];
    const float x = __uint_as_float(static_cast<uint32_t>(s_row[__ldg(p.perm + b * 32 + lane)]) << 16);
    const uint32_t amax_bits = __reduce_max_sync(0xffffffffu, __float_as_uint(x) & 0x7fffffffu);
    unsigned s, c;
    if (amax_bits >= 0x7f800000u) {  // NaN or Inf in the block: NaN scale, zero codes (OCP)
      s = 0xFFu;
      c = 0;
    } else {
      s = block_scale(f, p.ceil_rule, amax_bits);
      // 2^(127 - s): normal for s <= 253, the subnormal 2^-127 for s = 254 (exact, as std::ldexp).
      const float inv = s <= 253u ? __uint_as_float((254u - s) << 23) : __uint_as_float(0x00400000u);
      c = mixed::encode(f, x * inv, p.away);
    }
    uint8_t* out = p.codes[seg] + row * p.row_bytes[seg];
    if (lane == 0) p.scales[seg][row * p.seg_blocks[seg] + lb] = static_cast<uint8_t>(s);
    if (f.bits == 4) {
      const unsigned hi = __shfl_down_sync(0xffffffffu, c, 1);
      if ((lane & 1) == 0) out[lb * 16 + lane / 2] = static_cast<uint8_t>(c | (hi << 4));
    } else if (f.bits == 6) {
      const unsigned c1 = __shfl_down_sync(0xffffffffu, c, 1);
      const unsigned c2 = __shfl_down_sync(0xffffffffu, c, 2);
      const unsigned c3 = __shfl_down_sync(0xffffffffu, c, 3);
      if ((lane & 3) == 0) {
        const unsigned w = c | (c1 << 6) | (c2 << 12) | (c3 << 18);
        uint8_t* o = out + lb * 24 + (lane / 4) * 3;
        o[0] = static_cast<uint8_t>(w);
        o[1] = static_cast<uint8_t>(w >> 8);
        o[2] = static_cast<uint8_t>(w >> 16);
      }
    } else {
      out[lb * 32 + lane] = static_cast<uint8_t>(c);
    }
  }
}

int g_version = 0;  // set_reorder_quantize_version

}  // namespace

int reorder_quantize_versions() { return 12; }

void set_reorder_quantize_version(int v) {
  MM_CUDA_REQUIRE(v == 0 || v == 1 || (v >= 3 && v <= 9) || v == 11 || v == 12,
                  "set_reorder_quantize_version: no version " + std::to_string(v));
  g_version = v;
}

void mx_reorder_quantize_launch(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                                mx::ScaleRule rule, mx::Rounding r, cudaStream_t stream, const MxDecodeActs* acts) {
  const mx::MixedSplit& s = out.split;
  const int64_t K = s.cols();
  for (int i = 0; i < mx::kSegments; ++i)
    MM_CUDA_REQUIRE(s.count(i) >= 0 && s.count(i) % mx::kBlock == 0,
                    "mx_reorder_quantize: segment sizes must be multiples of 32");
  MM_CUDA_REQUIRE(s.fp6 == mx::ElemFormat::fp6_e3m2 || s.fp6 == mx::ElemFormat::fp6_e2m3,
                  "mx_reorder_quantize: FP6 must be E3M2 or E2M3");
  MM_CUDA_REQUIRE(M == out.rows && M >= 0, "mx_reorder_quantize: M does not match out.rows");
  MM_CUDA_REQUIRE(mixed::aligned16(d_x), "mx_reorder_quantize: x must be 16-byte aligned");
  MM_CUDA_REQUIRE(K * 2 <= 200 * 1024, "mx_reorder_quantize: K = " + std::to_string(K) + " is too large for one row in shared memory");
  const DecodeActsView dact = decode_acts_view(acts, M, s, "mx_reorder_quantize");
  if (M == 0 || K == 0) return;
  MM_CUDA_REQUIRE(M <= 0x7fffffff, "mx_reorder_quantize: M too large");
  // Default: v11 (H100, 2026-11-26 session 8, M = 8192, K = 4096 / 14336: 0.71 / 0.75 of copy; v9
  // 0.67 / 0.73 in the same run).
  // v12 = v11 with K split over CTAs where the row groups alone would not fill the GPU (M <= 16).
  if (g_version != 1 && mx_reorder_quantize_v3_launch(g_version == 0 ? 12 : g_version, d_x, M, d_perm, out, rule, r, stream, dact))
    return;
  QuantArgs p{};
  p.x = d_x;
  p.perm = d_perm;
  p.K = K;
  p.blocks4 = s.n4 / 32;
  p.blocks6 = s.n6 / 32;
  for (int i = 0; i < mx::kSegments; ++i) {
    p.codes[i] = out.codes[i];
    p.scales[i] = out.scales[i];
    p.row_bytes[i] = static_cast<int64_t>(mx::packed_row_bytes(s.format(i), s.count(i)));
    p.seg_blocks[i] = s.count(i) / mx::kBlock;
    p.fmt[i] = mixed::fmt_of(s.format(i));
  }
  p.ceil_rule = rule == mx::ScaleRule::ceil;
  p.away = r == mx::Rounding::away;
  const size_t smem = static_cast<size_t>(K) * 2;
  if (smem > 48 * 1024)
    MM_CUDA_CHECK(cudaFuncSetAttribute(reorder_quantize_v1, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  reorder_quantize_v1<<<static_cast<unsigned>(M), 256, smem, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
  if (dact.slots) write_decode_acts(out, dact, stream);
}

void mx_reorder_quantize(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                         mx::ScaleRule rule, mx::Rounding r, void* stream, const MxDecodeActs* acts) {
  mx_reorder_quantize_launch(d_x, M, d_perm, out, rule, r, static_cast<cudaStream_t>(stream), acts);
}

}  // namespace micromix::cuda
