// Mixed MX GEMM on the FP8 tensor cores (internal): launcher called by mx_mixed_gemm for its
// versions 6 and up (see sm90_mx_mixed_gemm_fp8.cu).
#pragma once
#include <cuda_runtime.h>

#include "cuda/mx_mixed_device.cuh"
#include "cuda/scratch.cuh"

namespace micromix::cuda {

struct Fp8GemmArgs {
  mixed::SegView a, w;
  int64_t M, N;
  int64_t kb4, kb6, nkb;  // K blocks of the FP4 and FP6 segments, and in all
  void* y;
  int out_f32;
  int fp6_e2m3;
  // Split-K (v10-v13): blockIdx.z covers K blocks [z * split_chunk, (z + 1) * split_chunk) and, when
  // split_ws is set, writes FP32 partials to split_ws[z] (M x N) instead of y.
  int split_chunk = 0;
  float* split_ws = nullptr;
  // w in mx_prepare_gemv_weights' layout (v15 prepared; the exact fallback must read it so).
  int w_prepared = 0;
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

// v14: activations converted to BF16 tiles once by a pre-pass, weights (block-major) converted per
// 256 x 128 tile; see sm90_mx_mixed_gemm_bf16_pa.cu. Asynchronous on stream (stream-ordered workspace).
void mx_mixed_gemm_bf16pa_launch(const Fp8GemmArgs& p, cudaStream_t stream);

// variant 15: weights as the register operand of BF16 wgmma (converted per thread from block-major
// codes), activations pre-converted to BF16 as the shared operand, bulk-copy + mbarrier ring,
// 128 weight rows x 256 tokens; 16: 192 x 128 with 3 warpgroups (3 warps per scheduler); 17: v15
// with two steps of wgmmas in flight; see sm90_mx_mixed_gemm_bf16_rs.cu.
// Asynchronous on stream (stream-ordered workspace).
void mx_mixed_gemm_bf16rs_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream);
// v15 on weights prepared by mx_prepare_gemv_weights (p.w views them; p.w_prepared set).
void mx_mixed_gemm_bf16rs_prepared_launch(const Fp8GemmArgs& p, cudaStream_t stream);

// v18 (sm90_mx_mixed_gemm_cublas.cu): both operands dequantized to BF16 scratch (weights in bounded
// chunks), one cuBLAS BF16 GEMM with FP32 accumulation per chunk, an exact fix-up where values below
// 2^-126 occur. p.w_prepared: weights in mx_prepare_gemv_weights' layout. supported(): the codes'
// alignment the dequantizer needs (8 bytes for FP4, 4 for FP6, 16 for FP8, in both layouts).
bool mx_mixed_gemm_cublas_supported(const Fp8GemmArgs& p);
void mx_mixed_gemm_cublas_launch(const Fp8GemmArgs& p, cudaStream_t stream);

// Split-K of v10-v13 (sm90_mx_mixed_gemm_bf16.cu): launches kernel(q, grid) with q = p split along K
// into enough parts to fill the GPU when the output tiles alone do not (tiles x ctas_per_sm below
// two waves), FP32 partials in a stream-ordered workspace, then sums them in a fixed order into y.
template <class Launch>
void launch_split_k(const Fp8GemmArgs& p, int64_t gx, int64_t gy, int ctas_per_sm, cudaStream_t stream, Launch kernel);
int bf16_gemm_splits(int64_t tiles, int ctas_per_sm, int64_t nkb);
void bf16_gemm_reduce_splits(const Fp8GemmArgs& p, const float* ws, int splits, cudaStream_t stream);

template <class Launch>
void launch_split_k(const Fp8GemmArgs& p, int64_t gx, int64_t gy, int ctas_per_sm, cudaStream_t stream, Launch kernel) {
  MM_CUDA_REQUIRE(gy <= 65535, "mx_mixed_gemm: M too large for the grid");
  const int splits = bf16_gemm_splits(gx * gy, ctas_per_sm, p.nkb);
  if (splits <= 1) {
    kernel(p, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), 1));
    return;
  }
  Fp8GemmArgs q = p;
  q.split_chunk = static_cast<int>((p.nkb + splits - 1) / splits);
  const int parts = static_cast<int>((p.nkb + q.split_chunk - 1) / q.split_chunk);
  float* ws = static_cast<float*>(scratch_alloc(static_cast<size_t>(parts) * p.M * p.N * 4, stream));
  q.split_ws = ws;
  kernel(q, dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(parts)));
  bf16_gemm_reduce_splits(p, ws, parts, stream);
  scratch_free(ws, stream);
}

}  // namespace micromix::cuda
