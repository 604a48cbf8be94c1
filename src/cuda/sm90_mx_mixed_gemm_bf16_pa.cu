// Mixed MX GEMM v14: BF16 wgmma with folded scales (as v10/v12) where the ACTIVATIONS are converted
// to BF16 once per call by a pre-pass, already in the GEMM's swizzled tile order, and only the
// weights are converted per tile, over a 256-row tile.
//
// Why (GPU_NOTES, session 4): v12 converts both operand tiles on the CUDA cores in every tile, so
// each activation element is converted N / 128 times and each weight element M / 128 times; at
// ~257 warp instructions per warp per 32-K step and IPC ~2 the tensor cores idle 75% of the time.
// Here the per-step work of a thread is 4 16-byte copies of activation BF16 and the conversion of
// half a weight row (16 elements) for 256 x 128 x 32 MACs (2x v12's tile), ~5x fewer instructions
// per MAC. Cost: a BF16 workspace of the activations (rows x K x 2 bytes, stream-ordered) and reading
// it once per 128 output columns from L2.
//
// Numerics as v10/v12: every value is an exact BF16 value when it is normal (scale folded in);
// the pre-pass flags 256-row tiles whose activation blocks hold values below 2^-126, the weight
// conversion flags its own, and such a CTA recomputes its tile exactly on the CUDA cores.
//
// Activation layout written by the pre-pass: for K block kb (over the whole K, segment order) and
// half h (elements 16 h .. 16 h + 15 in block_row_to_bf16<true>'s order): rows_pad x 32 bytes, row
// r's two 16-byte chunks swapped when (r >> 2) & 1 (the 32-byte swizzle), so that one step of a
// 256-row tile is two contiguous 8 KB runs copied as they are into the wgmma tile.
// CTA: 2 warpgroups, 256 x 128 outputs; warpgroup g owns rows 128 g .. 128 g + 127 as two m64 slabs.
// Pipeline (group = one cp.async commit): group j holds W codes of block j and A of block j - 2.
// Iteration kb: wgmmas of block kb; groups <= kb + 3 landed (W kb + 2, A kb + 1); wgmmas of block
// kb - 1 done; barrier; convert W block kb + 2; copies of group kb + 5 into the freed buffers.
#include "cuda/scratch.cuh"
#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_block_major.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;
using namespace blockmajor;

constexpr int kBM = 256, kBN = 128, kThreads = 256;
constexpr int kABufs = 4, kWBufs = 3, kStages = 6;

struct Layout {
  static constexpr int a_sub = kBM * 32;            // one k16 sub-tile of the A rows, bf16
  static constexpr int a_buf = 2 * a_sub;
  static constexpr int w_sub = kBN * 32;
  static constexpr int w_buf = 2 * w_sub;
  static constexpr int w_codes = kBN * 32;          // ring: codes (FP8 worst case) | scale bytes
  static constexpr int w_raw = w_codes + kBN;
  static constexpr int w_bufs_at = kABufs * a_buf;  // 1024-aligned tiles first, the ring last
  static constexpr int ring_at = w_bufs_at + kWBufs * w_buf;
  static constexpr int smem = ring_at + kStages * w_raw + 1024;
};

// Half h of a block row in block_row_to_bf16<true>'s order (activations_to_bf16_tiles).
struct HalfInterleaved {
  __device__ static bool convert(int seg, const uint8_t* block, int h, unsigned sc, bool e2m3, uint32_t (&o)[8]) {
    return block_half_row_to_bf16(seg, block + h * bytes_per_block(seg) / 2, sc, e2m3, o);
  }
};

