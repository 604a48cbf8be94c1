// CPU forward pass of the default model (SmolLM2-135M, weights dequantized to float32):
// prefill of 512 tokens and greedy-style decode of 64 tokens after a 512-token prompt, on all
// OpenMP threads (OMP_NUM_THREADS to change). Counters are tokens per second.
// Model: $MICROMIX_MODEL, else the default cache path (`micromix fetch`); skipped when absent.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>

#include "micromix/fetch.hpp"
#include "micromix/model.hpp"

namespace {

constexpr int64_t kPrompt = 512, kGenerate = 64;

const micromix::Model* model() {
  static std::unique_ptr<micromix::Model> m = [] {
    const char* env = std::getenv("MICROMIX_MODEL");
    const std::string path = env ? env : micromix::default_model_path();
    if (!std::filesystem::exists(path)) return std::unique_ptr<micromix::Model>();
    return std::make_unique<micromix::Model>(micromix::Model::load(micromix::load_model_source(path)));
  }();
  return m.get();
}

std::vector<int32_t> prompt(int vocab) {
  std::mt19937 g(1234);  // the cost does not depend on the ids
  std::uniform_int_distribution<int32_t> u(0, vocab - 1);
  std::vector<int32_t> t(kPrompt);
  for (auto& x : t) x = u(g);
  return t;
}

void BM_Prefill512(benchmark::State& st) {
  const auto* m = model();
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

void BM_Decode64After512(benchmark::State& st) {
  const auto* m = model();
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

}  // namespace

// Wall time drives the tokens/s counters; the CPU column is the whole process (all threads), so
// tokens per CPU-second can be read off on a busy machine too.
BENCHMARK(BM_Prefill512)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(3);
BENCHMARK(BM_Decode64After512)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->Iterations(2);
BENCHMARK_MAIN();
