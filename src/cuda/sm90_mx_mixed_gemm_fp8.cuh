// Mixed MX GEMM on the FP8 tensor cores (internal): launcher called by mx_mixed_gemm for its
// versions 6 and up (see sm90_mx_mixed_gemm_fp8.cu).
#pragma once
#include <cuda_runtime.h>

#include "cuda/mx_mixed_device.cuh"

namespace micromix::cuda {

struct Fp8GemmArgs {
  mixed::SegView a, w;
  int64_t M, N;
  int64_t kb4, kb6, nkb;  // K blocks of the FP4 and FP6 segments, and in all
  void* y;
  int out_f32;
  int fp6_e2m3;
};

// variant: 6 (128x128 tile, 8 warps, mma.sync, 1 CTA per SM), 7 (the same capped at 128 registers,
// 2 CTAs per SM), 8 (wgmma for FP4/E2M3 blocks, mma.sync for E3M2/FP8,
// two warpgroups), 9 (v8 with the wgmma of block kb overlapping the promotion of block kb - 1). Asynchronous on stream.
void mx_mixed_gemm_fp8_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream);

// variant: 10 (BF16 wgmma with the MX scales folded into the operands, 128x128 tile, 2 CTAs per SM),
// 11 (the same with a 128x256 tile); see sm90_mx_mixed_gemm_bf16.cu. Asynchronous on stream.
void mx_mixed_gemm_bf16_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream);

// variant: 12 (v10 fed from block-major copies of both operands made by a pre-pass, 128x128 tile),
// 13 (128x256 tile); see sm90_mx_mixed_gemm_bf16_a.cu. Asynchronous on stream (stream-ordered
// workspace allocation).
void mx_mixed_gemm_bf16a_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream);

}  // namespace micromix::cuda
