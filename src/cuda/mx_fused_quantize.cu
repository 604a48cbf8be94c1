// Fused prologue + reorder + MX quantization (cuda_mx.hpp): RMSNorm or SwiGLU computed in FP32 and
// rounded to bf16 (what the unfused pipeline would store), then permuted and quantized into the
// FP4 | FP6 | FP8 segments exactly as mx_reorder_quantize (bit-identical to mx::quantize_mixed on
// that bf16 row). The prologue arithmetic is in fused_prologue_math.hpp, shared with the tests'
// host references (bit-exact, including the RMSNorm sum order described below).
//
// One CTA (256 threads) per row:
//  1. stage: thread t reads 16-byte chunks t, t + 256, ... of the row(s) once from global memory;
//     RMSNorm: x goes to shared memory and t accumulates fmaf(x, x, acc) over its chunks in order
//     (elements 0..7 of a chunk in order), then a warp butterfly (xor 16, 8, 4, 2, 1; a + b is
//     commutative so every lane holds the same sum), then the 8 warp sums added in warp order;
//     each thread then rewrites its own chunks as bf16((x * inv_rms) * w).
//     SwiGLU: gate and up chunks -> bf16(silu(gate) * up) in shared memory.
//  2. quantize: a thread per 8 permuted columns (a quarter MX block, as mx_reorder_quantize v3
//     with one row), gathered from shared memory; block max over 4 lanes; E8M0 scale; v4's float-adder
//     encoder for ties to even (v1's floor-based one for ties away); byte stores of the codes.
// NOTES: one row per CTA and the generic encoder: ties to even now go to v9's kernel with the
// prologue in its staging (mx_reorder_quantize_v3.cu, same bits); this kernel serves ties away and
// shapes v9 does not take.
#include <cuda_bf16.h>

#include <memory>

#include "cuda/fused_prologue_math.hpp"
#include "cuda/mx_mixed_device.cuh"
#include "cuda/mx_quantize_common.cuh"
#include "cuda/mx_reorder_quantize.cuh"
#include "cuda/ptx_helpers.cuh"

