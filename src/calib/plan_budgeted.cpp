// Budgeted MicroMix plans: measured group errors for every input of the model, then
// calib::allocate_budget over all of them at once (the budget is model-wide).
#include <charconv>
#include <cmath>

#include "micromix/error.hpp"
#include "micromix/quant_plan.hpp"

namespace micromix {

std::vector<float> input_weights(const Model& model, int layer, LinearInput which, int64_t* n_out) {
  const Model::Layer& L = model.layer(layer);
  std::vector<const Linear*> parts;
  switch (which) {
    case LinearInput::attn_qkv: parts = {L.q.get(), L.k.get(), L.v.get()}; break;
    case LinearInput::attn_output: parts = {L.o.get()}; break;
    case LinearInput::ffn_gate_up: parts = {L.gate.get(), L.up.get()}; break;
    case LinearInput::ffn_down: parts = {L.down.get()}; break;
  }
  std::vector<float> w;
  int64_t n = 0;
  for (const Linear* p : parts) {
    const auto* d = dynamic_cast<const DenseLinear*>(p);
    MM_CHECK(d, "layer {} {}: measured allocation needs the float model's weights (this linear is already quantized)",
             layer, linear_input_name(which));
    w.insert(w.end(), d->weight().begin(), d->weight().end());
    n += d->out_features();
  }
  if (n_out) *n_out = n;
  return w;
}

ModelErrors measure_model_errors(const Model& float_model, const ModelStats& stats, int64_t granularity,
                                 const MixedLinearOptions& opt, const std::function<void(int, int)>& progress) {
  const ModelConfig& cfg = float_model.config();
  MM_CHECK(static_cast<int>(stats.size()) == cfg.n_layers, "measured allocation: statistics for {} layers, model has {}",
           stats.size(), cfg.n_layers);
  MM_CHECK(granularity > 0 && granularity % mx::kBlock == 0, "--granularity {} is not a positive multiple of 32",
           granularity);
  ModelErrors out(stats.size());
  for (size_t l = 0; l < stats.size(); ++l) {
    for (int i = 0; i < kLinearInputs; ++i) {
      const auto which = static_cast<LinearInput>(i);
      const calib::InputStats& st = stats[l][static_cast<size_t>(i)];
      const calib::RowSample& rows = st.sample();
      MM_CHECK(rows.rows() > 0, "layer {} {}: calibration kept no activation rows (CalibrationOptions::sample_rows)",
               l, linear_input_name(which));
      int64_t n = 0;
      const std::vector<float> w = input_weights(float_model, static_cast<int>(l), which, &n);
      const int64_t k = st.channels();
      const int64_t g = k % granularity == 0 ? granularity : mx::kBlock;
      out[l][static_cast<size_t>(i)] =
          calib::measure_group_errors(rows.data(), rows.rows(), w, n, k, calib::rank_channels(st.max_mean_abs()), g,
                                      opt.rule, opt.rounding, opt.quantize_activations);
    }
    if (progress) progress(static_cast<int>(l + 1), static_cast<int>(stats.size()));
  }
  return out;
}

QuantPlan plan_budgeted(const ModelConfig& cfg, const ModelErrors& errors, double target_bits, calib::Fp6Choice fp6,
                        MixedLinearOptions opt) {
  MM_CHECK(static_cast<int>(errors.size()) == cfg.n_layers, "plan: errors for {} layers, model has {}", errors.size(),
           cfg.n_layers);
  std::vector<calib::GroupErrors> flat;
  flat.reserve(errors.size() * kLinearInputs);
  for (const auto& layer : errors)
    for (const auto& e : layer) flat.push_back(e);
  const auto alloc = calib::allocate_budget(flat, target_bits, fp6);
  QuantPlan p;
  p.scheme = fmt::format("micromix@{:g}", target_bits);
  p.options = opt;
  p.layers.resize(errors.size());
  for (size_t l = 0; l < errors.size(); ++l)
    for (size_t i = 0; i < kLinearInputs; ++i) p.layers[l][i] = alloc[l * kLinearInputs + i];
  return p;
}

std::optional<double> scheme_target_bits(const std::string& scheme) {
  const std::string prefix = "micromix@";
  if (scheme.rfind(prefix, 0) != 0) return std::nullopt;
  const std::string v = scheme.substr(prefix.size());
  double b = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), b);
  MM_CHECK(ec == std::errc() && end == v.data() + v.size() && std::isfinite(b),
           "scheme '{}': expected micromix@BITS, e.g. micromix@5.0", scheme);
  MM_CHECK(b >= 4.25, "scheme '{}': {} bits is below all-MXFP4 (4.25 bits per value with scales)", scheme, b);
  return b;
}

bool scheme_needs_errors(const std::string& scheme, const MicromixOptions& mm) {
  return scheme_target_bits(scheme).has_value() || (scheme == "micromix" && mm.fp6_measured);
}

}  // namespace micromix
