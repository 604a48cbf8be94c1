// Host conveniences of the mixed MX ops (tests, tools): copy in, run, copy back, synchronously.
// Outputs are poisoned before each run so that unwritten elements show up.
#include <cuda_bf16.h>

#include <cstring>
#include <memory>

#include "cuda/mx_mixed_device.cuh"
#include "cuda/mx_quantize_common.cuh"

namespace micromix::cuda {
namespace {

// Device copies of the three segments of a mixed matrix (codes `offset` bytes into their buffers).
struct DeviceMixed {
  std::unique_ptr<DeviceBuffer<uint8_t>> codes[mx::kSegments], scales[mx::kSegments];
  MxMixedDevice view;

  explicit DeviceMixed(const mx::MxMixedMatrix& m, int offset = 0) {
    view.rows = m.rows;
    view.split = m.split;
    for (int s = 0; s < mx::kSegments; ++s) {
      const mx::MxMatrix& g = m.seg[s];
      codes[s] = std::make_unique<DeviceBuffer<uint8_t>>(g.codes.size() + static_cast<size_t>(offset));
      scales[s] = std::make_unique<DeviceBuffer<uint8_t>>(g.scales.size());
      if (!g.codes.empty())
        MM_CUDA_CHECK(cudaMemcpy(codes[s]->ptr + offset, g.codes.data(), g.codes.size(), cudaMemcpyHostToDevice));
      if (!g.scales.empty())
        MM_CUDA_CHECK(cudaMemcpy(scales[s]->ptr, g.scales.data(), g.scales.size(), cudaMemcpyHostToDevice));
      view.codes[s] = codes[s]->ptr + offset;
      view.scales[s] = scales[s]->ptr;
    }
  }
};

// w on the device in mx_prepare_gemv_weights' layout (poisoned first: the preparation must write
// every byte); synchronous.
struct PreparedWeights {
  DeviceMixed raw, prepared;
  explicit PreparedWeights(const mx::MxMixedMatrix& w) : raw(w), prepared(w) {
    MxMixedDeviceOut po;
    po.rows = prepared.view.rows;
    po.split = prepared.view.split;
    for (int s = 0; s < mx::kSegments; ++s) {
      po.codes[s] = const_cast<uint8_t*>(prepared.view.codes[s]);
      po.scales[s] = const_cast<uint8_t*>(prepared.view.scales[s]);
      if (!w.seg[s].codes.empty()) MM_CUDA_CHECK(cudaMemset(prepared.codes[s]->ptr, 0xFF, w.seg[s].codes.size()));
      if (!w.seg[s].scales.empty()) MM_CUDA_CHECK(cudaMemset(prepared.scales[s]->ptr, 0xFF, w.seg[s].scales.size()));
    }
    mx_prepare_gemv_weights(raw.view, po, nullptr);
    MM_CUDA_CHECK(cudaDeviceSynchronize());
  }
};

// y (n elements of out's type) copied back as floats.
std::vector<float> copy_back(const DeviceBuffer<uint8_t>& y, size_t n, OutType out) {
  std::vector<float> result(n);
  if (out == OutType::f32) {
    if (n) MM_CUDA_CHECK(cudaMemcpy(result.data(), y.ptr, n * 4, cudaMemcpyDeviceToHost));
  } else {
    std::vector<uint16_t> h(n);
    if (n) MM_CUDA_CHECK(cudaMemcpy(h.data(), y.ptr, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; ++i) {
      const uint32_t u = static_cast<uint32_t>(h[i]) << 16;
      std::memcpy(&result[i], &u, 4);
    }
  }
  return result;
}

}  // namespace

std::vector<float> mx_mixed_gemm_host(const mx::MxMixedMatrix& a, const mx::MxMixedMatrix& w, OutType out,
                                      int kernel, int a_code_offset) {
  MM_CUDA_REQUIRE(a.cols == w.cols, "mx_mixed_gemm_host: a and w have different K");
  MM_CUDA_REQUIRE(a.perm == w.perm, "mx_mixed_gemm_host: a and w were permuted differently");
  MM_CUDA_REQUIRE(a_code_offset >= 0 && a_code_offset < 16, "mx_mixed_gemm_host: a_code_offset must be 0..15");
  const DeviceMixed da(a, a_code_offset), dw(w);
  const size_t n = static_cast<size_t>(a.rows * w.rows);
  const size_t elem = out == OutType::f32 ? 4 : 2;
  DeviceBuffer<uint8_t> y(n * elem);
  if (n) MM_CUDA_CHECK(cudaMemset(y.ptr, 0xFF, n * elem));  // NaN in both f32 and bf16
  const bool gemv_prepared = kernel == kGemvPreparedKernel || is_gemv_prepared_version_kernel(kernel);
  if (gemv_prepared || kernel == kGemmPreparedKernel || kernel == kGemmPreparedV18Kernel) {
    const PreparedWeights pw(w);
    if (gemv_prepared)
      mx_mixed_gemv_prepared(da.view, pw.prepared.view, y.ptr, out, nullptr,
                             kernel == kGemvPreparedKernel ? 0 : -kernel - 100);
    else mx_mixed_gemm_prepared(da.view, pw.prepared.view, y.ptr, out, nullptr, kernel == kGemmPreparedV18Kernel ? 18 : 0);
  } else if (kernel < 0) {
    mx_mixed_gemv(da.view, dw.view, y.ptr, out, nullptr, kernel == -1 ? 0 : -kernel - 1);
  } else {
    mx_mixed_gemm(da.view, dw.view, y.ptr, out, kernel, nullptr);
  }
  MM_CUDA_CHECK(cudaDeviceSynchronize());
  return copy_back(y, n, out);
}

DecodeLinearResult mx_quantize_gemv_host(std::span<const uint16_t> x, int64_t M, DecodeProducer producer,
                                         std::span<const uint16_t> norm_weight, float eps, const mx::MxMixedMatrix& w,
                                         OutType out, int version, bool decode_acts) {
  const int64_t K = w.cols, xcols = producer == DecodeProducer::swiglu ? 2 * K : K;
  MM_CUDA_REQUIRE(M >= 0 && x.size() == static_cast<size_t>(M * xcols),
                  "mx_quantize_gemv_host: x is not M x " + std::to_string(xcols));
  MM_CUDA_REQUIRE(producer != DecodeProducer::rmsnorm || norm_weight.size() == static_cast<size_t>(K),
                  "mx_quantize_gemv_host: norm weight size");
  MM_CUDA_REQUIRE(w.perm.size() == static_cast<size_t>(K), "mx_quantize_gemv_host: w has no permutation of its K columns");
  const PreparedWeights pw(w);
  const auto dx = mixed::to_device(x);
  const auto dnorm = mixed::to_device(norm_weight);
  const size_t n = static_cast<size_t>(M * w.rows), elem = out == OutType::f32 ? 4 : 2;
  DeviceBuffer<uint8_t> y(n * elem);
  if (n) MM_CUDA_CHECK(cudaMemset(y.ptr, 0xFF, n * elem));  // NaN in both f32 and bf16
  // The decode-ready activations, poisoned (f16 NaNs, int8 -1s, NaN scales) where the quantizer must write.
  const size_t acts_bytes = decode_acts ? mx_decode_acts_bytes(M, w.split) : 0;
  DeviceBuffer<uint8_t> acts_buf(acts_bytes);
  if (acts_bytes) MM_CUDA_CHECK(cudaMemset(acts_buf.ptr, 0xFF, acts_bytes));
  MxDecodeActs acts{acts_buf.ptr, acts_bytes};
  const MxDecodeActs* acts_arg = decode_acts ? &acts : nullptr;
  struct Stream {  // destroyed on every exit (an op may refuse its arguments mid-chain)
    cudaStream_t s = nullptr;
    Stream() { MM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
    ~Stream() {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  } owned;
  const cudaStream_t stream = owned.s;
  DecodeLinearResult r;
  r.xq = mixed::quantize_on_host(M, K, w.perm, w.split, [&](const int32_t* dp, const MxMixedDeviceOut& xo) {
    MM_CUDA_CHECK(cudaDeviceSynchronize());  // the poison and the copies in, before the stream starts
    const auto rule = mx::ScaleRule::ocp;
    const auto even = mx::Rounding::even;
    if (producer == DecodeProducer::none) mx_reorder_quantize(dx->ptr, M, dp, xo, rule, even, stream, acts_arg);
    else if (producer == DecodeProducer::rmsnorm)
      mx_rmsnorm_reorder_quantize(dx->ptr, M, dnorm->ptr, WeightType::bf16, eps, dp, xo, rule, even, stream, acts_arg);
    else mx_swiglu_reorder_quantize(dx->ptr, dx->ptr + K, 2 * K, M, dp, xo, rule, even, stream, acts_arg);
    MxMixedDevice a;
    a.rows = xo.rows;
    a.split = xo.split;
    for (int s = 0; s < mx::kSegments; ++s) {
      a.codes[s] = xo.codes[s];
      a.scales[s] = xo.scales[s];
    }
    mx_mixed_gemv_prepared(a, pw.prepared.view, y.ptr, out, stream, version, acts_arg);
  });
  r.y = copy_back(y, n, out);
  return r;
}

mx::MxMixedMatrix mx_reorder_quantize_host(std::span<const uint16_t> x, int64_t M, int64_t K,
                                           std::span<const int32_t> perm, const mx::MixedSplit& split,
                                           mx::ScaleRule rule, mx::Rounding r) {
  MM_CUDA_REQUIRE(M >= 0 && K >= 0 && x.size() == static_cast<size_t>(M * K), "mx_reorder_quantize_host: x size");
  MM_CUDA_REQUIRE(perm.size() == static_cast<size_t>(K) && split.cols() == K, "mx_reorder_quantize_host: perm/split size");
  const auto dx = mixed::to_device(x);
  return mixed::quantize_on_host(M, K, perm, split, [&](const int32_t* dp, const MxMixedDeviceOut& out) {
    mx_reorder_quantize(dx->ptr, M, dp, out, rule, r, nullptr);
  });
}

}  // namespace micromix::cuda
