// Arithmetic of the fused RMSNorm / SwiGLU prologues (mx_fused_quantize.cu), shared verbatim by the
// GPU kernels and the host references in the tests so that both compute the same bf16 bits.
// Every operation is a single IEEE-rounded FP32 op (explicit fmaf where a product feeds a sum:
// no compiler contraction can change it; '/' and sqrtf are correctly rounded in nvcc without
// --use_fast_math and on the host), so host and device agree bit for bit.
// Plain C++ when compiled without nvcc (the tests include it in CUDA-off builds too).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __CUDACC__
#define MM_FUSED_HD __host__ __device__ __forceinline__
#else
#define MM_FUSED_HD inline
#endif

namespace micromix::cuda::fused {

inline constexpr int kRmsThreads = 256;  // threads per row of the RMSNorm kernel (fixes the sum order)

MM_FUSED_HD uint32_t f2u(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
MM_FUSED_HD float u2f(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even to bf16 bits; NaN stays a quiet NaN (same as micromix::float_to_bf16).
MM_FUSED_HD uint16_t to_bf16(float f) {
  uint32_t u = f2u(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
MM_FUSED_HD float from_bf16(uint32_t h) { return u2f(h << 16); }

// exp(x) for SiLU, our own (not libm / CUDA's expf, which differ in the last ulp): n = rint(x
// log2 e), r = x - n ln2 in two Cody-Waite steps, degree-7 Taylor polynomial on |r| <= ln2/2
// (truncation < 2^-27 relative), times 2^n through the exponent bits. x > 88: +Inf (so silu(g)
// is -0 for g < -88 where its magnitude is below 1e-36); x < -80:
// 0 (there 1 + exp(x) rounds to 1 in FP32 anyway); NaN propagates.
MM_FUSED_HD float silu_exp(float x) {
  if (x != x) return x;
  if (x > 88.0f) return u2f(0x7f800000u);
  if (x < -80.0f) return 0.0f;
  const float n = rintf(x * 1.44269504088896341f);
  float r = fmaf(-n, 0.693145751953125f, x);
  r = fmaf(-n, 1.428606765330187045e-06f, r);
  float p = 1.0f / 5040.0f;
  p = fmaf(p, r, 1.0f / 720.0f);
  p = fmaf(p, r, 1.0f / 120.0f);
  p = fmaf(p, r, 1.0f / 24.0f);
  p = fmaf(p, r, 1.0f / 6.0f);
  p = fmaf(p, r, 0.5f);
  p = fmaf(p, r, 1.0f);
  p = fmaf(p, r, 1.0f);
  // p in [0.7, 1.42] and n in [-116, 127]: the result stays a normal float.
  return u2f(f2u(p) + (static_cast<uint32_t>(static_cast<int32_t>(n)) << 23));
}

// silu(g) * u = g / (1 + exp(-g)) * u, each step rounded in FP32; swiglu_bf16 rounds it to bf16.
// (The GPU quantizers round with the hardware cvt.rn.bf16x2.f32 instead of to_bf16: the same bits
// except a NaN's payload, and a NaN makes its whole row's MX block scale NaN either way.)
MM_FUSED_HD float swiglu_f32(float g, float u) {
  const float s = g / (1.0f + silu_exp(-g));
  return s * u;
}
MM_FUSED_HD uint16_t swiglu_bf16(float g, float u) { return to_bf16(swiglu_f32(g, u)); }

// 1 / sqrt(sum_sq / K + eps), correctly rounded steps (no rsqrtf: it is approximate).
MM_FUSED_HD float inv_rms(float sum_sq, int64_t K, float eps) {
  return 1.0f / sqrtf(sum_sq / static_cast<float>(K) + eps);
}

// (x * inv) * w, and that rounded to bf16.
MM_FUSED_HD float rmsnorm_f32(float x, float inv, float w) { return (x * inv) * w; }
MM_FUSED_HD uint16_t rmsnorm_bf16(float x, float inv, float w) { return to_bf16(rmsnorm_f32(x, inv, w)); }

}  // namespace micromix::cuda::fused
