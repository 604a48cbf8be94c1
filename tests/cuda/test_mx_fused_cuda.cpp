// Fused RMSNorm / SwiGLU + reorder + quantize on the GPU against host references: the bf16 row
// computed on the host with the same FP32 arithmetic (fused_prologue_math.hpp, the RMSNorm sum in
// the kernel's order) and quantized by mx::quantize_mixed must match bit for bit in every row; the
// bf16 rows themselves are checked against a double-precision RMSNorm / SiLU (std::exp) to within
// one bf16 rounding. Skipped (with the reason) without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <tuple>
#include <utility>

#include "cuda/fused_prologue_math.hpp"
#include "cuda/mx_kernel_versions.hpp"
#include "formats/test_mx_mixed_util.hpp"
#include "micromix/bf16.hpp"
#include "micromix/cuda.hpp"
#include "micromix/cuda_mx.hpp"
#include "micromix/error.hpp"

using namespace mxmixed_test;
namespace cuda = micromix::cuda;
namespace fused = micromix::cuda::fused;
using micromix::bf16_to_float;
using micromix::float_to_bf16;

#define SKIP_WITHOUT_GPU() \
  if (!cuda::available()) GTEST_SKIP() << "GPU test skipped: " << cuda::describe()

namespace {

std::vector<uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = float_to_bf16(x[i]);
  return h;
}
std::vector<float> widen(const std::vector<uint16_t>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = bf16_to_float(h[i]);
  return f;
}

// The kernel's sum of squares of one row: 256 thread partials over 8-element chunks, a xor
// butterfly per warp, the warp sums in order.
float kernel_sum_sq(const uint16_t* x, int64_t K) {
  constexpr int T = fused::kRmsThreads;
  std::vector<float> part(T, 0.0f);
  for (int t = 0; t < T; ++t)
    for (int64_t c = t; c < K / 8; c += T)
      for (int j = 0; j < 8; ++j) {
        const float v = bf16_to_float(x[c * 8 + j]);
        part[t] = fmaf(v, v, part[t]);
      }
  float total = 0.0f;
  for (int w = 0; w < T / 32; ++w) {
    float v[32];
    for (int l = 0; l < 32; ++l) v[l] = part[w * 32 + l];
    for (int o = 16; o >= 1; o >>= 1) {
      float nv[32];
      for (int l = 0; l < 32; ++l) nv[l] = v[l] + v[l ^ o];
      std::memcpy(v, nv, sizeof v);
    }
    total = w == 0 ? v[0] : total + v[0];
  }
  return total;
}

std::vector<uint16_t> rmsnorm_ref(const std::vector<uint16_t>& x, int64_t M, int64_t K, const std::vector<float>& w,
                                  float eps) {
  std::vector<uint16_t> y(x.size());
  for (int64_t i = 0; i < M; ++i) {
    const float inv = fused::inv_rms(kernel_sum_sq(x.data() + i * K, K), K, eps);
    for (int64_t j = 0; j < K; ++j)
      y[i * K + j] = fused::rmsnorm_bf16(bf16_to_float(x[i * K + j]), inv, w[j]);
  }
  return y;
}

// gate_up as the host convenience takes it (packed or gate block then up block).
std::vector<uint16_t> swiglu_ref(const std::vector<uint16_t>& gu, int64_t M, int64_t K, bool packed) {
  std::vector<uint16_t> y(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < K; ++j) {
      const size_t gi = packed ? i * 2 * K + j : i * K + j;
      const size_t ui = packed ? gi + K : gi + M * K;
      y[i * K + j] = fused::swiglu_bf16(bf16_to_float(gu[gi]), bf16_to_float(gu[ui]));
    }
  return y;
}

void expect_same(const MxMixedMatrix& got, const MxMixedMatrix& ref, const std::string& what) {
  for (int s = 0; s < kSegments; ++s) {
    ASSERT_EQ(got.seg[s].codes, ref.seg[s].codes) << what << ": codes of segment " << s;
    ASSERT_EQ(got.seg[s].scales, ref.seg[s].scales) << what << ": scales of segment " << s;
  }
}

