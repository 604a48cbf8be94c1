// Tensor-core ceilings of the exact prefill routes on Hopper (issue 5, "prefill >= 1.3x cuBLAS
// BF16"). Every kernel here runs only the inner loop of a GEMM: operands already in shared memory
// (random values, 4 stage buffers cycled so that descriptors change per block), no global loads,
// no producer, no barriers. What is left is the tensor instruction and whatever per-block CUDA-core
// work a route needs, so each time is an upper bound on what a full kernel of that route can reach.
//   bf16       BF16 wgmma m64n256k16 (2 per 32-K block), FP32 accumulation over all of K: the rate
//              of the BF16 routes (v10-v18 and cuBLAS BF16)
//   fp8-raw    E4M3 wgmma m64n256k32 accumulated over all of K inside the tensor core: the FP8 peak.
//              NOT an exact route for MX operands (Hopper's FP8 sums keep ~14 bits; session 2)
//   fp8-blk    the exact FP8 route: E4M3 wgmma m64n128k32 into a fresh FP32 partial per MX block
//              (exact for FP4 x FP4 blocks), then wait and promote by one FFMA per accumulator (one
//              operand's scale folded into its E4M3 values, the other's per-row scale from shared
//              memory). 3 warpgroups, so one's MMA runs while the others promote (a second partial
//              per warpgroup to overlap inside it makes ptxas serialize every wgmma: C7514)
//   int8-raw   s8 wgmma m64n256k32, s32 accumulation over all of K: the INT8 peak (exact)
//   int8-g4    the exact INT8 route: s8 wgmma m64n128k32 summing 4 blocks (scales folded per 128-K
//              group) into an int32 partial, then wait and promote per group: int -> float by the
//              magic-number add, times the column scale, FFMA with the row scale; 3 warpgroups
//   int8-g8    the same with groups of 8 blocks (256 K; |partial| <= 96 x 96 x 256 < 2^22 still)
//   int8-g8-skew  int8-g8 with warpgroup w starting 3 w blocks late, so that the three warpgroups'
//              promotions need not coincide (does the tensor core idle while all three promote?)
// Prints TF/s (median of 15 launches, CUDA events) and the ratio to the bf16 ceiling.
//
// Then int8-g8 with its data movement (a feasibility check of that route, not a library kernel: no
// correctness, no fallback for rows whose scales do not fold): a GEMM over random int8 operands in
// global memory, pre-tiled so that one stage (4 blocks of 32 K of a 192-row A tile and a 128-row B
// tile) is two contiguous bulk copies into a 4-stage mbarrier ring, 3 warpgroups run int8-g8's loop
// (per-row and per-column group factors copied with the group's first stage), and the epilogue
// writes BF16. Two variants: a group's stages released after its promotion, or before it. Timed against cuBLAS BF16 on the same (M, N, K), Llama-3.1-8B shapes.
//   bench_tc_ceiling [--blocks N]   (N: 32-K blocks per CTA, default 4096; one CTA per SM)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "bench_cuda_check.hpp"
#include "cuda/ptx_helpers.cuh"

