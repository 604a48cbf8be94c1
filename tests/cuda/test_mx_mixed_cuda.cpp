// GPU mixed MX ops against the CPU: reorder + quantize bit for bit (every numbered kernel), and
// every GEMM kernel (the numbered mma.sync versions and every decode-path version) against a
// double-precision product of the dequantized operands. Skipped (with the reason) without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "cuda/mx_kernel_versions.hpp"
#include "formats/test_mx_mixed_util.hpp"
#include "micromix/bf16.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_mixed_matmul.hpp"

using namespace mxmixed_test;
namespace cuda = micromix::cuda;
using micromix::bf16_to_float;
using micromix::float_to_bf16;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::available()) GTEST_SKIP() << "GPU test skipped: " << cuda::describe()

// Under compute-sanitizer (MICROMIX_TEST_SANITIZER set by scripts/device_env.sh) the largest grids, which
// only change how many CTAs run the same code, are left out: they take minutes there.
static bool under_sanitizer() { return std::getenv("MICROMIX_TEST_SANITIZER") != nullptr; }

namespace {

// Selects a reorder+quantize kernel for the scope (process-wide hook), back to the default after.
// The hook exists only in CUDA builds (the tests using it skip elsewhere).
void select_quantize_version([[maybe_unused]] int v) {
#if MICROMIX_HAVE_CUDA
  cuda::set_reorder_quantize_version(v);
#endif
}
struct QuantizeVersion {
  explicit QuantizeVersion(int v) { select_quantize_version(v); }
  ~QuantizeVersion() { select_quantize_version(0); }
  QuantizeVersion(const QuantizeVersion&) = delete;
  QuantizeVersion& operator=(const QuantizeVersion&) = delete;
};
constexpr int kQuantizeVersions[] = {1, 3, 4, 5, 6, 7, 8, 9, 11, 12};

std::string version_name(const char* prefix, int v) {
  std::string s = prefix;  // (operator+ on a temporary trips GCC 12's -Wrestrict)
  s += std::to_string(v);
  return s;
}

// Decode-path kernels as mx_mixed_gemm_host numbers: -1 the default, -1 - v version v.
std::vector<int> decode_kernels() {
  std::vector<int> k = {-1};
  for (int v = 1; v <= cuda::mx_mixed_gemv_versions(); ++v) k.push_back(-1 - v);
  k.push_back(cuda::kGemvPreparedKernel);     // the prepared decode default
  k.push_back(cuda::kGemvPreparedV10Kernel);  // f16 MMAs on prepared weights
  k.push_back(cuda::kGemvPreparedV11Kernel);  // FP4 blocks on int8 MMAs
  k.push_back(cuda::kGemvPreparedV12Kernel);  // v11 launched after its pre-pass programmatically
  k.push_back(cuda::kGemvPreparedV13Kernel);  // row groups per CTA, FP4 on bf16 MMAs with folded scales
  k.push_back(cuda::kGemvPreparedV14Kernel);  // v13 with the compact one-token pre-pass at M = 1
  k.push_back(cuda::kGemvPreparedV17Kernel);  // v14 with warps per row group chosen by the grid at M = 1
  k.push_back(cuda::kGemvPreparedV19Kernel);  // v17 with M = 2..4 tokens decoded by each CTA on one-wave grids
  k.push_back(cuda::kGemvPreparedV20Kernel);  // v19 with the two-tile GEMV's warps and batch by grid (M = 9..16)
  k.push_back(cuda::kGemvPreparedV21Kernel);  // v20 launched as a programmatic dependent of the previous kernel
  return k;
}

// Compares the GPU quantizer (current version) with mx::quantize_mixed on bf16 input xh.
void expect_quantize_matches(const std::vector<uint16_t>& xh, int64_t M, int64_t K, const MixedSplit& s,
                             ScaleRule rule, Rounding rnd, const std::string& what) {
  const auto perm = random_permutation(K);
  std::vector<float> xf(xh.size());
  for (size_t i = 0; i < xh.size(); ++i) xf[i] = bf16_to_float(xh[i]);
  const auto cpu = quantize_mixed(xf, M, K, perm, s, rule, rnd);
  const auto gpu = cuda::mx_reorder_quantize_host(xh, M, K, perm, s, rule, rnd);
  for (int seg = 0; seg < kSegments; ++seg) {
    ASSERT_EQ(gpu.seg[seg].codes, cpu.seg[seg].codes)
        << what << ": codes of segment " << seg << " M=" << M << " K=" << K << " split " << s.n4 << "/" << s.n6 << "/"
        << s.n8 << (s.fp6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2") << (rule == ScaleRule::ceil ? " ceil" : " ocp")
        << (rnd == Rounding::away ? " away" : " even");
    ASSERT_EQ(gpu.seg[seg].scales, cpu.seg[seg].scales) << what << ": scales of segment " << seg << " M=" << M << " K=" << K;
  }
}

// bf16 activations with outliers, plus (when `special`) whole blocks of zeros, a NaN, an Inf and
// bf16 subnormals somewhere in the row.
std::vector<uint16_t> bf16_activations(int64_t M, int64_t K, bool special) {
  const auto x = llm_like(M, K);
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = float_to_bf16(x[i]);
  if (special && K >= 128) {
    std::uniform_int_distribution<int64_t> col(0, K - 1);
    for (int64_t i = 0; i < M; ++i) {
      uint16_t* r = h.data() + i * K;
      switch (i % 4) {
        case 0: r[col(rng())] = 0x7FC0; break;  // NaN
        case 1: r[col(rng())] = 0xFF80; break;  // -Inf
        case 2: for (int j = 0; j < 8; ++j) r[col(rng())] = static_cast<uint16_t>(1 + rng()() % 0x7F); break;  // subnormals
        default: for (int64_t j = 0; j < K; ++j) r[j] = j < K / 2 ? 0x8000 : r[j]; break;  // -0 / 0 half row
      }
    }
  }
  return h;
}

struct GemmCase {
  int64_t M, N, K;
  MixedSplit split;
};

GemmCase random_case(int64_t max_m) {
  GemmCase c;
  c.M = std::uniform_int_distribution<int64_t>(1, max_m)(rng());
  c.N = 16 * std::uniform_int_distribution<int64_t>(1, 24)(rng());
  c.K = 32 * std::uniform_int_distribution<int64_t>(1, 48)(rng());
  c.split = random_split(c.K);
  return c;
}

// Runs kernel on a case; checks the f32 output against the double product (relative Frobenius
// <= 1e-5: products are exact, FP32 sums differ from any order by ~sqrt(K) 2^-24) and the bf16
// output elementwise (round to nearest of a value within that error: |y - ref| <= 2^-8 |ref| +
// 1e-5 max|ref|).
void check_gemm(const GemmCase& c, int kernel) {
  const auto perm = random_permutation(c.K);
  const auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
  const auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
  const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
  const std::string what = "kernel " + std::to_string(kernel) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
                           " K=" + std::to_string(c.K) + " split " + std::to_string(c.split.n4) + "/" +
                           std::to_string(c.split.n6) + "/" + std::to_string(c.split.n8) +
                           (c.split.fp6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2");
  const auto y32 = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
  const double err = rel_frobenius(y32, ref);
  EXPECT_LE(err, 1e-5) << what;
  const auto y16 = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::bf16, kernel);
  double amax = 0;
  for (double v : ref) amax = std::max(amax, std::fabs(v));
  int bad = 0;
  for (size_t i = 0; i < ref.size() && bad < 5; ++i)
    if (!(std::fabs(y16[i] - ref[i]) <= std::ldexp(std::fabs(ref[i]), -8) + 1e-5 * amax)) {
      ++bad;
      ADD_FAILURE() << what << ": bf16 output " << i << " = " << y16[i] << ", reference " << ref[i];
    }
}

}  // namespace

TEST(CudaMxReorderQuantize, BitIdenticalToCpuQuantizer) {
  SKIP_WITHOUT_GPU();
  for (int version : kQuantizeVersions) {
    const QuantizeVersion use(version);
    for (int trial = 0; trial < 24; ++trial) {
      const int64_t M = trial < 4 ? 1 + trial : std::uniform_int_distribution<int64_t>(1, 70)(rng());
      const int64_t K = trial == 5 ? 14336 : trial == 6 ? 16384 + 32 : 32 * std::uniform_int_distribution<int64_t>(1, 160)(rng());
      const auto rule = trial % 2 ? ScaleRule::ceil : ScaleRule::ocp;
      const auto rnd = trial % 3 == 2 ? Rounding::away : Rounding::even;
      expect_quantize_matches(bf16_activations(M, K, trial % 2 == 0), M, K, random_split(K), rule, rnd,
                              version_name("v", version));
    }
  }
}

// v12 at small M: each row group's K split over CTAs of MICROMIX_QUANTIZE_SPLIT units (8 columns), a
// last CTA with fewer units (K = 32 x 37, 32 x 449), a single one (K = 64), R = 4 and R = 2 row groups
// (K <= 8192 and above), partial row groups; a value the knob does not offer is refused.
TEST(CudaMxReorderQuantize, SplitKBitIdentical) {
  SKIP_WITHOUT_GPU();
  struct Unset {
    ~Unset() { unsetenv("MICROMIX_QUANTIZE_SPLIT"); }
  } unset;
  const QuantizeVersion use(12);
  int trial = 0;
  for (const char* split : {"64", "128", "256", "512", "0"}) {
    ASSERT_EQ(setenv("MICROMIX_QUANTIZE_SPLIT", split, 1), 0);
    for (int64_t M : {1, 3, 8, 16})
      for (int64_t K : {int64_t{64}, int64_t{32 * 37}, int64_t{4096}, int64_t{32 * 449}}) {
        ++trial;
        expect_quantize_matches(bf16_activations(M, K, trial % 2 == 0), M, K, random_split(K),
                                trial % 3 ? ScaleRule::ocp : ScaleRule::ceil, Rounding::even,
                                std::string("v12 MICROMIX_QUANTIZE_SPLIT=") + split);
        if (HasFatalFailure()) return;
      }
  }
  ASSERT_EQ(setenv("MICROMIX_QUANTIZE_SPLIT", "32", 1), 0);
  EXPECT_THROW(expect_quantize_matches(bf16_activations(1, 64, false), 1, 64, random_split(64), ScaleRule::ocp,
                                       Rounding::even, "refused"),
               std::exception);
}

// More rows than one wave of CTAs holds (the grid walks several waves; M = 4 k + 1 leaves a partial
// last row group), odd segment sizes.
TEST(CudaMxReorderQuantize, ManyRowsBitIdentical) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 6001, K = 32 * 23;
  for (int version : kQuantizeVersions) {
    const QuantizeVersion use(version);
    expect_quantize_matches(bf16_activations(M, K, true), M, K, MixedSplit{32 * 13, 32 * 7, 32 * 3}, ScaleRule::ocp,
                            Rounding::even, version_name("v", version));
  }
}

