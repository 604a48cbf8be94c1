// The prepared decode path's (v17) CTA-shape choices as plain host functions, so that the CPU tests
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

}  // namespace micromix::cuda
