// Mixed MX GEMM v15 (v16, v17 variants): the WEIGHTS are the register operand of BF16 wgmma (RS
// form): each thread converts its own A fragments (exact BF16, scale folded) straight from the packed
// codes, so converted weights never touch shared memory; the activations, converted to BF16 once per
// call by a pre-pass (as v14), are the shared-memory operand; bulk asynchronous copies (cp.async.bulk,
// the TMA engine without a tensor map) stream both into a multi-stage ring synchronized by mbarriers
// (no CTA-wide barrier in the K loop). The weights come from a block-major copy made per call, or,
// for mx_mixed_gemm_prepared, straight from the prepared layout (mx_prepare_gemv_weights).
//
// Why (GPU_NOTES, session 4): v14 (weights converted into shared memory, one __syncthreads per
// step) ran at 1560 cycles per 256 x 128 x 32 step against 512 of tensor work: every step moved
// ~77 KB through shared memory (wgmma reading the weight tile once per m64 slab, the converted tile
// written and the raw codes read) and all warps met at a barrier. Here a CTA computes 128 weight
// rows x 256 tokens; per step shared memory sees 16 KB of activation copies, 32 KB of wgmma reads
// (m64n256k16: 64 weight rows per warpgroup from registers, 256 tokens from shared memory) and
// ~2.5 KB of code reads.
//
// K order: wgmma sums over k, so both operands may use any one permutation of a block's 32
// elements. slice_to_bf16 below fixes it: thread quad q of a fragment row converts the 8 codes of
// slice q of the block into R[0..3]; R[2 h + s] feeds A-fragment columns 16 h + 8 s + 2 q + {0, 1}.
// The activation pre-pass writes element (16 h + 8 s + 2 q + e) of each row's block from the same
// function, so both sides agree by construction.
//
// Numerics as v10-v14 (exact BF16 products, FP32 accumulation; tiles with values below 2^-126 are
// recomputed exactly on the CUDA cores).
// CTA: 2 warpgroups (64 weight rows each, all 256 tokens); lane 0 of one warp per step (rotating)
// also issues that step's bulk copies.
#include <algorithm>

#include "cuda/scratch.cuh"
#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_block_major.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;
using namespace blockmajor;

constexpr int kStages = 8;  // ring depth

// WG warpgroups of 64 weight rows each, TOK tokens per CTA (the wgmma N: 256 or 128); PIPE steps of
// wgmmas in flight per warpgroup while the next step's fragments are converted (PIPE + 1 fragment
// sets in registers); the copies run kLead steps ahead.
template <int WG, int TOK, int PIPE>
struct Layout {
  static constexpr int kTok = TOK, kWRows = 64 * WG, kThreads = 128 * WG, kWarps = 4 * WG;
  static constexpr int kLead = kStages - 1 - PIPE;  // a stage is released PIPE steps after its use
  static constexpr int tok_sub = TOK * 32;  // one k16 half of the tokens tile, bf16
  static constexpr int tok = 2 * tok_sub;
  static constexpr int w_codes = kWRows * 32;  // FP8 worst case
  static constexpr int stage = (tok + w_codes + kWRows + 1023) / 1024 * 1024;
  static constexpr int bars = kStages * stage;  // full[kStages], empty[kStages]
  static constexpr int smem = bars + 2 * kStages * 8 + 1024;
};

