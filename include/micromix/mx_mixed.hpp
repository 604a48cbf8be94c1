// Mixed-precision MX matrices, MicroMix style: the K channels are permuted and split into three
// contiguous segments stored as MXFP4 (E2M1) | MXFP6 (E3M2 or E2M3) | MXFP8 (E4M3).
//
//   permuted column j holds original column perm[j]        perm: (cols) a permutation of [0, cols)
//   segment s covers permuted columns [offset(s), offset(s) + n_s), n_s a multiple of 32, may be 0
//   seg[s] is an ordinary packed MxMatrix (rows, n_s) (layout in mx_pack.hpp)
//
// Activations and the weights they multiply share one perm and one split, so a GEMM over the
// permuted K gives the same sums as over the original K.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "micromix/mx_pack.hpp"

namespace micromix::mx {

inline constexpr int kSegments = 3;  // FP4 | FP6 | FP8, in this order along the permuted K

struct MixedSplit {
  int64_t n4 = 0, n6 = 0, n8 = 0;
  ElemFormat fp6 = ElemFormat::fp6_e3m2;  // the paper's MXFP6; E2M3 allowed

  int64_t cols() const { return n4 + n6 + n8; }
  int64_t count(int seg) const { return seg == 0 ? n4 : seg == 1 ? n6 : n8; }
  int64_t offset(int seg) const { return seg == 0 ? 0 : seg == 1 ? n4 : n4 + n6; }
  ElemFormat format(int seg) const {
    return seg == 0 ? ElemFormat::fp4_e2m1 : seg == 1 ? fp6 : ElemFormat::fp8_e4m3;
  }
  // Bits per value including scales, averaged over the K channels.
  double average_bits() const;
};

// Throws micromix::Error unless each count is >= 0 and a multiple of 32, they sum to cols and
// fp6 is E3M2 or E2M3.
void validate_split(const MixedSplit& s, int64_t cols);
// Throws micromix::Error unless perm holds each of 0..cols-1 exactly once.
void validate_permutation(std::span<const int32_t> perm, int64_t cols);
// The identity permutation of n channels.
std::vector<int32_t> identity_permutation(int64_t n);

struct MxMixedMatrix {
  int64_t rows = 0, cols = 0;
  MixedSplit split;
  std::vector<int32_t> perm;          // (cols)
  std::array<MxMatrix, kSegments> seg;  // seg[s]: (rows, split.count(s))
};

// Quantizes x (rows, cols) row-major: row i is permuted (p[j] = x[i, perm[j]]) and each segment
// of p is quantized with mx::quantize_row (same rule and rounding for all three).
MxMixedMatrix quantize_mixed(std::span<const float> x, int64_t rows, int64_t cols,
                             std::span<const int32_t> perm, const MixedSplit& split,
                             ScaleRule rule = ScaleRule::ocp, Rounding r = Rounding::even);

// Dequantizes into out (rows, cols) in the PERMUTED column order (what a GEMM sees).
void dequantize_mixed_permuted(const MxMixedMatrix& m, std::span<float> out);
// Dequantizes into out (rows, cols) in the ORIGINAL column order.
void dequantize_mixed(const MxMixedMatrix& m, std::span<float> out);

// Throws micromix::Error when the storage of m does not match its shape, split and perm.
void validate_mixed(const MxMixedMatrix& m);

}  // namespace micromix::mx