// Every element of the encoders' domain that matters: blocks whose max sits anywhere from bf16
// subnormals to 2^127, other elements down to 2^-24 below the max with every mantissa, exact
// ties of every format (small integers and halves times powers of two), signs, zeros.
TEST(CudaMxReorderQuantize, WideRangeBlocksAndTiesBitIdentical) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 61, K = 32 * 96;
  for (int version : kQuantizeVersions) {
    const QuantizeVersion use(version);
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<uint16_t> xh(static_cast<size_t>(M * K));
      std::uniform_int_distribution<int> top(1, 254), below(0, 24), mant(0, 127), pick(0, 9);
      for (int64_t b = 0; b < M * K / 32; ++b) {
        const int e = top(rng());  // biased exponent of the block's largest element
        for (int i = 0; i < 32; ++i) {
          uint16_t h;
          const int kind = pick(rng());
          if (kind == 0) {
            h = 0;
          } else if (kind <= 2) {  // a tie or grid value: (2k + 1) / 2^j times the block's binade
            const int j = std::uniform_int_distribution<int>(1, 4)(rng());
            const float v = std::ldexp(static_cast<float>(2 * std::uniform_int_distribution<int>(0, 7)(rng()) + 1), e - 127 - j - 3);
            h = micromix::float_to_bf16(v);
          } else {
            const int ee = std::max(0, e - below(rng()));
            h = static_cast<uint16_t>((ee << 7) | mant(rng()));
          }
          if (rng()() & 1) h |= 0x8000;
          xh[static_cast<size_t>(b * 32 + i)] = h;
        }
      }
      const auto rule = trial % 2 ? ScaleRule::ceil : ScaleRule::ocp;
      const auto rnd = trial % 4 >= 2 ? Rounding::away : Rounding::even;
      expect_quantize_matches(xh, M, K, random_split(K), rule, rnd, version_name("wide range v", version));
    }
  }
}

