// `micromix convert`: any model micromix reads (GGUF, HF directory) -> a Hugging Face directory
// (model.safetensors + config.json + tokenizer.json + tokenizer_config.json), so the same weights
// can be checked against transformers.
#include <fmt/format.h>

#include "command.hpp"
#include "micromix/error.hpp"
#include "micromix/model_source.hpp"
#include "micromix/safetensors.hpp"

namespace micromix::cli {
namespace {

struct ConvertArgs {
  std::string model, out, dtype = "f32";
  bool force = false;
};

void convert(const ConvertArgs& a) {
  MM_CHECK(a.dtype == "f32" || a.dtype == "bf16", "--dtype '{}' is not supported (expected f32 or bf16)", a.dtype);
  const ModelSource m = load_model_source(a.model);
  write_hf_directory(m, a.out, a.dtype == "f32" ? DType::f32 : DType::bf16, a.force);
  fmt::print("wrote {} ({} {}, {} layers, hidden {}, vocab {}, {} tensors as {})\n", a.out, m.format, m.config.arch,
             m.config.n_layers, m.config.hidden, m.config.vocab, m.tensors->names().size(), a.dtype);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Write a model as a Hugging Face directory (model.safetensors, config.json, tokenizer.json)");
  cmd->add_option("--model,-m", args->model, "input: a .gguf file or a Hugging Face directory")->required();
  cmd->add_option("--out,-o", args->out, "output directory (created if needed)")->required();
  cmd->add_option("--dtype", args->dtype, "weights in the output: f32 or bf16")->capture_default_str();
  cmd->add_flag("--force", args->force, "replace an existing OUT/model.safetensors");
  cmd->callback([args] { convert(*args); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
