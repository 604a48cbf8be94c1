// `micromix generate`: stream a continuation of a prompt (greedy or sampled) on the CPU engine.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <fmt/format.h>

#include "command.hpp"
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/model.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix::cli {
namespace {

struct GenerateArgs {
  std::string model, prompt;
  int n = 64, threads = 0, top_k = 40;
  float temp = 0.0f, top_p = 0.95f;
  uint64_t seed = 0;
};

// Length of the longest prefix of s that does not end inside a UTF-8 sequence.
size_t complete_utf8_prefix(const std::string& s) {
  size_t i = s.size(), back = 0;
  while (i > 0 && back < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) --i, ++back;
  if (i == 0) return s.size();
  const auto lead = static_cast<unsigned char>(s[i - 1]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return need > back + 1 ? i - 1 : s.size();
}

void run(const GenerateArgs& a) {
  using clock = std::chrono::steady_clock;
  if (a.threads > 0) omp_set_num_threads(a.threads);
  const std::string path = a.model.empty() ? default_model_path() : a.model;
  MM_CHECK(std::filesystem::exists(path), "model {} not found{}", path,
           a.model.empty() ? " (no --model given; run `micromix fetch` for the default model)" : "");
  const ModelSource src = load_model_source(path);
  const Tokenizer tok(src.tokenizer);
  const Model model = Model::load(src);
  std::vector<int32_t> ids = tok.encode(a.prompt, true);
  MM_CHECK(!ids.empty(), "the prompt has no tokens");
  auto cache = model.new_cache(static_cast<int64_t>(ids.size()) + a.n);
  Sampler sampler({a.temp, a.top_k, a.top_p, a.seed});

  std::vector<float> logits;
  const auto t0 = clock::now();
  model.forward(ids, cache, logits, 1);
  const double prompt_s = std::chrono::duration<double>(clock::now() - t0).count();
  const int32_t eos = src.tokenizer.eos_id;
  std::string pending;
  int generated = 0;
  const auto t1 = clock::now();
  for (; generated < a.n; ++generated) {
    const int32_t next = sampler.sample(logits);
    if (next == eos) break;
    pending += tok.token_text(next);
    const size_t ready = complete_utf8_prefix(pending);
    std::fwrite(pending.data(), 1, ready, stdout);
    std::fflush(stdout);
    pending.erase(0, ready);
    if (generated + 1 < a.n) model.forward(std::span(&next, 1), cache, logits, 1);
  }
  const double gen_s = std::chrono::duration<double>(clock::now() - t1).count();
  std::fwrite(pending.data(), 1, pending.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  fmt::print(stderr, "prompt: {} tokens in {:.3f} s ({:.1f} tokens/s); generation: {} tokens in {:.3f} s ({:.1f} tokens/s)\n",
             ids.size(), prompt_s, static_cast<double>(ids.size()) / prompt_s, generated, gen_s,
             generated > 0 ? generated / gen_s : 0.0);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Continue a prompt on the CPU (float model, or quantized when --model is a micromix checkpoint), streaming to stdout");
  cmd->add_option("--model,-m", a->model, "GGUF file or Hugging Face directory (default: the cached default model)");
  cmd->add_option("--prompt,-p", a->prompt, "prompt text")->required();
  cmd->add_option("-n,--n-predict", a->n, "tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", a->temp, "temperature (0: greedy)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", a->top_k, "sample among the k most likely (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", a->top_p, "nucleus mass")->capture_default_str()->check(CLI::Range(0.0001f, 1.0f));
  cmd->add_option("--seed", a->seed, "random seed for sampling")->capture_default_str();
  cmd->add_option("--threads,-t", a->threads, "CPU threads (default: all)")->check(CLI::PositiveNumber);
  cmd->callback([a] { run(*a); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
