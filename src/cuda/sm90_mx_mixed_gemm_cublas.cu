// Mixed MX GEMM v18: both operands dequantized to BF16 by one pass each (exact: an MX element times
// its E8M0 scale has at most 4 significant bits and is a BF16 value unless its magnitude is below
// 2^-126), then one cuBLAS BF16 GEMM with FP32 accumulation over the whole of K: all three segments
// in one accumulation, no partial sums rounded between segments, the same numbers as v10-v17.
//
// Why (bench/GPU_NOTES.md, session 5): the hand-written BF16-wgmma kernels (v15 the best) reach
// 0.43-0.56x cuBLAS BF16 at M >= 1024, bound by converting the packed weights inside the K loop with
// 8 warps per SM; FP8 tensor instructions cannot help exactly (Hopper sums FP8 products in a 13-bit
// mantissa, so every 32-K block would need its own FP32 promotion). Converting the weights once per
// call costs N x K x (code bytes + 2) of memory traffic - at M = 8192 about 5% of cuBLAS's GEMM time on
// Llama-3.1-8B gate_up - after which the GEMM runs at cuBLAS BF16 speed.
//
// Memory: nothing resident beyond the MX weights. Per call, stream-ordered scratch: the activations
// as BF16 (M x K x 2 bytes, as v14-v17) and the weights as BF16 in chunks of at most kWeightChunkBytes
// (one cuBLAS call per chunk of rows), so the weight scratch stays bounded whatever the layer.
// Exactness: the dequantizing threads flag values below 2^-126 (scale codes below kMinSafeScale with
// a nonzero element); a last kernel recomputes the whole output exactly on the CUDA cores when the
// flag is set (it returns at once otherwise), so no host synchronization is needed.
#include <cublas_v2.h>

#include <algorithm>
#include <mutex>

#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_block_major.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;
using namespace blockmajor;

constexpr size_t kWeightChunkBytes = size_t{64} << 20;
constexpr int kDequantThreads = 128;
constexpr unsigned kFixupCtas = 1056;  // grid-stride over the output tiles: 8 per SM of a 132-SM H100

// Rows [row0, row0 + rows) of v as BF16 rows of K = 32 nkb values at out (row r at out + r K). Thread
// per (row, K block): the block's codes (row-major, or gathered from the prepared layout's four lane
// slices, which are the same bytes), its scale, 64 bytes written. Grid: x over K blocks, y over rows
// (grid-stride, for row counts past the grid limit).
__global__ void __launch_bounds__(kDequantThreads)
    dequant_rows_bf16(Fp8GemmArgs p, SegView v, int64_t row0, int64_t rows, int prepared, uint16_t* __restrict__ out,
                      int* __restrict__ unsafe) {
  const int64_t kb = static_cast<int64_t>(blockIdx.x) * kDequantThreads + threadIdx.x;
  if (kb >= p.nkb) return;
  int64_t lb;
  const int seg = seg_of(p, kb, lb);
  const int bpb = bytes_per_block(seg), bpr = bpb / 4;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const int64_t row = row0 + r;
    const uint8_t* src;
    unsigned sc;
    alignas(16) uint8_t gathered[32];
    if (!prepared) {
      src = v.codes[seg] + row * v.row_bytes[seg] + lb * bpb;
      sc = v.scales[seg][row * v.blocks[seg] + lb];
    } else {
      // mx_prepare_gemv_weights: run (16 G, block) at prepared_index; lane 4 g + q holds bpr bytes
      // (slice q) of row g, then of row g + 8.
      const int64_t G = row / 16;
      const int g = static_cast<int>(row % 16) & 7, h = static_cast<int>(row % 16) >> 3;
      const int64_t at = prepared_index(G, lb, v.blocks[seg], p.N / 16);
      const uint8_t* run = v.codes[seg] + at * 16 * bpb + h * bpr;
#pragma unroll
      for (int q = 0; q < 4; ++q)
        for (int j = 0; j < bpr; ++j) gathered[q * bpr + j] = run[(4 * g + q) * 2 * bpr + j];
      src = gathered;
      sc = v.scales[seg][at * 16 + 2 * g + h];
    }
    uint32_t o[16];
    if (block_row_to_bf16<false>(seg, src, sc, p.fp6_e2m3, o)) atomicExch(unsafe, 1);
    uint4* dst = reinterpret_cast<uint4*>(out + r * p.nkb * 32 + kb * 32);
#pragma unroll
    for (int i = 0; i < 4; ++i) dst[i] = make_uint4(o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]);
  }
}

// The exact path for the whole output when a dequantizing thread met a value below 2^-126: 64 x 64
// tiles, grid-stride; returns at once when the flag is clear (the usual case).
__global__ void __launch_bounds__(256) exact_fixup(Fp8GemmArgs p, const int* __restrict__ unsafe) {
  if (*unsafe == 0) return;
  const int64_t tn = (p.N + 63) / 64, tiles = tn * ((p.M + 63) / 64);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x)
    exact_tile_fallback<64, 64>(p, out_view(p), (t / tn) * 64, (t % tn) * 64, 0, static_cast<int>(p.nkb));
}