std::string describe(int64_t M, int64_t K, const MixedSplit& s, ScaleRule rule, Rounding r) {
  return "M=" + std::to_string(M) + " K=" + std::to_string(K) + " split " + std::to_string(s.n4) + "/" +
         std::to_string(s.n6) + "/" + std::to_string(s.n8) + (s.fp6 == ElemFormat::fp6_e2m3 ? " e2m3" : " e3m2") +
         (rule == ScaleRule::ceil ? " ceil" : " ocp") + (r == Rounding::away ? " away" : " even");
}

// RMSNorm weights: around 1, a few channels much larger (as in real checkpoints).
std::vector<float> norm_weight(int64_t K) {
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(K));
  for (auto& v : w) v = ud(rng()) < 0.01f ? 4.0f + 20.0f * ud(rng()) : 0.3f + 1.2f * ud(rng());
  return w;
}

int64_t random_k() {
  constexpr int64_t ks[] = {32, 64, 96, 256, 416, 2048, 4096};
  return ks[rng()() % std::size(ks)];
}

// One RMSNorm case: fused GPU vs quantize_mixed(host bf16 row) and vs the unfused GPU quantizer.
void check_rmsnorm(int64_t M, int64_t K, const MixedSplit& split, ScaleRule rule, Rounding rnd, cuda::WeightType wt,
                   std::vector<uint16_t> xh) {
  auto w = norm_weight(K);
  std::vector<uint8_t> wbytes;
  if (wt == cuda::WeightType::bf16) {
    const auto wb = to_bf16(w);
    w = widen(wb);
    wbytes.resize(wb.size() * 2);
    std::memcpy(wbytes.data(), wb.data(), wbytes.size());
  } else {
    wbytes.resize(w.size() * 4);
    std::memcpy(wbytes.data(), w.data(), wbytes.size());
  }
  const float eps = 1e-5f;
  const auto perm = random_permutation(K);
  const auto y = rmsnorm_ref(xh, M, K, w, eps);
  const auto ref = quantize_mixed(widen(y), M, K, perm, split, rule, rnd);
  const std::string what = "rmsnorm " + describe(M, K, split, rule, rnd) + (wt == cuda::WeightType::f32 ? " f32 w" : " bf16 w");
  const auto got = cuda::mx_rmsnorm_reorder_quantize_host(xh, M, K, wbytes, wt, eps, perm, split, rule, rnd);
  expect_same(got, ref, what + " vs host");
  const auto unfused = cuda::mx_reorder_quantize_host(y, M, K, perm, split, rule, rnd);
  expect_same(got, unfused, what + " vs unfused GPU");
}

void check_swiglu(int64_t M, int64_t K, const MixedSplit& split, ScaleRule rule, Rounding rnd, bool packed) {
  const auto gu = to_bf16(llm_like(2 * M, K));  // layout-agnostic random data
  const auto perm = random_permutation(K);
  const auto y = swiglu_ref(gu, M, K, packed);
  const auto ref = quantize_mixed(widen(y), M, K, perm, split, rule, rnd);
  const std::string what = std::string("swiglu ") + (packed ? "packed " : "") + describe(M, K, split, rule, rnd);
  const auto got = cuda::mx_swiglu_reorder_quantize_host(gu, M, K, packed, perm, split, rule, rnd);
  expect_same(got, ref, what + " vs host");
  const auto unfused = cuda::mx_reorder_quantize_host(y, M, K, perm, split, rule, rnd);
  expect_same(got, unfused, what + " vs unfused GPU");
}

}  // namespace