// One slice (8 codes of one row of one MX block) -> R[0..3] (bf16x2 of value * scale, scale code sc).
// The codes as fields: FP4 lo = the 8 nibbles; FP6 lo / hi = codes 0..3 / 4..7 (24 bits each); FP8
// lo / hi = codes 0..3 / 4..7. FP4: R[j] = codes (j, j + 4) (fp4_word_to_bf16_il); FP6 / FP8: R[j] =
// codes (2 j, 2 j + 1). Returns true if the slice has values below 2^-126.
__device__ __forceinline__ bool convert_slice(const int seg, uint32_t lo, uint32_t hi, unsigned sc, bool e2m3,
                                              uint32_t (&R)[4]) {
  if (seg == 0) {
    // bf16 of 2^(sc - 127) without branches: sc << 7 for normal codes, 2^-127 (bf16 subnormal
    // 0x0040) for code 0, NaN for 255.
    const uint32_t b = sc == 0 ? 0x0040u : sc == 0xFFu ? 0x7FC0u : sc << 7;
    fp4_word_to_bf16_il(lo, b | (b << 16), R);
    return sc < kMinSafeScale && lo != 0;
  }
  const float s = scale_f32(sc);
  if (seg == 1) {
    const uint32_t f6 = e2m3 ? 0x54005400u : 0x4C004C00u;  // f16x2 of 64 (E2M3) or 16 (E3M2)
    e4m3x4_to_bf16(fp6x4_to_e4m3(lo, e2m3), f6, true, s, R[0], R[1]);
    e4m3x4_to_bf16(fp6x4_to_e4m3(hi, e2m3), f6, true, s, R[2], R[3]);
  } else {
    e4m3x4_to_bf16(lo, 0u, false, s, R[0], R[1]);
    e4m3x4_to_bf16(hi, 0u, false, s, R[2], R[3]);
  }
  return sc < kMinSafeScale && (lo | hi) != 0;
}

// Slice q of a row-major block (16 / 24 / 32 code bytes at block, 4-byte aligned) -> R.
__device__ __forceinline__ bool slice_to_bf16(const int seg, const uint8_t* block, int q, unsigned sc, bool e2m3,
                                              uint32_t (&R)[4]) {
  if (seg == 0) return convert_slice(0, reinterpret_cast<const uint32_t*>(block)[q], 0u, sc, e2m3, R);
  if (seg == 1) {
    const int at = 6 * q;  // byte offset of the 48 bits (0, 6, 12, 18): two 4-byte aligned words cover them
    const uint32_t* w = reinterpret_cast<const uint32_t*>(block + (at & ~3));
    const uint64_t x = ((uint64_t{w[1]} << 32) | w[0]) >> (8 * (at & 3));
    return convert_slice(1, static_cast<uint32_t>(x) & 0xFFFFFFu, static_cast<uint32_t>(x >> 24) & 0xFFFFFFu, sc, e2m3, R);
  }
  const uint2 w = reinterpret_cast<const uint2*>(block)[q];
  return convert_slice(2, w.x, w.y, sc, e2m3, R);
}

// The two slices of one lane in the prepared (mx_prepare_gemv_weights) layout: bpr = bpb / 4 bytes
// of row g then the same of row g + 8, at run (8 / 12 / 16-byte runs, 8 / 4 / 16-byte aligned).
template <int SEG>
__device__ __forceinline__ void prepared_slices(const uint8_t* run, uint32_t& lo0, uint32_t& hi0, uint32_t& lo1,
                                                uint32_t& hi1) {
  if constexpr (SEG == 0) {
    const uint2 w = *reinterpret_cast<const uint2*>(run);
    lo0 = w.x;
    lo1 = w.y;
    hi0 = hi1 = 0u;
  } else if constexpr (SEG == 1) {
    const uint32_t* w = reinterpret_cast<const uint32_t*>(run);
    const uint32_t w0 = w[0], w1 = w[1], w2 = w[2];
    lo0 = w0 & 0xFFFFFFu;
    hi0 = (w0 >> 24) | ((w1 & 0xFFFFu) << 8);
    lo1 = (w1 >> 16) | ((w2 & 0xFFu) << 16);
    hi1 = w2 >> 8;
  } else {
    const uint4 w = *reinterpret_cast<const uint4*>(run);
    lo0 = w.x;
    hi0 = w.y;
    lo1 = w.z;
    hi1 = w.w;
  }
}

