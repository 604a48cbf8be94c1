// Budgeted allocation (beyond the paper): row sampling, measured group errors against a
// double-precision reference, the greedy allocation on planted cases, and plans on a tiny model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"
#include "micromix/quant_plan.hpp"
#include "model/test_forward_reference.hpp"

using namespace micromix;
using namespace micromix::calib;

namespace {

std::mt19937_64 fresh_rng() { return std::mt19937_64(std::random_device{}()); }

// MX round trip of a (rows, n) matrix through the whole-matrix API (independent of the row loop
// in group_errors.cpp).
std::vector<float> round_trip(mx::ElemFormat f, mx::ScaleRule rule, const std::vector<float>& x, int64_t rows,
                              int64_t n) {
  const mx::MxMatrix q = mx::quantize_matrix(f, rule, mx::Rounding::even, x, rows, n);
  std::vector<float> out(x.size());
  mx::dequantize_matrix(q, out);
  return out;
}

GroupErrors synthetic_errors(int64_t k, int64_t group, int64_t n, std::vector<std::array<double, 4>> err) {
  GroupErrors e;
  e.group = group;
  e.out_features = n;
  e.order.resize(static_cast<size_t>(k));
  std::iota(e.order.begin(), e.order.end(), 0);
  e.err = std::move(err);
  e.reference = 1.0;
  return e;
}

double allocation_bits(std::span<const Allocation> a, std::span<const GroupErrors> in) {
  double bits = 0, macs = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double m = static_cast<double>(in[i].out_features);
    bits += m * (static_cast<double>(a[i].split.n4) * 4.25 + static_cast<double>(a[i].split.n6) * 6.25 +
                 static_cast<double>(a[i].split.n8) * 8.25);
    macs += m * static_cast<double>(a[i].split.cols());
  }
  return bits / macs;
}

}  // namespace

TEST(RowSample, KeepsEverythingUntilFullThenAUniformSample) {
  auto g = fresh_rng();
  const int64_t width = 3, cap = 500;
  RowSample s(width, cap, g());
  std::vector<float> rows;
  for (int64_t i = 0; i < 200; ++i) rows.insert(rows.end(), {float(i), float(i) + 0.5f, -float(i)});
  s.add_rows(rows.data(), 200);
  ASSERT_EQ(s.rows(), 200);
  EXPECT_EQ(s.data(), rows);  // in arrival order while not full
  // 20000 rows in total: kept rows are distinct input rows, intact, and their mean index is ~10000.
  rows.clear();
  for (int64_t i = 200; i < 20000; ++i) rows.insert(rows.end(), {float(i), float(i) + 0.5f, -float(i)});
  s.add_rows(rows.data(), 19800);
  ASSERT_EQ(s.rows(), cap);
  EXPECT_EQ(s.seen(), 20000u);
  std::set<int64_t> ids;
  double mean = 0;
  for (int64_t r = 0; r < cap; ++r) {
    const float* row = s.data().data() + r * width;
    EXPECT_EQ(row[1], row[0] + 0.5f);
    EXPECT_EQ(row[2], -row[0]);
    ids.insert(static_cast<int64_t>(row[0]));
    mean += row[0] / static_cast<double>(cap);
  }
  EXPECT_EQ(static_cast<int64_t>(ids.size()), cap);
  // Uniform over [0, 20000): mean 10000, standard error 5774 / sqrt(500) = 258; 6 sigma.
  EXPECT_NEAR(mean, 10000.0, 6 * 258.0);
  // A sample without capacity keeps nothing but counts.
  RowSample none(width, 0, 1);
  none.add_rows(rows.data(), 10);
  EXPECT_EQ(none.rows(), 0);
  EXPECT_EQ(none.seen(), 10u);
  EXPECT_THROW(RowSample(0, 4, 1), Error);
}

TEST(RowSample, MergeDrawsFromBothStreamsInProportion) {
  auto g = fresh_rng();
  RowSample a(1, 400, g()), b(1, 400, g());
  std::vector<float> xa(30000, 1.0f), xb(10000, 2.0f);
  a.add_rows(xa.data(), 30000);
  b.add_rows(xb.data(), 10000);
  a.merge(b);
  EXPECT_EQ(a.rows(), 400);
  EXPECT_EQ(a.seen(), 40000u);
  const auto from_b = std::count(a.data().begin(), a.data().end(), 2.0f);
  // Expect 100 of 400 from b (a quarter of the rows); hypergeometric sd ~ 8.7.
  EXPECT_NEAR(static_cast<double>(from_b), 100.0, 50.0);
  RowSample c(2, 4, 1);
  EXPECT_THROW(a.merge(c), Error);
}