// The top of every block's binade: rows whose values all have mantissas in [1.875, 2) (a few one or
// two binades lower), so that under the OCP rule every block's largest scaled values fall between
// the format's max_normal and 2^(emax + 1) (the saturation zone of E2M1, E2M3, E3M2 and E4M3: v11's
// FP6 path saturates by integer arithmetic there), including the exact ties above max_normal
// (mantissa 1.9375, e.g. E2M3's 7.75). Both FP6 formats, both scale rules and roundings, every version.
TEST(CudaMxReorderQuantize, SaturationZoneBitIdentical) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 37, K = 32 * 30;
  std::vector<uint16_t> xh(static_cast<size_t>(M * K));
  std::uniform_int_distribution<int> ex(100, 150), mant(112, 127), lower(0, 9), pick(0, 7);
  for (int64_t r = 0; r < M; ++r) {
    const int e = ex(rng());  // one binade per row: every block's max is near its top
    for (int64_t j = 0; j < K; ++j) {
      const int kind = pick(rng());
      const int ee = kind == 0 ? e - 1 - lower(rng()) % 2 : e;
      const int m = kind == 1 ? 120 : kind == 0 ? lower(rng()) * 12 : mant(rng());  // 120: mantissa 1.9375
      uint16_t h = static_cast<uint16_t>((ee << 7) | m);
      if (rng()() & 1) h |= 0x8000;
      xh[static_cast<size_t>(r * K + j)] = h;
    }
  }
  for (int version : kQuantizeVersions) {
    const QuantizeVersion use(version);
    for (int trial = 0; trial < 8; ++trial) {
      MixedSplit s{32 * 10, 32 * 10, 32 * 10};
      s.fp6 = trial % 2 ? ElemFormat::fp6_e3m2 : ElemFormat::fp6_e2m3;
      const auto rule = trial % 4 >= 2 ? ScaleRule::ceil : ScaleRule::ocp;
      const auto rnd = trial >= 4 ? Rounding::away : Rounding::even;
      expect_quantize_matches(xh, M, K, s, rule, rnd, version_name("saturation zone v", version));
    }
  }
}

TEST(CudaMxReorderQuantize, LargeKFallsBackToV1) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 3, K = 53248;  // over v3's shared-memory limit (51200)
  expect_quantize_matches(bf16_activations(M, K, true), M, K, random_split(K), ScaleRule::ocp, Rounding::even, "K=53248");
}

TEST(CudaMxReorderQuantize, RejectsUnknownVersion) {
#if MICROMIX_HAVE_CUDA
  EXPECT_THROW(cuda::set_reorder_quantize_version(2), micromix::Error);
  EXPECT_THROW(cuda::set_reorder_quantize_version(10), micromix::Error);  // a removed variant's number
  EXPECT_THROW(cuda::set_reorder_quantize_version(cuda::reorder_quantize_versions() + 1), micromix::Error);
#else
  GTEST_SKIP() << "GPU test skipped: micromix was built without CUDA";
#endif
}

// Every decode version on every M of the decode range, random N, K and splits (empty segments
// included), f32 and bf16 outputs (poisoned before each run by mx_mixed_gemm_host).
TEST(CudaMxMixedGemv, EveryDecodeVersionEveryM) {
  SKIP_WITHOUT_GPU();
  for (int kernel : decode_kernels())
    for (int64_t M = 1; M <= 16; ++M) {
      GemmCase c = random_case(1);
      c.M = M;
      check_gemm(c, kernel);
    }
}

TEST(CudaMxMixedGemv, OddSegmentMixes) {
  SKIP_WITHOUT_GPU();
  // One block per segment, one segment only, lopsided mixes, a K that leaves some warps of a
  // split-K CTA without blocks.
  const std::vector<GemmCase> cases = {
      {1, 16, 96, MixedSplit{32, 32, 32}},
      {3, 32, 32, MixedSplit{0, 0, 32}},
      {9, 48, 64, MixedSplit{0, 64, 0, ElemFormat::fp6_e2m3}},
      {16, 16, 160, MixedSplit{128, 0, 32}},
      {2, 4096, 4096, MixedSplit{2880, 832, 384}},
      {13, 64, 32 * 37, MixedSplit{32 * 35, 32, 32, ElemFormat::fp6_e2m3}},
      {5, 80, 32 * 41, MixedSplit{32, 32 * 39, 32}},
      // above 16 rows (v13's rows kernel: one or two 32-token chunks, then a second launch)
      {17, 16, 96, MixedSplit{32, 32, 32}},
      {33, 48, 32, MixedSplit{0, 0, 32}},
      {64, 32, 64, MixedSplit{0, 64, 0, ElemFormat::fp6_e2m3}},
      {45, 144, 32 * 37, MixedSplit{32 * 35, 32, 32}},
      {71, 64, 32 * 9, MixedSplit{32 * 3, 32 * 5, 32}},
  };
  for (const auto& c : cases)
    for (int kernel : decode_kernels()) check_gemm(c, kernel);
}

