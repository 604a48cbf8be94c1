// Built instead of src/cuda/ when micromix is configured without CUDA: every GPU op throws.
#include "cuda/mx_kernel_versions.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/error.hpp"

namespace micromix::cuda {
bool available() { return false; }
std::string describe() { return "micromix was built without CUDA (MICROMIX_CUDA=OFF or no nvcc)"; }
void mx_dequantize(mx::ElemFormat, const uint8_t*, const uint8_t*, int64_t, int64_t, float*, void*) {
  fail("mx_dequantize: micromix was built without CUDA");
}
void mx_dequantize_host(const mx::MxMatrix&, std::span<float>) {
  fail("mx_dequantize: micromix was built without CUDA");
}
// ---- mixed MX ops (cuda_mx.hpp) ----
void mx_reorder_quantize(const uint16_t*, int64_t, const int32_t*, const MxMixedDeviceOut&, mx::ScaleRule,
                         mx::Rounding, void*, const MxDecodeActs*) {
  fail("mx_reorder_quantize: micromix was built without CUDA");
}
void mx_mixed_gemm(const MxMixedDevice&, const MxMixedDevice&, void*, OutType, int, void*) {
  fail("mx_mixed_gemm: micromix was built without CUDA");
}
int mx_mixed_gemm_versions() { return 0; }
const char* mx_mixed_gemm_version_name(int) { return "unavailable"; }
void mx_prepare_gemv_weights(const MxMixedDevice&, const MxMixedDeviceOut&, void*) {
  fail("mx_prepare_gemv_weights: micromix was built without CUDA");
}
void mx_mixed_gemm_prepared(const MxMixedDevice&, const MxMixedDevice&, void*, OutType, void*, int) {
  fail("mx_mixed_gemm_prepared: micromix was built without CUDA");
}
size_t mx_decode_acts_bytes(int64_t, const mx::MixedSplit&) { return 0; }
void mx_mixed_gemv_prepared(const MxMixedDevice&, const MxMixedDevice&, void*, OutType, void*, int, const MxDecodeActs*) {
  fail("mx_mixed_gemv_prepared: micromix was built without CUDA");
}
void mx_mixed_gemv(const MxMixedDevice&, const MxMixedDevice&, void*, OutType, void*, int) {
  fail("mx_mixed_gemv: micromix was built without CUDA");
}
int mx_mixed_gemv_versions() { return 0; }
void mx_release_scratch() {}
std::vector<float> mx_mixed_gemm_host(const mx::MxMixedMatrix&, const mx::MxMixedMatrix&, OutType, int, int) {
  fail("mx_mixed_gemm: micromix was built without CUDA");
}
DecodeLinearResult mx_quantize_gemv_host(std::span<const uint16_t>, int64_t, DecodeProducer, std::span<const uint16_t>, float,
                                         const mx::MxMixedMatrix&, OutType, int, bool) {
  fail("mx_quantize_gemv: micromix was built without CUDA");
}
mx::MxMixedMatrix mx_reorder_quantize_host(std::span<const uint16_t>, int64_t, int64_t, std::span<const int32_t>,
                                           const mx::MixedSplit&, mx::ScaleRule, mx::Rounding) {
  fail("mx_reorder_quantize: micromix was built without CUDA");
}
void mx_rmsnorm_reorder_quantize(const uint16_t*, int64_t, const void*, WeightType, float, const int32_t*,
                                 const MxMixedDeviceOut&, mx::ScaleRule, mx::Rounding, void*, const MxDecodeActs*) {
  fail("mx_rmsnorm_reorder_quantize: micromix was built without CUDA");
}
void mx_swiglu_reorder_quantize(const uint16_t*, const uint16_t*, int64_t, int64_t, const int32_t*,
                                const MxMixedDeviceOut&, mx::ScaleRule, mx::Rounding, void*, const MxDecodeActs*) {
  fail("mx_swiglu_reorder_quantize: micromix was built without CUDA");
}
mx::MxMixedMatrix mx_rmsnorm_reorder_quantize_host(std::span<const uint16_t>, int64_t, int64_t, std::span<const uint8_t>,
                                                   WeightType, float, std::span<const int32_t>, const mx::MixedSplit&,
                                                   mx::ScaleRule, mx::Rounding) {
  fail("mx_rmsnorm_reorder_quantize: micromix was built without CUDA");
}
mx::MxMixedMatrix mx_swiglu_reorder_quantize_host(std::span<const uint16_t>, int64_t, int64_t, bool,
                                                  std::span<const int32_t>, const mx::MixedSplit&, mx::ScaleRule,
                                                  mx::Rounding) {
  fail("mx_swiglu_reorder_quantize: micromix was built without CUDA");
}
// Test hooks (cuda/mx_kernel_versions.hpp).
int reorder_quantize_versions() { return 0; }
void set_reorder_quantize_version(int v) {
  if (v != 0) fail("reorder+quantize version {}: micromix was built without CUDA", v);
}
}  // namespace micromix::cuda