TEST(GroupErrors, MatchDoublePrecisionReference) {
  auto g = fresh_rng();
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int trial = 0; trial < 3; ++trial) {
    const int64_t rows = 5 + trial * 7, n = 24 + trial * 8, group = trial == 2 ? 64 : 32, k = group * (2 + trial);
    std::vector<float> x(static_cast<size_t>(rows * k)), w(static_cast<size_t>(n * k));
    for (auto& v : x) v = nd(g) * (g() % 17 == 0 ? 40.0f : 1.0f);  // a few outliers
    for (auto& v : w) v = nd(g) * 0.05f;
    std::vector<int32_t> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), g);
    const auto rule = trial % 2 ? mx::ScaleRule::ceil : mx::ScaleRule::ocp;
    const bool quantize_x = trial != 1;
    const GroupErrors e = measure_group_errors(x, rows, w, n, k, order, group, rule, mx::Rounding::even, quantize_x);
    ASSERT_EQ(static_cast<int64_t>(e.err.size()), k / group);
    EXPECT_EQ(e.order, order);
    double ref = 0;
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t o = 0; o < n; ++o) {
        double y = 0;
        for (int64_t c = 0; c < k; ++c) y += double(x[size_t(t * k + c)]) * double(w[size_t(o * k + c)]);
        ref += y * y;
      }
    EXPECT_NEAR(e.reference, ref, 1e-4 * ref);
    for (int64_t gi = 0; gi < k / group; ++gi) {
      std::vector<float> xg(static_cast<size_t>(rows * group)), wg(static_cast<size_t>(n * group));
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < group; ++j) xg[size_t(t * group + j)] = x[size_t(t * k + order[size_t(gi * group + j)])];
      for (int64_t o = 0; o < n; ++o)
        for (int64_t j = 0; j < group; ++j) wg[size_t(o * group + j)] = w[size_t(o * k + order[size_t(gi * group + j)])];
      for (size_t fi = 0; fi < kGroupFormats.size(); ++fi) {
        const auto xq = quantize_x ? round_trip(kGroupFormats[fi], rule, xg, rows, group) : xg;
        const auto wq = round_trip(kGroupFormats[fi], rule, wg, n, group);
        double err = 0;
        for (int64_t t = 0; t < rows; ++t)
          for (int64_t o = 0; o < n; ++o) {
            double d = 0;
            for (int64_t j = 0; j < group; ++j)
              d += double(xg[size_t(t * group + j)]) * double(wg[size_t(o * group + j)]) -
                   double(xq[size_t(t * group + j)]) * double(wq[size_t(o * group + j)]);
            err += d * d;
          }
        EXPECT_NEAR(e.err[size_t(gi)][fi], err, 1e-3 * err + 1e-12) << "group " << gi << " format " << fi;
      }
      // Finer formats are more accurate on this data (sanity of the ordering, not of the code).
      EXPECT_LT(e.err[size_t(gi)][3], e.err[size_t(gi)][0]);
    }
  }
}

TEST(GroupErrors, RejectsBadShapesAndNonFiniteData) {
  std::vector<float> x(64, 1.0f), w(128, 1.0f);
  std::vector<int32_t> order(64);
  std::iota(order.begin(), order.end(), 0);
  const auto r = mx::ScaleRule::ocp;
  EXPECT_THROW(measure_group_errors(x, 1, w, 2, 64, order, 48, r, mx::Rounding::even, true), Error);  // group % 32
  EXPECT_THROW(measure_group_errors(x, 1, w, 3, 64, order, 32, r, mx::Rounding::even, true), Error);  // w size
  EXPECT_THROW(measure_group_errors(x, 0, w, 2, 64, order, 32, r, mx::Rounding::even, true), Error);  // no rows
  order[3] = 4;
  EXPECT_THROW(measure_group_errors(x, 1, w, 2, 64, order, 32, r, mx::Rounding::even, true), Error);  // not a perm
  order[3] = 3;
  x[5] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(measure_group_errors(x, 1, w, 2, 64, order, 32, r, mx::Rounding::even, true), Error);
}

