// Per-input sensitivity: what one unit of relative output error at an input costs at the model's
// output, measured by quantizing that input alone to MXFP4 (quant_plan.hpp).
#include <algorithm>
#include <cmath>

#include "eval/distribution.hpp"
#include "micromix/error.hpp"
#include "micromix/quant_plan.hpp"

namespace micromix {

namespace {

double mean_kl(const std::vector<float>& base, const std::vector<float>& other, int64_t n, int64_t vocab) {
  double kl = 0;
#pragma omp parallel for reduction(+ : kl) schedule(static)
  for (int64_t p = 0; p < n; ++p) {
    kl += eval::kl_row(base.data() + p * vocab, other.data() + p * vocab, vocab);
  }
  return kl / static_cast<double>(n);
}

std::vector<std::unique_ptr<Linear>*> slots(Model::Layer& L, LinearInput which) {
  switch (which) {
    case LinearInput::attn_qkv: return {&L.q, &L.k, &L.v};
    case LinearInput::attn_output: return {&L.o};
    case LinearInput::ffn_gate_up: return {&L.gate, &L.up};
    case LinearInput::ffn_down: return {&L.down};
  }
  return {};
}

}  // namespace

void measure_sensitivity(Model& model, ModelErrors& errors, std::span<const int32_t> tokens,
                         const MixedLinearOptions& opt, const std::function<void(int, int)>& progress) {
  const ModelConfig& cfg = model.config();
  MM_CHECK(static_cast<int>(errors.size()) == cfg.n_layers, "sensitivity: errors for {} layers, model has {}",
           errors.size(), cfg.n_layers);
  const int64_t n = static_cast<int64_t>(tokens.size());
  MM_CHECK(n >= 2, "sensitivity: need at least 2 tokens (got {})", n);
  const int64_t vocab = cfg.vocab;
  std::vector<float> base, other;
  {
    KvCache cache = model.new_cache(n);
    model.forward(tokens, cache, base, -1);
  }
  eval::log_softmax_rows(base.data(), n, vocab);
  const int total = cfg.n_layers * kLinearInputs;
  for (int l = 0; l < cfg.n_layers; ++l)
    for (int i = 0; i < kLinearInputs; ++i) {
      const auto which = static_cast<LinearInput>(i);
      calib::GroupErrors& e = errors[static_cast<size_t>(l)][static_cast<size_t>(i)];
      auto ptrs = slots(model.mutable_layer(l), which);
      // Build the all-MXFP4 replacements first, then swap; swap back however we leave.
      std::vector<std::unique_ptr<Linear>> q;
      for (auto* p : ptrs) {
        const auto* d = dynamic_cast<const DenseLinear*>(p->get());
        MM_CHECK(d, "sensitivity: layer {} {} is not a float linear", l, linear_input_name(which));
        const int64_t k = d->in_features();
        const std::vector<float> w(d->weight().begin(), d->weight().end());
        q.push_back(std::make_unique<MixedLinear>(w, d->out_features(), k, mx::identity_permutation(k),
                                                  mx::MixedSplit{k, 0, 0, mx::ElemFormat::fp6_e3m2}, d->bias(), opt));
      }
      for (size_t j = 0; j < ptrs.size(); ++j) ptrs[j]->swap(q[j]);
      try {
        KvCache cache = model.new_cache(n);
        model.forward(tokens, cache, other, -1);
      } catch (...) {
        for (size_t j = 0; j < ptrs.size(); ++j) ptrs[j]->swap(q[j]);
        throw;
      }
      for (size_t j = 0; j < ptrs.size(); ++j) ptrs[j]->swap(q[j]);
      eval::log_softmax_rows(other.data(), n, vocab);
      const double kl = mean_kl(base, other, n, vocab);
      double rel4 = 0;
      for (const auto& g : e.err) rel4 += g[0];
      rel4 /= e.reference > 0 ? e.reference : 1.0;
      // A floor keeps an input whose MXFP4 error happens to leave the output unchanged from being free.
      e.sensitivity = rel4 > 0 ? std::max(kl, 1e-9) / rel4 : 1.0;
      if (progress) progress(l * kLinearInputs + i + 1, total);
    }
}

}  // namespace micromix
