// Block-major copies of mixed MX matrices (internal; the GEMMs v12-v14 read them): segment s holds
// codes[s][b][r][bytes of one block] and scales[s][b][r] for block b of the segment and row
// r < rows_pad, so one K step of a tile of consecutive rows is one contiguous run. Same bytes as the
// row-major MX data (rows padded to kRowPad with zero codes and scale 127).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/mx_mixed_device.cuh"

namespace micromix::cuda::blockmajor {

constexpr int kRowPad = 256;

struct BlockMajor {
  uint8_t* codes[3];
  uint8_t* scales[3];
  int64_t rows_pad;
};

// Code bytes of one MX block of 32 elements in segment 0 (FP4), 1 (FP6), 2 (FP8).
__host__ __device__ constexpr int bytes_per_block(int seg) { return seg == 0 ? 16 : seg == 1 ? 24 : 32; }

// Carves a block-major copy with `rows` rows out of ws (nullptr: only sizes); returns the bytes used.
size_t carve(uint8_t* ws, int64_t rows, int64_t kb4, int64_t kb6, int64_t kb8, BlockMajor& out);

// Writes the block-major copy of v (rows x (kb4 + kb6 + kb8) blocks) into out. Asynchronous on stream.
void block_major_launch(const mixed::SegView& v, int64_t rows, int64_t kb4, int64_t kb6, int64_t kb8,
                        const BlockMajor& out, cudaStream_t stream);

}  // namespace micromix::cuda::blockmajor