TEST(AllocateBudget, PlantedSensitiveGroupsAreUpgradedFirst) {
  auto g = fresh_rng();
  std::uniform_real_distribution<double> u(0.5, 1.0);
  // Two inputs of 8 groups; groups 2 and 5 of input 1 lose 100x more in MXFP4 than anything else.
  std::vector<GroupErrors> in;
  for (int i = 0; i < 2; ++i) {
    std::vector<std::array<double, 4>> err;
    for (int gi = 0; gi < 8; ++gi) {
      const double e4 = (i == 1 && (gi == 2 || gi == 5)) ? 100.0 : u(g);
      err.push_back({e4, e4 / 3, e4 / 4, e4 / 16});
    }
    in.push_back(synthetic_errors(256, 32, 64, err));
  }
  // Budget for exactly two groups' MXFP4 -> MXFP8 upgrade: 2 * 32 * 4 bits over 512 channels.
  const double target = 4.25 + 2.0 * 32 * 4 / 512;
  const auto a = allocate_budget(in, target, Fp6Choice::e3m2);
  EXPECT_EQ(a[0].split.n8 + a[0].split.n6, 0);
  EXPECT_EQ(a[1].split.n8, 64);
  EXPECT_EQ(a[1].split.n6, 0);
  const std::set<int32_t> seg8(a[1].perm.end() - 64, a[1].perm.end());
  std::set<int32_t> want;
  for (int c = 64; c < 96; ++c) want.insert(c);
  for (int c = 160; c < 192; ++c) want.insert(c);
  EXPECT_EQ(seg8, want);
  EXPECT_LE(allocation_bits(a, in), target + 1e-12);
}

TEST(AllocateBudget, RespectsTheBudgetAndSpendsItWhereErrorsDrop) {
  auto g = fresh_rng();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<GroupErrors> in;
    const int n_inputs = 1 + static_cast<int>(g() % 4);
    for (int i = 0; i < n_inputs; ++i) {
      const int64_t group = 32 * (1 + static_cast<int64_t>(g() % 2)), groups = 1 + static_cast<int64_t>(g() % 6);
      std::vector<std::array<double, 4>> err;
      for (int64_t gi = 0; gi < groups; ++gi) {
        const double e8 = u(g) * 0.01, e6a = e8 + u(g), e6b = e8 + u(g), e4 = std::max(e6a, e6b) + u(g) * 3;
        err.push_back({e4, e6a, e6b, e8});
      }
      GroupErrors e = synthetic_errors(group * groups, group, 16 + static_cast<int64_t>(g() % 100), err);
      std::shuffle(e.order.begin(), e.order.end(), g);
      e.reference = 0.5 + u(g);
      in.push_back(std::move(e));
    }
    const double target = 4.25 + u(g) * 4.5;  // sometimes above 8.25: everything MXFP8
    const auto fp6 = static_cast<Fp6Choice>(g() % 3);
    const auto a = allocate_budget(in, target, fp6);
    ASSERT_EQ(a.size(), in.size());
    const double bits = allocation_bits(a, in);
    EXPECT_LE(bits, target + 1e-9);
    double total = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      mx::validate_split(a[i].split, in[i].channels());
      mx::validate_permutation(a[i].perm, in[i].channels());
      EXPECT_EQ(a[i].split.fp6, choose_fp6(in[i], fp6));
      // Groups stay whole: every run of `group` positions is one group's channels in ranked order.
      for (int64_t p = 0; p < in[i].channels(); p += in[i].group) {
        const auto it = std::find(in[i].order.begin(), in[i].order.end(), a[i].perm[size_t(p)]);
        ASSERT_EQ((it - in[i].order.begin()) % in[i].group, 0);
        EXPECT_TRUE(std::equal(a[i].perm.begin() + p, a[i].perm.begin() + p + in[i].group, it));
      }
      total += static_cast<double>(in[i].out_features * in[i].channels());
    }
    if (target >= 8.25) {
      for (const auto& x : a) EXPECT_EQ(x.split.n8, x.split.cols());
    } else {
      // Maximal: no group could still move to a more accurate format within the budget.
      for (size_t i = 0; i < in.size(); ++i) {
        const auto& s = a[i].split;
        const size_t f6 = s.fp6 == mx::ElemFormat::fp6_e2m3 ? 1 : 2;
        const double step_bits = double(in[i].group * in[i].out_features) / total;
        for (int64_t p = 0; p < s.cols(); p += in[i].group) {
          const auto it = std::find(in[i].order.begin(), in[i].order.end(), a[i].perm[size_t(p)]);
          const auto& e = in[i].err[size_t((it - in[i].order.begin()) / in[i].group)];
          if (p < s.n4) {
            if (e[f6] < e[0]) {
              EXPECT_GT(bits + 2 * step_bits, target - 1e-9);
            }
            EXPECT_GT(bits + 4 * step_bits, target - 1e-9);
          } else if (p < s.n4 + s.n6) {
            EXPECT_GT(bits + 2 * step_bits, target - 1e-9);
          }
        }
      }
    }
  }
}

