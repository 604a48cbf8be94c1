// Decode path v4-v6: y (M, N) = dequant(a) . dequant(w)^T for small M on the tensor cores, FP32
// accumulation, streaming the packed weights once through per-warp cp.async pipelines.
// v4: 4 warps per CTA of 16 weight rows, 4 stages, activation codes staged with each stage.
// v5: v4 with the activations decoded once per CTA into shared memory (f16 fragments).
// v6: v5 (or v4 where the activation area is too large) with 8 warps (split-K 8), 3 stages and a
//     persistent grid: each CTA loops over tiles, so the activation decode and the pipeline start
//     are paid once per CTA (ncu on v4: 7.7 warps per SM, 4.5 cycles between issues per warp).
// v7: v6 with 2 stages, so that 3 CTAs of 8 warps fit an SM (ncu on v6: 2 CTAs by shared memory,
//     6.6 cycles between issues per warp, 52% issue slots, DRAM 25%).
// v8: v6 (M <= 8) or v7 (M > 8) with issue_stage_lean (fewer instructions per cp.async).
// v9: v8 with the per-block loop unrolled 4 times instead of 2 (ncu on v8: 6.5 cycles between
//     issues per warp at 15 warps per SM; the chain LDS -> decode -> HMMA -> FFMA is serial).
//
// Why (bench/GPU_NOTES.md): v1-v3 spend ~6 instructions per weight on CUDA cores (LUT index, LUT
// load, scale multiply, one FMA per activation row) and run one 8-warp CTA per SM for N = 4096.
//
// Work split (v4): a CTA (4 warps) owns 16 weight rows; each warp takes a quarter of every segment's
// MX blocks (split-K) and the CTA sums the 4 partial tiles in shared memory at the end (fixed
// order: deterministic). N = 4096 gives 256 CTAs of 4 warps; 3 CTAs (MT = 1) fit an SM.
//
// Per warp, a 4-deep cp.async pipeline of stages; a stage is 128 bytes of codes per row (FP4: 8
// blocks, FP6: 5, FP8: 4) for the 16 weight rows and the 8 MT activation rows, plus the scale
// bytes (as the aligned 4-byte words that cover them).
//
// Math per MX block (32 K values): mma.sync m16n8k16 (f16 in, f32 out) twice, A = 16 weight rows,
// B = 8 activation rows, on the UNSCALED element values (every FP4/FP6/FP8 value is exact in f16;
// products and their sums of 32 are exact in FP32 up to rounding of the sum), then the block's
// FP32 partial is promoted: acc += (partial * scale_w) * scale_a. This is the FP32-accumulated
// product of the dequantized operands up to reassociation (and the two scale products).
// The K order inside a block is permuted (the same for A and B, so sums are unchanged): thread t of
// a quad owns elements 8t..8t+7 and packs the pairs (8t+i, 8t+i+4) into one f16x2 register, which
// for FP4 is a shift and two masks (no lookup table): code bits go straight into the f16
// exponent/mantissa fields, then one f16x2 multiply by 2^(15 - bias) fixes the exponent bias
// (exact; subnormal codes become normal f16 values). FP8 uses cvt.rn.f16x2.e4m3x2 (NaN code stays NaN).
#include <cuda_bf16.h>

#include "cuda/mx_gemv_decode.cuh"
#include "cuda/ptx_helpers.cuh"
#include "cuda/mx_mixed_device.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace ptx;  // cp.async, hmul2, e4m3x2_to_f16x2

constexpr int kTileN = 16;
constexpr int kRowStride = 144;  // bytes per staged code row: 128 + 16 pad (odd multiple of 16: conflict-free)
constexpr int kScStride = 16;    // bytes per staged scale row (<= 3 words used)
constexpr size_t kV5SmemLimit = 72 * 1024;   // v5's dynamic shared memory cap (3 CTAs per SM)
constexpr size_t kV6SmemLimit = 110 * 1024;  // v6's (2 CTAs of 8 warps per SM)
constexpr size_t kV7SmemLimit = 74 * 1024;   // v7's (3 CTAs of 8 warps per SM, the register limit)

__host__ __device__ constexpr int blocks_per_stage(int seg) { return seg == 0 ? 8 : seg == 1 ? 5 : 4; }
__host__ __device__ constexpr int block_bytes(int seg) { return seg == 0 ? 16 : seg == 1 ? 24 : 32; }
__host__ __device__ constexpr int unit_bytes(int seg) { return seg == 1 ? 8 : 16; }  // cp.async size
__host__ __device__ constexpr int units_per_row(int seg) {
  return blocks_per_stage(seg) * block_bytes(seg) / unit_bytes(seg);
}

