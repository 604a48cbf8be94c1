// Built instead of src/cuda/ when micromix is configured without CUDA.
#include "micromix/cuda.hpp"
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
}  // namespace micromix::cuda
