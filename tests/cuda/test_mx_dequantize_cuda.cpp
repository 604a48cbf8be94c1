// GPU dequantization against the CPU for every format; skipped (with the reason) without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "micromix/cuda.hpp"

using namespace micromix;

TEST(CudaMxDequantize, MatchesCpuForEveryFormat) {
  if (!cuda::available()) GTEST_SKIP() << "GPU test skipped: " << cuda::describe();
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (mx::ElemFormat f : mx::kAllFormats)
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {37, 160}, {129, 4096}}) {
      std::vector<float> x(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = nd(g) * std::ldexp(1.0f, static_cast<int>(g() % 40) - 20);
      const auto m = mx::quantize_matrix(f, mx::ScaleRule::ocp, mx::Rounding::even, x, rows, cols);
      std::vector<float> cpu(x.size()), gpu(x.size());
      mx::dequantize_matrix(m, cpu);
      cuda::mx_dequantize_host(m, gpu);
      EXPECT_EQ(std::memcmp(cpu.data(), gpu.data(), cpu.size() * sizeof(float)), 0)
          << mx::info(f).name << " " << rows << "x" << cols;
    }
}
