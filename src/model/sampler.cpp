// Token sampling: greedy, or temperature with top-k and top-p (nucleus) truncation.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "micromix/error.hpp"
#include "micromix/model.hpp"

namespace micromix {

Sampler::Sampler(SamplerOptions opt) : opt_(opt), rng_(opt.seed) {
  MM_CHECK(opt.temperature >= 0.0f && std::isfinite(opt.temperature), "sampler: temperature {} must be >= 0",
           opt.temperature);
  MM_CHECK(opt.top_k >= 0, "sampler: top_k {} must be >= 0", opt.top_k);
  MM_CHECK(opt.top_p > 0.0f && opt.top_p <= 1.0f, "sampler: top_p {} must be in (0, 1]", opt.top_p);
}

int32_t Sampler::sample(std::span<const float> logits) {
  MM_CHECK(!logits.empty(), "sampler: no logits");
  const auto argmax = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  if (opt_.temperature == 0.0f) return argmax;

  // Candidates by descending logit, cut to top_k.
  std::vector<int32_t> idx(logits.size());
  std::iota(idx.begin(), idx.end(), 0);
  const size_t k = opt_.top_k > 0 ? std::min(idx.size(), static_cast<size_t>(opt_.top_k)) : idx.size();
  auto by_logit = [&](int32_t a, int32_t b) { return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)]; };
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), by_logit);
  idx.resize(k);

  // Softmax at the temperature, then the smallest prefix with mass >= top_p.
  std::vector<double> p(k);
  const double mx = logits[static_cast<size_t>(idx[0])];
  double sum = 0.0;
  for (size_t i = 0; i < k; ++i) sum += p[i] = std::exp((logits[static_cast<size_t>(idx[i])] - mx) / opt_.temperature);
  size_t keep = k;
  double mass = 0.0;
  for (size_t i = 0; i < k; ++i) {
    mass += p[i] / sum;
    if (mass >= opt_.top_p) {
      keep = i + 1;
      break;
    }
  }
  std::discrete_distribution<size_t> pick(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(keep));
  return idx[pick(rng_)];
}

}  // namespace micromix
