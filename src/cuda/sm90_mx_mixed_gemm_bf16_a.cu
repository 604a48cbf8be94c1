// Mixed MX GEMM v12, v13: v10's BF16 wgmma with folded scales, fed from BLOCK-MAJOR copies of both
// operands made by a pre-pass (same size as the MX data).
//
// Why: v10 reads, per 32-K step, 16-32 code bytes and ONE scale byte of each of its 256 rows, each
// from a different row of the row-major MX arrays: ~2 L2 sectors per row and step of which ~20 of 64
// bytes are used. Measured (H200, o M=8192): v10 took the same time with its conversion or its
// wgmma removed (~1.3-1.4 ms for 0.26 ms of tensor work): it waits on L2 requests, not on
// instructions. In block-major order ([block][row][bytes], scales [block][row], rows padded to 256)
// one step of a 128-row tile is one contiguous run (2-4 KB of codes, 128 bytes of scales), read in
// full 16-byte pieces. The copy costs one pass over the MX bytes per call (weights would be laid
// out once at load time in an engine; here the pre-pass does both operands on every call).
// An earlier v12/v13 dequantized the activations to a BF16 workspace instead: 4x the bytes for
// every N-tile to read, and no faster (GPU_NOTES).
//
// Numerics as v10 (exact scale folding into BF16; CTA-wide exact CUDA-core fallback for tiles with
// values below 2^-126, found while converting).
// CTA: 2 warpgroups, 128 x BN outputs; per MX block all 256 threads copy the tile's contiguous
// code and scale runs (16-byte cp.async) into a 6-deep ring, then after one barrier each thread
// converts its own row(s) into one of 3 BF16 buffers (two k16 sub-tiles, 32-byte swizzle).
// Iteration kb: wgmmas of block kb; this thread's copies of block kb + 2 done; wgmmas of block
// kb - 1 done; barrier; convert block kb + 2; fence.proxy.async; copies of block kb + 5.
// v12: BN = 128 (2 CTAs per SM). v13: BN = 256 (1 CTA per SM).
#include "cuda/scratch.cuh"
#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_block_major.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;
using namespace blockmajor;

constexpr int kBM = 128, kThreads = 256, kStages = 6, kBufs = 3;

template <int BN>
struct Layout {
  static constexpr int rows = kBM + BN;                      // A rows then W rows
  static constexpr int codes = rows * 32;                     // ring bytes of codes (FP8 worst case)
  static constexpr int raw_slot = codes + rows;               // + one scale byte per row
  static constexpr int raw_stride = (raw_slot + 127) / 128 * 128;
  static constexpr int sub = rows * 32;                       // one k16 sub-tile of all rows, bf16
  static constexpr int buf = 2 * sub;
  static constexpr int rows_per_thread = (rows + kThreads - 1) / kThreads;
  static constexpr int smem = kStages * raw_stride + kBufs * buf + 1024;
};