// Half h of a block row in slice_to_bf16's K order (activations_to_bf16_tiles): word 4 s + q of the
// half = R_q[2 h + s], the fragment columns 16 h + 8 s + 2 q + {0, 1}.
struct HalfSlices {
  __device__ static bool convert(int seg, const uint8_t* block, int h, unsigned sc, bool e2m3, uint32_t (&o)[8]) {
    bool bad = false;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint32_t R[4];
      if (slice_to_bf16(seg, block, q, sc, e2m3, R)) bad = true;
      o[q] = h ? R[2] : R[0];  // (selects: a runtime index would put R in local memory)
      o[4 + q] = h ? R[3] : R[1];
    }
    return bad;
  }
};

// Weights prepared once in mx_prepare_gemv_weights' layout (the decode path's; one resident copy
// serves both): per segment codes and scales, and blocks per row.
struct PreparedW {
  const uint8_t* codes[3];
  const uint8_t* scales[3];
};

// Registers: each SM sub-partition holds 16384, so with a 9th (producer) warp 3 warps share one and
// get at most 168 registers: ptxas then serialized every wgmma (C7512, measured 1.7x slower) and
// setmaxnreg did not change its allocation. Hence no producer warps: one thread issues the bulk
// copies (cp.async.bulk, completion counted in bytes on the stage's mbarrier), 8 warps, <= 255 regs.
// PREP: weights in the prepared layout (PreparedW; a step's 128 rows are one run of 8 16-row groups
// in lane order) instead of a block-major copy made per call.
template <int WG, int TOK, int PIPE, bool PREP>
__global__ void __launch_bounds__(128 * WG, 1)
    gemm_bf16_rs(Fp8GemmArgs p, const uint8_t* __restrict__ tok16, int64_t tok_rows_pad,
                  const int* __restrict__ tok_unsafe, BlockMajor W, PreparedW P) {
  using L = Layout<WG, TOK, PIPE>;
  constexpr int kLead = L::kLead;
  constexpr int kTok = L::kTok, kWRows = L::kWRows, kThreads = L::kThreads;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  uint8_t* smem = smem_raw + ((1024u - (static_cast<unsigned>(__cvta_generic_to_shared(smem_raw)) & 1023u)) & 1023u);
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + L::bars);
  uint64_t* empty = full + kStages;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTok, n0 = static_cast<int64_t>(blockIdx.x) * kWRows;
  int kb_lo, kb_hi;
  split_range(p, kb_lo, kb_hi);
  const int nkb = kb_hi - kb_lo;

  // Step j's tokens (two contiguous 8 KB runs), weight codes and scales (one run each) into stage
  // j % kStages, issued by lane 0 of one warp; the stage's full barrier completes when all bytes
  // have landed.
  // Addresses are recomputed from the kernel parameters on every call (nothing kept in registers:
  // the issuing warp changes every step, see below, and registers are what the wgmma pipeline needs).
  auto issue = [&](int j) {
    const int st = j % kStages, kb = kb_lo + j;
    const int kb4 = static_cast<int>(p.kb4), kb46 = static_cast<int>(p.kb4 + p.kb6);
    const int seg = kb < kb4 ? 0 : kb < kb46 ? 1 : 2;
    const int lb = kb - (seg == 0 ? 0 : seg == 1 ? kb4 : kb46), bpb = 16 + 8 * seg;
    const int64_t tok_half = tok_rows_pad * 32;
    const int64_t wn0 = static_cast<int64_t>(blockIdx.x) * kWRows;
    uint8_t* stage = smem + st * L::stage;
    const uint8_t* t0 = tok16 + (int64_t{kb} * 2 * tok_rows_pad + static_cast<int64_t>(blockIdx.y) * kTok) * 32;
    if constexpr (PREP) {
      // The block of this CTA's 128 rows (one super-group of the prepared layout) is one run: one copy
      // each for the codes and the scales; a last, partial super-group holds only the groups below N
      // (N is a multiple of 16); the stage's other rows are never stored.
      static_assert(kWRows == 128, "a prepared super-group is 128 rows");
      const int groups = static_cast<int>(min(static_cast<int64_t>(kWRows / 16), (p.N - wn0) / 16));
      const int64_t nbs = seg == 0 ? p.kb4 : seg == 1 ? p.kb6 : p.nkb - p.kb4 - p.kb6;
      const int64_t at = prepared_index(wn0 / 16, lb, nbs, p.N / 16);
      if (lane == 0) {
        const uint8_t* codes = (seg == 0 ? P.codes[0] : seg == 1 ? P.codes[1] : P.codes[2]) + at * 16 * bpb;
        const uint8_t* scales = (seg == 0 ? P.scales[0] : seg == 1 ? P.scales[1] : P.scales[2]) + at * 16;
        mbar_expect_tx(full + st, static_cast<unsigned>(L::tok + groups * (16 * bpb + 16)));
        bulk_copy_g2s(stage, t0, L::tok_sub, full + st);
        bulk_copy_g2s(stage + L::tok_sub, t0 + tok_half, L::tok_sub, full + st);
        bulk_copy_g2s(stage + L::tok, codes, groups * 16 * bpb, full + st);
        bulk_copy_g2s(stage + L::tok + L::w_codes, scales, groups * 16, full + st);
      }
    } else {
      if (lane == 0) {
        const uint8_t* codes = (seg == 0 ? W.codes[0] : seg == 1 ? W.codes[1] : W.codes[2]) + (lb * W.rows_pad + wn0) * bpb;
        const uint8_t* scales = (seg == 0 ? W.scales[0] : seg == 1 ? W.scales[1] : W.scales[2]) + lb * W.rows_pad + wn0;
        mbar_expect_tx(full + st, static_cast<unsigned>(L::tok + kWRows * bpb + kWRows));
        bulk_copy_g2s(stage, t0, L::tok_sub, full + st);
        bulk_copy_g2s(stage + L::tok_sub, t0 + tok_half, L::tok_sub, full + st);
        bulk_copy_g2s(stage + L::tok, codes, kWRows * bpb, full + st);
        bulk_copy_g2s(stage + L::tok + L::w_codes, scales, kWRows, full + st);
      }
    }
  };

  if (tid == 0) {
    for (int i = 0; i < kStages; ++i) {
      mbar_init(full + i, 1);
      mbar_init(empty + i, kThreads);
    }
    fence_mbarrier_init();
  }
  __syncthreads();
  if (warp == 0)
    for (int j = 0; j < kLead && j < nkb; ++j) issue(j);

  bool unsafe = false;
  float acc[TOK / 2];