TEST(CudaMxMixedGemm, EveryVersionMatchesTheDoubleProduct) {
  SKIP_WITHOUT_GPU();
  for (int v = 1; v <= cuda::mx_mixed_gemm_versions(); ++v)
    for (int trial = 0; trial < 8; ++trial) check_gemm(random_case(trial < 4 ? 300 : 20), v);
}

TEST(CudaMxMixedGemm, DefaultDispatchAndDecodePathMatchTheDoubleProduct) {
  SKIP_WITHOUT_GPU();
  for (int kernel : decode_kernels())
    for (int trial = 0; trial < 8; ++trial) check_gemm(random_case(trial < 5 ? 16 : 40), kernel);
  for (int trial = 0; trial < 6; ++trial) check_gemm(random_case(trial < 3 ? 16 : 600), 0);
  for (int trial = 0; trial < 6; ++trial) check_gemm(random_case(trial < 2 ? 16 : 600), cuda::kGemmPreparedKernel);
}

TEST(CudaMxMixedGemm, SingleSegmentsOddShapesAndLargeK) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 4096;
  for (int only = 0; only < 3; ++only) {
    GemmCase c{only == 0 ? 1 : only == 1 ? 7 : 129, 48, K, MixedSplit{only == 0 ? K : 0, only == 1 ? K : 0, only == 2 ? K : 0}};
    for (int kernel : {-2, -3, -4, -5, 1, 2, 3, 4, 5}) check_gemm(c, kernel);
  }
  // Llama down-projection K with the 70/20/10 mix.
  const GemmCase down{5, 64, 14336, MixedSplit{10016, 2880, 1440}};
  for (int kernel : {-2, -3, -4, -5, 0}) check_gemm(down, kernel);
}

TEST(CudaMxMixedGemm, EmptyKWritesZeros) {
  SKIP_WITHOUT_GPU();
  const auto xq = quantize_mixed({}, 3, 0, {}, MixedSplit{});
  const auto wq = quantize_mixed({}, 16, 0, {}, MixedSplit{});
  for (int kernel : {-2, -3, -4, -5, 0, 1, 2, 3, 4, 5}) {
    const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
    for (float v : y) ASSERT_EQ(v, 0.0f) << "kernel " << kernel;
  }
  for (int64_t M : {1, 3, 40}) {  // the prepared decode path (M = 1: the fused kernel), v13's rows kernel included
    const auto xm = quantize_mixed({}, M, 0, {}, MixedSplit{});
    for (int kernel : {cuda::kGemvPreparedKernel, cuda::kGemvPreparedV12Kernel, cuda::kGemvPreparedV13Kernel,
                       cuda::kGemmPreparedKernel}) {
      const auto y = cuda::mx_mixed_gemm_host(xm, wq, cuda::OutType::f32, kernel);
      ASSERT_EQ(y.size(), static_cast<size_t>(M * 16));
      for (float v : y) ASSERT_EQ(v, 0.0f) << "kernel " << kernel << " M=" << M;
    }
  }
}

TEST(CudaMxMixedGemm, NaNScalesPropagate) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 96;
  const auto perm = random_permutation(K);
  auto x = llm_like(2, K);
  x[5] = std::numeric_limits<float>::quiet_NaN();  // row 0 gets a NaN-scaled block
  const auto xq = quantize_mixed(x, 2, K, perm, MixedSplit{32, 32, 32});
  const auto wq = quantize_mixed(llm_like(16, K), 16, K, perm, MixedSplit{32, 32, 32});
  for (int kernel : {-2, -3, -4, -5, 1, 3, 5}) {
    const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
    for (int n = 0; n < 16; ++n) {
      EXPECT_TRUE(std::isnan(y[static_cast<size_t>(n)])) << "kernel " << kernel << " col " << n;
      EXPECT_TRUE(std::isfinite(y[static_cast<size_t>(16 + n)])) << "kernel " << kernel << " col " << n;
    }
  }
}

// Every segment's codes replaced by random bytes (every FP4 / FP6 / FP8 code, -0 included; E4M3's
// NaN codes become 448) and its scales by random codes 118..136 (2^-9 .. 2^9).
static void randomize_raw_codes(micromix::mx::MxMixedMatrix& m) {
  std::uniform_int_distribution<int> byte(0, 255), sc(118, 136);
  for (int seg = 0; seg < kSegments; ++seg) {
    for (auto& b : m.seg[seg].codes) {
      b = static_cast<uint8_t>(byte(rng()));
      if (seg == 2 && (b & 0x7F) == 0x7F) b ^= 1;
    }
    for (auto& b : m.seg[seg].scales) b = static_cast<uint8_t>(sc(rng()));
  }
}

// The wgmma-era versions (6..: FP8 tensor cores, then BF16 with folded scales): single segments with
// large K (every FP4/FP6/FP8 code through the conversions), odd M and N not a multiple of the tile,
// all three segments.
std::vector<int> fp8_gemm_versions() {
  std::vector<int> v;
  for (int k = 6; k <= cuda::mx_mixed_gemm_versions(); ++k) v.push_back(k);
  v.push_back(cuda::kGemmPreparedKernel);     // v15 on prepared weights (and the decode path for M <= 16)
  v.push_back(cuda::kGemmPreparedV18Kernel);  // v18 (dequantize + cuBLAS) on prepared weights
  return v;
}

TEST(CudaMxMixedGemmFp8, SingleSegmentsLargeKOddShapes) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 4096;
  const std::vector<GemmCase> cases = {
      {129, 144, K, MixedSplit{K, 0, 0}},
      {77, 48, K, MixedSplit{0, K, 0}},
      {33, 272, K, MixedSplit{0, K, 0, ElemFormat::fp6_e2m3}},
      {131, 16, K, MixedSplit{0, 0, K}},
      {17, 400, 14336, MixedSplit{10016, 2880, 1440}},
      {300, 256, 32 * 37, MixedSplit{32 * 35, 32, 32, ElemFormat::fp6_e2m3}},
      {1, 16, 96, MixedSplit{32, 32, 32}},
  };
  for (int v : fp8_gemm_versions())
    for (const auto& c : cases) check_gemm(c, v);
}

