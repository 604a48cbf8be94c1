// Device discovery.
#include <cuda_runtime.h>

#include "micromix/cuda.hpp"
#include "micromix/error.hpp"

namespace micromix::cuda {

void cuda_fail(const std::string& msg) { throw Error(msg); }

namespace {

// The kernels are compiled for sm_90a only (CMakeLists.txt: wgmma, TMA), code that runs on compute
// capability 9.0 devices and nowhere else; elsewhere every launch would fail with "no kernel image".
bool runs_our_kernels(const cudaDeviceProp& p) { return p.major == 9 && p.minor == 0; }

// The current device's properties; false when there is none.
bool current_device(cudaDeviceProp& p, std::string& why) {
  int n = 0, dev = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    why = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    return false;
  }
  if (n == 0) {
    why = "no CUDA device present";
    return false;
  }
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    why = "CUDA device " + std::to_string(dev) + " (properties unavailable)";
    return false;
  }
  return true;
}

}  // namespace

bool available() {
  cudaDeviceProp p{};
  std::string why;
  return current_device(p, why) && runs_our_kernels(p);
}

std::string describe() {
  cudaDeviceProp p{};
  std::string why;
  if (!current_device(p, why)) return why;
  std::string d = std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
  if (!runs_our_kernels(p)) d += ": micromix's GPU kernels are built for sm_90a (Hopper: H100, H200) only";
  return d;
}

}  // namespace micromix::cuda
