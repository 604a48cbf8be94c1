// Quantization plans: for every block and each of its four distinct linear inputs, the channel
// permutation and the MXFP4 | MXFP6 | MXFP8 split that both the weights and the activations of
// that input use. The lm_head, embeddings and attention stay in float (DESIGN.md section 3).
#pragma once
#include <array>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "micromix/calib.hpp"
#include "micromix/mixed_linear.hpp"
#include "micromix/model.hpp"
#include "micromix/mx_mixed.hpp"

namespace micromix {

inline constexpr int kLinearInputs = 4;  // attn_qkv, attn_output, ffn_gate_up, ffn_down

// The channel permutation (K) and the MXFP4 | MXFP6 | MXFP8 split of one input.
using InputPlan = calib::Allocation;

struct QuantPlan {
  std::string scheme;  // "mxfp4", "mxfp6", "mxfp8", "micromix", ...
  MixedLinearOptions options;
  std::vector<std::array<InputPlan, kLinearInputs>> layers;

  // Bits per weight and per activation value (scales included), weighted by each linear's MACs
  // (out * in per token). Weights and activations of an input share a split, so both are equal
  // unless activations are not quantized (then activations count 32 bits).
  double weight_bits(const ModelConfig& cfg) const;
  double activation_bits(const ModelConfig& cfg) const;
};

// Features of each linear input of a block.
int64_t linear_input_features(const ModelConfig& cfg, LinearInput which);

// Every input of every layer in one format (identity permutation). fp6 selects the MXFP6 variant.
QuantPlan plan_uniform(const ModelConfig& cfg, mx::ElemFormat f, MixedLinearOptions opt);

// Per-layer calibration statistics of the four inputs.
using ModelStats = std::vector<std::array<calib::InputStats, kLinearInputs>>;

struct MicromixOptions {
  int64_t granularity = 128;                  // segment sizes are multiples of this (32 allowed)
  mx::ElemFormat fp6 = mx::ElemFormat::fp6_e3m2;
  bool fp6_measured = false;                  // choose E3M2 or E2M3 per input by measured error
};

// Measured output error of every channel group of every input (calib::GroupErrors), computed on
// the calibration's sampled activation rows and the float weights of the model's linears.
using ModelErrors = std::vector<std::array<calib::GroupErrors, kLinearInputs>>;

// The (N, K) float weights of the linears one input feeds, stacked (q|k|v, gate|up). Throws
// micromix::Error unless those linears are float (DenseLinear).
std::vector<float> input_weights(const Model& model, int layer, LinearInput which, int64_t* n_out);

// Groups are `granularity` channels of the mean |x| ranking (32 when it does not divide K).
// Needs statistics collected with CalibrationOptions::sample_rows > 0.
ModelErrors measure_model_errors(const Model& float_model, const ModelStats& stats, int64_t granularity,
                                 const MixedLinearOptions& opt,
                                 const std::function<void(int done, int total)>& progress = {});

// Measures each input's sensitivity (calib::GroupErrors::sensitivity): the mean KL divergence of
// the model's next-token distributions over `tokens` (one window) when only that input's linears
// are all-MXFP4, divided by that input's MXFP4 relative output error. The model's projections are
// swapped in place and restored (also on error). Runs one forward pass per input.
void measure_sensitivity(Model& float_model, ModelErrors& errors, std::span<const int32_t> tokens,
                         const MixedLinearOptions& opt, const std::function<void(int done, int total)>& progress = {});

// Budgeted MicroMix: meets target_bits (MAC-weighted over the model, scales included) with the
// formats that reduce measured relative output error most per bit (calib::allocate_budget).
QuantPlan plan_budgeted(const ModelConfig& cfg, const ModelErrors& errors, double target_bits,
                        calib::Fp6Choice fp6, MixedLinearOptions opt);

// "micromix@5.5" -> 5.5; nullopt for any other scheme name. Throws on a malformed budget.
std::optional<double> scheme_target_bits(const std::string& scheme);
// True when make_plan needs ModelErrors for this scheme and options.
bool scheme_needs_errors(const std::string& scheme, const MicromixOptions& mm);
// The paper's allocation: counts from the threshold fractions, channels ranked by mean |x|.
QuantPlan plan_micromix(const ModelConfig& cfg, const ModelStats& stats, const MicromixOptions& mm,
                        MixedLinearOptions opt);

// Plan by scheme name: "mxfp4", "mxfp6" (MicromixOptions::fp6 element), "mxfp8", "micromix"
// (the paper's thresholds; needs stats, and errors when fp6_measured), "micromix@B" (budgeted to
// B bits; needs errors). Throws micromix::Error on an unknown name or missing inputs.
QuantPlan make_plan(const std::string& scheme, const ModelConfig& cfg, const ModelStats* stats,
                    const MicromixOptions& mm, MixedLinearOptions opt, const ModelErrors* errors = nullptr);

// A LinearFactory that builds MixedLinear layers following the plan (dense for the lm_head).
LinearFactory make_plan_factory(const QuantPlan& plan);

// Runs the float model over `samples` windows of `seqlen` tokens drawn from tokens (random
// offsets from a seeded generator; consecutive when the text is short) and collects statistics.
struct CalibrationOptions {
  int64_t samples = 128, seqlen = 2048;
  int64_t sample_rows = 0;  // > 0: also keep this many random activation rows per input (ModelErrors)
  uint64_t seed = 0;
  std::function<void(int64_t done, int64_t total)> progress;
};
ModelStats calibrate(Model& model, std::span<const int32_t> tokens, const CalibrationOptions& opt);

}  // namespace micromix
