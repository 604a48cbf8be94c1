// Fused reorder + MX quantization of bf16 activations into FP4 | FP6 | FP8 segments (internal).
#pragma once
#include <cuda_runtime.h>

#include "cuda/mx_decode_acts.cuh"
#include "micromix/cuda_mx.hpp"

namespace micromix::cuda {
// Launcher: the default kernel for the shape (v3, or v1 where v3 does not apply), or the version
// chosen through set_reorder_quantize_version (mx_kernel_versions.hpp).
void mx_reorder_quantize_launch(const uint16_t* d_x, int64_t M, const int32_t* d_perm, const MxMixedDeviceOut& out,
                                mx::ScaleRule rule, mx::Rounding r, cudaStream_t stream, const MxDecodeActs* acts = nullptr);
// v3 and v4 (mx_reorder_quantize_v3.cu; version 3 or 4): R rows per CTA, interleaved staging,
// integer encoder (v4: float-adder encoder for ties to even). Returns false (launching nothing)
// when it does not apply: K > 51200, perm not 16-byte aligned, FP4/FP6 codes not 4-byte or FP8
// codes not 8-byte aligned. acts (slots 0: none): the decode-ready layout, written by v12's kernels
// (v13) on the small-M split path, else from the output after the quantizer (write_decode_acts).
bool mx_reorder_quantize_v3_launch(int version, const uint16_t* d_x, int64_t M, const int32_t* d_perm,
                                   const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r, cudaStream_t stream,
                                   const DecodeActsView& acts);

// The fused variants on v9's kernel (mx_fused_quantize.cu's ops, same bits): the prologue's bf16
// row is computed while staging (RMSNorm: x rows ld apart, weight d_w; SwiGLU: gate d_x and up d_up
// rows ld apart). Returns false (launching nothing) where v9 does not apply: ties away, or the
// conditions of mx_reorder_quantize_v3_launch.
enum class FusedPrologue { rms_bf16w, rms_f32w, swiglu };
bool mx_fused_reorder_quantize_v9_launch(FusedPrologue kind, const uint16_t* d_x, const uint16_t* d_up, int64_t ld,
                                         const void* d_w, float eps, int64_t M, const int32_t* d_perm,
                                         const MxMixedDeviceOut& out, mx::ScaleRule rule, mx::Rounding r,
                                         cudaStream_t stream, const DecodeActsView& acts);
}  // namespace micromix::cuda