struct V4Args {
  SegView a, w;
  int64_t M, N;
  int nb[3];  // MX blocks per row of each segment
  void* y;
  int out_f32;
  int fp6_e2m3;
};


// Element formats of the kernel: 0 FP4 E2M1, 1 FP6 E3M2, 2 FP6 E2M3, 3 FP8 E4M3.
template <int F>
constexpr int seg_of_fmt() {
  return F == 0 ? 0 : F == 3 ? 2 : 1;
}

// Thread t's 8 elements of one staged block as 4 f16x2 pairs: P[i] = (element 8t+i | element
// 8t+i+4 << 16), true values (unscaled).
template <int F>
__device__ __forceinline__ void decode_pairs(const uint8_t* blk, int t, uint32_t (&P)[4]) {
  if constexpr (F == 0) {  // E2M1 s.ee.m -> f16 bits 15 | 11..9, times 2^14
    const uint32_t w = *reinterpret_cast<const uint32_t*>(blk + 4 * t);
    constexpr uint32_t kMag = 0x0E000E00u, kSign = 0x80008000u, k2p14 = 0x74007400u;
    P[0] = hmul2(((w << 9) & kMag) | ((w << 12) & kSign), k2p14);
    P[1] = hmul2(((w << 5) & kMag) | ((w << 8) & kSign), k2p14);
    P[2] = hmul2(((w << 1) & kMag) | ((w << 4) & kSign), k2p14);
    P[3] = hmul2(((w >> 3) & kMag) | (w & kSign), k2p14);
  } else if constexpr (F == 1 || F == 2) {  // 8 codes of 6 bits in bytes 6t..6t+5
    const int off = 6 * t;
    const uint32_t* wp = reinterpret_cast<const uint32_t*>(blk + (off & ~3));
    const uint32_t w0 = wp[0], w1 = wp[1], sh = static_cast<uint32_t>(off & 3) * 8;
    const uint32_t lo = __funnelshift_r(w0, w1, sh), hi = w1 >> sh;  // bits 0..31, 32..47
    const uint32_t x[4] = {__byte_perm(lo, lo >> 24, 0x5410), __byte_perm(lo >> 6, __funnelshift_r(lo, hi, 30), 0x5410),
                           __byte_perm(lo >> 12, hi >> 4, 0x5410), __byte_perm(lo >> 18, hi >> 10, 0x5410)};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if constexpr (F == 1)  // E3M2 s.eee.mm -> f16 bits 15 | 12..8, times 2^12
        P[i] = hmul2(((x[i] << 8) & 0x1F001F00u) | ((x[i] << 10) & 0x80008000u), 0x6C006C00u);
      else  // E2M3 s.ee.mmm -> f16 bits 15 | 11..7, times 2^14
        P[i] = hmul2(((x[i] << 7) & 0x0F800F80u) | ((x[i] << 10) & 0x80008000u), 0x74007400u);
    }
  } else {  // E4M3: bytes 8t..8t+7
    const uint2 v = *reinterpret_cast<const uint2*>(blk + 8 * t);
#pragma unroll
    for (int i = 0; i < 4; ++i) P[i] = e4m3x2_to_f16x2(__byte_perm(v.x, v.y, static_cast<uint32_t>(i | ((4 + i) << 4))));
  }
}

struct WarpRanges {
  int lo[3], hi[3], stages[3], total;
};

__device__ __forceinline__ void stage_info(const WarpRanges& r, int i, int& seg, int& lb0, int& n) {
  if (i < r.stages[0]) {
    seg = 0;
  } else if (i - r.stages[0] < r.stages[1]) {
    seg = 1;
    i -= r.stages[0];
  } else {
    seg = 2;
    i -= r.stages[0] + r.stages[1];
  }
  const int bps = seg == 0 ? blocks_per_stage(0) : seg == 1 ? blocks_per_stage(1) : blocks_per_stage(2);
  lb0 = (seg == 0 ? r.lo[0] : seg == 1 ? r.lo[1] : r.lo[2]) + i * bps;
  n = min(bps, (seg == 0 ? r.hi[0] : seg == 1 ? r.hi[1] : r.hi[2]) - lb0);
}