__global__ void __launch_bounds__(kThreads, 1)
    gemm_bf16_v14(Fp8GemmArgs p, const uint8_t* __restrict__ a16, int64_t a_rows_pad, const int* __restrict__ a_unsafe,
                  BlockMajor W) {
  using L = Layout;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  // Rounded up to 1024 bytes by an offset on the shared array (keeps shared-space addressing).
  uint8_t* smem = smem_raw + ((1024u - (static_cast<unsigned>(__cvta_generic_to_shared(smem_raw)) & 1023u)) & 1023u);
  uint8_t* abufs = smem;
  uint8_t* wbufs = smem + L::w_bufs_at;
  uint8_t* ring = smem + L::ring_at;

  const int tid = threadIdx.x, warp = tid >> 5, g = warp >> 2;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;
  int kb_lo, kb_hi;
  split_range(p, kb_lo, kb_hi);
  const int nkb = kb_hi - kb_lo;

  // A copies: 1024 16-byte pieces per block, thread tid takes pieces tid + 256 i (i = 0, 1: half 0;
  // 2, 3: half 1); the source advances by 2 rows_pad x 32 bytes per block.
  const int64_t a_half = a_rows_pad * 32;
  const uint8_t* a_src = a16 + (int64_t{kb_lo} * 2 * a_rows_pad + m0) * 32 + tid * 16;
  auto issue_a = [&](int j) {
    uint8_t* dst = abufs + (j % kABufs) * L::a_buf + tid * 16;
    const uint8_t* src = a_src + int64_t{j} * 2 * a_half;
    cp_async16(dst, src);
    cp_async16(dst + 4096, src + 4096);
    cp_async16(dst + L::a_sub, src + a_half);
    cp_async16(dst + L::a_sub + 4096, src + a_half + 4096);
  };
  auto issue_w = [&](int j) {
    const int64_t kb = kb_lo + j;
    int64_t lb;
    const int seg = seg_of(p, kb, lb);
    const int bpb = bytes_per_block(seg);
    uint8_t* slot = ring + (j % kStages) * L::w_raw;
    // (Selects, not W.codes[seg]: a dynamic index into the parameter struct goes through local memory.)
    const uint8_t* codes = seg == 0 ? W.codes[0] : seg == 1 ? W.codes[1] : W.codes[2];
    const uint8_t* scales = seg == 0 ? W.scales[0] : seg == 1 ? W.scales[1] : W.scales[2];
    if (tid * 16 < kBN * bpb) cp_async16(slot + tid * 16, codes + (lb * W.rows_pad + n0) * bpb + tid * 16);
    if (tid < kBN / 16) cp_async16(slot + L::w_codes + tid * 16, scales + lb * W.rows_pad + n0 + tid * 16);
  };
  auto issue_group = [&](int grp) {
    if (grp < nkb) issue_w(grp);
    if (grp >= 2 && grp - 2 < nkb) issue_a(grp - 2);
    cp_async_commit();
  };

  bool unsafe = false;
  auto convert = [&](int j) {  // W block j: thread = (row tid / 2, half tid % 2)
    int64_t lb;
    const int seg = seg_of(p, kb_lo + j, lb);
    const int hb = bytes_per_block(seg) / 2, row = tid >> 1, h = tid & 1;
    const uint8_t* slot = ring + (j % kStages) * L::w_raw;
    uint32_t o[8];
    if (block_half_row_to_bf16(seg, slot + row * 2 * hb + h * hb, slot[L::w_codes + row], p.fp6_e2m3, o)) unsafe = true;
    store_half_row_sw32(wbufs + (j % kWBufs) * L::w_buf, L::w_sub, row, h, o);
  };

  float acc0[64], acc1[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    acc0[i] = 0.0f;
    acc1[i] = 0.0f;
  }

#pragma unroll 1
  for (int grp = 0; grp < 5; ++grp) issue_group(grp);
  cp_async_wait<2>();  // groups 0..2: W blocks 0..2, A block 0
  fence_proxy_async();
  __syncthreads();
  if (nkb > 0) convert(0);
  if (nkb > 1) convert(1);
  fence_proxy_async();
  __syncthreads();

  // Descriptors of buffer 0; only the low word (address / 16) changes between buffers.
  const uint64_t da0 = smem_desc_sw32(abufs + g * 128 * 32), db0 = smem_desc_sw32(wbufs);
  const uint32_t da_lo = static_cast<uint32_t>(da0), db_lo = static_cast<uint32_t>(db0);
  const uint64_t desc_hi = da0 & 0xFFFFFFFF00000000ull;
#pragma unroll 1
  for (int kb = 0; kb < nkb; ++kb) {
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t aoff = static_cast<uint32_t>(((kb % kABufs) * L::a_buf + h * L::a_sub) >> 4);
      const uint32_t woff = static_cast<uint32_t>(((kb % kWBufs) * L::w_buf + h * L::w_sub) >> 4);
      const uint64_t db = desc_hi | (db_lo + woff);
      wgmma_m64n128k16(acc0, desc_hi | (da_lo + aoff), db);
      wgmma_m64n128k16(acc1, desc_hi | (da_lo + aoff + (64 * 32 >> 4)), db);
    }
    wgmma_commit();
    cp_async_wait<1>();  // groups <= kb + 3: W block kb + 2, A block kb + 1
    wgmma_wait1();       // this warpgroup's block kb - 1 done
    fence_proxy_async();  // A copies (generic proxy) before the wgmmas (async proxy) read them
    __syncthreads();
    if (kb + 2 < nkb) {
      convert(kb + 2);
      fence_proxy_async();
    }
    issue_group(kb + 5);  // into the W slot and A buffer of block kb - 1
  }
  wgmma_wait0();
  cp_async_wait<0>();

  if (__syncthreads_or(unsafe || a_unsafe[blockIdx.y] != 0)) {
    exact_tile_fallback<kBM, kBN>(p, out_view(p), m0, n0, kb_lo, kb_hi);
  } else {
    const int64_t row0 = m0 + g * 128 + (warp & 3) * 16;
    store_acc_m64<kBN>(p, out_view(p), acc0, row0, n0);
    store_acc_m64<kBN>(p, out_view(p), acc1, row0 + 64, n0);
  }
}

}  // namespace

