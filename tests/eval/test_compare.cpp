// compare_models (the eval table's numbers) against an independent double-precision computation.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "micromix/error.hpp"
#include "micromix/eval.hpp"
#include "micromix/quant_plan.hpp"
#include "model/test_forward_reference.hpp"

using namespace micromix;

namespace {

std::vector<double> log_softmax_double(const float* x, int64_t n) {
  double mx = x[0];
  for (int64_t i = 1; i < n; ++i) mx = std::max(mx, double(x[i]));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(double(x[i]) - mx);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[size_t(i)] = double(x[i]) - mx - std::log(s);
  return out;
}

}  // namespace

TEST(CompareModels, MatchesIndependentKlNllAndTop1) {
  std::mt19937_64 g(std::random_device{}());
  const ModelConfig cfg = testmodel::tiny_config();
  const testmodel::MemorySource src(testmodel::random_model(cfg, g()));
  const Model base = Model::load(cfg, src);
  const QuantPlan plan = plan_uniform(cfg, mx::ElemFormat::fp4_e2m1, MixedLinearOptions{});
  const Model quant = Model::load(cfg, src, make_plan_factory(plan));
  const auto tokens = testmodel::random_tokens(70, cfg.vocab, g);
  const int64_t ctx = 16;
  const auto rows = compare_models(base, {{"self", &base}, {"fp4", &quant}}, tokens, ctx, 40);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].name, "baseline");
  EXPECT_EQ(rows[0].predicted, 2 * (ctx - 1));  // 40 tokens -> two windows of 16
  EXPECT_NEAR(rows[1].kl, 0.0, 1e-9);
  EXPECT_EQ(rows[1].top1, 1.0);
  EXPECT_DOUBLE_EQ(rows[1].ppl, rows[0].ppl);
  // Independent: per window, full logits of both models, double log-softmax.
  double nll_b = 0, nll_q = 0, kl = 0, top1 = 0;
  int64_t n = 0;
  for (int64_t w = 0; w < 2; ++w) {
    const auto win = std::span<const int32_t>(tokens).subspan(size_t(w * ctx), size_t(ctx));
    std::vector<float> lb, lq;
    KvCache cb = base.new_cache(ctx), cq = quant.new_cache(ctx);
    base.forward(win, cb, lb, -1);
    quant.forward(win, cq, lq, -1);
    for (int64_t p = 0; p + 1 < ctx; ++p, ++n) {
      const auto b = log_softmax_double(lb.data() + p * cfg.vocab, cfg.vocab);
      const auto q = log_softmax_double(lq.data() + p * cfg.vocab, cfg.vocab);
      const int32_t next = win[size_t(p + 1)];
      nll_b -= b[size_t(next)];
      nll_q -= q[size_t(next)];
      size_t ab = 0, aq = 0;
      for (size_t i = 0; i < b.size(); ++i) {
        kl += std::exp(b[i]) * (b[i] - q[i]);
        if (b[i] > b[ab]) ab = i;
        if (q[i] > q[aq]) aq = i;
      }
      top1 += ab == aq;
    }
  }
  EXPECT_NEAR(rows[0].mean_nll, nll_b / double(n), 1e-5);
  EXPECT_NEAR(rows[2].mean_nll, nll_q / double(n), 1e-5);
  EXPECT_NEAR(rows[2].kl, kl / double(n), 1e-5 + 1e-4 * kl / double(n));
  EXPECT_GT(rows[2].kl, 0.0);
  EXPECT_NEAR(rows[2].top1, top1 / double(n), 1e-12);
  EXPECT_THROW(compare_models(base, {}, std::span<const int32_t>(tokens).first(10), ctx, 0), Error);
  EXPECT_THROW(compare_models(base, {}, tokens, 1, 0), Error);
}
