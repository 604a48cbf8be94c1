// MicroMix's quantized linear layer on the CPU: y = Q(x P) . Q(W P)^T + b, where P permutes the
// input channels, and Q quantizes each row's K segments as MXFP4 | MXFP6 | MXFP8 (mx_mixed.hpp).
// Weights are stored packed (one copy, MX size); activations are permuted and quantized per token
// on the fly, exactly as the GPU kernels do.
#pragma once
#include <cstdint>
#include <vector>

#include "micromix/linear.hpp"
#include "micromix/mx_mixed.hpp"

namespace micromix {

struct MixedLinearOptions {
  mx::ScaleRule rule = mx::ScaleRule::ocp;
  mx::Rounding rounding = mx::Rounding::even;
  bool quantize_activations = true;  // false: weight-only quantization (activations stay float)
};

class MixedLinear final : public Linear {
 public:
  // weight: (out, in) float row-major; perm and split over the in channels.
  MixedLinear(const std::vector<float>& weight, int64_t out, int64_t in, std::vector<int32_t> perm,
              const mx::MixedSplit& split, std::vector<float> bias = {}, MixedLinearOptions opt = {});
  // From already quantized weights (e.g. a checkpoint).
  MixedLinear(mx::MxMixedMatrix weight, std::vector<float> bias, MixedLinearOptions opt);

  int64_t in_features() const override { return w_.cols; }
  int64_t out_features() const override { return w_.rows; }
  void forward(const float* x, int64_t n_tokens, float* y) const override;

  const mx::MxMixedMatrix& weight() const { return w_; }
  const std::vector<float>& bias() const { return b_; }
  const MixedLinearOptions& options() const { return opt_; }

 private:
  mx::MxMixedMatrix w_;
  std::vector<float> b_;
  MixedLinearOptions opt_;
};

// Permutes and (optionally) quantizes activation rows exactly as MixedLinear does:
// x (n_tokens, K) -> out (n_tokens, K) dequantized values in PERMUTED order.
void quantize_activations_mixed(const float* x, int64_t n_tokens, const std::vector<int32_t>& perm,
                                const mx::MixedSplit& split, const MixedLinearOptions& opt, float* out);

}  // namespace micromix
