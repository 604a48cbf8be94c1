// Quantization plans: for every block and each of its four distinct linear inputs, the channel
// permutation and the MXFP4 | MXFP6 | MXFP8 split that both the weights and the activations of
// that input use. The lm_head, embeddings and attention stay in float (DESIGN.md section 3).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "micromix/calib.hpp"
#include "micromix/mixed_linear.hpp"
#include "micromix/model.hpp"
#include "micromix/mx_mixed.hpp"

namespace micromix {

inline constexpr int kLinearInputs = 4;  // attn_qkv, attn_output, ffn_gate_up, ffn_down

struct InputPlan {
  std::vector<int32_t> perm;  // (K)
  mx::MixedSplit split;
};

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
};
// The paper's allocation: counts from the threshold fractions, channels ranked by mean |x|.
QuantPlan plan_micromix(const ModelConfig& cfg, const ModelStats& stats, const MicromixOptions& mm,
                        MixedLinearOptions opt);

// Plan by scheme name: "mxfp4", "mxfp6" (MicromixOptions::fp6 element), "mxfp8", "micromix"
// (needs stats). Throws micromix::Error on an unknown name or missing statistics.
QuantPlan make_plan(const std::string& scheme, const ModelConfig& cfg, const ModelStats* stats,
                    const MicromixOptions& mm, MixedLinearOptions opt);

// A LinearFactory that builds MixedLinear layers following the plan (dense for the lm_head).
LinearFactory make_plan_factory(const QuantPlan& plan);

// Runs the float model over `samples` windows of `seqlen` tokens drawn from tokens (random
// offsets from a seeded generator; consecutive when the text is short) and collects statistics.
struct CalibrationOptions {
  int64_t samples = 128, seqlen = 2048;
  uint64_t seed = 0;
  std::function<void(int64_t done, int64_t total)> progress;
};
ModelStats calibrate(Model& model, std::span<const int32_t> tokens, const CalibrationOptions& opt);

}  // namespace micromix