namespace {

using micromix::cuda::ptx::smem_desc_sw32;
using micromix::cuda::ptx::wgmma_commit;
using micromix::cuda::ptx::wgmma_fence;
using micromix::cuda::ptx::wgmma_wait;

// wgmma wrappers: d = the warpgroup's accumulators, scale_d = 0 starts them fresh.
#define MM_REGS64                                                                                \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25," \
  "%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,"   \
  "%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63"
#define MM_REGS128                                                                                   \
  MM_REGS64 ",%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,"  \
            "%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104," \
            "%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,"  \
            "%122,%123,%124,%125,%126,%127"
#define MM_ACC8(C, o) C(d[o]), C(d[o + 1]), C(d[o + 2]), C(d[o + 3]), C(d[o + 4]), C(d[o + 5]), C(d[o + 6]), C(d[o + 7])
#define MM_ACC64(C, o)                                                                                            \
  MM_ACC8(C, o), MM_ACC8(C, o + 8), MM_ACC8(C, o + 16), MM_ACC8(C, o + 24), MM_ACC8(C, o + 32), MM_ACC8(C, o + 40), \
      MM_ACC8(C, o + 48), MM_ACC8(C, o + 56)
// NAME(T (&d)[64 or 128], descriptor of A, descriptor of B, scale_d) for one shape and type.
#define MM_WGMMA64(NAME, T, C, SHAPE_TYPES, TAIL)                                                          \
  __device__ __forceinline__ void NAME(T(&d)[64], uint64_t da, uint64_t db, int scale_d) {                \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\nwgmma.mma_async.sync.aligned." SHAPE_TYPES     \
                 " {" MM_REGS64 "}, %64, %65, p" TAIL ";\n}\n"                                             \
                 : MM_ACC64(C, 0)                                                                          \
                 : "l"(da), "l"(db), "r"(scale_d));                                                        \
  }
#define MM_WGMMA128(NAME, T, C, SHAPE_TYPES, TAIL)                                                         \
  __device__ __forceinline__ void NAME(T(&d)[128], uint64_t da, uint64_t db, int scale_d) {               \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\nwgmma.mma_async.sync.aligned." SHAPE_TYPES    \
                 " {" MM_REGS128 "}, %128, %129, p" TAIL ";\n}\n"                                          \
                 : MM_ACC64(C, 0), MM_ACC64(C, 64)                                                         \
                 : "l"(da), "l"(db), "r"(scale_d));                                                        \
  }
MM_WGMMA128(wgmma_bf16_n256, float, "+f", "m64n256k16.f32.bf16.bf16", ", 1, 1, 0, 0")
MM_WGMMA128(wgmma_e4m3_n256, float, "+f", "m64n256k32.f32.e4m3.e4m3", ", 1, 1")
MM_WGMMA64(wgmma_e4m3_n128, float, "+f", "m64n128k32.f32.e4m3.e4m3", ", 1, 1")
MM_WGMMA128(wgmma_s8_n256, int, "+r", "m64n256k32.s32.s8.s8", "")
MM_WGMMA64(wgmma_s8_n128, int, "+r", "m64n128k32.s32.s8.s8", "")

enum Mode { kBf16, kFp8Raw, kFp8Blk, kInt8Raw, kInt8G4, kInt8G8, kInt8G8Skew, kModes };
const char* const kModeNames[kModes] = {"bf16", "fp8-raw", "fp8-blk", "int8-raw", "int8-g4", "int8-g8", "int8-g8-skew"};
constexpr int kStages = 4;
constexpr int kSub = 256 * 32;  // one 256-row x 32-byte K-major tile (A uses its first 64 x WG rows)

__host__ __device__ constexpr int warpgroups(int mode) { return mode == kFp8Blk || mode >= kInt8G4 ? 3 : 2; }
__host__ __device__ constexpr int tile_n(int mode) { return mode == kFp8Blk || mode >= kInt8G4 ? 128 : 256; }
__host__ __device__ constexpr int group_blocks(int mode) { return mode >= kInt8G8 ? 8 : 4; }
__host__ __device__ constexpr int subs(int mode) { return mode == kBf16 ? 2 : 1; }  // 32-byte K slices per block
// Shared memory: kStages x subs x (A tile + B tile), then row scales [kStages][192], column scales [kStages][256].
__host__ __device__ constexpr int stage_bytes(int mode) { return subs(mode) * 2 * kSub; }
__host__ __device__ constexpr int smem_bytes(int mode) { return kStages * stage_bytes(mode) + kStages * (192 + 256) * 4; }

__device__ __forceinline__ uint32_t hash(uint32_t x) {
  x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
  return x;
}

// Realistic operand bytes: E2M1 values as E4M3 (fp8), small bf16 values, int8 in [-96, 96].
template <int MODE>
__device__ void fill(uint8_t* s, uint32_t seed) {
  const int n = kStages * stage_bytes(MODE);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const uint32_t h = hash(seed ^ static_cast<uint32_t>(i));
    uint8_t b;
    if constexpr (MODE == kBf16) {
      b = (i & 1) ? static_cast<uint8_t>(0x3C | (h & 0x80) | ((h >> 8) & 3)) : static_cast<uint8_t>(h);  // little-endian high byte odd
    } else if constexpr (MODE == kInt8Raw || MODE == kInt8G4) {
      b = static_cast<uint8_t>(static_cast<int>(h % 193) - 96);
    } else {
      constexpr uint8_t kE2M1[8] = {0x00, 0x30, 0x38, 0x3C, 0x40, 0x44, 0x48, 0x4C};
      b = static_cast<uint8_t>(kE2M1[h & 7] | (h & 0x80));
    }
    s[i] = b;
  }
  float* sc = reinterpret_cast<float*>(s + kStages * stage_bytes(MODE));
  for (int i = threadIdx.x; i < kStages * (192 + 256); i += blockDim.x)
    sc[i] = __uint_as_float((120u + hash(seed + 7u * i) % 16u) << 23);
}

