// `micromix ppl`: perplexity of the float model over a text file.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "command.hpp"
#include "progress.hpp"
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/model.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix::cli {
namespace {

struct PplArgs {
  std::string model, text;
  int64_t ctx = 512, max_tokens = 0;
  bool llamacpp = false, quiet = false;
  int threads = 0;
};

void run(const PplArgs& a) {
  using clock = std::chrono::steady_clock;
  if (a.threads > 0) omp_set_num_threads(a.threads);
  const std::string path = a.model.empty() ? default_model_path() : a.model;
  MM_CHECK(std::filesystem::exists(path), "model {} not found{}", path,
           a.model.empty() ? " (no --model given; run `micromix fetch` for the default model)" : "");
  std::ifstream in(a.text, std::ios::binary);
  MM_CHECK(in, "cannot read text file {}", a.text);
  std::stringstream ss;
  ss << in.rdbuf();
  const ModelSource src = load_model_source(path);
  const Tokenizer tok(src.tokenizer);
  const Model model = Model::load(src);
  std::vector<int32_t> ids = tok.encode(ss.str(), true);
  if (a.max_tokens > 0 && static_cast<int64_t>(ids.size()) > a.max_tokens) ids.resize(static_cast<size_t>(a.max_tokens));

  PerplexityOptions opt;
  opt.ctx = a.ctx;
  opt.llamacpp = a.llamacpp;
  opt.bos_id = a.llamacpp && src.tokenizer.add_bos ? src.tokenizer.bos_id : -1;
  const auto t0 = clock::now();
  Progress progress("window");
  if (!a.quiet)
    opt.progress = [&](int64_t done, int64_t total, int64_t, double ppl) {
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      const double tokens = static_cast<double>(std::min<int64_t>(done * a.ctx, static_cast<int64_t>(ids.size())));
      progress.update(done, total, fmt::format("ppl {:.4f}  {:.1f} tokens/s", ppl, tokens / s));
    };
  const PerplexityResult r = perplexity(model, ids, opt);
  const double s = std::chrono::duration<double>(clock::now() - t0).count();
  progress.finish();
  fmt::print("model: {}\ntext: {}\nmode: {}\nctx: {}\ntokens: {}\nwindows: {}\npredicted: {}\nmean_nll: {:.6f}\nppl: {:.4f}\n"
             "seconds: {:.1f}\n",
             path, a.text, a.llamacpp ? "llamacpp" : "plain", a.ctx, r.tokens, r.windows, r.predicted, r.mean_nll, r.ppl,
             s);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<PplArgs>();
  auto* cmd = app.add_subcommand("ppl", "Perplexity of a model (float, or quantized for a micromix checkpoint) over a text file (non-overlapping windows)");
  cmd->add_option("--model,-m", a->model, "GGUF file or Hugging Face directory (default: the cached default model)");
  cmd->add_option("--text", a->text, "UTF-8 text file")->required();
  cmd->add_option("--ctx,-c", a->ctx, "window length in tokens")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--max-tokens", a->max_tokens, "use only the first T tokens (0: all)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--llamacpp", a->llamacpp,
                "llama-perplexity's convention: whole windows only, BOS first when the vocabulary adds it, only the "
                "second half of each window scored");
  cmd->add_option("--threads,-t", a->threads, "CPU threads (default: all)")->check(CLI::PositiveNumber);
  cmd->add_flag("--quiet,-q", a->quiet, "no progress on stderr");
  cmd->callback([a] { run(*a); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