// The shared FP32 arithmetic against double precision (host only, no GPU needed): every bf16
// result is the double result rounded to bf16 or one bf16 ulp from it.
TEST(CudaMxFusedMath, SwigluWithinOneBf16UlpOfDouble) {
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  for (int i = 0; i < 200000; ++i) {
    const float g = ud(rng()) * std::ldexp(1.0f, static_cast<int>(rng()() % 16) - 8);
    const float u = ud(rng()) * 8.0f;
    const double ref = static_cast<double>(g) / (1.0 + std::exp(-static_cast<double>(g))) * u;
    const float got = bf16_to_float(fused::swiglu_bf16(g, u));
    ASSERT_LE(std::fabs(got - ref), std::ldexp(std::fabs(ref), -7) + 1e-35) << "g=" << g << " u=" << u;
  }
  EXPECT_EQ(bf16_to_float(fused::swiglu_bf16(-200.0f, 1.0f)), 0.0f);  // exp overflow: silu -> -0
  EXPECT_EQ(bf16_to_float(fused::swiglu_bf16(200.0f, 1.0f)), 200.0f);
  EXPECT_TRUE(std::isnan(bf16_to_float(fused::swiglu_bf16(NAN, 1.0f))));
  for (float x = -80.0f; x <= 88.0f; x += 0.37f) {
    const double ref = std::exp(static_cast<double>(x));
    ASSERT_LE(std::fabs(fused::silu_exp(x) - ref), ref * 4e-7) << "exp(" << x << ")";
  }
}

TEST(CudaMxFusedMath, RmsnormWithinOneBf16UlpOfDouble) {
  const int64_t M = 5, K = 4096;
  const auto xh = to_bf16(llm_like(M, K));
  const auto w = norm_weight(K);
  const auto y = rmsnorm_ref(xh, M, K, w, 1e-6f);
  for (int64_t i = 0; i < M; ++i) {
    double ss = 0;
    for (int64_t j = 0; j < K; ++j) ss += std::pow(static_cast<double>(bf16_to_float(xh[i * K + j])), 2);
    const double inv = 1.0 / std::sqrt(ss / K + 1e-6);
    for (int64_t j = 0; j < K; ++j) {
      const double ref = bf16_to_float(xh[i * K + j]) * inv * w[j];
      ASSERT_LE(std::fabs(bf16_to_float(y[i * K + j]) - ref), std::ldexp(std::fabs(ref), -7)) << "row " << i << " col " << j;
    }
  }
}

TEST(CudaMxFused, RmsnormBitIdenticalRandomShapes) {
  SKIP_WITHOUT_GPU();
  for (int it = 0; it < 24; ++it) {
    const int64_t M = 2 * std::uniform_int_distribution<int64_t>(0, 33)(rng()) + 1;  // odd
    const int64_t K = random_k();
    const auto rule = it & 1 ? ScaleRule::ceil : ScaleRule::ocp;
    const auto rnd = it & 2 ? Rounding::away : Rounding::even;
    const auto wt = it & 4 ? cuda::WeightType::f32 : cuda::WeightType::bf16;
    check_rmsnorm(M, K, random_split(K), rule, rnd, wt, to_bf16(llm_like(M, K)));
    if (HasFatalFailure()) return;
  }
}

TEST(CudaMxFused, SwigluBitIdenticalRandomShapes) {
  SKIP_WITHOUT_GPU();
  for (int it = 0; it < 24; ++it) {
    const int64_t M = 2 * std::uniform_int_distribution<int64_t>(0, 33)(rng()) + 1;
    const int64_t K = random_k();
    check_swiglu(M, K, random_split(K), it & 1 ? ScaleRule::ceil : ScaleRule::ocp,
                 it & 2 ? Rounding::away : Rounding::even, it & 4);
    if (HasFatalFailure()) return;
  }
}

