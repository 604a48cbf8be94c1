// Mixed MX GEMM v6-v9 on FP8 tensor-core instructions: y (M, N) = dequant(a) . dequant(w)^T, all
// three segments in one launch, FP32 accumulation, y as bf16 or f32.
//   v6  mma.sync m16n8k32 e4m3 (8 warps, warp tile 64 x 32). Measured: Hopper has no native FP8
//       mma.sync; ptxas emulates it (E4M3 -> f16 conversions + HMMA), so v6 runs below v1.
//   v7  v6 capped at 128 registers (2 CTAs per SM; spills).
//   v8  wgmma m64n128k32 e4m3 from shared memory (each of the two warpgroups owns 64 output rows)
//       for FP4 and E2M3 blocks; v6's mma.sync on the same tiles, in wgmma's accumulator layout, for
//       E3M2 and FP8 blocks. Measured (H200, run B of the FP8 section of bench/GPU_NOTES.md, where
//       it was numbered v9): wgmma for every segment (MODE 1, not selectable) misses the 1e-5 bound (rel. Frobenius
//       5e-5 .. 1.7e-4 with FP8 or E3M2 blocks): its FP8 adder does not keep every bit of 32
//       products spanning many binades. All-FP4 and all-E2M3 matched the reference.
//   v9  v8 software-pipelined: block kb's wgmma (issued for every block, discarded for E3M2/FP8, so
//       that the code is straight-line and ptxas keeps it asynchronous) runs while the warpgroup
//       converts stage kb + 1 and promotes block kb - 1; E4M3 and scale buffers triple.
//       Measured slower than v8 (H200: 82-91 vs 93-110 TF/s; 255 registers, more instructions):
//       the tensor core is not what the kernel waits for.
//
// Every MX element is exactly an E4M3 value up to a power of two, so each 32-wide MX block is one
// k32 MMA (e4m3 x e4m3 -> f32) on UNSCALED element values into a fresh temporary, which is
// then promoted into the FP32 accumulator: acc += (t * s_a) * s_w (E8M0 scales as floats; NaN scale
// 0xFF gives NaN as in the CPU reference). Element -> E4M3 byte:
//   FP4 E2M1: true value through a byte-permute table (prmt) of the 8 magnitudes, sign moved to bit 7;
//   FP6 E2M3 s.ee.mmm: the same bits as E4M3 0.0ee.mmm = value * 2^-6 (sign to bit 7);
//   FP6 E3M2 s.eee.mm: as E4M3 0.eee.mm0 = value * 2^-4;
//   FP8 E4M3: as is (NaN code stays NaN).
// The FP6 factors (2^6 or 2^4 per operand) are folded into each operand's scale (exact powers of two;
// NOTES: an FP6 scale code >= 249 (E2M3) or >= 251 (E3M2) then overflows to Inf where the CPU
// reference may still be finite for small elements; such blocks hold values >= 2^119).
//
// CTA: 128 x 128 output tile, 8 warps; v6/v7: 2 x 4 warps of 64 x 32 (4 x 4 MMAs per MX block);
// v8: 2 warpgroups of 64 x 128 (one wgmma per MX block; each warp's 16 rows in 16 n8 fragments).
// Pipeline: one stage = one MX block of packed codes for the 128 A rows and 128 W rows, copied by
// cp.async (thread t copies and later converts row t: A rows 0..127, W rows 128..255) into a
// 4-deep ring. Each iteration converts stage kb+1 to E4M3 in a double buffer (FP8 stages are read
// in place) while the warps run the MMAs of stage kb; one barrier per MX block.
// K order inside a block: MMA k position 4q + j holds element 8q + j and 16 + 4q + j element
// 8q + 4 + j (the same for A and W, so the sum is unchanged), so a thread's fragment registers are
// one 8-byte shared load per row.
// Costs per thread per MX block: 16 MMAs, 128 FP32 ops of promotion (2 per accumulator), ~45 ops
// of conversion (FP4), 12 LDS.64 + 12 scale loads. Measured (ncu, GPU_NOTES): 382 warp instructions
// per warp per block, 1 CTA of 8 warps per SM, wgmma and promotion serial: all of v6-v9 run below v1.
// NOTES: rows past M or N are clamped on load and never stored; K = 0 writes zeros.
#include <cuda_bf16.h>

#include <type_traits>

