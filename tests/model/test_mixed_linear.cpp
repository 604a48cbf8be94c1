// MixedLinear == dequantize-then-matmul (float reassociation tolerance) on random shapes and
// segment sizes, including empty segments and weight-only mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "micromix/mixed_linear.hpp"
#include "micromix/mx_pack.hpp"

using namespace micromix;

namespace {
// Independent reference: quantize one row's segments with the scalar codec after permuting,
// then a double-precision dot product.
std::vector<double> quantized_row_ref(const float* x, const std::vector<int32_t>& perm, const mx::MixedSplit& sp,
                                      bool quantize) {
  const int64_t k = sp.cols();
  std::vector<float> p(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) p[j] = x[perm[j]];
  std::vector<double> out(p.begin(), p.end());
  if (!quantize) return out;
  for (int s = 0; s < 3; ++s) {
    const int64_t n = sp.count(s), off = sp.offset(s);
    if (!n) continue;
    std::vector<uint8_t> codes(n), scales(n / 32);
    std::vector<float> deq(n);
    mx::quantize(sp.format(s), mx::ScaleRule::ocp, mx::Rounding::even, std::span<const float>(p.data() + off, n),
                 codes, scales);
    mx::dequantize(sp.format(s), codes, scales, deq);
    for (int64_t j = 0; j < n; ++j) out[off + j] = deq[j];
  }
  return out;
}
}  // namespace

TEST(MixedLinear, EqualsDequantizeThenMatmul) {
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int it = 0; it < 12; ++it) {
    const int64_t blocks = 1 + g() % 12, k = 32 * blocks;
    const int64_t out = 1 + g() % 150, n_tok = 1 + g() % 9;
    // Random split, empty segments included.
    int64_t b4 = g() % (blocks + 1), b6 = g() % (blocks - b4 + 1);
    if (it == 0) b4 = blocks, b6 = 0;      // all MXFP4
    if (it == 1) b4 = 0, b6 = 0;           // all MXFP8
    mx::MixedSplit sp{32 * b4, 32 * b6, 32 * (blocks - b4 - b6), (it % 2) ? mx::ElemFormat::fp6_e2m3 : mx::ElemFormat::fp6_e3m2};
    std::vector<int32_t> perm(k);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), g);
    std::vector<float> w(out * k), x(n_tok * k), bias(out);
    for (auto& v : w) v = nd(g) * 0.1f;
    for (auto& v : x) v = nd(g);
    for (auto& v : bias) v = nd(g);
    x[g() % x.size()] = 80.0f;  // an outlier activation
    const bool quant_act = it % 3 != 2;
    MixedLinearOptions opt;
    opt.quantize_activations = quant_act;
    MixedLinear lin(w, out, k, perm, sp, bias, opt);
    std::vector<float> y(n_tok * out, NAN);
    lin.forward(x.data(), n_tok, y.data());
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto xq = quantized_row_ref(x.data() + t * k, perm, sp, quant_act);
      for (int64_t o = 0; o < out; ++o) {
        const auto wq = quantized_row_ref(w.data() + o * k, perm, sp, true);
        double ref = bias[o], mag = std::fabs(bias[o]);
        for (int64_t j = 0; j < k; ++j) ref += xq[j] * wq[j], mag += std::fabs(xq[j] * wq[j]);
        // float32 reassociation: each term's product is exact; sums of K terms err by <= K * 2^-24 * sum|terms|.
        ASSERT_NEAR(y[t * out + o], ref, 1e-6 * static_cast<double>(k) * mag + 1e-30)
            << "it " << it << " t " << t << " o " << o << " split " << sp.n4 << "/" << sp.n6 << "/" << sp.n8;
      }
    }
  }
}