void dequant_launch(const Fp8GemmArgs& p, const SegView& v, int64_t row0, int64_t rows, bool prepared, uint16_t* out,
                    int* unsafe, cudaStream_t s) {
  const unsigned gx = static_cast<unsigned>((p.nkb + kDequantThreads - 1) / kDequantThreads);
  const unsigned gy = static_cast<unsigned>(std::min<int64_t>(rows, 65535));
  dequant_rows_bf16<<<dim3(gx, gy), kDequantThreads, 0, s>>>(p, v, row0, rows, prepared ? 1 : 0, out, unsafe);
  MM_CUDA_CHECK(cudaGetLastError());
}

// One cuBLAS handle per device for the process (created on first use; cuBLAS handles are not
// shareable across devices). Split-K reductions in reduced precision are disallowed: the FP32
// accumulation is the contract.
cublasHandle_t cublas_handle() {
  static std::mutex mu;
  static cublasHandle_t handles[64] = {};
  int dev = 0;
  MM_CUDA_CHECK(cudaGetDevice(&dev));
  MM_CUDA_REQUIRE(dev >= 0 && dev < 64, "mx_mixed_gemm v18: device index " + std::to_string(dev) + " out of range");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[dev]) {
    MM_CUDA_REQUIRE(cublasCreate(&handles[dev]) == CUBLAS_STATUS_SUCCESS, "mx_mixed_gemm v18: cublasCreate failed");
    MM_CUDA_REQUIRE(cublasSetMathMode(handles[dev], static_cast<cublasMath_t>(
                                                        CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)) ==
                        CUBLAS_STATUS_SUCCESS,
                    "mx_mixed_gemm v18: cublasSetMathMode failed");
  }
  return handles[dev];
}

}  // namespace

bool mx_mixed_gemm_cublas_supported(const Fp8GemmArgs& p) {
  // block_row_to_bf16 reads FP4 / FP8 blocks as 16-byte words and FP6 blocks as 8-byte words; rows
  // and blocks keep that alignment when the segment bases have it (prepared weights are gathered).
  auto aligned = [](const SegView& v, bool prepared) {
    if (prepared) return true;
    const uintptr_t need[3] = {15, 7, 15};
    for (int s = 0; s < 3; ++s)
      if (v.blocks[s] && (reinterpret_cast<uintptr_t>(v.codes[s]) & need[s])) return false;
    return true;
  };
  return aligned(p.a, false) && aligned(p.w, p.w_prepared != 0);
}

void mx_mixed_gemm_cublas_launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  if (p.M == 0 || p.N == 0) return;
  const size_t elem = p.out_f32 ? 4 : 2;
  if (p.nkb == 0) {  // empty K: the product is zero
    MM_CUDA_CHECK(cudaMemsetAsync(p.y, 0, static_cast<size_t>(p.M * p.N) * elem, stream));
    return;
  }
  const int64_t K = p.nkb * 32;
  const int64_t chunk_rows =
      std::max<int64_t>(128, static_cast<int64_t>(kWeightChunkBytes / static_cast<size_t>(K * 2)) / 128 * 128);
  const int64_t wrows = std::min(p.N, chunk_rows);
  const size_t a_bytes = static_cast<size_t>(p.M * K) * 2, w_bytes = static_cast<size_t>(wrows * K) * 2;
  uint8_t* ws = nullptr;
  MM_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&ws), a_bytes + w_bytes + 16, stream));
  uint16_t* a16 = reinterpret_cast<uint16_t*>(ws);
  uint16_t* w16 = reinterpret_cast<uint16_t*>(ws + a_bytes);
  int* unsafe = reinterpret_cast<int*>(ws + a_bytes + w_bytes);
  MM_CUDA_CHECK(cudaMemsetAsync(unsafe, 0, sizeof(int), stream));
  dequant_launch(p, p.a, 0, p.M, false, a16, unsafe, stream);
  cublasHandle_t h = cublas_handle();
  MM_CUDA_REQUIRE(cublasSetStream(h, stream) == CUBLAS_STATUS_SUCCESS, "mx_mixed_gemm v18: cublasSetStream failed");
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t n0 = 0; n0 < p.N; n0 += wrows) {
    const int64_t nc = std::min(wrows, p.N - n0);
    dequant_launch(p, p.w, n0, nc, p.w_prepared != 0, w16, unsafe, stream);
    // cuBLAS is column-major: y (M x N row-major) is y^T (N x M, leading dimension N); its rows n0..
    // are op_T(w16 seen as K x nc) times a16 seen as K x M.
    const cublasStatus_t st = cublasGemmEx(
        h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(nc), static_cast<int>(p.M), static_cast<int>(K), &alpha, w16,
        CUDA_R_16BF, static_cast<int>(K), a16, CUDA_R_16BF, static_cast<int>(K), &beta,
        static_cast<uint8_t*>(p.y) + static_cast<size_t>(n0) * elem, p.out_f32 ? CUDA_R_32F : CUDA_R_16BF,
        static_cast<int>(p.N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    MM_CUDA_REQUIRE(st == CUBLAS_STATUS_SUCCESS, "mx_mixed_gemm v18: cublasGemmEx failed (status " +
                                                      std::to_string(static_cast<int>(st)) + ")");
  }
  exact_fixup<<<kFixupCtas, 256, 0, stream>>>(p, unsafe);
  MM_CUDA_CHECK(cudaGetLastError());
  MM_CUDA_CHECK(cudaFreeAsync(ws, stream));
}

}  // namespace micromix::cuda