// Raw random codes in every segment (every FP4 / FP6 / FP8 code, -0 included, E4M3 NaN codes
// excluded) with scales 2^-9 .. 2^9: each version's converters, v18's dequantizer in both weight
// layouts included, against the double-precision reference.
TEST(CudaMxMixedGemmFp8, RawRandomCodes) {
  SKIP_WITHOUT_GPU();
  for (int v : fp8_gemm_versions())
    for (ElemFormat f6 : {ElemFormat::fp6_e2m3, ElemFormat::fp6_e3m2}) {
      const GemmCase c{45, 208, 32 * 14, MixedSplit{32 * 6, 32 * 5, 32 * 3, f6}};
      const auto perm = random_permutation(c.K);
      auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
      auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
      randomize_raw_codes(xq);
      randomize_raw_codes(wq);
      const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
      const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, v);
      EXPECT_LE(rel_frobenius(y, ref), 1e-5) << "version " << v << (f6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2");
      // The scratch pool handed back to the driver: the next call allocates afresh, same result.
      cuda::mx_release_scratch();
      EXPECT_EQ(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, v), y) << "version " << v << " after release";
    }
}

// Scales far from 1 (codes 0..120 on one operand, 134..234 on the other, per block at random) keep
// every product inside float range; the per-block promotion (v6-v9) must apply each block's own pair
// of scales, and the folded-scale versions (v10..) meet values below 2^-126 (scale codes < 10) and
// must take their exact fallback.
TEST(CudaMxMixedGemmFp8, ExtremeScalesPerBlock) {
  SKIP_WITHOUT_GPU();
  for (int v : fp8_gemm_versions())
    for (int trial = 0; trial < 4; ++trial) {
      const GemmCase c{trial == 0 ? 5 : trial == 3 ? 300 : 150, 160, 32 * 24, MixedSplit{32 * 8, 32 * 8, 32 * 8, trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2}};
      const auto perm = random_permutation(c.K);
      auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
      auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
      std::uniform_int_distribution<int> lo(0, 120), hi(134, 234);
      const bool x_low = trial < 2;
      for (int s = 0; s < kSegments; ++s) {
        for (auto& b : xq.seg[s].scales) b = static_cast<uint8_t>(x_low ? lo(rng()) : hi(rng()));
        for (auto& b : wq.seg[s].scales) b = static_cast<uint8_t>(x_low ? hi(rng()) : lo(rng()));
      }
      const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
      const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, v);
      EXPECT_LE(rel_frobenius(y, ref), 1e-5) << "version " << v << " trial " << trial;
    }
}

// A NaN scale (0xFF) in one block of one activation row makes that output row NaN and no other;
// the same for a weight row and its output column.
TEST(CudaMxMixedGemmFp8, NaNScalesPoisonTheirRowAndColumn) {
  SKIP_WITHOUT_GPU();
  const GemmCase c{200, 144, 32 * 12, MixedSplit{32 * 4, 32 * 4, 32 * 4}};
  const auto perm = random_permutation(c.K);
  for (int v : fp8_gemm_versions())
    for (int seg = 0; seg < kSegments; ++seg) {
      auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
      auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
      const int64_t bad_m = 131, bad_n = 77;
      xq.seg[seg].scales[static_cast<size_t>(bad_m * 4 + 3)] = 0xFF;
      wq.seg[seg].scales[static_cast<size_t>(bad_n * 4 + 1)] = 0xFF;
      const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, v);
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
          const float got = y[static_cast<size_t>(m * c.N + n)];
          if (m == bad_m || n == bad_n) ASSERT_TRUE(std::isnan(got)) << "version " << v << " seg " << seg << " " << m << "," << n;
          else ASSERT_TRUE(std::isfinite(got)) << "version " << v << " seg " << seg << " " << m << "," << n;
        }
    }
}

namespace {

// One kernel on case c: random raw codes in every segment (every FP4 code pair, -0 included), scales
// 2^-9 .. 2^9; per-block scale codes 0..120 against 134..234 both ways; a NaN scale per segment,
// which must poison exactly its row / column.
void check_raw_extreme_and_nan(const GemmCase& c, int kernel) {
  const int64_t M = c.M;
  const auto perm = random_permutation(c.K);
  const std::string what = "kernel " + std::to_string(kernel) + " M=" + std::to_string(M) + " K=" + std::to_string(c.K) +
                           (c.split.fp6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2");
  {  // raw random codes in every segment, scales 2^-9 .. 2^9
    auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
    auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
    randomize_raw_codes(xq);
    randomize_raw_codes(wq);
    const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
    EXPECT_LE(rel_frobenius(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel), ref), 1e-5) << what << " raw codes";
  }
  for (int trial = 0; trial < 2; ++trial) {  // codes 0..120 against 134..234
    auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
    auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
    std::uniform_int_distribution<int> lo(0, 120), hi(134, 234);
    for (int seg = 0; seg < kSegments; ++seg) {
      for (auto& b : xq.seg[seg].scales) b = static_cast<uint8_t>(trial ? lo(rng()) : hi(rng()));
      for (auto& b : wq.seg[seg].scales) b = static_cast<uint8_t>(trial ? hi(rng()) : lo(rng()));
    }
    const auto ref = matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K);
    EXPECT_LE(rel_frobenius(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel), ref), 1e-5)
        << what << " extreme scales trial " << trial;
  }
  for (int seg = 0; seg < kSegments; ++seg) {  // a NaN scale poisons its row / column only
    auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
    auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
    const int64_t bad_m = M - 1, bad_n = std::min<int64_t>(29, c.N - 1), nb = c.split.count(seg) / 32;
    if (nb == 0) continue;
    if (M > 1) xq.seg[seg].scales[static_cast<size_t>(bad_m * nb + nb - 1)] = 0xFF;
    wq.seg[seg].scales[static_cast<size_t>(bad_n * nb)] = 0xFF;
    const auto y = cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel);
    for (int64_t m = 0; m < c.M; ++m)
      for (int64_t n = 0; n < c.N; ++n) {
        const float got = y[static_cast<size_t>(m * c.N + n)];
        if ((M > 1 && m == bad_m) || n == bad_n) ASSERT_TRUE(std::isnan(got)) << what << " seg " << seg << " " << m << "," << n;
        else ASSERT_TRUE(std::isfinite(got)) << what << " seg " << seg << " " << m << "," << n;
      }
  }
}

}  // namespace

