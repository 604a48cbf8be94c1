// DenseLinear: float32 weights through the threaded matmul.
#include <omp.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"
#include "micromix/linear.hpp"

namespace micromix {

namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Weight storage: 2 MiB aligned and advised for huge pages when rounding up to whole huge pages
// wastes at most a quarter of the size (SmolLM2's 3.4 MiB MLP matrices qualify, its 1.3 MiB
// attention matrices do not), 64-byte aligned otherwise. Untouched until the copy, so the first
// touch already gets huge pages where the kernel has them.
float* alloc_weights(size_t n) {
  const size_t bytes = n * sizeof(float);
  const size_t huge_size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const size_t align = huge_size - bytes <= bytes / 4 ? kHugePage : 64;
  const size_t size = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, size);
  MM_CHECK(p, "DenseLinear: out of memory allocating {} MB of weights", bytes >> 20);
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);  // advice only: failure is harmless
#endif
  return static_cast<float*>(p);
}

}  // namespace

void DenseLinear::FreeAligned::operator()(float* p) const { std::free(p); }

DenseLinear::DenseLinear(const std::vector<float>& weight, int64_t out, int64_t in, std::vector<float> bias)
    : out_(out), in_(in), b_(std::move(bias)) {
  MM_CHECK(out > 0 && in > 0, "DenseLinear: bad shape ({}, {})", out, in);
  MM_CHECK(static_cast<int64_t>(weight.size()) == out * in, "DenseLinear: {} weights for shape ({}, {})",
           weight.size(), out, in);
  w_.reset(alloc_weights(weight.size()));
  std::memcpy(w_.get(), weight.data(), weight.size() * sizeof(float));
  MM_CHECK(b_.empty() || static_cast<int64_t>(b_.size()) == out, "DenseLinear: bias of {} for {} outputs",
           b_.size(), out);
}

void DenseLinear::forward(const float* x, int64_t n_tokens, float* y) const {
  cpu::matmul_nt(x, n_tokens, in_, w_.get(), out_, y);
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
  auto linear = std::make_unique<DenseLinear>(spec.weight, spec.out, spec.in, std::move(spec.bias));
  std::vector<float>().swap(spec.weight);  // the float copy is not needed twice
  return linear;
}

}  // namespace micromix