__device__ __forceinline__ uint64_t desc_a(const uint8_t* stage, int sub, int wg) { return smem_desc_sw32(stage + sub * 2 * kSub + wg * 64 * 32); }
__device__ __forceinline__ uint64_t desc_b(const uint8_t* stage, int sub) { return smem_desc_sw32(stage + sub * 2 * kSub + kSub); }

// FFMA promotion of a warpgroup's m64n128 FP32 partial t with its rows' scales (rows r, r + 8 of the
// warp's 16-row slice: accumulators 4j, 4j + 1 and 4j + 2, 4j + 3).
__device__ __forceinline__ void promote(float (&acc)[64], const float (&t)[64], float s0, float s1) {
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = fmaf(t[i], (i & 2) ? s1 : s0, acc[i]);
}

// int8-g4 promotion: int32 partial -> float (exact for |t| < 2^22 by adding 1.5 x 2^23), times the
// thread's column scale, FFMA with the row scale.
__device__ __forceinline__ void promote_int(float (&acc)[64], const int (&t)[64], float s0, float s1, const float2* cs) {
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const float2 c = cs[j * 4];  // columns 8j + 2 (lane & 3), + 1 (the caller offsets by lane & 3)
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int i = 4 * j + k;
      const float f = __int_as_float(t[i] + 0x4B400000) - 12582912.0f;
      acc[i] = fmaf(f * ((k & 1) ? c.y : c.x), (k & 2) ? s1 : s0, acc[i]);
    }
  }
}

