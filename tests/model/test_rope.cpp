// RoPE: frequencies against the closed form (incl. Llama-3 scaling), the rotation against
// cos/sin by hand, and the relative-position property of rotated dot products.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "micromix/error.hpp"
#include "model/rope.hpp"

using namespace micromix;

TEST(Rope, InvFreqPlainIsThetaPower) {
  for (int d : {2, 16, 64, 128})
    for (double theta : {10000.0, 500000.0}) {
      const auto f = rope_inv_freq(d, theta, RopeScaling{});
      ASSERT_EQ(f.size(), static_cast<size_t>(d / 2));
      for (int i = 0; i < d / 2; ++i) EXPECT_NEAR(f[i], std::exp(-std::log(theta) * 2.0 * i / d), 1e-15);
    }
}

TEST(Rope, InvFreqLlama3BandsMatchClosedForm) {
  // Llama-3.1-8B's parameters: factor 8, low 1, high 4, original context 8192, theta 500000.
  RopeScaling s;
  s.type = "llama3";
  s.factor = 8.0f;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_max_position = 8192;
  const int d = 128;
  const auto f = rope_inv_freq(d, 500000.0, s);
  int high = 0, low = 0, mid = 0;
  for (int i = 0; i < d / 2; ++i) {
    const double base = std::pow(500000.0, -2.0 * i / d), wl = 2 * std::numbers::pi / base;
    double want;
    if (wl < 8192.0 / 4) {
      want = base, ++high;
    } else if (wl > 8192.0 / 1) {
      want = base / 8, ++low;
    } else {
      const double t = (8192.0 / wl - 1) / (4 - 1);  // 1 at the high edge, 0 at the low edge
      want = (1 - t) * base / 8 + t * base, ++mid;
    }
    EXPECT_NEAR(f[i] / want, 1.0, 1e-12) << "i " << i;
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(mid, 0);
  // Monotone: frequencies never increase with i.
  for (int i = 1; i < d / 2; ++i) EXPECT_LE(f[i], f[i - 1]);
}

TEST(Rope, BadParametersThrow) {
  EXPECT_THROW(rope_inv_freq(7, 10000.0, {}), Error);
  EXPECT_THROW(rope_inv_freq(0, 10000.0, {}), Error);
  EXPECT_THROW(rope_inv_freq(16, 1.0, {}), Error);
  RopeScaling s;
  s.type = "dynamic";
  EXPECT_THROW(rope_inv_freq(16, 10000.0, s), Error);
  s.type = "llama3";
  s.high_freq_factor = s.low_freq_factor;
  EXPECT_THROW(rope_inv_freq(16, 10000.0, s), Error);
}

TEST(Rope, RotationMatchesClosedFormAndKeepsRelativePosition) {
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd;
  const int64_t d = 32, heads = 3, n = 20, stride = heads * d + 5;  // padded rows
  const auto f = rope_inv_freq(static_cast<int>(d), 10000.0, {});
  const int64_t pos0 = 1000;
  std::vector<float> x(static_cast<size_t>(n * stride)), y;
  for (auto& v : x) v = nd(g);
  y = x;
  apply_rope(y.data(), n, heads, d, stride, rope_table(f, pos0, n));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < d / 2; ++i) {
        const double a = static_cast<double>(pos0 + t) * std::pow(10000.0, -2.0 * i / d);
        const double x0 = x[t * stride + h * d + i], x1 = x[t * stride + h * d + i + d / 2];
        EXPECT_NEAR(y[t * stride + h * d + i], x0 * std::cos(a) - x1 * std::sin(a), 2e-5);
        EXPECT_NEAR(y[t * stride + h * d + i + d / 2], x1 * std::cos(a) + x0 * std::sin(a), 2e-5);
      }
    for (int64_t j = heads * d; j < stride; ++j) EXPECT_EQ(y[t * stride + j], x[t * stride + j]) << "padding touched";
  }
  // <rope(q, m), rope(k, m + r)> depends only on r.
  std::vector<float> q(static_cast<size_t>(d)), k(q.size());
  for (auto& v : q) v = nd(g);
  for (auto& v : k) v = nd(g);
  auto rotated_dot = [&](int64_t m, int64_t r) {
    auto a = q, b = k;
    apply_rope(a.data(), 1, 1, d, d, rope_table(f, m, 1));
    apply_rope(b.data(), 1, 1, d, d, rope_table(f, m + r, 1));
    double s = 0;
    for (int64_t i = 0; i < d; ++i) s += double{a[i]} * b[i];
    return s;
  };
  for (int64_t r : {0, 1, 7, 100}) EXPECT_NEAR(rotated_dot(3, r), rotated_dot(517, r), 1e-4) << "r " << r;
}
