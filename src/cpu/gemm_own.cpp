// Our own single-threaded GEMM kernels: a plain C++ version and an AVX2+FMA version picked at run
// time. They serve builds without BLAS; the tests check both against a double-precision reference.

#include "cpu/kernels.hpp"
#include "micromix/mx_pack.hpp"

#if MICROMIX_CPU_X86
#include <immintrin.h>
#define MM_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace micromix::cpu {

void gemm_nt_generic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = s;
    }
}

void gemm_nn_generic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = 0.0f;
    for (int64_t p = 0; p < k; ++p) {
      const float aip = a[i * lda + p];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += aip * bp[j];
    }
  }
}

// One answer for the whole library (MICROMIX_NO_SIMD=1 turns every SIMD kernel off).
bool have_avx2() { return mx::have_avx2(); }

#if MICROMIX_CPU_X86
namespace {

MM_AVX2 inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// C(MR, NR) = A(MR, k) . B(NR, k)^T with MR*NR vector accumulators (MR*NR + NR + 1 <= 16 ymm).
template <int MR, int NR>
MM_AVX2 inline void nt_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                            int64_t ldc) {
  __m256 acc[MR][NR];
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NR; ++s) acc[r][s] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 bv[NR];
    for (int s = 0; s < NR; ++s) bv[s] = _mm256_loadu_ps(b + s * ldb + p);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_loadu_ps(a + r * lda + p);
      for (int s = 0; s < NR; ++s) acc[r][s] = _mm256_fmadd_ps(av, bv[s], acc[r][s]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int s = 0; s < NR; ++s) {
      float t = hsum(acc[r][s]);
      for (int64_t q = p; q < k; ++q) t += a[r * lda + q] * b[s * ldb + q];
      c[r * ldc + s] = t;
    }
}

// MR rows of A against all n rows of B.
template <int MR, int NR>
MM_AVX2 void nt_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                     int64_t ldc) {
  int64_t j = 0;
  for (; j + NR <= n; j += NR) nt_tile<MR, NR>(k, a, lda, b + j * ldb, ldb, c + j, ldc);
  for (; j < n; ++j) nt_tile<MR, 1>(k, a, lda, b + j * ldb, ldb, c + j, ldc);
}

// C(MR, 16 or 8) += A(MR, k) . B(k, 16 or 8)
template <int MR, int NV>
MM_AVX2 inline void nn_tile(int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                            int64_t ldc) {
  __m256 acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m256 bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_loadu_ps(b + p * ldb + 8 * v);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
}

template <int MR>
MM_AVX2 void nn_rows(int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                     int64_t ldc) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) nn_tile<MR, 2>(k, a, lda, b + j, ldb, c + j, ldc);
  for (; j + 8 <= n; j += 8) nn_tile<MR, 1>(k, a, lda, b + j, ldb, c + j, ldc);
  for (; j < n; ++j)  // last < 8 columns
    for (int r = 0; r < MR; ++r) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[r * lda + p] * b[p * ldb + j];
      c[r * ldc + j] = s;
    }
}

}  // namespace

MM_AVX2 void gemm_nt_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                          float* c, int64_t ldc) {
  if (m == 1) return nt_rows<1, 8>(n, k, a, lda, b, ldb, c, ldc);  // matrix-vector: stream B once
  // Blocks of 64 rows of A stay in L2 while every tile of B passes by.
  constexpr int64_t kRowBlock = 64;
  for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const int64_t i1 = i0 + kRowBlock < m ? i0 + kRowBlock : m;
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) nt_rows<4, 3>(n, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc);
    for (; i < i1; ++i) nt_rows<1, 8>(n, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc);
  }
}

MM_AVX2 void gemm_nn_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                          float* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4) nn_rows<4>(n, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc);
  for (; i < m; ++i) nn_rows<1>(n, k, a + i * lda, lda, b, ldb, c + i * ldc, ldc);
}
#endif  // MICROMIX_CPU_X86

void gemm_nt_own(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc) {
#if MICROMIX_CPU_X86
  if (have_avx2()) return gemm_nt_avx2(m, n, k, a, lda, b, ldb, c, ldc);
#endif
  gemm_nt_generic(m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm_nn_own(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc) {
#if MICROMIX_CPU_X86
  if (have_avx2()) return gemm_nn_avx2(m, n, k, a, lda, b, ldb, c, ldc);
#endif
  gemm_nn_generic(m, n, k, a, lda, b, ldb, c, ldc);
}

}  // namespace micromix::cpu