namespace micromix::cuda {
namespace {

using mixed::Fmt;
constexpr int kThreads = fused::kRmsThreads;

enum class Prologue { rms_bf16w, rms_f32w, swiglu };

struct FusedArgs {
  const uint16_t* a;  // RMSNorm: x (M, K); SwiGLU: gate rows with stride ld
  const uint16_t* b;  // SwiGLU: up rows with stride ld
  const void* w;      // RMSNorm weight (K), bf16 or f32
  const int32_t* perm;
  int64_t K, ld;
  float eps;
  int64_t blocks4, blocks6;
  uint8_t* codes[3];
  uint8_t* scales[3];
  int64_t row_bytes[3];
  int64_t seg_blocks[3];
  Fmt fmt[3];
  int ceil_rule, away, fp6_e2m3;
};

// E8M0 scale code from a block's max |x| as float bits (finite): mx::block_scale, both rules.
__device__ __forceinline__ unsigned scale_code(uint32_t b, int emax, float max_normal, bool ceil_rule) {
  if (b == 0) return ceil_rule ? 127u : 0u;
  int ilog;
  uint32_t frac;
  if (b >= 0x00800000u) {
    ilog = static_cast<int>(b >> 23) - 127;
    frac = b & 0x7fffffu;
  } else {
    const int lz = __clz(static_cast<int>(b));
    ilog = (31 - lz) - 149;
    frac = (b << (lz - 8)) & 0x7fffffu;
  }
  // ceil: amax = A 2^ilog, max_normal = Q 2^emax: ilog - emax + (A > Q).
  const uint32_t max_frac = __float_as_uint(max_normal) & 0x7fffffu;
  int e = ilog - emax + (ceil_rule && frac > max_frac ? 1 : 0);
  e = max(e, -127);
  e = min(e, 127 - emax);
  return static_cast<unsigned>(e + 127);
}

// Ties-to-even encoder on the float adder (mx_reorder_quantize v4's encode_elem_rne): with
// e = max(exponent(|v|), emin) and M = 1.5 * 2^(e + 23 - m), bits(|v| + M) - bits(M) is |v| / 2^(e - m)
// rounded to nearest even; code = ((e - emin) << m) + that, saturated at max_code. Fewer
// instructions than encode(); same codes for Rounding::even (the tests check bit identity).
template <int BITS, int MB, int EMIN, unsigned MAXC>
__device__ __forceinline__ unsigned encode_rne(float v) {
  constexpr int sh = 23 - MB;
  constexpr uint32_t kEminExp = static_cast<uint32_t>(127 + EMIN) << 23;
  constexpr uint32_t kMagic = (static_cast<uint32_t>(23 - MB) << 23) | 0x400000u;
  const uint32_t ebits = max(__float_as_uint(v) & 0x7f800000u, kEminExp);
  const uint32_t mbits = ebits + kMagic;
  const float r = fabsf(v) + __uint_as_float(mbits);
  const uint32_t mag = min(__float_as_uint(r) - mbits + ((ebits - kEminExp) >> sh), MAXC);
  return mag | ((__float_as_uint(v) >> 31) << (BITS - 1));
}

// Codes of the 8 values v[i] * inv of a segment.
__device__ __forceinline__ void encode8(const Fmt& f, int seg, bool e2m3, bool away, const float (&v)[8], float inv,
                                        unsigned (&c)[8]) {
  if (away) {
#pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = mixed::encode(f, v[i] * inv, true);
  } else if (seg == 0) {
#pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = encode_rne<4, 1, 0, 0x07u>(v[i] * inv);
  } else if (seg == 2) {
#pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = encode_rne<8, 3, -6, 0x7Eu>(v[i] * inv);
  } else if (e2m3) {
#pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = encode_rne<6, 3, 0, 0x1Fu>(v[i] * inv);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) c[i] = encode_rne<6, 2, -2, 0x1Fu>(v[i] * inv);
  }
}

__device__ __forceinline__ float lo_f(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float hi_f(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) { return lo | (static_cast<uint32_t>(hi) << 16); }

// Weight elements 8 g .. 8 g + 7 as floats.
template <Prologue P>
__device__ __forceinline__ void load_weight8(const void* w, int64_t g, float (&out)[8]) {
  if constexpr (P == Prologue::rms_f32w) {
    const float4* p = reinterpret_cast<const float4*>(w) + 2 * g;
    const float4 a = __ldg(p), b = __ldg(p + 1);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(w) + g);
    const uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      out[2 * i] = lo_f(u[i]);
      out[2 * i + 1] = hi_f(u[i]);
    }
  }
}

template <Prologue P>
__global__ void __launch_bounds__(kThreads) fused_quantize(FusedArgs p) {
  ptx::griddep_launch_dependents();  // a decode GEMV launched as our programmatic dependent (v21) may start now
  extern __shared__ uint4 s_raw[];
  __shared__ float s_warp[kThreads / 32];
  const int64_t row = blockIdx.x;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t chunks = p.K / 8;

  // ---- 1. prologue into shared memory (bf16 row) ----
  if constexpr (P == Prologue::swiglu) {
    const uint4* g = reinterpret_cast<const uint4*>(p.a + row * p.ld);
    const uint4* u = reinterpret_cast<const uint4*>(p.b + row * p.ld);
    for (int64_t c = tid; c < chunks; c += kThreads) {
      const uint4 gv = __ldg(g + c), uv = __ldg(u + c);
      const uint32_t ga[4] = {gv.x, gv.y, gv.z, gv.w}, ua[4] = {uv.x, uv.y, uv.z, uv.w};
      uint32_t o[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        o[i] = pack2(fused::swiglu_bf16(lo_f(ga[i]), lo_f(ua[i])), fused::swiglu_bf16(hi_f(ga[i]), hi_f(ua[i])));
      s_raw[c] = make_uint4(o[0], o[1], o[2], o[3]);
    }
  } else {
    const uint4* x = reinterpret_cast<const uint4*>(p.a + row * p.K);
    float acc = 0.0f;
    for (int64_t c = tid; c < chunks; c += kThreads) {
      const uint4 v = __ldg(x + c);
      s_raw[c] = v;
      const uint32_t a[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float l = lo_f(a[i]), h = hi_f(a[i]);
        acc = fmaf(l, l, acc);
        acc = fmaf(h, h, acc);
      }
    }
#pragma unroll
    for (int o = 16; o >= 1; o >>= 1) acc = acc + __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) s_warp[warp] = acc;
    __syncthreads();
    float total = s_warp[0];
#pragma unroll
    for (int w = 1; w < kThreads / 32; ++w) total = total + s_warp[w];
    const float inv = fused::inv_rms(total, p.K, p.eps);
    for (int64_t c = tid; c < chunks; c += kThreads) {  // the thread's own chunks: no sync needed
      const uint4 v = s_raw[c];
      float w[8];
      load_weight8<P>(p.w, c, w);
      const uint32_t a[4] = {v.x, v.y, v.z, v.w};
      uint32_t o[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        o[i] = pack2(fused::rmsnorm_bf16(lo_f(a[i]), inv, w[2 * i]), fused::rmsnorm_bf16(hi_f(a[i]), inv, w[2 * i + 1]));
      s_raw[c] = make_uint4(o[0], o[1], o[2], o[3]);
    }
  }
  __syncthreads();

  // ---- 2. reorder + quantize from shared memory ----
  // A lane owns unit u = 8 permuted columns = quarter q of MX block u / 4; the block max takes two
  // shuffles. Loop bounds are warp-uniform so that every lane takes part in the shuffles; units
  // come in whole blocks (K % 32 == 0), so the 4 lanes of a block are all active or all not.
  const uint16_t* s_row = reinterpret_cast<const uint16_t*>(s_raw);
  const int64_t units = p.K / 8;
  for (int64_t u0 = static_cast<int64_t>(warp) * 32; u0 < units; u0 += kThreads) {
    const int64_t u = u0 + lane;
    const bool active = u < units;
    const int64_t b = u >> 2;
    const int q = static_cast<int>(u & 3);
    float v[8];
    uint32_t am = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t h = active ? s_row[__ldg(p.perm + 8 * u + i)] : 0u;
      v[i] = __uint_as_float(h << 16);
      am = max(am, h & 0x7fffu);
    }
    am = max(am, __shfl_xor_sync(0xffffffffu, am, 1));
    am = max(am, __shfl_xor_sync(0xffffffffu, am, 2));
    if (!active) continue;
    const int seg = b < p.blocks4 ? 0 : b < p.blocks4 + p.blocks6 ? 1 : 2;
    const int64_t lb = b - (seg == 0 ? 0 : seg == 1 ? p.blocks4 : p.blocks4 + p.blocks6);
    const Fmt f = p.fmt[seg];
    const uint32_t amax_bits = am << 16;
    unsigned s, c[8];
    if (amax_bits >= 0x7f800000u) {  // NaN or Inf in the block: NaN scale, zero codes (OCP)
      s = 0xFFu;
#pragma unroll
      for (int i = 0; i < 8; ++i) c[i] = 0;
    } else {
      s = scale_code(amax_bits, f.emax, f.max_normal, p.ceil_rule);
      // 2^(127 - s): normal for s <= 253, the subnormal 2^-127 for s = 254.
      const float inv = s <= 253u ? __uint_as_float((254u - s) << 23) : __uint_as_float(0x00400000u);
      encode8(f, seg, p.fp6_e2m3, p.away, v, inv, c);
    }
    if (q == 0) p.scales[seg][row * p.seg_blocks[seg] + lb] = static_cast<uint8_t>(s);
    // Byte stores (no alignment demands on the caller's code pointers); a warp's bytes are contiguous.
    uint8_t* out = p.codes[seg] + row * p.row_bytes[seg];
    if (f.bits == 4) {
      uint8_t* o = out + lb * 16 + 4 * q;
#pragma unroll
      for (int i = 0; i < 4; ++i) o[i] = static_cast<uint8_t>(c[2 * i] | (c[2 * i + 1] << 4));
    } else if (f.bits == 6) {
      const uint32_t lo = c[0] | (c[1] << 6) | (c[2] << 12) | (c[3] << 18);
      const uint32_t hi = c[4] | (c[5] << 6) | (c[6] << 12) | (c[7] << 18);
      uint8_t* o = out + lb * 24 + 6 * q;
      o[0] = static_cast<uint8_t>(lo);
      o[1] = static_cast<uint8_t>(lo >> 8);
      o[2] = static_cast<uint8_t>(lo >> 16);
      o[3] = static_cast<uint8_t>(hi);
      o[4] = static_cast<uint8_t>(hi >> 8);
      o[5] = static_cast<uint8_t>(hi >> 16);
    } else {
      uint8_t* o = out + lb * 32 + 8 * q;
#pragma unroll
      for (int i = 0; i < 8; ++i) o[i] = static_cast<uint8_t>(c[i]);
    }
  }
}

// Validates the output description and fills the quantizer's part of the arguments.
FusedArgs make_args(const char* op, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out, mx::ScaleRule rule,
                    mx::Rounding r) {
  const mx::MixedSplit& s = out.split;
  const std::string name = op;
  for (int i = 0; i < mx::kSegments; ++i)
    MM_CUDA_REQUIRE(s.count(i) >= 0 && s.count(i) % mx::kBlock == 0, name + ": segment sizes must be multiples of 32");
  MM_CUDA_REQUIRE(s.fp6 == mx::ElemFormat::fp6_e3m2 || s.fp6 == mx::ElemFormat::fp6_e2m3, name + ": FP6 must be E3M2 or E2M3");
  MM_CUDA_REQUIRE(M == out.rows && M >= 0, name + ": M does not match out.rows");
  MM_CUDA_REQUIRE(M <= 0x7fffffff, name + ": M too large");
  const int64_t K = s.cols();
  MM_CUDA_REQUIRE(K * 2 <= 200 * 1024, name + ": K = " + std::to_string(K) + " is too large for one row in shared memory");
  MM_CUDA_REQUIRE(K == 0 || M == 0 || d_perm != nullptr, name + ": perm is null");
  FusedArgs p{};
  p.perm = d_perm;
  p.K = K;
  p.ld = K;
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
  p.fp6_e2m3 = s.fp6 == mx::ElemFormat::fp6_e2m3;
  return p;
}

template <Prologue P>
void launch(const FusedArgs& p, int64_t M, cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(p.K) * 2;
  static const bool attrs_set = [] {
    MM_CUDA_CHECK(cudaFuncSetAttribute(fused_quantize<P>, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    return true;
  }();
  (void)attrs_set;
  fused_quantize<P><<<static_cast<unsigned>(M), kThreads, smem, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void mx_rmsnorm_reorder_quantize(const uint16_t* d_x, int64_t M, const void* d_weight, WeightType wtype, float eps,
                                 const int32_t* d_perm, const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                 void* stream, const MxDecodeActs* acts) {
  FusedArgs p = make_args("mx_rmsnorm_reorder_quantize", M, d_perm, out, rule, r);
  const DecodeActsView dact = decode_acts_view(acts, M, out.split, "mx_rmsnorm_reorder_quantize");
  if (M == 0 || p.K == 0) return;
  MM_CUDA_REQUIRE(mixed::aligned16(d_x) && mixed::aligned16(d_weight),
                  "mx_rmsnorm_reorder_quantize: x and weight must be 16-byte aligned");
  // v9's kernel with the prologue in its staging (ties to even); this file's kernel otherwise.
  if (mx_fused_reorder_quantize_v9_launch(wtype == WeightType::f32 ? FusedPrologue::rms_f32w : FusedPrologue::rms_bf16w,
                                          d_x, nullptr, p.K, d_weight, eps, M, d_perm, out, rule, r,
                                          static_cast<cudaStream_t>(stream), dact))
    return;
  p.a = d_x;
  p.w = d_weight;
  p.eps = eps;
  if (wtype == WeightType::f32) launch<Prologue::rms_f32w>(p, M, static_cast<cudaStream_t>(stream));
  else launch<Prologue::rms_bf16w>(p, M, static_cast<cudaStream_t>(stream));
  if (dact.slots) write_decode_acts(out, dact, static_cast<cudaStream_t>(stream));
}

void mx_swiglu_reorder_quantize(const uint16_t* d_gate, const uint16_t* d_up, int64_t ld, int64_t M,
                                const int32_t* d_perm, const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                void* stream, const MxDecodeActs* acts) {
  FusedArgs p = make_args("mx_swiglu_reorder_quantize", M, d_perm, out, rule, r);
  const DecodeActsView dact = decode_acts_view(acts, M, out.split, "mx_swiglu_reorder_quantize");
  if (M == 0 || p.K == 0) return;
  MM_CUDA_REQUIRE(ld >= p.K && ld % 8 == 0, "mx_swiglu_reorder_quantize: ld must be >= K and a multiple of 8");
  MM_CUDA_REQUIRE(mixed::aligned16(d_gate) && mixed::aligned16(d_up),
                  "mx_swiglu_reorder_quantize: gate and up must be 16-byte aligned");
  if (mx_fused_reorder_quantize_v9_launch(FusedPrologue::swiglu, d_gate, d_up, ld, nullptr, 0.0f, M, d_perm, out, rule, r,
                                          static_cast<cudaStream_t>(stream), dact))
    return;
  p.a = d_gate;
  p.b = d_up;
  p.ld = ld;
  launch<Prologue::swiglu>(p, M, static_cast<cudaStream_t>(stream));
  if (dact.slots) write_decode_acts(out, dact, static_cast<cudaStream_t>(stream));
}

// ---- host conveniences ----
mx::MxMixedMatrix mx_rmsnorm_reorder_quantize_host(std::span<const uint16_t> x, int64_t M, int64_t K,
                                                   std::span<const uint8_t> weight, WeightType wtype, float eps,
                                                   std::span<const int32_t> perm, const mx::MixedSplit& split,
                                                   mx::ScaleRule rule, mx::Rounding r) {
  const size_t wbytes = static_cast<size_t>(K) * (wtype == WeightType::f32 ? 4 : 2);
  MM_CUDA_REQUIRE(M >= 0 && K >= 0 && x.size() == static_cast<size_t>(M * K), "mx_rmsnorm_reorder_quantize_host: x size");
  MM_CUDA_REQUIRE(weight.size() == wbytes, "mx_rmsnorm_reorder_quantize_host: weight size");
  MM_CUDA_REQUIRE(perm.size() == static_cast<size_t>(K) && split.cols() == K, "mx_rmsnorm_reorder_quantize_host: perm/split size");
  const auto dx = mixed::to_device(x);
  const auto dw = mixed::to_device(weight);
  return mixed::quantize_on_host(M, K, perm, split, [&](const int32_t* dp, const MxMixedDeviceOut& out) {
    mx_rmsnorm_reorder_quantize(dx->ptr, M, dw->ptr, wtype, eps, dp, out, rule, r, nullptr);
  });
}

mx::MxMixedMatrix mx_swiglu_reorder_quantize_host(std::span<const uint16_t> gate_up, int64_t M, int64_t K, bool packed,
                                                  std::span<const int32_t> perm, const mx::MixedSplit& split,
                                                  mx::ScaleRule rule, mx::Rounding r) {
  MM_CUDA_REQUIRE(M >= 0 && K >= 0 && gate_up.size() == static_cast<size_t>(2 * M * K),
                  "mx_swiglu_reorder_quantize_host: gate_up size");
  MM_CUDA_REQUIRE(perm.size() == static_cast<size_t>(K) && split.cols() == K, "mx_swiglu_reorder_quantize_host: perm/split size");
  const auto d = mixed::to_device(gate_up);
  const uint16_t* gate = d->ptr;
  const uint16_t* up = packed ? d->ptr + K : d->ptr + M * K;
  const int64_t ld = packed ? 2 * K : K;
  return mixed::quantize_on_host(M, K, perm, split, [&](const int32_t* dp, const MxMixedDeviceOut& out) {
    mx_swiglu_reorder_quantize(gate, up, ld, M, dp, out, rule, r, nullptr);
  });
}

}  // namespace micromix::cuda
