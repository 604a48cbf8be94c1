// Decode-path kernels in their own files (internal): launchers called by mx_mixed_gemv.
#pragma once
#include <cuda_runtime.h>

#include "micromix/cuda_mx.hpp"

namespace micromix::cuda {

// v4-v6 (mx_gemv_decode_v4.cu): tensor-core decode (mma.sync f16, FP32 accumulation), per-warp
// cp.async pipelines, split-K over the warps of a CTA; v5 decodes the activations once per CTA
// into shared memory (runs v4 where that area would not leave 3 CTAs per SM); v6: 8 warps, 3
// stages, persistent grid; v7: v6 with 2 stages; v8: v6/v7 by M with leaner copy issue; v9: v8 unrolled 4x. version: 4 to 9.
// Returns false (launching nothing) when neither applies (scale arrays not 4-byte aligned); the
// caller falls back to v1.
bool gemv_tc_launch(int version, const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out,
                    cudaStream_t stream);

}  // namespace micromix::cuda
