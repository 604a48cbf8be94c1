// Mixed MX GEMM v10, v11 on BF16 wgmma with the MX scales folded into the operands:
// y (M, N) = dequant(a) . dequant(w)^T, all three segments in one launch, FP32 accumulation.
//
// Why BF16 and no promotion: every dequantized MX value (an element of <= 4 significant bits times
// 2^(s - 127)) is exactly a BF16 value whenever it is a normal float, because BF16 has float's
// exponent range. So each tile is converted once to BF16 with its scale already applied, and the
// tensor core accumulates the exact products of whole K ranges in FP32: no per-block promotion on
// the CUDA cores (the FP8 versions v6-v9 spent ~1000 of their ~3000 instructions per CTA and MX block
// there, bench/GPU_NOTES.md). The cost is the BF16 tensor rate (half of FP8's) and the conversion.
//
// Exactness condition and fallback: values below 2^-126 (scale codes < 10 with nonzero elements)
// would be BF16 subnormals, which may round or be flushed. A thread that converts such a block
// flags it; a CTA with a flag recomputes its tile on the CUDA cores from the packed codes (FP32,
// exact products), so the result stays the reference's up to summation order. A NaN scale (0xFF)
// makes every value of its block NaN (zeros included), as in the CPU reference.
//
// Element -> BF16 (value * 2^(s - 127)):
//   FP4: the 8 scaled magnitudes are computed in float once per row and block and split into a
//        table of low bytes and a table of high bytes; 4 codes then cost 2 table PRMTs, one PRMT for
//        the signs and 2 PRMTs to interleave the bytes into two bf16x2 words.
//   FP6/FP8: E2M3 / E3M2 codes are placed into E4M3 fields (value * 2^-6 / 2^-4), hardware
//        cvt e4m3x2 -> f16x2, an exact f16 multiply restores FP6 values, then float * scale ->
//        cvt.rn.bf16x2 (exact).
//
// CTA: 2 warpgroups of 64 output rows each, BN output columns; 256 threads. Per MX block (32 K):
//   raw packed codes and scale bytes by cp.async into a 6-deep ring (thread t copies and converts rows t, t + 256);
//   BF16 tiles in 3 buffers, each two k16 sub-tiles of (128 + BN) rows x 32 bytes with the 32-byte
//   swizzle (the layout wgmma reads with a descriptor); per block 2 wgmma m64nBNk16 per warpgroup.
//   Iteration kb: issue the wgmmas of block kb (async), wait for block kb - 1's, one barrier, then
//   convert block kb + 2 into the buffer block kb - 1 used. One barrier per MX block.
// v10: BN = 128 (64 accumulators per thread, 2 CTAs per SM). v11: BN = 256 (128 accumulators,
// 1 CTA per SM; threads 0..127 convert two rows, the others one).
// NOTES: rows past M or N are clamped on load and never stored; K = 0 writes zeros.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "cuda/sm90_bf16_tile.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;

// Ring of 6 stages: block kb + 2 is converted in iteration kb, its copy issued 3 iterations earlier.
constexpr int kBM = 128, kThreads = 256, kStages = 6, kBufs = 3;
constexpr int kRawRow = 32;  // ring bytes per row and block (FP8 worst case)

template <int BN>
struct Tile {
  static constexpr int rows = kBM + BN;            // A rows then W rows
  static constexpr int raw_slot = rows * (kRawRow + 4);  // one ring stage: codes, then 4 scale bytes per row
  static constexpr int sub = rows * 32;            // one k16 sub-tile of all rows, bf16
  static constexpr int buf = 2 * sub;              // one MX block, bf16
  static constexpr int rows_per_thread = (rows + kThreads - 1) / kThreads;
  static constexpr int smem = kStages * raw_slot + kBufs * buf + 1024;  // + alignment slack
};

