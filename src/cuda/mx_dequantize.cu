// MX dequantization on the GPU: packed codes + E8M0 scales -> float32.
// Decodes by the format definition (not the CPU's table), so the CPU comparison is a real check.
#include <cmath>

#include "cuda/common.cuh"
#include "micromix/cuda.hpp"

namespace micromix::cuda {
namespace {

struct FormatParams {
  int bits, ebits, mbits, bias, kind;  // kind: 0 plain FP, 1 E4M3, 2 E5M2, 3 INT8
};

__device__ float decode_element(FormatParams p, unsigned c) {
  if (p.kind == 3) return static_cast<float>(static_cast<signed char>(c)) / 64.0f;
  const bool neg = (c >> (p.bits - 1)) & 1u;
  const unsigned exp = (c >> p.mbits) & ((1u << p.ebits) - 1u);
  const unsigned man = c & ((1u << p.mbits) - 1u);
  float v;
  if (p.kind == 1 && exp == 15 && man == 7) return __int_as_float(0x7fc00000);
  if (p.kind == 2 && exp == 31) {
    if (man) return __int_as_float(0x7fc00000);
    v = __int_as_float(0x7f800000);
  } else if (exp == 0) {
    v = ldexpf(static_cast<float>(man), 1 - p.bias - p.mbits);
  } else {
    v = ldexpf(static_cast<float>((1u << p.mbits) + man), static_cast<int>(exp) - p.bias - p.mbits);
  }
  return neg ? -v : v;
}

__device__ unsigned load_code(const uint8_t* row, int bits, int64_t k) {
  if (bits == 8) return row[k];
  if (bits == 4) return (row[k >> 1] >> ((k & 1) * 4)) & 0xFu;
  const uint8_t* g = row + (k >> 2) * 3;  // bits == 6: 4 codes per 3 bytes
  const unsigned w = g[0] | (g[1] << 8) | (g[2] << 16);
  return (w >> (6 * (k & 3))) & 0x3Fu;
}

__global__ void mx_dequantize_kernel(FormatParams p, const uint8_t* __restrict__ packed,
                                     const uint8_t* __restrict__ scales, int64_t rows, int64_t cols,
                                     float* __restrict__ out) {
  const int64_t row_bytes = cols * p.bits / 8;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < rows * cols;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / cols, k = i % cols;
    const uint8_t s = scales[r * (cols / 32) + k / 32];
    const float scale = s == 0xFF ? __int_as_float(0x7fc00000) : ldexpf(1.0f, static_cast<int>(s) - 127);
    out[i] = decode_element(p, load_code(packed + r * row_bytes, p.bits, k)) * scale;
  }
}

}  // namespace

void mx_dequantize(mx::ElemFormat f, const uint8_t* d_packed, const uint8_t* d_scales, int64_t rows,
                   int64_t cols, float* d_out, void* stream) {
  MM_CUDA_REQUIRE(cols % mx::kBlock == 0, "cuda::mx_dequantize: cols = " + std::to_string(cols) + " is not a multiple of 32");
  if (rows == 0 || cols == 0) return;
  const mx::ElemInfo& I = mx::info(f);
  const int kind = f == mx::ElemFormat::fp8_e4m3 ? 1 : f == mx::ElemFormat::fp8_e5m2 ? 2 : f == mx::ElemFormat::int8 ? 3 : 0;
  const FormatParams p{I.bits, I.ebits, I.mbits, I.bias, kind};
  const int64_t total = rows * cols;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((total + threads - 1) / threads, 65535));
  mx_dequantize_kernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(p, d_packed, d_scales, rows,
                                                                                   cols, d_out);
  MM_CUDA_CHECK(cudaGetLastError());
}

void mx_dequantize_host(const mx::MxMatrix& m, std::span<float> out) {
  MM_CUDA_REQUIRE(out.size() == static_cast<size_t>(m.rows * m.cols), "cuda::mx_dequantize_host: output size");
  DeviceBuffer<uint8_t> codes(m.codes.size()), scales(m.scales.size());
  DeviceBuffer<float> d_out(out.size());
  MM_CUDA_CHECK(cudaMemcpy(codes.ptr, m.codes.data(), m.codes.size(), cudaMemcpyHostToDevice));
  MM_CUDA_CHECK(cudaMemcpy(scales.ptr, m.scales.data(), m.scales.size(), cudaMemcpyHostToDevice));
  // Poison the output so unwritten elements show up as NaN bit patterns the test can catch.
  MM_CUDA_CHECK(cudaMemset(d_out.ptr, 0xFF, out.size() * sizeof(float)));
  mx_dequantize(m.format, codes.ptr, scales.ptr, m.rows, m.cols, d_out.ptr, nullptr);
  MM_CUDA_CHECK(cudaDeviceSynchronize());
  MM_CUDA_CHECK(cudaMemcpy(out.data(), d_out.ptr, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
}

}  // namespace micromix::cuda
