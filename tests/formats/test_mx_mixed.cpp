// Mixed FP4 | FP6 | FP8 MX matrices and the CPU reference matmul, against independent checks:
// exact round trips of on-grid data through the permutation, and a double-precision product.
#include <gtest/gtest.h>

#include <cmath>

#include "formats/test_mx_mixed_util.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_mixed_matmul.hpp"

using namespace mxmixed_test;
using micromix::Error;

namespace {

// Data exactly on the MX grid: in permuted order each block is random codes of its segment's
// format times 2^S, with one element pinned to +-max_normal so the OCP scale is exactly 2^S.
std::vector<float> on_grid(int64_t rows, const MixedSplit& s, const std::vector<int32_t>& perm) {
  const int64_t cols = s.cols();
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int seg = 0; seg < kSegments; ++seg) {
      const ElemFormat f = s.format(seg);
      const auto grid = mxref::grid(f);
      for (int64_t b = 0; b < s.count(seg) / kBlock; ++b) {
        const int S = std::uniform_int_distribution<int>(-20, 20)(rng());
        const int pin = static_cast<int>(rng()() % kBlock);
        for (int e = 0; e < kBlock; ++e) {
          const double mag = e == pin ? grid.back().v : grid[rng()() % grid.size()].v;
          const float v = static_cast<float>(std::ldexp(rng()() & 1 ? -mag : mag, S));
          const int64_t j = s.offset(seg) + b * kBlock + e;  // permuted column
          x[static_cast<size_t>(i * cols + perm[static_cast<size_t>(j)])] = v;
        }
      }
    }
  return x;
}

}  // namespace

TEST(MxMixed, OnGridDataRoundTripsExactlyThroughThePermutation) {
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t cols = 32 * std::uniform_int_distribution<int64_t>(1, 24)(rng());
    const int64_t rows = std::uniform_int_distribution<int64_t>(1, 9)(rng());
    const MixedSplit s = random_split(cols);
    const auto perm = random_permutation(cols);
    const auto x = on_grid(rows, s, perm);
    const auto m = quantize_mixed(x, rows, cols, perm, s);
    std::vector<float> back(x.size());
    dequantize_mixed(m, back);
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(back[i], x[i]) << "element " << i << " trial " << trial;
    // The permuted view puts original column perm[j] at j.
    std::vector<float> p(x.size());
    dequantize_mixed_permuted(m, p);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        ASSERT_EQ(p[static_cast<size_t>(i * cols + j)], x[static_cast<size_t>(i * cols + perm[static_cast<size_t>(j)])]);
  }
}

TEST(MxMixed, SegmentsEqualPlainQuantizationOfThePermutedRows) {
  const int64_t rows = 5, cols = 256;
  const MixedSplit s{64, 96, 96, ElemFormat::fp6_e2m3};
  const auto perm = random_permutation(cols);
  const auto x = llm_like(rows, cols);
  const auto m = quantize_mixed(x, rows, cols, perm, s, ScaleRule::ceil, Rounding::away);
  for (int seg = 0; seg < kSegments; ++seg) {
    std::vector<float> sub(static_cast<size_t>(rows * s.count(seg)));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < s.count(seg); ++j)
        sub[static_cast<size_t>(i * s.count(seg) + j)] =
            x[static_cast<size_t>(i * cols + perm[static_cast<size_t>(s.offset(seg) + j)])];
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t b = 0; b < s.count(seg) / kBlock; ++b) {
        const auto ref = mxref::quantize_block(s.format(seg), ScaleRule::ceil, Rounding::away,
                                               sub.data() + i * s.count(seg) + b * kBlock);
        const MxMatrix& g = m.seg[seg];
        ASSERT_EQ(g.scales[static_cast<size_t>(i * g.blocks_per_row() + b)], ref.scale);
        for (int e = 0; e < kBlock; ++e)
          ASSERT_EQ(unpack_code(info(g.format).bits, g.codes.data() + i * g.row_bytes(), b * kBlock + e), ref.codes[e])
              << "segment " << seg << " row " << i << " block " << b << " element " << e;
      }
  }
}

