// MX codec throughput on one core: float32 -> packed MX quantization and packed -> float32
// dequantization, for the SIMD path (what the library dispatches to) and the scalar fallback.
// Bytes counted: the float32 input of quantization, the float32 output of dequantization.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "micromix/mx_pack.hpp"

using namespace micromix::mx;

namespace {

constexpr int64_t kCols = 4096;
constexpr int64_t kRows = 256;  // 4 MiB of float32: beyond L2, inside L3 on most servers

std::vector<float> random_input() {
  std::mt19937 g(42);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(kRows * kCols));
  for (auto& v : x) v = nd(g);
  return x;
}

template <bool Scalar>
void BM_Quantize(benchmark::State& st) {
  const auto f = static_cast<ElemFormat>(st.range(0));
  const auto x = random_input();
  std::vector<uint8_t> packed(packed_row_bytes(f, kCols) * kRows), scales(kRows * kCols / kBlock);
  for (auto _ : st) {
    for (int64_t r = 0; r < kRows; ++r) {
      uint8_t* p = packed.data() + r * packed_row_bytes(f, kCols);
      uint8_t* s = scales.data() + r * kCols / kBlock;
      if (Scalar)
        quantize_row_scalar(f, ScaleRule::ocp, Rounding::even, x.data() + r * kCols, kCols, p, s);
      else
        quantize_row(f, ScaleRule::ocp, Rounding::even, x.data() + r * kCols, kCols, p, s);
    }
    benchmark::DoNotOptimize(packed.data());
  }
  st.SetBytesProcessed(st.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
  st.SetLabel(std::string(info(f).name));
}

template <bool Scalar>
void BM_Dequantize(benchmark::State& st) {
  const auto f = static_cast<ElemFormat>(st.range(0));
  const auto x = random_input();
  const MxMatrix m = quantize_matrix(f, ScaleRule::ocp, Rounding::even, x, kRows, kCols);
  std::vector<float> y(x.size());
  for (auto _ : st) {
    for (int64_t r = 0; r < kRows; ++r) {
      const uint8_t* p = m.codes.data() + r * m.row_bytes();
      const uint8_t* s = m.scales.data() + r * m.blocks_per_row();
      if (Scalar)
        dequantize_row_scalar(f, p, s, kCols, y.data() + r * kCols);
      else
        dequantize_row(f, p, s, kCols, y.data() + r * kCols);
    }
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(st.iterations() * kRows * kCols * static_cast<int64_t>(sizeof(float)));
  st.SetLabel(std::string(info(f).name));
}

void all_formats(benchmark::internal::Benchmark* b) {
  for (ElemFormat f : kAllFormats) b->Arg(static_cast<int>(f));
}

}  // namespace

BENCHMARK(BM_Quantize<false>)->Name("quantize")->Apply(all_formats);
BENCHMARK(BM_Quantize<true>)->Name("quantize_scalar")->Apply(all_formats);
BENCHMARK(BM_Dequantize<false>)->Name("dequantize")->Apply(all_formats);
BENCHMARK(BM_Dequantize<true>)->Name("dequantize_scalar")->Apply(all_formats);
BENCHMARK_MAIN();
