// Budgeted allocation: the formats that buy the most measured error reduction per bit (calib.hpp).
#include <algorithm>
#include <cmath>
#include <tuple>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"

namespace micromix::calib {

mx::ElemFormat choose_fp6(const GroupErrors& e, Fp6Choice fp6) {
  if (fp6 == Fp6Choice::e3m2) return mx::ElemFormat::fp6_e3m2;
  if (fp6 == Fp6Choice::e2m3) return mx::ElemFormat::fp6_e2m3;
  double e2m3 = 0, e3m2 = 0;
  for (const auto& g : e.err) {
    e2m3 += g[1];
    e3m2 += g[2];
  }
  return e2m3 < e3m2 ? mx::ElemFormat::fp6_e2m3 : mx::ElemFormat::fp6_e3m2;  // ties: the paper's E3M2
}

namespace {

// One upgrade of one group: from level `from` to level `to` (0 MXFP4, 1 MXFP6, 2 MXFP8).
struct Step {
  double gain_per_bit;  // relative error removed per bit spent
  double cost;          // bits spent (MAC-weighted, unnormalized)
  size_t input, group;
  int from, to;
};

constexpr std::array<double, 3> kLevelBits = {4.25, 6.25, 8.25};

}  // namespace

std::vector<Allocation> allocate_budget(std::span<const GroupErrors> inputs, double target_bits, Fp6Choice fp6) {
  MM_CHECK(!inputs.empty(), "budgeted allocation: no inputs");
  MM_CHECK(std::isfinite(target_bits) && target_bits >= kLevelBits[0] - 1e-9,
           "--target-bits {} is below all-MXFP4 ({} bits per value with scales)", target_bits, kLevelBits[0]);
  double total_macs = 0;
  for (const auto& in : inputs) {
    MM_CHECK(std::isfinite(in.sensitivity) && in.sensitivity > 0, "budgeted allocation: sensitivity {} is not positive",
             in.sensitivity);
    MM_CHECK(in.group > 0 && in.channels() % in.group == 0 &&
                 static_cast<int64_t>(in.err.size()) == in.channels() / in.group && in.out_features > 0,
             "budgeted allocation: inconsistent group errors ({} channels, group {}, {} groups)", in.channels(),
             in.group, in.err.size());
    total_macs += static_cast<double>(in.channels()) * static_cast<double>(in.out_features);
  }
  const double budget = target_bits * total_macs * (1 + 1e-12);
  double spent = kLevelBits[0] * total_macs;

  std::vector<int> fp6_index(inputs.size());
  std::vector<Step> steps;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const GroupErrors& in = inputs[i];
    fp6_index[i] = choose_fp6(in, fp6) == mx::ElemFormat::fp6_e2m3 ? 1 : 2;
    const double norm = (in.reference > 0 ? in.reference : 1.0) / in.sensitivity;
    const double macs_per_bit = static_cast<double>(in.group) * static_cast<double>(in.out_features);
    for (size_t g = 0; g < in.err.size(); ++g) {
      const double e4 = in.err[g][0] / norm, e6 = in.err[g][static_cast<size_t>(fp6_index[i])] / norm,
                   e8 = in.err[g][3] / norm;
      // Lower convex hull of (0, e4), (2, e6), (4, e8) in bits added per value: MXFP6 is a step of its
      // own only when it lies below the chord from MXFP4 to MXFP8.
      const bool fp6_on_hull = e6 < e4 && (e8 >= e6 || e4 - e6 >= e6 - e8);
      auto add = [&](int from, int to, double de) {
        const double bits = (kLevelBits[static_cast<size_t>(to)] - kLevelBits[static_cast<size_t>(from)]) * macs_per_bit;
        if (de > 0) steps.push_back({de / bits, bits, i, g, from, to});
      };
      if (fp6_on_hull) {
        add(0, 1, e4 - e6);
        add(1, 2, e6 - e8);
      } else {
        add(0, 2, e4 - e8);
      }
    }
  }
  std::stable_sort(steps.begin(), steps.end(), [](const Step& a, const Step& b) {
    return std::tie(b.gain_per_bit, a.input, a.group, a.from) < std::tie(a.gain_per_bit, b.input, b.group, b.from);
  });

  std::vector<std::vector<int>> level(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) level[i].assign(inputs[i].err.size(), 0);
  for (const Step& s : steps) {
    int& lv = level[s.input][s.group];
    if (lv != s.from || spent + s.cost > budget) continue;
    lv = s.to;
    spent += s.cost;
  }

  // Fill: what the hull steps could not use (a skipped 4-bit step leaves room for 2-bit ones) goes
  // to the best affordable single upgrade, off the hull too, until none fits.
  auto level_error = [&](size_t i, size_t g, int lv) {
    const GroupErrors& in = inputs[i];
    const size_t f = lv == 0 ? 0 : lv == 2 ? 3 : static_cast<size_t>(fp6_index[i]);
    return in.err[g][f] * in.sensitivity / (in.reference > 0 ? in.reference : 1.0);
  };
  for (;;) {
    double best = 0, best_cost = 0;
    size_t bi = 0, bg = 0;
    int bto = -1;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const double macs_per_bit = static_cast<double>(inputs[i].group) * static_cast<double>(inputs[i].out_features);
      for (size_t g = 0; g < level[i].size(); ++g)
        for (int to = level[i][g] + 1; to < 3; ++to) {
          const double cost =
              (kLevelBits[static_cast<size_t>(to)] - kLevelBits[static_cast<size_t>(level[i][g])]) * macs_per_bit;
          const double gain = (level_error(i, g, level[i][g]) - level_error(i, g, to)) / cost;
          if (spent + cost <= budget && gain > best) {
            best = gain;
            best_cost = cost;
            bi = i;
            bg = g;
            bto = to;
          }
        }
    }
    if (bto < 0) break;
    level[bi][bg] = bto;
    spent += best_cost;
  }

  std::vector<Allocation> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const GroupErrors& in = inputs[i];
    Allocation& a = out[i];
    a.perm.reserve(in.order.size());
    int64_t count[3] = {0, 0, 0};
    for (int lv = 0; lv < 3; ++lv)
      for (size_t g = 0; g < in.err.size(); ++g)
        if (level[i][g] == lv) {
          const auto first = in.order.begin() + static_cast<std::ptrdiff_t>(g) * in.group;
          a.perm.insert(a.perm.end(), first, first + in.group);
          count[lv] += in.group;
        }
    a.split = mx::MixedSplit{count[0], count[1], count[2],
                             fp6_index[i] == 1 ? mx::ElemFormat::fp6_e2m3 : mx::ElemFormat::fp6_e3m2};
  }
  return out;
}

}  // namespace micromix::calib