TEST(AllocateBudget, SensitivityWeighsInputs) {
  // Two inputs with identical group errors; the second costs 10x more at the model output.
  std::vector<std::array<double, 4>> err(4, {1.0, 0.9, 0.9, 0.01});  // MXFP6 off the hull
  std::vector<GroupErrors> in = {synthetic_errors(128, 32, 16, err), synthetic_errors(128, 32, 16, err)};
  in[1].sensitivity = 10.0;
  const auto a = allocate_budget(in, 4.25 + 4.0 * 2 * 32 / 256, Fp6Choice::e3m2);  // two 4-bit upgrades
  EXPECT_EQ(a[0].split.n4, 128);
  EXPECT_EQ(a[1].split.n8, 64);
  in[0].sensitivity = 0;
  EXPECT_THROW(allocate_budget(in, 5.0, Fp6Choice::e3m2), Error);
}

TEST(AllocateBudget, RejectsABudgetBelowMxfp4) {
  std::vector<GroupErrors> in = {synthetic_errors(64, 32, 8, {{1, 0.5, 0.5, 0.1}, {1, 0.5, 0.5, 0.1}})};
  EXPECT_THROW(allocate_budget(in, 4.0, Fp6Choice::e3m2), Error);
  EXPECT_THROW(allocate_budget(in, std::nan(""), Fp6Choice::e3m2), Error);
  const auto a = allocate_budget(in, 4.25, Fp6Choice::e3m2);
  EXPECT_EQ(a[0].split.n4, 64);
  EXPECT_THROW(allocate_budget({}, 5.0, Fp6Choice::e3m2), Error);
}

TEST(AllocateBudget, MeasuredFp6PicksTheSmallerError) {
  // Summed over groups: E2M3 0.45, E3M2 0.40 -> E3M2, although group 0 alone prefers E2M3.
  const auto a = synthetic_errors(64, 32, 8, {{1, 0.2, 0.3, 0.1}, {1, 0.25, 0.1, 0.1}});
  EXPECT_EQ(choose_fp6(a, Fp6Choice::measured), mx::ElemFormat::fp6_e3m2);
  const auto b = synthetic_errors(64, 32, 8, {{1, 0.2, 0.3, 0.1}, {1, 0.15, 0.1, 0.1}});
  EXPECT_EQ(choose_fp6(b, Fp6Choice::measured), mx::ElemFormat::fp6_e2m3);
  EXPECT_EQ(choose_fp6(b, Fp6Choice::e3m2), mx::ElemFormat::fp6_e3m2);
  EXPECT_EQ(choose_fp6(a, Fp6Choice::e2m3), mx::ElemFormat::fp6_e2m3);
}

