// Mixed FP4 | FP6 | FP8 MX matrices: validation, quantization of permuted rows, dequantization.
#include "micromix/mx_mixed.hpp"

#include <numeric>

#include "micromix/error.hpp"

namespace micromix::mx {

double MixedSplit::average_bits() const {
  const int64_t k = cols();
  if (k == 0) return 0.0;
  double bits = 0.0;
  for (int s = 0; s < kSegments; ++s) bits += static_cast<double>(count(s)) * bits_per_value(format(s));
  return bits / static_cast<double>(k);
}

void validate_split(const MixedSplit& s, int64_t cols) {
  for (int i = 0; i < kSegments; ++i)
    MM_CHECK(s.count(i) >= 0 && s.count(i) % kBlock == 0,
             "mixed split: {} segment has {} channels, not a non-negative multiple of {}",
             info(s.format(i)).name, s.count(i), kBlock);
  MM_CHECK(s.cols() == cols, "mixed split: n4 + n6 + n8 = {} + {} + {} = {} != {} columns", s.n4, s.n6, s.n8,
           s.cols(), cols);
  MM_CHECK(s.fp6 == ElemFormat::fp6_e3m2 || s.fp6 == ElemFormat::fp6_e2m3,
           "mixed split: the FP6 segment must be E3M2 or E2M3, not {}", info(s.fp6).elem);
}

void validate_permutation(std::span<const int32_t> perm, int64_t cols) {
  MM_CHECK(static_cast<int64_t>(perm.size()) == cols, "permutation: {} entries for {} columns", perm.size(),
           cols);
  std::vector<bool> seen(static_cast<size_t>(cols), false);
  for (size_t j = 0; j < perm.size(); ++j) {
    const int32_t p = perm[j];
    MM_CHECK(p >= 0 && p < cols, "permutation: entry {} is {}, outside [0, {})", j, p, cols);
    MM_CHECK(!seen[static_cast<size_t>(p)], "permutation: column {} appears twice (again at entry {})", p, j);
    seen[static_cast<size_t>(p)] = true;
  }
}

std::vector<int32_t> identity_permutation(int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  return p;
}

void validate_mixed(const MxMixedMatrix& m) {
  MM_CHECK(m.rows >= 0, "mixed matrix: negative rows {}", m.rows);
  validate_split(m.split, m.cols);
  validate_permutation(m.perm, m.cols);
  for (int s = 0; s < kSegments; ++s) {
    const MxMatrix& g = m.seg[s];
    MM_CHECK(g.format == m.split.format(s) && g.rows == m.rows && g.cols == m.split.count(s) &&
                 g.codes.size() == static_cast<size_t>(g.rows) * g.row_bytes() &&
                 g.scales.size() == static_cast<size_t>(g.rows * g.blocks_per_row()),
             "mixed matrix: segment {} ({}) storage does not match ({}, {})", s, info(m.split.format(s)).name,
             m.rows, m.split.count(s));
  }
}

MxMixedMatrix quantize_mixed(std::span<const float> x, int64_t rows, int64_t cols, std::span<const int32_t> perm,
                             const MixedSplit& split, ScaleRule rule, Rounding r) {
  MM_CHECK(rows >= 0 && cols >= 0, "quantize_mixed: negative shape ({}, {})", rows, cols);
  MM_CHECK(static_cast<int64_t>(x.size()) == rows * cols, "quantize_mixed: {} values for a ({}, {}) matrix",
           x.size(), rows, cols);
  validate_split(split, cols);
  validate_permutation(perm, cols);
  MxMixedMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.split = split;
  m.perm.assign(perm.begin(), perm.end());
  for (int s = 0; s < kSegments; ++s) {
    MxMatrix& g = m.seg[s];
    g.format = split.format(s);
    g.rows = rows;
    g.cols = split.count(s);
    g.codes.resize(static_cast<size_t>(rows) * g.row_bytes());
    g.scales.resize(static_cast<size_t>(rows * g.blocks_per_row()));
  }
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<float> p(static_cast<size_t>(cols));
    const float* xi = x.data() + i * cols;
    for (int64_t j = 0; j < cols; ++j) p[static_cast<size_t>(j)] = xi[perm[static_cast<size_t>(j)]];
    for (int s = 0; s < kSegments; ++s) {
      MxMatrix& g = m.seg[s];
      if (g.cols == 0) continue;
      quantize_row(g.format, rule, r, p.data() + split.offset(s), g.cols, g.codes.data() + i * g.row_bytes(),
                   g.scales.data() + i * g.blocks_per_row());
    }
  }
  return m;
}

void dequantize_mixed_permuted(const MxMixedMatrix& m, std::span<float> out) {
  validate_mixed(m);
  MM_CHECK(out.size() == static_cast<size_t>(m.rows * m.cols), "dequantize_mixed: output size {} != {}",
           out.size(), m.rows * m.cols);
#pragma omp parallel for schedule(static) if (m.rows * m.cols > (1 << 16))
  for (int64_t i = 0; i < m.rows; ++i)
    for (int s = 0; s < kSegments; ++s) {
      const MxMatrix& g = m.seg[s];
      if (g.cols == 0) continue;
      dequantize_row(g.format, g.codes.data() + i * g.row_bytes(), g.scales.data() + i * g.blocks_per_row(),
                     g.cols, out.data() + i * m.cols + m.split.offset(s));
    }
}

void dequantize_mixed(const MxMixedMatrix& m, std::span<float> out) {
  std::vector<float> p(out.size());
  dequantize_mixed_permuted(m, p);
  for (int64_t i = 0; i < m.rows; ++i)
    for (int64_t j = 0; j < m.cols; ++j)
      out[static_cast<size_t>(i * m.cols + m.perm[static_cast<size_t>(j)])] = p[static_cast<size_t>(i * m.cols + j)];
}

}  // namespace micromix::mx