// Issues the cp.async copies of one stage: codes of the 16 weight rows and of AR activation rows
// (AR = 8 MT for v4, 0 for v5), and the scale words covering blocks [lb0, lb0 + n) of each row.
template <int SEG, int AR>
__device__ __forceinline__ void issue_stage(const V4Args& p, int lb0, int n, int64_t n_base, int64_t m_base,
                                            uint8_t* st, int lane) {
  constexpr int U = units_per_row(SEG), UB = unit_bytes(SEG), BB = block_bytes(SEG);
  constexpr int kRows = kTileN + AR;
  uint8_t* st_sc = st + kRows * kRowStride;
  const int valid_units = n * BB / UB;
  const int64_t m_rows = min(static_cast<int64_t>(AR), p.M - m_base);
  const int64_t nb = p.nb[SEG];
#pragma unroll 4
  for (int slot = lane; slot < kRows * U; slot += 32) {
    const int r = slot / U, c = slot % U;
    if (c >= valid_units) continue;
    const uint8_t* src;
    if (r < kTileN) {
      src = p.w.codes[SEG] + (n_base + r) * p.w.row_bytes[SEG];
    } else {
      if (r - kTileN >= m_rows) continue;
      src = p.a.codes[SEG] + (m_base + r - kTileN) * p.a.row_bytes[SEG];
    }
    src += static_cast<int64_t>(lb0) * BB + c * UB;
    uint8_t* dst = st + r * kRowStride + c * UB;
    if constexpr (UB == 16) cp_async16(dst, src);
    else cp_async8(dst, src);
  }
  for (int slot = lane; slot < kRows * 3; slot += 32) {
    const int r = slot / 3, wi = slot % 3;
    int64_t row, total;
    const uint8_t* base;
    if (r < kTileN) {
      row = n_base + r;
      base = p.w.scales[SEG];
      total = p.N * nb;
    } else {
      if (r - kTileN >= m_rows) continue;
      row = m_base + r - kTileN;
      base = p.a.scales[SEG];
      total = p.M * nb;
    }
    const int64_t first = row * nb + lb0;    // byte index of the stage's first scale of the row
    const int64_t word = (first >> 2) + wi;  // covering word wi
    if (word * 4 >= first + n) continue;
    uint8_t* dst = st_sc + r * kScStride + wi * 4;
    if (word * 4 + 4 <= total) {
      cp_async4(dst, base + word * 4);
    } else {  // the array's last word is partial: copy its bytes (ordered by the __syncwarp after the wait)
      for (int k = 0; k < 4; ++k)
        if (word * 4 + k < total) dst[k] = base[word * 4 + k];
    }
  }
}

// v8's copies of one stage, same data as issue_stage with fewer instructions: for FP4/FP8 (8
// copy units per row) lane = (row group lane / 8, column lane % 8) and the rows lane / 8 + 4 j
// advance by a fixed stride (one 64-bit address per stage instead of one per copy); the scale
// words of row r are copied by lane r (no division by 3).
template <int SEG, int AR>
__device__ __forceinline__ void issue_stage_lean(const V4Args& p, int lb0, int n, int64_t n_base, int64_t m_base,
                                                 uint8_t* st, int lane) {
  constexpr int U = units_per_row(SEG), UB = unit_bytes(SEG), BB = block_bytes(SEG);
  constexpr int kRows = kTileN + AR;
  static_assert(kRows <= 32 && kRows % 4 == 0, "one lane per staged row");
  uint8_t* st_sc = st + kRows * kRowStride;
  const int valid_units = n * BB / UB;
  const int m_rows = static_cast<int>(min(static_cast<int64_t>(AR), p.M - m_base));
  const int64_t nb = p.nb[SEG];
  if constexpr (U == 8) {
    const int c = lane & 7, r0 = lane >> 3;
    if (c < valid_units) {
      const int64_t wrb = p.w.row_bytes[SEG];
      const uint8_t* wsrc = p.w.codes[SEG] + (n_base + r0) * wrb + static_cast<int64_t>(lb0) * BB + c * UB;
      uint8_t* dst = st + r0 * kRowStride + c * UB;
#pragma unroll
      for (int j = 0; j < kTileN / 4; ++j) cp_async16(dst + 4 * j * kRowStride, wsrc + 4 * j * wrb);
      if constexpr (AR > 0) {
        const int64_t arb = p.a.row_bytes[SEG];
        const uint8_t* asrc = p.a.codes[SEG] + (m_base + r0) * arb + static_cast<int64_t>(lb0) * BB + c * UB;
#pragma unroll
        for (int j = 0; j < AR / 4; ++j)
          if (r0 + 4 * j < m_rows) cp_async16(dst + (kTileN + 4 * j) * kRowStride, asrc + 4 * j * arb);
      }
    }
  } else {
#pragma unroll 4
    for (int slot = lane; slot < kRows * U; slot += 32) {
      const int r = slot / U, c = slot % U;
      if (c >= valid_units) continue;
      const uint8_t* src;
      if (r < kTileN) {
        src = p.w.codes[SEG] + (n_base + r) * p.w.row_bytes[SEG];
      } else {
        if (r - kTileN >= m_rows) continue;
        src = p.a.codes[SEG] + (m_base + r - kTileN) * p.a.row_bytes[SEG];
      }
      src += static_cast<int64_t>(lb0) * BB + c * UB;
      uint8_t* dst = st + r * kRowStride + c * UB;
      if constexpr (UB == 16) cp_async16(dst, src);
      else cp_async8(dst, src);
    }
  }
  if (lane < kRows && (lane < kTileN || lane - kTileN < m_rows)) {
    const int r = lane;
    const bool w = r < kTileN;
    const int64_t row = w ? n_base + r : m_base + r - kTileN;
    const uint8_t* base = w ? p.w.scales[SEG] : p.a.scales[SEG];
    const int64_t total = (w ? p.N : p.M) * nb;
    const int64_t first = row * nb + lb0, last = first + n - 1;
    uint8_t* dst = st_sc + r * kScStride;
#pragma unroll
    for (int wi = 0; wi < 3; ++wi) {
      const int64_t word = (first >> 2) + wi;
      if (word * 4 > last) break;
      if (word * 4 + 4 <= total) {
        cp_async4(dst + 4 * wi, base + word * 4);
      } else {
        for (int k = 0; k < 4; ++k)
          if (word * 4 + k < total) dst[4 * wi + k] = base[word * 4 + k];
      }
    }
  }
}