TEST(MxMixedMatmulRef, MatchesDoublePrecisionProductOfDequantizedOperands) {
  for (int trial = 0; trial < 12; ++trial) {
    const int64_t K = 32 * std::uniform_int_distribution<int64_t>(1, 40)(rng());
    const int64_t M = std::uniform_int_distribution<int64_t>(1, 17)(rng());  // odd M included
    const int64_t N = std::uniform_int_distribution<int64_t>(1, 40)(rng());
    MixedSplit s = random_split(K);
    if (trial < 3) s = MixedSplit{trial == 0 ? K : 0, trial == 1 ? K : 0, trial == 2 ? K : 0};  // one segment only
    const auto perm = random_permutation(K);
    const auto xq = quantize_mixed(llm_like(M, K), M, K, perm, s);
    const auto wq = quantize_mixed(llm_like(N, K), N, K, perm, s);
    std::vector<float> y(static_cast<size_t>(M * N));
    mx_mixed_matmul_ref(xq, wq, y);
    const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), M, N, K);
    // FP32 sums of exact products: reassociation error ~ sqrt(K) * 2^-24 relative, far under 1e-5.
    EXPECT_LE(rel_frobenius(y, ref), 1e-5) << M << "x" << N << "x" << K << " split " << s.n4 << "/" << s.n6 << "/" << s.n8;
  }
}

TEST(MxMixedMatmulRef, EmptyShapesGiveEmptyOrZeroOutputs) {
  const MixedSplit s{32, 0, 32};
  const auto perm = random_permutation(64);
  const auto x0 = quantize_mixed({}, 0, 64, perm, s);
  const auto w = quantize_mixed(llm_like(3, 64), 3, 64, perm, s);
  std::vector<float> y0;
  EXPECT_NO_THROW(mx_mixed_matmul_ref(x0, w, y0));
  const auto xe = quantize_mixed({}, 2, 0, {}, MixedSplit{});
  const auto we = quantize_mixed({}, 3, 0, {}, MixedSplit{});
  std::vector<float> y(6, 1.0f);
  mx_mixed_matmul_ref(xe, we, y);
  for (float v : y) EXPECT_EQ(v, 0.0f);  // K = 0: empty sums
}

TEST(MxMixed, RejectsBadPermutationsAndSplits) {
  const auto x = llm_like(2, 64);
  const MixedSplit s{32, 0, 32};
  auto perm = identity_permutation(64);
  perm[5] = 7;  // 7 twice, 5 missing
  EXPECT_THROW(quantize_mixed(x, 2, 64, perm, s), Error);
  perm[5] = 64;  // out of range
  EXPECT_THROW(quantize_mixed(x, 2, 64, perm, s), Error);
  perm[5] = -1;
  EXPECT_THROW(quantize_mixed(x, 2, 64, perm, s), Error);
  EXPECT_THROW(quantize_mixed(x, 2, 64, identity_permutation(63), s), Error);  // wrong length
  EXPECT_THROW(quantize_mixed(x, 2, 64, identity_permutation(64), MixedSplit{16, 16, 32}), Error);
  EXPECT_THROW(quantize_mixed(x, 2, 64, identity_permutation(64), MixedSplit{32, 32, 32}), Error);
  EXPECT_THROW(quantize_mixed(x, 2, 64, identity_permutation(64), MixedSplit{-32, 64, 32}), Error);
  EXPECT_THROW(quantize_mixed(x, 2, 64, identity_permutation(64), MixedSplit{32, 32, 0, ElemFormat::fp8_e4m3}),
               Error);
  EXPECT_THROW(quantize_mixed(x, 3, 64, identity_permutation(64), s), Error);  // too few values
  try {
    validate_permutation(std::vector<int32_t>{0, 2, 2}, 3);
    FAIL() << "duplicate accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("appears twice"), std::string::npos) << e.what();
  }
}

TEST(MxMixedMatmulRef, RejectsMismatchedOperands) {
  const auto p = identity_permutation(64);
  const auto x = quantize_mixed(llm_like(2, 64), 2, 64, p, MixedSplit{32, 0, 32});
  const auto w_split = quantize_mixed(llm_like(3, 64), 3, 64, p, MixedSplit{0, 32, 32});
  const auto w_perm = quantize_mixed(llm_like(3, 64), 3, 64, random_permutation(64), MixedSplit{32, 0, 32});
  std::vector<float> y(6);
  EXPECT_THROW(mx_mixed_matmul_ref(x, w_split, y), Error);
  if (w_perm.perm != p) {
    EXPECT_THROW(mx_mixed_matmul_ref(x, w_perm, y), Error);
  }
  const auto w = quantize_mixed(llm_like(3, 64), 3, 64, p, MixedSplit{32, 0, 32});
  std::vector<float> y_bad(5);
  EXPECT_THROW(mx_mixed_matmul_ref(x, w, y_bad), Error);
  auto broken = w;
  broken.seg[0].codes.pop_back();
  EXPECT_THROW(mx_mixed_matmul_ref(x, broken, y), Error);
}

TEST(MxMixed, AverageBits) {
  EXPECT_DOUBLE_EQ((MixedSplit{64, 0, 0}).average_bits(), 4.25);
  EXPECT_DOUBLE_EQ((MixedSplit{32, 32, 64}).average_bits(), (4.25 + 6.25 + 2 * 8.25) / 4);
}
