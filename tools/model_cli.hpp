// Helpers shared by the CLI commands that load a model (tools only).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "micromix/model.hpp"
#include "micromix/model_source.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix::cli {

struct LoadedModel {
  std::unique_ptr<ModelSource> source;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Model> model;  // float32
};

// path empty: the default model (fetched into the cache when missing). Sets the thread count.
LoadedModel load_model_for_cli(const std::string& path, int threads);
// Reads and tokenizes a UTF-8 text file; `what` names the option in errors.
std::vector<int32_t> tokenize_file(const Tokenizer& tok, const std::string& path, const std::string& what);
// Writes a new file; refuses to overwrite an existing one.
void write_text_file_new(const std::string& path, const std::string& text);

}  // namespace micromix::cli
