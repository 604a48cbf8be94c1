// Calibration: run the float model over sample windows and collect the statistics of every
// distinct linear input through the model's observer hook.
#include <algorithm>
#include <random>

#include "micromix/error.hpp"
#include "micromix/quant_plan.hpp"

namespace micromix {

ModelStats calibrate(Model& model, std::span<const int32_t> tokens, const CalibrationOptions& opt) {
  const ModelConfig& cfg = model.config();
  MM_CHECK(opt.samples > 0 && opt.seqlen > 1, "calibration: need samples > 0 and seqlen > 1 (got {} x {})",
           opt.samples, opt.seqlen);
  const int64_t seqlen = std::min<int64_t>(opt.seqlen, cfg.max_ctx);
  MM_CHECK(static_cast<int64_t>(tokens.size()) >= seqlen,
           "calibration text has {} tokens, fewer than one window of {}", tokens.size(), seqlen);
  ModelStats stats;
  stats.reserve(static_cast<size_t>(cfg.n_layers));
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto make = [&](LinearInput which) {
      const uint64_t seed = opt.seed * 1000003u + static_cast<uint64_t>(l * kLinearInputs + static_cast<int>(which));
      return calib::InputStats(linear_input_features(cfg, which), opt.sample_rows, seed);
    };
    stats.push_back({make(LinearInput::attn_qkv), make(LinearInput::attn_output), make(LinearInput::ffn_gate_up),
                     make(LinearInput::ffn_down)});
  }
  // The observer is installed for the duration of the call and removed on every exit.
  model.set_linear_input_observer([&](int layer, LinearInput which, const float* x, int64_t n, int64_t) {
    stats[static_cast<size_t>(layer)][static_cast<int>(which)].add_tokens(x, n);
  });
  // Window starts: random (as the paper) when the text holds more than `samples` windows.
  const int64_t n_windows = static_cast<int64_t>(tokens.size()) / seqlen;
  std::vector<int64_t> starts;
  std::mt19937_64 rng(opt.seed);
  if (n_windows > opt.samples) {
    std::uniform_int_distribution<int64_t> pick(0, static_cast<int64_t>(tokens.size()) - seqlen);
    for (int64_t s = 0; s < opt.samples; ++s) starts.push_back(pick(rng));
  } else {
    for (int64_t s = 0; s < n_windows; ++s) starts.push_back(s * seqlen);
  }
  std::vector<float> logits;
  try {
    for (size_t s = 0; s < starts.size(); ++s) {
      KvCache cache = model.new_cache(seqlen);
      model.forward(tokens.subspan(static_cast<size_t>(starts[s]), static_cast<size_t>(seqlen)), cache, logits, 0);
      for (auto& layer : stats)
        for (auto& st : layer) st.end_sample();
      if (opt.progress) opt.progress(static_cast<int64_t>(s + 1), static_cast<int64_t>(starts.size()));
    }
  } catch (...) {
    model.set_linear_input_observer(nullptr);
    throw;
  }
  model.set_linear_input_observer(nullptr);
  return stats;
}

}  // namespace micromix
