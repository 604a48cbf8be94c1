// CPU forward pass of the default model (SmolLM2-135M, weights dequantized to float32):
// prefill of 512 tokens and greedy-style decode of 64 tokens after a 512-token prompt, on all
// OpenMP threads (OMP_NUM_THREADS to change). Counters are tokens per second.
// BM_Mx*: the same with every block linear quantized (MixedLinear: packed MX weights, activations
// quantized per token): all-MXFP4, all-MXFP8 and a 70/20/10 MXFP4/6/8 split, vs the float path.
// Model: $MICROMIX_MODEL, else the default cache path (`micromix fetch`); skipped when absent.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>

#include "micromix/fetch.hpp"
#include "micromix/model.hpp"
#include "micromix/quant_plan.hpp"

namespace {

constexpr int64_t kPrompt = 512, kGenerate = 64;

const micromix::ModelSource* source() {
  static std::unique_ptr<micromix::ModelSource> src = [] {
    const char* env = std::getenv("MICROMIX_MODEL");
    const std::string path = env ? env : micromix::default_model_path();
    if (!std::filesystem::exists(path)) return std::unique_ptr<micromix::ModelSource>();
    return std::make_unique<micromix::ModelSource>(micromix::load_model_source(path));
  }();
  return src.get();
}

const micromix::Model* model() {
  static std::unique_ptr<micromix::Model> m = [] {
    const auto* src = source();
    return src ? std::make_unique<micromix::Model>(micromix::Model::load(*src)) : nullptr;
  }();
  return m.get();
}

// scheme 0: all-MXFP4, 1: all-MXFP8, 2: 70/20/10 MXFP4/E3M2/MXFP8 (counts rounded to 32).
const micromix::Model* mx_model(int scheme) {
  static std::unique_ptr<micromix::Model> models[3];
  if (!models[scheme] && source()) {
    using micromix::mx::ElemFormat;
    const auto& cfg = source()->config;
    micromix::MixedLinearOptions opt;
    opt.rule = micromix::mx::ScaleRule::ceil;
    micromix::QuantPlan plan =
        micromix::plan_uniform(cfg, scheme == 1 ? ElemFormat::fp8_e4m3 : ElemFormat::fp4_e2m1, opt);
    if (scheme == 2)
      for (auto& layer : plan.layers)
        for (auto& ip : layer) {
          const int64_t k = ip.split.cols();
          const int64_t n8 = (k / 10 + 16) / 32 * 32, n6 = (k / 5 + 16) / 32 * 32;
          ip.split = micromix::mx::MixedSplit{k - n6 - n8, n6, n8, ElemFormat::fp6_e3m2};
        }
    models[scheme] = std::make_unique<micromix::Model>(micromix::Model::load(*source(), micromix::make_plan_factory(plan)));
  }
  return models[scheme].get();
}

const char* kSchemeNames[] = {"mxfp4", "mxfp8", "mix_70_20_10"};

std::vector<int32_t> prompt(int vocab) {
  std::mt19937 g(1234);  // the cost does not depend on the ids
  std::uniform_int_distribution<int32_t> u(0, vocab - 1);
  std::vector<int32_t> t(kPrompt);
  for (auto& x : t) x = u(g);
  return t;
}

void prefill(benchmark::State& st, const micromix::Model* m) {
  if (!m) return st.SkipWithError("model not found: set MICROMIX_MODEL or run `micromix fetch`");
  const auto tokens = prompt(m->config().vocab);
  auto cache = m->new_cache(kPrompt + kGenerate);
  std::vector<float> logits;
  for (auto _ : st) {
    cache.clear();
    m->forward(tokens, cache, logits, 1);
    benchmark::DoNotOptimize(logits.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kPrompt) * st.iterations(), benchmark::Counter::kIsRate);
}

void decode(benchmark::State& st, const micromix::Model* m) {
  if (!m) return st.SkipWithError("model not found: set MICROMIX_MODEL or run `micromix fetch`");
  const auto tokens = prompt(m->config().vocab);
  auto cache = m->new_cache(kPrompt + kGenerate);
  std::vector<float> logits;
  for (auto _ : st) {
    st.PauseTiming();
    cache.clear();
    m->forward(tokens, cache, logits, 1);
    st.ResumeTiming();
    int32_t next = 0;
    for (int64_t i = 0; i < kGenerate; ++i) {
      next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      m->forward(std::span(&next, 1), cache, logits, 1);
    }
    benchmark::DoNotOptimize(logits.data());
  }
  st.counters["tokens/s"] = benchmark::Counter(static_cast<double>(kGenerate) * st.iterations(), benchmark::Counter::kIsRate);
}

void BM_Prefill512(benchmark::State& st) { prefill(st, model()); }
void BM_Decode64After512(benchmark::State& st) { decode(st, model()); }
void BM_MxPrefill512(benchmark::State& st) {
  st.SetLabel(kSchemeNames[st.range(0)]);
  prefill(st, mx_model(static_cast<int>(st.range(0))));
}
void BM_MxDecode64After512(benchmark::State& st) {
  st.SetLabel(kSchemeNames[st.range(0)]);
  decode(st, mx_model(static_cast<int>(st.range(0))));
}

}  // namespace

// Wall time drives the tokens/s counters; the CPU column is the whole process (all threads), so
// tokens per CPU-second can be read off on a busy machine too.
BENCHMARK(BM_Prefill512)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(3);
BENCHMARK(BM_Decode64After512)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(2);
BENCHMARK(BM_MxPrefill512)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(2);
BENCHMARK(BM_MxDecode64After512)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(1);
BENCHMARK_MAIN();
