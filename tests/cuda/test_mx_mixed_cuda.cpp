// GPU mixed MX ops against the CPU: reorder + quantize bit for bit, and every GEMM kernel (the
// numbered mma.sync versions and the decode path) against a double-precision product of the
// dequantized operands. Skipped (with the reason) without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "formats/test_mx_mixed_util.hpp"
#include "micromix/bf16.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_mixed_matmul.hpp"

using namespace mxmixed_test;
namespace cuda = micromix::cuda;
using micromix::bf16_to_float;
using micromix::float_to_bf16;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::available()) GTEST_SKIP() << "GPU test skipped: " << cuda::describe()

namespace {

// bf16 activations with outliers, plus (when `special`) whole blocks of zeros, a NaN, an Inf and
// bf16 subnormals somewhere in the row.
std::vector<uint16_t> bf16_activations(int64_t M, int64_t K, bool special) {
  const auto x = llm_like(M, K);
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = float_to_bf16(x[i]);
  if (special && K >= 128) {
    std::uniform_int_distribution<int64_t> col(0, K - 1);
    for (int64_t i = 0; i < M; ++i) {
      uint16_t* r = h.data() + i * K;
      switch (i % 4) {
        case 0: r[col(rng())] = 0x7FC0; break;  // NaN
        case 1: r[col(rng())] = 0xFF80; break;  // -Inf
        case 2: for (int j = 0; j < 8; ++j) r[col(rng())] = static_cast<uint16_t>(1 + rng()() % 0x7F); break;  // subnormals
        default: for (int64_t j = 0; j < K; ++j) r[j] = j < K / 2 ? 0x8000 : r[j]; break;  // -0 / 0 half row
      }
    }
  }
  return h;
}

struct GemmCase {
  int64_t M, N, K;
  MixedSplit split;
};

GemmCase random_case(int64_t max_m) {
  GemmCase c;
  c.M = std::uniform_int_distribution<int64_t>(1, max_m)(rng());
  c.N = 16 * std::uniform_int_distribution<int64_t>(1, 24)(rng());
  c.K = 32 * std::uniform_int_distribution<int64_t>(1, 48)(rng());
  c.split = random_split(c.K);
  return c;
}

// Runs kernel on a case; checks the f32 output against the double product (relative Frobenius
// <= 1e-5: products are exact, FP32 sums differ from any order by ~sqrt(K) 2^-24) and the bf16
// output elementwise (round to nearest of a value within that error: |y - ref| <= 2^-8 |ref| +
// 1e-5 max|ref|).
void check_gemm(const GemmCase& c, int kernel) {
  const auto perm = random_permutation(c.K);
  const auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
  const auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
  const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
  const std::string what = "kernel " + std::to_string(kernel) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
                           " K=" + std::to_string(c.K) + " split " + std::to_string(c.split.n4) + "/" +
                           std::to_string(c.split.n6) + "/" + std::to_string(c.split.n8) +
                           (c.split.fp6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2");
  const auto y32 = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
  const double err = rel_frobenius(y32, ref);
  EXPECT_LE(err, 1e-5) << what;
  const auto y16 = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::bf16, kernel);
  double amax = 0;
  for (double v : ref) amax = std::max(amax, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < ref.size() && bad < 5; ++i)
    if (!(std::fabs(y16[i] - ref[i]) <= std::ldexp(std::fabs(ref[i]), -8) + 1e-5 * amax)) {
      ++bad;
      ADD_FAILURE() << what << ": bf16 output " << i << " = " << y16[i] << ", reference " << ref[i];
    }
}

}  // namespace

TEST(CudaMxReorderQuantize, BitIdenticalToCpuQuantizer) {
  SKIP_WITHOUT_GPU();
  for (int trial = 0; trial < 24; ++trial) {
    const int64_t M = trial < 4 ? 1 + trial : std::uniform_int_distribution<int64_t>(1, 70)(rng());
    const int64_t K = trial == 5 ? 14336 : 32 * std::uniform_int_distribution<int64_t>(1, 160)(rng());
    const MixedSplit s = random_split(K);
    const auto rule = trial % 2 ? ScaleRule::ceil : ScaleRule::ocp;
    const auto rnd = trial % 3 == 2 ? Rounding::away : Rounding::even;
    const auto perm = random_permutation(K);
    const auto xh = bf16_activations(M, K, trial % 2 == 0);
    std::vector<float> xf(xh.size());
    for (size_t i = 0; i < xh.size(); ++i) xf[i] = bf16_to_float(xh[i]);
    const auto cpu = quantize_mixed(xf, M, K, perm, s, rule, rnd);
    const auto gpu = cuda::mx_reorder_quantize_host(xh, M, K, perm, s, rule, rnd);
    for (int seg = 0; seg < kSegments; ++seg) {
      ASSERT_EQ(gpu.seg[seg].codes, cpu.seg[seg].codes)
          << "codes of segment " << seg << " M=" << M << " K=" << K << " split " << s.n4 << "/" << s.n6 << "/" << s.n8;
      ASSERT_EQ(gpu.seg[seg].scales, cpu.seg[seg].scales) << "scales of segment " << seg << " M=" << M << " K=" << K;
    }
  }
}

