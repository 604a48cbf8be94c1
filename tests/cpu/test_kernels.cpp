// Float kernels against double-precision references: every GEMM path (dispatch, own AVX2, own
// generic) with odd shapes and padded strides, the threaded matmul, RMSNorm, softmax, SwiGLU, exp.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "cpu/kernels.hpp"

using namespace micromix::cpu;

namespace {

using Gemm = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t);

std::vector<float> randn(size_t n, std::mt19937& g) {
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(g);
  return v;
}

// Runs a GEMM on random padded operands and compares with a double reference. nt: B is (n, k).
void check_gemm(Gemm f, bool nt, const char* name) {
  std::mt19937 g(std::random_device{}());
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 37, 64}, {1, 100, 5}, {4, 3, 8}, {5, 17, 33}, {13, 64, 70},
                               {70, 21, 9}, {64, 48, 576}, {3, 130, 0}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    const int64_t lda = k + 3, ldb = (nt ? k : n) + 5, ldc = n + 2;
    const auto a = randn(static_cast<size_t>(m * lda), g);
    const auto b = randn(static_cast<size_t>((nt ? n : k) * ldb + 1), g);
    std::vector<float> c(static_cast<size_t>(m * ldc), 12345.0f);
    f(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0, mag = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double t = double{a[i * lda + p]} * (nt ? b[j * ldb + p] : b[p * ldb + j]);
          ref += t;
          mag += std::abs(t);
        }
        // float accumulation error <= k * eps * sum|terms| (loose bound, a few ulps in practice)
        ASSERT_NEAR(c[i * ldc + j], ref, 1e-6 + 2 * k * 6e-8 * mag) << name << " " << m << "x" << n << "x" << k;
      }
      for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 12345.0f) << name << ": wrote past n";
    }
  }
}

}  // namespace

TEST(CpuKernels, GemmNtAllPaths) {
  check_gemm(gemm_nt, true, "gemm_nt");
  check_gemm(gemm_nt_own, true, "gemm_nt_own");
  check_gemm(gemm_nt_generic, true, "gemm_nt_generic");
#if MICROMIX_CPU_X86
  if (have_avx2()) check_gemm(gemm_nt_avx2, true, "gemm_nt_avx2");
#endif
}

TEST(CpuKernels, GemmNnAllPaths) {
  check_gemm(gemm_nn, false, "gemm_nn");
  check_gemm(gemm_nn_own, false, "gemm_nn_own");
  check_gemm(gemm_nn_generic, false, "gemm_nn_generic");
#if MICROMIX_CPU_X86
  if (have_avx2()) check_gemm(gemm_nn_avx2, false, "gemm_nn_avx2");
#endif
}

TEST(CpuKernels, ThreadedMatmulMatchesReference) {
  std::mt19937 g(std::random_device{}());
  for (const auto& s : std::vector<std::array<int64_t, 3>>{{1, 1000, 300}, {37, 333, 129}, {128, 96, 64}}) {
    const int64_t m = s[0], n = s[1], k = s[2];
    const auto x = randn(static_cast<size_t>(m * k), g), w = randn(static_cast<size_t>(n * k), g);
    std::vector<float> y(static_cast<size_t>(m * n));
    matmul_nt(x.data(), m, k, w.data(), n, y.data());
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double ref = 0;
        for (int64_t p = 0; p < k; ++p) ref += double{x[i * k + p]} * w[j * k + p];
        ASSERT_NEAR(y[i * n + j], ref, 1e-4 * std::sqrt(static_cast<double>(k))) << i << "," << j;
      }
  }
}

TEST(CpuKernels, RmsnormSoftmaxSwigluExp) {
  std::mt19937 g(std::random_device{}());
  const int64_t rows = 5, dim = 77;
  const auto x = randn(static_cast<size_t>(rows * dim), g), w = randn(static_cast<size_t>(dim), g);
  std::vector<float> y(x.size());
  rmsnorm(x.data(), w.data(), rows, dim, 1e-5f, y.data());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double{x[r * dim + i]} * x[r * dim + i];
    const double inv = 1 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) EXPECT_NEAR(y[r * dim + i], x[r * dim + i] * inv * w[i], 1e-5);
  }

  for (int64_t n : {1, 7, 8, 100, 1001}) {
    auto s = randn(static_cast<size_t>(n), g);
    for (auto& v : s) v *= 10;
    s[0] = 80.0f;  // large logit: needs the max subtraction
    auto p = s;
    softmax_inplace(p.data(), n);
    double mx = -1e300, sum = 0;
    for (float v : s) mx = std::max(mx, double{v});
    for (float v : s) sum += std::exp(v - mx);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(p[i], std::exp(s[i] - mx) / sum, 1e-6) << n;
  }

  auto gate = randn(1003, g), up = randn(1003, g);
  gate[0] = 100.0f;
  gate[1] = -100.0f;
  gate[2] = -1000.0f;
  std::vector<float> out(gate.size());
  swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  for (size_t i = 0; i < gate.size(); ++i) {
    const double ref = gate[i] / (1 + std::exp(-double{gate[i]})) * up[i];
    EXPECT_NEAR(out[i], ref, 1e-6 * (1 + std::abs(ref))) << gate[i];
  }
  swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), gate.data());  // in place
  for (size_t i = 0; i < gate.size(); ++i) EXPECT_EQ(gate[i], out[i]);

  std::vector<float> e;
  for (float v = -87.0f; v <= 88.0f; v += 0.0137f) e.push_back(v);
  const auto args = e;
  exp_inplace(e.data(), static_cast<int64_t>(e.size()));
  for (size_t i = 0; i < e.size(); ++i) EXPECT_NEAR(e[i] / std::exp(double{args[i]}), 1.0, 4e-7) << args[i];
}

TEST(CpuKernels, ThreadCountIsSettable) {
  const int before = num_threads();
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  set_num_threads(before);
  EXPECT_EQ(num_threads(), before);
}
