// The decode path's CTA-shape choices (src/cuda/gemv_shape_policy.hpp) on the CPU: the shapes the
// session-11 sweep measured fastest on an H100 (132 SMs), the rule's invariants, and the segment split
// against an exhaustive search written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>

#include "cuda/gemv_shape_policy.hpp"

namespace micromix::cuda {
namespace {

TEST(GemvShapePolicy, PicksTheMeasuredShapesOnH100) {
  constexpr int64_t kSms = 132;
  EXPECT_EQ(gemv_token_warps(1792, kSms), 2);   // Llama-3.1-8B gate_up: 2 warps 34.1 us vs 8 warps 38.9
  EXPECT_EQ(gemv_token_warps(256, kSms), 16);   // 8B down: 16 warps 21.1-21.4 vs 22.1-22.3
  EXPECT_EQ(gemv_token_warps(3584, kSms), 1);   // 70B gate_up: 1 warp 112.1 vs 127.6
  EXPECT_EQ(gemv_token_warps(640, kSms), 4);    // 70B qkv: 4 warps 27.5 vs 30.2
  EXPECT_EQ(gemv_token_warps(512, kSms), 8);    // 70B o / down: 8 warps (the fastest measured)
}

TEST(GemvShapePolicy, FewestWarpsThatFillSixtyPercentOfTheSlots) {
  for (int64_t sms : {1, 66, 108, 132, 144})
    for (int64_t groups = 1; groups <= 20000; groups += groups < 64 ? 1 : 37) {
      const int w = gemv_token_warps(groups, sms);
      ASSERT_TRUE(w == 1 || w == 2 || w == 4 || w == 8 || w == 16) << w;
      const int64_t slots60 = sms * 32 * 6;  // 60% of the slots, times 10
      if (w < 16) {
        EXPECT_GE(groups * w * 10, slots60) << "groups " << groups << " sms " << sms;
      }
      if (w > 1) {
        EXPECT_LT(groups * (w / 2) * 10, slots60) << "groups " << groups << " sms " << sms;
      }
      EXPECT_GE(w, gemv_token_warps(groups + 1, sms));  // more row groups never need more warps
    }
}

// The busiest warp's work for a split, as the policy defines it; -1 for a split it must not return.
int64_t split_load(const int (&nb)[3], const int (&n)[3]) {
  int64_t load = 0;
  for (int i = 0; i < 3; ++i) {
    if ((nb[i] > 0) != (n[i] > 0)) return -1;
    if (n[i] > 0) load = std::max<int64_t>(load, int64_t{(nb[i] + n[i] - 1) / n[i]} * kGemvBlockCost[i]);
  }
  return load;
}

TEST(GemvShapePolicy, SegmentSplitIsTheBestValidSplit) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> blocks(0, 500), coin(0, 3);
  for (int trial = 0; trial < 2000; ++trial) {
    int nb[3];
    for (int& b : nb) b = coin(rng) == 0 ? 0 : blocks(rng);
    const int w = std::uniform_int_distribution<int>(1, 16)(rng);
    int got[3] = {-7, -7, -7};
    const bool ok = gemv_segment_split(nb, w, got);
    int64_t best = -1;
    for (int a = 0; a <= w; ++a)
      for (int b = 0; a + b <= w; ++b) {
        const int n[3] = {a, b, w - a - b};
        const int64_t l = split_load(nb, n);
        if (l >= 0 && (best < 0 || l < best)) best = l;
      }
    ASSERT_EQ(ok, best >= 0) << nb[0] << " " << nb[1] << " " << nb[2] << " w " << w;
    if (!ok) {
      EXPECT_EQ(got[0], -7);  // untouched
      continue;
    }
    EXPECT_EQ(got[0] + got[1] + got[2], w);
    EXPECT_EQ(split_load(nb, got), best) << nb[0] << " " << nb[1] << " " << nb[2] << " w " << w;
  }
}

TEST(GemvShapePolicy, TileWarpsOnlyWhereFourWarpsSaveAWave) {
  // H100 (132 SMs) at M = 9 .. 16: 2 CTAs per SM of 8 warps, 4 of 4 warps.
  EXPECT_EQ(gemv_tile_warps(384, 264, 528), 4);   // Llama-3.1-8B qkv: 1.45 waves at 8 warps, one at 4
  EXPECT_EQ(gemv_tile_warps(256, 264, 528), 8);   // 8B o / down: one wave at 8 warps
  EXPECT_EQ(gemv_tile_warps(1792, 264, 528), 8);  // 8B gate_up: several waves either way
  EXPECT_EQ(gemv_tile_warps(384, 396, 792), 8);   // M = 2 .. 8 (3 CTAs per SM): one wave at 8 warps
  for (int64_t r8 : {1, 100, 264}) {  // the edges: one wave at 8 warps, one more group, one wave at 4, one more
    EXPECT_EQ(gemv_tile_warps(r8, r8, 2 * r8), 8);
    EXPECT_EQ(gemv_tile_warps(r8 + 1, r8, 2 * r8), 4);
    EXPECT_EQ(gemv_tile_warps(2 * r8, r8, 2 * r8), 4);
    EXPECT_EQ(gemv_tile_warps(2 * r8 + 1, r8, 2 * r8), 8);
  }
}

TEST(GemvShapePolicy, TwoTileShapeByWaves) {
  // H100 (132 SMs): 4-block batches 2 / 4 CTAs per SM at 8 / 4 warps, 2-block batches 3 at 8 warps.
  const auto shape = [](int64_t groups) { return gemv_two_tile_shape(groups, 264, 528, 396); };
  const auto is = [](TileShape s, int warps, int batch) { return s.warps == warps && s.batch == batch; };
  EXPECT_TRUE(is(shape(256), 8, 4));   // Llama-3.1-8B o / down: one wave as before
  EXPECT_TRUE(is(shape(384), 8, 2));   // 8B qkv: one wave at 8 warps with 2-block batches
  EXPECT_TRUE(is(shape(448), 4, 4));   // Qwen2.5-32B qkv: one wave only at 4 warps
  EXPECT_TRUE(is(shape(512), 4, 4));   // Llama-3.1-70B o / down
  EXPECT_TRUE(is(shape(640), 8, 2));   // 70B qkv: several waves any way
  EXPECT_TRUE(is(shape(1792), 8, 2));  // 8B gate_up
  for (int64_t r8 : {4, 7, 264}) {     // the edges of each rule (r8 < r8b2 < r4)
    const int64_t r8b2 = r8 + r8 / 2 + 1, r4 = 2 * r8;
    EXPECT_TRUE(is(gemv_two_tile_shape(r8, r8, r4, r8b2), 8, 4));
    EXPECT_TRUE(is(gemv_two_tile_shape(r8 + 1, r8, r4, r8b2), 8, 2));
    EXPECT_TRUE(is(gemv_two_tile_shape(r8b2, r8, r4, r8b2), 8, 2));
    EXPECT_TRUE(is(gemv_two_tile_shape(r8b2 + 1, r8, r4, r8b2), 4, 4));
    EXPECT_TRUE(is(gemv_two_tile_shape(r4, r8, r4, r8b2), 4, 4));
    EXPECT_TRUE(is(gemv_two_tile_shape(r4 + 1, r8, r4, r8b2), 8, 2));
  }
}

TEST(GemvShapePolicy, OneTileShapeSixteenWarpsInOneWave) {
  // H100 (132 SMs) at M = 2 .. 8: 16 warps with 2-block batches 2 CTAs per SM, 8 warps 3.
  const auto shape = [](int64_t groups) { return gemv_one_tile_shape(groups, 264, 396); };
  const auto is = [](TileShape s, int warps, int batch) { return s.warps == warps && s.batch == batch; };
  EXPECT_TRUE(is(shape(224), 16, 2));  // Qwen2.5-7B o / down
  EXPECT_TRUE(is(shape(256), 16, 2));  // Llama-3.1-8B o / down
  EXPECT_TRUE(is(shape(264), 16, 2));
  EXPECT_TRUE(is(shape(265), 8, 4));   // one wave at 8 warps
  EXPECT_TRUE(is(shape(384), 8, 4));   // 8B qkv
  EXPECT_TRUE(is(shape(396), 8, 4));
  EXPECT_TRUE(is(shape(397), 4, 4));   // one wave only at 4 warps (gemv_tile_warps)
  EXPECT_TRUE(is(shape(1792), 4, 4));  // 8B gate_up: several waves any way, twice the blocks per warp
}

TEST(GemvShapePolicy, SegmentSplitEdgeCases) {
  int out[3] = {-1, -1, -1};
  EXPECT_FALSE(gemv_segment_split({0, 0, 0}, 16, out));  // nothing to split
  EXPECT_FALSE(gemv_segment_split({5, 5, 5}, 2, out));   // three segments, two warps
  EXPECT_EQ(out[0], -1);
  ASSERT_TRUE(gemv_segment_split({128, 0, 0}, 16, out));  // one segment takes every warp
  EXPECT_EQ(out[0], 16);
  EXPECT_EQ(out[1], 0);
  EXPECT_EQ(out[2], 0);
  ASSERT_TRUE(gemv_segment_split({90, 25, 13}, 16, out));  // Llama-3.1-8B o at 70/20/10
  EXPECT_GT(out[0], out[1]);
  EXPECT_GE(out[1], out[2]);
  EXPECT_GE(out[2], 1);
}

TEST(GemvShapePolicy, DecodeQuantizerRowsOnModelShapes) {
  // K split over CTAs of 256 units of 8 columns: 2 CTAs per row group at K = 3584 / 4096, 3 at 5120, 4 at 8192.
  const auto splits = [](int64_t K) { return (K / 8 + 255) / 256; };
  const auto rows = [&](int64_t M, int64_t K) { return decode_quantizer_rows(M, K, splits(K)); };
  for (int64_t M = 1; M <= 16; ++M) {
    EXPECT_EQ(rows(M, 4096), M <= 12 ? 2 : 4) << M;      // Llama-3.1-8B qkv / o / gate_up
    EXPECT_EQ(rows(M, 3584), M <= 12 ? 2 : 4) << M;      // Qwen2.5-7B
    EXPECT_EQ(rows(M, 5120), M <= 8 ? 2 : 4) << M;       // Qwen2.5-32B
    EXPECT_EQ(rows(M, 8192), M <= 6 || M > 12 ? 2 : 4) << M;  // Llama-3.1-70B: 4 rows keep 8-12 CTAs at M = 7-12
    EXPECT_EQ(rows(M, 14336), 2) << M;                   // above K = 8192 always 2
  }
}

TEST(GemvShapePolicy, DecodeQuantizerRowsNeverLoseTheEarlyStart) {
  for (int64_t K : {32, 512, 2048, 4096, 8192})
    for (int64_t splits = 1; splits <= 16; ++splits)
      for (int64_t M = 1; M <= 64; ++M) {
        const int64_t r = decode_quantizer_rows(M, K, splits);
        ASSERT_TRUE(r == 2 || r == 4);
        const auto ctas = [&](int64_t rr) { return (M + rr - 1) / rr * splits; };
        // Never a grid past the early-start bound where 4 rows stay within it, and 4 rows only where they alone do.
        if (ctas(4) <= kEarlyGemvMaxQuantizerCtas) {
          EXPECT_LE(ctas(r), kEarlyGemvMaxQuantizerCtas) << M << " " << splits;
        }
        EXPECT_EQ(r == 4, ctas(4) <= kEarlyGemvMaxQuantizerCtas && ctas(2) > kEarlyGemvMaxQuantizerCtas) << M << " " << splits;
      }
}

}  // namespace
}  // namespace micromix::cuda