// K = 28672 / 27648 (Llama-3.1-70B's and Qwen2.5-32B's intermediate size): past the shared memory of v9's
// RMSNorm staging (8 bytes per column), where the op takes its one-row kernel.
TEST(CudaMxFused, SingleFormatSplitsAndLargeK) {
  SKIP_WITHOUT_GPU();
  for (const int64_t K : {int64_t{32}, int64_t{14336}, int64_t{28672}}) {
    for (int which = 0; which < 3; ++which) {
      MixedSplit s;
      s.n4 = which == 0 ? K : 0;
      s.n6 = which == 1 ? K : 0;
      s.n8 = which == 2 ? K : 0;
      s.fp6 = ElemFormat::fp6_e3m2;
      check_rmsnorm(3, K, s, ScaleRule::ocp, Rounding::even, cuda::WeightType::bf16, to_bf16(llm_like(3, K)));
      check_swiglu(3, K, s, ScaleRule::ocp, Rounding::even, which == 1);
      if (HasFatalFailure()) return;
    }
  }
}

// The quantizers' K split at small M (mx_reorder_quantize_v3.cu, v12; every CTA sums the whole row's
// squares in the same order; SwiGLU computed after the gather): every split size, K with a short last
// part, R = 4 and R = 2 shapes, and unsplit (0: SwiGLU computed while staging).
TEST(CudaMxFused, SplitKBitIdentical) {
  SKIP_WITHOUT_GPU();
  struct Unset {
    ~Unset() { unsetenv("MICROMIX_QUANTIZE_SPLIT"); }
  } unset;
  for (const char* split : {"64", "256", "512", "0"}) {
    ASSERT_EQ(setenv("MICROMIX_QUANTIZE_SPLIT", split, 1), 0);
    for (int64_t M : {1, 5, 16})
      for (int64_t K : {int64_t{32 * 37}, int64_t{4096}, int64_t{32 * 449}}) {
        const MixedSplit s = random_split(K);
        check_rmsnorm(M, K, s, ScaleRule::ocp, Rounding::even, M == 5 ? cuda::WeightType::f32 : cuda::WeightType::bf16,
                      to_bf16(llm_like(M, K)));
        check_swiglu(M, K, s, ScaleRule::ocp, Rounding::even, M == 1);
        if (HasFatalFailure()) return;
      }
  }
}

// NaN / Inf / zero rows: a NaN or Inf anywhere makes the whole normalized row NaN (NaN scales,
// zero codes); an all-zero row normalizes to zeros (sqrt(eps) > 0).
TEST(CudaMxFused, SpecialRows) {
  SKIP_WITHOUT_GPU();
  const int64_t M = 7, K = 256;
  auto xh = to_bf16(llm_like(M, K));
  xh[0 * K + 17] = 0x7FC0;
  xh[1 * K + 200] = 0xFF80;
  for (int64_t j = 0; j < K; ++j) xh[2 * K + j] = 0;
  for (int64_t j = 0; j < K; j += 3) xh[3 * K + j] = static_cast<uint16_t>(1 + rng()() % 0x7F);  // subnormals
  const MixedSplit s = random_split(K);
  check_rmsnorm(M, K, s, ScaleRule::ocp, Rounding::even, cuda::WeightType::f32, xh);
  auto gu = to_bf16(llm_like(2 * M, K));
  gu[5] = 0x7FC0;
  gu[K + 9] = 0xFF80;          // -Inf gate: silu(-Inf) = NaN (-Inf / Inf)
  gu[2 * K + 3] = 0x7F80;      // +Inf gate: Inf * up
  gu[M * K + 3 * K + 1] = 0xFF80;  // -Inf up
  const auto perm = random_permutation(K);
  const auto y = swiglu_ref(gu, M, K, false);
  const auto got = cuda::mx_swiglu_reorder_quantize_host(gu, M, K, false, perm, s, ScaleRule::ocp, Rounding::even);
  expect_same(got, quantize_mixed(widen(y), M, K, perm, s), "swiglu special rows");
}

