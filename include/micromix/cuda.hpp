// GPU side of micromix: device discovery and the CUDA ops' host entry points. This header does not
// need the CUDA toolkit; streams are passed as void* (a cudaStream_t).
#pragma once
#include <cstdint>
#include <span>
#include <string>

#include "micromix/mx_pack.hpp"

namespace micromix::cuda {

// True when micromix was built with CUDA and the current CUDA device runs its kernels (compute
// capability 9.0: the kernels are built for sm_90a, Hopper H100 / H200).
bool available();
// Why available() is false (no device, or a device the kernels do not run on), or the device name.
std::string describe();

// Dequantizes a packed MX matrix on the device: d_packed (rows, row_bytes), d_scales
// (rows, cols/32) -> d_out (rows, cols) float32. Asynchronous on `stream`.
void mx_dequantize(mx::ElemFormat f, const uint8_t* d_packed, const uint8_t* d_scales, int64_t rows,
                   int64_t cols, float* d_out, void* stream);

// Host convenience: copies m to the device, dequantizes there, copies back into out.
void mx_dequantize_host(const mx::MxMatrix& m, std::span<float> out);

}  // namespace micromix::cuda