// The prepared decode versions at M = 1 (v11 skips the odd tokens' promotion there), M = 9 (two
// token tiles), 33 and 70 (v13's rows kernel): extreme per-block scales and NaN scales in an
// FP4-heavy split, where v11's integer path carries most of K, plus random raw codes; both FP6 formats.
TEST(CudaMxMixedGemv, PreparedVersionsExtremeAndNaNScales) {
  SKIP_WITHOUT_GPU();
  for (int kernel : {cuda::kGemvPreparedV10Kernel, cuda::kGemvPreparedV11Kernel, cuda::kGemvPreparedV12Kernel,
                     cuda::kGemvPreparedV13Kernel, cuda::kGemvPreparedV14Kernel, cuda::kGemvPreparedV17Kernel,
                     cuda::kGemvPreparedV19Kernel, cuda::kGemvPreparedV20Kernel, cuda::kGemvPreparedV21Kernel,
                     cuda::kGemvPreparedV22Kernel})
    for (int64_t M : {1, 9, 33, 70})
      for (ElemFormat f6 : {ElemFormat::fp6_e2m3, ElemFormat::fp6_e3m2})
        check_raw_extreme_and_nan(GemmCase{M, 48, 32 * 20, MixedSplit{32 * 16, 32 * 2, 32 * 2, f6}}, kernel);
}

namespace {

// An environment override for one test: set to `value` ("" unsets it) until the next set or the end.
struct ScopedEnv {
  const char* name;
  explicit ScopedEnv(const char* n) : name(n) {}
  ~ScopedEnv() { unsetenv(name); }
  void set(const char* value) const {
    if (*value) ASSERT_EQ(setenv(name, value, 1), 0);
    else unsetenv(name);
  }
};

// M rows against 16 * groups weight rows, K up to max_blocks MX blocks, a random split with empty
// segments, the FP6 format alternating with `trial`.
GemmCase random_decode_case(int64_t M, int64_t groups, int64_t max_blocks, int trial) {
  GemmCase c;
  c.M = M;
  c.N = 16 * groups;
  c.K = 32 * std::uniform_int_distribution<int64_t>(1, max_blocks)(rng());
  c.split = random_split(c.K);
  c.split.fp6 = trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2;
  return c;
}

// With env set to a value it does not offer, `kernel` refuses to run (an error, not a guess).
void expect_refused(const ScopedEnv& env, const char* value, int64_t M, int kernel) {
  env.set(value);
  const GemmCase c{M, 32, 32 * 6, MixedSplit{32 * 4, 32, 32}};
  const auto perm = random_permutation(c.K);
  EXPECT_THROW(cuda::mx_mixed_gemm_host(quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split),
                                        quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split), cuda::OutType::f32, kernel),
               std::exception)
      << env.name << "=" << value;
}

}  // namespace

// v14 - v19 run the rows kernel (2 token tiles) from 9 rows up where N is large enough for 8 row groups
// per CTA (N = 25,600 on a 132-SM GPU), v20 the token tiles; MICROMIX_GEMV_WIDE_ROWS (1 | 0) swaps
// them (both kernels under both versions) and refuses other values. Small K keeps the double-precision
// reference cheap.
TEST(CudaMxMixedGemv, RowsKernelFromNineRowsOnWideLayers) {
  SKIP_WITHOUT_GPU();
  const ScopedEnv wide("MICROMIX_GEMV_WIDE_ROWS");
  for (const char* rows : {"", "1", "0"})
    for (int64_t M : {9, 16})
      for (int kernel : {cuda::kGemvPreparedV14Kernel, cuda::kGemvPreparedKernel}) {
        wide.set(rows);
        SCOPED_TRACE(std::string("MICROMIX_GEMV_WIDE_ROWS '") + rows + "', M = " + std::to_string(M) + ", kernel " + std::to_string(kernel));
        check_gemm(GemmCase{M, 16 * 1600, 32 * 5, MixedSplit{32 * 2, 32 * 2, 32, M == 9 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2}},
                   kernel);
      }
  expect_refused(wide, "2", 12, cuda::kGemvPreparedKernel);
}

// v14's one-token pre-pass runs at M = 1 where the fused kernel does not: more than 128 K blocks (or
// a grid beyond one wave). Random splits (empty segments included) of K = 32 * 129 .. 32 * 200, both
// FP6 formats, raw codes, extreme and NaN scales; the default dispatch too.
TEST(CudaMxMixedGemv, OneTokenPrePassLongK) {
  SKIP_WITHOUT_GPU();
  for (int trial = 0; trial < 6; ++trial) {
    GemmCase c;
    c.M = 1;
    c.N = 16 * std::uniform_int_distribution<int64_t>(1, 6)(rng());
    c.K = 32 * std::uniform_int_distribution<int64_t>(129, 200)(rng());
    c.split = random_split(c.K);
    c.split.fp6 = trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2;
    check_gemm(c, cuda::kGemvPreparedV14Kernel);
    check_gemm(c, cuda::kGemvPreparedKernel);
    check_raw_extreme_and_nan(c, cuda::kGemvPreparedV14Kernel);
  }
  // A full super-group of 8 row groups and a partial one (N = 176): both block strides of the layout.
  check_gemm(GemmCase{1, 176, 32 * 150, MixedSplit{32 * 100, 32 * 37, 32 * 13, ElemFormat::fp6_e2m3}},
             cuda::kGemvPreparedV14Kernel);
}