template <int MODE>
__global__ void __launch_bounds__(128 * warpgroups(MODE), 1) ceiling(int nkb, float* out) {
  extern __shared__ __align__(1024) uint8_t smem[];
  fill<MODE>(smem, blockIdx.x * 2654435761u);
  micromix::cuda::ptx::fence_proxy_async();
  __syncthreads();
  const int tid = threadIdx.x, wg = tid >> 7, lane = tid & 31, row = ((tid >> 5) & 3) * 16 + (lane >> 2);
  const float* rs = reinterpret_cast<const float*>(smem + kStages * stage_bytes(MODE));
  const float2* cs = reinterpret_cast<const float2*>(rs + kStages * 192) + (lane & 3);
  auto stage = [&](int kb) { return smem + (kb & (kStages - 1)) * stage_bytes(MODE); };
  auto row_scale = [&](int kb, int r) { return rs[(kb & (kStages - 1)) * 192 + wg * 64 + row + r]; };
  float result = 0.0f;
  if constexpr (MODE == kBf16 || MODE == kFp8Raw || MODE == kInt8Raw) {
    using T = std::conditional_t<MODE == kInt8Raw, int, float>;
    T acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0;
    for (int kb = 0; kb < nkb; ++kb) {
      const uint8_t* st = stage(kb);
      wgmma_fence();
      if constexpr (MODE == kBf16) {
        wgmma_bf16_n256(acc, desc_a(st, 0, wg), desc_b(st, 0), 1);
        wgmma_bf16_n256(acc, desc_a(st, 1, wg), desc_b(st, 1), 1);
      } else if constexpr (MODE == kFp8Raw) {
        wgmma_e4m3_n256(acc, desc_a(st, 0, wg), desc_b(st, 0), 1);
      } else {
        wgmma_s8_n256(acc, desc_a(st, 0, wg), desc_b(st, 0), 1);
      }
      wgmma_commit();
      wgmma_wait<1>();
    }
    wgmma_wait<0>();
#pragma unroll
    for (int i = 0; i < 128; ++i) result += static_cast<float>(acc[i]);
  } else if constexpr (MODE == kFp8Blk) {
    float acc[64], t[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
    for (int kb = 0; kb < nkb; ++kb) {
      wgmma_fence();
      wgmma_e4m3_n128(t, desc_a(stage(kb), 0, wg), desc_b(stage(kb), 0), 0);
      wgmma_commit();
      wgmma_wait<0>();
      promote(acc, t, row_scale(kb, 0), row_scale(kb, 8));
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) result += acc[i];
  } else {  // kInt8G4 / kInt8G8: groups of 4 / 8 blocks
    constexpr int G = group_blocks(MODE);
    float acc[64];
    int t[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
    if constexpr (MODE == kInt8G8Skew) {  // warpgroup w starts w thirds of a group late (extra MMAs, not counted)
      for (int u = 0; u < 3 * wg; ++u) {
        wgmma_fence();
        wgmma_s8_n128(t, desc_a(stage(u), 0, wg), desc_b(stage(u), 0), u);
        wgmma_commit();
        wgmma_wait<0>();
      }
    }
    for (int kb = 0; kb < nkb; kb += G) {  // nkb a multiple of 8
      wgmma_fence();
#pragma unroll
      for (int u = 0; u < G; ++u) wgmma_s8_n128(t, desc_a(stage(kb + u), 0, wg), desc_b(stage(kb + u), 0), u);
      wgmma_commit();
      wgmma_wait<0>();
      promote_int(acc, t, row_scale(kb, 0), row_scale(kb, 8), cs + ((kb / G) & (kStages - 1)) * 128);
    }
#pragma unroll
    for (int i = 0; i < 64; ++i) result += acc[i];
  }
  out[blockIdx.x * blockDim.x + tid] = result;
}

// Times launch() 15 times after one warm-up (CUDA events around each launch); returns the median in
// ms and, when asked, every time sorted.
template <class F>
float median_ms(F launch, std::vector<float>* sorted_ms = nullptr) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  launch();
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<float> t;
  for (int r = 0; r < 15; ++r) {
    CK(cudaEventRecord(a));
    launch();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms);
  }
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  if (sorted_ms) *sorted_ms = t;
  return t[t.size() / 2];
}

template <int MODE>
double run_mode(int nkb, int sms, float* out, std::vector<float>& times_ms) {
  CK(cudaFuncSetAttribute(ceiling<MODE>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes(MODE)));
  const double ms = median_ms([&] { ceiling<MODE><<<sms, 128 * warpgroups(MODE), smem_bytes(MODE)>>>(nkb, out); }, &times_ms);
  const double flop = 2.0 * 64 * warpgroups(MODE) * tile_n(MODE) * 32.0 * nkb * sms;
  return flop / (ms * 1e-3) * 1e-12;
}


// ---- int8-g8 with data movement ----------------------------------------------------------------
// A group (8 blocks of 32 K) is two stages; a stage holds 4 blocks of a 192-row A tile and a
// 128-row B tile; the group's row and column factors go to a 4-deep ring of their own. Thread 0
// issues the copies of group g + 2 into group g's stages once every warpgroup has released them:
// after its promotion of group g (EARLY = false) or as soon as its MMAs of group g are done (EARLY:
// the factors live outside the stages, so the stages are free before the promotion).
constexpr int kPipeBM = 192, kPipeBN = 128, kPipeStages = 4, kPipeBlocksPerStage = 4;
constexpr int kPipeABytes = kPipeBM * 32 * kPipeBlocksPerStage, kPipeBBytes = kPipeBN * 32 * kPipeBlocksPerStage;
constexpr int kPipeStageBytes = kPipeABytes + kPipeBBytes;
constexpr int kPipeFBytes = (kPipeBM + kPipeBN) * 4;  // row then column factors of one group
constexpr int kPipeSmem = kPipeStages * kPipeStageBytes + 4 * kPipeFBytes + 2 * kPipeStages * 8;