#pragma unroll
  for (int i = 0; i < TOK / 2; ++i) acc[i] = 0.0f;

  // Warpgroup cg owns weight rows 64 cg .. 64 cg + 63; this thread's fragment rows are rr and
  // rr + 8, its slice q.
  const int cg = warp >> 2, q = lane & 3;
  const int rr = 64 * cg + 16 * (warp & 3) + (lane >> 2);
  const bool rows_valid = n0 + rr < p.N;  // (prepared: groups past N are not copied, stale bytes there)
  const uint64_t db0 = smem_desc_sw32(smem);
  const uint32_t db_lo = static_cast<uint32_t>(db0);
  const uint64_t desc_hi = db0 & 0xFFFFFFFF00000000ull;
  // One K step of segment SEG (compile-time: straight-line conversion, constant row offsets).
  auto step = [&]<int SEG>(int j, uint32_t (&af)[8]) {
    constexpr int bpb = bytes_per_block(SEG);
    const int st = j % kStages;
    mbar_wait(full + st, static_cast<unsigned>(j / kStages) & 1u);
    const uint8_t* wraw = smem + st * L::stage + L::tok;
    uint32_t r0[4], r1[4];
    bool bad;
    if constexpr (PREP) {
      // Group rr / 16 of the stage; this lane's run: row rr's slice q, then row rr + 8's.
      const int grp = rr >> 4;
      uint32_t lo0, hi0, lo1, hi1;
      prepared_slices<SEG>(wraw + grp * 16 * bpb + lane * (bpb / 2), lo0, hi0, lo1, hi1);
      const uint32_t sc2 = *reinterpret_cast<const uint16_t*>(wraw + L::w_codes + grp * 16 + 2 * (lane >> 2));
      bad = convert_slice(SEG, lo0, hi0, sc2 & 0xFFu, p.fp6_e2m3, r0);
      bad |= convert_slice(SEG, lo1, hi1, sc2 >> 8, p.fp6_e2m3, r1);
    } else {
      bad = slice_to_bf16(SEG, wraw + rr * bpb, q, wraw[L::w_codes + rr], p.fp6_e2m3, r0);
      bad |= slice_to_bf16(SEG, wraw + (rr + 8) * bpb, q, wraw[L::w_codes + rr + 8], p.fp6_e2m3, r1);
    }
    if (bad && rows_valid) unsafe = true;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      af[4 * h] = r0[2 * h];
      af[4 * h + 1] = r1[2 * h];
      af[4 * h + 2] = r0[2 * h + 1];
      af[4 * h + 3] = r1[2 * h + 1];
    }
    wgmma_fence();
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const uint32_t off = static_cast<uint32_t>((st * L::stage + h * L::tok_sub) >> 4);
      wgmma_rs(acc, af[4 * h], af[4 * h + 1], af[4 * h + 2], af[4 * h + 3], desc_hi | (db_lo + off));
    }
    wgmma_commit();
    wgmma_wait<PIPE>();  // step j - PIPE done: its stage may be refilled
    if (j >= PIPE) mbar_arrive(empty + (j - PIPE) % kStages);
    // Refill: step j + kLead goes into the stage of step j + kLead - kStages (released during step
    // j + kLead - kStages + PIPE = j - 1 by every thread).
    // Warp jj % 8 issues it: every warp of a warpgroup takes part in each wgmma, so a fixed
    // issuing thread made its warpgroup wait for ~130 extra instructions every step.
    const int jj = j + kLead;
    if (warp == jj % L::kWarps && jj < nkb) {
      if (jj >= kStages) mbar_wait(empty + jj % kStages, static_cast<unsigned>(jj / kStages - 1) & 1u);
      issue(jj);
    }
  };
  // A fragments of consecutive steps (in use until their wgmma completes): PIPE + 1 sets.
  uint32_t fa[8], fb[8], fc[8];
  // Steps [jb, je) of one segment, PIPE + 1 per iteration so that the fragment sets rotate.
  auto run = [&]<int SEG>(int jb, int je) {
    int j = jb;
    if constexpr (PIPE == 1) {
#pragma unroll 1
      for (; j + 1 < je; j += 2) {
        step.template operator()<SEG>(j, fa);
        step.template operator()<SEG>(j + 1, fb);
      }
      if (j < je) step.template operator()<SEG>(j, fa);
    } else {
#pragma unroll 1
      for (; j + 2 < je; j += 3) {
        step.template operator()<SEG>(j, fa);
        step.template operator()<SEG>(j + 1, fb);
        step.template operator()<SEG>(j + 2, fc);
      }
      if (j < je) step.template operator()<SEG>(j, fa);
      if (j + 1 < je) step.template operator()<SEG>(j + 1, fb);
    }
  };
  {
    const int k4 = static_cast<int>(p.kb4), k46 = static_cast<int>(p.kb4 + p.kb6);
    auto clamp = [&](int kb) { return min(max(kb, kb_lo), kb_hi) - kb_lo; };
    run.template operator()<0>(0, clamp(k4));
    run.template operator()<1>(clamp(k4), clamp(k46));
    run.template operator()<2>(clamp(k46), nkb);
  }
  wgmma_wait0();

  if (__syncthreads_or(unsafe || tok_unsafe[blockIdx.y] != 0)) {
    exact_tile_fallback<kTok, kWRows>(p, out_view(p), m0, n0, kb_lo, kb_hi);
  } else {
    // acc: weight rows (fragment rows g, g + 8 of this warp) x tokens (n8 block f, columns 2 q, 2 q + 1).
    const OutView o = out_view(p);
    const int g8 = lane >> 2, q = lane & 3;
    const int64_t wrow = n0 + 64 * (warp >> 2) + 16 * (warp & 3) + g8;
#pragma unroll
    for (int f = 0; f < TOK / 8; ++f)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int64_t n = wrow + 8 * (e >> 1), m = m0 + 8 * f + 2 * q + (e & 1);
        if (m < p.M && n < p.N) store_y(p, o, m, n, acc[4 * f + e]);
      }
  }
}

