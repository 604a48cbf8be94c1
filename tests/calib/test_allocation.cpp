// Calibration statistics and allocation on synthetic activations with planted outlier channels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <numeric>
#include <set>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"

using namespace micromix::calib;

TEST(Allocation, PlantedOutlierChannelsGoToMxfp8) {
  std::mt19937 g(std::random_device{}());
  const int64_t k = 512, tokens = 64;
  // 32 outlier channels with magnitudes ~100x the rest, 64 mid channels at ~8x.
  std::vector<int64_t> ch(static_cast<size_t>(k));
  std::iota(ch.begin(), ch.end(), 0);
  std::shuffle(ch.begin(), ch.end(), g);
  const std::set<int64_t> outliers(ch.begin(), ch.begin() + 32), mids(ch.begin() + 32, ch.begin() + 96);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  InputStats st(k);
  for (int s = 0; s < 3; ++s) {
    std::vector<float> x(static_cast<size_t>(tokens * k));
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < k; ++c) {
        float v = nd(g) * 0.01f;
        if (outliers.count(c)) v = (50.0f + std::fabs(nd(g))) * (g() & 1 ? 1.0f : -1.0f);
        if (mids.count(c)) v = 1.0f + std::fabs(nd(g)) * 0.2f;
        x[static_cast<size_t>(t * k + c)] = v;
      }
    st.add_tokens(x.data(), tokens);
    st.end_sample();
  }
  // Quiet channels (|v| ~ 0.01) may fall on either side of T4, so only what the plant guarantees is
  // checked: outliers (>= 50) exceed T6 (~0.036 rowmax) in every token, so p8 covers them.
  EXPECT_GE(st.p8() * static_cast<double>(k), 32.0 - 1e-9);
  EXPECT_NEAR(st.p4() + st.p6() + st.p8(), 1.0, 1e-12);
  const auto counts = paper_counts(k, st.p6(), st.p8(), 32);
  EXPECT_EQ(counts.total(), k);
  const auto perm = rank_channels(st.max_mean_abs());
  check_permutation(perm, k);
  // The last 32 positions of the ranking are exactly the outlier channels.
  std::set<int64_t> top(perm.end() - 32, perm.end());
  EXPECT_EQ(top, outliers);
  // With n8 == 32 (when p8 rounds to one segment) MXFP8 holds exactly those channels.
  const auto c32 = paper_counts(k, 64.0 / k, 32.0 / k, 32);
  EXPECT_EQ(c32.n8, 32);
  EXPECT_EQ(c32.n6, 64);
  std::set<int64_t> seg8(perm.end() - c32.n8, perm.end()), seg6(perm.end() - c32.n8 - c32.n6, perm.end() - c32.n8);
  EXPECT_EQ(seg8, outliers);
  EXPECT_EQ(seg6, mids);
}

TEST(Allocation, CountsObeyGranularityAndSumToK) {
  std::mt19937 g(std::random_device{}());
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int it = 0; it < 2000; ++it) {
    const int64_t gran = (g() & 1) ? 128 : 32;
    const int64_t k = gran * (1 + static_cast<int64_t>(g() % 64));
    double p8 = u(g) * u(g), p6 = u(g) * (1 - p8);
    const auto c = paper_counts(k, p6, p8, gran);
    ASSERT_EQ(c.total(), k);
    ASSERT_EQ(c.n4 % gran, 0);
    ASSERT_EQ(c.n6 % gran, 0);
    ASSERT_EQ(c.n8 % gran, 0);
    ASSERT_GE(c.n4, 0);
    // Rounded up: at least the requested share, less than one segment more (unless clipped by K).
    ASSERT_GE(static_cast<double>(c.n8), k * p8 - 1e-6);
    ASSERT_LT(static_cast<double>(c.n8), k * p8 + gran);
    ASSERT_GE(c.bits(), 4.25 - 1e-12);
    ASSERT_LE(c.bits(), 8.25 + 1e-12);
  }
  EXPECT_THROW(paper_counts(100, 0.1, 0.1, 32), micromix::Error);
  EXPECT_THROW(paper_counts(128, 0.1, 0.1, 48), micromix::Error);
}

TEST(Allocation, StatsMatchNaiveComputation) {
  std::mt19937 g(std::random_device{}());
  std::cauchy_distribution<float> cd(0.0f, 1.0f);
  const int64_t k = 96;
  InputStats st(k);
  std::vector<double> want_max(k, 0.0);
  uint64_t n = 0, b4 = 0, b6 = 0;
  for (int s = 0; s < 4; ++s) {
    const int64_t tokens = 1 + static_cast<int64_t>(g() % 20);
    std::vector<float> x(static_cast<size_t>(tokens * k));
    for (auto& v : x) v = cd(g);
    // Feed in two chunks to check that a sample may arrive in pieces.
    st.add_tokens(x.data(), tokens / 2);
    st.add_tokens(x.data() + (tokens / 2) * k, tokens - tokens / 2);
    st.end_sample();
    for (int64_t c = 0; c < k; ++c) {
      double sum = 0;
      for (int64_t t = 0; t < tokens; ++t) sum += std::fabs(x[static_cast<size_t>(t * k + c)]);
      want_max[c] = std::max(want_max[c], sum / tokens);
    }
    for (int64_t t = 0; t < tokens; ++t) {
      double rowmax = 0;
      for (int64_t c = 0; c < k; ++c) rowmax = std::max(rowmax, std::fabs(static_cast<double>(x[t * k + c])));
      for (int64_t c = 0; c < k; ++c) {
        const double a = std::fabs(static_cast<double>(x[t * k + c]));
        b4 += a < rowmax * 0.010498687664041995;  // 2*(8/6)/254
        b6 += a < rowmax * 0.03599550056242970;   // 8*(32/28)/254
        ++n;
      }
    }
  }
  for (int64_t c = 0; c < k; ++c) EXPECT_NEAR(st.max_mean_abs()[c], want_max[c], 1e-9 * (1 + want_max[c]));
  EXPECT_EQ(st.elements(), n);
  EXPECT_DOUBLE_EQ(st.p4(), static_cast<double>(b4) / n);
  EXPECT_DOUBLE_EQ(st.p8(), static_cast<double>(n - b6) / n);
}

TEST(Allocation, PermutationChecks) {
  EXPECT_NO_THROW(check_permutation(std::vector<int32_t>{2, 0, 1}, 3));
  EXPECT_THROW(check_permutation(std::vector<int32_t>{2, 0, 0}, 3), micromix::Error);
  EXPECT_THROW(check_permutation(std::vector<int32_t>{0, 1, 3}, 3), micromix::Error);
  EXPECT_THROW(check_permutation(std::vector<int32_t>{0, 1}, 3), micromix::Error);
}
