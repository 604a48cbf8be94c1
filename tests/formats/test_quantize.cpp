// Block quantization against the independent double reference on random and adversarial inputs,
// for both scale rules, both roundings, and every kernel (scalar and SIMD).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "formats/mx_reference.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"

using namespace micromix::mx;

namespace {

std::mt19937& rng() {
  static std::mt19937 g(std::random_device{}());
  return g;
}

// Blocks of 32 of many kinds, each kind chosen to stress one rule.
std::vector<float> adversarial_blocks(ElemFormat f, int blocks_per_kind) {
  std::vector<float> x;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::cauchy_distribution<float> cauchy(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 31), exp_pick(-140, 127);
  const auto g = mxref::grid(f);
  std::uniform_int_distribution<size_t> grid_pick(0, g.size() - 2);
  for (int kind = 0; kind < 10; ++kind)
    for (int b = 0; b < blocks_per_kind; ++b) {
      float blk[32];
      const float scale = std::ldexp(1.0f, std::uniform_int_distribution<int>(-20, 20)(rng()));
      for (float& v : blk) v = normal(rng()) * scale;
      switch (kind) {
        case 0: break;  // gaussian
        case 1:
          for (float& v : blk) v = cauchy(rng());  // heavy tails
          break;
        case 2: blk[pick(rng())] *= 1000.0f; break;  // one outlier
        case 3: {  // exact ties on the element grid at a random power-of-two scale
          const int e = std::uniform_int_distribution<int>(-30, 30)(rng());
          for (float& v : blk) {
            const size_t i = grid_pick(rng());
            const float mid = static_cast<float>((g[i].v + g[i + 1].v) / 2);
            v = std::ldexp(mid, e) * (rng()() & 1 ? -1.0f : 1.0f);
          }
          blk[0] = std::ldexp(static_cast<float>(g.back().v), e);  // pin the block max to the grid max
          break;
        }
        case 4:  // a hair under a power of two (float log2 would round it up)
          for (float& v : blk) v = std::nextafter(std::ldexp(1.0f, std::uniform_int_distribution<int>(-10, 10)(rng())), 0.0f);
          break;
        case 5:  // float32 subnormals and tiny normals
          for (float& v : blk)
            v = std::bit_cast<float>(std::uniform_int_distribution<uint32_t>(1, 0x00ffffff)(rng())) *
                (rng()() & 1 ? -1.0f : 1.0f);
          break;
        case 6:  // huge values, near FLT_MAX
          for (float& v : blk) v = std::numeric_limits<float>::max() * std::uniform_real_distribution<float>(-1, 1)(rng());
          break;
        case 7:  // all zero, with signed zeros
          for (int i = 0; i < 32; ++i) blk[i] = i % 3 == 0 ? -0.0f : 0.0f;
          break;
        case 8:  // values spread over the whole float range
          for (float& v : blk) v = std::ldexp(normal(rng()), exp_pick(rng()));
          break;
        case 9:  // NaN or Inf in the block
          blk[pick(rng())] = (rng()() & 1) ? std::numeric_limits<float>::quiet_NaN()
                                           : std::numeric_limits<float>::infinity() * (rng()() & 1 ? -1.0f : 1.0f);
          break;
      }
      x.insert(x.end(), blk, blk + 32);
    }
  return x;
}

struct Case {
  ElemFormat f;
  ScaleRule rule;
  Rounding r;
};

std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  return std::string(info(p.param.f).name) + "_" + std::string(name(p.param.rule)) + "_" +
         std::string(name(p.param.r));
}

std::vector<Case> all_cases() {
  std::vector<Case> c;
  for (ElemFormat f : kAllFormats)
    for (ScaleRule rule : {ScaleRule::ocp, ScaleRule::ceil})
      for (Rounding r : {Rounding::even, Rounding::away}) c.push_back({f, rule, r});
  return c;
}

class Quantize : public ::testing::TestWithParam<Case> {};

}  // namespace

