// Measured output error of each channel group in each MX format (calib.hpp, budgeted allocation).
#include <cmath>

#include "cpu/kernels.hpp"
#include "micromix/calib.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"

namespace micromix::calib {

namespace {

// Dequantized MX round trip of `rows` rows of n values each (n % 32 == 0), in place.
void mx_round_trip(mx::ElemFormat f, mx::ScaleRule rule, mx::Rounding r, float* x, int64_t rows, int64_t n) {
  std::vector<uint8_t> codes(mx::packed_row_bytes(f, n)), scales(static_cast<size_t>(n / mx::kBlock));
  for (int64_t i = 0; i < rows; ++i) {
    mx::quantize_row(f, rule, r, x + i * n, n, codes.data(), scales.data());
    mx::dequantize_row(f, codes.data(), scales.data(), n, x + i * n);
  }
}

double sum_squares(const float* y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(y[i]) * static_cast<double>(y[i]);
  return s;
}

}  // namespace

GroupErrors measure_group_errors(std::span<const float> x, int64_t rows, std::span<const float> w, int64_t n,
                                 int64_t k, std::vector<int32_t> order, int64_t group, mx::ScaleRule rule,
                                 mx::Rounding r, bool quantize_activations) {
  MM_CHECK(rows > 0, "measured allocation: no sampled activation rows (calibrate with a row sample)");
  MM_CHECK(n > 0 && k > 0, "measured allocation: bad shape {} x {}", n, k);
  MM_CHECK(static_cast<int64_t>(x.size()) == rows * k, "measured allocation: {} activation values for {} x {}",
           x.size(), rows, k);
  MM_CHECK(static_cast<int64_t>(w.size()) == n * k, "measured allocation: {} weights for {} x {}", w.size(), n, k);
  MM_CHECK(group > 0 && group % mx::kBlock == 0 && k % group == 0,
           "measured allocation: group of {} channels must be a multiple of 32 dividing {}", group, k);
  check_permutation(order, k);

  GroupErrors out;
  out.group = group;
  out.out_features = n;
  out.order = std::move(order);
  const int64_t n_groups = k / group;
  out.err.assign(static_cast<size_t>(n_groups), {});

  {  // Reference energy || X W^T ||^2.
    std::vector<float> y(static_cast<size_t>(rows * n));
    cpu::matmul_nt(x.data(), rows, k, w.data(), n, y.data());
    out.reference = sum_squares(y.data(), rows * n);
  }

  // One task per (group, format): A = [X_G | Q(X_G)] (rows, 2g), B = [W_G | -Q(W_G)] (n, 2g), and
  // A B^T = X_G W_G^T - Q(X_G) Q(W_G)^T in one product.
  const int64_t tasks = n_groups * static_cast<int64_t>(kGroupFormats.size());
  const int64_t g2 = 2 * group;
#pragma omp parallel
  {
    std::vector<float> a(static_cast<size_t>(rows * g2)), b(static_cast<size_t>(n * g2)), d(static_cast<size_t>(rows * n));
    std::vector<float> tmp(static_cast<size_t>(std::max(rows, n) * group));
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t gi = t / static_cast<int64_t>(kGroupFormats.size());
      const size_t fi = static_cast<size_t>(t % static_cast<int64_t>(kGroupFormats.size()));
      const mx::ElemFormat f = kGroupFormats[fi];
      const int32_t* ch = out.order.data() + gi * group;
      // Activations: gather, copy, quantize the copy.
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < group; ++j) tmp[static_cast<size_t>(i * group + j)] = x[static_cast<size_t>(i * k + ch[j])];
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < group; ++j) a[static_cast<size_t>(i * g2 + j)] = tmp[static_cast<size_t>(i * group + j)];
      if (quantize_activations) mx_round_trip(f, rule, r, tmp.data(), rows, group);
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < group; ++j) a[static_cast<size_t>(i * g2 + group + j)] = tmp[static_cast<size_t>(i * group + j)];
      // Weights: same, the quantized half negated.
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < group; ++j) tmp[static_cast<size_t>(i * group + j)] = w[static_cast<size_t>(i * k + ch[j])];
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < group; ++j) b[static_cast<size_t>(i * g2 + j)] = tmp[static_cast<size_t>(i * group + j)];
      mx_round_trip(f, rule, r, tmp.data(), n, group);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < group; ++j) b[static_cast<size_t>(i * g2 + group + j)] = -tmp[static_cast<size_t>(i * group + j)];
      // Our own kernel: OpenBLAS called from several OpenMP threads at once is much slower.
      cpu::gemm_nt_own(rows, n, g2, a.data(), g2, b.data(), g2, d.data(), n);
      out.err[static_cast<size_t>(gi)][fi] = sum_squares(d.data(), rows * n);
    }
  }
  for (const auto& e : out.err)
    for (double v : e) MM_CHECK(std::isfinite(v), "measured allocation: non-finite output error (NaN/Inf in activations or weights?)");
  return out;
}

}  // namespace micromix::calib