TEST(CudaMxFused, EmptyMAndBadArguments) {
  SKIP_WITHOUT_GPU();
  const int64_t K = 64;
  const auto perm = random_permutation(K);
  const MixedSplit s = random_split(K);
  const std::vector<uint8_t> w(K * 4, 0);
  const auto m0 = cuda::mx_rmsnorm_reorder_quantize_host({}, 0, K, w, cuda::WeightType::f32, 1e-5f, perm, s,
                                                         ScaleRule::ocp, Rounding::even);
  EXPECT_EQ(m0.rows, 0);
  const auto g0 = cuda::mx_swiglu_reorder_quantize_host({}, 0, K, true, perm, s, ScaleRule::ocp, Rounding::even);
  EXPECT_EQ(g0.rows, 0);
  // Segment sizes not multiples of 32, M mismatch, ld < K: micromix::Error, nothing launched.
  cuda::MxMixedDeviceOut out;
  out.rows = 4;
  out.split.n4 = 48;
  out.split.n8 = 16;
  EXPECT_THROW(cuda::mx_rmsnorm_reorder_quantize(nullptr, 4, nullptr, cuda::WeightType::f32, 1e-5f, nullptr, out,
                                                 ScaleRule::ocp, Rounding::even, nullptr),
               micromix::Error);
  out.split.n4 = 64;
  out.split.n8 = 0;
  EXPECT_THROW(cuda::mx_swiglu_reorder_quantize(nullptr, nullptr, 64, 5, nullptr, out, ScaleRule::ocp, Rounding::even,
                                                nullptr),
               micromix::Error);
  EXPECT_THROW(cuda::mx_swiglu_reorder_quantize(nullptr, nullptr, 32, 4, nullptr, out, ScaleRule::ocp, Rounding::even,
                                                nullptr),
               micromix::Error);
  EXPECT_THROW(cuda::mx_rmsnorm_reorder_quantize_host(std::vector<uint16_t>(K * 2), 2, K, std::vector<uint8_t>(3),
                                                      cuda::WeightType::f32, 1e-5f, perm, s, ScaleRule::ocp,
                                                      Rounding::even),
               micromix::Error);
}

