// Quantization plans and the factory that turns a plan into MixedLinear layers.
#include <cmath>
#include <numeric>
#include <random>
#include <string>

#include "micromix/error.hpp"
#include "micromix/quant_plan.hpp"

namespace micromix {

int64_t linear_input_features(const ModelConfig& cfg, LinearInput which) {
  switch (which) {
    case LinearInput::attn_qkv:
    case LinearInput::ffn_gate_up: return cfg.hidden;
    case LinearInput::attn_output: return static_cast<int64_t>(cfg.n_heads) * cfg.head_dim;
    case LinearInput::ffn_down: return cfg.ffn;
  }
  return 0;
}

namespace {

// MACs per token of the linears fed by one input: sum over them of out features * in features.
int64_t input_macs(const ModelConfig& cfg, LinearInput which) {
  const int64_t k = linear_input_features(cfg, which);
  const int64_t q = static_cast<int64_t>(cfg.n_heads) * cfg.head_dim;
  const int64_t kv = static_cast<int64_t>(cfg.n_kv_heads) * cfg.head_dim;
  switch (which) {
    case LinearInput::attn_qkv: return k * (q + 2 * kv);
    case LinearInput::attn_output: return k * cfg.hidden;
    case LinearInput::ffn_gate_up: return k * 2 * cfg.ffn;
    case LinearInput::ffn_down: return k * cfg.hidden;
  }
  return 0;
}

double mac_weighted_bits(const QuantPlan& p, const ModelConfig& cfg, bool activations) {
  double bits = 0, macs = 0;
  for (const auto& layer : p.layers)
    for (int i = 0; i < kLinearInputs; ++i) {
      const double m = static_cast<double>(input_macs(cfg, static_cast<LinearInput>(i)));
      const double b = activations && !p.options.quantize_activations ? 32.0 : layer[i].split.average_bits();
      bits += m * b;
      macs += m;
    }
  return macs > 0 ? bits / macs : 0.0;
}

// "blk.N.attn_q.weight" -> (N, input); lm_head and anything else -> layer -1.
std::pair<int, LinearInput> classify(const std::string& name) {
  int layer = -1;
  char kind[64] = {0};
  if (std::sscanf(name.c_str(), "blk.%d.%63[a-z_]", &layer, kind) != 2) return {-1, LinearInput::attn_qkv};
  const std::string k = kind;
  if (k == "attn_q" || k == "attn_k" || k == "attn_v") return {layer, LinearInput::attn_qkv};
  if (k == "attn_output") return {layer, LinearInput::attn_output};
  if (k == "ffn_gate" || k == "ffn_up") return {layer, LinearInput::ffn_gate_up};
  if (k == "ffn_down") return {layer, LinearInput::ffn_down};
  return {-1, LinearInput::attn_qkv};
}

}  // namespace

double QuantPlan::weight_bits(const ModelConfig& cfg) const { return mac_weighted_bits(*this, cfg, false); }
double QuantPlan::activation_bits(const ModelConfig& cfg) const { return mac_weighted_bits(*this, cfg, true); }

QuantPlan plan_uniform(const ModelConfig& cfg, mx::ElemFormat f, MixedLinearOptions opt) {
  QuantPlan p;
  p.options = opt;
  p.scheme = f == mx::ElemFormat::fp4_e2m1 ? "mxfp4" : f == mx::ElemFormat::fp8_e4m3 ? "mxfp8" : "mxfp6";
  if (f == mx::ElemFormat::fp6_e2m3) p.scheme = "mxfp6_e2m3";
  p.layers.resize(static_cast<size_t>(cfg.n_layers));
  for (auto& layer : p.layers)
    for (int i = 0; i < kLinearInputs; ++i) {
      const int64_t k = linear_input_features(cfg, static_cast<LinearInput>(i));
      InputPlan& ip = layer[i];
      ip.perm = mx::identity_permutation(k);
      if (f == mx::ElemFormat::fp4_e2m1) ip.split.n4 = k;
      else if (f == mx::ElemFormat::fp8_e4m3) ip.split.n8 = k;
      else {
        ip.split.n6 = k;
        ip.split.fp6 = f;
      }
    }
  return p;
}

QuantPlan plan_micromix(const ModelConfig& cfg, const ModelStats& stats, const MicromixOptions& mm,
                        MixedLinearOptions opt) {
  MM_CHECK(static_cast<int>(stats.size()) == cfg.n_layers, "plan: statistics for {} layers, model has {}",
           stats.size(), cfg.n_layers);
  QuantPlan p;
  p.scheme = "micromix";
  p.options = opt;
  p.layers.resize(stats.size());
  for (size_t l = 0; l < stats.size(); ++l)
    for (int i = 0; i < kLinearInputs; ++i) {
      const calib::InputStats& st = stats[l][i];
      MM_CHECK(st.elements() > 0, "plan: layer {} input {} saw no calibration data", l,
               linear_input_name(static_cast<LinearInput>(i)));
      int64_t g = mm.granularity;
      if (st.channels() % g != 0) g = mx::kBlock;  // a width the granularity does not divide
      const calib::SegmentCounts c = calib::paper_counts(st.channels(), st.p6(), st.p8(), g);
      InputPlan& ip = p.layers[l][i];
      ip.perm = calib::rank_channels(st.max_mean_abs());
      ip.split = mx::MixedSplit{c.n4, c.n6, c.n8, mm.fp6};
    }
  return p;
}

QuantPlan make_plan(const std::string& scheme, const ModelConfig& cfg, const ModelStats* stats,
                    const MicromixOptions& mm, MixedLinearOptions opt, const ModelErrors* errors) {
  if (scheme == "mxfp4") return plan_uniform(cfg, mx::ElemFormat::fp4_e2m1, opt);
  if (scheme == "mxfp6") return plan_uniform(cfg, mm.fp6, opt);
  if (scheme == "mxfp8") return plan_uniform(cfg, mx::ElemFormat::fp8_e4m3, opt);
  const bool need_errors = scheme_needs_errors(scheme, mm);
  MM_CHECK(!need_errors || (errors && !errors->empty()), "scheme {}{} needs measured group errors (calibration rows)",
           scheme, mm.fp6_measured ? " with measured MXFP6 choice" : "");
  if (const auto bits = scheme_target_bits(scheme)) {
    const auto fp6 = mm.fp6_measured ? calib::Fp6Choice::measured
                     : mm.fp6 == mx::ElemFormat::fp6_e2m3 ? calib::Fp6Choice::e2m3
                                                          : calib::Fp6Choice::e3m2;
    return plan_budgeted(cfg, *errors, *bits, fp6, opt);
  }
  if (scheme == "micromix") {
    MM_CHECK(stats && !stats->empty(), "scheme micromix needs calibration statistics");
    QuantPlan p = plan_micromix(cfg, *stats, mm, opt);
    if (mm.fp6_measured)
      for (size_t l = 0; l < p.layers.size(); ++l)
        for (size_t i = 0; i < kLinearInputs; ++i)
          p.layers[l][i].split.fp6 = calib::choose_fp6((*errors)[l][i], calib::Fp6Choice::measured);
    return p;
  }
  fail("unknown scheme '{}' (expected mxfp4, mxfp6, mxfp8, micromix or micromix@BITS)", scheme);
}

LinearFactory make_plan_factory(const QuantPlan& plan) {
  return [&plan](LinearSpec&& spec) -> std::unique_ptr<Linear> {
    const auto [layer, which] = classify(spec.name);
    if (layer < 0) return make_dense_linear(std::move(spec));
    MM_CHECK(layer < static_cast<int>(plan.layers.size()), "plan has no layer {} (for {})", layer, spec.name);
    const InputPlan& ip = plan.layers[static_cast<size_t>(layer)][static_cast<int>(which)];
    MM_CHECK(ip.split.cols() == spec.in, "plan: {} has {} inputs, plan splits {}", spec.name, spec.in,
             ip.split.cols());
    return std::make_unique<MixedLinear>(spec.weight, spec.out, spec.in, ip.perm, ip.split, std::move(spec.bias),
                                         plan.options);
  };
}

}  // namespace micromix