#include "cuda/sm90_bf16_tile.cuh"
#include "cuda/sm90_mx_mixed_gemm_fp8.cuh"

namespace micromix::cuda {
namespace {

using namespace mixed;
using namespace bf16tc;  // PTX wrappers, seg_of, pack_bf16x2, fp6x4_to_e4m3

constexpr int kBM = 128, kBN = 128, kThreads = 256, kStages = 4;
constexpr int kRowBytes = 32;                        // E4M3 bytes of one row of one MX block
constexpr int kSlot = (kBM + kBN) * kRowBytes;       // bytes of one stage (FP8 worst case)
// E4M3 / scale buffers: 2 (v6-v8), 3 (v9: a wgmma may still read the previous block's tile).
__host__ __device__ constexpr int buffers(int mode) { return mode == 3 ? 3 : 2; }
constexpr int smem_bytes(int mode) {
  return kStages * kSlot + buffers(mode) * (kSlot + (kBM + kBN) * 4) + 1024;  // + alignment slack
}

// c += A (16 x 32, e4m3, row) . B (32 x 8, e4m3, col).
__device__ __forceinline__ void mma_e4m3(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// d (64 x 128 f32 fragments) = A (64 x 32 e4m3, K-major, smem) . B (128 x 32 e4m3, K-major, smem)^T;
// scale-d = 0: d's previous values are ignored (no zeroing by other instructions, which would make
// ptxas serialize the wgmma).
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[64], uint64_t da, uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(da), "l"(db), "r"(0));
}

// 4 E2M1 codes (nibbles of the low 16 bits of x) -> 4 E4M3 bytes of the same values.
__device__ __forceinline__ uint32_t fp4x4_to_e4m3(uint32_t x) {
  // Magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6 as E4M3.
  const uint32_t mag = prmt(0x3C383000u, 0x4C484440u, x & 0x7777u);
  // Selector nibble s.mmm picks 0x80 (s = 0) or its sign replicated, 0xFF (s = 1): bit 0 = sign.
  const uint32_t sgn = prmt(0x80808080u, 0x80808080u, x);
  return mag | ((sgn << 7) & 0x80808080u);
}

// MODE 0: mma.sync m16n8k32 (v6, v7). MODE 1: wgmma m64n128k32 from shared memory, the stage tiles
// stored with the 32-byte swizzle (not exact for FP8/E3M2 blocks: not selectable). MODE 2 (v8):
// MODE 1 for the FP4 and E2M3 segments, mma.sync on the same tiles and accumulator layout for E3M2
// and FP8.
template <int MIN_CTAS, int MODE>
__global__ void __launch_bounds__(kThreads, MIN_CTAS) gemm_fp8_v6(Fp8GemmArgs p) {
  constexpr bool WG = MODE != 0;
  constexpr int NB = buffers(MODE);
  constexpr int WN = 4, WTM = 64, WTN = 32, MI = 4, NI = 4;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  uint8_t* ring = smem;                          // kStages x (256 rows x block bytes), packed codes
  uint8_t* ebuf = smem + kStages * kSlot;        // NB x (256 rows x 32) E4M3
  float* sscale = reinterpret_cast<float*>(ebuf + NB * kSlot);  // NB x 256 scales (with the FP6 factor)

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / WN, wn = warp % WN;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBM, n0 = static_cast<int64_t>(blockIdx.x) * kBN;

  // The row this thread stages: A rows 0..127 of the tile, W rows 128..255.
  const bool is_a = tid < kBM;
  const int sw = WG ? (tid >> 2) & 1 : 0;  // 32-byte swizzle of this thread's staged row
  const int64_t row = is_a ? min(m0 + tid, p.M - 1) : min(n0 + (tid - kBM), p.N - 1);
  // (Members picked one by one: a runtime-selected reference into the parameters would go to local memory.)
#define MM_ROW_PTR(field, stride, s) ((is_a ? p.a.field[s] : p.w.field[s]) + row * (is_a ? p.a.stride[s] : p.w.stride[s]))
  const uint8_t* codes0 = MM_ROW_PTR(codes, row_bytes, 0);
  const uint8_t* codes1 = MM_ROW_PTR(codes, row_bytes, 1);
  const uint8_t* codes2 = MM_ROW_PTR(codes, row_bytes, 2);
  const uint8_t* scales0 = MM_ROW_PTR(scales, blocks, 0);
  const uint8_t* scales1 = MM_ROW_PTR(scales, blocks, 1);
  const uint8_t* scales2 = MM_ROW_PTR(scales, blocks, 2);
#undef MM_ROW_PTR
  // FP6 codes reach the MMA as value * 2^-6 (E2M3) or * 2^-4 (E3M2): each side's scale takes it back.
  const float fp6_factor = p.fp6_e2m3 ? 64.0f : 16.0f;

  auto issue = [&](int64_t kb) {
    int64_t lb;
    const int seg = seg_of(p, kb, lb);
    uint8_t* dst = ring + static_cast<int>(kb % kStages) * kSlot;
    if (seg == 0) {
      cp_async16(dst + tid * 16, codes0 + lb * 16);
    } else if (seg == 1) {
#pragma unroll
      for (int i = 0; i < 3; ++i) cp_async8(dst + tid * 24 + 8 * i, codes1 + lb * 24 + 8 * i);
    } else {
#pragma unroll
      for (int i = 0; i < 2; ++i) cp_async16(dst + tid * 32 + 16 * (i ^ sw), codes2 + lb * 32 + 16 * i);
    }
  };
  auto load_scale = [&](int64_t kb) -> unsigned {
    int64_t lb;
    const int seg = seg_of(p, kb, lb);
    return __ldg((seg == 0 ? scales0 : seg == 1 ? scales1 : scales2) + lb);
  };
  // Converts this thread's row of stage kb (its own cp.async copies) into ebuf[kb & 1] and its
  // scale into sscale[kb & 1].
  auto convert = [&](int64_t kb, unsigned sc) {
    int64_t lb;
    const int seg = seg_of(p, kb, lb);
    const int buf = static_cast<int>(kb % NB);
    sscale[buf * (kBM + kBN) + tid] = scale_f32(sc) * (seg == 1 ? fp6_factor : 1.0f);
    const uint8_t* src = ring + static_cast<int>(kb % kStages) * kSlot;
    uint4* dst = reinterpret_cast<uint4*>(ebuf + buf * kSlot + tid * kRowBytes);
    if (seg == 0) {
      const uint4 q = *reinterpret_cast<const uint4*>(src + tid * 16);
      dst[sw] = make_uint4(fp4x4_to_e4m3(q.x), fp4x4_to_e4m3(q.x >> 16), fp4x4_to_e4m3(q.y), fp4x4_to_e4m3(q.y >> 16));
      dst[1 ^ sw] = make_uint4(fp4x4_to_e4m3(q.z), fp4x4_to_e4m3(q.z >> 16), fp4x4_to_e4m3(q.w), fp4x4_to_e4m3(q.w >> 16));
    } else if (seg == 1) {
      const uint2* s2 = reinterpret_cast<const uint2*>(src + tid * 24);
      const uint2 u0 = s2[0], u1 = s2[1], u2 = s2[2];
      const uint32_t W[6] = {u0.x, u0.y, u1.x, u1.y, u2.x, u2.y};
      uint32_t g[8];
#pragma unroll
      for (int h = 0; h < 2; ++h) {  // 12 bytes = 4 groups of 3 bytes (4 codes each)
        const uint32_t w0 = W[3 * h], w1 = W[3 * h + 1], w2 = W[3 * h + 2];
        g[4 * h] = w0;
        g[4 * h + 1] = __funnelshift_r(w0, w1, 24);
        g[4 * h + 2] = __funnelshift_r(w1, w2, 16);
        g[4 * h + 3] = w2 >> 8;
      }
      uint32_t o[8];
      if (p.fp6_e2m3) {
#pragma unroll
        for (int i = 0; i < 8; ++i) o[i] = fp6x4_to_e4m3(g[i], true);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) o[i] = fp6x4_to_e4m3(g[i], false);
      }
      dst[sw] = make_uint4(o[0], o[1], o[2], o[3]);
      dst[1 ^ sw] = make_uint4(o[4], o[5], o[6], o[7]);
    }
    // FP8: the MMAs read the ring slot in place.
  };