struct PipeArgs {
  const uint8_t* a;   // (M / 192, K / 128) stages of 192 x 4 x 32 bytes
  const uint8_t* b;   // (N / 128, K / 128) stages of 128 x 4 x 32 bytes
  const float* ra;    // (M / 192, K / 256, 192) row factors
  const float* cb;    // (N / 128, K / 256, 128) column factors
  __nv_bfloat16* y;   // (M, N)
  int M, N, K;
};

template <bool EARLY>
__global__ void __launch_bounds__(384, 1) int8_g8_pipe(PipeArgs p) {
  namespace ptx = micromix::cuda::ptx;
  extern __shared__ __align__(1024) uint8_t smem[];
  uint8_t* fring = smem + kPipeStages * kPipeStageBytes;
  uint64_t* full = reinterpret_cast<uint64_t*>(fring + 4 * kPipeFBytes);
  uint64_t* empty = full + kPipeStages;
  const int tid = threadIdx.x, nt = blockIdx.x, mt = blockIdx.y;
  const int groups = p.K / 256;
  const uint8_t* a = p.a + static_cast<size_t>(mt) * groups * 2 * kPipeABytes;
  const uint8_t* b = p.b + static_cast<size_t>(nt) * groups * 2 * kPipeBBytes;
  const float* ra = p.ra + static_cast<size_t>(mt) * groups * kPipeBM;
  const float* cb = p.cb + static_cast<size_t>(nt) * groups * kPipeBN;
  auto issue_group = [&](int g) {  // thread 0: both stages of group g, its factors with the first
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int ks = 2 * g + h, s = ks % kPipeStages;
      uint8_t* st = smem + s * kPipeStageBytes;
      ptx::mbar_expect_tx(&full[s], kPipeStageBytes + (h == 0 ? kPipeFBytes : 0));
      ptx::bulk_copy_g2s(st, a + static_cast<size_t>(ks) * kPipeABytes, kPipeABytes, &full[s]);
      ptx::bulk_copy_g2s(st + kPipeABytes, b + static_cast<size_t>(ks) * kPipeBBytes, kPipeBBytes, &full[s]);
      if (h == 0) {
        uint8_t* f = fring + (g & 3) * kPipeFBytes;
        ptx::bulk_copy_g2s(f, ra + static_cast<size_t>(g) * kPipeBM, kPipeBM * 4, &full[s]);
        ptx::bulk_copy_g2s(f + kPipeBM * 4, cb + static_cast<size_t>(g) * kPipeBN, kPipeBN * 4, &full[s]);
      }
    }
  };
  if (tid == 0) {
    for (int s = 0; s < kPipeStages; ++s) {
      ptx::mbar_init(&full[s], 1);
      ptx::mbar_init(&empty[s], 3);
    }
    ptx::fence_mbarrier_init();
    issue_group(0);
    if (groups > 1) issue_group(1);
  }
  __syncthreads();
  const int wg = tid >> 7, lane = tid & 31, row = wg * 64 + ((tid >> 5) & 3) * 16 + (lane >> 2);
  const int m0 = mt * kPipeBM + row, c0 = 2 * (lane & 3);
  float acc[64];
  int t[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0.0f;
  auto release = [&](int g) {  // group g's stages: every warpgroup arrives; thread 0 refills them with g + 2
    const int s0 = (2 * g) % kPipeStages;
    if ((tid & 127) == 0) {
      ptx::mbar_arrive(&empty[s0]);
      ptx::mbar_arrive(&empty[s0 + 1]);
    }
    if (tid == 0 && g + 2 < groups) {
      ptx::mbar_wait(&empty[s0], (g / 2) & 1);
      ptx::mbar_wait(&empty[s0 + 1], (g / 2) & 1);
      issue_group(g + 2);
    }
  };
  for (int g = 0; g < groups; ++g) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int ks = 2 * g + h, s = ks % kPipeStages;
      ptx::mbar_wait(&full[s], (ks / kPipeStages) & 1);
      const uint8_t* st = smem + s * kPipeStageBytes;
      wgmma_fence();
#pragma unroll
      for (int u = 0; u < kPipeBlocksPerStage; ++u)
        wgmma_s8_n128(t, smem_desc_sw32(st + u * kPipeBM * 32 + wg * 64 * 32), smem_desc_sw32(st + kPipeABytes + u * kPipeBN * 32),
                      h + u > 0 ? 1 : 0);
      wgmma_commit();
    }
    wgmma_wait<0>();
    if constexpr (EARLY) release(g);
    const float* f = reinterpret_cast<const float*>(fring + (g & 3) * kPipeFBytes);
    const float r0 = f[row], r1 = f[row + 8];
    const float2* cf = reinterpret_cast<const float2*>(f + kPipeBM + c0);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const float2 c = cf[4 * j];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int i = 4 * j + k;
        const float v = __int_as_float(t[i] + 0x4B400000) - 12582912.0f;
        acc[i] = fmaf(v * ((k & 1) ? c.y : c.x), (k & 2) ? r1 : r0, acc[i]);
      }
    }
    if constexpr (!EARLY) release(g);
  }
  const int ncol0 = nt * kPipeBN + c0;
