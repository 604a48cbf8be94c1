// CPU MicroMix linear layer. Work per call: the activations are permuted + quantized + dequantized
// once (n_tokens x K), then the packed weights are dequantized tile by tile into a thread-local
// float buffer that stays in cache and multiplied with a single-threaded GEMM. The weights are
// never held in float beyond one tile, so resident memory stays at MX size.
#include "micromix/mixed_linear.hpp"

#include <algorithm>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"

namespace micromix {

namespace {
constexpr int64_t kTileRows = 64;  // weight rows dequantized at once: 64 x K floats per thread
}

MixedLinear::MixedLinear(const std::vector<float>& weight, int64_t out, int64_t in, std::vector<int32_t> perm,
                         const mx::MixedSplit& split, std::vector<float> bias, MixedLinearOptions opt)
    : b_(std::move(bias)), opt_(opt) {
  MM_CHECK(static_cast<int64_t>(weight.size()) == out * in, "MixedLinear: {} weights for ({}, {})", weight.size(),
           out, in);
  MM_CHECK(b_.empty() || static_cast<int64_t>(b_.size()) == out, "MixedLinear: bias of {} for {} outputs",
           b_.size(), out);
  w_ = mx::quantize_mixed(weight, out, in, perm, split, opt.rule, opt.rounding);
}

MixedLinear::MixedLinear(mx::MxMixedMatrix weight, std::vector<float> bias, MixedLinearOptions opt)
    : w_(std::move(weight)), b_(std::move(bias)), opt_(opt) {
  mx::validate_mixed(w_);
  MM_CHECK(b_.empty() || static_cast<int64_t>(b_.size()) == w_.rows, "MixedLinear: bias of {} for {} outputs",
           b_.size(), w_.rows);
}

void quantize_activations_mixed(const float* x, int64_t n_tokens, const std::vector<int32_t>& perm,
                                const mx::MixedSplit& split, const MixedLinearOptions& opt, float* out) {
  const int64_t k = split.cols();
  const size_t max_seg_bytes = mx::packed_row_bytes(mx::ElemFormat::fp8_e4m3, k);
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(k));
    std::vector<uint8_t> packed(max_seg_bytes), scales(static_cast<size_t>(k / mx::kBlock));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* xt = x + t * k;
      float* ot = out + t * k;
      float* p = opt.quantize_activations ? row.data() : ot;
      for (int64_t j = 0; j < k; ++j) p[j] = xt[perm[static_cast<size_t>(j)]];
      if (!opt.quantize_activations) continue;
      for (int s = 0; s < mx::kSegments; ++s) {
        const int64_t n = split.count(s), off = split.offset(s);
        if (n == 0) continue;
        mx::quantize_row(split.format(s), opt.rule, opt.rounding, p + off, n, packed.data(), scales.data());
        mx::dequantize_row(split.format(s), packed.data(), scales.data(), n, ot + off);
      }
    }
  }
}

void MixedLinear::forward(const float* x, int64_t n_tokens, float* y) const {
  const int64_t k = w_.cols, n_out = w_.rows;
  if (n_tokens <= 0) return;
  std::vector<float> a(static_cast<size_t>(n_tokens * k));  // (n_tokens, K) permuted, dequantized
  quantize_activations_mixed(x, n_tokens, w_.perm, w_.split, opt_, a.data());
  const int64_t tiles = (n_out + kTileRows - 1) / kTileRows;
#pragma omp parallel
  {
    std::vector<float> wt(static_cast<size_t>(kTileRows * k));  // (tile rows, K) permuted
#pragma omp for schedule(dynamic, 1)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t r0 = tile * kTileRows, rows = std::min(kTileRows, n_out - r0);
      for (int64_t i = 0; i < rows; ++i)
        for (int s = 0; s < mx::kSegments; ++s) {
          const mx::MxMatrix& g = w_.seg[s];
          if (g.cols == 0) continue;
          const int64_t r = r0 + i;
          mx::dequantize_row(g.format, g.codes.data() + r * static_cast<int64_t>(g.row_bytes()),
                             g.scales.data() + r * g.blocks_per_row(), g.cols, wt.data() + i * k + w_.split.offset(s));
        }
      cpu::gemm_nt(n_tokens, rows, k, a.data(), k, wt.data(), k, y + r0, n_out);
      if (!b_.empty())
        for (int64_t t = 0; t < n_tokens; ++t)
          for (int64_t i = 0; i < rows; ++i) y[t * n_out + r0 + i] += b_[static_cast<size_t>(r0 + i)];
    }
  }
}

}  // namespace micromix