template <int BN>
__global__ void __launch_bounds__(kThreads, BN == 128 ? 2 : 1) gemm_bf16_v10(Fp8GemmArgs p) {
  using T = Tile<BN>;
  constexpr int R = T::rows_per_thread;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  // Rounded up to 1024 bytes by an offset on the shared array itself (an integer round trip of the
  // pointer would turn every shared access into a generic one: LD.E / ST.E in the SASS).
  uint8_t* smem = smem_raw + ((1024u - (static_cast<unsigned>(__cvta_generic_to_shared(smem_raw)) & 1023u)) & 1023u);
  uint8_t* ring = smem;                           // kStages x rows x (32 code bytes) + rows x 4 scale bytes
  uint8_t* tiles = smem + kStages * T::raw_slot;  // kBufs x 2 sub-tiles x rows x 32 bytes of bf16

  const int tid = threadIdx.x, warp = tid >> 5;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int kb4 = static_cast<int>(p.kb4), kb46 = static_cast<int>(p.kb4 + p.kb6);
  int kb_lo, kb_hi;
  split_range(p, kb_lo, kb_hi);
  const int nkb = kb_hi - kb_lo;  // blocks of this CTA
  auto seg_at = [&](int kb) { return kb < kb4 ? 0 : kb < kb46 ? 1 : 2; };
  auto seg_start = [&](int seg) { return seg == 0 ? 0 : seg == 1 ? kb4 : kb46; };

  // The rows this thread copies and converts: tile row t = tid + 256 i (A rows first, then W rows).
  // Blocks are issued in K order, so each row keeps a cursor (code and scale address of the next
  // block), reset from the parameters only where a segment starts.
  int64_t row_of[R];
  bool has_row[R], is_a[R];
  const uint8_t* cur_code[R];
  const uint8_t* cur_scale[R];
  unsigned scale_lo[R];  // low 2 address bits of the row's scale array, per segment (2 bits each)
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const int t = tid + kThreads * i;
    has_row[i] = t < T::rows;
    is_a[i] = t < kBM;
    row_of[i] = is_a[i] ? min(m0 + t, p.M - 1) : min(n0 + (t - kBM), p.N - 1);
    const SegView& v = is_a[i] ? p.a : p.w;
    scale_lo[i] = 0;
#pragma unroll
    for (int sg = 0; sg < 3; ++sg)
      scale_lo[i] |= (static_cast<unsigned>(reinterpret_cast<uintptr_t>(v.scales[sg] + row_of[i] * v.blocks[sg])) & 3u) << (2 * sg);
    cur_code[i] = cur_scale[i] = nullptr;
  }

  // Copies block kb's packed codes and scale of this thread's rows into ring slot kb % kStages. The
  // scale comes as the aligned 4-byte word holding it (the launcher checks that scale arrays start
  // 4-byte aligned), so that it travels with the codes by cp.async; within the last 3 bytes of a
  // row the byte is copied by a plain load instead (the word could run past the array).
  // j counts the CTA's blocks (K block kb = kb_lo + j).
  auto issue = [&](int j) {
    const int kb = kb_lo + j, seg = seg_at(kb);
    uint8_t* slot = ring + (j % kStages) * T::raw_slot;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      if (!has_row[i]) continue;
      if (kb == seg_start(seg) || j == 0) {  // first block of a segment or of the split: cursor from the parameters
        const SegView& v = is_a[i] ? p.a : p.w;
        const int lb = kb - seg_start(seg);
        // (Members selected by value: indexing with seg would put the arrays in local memory.)
        cur_code[i] = (seg == 0 ? v.codes[0] : seg == 1 ? v.codes[1] : v.codes[2]) +
                      row_of[i] * (seg == 0 ? v.row_bytes[0] : seg == 1 ? v.row_bytes[1] : v.row_bytes[2]) +
                      lb * (seg == 0 ? 16 : seg == 1 ? 24 : 32);
        cur_scale[i] = (seg == 0 ? v.scales[0] : seg == 1 ? v.scales[1] : v.scales[2]) +
                       row_of[i] * (seg == 0 ? v.blocks[0] : seg == 1 ? v.blocks[1] : v.blocks[2]) + lb;
      }
      const int t = tid + kThreads * i;
      uint8_t* dst = slot + t * kRawRow;
      const uint8_t* sp = cur_scale[i];
      const int off = static_cast<int>(reinterpret_cast<uintptr_t>(sp) & 3u);
      const int left = (seg == 0 ? kb4 : seg == 1 ? kb46 : static_cast<int>(p.nkb)) - kb;  // blocks from sp to the row end
      uint8_t* sdst = slot + T::rows * kRawRow + t * 4;
      if (off + left >= 4) cp_async4(sdst, sp - off);
      else sdst[off] = *sp;  // the last blocks of a row: the aligned word would run past the array
      cur_scale[i] = sp + 1;
      if (seg == 0) {
        cp_async16(dst, cur_code[i]);
        cur_code[i] += 16;
      } else if (seg == 1) {
#pragma unroll
        for (int j = 0; j < 3; ++j) cp_async8(dst + 8 * j, cur_code[i] + 8 * j);
        cur_code[i] += 24;
      } else {
        cp_async16(dst, cur_code[i]);
        cp_async16(dst + 16, cur_code[i] + 16);
        cur_code[i] += 32;
      }
    }
  };
  bool unsafe = false;  // a block this thread converted has values below 2^-126
  // Converts this thread's rows of block kb (its own cp.async copies) into bf16 buffer kb % kBufs.
  auto convert = [&](int j) {
    const int kb = kb_lo + j, seg = seg_at(kb);
    const int lb = kb - seg_start(seg);
    const uint8_t* slot = ring + (j % kStages) * T::raw_slot;
    uint8_t* buf = tiles + (j % kBufs) * T::buf;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      if (!has_row[i]) continue;
      const int t = tid + kThreads * i;
      const uint8_t* src = slot + t * kRawRow;
      const unsigned sc = slot[T::rows * kRawRow + t * 4 + static_cast<int>(((scale_lo[i] >> (2 * seg)) + lb) & 3u)];
      uint32_t o[16];
      if (block_row_to_bf16<false>(seg, src, sc, p.fp6_e2m3, o)) unsafe = true;
      store_row_sw32(buf, T::sub, t, o);
    }
  };

  constexpr int NACC = BN / 2;  // accumulators per thread: 64 x BN / 128
  float acc[NACC];