  // mma.sync: acc[(mi * NI + ni) * 4 + c]; wgmma: the m64n128 fragment (16 n8 blocks of 4).
  float acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  [[maybe_unused]] float t64[64];

  const int64_t nkb = p.nkb;
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < nkb) issue(s);
    cp_async_commit();
  }
  unsigned sc_next = nkb > 0 ? load_scale(0) : 0u;
  cp_async_wait<kStages - 2>();  // stage 0 (own copies)
  if (nkb > 0) convert(0, sc_next);
  [[maybe_unused]] float t64b[64];  // v9: the temporary of odd blocks
  if (WG && nkb > 0) {  // t64 is defined by the first wgmma (scale-d = 0 ignores its input)
#pragma unroll
    for (int i = 0; i < 64; ++i) asm volatile("" : "=f"(t64[i]), "=f"(t64b[i]));
  }
  if (nkb > 1) sc_next = load_scale(1);

  const int q = lane & 3, r8 = lane >> 2;
  if constexpr (MODE == 3) {
    // v9: block kb's wgmma runs while this warpgroup converts stage kb + 1 and promotes block kb - 1.
    const int g = warp >> 2, m = g * 64 + (warp & 3) * 16 + r8;
    auto promote = [&](const float (&t)[64], const float* sc) {
      const float sa0 = sc[m], sa1 = sc[m + 8];
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const float2 sb = *reinterpret_cast<const float2*>(sc + kBM + j * 8 + 2 * q);
        acc[4 * j + 0] = fmaf(t[4 * j + 0] * sa0, sb.x, acc[4 * j + 0]);
        acc[4 * j + 1] = fmaf(t[4 * j + 1] * sa0, sb.y, acc[4 * j + 1]);
        acc[4 * j + 2] = fmaf(t[4 * j + 2] * sa1, sb.x, acc[4 * j + 2]);
        acc[4 * j + 3] = fmaf(t[4 * j + 3] * sa1, sb.y, acc[4 * j + 3]);
      }
    };
    bool pending = false;  // block kb - 1 ran on wgmma and is not promoted yet (uniform over the CTA)
    auto step = [&](auto parity, int64_t kb) {
      float(&tc)[64] = decltype(parity)::value == 0 ? t64 : t64b;  // this block's temporary
      float(&tp)[64] = decltype(parity)::value == 0 ? t64b : t64;  // block kb - 1's
      cp_async_wait<kStages - 3>();
      fence_proxy_async();
      __syncthreads();  // stage kb converted by all; block kb - 2's wgmmas and reads all done
      if (kb + kStages - 1 < nkb) issue(kb + kStages - 1);
      cp_async_commit();
      int64_t lb;
      const int seg = seg_of(p, kb, lb);
      const int buf = static_cast<int>(kb % NB);
      const uint8_t* tile = seg == 2 ? ring + static_cast<int>(kb % kStages) * kSlot : ebuf + buf * kSlot;
      const float* sc = sscale + buf * (kBM + kBN);
      const bool on_wgmma = seg == 0 || (seg == 1 && p.fp6_e2m3);
      // The wgmma is issued for every block (straight-line code, so that ptxas keeps it asynchronous);
      // E3M2 / FP8 blocks discard its result. For FP8 it reads the E4M3 buffer, not the ring slot
      // (which the copy of block kb + 4 reuses before this wgmma is waited for).
      const uint8_t* wtile = ebuf + buf * kSlot;
      wgmma_fence();
      wgmma_m64n128k32_e4m3(tc, smem_desc_sw32(wtile + g * 64 * kRowBytes), smem_desc_sw32(wtile + kBM * kRowBytes));
      wgmma_commit();
      if (kb + 1 < nkb) {
        convert(kb + 1, sc_next);
        if (kb + 2 < nkb) sc_next = load_scale(kb + 2);
      }
      wgmma_wait1();  // block kb - 1's wgmma done
      if (pending) promote(tp, sscale + static_cast<int>((kb - 1) % NB) * (kBM + kBN));
      pending = on_wgmma;
      if (!on_wgmma) {  // E3M2 / FP8 block: mma.sync on the swizzled tile, straight into acc
        auto ld8 = [&](int r) {
          return *reinterpret_cast<const uint2*>(tile + r * kRowBytes + (((q >> 1) ^ ((r >> 2) & 1)) << 4) + ((q & 1) << 3));
        };
        const float sa0 = sc[m], sa1 = sc[m + 8];
        const uint2 a0 = ld8(m), a1 = ld8(m + 8);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          const uint2 b = ld8(kBM + j * 8 + r8);
          float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          mma_e4m3(t, a0.x, a1.x, a0.y, a1.y, b.x, b.y);
          const float2 sb = *reinterpret_cast<const float2*>(sc + kBM + j * 8 + 2 * q);
          acc[4 * j + 0] = fmaf(t[0] * sa0, sb.x, acc[4 * j + 0]);
          acc[4 * j + 1] = fmaf(t[1] * sa0, sb.y, acc[4 * j + 1]);
          acc[4 * j + 2] = fmaf(t[2] * sa1, sb.x, acc[4 * j + 2]);
          acc[4 * j + 3] = fmaf(t[3] * sa1, sb.y, acc[4 * j + 3]);
        }
      }
    };
    for (int64_t kb = 0; kb < nkb; kb += 2) {
      step(std::integral_constant<int, 0>{}, kb);
      if (kb + 1 < nkb) step(std::integral_constant<int, 1>{}, kb + 1);
    }
    wgmma_wait0();
    if (pending) {
      const float* sc = sscale + static_cast<int>((nkb - 1) % NB) * (kBM + kBN);
      if ((nkb - 1) & 1) promote(t64b, sc);
      else promote(t64, sc);
    }
  } else
  for (int64_t kb = 0; kb < nkb; ++kb) {
    cp_async_wait<kStages - 3>();  // stage kb + 1 landed (own copies)
    if constexpr (WG) fence_proxy_async();
    __syncthreads();               // stage kb converted by all; stage kb - 1 consumed by all
    if (kb + kStages - 1 < nkb) issue(kb + kStages - 1);
    cp_async_commit();
    if (kb + 1 < nkb) {
      convert(kb + 1, sc_next);
      if (kb + 2 < nkb) sc_next = load_scale(kb + 2);
    }

    int64_t lb;
    const int seg = seg_of(p, kb, lb);
    const int buf = static_cast<int>(kb % NB);
    const uint8_t* tile = seg == 2 ? ring + static_cast<int>(kb % kStages) * kSlot : ebuf + buf * kSlot;
    const float* sc = sscale + buf * (kBM + kBN);
    if constexpr (WG) {
      const int g = warp >> 2;  // warpgroup: output rows 64 g .. 64 g + 63
      const int m = g * 64 + (warp & 3) * 16 + r8;
      const float sa0 = sc[m], sa1 = sc[m + 8];
      if (MODE == 2 && !(seg == 0 || (seg == 1 && p.fp6_e2m3))) {
        // mma.sync on the swizzled tile: thread q reads logical bytes 8q .. 8q + 7 of a row.
        auto ld8 = [&](int r) {
          return *reinterpret_cast<const uint2*>(tile + r * kRowBytes + (((q >> 1) ^ ((r >> 2) & 1)) << 4) + ((q & 1) << 3));
        };
        const uint2 a0 = ld8(m), a1 = ld8(m + 8);
#pragma unroll
        for (int j = 0; j < 16; ++j) {
          const uint2 b = ld8(kBM + j * 8 + r8);
          float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          mma_e4m3(t, a0.x, a1.x, a0.y, a1.y, b.x, b.y);
          const float2 sb = *reinterpret_cast<const float2*>(sc + kBM + j * 8 + 2 * q);
          acc[4 * j + 0] = fmaf(t[0] * sa0, sb.x, acc[4 * j + 0]);
          acc[4 * j + 1] = fmaf(t[1] * sa0, sb.y, acc[4 * j + 1]);
          acc[4 * j + 2] = fmaf(t[2] * sa1, sb.x, acc[4 * j + 2]);
          acc[4 * j + 3] = fmaf(t[3] * sa1, sb.y, acc[4 * j + 3]);
        }
        continue;
      }
      wgmma_fence();
      wgmma_m64n128k32_e4m3(t64, smem_desc_sw32(tile + g * 64 * kRowBytes), smem_desc_sw32(tile + kBM * kRowBytes));
      wgmma_commit();
      wgmma_wait0();
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const float2 sb = *reinterpret_cast<const float2*>(sc + kBM + j * 8 + 2 * q);
        acc[4 * j + 0] = fmaf(t64[4 * j + 0] * sa0, sb.x, acc[4 * j + 0]);
        acc[4 * j + 1] = fmaf(t64[4 * j + 1] * sa0, sb.y, acc[4 * j + 1]);
        acc[4 * j + 2] = fmaf(t64[4 * j + 2] * sa1, sb.x, acc[4 * j + 2]);
        acc[4 * j + 3] = fmaf(t64[4 * j + 3] * sa1, sb.y, acc[4 * j + 3]);
      }
    } else {
    uint32_t bfr[NI][2];
    float sb[NI][2];
#pragma unroll
    for (int ni = 0; ni < NI; ++ni) {
      const int n = kBM + wn * WTN + ni * 8;
      const uint2 b = *reinterpret_cast<const uint2*>(tile + (n + r8) * kRowBytes + 8 * q);
      bfr[ni][0] = b.x;
      bfr[ni][1] = b.y;
      const float2 s = *reinterpret_cast<const float2*>(sc + n + 2 * q);
      sb[ni][0] = s.x;
      sb[ni][1] = s.y;
    }
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
      const int m = wm * WTM + mi * 16 + r8;
      const uint2 a0 = *reinterpret_cast<const uint2*>(tile + m * kRowBytes + 8 * q);
      const uint2 a1 = *reinterpret_cast<const uint2*>(tile + (m + 8) * kRowBytes + 8 * q);
      const float sa0 = sc[m], sa1 = sc[m + 8];
#pragma unroll
      for (int ni = 0; ni < NI; ++ni) {
        float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        mma_e4m3(t, a0.x, a1.x, a0.y, a1.y, bfr[ni][0], bfr[ni][1]);
        float* a = acc + (mi * NI + ni) * 4;
        a[0] = fmaf(t[0] * sa0, sb[ni][0], a[0]);
        a[1] = fmaf(t[1] * sa0, sb[ni][1], a[1]);
        a[2] = fmaf(t[2] * sa1, sb[ni][0], a[2]);
        a[3] = fmaf(t[3] * sa1, sb[ni][1], a[3]);
      }
    }
    }  // mma.sync
  }
  cp_async_wait<0>();

  // Epilogue: fragment f of 4 holds rows r8 and r8 + 8 of its 16-row group, columns 2q + {0, 1} of its
  // 8-column group (mma.sync: group (mi, ni) of the warp tile; wgmma: n8 block f of the warp's 16 rows).