TEST_P(Quantize, MatchesDoubleReferenceOnAdversarialBlocks) {
  const auto [f, rule, r] = GetParam();
  const std::vector<float> x = adversarial_blocks(f, 40);
  const size_t n = x.size();
  std::vector<uint8_t> codes(n, 0xAA), scales(n / 32, 0xAA);
  quantize(f, rule, r, x, codes, scales);
  // Packed kernels: scalar and dispatched (SIMD where available) must agree bit for bit.
  const size_t pb = packed_row_bytes(f, static_cast<int64_t>(n));
  std::vector<uint8_t> packed_scalar(pb, 0xCD), packed_fast(pb, 0xEF), s_scalar(n / 32, 1), s_fast(n / 32, 2);
  quantize_row_scalar(f, rule, r, x.data(), static_cast<int64_t>(n), packed_scalar.data(), s_scalar.data());
  quantize_row(f, rule, r, x.data(), static_cast<int64_t>(n), packed_fast.data(), s_fast.data());
  std::vector<uint8_t> packed_ref(pb);
  pack_codes(f, codes, packed_ref);
  EXPECT_EQ(packed_scalar, packed_ref);
  EXPECT_EQ(packed_fast, packed_ref);
  EXPECT_EQ(s_scalar, scales);
  EXPECT_EQ(s_fast, scales);

  int mismatches = 0;
  for (size_t b = 0; b < n / 32 && mismatches < 10; ++b) {
    const auto want = mxref::quantize_block(f, rule, r, x.data() + b * 32);
    if (want.scale != scales[b]) {
      ADD_FAILURE() << "block " << b << " scale " << int(scales[b]) << " want " << int(want.scale);
      ++mismatches;
      continue;
    }
    if (want.scale == kScaleNaN) continue;  // element codes of a NaN block carry no meaning
    for (int i = 0; i < 32; ++i)
      if (want.codes[i] != codes[b * 32 + i]) {
        ADD_FAILURE() << "block " << b << " elem " << i << " x=" << x[b * 32 + i] << " code "
                      << int(codes[b * 32 + i]) << " want " << int(want.codes[i]);
        ++mismatches;
      }
  }
}

TEST_P(Quantize, DequantizeIsCodeTimesScale) {
  const auto [f, rule, r] = GetParam();
  const std::vector<float> x = adversarial_blocks(f, 8);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> packed(packed_row_bytes(f, n)), scales(static_cast<size_t>(n / 32));
  quantize_row(f, rule, r, x.data(), n, packed.data(), scales.data());
  std::vector<float> fast(x.size(), -7.0f), slow(x.size(), -9.0f);
  dequantize_row(f, packed.data(), scales.data(), n, fast.data());
  dequantize_row_scalar(f, packed.data(), scales.data(), n, slow.data());
  std::vector<uint8_t> codes(x.size());
  unpack_codes(f, packed, codes);
  for (int64_t i = 0; i < n; ++i) {
    const double want = mxref::decode(f, codes[i]) * std::pow(2.0, scales[i / 32] - 127);
    if (scales[i / 32] == kScaleNaN) {
      EXPECT_TRUE(std::isnan(fast[i]) && std::isnan(slow[i])) << i;
      continue;
    }
    EXPECT_EQ(static_cast<double>(fast[i]), want) << i;
    EXPECT_EQ(static_cast<double>(slow[i]), want) << i;
    // Quantization keeps the sign of every value that does not round to zero.
    if (x[i] != 0 && fast[i] != 0) {
      EXPECT_EQ(std::signbit(x[i]), std::signbit(fast[i])) << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, Quantize, ::testing::ValuesIn(all_cases()), case_name);

TEST(QuantizeShapes, RejectsLengthsNotMultipleOf32) {
  std::vector<float> x(33, 1.0f);
  std::vector<uint8_t> codes(33), scales(2);
  EXPECT_THROW(quantize(ElemFormat::fp4_e2m1, ScaleRule::ocp, Rounding::even, x, codes, scales),
               micromix::Error);
  EXPECT_THROW(quantize_matrix(ElemFormat::fp4_e2m1, ScaleRule::ocp, Rounding::even, x, 1, 33), micromix::Error);
  EXPECT_THROW(quantize_matrix(ElemFormat::fp4_e2m1, ScaleRule::ocp, Rounding::even, x, 2, 32), micromix::Error);
}

TEST(QuantizeShapes, OcpClipsTheBlockMaxCeilDoesNot) {
  // E2M1 block max 7 * 2^k: ocp scale 2^(2-2+k) -> 7/1 -> saturates to 6; ceil -> scale 2^1, 3.5 -> 4 (tie, even).
  std::vector<float> x(32, 0.0f);
  x[0] = 7.0f;
  std::vector<uint8_t> codes(32), scales(1);
  std::vector<float> y(32);
  quantize(ElemFormat::fp4_e2m1, ScaleRule::ocp, Rounding::even, x, codes, scales);
  dequantize(ElemFormat::fp4_e2m1, codes, scales, y);
  EXPECT_EQ(y[0], 6.0f);
  quantize(ElemFormat::fp4_e2m1, ScaleRule::ceil, Rounding::even, x, codes, scales);
  dequantize(ElemFormat::fp4_e2m1, codes, scales, y);
  EXPECT_EQ(y[0], 8.0f);
}
