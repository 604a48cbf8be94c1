// Side-by-side evaluation of quantized models against a float baseline on the same windows:
// perplexity, KL divergence of the next-token distributions from the baseline's, top-1 agreement.
#pragma once
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "micromix/model.hpp"

namespace micromix {

struct CompareRow {
  std::string name;
  int64_t predicted = 0;  // tokens scored
  double mean_nll = 0, ppl = 0;
  double kl = 0;     // mean over positions of KL(baseline || model), nats
  double top1 = 0;   // fraction of positions whose argmax equals the baseline's
};

// Non-overlapping windows of ctx tokens (at most max_tokens in all; <= 0: the whole text); in each
// window every position but the last predicts the next token. Row 0 is the baseline itself.
std::vector<CompareRow> compare_models(const Model& baseline, const std::vector<std::pair<std::string, const Model*>>& models,
                                       std::span<const int32_t> tokens, int64_t ctx, int64_t max_tokens,
                                       const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace micromix
