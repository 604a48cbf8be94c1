#include "model_cli.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"

namespace micromix::cli {

LoadedModel load_model_for_cli(const std::string& path_in, int threads) {
  cpu::set_num_threads(threads);
  const std::string path = path_in.empty() ? fetch_default_model(true) : path_in;
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel lm;
  lm.source = std::make_unique<ModelSource>(load_model_source(path));
  lm.tokenizer = std::make_unique<Tokenizer>(lm.source->tokenizer);
  lm.model = std::make_unique<Model>(Model::load(*lm.source));
  const auto& c = lm.model->config();
  fmt::print(stderr, "loaded {} ({}, {} layers, hidden {}, vocab {}) in {:.1f} s, {} threads\n", path, c.arch,
             c.n_layers, c.hidden, c.vocab,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu::num_threads());
  return lm;
}

std::vector<int32_t> tokenize_file(const Tokenizer& tok, const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  MM_CHECK(f, "{}: cannot open '{}'", what, path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  MM_CHECK(!text.empty(), "{}: '{}' is empty", what, path);
  return tok.encode(text, /*add_special=*/false, /*parse_special=*/false);
}

void write_text_file_new(const std::string& path, const std::string& text) {
  MM_CHECK(!std::filesystem::exists(path), "refusing to overwrite existing file '{}'", path);
  std::ofstream f(path, std::ios::binary);
  MM_CHECK(f, "cannot create '{}'", path);
  f << text;
  MM_CHECK(f.good(), "writing '{}' failed", path);
}

}  // namespace micromix::cli
