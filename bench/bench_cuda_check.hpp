// Error checks of the CUDA benchmarks (exit with the call's text and the error; a benchmark has no
// one to report to). Include after <cuda_runtime.h>.
#pragma once
#include <cstdio>
#include <cstdlib>

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)
// cuBLAS / cuBLASLt status (0 = success).
#define CKB(x)                                                                             \
  do {                                                                                     \
    int s_ = static_cast<int>(x);                                                          \
    if (s_ != 0) {                                                                         \
      std::fprintf(stderr, "%s:%d: %s: cuBLAS status %d\n", __FILE__, __LINE__, #x, s_); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)
