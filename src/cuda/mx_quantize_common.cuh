// Pieces shared by the quantizing kernels (reorder+quantize, fused prologue+quantize; internal):
// the generic element encoder and the host conveniences' device round trip.
#pragma once
#include <memory>
#include <span>

#include "cuda/mx_mixed_device.cuh"

namespace micromix::cuda::mixed {

// Element code of v (already divided by the block scale, finite): nearest on the element grid,
// saturating (the CPU encoder's definition; same arithmetic as mx_reorder_quantize v1).
__device__ __forceinline__ unsigned encode(const Fmt& f, float v, bool away) {
  const uint32_t bits = __float_as_uint(v);
  const uint32_t sign = bits >> 31;
  const float a = __uint_as_float(bits & 0x7fffffffu);
  uint32_t mag;
  if (!(a < f.max_normal)) {
    mag = static_cast<uint32_t>(f.max_code);
  } else {
    const int emin = 1 - f.bias;
    int e = static_cast<int>((bits >> 23) & 0xffu) - 127;
    if (e < emin) e = emin;
    const float r = a * __uint_as_float(static_cast<uint32_t>(127 + f.mbits - e) << 23);
    const float fl = floorf(r);
    const float fr = r - fl;
    uint32_t q = static_cast<uint32_t>(fl);
    const bool up = fr > 0.5f || (fr == 0.5f && (away || (q & 1u)));
    q += up ? 1u : 0u;
    mag = (static_cast<uint32_t>(e - emin) << f.mbits) + q;
    if (mag > static_cast<uint32_t>(f.max_code)) mag = static_cast<uint32_t>(f.max_code);
  }
  return mag | (sign << (f.bits - 1));
}

// Host side of the quantize conveniences: a mixed output matrix (M, K) with poisoned device
// buffers (unwritten bytes show up), the perm on the device; run(d_perm, out) launches; copies back.
template <class Run>
mx::MxMixedMatrix quantize_on_host(int64_t M, int64_t K, std::span<const int32_t> perm, const mx::MixedSplit& split, Run run) {
  mx::MxMixedMatrix m;
  m.rows = M;
  m.cols = K;
  m.split = split;
  m.perm.assign(perm.begin(), perm.end());
  DeviceBuffer<int32_t> dp(perm.size());
  if (!perm.empty()) MM_CUDA_CHECK(cudaMemcpy(dp.ptr, perm.data(), perm.size() * 4, cudaMemcpyHostToDevice));
  std::unique_ptr<DeviceBuffer<uint8_t>> codes[mx::kSegments], scales[mx::kSegments];
  MxMixedDeviceOut out;
  out.rows = M;
  out.split = split;
  for (int s = 0; s < mx::kSegments; ++s) {
    mx::MxMatrix& g = m.seg[s];
    g.format = split.format(s);
    g.rows = M;
    g.cols = split.count(s);
    g.codes.resize(static_cast<size_t>(M) * g.row_bytes());
    g.scales.resize(static_cast<size_t>(M * g.blocks_per_row()));
    codes[s] = std::make_unique<DeviceBuffer<uint8_t>>(g.codes.size());
    scales[s] = std::make_unique<DeviceBuffer<uint8_t>>(g.scales.size());
    if (!g.codes.empty()) MM_CUDA_CHECK(cudaMemset(codes[s]->ptr, 0xA5, g.codes.size()));  // poison
    if (!g.scales.empty()) MM_CUDA_CHECK(cudaMemset(scales[s]->ptr, 0x5A, g.scales.size()));
    out.codes[s] = codes[s]->ptr;
    out.scales[s] = scales[s]->ptr;
  }
  run(dp.ptr, out);
  MM_CUDA_CHECK(cudaDeviceSynchronize());
  for (int s = 0; s < mx::kSegments; ++s) {
    mx::MxMatrix& g = m.seg[s];
    if (!g.codes.empty()) MM_CUDA_CHECK(cudaMemcpy(g.codes.data(), codes[s]->ptr, g.codes.size(), cudaMemcpyDeviceToHost));
    if (!g.scales.empty())
      MM_CUDA_CHECK(cudaMemcpy(g.scales.data(), scales[s]->ptr, g.scales.size(), cudaMemcpyDeviceToHost));
  }
  return m;
}

// A host span copied to a new device buffer.
template <class T>
std::unique_ptr<DeviceBuffer<T>> to_device(std::span<const T> h) {
  auto d = std::make_unique<DeviceBuffer<T>>(h.size());
  if (!h.empty()) MM_CUDA_CHECK(cudaMemcpy(d->ptr, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

}  // namespace micromix::cuda::mixed
