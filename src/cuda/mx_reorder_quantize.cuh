// Fused reorder + MX quantization of bf16 activations into FP4 | FP6 | FP8 segments (internal).
#pragma once
#include <cuda_runtime.h>

#include "micromix/cuda_mx.hpp"

namespace micromix::cuda {
// Launcher: one CTA per row; the row is staged in shared memory, then each warp quantizes blocks.
void mx_reorder_quantize_launch(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                                mx::ScaleRule rule, mx::Rounding r, cudaStream_t stream);
}  // namespace micromix::cuda
