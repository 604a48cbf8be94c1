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
// Memory: nothing resident beyond the MX weights and the scratch pool (scratch.cuh). Per call, stream-
// ordered scratch: the activations as BF16 (M x K x 2 bytes, as v14-v17) and the weights as BF16 in
// chunks of at most kWeightChunkBytes (one cuBLAS call per chunk of rows), so the weight scratch stays
// bounded whatever the layer.
// Exactness: the dequantizing threads flag values below 2^-126 (scale codes below kMinSafeScale with
// a nonzero element); a last kernel recomputes the whole output exactly on the CUDA cores when the
// flag is set (it returns at once otherwise), so no host synchronization is needed.
#include <cublas_v2.h>

#include <algorithm>
#include <mutex>

#include "cuda/scratch.cuh"
#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_block_major.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;
using namespace blockmajor;

constexpr size_t kWeightChunkBytes = size_t{64} << 20;
constexpr unsigned kFixupCtas = 1056;  // grid-stride over the output tiles: 8 per SM of a 132-SM H100

// The dequantizer (why it looks like this: bench/GPU_NOTES.md, session 6). Unit of work: 16 codes
// read as one contiguous 8 / 12 / 16-byte load (FP4 / FP6 / FP8) by one thread, so a warp reads 256 -
// 512 contiguous bytes. Row-major operands: unit = half of one row's MX block (32 output bytes).
// Prepared weights (mx_prepare_gemv_weights): unit = one lane's bytes of a 16-row run, i.e. slice q
// (8 codes) of rows g and g + 8 of block b, written as two 16-byte pieces; a warp covers the run.
// The segment is a template argument and every view field is read with a constant index, so nothing
// goes through local memory. One launch covers all three segments (CTA ranges per segment).
constexpr int kDequantThreads = 256;
constexpr int kUnitsPerRun = 32;  // prepared layout: 16 rows x 4 slices, two rows per lane

struct DequantSeg {
  const uint8_t* codes;
  const uint8_t* scales;
  int64_t row_bytes;  // row-major only
  uint32_t nb;        // MX blocks per row in this segment
  uint32_t kb0;       // first global K block of the segment
  uint32_t units;     // units of this launch
};

struct DequantArgs {
  DequantSeg seg[3];
  unsigned cta_begin[4];  // CTAs [cta_begin[s], cta_begin[s + 1]) work on segment s
  int64_t row0;           // first row of the launch (a multiple of 128 for prepared weights)
  int64_t groups;         // N / 16 (prepared weights)
  int64_t ld;             // output row length (K)
  int e2m3;
  uint16_t* out;          // row (row - row0) at out + (row - row0) * ld
  int* unsafe;
};

// Codes 8 h .. 8 h + 7 of a unit's 16 (w: 2 / 3 / 4 words for FP4 / FP6 / FP8) times scale s ->
// 4 bf16x2 words.
template <int SEG>
__device__ __forceinline__ void codes8_to_bf16(const uint32_t* w, int h, bool e2m3, float s, uint32_t (&o)[4]) {
  if constexpr (SEG == 0) {
    const uint32_t q[1] = {w[h]};
    fp4_words_to_bf16<1>(q, s, o);
  } else if constexpr (SEG == 1) {
    const uint32_t q[3] = {w[0], w[1], w[2]};
    uint32_t all[8];
    fp6_words_to_bf16<4>(q, e2m3, s, all);  // the unused half is dead code
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = h ? all[4 + i] : all[i];
  } else {
    const uint32_t q[2] = {w[2 * h], w[2 * h + 1]};
    uint32_t t[4];
    fp8_words_to_bf16<2>(q, s, t);
#pragma unroll
    for (int i = 0; i < 4; ++i) o[i] = t[i];
  }
}

template <int SEG>
__device__ __forceinline__ void load_unit(const uint8_t* src, uint32_t (&w)[4]) {
  if constexpr (SEG == 0) {
    const uint2 v = ld_nc_v2(src);
    w[0] = v.x, w[1] = v.y;
  } else if constexpr (SEG == 1) {
    w[0] = ld_nc_u32(src), w[1] = ld_nc_u32(src + 4), w[2] = ld_nc_u32(src + 8);
  } else {
    const uint4 v = ld_nc_v4(src);
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
  }
}

