// Segment counts and channel ranking (DESIGN.md section 3, steps 5-6).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"
#include "micromix/mx.hpp"

namespace micromix::calib {

double SegmentCounts::bits() const {
  const double k = static_cast<double>(total());
  if (k == 0) return 0.0;
  return (static_cast<double>(n4) * mx::bits_per_value(mx::ElemFormat::fp4_e2m1) +
          static_cast<double>(n6) * mx::bits_per_value(mx::ElemFormat::fp6_e3m2) +
          static_cast<double>(n8) * mx::bits_per_value(mx::ElemFormat::fp8_e4m3)) / k;
}

SegmentCounts paper_counts(int64_t k, double p6, double p8, int64_t g) {
  MM_CHECK(g > 0 && g % mx::kBlock == 0, "allocation: granularity {} is not a positive multiple of 32", g);
  MM_CHECK(k > 0 && k % g == 0, "allocation: {} channels is not a multiple of the granularity {}", k, g);
  MM_CHECK(p6 >= 0 && p8 >= 0 && p6 + p8 <= 1.0 + 1e-12, "allocation: bad fractions p6={} p8={}", p6, p8);
  auto round_up = [&](double p) {
    // A tiny tolerance keeps exact products (K*p == m*g) from rounding up a whole segment.
    return static_cast<int64_t>(std::ceil(static_cast<double>(k) * p / static_cast<double>(g) - 1e-9)) * g;
  };
  SegmentCounts c;
  c.n8 = std::min(round_up(p8), k);
  c.n6 = std::min(round_up(p6), k - c.n8);
  c.n4 = k - c.n6 - c.n8;
  return c;
}

std::vector<int32_t> rank_channels(std::span<const double> importance) {
  std::vector<int32_t> perm(importance.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int32_t a, int32_t b) { return importance[a] < importance[b]; });
  return perm;
}

void check_permutation(std::span<const int32_t> perm, int64_t k) {
  MM_CHECK(static_cast<int64_t>(perm.size()) == k, "permutation has {} entries for {} channels", perm.size(), k);
  std::vector<bool> seen(static_cast<size_t>(k), false);
  for (int32_t p : perm) {
    MM_CHECK(p >= 0 && p < k, "permutation entry {} outside [0, {})", p, k);
    MM_CHECK(!seen[static_cast<size_t>(p)], "permutation repeats channel {}", p);
    seen[static_cast<size_t>(p)] = true;
  }
}

}  // namespace micromix::calib