// The decode linear as an engine runs it (mx_quantize_gemv_host: the quantizer, plain or fused with
// RMSNorm, then the prepared GEMV on one stream with no host sync between them). v21 launches the
// GEMV's first kernel as a programmatic dependent of the quantizer: its CTAs run (prefetching weights)
// while the quantizer still writes the activations, and must wait for them. So: the activations the
// chain produced equal the host quantizer's bit for bit; y is the double product of those operands
// (relative Frobenius <= 1e-5, as every GEMM test); v21's y equals v20's bit for bit (same kernels).
// 16 row groups run in one wave (the fused M = 1 kernel, v19's per-CTA tokens at M = 2..4), 1600 in
// several (the one-token pre-pass, the token tiles); M = 17 and 40 take the rows kernel. Every case
// runs with the pre-pass launched early (MICROMIX_GEMV_CHAIN_PREPASS=all) and after the quantizer (=0).
TEST(CudaMxDecodeChain, QuantizerThenGemvOnOneStream) {
  SKIP_WITHOUT_GPU();
  struct Unset {
    ~Unset() { unsetenv("MICROMIX_GEMV_CHAIN_PREPASS"); }
  } unset;
  int trial = 0;
  for (const char* chain : {"all", "0"}) {
    for (int64_t groups : {int64_t{16}, int64_t{1600}}) {
      for (int64_t M : {1, 2, 3, 5, 8, 9, 16, 17, 40}) {
        if (groups == 1600 && (M > 16 || std::getenv("MICROMIX_TEST_SANITIZER"))) continue;
        ASSERT_EQ(setenv("MICROMIX_GEMV_CHAIN_PREPASS", chain, 1), 0);
        const int64_t N = 16 * groups, K = groups == 16 ? 2048 : 512;
        MixedSplit split = random_split(K);
        split.fp6 = trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2;
        const bool norm = trial++ % 3 != 2;
        const auto perm = random_permutation(K);
        const auto wq = quantize_mixed(llm_like(N, K), N, K, perm, split);
        const auto xh = to_bf16(llm_like(M, K));
        std::vector<uint16_t> nw;
        std::vector<uint16_t> xin = xh;
        if (norm) {
          nw = to_bf16(norm_weight(K));
          xin = rmsnorm_ref(xh, M, K, widen(nw), 1e-5f);
        }
        const auto xref = quantize_mixed(widen(xin), M, K, perm, split);
        const std::string what = std::string(norm ? "rmsnorm" : "plain") + " quantizer, " + describe(M, K, split, ScaleRule::ocp, Rounding::even) +
                                 " N=" + std::to_string(N) + " MICROMIX_GEMV_CHAIN_PREPASS=" + chain;
        const auto producer = norm ? cuda::DecodeProducer::rmsnorm : cuda::DecodeProducer::none;
        const auto r21 = cuda::mx_quantize_gemv_host(xh, M, producer, nw, 1e-5f, wq, cuda::OutType::f32, 21);
        expect_same(r21.xq, xref, what + ": activations");
        const auto ref = matmul_nt_double(dequant_double(xref), dequant_double(wq), M, N, K);
        EXPECT_LE(rel_frobenius(r21.y, ref), 1e-5) << what;
        const auto r20 = cuda::mx_quantize_gemv_host(xh, M, producer, nw, 1e-5f, wq, cuda::OutType::f32, 20);
        EXPECT_EQ(0, std::memcmp(r20.y.data(), r21.y.data(), r21.y.size() * sizeof(float))) << what << ": v21 differs from v20";
        const auto d21 = cuda::mx_quantize_gemv_host(xh, M, producer, nw, 1e-5f, wq, cuda::OutType::bf16, 0);  // the default, bf16 out
        int bad = 0;
        for (size_t i = 0; i < ref.size() && bad < 5; ++i) {
          const float want = bf16_to_float(float_to_bf16(r21.y[i]));
          if (!(d21.y[i] == want)) {
            ++bad;
            ADD_FAILURE() << what << ": default bf16 output " << i << " = " << d21.y[i] << ", v21 f32 rounded " << want;
          }
        }
      }
    }
  }
  // A value the knob does not offer is refused (an error, not a guess).
  ASSERT_EQ(setenv("MICROMIX_GEMV_CHAIN_PREPASS", "7", 1), 0);
  const int64_t K = 64;
  const auto wq = quantize_mixed(llm_like(32, K), 32, K, random_permutation(K), MixedSplit{32, 0, 32});
  EXPECT_THROW(cuda::mx_quantize_gemv_host(to_bf16(llm_like(8, K)), 8, cuda::DecodeProducer::none, {}, 1e-5f, wq,
                                           cuda::OutType::f32, 21),
               std::exception);
}

