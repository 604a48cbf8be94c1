// DenseLinear: float32 weights through the threaded matmul.
#include <omp.h>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"
#include "micromix/linear.hpp"

namespace micromix {

DenseLinear::DenseLinear(std::vector<float> weight, int64_t out, int64_t in, std::vector<float> bias)
    : out_(out), in_(in), w_(std::move(weight)), b_(std::move(bias)) {
  MM_CHECK(out > 0 && in > 0, "DenseLinear: bad shape ({}, {})", out, in);
  MM_CHECK(static_cast<int64_t>(w_.size()) == out * in, "DenseLinear: {} weights for shape ({}, {})", w_.size(), out,
           in);
  MM_CHECK(b_.empty() || static_cast<int64_t>(b_.size()) == out, "DenseLinear: bias of {} for {} outputs",
           b_.size(), out);
}

void DenseLinear::forward(const float* x, int64_t n_tokens, float* y) const {
  cpu::matmul_nt(x, n_tokens, in_, w_.data(), out_, y);
  if (b_.empty()) return;
#pragma omp parallel for if (n_tokens * out_ >= (1 << 16)) schedule(static)
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* yt = y + t * out_;
#pragma omp simd
    for (int64_t j = 0; j < out_; ++j) yt[j] += b_[static_cast<size_t>(j)];
  }
}

std::unique_ptr<Linear> make_dense_linear(LinearSpec&& spec) {
  MM_CHECK(!spec.weight.empty() || spec.out * spec.in == 0, "model has no tensor '{}'", spec.name);
  return std::make_unique<DenseLinear>(std::move(spec.weight), spec.out, spec.in, std::move(spec.bias));
}

}  // namespace micromix