#pragma unroll
  for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;
  const int g = warp >> 2;  // warpgroup: output rows 64 g .. 64 g + 63

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkb) issue(s);
    cp_async_commit();
  }
  if (nkb > 0) {
    cp_async_wait<kStages - 2>();
    convert(0);
  }
  if (nkb > 1) {
    cp_async_wait<kStages - 3>();
    convert(1);
  }
  fence_proxy_async();
  __syncthreads();

  for (int kb = 0; kb < nkb; ++kb) {
    const uint8_t* buf = tiles + (kb % kBufs) * T::buf;
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint64_t da = smem_desc_sw32(buf + h * T::sub + g * 64 * 32);
      const uint64_t db = smem_desc_sw32(buf + h * T::sub + kBM * 32);
      if constexpr (BN == 128) wgmma_m64n128k16(acc, da, db);
      else wgmma_m64n256k16(acc, da, db);
    }
    wgmma_commit();
    if (kb + kStages - 1 < nkb) issue(kb + kStages - 1);
    cp_async_commit();
    wgmma_wait1();    // this warpgroup's block kb - 1 done
    __syncthreads();  // every warpgroup's block kb - 1 done: its buffer is free; block kb + 1 converted
    if (kb + 2 < nkb) {
      cp_async_wait<kStages - 3>();  // block kb + 2 landed (own copies)
      convert(kb + 2);
      fence_proxy_async();
    }
  }
  wgmma_wait0();
  cp_async_wait<0>();

  finish_tile<kBM, BN>(p, unsafe, acc, m0, n0, m0 + g * 64 + (warp & 3) * 16, kb_lo, kb_hi);
}

template <int BN>
void launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  static const bool attr_set = (set_smem_attributes(gemm_bf16_v10<BN>, Tile<BN>::smem), true);
  (void)attr_set;
  launch_split_k(p, (p.N + BN - 1) / BN, (p.M + kBM - 1) / kBM, BN == 128 ? 2 : 1, stream, [&](const Fp8GemmArgs& q, dim3 grid) {
    gemm_bf16_v10<BN><<<grid, kThreads, Tile<BN>::smem, stream>>>(q);
    MM_CUDA_CHECK(cudaGetLastError());
  });
}

// y = sum over the partial slices in order (deterministic), as f32 or bf16.
__global__ void reduce_splits(Fp8GemmArgs p, const float* __restrict__ ws, int splits) {
  const int64_t n = p.M * p.N;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int s = 0; s < splits; ++s) sum += ws[s * n + i];
    if (p.out_f32) static_cast<float*>(p.y)[i] = sum;
    else static_cast<__nv_bfloat16*>(p.y)[i] = __float2bfloat16_rn(sum);
  }
}

}  // namespace

int bf16_gemm_splits(int64_t tiles, int ctas_per_sm, int64_t nkb) {
  int dev = 0, sms = 0;
  MM_CUDA_CHECK(cudaGetDevice(&dev));
  MM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int64_t slots = static_cast<int64_t>(sms) * ctas_per_sm;
  // Only when the tiles fill less than half of the GPU (splitting o at M = 1024, 256 tiles on
  // 264 slots, cost 25% on H200: partial traffic and the reduction).
  if (2 * tiles >= slots || nkb < 32) return 1;
  // About one wave, each part at least 16 MX blocks (512 K) long.
  const int64_t want = (slots + tiles - 1) / tiles;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(want, nkb / 16)));
}

void bf16_gemm_reduce_splits(const Fp8GemmArgs& p, const float* ws, int splits, cudaStream_t stream) {
  const int64_t n = p.M * p.N;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((n + 255) / 256, 4096));
  reduce_splits<<<blocks, 256, 0, stream>>>(p, ws, splits);
  MM_CUDA_CHECK(cudaGetLastError());
}

void mx_mixed_gemm_bf16_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream) {
  if (variant == 11) launch<256>(p, stream);
  else launch<128>(p, stream);
}

}  // namespace micromix::cuda
