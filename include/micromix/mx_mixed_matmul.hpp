// Matrix product of mixed MX operands on the CPU: the reference for the GPU kernels and the CPU
// engine's linear layer.
#pragma once
#include <span>

#include "micromix/mx_mixed.hpp"

namespace micromix::mx {

// y (M, N) = dequant(x) (M, K) . dequant(w) (N, K)^T, over the permuted K, FP32 accumulation.
// x and w must share cols, split and perm (throws micromix::Error otherwise).
// NOTES: each product of two dequantized MX values is exact in float32 (at most 4 + 4 significant
// bits) away from the exponent extremes, so only the order of the FP32 sums differs from any
// other correct kernel: 8 interleaved partial sums over k, added pairwise at the end.
void mx_mixed_matmul_ref(const MxMixedMatrix& x, const MxMixedMatrix& w, std::span<float> y);

// Same, on already dequantized operands in permuted order: a (M, K), b (N, K) -> y (M, N).
void matmul_nt_f32(std::span<const float> a, std::span<const float> b, int64_t M, int64_t N, int64_t K,
                   std::span<float> y);

}  // namespace micromix::mx