// v5's activations, decoded once per CTA for the whole K: per (row, K block) 64 bytes = the 4 f16x2
// pairs of each of the 4 quad threads (thread t at byte 16 t), and the scale as float.
struct ActSmem {
  const uint4* frag;    // (rows, nkb) x 4 uint4, then one zero block
  const float* scale;   // (rows, nkb)
  int rows, nkb;
};

template <int F, int MT, bool ACT, int UNR>
__device__ __forceinline__ void compute_stage(const V4Args& p, int lb0, int kb0, int n, int64_t n_base, int64_t m_base,
                                              const uint8_t* st, const float* lut, const ActSmem& act, int lane,
                                              float (&acc)[MT][4]) {
  constexpr int SEG = seg_of_fmt<F>();
  constexpr int BB = block_bytes(SEG);
  constexpr int AR = ACT ? 0 : 8 * MT;
  constexpr int kRows = kTileN + AR;
  const uint8_t* st_sc = st + kRows * kRowStride;
  const int g = lane >> 2, t = lane & 3;
  const int64_t nb = p.nb[SEG];
  // A stage row's scale bytes start at (its first byte index & 3) inside its copied words.
  auto sc_row = [&](int r, int64_t row) { return st_sc + r * kScStride + static_cast<int>((row * nb + lb0) & 3); };
  const uint8_t* scw0 = sc_row(g, n_base + g);
  const uint8_t* scw1 = sc_row(g + 8, n_base + g + 8);
  const uint8_t* sca[MT][2];
  bool act_ok[MT];
  const uint4* bfrag[MT];   // v5: this lane's B fragment of block kb0 (or the zero block)
  const float* sa_ptr[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    act_ok[mt] = m_base + 8 * mt + g < p.M;
    if constexpr (ACT) {
      const int r = 8 * mt + g;
      bfrag[mt] = r < act.rows ? act.frag + (static_cast<int64_t>(r) * act.nkb + kb0) * 4 + t
                               : act.frag + static_cast<int64_t>(act.rows) * act.nkb * 4;  // zeros, not advanced
      const int r0 = min(8 * mt + 2 * t, act.rows - 1), r1 = min(8 * mt + 2 * t + 1, act.rows - 1);
      sa_ptr[mt][0] = act.scale + static_cast<int64_t>(r0) * act.nkb + kb0;
      sa_ptr[mt][1] = act.scale + static_cast<int64_t>(r1) * act.nkb + kb0;
    } else {
      sca[mt][0] = sc_row(kTileN + 8 * mt + 2 * t, m_base + 8 * mt + 2 * t);
      sca[mt][1] = sc_row(kTileN + 8 * mt + 2 * t + 1, m_base + 8 * mt + 2 * t + 1);
    }
  }
  const uint8_t* cw0 = st + g * kRowStride;
  const uint8_t* cw1 = st + (g + 8) * kRowStride;
#pragma unroll(UNR)
  for (int blk = 0; blk < n; ++blk) {
    uint32_t A0[4], A1[4];
    decode_pairs<F>(cw0 + blk * BB, t, A0);
    decode_pairs<F>(cw1 + blk * BB, t, A1);
    const float sw0 = lut[scw0[blk]], sw1 = lut[scw1[blk]];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      uint32_t B[4] = {0, 0, 0, 0};
      float sa0, sa1;
      if constexpr (ACT) {
        const uint4 b = act_ok[mt] ? bfrag[mt][4 * blk] : *bfrag[mt];
        B[0] = b.x;
        B[1] = b.y;
        B[2] = b.z;
        B[3] = b.w;
        sa0 = sa_ptr[mt][0][blk];
        sa1 = sa_ptr[mt][1][blk];
      } else {
        if (act_ok[mt]) decode_pairs<F>(st + (kTileN + 8 * mt + g) * kRowStride + blk * BB, t, B);
        sa0 = lut[sca[mt][0][blk]];
        sa1 = lut[sca[mt][1][blk]];
      }
      float d[4] = {0.f, 0.f, 0.f, 0.f};
      mma_f16(d, A0[0], A1[0], A0[1], A1[1], B[0], B[1]);
      mma_f16(d, A0[2], A1[2], A0[3], A1[3], B[2], B[3]);
      acc[mt][0] = fmaf(d[0] * sw0, sa0, acc[mt][0]);
      acc[mt][1] = fmaf(d[1] * sw0, sa1, acc[mt][1]);
      acc[mt][2] = fmaf(d[2] * sw1, sa0, acc[mt][2]);
      acc[mt][3] = fmaf(d[3] * sw1, sa1, acc[mt][3]);
    }
  }
}