// v22: the quantizer (v13's kernels; MICROMIX_QUANTIZE_EARLY 0 and 1) also writes the decode-ready activations (MxDecodeActs; poisoned with 0xFF bytes
// first: f16 NaNs, int8 -1s, NaN scales, so that a slot the GEMV reads but nobody wrote shows up) and
// the GEMV reads them in place of decoding the MX activations. With MICROMIX_GEMV_ACTS=prepass v22 runs
// v21's kernels on them (in v22's tile form), so y must equal v21's (no acts) bit for bit; by default the fused paths (M = 1
// one-wave grids, M = 2..4 per-CTA tokens) read them too, and y must be the double product of the
// quantized operands within 1e-5, the same bits whether the GEMV starts early behind the quantizer or
// not (MICROMIX_GEMV_ACTS_CHAIN=all / 0). Every producer (plain, RMSNorm, SwiGLU), the quantizer's K split
// (v13's kernels write the layout) and MICROMIX_QUANTIZE_SPLIT=0 (no split: the layout is written from
// the MX output by the pre-pass kernels, as for the quantizer v1, also run), 4 and 2 rows per quantizer
// CTA (K <= 8192 / above), one and two token tiles, one-wave and many-wave grids, both FP6 formats.
TEST(CudaMxDecodeChain, QuantizerWritesDecodeActs) {
  SKIP_WITHOUT_GPU();
  struct Unset {
    ~Unset() {
      unsetenv("MICROMIX_GEMV_ACTS");
      unsetenv("MICROMIX_GEMV_ACTS_CHAIN");
      unsetenv("MICROMIX_QUANTIZE_SPLIT");
      unsetenv("MICROMIX_QUANTIZE_EARLY");
      cuda::set_reorder_quantize_version(0);
    }
  } unset;
  const bool sanitizer = std::getenv("MICROMIX_TEST_SANITIZER") != nullptr;
  struct Shape {
    int64_t groups, K;
  };
  int trial = 0;
  for (const Shape sh : {Shape{16, 2048}, Shape{16, 9216}, Shape{1600, 512}}) {
    if (sanitizer && sh.groups > 16) continue;
    for (int64_t M : {1, 2, 3, 4, 5, 7, 8, 9, 12, 16}) {
      if (sanitizer && M != 1 && M != 3 && M != 8 && M != 12) continue;
      const int64_t N = 16 * sh.groups, K = sh.K;
      MixedSplit split = random_split(K);
      split.fp6 = trial % 2 ? ElemFormat::fp6_e2m3 : ElemFormat::fp6_e3m2;
      const auto producer = static_cast<cuda::DecodeProducer>(trial++ % 3);
      const auto perm = random_permutation(K);
      const auto wq = quantize_mixed(llm_like(N, K), N, K, perm, split);
      std::vector<uint16_t> xh, nw, xin;
      if (producer == cuda::DecodeProducer::swiglu) {
        xh = to_bf16(llm_like(M, 2 * K));
        xin = swiglu_ref(xh, M, K, true);
      } else {
        xh = to_bf16(llm_like(M, K));
        xin = xh;
        if (producer == cuda::DecodeProducer::rmsnorm) {
          nw = to_bf16(norm_weight(K));
          xin = rmsnorm_ref(xh, M, K, widen(nw), 1e-5f);
        }
      }
      const auto xref = quantize_mixed(widen(xin), M, K, perm, split);
      const auto ref = matmul_nt_double(dequant_double(xref), dequant_double(wq), M, N, K);
      const char* names[] = {"plain", "rmsnorm", "swiglu"};
      const std::string what = std::string(names[static_cast<int>(producer)]) + " quantizer, " +
                               describe(M, K, split, ScaleRule::ocp, Rounding::even) + " N=" + std::to_string(N);
      const auto run = [&](int version, bool acts) {
        return cuda::mx_quantize_gemv_host(xh, M, producer, nw, 1e-5f, wq, cuda::OutType::f32, version, acts);
      };
      const auto r21 = run(21, false);
      ASSERT_LE(rel_frobenius(r21.y, ref), 1e-5) << what << ": v21";
      ASSERT_EQ(setenv("MICROMIX_GEMV_ACTS", "prepass", 1), 0);
      // The split quantizer (v13's kernels, with and without the early loads; by default they run above
      // K = 4096) and the unsplit one.
      // (MICROMIX_QUANTIZE_R2=0: 4-row CTAs up to K = 8192 at every M; by default 2-row ones at these grids.)
      for (const auto& [qsplit, early, r2] : {std::tuple{"", "0", "0"}, std::tuple{"", "1", ""}, std::tuple{"0", "", ""}}) {
        ASSERT_EQ(setenv("MICROMIX_QUANTIZE_SPLIT", qsplit, 1), 0);
        ASSERT_EQ(setenv("MICROMIX_QUANTIZE_EARLY", early, 1), 0);
        ASSERT_EQ(setenv("MICROMIX_QUANTIZE_R2", r2, 1), 0);
        const std::string knobs = std::string(" MICROMIX_QUANTIZE_SPLIT=") + qsplit + " MICROMIX_QUANTIZE_EARLY=" + early +
                                  " MICROMIX_QUANTIZE_R2=" + r2;
        const auto r22 = run(22, true);
        expect_same(r22.xq, xref, what + ": activations," + knobs);
        EXPECT_EQ(0, std::memcmp(r22.y.data(), r21.y.data(), r21.y.size() * sizeof(float)))
            << what << knobs << ": v22 with the quantizer's activations differs from v21";
      }
      unsetenv("MICROMIX_QUANTIZE_SPLIT");
      unsetenv("MICROMIX_QUANTIZE_EARLY");
      unsetenv("MICROMIX_QUANTIZE_R2");
      unsetenv("MICROMIX_GEMV_ACTS");
      const auto all = run(22, true);  // the default: the fused paths read them too
      EXPECT_LE(rel_frobenius(all.y, ref), 1e-5) << what << ": v22";
      for (const char* chain : {"all", "0"}) {
        ASSERT_EQ(setenv("MICROMIX_GEMV_ACTS_CHAIN", chain, 1), 0);
        const auto c = run(22, true);
        EXPECT_EQ(0, std::memcmp(c.y.data(), all.y.data(), all.y.size() * sizeof(float)))
            << what << ": MICROMIX_GEMV_ACTS_CHAIN=" << chain;
      }
      unsetenv("MICROMIX_GEMV_ACTS_CHAIN");
      ASSERT_EQ(setenv("MICROMIX_GEMV_ACTS", "0", 1), 0);  // acts written, not read: v21 exactly
      const auto off = run(22, true);
      EXPECT_EQ(0, std::memcmp(off.y.data(), r21.y.data(), r21.y.size() * sizeof(float))) << what << ": MICROMIX_GEMV_ACTS=0";
      unsetenv("MICROMIX_GEMV_ACTS");
      if (producer == cuda::DecodeProducer::none && M % 4 == 1) {  // the quantizer v1, then the pre-pass kernels
        cuda::set_reorder_quantize_version(1);
        const auto v1 = run(22, true);
        cuda::set_reorder_quantize_version(0);
        EXPECT_EQ(0, std::memcmp(v1.y.data(), all.y.data(), all.y.size() * sizeof(float))) << what << ": quantizer v1";
      }
    }
  }
  // A buffer smaller than mx_decode_acts_bytes is refused by the quantizer and by the GEMV.
  const int64_t K = 64;
  const MixedSplit s{32, 0, 32};
  EXPECT_EQ(cuda::mx_decode_acts_bytes(1, s), size_t{2} * 68);
  EXPECT_EQ(cuda::mx_decode_acts_bytes(5, s), size_t{2} * 8 * 72);
  EXPECT_EQ(cuda::mx_decode_acts_bytes(16, s), size_t{2} * 16 * 72);
  EXPECT_EQ(cuda::mx_decode_acts_bytes(17, s), size_t{0});
  cuda::MxMixedDeviceOut out;
  out.rows = 4;
  out.split = s;
  cuda::MxMixedDevice a, w;
  a.rows = 4;
  a.split = w.split = s;
  w.rows = 32;
  // Fake device addresses: the checks refuse them before anything runs.
  const cuda::MxDecodeActs small{reinterpret_cast<void*>(uintptr_t{256}), cuda::mx_decode_acts_bytes(4, s) - 16};
  const cuda::MxDecodeActs misaligned{reinterpret_cast<void*>(uintptr_t{264}), cuda::mx_decode_acts_bytes(4, s)};
  for (const auto* acts : {&small, &misaligned}) {
    EXPECT_THROW(cuda::mx_reorder_quantize(nullptr, 4, nullptr, out, ScaleRule::ocp, Rounding::even, nullptr, acts), micromix::Error);
    EXPECT_THROW(cuda::mx_rmsnorm_reorder_quantize(nullptr, 4, nullptr, cuda::WeightType::bf16, 1e-5f, nullptr, out, ScaleRule::ocp,
                                                   Rounding::even, nullptr, acts),
                 micromix::Error);
    EXPECT_THROW(cuda::mx_swiglu_reorder_quantize(nullptr, nullptr, 2 * K, 4, nullptr, out, ScaleRule::ocp, Rounding::even, nullptr, acts),
                 micromix::Error);
    EXPECT_THROW(cuda::mx_mixed_gemv_prepared(a, w, nullptr, cuda::OutType::f32, nullptr, 22, acts), micromix::Error);
  }
}
