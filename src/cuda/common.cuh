// Shared helpers for the CUDA ops (internal).
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <initializer_list>
#include <string>

// NOTES: .cu files do not include micromix/error.hpp: nvcc's front end cannot compile fmt's
// consteval format checks. They throw micromix::Error through cuda_fail (device.cpp).
namespace micromix::cuda {
[[noreturn]] void cuda_fail(const std::string& msg);
}

#define MM_CUDA_CHECK(expr)                                                                        \
  do {                                                                                             \
    cudaError_t err_ = (expr);                                                                     \
    if (err_ != cudaSuccess)                                                                       \
      ::micromix::cuda::cuda_fail(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + \
                                  #expr + ": " + cudaGetErrorString(err_) +                       \
                                  (err_ == cudaErrorNoKernelImageForDevice                        \
                                       ? " (micromix's kernels are built for sm_90a, Hopper)"     \
                                       : ""));                                                    \
  } while (0)
#define MM_CUDA_REQUIRE(cond, msg)                   \
  do {                                               \
    if (!(cond)) ::micromix::cuda::cuda_fail(msg);   \
  } while (0)

namespace micromix::cuda {

// The ops' experiment knobs: environment variable `name` ("" when unset or empty), read per call; a
// value not in `allowed` is refused with an error naming the variable.
inline std::string env_knob(const char* name, std::initializer_list<const char*> allowed) {
  const char* e = std::getenv(name);
  const std::string v = e ? e : "";
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += (list.empty() ? "" : ", ") + std::string(a);
  }
  MM_CUDA_REQUIRE(v.empty(), std::string(name) + " must be one of " + list + ", got '" + v + "'");
  return v;
}

// Device buffer owned by RAII (tests, host conveniences; not for hot paths).
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  size_t n = 0;
  explicit DeviceBuffer(size_t count) : n(count) {
    if (n) MM_CUDA_CHECK(cudaMalloc(&ptr, n * sizeof(T)));
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

}  // namespace micromix::cuda
