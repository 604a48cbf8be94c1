// GEMM dispatch (BLAS when linked, else our kernels), the threaded linear-layer matmul, and the
// thread count. See kernels.hpp for the one-pool threading rule.
#include <omp.h>

#include <algorithm>

#include "cpu/kernels.hpp"

#if defined(MICROMIX_HAVE_BLAS)
#include <cblas.h>
// OpenBLAS's thread control, looked up weakly so another BLAS links too.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
#endif

namespace micromix::cpu {
namespace {

#if defined(MICROMIX_HAVE_BLAS)
// BLAS runs on the calling thread only; set before main() so no BLAS pool ever starts working.
[[maybe_unused]] const bool g_blas_single_threaded = [] {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
  return true;
}();
#endif

}  // namespace

bool have_blas() {
#if defined(MICROMIX_HAVE_BLAS)
  return true;
#else
  return false;
#endif
}

void gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if defined(MICROMIX_HAVE_BLAS)
  if (k > 0 && !omp_in_parallel()) {
    if (m == 1)  // y = B a: BLAS's gemv streams B once, its gemm would pack it
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f, b,
                  static_cast<int>(ldb), a, 1, 0.0f, c, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f, c,
                  static_cast<int>(ldc));
    return;
  }
#endif
  gemm_nt_own(m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc) {
  if (m <= 0 || n <= 0) return;
#if defined(MICROMIX_HAVE_BLAS)
  if (k > 0 && !omp_in_parallel()) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), 0.0f, c,
                static_cast<int>(ldc));
    return;
  }
#endif
  gemm_nn_own(m, n, k, a, lda, b, ldb, c, ldc);
}

void matmul_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y) {
  if (m <= 0 || n <= 0) return;
  const int threads = omp_in_parallel() ? 1 : num_threads();
  // Below ~1 MFLOP the fork/join costs more than it saves.
  if (threads <= 1 || m * n * k < (int64_t{1} << 19)) return gemm_nt(m, n, k, x, k, w, k, y, n);
  // Column slices of whole 16-row groups of W, one per thread.
  const int64_t per = (n + threads - 1) / threads;
  const int64_t slice = (per + 15) / 16 * 16;
#pragma omp parallel num_threads(threads)
  {
    const int64_t j0 = omp_get_thread_num() * slice;
    const int64_t j1 = std::min(n, j0 + slice);
    if (j0 < j1) gemm_nt(m, j1 - j0, k, x, k, w + j0 * k, k, y + j0, n);
  }
}

void set_num_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace micromix::cpu