template <int MT, bool ACT>
constexpr int stage_bytes() {
  return (kTileN + (ACT ? 0 : 8 * MT)) * (kRowStride + kScStride);
}
template <int MT, bool ACT, int W, int S>
constexpr size_t stages_smem() {
  return static_cast<size_t>(W) * S * stage_bytes<MT, ACT>();
}
// v5's activation area for `rows` activation rows and nkb K blocks (+ one zero fragment block).
size_t act_smem_bytes(int64_t rows, int64_t nkb) { return static_cast<size_t>(rows * nkb * 64 + 64 + rows * nkb * 4); }

// v5: decodes the CTA's activation rows (all K) into the ActSmem layout.
template <int F>
__device__ __forceinline__ void decode_act_unit(const V4Args& p, int64_t row, int lb, int t, uint4* dst) {
  constexpr int SEG = seg_of_fmt<F>();
  uint32_t P[4];
  decode_pairs<F>(p.a.codes[SEG] + row * p.a.row_bytes[SEG] + static_cast<int64_t>(lb) * block_bytes(SEG), t, P);
  *dst = make_uint4(P[0], P[1], P[2], P[3]);
}

// W warps (split-K W ways), S pipeline stages per warp. The CTA walks the 16-row tiles
// blockIdx.x, blockIdx.x + gridDim.x, ... (v4/v5: one tile per CTA; v6: a persistent grid, so
// that the activations are decoded once per CTA and each warp's pipeline runs on across tiles).
template <int MT, bool ACT, int W, int S, bool LEAN, int UNR>
__device__ __forceinline__ void gemv_tc_body(const V4Args& p) {
  extern __shared__ uint4 smem_raw[];
  __shared__ float lut[256];                     // E8M0 code -> 2^(code - 127); 255: NaN
  __shared__ float red[W][kTileN][8 * MT + 1];  // partial tiles of the W warps
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  for (int i = tid; i < 256; i += W * 32)
    lut[i] = i == 255 ? __int_as_float(0x7fc00000) : i == 0 ? __int_as_float(0x00400000) : __int_as_float(i << 23);

  const int64_t m_base = static_cast<int64_t>(blockIdx.y) * 8 * MT;
  const int64_t ntiles = p.N / kTileN;
  const int64_t my_tiles = blockIdx.x < ntiles ? (ntiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  uint8_t* wsm = reinterpret_cast<uint8_t*>(smem_raw) + warp * S * stage_bytes<MT, ACT>();

  WarpRanges rg;
  rg.total = 0;
#pragma unroll
  for (int s = 0; s < 3; ++s) {
    rg.lo[s] = static_cast<int>(static_cast<int64_t>(p.nb[s]) * warp / W);
    rg.hi[s] = static_cast<int>(static_cast<int64_t>(p.nb[s]) * (warp + 1) / W);
    rg.stages[s] = (rg.hi[s] - rg.lo[s] + blocks_per_stage(s) - 1) / blocks_per_stage(s);
    rg.total += rg.stages[s];
  }
  // The warp's flat stage sequence: f = (tile iteration) * T + (stage of the tile).
  const int T = rg.total;
  const int64_t F = my_tiles * T;
  auto tile_of = [&](int64_t it) { return (static_cast<int64_t>(blockIdx.x) + it * gridDim.x) * kTileN; };

  constexpr int AR = ACT ? 0 : 8 * MT;
  auto issue = [&](int64_t f) {
    int seg, lb0, n;
    stage_info(rg, static_cast<int>(f % T), seg, lb0, n);
    const int64_t n_base = tile_of(f / T);
    uint8_t* st = wsm + (f % S) * stage_bytes<MT, ACT>();
    if constexpr (LEAN) {
      if (seg == 0) issue_stage_lean<0, AR>(p, lb0, n, n_base, m_base, st, lane);
      else if (seg == 1) issue_stage_lean<1, AR>(p, lb0, n, n_base, m_base, st, lane);
      else issue_stage_lean<2, AR>(p, lb0, n, n_base, m_base, st, lane);
    } else {
      if (seg == 0) issue_stage<0, AR>(p, lb0, n, n_base, m_base, st, lane);
      else if (seg == 1) issue_stage<1, AR>(p, lb0, n, n_base, m_base, st, lane);
      else issue_stage<2, AR>(p, lb0, n, n_base, m_base, st, lane);
    }
  };

  float acc[MT][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[mt][i] = 0.0f;

#pragma unroll
  for (int i = 0; i < S - 1; ++i) {
    if (i < F) issue(i);
    cp_async_commit();
  }

  ActSmem act{};
  if constexpr (ACT) {  // while the first stages fly: decode the activations once for the CTA
    const int nkb = p.nb[0] + p.nb[1] + p.nb[2];
    const int rows = static_cast<int>(min(static_cast<int64_t>(8 * MT), p.M - m_base));
    uint4* frag = reinterpret_cast<uint4*>(smem_raw) + stages_smem<MT, ACT, W, S>() / 16;
    float* scale = reinterpret_cast<float*>(frag + (static_cast<int64_t>(rows) * nkb + 1) * 4);
    __syncthreads();  // lut ready
    for (int u = tid; u < rows * nkb * 4; u += W * 32) {
      const int t = u & 3, kb = (u >> 2) % nkb, r = (u >> 2) / nkb;
      const int64_t row = m_base + r;
      int seg = kb < p.nb[0] ? 0 : kb < p.nb[0] + p.nb[1] ? 1 : 2;
      const int lb = kb - (seg == 0 ? 0 : seg == 1 ? p.nb[0] : p.nb[0] + p.nb[1]);
      uint4* dst = frag + u;
      if (seg == 0) decode_act_unit<0>(p, row, lb, t, dst);
      else if (seg == 2) decode_act_unit<3>(p, row, lb, t, dst);
      else if (p.fp6_e2m3) decode_act_unit<2>(p, row, lb, t, dst);
      else decode_act_unit<1>(p, row, lb, t, dst);
      if (t == 0) scale[r * nkb + kb] = lut[p.a.scales[seg][row * p.nb[seg] + lb]];
    }
    if (tid < 4) frag[static_cast<int64_t>(rows) * nkb * 4 + tid] = make_uint4(0, 0, 0, 0);
    act = ActSmem{frag, scale, rows, nkb};
  }
  __syncthreads();  // lut (and v5's activations) ready

  const int g = lane >> 2, t4 = lane & 3;
  int64_t f = 0;
  for (int64_t it = 0; it < my_tiles; ++it) {
    const int64_t n_base = tile_of(it);
    for (int i = 0; i < T; ++i, ++f) {
      if (f + S - 1 < F) issue(f + S - 1);
      cp_async_commit();
      cp_async_wait<S - 1>();
      __syncwarp();
      int seg, lb0, n;
      stage_info(rg, i, seg, lb0, n);
      const int kb0 = lb0 + (seg == 0 ? 0 : seg == 1 ? p.nb[0] : p.nb[0] + p.nb[1]);
      const uint8_t* st = wsm + (f % S) * stage_bytes<MT, ACT>();
      if (seg == 0) compute_stage<0, MT, ACT, UNR>(p, lb0, kb0, n, n_base, m_base, st, lut, act, lane, acc);
      else if (seg == 2) compute_stage<3, MT, ACT, UNR>(p, lb0, kb0, n, n_base, m_base, st, lut, act, lane, acc);
      else if (p.fp6_e2m3) compute_stage<2, MT, ACT, UNR>(p, lb0, kb0, n, n_base, m_base, st, lut, act, lane, acc);
      else compute_stage<1, MT, ACT, UNR>(p, lb0, kb0, n, n_base, m_base, st, lut, act, lane, acc);
      __syncwarp();  // this stage's buffer is refilled by a later issue
    }
    // Split-K reduction of the tile: C fragment (n = g, g + 8; m = 2t, 2t + 1) of each warp ->
    // red, fixed-order sum (deterministic).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      red[warp][g][8 * mt + 2 * t4] = acc[mt][0];
      red[warp][g][8 * mt + 2 * t4 + 1] = acc[mt][1];
      red[warp][g + 8][8 * mt + 2 * t4] = acc[mt][2];
      red[warp][g + 8][8 * mt + 2 * t4 + 1] = acc[mt][3];
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[mt][i] = 0.0f;
    }
    __syncthreads();
    for (int idx = tid; idx < kTileN * 8 * MT; idx += W * 32) {
      const int n = idx % kTileN, m = idx / kTileN;
      if (m_base + m >= p.M) continue;
      float v = red[0][n][m];
#pragma unroll
      for (int w = 1; w < W; ++w) v += red[w][n][m];
      const int64_t o = (m_base + m) * p.N + n_base + n;
      if (p.out_f32) static_cast<float*>(p.y)[o] = v;
      else static_cast<__nv_bfloat16*>(p.y)[o] = __float2bfloat16_rn(v);
    }
    __syncthreads();  // red is rewritten by the next tile
  }
  cp_async_wait<0>();
}

// v4-v8 (UNR = 2) and v9 (UNR = 4, capped at 128 registers so that 2 CTAs of 8 warps still fit;
// only the M <= 8 activation-in-smem instance stays free of spills there).
template <int MT, bool ACT, int W, int S, bool LEAN, int UNR>
__global__ void __launch_bounds__(W * 32) gemv_tc(V4Args p) {
  gemv_tc_body<MT, ACT, W, S, LEAN, UNR>(p);
}
template <int MT, bool ACT, int W, int S, bool LEAN, int UNR>
__global__ void __launch_bounds__(W * 32, 2) gemv_tc_u4(V4Args p) {
  gemv_tc_body<MT, ACT, W, S, LEAN, UNR>(p);
}

template <int MT, bool ACT, int W, int S, bool LEAN, int UNR>
constexpr auto tc_kernel() {
  if constexpr (UNR > 2) return gemv_tc_u4<MT, ACT, W, S, LEAN, UNR>;
  else return gemv_tc<MT, ACT, W, S, LEAN, UNR>;
}

// Launch configurations: v4 = <MT, false, 4, 4>, v5 = <MT, true, 4, 4> with one CTA per tile; v6 =
// <MT, ACT, 8, 3> and v7 = <MT, ACT, 8, 2> on a persistent grid of (CTAs per SM that fit) x SMs.
template <int MT, bool ACT, int W, int S, bool LEAN = false, int UNR = 2>
void launch_tc(const V4Args& p, bool persistent, cudaStream_t stream) {
  constexpr auto kernel = tc_kernel<MT, ACT, W, S, LEAN, UNR>();
  size_t smem = stages_smem<MT, ACT, W, S>();
  if (ACT) smem += act_smem_bytes(std::min<int64_t>(8 * MT, p.M), p.nb[0] + p.nb[1] + p.nb[2]);
  // Raise the kernel's dynamic shared-memory cap only when a launch needs more than before (the
  // attribute call costs host time on every launch otherwise; the default cap is 48 KB minus the
  // kernel's static shared memory). Not thread-safe: a race only repeats the call.
  static size_t cap = 0;
  if (smem > cap) {
    MM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    cap = smem;
  }
  const int64_t ntiles = p.N / kTileN;
  int64_t gx = ntiles;
  if (persistent) {
    static int sms = 0;
    if (sms == 0) {
      int dev = 0;
      MM_CUDA_CHECK(cudaGetDevice(&dev));
      MM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    static size_t occ_smem = 0;
    static int occ = 0;
    if (occ_smem != smem) {
      MM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kernel, W * 32, smem));
      occ_smem = smem;
    }
    gx = std::min<int64_t>(ntiles, static_cast<int64_t>(std::max(occ, 1)) * sms);
  }
  const int64_t gy = (p.M + 8 * MT - 1) / (8 * MT);
  MM_CUDA_REQUIRE(gy <= 65535 && gx <= 0x7fffffff, "mx_mixed_gemv v4-v6: shape too large");
  kernel<<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), W * 32, smem, stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool gemv_tc_launch(int version, const MxMixedDevice& a, const MxMixedDevice& w, void* d_y, OutType out,
                    cudaStream_t stream) {
  for (int s = 0; s < mx::kSegments; ++s) {
    if (a.split.count(s) == 0) continue;
    if ((reinterpret_cast<uintptr_t>(a.scales[s]) & 3u) || (reinterpret_cast<uintptr_t>(w.scales[s]) & 3u)) return false;
  }
  const int64_t M = a.rows, N = w.rows, nkb = a.split.cols() / mx::kBlock;
  const int64_t act_rows = std::min<int64_t>(M, M <= 8 ? 8 : 16);
  // v5 and v6 decode the activations into shared memory while that area leaves enough CTAs per SM
  // (v5: 3 of 4 warps, v6: 2 of 8 warps); else the activation codes travel with each stage (v4's way).
  const bool act5 = act_smem_bytes(act_rows, nkb) + (M <= 8 ? stages_smem<1, true, 4, 4>() : stages_smem<2, true, 4, 4>()) <=
                    kV5SmemLimit;
  const bool act6 = act_smem_bytes(act_rows, nkb) + (M <= 8 ? stages_smem<1, true, 8, 3>() : stages_smem<2, true, 8, 3>()) <=
                    kV6SmemLimit;
  const bool act7 = act_smem_bytes(act_rows, nkb) + (M <= 8 ? stages_smem<1, true, 8, 2>() : stages_smem<2, true, 8, 2>()) <=
                    kV7SmemLimit;
  if (version == 5 && !act5) version = 4;
  if (M == 0 || N == 0) return true;
  V4Args p{};
  p.a = seg_view(a);
  p.w = seg_view(w);
  p.M = M;
  p.N = N;
  for (int s = 0; s < mx::kSegments; ++s) p.nb[s] = static_cast<int>(a.split.count(s) / mx::kBlock);
  p.y = d_y;
  p.out_f32 = out == OutType::f32;
  p.fp6_e2m3 = a.split.fp6 == mx::ElemFormat::fp6_e2m3;
  // v9 = v8 with the block loop unrolled 4 times where that fits 128 registers without spilling
  // (M <= 8 with the activations in shared memory; elsewhere v8 runs).
  if (version == 9 && M <= 8 && act6) {
    launch_tc<1, true, 8, 3, true, 4>(p, true, stream);
  } else if (version == 8 || version == 9) {  // v6's shape for M <= 8, v7's above, with issue_stage_lean
    if (M <= 8) {
      if (act6) launch_tc<1, true, 8, 3, true>(p, true, stream);
      else launch_tc<1, false, 8, 3, true>(p, true, stream);
    } else {
      if (act7) launch_tc<2, true, 8, 2, true>(p, true, stream);
      else launch_tc<2, false, 8, 2, true>(p, true, stream);
    }
  } else if (version == 7) {
    if (M <= 8) {
      if (act7) launch_tc<1, true, 8, 2>(p, true, stream);
      else launch_tc<1, false, 8, 2>(p, true, stream);
    } else {
      if (act7) launch_tc<2, true, 8, 2>(p, true, stream);
      else launch_tc<2, false, 8, 2>(p, true, stream);
    }
  } else if (version == 6) {
    if (M <= 8) {
      if (act6) launch_tc<1, true, 8, 3>(p, true, stream);
      else launch_tc<1, false, 8, 3>(p, true, stream);
    } else {
      if (act6) launch_tc<2, true, 8, 3>(p, true, stream);
      else launch_tc<2, false, 8, 3>(p, true, stream);
    }
  } else if (version == 5) {
    if (M <= 8) launch_tc<1, true, 4, 4>(p, false, stream);
    else launch_tc<2, true, 4, 4>(p, false, stream);
  } else {
    if (M <= 8) launch_tc<1, false, 4, 4>(p, false, stream);
    else launch_tc<2, false, 4, 4>(p, false, stream);
  }
  return true;
}

}  // namespace micromix::cuda