// v17 with each number of warps per row group (MICROMIX_GEMV_WARPS) at M = 1 on the one-token path
// (K > 128 blocks) and with both tail codes (MICROMIX_GEMV_TAIL) and segment-specialised warps
// (MICROMIX_GEMV_SPLIT), also on the fused kernel (K <= 128 blocks): 1, 5, 11, 13 row groups, random splits with empty segments, both FP6 formats, raw codes,
// extreme and NaN scales.
TEST(CudaMxMixedGemv, WarpsPerRowGroup) {
  SKIP_WITHOUT_GPU();
  struct RestoreEnv {
    ~RestoreEnv() {
      unsetenv("MICROMIX_GEMV_WARPS");
      unsetenv("MICROMIX_GEMV_TAIL");
      unsetenv("MICROMIX_GEMV_SPLIT");
    }
  } restore;
  int trial = 0;
  for (const auto& [tail, split] : std::vector<std::pair<const char*, const char*>>{{"exact", "k"}, {"slots", "k"}, {"exact", "seg"}}) {
    ASSERT_EQ(setenv("MICROMIX_GEMV_TAIL", tail, 1), 0);
    ASSERT_EQ(setenv("MICROMIX_GEMV_SPLIT", split, 1), 0);
    for (const char* warps : {"1", "2", "4", "8", "16", "fused"})
      for (int64_t groups : {1, 5, 11, 13}) {
        const bool fused = !std::strcmp(warps, "fused");
        if (fused) unsetenv("MICROMIX_GEMV_WARPS");
        else ASSERT_EQ(setenv("MICROMIX_GEMV_WARPS", warps, 1), 0);
        GemmCase c;
        c.M = 1;
        c.N = 16 * groups;
        c.K = 32 * (fused ? std::uniform_int_distribution<int64_t>(1, 128)(rng())
                          : std::uniform_int_distribution<int64_t>(129, 170)(rng()));
        c.split = random_split(c.K);
        c.split.fp6 = ++trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2;
        SCOPED_TRACE(std::string("tail ") + tail + ", split " + split + ", warps per row group " + warps + ", N = " + std::to_string(c.N) +
                     ", K = " + std::to_string(c.K));
        check_gemm(c, cuda::kGemvPreparedV17Kernel);
        check_raw_extreme_and_nan(c, cuda::kGemvPreparedV17Kernel);
      }
  }
  ASSERT_EQ(setenv("MICROMIX_GEMV_TAIL", "sometimes", 1), 0);  // not a mode: an error
  {
    const GemmCase c{1, 32, 32 * 140, MixedSplit{32 * 100, 32 * 20, 32 * 20}};
    const auto perm = random_permutation(c.K);
    EXPECT_THROW(cuda::mx_mixed_gemm_host(quantize_mixed(llm_like(1, c.K), 1, c.K, perm, c.split),
                                          quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split), cuda::OutType::f32,
                                          cuda::kGemvPreparedV17Kernel),
                 std::exception);
  }
  unsetenv("MICROMIX_GEMV_TAIL");
  // Not a shape (K > 128 blocks: the one-token path): an error, not a guess.
  const int64_t K = 32 * 140;
  const MixedSplit split{32 * 100, 32 * 20, 32 * 20};
  const auto perm = random_permutation(K);
  const auto xq = quantize_mixed(llm_like(1, K), 1, K, perm, split);
  const auto wq = quantize_mixed(llm_like(16, K), 16, K, perm, split);
  ASSERT_EQ(setenv("MICROMIX_GEMV_WARPS", "3", 1), 0);
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, cuda::kGemvPreparedV17Kernel), std::exception);
}

// v17 on the token tiles (M = 2 .. 16) with 4 and 8 warps per row group (MICROMIX_GEMV_TILE_WARPS) and
// its own choice: every M of the range, 1, 5 and 13 row groups, random splits with empty segments, both
// FP6 formats, raw codes, extreme and NaN scales.
TEST(CudaMxMixedGemv, TileWarpsPerRowGroup) {
  SKIP_WITHOUT_GPU();
  const ScopedEnv env("MICROMIX_GEMV_TILE_WARPS");
  int trial = 0;
  for (const char* warps : {"4", "8", ""})
    for (int64_t M = 2; M <= 16; ++M)
      for (int64_t groups : {1, 5, 13}) {
        env.set(warps);
        const GemmCase c = random_decode_case(M, groups, 80, ++trial);
        SCOPED_TRACE(std::string("warps per row group '") + warps + "', M = " + std::to_string(M) + ", N = " + std::to_string(c.N) +
                     ", K = " + std::to_string(c.K));
        check_gemm(c, cuda::kGemvPreparedV17Kernel);
        if (groups == 5) check_raw_extreme_and_nan(c, cuda::kGemvPreparedV17Kernel);
      }
  expect_refused(env, "2", 4, cuda::kGemvPreparedV17Kernel);
}