void mx_mixed_gemm_bf16pa_launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  const int64_t gx = (p.N + kBN - 1) / kBN, gy = (p.M + kBM - 1) / kBM;
  static const bool attr_set = (set_smem_attributes(gemm_bf16_v14, Layout::smem), true);
  (void)attr_set;
  const int64_t kb8 = p.nkb - p.kb4 - p.kb6;
  const int64_t a_rows_pad = gy * kBM;
  const size_t a_bytes = static_cast<size_t>(a_rows_pad * p.nkb * 64), flag_bytes = static_cast<size_t>(gy * 4 + 12) / 16 * 16;
  BlockMajor W{};
  const size_t w_bytes = carve(nullptr, p.N, p.kb4, p.kb6, kb8, W);
  // Stream-ordered workspace: no device-wide synchronization.
  uint8_t* ws = static_cast<uint8_t*>(scratch_alloc(a_bytes + flag_bytes + w_bytes + 16, stream));
  int* a_unsafe = reinterpret_cast<int*>(ws + a_bytes);
  carve(ws + a_bytes + flag_bytes, p.N, p.kb4, p.kb6, kb8, W);
  MM_CUDA_CHECK(cudaMemsetAsync(a_unsafe, 0, flag_bytes, stream));
  if (p.nkb > 0) {
    activations_to_bf16_tiles<HalfInterleaved>
        <<<dim3(static_cast<unsigned>(a_rows_pad / 64), static_cast<unsigned>(p.nkb)), 128, 0, stream>>>(p, a_rows_pad, kBM, ws,
                                                                                                        a_unsafe);
    MM_CUDA_CHECK(cudaGetLastError());
  }
  block_major_launch(p.w, p.N, p.kb4, p.kb6, kb8, W, stream);
  launch_split_k(p, gx, gy, 1, stream, [&](const Fp8GemmArgs& q, dim3 grid) {
    gemm_bf16_v14<<<grid, kThreads, Layout::smem, stream>>>(q, ws, a_rows_pad, a_unsafe, W);
    MM_CUDA_CHECK(cudaGetLastError());
  });
  scratch_free(ws, stream);
}

}  // namespace micromix::cuda