TEST(PlanBudgeted, TinyModelPlansMeetTheBudgetAndRun) {
  auto g = fresh_rng();
  const uint64_t seed = g();
  ModelSource src;
  src.config = testmodel::tiny_config();
  src.tensors = std::make_unique<testmodel::MemorySource>(testmodel::random_model(src.config, seed));
  Model m = Model::load(src);
  const auto tokens = testmodel::random_tokens(300, src.config.vocab, g);
  CalibrationOptions co;
  co.samples = 3;
  co.seqlen = 48;
  co.sample_rows = 64;
  co.seed = seed;
  const ModelStats stats = calibrate(m, tokens, co);
  for (const auto& layer : stats)
    for (const auto& st : layer) EXPECT_EQ(st.sample().rows(), 64);
  MixedLinearOptions opt;
  opt.rule = mx::ScaleRule::ceil;
  const ModelErrors errors = measure_model_errors(m, stats, 32, opt);
  MicromixOptions mm;
  mm.granularity = 32;
  double last_err = 1e300;
  for (double target : {4.25, 5.0, 6.0, 8.25}) {
    const QuantPlan p = make_plan(fmt::format("micromix@{}", target), src.config, &stats, mm, opt, &errors);
    EXPECT_LE(p.weight_bits(src.config), target + 1e-9);
    EXPECT_NEAR(p.weight_bits(src.config), target, 0.6);  // within a couple of 32-channel steps on this tiny model
    // The model's summed relative group error falls as the budget grows.
    double err = 0;
    for (size_t l = 0; l < p.layers.size(); ++l)
      for (size_t i = 0; i < kLinearInputs; ++i) {
        const auto& ip = p.layers[l][i];
        const auto& e = errors[l][i];
        for (int64_t pos = 0; pos < ip.split.cols(); pos += e.group) {
          const int seg = pos < ip.split.n4 ? 0 : pos < ip.split.n4 + ip.split.n6 ? 1 : 2;
          const auto it = std::find(e.order.begin(), e.order.end(), ip.perm[size_t(pos)]);
          const size_t gi = static_cast<size_t>((it - e.order.begin()) / e.group);
          const size_t fi = seg == 0 ? 0 : seg == 2 ? 3 : (ip.split.fp6 == mx::ElemFormat::fp6_e2m3 ? 1 : 2);
          err += e.err[gi][fi] / e.reference;
        }
      }
    EXPECT_LE(err, last_err * (1 + 1e-12));
    last_err = err;
    Model q = Model::load(src, make_plan_factory(p));
    KvCache cache = q.new_cache(16);
    std::vector<float> logits;
    q.forward(std::span<const int32_t>(tokens).first(8), cache, logits, 1);
    for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  }
  // Sensitivity: positive and finite everywhere, and the float model is restored afterwards.
  std::vector<float> before, after;
  {
    KvCache c1 = m.new_cache(32);
    m.forward(std::span<const int32_t>(tokens).first(20), c1, before, -1);
  }
  ModelErrors weighted = errors;
  measure_sensitivity(m, weighted, std::span<const int32_t>(tokens).first(24), opt);
  for (const auto& layer : weighted)
    for (const auto& e : layer) {
      EXPECT_TRUE(std::isfinite(e.sensitivity));
      EXPECT_GT(e.sensitivity, 0.0);
    }
  {
    KvCache c2 = m.new_cache(32);
    m.forward(std::span<const int32_t>(tokens).first(20), c2, after, -1);
  }
  EXPECT_EQ(before, after);
  const QuantPlan wp = make_plan("micromix@5", src.config, &stats, mm, opt, &weighted);
  EXPECT_LE(wp.weight_bits(src.config), 5.0 + 1e-9);
  ModelErrors short_errors(errors.begin(), errors.end() - 1);
  EXPECT_THROW(measure_sensitivity(m, short_errors, tokens, opt), Error);
  EXPECT_THROW(measure_sensitivity(m, weighted, std::span<const int32_t>(tokens).first(1), opt), Error);
  // The paper's plan with MXFP6 chosen per input by measured error.
  mm.fp6_measured = true;
  const QuantPlan paper = make_plan("micromix", src.config, &stats, mm, opt, &errors);
  for (size_t l = 0; l < paper.layers.size(); ++l)
    for (size_t i = 0; i < kLinearInputs; ++i)
      EXPECT_EQ(paper.layers[l][i].split.fp6, choose_fp6(errors[l][i], Fp6Choice::measured));
  // Missing inputs and malformed names are clear errors.
  EXPECT_THROW(make_plan("micromix@5", src.config, &stats, mm, opt, nullptr), Error);
  EXPECT_THROW(make_plan("micromix@five", src.config, &stats, mm, opt, &errors), Error);
  EXPECT_THROW(make_plan("micromix@4", src.config, &stats, mm, opt, &errors), Error);
  co.sample_rows = 0;
  const ModelStats no_rows = calibrate(m, tokens, co);
  EXPECT_THROW(measure_model_errors(m, no_rows, 32, opt), Error);
}