// v20's token-tile GEMV after the pre-pass (M = 5 .. 16 on these grids) in every shape it has: 1 to 16
// warps per row group (MICROMIX_GEMV_TILE_WARPS) with 4-, 2- and 1-block load batches
// (MICROMIX_GEMV_TILE_BATCH) and its own choice, 1, 5, 13 row groups, and a wide layer (1600 row groups:
// the rows kernel's shapes before v20) with the defaults; random splits with empty segments, both FP6
// formats, raw codes, extreme and NaN scales; a shape it does not have is refused. v22's kernels too
// (the same shapes on the tiles' {scale, start} form).
TEST(CudaMxMixedGemv, TwoTileShapes) {
  SKIP_WITHOUT_GPU();
  const ScopedEnv warps("MICROMIX_GEMV_TILE_WARPS"), batch("MICROMIX_GEMV_TILE_BATCH");
  const std::pair<const char*, const char*> shapes[] = {{"1", "4"}, {"2", "4"}, {"2", "2"}, {"4", "4"}, {"4", "2"},
                                                        {"8", "4"}, {"8", "2"}, {"16", "2"}, {"16", "1"}, {"", ""}};
  int trial = 0;
  for (const auto& [w, b] : shapes)
    for (int64_t M : {5, 8, 9, 11, 16})
      for (int64_t groups : {1, 5, 13}) {
        warps.set(w);
        batch.set(b);
        const GemmCase c = random_decode_case(M, groups, 60, ++trial);
        SCOPED_TRACE(std::string("warps '") + w + "', batch '" + b + "', M = " + std::to_string(c.M) + ", N = " + std::to_string(c.N) +
                     ", K = " + std::to_string(c.K));
        for (int kernel : {cuda::kGemvPreparedV20Kernel, cuda::kGemvPreparedV22Kernel}) {
          check_gemm(c, kernel);
          if (groups == 5) check_raw_extreme_and_nan(c, kernel);
        }
      }
  warps.set("");
  batch.set("");
  if (!under_sanitizer())
    for (int64_t M : {9, 16}) {
      const GemmCase c = random_decode_case(M, 1600, 12, ++trial);
      SCOPED_TRACE("wide layer, M = " + std::to_string(M) + ", K = " + std::to_string(c.K));
      check_gemm(c, cuda::kGemvPreparedV20Kernel);
      check_gemm(c, cuda::kGemvPreparedV22Kernel);
    }
  expect_refused(batch, "3", 12, cuda::kGemvPreparedV20Kernel);
  warps.set("16");
  expect_refused(batch, "4", 12, cuda::kGemvPreparedV20Kernel);  // 16 warps with 4-block batches: not built
}

// v19 on one-wave grids with K <= 128 blocks: each CTA decodes the tokens into a compact tile of 2, 4 or
// 8 slots (M = 2..4 by default, up to 8 with MICROMIX_GEMV_FUSED_TOKENS=8; odd M leaves empty slots, whose
// columns must not be stored; without the variable M = 5..8 take v17's path), with the per-segment prologue
// (default) and the generic one (MICROMIX_GEMV_LEAN_PROLOGUE=0); 1, 5, 13 row groups (16
// warps per row group) and 300 (on a 132-SM GPU too many for 16, one wave at 8), random splits with
// empty segments, both FP6 formats, raw codes, extreme and NaN scales (K = 0: EmptyKWritesZeros, through
// the default).
TEST(CudaMxMixedGemv, FusedTokensEveryM) {
  SKIP_WITHOUT_GPU();
  const ScopedEnv env("MICROMIX_GEMV_FUSED_TOKENS"), lean("MICROMIX_GEMV_LEAN_PROLOGUE");
  int trial = 0;
  for (const char* prologue : {"", "0"})  // the lean prologue (default) and the generic one
  for (const char* max_m : {"", "8"})
    for (int64_t M = 2; M <= 8; ++M)
      for (int64_t groups : {1, 5, 13, 300}) {
        if (groups == 300 && under_sanitizer()) continue;
        env.set(max_m);
        lean.set(prologue);
        const GemmCase c = random_decode_case(M, groups, 128, ++trial);
        SCOPED_TRACE(std::string("fused tokens up to M = '") + max_m + "', M = " + std::to_string(M) + ", N = " + std::to_string(c.N) +
                     ", K = " + std::to_string(c.K));
        check_gemm(c, cuda::kGemvPreparedV19Kernel);
        check_raw_extreme_and_nan(c, cuda::kGemvPreparedV19Kernel);
      }
  env.set("");
  check_gemm(GemmCase{2, 32, 32 * 128, MixedSplit{32 * 90, 32 * 25, 32 * 13}}, cuda::kGemvPreparedV19Kernel);  // 8B o's split
  expect_refused(env, "3", 2, cuda::kGemvPreparedV19Kernel);
  env.set("");
  expect_refused(lean, "2", 2, cuda::kGemvPreparedV19Kernel);
}

// Activation codes at an address that is not 16-byte aligned: every GEMM and decode entry point
// refuses them with an error instead of reading them some slower or wrong way.
TEST(CudaMxMixedGemm, RejectsUnalignedActivationCodes) {
  SKIP_WITHOUT_GPU();
  const GemmCase c{5, 48, 32 * 13, MixedSplit{32 * 7, 32 * 4, 32 * 2}};
  const auto perm = random_permutation(c.K);
  const auto xq = quantize_mixed(llm_like(c.M, c.K), c.M, c.K, perm, c.split);
  const auto wq = quantize_mixed(llm_like(c.N, c.K), c.N, c.K, perm, c.split);
  for (int kernel : {0, 18, -1, cuda::kGemvPreparedKernel, cuda::kGemvPreparedV13Kernel, cuda::kGemmPreparedKernel})
    for (int offset : {1, 4, 8})
      EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, kernel, offset), micromix::Error)
          << "kernel " << kernel << " offset " << offset;
  // offset 0 (aligned) runs
  EXPECT_LE(rel_frobenius(cuda::mx_mixed_gemm_host(xq, wq, cuda::OutType::f32, cuda::kGemvPreparedV13Kernel, 0),
                          matmul_nt_double(dequant_double(xq), dequant_double(wq), c.M, c.N, c.K)),
            1e-5);
}

TEST(CudaMxMixedGemm, RejectsBadShapes) {
  SKIP_WITHOUT_GPU();
  const auto perm = random_permutation(64);
  const auto xq = quantize_mixed(llm_like(2, 64), 2, 64, perm, MixedSplit{32, 0, 32});
  const auto w_odd = quantize_mixed(llm_like(24, 64), 24, 64, perm, MixedSplit{32, 0, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w_odd, cuda::OutType::f32, 1), micromix::Error);  // N % 16 != 0
  const auto w_split = quantize_mixed(llm_like(16, 64), 16, 64, perm, MixedSplit{0, 32, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w_split, cuda::OutType::f32, 1), micromix::Error);
  const auto w = quantize_mixed(llm_like(16, 64), 16, 64, perm, MixedSplit{32, 0, 32});
  EXPECT_THROW(cuda::mx_mixed_gemm_host(xq, w, cuda::OutType::f32, cuda::mx_mixed_gemm_versions() + 1),
               micromix::Error);  // no such version
}
