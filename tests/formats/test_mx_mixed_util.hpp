// Test helpers for mixed MX matrices: realistic random data, random splits and permutations, and
// an independent double-precision dequantizer (unpacks by hand, decodes with mxref).
#pragma once
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "formats/mx_reference.hpp"
#include "micromix/mx_mixed.hpp"

namespace mxmixed_test {

using namespace micromix::mx;

inline std::mt19937& rng() {
  static std::mt19937 g(std::random_device{}());
  return g;
}

// (rows, cols) LLM-like data: gaussian rows with per-channel gains (a few channels 10-100x larger:
// outliers) and a random per-row magnitude.
inline std::vector<float> llm_like(int64_t rows, int64_t cols) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> gain(static_cast<size_t>(cols));
  for (auto& g : gain) {
    const float u = ud(rng());
    g = u < 0.02f ? 10.0f + 90.0f * ud(rng()) : u < 0.2f ? 2.0f + 3.0f * ud(rng()) : 0.2f + ud(rng());
  }
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i) {
    const float rs = std::ldexp(1.0f, std::uniform_int_distribution<int>(-6, 6)(rng()));
    for (int64_t j = 0; j < cols; ++j) x[static_cast<size_t>(i * cols + j)] = nd(rng()) * gain[static_cast<size_t>(j)] * rs;
  }
  return x;
}

inline std::vector<int32_t> random_permutation(int64_t n) {
  std::vector<int32_t> p = identity_permutation(n);
  std::shuffle(p.begin(), p.end(), rng());
  return p;
}

// A random split of k (multiple of 32) into three multiples of 32, some possibly empty.
inline MixedSplit random_split(int64_t k) {
  const int64_t blocks = k / kBlock;
  std::uniform_int_distribution<int64_t> d(0, blocks);
  int64_t a = d(rng()), b = d(rng());
  if (a > b) std::swap(a, b);
  MixedSplit s;
  s.n4 = a * kBlock;
  s.n6 = (b - a) * kBlock;
  s.n8 = (blocks - b) * kBlock;
  s.fp6 = rng()() & 1 ? ElemFormat::fp6_e3m2 : ElemFormat::fp6_e2m3;
  return s;
}

// Code i of a packed row, unpacked from the layout documented in mx_pack.hpp.
inline unsigned unpack_code(int bits, const uint8_t* row, int64_t i) {
  if (bits == 4) return (row[i / 2] >> ((i % 2) * 4)) & 0xFu;
  if (bits == 6) {
    const uint8_t* g = row + (i / 4) * 3;
    const unsigned w = g[0] | (g[1] << 8) | (g[2] << 16);
    return (w >> (6 * (i % 4))) & 0x3Fu;
  }
  return row[i];
}

// (rows, cols) in permuted order, in double.
inline std::vector<double> dequant_double(const MxMixedMatrix& m) {
  std::vector<double> out(static_cast<size_t>(m.rows * m.cols));
  for (int s = 0; s < kSegments; ++s) {
    const MxMatrix& g = m.seg[s];
    const int bits = info(g.format).bits;
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < g.cols; ++j) {
        const uint8_t sc = g.scales[static_cast<size_t>(i * (g.cols / kBlock) + j / kBlock)];
        const double v = mxref::decode(g.format, unpack_code(bits, g.codes.data() + i * g.row_bytes(), j));
        out[static_cast<size_t>(i * m.cols + m.split.offset(s) + j)] =
            sc == 0xFF ? std::nan("") : std::ldexp(v, static_cast<int>(sc) - 127);
      }
  }
  return out;
}

// y (M, N) = a (M, K) . b (N, K)^T in double.
inline std::vector<double> matmul_nt_double(const std::vector<double>& a, const std::vector<double>& b, int64_t M,
                                            int64_t N, int64_t K) {
  std::vector<double> y(static_cast<size_t>(M * N));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k) s += a[static_cast<size_t>(i * K + k)] * b[static_cast<size_t>(j * K + k)];
      y[static_cast<size_t>(i * N + j)] = s;
    }
  return y;
}

// ||got - ref||_F / ||ref||_F; +inf when got holds a NaN/Inf.
template <typename T>
double rel_frobenius(const std::vector<T>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = static_cast<double>(got[i]);
    if (!std::isfinite(g)) return INFINITY;
    num += (g - ref[i]) * (g - ref[i]);
    den += ref[i] * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

}  // namespace mxmixed_test
