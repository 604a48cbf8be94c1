// Linear layers of the CPU engine: y = x W^T (+ b). The model builds every projection through a
// LinearFactory, so a quantized implementation can replace the float one layer by layer.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace micromix {

class Linear {
 public:
  virtual ~Linear() = default;
  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // x: (n_tokens, in) row-major; y: (n_tokens, out) row-major, overwritten. May use all threads;
  // must not be called from inside an OpenMP parallel region.
  virtual void forward(const float* x, int64_t n_tokens, float* y) const = 0;
};

// What a factory receives for one projection. The vectors may be moved from.
struct LinearSpec {
  std::string name;           // canonical weight name, e.g. "blk.3.attn_q.weight", "output.weight"
  int layer = -1;             // block index; -1 for the lm_head
  int64_t out = 0, in = 0;
  std::vector<float> weight;  // (out, in) row-major
  std::vector<float> bias;    // (out) or empty
};

using LinearFactory = std::function<std::unique_ptr<Linear>(LinearSpec&&)>;

// float32 weights, y = x W^T + b. Large weight matrices live in 2 MiB-aligned memory that asks
// the kernel for transparent huge pages: decoding streams every weight once per token, and 4 KiB
// pages would cost a TLB miss every 4 KiB of that stream.
class DenseLinear final : public Linear {
 public:
  // Throws micromix::Error when the sizes do not match (out, in) and (out) or empty.
  DenseLinear(const std::vector<float>& weight, int64_t out, int64_t in, std::vector<float> bias = {});
  int64_t in_features() const override { return in_; }
  int64_t out_features() const override { return out_; }
  void forward(const float* x, int64_t n_tokens, float* y) const override;
  std::span<const float> weight() const { return {w_.get(), static_cast<size_t>(out_ * in_)}; }
  const std::vector<float>& bias() const { return b_; }

 private:
  struct FreeAligned {
    void operator()(float* p) const;
  };
  int64_t out_, in_;
  std::unique_ptr<float, FreeAligned> w_;  // (out, in)
  std::vector<float> b_;                   // (out) or empty
};

// The default factory: a DenseLinear for every projection.
std::unique_ptr<Linear> make_dense_linear(LinearSpec&& spec);

}  // namespace micromix
