// Perplexity: the function against -log softmax computed in the test from the reference forward
// pass, in both window conventions, plus argument errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "micromix/error.hpp"
#include "micromix/model.hpp"
#include "model/test_forward_reference.hpp"

using micromix::Model;

namespace {

// Sum of NLL of window[first+1 .. len-1] under the reference model; adds the count.
double window_nll(const micromix::ModelConfig& c, const testmodel::MemorySource& src,
                  const std::vector<int32_t>& window, size_t first, int64_t& count) {
  const auto logits = testmodel::reference_forward(c, src, window);
  double s = 0;
  for (size_t i = first; i + 1 < window.size(); ++i) {
    const double* row = logits.data() + i * static_cast<size_t>(c.vocab);
    double mx = -1e300, sum = 0;
    for (int v = 0; v < c.vocab; ++v) mx = std::max(mx, row[v]);
    for (int v = 0; v < c.vocab; ++v) sum += std::exp(row[v] - mx);
    s += -(row[window[i + 1]] - mx - std::log(sum));
    ++count;
  }
  return s;
}

}  // namespace

TEST(Perplexity, PlainWindowsMatchIndependentLogSoftmax) {
  const auto c = testmodel::tiny_config();
  std::mt19937_64 g(std::random_device{}());
  const auto src = testmodel::random_model(c, g());
  const Model m = Model::load(c, src);
  const size_t ctx = 24;
  for (size_t n : {2, 24, 50, 73}) {  // 73 = 3 windows + a 1-token tail that predicts nothing
    const auto tokens = testmodel::random_tokens(static_cast<int>(n), c.vocab, g);
    micromix::PerplexityOptions opt;
    opt.ctx = static_cast<int64_t>(ctx);
    int64_t calls = 0;
    opt.progress = [&](int64_t done, int64_t total, int64_t, double ppl) {
      ++calls;
      EXPECT_LE(done, total);
      EXPECT_GT(ppl, 1.0);
    };
    const auto r = micromix::perplexity(m, tokens, opt);
    int64_t count = 0, windows = 0;
    double nll = 0;
    for (size_t s = 0; s + 1 < n; s += ctx, ++windows)
      nll += window_nll(c, src, {tokens.begin() + s, tokens.begin() + std::min(n, s + ctx)}, 0, count);
    EXPECT_EQ(r.tokens, static_cast<int64_t>(n));
    EXPECT_EQ(r.predicted, count);
    EXPECT_EQ(r.windows, windows);
    EXPECT_EQ(calls, windows);
    EXPECT_NEAR(r.mean_nll, nll / count, 1e-5 * nll / count) << n;
    EXPECT_NEAR(r.ppl, std::exp(nll / count), 1e-4 * r.ppl) << n;
  }
}

TEST(Perplexity, LlamaCppConventionMatchesIndependentLogSoftmax) {
  const auto c = testmodel::tiny_config();
  std::mt19937_64 g(std::random_device{}());
  const auto src = testmodel::random_model(c, g());
  const Model m = Model::load(c, src);
  const size_t ctx = 20, n = 71;  // 3 whole windows; the 11-token tail is dropped
  const auto tokens = testmodel::random_tokens(static_cast<int>(n), c.vocab, g);
  for (int32_t bos : {-1, 5}) {
    micromix::PerplexityOptions opt;
    opt.ctx = ctx;
    opt.llamacpp = true;
    opt.bos_id = bos;
    const auto r = micromix::perplexity(m, tokens, opt);
    int64_t count = 0;
    double nll = 0;
    for (size_t w = 0; w < n / ctx; ++w) {
      std::vector<int32_t> win(tokens.begin() + w * ctx, tokens.begin() + (w + 1) * ctx);
      if (bos >= 0) win[0] = bos;
      nll += window_nll(c, src, win, ctx / 2, count);
    }
    EXPECT_EQ(count, 3 * (20 - 10 - 1));
    EXPECT_EQ(r.predicted, count);
    EXPECT_EQ(r.windows, 3);
    EXPECT_NEAR(r.ppl, std::exp(nll / count), 1e-4 * r.ppl) << "bos " << bos;
  }
}

TEST(Perplexity, BadArgumentsThrow) {
  const auto c = testmodel::tiny_config();
  const auto src = testmodel::random_model(c, 7);
  const Model m = Model::load(c, src);
  std::mt19937_64 g(std::random_device{}());
  const auto tokens = testmodel::random_tokens(30, c.vocab, g);
  micromix::PerplexityOptions opt;
  opt.ctx = 1;
  EXPECT_THROW(micromix::perplexity(m, tokens, opt), micromix::Error);
  opt.ctx = 16;
  opt.llamacpp = true;  // needs 32 tokens
  EXPECT_THROW(micromix::perplexity(m, tokens, opt), micromix::Error);
  opt.llamacpp = false;
  EXPECT_THROW(micromix::perplexity(m, std::span(tokens).first(1), opt), micromix::Error);
  auto bad = tokens;
  bad[20] = c.vocab + 3;
  EXPECT_THROW(micromix::perplexity(m, bad, opt), micromix::Error);
}