template <int SEG, bool PREPARED>
__device__ __forceinline__ void dequant_unit(const DequantArgs& a, const DequantSeg& sg, unsigned cta) {
  constexpr int bpb = bytes_per_block(SEG), unit_bytes = bpb / 2;
  const uint32_t u = cta * kDequantThreads + threadIdx.x;
  if (u >= sg.units) return;
  uint32_t w[4] = {0u, 0u, 0u, 0u};
  bool bad;
  if constexpr (!PREPARED) {
    const uint32_t per_row = 2 * sg.nb, r = u / per_row, rem = u - r * per_row, lb = rem >> 1, h = rem & 1;
    const int64_t row = a.row0 + r;
    load_unit<SEG>(sg.codes + row * sg.row_bytes + lb * bpb + h * unit_bytes, w);
    const unsigned sc = sg.scales[row * sg.nb + lb];
    const float s = scale_f32(sc);
    uint32_t o0[4], o1[4];
    codes8_to_bf16<SEG>(w, 0, a.e2m3, s, o0);
    codes8_to_bf16<SEG>(w, 1, a.e2m3, s, o1);
    uint16_t* dst = a.out + r * a.ld + (int64_t{sg.kb0} + lb) * 32 + h * 16;
    st_global_v4(dst, o0[0], o0[1], o0[2], o0[3]);
    st_global_v4(dst + 8, o1[0], o1[1], o1[2], o1[3]);
    bad = sc < kMinSafeScale && (w[0] | w[1] | (SEG ? w[2] : 0u) | (SEG == 2 ? w[3] : 0u)) != 0;
  } else {
    // Runs of this launch are contiguous from G0 * nb (G0 = row0 / 16, super-group aligned); within a
    // super-group of `size` groups the runs go block-major (prepared_index).
    const uint32_t i = u / kUnitsPerRun, lane = u % kUnitsPerRun, g = lane >> 2, q = lane & 3;
    const int64_t G0 = a.row0 / 16, gi = G0 * sg.nb + i;
    const uint32_t sg_local = i / (8 * sg.nb), off = i - sg_local * 8 * sg.nb;
    const int64_t sg0 = G0 + 8 * int64_t{sg_local};
    const uint32_t size = static_cast<uint32_t>(a.groups - sg0 < 8 ? a.groups - sg0 : 8);
    const uint32_t b = off / size;
    const int64_t G = sg0 + (off - b * size);
    load_unit<SEG>(sg.codes + gi * 16 * bpb + lane * unit_bytes, w);
    const unsigned sc0 = sg.scales[gi * 16 + 2 * g], sc1 = sg.scales[gi * 16 + 2 * g + 1];
    uint32_t o0[4], o1[4];
    codes8_to_bf16<SEG>(w, 0, a.e2m3, scale_f32(sc0), o0);
    codes8_to_bf16<SEG>(w, 1, a.e2m3, scale_f32(sc1), o1);
    uint16_t* dst = a.out + (G * 16 + g - a.row0) * a.ld + (int64_t{sg.kb0} + b) * 32 + q * 8;
    st_global_v4(dst, o0[0], o0[1], o0[2], o0[3]);
    st_global_v4(dst + 8 * a.ld, o1[0], o1[1], o1[2], o1[3]);
    // Which codes belong to which row: FP4 word 0 / 1, FP6 bytes 0-5 / 6-11, FP8 words 0-1 / 2-3.
    const uint32_t c0 = SEG == 0 ? w[0] : SEG == 1 ? (w[0] | (w[1] & 0xFFFFu)) : (w[0] | w[1]);
    const uint32_t c1 = SEG == 0 ? w[1] : SEG == 1 ? ((w[1] >> 16) | w[2]) : (w[2] | w[3]);
    bad = (sc0 < kMinSafeScale && c0 != 0) || (sc1 < kMinSafeScale && c1 != 0);
  }
  if (bad) atomicExch(a.unsafe, 1);
}