template <int WG, int TOK, int PIPE, bool PREP = false>
void launch_rs(const Fp8GemmArgs& p, cudaStream_t stream, const PreparedW* prepared = nullptr) {
  using L = Layout<WG, TOK, PIPE>;
  const int64_t gx = (p.N + L::kWRows - 1) / L::kWRows, gy = (p.M + TOK - 1) / TOK;
  static const bool attr_set = (set_smem_attributes(gemm_bf16_rs<WG, TOK, PIPE, PREP>, L::smem), true);
  (void)attr_set;
  const int64_t kb8 = p.nkb - p.kb4 - p.kb6;
  const int64_t tok_rows_pad = gy * TOK;
  const size_t tok_bytes = static_cast<size_t>(tok_rows_pad * p.nkb * 64), flag_bytes = static_cast<size_t>(gy * 4 + 15) / 16 * 16;
  // The block-major weight copy (not with prepared weights) covers every row a CTA's bulk copies touch.
  BlockMajor W{};
  const int64_t w_rows = std::max<int64_t>(p.N, gx * L::kWRows);
  const size_t w_bytes = PREP ? 0 : carve(nullptr, w_rows, p.kb4, p.kb6, kb8, W);
  // Stream-ordered workspace: no device-wide synchronization.
  uint8_t* ws = static_cast<uint8_t*>(scratch_alloc(tok_bytes + flag_bytes + w_bytes + 16, stream));
  int* tok_unsafe = reinterpret_cast<int*>(ws + tok_bytes);
  if (!PREP) carve(ws + tok_bytes + flag_bytes, w_rows, p.kb4, p.kb6, kb8, W);
  MM_CUDA_CHECK(cudaMemsetAsync(tok_unsafe, 0, flag_bytes, stream));
  if (p.nkb > 0) {
    activations_to_bf16_tiles<HalfSlices>
        <<<dim3(static_cast<unsigned>(tok_rows_pad / 64), static_cast<unsigned>(p.nkb)), 128, 0, stream>>>(p, tok_rows_pad, TOK, ws,
                                                                                                          tok_unsafe);
    MM_CUDA_CHECK(cudaGetLastError());
  }
  if (!PREP) block_major_launch(p.w, p.N, p.kb4, p.kb6, kb8, W, stream);
  const PreparedW P = prepared ? *prepared : PreparedW{};
  launch_split_k(p, gx, gy, 1, stream, [&](const Fp8GemmArgs& q, dim3 grid) {
    gemm_bf16_rs<WG, TOK, PIPE, PREP><<<grid, L::kThreads, L::smem, stream>>>(q, ws, tok_rows_pad, tok_unsafe, W, P);
    MM_CUDA_CHECK(cudaGetLastError());
  });
  scratch_free(ws, stream);
}

}  // namespace

void mx_mixed_gemm_bf16rs_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream) {
  if (variant == 16) launch_rs<3, 128, 1>(p, stream);
  else if (variant == 17) launch_rs<2, 256, 2>(p, stream);
  else launch_rs<2, 256, 1>(p, stream);
}

void mx_mixed_gemm_bf16rs_prepared_launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  PreparedW P{};
  for (int s = 0; s < 3; ++s) {
    P.codes[s] = p.w.codes[s];
    P.scales[s] = p.w.scales[s];
  }
  launch_rs<2, 256, 1, true>(p, stream, &P);
}

}  // namespace micromix::cuda