#pragma unroll
  for (int j = 0; j < 16; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const __nv_bfloat162 v = __floats2bfloat162_rn(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
      *reinterpret_cast<__nv_bfloat162*>(p.y + static_cast<size_t>(m0 + 8 * h) * p.N + ncol0 + 8 * j) = v;
    }
}

__global__ void fill_bytes(uint8_t* d, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    d[i] = static_cast<uint8_t>(static_cast<int>(hash(seed ^ static_cast<uint32_t>(i) ^ static_cast<uint32_t>(i >> 32)) % 193) - 96);
}
__global__ void fill_bf16(__nv_bfloat16* d, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    d[i] = __float2bfloat16(static_cast<float>(static_cast<int>(hash(seed ^ static_cast<uint32_t>(i)) % 2001) - 1000) * 1e-3f);
}
__global__ void fill_factors(float* d, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    d[i] = __uint_as_float((118u + hash(seed + static_cast<uint32_t>(i)) % 8u) << 23);
}


// int8-g8 with data movement against cuBLAS BF16 on one (M, N, K).
template <bool EARLY>
float time_pipe(const PipeArgs& p) {
  CK(cudaFuncSetAttribute(int8_g8_pipe<EARLY>, cudaFuncAttributeMaxDynamicSharedMemorySize, kPipeSmem));
  const dim3 grid(p.N / kPipeBN, p.M / kPipeBM);
  const float ms = median_ms([&] { int8_g8_pipe<EARLY><<<grid, 384, kPipeSmem>>>(p); });
  CK(cudaGetLastError());
  return ms;
}

void run_pipe(const char* name, int M, int N, int K, cublasHandle_t h) {
  const size_t a_bytes = static_cast<size_t>(M) * K, b_bytes = static_cast<size_t>(N) * K;
  uint8_t *a, *b;
  float *ra, *cb;
  __nv_bfloat16 *y, *a16, *b16;
  CK(cudaMalloc(&a, a_bytes));
  CK(cudaMalloc(&b, b_bytes));
  CK(cudaMalloc(&ra, static_cast<size_t>(M) * (K / 256) * 4));  // (M / 192, K / 256, 192)
  CK(cudaMalloc(&cb, static_cast<size_t>(N) * (K / 256) * 4));  // (N / 128, K / 256, 128)
  CK(cudaMalloc(&y, static_cast<size_t>(M) * N * 2));
  CK(cudaMalloc(&a16, a_bytes * 2));
  CK(cudaMalloc(&b16, b_bytes * 2));
  fill_bytes<<<1024, 256>>>(a, a_bytes, 1);
  fill_bytes<<<1024, 256>>>(b, b_bytes, 2);
  fill_factors<<<256, 256>>>(ra, static_cast<size_t>(M) * (K / 256), 3);
  fill_factors<<<256, 256>>>(cb, static_cast<size_t>(N) * (K / 256), 4);
  fill_bf16<<<1024, 256>>>(a16, a_bytes, 5);
  fill_bf16<<<1024, 256>>>(b16, b_bytes, 6);
  CK(cudaGetLastError());
  const PipeArgs p{a, b, ra, cb, y, M, N, K};
  const float t8 = time_pipe<false>(p), t8p = time_pipe<true>(p);
  const float one = 1.0f, zero = 0.0f;
  const float t16 = median_ms([&] {
    // y (M x N row-major) = a16 (M x K) . b16 (N x K)^T, i.e. in cuBLAS's column-major view y^T = b16 . a16^T.
    CKB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, b16, CUDA_R_16BF, K, a16, CUDA_R_16BF, K, &zero, y, CUDA_R_16BF,
                     N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  });
  const double flop = 2.0 * M * N * static_cast<double>(K);
  std::printf("| %s | %d | %d | %d | %.1f | %.0f | %.1f | %.0f | %.2f | %.1f | %.0f | %.2f |\n", name, M, N, K, t16 * 1e3,
              flop / (t16 * 1e-3) * 1e-12, t8 * 1e3, flop / (t8 * 1e-3) * 1e-12, t16 / t8, t8p * 1e3, flop / (t8p * 1e-3) * 1e-12,
              t16 / t8p);
  for (void* q : {static_cast<void*>(a), static_cast<void*>(b), static_cast<void*>(ra), static_cast<void*>(cb),
                  static_cast<void*>(y), static_cast<void*>(a16), static_cast<void*>(b16)})
    CK(cudaFree(q));
}

}  // namespace