TEST(CudaMxMixedGemm, EveryVersionMatchesTheDoubleProduct) {
  SKIP_WITHOUT_GPU();
  for (int v = 1; v <= cuda::mx_mixed_gemm_versions(); ++v)
    for (int trial = 0; trial < 8; ++trial) check_gemm(random_case(trial < 4 ? 300 : 20), v);
}

TEST(CudaMxMixedGemm, DefaultDispatchAndDecodePathMatchTheDoubleProduct) {
  SKIP_WITHOUT_GPU();
  for (int kernel : {-1, -2, -3, -4})
    for (int trial = 0; trial < 8; ++trial) check_gemm(random_case(trial < 5 ? 16 : 40), kernel);
  for (int trial = 0; trial < 6; ++trial) check_gemm(random_case(trial < 3 ? 16 : 600), 0);
}

TEST(CudaMxMixedGemm, SingleSegmentsOddShapesAndLargeK) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 4096;
  for (int only = 0; only < 3; ++only) {
    GemmCase c{only == 0 ? 1 : only == 1 ? 7 : 129, 48, K, MixedSplit{only == 0 ? K : 0, only == 1 ? K : 0, only == 2 ? K : 0}};
    for (int kernel : {-2, -3, -4, 1, 2, 3, 4, 5}) check_gemm(c, kernel);
  }
  // Llama down-projection K with the 70/20/10 mix.
  const GemmCase down{5, 64, 14336, MixedSplit{10016, 2880, 1440}};
  for (int kernel : {-2, -3, -4, 0}) check_gemm(down, kernel);
}

TEST(CudaMxMixedGemm, EmptyKWritesZeros) {
  SKIP_WITHOUT_GPU();
  const auto xq = quantize_mixed({}, 3, 0, {}, MixedSplit{});
  const auto wq = quantize_mixed({}, 16, 0, {}, MixedSplit{});
  for (int kernel : {-2, -3, -4, 0, 1, 2, 3, 4, 5}) {
    const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
    for (float v : y) ASSERT_EQ(v, 0.0f) << "kernel " << kernel;
  }
}

TEST(CudaMxMixedGemm, NaNScalesPropagate) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 96;
  const auto perm = random_permutation(K);
  auto x = llm_like(2, K);
  x[5] = std::numeric_limits<float>::quiet_NaN();  // row 0 gets a NaN-scaled block
  const auto xq = quantize_mixed(x, 2, K, perm, MixedSplit{32, 32, 32});
  const auto wq = quantize_mixed(llm_like(16, K), 16, K, perm, MixedSplit{32, 32, 32});
  for (int kernel : {-2, -3, -4, 1, 3, 5}) {
    const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
    for (int n = 0; n < 16; ++n) {
      EXPECT_TRUE(std::isnan(y[static_cast<size_t>(n)])) << "kernel " << kernel << " col " << n;
      EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(16 + n)])) << "kernel " << kernel << " col " << n;
    }
  }
}

TEST(CudaMxMixedGemm, RejectsBadShapes) {
  SKIP_WITHOUT_GPU();
  const auto perm = random_permutation(64);
  const auto xq = quantize_mixed(llm_like(2, 64), 2, 64, perm, MixedSplit{32, 0, 32});
  const auto w_odd = quantize_mixed(llm_like(24, 64), 24, 64, perm, MixedSplit{32, 0, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w_odd, cuda::OutType::f32, 1), micromix::Error);  // N % 16 != 0
  const auto w_split = quantize_mixed(llm_like(16, 64), 16, 64, perm, MixedSplit{0, 32, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w_split, cuda::OutType::f32, 1), micromix::Error);
  const auto w = quantize_mixed(llm_like(16, 64), 16, 64, perm, MixedSplit{32, 0, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w, cuda::OutType::f32, 9), micromix::Error);  // no such version
}
