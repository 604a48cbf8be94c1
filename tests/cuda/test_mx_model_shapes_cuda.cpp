// The mixed MX GEMM on the full layer shapes of Llama-3.1-8B / 70B and Qwen2.5-7B / 32B (issue 5):
// default dispatch (decode path, mid-M split-K, prefill) and the prefill kernels, checked at randomly
// sampled outputs against double-precision dot products of the decoded operands. Operands are drawn
// directly as random codes and scales (every code of each format, no NaN), so no host quantization
// or full dequantization of 0.5-billion-element weights is needed. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "formats/test_mx_mixed_util.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"

using namespace mxmixed_test;
namespace cuda = micromix::cuda;

namespace {

struct LayerShape {
  const char* name;
  int64_t N, K;
};

// A (rows, K) mixed matrix of random codes (FP8: NaN codes 0x7F / 0xFF replaced) and random scales
// in 2^-9 .. 2^9, identity permutation, the 70/20/10 split.
MxMixedMatrix random_codes(int64_t rows, int64_t K, std::mt19937_64& g) {
  MxMixedMatrix m;
  m.rows = rows;
  m.cols = K;
  const int64_t blocks = K / 32, b4 = blocks * 7 / 10, b6 = blocks * 2 / 10;
  m.split = MixedSplit{b4 * 32, b6 * 32, (blocks - b4 - b6) * 32};
  m.perm = micromix::mx::identity_permutation(K);
  std::uniform_int_distribution<int> scale(118, 136);
  for (int s = 0; s < kSegments; ++s) {
    MxMatrix& seg = m.seg[s];
    seg.format = m.split.format(s);
    seg.rows = rows;
    seg.cols = m.split.count(s);
    seg.codes.resize(static_cast<size_t>(rows) * seg.row_bytes());
    for (size_t i = 0; i < seg.codes.size(); i += 8) {
      const uint64_t r = g();
      for (size_t b = 0; b < 8 && i + b < seg.codes.size(); ++b) {
        uint8_t c = static_cast<uint8_t>(r >> (8 * b));
        if (s == 2 && (c & 0x7F) == 0x7F) c = static_cast<uint8_t>(c - 1);
        seg.codes[i + b] = c;
      }
    }
    seg.scales.resize(static_cast<size_t>(rows * seg.blocks_per_row()));
    for (auto& v : seg.scales) v = static_cast<uint8_t>(scale(g));
  }
  return m;
}

// Row i of m in permuted order, decoded exactly in double.
std::vector<double> row_double(const MxMixedMatrix& m, int64_t i) {
  std::vector<double> out(static_cast<size_t>(m.cols));
  for (int s = 0; s < kSegments; ++s) {
    const MxMatrix& g = m.seg[s];
    const int bits = info(g.format).bits;
    for (int64_t j = 0; j < g.cols; ++j) {
      const int sc = g.scales[static_cast<size_t>(i * g.blocks_per_row() + j / kBlock)];
      const double v = mxref::decode(g.format, unpack_code(bits, g.codes.data() + i * g.row_bytes(), j));
      out[static_cast<size_t>(m.split.offset(s) + j)] = std::ldexp(v, sc - 127);
    }
  }
  return out;
}

}  // namespace

TEST(CudaMxMixedGemm, ModelLayerShapesMatchSampledDoubleProducts) {
  if (!cuda::available()) GTEST_SKIP() << "GPU test skipped: " << cuda::describe();
  const std::vector<std::pair<const char*, std::vector<LayerShape>>> models = {
      {"Llama-3.1-8B", {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}}},
      {"Llama-3.1-70B", {{"qkv", 10240, 8192}, {"o", 8192, 8192}, {"gate_up", 57344, 8192}, {"down", 8192, 28672}}},
      {"Qwen2.5-7B", {{"qkv", 4608, 3584}, {"o", 3584, 3584}, {"gate_up", 37888, 3584}, {"down", 3584, 18944}}},
      {"Qwen2.5-32B", {{"qkv", 7168, 5120}, {"o", 5120, 5120}, {"gate_up", 55296, 5120}, {"down", 5120, 27648}}},
  };
  std::mt19937_64 g{std::random_device{}()};
  // (M, kernel): the decode path, the mid-M default (v10, split-K), the prefill default (v15), v12
  // and v15 on prepared weights, the prepared decode path at M = 1 and at M = 45 (v13's rows kernel,
  // two token chunks).
  const std::pair<int64_t, int> runs[] = {{1, 0},
                                           {200, 0},
                                           {520, 0},
                                           {520, 12},
                                           {520, 18},
                                           {520, cuda::kGemmPreparedKernel},
                                           {520, cuda::kGemmPreparedV18Kernel},
                                           {1, cuda::kGemvPreparedKernel},
                                           {45, cuda::kGemmPreparedKernel}};
  for (const auto& [model, layers] : models)
    for (const LayerShape& L : layers) {
      const MxMixedMatrix w = random_codes(L.N, L.K, g);
      const MxMixedMatrix a_all = random_codes(520, L.K, g);
      for (const auto& [M, kernel] : runs) {
        MxMixedMatrix a = a_all;
        a.rows = M;
        for (auto& seg : a.seg) {
          seg.rows = M;
          seg.codes.resize(static_cast<size_t>(M) * seg.row_bytes());
          seg.scales.resize(static_cast<size_t>(M * seg.blocks_per_row()));
        }
        const auto y = cuda::mx_mixed_gemm_host(a, w, cuda::OutType::f32, kernel);
        ASSERT_EQ(y.size(), static_cast<size_t>(M * L.N));
        const std::string what = std::string(model) + " " + L.name + " M=" + std::to_string(M) + " kernel " + std::to_string(kernel);
        std::uniform_int_distribution<int64_t> pick_m(0, M - 1), pick_n(0, L.N - 1);
        for (int sample = 0; sample < 24; ++sample) {
          // The last rows and columns are sampled too (tile edges).
          const int64_t m = sample == 0 ? M - 1 : pick_m(g), n = sample == 1 ? L.N - 1 : pick_n(g);
          const auto ar = row_double(a, m), wr = row_double(w, n);
          double ref = 0, mag = 0;
          for (int64_t k = 0; k < L.K; ++k) {
            ref += ar[static_cast<size_t>(k)] * wr[static_cast<size_t>(k)];
            mag += std::fabs(ar[static_cast<size_t>(k)] * wr[static_cast<size_t>(k)]);
          }
          // FP32 accumulation of exact products: error well inside 4 sqrt(K) ulps of the magnitude sum.
          const double tol = 4.0 * std::sqrt(static_cast<double>(L.K)) * std::ldexp(mag, -24);
          ASSERT_NEAR(y[static_cast<size_t>(m * L.N + n)], ref, tol) << what << " at (" << m << ", " << n << ")";
        }
      }
    }
}