template <int BN>
__global__ void __launch_bounds__(kThreads, BN == 128 ? 2 : 1)
    gemm_bf16_v12(Fp8GemmArgs p, BlockMajor A, BlockMajor W) {
  using L = Layout<BN>;
  constexpr int R = L::rows_per_thread;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  // Rounded up to 1024 bytes by an offset on the shared array (keeps shared-space addressing).
  uint8_t* smem = smem_raw + ((1024u - (static_cast<unsigned>(__cvta_generic_to_shared(smem_raw)) & 1023u)) & 1023u);
  uint8_t* ring = smem;                             // kStages x (codes of all rows | scale bytes)
  uint8_t* tiles = smem + kStages * L::raw_stride;  // kBufs x 2 sub-tiles x rows x 32 bytes of bf16

  const int tid = threadIdx.x, warp = tid >> 5, g = warp >> 2;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * BN;
  const int kb4 = static_cast<int>(p.kb4), kb46 = static_cast<int>(p.kb4 + p.kb6);
  int kb_lo, kb_hi;
  split_range(p, kb_lo, kb_hi);
  const int nkb = kb_hi - kb_lo;  // blocks of this CTA
  auto seg_at = [&](int kb) { return kb < kb4 ? 0 : kb < kb46 ? 1 : 2; };
  auto seg_start = [&](int seg) { return seg == 0 ? 0 : seg == 1 ? kb4 : kb46; };

  // Copy plan of this thread for the segment being issued (set where a segment starts, then only
  // advanced): block kb's A rows m0.. and W rows n0.. are contiguous runs of 128 x bpb and BN x bpb
  // code bytes and 128 / BN scale bytes, laid out in the ring slot as rows 0..127 then 128..: row t's
  // codes at t * bpb, its scale at L::codes + t. Thread tid copies 16-byte pieces tid + 256 i.
  constexpr int NCH = L::rows * 32 / 16 / kThreads;  // most code pieces per thread (FP8)
  const uint8_t* csrc[NCH];
  int cstride[NCH], cdst[NCH];
  const uint8_t* ssrc = nullptr;
  int sstride = 0;
  auto plan = [&](int seg, int lb) {
    const int bpb = bytes_per_block(seg), a_pieces = kBM * bpb / 16, pieces = L::rows * bpb / 16;
    const uint8_t* a0 = (seg == 0 ? A.codes[0] : seg == 1 ? A.codes[1] : A.codes[2]) + (lb * A.rows_pad + m0) * bpb;
    const uint8_t* w0 = (seg == 0 ? W.codes[0] : seg == 1 ? W.codes[1] : W.codes[2]) + (lb * W.rows_pad + n0) * bpb;
#pragma unroll
    for (int i = 0; i < NCH; ++i) {
      const int c = tid + kThreads * i;
      cdst[i] = c < pieces ? 16 * c : -1;
      csrc[i] = c < a_pieces ? a0 + 16 * c : w0 + 16 * (c - a_pieces);
      cstride[i] = static_cast<int>((c < a_pieces ? A.rows_pad : W.rows_pad) * bpb);
    }
    const int c = tid;  // scale pieces: 8 for A, BN / 16 for W
    ssrc = c < kBM / 16 ? (seg == 0 ? A.scales[0] : seg == 1 ? A.scales[1] : A.scales[2]) + lb * A.rows_pad + m0 + 16 * c
                        : (seg == 0 ? W.scales[0] : seg == 1 ? W.scales[1] : W.scales[2]) + lb * W.rows_pad + n0 + 16 * (c - kBM / 16);
    sstride = static_cast<int>(c < kBM / 16 ? A.rows_pad : W.rows_pad);
  };
  int islot = 0, cslot = 0, cbuf = 0;  // ring slot of the next copy and of the next conversion; its bf16 buffer
  // j counts the CTA's blocks (K block kb = kb_lo + j).
  auto issue = [&](int j) {
    const int kb = kb_lo + j, seg = seg_at(kb);
    if (kb == seg_start(seg) || j == 0) plan(seg, kb - seg_start(seg));
    uint8_t* slot = ring + islot * L::raw_stride;
#pragma unroll
    for (int i = 0; i < NCH; ++i) {
      if (cdst[i] >= 0) cp_async16(slot + cdst[i], csrc[i]);
      csrc[i] += cstride[i];
    }
    if (tid < L::rows / 16) cp_async16(slot + L::codes + 16 * tid, ssrc);
    ssrc += sstride;
    islot = islot + 1 == kStages ? 0 : islot + 1;
  };

  bool unsafe = false;  // a block this thread converted has values below 2^-126
  auto convert = [&](int j) {
    const int seg = seg_at(kb_lo + j), bpb = bytes_per_block(seg);
    const uint8_t* slot = ring + cslot * L::raw_stride;
    uint8_t* buf = tiles + cbuf * L::buf;
    cslot = cslot + 1 == kStages ? 0 : cslot + 1;
    cbuf = cbuf + 1 == kBufs ? 0 : cbuf + 1;
#pragma unroll
    for (int i = 0; i < R; ++i) {
      const int t = tid + kThreads * i;
      if (t >= L::rows) continue;
      const uint8_t* src = slot + t * bpb;
      const unsigned sc = slot[L::codes + t];
      uint32_t o[16];
      if (block_row_to_bf16<true>(seg, src, sc, p.fp6_e2m3, o)) unsafe = true;
      store_row_sw32(buf, L::sub, t, o);
    }
  };

  constexpr int NACC = BN / 2;  // accumulators per thread: 64 x BN / 128
  float acc[NACC];
#pragma unroll
  for (int i = 0; i < NACC; ++i) acc[i] = 0.0f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkb) issue(s);
    cp_async_commit();
  }
  cp_async_wait<kStages - 3>();  // blocks 0 and 1 (this thread's copies)
  __syncthreads();               // ... and everybody's
  if (nkb > 0) convert(0);
  if (nkb > 1) convert(1);
  fence_proxy_async();
  __syncthreads();

  // Descriptors of buffer 0; buffer b is b * L::buf bytes further. Only the low word (address / 16,
  // < 2^14 for any shared address) changes, so it is advanced as a 32-bit value without carry.
  const uint64_t da0 = smem_desc_sw32(tiles + g * 64 * 32), db0 = smem_desc_sw32(tiles + kBM * 32);
  const uint32_t da_lo = static_cast<uint32_t>(da0), db_lo = static_cast<uint32_t>(db0);
  const uint64_t desc_hi = da0 & 0xFFFFFFFF00000000ull;  // the same for both operands
  int wbuf = 0;
  for (int kb = 0; kb < nkb; ++kb) {
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t off = static_cast<uint32_t>((wbuf * L::buf + h * L::sub) >> 4);
      const uint64_t da = desc_hi | (da_lo + off), db = desc_hi | (db_lo + off);
      if constexpr (BN == 128) wgmma_m64n128k16(acc, da, db);
      else wgmma_m64n256k16(acc, da, db);
    }
    wgmma_commit();
    wbuf = wbuf + 1 == kBufs ? 0 : wbuf + 1;
    cp_async_wait<kStages - 4>();  // this thread's copies of block kb + 2 landed
    wgmma_wait1();                 // this warpgroup's block kb - 1 done
    __syncthreads();               // all copies of block kb + 2 visible; all of block kb - 1's wgmmas done
    if (kb + 2 < nkb) {
      convert(kb + 2);
      fence_proxy_async();
    }
    // Into the slot of block kb - 1 (converted in iteration kb - 3).
    if (kb + kStages - 1 < nkb) issue(kb + kStages - 1);
    cp_async_commit();
  }
  wgmma_wait0();
  cp_async_wait<0>();

  finish_tile<kBM, BN>(p, unsafe, acc, m0, n0, m0 + g * 64 + (warp & 3) * 16, kb_lo, kb_hi);
}