template <bool PREPARED>
__global__ void __launch_bounds__(kDequantThreads) dequant_to_bf16(DequantArgs a) {
  const unsigned c = blockIdx.x;
  if (c < a.cta_begin[1])
    dequant_unit<0, PREPARED>(a, a.seg[0], c);
  else if (c < a.cta_begin[2])
    dequant_unit<1, PREPARED>(a, a.seg[1], c - a.cta_begin[1]);
  else
    dequant_unit<2, PREPARED>(a, a.seg[2], c - a.cta_begin[2]);
}

// The exact path for the whole output when a dequantizing thread met a value below 2^-126: 64 x 64
// tiles, grid-stride; returns at once when the flag is clear (the usual case).
__global__ void __launch_bounds__(256) exact_fixup(Fp8GemmArgs p, const int* __restrict__ unsafe) {
  if (*unsafe == 0) return;
  const int64_t tn = (p.N + 63) / 64, tiles = tn * ((p.M + 63) / 64);
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x)
    exact_tile_fallback<64, 64>(p, out_view(p), (t / tn) * 64, (t % tn) * 64, 0, static_cast<int>(p.nkb));
}

// Rows [row0, row0 + rows) of the operand viewed by v as BF16 rows of ld = 32 nkb values at out.
// Launches of at most 2^31 units each (the kernel indexes units in 32 bits).
void dequant_launch(const Fp8GemmArgs& p, const SegView& v, int64_t row0, int64_t rows, bool prepared, uint16_t* out,
                    int* unsafe, cudaStream_t s) {
  const int64_t kb[3] = {p.kb4, p.kb6, p.nkb - p.kb4 - p.kb6};
  int64_t max_nb = 1;
  for (int g = 0; g < 3; ++g) max_nb = std::max(max_nb, kb[g]);
  // Prepared launches must start on a 128-row super-group (callers chunk weights in 128-row steps).
  const int64_t step = std::max<int64_t>(128, ((int64_t{1} << 31) / (2 * max_nb)) / 128 * 128);
  for (int64_t r0 = row0; r0 < row0 + rows; r0 += step) {
    const int64_t nr = std::min(step, row0 + rows - r0);
    DequantArgs a{};
    a.row0 = r0;
    a.groups = p.N / 16;
    a.ld = p.nkb * 32;
    a.e2m3 = p.fp6_e2m3;
    a.out = out + (r0 - row0) * a.ld;
    a.unsafe = unsafe;
    unsigned ctas = 0;
    for (int g = 0; g < 3; ++g) {
      DequantSeg& d = a.seg[g];
      d.codes = v.codes[g];
      d.scales = v.scales[g];
      d.row_bytes = v.row_bytes[g];
      d.nb = static_cast<uint32_t>(kb[g]);
      d.kb0 = static_cast<uint32_t>(g == 0 ? 0 : g == 1 ? p.kb4 : p.kb4 + p.kb6);
      d.units = static_cast<uint32_t>(nr * 2 * kb[g]);  // row-major: 2 per block row; prepared: 32 per 16-row run
      a.cta_begin[g] = ctas;
      ctas += (d.units + kDequantThreads - 1) / kDequantThreads;
    }
    a.cta_begin[3] = ctas;
    if (ctas == 0) continue;
    if (prepared)
      dequant_to_bf16<true><<<ctas, kDequantThreads, 0, s>>>(a);
    else
      dequant_to_bf16<false><<<ctas, kDequantThreads, 0, s>>>(a);
    MM_CUDA_CHECK(cudaGetLastError());
  }
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
  // The dequantizer loads 16 codes at a time: 8 bytes (FP4), three 4-byte words (FP6), 16 bytes
  // (FP8), at offsets that are multiples of that size from the segment base in both layouts.
  return codes_aligned(p.a, 8, 4, 16) && codes_aligned(p.w, 8, 4, 16);
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
  uint8_t* ws = static_cast<uint8_t*>(scratch_alloc(a_bytes + w_bytes + 16, stream));
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
  scratch_free(ws, stream);
}

}  // namespace micromix::cuda
