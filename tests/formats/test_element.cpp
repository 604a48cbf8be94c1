// Exhaustive checks of every element code of every MX format against the definition.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "formats/mx_reference.hpp"
#include "micromix/mx.hpp"

using namespace micromix::mx;

class ElementFormat : public ::testing::TestWithParam<ElemFormat> {};

TEST_P(ElementFormat, EveryCodeDecodesToItsDefinedValue) {
  const ElemFormat f = GetParam();
  const int n = 1 << info(f).bits;
  for (int c = 0; c < n; ++c) {
    const double want = mxref::decode(f, static_cast<unsigned>(c));
    const float got = decode(f, static_cast<uint8_t>(c));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << info(f).name << " code " << c;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << info(f).name << " code " << c;
      EXPECT_EQ(std::signbit(got), std::signbit(want)) << info(f).name << " code " << c;
    }
  }
}

TEST_P(ElementFormat, EveryFiniteCodeEncodesBackToItself) {
  const ElemFormat f = GetParam();
  const int n = 1 << info(f).bits;
  for (int c = 0; c < n; ++c) {
    const float v = decode(f, static_cast<uint8_t>(c));
    if (std::isnan(v)) continue;
    if (std::isinf(v)) {  // E5M2 Inf saturates to max normal (MX conversion saturates)
      EXPECT_EQ(decode(f, encode(f, v)), std::copysign(info(f).max_normal, v));
      continue;
    }
    for (Rounding r : {Rounding::even, Rounding::away}) {
      // int8 has no -0: code 0x80 is -2, outside the symmetric quantization range.
      if (f == ElemFormat::int8 && c == 0x80) {
        EXPECT_EQ(encode(f, v, r), 0x81);
        continue;
      }
      EXPECT_EQ(encode(f, v, r), c) << info(f).name << " code " << c << " value " << v;
    }
  }
}

TEST_P(ElementFormat, InfoMatchesTheDefinition) {
  const ElemFormat f = GetParam();
  const auto g = mxref::grid(f);
  EXPECT_EQ(static_cast<double>(info(f).max_normal), g.back().v);
  EXPECT_EQ(static_cast<double>(info(f).min_subnormal), g[1].v);
  EXPECT_EQ(info(f).max_code, g.back().code);
  EXPECT_EQ(parse_format(info(f).name), f);
}

TEST_P(ElementFormat, MidpointsAndNeighboursRoundLikeTheReference) {
  const ElemFormat f = GetParam();
  const auto g = mxref::grid(f);
  for (size_t i = 0; i + 1 < g.size(); ++i) {
    const double mid = (g[i].v + g[i + 1].v) / 2;  // exact in float for these grids
    const float m = static_cast<float>(mid);
    ASSERT_EQ(static_cast<double>(m), mid);
    for (float v : {m, std::nextafter(m, 0.0f), std::nextafter(m, 100000.0f), -m, static_cast<float>(g[i].v)})
      for (Rounding r : {Rounding::even, Rounding::away}) {
        const unsigned want = mxref::with_sign(f, mxref::round_magnitude(g, std::fabs(v), r), std::signbit(v));
        EXPECT_EQ(encode(f, v, r), want) << info(f).name << " v=" << v << " rounding " << name(r);
      }
  }
}

TEST_P(ElementFormat, SaturatesAndHandlesSpecials) {
  const ElemFormat f = GetParam();
  const float big = info(f).max_normal * 1.5f;
  EXPECT_EQ(decode(f, encode(f, big)), info(f).max_normal);
  EXPECT_EQ(decode(f, encode(f, -big)), -info(f).max_normal);
  EXPECT_EQ(decode(f, encode(f, INFINITY)), info(f).max_normal);
  EXPECT_EQ(decode(f, encode(f, 1e-30f)), 0.0f);
  if (info(f).has_nan) {
    EXPECT_TRUE(std::isnan(decode(f, encode(f, NAN))));
  }
  if (f != ElemFormat::int8) {
    EXPECT_TRUE(std::signbit(decode(f, encode(f, -1e-30f))));
  }
}

INSTANTIATE_TEST_SUITE_P(All, ElementFormat, ::testing::ValuesIn(kAllFormats),
                         [](const auto& p) { return std::string(micromix::mx::info(p.param).name); });

TEST(E8M0, ScaleValues) {
  for (int c = 0; c < 255; ++c) EXPECT_EQ(scale_value(static_cast<uint8_t>(c)), std::ldexp(1.0f, c - 127));
  EXPECT_TRUE(std::isnan(scale_value(0xFF)));
}

TEST(E8M0, OcpScaleUsesExponentBitsNotLog2) {
  // A hair under a power of two: float32 log2 rounds up to the power; the exponent bits do not.
  const float just_under_8 = std::nextafter(8.0f, 0.0f);
  EXPECT_EQ(block_scale(ElemFormat::fp4_e2m1, ScaleRule::ocp, just_under_8), 127 + 2 - 2);
  EXPECT_EQ(block_scale(ElemFormat::fp4_e2m1, ScaleRule::ocp, 8.0f), 127 + 3 - 2);
  // Subnormal amax: floor(log2(2^-140)) = -140, clamped to -127.
  EXPECT_EQ(block_scale(ElemFormat::fp8_e4m3, ScaleRule::ocp, std::ldexp(1.0f, -140)), 0);
  EXPECT_EQ(block_scale(ElemFormat::fp8_e4m3, ScaleRule::ocp, std::numeric_limits<float>::max()), 127 + 127 - 8);
  EXPECT_EQ(block_scale(ElemFormat::int8, ScaleRule::ocp, std::numeric_limits<float>::max()), 254);
}

TEST(E8M0, CeilScaleNeverClips) {
  // amax = 6 * 2^k exactly -> scale 2^k; a hair above -> 2^(k+1).
  EXPECT_EQ(block_scale(ElemFormat::fp4_e2m1, ScaleRule::ceil, 6.0f), 127);
  EXPECT_EQ(block_scale(ElemFormat::fp4_e2m1, ScaleRule::ceil, std::nextafter(6.0f, 7.0f)), 128);
  EXPECT_EQ(block_scale(ElemFormat::fp8_e4m3, ScaleRule::ceil, 448.0f * 0.25f), 125);
  EXPECT_EQ(block_scale(ElemFormat::fp6_e3m2, ScaleRule::ceil, 28.0f * 1024.0f), 137);
}
