// RMSNorm, softmax, SwiGLU and a vectorized exp. Small loops use `omp simd` so the compiler may
// reassociate the reductions; exp has an AVX2 version (Cephes-style polynomial, ~2 ulp).
#include <cmath>

#include "cpu/kernels.hpp"

#if MICROMIX_CPU_X86
#include <immintrin.h>
#define MM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace micromix::cpu {
namespace {

#if MICROMIX_CPU_X86
// e^x for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial, 2^n by the
// exponent bits. Inputs are clamped to [-87.3, 88.7] (the finite normal range).
MM_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in two so n*ln2_hi is exact.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n: n in [-126, 128]; split as 2^(n/2) * 2^(n - n/2) so n = 128 does not overflow the bits.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i h = _mm256_srai_epi32(ni, 1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

MM_AVX2 void exp_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

MM_AVX2 void swiglu_avx2(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
    _mm256_storeu_ps(out + i, _mm256_div_ps(_mm256_mul_ps(g, _mm256_loadu_ps(up + i)), _mm256_add_ps(one, e)));
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}
#endif

}  // namespace

void exp_inplace(float* x, int64_t n) {
#if MICROMIX_CPU_X86
  if (have_avx2()) return exp_avx2(x, n);
#endif
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y) {
#pragma omp parallel for if (rows * dim >= (1 << 16)) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < dim; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(dim) + eps);
#pragma omp simd
    for (int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

void softmax_inplace(float* x, int64_t n) {
  float mx = x[0];
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] -= mx;
  exp_inplace(x, n);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
  constexpr int64_t kChunk = 8192;
#pragma omp parallel for if (n >= 4 * kChunk) schedule(static)
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t len = n - c < kChunk ? n - c : kChunk;
#if MICROMIX_CPU_X86
    if (have_avx2()) {
      swiglu_avx2(gate + c, up + c, len, out + c);
      continue;
    }
#endif
    for (int64_t i = c; i < c + len; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
}

}  // namespace micromix::cpu
