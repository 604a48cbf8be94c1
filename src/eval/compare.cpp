// Baseline-vs-quantized comparison over shared windows.
#include <algorithm>
#include <cmath>

#include "eval/distribution.hpp"
#include "micromix/error.hpp"
#include "micromix/eval.hpp"

namespace micromix {
namespace {

struct Sums {
  double nll = 0, kl = 0;
  int64_t top1 = 0, n = 0;
};

}  // namespace

std::vector<CompareRow> compare_models(const Model& baseline, const std::vector<std::pair<std::string, const Model*>>& models,
                                       std::span<const int32_t> tokens, int64_t ctx, int64_t max_tokens,
                                       const std::function<void(int64_t, int64_t)>& progress) {
  MM_CHECK(ctx >= 2, "eval: ctx must be at least 2 (got {})", ctx);
  int64_t n_tok = static_cast<int64_t>(tokens.size());
  if (max_tokens > 0) n_tok = std::min(n_tok, max_tokens);
  const int64_t windows = n_tok / ctx;
  MM_CHECK(windows >= 1, "eval: the text has {} tokens, fewer than one window of {}", n_tok, ctx);
  const int64_t vocab = baseline.config().vocab;
  std::vector<Sums> sums(models.size() + 1);
  std::vector<float> base, other;
  std::vector<int32_t> base_arg(static_cast<size_t>(ctx));
  for (int64_t w = 0; w < windows; ++w) {
    const auto win = tokens.subspan(static_cast<size_t>(w * ctx), static_cast<size_t>(ctx));
    {
      KvCache cache = baseline.new_cache(ctx);
      baseline.forward(win, cache, base, -1);
    }
    eval::log_softmax_rows(base.data(), ctx, vocab);
    for (int64_t p = 0; p + 1 < ctx; ++p) {
      const float* row = base.data() + p * vocab;
      base_arg[static_cast<size_t>(p)] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
      sums[0].nll -= row[win[static_cast<size_t>(p + 1)]];
    }
    sums[0].top1 += ctx - 1;
    sums[0].n += ctx - 1;
    for (size_t m = 0; m < models.size(); ++m) {
      {
        KvCache cache = models[m].second->new_cache(ctx);
        models[m].second->forward(win, cache, other, -1);
      }
      eval::log_softmax_rows(other.data(), ctx, vocab);
      double nll = 0, kl = 0;
      int64_t top1 = 0;
#pragma omp parallel for reduction(+ : nll, kl, top1) schedule(static)
      for (int64_t p = 0; p < ctx - 1; ++p) {
        const float* b = base.data() + p * vocab;
        const float* o = other.data() + p * vocab;
        kl += eval::kl_row(b, o, vocab);
        nll -= o[win[static_cast<size_t>(p + 1)]];
        top1 += (std::max_element(o, o + vocab) - o) == base_arg[static_cast<size_t>(p)];
      }
      sums[m + 1].nll += nll;
      sums[m + 1].kl += kl;
      sums[m + 1].top1 += top1;
      sums[m + 1].n += ctx - 1;
    }
    if (progress) progress(w + 1, windows);
  }
  std::vector<CompareRow> rows;
  for (size_t m = 0; m <= models.size(); ++m) {
    CompareRow r;
    r.name = m == 0 ? "baseline" : models[m - 1].first;
    const Sums& s = sums[m];
    r.predicted = s.n;
    r.mean_nll = s.nll / static_cast<double>(s.n);
    r.ppl = std::exp(r.mean_nll);
    r.kl = s.kl / static_cast<double>(s.n);
    r.top1 = static_cast<double>(s.top1) / static_cast<double>(s.n);
    rows.push_back(r);
  }
  return rows;
}

}  // namespace micromix