int main(int argc, char** argv) {
  int nkb = 4096;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--blocks") && i + 1 < argc) nkb = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_tc_ceiling [--blocks N]  (N: 32-K blocks per CTA, a multiple of 8)\n");
      return 2;
    }
  }
  if (nkb <= 0 || nkb % 8) {
    std::fprintf(stderr, "bench_tc_ceiling: --blocks must be a positive multiple of 8\n");
    return 2;
  }
  int dev_count = 0;
  if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
    std::printf("bench_tc_ceiling: no CUDA device, nothing measured\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major != 9) {
    std::printf("bench_tc_ceiling: needs sm_90 (found %s, sm_%d%d)\n", prop.name, prop.major, prop.minor);
    return 0;
  }
  const int sms = prop.multiProcessorCount;
  float* out = nullptr;
  CK(cudaMalloc(&out, static_cast<size_t>(sms) * 384 * sizeof(float)));
  std::printf("device: %s, %d SMs; one CTA per SM, %d blocks of 32 K per CTA\n", prop.name, sms, nkb);
  std::printf("| route | CTA tile | TF/s (median of 15) | x bf16 ceiling | spread (min..max ms) |\n|---|---|---:|---:|---|\n");
  std::vector<float> t;
  double bf16 = 0;
  auto report = [&](int mode, double tf) {
    if (mode == kBf16) bf16 = tf;
    std::printf("| %s | %dx%d | %.0f | %.2f | %.3f..%.3f |\n", kModeNames[mode], 64 * warpgroups(mode), tile_n(mode), tf, tf / bf16,
                t.front(), t.back());
  };
  report(kBf16, run_mode<kBf16>(nkb, sms, out, t));
  report(kFp8Raw, run_mode<kFp8Raw>(nkb, sms, out, t));
  report(kFp8Blk, run_mode<kFp8Blk>(nkb, sms, out, t));
  report(kInt8Raw, run_mode<kInt8Raw>(nkb, sms, out, t));
  report(kInt8G4, run_mode<kInt8G4>(nkb, sms, out, t));
  report(kInt8G8, run_mode<kInt8G8>(nkb, sms, out, t));
  report(kInt8G8Skew, run_mode<kInt8G8Skew>(nkb, sms, out, t));
  CK(cudaFree(out));

  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "bench_tc_ceiling: cublasCreate failed\n");
    return 1;
  }
  std::printf("\nint8-g8 with data movement (M = 43 x 192; no correctness, no fallback) vs cuBLAS BF16, same process\n");
  std::printf("| layer | M | N | K | cuBLAS BF16 us | TF/s | int8-g8 pipe us | TF/s | x bf16 | stages released before the promotion us | TF/s | x bf16 |\n"
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  run_pipe("qkv", 8256, 6144, 4096, h);
  run_pipe("o", 8256, 4096, 4096, h);
  run_pipe("gate_up", 8256, 28672, 4096, h);
  run_pipe("down", 8256, 4096, 14336, h);
  run_pipe("gate_up M=2112", 2112, 28672, 4096, h);
  cublasDestroy(h);
  return 0;
}
