// `micromix logits`: raw float32 logits of a prompt (for comparisons with other implementations).
#include <omp.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "command.hpp"
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/model.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix::cli {
namespace {

struct LogitsArgs {
  std::string model, prompt, out;
  bool no_bos = false;
  int threads = 0;
};

void run(const LogitsArgs& a) {
  if (a.threads > 0) omp_set_num_threads(a.threads);
  const std::string path = a.model.empty() ? default_model_path() : a.model;
  MM_CHECK(std::filesystem::exists(path), "model {} not found{}", path,
           a.model.empty() ? " (no --model given; run `micromix fetch` for the default model)" : "");
  const ModelSource src = load_model_source(path);
  const Tokenizer tok(src.tokenizer);
  const Model model = Model::load(src);
  const std::vector<int32_t> ids = tok.encode(a.prompt, !a.no_bos);
  MM_CHECK(!ids.empty(), "the prompt has no tokens");
  auto cache = model.new_cache(static_cast<int64_t>(ids.size()));
  std::vector<float> logits;
  model.forward(ids, cache, logits);
  std::FILE* f = std::fopen(a.out.c_str(), "wb");
  MM_CHECK(f, "cannot open {} for writing: {}", a.out, std::strerror(errno));
  const size_t wrote = std::fwrite(logits.data(), sizeof(float), logits.size(), f);  // little-endian hosts
  const bool ok = std::fclose(f) == 0 && wrote == logits.size();
  MM_CHECK(ok, "writing {} failed", a.out);
  fmt::print("[{}]\n", fmt::join(ids, ", "));
}

void setup(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  auto* cmd = app.add_subcommand(
      "logits", "Run a prompt through the model (quantized for a micromix checkpoint); write logits (n_tokens, vocab) as raw little-endian float32 "
                "to --out and print the token ids as a JSON array");
  cmd->add_option("--model,-m", a->model, "GGUF file or Hugging Face directory (default: the cached default model)");
  cmd->add_option("--prompt,-p", a->prompt, "prompt text")->required();
  cmd->add_option("--out,-o", a->out, "output file")->required();
  cmd->add_flag("--no-bos", a->no_bos, "do not prepend BOS even when the vocabulary asks for it");
  cmd->add_option("--threads,-t", a->threads, "CPU threads (default: all)")->check(CLI::PositiveNumber);
  cmd->callback([a] { run(*a); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