template <int BN>
void launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  const int64_t gx = (p.N + BN - 1) / BN, gy = (p.M + kBM - 1) / kBM;
  static const bool attr_set = (set_smem_attributes(gemm_bf16_v12<BN>, Layout<BN>::smem), true);
  (void)attr_set;
  const int64_t kb8 = p.nkb - p.kb4 - p.kb6;
  BlockMajor A{}, W{};
  const size_t a_bytes = carve(nullptr, p.M, p.kb4, p.kb6, kb8, A), w_bytes = carve(nullptr, p.N, p.kb4, p.kb6, kb8, W);
  // Stream-ordered workspace: no device-wide synchronization.
  uint8_t* ws = static_cast<uint8_t*>(scratch_alloc(a_bytes + w_bytes + 16, stream));
  carve(ws, p.M, p.kb4, p.kb6, kb8, A);
  carve(ws + a_bytes, p.N, p.kb4, p.kb6, kb8, W);
  block_major_launch(p.a, p.M, p.kb4, p.kb6, kb8, A, stream);
  block_major_launch(p.w, p.N, p.kb4, p.kb6, kb8, W, stream);
  launch_split_k(p, gx, gy, BN == 128 ? 2 : 1, stream, [&](const Fp8GemmArgs& q, dim3 grid) {
    gemm_bf16_v12<BN><<<grid, kThreads, Layout<BN>::smem, stream>>>(q, A, W);
    MM_CUDA_CHECK(cudaGetLastError());
  });
  scratch_free(ws, stream);
}

}  // namespace

void mx_mixed_gemm_bf16a_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream) {
  if (variant == 13) launch<256>(p, stream);
  else launch<128>(p, stream);
}


