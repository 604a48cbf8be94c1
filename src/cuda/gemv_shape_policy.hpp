// The prepared decode path's (v17 ..) and its quantizer's CTA-shape choices as plain host functions, so that the CPU tests
// can check them (mx_gemv_decode_prepared.cu applies them; the measurements behind them are there and
// in bench/GPU_NOTES.md, session 11).
#pragma once

#include <algorithm>
#include <cstdint>

namespace micromix::cuda {

// Warps per 16-row group of the one-token GEMV (M = 1): the fewest of 1, 2, 4, 8 whose grid of `groups`
// CTAs fills 60% of the GPU's warp slots (32 per SM at <= 64 registers), else 16.
inline int gemv_token_warps(int64_t groups, int64_t sms) {
  for (int w = 1; w <= 8; w *= 2)
    if (groups * w * 10 >= sms * 32 * 6) return w;
  return 16;
}

// Warps per 16-row group of the token-tile GEMV (M = 2 .. 16; session 12): 8, unless the grid of `groups`
// CTAs needs more than one wave at 8 warps (resident8: CTAs of the 8-warp kernel the GPU holds at
// once) but fits in one at 4 (resident4). At M = 9 .. 16 the kernel's 118 registers leave 2 CTAs of
// 8 warps per SM: Llama-3.1-8B qkv's 384 row groups ran in 1.45 waves on an H100's 132 SMs.
inline int gemv_tile_warps(int64_t groups, int64_t resident8, int64_t resident4) {
  return groups > resident8 && groups <= resident4 ? 4 : 8;
}

// Shape of the two-tile GEMV (M = 9 .. 16; session 13): warps per row group and blocks per load batch.
// r8_b4 / r4_b4: CTAs the GPU holds at once of the 8- / 4-warp kernels with 4-block batches (118
// registers: 2 / 4 CTAs per SM on an H100), r8_b2: of the 8-warp kernel with 2-block batches (80
// registers, 3 CTAs per SM). Smaller batches keep fewer bytes in flight per warp and lost wherever the
// 4-block kernel already ran the grid in one wave (H100, 70/20/10: Llama-3.1-8B down 26.1 -> 29.5 us,
// 70B o 28.4 -> 36.9 at 4 warps); they win where they turn several waves into one (8B qkv, 384 groups:
// 15.7 -> 15.3; Qwen2.5-32B down, 320: 62.2 -> 56.6) or hold more warps per SM over several waves
// (Qwen2.5-7B gate_up 72.1 -> 57.2 against the rows kernel it replaces there). So: one wave with
// 4-block batches at 8 warps, else with 2-block batches at 8, else with 4-block batches at 4 warps,
// else (several waves any way) 2-block batches at 8 warps.
struct TileShape {
  int warps;
  int batch;
};
inline TileShape gemv_two_tile_shape(int64_t groups, int64_t r8_b4, int64_t r4_b4, int64_t r8_b2) {
  if (groups <= r8_b4) return {8, 4};
  if (groups <= r8_b2) return {8, 2};
  if (groups <= r4_b4) return {4, 4};
  return {8, 2};
}

// Shape of the one-tile GEMV (M = 2 .. 8 after the activation pre-pass; session 13): 16 warps per row
// group with 2-block batches (64 registers, 2 CTAs per SM) where that grid fits in one wave (r16_b2: CTAs
// of that kernel the GPU holds at once), as the M = 1 and v19 kernels do; else 8 warps with 4-block
// batches where that grid fits in one wave (r8_b4); else 4 warps (4-block batches), which either fits it
// in one wave (gemv_tile_warps' case) or, over several waves, gives each warp twice the blocks (as the
// M = 1 rule prefers few warps there). H100, 70/20/10, against the 8-warp kernel: M = 6-8 Llama-3.1-8B
// down (256 groups) 23.2-23.8 -> 22.3-22.6 us at 16 warps, o 11.2-11.4 -> 11.3-11.4; Qwen2.5-7B o / down
// (224) 11.6 / 27.3 -> 10.5 / 26.3; grids beyond one wave at 16 warps lose (8B qkv 13.8 -> 15.4); 8B
// gate_up (1792) at 4 warps M = 2 42.8-43.1 -> 40.3-40.7, M = 8 42.8-42.9 -> 40.6-41.4, 70B gate_up M = 4
// 135.8 -> 131.1 (1 and 2 warps: no better; session 13).
inline TileShape gemv_one_tile_shape(int64_t groups, int64_t r16_b2, int64_t r8_b4) {
  if (groups <= r16_b2) return {16, 2};
  if (groups <= r8_b4) return {8, 4};
  return {4, 4};
}

// Instructions per block of each segment's loop at M = 1 (FP4, FP6, FP8; SASS, session 11).
inline constexpr int kGemvBlockCost[3] = {48, 76, 40};

// Segment-specialised warps: the split of w warps over the segments (nb[s] blocks per row each) that
// gives every non-empty segment at least one warp and an empty one none, and minimises the busiest
// warp's work (ceil(nb / warps) * kGemvBlockCost). Returns false (out untouched) when no split exists
// (more non-empty segments than warps, or none at all).
inline bool gemv_segment_split(const int (&nb)[3], int w, int (&out)[3]) {
  int64_t best_load = -1;
  int best[3] = {0, 0, 0};
  for (int a = 0; a <= w; ++a)
    for (int b = 0; a + b <= w; ++b) {
      const int n[3] = {a, b, w - a - b};
      int64_t load = 0;
      bool ok = true;
      for (int i = 0; i < 3; ++i) {
        if ((nb[i] > 0) != (n[i] > 0)) ok = false;
        else if (n[i] > 0) load = std::max<int64_t>(load, int64_t{(nb[i] + n[i] - 1) / n[i]} * kGemvBlockCost[i]);
      }
      if (ok && (best_load < 0 || load < best_load)) best_load = load, best[0] = n[0], best[1] = n[1], best[2] = n[2];
    }
  if (best_load < 0) return false;
  std::copy(best, best + 3, out);
  return true;
}

// The v22 GEMV starts early behind the quantizer that writes its activations (programmatic dependent
// launch) only where the quantizer's grid has at most this many CTAs (session 15: 2-12 CTAs gained
// 0.9-3.5 us on every layer measured, 14-16 went either way, from 28 on it lost up to 15 us).
inline constexpr int64_t kEarlyGemvMaxQuantizerCtas = 12;

// Rows per CTA of the small-M quantizer that writes the decode GEMV's activations (v13), `splits` CTAs per
// row group along K: 2 above K = 8192 (as every quantizer there), and up to K = 8192 where 2-row CTAs keep
// the grid within the early-start bound or where 4-row ones would not keep it either; else 4. Why: at these
// M the quantizer is issue-bound (ncu, K = 4096, M = 1: ~1100 instructions per warp), a 2-row CTA does half
// the row work per thread, but losing the early start costs more (session 16: Llama-3.1-8B qkv / o /
// gate_up at M = 16, 2-row CTAs, 16 CTAs, no early start: +0.1 .. +1.0 us).
inline int64_t decode_quantizer_rows(int64_t M, int64_t K, int64_t splits) {
  if (K > 8192) return 2;
  const auto ctas = [&](int64_t rows) { return (M + rows - 1) / rows * splits; };
  return ctas(2) <= kEarlyGemvMaxQuantizerCtas || ctas(4) > kEarlyGemvMaxQuantizerCtas ? 2 : 4;
}

}  // namespace micromix::cuda
