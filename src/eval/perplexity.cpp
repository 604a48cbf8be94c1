// Perplexity over non-overlapping windows; optionally with llama-perplexity's conventions so the
// numbers compare with llama.cpp directly.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"
#include "micromix/model.hpp"

namespace micromix {
namespace {

// -log softmax(row)[target]: exponentials in float (vectorized), their sum and the log in double.
double nll_of(const float* row, int64_t vocab, int32_t target, std::vector<float>& scratch) {
  float mx = row[0];
  for (int64_t i = 1; i < vocab; ++i) mx = std::max(mx, row[i]);
  scratch.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) scratch[static_cast<size_t>(i)] = row[i] - mx;
  cpu::exp_inplace(scratch.data(), vocab);
  double sum = 0.0;
  for (float e : scratch) sum += e;
  return -(static_cast<double>(row[target]) - mx - std::log(sum));
}

}  // namespace

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& opt) {
  const int64_t n = static_cast<int64_t>(tokens.size()), ctx = opt.ctx, vocab = model.config().vocab;
  MM_CHECK(ctx >= 2, "perplexity: context {} is too small (need >= 2)", ctx);
  MM_CHECK(opt.bos_id < vocab, "perplexity: BOS id {} outside the vocabulary", opt.bos_id);
  PerplexityResult res;
  res.tokens = n;
  // Windows [start, start + len) and, within each, the first position whose prediction counts.
  int64_t n_windows, first;
  if (opt.llamacpp) {
    MM_CHECK(n >= 2 * ctx, "perplexity: {} tokens, llama.cpp mode needs at least 2*ctx = {}", n, 2 * ctx);
    n_windows = n / ctx;
    first = ctx / 2;
  } else {
    MM_CHECK(n >= 2, "perplexity: {} tokens, need at least 2", n);
    n_windows = (n + ctx - 1) / ctx;
    if (n - (n_windows - 1) * ctx < 2) --n_windows;  // a 1-token tail predicts nothing
    first = 0;
  }

  KvCache cache = model.new_cache(ctx);
  std::vector<int32_t> window;
  std::vector<float> logits;
  double nll_sum = 0.0;
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t start = w * ctx, len = std::min(ctx, n - start);
    window.assign(tokens.begin() + start, tokens.begin() + start + len);
    if (opt.llamacpp && opt.bos_id >= 0) window[0] = opt.bos_id;
    cache.clear();
    // Logits of positions first .. len-2 predict tokens first+1 .. len-1; the last row is unused.
    model.forward(window, cache, logits, len - first);
    const int64_t scored = len - 1 - first;
    double window_nll = 0.0;
#pragma omp parallel reduction(+ : window_nll)
    {
      std::vector<float> scratch;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < scored; ++i)
        window_nll += nll_of(logits.data() + i * vocab, vocab, window[static_cast<size_t>(first + i + 1)], scratch);
    }
    nll_sum += window_nll;
    res.predicted += scored;
    res.windows = w + 1;
    if (opt.progress) opt.progress(w + 1, n_windows, res.predicted, std::exp(nll_sum / static_cast<double>(res.predicted)));
  }
  res.mean_nll = nll_sum / static_cast<double>(res.predicted);
  res.ppl = std::exp(res.mean_nll);
  return res;
}

}  // namespace micromix