namespace blockmajor {
namespace {

using namespace mixed;

// Transposes 32 rows x 32 blocks of one segment through shared memory (CTA of 32 x 32 threads):
// thread (x, y) reads block b0 + x of row r0 + y (a warp reads one row's contiguous bytes) and then
// writes row r0 + x of block b0 + y (a warp writes one block's contiguous rows). Pad rows get zero
// codes and scale 127. grid.x: block tiles of segment 0, then 1, then 2; grid.y: 32-row tiles.
__global__ void __launch_bounds__(1024) to_block_major(SegView v, int64_t rows, int kb4, int kb6, int kb8, BlockMajor out) {
  __shared__ uint2 codes[32][33][5];  // [row][block]: up to 32 bytes, padded so that a column read is ~2-way
  __shared__ uint8_t scales[32][32 + 1];
  const int t4 = (kb4 + 31) / 32, t6 = (kb6 + 31) / 32;
  int tile = static_cast<int>(blockIdx.x), seg, nb;
  if (tile < t4) {
    seg = 0;
    nb = kb4;
  } else if (tile < t4 + t6) {
    seg = 1;
    tile -= t4;
    nb = kb6;
  } else {
    seg = 2;
    tile -= t4 + t6;
    nb = kb8;
  }
  const int bpb = bytes_per_block(seg), words = bpb / 8;
  const int x = threadIdx.x, y = threadIdx.y;
  const int b0 = tile * 32;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * 32;
  {  // read: block b0 + x of row r0 + y
    const int64_t r = r0 + y;
    const int b = b0 + x;
    if (b < nb) {
      if (r < rows) {
        const uint8_t* src = (seg == 0 ? v.codes[0] : seg == 1 ? v.codes[1] : v.codes[2]) +
                             r * (seg == 0 ? v.row_bytes[0] : seg == 1 ? v.row_bytes[1] : v.row_bytes[2]) + int64_t{b} * bpb;
        for (int j = 0; j < words; ++j) codes[y][x][j] = reinterpret_cast<const uint2*>(src)[j];
        scales[y][x] = (seg == 0 ? v.scales[0] : seg == 1 ? v.scales[1] : v.scales[2])
            [r * (seg == 0 ? v.blocks[0] : seg == 1 ? v.blocks[1] : v.blocks[2]) + b];
      } else {
        for (int j = 0; j < words; ++j) codes[y][x][j] = make_uint2(0u, 0u);
        scales[y][x] = 127;
      }
    }
  }
  __syncthreads();
  {  // write: row r0 + x of block b0 + y
    const int64_t r = r0 + x;
    const int b = b0 + y;
    if (b < nb && r < out.rows_pad) {
      uint8_t* dst = (seg == 0 ? out.codes[0] : seg == 1 ? out.codes[1] : out.codes[2]) + (int64_t{b} * out.rows_pad + r) * bpb;
      for (int j = 0; j < words; ++j) reinterpret_cast<uint2*>(dst)[j] = codes[x][y][j];
      (seg == 0 ? out.scales[0] : seg == 1 ? out.scales[1] : out.scales[2])[int64_t{b} * out.rows_pad + r] = scales[x][y];
    }
  }
}

}  // namespace

// Carves a block-major copy of a mixed matrix with `rows` rows out of ws; returns the bytes used.
size_t carve(uint8_t* ws, int64_t rows, int64_t kb4, int64_t kb6, int64_t kb8, BlockMajor& out) {
  out.rows_pad = (rows + kRowPad - 1) / kRowPad * kRowPad;
  const int64_t kbs[3] = {kb4, kb6, kb8};
  size_t off = 0;
  for (int s = 0; s < 3; ++s) {
    out.codes[s] = ws ? ws + off : nullptr;
    off += static_cast<size_t>(kbs[s] * out.rows_pad * bytes_per_block(s));
    out.scales[s] = ws ? ws + off : nullptr;
    off += static_cast<size_t>(kbs[s] * out.rows_pad + 15) / 16 * 16;
  }
  return off;
}

void block_major_launch(const SegView& v, int64_t rows, int64_t kb4, int64_t kb6, int64_t kb8, const BlockMajor& out,
                        cudaStream_t stream) {
  if (kb4 + kb6 + kb8 == 0) return;
  const int k4 = static_cast<int>(kb4), k6 = static_cast<int>(kb6), k8 = static_cast<int>(kb8);
  const unsigned tiles = static_cast<unsigned>((k4 + 31) / 32 + (k6 + 31) / 32 + (k8 + 31) / 32);
  to_block_major<<<dim3(tiles, static_cast<unsigned>(out.rows_pad / 32)), dim3(32, 32), 0, stream>>>(v, rows, k4, k6, k8, out);
  MM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace blockmajor

}  // namespace micromix::cuda
