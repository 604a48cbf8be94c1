// Float32 CPU kernels of the forward pass (internal). Matrices are row-major with explicit leading
// dimensions (elements between rows), so a head's slice of a (tokens, heads, head_dim) buffer is a
// matrix without copies.
//
// Threading: one pool, OpenMP's. BLAS (when linked) is kept single-threaded and only called from
// outside OpenMP parallel regions: Debian's OpenBLAS 0.3.21 (pthread build) called concurrently
// from two OpenMP threads made a 64-token SmolLM2-135M decode ~4x slower than our own kernels on
// the same threads (31-39 s vs 8 s, 2 threads, load ~5). Inside parallel regions gemm_* use our
// own kernels.
// gemm_* are single-threaded; matmul_nt splits its output columns over the threads.
#pragma once
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#define MICROMIX_CPU_X86 1
#else
#define MICROMIX_CPU_X86 0
#endif

namespace micromix::cpu {

// ---- GEMM (single thread) ----------------------------------------------------------------------
// C(m, n) = A(m, k) . B(n, k)^T     ("NT": both operands k-contiguous, as a linear layer's weight)
void gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc);
// C(m, n) = A(m, k) . B(k, n)       ("NN": attention probabilities times V)
void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc);

// Our own kernels: the path without BLAS, and tested against a reference even when BLAS is linked.
// *_generic is plain C++ (the oracle shape of the SIMD code); *_avx2 needs AVX2+FMA at run time.
void gemm_nt_own(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc);
void gemm_nn_own(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc);
void gemm_nt_generic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc);
void gemm_nn_generic(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc);
#if MICROMIX_CPU_X86
void gemm_nt_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                  int64_t ldc);
void gemm_nn_avx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                  int64_t ldc);
#endif
bool have_avx2();

// Y(m, n) = X(m, k) . W(n, k)^T over all threads (splits n). Contiguous operands.
void matmul_nt(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y);

// ---- element-wise ------------------------------------------------------------------------------
// y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for rows of length dim; x == y allowed.
void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y);
// x <- softmax(x) over n values (n >= 1).
void softmax_inplace(float* x, int64_t n);
// out = silu(gate) * up = gate / (1 + exp(-gate)) * up; out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t n, float* out);
// exp over n values in place (vectorized where available; relative error ~1e-7).
void exp_inplace(float* x, int64_t n);

// ---- threads -----------------------------------------------------------------------------------
bool have_blas();
// Sets OpenMP's thread count (BLAS stays at one thread; see above). n <= 0 keeps the default.
void set_num_threads(int n);
int num_threads();

}  // namespace micromix::cpu
