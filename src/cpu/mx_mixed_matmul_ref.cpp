// CPU reference of the mixed MX GEMM: dequantize both operands, then an FP32 y = a . b^T.
#include <vector>

#include "micromix/error.hpp"
#include "micromix/mx_mixed_matmul.hpp"

namespace micromix::mx {

void matmul_nt_f32(std::span<const float> a, std::span<const float> b, int64_t M, int64_t N, int64_t K,
                   std::span<float> y) {
  MM_CHECK(M >= 0 && N >= 0 && K >= 0, "matmul_nt_f32: negative shape ({}, {}, {})", M, N, K);
  MM_CHECK(a.size() == static_cast<size_t>(M * K) && b.size() == static_cast<size_t>(N * K) &&
               y.size() == static_cast<size_t>(M * N),
           "matmul_nt_f32: spans of {}, {}, {} for M={} N={} K={}", a.size(), b.size(), y.size(), M, N, K);
  constexpr int kLanes = 8;  // interleaved partial sums: a fixed order the compiler can vectorize
#pragma omp parallel for collapse(2) schedule(static) if (M * N * K > (1 << 20))
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const float* ai = a.data() + i * K;
      const float* bj = b.data() + j * K;
      float acc[kLanes] = {};
      int64_t k = 0;
      for (; k + kLanes <= K; k += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += ai[k + l] * bj[k + l];
      for (; k < K; ++k) acc[k % kLanes] += ai[k] * bj[k];
      y[static_cast<size_t>(i * N + j)] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
}

void mx_mixed_matmul_ref(const MxMixedMatrix& x, const MxMixedMatrix& w, std::span<float> y) {
  validate_mixed(x);
  validate_mixed(w);
  MM_CHECK(x.cols == w.cols, "mx_mixed_matmul: x has {} columns, w has {}", x.cols, w.cols);
  MM_CHECK(x.split.n4 == w.split.n4 && x.split.n6 == w.split.n6 && x.split.n8 == w.split.n8 &&
               x.split.fp6 == w.split.fp6,
           "mx_mixed_matmul: x and w have different splits ({}/{}/{} vs {}/{}/{})", x.split.n4, x.split.n6,
           x.split.n8, w.split.n4, w.split.n6, w.split.n8);
  MM_CHECK(x.perm == w.perm, "mx_mixed_matmul: x and w were permuted differently");
  MM_CHECK(y.size() == static_cast<size_t>(x.rows * w.rows), "mx_mixed_matmul: output size {} != {} x {}",
           y.size(), x.rows, w.rows);
  std::vector<float> a(static_cast<size_t>(x.rows * x.cols)), b(static_cast<size_t>(w.rows * w.cols));
  dequantize_mixed_permuted(x, a);
  dequantize_mixed_permuted(w, b);
  matmul_nt_f32(a, b, x.rows, w.rows, x.cols, y);
}

}  // namespace micromix::mx