#pragma unroll
  for (int f = 0; f < 16; ++f)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t row_o = WG ? m0 + (warp >> 2) * 64 + (warp & 3) * 16 + r8 + 8 * h
                                 : m0 + wm * WTM + (f / NI) * 16 + r8 + 8 * h;
        const int64_t col = WG ? n0 + f * 8 + q * 2 : n0 + wn * WTN + (f % NI) * 8 + q * 2;
        if (row_o >= p.M || col >= p.N) continue;
        const float v0 = acc[4 * f + 2 * h], v1 = acc[4 * f + 2 * h + 1];
        if (p.out_f32)
          *reinterpret_cast<float2*>(static_cast<float*>(p.y) + row_o * p.N + col) = make_float2(v0, v1);
        else
          *reinterpret_cast<unsigned*>(static_cast<__nv_bfloat16*>(p.y) + row_o * p.N + col) = pack_bf16x2(v0, v1);
      }
}

template <int MIN_CTAS, int MODE>
void launch(const Fp8GemmArgs& p, cudaStream_t stream) {
  const int64_t gx = (p.N + kBN - 1) / kBN, gy = (p.M + kBM - 1) / kBM;
  MM_CUDA_REQUIRE(gy <= 65535, "mx_mixed_gemm: M too large for the grid");
  static const bool attr_set = [] {
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemm_fp8_v6<MIN_CTAS, MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       smem_bytes(MODE)));
    MM_CUDA_CHECK(cudaFuncSetAttribute(gemm_fp8_v6<MIN_CTAS, MODE>, cudaFuncAttributePreferredSharedMemoryCarveout, 100));
    return true;
  }();
  (void)attr_set;
  gemm_fp8_v6<MIN_CTAS, MODE><<<dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy)), kThreads, smem_bytes(MODE), stream>>>(p);
  MM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void mx_mixed_gemm_fp8_launch(int variant, const Fp8GemmArgs& p, cudaStream_t stream) {
  if (variant == 9) launch<1, 3>(p, stream);
  else if (variant == 8) launch<1, 2>(p, stream);
  else if (variant == 7) launch<2, 0>(p, stream);
  else launch<1, 0>(p, stream);
}

}  // namespace micromix::cuda
