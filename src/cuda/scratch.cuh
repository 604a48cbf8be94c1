// Stream-ordered scratch for the ops' per-call workspaces (internal). The memory comes from a
// library-owned memory pool per device whose freed blocks stay reserved for the next call: with
// the default pool's release threshold of 0, every synchronization hands the memory back to the
// driver and the next call maps it again (measured on H100: ~135 us of a 530 us GEMM v18 call at
// M = 8192 on Llama-3.1-8B o; bench/GPU_NOTES.md session 6). mx_release_scratch() (cuda_mx.hpp)
// trims the pools.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace micromix::cuda {

// bytes (may be 0) of device memory usable on `stream` until scratch_free on the same stream.
void* scratch_alloc(size_t bytes, cudaStream_t stream);
void scratch_free(void* p, cudaStream_t stream);

}  // namespace micromix::cuda
